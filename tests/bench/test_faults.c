/* Fault injection on `joulebench run`, each test asserting what is kept on
 * disk afterwards: the server killed mid-stream and started again, a
 * sensor that vanishes mid-run, a file-size limit on the output, SIGINT,
 * SIGTERM and SIGKILL at random points, and run directories written by a
 * newer or an older joulebench. The tool runs in its own process, as a
 * user runs it, against the fake server (tests/support/fakeserver.h) and
 * fixture RAPL counters (tests/support/fixture_sysfs.h).
 *
 * The random points come from a seed printed by each test; set
 * JB_FAULT_SEED to replay one. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "bench/record.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/str.h"
#include "common/timeutil.h"
#include "fakeserver.h"
#include "fixture_sysfs.h"
#include "testutil.h"

#define PKG_W 20.0
#define CORE_W 12.0
#define DRAM_W 3.0
#define FAKESERVER JB_BUILD_DIR "/jb-fakeserver"

/* ---- the rig: fixture counters, a folder, the tool's environment ---- */

struct rig {
    struct fx_sysfs *fx;
    int pkg, core, dram;
    char *dir;
    char out[4200];
    char env_sys[4200], env_proc[4200], env_cache[4200];
};

static void rig_start(struct rig *r)
{
    memset(r, 0, sizeof *r);
    r->fx = fx_new("faults");
    r->pkg = fx_rapl_zone(r->fx, "intel-rapl:0", "package-0", 1000, 0);
    r->core = fx_rapl_zone(r->fx, "intel-rapl:0:0", "core", 0, 0);
    r->dram = fx_rapl_zone(r->fx, "intel-rapl:0:1", "dram", 0, 0);
    fx_set_watts(r->fx, r->pkg, PKG_W);
    fx_set_watts(r->fx, r->core, CORE_W);
    fx_set_watts(r->fx, r->dram, DRAM_W);
    fx_start(r->fx, 500);
    r->dir = tu_tmpdir("faults");
    snprintf(r->out, sizeof r->out, "%s/run", r->dir);
    snprintf(r->env_sys, sizeof r->env_sys, "JOULEBENCH_SYSFS_ROOT=%s", fx_sysfs_root(r->fx));
    snprintf(r->env_proc, sizeof r->env_proc, "JOULEBENCH_PROCFS_ROOT=%s", fx_procfs_root(r->fx));
    snprintf(r->env_cache, sizeof r->env_cache, "XDG_CACHE_HOME=%s", r->dir);
}

static void rig_stop(struct rig *r)
{
    fx_free(r->fx);
    tu_rmtree_free(r->dir);
}

/* A seed for the random points: JB_FAULT_SEED, else the clock; printed so
 * a failure can be replayed. */
static unsigned fault_seed(const char *test)
{
    const char *env = getenv("JB_FAULT_SEED");
    uint64_t v;
    unsigned seed = env && str_to_u64(env, strlen(env), &v) == 0
                        ? (unsigned)v
                        : (unsigned)time(NULL) ^ (unsigned)getpid();
    printf("%s: JB_FAULT_SEED=%u\n", test, seed);
    return seed;
}

/* ---- running the tool in the background ---- */

struct child {
    pid_t pid;
    char out_path[4300], err_path[4300];
};

/* Starts joulebench with args (NULL-terminated, without argv[0]), stdout and
 * stderr into files in the rig's folder, stdin from stdin_path (NULL:
 * /dev/null). fsize_limit > 0 sets RLIMIT_FSIZE (bytes) on the child. */
static void spawn_in(struct rig *r, const char *const *args, long fsize_limit,
                     const char *stdin_path, struct child *c)
{
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)JB_TOOL;
    for (; *args && n < 63; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    static unsigned k;
    k++;
    snprintf(c->out_path, sizeof c->out_path, "%s/stdout-%u", r->dir, k);
    snprintf(c->err_path, sizeof c->err_path, "%s/stderr-%u", r->dir, k);
    fflush(stdout);
    fflush(stderr);
    c->pid = fork();
    assert_true(c->pid >= 0);
    if (c->pid == 0) {
        int fo = open(c->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(c->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fi = open(stdin_path ? stdin_path : "/dev/null", O_RDONLY);
        if (fo < 0 || fe < 0 || fi < 0)
            _exit(126);
        dup2(fi, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        close(fi);
        close(fo);
        close(fe);
        if (fsize_limit > 0) {
            struct rlimit rl = {(rlim_t)fsize_limit, (rlim_t)fsize_limit};
            if (setrlimit(RLIMIT_FSIZE, &rl))
                _exit(126);
        }
        putenv(r->env_sys);
        putenv(r->env_proc);
        putenv(r->env_cache);
        putenv("NO_COLOR=1");
        execv(argv[0], argv);
        _exit(127);
    }
}

static void spawn(struct rig *r, const char *const *args, long fsize_limit, struct child *c)
{
    spawn_in(r, args, fsize_limit, NULL, c);
}

/* Waits for the child at most timeout_s; returns its exit code, or 128 +
 * the signal that ended it. A child still running then is killed and the
 * test fails. */
static int wait_child(struct child *c, double timeout_s)
{
    double end = jb_clock_s() + timeout_s;
    int status;
    for (;;) {
        pid_t w = waitpid(c->pid, &status, WNOHANG);
        if (w == c->pid)
            break;
        if (w < 0 && errno != EINTR)
            fail_msg("waitpid: %s", strerror(errno));
        if (jb_clock_s() > end) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &status, 0);
            fail_msg("joulebench still ran after %.0f s (stderr in %s)", timeout_s, c->err_path);
        }
        usleep(2000);
    }
    c->pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char *slurp(const char *path)
{
    struct buf b = {0};
    char err[ERR_LEN];
    if (fs_read_file(path, 0, &b, err))
        return str_dup("");
    return buf_take(&b);
}

static char *file_in(const char *dir, const char *name)
{
    static char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

/* ---- what is on disk ---- */

struct jsonl {
    json_t *recs;   /* the whole lines, parsed, in order */
    int torn;       /* the file ends in a line without its newline */
    size_t n_lines; /* whole lines */
};

/* Reads requests.jsonl: every whole line must be a JSON object; a last
 * piece without a newline is a torn line, allowed only when allow_torn. */
static void read_jsonl(const char *dir, int allow_torn, struct jsonl *out)
{
    memset(out, 0, sizeof *out);
    out->recs = json_array();
    char *text = slurp(file_in(dir, "requests.jsonl"));
    char *p = text;
    while (*p) {
        char *nl = strchr(p, '\n');
        if (!nl) {
            out->torn = 1;
            if (!allow_torn)
                fail_msg("requests.jsonl ends in a torn line: '%.80s'", p);
            break;
        }
        json_error_t je;
        json_t *rec = json_loadb(p, (size_t)(nl - p), 0, &je);
        if (!json_is_object(rec))
            fail_msg("requests.jsonl line %zu is not a JSON object (%s): '%.80s'", out->n_lines + 1,
                     je.text, p);
        json_array_append_new(out->recs, rec);
        out->n_lines++;
        p = nl + 1;
    }
    free(text);
}

static json_t *read_run_json(const char *dir)
{
    json_error_t je;
    json_t *run = json_load_file(file_in(dir, "run.json"), 0, &je);
    if (!json_is_object(run))
        fail_msg("%s/run.json: %s (line %d)", dir, je.text, je.line);
    return run;
}

static const char *run_status(json_t *run)
{
    const char *s = json_string_value(json_object_get(run, "status"));
    return s ? s : "";
}

/* Records that are measured requests (not the load, not warm-ups). */
static size_t measured(json_t *recs, size_t *failed)
{
    size_t i, n = 0;
    json_t *rec;
    *failed = 0;
    json_array_foreach(recs, i, rec)
    {
        if (json_is_true(json_object_get(rec, "warmup")))
            continue;
        n++;
        if (!json_is_null(json_object_get(rec, "error")))
            (*failed)++;
    }
    return n;
}

/* `joulebench report DIR` on what a run left: exit code, stderr. */
static int report(struct rig *r, const char *dir, struct buf *err_out)
{
    char *argv[] = {(char *)JB_TOOL, "report", (char *)dir, NULL};
    char *env[] = {"NO_COLOR=1", NULL};
    struct buf out = {0};
    buf_reset(err_out);
    int rc = tu_run(argv, env, &out, err_out);
    buf_free(&out);
    (void)r;
    return rc;
}

static int lines_of(const char *dir)
{
    char *text = slurp(file_in(dir, "requests.jsonl"));
    int n = 0;
    for (char *p = text; *p; p++)
        n += *p == '\n';
    free(text);
    return n;
}

/* ---- the server dies mid-stream and comes back ---- */

/* The server is killed (SIGKILL, as a crash or the OOM killer would) while
 * it streams an answer, and started again on the same port a moment later,
 * as a service manager would. The request in flight is lost, with what it
 * had received; the run waits for the server and goes on; every other
 * request succeeds. */
/* Starts `joulebench run` (reps repetitions, warmup warm-ups) against a
 * fake server that takes 1.5 s an answer, waits until requests.jsonl has
 * after_lines lines, then half a second more (so the kill lands
 * mid-stream however slow the machine is between two requests), kills the
 * server with SIGKILL and starts it again on the same port 0.7 s later.
 * Returns joulebench's exit code and its stderr (heap); *lines_before is
 * the line count at the kill. */
static int run_with_server_crash(struct rig *r, const char *reps, const char *warmup,
                                 int after_lines, struct fakeserver_proc *srv, int *lines_before,
                                 char **errtext)
{
    const char *script = "{\"flavour\": \"ollama\", \"tokens\": 30, \"tokens_per_s\": 20}";
    char err[ERR_LEN];
    assert_int_equal(fakeserver_spawn_port(srv, FAKESERVER, 0, script, err), 0);
    int port = srv->port;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    const char *args[] = {"run",      "-e", "ollama", "--url", url,        "-m",   "fake:latest",
                          "--prompt", "a",  "--reps", reps,    "--warmup", warmup, "--baseline",
                          "0",        "-o", r->out,   "-q",    NULL};
    struct child c;
    spawn(r, args, 0, &c);
    double end = jb_clock_s() + 30;
    while (lines_of(r->out) < after_lines && jb_clock_s() < end)
        usleep(2000);
    assert_true(lines_of(r->out) >= after_lines);
    usleep(500000);
    *lines_before = lines_of(r->out);
    kill(srv->pid, SIGKILL);
    waitpid(srv->pid, NULL, 0);
    close(srv->stdin_fd);
    /* Down for a moment: a restart is not instant. */
    usleep(700000);
    assert_int_equal(fakeserver_spawn_port(srv, FAKESERVER, port, script, err), 0);
    int rc = wait_child(&c, 60);
    *errtext = slurp(c.err_path);
    return rc;
}

static void test_server_killed_and_restarted(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r);
    /* The load and two requests are on disk when the third is cut. */
    struct fakeserver_proc srv;
    int before;
    char *errtext;
    int rc = run_with_server_crash(&r, "5", "0", 3, &srv, &before, &errtext);
    if (rc != 1)
        fail_msg("exit %d (1: finished, some failed)\nstderr: %s", rc, errtext);

    struct jsonl j;
    read_jsonl(r.out, 0, &j);
    size_t failed;
    size_t n = measured(j.recs, &failed);
    /* Every planned request has its record; only the one in flight (and at
     * most one more that met the closed port) failed. */
    if (n != 5 || failed < 1 || failed > 2)
        fail_msg("%zu measured, %zu failed (killed after %d lines)\nstderr: %s", n, failed, before,
                 errtext);
    /* the first failed record is the one that was streaming: what it
     * received before the kill is kept and measured */
    json_t *cut = NULL, *rec;
    size_t i, cut_at = 0;
    json_array_foreach(j.recs, i, rec)
    {
        if (!cut && !json_is_null(json_object_get(rec, "error"))) {
            cut = rec;
            cut_at = i;
        }
    }
    assert_non_null(cut);
    if (json_integer_value(json_object_get(cut, "output_tokens")) <= 0)
        fail_msg("record %zu (killed after %d lines) kept no tokens\nstderr: %s", cut_at, before,
                 errtext);
    assert_true(json_is_number(json_object_get(cut, "total_j")));
    /* The restarted server had no model loaded: joulebench loaded it again
     * (a load record after the cut), so no measured request paid the load. */
    size_t loads_after = 0;
    json_array_foreach(j.recs, i, rec)
    {
        if (i > cut_at && json_is_true(json_object_get(rec, "load")) &&
            json_is_true(json_object_get(rec, "warmup")))
            loads_after++;
        if (!json_is_true(json_object_get(rec, "warmup")))
            assert_false(json_is_true(json_object_get(rec, "load")));
    }
    assert_int_equal(loads_after, 1);
    json_t *last = json_array_get(j.recs, json_array_size(j.recs) - 1);
    assert_true(json_is_null(json_object_get(last, "error")));
    json_t *run = read_run_json(r.out);
    assert_string_equal(run_status(run), "complete");
    /* the failed request is reported as failed */
    char *summary = slurp(file_in(r.out, "summary.md"));
    assert_non_null(strstr(summary, "fail"));
    free(summary);
    json_decref(run);
    json_decref(j.recs);
    free(errtext);
    fakeserver_proc_stop(&srv);
    rig_stop(&r);
}

/* The server dies during a model's warm-up and comes back: the fault costs
 * that warm-up and the request it was for, not the rest of the model's
 * requests. The model is loaded and warmed up again, and measured. */
static void test_server_killed_in_warmup(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r);
    /* The load record is on disk; the warm-up is cut. */
    struct fakeserver_proc srv;
    int before;
    char *errtext;
    int rc = run_with_server_crash(&r, "3", "1", 1, &srv, &before, &errtext);
    assert_int_equal(before, 1);
    if (rc != 1)
        fail_msg("exit %d (1: finished, some failed)\nstderr: %s", rc, errtext);
    struct jsonl j;
    read_jsonl(r.out, 0, &j);
    size_t failed;
    size_t n = measured(j.recs, &failed);
    /* the first of the 3 planned requests went with the warm-up; the
     * other two were measured after a second load and warm-up */
    if (n != 2 || failed != 0)
        fail_msg("%zu measured, %zu failed\nstderr: %s", n, failed, errtext);
    size_t loads = 0;
    size_t i;
    json_t *rec;
    json_array_foreach(j.recs, i, rec) loads += json_is_true(json_object_get(rec, "load"));
    assert_int_equal(loads, 2);
    json_t *warm = json_array_get(j.recs, 1);
    assert_true(json_is_true(json_object_get(warm, "warmup")));
    assert_false(json_is_null(json_object_get(warm, "error")));
    json_decref(j.recs);
    free(errtext);
    fakeserver_proc_stop(&srv);
    rig_stop(&r);
}

/* The server dies and never comes back: the run does not spend its
 * remaining requests on a dead port. It waits, then stops with a clear
 * message, keeping every record and the report. */
static void test_server_gone_for_good(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r);
    const char *script = "{\"flavour\": \"ollama\", \"tokens\": 20, \"tokens_per_s\": 100}";
    struct fakeserver_proc srv;
    char err[ERR_LEN];
    assert_int_equal(fakeserver_spawn_port(&srv, FAKESERVER, 0, script, err), 0);
    const char *args[] = {
        "run",    "-e",  "ollama",   "--url", srv.url,      "-m", "fake:latest",   "--prompt", "a",
        "--reps", "200", "--warmup", "0",     "--baseline", "0",  "--server-wait", "1",        "-o",
        r.out,    "-q",  NULL};
    struct child c;
    spawn(&r, args, 0, &c);
    double end = jb_clock_s() + 20;
    while (lines_of(r.out) < 3 && jb_clock_s() < end)
        usleep(2000);
    usleep(80000);
    kill(srv.pid, SIGKILL);
    waitpid(srv.pid, NULL, 0);
    close(srv.stdin_fd);
    double t_kill = jb_clock_s();
    int rc = wait_child(&c, 60);
    double took = jb_clock_s() - t_kill;
    char *errtext = slurp(c.err_path);
    if (rc != 1)
        fail_msg("exit %d\nstderr: %s", rc, errtext);
    /* it waited for the server (1 s), then gave up on the rest */
    assert_true(took >= 1.0);
    if (!strstr(errtext, "has not answered for 1 s"))
        fail_msg("no message about the server:\n%s", errtext);
    struct jsonl j;
    read_jsonl(r.out, 0, &j);
    size_t failed;
    size_t n = measured(j.recs, &failed);
    if (n >= 200 || failed > 2)
        fail_msg("%zu measured, %zu failed: the dead server cost more than one request", n, failed);
    json_t *run = read_run_json(r.out);
    assert_string_equal(run_status(run), "failed");
    assert_true(fs_exists(file_in(r.out, "summary.md")));
    json_decref(run);
    json_decref(j.recs);
    free(errtext);
    rig_stop(&r);
}

/* ---- a sensor vanishes ---- */

/* The DRAM zone disappears after a few requests (a driver unloaded, a
 * device gone). The run goes on; later records carry no DRAM joules (never
 * 0 J) and say the sensor was lost; the package is still measured. */
static void test_sensor_removed(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r);
    struct fakeserver *fs;
    char err[ERR_LEN];
    assert_int_equal(
        fakeserver_start(&fs, "{\"flavour\": \"ollama\", \"tokens\": 20, \"tokens_per_s\": 100}",
                         err),
        0);
    const char *args[] = {"run",
                          "-e",
                          "ollama",
                          "--url",
                          fakeserver_url(fs),
                          "-m",
                          "fake:latest",
                          "--prompt",
                          "a",
                          "--reps",
                          "6",
                          "--warmup",
                          "0",
                          "--baseline",
                          "0",
                          "--interval-ms",
                          "10",
                          "-o",
                          r.out,
                          "-q",
                          NULL};
    struct child c;
    spawn(&r, args, 0, &c);
    double end = jb_clock_s() + 20;
    while (lines_of(r.out) < 3 && jb_clock_s() < end)
        usleep(2000);
    int before = lines_of(r.out);
    fx_remove(r.fx, r.dram);
    int rc = wait_child(&c, 60);
    char *errtext = slurp(c.err_path);
    if (rc != 0)
        fail_msg("exit %d\nstderr: %s", rc, errtext);
    struct jsonl j;
    read_jsonl(r.out, 0, &j);
    size_t failed;
    assert_int_equal(measured(j.recs, &failed), 6);
    assert_int_equal(failed, 0);
    size_t i;
    json_t *rec;
    int lost_seen = 0;
    json_array_foreach(j.recs, i, rec)
    {
        json_t *e = json_object_get(rec, "energy_j");
        json_t *dram = json_object_get(e, "dram");
        json_t *cpu = json_object_get(e, "cpu");
        /* the package is measured throughout (the load record may be too
         * short a window for the fixture's counters) */
        if (!json_is_true(json_object_get(rec, "warmup")) &&
            (!json_is_number(cpu) || json_number_value(cpu) <= 0))
            fail_msg("record %zu: no package joules", i);
        if ((int)i > before) {
            /* after the removal: no DRAM figure (above all not 0 J), and
             * the record says why */
            if (dram && !json_is_null(dram))
                fail_msg("record %zu: DRAM %.3f J after its sensor vanished", i,
                         json_number_value(dram));
            json_t *flags = json_object_get(rec, "flags");
            size_t k;
            json_t *f;
            json_array_foreach(flags, k, f) if (strcmp(json_string_value(f), "sensor_lost") == 0)
                lost_seen = 1;
        }
    }
    assert_true(lost_seen);
    json_t *run = read_run_json(r.out);
    assert_string_equal(run_status(run), "complete");
    json_decref(run);
    json_decref(j.recs);
    free(errtext);
    fakeserver_stop(fs);
    rig_stop(&r);
}

/* ---- the output cannot grow ---- */

/* A file-size limit (RLIMIT_FSIZE, as a full disk or a quota would stop
 * the writes) reached by requests.jsonl. joulebench must not die of
 * SIGXFSZ; it stops with a message naming the file, keeps every whole
 * record it wrote, and leaves no torn line behind. */
static void test_file_size_limit(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r);
    struct fakeserver *fs;
    char err[ERR_LEN];
    assert_int_equal(
        fakeserver_start(&fs, "{\"flavour\": \"ollama\", \"tokens\": 20, \"tokens_per_s\": 400}",
                         err),
        0);
    const char *args[] = {"run", "-e",          "ollama",   "--url",      fakeserver_url(fs),
                          "-m",  "fake:latest", "--prompt", "a",          "--reps",
                          "100", "--warmup",    "0",        "--baseline", "0",
                          "-o",  r.out,         "-q",       NULL};
    struct child c;
    /* run.json (a few KiB) fits; requests.jsonl outgrows it after a few
     * records. */
    spawn(&r, args, 24 * 1024, &c);
    int rc = wait_child(&c, 60);
    char *errtext = slurp(c.err_path);
    if (rc == 128 + SIGXFSZ)
        fail_msg("killed by SIGXFSZ: nothing said, the run lost\nstderr: %s", errtext);
    if (rc != 1)
        fail_msg("exit %d (1 expected)\nstderr: %s", rc, errtext);
    if (!strstr(errtext, "requests.jsonl") || !strstr(errtext, "File too large"))
        fail_msg("the message does not name the file and the cause:\n%s", errtext);
    struct jsonl j;
    read_jsonl(r.out, 0, &j); /* whole lines only */
    size_t failed;
    size_t n = measured(j.recs, &failed);
    if (n < 3 || n >= 100)
        fail_msg("%zu records kept", n);
    assert_int_equal(failed, 0);
    /* the run stopped at the first record that could not be written: the
     * file is within one record of the limit, not far below it */
    char *tail = slurp(file_in(r.out, "requests.jsonl"));
    size_t size = strlen(tail), longest = 0;
    for (char *p = tail, *nl; (nl = strchr(p, '\n')); p = nl + 1)
        longest = (size_t)(nl + 1 - p) > longest ? (size_t)(nl + 1 - p) : longest;
    if (size + 2 * longest <= 24 * 1024)
        fail_msg("requests.jsonl stopped at %zu bytes, records up to %zu bytes, limit %d", size,
                 longest, 24 * 1024);
    free(tail);
    json_t *run = read_run_json(r.out);
    assert_string_equal(run_status(run), "failed");
    json_decref(run);
    json_decref(j.recs);
    free(errtext);
    fakeserver_stop(fs);
    rig_stop(&r);
}

/* The same for `joulebench chat`: the answer that cannot be recorded ends
 * the session with the message, instead of chatting on unrecorded. */
static void test_chat_file_size_limit(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r);
    struct fakeserver *fs;
    char err[ERR_LEN];
    assert_int_equal(
        fakeserver_start(&fs, "{\"flavour\": \"ollama\", \"tokens\": 20, \"tokens_per_s\": 400}",
                         err),
        0);
    struct buf in = {0};
    for (int i = 0; i < 100; i++)
        buf_printf(&in, "question %d\n", i);
    tu_write(r.dir, "questions.txt", buf_str(&in));
    buf_free(&in);
    const char *args[] = {"chat", "-e",          "ollama",     "--url", fakeserver_url(fs),
                          "-m",   "fake:latest", "--baseline", "0",     "-o",
                          r.out,  NULL};
    struct child c;
    spawn_in(&r, args, 24 * 1024, file_in(r.dir, "questions.txt"), &c);
    int rc = wait_child(&c, 60);
    char *errtext = slurp(c.err_path);
    if (rc != 1 || !strstr(errtext, "File too large"))
        fail_msg("exit %d\nstderr: %s", rc, errtext);
    struct jsonl j;
    read_jsonl(r.out, 0, &j);
    size_t failed;
    size_t n = measured(j.recs, &failed);
    if (n < 3 || n >= 100)
        fail_msg("%zu answers kept", n);
    json_t *run = read_run_json(r.out);
    assert_string_equal(run_status(run), "failed");
    json_decref(run);
    json_decref(j.recs);
    free(errtext);
    fakeserver_stop(fs);
    rig_stop(&r);
}

/* A record cut short by the limit is taken back (a record is whole or
 * absent): record_append() itself, against a file that can take only part
 * of the line. */
static void test_record_append_never_tears(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("append");
    char path[4200];
    snprintf(path, sizeof path, "%s/requests.jsonl", dir);
    json_t *rec =
        json_pack("{s:s, s:s}", "id", "r0001", "pad", "0123456789012345678901234567890123456789");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {100, 100};
        setrlimit(RLIMIT_FSIZE, &rl);
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        char err[ERR_LEN];
        int a = record_append(fd, rec, err); /* about 60 bytes: fits */
        int b = record_append(fd, rec, err); /* would end past 100 */
        _exit(a == 0 && b != 0 && strstr(err, "File too large") ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    char *text = slurp(path);
    /* one whole line, nothing of the second */
    assert_int_equal(strlen(text), strchr(text, '\n') - text + 1);
    free(text);
    json_decref(rec);
    tu_rmtree_free(dir);
}

/* ---- signals at random points ---- */

/* A run of a second or two (baseline, load, requests, report) is signalled
 * at a random moment. SIGINT and SIGTERM: it stops within a request, exits
 * 128 + the signal, run.json says "interrupted" (or "complete" if it had
 * just finished), every line is whole, and the report was built. */
static void test_stop_signals_at_random_points(void **state)
{
    (void)state;
    unsigned seed = fault_seed("stop_signals");
    struct rig r;
    rig_start(&r);
    struct fakeserver *fs;
    char err[ERR_LEN];
    assert_int_equal(
        fakeserver_start(&fs, "{\"flavour\": \"ollama\", \"tokens\": 12, \"tokens_per_s\": 120}",
                         err),
        0);
    static const int sigs[] = {SIGINT, SIGTERM, SIGINT, SIGTERM};
    int mid_run = 0;
    for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++) {
        char out[4300];
        snprintf(out, sizeof out, "%s/stop-%zu", r.dir, k);
        const char *args[] = {"run", "-e",          "ollama",   "--url",      fakeserver_url(fs),
                              "-m",  "fake:latest", "--prompt", "a",          "--reps",
                              "10",  "--warmup",    "1",        "--baseline", "0.3",
                              "-o",  out,           "-q",       NULL};
        struct child c;
        spawn(&r, args, 0, &c);
        double delay = 1.6 * (double)rand_r(&seed) / RAND_MAX;
        usleep((useconds_t)(delay * 1e6));
        kill(c.pid, sigs[k]);
        int rc = wait_child(&c, 30);
        char *errtext = slurp(c.err_path);
        json_t *run = fs_exists(file_in(out, "run.json")) ? read_run_json(out) : NULL;
        const char *status = run ? run_status(run) : "(no run.json)";
        printf("  %s after %.3f s: exit %d, status %s, %d lines\n",
               sigs[k] == SIGINT ? "SIGINT" : "SIGTERM", delay, rc, status,
               fs_exists(out) ? lines_of(out) : -1);
        if (rc == 0) {
            /* it finished before the signal came */
            assert_string_equal(status, "complete");
        } else {
            if (rc != 128 + sigs[k])
                fail_msg("exit %d after signal %d at %.3f s\nstderr: %s", rc, sigs[k], delay,
                         errtext);
            if (run) {
                mid_run++;
                /* run.json exists from the start (before it, nothing was
                 * created) and says how the run ended */
                assert_string_equal(status, "interrupted");
                struct jsonl j;
                read_jsonl(out, 0, &j);
                json_decref(j.recs);
                assert_true(fs_exists(file_in(out, "summary.md")));
            }
        }
        json_decref(run);
        free(errtext);
    }
    if (mid_run == 0)
        fail_msg("none of the 4 runs was stopped while it ran (seed %u): nothing was tested", seed);
    fakeserver_stop(fs);
    rig_stop(&r);
}

/* SIGKILL leaves no chance to clean up: requests.jsonl holds every
 * finished request and at most one torn last line, run.json is whole
 * (written atomically) and still says "running", and `joulebench report`
 * reads it, skipping a torn line with a warning. */
static void test_sigkill_at_random_points(void **state)
{
    (void)state;
    unsigned seed = fault_seed("sigkill");
    struct rig r;
    rig_start(&r);
    struct fakeserver *fs;
    char err[ERR_LEN];
    assert_int_equal(
        fakeserver_start(&fs, "{\"flavour\": \"ollama\", \"tokens\": 12, \"tokens_per_s\": 120}",
                         err),
        0);
    int mid_run = 0;
    for (int k = 0; k < 4; k++) {
        char out[4300];
        snprintf(out, sizeof out, "%s/kill-%d", r.dir, k);
        const char *args[] = {"run", "-e",          "ollama",   "--url",      fakeserver_url(fs),
                              "-m",  "fake:latest", "--prompt", "a",          "--reps",
                              "10",  "--warmup",    "1",        "--baseline", "0.3",
                              "-o",  out,           "-q",       NULL};
        struct child c;
        spawn(&r, args, 0, &c);
        double delay = 0.2 + 1.4 * (double)rand_r(&seed) / RAND_MAX;
        usleep((useconds_t)(delay * 1e6));
        kill(c.pid, SIGKILL);
        int rc = wait_child(&c, 30);
        printf("  SIGKILL after %.3f s: exit %d, %d lines\n", delay, rc,
               fs_exists(out) ? lines_of(out) : -1);
        if (rc == 0 || !fs_exists(file_in(out, "run.json")))
            continue; /* finished first, or killed before it made the folder */
        assert_int_equal(rc, 128 + SIGKILL);
        mid_run++;
        json_t *run = read_run_json(out);
        struct jsonl j;
        read_jsonl(out, 1, &j);
        /* "complete" when it was killed while building the report, after
         * the last record */
        if (strcmp(run_status(run), "complete") == 0)
            assert_true(j.n_lines == 12 && !j.torn);
        else
            assert_string_equal(run_status(run), "running");
        json_decref(run);
        /* records are numbered in order: none lost before the last */
        size_t i;
        json_t *rec;
        json_array_foreach(j.recs, i, rec)
        {
            char want[16];
            snprintf(want, sizeof want, "r%04zu", i + 1);
            assert_string_equal(json_string_value(json_object_get(rec, "id")), want);
        }
        struct buf rerr = {0};
        int rrc = report(&r, out, &rerr);
        if (rrc != 0)
            fail_msg("report after SIGKILL: exit %d\n%s", rrc, buf_str(&rerr));
        if (j.torn)
            assert_non_null(strstr(buf_str(&rerr), "torn"));
        assert_true(fs_exists(file_in(out, "summary.md")));
        buf_free(&rerr);
        json_decref(j.recs);
    }
    /* a machine so slow or so fast that no kill landed inside a run has
     * tested nothing */
    if (mid_run == 0)
        fail_msg("none of the 4 runs was killed while it ran (seed %u): nothing was tested", seed);

    /* The torn line itself, for certain: a copy of the last run with its
     * last record cut in the middle (what a kill inside write() leaves). */
    char out[4300];
    snprintf(out, sizeof out, "%s/torn", r.dir);
    const char *args[] = {"run", "-e",          "ollama",   "--url",      fakeserver_url(fs),
                          "-m",  "fake:latest", "--prompt", "a",          "--reps",
                          "3",   "--warmup",    "0",        "--baseline", "0",
                          "-o",  out,           "-q",       NULL};
    struct child c;
    spawn(&r, args, 0, &c);
    assert_int_equal(wait_child(&c, 30), 0);
    char *text = slurp(file_in(out, "requests.jsonl"));
    size_t len = strlen(text);
    char *last = text + len - 1;
    while (last > text && last[-1] != '\n')
        last--;
    size_t cut = (size_t)(last - text) + (len - (size_t)(last - text)) / 2;
    int fd = open(file_in(out, "requests.jsonl"), O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, cut), (ssize_t)cut);
    close(fd);
    free(text);
    struct buf rerr = {0};
    assert_int_equal(report(&r, out, &rerr), 0);
    assert_non_null(strstr(buf_str(&rerr), "torn"));
    char *summary = slurp(file_in(out, "summary.md"));
    assert_non_null(strstr(summary, "torn"));
    free(summary);
    buf_free(&rerr);
    fakeserver_stop(fs);
    rig_stop(&r);
}

/* ---- run directories from other versions ---- */

/* Rewrites dir's run.json and every record with f. */
static void rewrite_run(const char *dir, void (*f)(json_t *obj, int is_run))
{
    json_t *run = read_run_json(dir);
    f(run, 1);
    assert_int_equal(json_dump_file(run, file_in(dir, "run.json"), JSON_INDENT(2)), 0);
    json_decref(run);
    struct jsonl j;
    read_jsonl(dir, 0, &j);
    struct buf b = {0};
    size_t i;
    json_t *rec;
    json_array_foreach(j.recs, i, rec)
    {
        f(rec, 0);
        char *line = json_dumps(rec, JSON_COMPACT);
        buf_puts(&b, line);
        buf_putc(&b, '\n');
        free(line);
    }
    char e[ERR_LEN];
    assert_int_equal(fs_write_atomic(file_in(dir, "requests.jsonl"), b.data, b.len, e), 0);
    buf_free(&b);
    json_decref(j.recs);
}

/* A newer joulebench: schema 2, fields this one has never heard of. */
static void make_newer(json_t *o, int is_run)
{
    json_object_set_new(o, "schema", json_integer(2));
    json_object_set_new(o, "quantum_flux", json_pack("{s:i}", "x", 1));
    if (!is_run) {
        json_object_set_new(o, "energy_units", json_string("zeptojoules"));
        json_object_del(o, "grade"); /* for `grade` to put back */
    }
}

/* An older joulebench (before the schema field): no "schema" at all. */
static void make_older(json_t *o, int is_run)
{
    json_object_del(o, "schema");
    if (!is_run)
        json_object_del(o, "grade"); /* for `grade` to put back */
}

static void test_other_versions(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r);
    struct fakeserver *fs;
    char err[ERR_LEN];
    assert_int_equal(
        fakeserver_start(&fs,
                         "{\"flavour\": \"ollama\", \"tokens\": 10, \"tokens_per_s\": 400, "
                         "\"answer\": \"The answer is 4.\"}",
                         err),
        0);
    char suite[4300];
    snprintf(suite, sizeof suite, "%s/suite.json", r.dir);
    tu_write(r.dir, "suite.json",
             "{\"name\": \"s\", \"prompts\": [{\"id\": \"two\", \"prompt\": \"2+2?\", "
             "\"grader\": {\"type\": \"numeric\", \"answer\": 4}}]}");
    static void (*const makers[])(json_t *, int) = {make_newer, make_older};
    static const char *const names[] = {"newer", "older"};
    for (size_t k = 0; k < 2; k++) {
        char out[4300];
        snprintf(out, sizeof out, "%s/%s", r.dir, names[k]);
        const char *args[] = {"run", "-e",          "ollama",  "--url",      fakeserver_url(fs),
                              "-m",  "fake:latest", "--suite", suite,        "--reps",
                              "2",   "--warmup",    "0",       "--baseline", "0",
                              "-o",  out,           "-q",      NULL};
        struct child c;
        spawn(&r, args, 0, &c);
        assert_int_equal(wait_child(&c, 30), 0);
        rewrite_run(out, makers[k]);
        unlink(file_in(out, "summary.md"));

        /* report reads what it understands and says what it did not */
        struct buf rerr = {0};
        int rc = report(&r, out, &rerr);
        if (rc != 0)
            fail_msg("%s: report exit %d\n%s", names[k], rc, buf_str(&rerr));
        assert_non_null(strstr(buf_str(&rerr), k == 0 ? "newer" : "schema"));
        char *summary = slurp(file_in(out, "summary.md"));
        assert_non_null(strstr(summary, "fake:latest"));
        assert_non_null(strstr(summary, "J/Tok"));
        free(summary);
        buf_free(&rerr);

        /* grading again keeps every field it does not know */
        char *argv[] = {(char *)JB_TOOL, "grade", out, NULL};
        char *env[] = {"NO_COLOR=1", NULL};
        struct buf gout = {0}, gerr = {0};
        rc = tu_run(argv, env, &gout, &gerr);
        if (rc != 0)
            fail_msg("%s: grade exit %d\n%s", names[k], rc, buf_str(&gerr));
        struct jsonl j;
        read_jsonl(out, 0, &j);
        size_t i;
        json_t *rec;
        json_array_foreach(j.recs, i, rec)
        {
            /* the file was rewritten: every answer has its grade again */
            if (!json_is_true(json_object_get(rec, "warmup"))) {
                json_t *g = json_object_get(rec, "grade");
                assert_true(json_is_object(g));
                assert_true(json_number_value(json_object_get(g, "score")) == 10.0);
            }
            if (k == 0) {
                assert_non_null(json_object_get(rec, "quantum_flux"));
                assert_string_equal(json_string_value(json_object_get(rec, "energy_units")),
                                    "zeptojoules");
            } else {
                assert_null(json_object_get(rec, "schema"));
            }
        }
        json_decref(j.recs);
        buf_free(&gout);
        buf_free(&gerr);

        /* and a new run never writes into an old one */
        struct child c2;
        spawn(&r, args, 0, &c2);
        assert_int_equal(wait_child(&c2, 30), 2);
        char *e2 = slurp(c2.err_path);
        assert_non_null(strstr(e2, "already holds a run"));
        free(e2);
    }
    fakeserver_stop(fs);
    rig_stop(&r);
}

/* ---- text a server sends ---- */

/* An error message cut inside a UTF-8 sequence (the server's text is long
 * and not ASCII) must still be recorded: a failed request without its
 * "error" would read as a success. */
static void test_error_text_cut_in_utf8(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r);
    struct buf script = {0};
    buf_puts(&script, "{\"flavour\": \"ollama\", \"tokens\": 5, \"error_after\": 2, \"error\": \"");
    for (int i = 0; i < 400; i++)
        buf_puts(&script, "\xc3\xa9"); /* é */
    buf_puts(&script, "\"}");
    struct fakeserver *fs;
    char err[ERR_LEN];
    assert_int_equal(fakeserver_start(&fs, buf_str(&script), err), 0);
    const char *args[] = {"run", "-e",          "ollama",   "--url",      fakeserver_url(fs),
                          "-m",  "fake:latest", "--prompt", "a",          "--reps",
                          "2",   "--warmup",    "0",        "--baseline", "0",
                          "-o",  r.out,         "-q",       NULL};
    struct child c;
    spawn(&r, args, 0, &c);
    assert_int_equal(wait_child(&c, 30), 1);
    struct jsonl j;
    read_jsonl(r.out, 0, &j);
    size_t failed;
    assert_int_equal(measured(j.recs, &failed), 2);
    assert_int_equal(failed, 2);
    json_t *rec = json_array_get(j.recs, 1);
    const char *e = json_string_value(json_object_get(rec, "error"));
    assert_non_null(e);
    assert_non_null(strstr(e, "\xc3\xa9\xc3\xa9"));
    json_decref(j.recs);
    buf_free(&script);
    fakeserver_stop(fs);
    rig_stop(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_append_never_tears),
        cmocka_unit_test(test_error_text_cut_in_utf8),
        cmocka_unit_test(test_file_size_limit),
        cmocka_unit_test(test_chat_file_size_limit),
        cmocka_unit_test(test_sensor_removed),
        cmocka_unit_test(test_server_killed_and_restarted),
        cmocka_unit_test(test_server_killed_in_warmup),
        cmocka_unit_test(test_server_gone_for_good),
        cmocka_unit_test(test_stop_signals_at_random_points),
        cmocka_unit_test(test_sigkill_at_random_points),
        cmocka_unit_test(test_other_versions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
