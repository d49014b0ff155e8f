/*
 * grade.c — the grader table, spec checking, and the result object.
 */
#include "grade/grade.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/str.h"
#include "grade/grade_impl.h"

void grade_result_init(struct grade_result *r)
{
    memset(r, 0, sizeof *r);
    r->score = NAN;
}

void grade_result_free(struct grade_result *r)
{
    if (r->extra)
        json_decref(r->extra);
    grade_result_init(r);
}

void grade_set_score(struct grade_result *r, int passed, int total)
{
    r->passed = passed;
    r->total = total;
    r->graded = 1;
    r->skipped[0] = '\0';
    r->score = total > 0 ? 10.0 * passed / total : 0.0;
}

void grade_skip(struct grade_result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->skipped, sizeof r->skipped, fmt, ap);
    va_end(ap);
    r->graded = 0;
    r->score = NAN;
}

void grade_detail_add(struct grade_result *r, const char *fmt, ...)
{
    char part[sizeof r->detail];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(part, sizeof part, fmt, ap);
    va_end(ap);
    if (r->detail[0])
        str_lcat(r->detail, "; ", sizeof r->detail);
    str_lcat(r->detail, part, sizeof r->detail);
}

json_t *grade_extra(struct grade_result *r)
{
    if (!r->extra)
        r->extra = json_object();
    return r->extra;
}

char *grade_clip(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return str_dup(s);
    /* Back up to the start of a UTF-8 sequence. */
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    char *out = malloc(max + 4);
    if (!out)
        return NULL;
    memcpy(out, s, max);
    memcpy(out + max, "...", 4);
    return out;
}

json_t *grade_json_text(const char *s)
{
    size_t n = strlen(s);
    if (str_utf8_valid(s, n))
        return json_stringn(s, n);
    /* Bytes from program output need not be UTF-8; keep what is, mark the rest. */
    char *copy = str_dup(s);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < n;) {
        size_t len = 1;
        unsigned char c = (unsigned char)copy[i];
        if (c >= 0xF0)
            len = 4;
        else if (c >= 0xE0)
            len = 3;
        else if (c >= 0xC0)
            len = 2;
        if (c < 0x80 || (i + len <= n && str_utf8_valid(copy + i, len))) {
            i += len;
            continue;
        }
        copy[i++] = '?';
    }
    json_t *j = json_string(copy);
    free(copy);
    return j ? j : json_string("");
}

/* ---- spec checking ----------------------------------------------------- */

#define F_TESTS 100
#define F_TEXTS 101

struct field {
    const char *name;
    int type; /* JSON_STRING, JSON_ARRAY (of strings), JSON_OBJECT, JSON_REAL (any number),
                 JSON_TRUE (boolean), F_TESTS (array of test objects), F_TEXTS (a string
                 or an array of strings) */
};

struct grader_kind {
    const char *type;
    const struct field *fields;
};

static const struct field f_exact[] = {{"answer", JSON_STRING},       {"answers", JSON_ARRAY},
                                       {"case_sensitive", JSON_TRUE}, {"whitespace", JSON_STRING},
                                       {"last_line", JSON_TRUE},      {NULL, 0}};
static const struct field f_regex[] = {{"pattern", JSON_STRING},
                                       {"patterns", JSON_ARRAY},
                                       {"forbid", JSON_ARRAY},
                                       {"flags", JSON_STRING},
                                       {NULL, 0}};
static const struct field f_contains[] = {{"all", JSON_ARRAY},
                                          {"any", JSON_ARRAY},
                                          {"none", JSON_ARRAY},
                                          {"case_sensitive", JSON_TRUE},
                                          {NULL, 0}};
static const struct field f_numeric[] = {
    {"answer", JSON_REAL}, {"abs_tol", JSON_REAL}, {"rel_tol", JSON_REAL}, {NULL, 0}};
static const struct field f_json[] = {{"required", JSON_ARRAY}, {"values", JSON_OBJECT}, {NULL, 0}};
static const struct field f_code[] = {{"language", JSON_STRING}, {"tests", F_TESTS},
                                      {"setup", JSON_STRING},    {"entry", JSON_ARRAY},
                                      {"timeout_s", JSON_REAL},  {NULL, 0}};
static const struct field f_judge[] = {{"rubric", F_TEXTS}, {"reference", JSON_STRING}, {NULL, 0}};

static const struct grader_kind kinds[] = {
    {"exact", f_exact}, {"regex", f_regex}, {"contains", f_contains}, {"numeric", f_numeric},
    {"json", f_json},   {"code", f_code},   {"judge", f_judge},
};

static int is_string_array(const json_t *v)
{
    if (!json_is_array(v))
        return 0;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) if (!json_is_string(x)) return 0;
    return 1;
}

static int check_field(const char *type, const struct field *f, const json_t *v, char *err)
{
    int ok;
    const char *want;
    switch (f->type) {
    case JSON_STRING:
        ok = json_is_string(v), want = "a string";
        break;
    case JSON_ARRAY:
        ok = is_string_array(v), want = "an array of strings";
        break;
    case JSON_OBJECT:
        ok = json_is_object(v), want = "an object";
        break;
    case F_TESTS:
        ok = json_is_array(v), want = "an array of test objects";
        break;
    case JSON_REAL:
        ok = json_is_number(v), want = "a number";
        break;
    case JSON_TRUE:
        ok = json_is_boolean(v), want = "true or false";
        break;
    default:
        ok = json_is_string(v) || is_string_array(v), want = "a string or an array of strings";
    }
    if (!ok)
        return err_setf(err, JB_ERR_USAGE, "grader \"%s\": \"%s\" must be %s", type, f->name, want);
    return 0;
}

static int check_code_tests(const json_t *tests, char *err)
{
    if (json_array_size(tests) == 0)
        return err_setf(err, JB_ERR_USAGE,
                        "grader \"code\": \"tests\" is empty; give at least one "
                        "{\"name\", \"code\"} or {\"name\", \"stdin\", \"stdout\"} test");
    size_t i;
    json_t *t;
    json_array_foreach(tests, i, t)
    {
        if (!json_is_object(t))
            return err_setf(err, JB_ERR_USAGE, "grader \"code\": tests[%zu] must be an object", i);
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)t, key, v)
        {
            if (strcmp(key, "name") && strcmp(key, "code") && strcmp(key, "stdin") &&
                strcmp(key, "stdout"))
                return err_setf(err, JB_ERR_USAGE,
                                "grader \"code\": tests[%zu] has an unknown field \"%s\" (known: "
                                "name, code, stdin, stdout)",
                                i, key);
            if (!json_is_string(v))
                return err_setf(err, JB_ERR_USAGE,
                                "grader \"code\": tests[%zu].%s must be a string", i, key);
        }
        int has_code = json_object_get(t, "code") != NULL;
        int has_out = json_object_get(t, "stdout") != NULL;
        if (has_code == has_out)
            return err_setf(err, JB_ERR_USAGE,
                            "grader \"code\": tests[%zu] needs either \"code\" (assertions) or "
                            "\"stdout\" (expected output, with optional \"stdin\"), not %s",
                            i, has_code ? "both" : "neither");
        if (has_code && json_object_get(t, "stdin"))
            return err_setf(err, JB_ERR_USAGE,
                            "grader \"code\": tests[%zu] has \"stdin\" but no \"stdout\"", i);
    }
    return 0;
}

int grade_spec_check(const json_t *spec, char *err)
{
    if (!json_is_object(spec))
        return err_setf(err, JB_ERR_USAGE, "a grader must be an object with a \"type\"");
    const char *type = json_string_value(json_object_get(spec, "type"));
    if (!type)
        return err_setf(err, JB_ERR_USAGE,
                        "grader: \"type\" is missing (exact, regex, contains, numeric, json, code "
                        "or judge)");
    const struct grader_kind *k = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(kinds[i].type, type))
            k = &kinds[i];
    if (!k)
        return err_setf(err, JB_ERR_USAGE,
                        "grader: unknown type \"%s\" (exact, regex, contains, numeric, json, code "
                        "or judge)",
                        type);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)spec, key, v)
    {
        if (!strcmp(key, "type"))
            continue;
        const struct field *f = NULL;
        for (const struct field *x = k->fields; x->name; x++)
            if (!strcmp(x->name, key))
                f = x;
        if (!f) {
            char known[256] = "";
            for (const struct field *x = k->fields; x->name; x++) {
                if (known[0])
                    str_lcat(known, ", ", sizeof known);
                str_lcat(known, x->name, sizeof known);
            }
            return err_setf(err, JB_ERR_USAGE, "grader \"%s\": unknown field \"%s\" (known: %s)",
                            type, key, known);
        }
        int rc = check_field(type, f, v, err);
        if (rc)
            return rc;
    }

    if (!strcmp(type, "exact")) {
        if (!json_object_get(spec, "answer") &&
            json_array_size(json_object_get(spec, "answers")) == 0)
            return err_setf(err, JB_ERR_USAGE, "grader \"exact\": give \"answer\" or \"answers\"");
        const char *ws = json_string_value(json_object_get(spec, "whitespace"));
        if (ws && strcmp(ws, "normalize") && strcmp(ws, "exact"))
            return err_setf(err, JB_ERR_USAGE,
                            "grader \"exact\": \"whitespace\" is \"normalize\" or \"exact\", not "
                            "\"%s\"",
                            ws);
    } else if (!strcmp(type, "regex")) {
        return grade_regex_check(spec, err);
    } else if (!strcmp(type, "contains")) {
        if (json_array_size(json_object_get(spec, "all")) +
                json_array_size(json_object_get(spec, "any")) +
                json_array_size(json_object_get(spec, "none")) ==
            0)
            return err_setf(err, JB_ERR_USAGE,
                            "grader \"contains\": give at least one of \"all\", \"any\", \"none\"");
    } else if (!strcmp(type, "numeric")) {
        if (!json_is_number(json_object_get(spec, "answer")))
            return err_setf(err, JB_ERR_USAGE,
                            "grader \"numeric\": \"answer\" (a number) is missing");
        const char *tols[] = {"abs_tol", "rel_tol"};
        for (int i = 0; i < 2; i++) {
            json_t *t = json_object_get(spec, tols[i]);
            if (t && !(json_number_value(t) >= 0))
                return err_setf(err, JB_ERR_USAGE, "grader \"numeric\": \"%s\" must be >= 0",
                                tols[i]);
        }
    } else if (!strcmp(type, "code")) {
        const char *lang = json_string_value(json_object_get(spec, "language"));
        if (!lang || (strcmp(lang, "python") && strcmp(lang, "c")))
            return err_setf(err, JB_ERR_USAGE,
                            "grader \"code\": \"language\" must be \"python\" or \"c\"%s",
                            lang ? "" : " (it is missing)");
        json_t *tests = json_object_get(spec, "tests");
        if (!tests)
            return err_setf(err, JB_ERR_USAGE, "grader \"code\": \"tests\" is missing");
        int rc = check_code_tests(tests, err);
        if (rc)
            return rc;
        json_t *t = json_object_get(spec, "timeout_s");
        if (t && !(json_number_value(t) > 0 && json_number_value(t) <= 600))
            return err_setf(err, JB_ERR_USAGE,
                            "grader \"code\": \"timeout_s\" must be above 0 and at most 600");
    }
    return 0;
}

/* ---- grading ----------------------------------------------------------- */

int grade_answer(const json_t *spec, const char *prompt, const char *answer,
                 const struct grade_options *opt, struct grade_result *out, char *err)
{
    static const struct grade_options defaults;
    if (!opt)
        opt = &defaults;
    int rc = grade_spec_check(spec, err);
    if (rc)
        return rc;
    if (out->extra)
        json_decref(out->extra);
    grade_result_init(out);
    const char *type = json_string_value(json_object_get(spec, "type"));
    str_lcpy(out->grader, type, sizeof out->grader);
    if (!answer)
        answer = "";
    if (!prompt)
        prompt = "";
    if (!strcmp(type, "exact"))
        grade_exact(spec, answer, out);
    else if (!strcmp(type, "regex"))
        grade_regex(spec, answer, out);
    else if (!strcmp(type, "contains"))
        grade_contains(spec, answer, out);
    else if (!strcmp(type, "numeric"))
        grade_numeric(spec, answer, out);
    else if (!strcmp(type, "json"))
        grade_json(spec, answer, out);
    else if (!strcmp(type, "code"))
        grade_code(spec, answer, opt, out);
    else
        grade_judge(spec, prompt, answer, opt, out);
    return 0;
}

json_t *grade_result_json(const struct grade_result *r)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "score", r->graded ? json_real(r->score) : json_null());
    json_object_set_new(o, "grader", json_string(r->grader));
    json_object_set_new(o, "passed", json_integer(r->passed));
    json_object_set_new(o, "total", json_integer(r->total));
    json_object_set_new(o, "detail", grade_json_text(r->detail));
    json_object_set_new(o, "skipped", r->graded ? json_null() : grade_json_text(r->skipped));
    json_object_set_new(o, "judge", json_null());
    if (r->extra)
        json_object_update(o, r->extra);
    return o;
}
