#include "common/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/str.h"

int fs_errno_code(int e)
{
    switch (e) {
    case EACCES:
    case EPERM:
        return JB_ERR_PERM;
    case ENOENT:
    case ENOTDIR:
    case ENODEV:
    case ENXIO:
        return JB_ERR_NOTFOUND;
    case ENOMEM:
        return JB_ERR_NOMEM;
    case EINTR:
        return JB_ERR_INTERRUPTED;
    default:
        return JB_ERR_IO;
    }
}

int fs_read_file(const char *path, size_t max, struct buf *out, char *err)
{
    if (max == 0)
        max = (size_t)1 << 30;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_setf(err, fs_errno_code(errno), "%s: %s", path, strerror(errno));
    char chunk[65536];
    size_t total = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = err_setf(err, fs_errno_code(errno), "%s: %s", path, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        total += (size_t)n;
        if (total > max) {
            rc = err_setf(err, JB_ERR_NOMEM, "%s: larger than the %zu-byte limit", path, max);
            break;
        }
        if (buf_append(out, chunk, (size_t)n)) {
            rc = err_setf(err, JB_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
    }
    close(fd);
    return rc;
}

static ssize_t finish_small(ssize_t n, char *dst, size_t size)
{
    if (n < 0)
        return fs_errno_code(errno);
    if ((size_t)n >= size)
        n = (ssize_t)size - 1;
    dst[n] = '\0';
    return n;
}

ssize_t fs_read_small(const char *path, char *dst, size_t size)
{
    if (size == 0)
        return JB_ERR_USAGE;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fs_errno_code(errno);
    ssize_t n;
    do
        n = read(fd, dst, size - 1);
    while (n < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    errno = saved;
    return finish_small(n, dst, size);
}

ssize_t fs_pread_small(int fd, char *dst, size_t size)
{
    if (size == 0)
        return JB_ERR_USAGE;
    ssize_t n;
    do
        n = pread(fd, dst, size - 1, 0);
    while (n < 0 && errno == EINTR);
    return finish_small(n, dst, size);
}

int fs_mkdir_p(const char *path, char *err)
{
    char tmp[FS_PATH_MAX];
    if (str_lcpy(tmp, path, sizeof tmp) >= sizeof tmp)
        return err_setf(err, JB_ERR_USAGE, "%s: path too long", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0777) && errno != EEXIST)
            return err_setf(err, fs_errno_code(errno), "cannot create %s: %s", tmp,
                            strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0777) && errno != EEXIST)
        return err_setf(err, fs_errno_code(errno), "cannot create %s: %s", tmp, strerror(errno));
    if (!fs_is_dir(tmp))
        return err_setf(err, JB_ERR_IO, "%s exists and is not a folder", tmp);
    return 0;
}

int fs_write_atomic(const char *path, const void *data, size_t len, char *err)
{
    char tmp[FS_PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return err_setf(err, JB_ERR_USAGE, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return err_setf(err, fs_errno_code(errno), "cannot write %s: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t n = write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            return err_setf(err, fs_errno_code(e), "cannot write %s: %s", tmp, strerror(e));
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) || close(fd)) {
        int e = errno;
        unlink(tmp);
        return err_setf(err, fs_errno_code(e), "cannot write %s: %s", tmp, strerror(e));
    }
    if (rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        return err_setf(err, fs_errno_code(e), "cannot replace %s: %s", path, strerror(e));
    }
    return 0;
}

int fs_path_join(char *dst, size_t size, const char *a, const char *b)
{
    size_t la = strlen(a);
    const char *sep = (la && a[la - 1] == '/') ? "" : "/";
    int n = snprintf(dst, size, "%s%s%s", a, sep, b);
    if (n < 0 || (size_t)n >= size)
        return JB_ERR_NOMEM;
    return 0;
}

int fs_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int fs_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *fs_env_or(const char *var, const char *def)
{
    const char *v = getenv(var);
    return (v && *v) ? v : def;
}

int fs_map_file(const char *path, struct fs_map *out, char *err)
{
    out->data = NULL;
    out->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_setf(err, fs_errno_code(errno), "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        return err_setf(err, fs_errno_code(e), "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_setf(err, JB_ERR_USAGE, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return err_setf(err, JB_ERR_FORMAT, "%s: empty file", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return err_setf(err, fs_errno_code(e), "%s: cannot map: %s", path, strerror(e));
    out->data = p;
    out->size = (size_t)st.st_size;
    return 0;
}

void fs_unmap(struct fs_map *m)
{
    if (m->data)
        munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}
