/*
 * testutil.h — small helpers for the tests: temporary folders that clean
 * up after themselves, writing files, running the joulebench tool and
 * capturing its output.
 */
#ifndef JB_TESTS_TESTUTIL_H
#define JB_TESTS_TESTUTIL_H

#include <stddef.h>

#include "common/buf.h"

/* mkdtemp under $TMPDIR; returns a heap path (free with tu_rmtree_free). */
char *tu_tmpdir(const char *tag);
/* rm -rf path, then free(path). */
void tu_rmtree_free(char *path);
/* Writes text to dir/rel, creating parent folders; aborts the test on failure. */
void tu_write(const char *dir, const char *rel, const char *text);
/* Creates a symlink at dir/rel pointing to target (relative or absolute). */
void tu_symlink(const char *dir, const char *rel, const char *target);
/* Runs argv (argv[0] a path) with extra environment "K=V" entries (NULL-
 * terminated, may be NULL), captures stdout and stderr, returns the exit
 * status (128+signal if killed). */
int tu_run(char *const argv[], char *const env[], struct buf *out, struct buf *err_out);
/* The same with standard input read from the file at stdin_path (NULL:
 * inherited, as tu_run does), as a user pipes text into a command. */
int tu_run_in(char *const argv[], char *const env[], const char *stdin_path, struct buf *out,
              struct buf *err_out);

/* Entries of dir that are not hidden (-1 if it cannot be read). */
int tu_dir_entries(const char *dir);

/* TU_N_COLLIDE distinct lowercase keys that FNV-1a from its fixed offset
 * basis sends to the same low 13 bits: a table indexed that way puts them
 * all in one cluster (what a hostile file could do to an unseeded hash).
 * Aborts the test if the construction fails. */
enum { TU_N_COLLIDE = 4096 };
void tu_colliding_keys(char (*keys)[40]);

#endif
