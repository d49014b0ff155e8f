/*
 * grade_text.c — graders that read the answer's text: exact, regex,
 * contains, numeric, json. Each check that passes counts one; the score is
 * the fraction passed x 10 (docs/suites.md).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/buf.h"
#include "common/str.h"
#include "grade/grade_impl.h"

#ifndef PCRE2_MATCH_INVALID_UTF
#define PCRE2_MATCH_INVALID_UTF 0
#endif

static int spec_bool(const json_t *spec, const char *key, int def)
{
    json_t *v = json_object_get(spec, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

static void lower_ascii(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* ---- exact ------------------------------------------------------------- */

/* The "normalize" form: trimmed, white space runs as one space, wrapping
 * markdown (**x**, `x`, "x", 'x') removed, one final '.' dropped. */
static void normalize_text(char *s)
{
    char *w = s;
    int space = 0;
    for (const char *r = s; *r; r++) {
        if (isspace((unsigned char)*r)) {
            space = 1;
            continue;
        }
        if (space && w != s)
            *w++ = ' ';
        space = 0;
        *w++ = *r;
    }
    *w = '\0';
    static const char *const wraps[][2] = {{"**", "**"}, {"__", "__"}, {"`", "`"},
                                           {"\"", "\""}, {"'", "'"},   {"*", "*"}};
    for (int changed = 1; changed;) {
        changed = 0;
        size_t n = strlen(s);
        if (n && s[n - 1] == '.') {
            s[--n] = '\0';
            changed = 1;
        }
        for (size_t i = 0; i < sizeof wraps / sizeof wraps[0]; i++) {
            size_t a = strlen(wraps[i][0]), b = strlen(wraps[i][1]);
            if (n >= a + b && !strncmp(s, wraps[i][0], a) && !strcmp(s + n - b, wraps[i][1])) {
                memmove(s, s + a, n - a - b);
                s[n - a - b] = '\0';
                str_trim(s);
                changed = 1;
                break;
            }
        }
    }
}

static char *last_line(const char *s)
{
    const char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    const char *start = end;
    while (start > s && start[-1] != '\n')
        start--;
    return str_ndup(start, (size_t)(end - start));
}

void grade_exact(const json_t *spec, const char *answer, struct grade_result *r)
{
    int cs = spec_bool(spec, "case_sensitive", 0);
    const char *ws = json_string_value(json_object_get(spec, "whitespace"));
    int norm = !ws || !strcmp(ws, "normalize");
    char *got = spec_bool(spec, "last_line", 0) ? last_line(answer) : str_dup(answer);
    if (!got) {
        grade_skip(r, "out of memory");
        return;
    }
    if (norm)
        normalize_text(got);
    if (!cs)
        lower_ascii(got);

    json_t *list = json_object_get(spec, "answers");
    json_t *one = json_object_get(spec, "answer");
    size_t n = json_array_size(list) + (one ? 1 : 0);
    int ok = 0;
    for (size_t i = 0; i < n && !ok; i++) {
        const char *want_raw =
            json_string_value(i < json_array_size(list) ? json_array_get(list, i) : one);
        char *want = str_dup(want_raw);
        if (!want)
            break;
        if (norm)
            normalize_text(want);
        if (!cs)
            lower_ascii(want);
        ok = !strcmp(got, want);
        free(want);
    }
    grade_set_score(r, ok, 1);
    if (!ok) {
        char *clip = grade_clip(got, 120);
        const char *first = json_string_value(one ? one : json_array_get(list, 0));
        grade_detail_add(r, "expected \"%s\"%s, got \"%s\"", first,
                         n > 1 ? " (or another accepted form)" : "", clip ? clip : "");
        free(clip);
    }
    free(got);
}

/* ---- regex ------------------------------------------------------------- */

static uint32_t regex_flags(const json_t *spec)
{
    uint32_t f = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    const char *s = json_string_value(json_object_get(spec, "flags"));
    for (; s && *s; s++) {
        if (*s == 'i')
            f |= PCRE2_CASELESS;
        else if (*s == 'm')
            f |= PCRE2_MULTILINE;
        else if (*s == 's')
            f |= PCRE2_DOTALL;
        else if (*s == 'x')
            f |= PCRE2_EXTENDED;
    }
    return f;
}

static pcre2_code *regex_compile(const char *pattern, uint32_t flags, char *why, size_t why_size)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, flags, &code, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof msg);
        snprintf(why, why_size, "does not compile at offset %zu: %s", (size_t)off, (char *)msg);
    }
    return re;
}

/* 1 if pattern matches text, 0 if not, -1 on a matching error. */
static int regex_matches(pcre2_code *re, const char *text)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md)
        return -1;
    int rc = pcre2_match(re, (PCRE2_SPTR)text, strlen(text), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    if (rc >= 0)
        return 1;
    return rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

/* Calls fn for each pattern of the spec: "pattern", then "patterns", then
 * "forbid" (forbid = 1). */
struct regex_item {
    const char *field;
    size_t index;
    const char *pattern;
    int forbid;
};

static size_t regex_items(const json_t *spec, struct regex_item *items, size_t max)
{
    size_t n = 0;
    const char *one = json_string_value(json_object_get(spec, "pattern"));
    if (one && n < max)
        items[n++] = (struct regex_item){"pattern", 0, one, 0};
    const char *fields[2] = {"patterns", "forbid"};
    for (int f = 0; f < 2; f++) {
        json_t *a = json_object_get(spec, fields[f]);
        for (size_t i = 0; i < json_array_size(a) && n < max; i++)
            items[n++] =
                (struct regex_item){fields[f], i, json_string_value(json_array_get(a, i)), f};
    }
    return n;
}

int grade_regex_check(const json_t *spec, char *err)
{
    struct regex_item items[64];
    size_t n = regex_items(spec, items, 64);
    if (n == 0)
        return err_setf(err, JB_ERR_USAGE,
                        "grader \"regex\": give \"pattern\", \"patterns\" or \"forbid\"");
    const char *flags = json_string_value(json_object_get(spec, "flags"));
    if (flags && flags[strspn(flags, "imsx")])
        return err_setf(err, JB_ERR_USAGE,
                        "grader \"regex\": \"flags\" takes the letters i, m, s, x, not \"%s\"",
                        flags);
    for (size_t i = 0; i < n; i++) {
        char why[200];
        pcre2_code *re = regex_compile(items[i].pattern, regex_flags(spec), why, sizeof why);
        if (!re)
            return err_setf(err, JB_ERR_USAGE, "grader \"regex\": %s%s%zu%s \"%s\" %s",
                            items[i].field, strcmp(items[i].field, "pattern") ? "[" : "",
                            items[i].index, strcmp(items[i].field, "pattern") ? "]" : "",
                            items[i].pattern, why);
        pcre2_code_free(re);
    }
    return 0;
}

void grade_regex(const json_t *spec, const char *answer, struct grade_result *r)
{
    struct regex_item items[64];
    size_t n = regex_items(spec, items, 64);
    int passed = 0;
    for (size_t i = 0; i < n; i++) {
        char why[200];
        pcre2_code *re = regex_compile(items[i].pattern, regex_flags(spec), why, sizeof why);
        int m = re ? regex_matches(re, answer) : -1;
        pcre2_code_free(re);
        if (m >= 0 && m != items[i].forbid)
            passed++;
        else if (m < 0)
            grade_detail_add(r, "/%s/ could not be matched", items[i].pattern);
        else
            grade_detail_add(r, items[i].forbid ? "forbidden /%s/ matched" : "/%s/ did not match",
                             items[i].pattern);
    }
    grade_set_score(r, passed, (int)n);
}

/* ---- contains ---------------------------------------------------------- */

void grade_contains(const json_t *spec, const char *answer, struct grade_result *r)
{
    int cs = spec_bool(spec, "case_sensitive", 0);
    char *text = str_dup(answer);
    if (!text) {
        grade_skip(r, "out of memory");
        return;
    }
    if (!cs)
        lower_ascii(text);
    int passed = 0, total = 0;
    const char *fields[3] = {"all", "any", "none"};
    for (int f = 0; f < 3; f++) {
        json_t *a = json_object_get(spec, fields[f]);
        size_t n = json_array_size(a);
        int any_found = 0;
        for (size_t i = 0; i < n; i++) {
            char *needle = str_dup(json_string_value(json_array_get(a, i)));
            if (!needle)
                continue;
            if (!cs)
                lower_ascii(needle);
            int found = strstr(text, needle) != NULL;
            free(needle);
            const char *orig = json_string_value(json_array_get(a, i));
            if (f == 0) {
                total++;
                if (found)
                    passed++;
                else
                    grade_detail_add(r, "missing \"%s\"", orig);
            } else if (f == 1) {
                any_found |= found;
            } else {
                total++;
                if (!found)
                    passed++;
                else
                    grade_detail_add(r, "contains \"%s\", which it must not", orig);
            }
        }
        if (f == 1 && n) {
            total++;
            if (any_found)
                passed++;
            else
                grade_detail_add(r, "none of the %zu accepted phrases (\"any\") appears", n);
        }
    }
    free(text);
    grade_set_score(r, passed, total);
}

/* ---- numeric ----------------------------------------------------------- */

struct num_tok {
    double value;
    size_t start, end; /* byte range in the text */
};

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* An integer or decimal at s[i] (no sign): digits with optional groups of
 * ",ddd", an optional ".ddd" and exponent. Writes the digits without the
 * commas into clean; returns the end, or i when there is none. */
static size_t scan_plain(const char *s, size_t i, char *clean, size_t cap, int *is_int)
{
    size_t j = i, w = 0;
    *is_int = 1;
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (w + 1 < cap)                                                                           \
            clean[w++] = (ch);                                                                     \
    } while (0)
    size_t lead = 0;
    while (is_digit(s[j])) {
        PUT(s[j]);
        j++;
        lead++;
    }
    if (lead > 0 && lead <= 3) {
        while (s[j] == ',' && is_digit(s[j + 1]) && is_digit(s[j + 2]) && is_digit(s[j + 3]) &&
               !is_digit(s[j + 4])) {
            PUT(s[j + 1]);
            PUT(s[j + 2]);
            PUT(s[j + 3]);
            j += 4;
        }
    }
    if (s[j] == '.' && is_digit(s[j + 1])) {
        *is_int = 0;
        PUT('.');
        j++;
        while (is_digit(s[j])) {
            PUT(s[j]);
            j++;
        }
    }
    if (j == i)
        return i;
    if ((s[j] == 'e' || s[j] == 'E') &&
        (is_digit(s[j + 1]) || ((s[j + 1] == '-' || s[j + 1] == '+') && is_digit(s[j + 2])))) {
        *is_int = 0;
        PUT('e');
        j++;
        if (s[j] == '-' || s[j] == '+') {
            PUT(s[j]);
            j++;
        }
        while (is_digit(s[j])) {
            PUT(s[j]);
            j++;
        }
    }
#undef PUT
    clean[w] = '\0';
    return j;
}

/* \frac{a}{b} (also \dfrac, \tfrac) at s[i]: the end, or i. */
static size_t scan_frac(const char *s, size_t i, double *value)
{
    static const char *const heads[] = {"\\frac{", "\\dfrac{", "\\tfrac{"};
    for (size_t h = 0; h < 3; h++) {
        size_t n = strlen(heads[h]);
        if (strncmp(s + i, heads[h], n))
            continue;
        size_t j = i + n;
        double part[2];
        for (int k = 0; k < 2; k++) {
            while (s[j] == ' ')
                j++;
            int neg = 0;
            if (s[j] == '-') {
                neg = 1;
                j++;
            }
            char clean[64];
            int is_int;
            size_t e = scan_plain(s, j, clean, sizeof clean, &is_int);
            if (e == j || str_to_double(clean, (size_t)-1, &part[k]))
                return i;
            if (neg)
                part[k] = -part[k];
            j = e;
            while (s[j] == ' ')
                j++;
            if (s[j] != '}')
                return i;
            j++;
            if (k == 0 && s[j] != '{')
                return i;
            if (k == 0)
                j++;
        }
        if (part[1] == 0)
            return i;
        *value = part[0] / part[1];
        return j;
    }
    return i;
}

/* The next number in s[from, to): 1 and its token, or 0. */
static int next_number(const char *s, size_t from, size_t to, struct num_tok *t)
{
    for (size_t i = from; i < to; i++) {
        double v;
        size_t e = scan_frac(s, i, &v);
        if (e != i) {
            *t = (struct num_tok){v, i, e};
            return 1;
        }
        size_t start = i, j = i;
        int neg = 0;
        int prev_ok =
            i == 0 || !(isalnum((unsigned char)s[i - 1]) || s[i - 1] == ')' || s[i - 1] == '_');
        if ((s[j] == '-' || s[j] == '+') && prev_ok &&
            (is_digit(s[j + 1]) || (s[j + 1] == '.' && is_digit(s[j + 2])))) {
            neg = s[j] == '-';
            j++;
        } else if (!strncmp(s + j, "\xE2\x88\x92", 3) && prev_ok && is_digit(s[j + 3])) {
            neg = 1; /* U+2212 MINUS SIGN */
            j += 3;
        }
        if (!is_digit(s[j]) && !(s[j] == '.' && is_digit(s[j + 1])))
            continue;
        /* A digit glued to a word on its left (x2, H2O, v1) is part of a name. */
        if (j == i && i > 0 &&
            (isalpha((unsigned char)s[i - 1]) || s[i - 1] == '_' || is_digit(s[i - 1]) ||
             s[i - 1] == '.')) {
            while (i + 1 < to && (is_digit(s[i + 1]) || s[i + 1] == '.'))
                i++;
            continue;
        }
        char clean[128] = "0";
        int is_int;
        size_t k = j;
        size_t end;
        if (s[k] == '.') {
            char tmp[126];
            end = scan_plain(s, k + 1, tmp, sizeof tmp, &is_int);
            snprintf(clean, sizeof clean, "0.%s", tmp);
            is_int = 0;
        } else {
            end = scan_plain(s, k, clean, sizeof clean, &is_int);
        }
        if (end == k || str_to_double(clean, (size_t)-1, &v))
            continue;
        /* a/b with whole numbers, written without spaces */
        if (is_int && s[end] == '/' && is_digit(s[end + 1])) {
            char den[64];
            int den_int;
            size_t e2 = scan_plain(s, end + 1, den, sizeof den, &den_int);
            double d;
            if (den_int && !str_to_double(den, (size_t)-1, &d) && d != 0) {
                v /= d;
                end = e2;
            }
        }
        if (end > to)
            end = to;
        *t = (struct num_tok){neg ? -v : v, start, end};
        return 1;
    }
    return 0;
}

static int last_number(const char *s, size_t from, size_t to, struct num_tok *out)
{
    struct num_tok t;
    int found = 0;
    size_t i = from;
    while (i < to && next_number(s, i, to, &t)) {
        *out = t;
        found = 1;
        i = t.end > i ? t.end : i + 1;
    }
    return found;
}

/* The content of the last \boxed{...} (or \fbox{...}): its byte range. */
static int last_boxed(const char *s, size_t *from, size_t *to)
{
    const char *heads[] = {"\\boxed{", "\\fbox{"};
    const char *best = NULL;
    size_t best_len = 0;
    for (int h = 0; h < 2; h++) {
        size_t n = strlen(heads[h]);
        for (const char *p = strstr(s, heads[h]); p; p = strstr(p + 1, heads[h]))
            if (!best || p > best) {
                best = p;
                best_len = n;
            }
    }
    if (!best)
        return 0;
    size_t i = (size_t)(best - s) + best_len;
    int depth = 1;
    size_t j = i;
    for (; s[j]; j++) {
        if (s[j] == '{')
            depth++;
        else if (s[j] == '}' && --depth == 0)
            break;
    }
    *from = i;
    *to = j; /* an unclosed box runs to the end */
    return 1;
}

int grade_extract_number(const char *text, double *value, char *how, size_t how_size)
{
    size_t len = strlen(text), from, to;
    struct num_tok t;
    if (last_boxed(text, &from, &to) && last_number(text, from, to, &t)) {
        *value = t.value;
        if (how)
            str_lcpy(how, "from the last \\boxed{}", how_size);
        return 0;
    }
    /* "answer:", "Answer is", "**Final answer:** ..." */
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR) "\\banswer\\b[\\s*_]*(?:is\\b|:|=)",
                                   PCRE2_ZERO_TERMINATED, PCRE2_CASELESS, &code, &off, NULL);
    if (re) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        size_t marker_end = 0;
        int found = 0;
        PCRE2_SIZE start = 0;
        while (md && start <= len &&
               pcre2_match(re, (PCRE2_SPTR)text, len, start, 0, md, NULL) >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            marker_end = ov[1];
            found = 1;
            start = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
        }
        if (md)
            pcre2_match_data_free(md);
        pcre2_code_free(re);
        if (found && next_number(text, marker_end, len, &t)) {
            *value = t.value;
            if (how)
                str_lcpy(how, "after the last \"answer:\"", how_size);
            return 0;
        }
    }
    if (last_number(text, 0, len, &t)) {
        *value = t.value;
        if (how)
            str_lcpy(how, "the last number in the answer", how_size);
        return 0;
    }
    return JB_ERR_NOTFOUND;
}

void grade_numeric(const json_t *spec, const char *answer, struct grade_result *r)
{
    double want = json_number_value(json_object_get(spec, "answer"));
    json_t *a = json_object_get(spec, "abs_tol"), *rel = json_object_get(spec, "rel_tol");
    double abs_tol = a ? json_number_value(a) : 1e-6;
    double rel_tol = rel ? json_number_value(rel) : 1e-9;
    double got;
    char how[64];
    if (grade_extract_number(answer, &got, how, sizeof how)) {
        grade_set_score(r, 0, 1);
        grade_detail_add(r, "no number found in the answer (expected %.10g)", want);
        return;
    }
    double tol = fmax(abs_tol, rel_tol * fabs(want));
    int ok = fabs(got - want) <= tol;
    grade_set_score(r, ok, 1);
    grade_detail_add(r, "%s %.10g (%s), expected %.10g", ok ? "found" : "wrong:", got, how, want);
}

/* ---- json -------------------------------------------------------------- */

/* Numbers compare by value (30 == 30.0); the rest as JSON. */
static int json_same(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    if (json_is_object(a) && json_is_object(b)) {
        if (json_object_size(a) != json_object_size(b))
            return 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v) if (!json_same(v, json_object_get(b, k))) return 0;
        return 1;
    }
    if (json_is_array(a) && json_is_array(b)) {
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!json_same(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    }
    return json_equal((json_t *)a, (json_t *)b);
}

/* "name" is a top-level member; "/a/b/0" a JSON Pointer (RFC 6901). */
static json_t *json_at(json_t *doc, const char *path)
{
    if (path[0] != '/')
        return json_object_get(doc, path);
    json_t *cur = doc;
    const char *p = path;
    while (cur && *p == '/') {
        p++;
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char tok[256];
        size_t w = 0;
        for (size_t i = 0; i < n && w + 1 < sizeof tok; i++) {
            if (p[i] == '~' && i + 1 < n && (p[i + 1] == '0' || p[i + 1] == '1')) {
                tok[w++] = p[i + 1] == '0' ? '~' : '/';
                i++;
            } else {
                tok[w++] = p[i];
            }
        }
        tok[w] = '\0';
        if (json_is_object(cur)) {
            cur = json_object_get(cur, tok);
        } else if (json_is_array(cur)) {
            uint64_t idx;
            cur = str_to_u64(tok, (size_t)-1, &idx) ? NULL : json_array_get(cur, (size_t)idx);
        } else {
            cur = NULL;
        }
        p += n;
    }
    return cur;
}

static json_t *try_parse(const char *s, size_t n)
{
    return json_loadb(s, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
}

/* The JSON document in an answer: the whole text; else a fenced block
 * (```json first); else from the first '{' or '[' to the last '}' or ']'. */
static json_t *find_json(const char *answer)
{
    char *trim = str_dup(answer);
    if (!trim)
        return NULL;
    str_trim(trim);
    json_t *doc = try_parse(trim, strlen(trim));
    free(trim);
    if (doc)
        return doc;
    char *code = grade_extract_code(answer, "json", NULL);
    if (code) {
        doc = try_parse(code, strlen(code));
        free(code);
        if (doc)
            return doc;
    }
    const char *o = strpbrk(answer, "{[");
    if (o) {
        char close = *o == '{' ? '}' : ']';
        const char *c = strrchr(answer, close);
        if (c && c > o)
            doc = try_parse(o, (size_t)(c - o) + 1);
    }
    return doc;
}

void grade_json(const json_t *spec, const char *answer, struct grade_result *r)
{
    json_t *doc = find_json(answer);
    json_t *req = json_object_get(spec, "required");
    json_t *vals = json_object_get(spec, "values");
    int total = 1 + (int)json_array_size(req) + (int)json_object_size(vals);
    if (!doc) {
        grade_set_score(r, 0, total);
        grade_detail_add(r, "no valid JSON found in the answer");
        return;
    }
    int passed = 1;
    for (size_t i = 0; i < json_array_size(req); i++) {
        const char *k = json_string_value(json_array_get(req, i));
        if (json_at(doc, k))
            passed++;
        else
            grade_detail_add(r, "missing \"%s\"", k);
    }
    const char *k;
    json_t *want;
    json_object_foreach(vals, k, want)
    {
        json_t *got = json_at(doc, k);
        if (got && json_same(got, want)) {
            passed++;
        } else {
            char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
            char *g = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            char *gc = g ? grade_clip(g, 80) : NULL;
            grade_detail_add(r, "\"%s\" is %s, expected %s", k, gc ? gc : "missing", w ? w : "?");
            free(w);
            free(g);
            free(gc);
        }
    }
    json_decref(doc);
    grade_set_score(r, passed, total);
}
