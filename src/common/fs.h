/*
 * fs.h — files and folders: whole-file reads with a cap, small sysfs reads,
 * mkdir -p, atomic replacement, read-only mappings.
 */
#ifndef JB_COMMON_FS_H
#define JB_COMMON_FS_H

#include <stddef.h>
#include <sys/types.h>
#include "common/buf.h"

#define FS_PATH_MAX 4096

/* Reads a whole file into out (appending), at most max bytes (0: 1 GiB).
 * Errors name the path. */
int fs_read_file(const char *path, size_t max, struct buf *out, char *err);
/* One read() of at most size-1 bytes from a small file (sysfs), NUL-
 * terminated; returns the length or a negative JB_ERR_* (JB_ERR_PERM for
 * EACCES/EPERM, JB_ERR_NOTFOUND for ENOENT). */
ssize_t fs_read_small(const char *path, char *dst, size_t size);
/* pread() from offset 0 on an open file, same contract: no allocation, for
 * the sampler's hot loop. */
ssize_t fs_pread_small(int fd, char *dst, size_t size);
/* Maps an errno value to a JB_ERR_* code. */
int fs_errno_code(int e);

int fs_mkdir_p(const char *path, char *err);
/* Writes data to path.tmp, fsyncs, renames over path. */
int fs_write_atomic(const char *path, const void *data, size_t len, char *err);
/* dst = a "/" b, JB_ERR_NOMEM if it does not fit. */
int fs_path_join(char *dst, size_t size, const char *a, const char *b);
int fs_exists(const char *path);
int fs_is_dir(const char *path);
/* getenv(var) when set and non-empty, else def. */
const char *fs_env_or(const char *var, const char *def);

/* A read-only private mapping of a whole file. */
struct fs_map {
    const void *data;
    size_t size;
};
int fs_map_file(const char *path, struct fs_map *out, char *err);
void fs_unmap(struct fs_map *m);

#endif
