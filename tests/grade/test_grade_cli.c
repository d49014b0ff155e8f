/* `joulebench grade DIR` on a fixture run directory, with the judge on the
 * fake server: records are graded from their grader and response, warm-ups
 * and failed requests are left alone, a torn last line is dropped with a
 * warning, the file is rewritten whole, and the report shows the scores. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/fs.h"
#include "common/str.h"
#include "common/timeutil.h"
#include "fakeserver.h"
#include "testutil.h"

static const char run_json[] =
    "{\"schema\": 1, \"status\": \"complete\", \"started\": \"2026-01-01T00:00:00Z\","
    " \"ended\": \"2026-01-01T00:01:00Z\","
    " \"engine\": {\"name\": \"ollama\", \"url\": \"http://127.0.0.1:9\"},"
    " \"models\": [{\"name\": \"m:7b\"}], \"sensors\": [], \"options\": {}, \"baseline\": null}\n";

/* One record line; grader and extra are JSON text. */
static void add_record(struct buf *b, const char *id, const char *prompt_id, const char *prompt,
                       const char *response, const char *grader, const char *extra)
{
    json_t *r = json_pack("{s:i, s:s, s:s, s:s, s:s, s:i, s:b, s:s, s:s, s:n, s:i, s:f, s:f}",
                          "schema", 1, "id", id, "model", "m:7b", "engine", "ollama", "prompt_id",
                          prompt_id, "rep", 0, "warmup", 0, "prompt", prompt, "response", response,
                          "error", "output_tokens", 100, "total_j", 50.0, "duration_s", 2.0);
    json_object_set_new(r, "grader", grader ? json_loads(grader, 0, NULL) : json_null());
    if (extra) {
        json_t *x = json_loads(extra, 0, NULL);
        json_object_update(r, x);
        json_decref(x);
    }
    char *s = json_dumps(r, JSON_COMPACT);
    buf_puts(b, s);
    buf_putc(b, '\n');
    free(s);
    json_decref(r);
}

static const char code_grader[] = "{\"type\": \"code\", \"language\": \"python\", \"tests\": ["
                                  "{\"name\": \"one\", \"code\": \"assert double(2) == 4\"},"
                                  "{\"name\": \"two\", \"code\": \"assert double(-1) == -2\"}]}";
static const char judge_grader[] =
    "{\"type\": \"judge\", \"rubric\": [\"mentions single-flight\"]}";

static char *make_run(int torn)
{
    char *dir = tu_tmpdir("gradecli");
    tu_write(dir, "run.json", run_json);
    struct buf b = {0};
    add_record(&b, "r0001", "sum", "What is 2+2?", "It is 4.",
               "{\"type\": \"numeric\", \"answer\": 4}", NULL);
    add_record(&b, "r0002", "sum", "What is 2+2?", "It is 5.",
               "{\"type\": \"numeric\", \"answer\": 4}", NULL);
    add_record(&b, "r0003", "double", "Write double(x).",
               "```python\ndef double(x):\n    return 2 * x\n```", code_grader, NULL);
    add_record(&b, "r0004", "double", "Write double(x).",
               "```python\ndef double(x):\n    return x + 2\n```", code_grader, NULL);
    add_record(&b, "r0005", "cache", "How do you stop a cache stampede?",
               "GOOD: single-flight per key plus stale-while-revalidate.", judge_grader, NULL);
    add_record(&b, "r0006", "cache", "How do you stop a cache stampede?", "BAD: reboot.",
               judge_grader, NULL);
    add_record(&b, "r0007", "cache", "How do you stop a cache stampede?", "NONSENSE", judge_grader,
               NULL);
    add_record(&b, "w0001", "sum", "What is 2+2?", "4", "{\"type\": \"numeric\", \"answer\": 4}",
               "{\"warmup\": true}");
    add_record(&b, "r0008", "sum", "What is 2+2?", "", "{\"type\": \"numeric\", \"answer\": 4}",
               "{\"error\": \"connection reset by peer\"}");
    add_record(&b, "r0009", "free", "Say hi.", "hi", NULL, NULL);
    if (torn)
        buf_puts(&b, "{\"schema\": 1, \"id\": \"r0010\", \"resp");
    tu_write(dir, "requests.jsonl", buf_str(&b));
    buf_free(&b);
    return dir;
}

/* requests.jsonl as {id: record}. */
static json_t *records(const char *dir)
{
    char path[FS_PATH_MAX], err[ERR_LEN];
    fs_path_join(path, sizeof path, dir, "requests.jsonl");
    struct buf b = {0};
    assert_int_equal(fs_read_file(path, 0, &b, err), 0);
    json_t *all = json_object();
    const char *line = buf_str(&b);
    int n = 0;
    while (*line) {
        const char *eol = strchr(line, '\n');
        assert_non_null(eol); /* every line complete */
        json_error_t je;
        json_t *r = json_loadb(line, (size_t)(eol - line), 0, &je);
        if (!r)
            fail_msg("line %d of the rewritten file is not JSON: %s", n + 1, je.text);
        json_object_set_new(all, json_string_value(json_object_get(r, "id")), r);
        line = eol + 1;
        n++;
    }
    buf_free(&b);
    return all;
}

static json_t *grade_of(json_t *recs, const char *id)
{
    json_t *r = json_object_get(recs, id);
    assert_non_null(r);
    return json_object_get(r, "grade");
}

static double score_of(json_t *recs, const char *id)
{
    json_t *s = json_object_get(grade_of(recs, id), "score");
    return json_is_number(s) ? json_number_value(s) : NAN;
}

static int run_tool(char *const argv[], struct buf *out, struct buf *err)
{
    buf_reset(out);
    buf_reset(err);
    return tu_run(argv, NULL, out, err);
}

static void test_grade_with_judge(void **state)
{
    (void)state;
    struct fakeserver *fs;
    char err[ERR_LEN];
    assert_int_equal(
        fakeserver_start(&fs,
                         "{\"flavour\": \"ollama\", \"models\": [{\"name\": \"judge:32b\", "
                         "\"digest\": \"sha256:feedbeef\"}],"
                         " \"rules\": [{\"contains\": \"GOOD:\", \"answer\": \"Score: 9/10\"},"
                         " {\"contains\": \"BAD:\", \"answer\": \"**2**\"}],"
                         " \"answer\": \"I cannot say.\"}",
                         err),
        0);
    char *dir = make_run(1);
    struct buf out = {0}, errb = {0};
    char *argv[] = {JB_TOOL,   "grade",       dir,
                    "--judge", "judge:32b",   "--judge-engine",
                    "ollama",  "--judge-url", (char *)fakeserver_url(fs),
                    NULL};
    int rc = run_tool(argv, &out, &errb);
    if (rc != 0)
        fail_msg("exit %d\nstdout: %s\nstderr: %s", rc, buf_str(&out), buf_str(&errb));
    /* The torn last line was dropped with a warning naming its line. */
    assert_non_null(strstr(buf_str(&errb), "requests.jsonl:11"));

    json_t *recs = records(dir);
    assert_int_equal(json_object_size(recs), 10);
    assert_true(score_of(recs, "r0001") == 10);
    assert_true(score_of(recs, "r0002") == 0);
    assert_true(score_of(recs, "r0003") == 10);
    assert_true(score_of(recs, "r0004") == 5); /* right for 2, wrong for -1: partial */
    assert_true(score_of(recs, "r0005") == 9);
    assert_true(score_of(recs, "r0006") == 2);
    /* A reply that is not a score leaves the answer ungraded, with the reason. */
    assert_true(isnan(score_of(recs, "r0007")));
    assert_non_null(strstr(json_string_value(json_object_get(grade_of(recs, "r0007"), "skipped")),
                           "could not be read"));
    /* The judge's identity is stored with its score. */
    json_t *jd = json_object_get(grade_of(recs, "r0005"), "judge");
    assert_string_equal(json_string_value(json_object_get(jd, "model")), "judge:32b");
    assert_string_equal(json_string_value(json_object_get(jd, "engine")), "ollama");
    assert_string_equal(json_string_value(json_object_get(jd, "url")), fakeserver_url(fs));
    assert_string_equal(json_string_value(json_object_get(jd, "digest")), "sha256:feedbeef");
    /* Warm-ups and records without a grader are not graded; failed requests say why. */
    assert_true(json_is_null(grade_of(recs, "w0001")) || !grade_of(recs, "w0001"));
    assert_true(json_is_null(grade_of(recs, "r0009")) || !grade_of(recs, "r0009"));
    assert_true(isnan(score_of(recs, "r0008")));
    assert_string_equal(json_string_value(json_object_get(grade_of(recs, "r0008"), "skipped")),
                        "the request failed");
    /* The rest of each record is untouched. */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(recs, "r0003"), "response")),
        "```python\ndef double(x):\n    return 2 * x\n```");
    assert_true(json_number_value(json_object_get(json_object_get(recs, "r0001"), "total_j")) ==
                50.0);
    json_decref(recs);

    /* The judge got the rubric prompt. */
    json_t *body = fakeserver_last_body(fs, "/api/chat");
    assert_non_null(body);
    char *text = json_dumps(body, 0);
    assert_non_null(strstr(text, "mentions single-flight"));
    free(text);
    json_decref(body);

    /* The report was rebuilt with the scores. */
    char path[FS_PATH_MAX];
    fs_path_join(path, sizeof path, dir, "summary.md");
    struct buf md = {0};
    assert_int_equal(fs_read_file(path, 0, &md, err), 0);
    assert_non_null(strstr(buf_str(&md), "Technical Score"));
    buf_free(&md);

    /* --only-ungraded keeps existing scores; without a judge, judge prompts
     * that were graded stay as they were, and a regrade without one says "no judge". */
    fakeserver_stop(fs);
    char *argv2[] = {JB_TOOL, "grade", dir, "--only-ungraded", "--no-report", NULL};
    rc = run_tool(argv2, &out, &errb);
    assert_int_equal(rc, 0);
    recs = records(dir);
    assert_true(score_of(recs, "r0005") == 9);
    assert_non_null(
        strstr(json_string_value(json_object_get(grade_of(recs, "r0007"), "skipped")), "no judge"));
    json_decref(recs);
    /* A full regrade without the judge (or with one that does not answer)
     * cannot grade the judge prompts again: their scores are kept, and
     * that is said. */
    char *argv3[] = {JB_TOOL, "grade", dir, "--no-report", NULL};
    rc = run_tool(argv3, &out, &errb);
    assert_int_equal(rc, 0);
    recs = records(dir);
    assert_true(score_of(recs, "r0005") == 9);
    assert_true(score_of(recs, "r0006") == 2);
    assert_non_null(strstr(buf_str(&errb), "kept the score"));
    assert_true(score_of(recs, "r0003") == 10);
    json_decref(recs);
    buf_free(&out);
    buf_free(&errb);
    tu_rmtree_free(dir);
}

static void test_grade_refusals(void **state)
{
    (void)state;
    struct buf out = {0}, errb = {0};
    /* Bad usage. */
    char *a1[] = {JB_TOOL, "grade", NULL};
    assert_int_equal(run_tool(a1, &out, &errb), 2);
    char *a2[] = {JB_TOOL, "grade", "/nonexistent/run", NULL};
    assert_int_equal(run_tool(a2, &out, &errb), 2);
    char *a3[] = {JB_TOOL, "grade", "x", "--judge-reps", "0", "--judge", "m", NULL};
    assert_int_equal(run_tool(a3, &out, &errb), 2);
    char *a4[] = {JB_TOOL, "grade", "x", "--judge-url", "http://127.0.0.1:1", NULL};
    assert_int_equal(run_tool(a4, &out, &errb), 2);

    /* A run that is still going is left alone unless --force. */
    char *dir = make_run(0);
    tu_write(dir, "run.json", "{\"schema\": 1, \"status\": \"running\"}");
    char path[FS_PATH_MAX], err[ERR_LEN];
    fs_path_join(path, sizeof path, dir, "requests.jsonl");
    struct buf before = {0}, after = {0};
    assert_int_equal(fs_read_file(path, 0, &before, err), 0);
    char *a5[] = {JB_TOOL, "grade", dir, "--no-report", NULL};
    assert_int_not_equal(run_tool(a5, &out, &errb), 0);
    assert_non_null(strstr(buf_str(&errb), "still going"));
    assert_int_equal(fs_read_file(path, 0, &after, err), 0);
    assert_string_equal(buf_str(&before), buf_str(&after));
    char *a6[] = {JB_TOOL, "grade", dir, "--no-report", "--force", NULL};
    assert_int_equal(run_tool(a6, &out, &errb), 0);
    json_t *recs = records(dir);
    assert_true(score_of(recs, "r0001") == 10);
    json_decref(recs);

    /* A judge that cannot be reached: the judge prompts stay ungraded, the rest is graded. */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", fakeserver_unused_port());
    char *a7[] = {JB_TOOL,   "grade", dir,           "--no-report", "--force",
                  "--judge", "j",     "--judge-url", url,           NULL};
    int rc = run_tool(a7, &out, &errb);
    assert_int_equal(rc, 0);
    recs = records(dir);
    assert_true(isnan(score_of(recs, "r0005")));
    assert_non_null(strstr(json_string_value(json_object_get(grade_of(recs, "r0005"), "skipped")),
                           "judge failed"));
    assert_true(score_of(recs, "r0003") == 10);
    json_decref(recs);
    buf_free(&before);
    buf_free(&after);
    buf_free(&out);
    buf_free(&errb);
    tu_rmtree_free(dir);
}

/* SIGINT while a sandboxed answer loops: the tool stops at once, the file
 * is whole, the answers graded so far keep their grades. */
static void test_grade_interrupted(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("gradeint");
    tu_write(dir, "run.json", run_json);
    struct buf b = {0};
    add_record(&b, "r0001", "sum", "What is 2+2?", "It is 4.",
               "{\"type\": \"numeric\", \"answer\": 4}", NULL);
    add_record(
        &b, "r0002", "loop", "Write spin().",
        "```python\ndef spin():\n    while True:\n        pass\n```",
        "{\"type\": \"code\", \"language\": \"python\", \"tests\": [{\"code\": \"spin()\"}]}",
        NULL);
    add_record(&b, "r0003", "sum", "What is 2+2?", "It is 4.",
               "{\"type\": \"numeric\", \"answer\": 4}", NULL);
    tu_write(dir, "requests.jsonl", buf_str(&b));
    buf_free(&b);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        execl(JB_TOOL, JB_TOOL, "grade", dir, "--timeout", "60", "--no-report", (char *)NULL);
        _exit(127);
    }
    usleep(1500 * 1000);
    kill(pid, SIGINT);
    double t0 = jb_clock_s();
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(jb_clock_s() - t0 < 10); /* not the 60 s the loop was allowed */
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    json_t *recs = records(dir);
    assert_int_equal(json_object_size(recs), 3);
    assert_true(score_of(recs, "r0001") == 10);
    assert_null(json_object_get(json_object_get(recs, "r0002"), "grade"));
    assert_null(json_object_get(json_object_get(recs, "r0003"), "grade"));
    json_decref(recs);
    tu_rmtree_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grade_with_judge),
        cmocka_unit_test(test_grade_refusals),
        cmocka_unit_test(test_grade_interrupted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
