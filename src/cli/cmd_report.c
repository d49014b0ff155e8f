/*
 * joulebench report DIR — rebuild summary.md, metrics.csv, responses.csv and
 * the charts of a run directory from run.json and requests.jsonl, then print
 * the headline table (or, with --json, the summary as one JSON object).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/log.h"
#include "report/report.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: joulebench report DIR [--json] [-o OUT] [--no-charts] [-q]\n\n"
               "Rebuilds the table and charts of a run directory from its run.json and\n"
               "requests.jsonl (and timeline.csv when present), so an interrupted run, or\n"
               "one made by an older joulebench, can be reported.\n\n"
               "  --json        print the summary as one JSON object instead of the table\n"
               "  -o, --out OUT write the files into OUT instead of DIR\n"
               "  --no-charts   write summary.md and the CSV files only\n"
               "  -q, --quiet   no warnings on stderr (they stay in summary.md)\n\n"
               "Writes: summary.md, metrics.csv, responses.csv, energy_comparison,\n"
               "intelligence_tax, value_for_energy and power_timeline (.png and .svg).\n");
}

int cmd_report(int argc, char **argv)
{
    struct report_options opt;
    report_options_init(&opt);
    const char *dir = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--no-charts") == 0) {
            opt.no_charts = 1;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            opt.quiet = 1;
            log_set_level(LOG_QUIET);
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--out") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error("report", "%s needs a directory", a);
            opt.out_dir = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            return cli_usage_error("report", "unknown option '%s'", a);
        } else if (dir) {
            return cli_usage_error("report", "one run directory at a time ('%s' and '%s')", dir, a);
        } else {
            dir = a;
        }
    }
    if (!dir)
        return cli_usage_error("report", "which run directory? (joulebench report DIR)");

    char err[ERR_LEN] = "";
    struct buf table = {0};
    opt.table = json ? NULL : &table;
    /* With --json the warnings are logged once, by the JSON pass. */
    int quiet = opt.quiet;
    if (json)
        opt.quiet = 1;
    int rc = report_build(dir, &opt, err);
    if (rc) {
        buf_free(&table);
        log_error("%s", err);
        /* A directory that is not a run, or a file that is missing, is bad
         * input from the user, like a malformed one. */
        return rc == JB_ERR_NOTFOUND ? 2 : err_exit_code(rc);
    }
    if (json) {
        json_t *o = NULL;
        rc = report_summary_json(dir, quiet, &o, err);
        if (rc) {
            log_error("%s", err);
            return rc == JB_ERR_NOTFOUND ? 2 : err_exit_code(rc);
        }
        int wrc = json_dumpf(o, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
        json_decref(o);
        fputc('\n', stdout);
        return wrc || fflush(stdout) ? 1 : 0;
    }
    fputs(buf_str(&table), stdout);
    buf_free(&table);
    log_info("wrote summary.md, metrics.csv, responses.csv%s to %s",
             opt.no_charts ? "" : " and the charts", opt.out_dir ? opt.out_dir : dir);
    return fflush(stdout) ? 1 : 0;
}
