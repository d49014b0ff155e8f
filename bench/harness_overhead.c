/*
 * harness_overhead — what the client side of a measurement costs: CPU time
 * and peak RSS of this process while it streams N tokens at R tokens/s from
 * the fake server running as a separate process (jb-fakeserver), so that
 * the server's own CPU is not counted.
 *
 *   harness_overhead [--tokens N] [--rate R] [--engine ollama|openai|both]
 *                    [--fakeserver PATH] [--python SCRIPT] [--floor] [--json]
 *
 * Targets (issue 3): at most 0.5 % of one core and at most 16 MB of peak
 * RSS. Exit status 0 when every engine run meets both, 1 otherwise, 2 for
 * bad usage. --python runs bench/harness_overhead_ref.py (the reference
 * workflow's way: a Python loop over the streamed lines) against the same
 * server, for comparison; --floor reads the same stream twice more: through
 * the HTTP layer over libcurl with a body callback that only counts bytes
 * (what the transport costs before a line is read), and with bare poll()
 * and recv() (no HTTP, no JSON: what one wake-up per token costs on this
 * machine at all). None of these decides the exit status.
 *
 * The client here is the engine layer alone (engine->generate with an
 * on_token that counts); the runner's meter windows and record writing
 * come on top of it and have their own budget.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/str.h"
#include "engines/engine.h"
#include "engines/http.h"
#include "fakeserver.h"
#include "joulebench/joulebench.h"

#define TARGET_CPU_PCT 0.5
#define TARGET_RSS_MB 16.0

struct figures {
    const char *engine;
    long tokens;
    double wall_s, cpu_s, user_s, sys_s, cpu_pct, us_per_token, rss_mb;
    int status;
};

/* CPU seconds of this process so far, user and system apart. */
static void cpu_now_s(double *user_s, double *sys_s)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6;
    *sys_s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
#ifdef __APPLE__
    return (double)ru.ru_maxrss / (1024.0 * 1024.0); /* bytes */
#else
    return (double)ru.ru_maxrss / 1024.0; /* KiB */
#endif
}

/* The figures of one run from its wall clock and CPU readings; per_token
 * divides the CPU time (the tokens the run saw). */
static void set_figures(struct figures *f, long per_token, double t0, double t1, double u0,
                        double s0, double u1, double s1)
{
    f->wall_s = t1 - t0;
    f->user_s = u1 - u0;
    f->sys_s = s1 - s0;
    f->cpu_s = f->user_s + f->sys_s;
    f->cpu_pct = f->wall_s > 0 ? 100.0 * f->cpu_s / f->wall_s : NAN;
    f->us_per_token = per_token > 0 ? 1e6 * f->cpu_s / (double)per_token : NAN;
    f->rss_mb = peak_rss_mb();
}

static int count_token(void *user, const char *piece, size_t len, double t_s)
{
    (void)piece;
    (void)len;
    (void)t_s;
    (*(long *)user)++;
    return 0;
}

/* One streamed request through the engine layer, measured from just
 * before generate() to just after it. */
static int run_engine(const char *engine, const char *url, long tokens, struct figures *f)
{
    memset(f, 0, sizeof *f);
    f->engine = engine;
    struct engine_config cfg = {.name = engine, .url = url, .timeout_s = 30};
    struct engine *e;
    char err[ERR_LEN];
    int rc = engine_open(&e, &cfg, err);
    if (rc) {
        fprintf(stderr, "harness_overhead: %s\n", err);
        return rc;
    }
    struct engine_request req = {.model = "fake:latest",
                                 .prompt = "Write a long story about a lighthouse keeper.",
                                 .max_tokens = (int)tokens,
                                 .temperature = 0,
                                 .top_p = NAN,
                                 .has_seed = 1,
                                 .seed = 42};
    struct engine_result res;
    engine_result_init(&res);
    long seen = 0;
    double u0, s0, u1, s1;
    cpu_now_s(&u0, &s0);
    double t0 = jb_clock_s();
    rc = e->ops->generate(e, &req, count_token, &seen, &res);
    double t1 = jb_clock_s();
    cpu_now_s(&u1, &s1);
    f->status = rc;
    f->tokens = res.output_tokens;
    set_figures(f, seen, t0, t1, u0, s0, u1, s1);
    if (rc) {
        fprintf(stderr, "harness_overhead: %s: %s\n", engine, res.error);
    } else if (seen != tokens || res.output_tokens != tokens) {
        fprintf(stderr, "harness_overhead: %s: expected %ld tokens, saw %ld (server said %ld)\n",
                engine, tokens, seen, res.output_tokens);
        rc = f->status = JB_ERR_FORMAT;
    }
    engine_result_free(&res);
    engine_close(e);
    return rc;
}

/* The floor: the same stream read with nothing but poll() and recv() on a
 * plain socket, no HTTP parsing, no JSON. What the kernel charges this
 * process for one wake-up per token on this machine; the engine layer's own
 * cost is what it adds above this. */
static int run_floor(int port, long tokens, struct figures *f)
{
    memset(f, 0, sizeof *f);
    f->engine = "floor";
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
        perror("harness_overhead: floor: connect");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char body[256], req[512];
    int blen = snprintf(body, sizeof body,
                        "{\"model\":\"fake:latest\",\"prompt\":\"hi\",\"options\":"
                        "{\"num_predict\":%ld}}",
                        tokens);
    int rlen = snprintf(req, sizeof req,
                        "POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                        blen, body);
    double u0, s0, u1, s1;
    cpu_now_s(&u0, &s0);
    double t0 = jb_clock_s();
    if (send(fd, req, (size_t)rlen, 0) != rlen) {
        close(fd);
        return -1;
    }
    char chunk[16384];
    long reads = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 30000) <= 0)
            break;
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0)
            break;
        reads++;
    }
    double t1 = jb_clock_s();
    cpu_now_s(&u1, &s1);
    close(fd);
    f->tokens = reads;
    set_figures(f, tokens, t0, t1, u0, s0, u1, s1);
    return 0;
}

static int count_bytes(void *user, const char *data, size_t len, double t_s, char *err)
{
    (void)data;
    (void)t_s;
    (void)err;
    *(long *)user += (long)len;
    return 0;
}

/* The same stream through joulebench's HTTP layer over libcurl with a body
 * callback that only counts bytes: no line splitting, no JSON. What the
 * transport costs per token before the engine reads a single line. */
static int run_http_only(const char *url, long tokens, struct figures *f)
{
    memset(f, 0, sizeof *f);
    f->engine = "libcurl";
    struct http_options opt = {.idle_timeout_s = 30};
    struct http_client *c;
    char err[ERR_LEN], full[256], body[256];
    if (http_client_open(&c, &opt, err)) {
        fprintf(stderr, "harness_overhead: %s\n", err);
        return -1;
    }
    http_join(full, sizeof full, url, "/api/generate");
    snprintf(body, sizeof body,
             "{\"model\":\"fake:latest\",\"prompt\":\"hi\",\"options\":{\"num_predict\":%ld}}",
             tokens);
    long bytes = 0, status = 0;
    double u0, s0, u1, s1;
    cpu_now_s(&u0, &s0);
    double t0 = jb_clock_s();
    int rc = http_request(c, full, body, count_bytes, &bytes, &status, NULL, err);
    double t1 = jb_clock_s();
    cpu_now_s(&u1, &s1);
    http_client_close(c);
    if (rc || bytes < tokens) {
        fprintf(stderr, "harness_overhead: libcurl: %s\n",
                rc ? err : "the stream was shorter than one byte a token");
        return -1;
    }
    f->tokens = tokens;
    set_figures(f, tokens, t0, t1, u0, s0, u1, s1);
    return 0;
}

/* The Python reference prints one JSON line with its own figures. */
static int run_python(const char *script, const char *url, long tokens, struct buf *out)
{
    int p[2];
    if (pipe(p))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        char ntok[32];
        snprintf(ntok, sizeof ntok, "%ld", tokens);
        execlp("python3", "python3", script, url, ntok, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char chunk[1024];
    ssize_t n;
    while ((n = read(p[0], chunk, sizeof chunk)) > 0)
        buf_append(out, chunk, (size_t)n);
    close(p[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int usage(void)
{
    fprintf(stderr, "usage: harness_overhead [--tokens N] [--rate R] [--engine ollama|openai|both]"
                    " [--fakeserver PATH] [--python SCRIPT] [--floor] [--json]\n");
    return 2;
}

int main(int argc, char **argv)
{
    int tokens = 3000;
    double rate = 100;
    const char *which = "ollama";
    const char *server = JB_FAKESERVER;
    const char *python = NULL;
    int json = 0, floor_run = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        }
        if (strcmp(a, "--floor") == 0) {
            floor_run = 1;
            continue;
        }
        if (!v)
            return usage();
        i++;
        if (strcmp(a, "--tokens") == 0) {
            if (str_to_int_range(v, 1, 10000000, &tokens))
                return usage();
        } else if (strcmp(a, "--rate") == 0) {
            if (str_to_double(v, (size_t)-1, &rate) || rate <= 0)
                return usage();
        } else if (strcmp(a, "--engine") == 0) {
            which = v;
        } else if (strcmp(a, "--fakeserver") == 0) {
            server = v;
        } else if (strcmp(a, "--python") == 0) {
            python = v;
        } else {
            return usage();
        }
    }
    const char *engines[2];
    int n_engines = 0;
    if (strcmp(which, "ollama") == 0 || strcmp(which, "both") == 0)
        engines[n_engines++] = "ollama";
    if (strcmp(which, "openai") == 0 || strcmp(which, "both") == 0)
        engines[n_engines++] = "openai";
    if (!n_engines)
        return usage();

    char script[128];
    snprintf(script, sizeof script, "{\"tokens\": %d, \"tokens_per_s\": %g}", tokens, rate);
    struct fakeserver_proc proc;
    char err[ERR_LEN];
    if (fakeserver_spawn(&proc, server, script, err)) {
        fprintf(stderr, "harness_overhead: %s\n", err);
        return 1;
    }
    int failed = 0;
    struct figures f[2], fl, fh;
    for (int i = 0; i < n_engines; i++) {
        if (!json)
            fprintf(stderr, "streaming %d tokens at %g tokens/s from %s (%s)...\n", tokens, rate,
                    proc.url, engines[i]);
        if (run_engine(engines[i], proc.url, tokens, &f[i]))
            failed = 1;
        else if (f[i].cpu_pct > TARGET_CPU_PCT || f[i].rss_mb > TARGET_RSS_MB)
            failed = 1;
    }
    int floor_rc = -1, http_rc = -1;
    if (floor_run) {
        http_rc = run_http_only(proc.url, tokens, &fh);
        floor_rc = run_floor(proc.port, tokens, &fl);
    }
    struct buf py = {0};
    int py_rc = -1;
    if (python)
        py_rc = run_python(python, proc.url, tokens, &py);
    fakeserver_proc_stop(&proc);

    if (json) {
        printf("{\"tokens\": %d, \"rate_tokens_per_s\": %g, \"target_cpu_pct\": %g, "
               "\"target_rss_mb\": %g, \"runs\": [",
               tokens, rate, TARGET_CPU_PCT, TARGET_RSS_MB);
        for (int i = 0; i < n_engines; i++)
            printf("%s{\"engine\": \"%s\", \"ok\": %s, \"wall_s\": %.3f, \"cpu_s\": %.4f, "
                   "\"user_s\": %.4f, \"sys_s\": %.4f, \"cpu_pct_of_one_core\": %.4f, "
                   "\"cpu_us_per_token\": %.2f, \"peak_rss_mb\": %.2f}",
                   i ? ", " : "", f[i].engine, f[i].status ? "false" : "true", f[i].wall_s,
                   f[i].cpu_s, f[i].user_s, f[i].sys_s, f[i].cpu_pct, f[i].us_per_token,
                   f[i].rss_mb);
        if (floor_rc == 0)
            printf("], \"floor\": {\"cpu_s\": %.4f, \"cpu_pct_of_one_core\": %.4f, "
                   "\"cpu_us_per_token\": %.2f, \"reads\": %ld}",
                   fl.cpu_s, fl.cpu_pct, fl.us_per_token, fl.tokens);
        else
            printf("], \"floor\": null");
        if (http_rc == 0)
            printf(", \"libcurl_only\": {\"cpu_s\": %.4f, \"cpu_pct_of_one_core\": %.4f, "
                   "\"cpu_us_per_token\": %.2f}",
                   fh.cpu_s, fh.cpu_pct, fh.us_per_token);
        else
            printf(", \"libcurl_only\": null");
        printf(", \"python_reference\": %s}\n", py_rc == 0 && py.len ? str_trim(py.data) : "null");
    } else {
        printf("harness overhead: %d tokens at %g tokens/s, server in a separate process\n", tokens,
               rate);
        printf("%-8s %8s %8s %8s %8s %10s %12s %9s  %s\n", "engine", "wall_s", "cpu_s", "user_s",
               "sys_s", "cpu_%core", "cpu_us/tok", "peak_MB", "targets (<= 0.5 %, <= 16 MB)");
        for (int i = 0; i < n_engines; i++)
            printf("%-8s %8.2f %8.4f %8.4f %8.4f %10.4f %12.2f %9.2f  %s\n", f[i].engine,
                   f[i].wall_s, f[i].cpu_s, f[i].user_s, f[i].sys_s, f[i].cpu_pct,
                   f[i].us_per_token, f[i].rss_mb,
                   f[i].status                                                      ? "ERROR"
                   : f[i].cpu_pct <= TARGET_CPU_PCT && f[i].rss_mb <= TARGET_RSS_MB ? "met"
                                                                                    : "MISSED");
        if (http_rc == 0)
            printf("%-8s %8.2f %8.4f %8.4f %8.4f %10.4f %12.2f %9s  %s\n", "libcurl", fh.wall_s,
                   fh.cpu_s, fh.user_s, fh.sys_s, fh.cpu_pct, fh.us_per_token, "-",
                   "the HTTP layer over libcurl, body bytes counted, no lines, no JSON");
        if (floor_rc == 0)
            printf("%-8s %8.2f %8.4f %8.4f %8.4f %10.4f %12.2f %9s  %s\n", "floor", fl.wall_s,
                   fl.cpu_s, fl.user_s, fl.sys_s, fl.cpu_pct, fl.us_per_token, "-",
                   "bare poll()+recv(), no HTTP, no JSON: this machine's cost of a wake-up");
        if (python) {
            if (py_rc == 0 && py.len)
                printf("python reference: %s\n", str_trim(py.data));
            else
                printf("python reference: could not run %s (exit %d)\n", python, py_rc);
        }
    }
    buf_free(&py);
    return failed ? 1 : 0;
}
