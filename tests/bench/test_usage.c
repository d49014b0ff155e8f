/* `joulebench run` and `chat` as a demanding user meets them: what goes to
 * stdout and what to stderr, and what the progress messages say. The tool
 * runs in its own process against a fake server, with fixture RAPL
 * counters so the figures are measured. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fs.h"
#include "fakeserver.h"
#include "fixture_sysfs.h"
#include "testutil.h"

struct rig {
    struct fx_sysfs *fx;
    struct fakeserver *fs;
    char *dir;
    char out[4200];
    char env_sys[4200], env_proc[4200], env_cache[4200];
};

static void rig_start(struct rig *r, const char *script)
{
    memset(r, 0, sizeof *r);
    r->fx = fx_new("usage");
    int pkg = fx_rapl_zone(r->fx, "intel-rapl:0", "package-0", 0, 0);
    fx_set_watts(r->fx, pkg, 20.0);
    fx_proc_stat(r->fx, 2, 1000, 100000);
    fx_start(r->fx, 1000);
    char err[ERR_LEN];
    assert_int_equal(fakeserver_start(&r->fs, script, err), 0);
    r->dir = tu_tmpdir("usage");
    snprintf(r->out, sizeof r->out, "%s/run", r->dir);
    snprintf(r->env_sys, sizeof r->env_sys, "JOULEBENCH_SYSFS_ROOT=%s", fx_sysfs_root(r->fx));
    snprintf(r->env_proc, sizeof r->env_proc, "JOULEBENCH_PROCFS_ROOT=%s", fx_procfs_root(r->fx));
    snprintf(r->env_cache, sizeof r->env_cache, "XDG_CACHE_HOME=%s", r->dir);
}

static void rig_stop(struct rig *r)
{
    fakeserver_stop(r->fs);
    fx_free(r->fx);
    tu_rmtree_free(r->dir);
}

static int run_tool(struct rig *r, const char *const *args, const char *stdin_path, struct buf *out,
                    struct buf *err)
{
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)JB_TOOL;
    for (; *args; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    char *env[] = {r->env_sys, r->env_proc, r->env_cache, "NO_COLOR=1", NULL};
    return tu_run_in(argv, env, stdin_path, out, err);
}

/* chat on an engine without a load call (openai) warms the model up with
 * one request first. Its record line is progress, like every other: it
 * goes to stderr, and stdout holds the answers (and the summary) only, so
 * `joulebench chat < questions > answers` gives clean answers. */
static void test_chat_stdout_holds_answers_only(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, "{\"flavour\": \"openai\", \"answer\": \"Paris is the capital.\"}");
    tu_write(r.dir, "in.txt", "What is the capital of France?\n/quit\n");
    char in[4300];
    snprintf(in, sizeof in, "%s/in.txt", r.dir);
    struct buf out = {0}, err = {0};
    const char *args[] = {"chat", "-e",          "openai",     "--url", fakeserver_url(r.fs),
                          "-m",   "fake:latest", "--baseline", "0",     "-o",
                          r.out,  NULL};
    int rc = run_tool(&r, args, in, &out, &err);
    if (rc != 0)
        fail_msg("exit %d\nstderr: %s", rc, buf_str(&err));
    if (!strstr(buf_str(&out), "Paris is the capital."))
        fail_msg("the answer is not on stdout:\n%s", buf_str(&out));
    if (strstr(buf_str(&out), "(warm-up)") || strstr(buf_str(&out), "r0001"))
        fail_msg("a record line landed among the answers on stdout:\n%s", buf_str(&out));
    if (!strstr(buf_str(&err), "r0001") || !strstr(buf_str(&err), "r0002"))
        fail_msg("the record lines are not on stderr:\n%s", buf_str(&err));
    buf_free(&out);
    buf_free(&err);
    rig_stop(&r);
}

/* The progress lines say what the options asked for: a baseline of 0.3 s
 * is announced as 0.3 s (not "0 s"), one request as "1 request". */
static void test_run_progress_says_what_was_asked(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, "{\"flavour\": \"ollama\", \"tokens\": 4}");
    struct buf out = {0}, err = {0};
    const char *args[] = {"run", "-e",          "ollama",   "--url",      fakeserver_url(r.fs),
                          "-m",  "fake:latest", "--prompt", "hi",         "--reps",
                          "1",   "--warmup",    "0",        "--baseline", "0.3",
                          "-o",  r.out,         NULL};
    int rc = run_tool(&r, args, NULL, &out, &err);
    if (rc != 0)
        fail_msg("exit %d\nstderr: %s", rc, buf_str(&err));
    if (!strstr(buf_str(&err), "measuring idle power for 0.3 s"))
        fail_msg("the baseline's length is not the one asked for:\n%s", buf_str(&err));
    if (!strstr(buf_str(&err), "x 1 repetition = 1 request ->"))
        fail_msg("one request is not announced as one:\n%s", buf_str(&err));
    buf_free(&out);
    buf_free(&err);
    rig_stop(&r);
}

/* The help says what the options do. --warmup 0 on the openai engine
 * still sends one request (it has no load call: the first warm-up loads
 * the model), and -q keeps stdout quiet too, not only stderr. */
static void test_help_matches_behaviour(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, "{\"flavour\": \"openai\", \"tokens\": 4}");
    struct buf out = {0}, err = {0};
    const char *args[] = {"run", "-e",          "openai",   "--url",      fakeserver_url(r.fs),
                          "-m",  "fake:latest", "--prompt", "hi",         "--reps",
                          "1",   "--warmup",    "0",        "--baseline", "0",
                          "-o",  r.out,         "-q",       NULL};
    int rc = run_tool(&r, args, NULL, &out, &err);
    if (rc != 0)
        fail_msg("exit %d\nstderr: %s", rc, buf_str(&err));
    assert_string_equal(buf_str(&out), "");
    char path[4300];
    snprintf(path, sizeof path, "%s/requests.jsonl", r.out);
    struct buf recs = {0};
    assert_int_equal(fs_read_file(path, 0, &recs, NULL), 0);
    size_t lines = 0;
    for (const char *p = buf_str(&recs); *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 2); /* the loading warm-up and the request */
    buf_free(&recs);

    buf_reset(&out);
    const char *help[] = {"run", "--help", NULL};
    assert_int_equal(run_tool(&r, help, NULL, &out, &err), 0);
    if (!strstr(buf_str(&out), "openai has no load call"))
        fail_msg("run --help does not say that openai always warms up once:\n%s", buf_str(&out));
    if (strstr(buf_str(&out), "only errors on stderr"))
        fail_msg("run --help says -q quiets stderr only, but stdout is quiet too");
    buf_reset(&out);
    const char *top[] = {"--help", NULL};
    assert_int_equal(run_tool(&r, top, NULL, &out, &err), 0);
    if (!strstr(buf_str(&out), "130 interrupted"))
        fail_msg("joulebench --help leaves out exit status 130:\n%s", buf_str(&out));
    buf_free(&out);
    buf_free(&err);
    rig_stop(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_stdout_holds_answers_only),
        cmocka_unit_test(test_run_progress_says_what_was_asked),
        cmocka_unit_test(test_help_matches_behaviour),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
