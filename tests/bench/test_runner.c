/* `joulebench run` end to end, as a user runs it: the tool in its own
 * process against a fake Ollama server of known TTFT and token rate, with
 * fixture RAPL counters driven at known watts. The measured joules per
 * phase must match what the counters were driven at. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/buf.h"
#include "common/fs.h"
#include "common/timeutil.h"
#include "fakeserver.h"
#include "fixture_sysfs.h"
#include "testutil.h"

#define IDLE_W 5.0
#define PKG_W 25.0
#define CORE_W 15.0
#define DRAM_W 3.0

struct rig {
    struct fx_sysfs *fx;
    int pkg, core, dram;
    struct fakeserver *fs;
    char *dir;
    char env_sys[4200], env_proc[4200], env_cache[4200];
    pthread_t watcher;
    volatile int stop;
};

/* Requests the server got on /api/chat (the load, warm-ups, measured
 * requests; not the /api/show and /api/version look-ups). */
static size_t chat_requests(struct fakeserver *fs)
{
    size_t n = fakeserver_request_count(fs), k = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *q = fakeserver_request(fs, i);
        const char *path = json_string_value(json_object_get(q, "path"));
        if (path && strcmp(path, "/api/chat") == 0)
            k++;
        json_decref(q);
    }
    return k;
}

/* Switches the fixture from idle to load power when the server sees the
 * model load, so the baseline (before) and the requests (after) run at
 * different, known watts. */
static void *watch(void *arg)
{
    struct rig *r = arg;
    while (!r->stop && chat_requests(r->fs) == 0)
        usleep(200);
    fx_set_watts(r->fx, r->pkg, PKG_W);
    fx_set_watts(r->fx, r->core, CORE_W);
    fx_set_watts(r->fx, r->dram, DRAM_W);
    return NULL;
}

static void rig_start(struct rig *r, const char *script)
{
    memset(r, 0, sizeof *r);
    r->fx = fx_new("runner");
    r->pkg = fx_rapl_zone(r->fx, "intel-rapl:0", "package-0", 1000, 0);
    r->core = fx_rapl_zone(r->fx, "intel-rapl:0:0", "core", 0, 0);
    r->dram = fx_rapl_zone(r->fx, "intel-rapl:0:1", "dram", 0, 0);
    fx_set_watts(r->fx, r->pkg, IDLE_W);
    fx_set_watts(r->fx, r->core, 1.0);
    fx_set_watts(r->fx, r->dram, 0.5);
    fx_start(r->fx, 1000);
    char err[ERR_LEN];
    assert_int_equal(fakeserver_start(&r->fs, script, err), 0);
    r->dir = tu_tmpdir("runner");
    snprintf(r->env_sys, sizeof r->env_sys, "JOULEBENCH_SYSFS_ROOT=%s", fx_sysfs_root(r->fx));
    snprintf(r->env_proc, sizeof r->env_proc, "JOULEBENCH_PROCFS_ROOT=%s", fx_procfs_root(r->fx));
    snprintf(r->env_cache, sizeof r->env_cache, "XDG_CACHE_HOME=%s", r->dir);
    pthread_create(&r->watcher, NULL, watch, r);
}

static void rig_stop(struct rig *r)
{
    r->stop = 1;
    pthread_join(r->watcher, NULL);
    fakeserver_stop(r->fs);
    fx_free(r->fx);
    tu_rmtree_free(r->dir);
}

static char *out_dir(struct rig *r)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s/run", r->dir);
    return path;
}

static json_t *load_json(const char *dir, const char *name)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j)
        fail_msg("%s: %s", path, je.text);
    return j;
}

/* Every record of requests.jsonl, in order. */
static json_t *load_records(const char *dir)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/requests.jsonl", dir);
    json_error_t je;
    json_t *arr = json_array();
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *rec = json_loads(line, 0, &je);
        assert_non_null(rec);
        json_array_append_new(arr, rec);
    }
    free(line);
    fclose(f);
    return arr;
}

static double num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        fail_msg("'%s' is not a number", key);
    return json_number_value(v);
}

static void assert_near(double got, double want, double rel, const char *what)
{
    if (!(fabs(got - want) <= rel * fabs(want) + 0.02))
        fail_msg("%s: measured %.4f, expected %.4f (within %.0f %%)", what, got, want, rel * 100);
}

static int run_tool(struct rig *r, const char *const *args, struct buf *out, struct buf *err)
{
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)JB_TOOL;
    for (; *args; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    char *env[] = {r->env_sys, r->env_proc, r->env_cache, "NO_COLOR=1", NULL};
    return tu_run(argv, env, out, err);
}

static void test_phases_match_truth(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, "{\"flavour\": \"ollama\", \"ttft_s\": 0.4, \"tokens\": 30, "
                  "\"tokens_per_s\": 40, \"prompt_tokens\": 12}");
    const char *args[] = {"run",
                          "-e",
                          "ollama",
                          "--url",
                          fakeserver_url(r.fs),
                          "-m",
                          "fake:latest",
                          "--prompt",
                          "Explain caching.",
                          "--reps",
                          "2",
                          "--warmup",
                          "1",
                          "--baseline",
                          "1",
                          "-o",
                          out_dir(&r),
                          "--interval-ms",
                          "10",
                          NULL};
    struct buf out = {0}, err = {0};
    int rc = run_tool(&r, args, &out, &err);
    if (rc != 0)
        fail_msg("exit %d\nstdout: %s\nstderr: %s", rc, buf_str(&out), buf_str(&err));

    json_t *run = load_json(out_dir(&r), "run.json");
    assert_string_equal(json_string_value(json_object_get(run, "status")), "complete");
    json_t *base = json_object_get(run, "baseline");
    assert_near(num(base, "total_w"), IDLE_W + 0.5, 0.03, "idle baseline power");

    json_t *recs = load_records(out_dir(&r));
    size_t measured = 0, i;
    json_t *rec;
    int saw_load = 0;
    json_array_foreach(recs, i, rec)
    {
        if (json_is_true(json_object_get(rec, "load")))
            saw_load = 1;
        if (json_is_true(json_object_get(rec, "warmup")))
            continue;
        measured++;
        assert_true(json_is_null(json_object_get(rec, "error")));
        double dur = num(rec, "duration_s");
        json_t *e = json_object_get(rec, "energy_j");
        assert_near(num(e, "cpu"), PKG_W * dur, 0.05, "package joules");
        assert_near(num(e, "dram"), DRAM_W * dur, 0.05, "dram joules");
        assert_null(json_object_get(e, "cores")); /* inside cpu, not added */
        assert_near(num(rec, "total_j"), (PKG_W + DRAM_W) * dur, 0.05, "total joules");
        assert_near(num(rec, "net_total_j"), (PKG_W + DRAM_W - IDLE_W - 0.5) * dur, 0.08,
                    "net joules");
        json_t *ph = json_object_get(rec, "phases"), *pd = json_object_get(rec, "phase_duration_s");
        assert_near(num(ph, "prefill"), (PKG_W + DRAM_W) * num(pd, "prefill"), 0.05,
                    "prefill joules");
        assert_near(num(ph, "decode"), (PKG_W + DRAM_W) * num(pd, "decode"), 0.05, "decode joules");
        /* The server waited 0.4 s before its first token. */
        assert_true(num(rec, "ttft_s") >= 0.4);
        assert_near(num(pd, "prefill"), num(rec, "ttft_s"), 0.01, "prefill is TTFT");
        assert_int_equal(json_integer_value(json_object_get(rec, "output_tokens")), 30);
        assert_int_equal(json_integer_value(json_object_get(rec, "prompt_tokens")), 12);
        assert_near(num(rec, "j_per_token"), num(rec, "total_j") / 30.0, 1e-9, "J/token");
        /* the 29 tokens after the first share the decode phase */
        assert_near(num(rec, "decode_j_per_token"), num(ph, "decode") / 29.0, 1e-9,
                    "decode J/token");
        assert_int_equal(json_array_size(json_object_get(rec, "estimated_domains")), 0);
        assert_int_equal(json_array_size(json_object_get(rec, "itl_ms")), 29);
    }
    assert_int_equal(measured, 2);
    assert_true(saw_load);
    /* The server saw the load (no messages), a warm-up and two requests,
     * each with max tokens and the seed. */
    json_t *body = fakeserver_last_body(r.fs, "/api/chat");
    assert_non_null(body);
    json_t *options = json_object_get(body, "options");
    assert_int_equal(json_integer_value(json_object_get(options, "seed")), 42);
    assert_true(json_integer_value(json_object_get(options, "num_predict")) > 0);
    json_decref(body);

    char path[4300];
    const char *files[] = {"summary.md",         "metrics.csv",           "responses.csv",
                           "timeline.csv",       "energy_comparison.png", "energy_comparison.svg",
                           "power_timeline.png", "intelligence_tax.png",  "value_for_energy.png"};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        snprintf(path, sizeof path, "%s/%s", out_dir(&r), files[k]);
        if (!fs_exists(path))
            fail_msg("%s was not written", files[k]);
    }
    /* The timeline labels prefill and decode. */
    struct buf tl = {0};
    snprintf(path, sizeof path, "%s/timeline.csv", out_dir(&r));
    assert_int_equal(fs_read_file(path, 0, &tl, NULL), 0);
    assert_non_null(strstr(buf_str(&tl), ",decode,r"));
    assert_non_null(strstr(buf_str(&tl), ",baseline,"));
    assert_non_null(strstr(buf_str(&tl), "t_s,phase,request_id,"));
    buf_free(&tl);
    /* The table went to stdout. */
    assert_non_null(strstr(buf_str(&out), "J/Tok"));
    json_decref(recs);
    json_decref(run);
    buf_free(&out);
    buf_free(&err);
    rig_stop(&r);
}

static void test_stream_drops(void **state)
{
    (void)state;
    struct rig r;
    /* The load (no messages) has no pieces to drop; every request after it
     * is cut after 3 pieces. */
    rig_start(&r, "{\"flavour\": \"ollama\", \"tokens\": 20, \"tokens_per_s\": 50, "
                  "\"drop_after\": 3}");
    const char *args[] = {
        "run",        "-e",          "ollama",   "--url",     fakeserver_url(r.fs),
        "-m",         "fake:latest", "--prompt", "a",         "--prompt",
        "b",          "--reps",      "1",        "--warmup",  "0",
        "--baseline", "0",           "-o",       out_dir(&r), NULL};
    struct buf out = {0}, err = {0};
    assert_int_equal(run_tool(&r, args, &out, &err), 1); /* some requests failed */
    json_t *recs = load_records(out_dir(&r));
    size_t i, failed = 0;
    json_t *rec;
    json_array_foreach(recs, i, rec)
    {
        if (json_is_true(json_object_get(rec, "warmup")))
            continue;
        const char *e = json_string_value(json_object_get(rec, "error"));
        assert_non_null(e);
        failed++;
        /* what arrived before the drop is kept, and measured */
        assert_int_equal(json_integer_value(json_object_get(rec, "output_tokens")), 3);
        assert_true(json_is_number(json_object_get(rec, "total_j")));
    }
    assert_int_equal(failed, 2); /* the run went on to the second prompt */
    json_t *run = load_json(out_dir(&r), "run.json");
    assert_string_equal(json_string_value(json_object_get(run, "status")), "complete");
    json_decref(run);
    json_decref(recs);
    buf_free(&out);
    buf_free(&err);
    rig_stop(&r);
}

/* A request cut before its first token spent its time waiting for it: the
 * timeline shows that stretch as its prefill, not as idle time. */
static void test_drop_before_first_token(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, "{\"flavour\": \"ollama\", \"tokens\": 20, \"tokens_per_s\": 50, "
                  "\"ttft_s\": 0.4, \"drop_after\": 0}");
    const char *args[] = {"run", "-e",          "ollama",   "--url",      fakeserver_url(r.fs),
                          "-m",  "fake:latest", "--prompt", "a",          "--reps",
                          "1",   "--warmup",    "0",        "--baseline", "0",
                          "-o",  out_dir(&r),   NULL};
    struct buf out = {0}, err = {0};
    assert_int_equal(run_tool(&r, args, &out, &err), 1);
    json_t *recs = load_records(out_dir(&r));
    size_t i, failed = 0;
    json_t *rec;
    const char *id = NULL;
    json_array_foreach(recs, i, rec)
    {
        if (json_is_true(json_object_get(rec, "warmup")))
            continue;
        assert_non_null(json_string_value(json_object_get(rec, "error")));
        id = json_string_value(json_object_get(rec, "id"));
        failed++;
    }
    assert_int_equal(failed, 1);
    char path[4200], needle[64];
    snprintf(path, sizeof path, "%s/timeline.csv", out_dir(&r));
    struct buf tl = {0};
    assert_int_equal(fs_read_file(path, 0, &tl, NULL), 0);
    snprintf(needle, sizeof needle, ",prefill,%s,", id);
    if (!strstr(buf_str(&tl), needle))
        fail_msg("timeline.csv has no row '%s' for the request cut before its first token", needle);
    buf_free(&tl);
    json_decref(recs);
    buf_free(&out);
    buf_free(&err);
    rig_stop(&r);
}

static void test_sigint_keeps_partial_run(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, "{\"flavour\": \"ollama\", \"tokens\": 40, \"tokens_per_s\": 80}");
    const char *args[] = {"run", "-e",          "ollama",   "--url",      fakeserver_url(r.fs),
                          "-m",  "fake:latest", "--prompt", "a",          "--reps",
                          "50",  "--warmup",    "0",        "--baseline", "0",
                          "-o",  out_dir(&r),   NULL};
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)JB_TOOL;
    for (const char *const *a = args; *a; a++)
        argv[n++] = (char *)*a;
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        putenv(r.env_sys);
        putenv(r.env_proc);
        putenv(r.env_cache);
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execv(argv[0], argv);
        _exit(127);
    }
    /* two requests finished (load + 2 chat requests), the third streaming */
    while (chat_requests(r.fs) < 4)
        usleep(1000);
    usleep(100000);
    kill(pid, SIGINT);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 130);
    json_t *run = load_json(out_dir(&r), "run.json");
    assert_string_equal(json_string_value(json_object_get(run, "status")), "interrupted");
    json_decref(run);
    json_t *recs = load_records(out_dir(&r));
    assert_true(json_array_size(recs) >= 3 && json_array_size(recs) < 50);
    /* the request in flight is recorded with what it had */
    json_t *last = json_array_get(recs, json_array_size(recs) - 1);
    assert_non_null(json_string_value(json_object_get(last, "error")));
    json_decref(recs);
    /* and the report was built on the partial run */
    char path[4300];
    snprintf(path, sizeof path, "%s/summary.md", out_dir(&r));
    struct buf s = {0};
    assert_int_equal(fs_read_file(path, 0, &s, NULL), 0);
    assert_non_null(strstr(buf_str(&s), "nterrupted"));
    buf_free(&s);
    rig_stop(&r);
}

static void test_usage_and_bad_input(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, "{\"flavour\": \"ollama\", \"models\": [{\"name\": \"known:1b\"}]}");
    struct buf out = {0}, err = {0};
    const char *bad_reps[] = {"run", "--reps", "0", NULL};
    assert_int_equal(run_tool(&r, bad_reps, &out, &err), 2);
    assert_non_null(strstr(buf_str(&err), "--reps"));

    char suite[4300];
    snprintf(suite, sizeof suite, "%s/bad.json", r.dir);
    FILE *f = fopen(suite, "w");
    fputs("{\"prompts\": [\n  {\"prompt\": \"x\",}\n]}\n", f);
    fclose(f);
    buf_reset(&err);
    const char *bad_suite[] = {"run", "-e",       "ollama",    "--url", fakeserver_url(r.fs),
                               "-m",  "known:1b", "--suite",   suite,   "--baseline",
                               "0",   "-o",       out_dir(&r), NULL};
    assert_int_equal(run_tool(&r, bad_suite, &out, &err), 2);
    assert_non_null(strstr(buf_str(&err), "bad.json:2:"));

    buf_reset(&err);
    const char *unknown[] = {"run", "-e",         "ollama",    "--url", fakeserver_url(r.fs),
                             "-m",  "missing:7b", "--prompt",  "x",     "--baseline",
                             "0",   "-o",         out_dir(&r), NULL};
    assert_int_equal(run_tool(&r, unknown, &out, &err), 1);
    assert_non_null(strstr(buf_str(&err), "ollama pull missing:7b"));

    buf_reset(&err);
    char dead[64];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d", fakeserver_unused_port());
    const char *refused[] = {"run",      "-e", "ollama",     "--url", dead, "-m",        "x",
                             "--prompt", "x",  "--baseline", "0",     "-o", out_dir(&r), NULL};
    assert_int_equal(run_tool(&r, refused, &out, &err), 1);
    assert_non_null(strstr(buf_str(&err), "ollama serve"));
    buf_free(&out);
    buf_free(&err);
    rig_stop(&r);
}

/* The built-in engine on a synthetic model: token ids recorded, greedy
 * decoding repeats itself, and every output says the model is synthetic. */
static void test_builtin_synthetic(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, NULL);
    char model[4300];
    snprintf(model, sizeof model, "%s/tiny.gguf", r.dir);
    struct buf out = {0}, err = {0};
    const char *synth[] = {"synth", "--preset", "tiny", "-o", model, NULL};
    assert_int_equal(run_tool(&r, synth, &out, &err), 0);
    fx_set_watts(r.fx, r.pkg, PKG_W); /* no server to watch: load power now */
    const char *args[] = {"run",
                          "-e",
                          "builtin",
                          "-m",
                          model,
                          "--prompt",
                          "The quick brown fox",
                          "--reps",
                          "2",
                          "--warmup",
                          "1",
                          "--baseline",
                          "0",
                          "--temperature",
                          "0",
                          "--max-tokens",
                          "12",
                          "--threads",
                          "1",
                          "-o",
                          out_dir(&r),
                          NULL};
    int rc = run_tool(&r, args, &out, &err);
    if (rc)
        fail_msg("exit %d: %s", rc, buf_str(&err));
    json_t *recs = load_records(out_dir(&r));
    json_t *first_ids = NULL, *rec;
    size_t i, measured = 0;
    int loads = 0;
    json_array_foreach(recs, i, rec)
    {
        if (json_is_true(json_object_get(rec, "load"))) {
            /* the model is loaded inside its own window, once */
            loads++;
            assert_true(json_is_number(json_object_get(json_object_get(rec, "phases"), "load")));
            assert_true(num(rec, "duration_s") > 0);
        }
        if (json_is_true(json_object_get(rec, "warmup")))
            continue;
        measured++;
        json_t *pids = json_object_get(rec, "prompt_token_ids");
        json_t *oids = json_object_get(rec, "output_token_ids");
        assert_true(json_array_size(pids) > 3);
        assert_int_equal((long)json_array_size(pids),
                         (long)json_integer_value(json_object_get(rec, "prompt_tokens")));
        assert_int_equal((long)json_array_size(oids),
                         (long)json_integer_value(json_object_get(rec, "output_tokens")));
        assert_false(json_is_true(json_object_get(rec, "output_tokens_estimated")));
        assert_int_equal(json_array_size(json_object_get(rec, "estimated_domains")), 0);
        /* measured (not estimated, not missing); a request of a few
         * milliseconds may see no counter step, so 0 J is possible */
        assert_true(num(rec, "total_j") >= 0);
        if (!first_ids)
            first_ids = oids;
        else
            assert_true(json_equal(first_ids, oids)); /* greedy: the same tokens again */
    }
    assert_int_equal(measured, 2);
    assert_int_equal(loads, 1);
    json_t *run = load_json(out_dir(&r), "run.json");
    json_t *m = json_array_get(json_object_get(run, "models"), 0);
    assert_true(json_is_true(json_object_get(m, "synthetic")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(run, "engine"), "name")),
                        "builtin");
    assert_non_null(strstr(buf_str(&err), "synthetic model"));
    char path[4300];
    snprintf(path, sizeof path, "%s/summary.md", out_dir(&r));
    struct buf sum = {0};
    assert_int_equal(fs_read_file(path, 0, &sum, NULL), 0);
    assert_non_null(strstr(buf_str(&sum), "ynthetic"));
    buf_free(&sum);
    json_decref(run);
    json_decref(recs);
    buf_free(&out);
    buf_free(&err);
    rig_stop(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phases_match_truth),
        cmocka_unit_test(test_stream_drops),
        cmocka_unit_test(test_drop_before_first_token),
        cmocka_unit_test(test_sigint_keeps_partial_run),
        cmocka_unit_test(test_usage_and_bad_input),
        cmocka_unit_test(test_builtin_synthetic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
