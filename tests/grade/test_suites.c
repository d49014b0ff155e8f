/* The built-in suites: well-formed, every reference answer scores 10, every
 * deliberately wrong answer (tests/data/grade/wrong_answers.json) scores
 * below 10, and for Python code tasks an answer made of empty stubs scores
 * 0, so no test passes without the answer doing the work. Judge prompts go
 * through a scripted judge that checks the rubric prompt it is given.
 *
 * Run as `test_suites [coding|math|systems|default]` (CTest runs each suite
 * as its own test, so they can run side by side). */
#include <ctype.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/str.h"
#include "common/timeutil.h"
#include "engines/engine.h"
#include "grade/grade.h"
#include "grade/sandbox.h"

static json_t *load(const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        fail_msg("%s:%d:%d: %s", path, je.line, je.column, je.text);
    return j;
}

static json_t *load_suite(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.json", JB_SUITES_DIR, name);
    return load(path);
}

static json_t *wrong_answers(const char *suite)
{
    static json_t *all;
    if (!all)
        all = load(JB_TEST_DATA "/grade/wrong_answers.json");
    return json_object_get(json_object_get(all, "answers"), suite);
}

/* ---- a judge that knows the reference ------------------------------------ */

struct judge_state {
    const char *reference; /* the answer that deserves 10 */
    json_t *rubric;        /* points that must appear in the judge's prompt */
    int calls;
};

static int judge_generate(struct engine *e, const struct engine_request *req,
                          engine_token_fn on_token, void *user, struct engine_result *res)
{
    (void)on_token;
    (void)user;
    struct judge_state *s = e->impl;
    s->calls++;
    for (size_t i = 0; i < json_array_size(s->rubric); i++)
        if (!strstr(req->prompt, json_string_value(json_array_get(s->rubric, i))))
            fail_msg("the judge prompt lacks the rubric point \"%s\"",
                     json_string_value(json_array_get(s->rubric, i)));
    int is_ref = s->reference && strstr(req->prompt, s->reference) != NULL;
    buf_puts(&res->response, is_ref ? "Score: 10/10" : "Score: 2/10 - misses most points.");
    return 0;
}

static const struct engine_ops judge_ops = {.name = "fake", .generate = judge_generate};

/* ---- checks -------------------------------------------------------------- */

static int have_python = -1, have_cc = -1;

static void probe_runners(void)
{
    if (have_python >= 0)
        return;
    char err[ERR_LEN], out[4096];
    struct sandbox *sb;
    have_python = have_cc = 0;
    if (sandbox_open(&sb, NULL, err))
        return;
    have_python = sandbox_find_program(sb, "python3", NULL, out, sizeof out) == 0;
    have_cc = sandbox_find_program(sb, "cc", NULL, out, sizeof out) == 0 ||
              sandbox_find_program(sb, "gcc", NULL, out, sizeof out) == 0;
    sandbox_close(sb);
}

/* Empty stand-ins for the names a Python task asks for. */
static char *python_stubs(const json_t *entry)
{
    struct buf b;
    buf_init(&b, 0);
    buf_puts(&b, "```python\n");
    for (size_t i = 0; i < json_array_size(entry); i++) {
        const char *name = json_string_value(json_array_get(entry, i));
        if (isupper((unsigned char)name[0]))
            buf_printf(&b,
                       "class %s:\n    def __init__(self, *a, **k):\n        pass\n"
                       "    def __getattr__(self, n):\n        return lambda *a, **k: None\n"
                       "    def __len__(self):\n        return 0\n",
                       name);
        else
            buf_printf(&b, "def %s(*a, **k):\n    return None\n", name);
    }
    buf_puts(&b, "```\n");
    return buf_take(&b);
}

struct counts {
    int prompts, code, c_code, numeric, judge, graded_refs;
};

static double grade_one(const json_t *p, const char *answer, struct judge_state *js, char *detail,
                        size_t size)
{
    struct engine e;
    memset(&e, 0, sizeof e);
    e.ops = &judge_ops;
    str_lcpy(e.name, "fake", sizeof e.name);
    e.impl = js;
    struct grade_judge j;
    char err[ERR_LEN];
    assert_int_equal(grade_judge_init(&j, &e, "fake-judge", 1, err), 0);
    struct grade_options opt = {0};
    opt.judge = &j;
    struct grade_result r;
    grade_result_init(&r);
    const json_t *spec = json_object_get(p, "grader");
    if (grade_answer(spec, json_string_value(json_object_get(p, "prompt")), answer, &opt, &r, err))
        fail_msg("%s: %s", json_string_value(json_object_get(p, "id")), err);
    if (!r.graded)
        fail_msg("%s: not graded: %s", json_string_value(json_object_get(p, "id")), r.skipped);
    snprintf(detail, size, "%s", r.detail);
    double s = r.score;
    grade_result_free(&r);
    return s;
}

static void check_suite(const char *name, struct counts *c)
{
    probe_runners();
    json_t *suite = load_suite(name);
    assert_string_equal(json_string_value(json_object_get(suite, "name")), name);
    assert_true(json_is_string(json_object_get(suite, "description")));
    assert_true(json_integer_value(json_object_get(suite, "version")) >= 1);
    json_t *defaults = json_object_get(suite, "defaults");
    assert_true(json_is_object(defaults));
    assert_true(json_integer_value(json_object_get(defaults, "max_tokens")) > 0);
    json_t *prompts = json_object_get(suite, "prompts");
    assert_true(json_array_size(prompts) > 0);
    json_t *wrong = wrong_answers(name);
    json_t *seen = json_object();
    memset(c, 0, sizeof *c);
    size_t i;
    json_t *p;
    json_array_foreach(prompts, i, p)
    {
        const char *id = json_string_value(json_object_get(p, "id"));
        if (!id || !id[0])
            fail_msg("%s: prompts[%zu] has no id", name, i);
        if (json_object_get(seen, id))
            fail_msg("%s: the id \"%s\" is used twice", name, id);
        json_object_set_new(seen, id, json_true());
        const char *prompt = json_string_value(json_object_get(p, "prompt"));
        const char *ref = json_string_value(json_object_get(p, "reference"));
        if (!prompt || strlen(prompt) < 40)
            fail_msg("%s/%s: the prompt is missing or too short", name, id);
        if (!ref)
            fail_msg("%s/%s: no reference answer", name, id);
        if (!json_is_array(json_object_get(p, "tags")))
            fail_msg("%s/%s: no tags", name, id);
        const json_t *spec = json_object_get(p, "grader");
        char err[ERR_LEN];
        if (grade_spec_check(spec, err))
            fail_msg("%s/%s: %s", name, id, err);
        const char *type = json_string_value(json_object_get(spec, "type"));
        const char *lang = json_string_value(json_object_get(spec, "language"));
        c->prompts++;
        if (!strcmp(type, "code")) {
            c->code++;
            if (!strcmp(lang, "c"))
                c->c_code++;
            if ((!strcmp(lang, "c") && !have_cc) || (!strcmp(lang, "python") && !have_python)) {
                printf("%s/%s: not run, no %s here\n", name, id,
                       strcmp(lang, "c") ? "python3" : "cc");
                continue;
            }
        } else if (!strcmp(type, "numeric")) {
            c->numeric++;
        } else if (!strcmp(type, "judge")) {
            c->judge++;
        }

        double t0 = jb_clock_s();
        struct judge_state js = {ref, json_object_get(spec, "rubric"), 0};
        char detail[1024];
        double s = grade_one(p, ref, &js, detail, sizeof detail);
        if (s != 10)
            fail_msg("%s/%s: the reference answer scores %g, not 10: %s", name, id, s, detail);
        c->graded_refs++;

        const char *bad = json_string_value(json_object_get(wrong, id));
        if (!bad)
            fail_msg("%s/%s: no deliberately wrong answer in wrong_answers.json", name, id);
        double wrong_s = grade_one(p, bad, &js, detail, sizeof detail);
        if (!(wrong_s < 10))
            fail_msg("%s/%s: the wrong answer scores %g: %s", name, id, wrong_s, detail);
        char wrong_detail[1024];
        str_lcpy(wrong_detail, detail, sizeof wrong_detail);

        if (!strcmp(type, "code") && !strcmp(lang, "python")) {
            char *stub = python_stubs(json_object_get(spec, "entry"));
            s = grade_one(p, stub, &js, detail, sizeof detail);
            free(stub);
            if (s != 0)
                fail_msg("%s/%s: empty stubs score %g; some test does not exercise the answer: %s",
                         name, id, s, detail);
        }
        printf("%-8s %-24s reference 10, wrong %4.1f (%.1f s) %s\n", name, id, wrong_s,
               jb_clock_s() - t0, wrong_detail);
    }
    json_decref(seen);
    json_decref(suite);
}

static void skip_if_no_runner(void)
{
    probe_runners();
    if (!have_python) {
        printf("SKIP: no python3 here, so the code tasks' tests cannot run\n");
        skip();
    }
}

static void test_coding(void **state)
{
    (void)state;
    skip_if_no_runner();
    struct counts c;
    check_suite("coding", &c);
    assert_true(c.prompts >= 20);
    assert_int_equal(c.code, c.prompts); /* every task has executable tests */
    assert_true(c.c_code >= 3);
    assert_true(c.code - c.c_code > c.c_code); /* mostly Python */
}

static void test_math(void **state)
{
    (void)state;
    struct counts c;
    check_suite("math", &c);
    assert_true(c.prompts >= 30);
    assert_int_equal(c.numeric, c.prompts);
}

static void test_systems(void **state)
{
    (void)state;
    struct counts c;
    check_suite("systems", &c);
    assert_true(c.prompts >= 10);
    assert_int_equal(c.judge, c.prompts);
}

static void test_default(void **state)
{
    (void)state;
    skip_if_no_runner();
    struct counts c;
    check_suite("default", &c);
    assert_true(c.prompts >= 5 && c.prompts <= 8);
    assert_true(c.judge >= 2);
    assert_true(c.code >= 2);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest all[] = {
        cmocka_unit_test(test_coding),
        cmocka_unit_test(test_math),
        cmocka_unit_test(test_systems),
        cmocka_unit_test(test_default),
    };
    if (argc > 1) {
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
            if (!strcmp(all[i].name + strlen("test_"), argv[1])) {
                const struct CMUnitTest one[] = {all[i]};
                return cmocka_run_group_tests_name(argv[1], one, NULL, NULL);
            }
        }
        fprintf(stderr, "unknown suite %s (coding, math, systems, default)\n", argv[1]);
        return 2;
    }
    return cmocka_run_group_tests(all, NULL, NULL);
}
