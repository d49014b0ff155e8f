/*
 * report.c — report_build(): load a run directory, compute its statistics,
 * write every report file (each replaced atomically).
 */
#include "report/report.h"

#include <string.h>

#include "common/fs.h"
#include "common/log.h"
#include "report/rundata.h"
#include "report/writers.h"

void report_options_init(struct report_options *opt)
{
    memset(opt, 0, sizeof *opt);
}

static int write_file(const char *dir, const char *name, const struct buf *b, char *err)
{
    char path[FS_PATH_MAX];
    if (fs_path_join(path, sizeof path, dir, name))
        return err_setf(err, JB_ERR_USAGE, "%s: path too long", dir);
    return fs_write_atomic(path, b->data ? b->data : "", b->len, err);
}

int report_build(const char *dir, const struct report_options *opt, char *err)
{
    struct report_options def;
    if (!opt) {
        report_options_init(&def);
        opt = &def;
    }
    const char *out = opt->out_dir ? opt->out_dir : dir;
    struct report_run run;
    struct report_summary s;
    struct buf md = {0}, metrics = {0}, responses = {0};
    int have_s = 0;
    int rc = report_load(dir, opt->quiet, &run, err);
    if (rc)
        goto done;
    if ((rc = report_compute(&run, &s, err)))
        goto done;
    have_s = 1;
    if (opt->out_dir && (rc = fs_mkdir_p(out, err)))
        goto done;
    if ((rc = report_write_summary_md(&run, &s, &md, opt->table)) ||
        (rc = report_write_metrics_csv(&run, &s, &metrics)) ||
        (rc = report_write_responses_csv(&run, &responses))) {
        err_setf(err, rc, "%s: out of memory writing the report", dir);
        goto done;
    }
    if ((rc = write_file(out, "summary.md", &md, err)) ||
        (rc = write_file(out, "metrics.csv", &metrics, err)) ||
        (rc = write_file(out, "responses.csv", &responses, err)))
        goto done;
    if (!opt->no_charts && (rc = report_write_charts(&run, &s, out, err)))
        goto done;
done:
    buf_free(&md);
    buf_free(&metrics);
    buf_free(&responses);
    if (have_s)
        report_summary_free(&s);
    report_run_free(&run);
    return rc;
}

int report_summary_json(const char *dir, int quiet, json_t **out, char *err)
{
    *out = NULL;
    struct report_run run;
    struct report_summary s;
    int rc = report_load(dir, quiet, &run, err);
    if (!rc && !(rc = report_compute(&run, &s, err))) {
        *out = report_json(&run, &s);
        if (!*out)
            rc = err_setf(err, JB_ERR_NOMEM, "out of memory");
        report_summary_free(&s);
    }
    report_run_free(&run);
    return rc;
}
