/*
 * sandbox.c — see sandbox.h. The child is created with clone3() so that it
 * starts inside its new namespaces (it is PID 1 of its own PID namespace, and
 * the parent still holds its PID and a pidfd); between clone3() and execve()
 * it makes only system calls, because the parent may have other threads whose
 * locks were copied mid-flight. Setup steps the code must not run without
 * (rlimits, the uid drop, the working folder) abort the run; the others are
 * reported as missing with their reason and the run goes on.
 */
#define _GNU_SOURCE
#include "grade/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef __linux__
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#define SB_NEWUSER CLONE_NEWUSER
#else
#include <grp.h>
#define SB_NEWUSER 0
#endif

#include "common/fs.h"
#include "common/sig.h"
#include "common/str.h"
#include "common/timeutil.h"

#define SB_MAX_RO 24
#define SB_MAX_HIDE 4
#define SB_DEFAULT_TIMEOUT_S 10.0
#define SB_DISK_CHECK_S 0.25
#define SB_DISK_MAX_ENTRIES 20000
#define SB_GRACE_S 0.5

/* Landlock, from the kernel's user-space ABI (defined here so that older
 * kernel headers still build; the kernel says at run time what it has). */
#define LL_CREATE_RULESET_VERSION (1u << 0)
#define LL_RULE_PATH_BENEATH 1
#define LL_FS_EXECUTE (1ull << 0)
#define LL_FS_WRITE_FILE (1ull << 1)
#define LL_FS_READ_FILE (1ull << 2)
#define LL_FS_READ_DIR (1ull << 3)
#define LL_FS_REFER (1ull << 13)     /* ABI 2 */
#define LL_FS_TRUNCATE (1ull << 14)  /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ull << 15) /* ABI 5 */
#define LL_FS_ABI1 ((1ull << 13) - 1)
#define LL_NET_BIND_TCP (1ull << 0)        /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ull << 1)     /* ABI 4 */
#define LL_SCOPE_ABSTRACT_UNIX (1ull << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ull << 1)        /* ABI 6 */

struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct ll_path_beneath {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

/* clone3()'s argument, version 0 (64 bytes). */
struct sb_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

struct sandbox {
    struct sandbox_config cfg; /* defaults filled in */
    char top[FS_PATH_MAX];     /* mkdtemp folder: ours, 0711 */
    char dir[FS_PATH_MAX];     /* top/box: the code's folder */
    int dirfd;
    int drop; /* 1: root, the child switches to cfg.drop_uid */
    uid_t run_uid;
    gid_t run_gid;
    unsigned want;                  /* protections to try */
    unsigned long ns_flags;         /* clone flags the probe found allowed */
    int landlock_abi;               /* 0: none */
    long base_tasks;                /* tasks run_uid had at open (RLIMIT_NPROC counts them) */
    char why[SANDBOX_P_COUNT][112]; /* reason a wanted protection is not possible */
    char notes[256];
    char hide[SB_MAX_HIDE][FS_PATH_MAX];
    int n_hide;
    char ro[SB_MAX_RO][FS_PATH_MAX];
    int n_ro;
    char path_env[1024]; /* PATH=... for the child */
};

static const char *const prot_names[SANDBOX_P_COUNT] = {
    "tmpdir",          "process-group",  "rlimits",           "clean-env",
    "uid-drop",        "user-namespace", "network-namespace", "pid-namespace",
    "mount-namespace", "private-proc",   "no-new-privs",      "landlock-fs",
    "landlock-net",    "landlock-scope", "disk-cap",          "ipc-namespace",
};

const char *sandbox_protection_name(unsigned bit)
{
    for (int i = 0; i < SANDBOX_P_COUNT; i++)
        if (bit == (1u << i))
            return prot_names[i];
    return "?";
}

json_t *sandbox_protections_json(unsigned mask)
{
    json_t *a = json_array();
    for (int i = 0; a && i < SANDBOX_P_COUNT; i++)
        if (mask & (1u << i))
            json_array_append_new(a, json_string(prot_names[i]));
    return a;
}

static int bit_index(unsigned bit)
{
    for (int i = 0; i < SANDBOX_P_COUNT; i++)
        if (bit == (1u << i))
            return i;
    return 0;
}

static void set_why(struct sandbox *sb, unsigned bit, const char *fmt, ...) JB_PRINTF(3, 4);
static void set_why(struct sandbox *sb, unsigned bit, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sb->why[bit_index(bit)], sizeof sb->why[0], fmt, ap);
    va_end(ap);
}

const char *sandbox_dir(const struct sandbox *sb)
{
    return sb->dir;
}

/* ---- removing what the code left behind ------------------------------ */

/* Removes everything below the open folder dfd without following links and
 * without path lookups that a process still running could redirect (each
 * step is relative to a folder we hold open). Folders the code made
 * unreadable are opened with O_PATH and given back their permissions. */
static void rm_below(int dfd, int depth)
{
    if (depth > 64)
        return;
    for (int pass = 0; pass < 4; pass++) {
        int dup_fd = dup(dfd);
        if (dup_fd < 0)
            return;
        DIR *d = fdopendir(dup_fd);
        if (!d) {
            close(dup_fd);
            return;
        }
        rewinddir(d);
        int left = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            if (unlinkat(dfd, e->d_name, 0) == 0)
                continue;
            int sub = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
#ifdef O_PATH
            if (sub < 0 && errno == EACCES) {
                int p = openat(dfd, e->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (p >= 0) {
                    char proc[64];
                    snprintf(proc, sizeof proc, "/proc/self/fd/%d", p);
                    if (chmod(proc, 0700) == 0)
                        sub =
                            openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                    close(p);
                }
            }
#endif
            if (sub >= 0) {
                struct stat st;
                if (fstat(sub, &st) == 0 && !(st.st_mode & S_IWUSR))
                    fchmod(sub, 0700);
                rm_below(sub, depth + 1);
                close(sub);
                if (unlinkat(dfd, e->d_name, AT_REMOVEDIR) == 0)
                    continue;
            }
            left++;
        }
        closedir(d);
        if (!left)
            return;
    }
}

/* Total bytes allocated below dfd, stopping early past limit; entries counts
 * the files seen (a flood of empty files is a disk attack too). */
static void disk_usage(int dfd, int depth, uint64_t *bytes, long *entries, uint64_t limit)
{
    if (depth > 64 || *bytes > limit || *entries > SB_DISK_MAX_ENTRIES)
        return;
    int dup_fd = dup(dfd);
    if (dup_fd < 0)
        return;
    DIR *d = fdopendir(dup_fd);
    if (!d) {
        close(dup_fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) && *bytes <= limit && *entries <= SB_DISK_MAX_ENTRIES) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW))
            continue;
        (*entries)++;
        *bytes += (uint64_t)st.st_blocks * 512u;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                disk_usage(sub, depth + 1, bytes, entries, limit);
                close(sub);
            }
        }
    }
    closedir(d);
}

/* ---- probing --------------------------------------------------------- */

/* Tasks (threads) whose real uid is uid: RLIMIT_NPROC counts them all, so the
 * limit we set is this plus max_procs. */
static long count_tasks(uid_t uid)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[64], text[2048];
        snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
        ssize_t len = fs_read_small(path, text, sizeof text);
        if (len <= 0)
            continue;
        const char *u = strstr(text, "\nUid:");
        const char *t = strstr(text, "\nThreads:");
        if (!u || !t)
            continue;
        char *end;
        unsigned long ruid = strtoul(u + 5, &end, 10);
        long threads = strtol(t + 9, &end, 10);
        if (ruid == (unsigned long)uid && threads > 0)
            n += threads;
    }
    closedir(d);
    return n;
}

#if defined(__linux__) && defined(SYS_clone3)
static pid_t sb_clone3(unsigned long flags, int *pidfd)
{
    struct sb_clone_args a;
    memset(&a, 0, sizeof a);
    a.flags = flags | (pidfd ? CLONE_PIDFD : 0);
    a.pidfd = (uint64_t)(uintptr_t)pidfd;
    a.exit_signal = SIGCHLD;
    return (pid_t)syscall(SYS_clone3, &a, sizeof a);
}

/* 1 if a child may be created with these namespace flags (it exits at once). */
static int try_clone(unsigned long flags, int *err_no)
{
    pid_t pid = sb_clone3(flags, NULL);
    if (pid == 0)
        _exit(0);
    if (pid < 0) {
        *err_no = errno;
        return 0;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return 1;
}
#endif

struct ns_kind {
    unsigned long flag;
    unsigned bit;
};

/* Finds which namespaces this process may create: all at once when it can
 * (the usual case, one probe), else one at a time, the user namespace first
 * since for a normal user the others depend on it. */
static void probe_namespaces(struct sandbox *sb)
{
#if defined(__linux__) && defined(SYS_clone3)
    const struct ns_kind kinds[] = {
        {CLONE_NEWUSER, SANDBOX_P_USERNS}, {CLONE_NEWNET, SANDBOX_P_NETNS},
        {CLONE_NEWPID, SANDBOX_P_PIDNS},   {CLONE_NEWNS, SANDBOX_P_MNTNS},
        {CLONE_NEWIPC, SANDBOX_P_IPCNS},
    };
    unsigned long want = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (sb->want & kinds[i].bit)
            want |= kinds[i].flag;
    if (!want)
        return;
    int e = 0;
    if (try_clone(want, &e)) {
        sb->ns_flags = want;
        return;
    }
    if (e == ENOSYS) {
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
            if (sb->want & kinds[i].bit)
                set_why(sb, kinds[i].bit, "clone3() is not available (kernel < 5.3 or blocked)");
        return;
    }
    unsigned long ok = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (!(want & kinds[i].flag))
            continue;
        if (try_clone(ok | kinds[i].flag, &e))
            ok |= kinds[i].flag;
        else
            set_why(sb, kinds[i].bit, "the kernel refused it (%s)%s", strerror(e),
                    (e == EPERM || e == ENOSPC) && !sb->drop && !(ok & CLONE_NEWUSER)
                        ? "; unprivileged user namespaces may be disabled"
                        : "");
    }
    sb->ns_flags = ok;
#else
    for (int i = 0; i < SANDBOX_P_COUNT; i++)
        if (sb->want & (1u << i) &
            (SANDBOX_P_USERNS | SANDBOX_P_NETNS | SANDBOX_P_PIDNS | SANDBOX_P_MNTNS |
             SANDBOX_P_IPCNS))
            set_why(sb, 1u << i, "namespaces are Linux only");
#endif
}

static void probe_landlock(struct sandbox *sb)
{
    unsigned ll = SANDBOX_P_LANDLOCK_FS | SANDBOX_P_LANDLOCK_NET | SANDBOX_P_LANDLOCK_SCOPE;
    if (!(sb->want & ll))
        return;
#if defined(__linux__) && defined(SYS_landlock_create_ruleset)
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
    if (abi < 0) {
        const char *why = errno == EOPNOTSUPP
                              ? "Landlock is disabled (add landlock to lsm= at boot)"
                              : "the kernel lacks Landlock (Linux >= 5.13)";
        for (unsigned b = SANDBOX_P_LANDLOCK_FS; b <= SANDBOX_P_LANDLOCK_SCOPE; b <<= 1)
            set_why(sb, b, "%s", why);
        return;
    }
    sb->landlock_abi = (int)abi;
    if (abi < 4)
        set_why(sb, SANDBOX_P_LANDLOCK_NET, "Landlock ABI %ld has no network rules (needs 4)", abi);
    if (abi < 6)
        set_why(sb, SANDBOX_P_LANDLOCK_SCOPE, "Landlock ABI %ld has no scopes (needs 6)", abi);
#else
    for (unsigned b = SANDBOX_P_LANDLOCK_FS; b <= SANDBOX_P_LANDLOCK_SCOPE; b <<= 1)
        set_why(sb, b, "Landlock is Linux only");
#endif
}

/* 1 if path (or one of its ancestors) is below or equal to base. */
static int path_under(const char *path, const char *base)
{
    size_t n = strlen(base);
    while (n > 1 && base[n - 1] == '/')
        n--;
    return strncmp(path, base, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static void add_hide(struct sandbox *sb, const char *path)
{
    char real[PATH_MAX];
    if (!path || path[0] != '/' || !strcmp(path, "/") || !realpath(path, real) || !fs_is_dir(real))
        return;
    if (path_under(sb->dir, real) || sb->n_hide >= SB_MAX_HIDE)
        return; /* the sandbox folder lives there: hiding it would hide the folder */
    for (int i = 0; i < sb->n_hide; i++)
        if (!strcmp(sb->hide[i], real))
            return;
    str_lcpy(sb->hide[sb->n_hide++], real, sizeof sb->hide[0]);
}

static void add_ro(struct sandbox *sb, const char *path)
{
    for (int i = 0; i < sb->n_ro; i++)
        if (path_under(path, sb->ro[i]))
            return;
    if (sb->n_ro < SB_MAX_RO)
        str_lcpy(sb->ro[sb->n_ro++], path, sizeof sb->ro[0]);
}

/* 1 if every folder above path may be entered by the run identity. */
static int reachable_by(const struct sandbox *sb, const char *path, int want_x_file)
{
    char tmp[FS_PATH_MAX];
    str_lcpy(tmp, path, sizeof tmp);
    struct stat st;
    if (stat(tmp, &st))
        return 0;
    unsigned need = want_x_file ? 1 : 0;
    for (;;) {
        if (need) {
            int ok = (st.st_mode & S_IXOTH) ||
                     (st.st_uid == sb->run_uid && (st.st_mode & S_IXUSR)) ||
                     (st.st_gid == sb->run_gid && (st.st_mode & S_IXGRP));
            if (!ok)
                return 0;
        }
        need = 1;
        char *slash = strrchr(tmp, '/');
        if (!slash || slash == tmp) {
            if (slash && tmp[1] != '\0') {
                if (stat("/", &st) || !(st.st_mode & S_IXOTH))
                    return 0;
            }
            return 1;
        }
        *slash = '\0';
        if (stat(tmp, &st))
            return 0;
    }
}

static void rebuild_path_env(struct sandbox *sb, const char *extra_dir)
{
    const char *base = "/usr/local/bin:/usr/bin:/bin";
    char cur[1024];
    str_lcpy(cur, sb->path_env[0] ? sb->path_env + 5 : base, sizeof cur);
    if (extra_dir) {
        /* already listed? */
        const char *p = cur;
        size_t n = strlen(extra_dir);
        while (p && *p) {
            if (!strncmp(p, extra_dir, n) && (p[n] == ':' || p[n] == '\0'))
                goto done;
            p = strchr(p, ':');
            if (p)
                p++;
        }
        char next[1024];
        snprintf(next, sizeof next, "%s:%s", extra_dir, cur);
        str_lcpy(cur, next, sizeof cur);
    }
done:
    snprintf(sb->path_env, sizeof sb->path_env, "PATH=%s", cur);
}

int sandbox_open(struct sandbox **out, const struct sandbox_config *cfg, char *err)
{
    *out = NULL;
    struct sandbox *sb = calloc(1, sizeof *sb);
    if (!sb)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    sb->dirfd = -1;
    if (cfg)
        sb->cfg = *cfg;
    struct sandbox_config *c = &sb->cfg;
    if (c->timeout_s <= 0)
        c->timeout_s = SB_DEFAULT_TIMEOUT_S;
    if (c->mem_bytes == 0)
        c->mem_bytes = 2ull << 30;
    if (c->file_bytes == 0)
        c->file_bytes = 16ull << 20;
    if (c->disk_bytes == 0)
        c->disk_bytes = 256ull << 20;
    if (c->max_files <= 0)
        c->max_files = 64;
    if (c->max_procs <= 0)
        c->max_procs = 64;
    if (c->output_bytes == 0)
        c->output_bytes = 64u << 10;
    if (c->drop_uid <= 0)
        c->drop_uid = 65534;
    if (c->drop_gid <= 0)
        c->drop_gid = 65534;

    sb->drop = geteuid() == 0 && !(c->disable & SANDBOX_P_UID);
    sb->run_uid = sb->drop ? (uid_t)c->drop_uid : geteuid();
    sb->run_gid = sb->drop ? (gid_t)c->drop_gid : getegid();
    unsigned all = (1u << SANDBOX_P_COUNT) - 1;
    sb->want = all & ~c->disable;
    if (geteuid() == 0)
        sb->want &= ~SANDBOX_P_USERNS; /* root needs none for the others */
    else
        sb->want &= ~SANDBOX_P_UID;
    /* These are always done; disabling them is not offered. */
    sb->want |= SANDBOX_P_TMPDIR | SANDBOX_P_PGROUP | SANDBOX_P_RLIMITS | SANDBOX_P_ENV;

    /* The folder: $TMPDIR when the run identity can reach it, else /tmp. */
    const char *bases[2] = {fs_env_or("TMPDIR", "/tmp"), "/tmp"};
    int made = 0;
    for (int i = 0; i < 2 && !made; i++) {
        if (i == 1 && !strcmp(bases[0], bases[1]))
            break;
        snprintf(sb->top, sizeof sb->top, "%s/jb-sandbox-XXXXXX", bases[i]);
        if (!mkdtemp(sb->top))
            continue;
        if (sb->drop && (chmod(sb->top, 0711) || !reachable_by(sb, sb->top, 1))) {
            rmdir(sb->top);
            continue;
        }
        made = 1;
    }
    if (!made) {
        int rc = err_setf(err, JB_ERR_IO,
                          "cannot make a sandbox folder under %s or /tmp that uid %d can enter: %s "
                          "(set TMPDIR to a folder others may enter)",
                          bases[0], (int)sb->run_uid, strerror(errno));
        free(sb);
        return rc;
    }
    if (fs_path_join(sb->dir, sizeof sb->dir, sb->top, "box") || mkdir(sb->dir, 0700) ||
        (sb->drop && chown(sb->dir, sb->run_uid, sb->run_gid))) {
        int rc = err_setf(err, JB_ERR_IO, "%s: %s", sb->dir, strerror(errno));
        rmdir(sb->dir);
        rmdir(sb->top);
        free(sb);
        return rc;
    }
    sb->dirfd = open(sb->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sb->dirfd < 0) {
        int rc = err_setf(err, JB_ERR_IO, "%s: %s", sb->dir, strerror(errno));
        rmdir(sb->dir);
        rmdir(sb->top);
        free(sb);
        return rc;
    }

    static const char *const system_ro[] = {"/usr",    "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                                            "/libx32", "/etc", "/opt",  "/nix", "/proc"};
    for (size_t i = 0; i < sizeof system_ro / sizeof system_ro[0]; i++)
        add_ro(sb, system_ro[i]);

    if (sb->want & SANDBOX_P_MNTNS) {
        add_hide(sb, getenv("HOME"));
        if (geteuid() == 0) {
            add_hide(sb, "/root");
        } else {
            char run[64];
            snprintf(run, sizeof run, "/run/user/%d", (int)geteuid());
            add_hide(sb, run);
        }
    }
    probe_namespaces(sb);
    probe_landlock(sb);
    if (sb->want & SANDBOX_P_UID && !sb->drop)
        set_why(sb, SANDBOX_P_UID, "not root");
    sb->base_tasks = count_tasks(sb->run_uid);
    rebuild_path_env(sb, NULL);
    *out = sb;
    return 0;
}

void sandbox_close(struct sandbox *sb)
{
    if (!sb)
        return;
    if (sb->dirfd >= 0) {
        rm_below(sb->dirfd, 0);
        close(sb->dirfd);
    }
    rmdir(sb->dir);
    rmdir(sb->top);
    free(sb);
}

int sandbox_write_file(struct sandbox *sb, const char *name, const void *data, size_t len,
                       char *err)
{
    if (!name[0] || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return err_setf(err, JB_ERR_USAGE, "sandbox: '%s' is not a plain file name", name);
    if (unlinkat(sb->dirfd, name, 0) && errno != ENOENT) {
        if (errno != EISDIR || unlinkat(sb->dirfd, name, AT_REMOVEDIR))
            return err_setf(err, JB_ERR_IO, "%s/%s: %s", sb->dir, name, strerror(errno));
    }
    int fd = openat(sb->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_setf(err, JB_ERR_IO, "%s/%s: %s", sb->dir, name, strerror(errno));
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int rc = err_setf(err, JB_ERR_IO, "%s/%s: %s", sb->dir, name, strerror(errno));
            close(fd);
            return rc;
        }
        p += w;
        len -= (size_t)w;
    }
    if (sb->drop && fchown(fd, sb->run_uid, sb->run_gid)) {
        int rc = err_setf(err, JB_ERR_IO, "%s/%s: %s", sb->dir, name, strerror(errno));
        close(fd);
        return rc;
    }
    close(fd);
    return 0;
}

int sandbox_find_program(struct sandbox *sb, const char *name, const char *search_path, char *out,
                         size_t size)
{
    char list[8192];
    if (search_path)
        str_lcpy(list, search_path, sizeof list);
    else
        snprintf(list, sizeof list, "%s:/usr/local/bin:/usr/bin:/bin", fs_env_or("PATH", ""));
    char *next = list;
    while (next) {
        char *d = next;
        next = strchr(next, ':');
        if (next)
            *next++ = '\0';
        if (d[0] != '/')
            continue;
        char cand[FS_PATH_MAX], real[PATH_MAX];
        if (fs_path_join(cand, sizeof cand, d, name))
            continue;
        struct stat st;
        if (stat(cand, &st) || !S_ISREG(st.st_mode) || !realpath(cand, real))
            continue;
        if (sb->drop ? !(reachable_by(sb, cand, 1) && reachable_by(sb, real, 1))
                     : access(cand, X_OK) != 0)
            continue;
        /* Landlock must let the code read the program's installation:
         * /opt/py/bin/python3 -> /opt/py. */
        char prefix[FS_PATH_MAX];
        str_lcpy(prefix, real, sizeof prefix);
        for (int up = 0; up < 2; up++) {
            char *slash = strrchr(prefix, '/');
            if (slash && slash != prefix)
                *slash = '\0';
        }
        add_ro(sb, prefix);
        for (int i = 0; i < sb->n_hide; i++) {
            if (path_under(real, sb->hide[i]) || path_under(cand, sb->hide[i])) {
                snprintf(sb->notes, sizeof sb->notes, "%s stays visible: %s lives there",
                         sb->hide[i], name);
                memmove(sb->hide[i], sb->hide[i + 1],
                        (size_t)(sb->n_hide - i - 1) * sizeof sb->hide[0]);
                sb->n_hide--;
                i--;
            }
        }
        rebuild_path_env(sb, d);
        str_lcpy(out, cand, size);
        return 0;
    }
    return JB_ERR_NOTFOUND;
}

void sandbox_result_init(struct sandbox_result *r)
{
    memset(r, 0, sizeof *r);
    r->exit_code = -1;
}

void sandbox_result_free(struct sandbox_result *r)
{
    buf_free(&r->out);
    buf_free(&r->err);
    sandbox_result_init(r);
}

/* ---- the child --------------------------------------------------------- */

enum sb_msg_kind { MSG_READY = 1, MSG_FATAL = 2, MSG_SOFT = 3 };
enum sb_step {
    ST_USERNS_MAP,
    ST_MOUNT_PRIVATE,
    ST_HIDE,
    ST_PROC,
    ST_FDS,
    ST_LL_CREATE,
    ST_LL_RULE,
    ST_RLIMIT,
    ST_SETGROUPS,
    ST_SETGID,
    ST_SETUID,
    ST_CHDIR,
    ST_NNP,
    ST_LL_RESTRICT,
    ST_EXEC,
    ST_COUNT
};
static const char *const step_names[ST_COUNT] = {
    "write the user namespace's uid map",
    "make mounts private",
    "hide the home folder",
    "mount a private /proc",
    "set up stdin/stdout/stderr",
    "create a Landlock ruleset",
    "add a Landlock rule",
    "set rlimits",
    "drop supplementary groups",
    "switch gid",
    "switch uid",
    "enter the sandbox folder",
    "set no_new_privs",
    "enforce Landlock",
    "execute the program",
};
/* The protection a soft failure at a step takes away. */
static unsigned step_protection(int step)
{
    switch (step) {
    case ST_USERNS_MAP:
        return SANDBOX_P_USERNS;
    case ST_MOUNT_PRIVATE:
    case ST_HIDE:
        return SANDBOX_P_MNTNS;
    case ST_PROC:
        return SANDBOX_P_PROC;
    case ST_NNP:
        return SANDBOX_P_NO_NEW_PRIVS;
    case ST_LL_CREATE:
    case ST_LL_RULE:
    case ST_LL_RESTRICT:
        return SANDBOX_P_LANDLOCK_FS | SANDBOX_P_LANDLOCK_NET | SANDBOX_P_LANDLOCK_SCOPE;
    default:
        return 0;
    }
}

struct sb_msg {
    int kind, step, err_no;
    unsigned prot;
};

/* Everything the child needs, prepared by the parent: the child only makes
 * system calls. */
struct child_plan {
    const char *exe;
    char *const *argv;
    char *const *envp;
    const char *dir;
    int in_fd, out_fd, err_fd, status_fd; /* all >= 10 */
    unsigned long ns_flags;
    unsigned want;
    char uid_map[48], gid_map[48];
    const char *hide[SB_MAX_HIDE];
    int n_hide;
    int drop;
    uid_t uid;
    gid_t gid;
    struct rlimit rl_cpu, rl_as, rl_fsize, rl_nofile, rl_nproc;
    int set_nproc;
    int landlock_abi;
    const char *ro[SB_MAX_RO];
    int n_ro;
};

static void child_msg(int fd, int kind, int step, int e, unsigned prot)
{
    struct sb_msg m = {kind, step, e, prot};
    ssize_t w = write(fd, &m, sizeof m);
    (void)w;
}

static void child_fail(int fd, int step)
{
    child_msg(fd, MSG_FATAL, step, errno, 0);
    _exit(127);
}

static int write_proc_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    int e = errno;
    close(fd);
    errno = e;
    return w == (ssize_t)n ? 0 : -1;
}

#ifdef __linux__
static uint64_t ll_fs_mask(int abi)
{
    uint64_t m = LL_FS_ABI1;
    if (abi >= 2)
        m |= LL_FS_REFER;
    if (abi >= 3)
        m |= LL_FS_TRUNCATE;
    if (abi >= 5)
        m |= LL_FS_IOCTL_DEV;
    return m;
}

static int ll_allow(int ruleset, const char *path, uint64_t access)
{
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    struct ll_path_beneath pb = {access, fd};
    long rc = syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &pb, 0);
    int e = errno;
    close(fd);
    errno = e;
    return rc ? -1 : 0;
}

/* The Landlock ruleset: read and execute the system folders, write the
 * sandbox folder, use the null devices; nothing else. Returns its fd or -1. */
static int ll_build(const struct child_plan *p, int private_proc)
{
    int abi = p->landlock_abi;
    struct ll_ruleset_attr attr = {ll_fs_mask(abi), 0, 0};
    size_t size = sizeof attr.handled_access_fs;
    if (abi >= 4 && (p->want & SANDBOX_P_LANDLOCK_NET)) {
        attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
        size = 2 * sizeof(uint64_t);
    }
    if (abi >= 6 && (p->want & SANDBOX_P_LANDLOCK_SCOPE)) {
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
        size = sizeof attr;
    }
    int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (rs < 0) {
        child_msg(p->status_fd, MSG_SOFT, ST_LL_CREATE, errno, 0);
        return -1;
    }
    uint64_t fs = attr.handled_access_fs;
    uint64_t ro = LL_FS_EXECUTE | LL_FS_READ_FILE | LL_FS_READ_DIR;
    uint64_t dev = (LL_FS_READ_FILE | LL_FS_WRITE_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV) & fs;
    int bad = ll_allow(rs, p->dir, fs);
    for (int i = 0; !bad && i < p->n_ro; i++) {
        /* The host's /proc would show the environment of every process of
         * the same uid (API keys and the like): only our own then. */
        if (!private_proc && !strcmp(p->ro[i], "/proc"))
            bad = ll_allow(rs, "/proc/self", ro);
        else
            bad = ll_allow(rs, p->ro[i], ro);
    }
    if (!bad)
        bad = ll_allow(rs, "/dev/null", dev) || ll_allow(rs, "/dev/zero", dev) ||
              ll_allow(rs, "/dev/urandom", LL_FS_READ_FILE) ||
              ll_allow(rs, "/dev/random", LL_FS_READ_FILE);
    if (bad) {
        child_msg(p->status_fd, MSG_SOFT, ST_LL_RULE, errno, 0);
        close(rs);
        return -1;
    }
    return rs;
}
#endif

static void close_from(int lowfd)
{
#if defined(__linux__) && defined(SYS_close_range)
    if (syscall(SYS_close_range, (unsigned)lowfd, ~0u, 0) == 0)
        return;
#endif
    struct rlimit rl;
    long max = 4096;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        max = rl.rlim_cur < 65536 ? (long)rl.rlim_cur : 65536;
    for (long fd = lowfd; fd < max; fd++)
        close((int)fd);
}

/* The child, from clone3() to execve(). It is already inside the namespaces
 * the parent asked for. Order matters: mounts need privileges, the Landlock
 * ruleset must be built while the system folders can still be opened, the
 * uid changes after both, and no_new_privs + Landlock come last. */
static void child_main(const struct child_plan *p)
{
    unsigned prot = 0;
    int sfd = p->status_fd;
    setpgid(0, 0);
#ifdef __linux__
    if (p->ns_flags & CLONE_NEWUSER) {
        if (write_proc_file("/proc/self/setgroups", "deny") ||
            write_proc_file("/proc/self/uid_map", p->uid_map) ||
            write_proc_file("/proc/self/gid_map", p->gid_map))
            child_msg(sfd, MSG_SOFT, ST_USERNS_MAP, errno, 0);
        else
            prot |= SANDBOX_P_USERNS;
    }
    if (p->ns_flags & CLONE_NEWNET)
        prot |= SANDBOX_P_NETNS;
    if (p->ns_flags & CLONE_NEWPID)
        prot |= SANDBOX_P_PIDNS;
    if (p->ns_flags & CLONE_NEWIPC)
        prot |= SANDBOX_P_IPCNS;
    if (p->ns_flags & CLONE_NEWNS) {
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
            child_msg(sfd, MSG_SOFT, ST_MOUNT_PRIVATE, errno, 0);
        } else {
            int hidden = 1;
            for (int i = 0; i < p->n_hide; i++)
                if (mount("tmpfs", p->hide[i], "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                          "size=16k,mode=0755")) {
                    child_msg(sfd, MSG_SOFT, ST_HIDE, errno, 0);
                    hidden = 0;
                }
            if (hidden)
                prot |= SANDBOX_P_MNTNS;
            if ((p->ns_flags & CLONE_NEWPID) && (p->want & SANDBOX_P_PROC)) {
                if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
                    child_msg(sfd, MSG_SOFT, ST_PROC, errno, 0);
                else
                    prot |= SANDBOX_P_PROC;
            }
        }
    }
#endif
    if (dup2(p->in_fd, 0) < 0 || dup2(p->out_fd, 1) < 0 || dup2(p->err_fd, 2) < 0)
        child_fail(sfd, ST_FDS);
#ifdef __linux__
    if (dup3(sfd, 3, O_CLOEXEC) < 0)
        child_fail(sfd, ST_FDS);
#else
    if (dup2(sfd, 3) < 0 || fcntl(3, F_SETFD, FD_CLOEXEC))
        child_fail(sfd, ST_FDS);
#endif
    sfd = 3;
    close_from(4);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    int ll = -1;
#ifdef __linux__
    if (p->landlock_abi > 0 && (p->want & SANDBOX_P_LANDLOCK_FS))
        ll = ll_build(p, (prot & SANDBOX_P_PROC) != 0);
#endif
    if (chdir(p->dir))
        child_fail(sfd, ST_CHDIR);

    struct rlimit zero = {0, 0};
    if (setrlimit(RLIMIT_CORE, &zero) || setrlimit(RLIMIT_CPU, &p->rl_cpu) ||
        setrlimit(RLIMIT_AS, &p->rl_as) || setrlimit(RLIMIT_FSIZE, &p->rl_fsize) ||
        setrlimit(RLIMIT_NOFILE, &p->rl_nofile) ||
        (p->set_nproc && setrlimit(RLIMIT_NPROC, &p->rl_nproc)))
        child_fail(sfd, ST_RLIMIT);
    prot |= SANDBOX_P_RLIMITS;

    if (p->drop) {
#ifdef __linux__
        /* Raw system calls: glibc's wrappers would try to tell the parent's
         * other threads, which do not exist here. */
#if defined(SYS_setresgid32)
        long sys_setresgid = SYS_setresgid32, sys_setresuid = SYS_setresuid32;
#else
        long sys_setresgid = SYS_setresgid, sys_setresuid = SYS_setresuid;
#endif
        if (syscall(SYS_setgroups, 0, NULL))
            child_fail(sfd, ST_SETGROUPS);
        if (syscall(sys_setresgid, p->gid, p->gid, p->gid))
            child_fail(sfd, ST_SETGID);
        if (syscall(sys_setresuid, p->uid, p->uid, p->uid))
            child_fail(sfd, ST_SETUID);
#else
        if (setgroups(0, NULL))
            child_fail(sfd, ST_SETGROUPS);
        if (setgid(p->gid))
            child_fail(sfd, ST_SETGID);
        if (setuid(p->uid))
            child_fail(sfd, ST_SETUID);
#endif
        if (getuid() != p->uid || geteuid() != p->uid || getgid() != p->gid) {
            errno = EPERM;
            child_fail(sfd, ST_SETUID);
        }
        prot |= SANDBOX_P_UID;
    }
#ifdef __linux__
    /* After the uid change (which clears it): if the parent dies, so do we. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
        prot |= SANDBOX_P_NO_NEW_PRIVS;
    else
        child_msg(sfd, MSG_SOFT, ST_NNP, errno, 0);
    if (ll >= 0) {
        if (syscall(SYS_landlock_restrict_self, ll, 0) == 0) {
            prot |= SANDBOX_P_LANDLOCK_FS;
            if (p->landlock_abi >= 4 && (p->want & SANDBOX_P_LANDLOCK_NET))
                prot |= SANDBOX_P_LANDLOCK_NET;
            if (p->landlock_abi >= 6 && (p->want & SANDBOX_P_LANDLOCK_SCOPE))
                prot |= SANDBOX_P_LANDLOCK_SCOPE;
        } else {
            child_msg(sfd, MSG_SOFT, ST_LL_RESTRICT, errno, 0);
        }
        close(ll);
    }
#endif
    child_msg(sfd, MSG_READY, 0, 0, prot);
    execve(p->exe, p->argv, p->envp);
    child_fail(sfd, ST_EXEC);
}

/* ---- the parent -------------------------------------------------------- */

static int fd_high(int fd)
{
    if (fd < 0 || fd >= 10)
        return fd;
    int h = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    close(fd);
    return h;
}

static int make_pipe(int p[2])
{
    if (pipe(p))
        return -1;
    p[0] = fd_high(p[0]);
    p[1] = fd_high(p[1]);
    if (p[0] < 0 || p[1] < 0)
        return -1;
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static const char *signal_text(int sig)
{
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV";
    case SIGABRT:
        return "SIGABRT";
    case SIGBUS:
        return "SIGBUS";
    case SIGFPE:
        return "SIGFPE";
    case SIGILL:
        return "SIGILL";
    case SIGKILL:
        return "SIGKILL";
    case SIGTERM:
        return "SIGTERM";
    case SIGPIPE:
        return "SIGPIPE";
    case SIGXCPU:
        return "SIGXCPU";
    case SIGXFSZ:
        return "SIGXFSZ";
    default:
        return "a signal";
    }
}

/* Drains what a pipe has now into b, keeping at most cap bytes; returns 1 at
 * end of file, and sets *over when more than cap arrived. */
static int drain(int fd, struct buf *b, size_t cap, int *over)
{
    char chunk[16384];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : 1;
        if (n == 0)
            return 1;
        size_t room = b->len < cap ? cap - b->len : 0;
        size_t keep = (size_t)n < room ? (size_t)n : room;
        if (keep)
            buf_append(b, chunk, keep);
        if ((size_t)n > keep)
            *over = 1;
    }
}

static void append_missing(struct sandbox_result *res, const char *fmt, ...) JB_PRINTF(2, 3);
static void append_missing(struct sandbox_result *res, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (res->missing[0])
        str_lcat(res->missing, "; ", sizeof res->missing);
    str_lcat(res->missing, line, sizeof res->missing);
}

/* clone3() into the probed namespaces, with a pidfd; plain fork() where the
 * kernel has no clone3 (then no namespaces either). */
static pid_t spawn(struct sandbox *sb, const struct child_plan *plan, int *pidfd)
{
    *pidfd = -1;
#if defined(__linux__) && defined(SYS_clone3)
    pid_t cpid = sb_clone3(sb->ns_flags, pidfd);
    if (cpid == 0) {
        child_main(plan);
        _exit(127);
    }
    if (cpid > 0 || errno != ENOSYS)
        return cpid;
    *pidfd = -1;
#endif
    pid_t pid = fork();
    if (pid == 0) {
        child_main(plan);
        _exit(127);
    }
#if defined(__linux__) && defined(SYS_pidfd_open)
    if (pid > 0)
        *pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
    return pid;
}

/* One run. The parent polls the child's stdout, stderr, its setup messages
 * and its pidfd, and wakes at least every SB_DISK_CHECK_S to measure the
 * folder; it kills the process and its group at the timeout, past the output
 * cap, past the disk cap, or when we are asked to stop. Once the child has
 * exited (seen through waitid(WNOWAIT), so its id cannot be reused yet) the
 * rest of its group is killed and the pipes drained for a short grace; with
 * a PID namespace the kernel has already ended everything it started. */
int sandbox_run(struct sandbox *sb, char *const argv[], const char *stdin_name, double timeout_s,
                struct sandbox_result *res, char *err)
{
    if (timeout_s <= 0)
        timeout_s = sb->cfg.timeout_s;
    buf_reset(&res->out);
    buf_reset(&res->err);
    res->exit_code = -1;
    res->signal = res->timed_out = res->output_capped = res->disk_capped = 0;
    res->reason[0] = res->missing[0] = '\0';

    int po[2] = {-1, -1}, pe[2] = {-1, -1}, ps[2] = {-1, -1};
    int in_fd = -1, pidfd = -1, rc = 0;
    if (stdin_name)
        in_fd = openat(sb->dirfd, stdin_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    else
        in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    in_fd = fd_high(in_fd);
    if (in_fd < 0 || make_pipe(po) || make_pipe(pe) || make_pipe(ps)) {
        rc = err_setf(err, JB_ERR_IO, "sandbox: cannot set up pipes or stdin: %s", strerror(errno));
        goto out;
    }

    /* The environment: nothing of ours. */
    char home[FS_PATH_MAX + 8], tmpdir[FS_PATH_MAX + 8];
    snprintf(home, sizeof home, "HOME=%s", sb->dir);
    snprintf(tmpdir, sizeof tmpdir, "TMPDIR=%s", sb->dir);
    char *envp[] = {sb->path_env,
                    home,
                    tmpdir,
                    "LANG=C.UTF-8",
                    "LC_ALL=C.UTF-8",
                    "PYTHONDONTWRITEBYTECODE=1",
                    "PYTHONIOENCODING=utf-8",
                    "PYTHONHASHSEED=0",
                    NULL};

    struct child_plan plan;
    memset(&plan, 0, sizeof plan);
    plan.exe = argv[0];
    plan.argv = argv;
    plan.envp = envp;
    plan.dir = sb->dir;
    plan.in_fd = in_fd;
    plan.out_fd = po[1];
    plan.err_fd = pe[1];
    plan.status_fd = ps[1];
    plan.ns_flags = sb->ns_flags;
    plan.want = sb->want;
    snprintf(plan.uid_map, sizeof plan.uid_map, "%d %d 1\n", (int)geteuid(), (int)geteuid());
    snprintf(plan.gid_map, sizeof plan.gid_map, "%d %d 1\n", (int)getegid(), (int)getegid());
    for (int i = 0; i < sb->n_hide; i++)
        plan.hide[plan.n_hide++] = sb->hide[i];
    plan.drop = sb->drop;
    plan.uid = sb->run_uid;
    plan.gid = sb->run_gid;
    double cpu = sb->cfg.cpu_s > 0 ? sb->cfg.cpu_s : timeout_s + 1;
    plan.rl_cpu.rlim_cur = (rlim_t)(cpu + 0.999);
    plan.rl_cpu.rlim_max = plan.rl_cpu.rlim_cur + 1; /* SIGXCPU first, SIGKILL a second later */
    plan.rl_as.rlim_cur = plan.rl_as.rlim_max = (rlim_t)sb->cfg.mem_bytes;
    plan.rl_fsize.rlim_cur = plan.rl_fsize.rlim_max = (rlim_t)sb->cfg.file_bytes;
    plan.rl_nofile.rlim_cur = plan.rl_nofile.rlim_max = (rlim_t)sb->cfg.max_files;
    plan.rl_nproc.rlim_cur = plan.rl_nproc.rlim_max =
        (rlim_t)(sb->cfg.max_procs + (sb->ns_flags & SB_NEWUSER ? 0 : sb->base_tasks));
    plan.set_nproc = sb->run_uid != 0;
    plan.landlock_abi = sb->landlock_abi;
    for (int i = 0; i < sb->n_ro; i++)
        plan.ro[plan.n_ro++] = sb->ro[i];

    double t0 = jb_clock_s();
    pid_t pid = spawn(sb, &plan, &pidfd);
    int spawn_errno = errno;
    close_fd(&po[1]);
    close_fd(&pe[1]);
    close_fd(&ps[1]);
    close_fd(&in_fd);
    if (pid < 0) {
        rc = err_setf(err, JB_ERR_IO, "sandbox: cannot start a process: %s", strerror(spawn_errno));
        goto out;
    }
    setpgid(pid, pid);

    struct sb_msg msgs[32];
    size_t n_msgs = 0, msg_bytes = 0;
    unsigned char msg_raw[sizeof msgs];
    int out_over = 0, err_over = 0, exited = 0, killed = 0, interrupted = 0;
    double deadline = t0 + timeout_s, next_disk = t0 + SB_DISK_CHECK_S, t_exit = 0, t_kill = 0;
    int status = 0;
    for (;;) {
        double now = jb_clock_s();
        if (!exited && !killed && sig_stop) {
            /* SIGINT/SIGTERM for us: the code is in its own process group,
             * so the terminal's signal did not reach it. */
            interrupted = 1;
            kill(pid, SIGKILL);
            kill(-pid, SIGKILL);
            killed = 1;
            t_kill = now;
        }
        if (!exited && !killed && now >= deadline) {
            res->timed_out = 1;
            kill(pid, SIGKILL);
            kill(-pid, SIGKILL);
            killed = 1;
            t_kill = now;
        }
        if (!exited && !killed && now >= next_disk && (sb->want & SANDBOX_P_DISK)) {
            uint64_t bytes = 0;
            long entries = 0;
            disk_usage(sb->dirfd, 0, &bytes, &entries, sb->cfg.disk_bytes);
            if (bytes > sb->cfg.disk_bytes || entries > SB_DISK_MAX_ENTRIES) {
                res->disk_capped = 1;
                kill(pid, SIGKILL);
                kill(-pid, SIGKILL);
                killed = 1;
                t_kill = now;
            }
            next_disk = now + SB_DISK_CHECK_S;
        }
        if (!exited) {
            siginfo_t si;
            memset(&si, 0, sizeof si);
            if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                si.si_pid == pid) {
                exited = 1;
                t_exit = now;
                /* The group's stragglers go now, while the zombie still holds
                 * its id (with a PID namespace the kernel already did this). */
                kill(-pid, SIGKILL);
            }
        }
        int pipes_open = po[0] >= 0 || pe[0] >= 0;
        if (exited && (!pipes_open || now >= t_exit + SB_GRACE_S))
            break;
        if (killed && now >= t_kill + 5.0)
            break; /* cannot happen with SIGKILL, but never hang the benchmark */

        struct pollfd fds[4];
        int nf = 0, ipo = -1, ipe = -1, ips = -1;
        if (po[0] >= 0) {
            ipo = nf;
            fds[nf++] = (struct pollfd){po[0], POLLIN, 0};
        }
        if (pe[0] >= 0) {
            ipe = nf;
            fds[nf++] = (struct pollfd){pe[0], POLLIN, 0};
        }
        if (ps[0] >= 0) {
            ips = nf;
            fds[nf++] = (struct pollfd){ps[0], POLLIN, 0};
        }
        if (pidfd >= 0 && !exited)
            fds[nf++] = (struct pollfd){pidfd, POLLIN, 0};
        double wait_s = exited ? t_exit + SB_GRACE_S - now : deadline - now;
        if (!exited && !killed && (sb->want & SANDBOX_P_DISK) && next_disk - now < wait_s)
            wait_s = next_disk - now;
        if (pidfd < 0 && !exited && wait_s > 0.02)
            wait_s = 0.02;
        if (killed && wait_s > 0.05)
            wait_s = 0.05;
        int ms = wait_s <= 0 ? 0 : (int)(wait_s * 1000) + 1;
        if (poll(fds, (nfds_t)nf, ms) < 0 && errno != EINTR)
            break;
        if (ipo >= 0 && fds[ipo].revents &&
            drain(po[0], &res->out, sb->cfg.output_bytes, &out_over))
            close_fd(&po[0]);
        if (ipe >= 0 && fds[ipe].revents &&
            drain(pe[0], &res->err, sb->cfg.output_bytes, &err_over))
            close_fd(&pe[0]);
        if (ips >= 0 && fds[ips].revents) {
            ssize_t n = read(ps[0], msg_raw + msg_bytes, sizeof msg_raw - msg_bytes);
            if (n > 0)
                msg_bytes += (size_t)n;
            else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                close_fd(&ps[0]);
            if (msg_bytes == sizeof msg_raw)
                close_fd(&ps[0]);
        }
        if ((out_over || err_over) && !killed && !exited) {
            res->output_capped = 1;
            kill(pid, SIGKILL);
            kill(-pid, SIGKILL);
            killed = 1;
            t_kill = jb_clock_s();
        }
    }
    if (!exited) {
        kill(pid, SIGKILL);
        kill(-pid, SIGKILL);
    }
    res->duration_s = (exited ? t_exit : jb_clock_s()) - t0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    /* Whatever is still buffered (and the status pipe, closed by now). */
    if (po[0] >= 0)
        drain(po[0], &res->out, sb->cfg.output_bytes, &out_over);
    if (pe[0] >= 0)
        drain(pe[0], &res->err, sb->cfg.output_bytes, &err_over);
    if (ps[0] >= 0) {
        ssize_t n;
        while (msg_bytes < sizeof msg_raw &&
               (n = read(ps[0], msg_raw + msg_bytes, sizeof msg_raw - msg_bytes)) > 0)
            msg_bytes += (size_t)n;
    }
    n_msgs = msg_bytes / sizeof(struct sb_msg);
    memcpy(msgs, msg_raw, n_msgs * sizeof(struct sb_msg));

    /* What the child said about its setup. */
    unsigned prot = 0;
    int ready = 0;
    char soft_why[SANDBOX_P_COUNT][112];
    memcpy(soft_why, sb->why, sizeof soft_why);
    for (size_t i = 0; i < n_msgs; i++) {
        const struct sb_msg *m = &msgs[i];
        const char *step = m->step >= 0 && m->step < ST_COUNT ? step_names[m->step] : "?";
        if (m->kind == MSG_READY) {
            ready = 1;
            prot = m->prot;
        } else if (m->kind == MSG_FATAL && m->step == ST_EXEC) {
            snprintf(res->reason, sizeof res->reason, "cannot execute %s: %s", argv[0],
                     strerror(m->err_no));
        } else if (m->kind == MSG_FATAL) {
            rc = err_setf(err, JB_ERR_PERM, "sandbox: could not %s: %s; nothing was run", step,
                          strerror(m->err_no));
        } else if (m->kind == MSG_SOFT) {
            unsigned lost = step_protection(m->step);
            for (int b = 0; b < SANDBOX_P_COUNT; b++)
                if (lost & (1u << b))
                    snprintf(soft_why[b], sizeof soft_why[b], "could not %s (%s)", step,
                             strerror(m->err_no));
        }
    }
    if (!rc && interrupted)
        rc = err_setf(err, JB_ERR_INTERRUPTED, "interrupted");
    if (!rc && !ready && !res->reason[0])
        rc = err_setf(err, JB_ERR_IO, "sandbox: the child ended before its setup was done");
    if (rc)
        goto out;

    res->protections =
        prot | SANDBOX_P_TMPDIR | SANDBOX_P_PGROUP | SANDBOX_P_ENV | (sb->want & SANDBOX_P_DISK);
    unsigned missing = sb->want & ~res->protections;
    for (int b = 0; b < SANDBOX_P_COUNT; b++)
        if (missing & (1u << b))
            append_missing(res, "%s: %s", prot_names[b],
                           soft_why[b][0] ? soft_why[b] : "not in force");
    if (sb->notes[0])
        append_missing(res, "%s", sb->notes);

    if (WIFEXITED(status))
        res->exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        res->signal = WTERMSIG(status);

    if (res->reason[0]) {
        /* exec failed: already said */
    } else if (res->timed_out) {
        snprintf(res->reason, sizeof res->reason, "timed out after %.1f s and was killed",
                 timeout_s);
    } else if (res->output_capped) {
        snprintf(res->reason, sizeof res->reason,
                 "wrote more than %zu KiB of output and was killed", sb->cfg.output_bytes >> 10);
    } else if (res->disk_capped) {
        snprintf(res->reason, sizeof res->reason,
                 "filled its folder past %llu MiB (or %d files) and was killed",
                 (unsigned long long)(sb->cfg.disk_bytes >> 20), SB_DISK_MAX_ENTRIES);
    } else if (res->signal == SIGXCPU || (res->signal == SIGKILL && res->duration_s >= cpu)) {
        snprintf(res->reason, sizeof res->reason, "CPU time limit (%.0f s) exceeded",
                 (double)plan.rl_cpu.rlim_cur);
    } else if (res->signal == SIGXFSZ) {
        snprintf(res->reason, sizeof res->reason, "file size limit (%llu MiB) exceeded",
                 (unsigned long long)(sb->cfg.file_bytes >> 20));
    } else if (res->signal) {
        snprintf(res->reason, sizeof res->reason, "killed by %s (signal %d)",
                 signal_text(res->signal), res->signal);
    } else if (res->exit_code != 0) {
        snprintf(res->reason, sizeof res->reason, "exit status %d", res->exit_code);
    }

out:
    close_fd(&po[0]);
    close_fd(&po[1]);
    close_fd(&pe[0]);
    close_fd(&pe[1]);
    close_fd(&ps[0]);
    close_fd(&ps[1]);
    close_fd(&in_fd);
    close_fd(&pidfd);
    return rc;
}
