/*
 * rundir.c — grading a finished run directory: every request record with a
 * grader gets its "grade" object, and requests.jsonl is rewritten at once
 * (written beside it, then renamed), so a crash leaves the old file whole.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/sig.h"
#include "common/str.h"
#include "grade/grade.h"

static const char *str_or(const char *s)
{
    return s ? s : "";
}

/* A record the runner could not finish (an error) is not the model's answer
 * to grade; neither is an empty response to a request that failed. */
static const char *why_not_gradable(json_t *rec)
{
    json_t *e = json_object_get(rec, "error");
    if (e && !json_is_null(e))
        return "the request failed";
    if (!json_is_string(json_object_get(rec, "response")))
        return "no response";
    return NULL;
}

static int run_still_going(const char *dir, int force, char *err)
{
    char path[FS_PATH_MAX];
    if (fs_path_join(path, sizeof path, dir, "run.json"))
        return 0;
    json_error_t je;
    json_t *run = json_load_file(path, 0, &je);
    if (!run)
        return 0; /* no run.json (a chat session, or a copy of the records): nothing to check */
    const char *status = json_string_value(json_object_get(run, "status"));
    int going = status && !strcmp(status, "running");
    json_decref(run);
    if (going && !force)
        return err_setf(err, JB_ERR_STATE,
                        "%s says the run is still going; grade it when it has ended (or pass "
                        "--force if it crashed)",
                        path);
    return 0;
}

int grade_run_dir(const char *dir, const struct grade_options *opt, int only_ungraded, int force,
                  struct grade_run_summary *sum, char *err)
{
    struct grade_run_summary local;
    if (!sum)
        sum = &local;
    memset(sum, 0, sizeof *sum);
    if (!fs_is_dir(dir))
        return err_setf(err, JB_ERR_NOTFOUND, "%s: no such run directory", dir);
    int rc = run_still_going(dir, force, err);
    if (rc)
        return rc;
    char path[FS_PATH_MAX];
    if (fs_path_join(path, sizeof path, dir, "requests.jsonl"))
        return err_setf(err, JB_ERR_USAGE, "%s: path too long", dir);
    struct buf in, out;
    buf_init(&in, 0);
    buf_init(&out, 0);
    rc = fs_read_file(path, 0, &in, err);
    if (rc) {
        buf_free(&in);
        if (rc == JB_ERR_NOTFOUND)
            return err_setf(err, JB_ERR_NOTFOUND,
                            "%s: not found; is %s a joulebench run directory?", path, dir);
        return rc;
    }

    /* Count the records first, for progress. */
    int lines_total = 0;
    for (const char *p = buf_str(&in); *p; p++)
        if (*p == '\n')
            lines_total++;

    char *text = in.data ? in.data : (char *)"";
    size_t len = in.len;
    size_t pos = 0;
    int line_no = 0, interrupted = 0;
    while (pos < len) {
        char *eol = memchr(text + pos, '\n', len - pos);
        size_t n = eol ? (size_t)(eol - (text + pos)) : len - pos;
        const char *line = text + pos;
        int last = !eol || pos + n + 1 >= len;
        pos += n + (eol ? 1 : 0);
        line_no++;
        size_t k = 0;
        while (k < n && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r'))
            k++;
        if (k == n)
            continue;
        json_error_t je;
        json_t *rec = json_loadb(line, n, 0, &je);
        if (!rec || !json_is_object(rec)) {
            sum->bad_lines++;
            if (last) {
                log_warn("%s:%d: not a complete JSON record (a torn last line?); dropped", path,
                         line_no);
            } else {
                log_warn("%s:%d:%d: not JSON (%s); kept as it is", path, line_no, je.column,
                         je.text);
                buf_append(&out, line, n);
                buf_putc(&out, '\n');
            }
            if (rec)
                json_decref(rec);
            continue;
        }
        sum->records++;
        json_t *spec = json_object_get(rec, "grader");
        json_t *old = json_object_get(rec, "grade");
        int warmup = json_is_true(json_object_get(rec, "warmup"));
        int has_score = json_is_object(old) && json_is_number(json_object_get(old, "score"));
        if (sig_stop)
            interrupted = 1; /* the rest is written back as it was */
        if (!interrupted && !warmup && json_is_object(spec) && !(only_ungraded && has_score)) {
            log_progress("grading %d/%d %s %s", line_no, lines_total,
                         str_or(json_string_value(json_object_get(rec, "model"))),
                         str_or(json_string_value(json_object_get(rec, "prompt_id"))));
            struct grade_result g;
            grade_result_init(&g);
            const char *why = why_not_gradable(rec);
            char gerr[ERR_LEN];
            if (why) {
                const char *type = json_string_value(json_object_get(spec, "type"));
                str_lcpy(g.grader, type ? type : "?", sizeof g.grader);
                str_lcpy(g.skipped, why, sizeof g.skipped);
            } else if (grade_answer(spec, json_string_value(json_object_get(rec, "prompt")),
                                    json_string_value(json_object_get(rec, "response")), opt, &g,
                                    gerr)) {
                log_warn("%s:%d: %s; the record stays ungraded", path, line_no, gerr);
                const char *type = json_string_value(json_object_get(spec, "type"));
                str_lcpy(g.grader, type ? type : "?", sizeof g.grader);
                snprintf(g.skipped, sizeof g.skipped, "bad grader: %s", gerr);
            }
            if (sig_stop) {
                /* Cut short: what it has is not a grade; the old one stays. */
                interrupted = 1;
            } else if (!g.graded && has_score) {
                /* A regrade that could not grade (the judge did not answer)
                 * does not wipe out the score the answer already has. */
                sum->kept++;
            } else {
                if (g.graded)
                    sum->graded++;
                else
                    sum->skipped++;
                json_object_set_new(rec, "grade", grade_result_json(&g));
            }
            grade_result_free(&g);
        }
        char *s = json_dumps(rec, JSON_COMPACT);
        json_decref(rec);
        if (!s || buf_puts(&out, s) || buf_putc(&out, '\n')) {
            free(s);
            rc = err_setf(err, JB_ERR_NOMEM, "out of memory rewriting %s", path);
            goto done;
        }
        free(s);
    }
    log_progress_done();
    rc = fs_write_atomic(path, out.data ? out.data : "", out.len, err);
    if (!rc && interrupted)
        rc = err_setf(err, JB_ERR_INTERRUPTED,
                      "interrupted: %d answers graded and written, the rest left as they were "
                      "(run 'joulebench grade %s --only-ungraded' to finish)",
                      sum->graded, dir);
done:
    buf_free(&in);
    buf_free(&out);
    return rc;
}
