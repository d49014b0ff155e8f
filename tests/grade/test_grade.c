/* The graders: right answers score 10, wrong ones 0, partial ones in
 * between; graders that cannot run leave the answer ungraded with a reason. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/str.h"
#include "grade/grade.h"
#include "grade/sandbox.h"
#include "testutil.h"

static json_t *spec_of(const char *text)
{
    json_error_t je;
    json_t *s = json_loads(text, 0, &je);
    if (!s)
        fail_msg("bad spec in the test: %s: %s", text, je.text);
    return s;
}

/* Grades answer under spec (JSON text); returns the score (NAN if ungraded). */
static double grade(const char *spec_text, const char *answer, struct grade_result *r)
{
    json_t *spec = spec_of(spec_text);
    char err[ERR_LEN];
    grade_result_init(r);
    int rc = grade_answer(spec, "the question", answer, NULL, r, err);
    json_decref(spec);
    if (rc)
        fail_msg("grade_answer: %s", err);
    return r->score;
}

static double score_of(const char *spec_text, const char *answer)
{
    struct grade_result r;
    double s = grade(spec_text, answer, &r);
    grade_result_free(&r);
    return s;
}

static void test_exact(void **state)
{
    (void)state;
    const char *spec = "{\"type\": \"exact\", \"answer\": \"Paris\"}";
    assert_true(score_of(spec, "Paris") == 10);
    assert_true(score_of(spec, "  **paris**.\n") == 10);
    assert_true(score_of(spec, "Paris, France") == 0);
    assert_true(score_of(spec, "") == 0);
    assert_true(score_of("{\"type\": \"exact\", \"answer\": \"Paris\", \"case_sensitive\": true}",
                         "paris") == 0);
    assert_true(score_of("{\"type\": \"exact\", \"answers\": [\"4\", \"four\"]}", "Four") == 10);
    assert_true(score_of("{\"type\": \"exact\", \"answer\": \"a  b\", \"whitespace\": \"exact\"}",
                         "a b") == 0);
    assert_true(score_of("{\"type\": \"exact\", \"answer\": \"42\", \"last_line\": true}",
                         "Let me think.\nIt is\n42\n") == 10);
    struct grade_result r;
    grade(spec, "London", &r);
    assert_int_equal(r.passed, 0);
    assert_int_equal(r.total, 1);
    assert_non_null(strstr(r.detail, "london"));
    grade_result_free(&r);
}

static void test_regex_contains(void **state)
{
    (void)state;
    const char *spec =
        "{\"type\": \"regex\", \"patterns\": [\"\\\\bO\\\\(1\\\\)\", \"hash ?map\"], "
        "\"forbid\": [\"O\\\\(n\\\\^2\\\\)\"], \"flags\": \"i\"}";
    assert_true(score_of(spec, "Use a Hash map and a linked list for O(1) get and put.") == 10);
    struct grade_result r;
    double s = grade(spec, "A hashmap gives O(n^2).", &r);
    assert_true(fabs(s - 10.0 / 3) < 1e-9); /* 1 of 3 checks */
    assert_int_equal(r.passed, 1);
    assert_int_equal(r.total, 3);
    assert_non_null(strstr(r.detail, "forbidden"));
    grade_result_free(&r);
    assert_true(score_of(spec, "no idea") == 10.0 / 3); /* only the forbid check passes */

    const char *c = "{\"type\": \"contains\", \"all\": [\"mutex\", \"condition variable\"], "
                    "\"any\": [\"spurious\", \"while loop\"], \"none\": [\"busy-wait\"]}";
    assert_true(score_of(c, "Lock the Mutex, wait on a condition variable in a while loop.") == 10);
    assert_true(score_of(c, "Just busy-wait.") == 0);
    assert_true(score_of(c, "Use a mutex.") == 10.0 * 2 / 4); /* mutex + no busy-wait */
}

static void test_spec_check(void **state)
{
    (void)state;
    char err[ERR_LEN];
    const char *bad[] = {
        "{\"answer\": 1}",
        "{\"type\": \"nope\"}",
        "{\"type\": \"exact\"}",
        "{\"type\": \"exact\", \"answer\": \"x\", \"anwser\": \"y\"}",
        "{\"type\": \"regex\", \"pattern\": \"(unclosed\"}",
        "{\"type\": \"regex\", \"pattern\": \"x\", \"flags\": \"q\"}",
        "{\"type\": \"numeric\", \"answer\": \"ten\"}",
        "{\"type\": \"numeric\", \"answer\": 1, \"abs_tol\": -1}",
        "{\"type\": \"code\", \"language\": \"rust\", \"tests\": [{\"code\": \"x\"}]}",
        "{\"type\": \"code\", \"language\": \"python\", \"tests\": []}",
        "{\"type\": \"code\", \"language\": \"python\", \"tests\": [{\"name\": \"x\"}]}",
        ("{\"type\": \"code\", \"language\": \"python\", \"tests\": [{\"code\": \"x\", "
         "\"stdout\": \"y\"}]}"),
        "{\"type\": \"contains\"}",
        "{\"type\": \"judge\", \"rubric\": 5}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *s = spec_of(bad[i]);
        err[0] = '\0';
        if (grade_spec_check(s, err) == 0)
            fail_msg("accepted a bad spec: %s", bad[i]);
        assert_true(strlen(err) > 10);
        json_decref(s);
    }
    json_t *s = spec_of("{\"type\": \"regex\", \"pattern\": \"(unclosed\"}");
    grade_spec_check(s, err);
    assert_non_null(strstr(err, "offset"));
    json_decref(s);
    s = spec_of("{\"type\": \"exact\", \"answer\": \"x\", \"anwser\": \"y\"}");
    grade_spec_check(s, err);
    assert_non_null(strstr(err, "anwser"));
    json_decref(s);
}

static void test_extract_number(void **state)
{
    (void)state;
    struct {
        const char *text;
        double want;
    } cases[] = {
        {"42", 42},
        {"The total is 1,234,567 apples.", 1234567},
        {"So x = -5.", -5},
        {"3 - 5 = -2", -2},
        {"Step 1: 12 + 30 = 42. Step 2: done.", 2},
        {"Answer: 17\nCheck: 17 * 2 = 34", 17},
        {"**Final answer:** 2.5 km", 2.5},
        {"The answer is 0.125, since 1/8 = 0.125", 0.125},
        {"We get $\\boxed{\\frac{3}{4}}$. (From 6/8 = 3/4 earlier, and 99.)", 0.75},
        {"\\boxed{12} then \\boxed{13}", 13},
        {"x^2 - 1 = 0 gives \\boxed{x = -1}", -1},
        {"That is 3/4 of it", 0.75},
        {"Use H2O and v2, value 7", 7},
        {"about 6.02e23 of them", 6.02e23},
        {"the ratio is .5", 0.5},
        {"list: 1,2,3", 3},
        {"\xE2\x88\x92"
         "7 degrees",
         -7},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double v = NAN;
        char how[64];
        if (grade_extract_number(cases[i].text, &v, how, sizeof how))
            fail_msg("no number in \"%s\"", cases[i].text);
        if (fabs(v - cases[i].want) > 1e-9 * fmax(1, fabs(cases[i].want)))
            fail_msg("\"%s\": got %g (%s), want %g", cases[i].text, v, how, cases[i].want);
    }
    double v;
    assert_int_equal(grade_extract_number("no digits here", &v, NULL, 0), JB_ERR_NOTFOUND);
    assert_int_equal(grade_extract_number("", &v, NULL, 0), JB_ERR_NOTFOUND);
}

static void test_numeric(void **state)
{
    (void)state;
    const char *spec = "{\"type\": \"numeric\", \"answer\": 1000000}";
    assert_true(score_of(spec, "It comes to 1,000,000.") == 10);
    assert_true(score_of(spec, "It comes to 1,000,001.") == 0);
    assert_true(score_of(spec, "I cannot say.") == 0);
    const char *tol = "{\"type\": \"numeric\", \"answer\": 3.14159, \"abs_tol\": 0.01}";
    assert_true(score_of(tol, "pi is about 3.14") == 10);
    assert_true(score_of(tol, "pi is about 3.2") == 0);
    const char *rel = "{\"type\": \"numeric\", \"answer\": 200, \"rel_tol\": 0.05}";
    assert_true(score_of(rel, "Answer: 209 W") == 10);
    assert_true(score_of(rel, "Answer: 211 W") == 0);
    struct grade_result r;
    grade(spec, "Answer: 999999", &r);
    assert_non_null(strstr(r.detail, "999999"));
    assert_non_null(strstr(r.detail, "answer"));
    grade_result_free(&r);
}

static void test_json(void **state)
{
    (void)state;
    const char *spec = "{\"type\": \"json\", \"required\": [\"name\", \"/tags/0\"], "
                       "\"values\": {\"age\": 30, \"/address/city\": \"Oslo\"}}";
    const char *right =
        "Here you go:\n```json\n{\"name\": \"Ada\", \"age\": 30.0, \"tags\": [\"x\"], "
        "\"address\": {\"city\": \"Oslo\"}}\n```\n";
    assert_true(score_of(spec, right) == 10);
    assert_true(score_of(spec, "{\"name\": \"Ada\", \"age\": 30, \"tags\": [\"x\"], "
                               "\"address\": {\"city\": \"Oslo\"}}") == 10);
    assert_true(score_of(spec, "I would write {\"name\": \"Ada\", \"age\": 31} as the result.") ==
                10.0 * 2 / 5); /* valid + name */
    assert_true(score_of(spec, "{not json") == 0);
    struct grade_result r;
    grade(spec, "{\"name\": \"Ada\", \"age\": 31}", &r);
    assert_non_null(strstr(r.detail, "\"age\" is 31, expected 30"));
    grade_result_free(&r);
}

static void test_extract_code(void **state)
{
    (void)state;
    char *c =
        grade_extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone.", "python", NULL);
    assert_string_equal(c, "def f():\n    return 1\n");
    free(c);
    /* The language's block wins over others; the longest of several. */
    c = grade_extract_code(
        "```bash\npip install x\n```\n```py\nx = 1\n```\n```python\ny = 2\nz = 3\n```", "python",
        NULL);
    assert_string_equal(c, "y = 2\nz = 3\n");
    free(c);
    /* With entry names: the block that defines them. */
    json_t *entry = spec_of("[\"LRUCache\"]");
    c = grade_extract_code(
        "```python\nclass LRUCache:\n    pass\n```\nUsage:\n```python\n"
        "cache = make()\ncache.put(1, 1)\ncache.get(1)\nprint('long usage')\n```",
        "python", entry);
    assert_string_equal(c, "class LRUCache:\n    pass\n");
    free(c);
    /* Split over blocks: joined. */
    c = grade_extract_code("```python\nimport x\n```\n```python\nclass LRU:\n    pass\n```",
                           "python", entry);
    assert_string_equal(c, "import x\n\n\nclass LRU:\n    pass\n");
    free(c);
    json_decref(entry);
    /* Untagged block, tilde fence, indented fence. */
    c = grade_extract_code("text\n~~~\nint x;\n~~~\n", "c", NULL);
    assert_string_equal(c, "int x;\n");
    free(c);
    c = grade_extract_code("  ```c\nint y;\n  ```\n", "c", NULL);
    assert_string_equal(c, "int y;\n");
    free(c);
    /* Unclosed (cut by max_tokens): runs to the end. */
    c = grade_extract_code("```python\ndef f():\n    return", "python", NULL);
    assert_string_equal(c, "def f():\n    return");
    free(c);
    /* A fence inside needs the same length to close. */
    c = grade_extract_code("````markdown\n```python\nx\n```\n````", "python", NULL);
    assert_string_equal(c, "```python\nx\n```\n");
    free(c);
    /* No fence: the whole answer. */
    c = grade_extract_code("def g(): pass", "python", NULL);
    assert_string_equal(c, "def g(): pass");
    free(c);
}

static int have_program(const char *name)
{
    char err[ERR_LEN], out[4096];
    struct sandbox *sb;
    if (sandbox_open(&sb, NULL, err))
        return 0;
    int ok = sandbox_find_program(sb, name, NULL, out, sizeof out) == 0;
    sandbox_close(sb);
    return ok;
}

static const char py_spec[] =
    "{\"type\": \"code\", \"language\": \"python\", \"entry\": [\"add\", \"mul\"], \"tests\": ["
    "{\"name\": \"add\", \"code\": \"assert add(2, 3) == 5\"},"
    "{\"name\": \"add negative\", \"code\": \"assert add(-2, -3) == -5\"},"
    "{\"name\": \"mul\", \"code\": \"assert mul(4, 5) == 20, mul(4, 5)\"},"
    "{\"name\": \"echo\", \"stdin\": \"3 4\\n\", \"stdout\": \"7\\n\"}]}";

static void test_code_python(void **state)
{
    (void)state;
    if (!have_program("python3")) {
        printf("SKIP: no python3 here\n");
        skip();
    }
    const char *right =
        "Sure:\n```python\nimport sys\n\ndef add(a, b):\n    return a + b\n\n"
        "def mul(a, b):\n    return a * b\n\nif __name__ == '__main__':\n"
        "    a, b = map(int, sys.stdin.read().split())\n    print(add(a, b))\n```\n";
    const char *partial = "```python\nimport sys\ndef add(a, b):\n    return a + b\n"
                          "def mul(a, b):\n    return a + b\n```";
    const char *wrong = "```python\ndef add(a, b):\n    return a - b\n```";
    const char *exits = "```python\nimport sys\ndef add(a, b):\n    return a + b\n"
                        "def mul(a, b):\n    return a * b\nsys.exit(0)\n```";
    struct grade_result r;
    assert_true(grade(py_spec, right, &r) == 10);
    assert_int_equal(r.passed, 4);
    json_t *g = grade_result_json(&r);
    assert_true(json_is_array(json_object_get(g, "tests")));
    assert_true(json_is_array(json_object_get(json_object_get(g, "sandbox"), "protections")));
    json_decref(g);
    grade_result_free(&r);

    /* add passes twice, mul fails, and the script prints nothing to stdin's "3 4" */
    assert_true(grade(py_spec, partial, &r) == 10.0 * 2 / 4);
    assert_non_null(strstr(r.detail, "2/4 tests passed"));
    assert_non_null(strstr(r.detail, "AssertionError: 9"));
    grade_result_free(&r);

    assert_true(grade(py_spec, wrong, &r) == 0);
    assert_non_null(strstr(r.detail, "NameError") ? r.detail : strstr(r.detail, "AssertionError"));
    grade_result_free(&r);

    /* sys.exit(0) at import: nothing passes, and the reason says so. */
    assert_true(grade(py_spec, exits, &r) == 0);
    assert_non_null(strstr(r.detail, "SystemExit"));
    grade_result_free(&r);

    assert_true(grade(py_spec, "I don't know.", &r) == 0);
    assert_true(r.graded);
    grade_result_free(&r);
}

static void test_code_hostile_answer(void **state)
{
    (void)state;
    if (!have_program("python3")) {
        printf("SKIP: no python3 here\n");
        skip();
    }
    /* One test loops, one forks, one passes: the grading goes on and says why. */
    const char *spec =
        "{\"type\": \"code\", \"language\": \"python\", \"timeout_s\": 1, \"tests\": ["
        "{\"name\": \"loop\", \"code\": \"spin()\"},"
        "{\"name\": \"bomb\", \"code\": \"bomb()\"},"
        "{\"name\": \"ok\", \"code\": \"assert ok() == 1\"}]}";
    const char *answer = "```python\nimport os\ndef spin():\n    while True:\n        pass\n"
                         "def bomb():\n    while True:\n        os.fork()\n"
                         "def ok():\n    return 1\n```";
    struct grade_result r;
    double s = grade(spec, answer, &r);
    assert_true(fabs(s - 10.0 / 3) < 1e-9);
    json_t *g = grade_result_json(&r);
    json_t *tests = json_object_get(g, "tests");
    assert_int_equal(json_array_size(tests), 3);
    const char *loop_reason =
        json_string_value(json_object_get(json_array_get(tests, 0), "reason"));
    assert_non_null(loop_reason);
    assert_non_null(strstr(loop_reason, "timed out"));
    const char *bomb_reason =
        json_string_value(json_object_get(json_array_get(tests, 1), "reason"));
    assert_non_null(bomb_reason);
    printf("loop: %s\nbomb: %s\n", loop_reason, bomb_reason);
    assert_true(json_is_true(json_object_get(json_array_get(tests, 2), "passed")));
    json_decref(g);
    grade_result_free(&r);
}

static void test_code_c(void **state)
{
    (void)state;
    if (!have_program("cc") && !have_program("gcc")) {
        printf("SKIP: no C compiler here\n");
        skip();
    }
    const char *spec = "{\"type\": \"code\", \"language\": \"c\", \"tests\": ["
                       "{\"name\": \"small\", \"code\": \"CHECK(gcd(12, 18) == 6);\"},"
                       "{\"name\": \"prime\", \"code\": \"CHECK(gcd(17, 5) == 1);\"},"
                       "{\"name\": \"zero\", \"code\": \"CHECK(gcd(0, 9) == 9);\"},"
                       "{\"name\": \"program\", \"stdin\": \"12 18\\n\", \"stdout\": \"6\\n\"}]}";
    const char *right =
        "```c\n#include <stdio.h>\nint gcd(int a, int b) {\n    while (b) { int t = a % b; "
        "a = b; b = t; }\n    return a;\n}\nint main(void) {\n    int a, b;\n"
        "    if (scanf(\"%d %d\", &a, &b) == 2) printf(\"%d\\n\", gcd(a, b));\n"
        "    return 0;\n}\n```";
    /* Right only when one divides the other or they are coprime; prints nothing. */
    const char *partial = "```c\nint gcd(int a, int b) { return a % b == 0 ? b : 1; }\n"
                          "int main(void) { return 0; }\n```";
    const char *broken = "```c\nint gcd(int a, int b) { return a +; }\n```";
    struct grade_result r;
    assert_true(grade(spec, right, &r) == 10);
    grade_result_free(&r);
    assert_true(grade(spec, partial, &r) == 10.0 * 2 / 4);
    printf("partial C: %s\n", r.detail);
    grade_result_free(&r);
    assert_true(grade(spec, broken, &r) == 0);
    assert_non_null(strstr(r.detail, "does not compile"));
    grade_result_free(&r);
}

static void test_no_runner_is_not_zero(void **state)
{
    (void)state;
    char *empty = tu_tmpdir("norunner");
    json_t *spec = spec_of(py_spec);
    struct grade_options opt = {0};
    opt.runner_path = empty;
    struct grade_result r;
    grade_result_init(&r);
    char err[ERR_LEN];
    assert_int_equal(
        grade_answer(spec, "q", "```python\ndef add(a,b): return a+b\n```", &opt, &r, err), 0);
    assert_false(r.graded);
    assert_true(isnan(r.score));
    assert_string_equal(r.skipped, "no python3");
    json_t *g = grade_result_json(&r);
    assert_true(json_is_null(json_object_get(g, "score")));
    assert_string_equal(json_string_value(json_object_get(g, "skipped")), "no python3");
    json_decref(g);
    grade_result_free(&r);
    json_decref(spec);
    tu_rmtree_free(empty);
}

static void test_result_json(void **state)
{
    (void)state;
    struct grade_result r;
    grade("{\"type\": \"numeric\", \"answer\": 4}", "2 + 2 = 4", &r);
    json_t *g = grade_result_json(&r);
    assert_true(json_number_value(json_object_get(g, "score")) == 10);
    assert_string_equal(json_string_value(json_object_get(g, "grader")), "numeric");
    assert_int_equal(json_integer_value(json_object_get(g, "passed")), 1);
    assert_int_equal(json_integer_value(json_object_get(g, "total")), 1);
    assert_true(json_is_null(json_object_get(g, "skipped")));
    assert_true(json_is_null(json_object_get(g, "judge")));
    assert_true(json_is_string(json_object_get(g, "detail")));
    json_decref(g);
    grade_result_free(&r);
    /* Model text that is not UTF-8 still makes valid JSON. */
    grade("{\"type\": \"exact\", \"answer\": \"x\"}", "bad \xff\xfe bytes", &r);
    g = grade_result_json(&r);
    assert_non_null(json_object_get(g, "detail"));
    assert_non_null(strstr(json_string_value(json_object_get(g, "detail")), "bad ?? bytes"));
    json_decref(g);
    grade_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact),
        cmocka_unit_test(test_regex_contains),
        cmocka_unit_test(test_spec_check),
        cmocka_unit_test(test_extract_number),
        cmocka_unit_test(test_numeric),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_extract_code),
        cmocka_unit_test(test_code_python),
        cmocka_unit_test(test_code_hostile_answer),
        cmocka_unit_test(test_code_c),
        cmocka_unit_test(test_no_runner_is_not_zero),
        cmocka_unit_test(test_result_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
