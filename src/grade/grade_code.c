/*
 * grade_code.c — the "code" grader: take the code out of the answer, run the
 * prompt's tests against it in the sandbox, score the fraction that pass.
 *
 * Python: the answer becomes solution.py; each assertion test runs in its own
 * interpreter (import solution, run the spec's setup and the test in the
 * module's names). C: the answer and the tests are compiled into one program
 * once (the answer's main() renamed, so the tests' main() runs), then run once
 * per test. Output tests run the answer as a program with the given stdin.
 * A test passes only when its process exits 0 and prints a nonce it could not
 * know in advance, so an answer that exits early (sys.exit at import) passes
 * nothing. Every process gets the same per-run timeout, and the answer as a
 * whole three times that: tests left when it is spent fail as not run.
 */
#include <ctype.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/str.h"
#include "common/timeutil.h"
#include "grade/grade_impl.h"
#include "grade/sandbox.h"

#define CODE_DEFAULT_TIMEOUT_S 10.0
#define CODE_BUDGET_RUNS 3.0

/* ---- finding the code in an answer -------------------------------------- */

struct block {
    const char *start;
    size_t len;
    char tag[32];
};

/* Fenced blocks (``` or ~~~, at least three, indented at most three spaces),
 * their info string's first word as the tag. A block left open runs to the
 * end (an answer cut by max_tokens). */
static size_t find_blocks(const char *s, struct block *out, size_t max)
{
    size_t n = 0;
    const char *line = s;
    int in_block = 0;
    char fence = 0;
    size_t fence_len = 0;
    while (*line && n < max) {
        const char *eol = strchr(line, '\n');
        const char *next = eol ? eol + 1 : line + strlen(line);
        const char *p = line;
        int indent = 0;
        while (*p == ' ' && indent < 4) {
            p++;
            indent++;
        }
        size_t run = 0;
        char c = *p;
        if (indent <= 3 && (c == '`' || c == '~'))
            while (p[run] == c)
                run++;
        if (!in_block) {
            if (run >= 3) {
                in_block = 1;
                fence = c;
                fence_len = run;
                struct block *b = &out[n];
                memset(b, 0, sizeof *b);
                const char *info = p + run;
                while (*info == ' ' || *info == '\t' || *info == '{' || *info == '.')
                    info++;
                size_t t = 0;
                while (info[t] && !isspace((unsigned char)info[t]) && info[t] != '}' &&
                       info[t] != '`' && t + 1 < sizeof b->tag) {
                    b->tag[t] = (char)tolower((unsigned char)info[t]);
                    t++;
                }
                b->tag[t] = '\0';
                b->start = next;
            }
        } else if (c == fence && run >= fence_len) {
            const char *rest = p + run;
            while (*rest == ' ' || *rest == '\t' || *rest == '\r')
                rest++;
            if (*rest == '\n' || *rest == '\0') {
                out[n].len = (size_t)(line - out[n].start);
                n++;
                in_block = 0;
            }
        }
        line = next;
    }
    if (in_block && n < max) {
        out[n].len = strlen(out[n].start);
        n++;
    }
    return n;
}

static int tag_matches(const char *tag, const char *language)
{
    static const char *const py[] = {"python", "py", "python3", "py3", NULL};
    static const char *const c[] = {"c", "h", NULL};
    static const char *const js[] = {"json", "jsonc", NULL};
    const char *const *list = !strcmp(language, "python") ? py
                              : !strcmp(language, "c")    ? c
                              : !strcmp(language, "json") ? js
                                                          : NULL;
    if (!list)
        return !strcmp(tag, language);
    for (; *list; list++)
        if (!strcmp(tag, *list))
            return 1;
    return 0;
}

/* 1 if name appears in s[0, len) as a whole identifier. */
static int has_identifier(const char *s, size_t len, const char *name)
{
    size_t n = strlen(name);
    if (!n)
        return 1;
    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(s + i, name, n))
            continue;
        int before = i > 0 && (isalnum((unsigned char)s[i - 1]) || s[i - 1] == '_');
        int after = i + n < len && (isalnum((unsigned char)s[i + n]) || s[i + n] == '_');
        if (!before && !after)
            return 1;
    }
    return 0;
}

char *grade_extract_code(const char *answer, const char *language, const json_t *entry)
{
    struct block blocks[64];
    size_t n = find_blocks(answer, blocks, 64);
    if (n == 0)
        return str_dup(answer);
    /* Candidates: the language's blocks, else untagged ones, else all. */
    size_t cand[64], nc = 0;
    for (size_t i = 0; i < n; i++)
        if (tag_matches(blocks[i].tag, language))
            cand[nc++] = i;
    if (!nc)
        for (size_t i = 0; i < n; i++)
            if (!blocks[i].tag[0])
                cand[nc++] = i;
    if (!nc)
        for (size_t i = 0; i < n; i++)
            cand[nc++] = i;

    size_t n_entry = json_array_size(entry);
    if (n_entry) {
        for (size_t k = 0; k < nc; k++) {
            const struct block *b = &blocks[cand[k]];
            size_t e = 0;
            while (e < n_entry &&
                   has_identifier(b->start, b->len, json_string_value(json_array_get(entry, e))))
                e++;
            if (e == n_entry)
                return str_ndup(b->start, b->len);
        }
        /* No one block has it all: the code was split; join them. */
        struct buf joined;
        buf_init(&joined, 0);
        for (size_t k = 0; k < nc; k++) {
            if (k)
                buf_puts(&joined, "\n\n");
            buf_append(&joined, blocks[cand[k]].start, blocks[cand[k]].len);
        }
        return buf_take(&joined);
    }
    size_t best = cand[0];
    for (size_t k = 1; k < nc; k++)
        if (blocks[cand[k]].len > blocks[best].len)
            best = cand[k];
    return str_ndup(blocks[best].start, blocks[best].len);
}

/* ---- running tests ------------------------------------------------------ */

static void make_nonce(char *out, size_t size)
{
    unsigned char raw[16] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, raw, sizeof raw);
        (void)n;
        close(fd);
    }
    /* Mixed with the clock, in case /dev/urandom is not there. */
    double t = jb_clock_s();
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] ^= ((const unsigned char *)&t)[i % sizeof t];
    size_t w = str_lcpy(out, "JB-PASS-", size);
    for (size_t i = 0; i < sizeof raw && w + 2 < size; i++, w += 2)
        snprintf(out + w, size - w, "%02x", raw[i]);
}

/* A JSON string literal of s, which is also a valid Python string literal. */
static int put_literal(struct buf *b, const char *s)
{
    json_t *j = json_string(s);
    if (!j)
        j = json_string(""); /* not UTF-8: the test text itself is ours, so this is a spec bug */
    char *lit = json_dumps(j, JSON_ENCODE_ANY);
    json_decref(j);
    if (!lit)
        return JB_ERR_NOMEM;
    int rc = buf_puts(b, lit);
    free(lit);
    return rc;
}

static char *python_harness(const json_t *spec, const char *nonce)
{
    struct buf b;
    buf_init(&b, 0);
    buf_puts(&b, "import sys\n"
                 "def _jb_fail(kind, exc):\n"
                 "    import traceback\n"
                 "    line = None\n"
                 "    for fr in traceback.extract_tb(exc.__traceback__):\n"
                 "        if fr.filename == '<test>':\n"
                 "            line = fr.lineno\n"
                 "    text = str(exc)\n"
                 "    msg = type(exc).__name__ + (': ' + text if text else '')\n"
                 "    if line:\n"
                 "        msg += ' (test line %d)' % line\n"
                 "    sys.stdout.flush()\n"
                 "    sys.stderr.write('\\nJB-FAIL ' + kind + msg[:300] + '\\n')\n"
                 "    sys.stderr.flush()\n"
                 "    import os\n"
                 "    os._exit(1)\n"
                 "_jb_tests = [\n");
    json_t *tests = json_object_get(spec, "tests");
    for (size_t i = 0; i < json_array_size(tests); i++) {
        const char *code = json_string_value(json_object_get(json_array_get(tests, i), "code"));
        put_literal(&b, code ? code : "");
        buf_puts(&b, ",\n");
    }
    buf_puts(&b, "]\n_jb_setup = ");
    const char *setup = json_string_value(json_object_get(spec, "setup"));
    put_literal(&b, setup ? setup : "");
    buf_puts(&b, "\ntry:\n"
                 "    import solution as _jb_solution\n"
                 "except BaseException as e:\n"
                 "    _jb_fail('the answer does not load: ', e)\n"
                 "_jb_ns = dict(vars(_jb_solution))\n"
                 "_jb_ns['__name__'] = '__jb_test__'\n"
                 "try:\n"
                 "    exec(compile(_jb_setup, '<setup>', 'exec'), _jb_ns)\n"
                 "    exec(compile(_jb_tests[int(sys.argv[1])], '<test>', 'exec'), _jb_ns)\n"
                 "except BaseException as e:\n"
                 "    _jb_fail('', e)\n"
                 "sys.stdout.flush()\n");
    buf_printf(&b, "sys.stdout.write('\\n%s\\n')\nsys.stdout.flush()\n", nonce);
    return buf_take(&b);
}

static const char c_prelude[] =
    "#include <ctype.h>\n#include <limits.h>\n#include <math.h>\n#include <stdbool.h>\n"
    "#include <stddef.h>\n#include <stdint.h>\n#include <stdio.h>\n#include <stdlib.h>\n"
    "#include <string.h>\n";

static char *c_harness(const json_t *spec, const char *code, const char *nonce)
{
    struct buf b;
    buf_init(&b, 0);
    buf_puts(&b, c_prelude);
    buf_puts(&b, "#define main jb_answer_main\n#line 1 \"solution.c\"\n");
    buf_puts(&b, code);
    buf_puts(&b, "\n#undef main\n#undef CHECK\n");
    const char *setup = json_string_value(json_object_get(spec, "setup"));
    if (setup) {
        buf_puts(&b, "#line 1 \"setup\"\n");
        buf_puts(&b, setup);
        buf_puts(&b, "\n");
    }
    buf_puts(&b, "#define CHECK(c) do { if (!(c)) { fflush(stdout); fprintf(stderr, "
                 "\"\\nJB-FAIL CHECK(%s) failed (test line %d)\\n\", #c, __LINE__); "
                 "exit(1); } } while (0)\n");
    json_t *tests = json_object_get(spec, "tests");
    size_t n = json_array_size(tests);
    for (size_t i = 0; i < n; i++) {
        const char *t = json_string_value(json_object_get(json_array_get(tests, i), "code"));
        if (!t)
            continue;
        buf_printf(&b, "static void jb_test_%zu(void)\n{\n#line 1 \"test\"\n%s\n}\n", i, t);
    }
    buf_puts(&b, "int main(int argc, char **argv)\n{\n"
                 "    if (argc < 2)\n        return 2;\n"
                 "    switch ((int)strtol(argv[1], NULL, 10)) {\n");
    for (size_t i = 0; i < n; i++)
        if (json_object_get(json_array_get(tests, i), "code"))
            buf_printf(&b, "    case %zu: jb_test_%zu(); break;\n", i, i);
    buf_printf(&b,
               "    default: return 2;\n    }\n    fflush(stdout);\n"
               "    printf(\"\\n%s\\n\");\n    return 0;\n}\n",
               nonce);
    return buf_take(&b);
}

/* The reason a run failed, for people: what the harness said, else the
 * sandbox's reason and the last line of stderr. */
static void failure_reason(const struct sandbox_result *res, char *out, size_t size)
{
    const char *err = buf_str(&res->err);
    const char *mark = NULL;
    for (const char *p = strstr(err, "JB-FAIL "); p; p = strstr(p + 1, "JB-FAIL "))
        mark = p;
    if (mark && !res->timed_out && !res->output_capped && !res->disk_capped && !res->signal) {
        const char *eol = strchr(mark, '\n');
        size_t n = eol ? (size_t)(eol - mark - 8) : strlen(mark + 8);
        if (n >= size)
            n = size - 1;
        memcpy(out, mark + 8, n);
        out[n] = '\0';
        return;
    }
    /* last non-empty stderr line */
    const char *end = err + strlen(err);
    while (end > err && isspace((unsigned char)end[-1]))
        end--;
    const char *start = end;
    while (start > err && start[-1] != '\n')
        start--;
    if (!strncmp(start, "JB-FAIL ", 8))
        start += 8;
    size_t n = (size_t)(end - start);
    if (n > 200)
        n = 200;
    if (n)
        snprintf(out, size, "%s: %.*s", res->reason[0] ? res->reason : "failed", (int)n, start);
    else
        snprintf(out, size, "%s", res->reason[0] ? res->reason : "failed");
}

/* Lines with trailing white space removed, trailing empty lines dropped. */
static char *normalize_output(const char *s)
{
    struct buf b;
    buf_init(&b, 0);
    const char *line = s;
    while (*line) {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        while (n && isspace((unsigned char)line[n - 1]))
            n--;
        buf_append(&b, line, n);
        buf_putc(&b, '\n');
        line = eol ? eol + 1 : line + strlen(line);
    }
    char *out = buf_take(&b);
    size_t n = strlen(out);
    while (n && out[n - 1] == '\n')
        out[--n] = '\0';
    return out;
}

static void output_diff(const char *want, const char *got, char *out, size_t size)
{
    int line = 1;
    const char *w = want, *g = got;
    while (*w && *g) {
        const char *we = strchr(w, '\n'), *ge = strchr(g, '\n');
        size_t wn = we ? (size_t)(we - w) : strlen(w), gn = ge ? (size_t)(ge - g) : strlen(g);
        if (wn != gn || memcmp(w, g, wn)) {
            snprintf(out, size, "output differs at line %d: expected \"%.*s\", got \"%.*s\"", line,
                     (int)(wn > 80 ? 80 : wn), w, (int)(gn > 80 ? 80 : gn), g);
            return;
        }
        w += wn + (we ? 1 : 0);
        g += gn + (ge ? 1 : 0);
        line++;
    }
    snprintf(out, size, "output %s at line %d", *w ? "ends early" : "has extra lines", line);
}

struct code_run {
    struct sandbox *sb;
    double timeout_s, budget_end;
    unsigned protections;
    char missing[768];
    int ran;
};

/* One sandboxed run within the answer's budget. Returns 0 and res filled,
 * 1 when the budget is spent, or an error when the sandbox failed. */
static int run_one(struct code_run *cr, char *const argv[], const char *stdin_name,
                   struct sandbox_result *res, char *err)
{
    double left = cr->budget_end - jb_clock_s();
    if (left < 0.05)
        return 1;
    int rc = sandbox_run(cr->sb, argv, stdin_name, left < cr->timeout_s ? left : cr->timeout_s, res,
                         err);
    if (!rc && !cr->ran) {
        cr->ran = 1;
        cr->protections = res->protections;
        str_lcpy(cr->missing, res->missing, sizeof cr->missing);
    }
    return rc;
}

void grade_code(const json_t *spec, const char *answer, const struct grade_options *opt,
                struct grade_result *r)
{
    const char *lang = json_string_value(json_object_get(spec, "language"));
    int is_c = !strcmp(lang, "c");
    json_t *tests = json_object_get(spec, "tests");
    size_t n = json_array_size(tests);
    json_t *t_spec = json_object_get(spec, "timeout_s");
    double timeout = t_spec                    ? json_number_value(t_spec)
                     : opt->code_timeout_s > 0 ? opt->code_timeout_s
                                               : CODE_DEFAULT_TIMEOUT_S;
    char err[ERR_LEN] = "";
    char *code = grade_extract_code(answer, lang, json_object_get(spec, "entry"));
    char *prog = NULL, *io_prog = NULL;
    struct sandbox *sb = NULL;
    struct sandbox_result res;
    sandbox_result_init(&res);
    json_t *results = json_array();
    if (!code || !results) {
        grade_skip(r, "out of memory");
        goto out;
    }

    struct sandbox_config cfg = {0};
    cfg.timeout_s = timeout;
    cfg.disable = opt->sandbox_disable;
    if (sandbox_open(&sb, &cfg, err)) {
        grade_skip(r, "sandbox: %s", err);
        goto out;
    }
    char runner[4096];
    const char *runner_name = is_c ? "cc" : "python3";
    int found = !sandbox_find_program(sb, runner_name, opt->runner_path, runner, sizeof runner);
    if (!found && is_c)
        found = !sandbox_find_program(sb, "gcc", opt->runner_path, runner, sizeof runner) ||
                !sandbox_find_program(sb, "clang", opt->runner_path, runner, sizeof runner);
    if (!found) {
        grade_skip(r, "no %s", runner_name);
        goto out;
    }

    struct code_run cr = {sb, timeout, jb_clock_s() + CODE_BUDGET_RUNS * timeout, 0, "", 0};
    char nonce[48];
    make_nonce(nonce, sizeof nonce);
    const char *dir = sandbox_dir(sb);
    int has_code_tests = 0, has_io_tests = 0;
    for (size_t i = 0; i < n; i++) {
        if (json_object_get(json_array_get(tests, i), "code"))
            has_code_tests = 1;
        else
            has_io_tests = 1;
    }

    /* Build what the tests run. A C answer that does not compile fails every
     * test that needs it, with the compiler's first error. */
    char compile_fail[512] = "", io_compile_fail[512] = "";
    if (!is_c) {
        char *h = python_harness(spec, nonce);
        if (!h || sandbox_write_file(sb, "solution.py", code, strlen(code), err) ||
            sandbox_write_file(sb, "jb_test.py", h, strlen(h), err)) {
            free(h);
            grade_skip(r, "sandbox: %s", err[0] ? err : "out of memory");
            goto out;
        }
        free(h);
    } else {
        for (int pass = 0; pass < 2; pass++) {
            if ((pass == 0 && !has_code_tests) || (pass == 1 && !has_io_tests))
                continue;
            const char *src_name = pass == 0 ? "jb_harness.c" : "jb_io.c";
            const char *bin_name = pass == 0 ? "jb_tests" : "jb_io";
            char *src;
            if (pass == 0) {
                src = c_harness(spec, code, nonce);
            } else {
                struct buf b;
                buf_init(&b, 0);
                buf_puts(&b, c_prelude);
                buf_puts(&b, "#line 1 \"solution.c\"\n");
                buf_puts(&b, code);
                buf_puts(&b, "\n");
                src = buf_take(&b);
            }
            if (!src || sandbox_write_file(sb, src_name, src, strlen(src), err)) {
                free(src);
                grade_skip(r, "sandbox: %s", err[0] ? err : "out of memory");
                goto out;
            }
            free(src);
            char *argv[] = {runner,           "-std=gnu11",     "-O1", "-w", "-o",
                            (char *)bin_name, (char *)src_name, "-lm", NULL};
            char *fail = pass == 0 ? compile_fail : io_compile_fail;
            int rc = run_one(&cr, argv, NULL, &res, err);
            if (rc < 0) {
                grade_skip(r, "%s", err);
                goto out;
            }
            if (rc == 1) {
                snprintf(fail, 512, "not run: the answer's time budget (%.0f s) was spent",
                         CODE_BUDGET_RUNS * timeout);
            } else if (res.exit_code != 0) {
                const char *e = buf_str(&res.err);
                const char *line = strstr(e, "error");
                if (line) {
                    while (line > e && line[-1] != '\n')
                        line--;
                    const char *eol = strchr(line, '\n');
                    int len = (int)(eol ? eol - line : (long)strlen(line));
                    snprintf(fail, 512, "does not compile: %.*s", len > 300 ? 300 : len, line);
                } else {
                    char why[400];
                    failure_reason(&res, why, sizeof why);
                    snprintf(fail, 512, "does not compile: %s", why);
                }
            }
        }
        size_t need = strlen(dir) + 16;
        prog = malloc(need);
        io_prog = malloc(need);
        if (!prog || !io_prog) {
            grade_skip(r, "out of memory");
            goto out;
        }
        snprintf(prog, need, "%s/jb_tests", dir);
        snprintf(io_prog, need, "%s/jb_io", dir);
    }

    int passed = 0;
    char first_fail[600] = "";
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(tests, i);
        const char *name = json_string_value(json_object_get(t, "name"));
        char name_buf[32];
        if (!name) {
            snprintf(name_buf, sizeof name_buf, "test %zu", i + 1);
            name = name_buf;
        }
        const char *want_out = json_string_value(json_object_get(t, "stdout"));
        const char *stdin_text = json_string_value(json_object_get(t, "stdin"));
        char reason[512] = "";
        int ok = 0;
        double took = NAN;
        const char *cfail = want_out ? io_compile_fail : compile_fail;
        if (is_c && cfail[0]) {
            str_lcpy(reason, cfail, sizeof reason);
        } else {
            char idx[24], stdin_name[48];
            snprintf(idx, sizeof idx, "%zu", i);
            snprintf(stdin_name, sizeof stdin_name, "jb_stdin_%zu.txt", i);
            if (want_out && sandbox_write_file(sb, stdin_name, stdin_text ? stdin_text : "",
                                               stdin_text ? strlen(stdin_text) : 0, err)) {
                grade_skip(r, "sandbox: %s", err);
                goto out;
            }
            char *py_test[] = {runner, "-B", "jb_test.py", idx, NULL};
            char *py_io[] = {runner, "-B", "solution.py", NULL};
            char *c_test[] = {prog, idx, NULL};
            char *c_io[] = {io_prog, NULL};
            char *const *argv = is_c ? (want_out ? c_io : c_test) : (want_out ? py_io : py_test);
            int rc = run_one(&cr, argv, want_out ? stdin_name : NULL, &res, err);
            if (rc < 0) {
                grade_skip(r, "%s", err);
                goto out;
            }
            if (rc == 1) {
                snprintf(reason, sizeof reason,
                         "not run: the answer's time budget (%.0f s) was spent",
                         CODE_BUDGET_RUNS * timeout);
            } else {
                took = res.duration_s;
                if (want_out) {
                    char *g = normalize_output(buf_str(&res.out));
                    char *w = normalize_output(want_out);
                    if (res.exit_code != 0)
                        failure_reason(&res, reason, sizeof reason);
                    else if (g && w && !strcmp(g, w))
                        ok = 1;
                    else if (g && w)
                        output_diff(w, g, reason, sizeof reason);
                    free(g);
                    free(w);
                } else {
                    char needle[64];
                    snprintf(needle, sizeof needle, "\n%s\n", nonce);
                    if (res.exit_code == 0 && strstr(buf_str(&res.out), needle))
                        ok = 1;
                    else if (res.exit_code == 0)
                        snprintf(reason, sizeof reason,
                                 "exited before the test finished (the answer ends the "
                                 "program)");
                    else
                        failure_reason(&res, reason, sizeof reason);
                }
            }
        }
        if (ok)
            passed++;
        else if (!first_fail[0])
            snprintf(first_fail, sizeof first_fail, "first failure: '%s': %s", name, reason);
        json_t *o = json_object();
        json_object_set_new(o, "name", grade_json_text(name));
        json_object_set_new(o, "passed", json_boolean(ok));
        json_object_set_new(o, "reason", ok ? json_null() : grade_json_text(reason));
        json_object_set_new(o, "duration_s", isnan(took) ? json_null() : json_real(took));
        json_array_append_new(results, o);
    }
    grade_set_score(r, passed, (int)n);
    grade_detail_add(r, "%d/%zu tests passed", passed, n);
    if (first_fail[0])
        grade_detail_add(r, "%s", first_fail);
    json_t *ex = grade_extra(r);
    if (ex) {
        json_object_set(ex, "tests", results);
        json_t *sbj = json_object();
        json_object_set_new(sbj, "protections", sandbox_protections_json(cr.protections));
        json_object_set_new(sbj, "missing", grade_json_text(cr.missing));
        json_object_set_new(sbj, "runner", grade_json_text(runner));
        json_object_set_new(ex, "sandbox", sbj);
    }

out:
    json_decref(results);
    sandbox_result_free(&res);
    sandbox_close(sb);
    free(code);
    free(prog);
    free(io_prog);
}
