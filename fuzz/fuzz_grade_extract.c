/* The grade layer's readers of model output: grade_extract_number(),
 * grade_extract_code() (with and without a language and entry names),
 * grade_parse_judge_reply(), and the text graders (exact, regex, contains,
 * numeric, json) through grade_answer(), all on the same answer text.
 * Model output is the least trusted input joulebench has. */
#include "fuzz.h"

#include <jansson.h>
#include <math.h>

#include "common/err.h"
#include "grade/grade.h"

/* Graders that run no program and need no judge (docs/suites.md). */
static const char *const specs[] = {
    "{\"type\": \"exact\", \"answers\": [\"4\", \"four\"], \"last_line\": true}",
    "{\"type\": \"exact\", \"answer\": \"Paris\", \"whitespace\": \"exact\", "
    "\"case_sensitive\": true}",
    "{\"type\": \"regex\", \"patterns\": [\"\\\\bO\\\\(1\\\\)\", \"hash ?map\"], "
    "\"forbid\": [\"O\\\\(n\\\\^2\\\\)\"], \"flags\": \"imsx\"}",
    "{\"type\": \"contains\", \"all\": [\"mutex\"], \"any\": [\"while\", \"\\u00e9\"], "
    "\"none\": [\"busy\"]}",
    "{\"type\": \"numeric\", \"answer\": 46.8, \"abs_tol\": 0.001}",
    "{\"type\": \"json\", \"required\": [\"name\", \"/a/b/0\", \"/~0~1\"], "
    "\"values\": {\"age\": 30, \"/tags/0\": \"x\"}}",
};

static json_t *spec_json[sizeof specs / sizeof specs[0]];
static json_t *entry;

static void drop_specs(void)
{
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        json_decref(spec_json[i]);
    json_decref(entry);
}

static void load_specs(void)
{
    if (entry)
        return;
    json_error_t je;
    char err[ERR_LEN] = "";
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        spec_json[i] = json_loads(specs[i], 0, &je);
        if (!spec_json[i] || grade_spec_check(spec_json[i], err))
            fuzz_fail("spec %zu: %s", i, spec_json[i] ? err : je.text);
    }
    entry = json_pack("[ss]", "solve", "Cache");
    atexit(drop_specs);
}

int fuzz_grade_extract(const uint8_t *data, size_t size)
{
    load_specs();
    char *text = fuzz_cstr(data, size);
    int worst = 0;

    double v = NAN;
    char how[64];
    int rc = grade_extract_number(text, &v, how, sizeof how);
    if (rc != 0 && rc != JB_ERR_NOTFOUND)
        fuzz_fail("grade_extract_number: %d", rc);
    if (rc < worst)
        worst = rc;

    static const char *const langs[] = {"python", "c", "json", ""};
    for (size_t i = 0; i < sizeof langs / sizeof langs[0]; i++) {
        char *code = grade_extract_code(text, langs[i], (i & 1) ? NULL : entry);
        if (!code)
            fuzz_fail("grade_extract_code gave NULL");
        if (strlen(code) > strlen(text) + 8 * (strlen(text) / 4 + 1))
            fuzz_fail("grade_extract_code grew %zu bytes into %zu", strlen(text), strlen(code));
        free(code);
    }

    double score = NAN;
    char why[256];
    rc = grade_parse_judge_reply(text, &score, why, sizeof why);
    if (rc == 0 && !(score >= 0 && score <= 10))
        fuzz_fail("judge score %g outside 0..10", score);
    if (rc != 0 && rc != JB_ERR_FORMAT)
        fuzz_fail("grade_parse_judge_reply: %d", rc);
    if (rc < worst)
        worst = rc;

    struct grade_options opt = {0};
    char err[ERR_LEN] = "";
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        struct grade_result r;
        grade_result_init(&r);
        rc = grade_answer(spec_json[i], "the prompt", text, &opt, &r, err);
        if (rc)
            fuzz_fail("spec %zu: %s", i, err);
        if (r.graded && !(r.score >= 0 && r.score <= 10))
            fuzz_fail("spec %zu: score %g", i, r.score);
        json_t *g = grade_result_json(&r);
        if (!g)
            fuzz_fail("spec %zu: no grade object", i);
        json_decref(g);
        grade_result_free(&r);
    }
    free(text);
    return worst;
}
