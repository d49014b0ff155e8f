/*
 * sandbox.h — runs generated code (a model's answer) as hostile input.
 *
 * Every run gets the same folder (made fresh by sandbox_open(), removed by
 * sandbox_close()), a clean environment (PATH minimal, HOME and TMPDIR = the
 * folder), a new process group that is killed at the timeout, rlimits on CPU
 * time, address space, file size, open files and processes, and — where the
 * kernel and our privileges allow — more:
 *   - as root, the child drops to an unprivileged uid (nobody) after setup,
 *     since root ignores RLIMIT_NPROC and can read every file;
 *   - as a normal user, a user namespace, which makes the others possible;
 *   - a network namespace (no network at all, not even loopback);
 *   - a PID namespace: when its first process dies, the kernel kills every
 *     process left inside, so nothing outlives the run (even after setsid);
 *   - a mount namespace hiding the user's home (and /root) behind an empty
 *     tmpfs, with a private /proc;
 *   - Landlock (Linux >= 5.13, checked at run time): read and execute only
 *     the system folders, write only the sandbox folder; TCP connect and bind
 *     denied (ABI 4); no signals or abstract sockets outside (ABI 6);
 *   - a watch on the folder's total size, killing a run that fills the disk.
 * What was in force is reported per run (sandbox_result.protections) with
 * the reasons for what was not (sandbox_result.missing): the report shows it.
 *
 * Ownership: sandbox_open() allocates; sandbox_close() kills what is left,
 * removes the folder and frees. struct sandbox_result is the caller's:
 * sandbox_result_init() before sandbox_run(), sandbox_result_free() after.
 * Linux only beyond the basics: elsewhere the run gets the folder, the
 * process group, the rlimits and the clean environment.
 */
#ifndef JB_GRADE_SANDBOX_H
#define JB_GRADE_SANDBOX_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

/* Protections, as bits of sandbox_result.protections. */
enum sandbox_protection {
    SANDBOX_P_TMPDIR = 1u << 0,          /* "tmpdir": fresh folder, removed after */
    SANDBOX_P_PGROUP = 1u << 1,          /* "process-group": killed at the timeout */
    SANDBOX_P_RLIMITS = 1u << 2,         /* "rlimits": CPU, memory, file size, files, processes */
    SANDBOX_P_ENV = 1u << 3,             /* "clean-env" */
    SANDBOX_P_UID = 1u << 4,             /* "uid-drop": root -> nobody */
    SANDBOX_P_USERNS = 1u << 5,          /* "user-namespace" */
    SANDBOX_P_NETNS = 1u << 6,           /* "network-namespace" */
    SANDBOX_P_PIDNS = 1u << 7,           /* "pid-namespace" */
    SANDBOX_P_MNTNS = 1u << 8,           /* "mount-namespace": home hidden */
    SANDBOX_P_PROC = 1u << 9,            /* "private-proc" */
    SANDBOX_P_NO_NEW_PRIVS = 1u << 10,   /* "no-new-privs" */
    SANDBOX_P_LANDLOCK_FS = 1u << 11,    /* "landlock-fs" */
    SANDBOX_P_LANDLOCK_NET = 1u << 12,   /* "landlock-net" */
    SANDBOX_P_LANDLOCK_SCOPE = 1u << 13, /* "landlock-scope" */
    SANDBOX_P_DISK = 1u << 14,           /* "disk-cap" */
    SANDBOX_P_IPCNS = 1u << 15,          /* "ipc-namespace": no shared SysV IPC */
};
#define SANDBOX_P_COUNT 16

/* Name of one protection bit ("network-namespace"), or "?". */
const char *sandbox_protection_name(unsigned bit);
/* A new JSON array of the names of the bits set in mask. */
json_t *sandbox_protections_json(unsigned mask);

/* Every field is optional: 0 takes the default in brackets. */
struct sandbox_config {
    double timeout_s;       /* wall clock per run [10 s] */
    double cpu_s;           /* RLIMIT_CPU [timeout + 1 s] */
    uint64_t mem_bytes;     /* RLIMIT_AS [2 GiB] */
    uint64_t file_bytes;    /* RLIMIT_FSIZE: the largest file [16 MiB] */
    uint64_t disk_bytes;    /* all of the folder together [256 MiB] */
    int max_files;          /* RLIMIT_NOFILE [64] */
    int max_procs;          /* processes and threads beyond those the uid already has [64] */
    size_t output_bytes;    /* stdout and stderr each; a run that writes more is killed [64 KiB] */
    int drop_uid, drop_gid; /* as root: the identity to run as [65534, 65534] */
    unsigned disable;       /* SANDBOX_P_* bits not to attempt (tests, debugging) */
};

struct sandbox;

struct sandbox_result {
    int exit_code;     /* -1 when it did not exit by itself */
    int signal;        /* the signal that ended it, or 0 */
    int timed_out;     /* 1: killed at the timeout */
    int output_capped; /* 1: killed for writing more than output_bytes */
    int disk_capped;   /* 1: killed for filling the folder past disk_bytes */
    double duration_s;
    char reason[256];     /* "" when it exited 0, else why not, for people */
    struct buf out, err;  /* what it wrote, at most output_bytes each */
    unsigned protections; /* SANDBOX_P_* in force for this run */
    char missing[768];    /* the protections that were not, and why ("" when none) */
};

/* Makes the folder (under $TMPDIR, else /tmp; chowned to the drop identity
 * when root), and probes which namespaces this process may create. */
int sandbox_open(struct sandbox **out, const struct sandbox_config *cfg, char *err);
/* Kills whatever is left, removes the folder, frees sb (NULL is allowed). */
void sandbox_close(struct sandbox *sb);
/* The folder's path (valid until sandbox_close). */
const char *sandbox_dir(const struct sandbox *sb);

/* Writes a file called name (a plain name, no '/') into the folder,
 * replacing whatever the code may have put there (links are not followed). */
int sandbox_write_file(struct sandbox *sb, const char *name, const void *data, size_t len,
                       char *err);

/* Finds a program the sandboxed process can execute: the first dir/name in
 * the colon-separated search path (NULL: $PATH, then /usr/local/bin, /usr/bin,
 * /bin) that is executable by the sandbox's identity (as root: by nobody,
 * through folders nobody may enter). Its installation prefix is added to
 * what Landlock lets the code read. Returns 0 and the path in out, or
 * JB_ERR_NOTFOUND. */
int sandbox_find_program(struct sandbox *sb, const char *name, const char *search_path, char *out,
                         size_t size);

void sandbox_result_init(struct sandbox_result *r);
void sandbox_result_free(struct sandbox_result *r);

/* Runs argv (argv[0] a path, as from sandbox_find_program) in the folder,
 * stdin from the folder's file stdin_name (NULL: /dev/null), for at most
 * timeout_s (0: the configured timeout). Returns 0 when the program ran,
 * whatever became of it (res says), or an error when the sandbox itself could
 * not be set up (fork failed, the uid could not be dropped): then nothing of
 * the code ran. */
int sandbox_run(struct sandbox *sb, char *const argv[], const char *stdin_name, double timeout_s,
                struct sandbox_result *res, char *err);

#endif
