/* Starting and stopping jb-fakeserver as a child process. */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/str.h"
#include "fakeserver.h"
#include "joulebench/joulebench.h"

/* Reads the child's first stdout line (its port) within 10 s. */
static int read_port(int fd, int *port, char *err)
{
    char line[32];
    size_t n = 0;
    double deadline = jb_clock_s() + 10.0;
    while (n < sizeof line - 1) {
        int left_ms = (int)((deadline - jb_clock_s()) * 1000.0);
        if (left_ms <= 0)
            return err_setf(err, JB_ERR_TIMEOUT, "jb-fakeserver did not print its port in 10 s");
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, left_ms) <= 0)
            continue;
        ssize_t r = read(fd, line + n, 1);
        if (r <= 0)
            return err_setf(err, JB_ERR_IO, "jb-fakeserver exited before printing its port");
        if (line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    if (str_to_int_range(line, 1, 65535, port))
        return err_setf(err, JB_ERR_FORMAT, "jb-fakeserver printed '%s', not a port", line);
    return 0;
}

int fakeserver_spawn(struct fakeserver_proc *p, const char *exe, const char *script_json, char *err)
{
    return fakeserver_spawn_port(p, exe, 0, script_json, err);
}

int fakeserver_spawn_port(struct fakeserver_proc *p, const char *exe, int port,
                          const char *script_json, char *err)
{
    memset(p, 0, sizeof *p);
    p->pid = -1;
    p->stdin_fd = -1;
    /* close-on-exec: a joulebench the test starts later must not hold the
     * server's stdin open (the server ends when it closes) */
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC))
        return err_setf(err, JB_ERR_IO, "pipe: %s", strerror(errno));
    if (pipe2(out, O_CLOEXEC)) {
        close(in[0]);
        close(in[1]);
        return err_setf(err, JB_ERR_IO, "pipe: %s", strerror(errno));
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        return err_setf(err, JB_ERR_IO, "fork: %s", strerror(e));
    }
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        char port_s[16];
        snprintf(port_s, sizeof port_s, "%d", port);
        char *argv[] = {(char *)exe, "--stdin-eof",
                        "--json",    (char *)(script_json && *script_json ? script_json : "{}"),
                        "--port",    port_s,
                        NULL};
        execv(exe, argv);
        fprintf(stderr, "cannot run %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    p->pid = pid;
    p->stdin_fd = in[1];
    int rc = read_port(out[0], &p->port, err);
    close(out[0]);
    if (rc) {
        fakeserver_proc_stop(p);
        return rc;
    }
    snprintf(p->url, sizeof p->url, "http://127.0.0.1:%d", p->port);
    return 0;
}

int fakeserver_proc_stop(struct fakeserver_proc *p)
{
    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    if (p->stdin_fd >= 0)
        close(p->stdin_fd);
    p->stdin_fd = -1;
    int status = 0;
    while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
        ;
    p->pid = -1;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM)
        return 0;
    return 128 + WTERMSIG(status);
}
