#define _XOPEN_SOURCE 700 /* nftw */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/str.h"

extern char **environ;

char *tu_tmpdir(const char *tag)
{
    const char *base = fs_env_or("TMPDIR", "/tmp");
    char path[FS_PATH_MAX];
    snprintf(path, sizeof path, "%s/jbtest-%s-XXXXXX", base, tag);
    if (!mkdtemp(path)) {
        perror("mkdtemp");
        abort();
    }
    return str_dup(path);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

void tu_rmtree_free(char *path)
{
    if (!path)
        return;
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(path);
}

static void mkparents(const char *path)
{
    char tmp[FS_PATH_MAX];
    str_lcpy(tmp, path, sizeof tmp);
    char *slash = strrchr(tmp, '/');
    if (slash) {
        *slash = '\0';
        char err[ERR_LEN];
        if (fs_mkdir_p(tmp, err)) {
            fprintf(stderr, "%s\n", err);
            abort();
        }
    }
}

void tu_write(const char *dir, const char *rel, const char *text)
{
    char path[FS_PATH_MAX];
    fs_path_join(path, sizeof path, dir, rel);
    mkparents(path);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        abort();
    }
    fputs(text, f);
    fclose(f);
}

void tu_symlink(const char *dir, const char *rel, const char *target)
{
    char path[FS_PATH_MAX];
    fs_path_join(path, sizeof path, dir, rel);
    mkparents(path);
    unlink(path);
    if (symlink(target, path)) {
        perror(path);
        abort();
    }
}

int tu_run(char *const argv[], char *const env[], struct buf *out, struct buf *err_out)
{
    return tu_run_in(argv, env, NULL, out, err_out);
}

int tu_run_in(char *const argv[], char *const env[], const char *stdin_path, struct buf *out,
              struct buf *err_out)
{
    int po[2], pe[2];
    if (pipe(po) || pipe(pe))
        abort();
    pid_t pid = fork();
    if (pid < 0)
        abort();
    if (pid == 0) {
        if (stdin_path) {
            int in = open(stdin_path, O_RDONLY);
            if (in < 0 || dup2(in, 0) < 0)
                _exit(126);
            close(in);
        }
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        if (env)
            for (char *const *e = env; *e; e++)
                putenv(*e);
        execv(argv[0], argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP)))
                continue;
            char chunk[4096];
            ssize_t n = read(fds[i].fd, chunk, sizeof chunk);
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
                continue;
            }
            struct buf *b = i == 0 ? out : err_out;
            if (b)
                buf_append(b, chunk, (size_t)n);
        }
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

/* The low 13 bits of FNV-1a's state depend only on the same bits before
 * each byte, so at each of 12 stages two 3-letter blocks that take the
 * common state to the same next state (26^3 blocks into 8192 states:
 * there always are two) double the set. */
static uint32_t fnv_low13(uint32_t h, int c)
{
    return ((h ^ (uint32_t)c) * (uint32_t)0x1b3u) & 8191u; /* the prime's low bits */
}

void tu_colliding_keys(char (*keys)[40])
{
    char blk[12][2][4];
    const uint32_t basis = (uint32_t)(0xcbf29ce484222325ull & 8191u);
    uint32_t state = basis;
    static int seen[8192];
    for (int stage = 0; stage < 12; stage++) {
        for (int i = 0; i < 8192; i++)
            seen[i] = -1;
        int found = 0;
        for (int p = 0; p < 26 * 26 * 26 && !found; p++) {
            int c0 = 'a' + p / 676, c1 = 'a' + p / 26 % 26, c2 = 'a' + p % 26;
            uint32_t next = fnv_low13(fnv_low13(fnv_low13(state, c0), c1), c2);
            if (seen[next] < 0) {
                seen[next] = p;
                continue;
            }
            int q = seen[next];
            snprintf(blk[stage][0], 4, "%c%c%c", 'a' + q / 676, 'a' + q / 26 % 26, 'a' + q % 26);
            snprintf(blk[stage][1], 4, "%c%c%c", c0, c1, c2);
            state = next;
            found = 1;
        }
        if (!found)
            abort();
    }
    for (int i = 0; i < TU_N_COLLIDE; i++) {
        keys[i][0] = '\0';
        for (int stage = 0; stage < 12; stage++)
            strcat(keys[i], blk[stage][(i >> stage) & 1]);
        /* distinct, and in the same slot of the fixed hash */
        uint32_t h = basis;
        for (const char *c = keys[i]; *c; c++)
            h = fnv_low13(h, *c);
        if (h != state || (i > 0 && strcmp(keys[i], keys[i - 1]) == 0))
            abort();
    }
}

int tu_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}
