/*
 * writers.h — the report files, each written from a loaded run and its
 * statistics (rundata.h) into memory, so they can be tested without a disk
 * and replaced on disk atomically by report_build().
 *
 * Ownership: the struct buf outputs are the caller's (buf_free them); the
 * json_t from report_json() is a new reference for the caller.
 */
#ifndef JB_REPORT_WRITERS_H
#define JB_REPORT_WRITERS_H

#include <jansson.h>

#include "common/buf.h"
#include "report/rundata.h"

/* summary.md into md; when table is not NULL, the headline table, its
 * footnotes and the warnings go there as well. */
int report_write_summary_md(const struct report_run *run, const struct report_summary *s,
                            struct buf *md, struct buf *table);
/* metrics.csv: one row per request, warm-ups included and flagged. */
int report_write_metrics_csv(const struct report_run *run, const struct report_summary *s,
                             struct buf *out);
/* responses.csv: id, model, prompt_id, prompt, response, error. */
int report_write_responses_csv(const struct report_run *run, struct buf *out);
/* The --json summary; NULL when out of memory. */
json_t *report_json(const struct report_run *run, const struct report_summary *s);
/* The four charts, PNG and SVG, into out_dir. */
int report_write_charts(const struct report_run *run, const struct report_summary *s,
                        const char *out_dir, char *err);

/* Number formatting shared by the writers: three significant digits, no
 * exponent for everyday magnitudes; "n/a" for NaN. */
void report_fmt_sig(char *dst, size_t size, double v, int sig);
/* Decimals report_fmt_sig would use for v (so a CI can match its mean). */
int report_sig_decimals(double v, int sig);

#endif
