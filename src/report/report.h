/*
 * report.h — everything a person reads about a run, rebuilt from the run
 * directory alone (docs/results.md): summary.md, metrics.csv,
 * responses.csv and the charts energy_comparison, intelligence_tax,
 * value_for_energy and power_timeline (each .png and .svg).
 *
 * Inputs: DIR/run.json and DIR/requests.jsonl (required), DIR/timeline.csv
 * (optional; without it the power timeline chart says so). A torn or invalid
 * line of requests.jsonl is skipped with a warning naming its line; a
 * newer schema is read as far as it is understood, with a warning.
 *
 * Ownership: the options are the caller's. report_summary_json() hands the
 * caller a new JSON object (json_decref it). Errors are JB_ERR_* codes with
 * the message in a caller-owned char err[ERR_LEN] naming the file.
 */
#ifndef JB_REPORT_REPORT_H
#define JB_REPORT_REPORT_H

#include <jansson.h>

#include "common/buf.h"
#include "common/err.h"

/* Chart size: PNG pixels, and SVG points (the same drawing). */
#define REPORT_CHART_W 1200
#define REPORT_CHART_H 720

struct report_options {
    int quiet;           /* 1: no warnings on stderr (they stay in summary.md) */
    int no_charts;       /* 1: write the tables and CSV files only */
    const char *out_dir; /* where the files go; NULL: the run directory */
    struct buf *table;   /* when not NULL, receives the headline table and the
                            warnings (markdown), for printing on a terminal */
};
void report_options_init(struct report_options *opt);

/* Reads the run directory dir and writes every report file into
 * opt->out_dir (or dir). Each file is replaced atomically. */
int report_build(const char *dir, const struct report_options *opt, char *err);

/* The summary as one JSON object: per model J/token, net J/token, total
 * joules, score, score per kJ, tokens/s, TTFT, ITL, power per domain (each
 * a {mean, sd, ci95, n, ...} object or null), estimated flags, per-prompt
 * rows, carbon and cost when the run priced them; the baseline, the host,
 * the engine, the warnings. Loading warnings are logged unless quiet. */
int report_summary_json(const char *dir, int quiet, json_t **out, char *err);

#endif
