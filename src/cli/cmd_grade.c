/*
 * joulebench grade DIR — grade (or regrade) the answers of a finished run:
 * every non-warm-up record of requests.jsonl that has a grader gets its
 * "grade" object from the record's grader spec and response, the file is
 * rewritten atomically, and the report is rebuilt so summary.md and the
 * charts show the Technical Score. A judge that was not available during
 * the run can be brought in here (--judge MODEL).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/sig.h"
#include "common/str.h"
#include "engines/engine.h"
#include "grade/grade.h"
#include "report/report.h"

static const char grade_usage[] =
    "usage: joulebench grade DIR [--judge MODEL] [--judge-engine E] [--judge-url URL]\n"
    "                            [--judge-reps N] [--only-ungraded] [--timeout S]\n"
    "                            [--force] [--no-report] [-q]\n"
    "\n"
    "Grades every answer of a run directory from its suite's grader (stored with\n"
    "each record): exact, regex, contains, numeric and json checks, code run\n"
    "against the prompt's tests in a sandbox, or an LLM judge. Rewrites\n"
    "requests.jsonl and rebuilds the report.\n"
    "\n"
    "  --judge MODEL       grade judge prompts with this model (without it they stay\n"
    "                      ungraded, marked \"no judge\")\n"
    "  --judge-engine E    ollama, openai or builtin (default: the run's engine, else\n"
    "                      ollama)\n"
    "  --judge-url URL     the judge's server (default: the run's, when the engine is\n"
    "                      the same, else the engine's default address)\n"
    "  --judge-reps N      ask the judge N times per answer; the score is the mean and\n"
    "                      the spread is recorded (default 1)\n"
    "  --only-ungraded     leave answers that already have a score as they are\n"
    "  --timeout S         seconds per program run for code tests (default 10)\n"
    "  --force             grade even though run.json says the run is still going\n"
    "  --no-report         do not rebuild summary.md and the charts\n"
    "  -q, --quiet         no progress or warnings on stderr\n";

struct grade_cli {
    const char *dir;
    const char *judge_model;
    const char *judge_engine;
    const char *judge_url;
    int judge_reps;
    int only_ungraded;
    int force;
    int no_report;
    int quiet;
    double timeout_s;
};

/* "--opt VALUE" or "--opt=VALUE"; *i moves past what was used. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, int *missing)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) == 0 && a[n] == '=')
        return a + n + 1;
    if (strcmp(a, name) != 0)
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

/* Returns -1 to go on, else the exit status. */
static int parse(int argc, char **argv, struct grade_cli *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int missing = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(grade_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--only-ungraded")) {
            o->only_ungraded = 1;
        } else if (!strcmp(a, "--force")) {
            o->force = 1;
        } else if (!strcmp(a, "--no-report")) {
            o->no_report = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o->quiet = 1;
        } else if ((v = opt_value(argc, argv, &i, "--judge", &missing))) {
            o->judge_model = v;
        } else if ((v = opt_value(argc, argv, &i, "--judge-engine", &missing))) {
            o->judge_engine = v;
        } else if ((v = opt_value(argc, argv, &i, "--judge-url", &missing))) {
            o->judge_url = v;
        } else if ((v = opt_value(argc, argv, &i, "--judge-reps", &missing))) {
            if (cli_int("grade", "--judge-reps", v, 1, 64, &o->judge_reps))
                return 2;
        } else if ((v = opt_value(argc, argv, &i, "--timeout", &missing))) {
            if (cli_double("grade", "--timeout", v, 0.1, 600, &o->timeout_s))
                return 2;
        } else if (missing) {
            return cli_usage_error("grade", "%s needs a value", a);
        } else if (a[0] == '-' && a[1] != '\0') {
            return cli_usage_error("grade", "unknown option '%s'", a);
        } else if (o->dir) {
            return cli_usage_error("grade", "one run directory at a time ('%s' and '%s')", o->dir,
                                   a);
        } else {
            o->dir = a;
        }
    }
    if (!o->dir)
        return cli_usage_error("grade", "which run directory? (joulebench grade DIR)");
    if ((o->judge_engine || o->judge_url || o->judge_reps) && !o->judge_model)
        return cli_usage_error("grade",
                               "--judge-engine, --judge-url and --judge-reps need --judge MODEL");
    return -1;
}

/* The run's engine from run.json ({"engine": {"name", "url"}}), if any. */
static void run_engine(const char *dir, char *name, size_t name_size, char *url, size_t url_size)
{
    name[0] = url[0] = '\0';
    char path[FS_PATH_MAX];
    if (fs_path_join(path, sizeof path, dir, "run.json"))
        return;
    json_t *run = json_load_file(path, 0, NULL);
    json_t *e = json_object_get(run, "engine");
    const char *n = json_string_value(json_object_get(e, "name"));
    const char *u = json_string_value(json_object_get(e, "url"));
    if (n)
        str_lcpy(name, n, name_size);
    if (u)
        str_lcpy(url, u, url_size);
    json_decref(run);
}

static int open_judge(const struct grade_cli *o, struct engine **eng, struct grade_judge *j,
                      char *err)
{
    char run_name[32], run_url[512];
    run_engine(o->dir, run_name, sizeof run_name, run_url, sizeof run_url);
    const char *name = o->judge_engine;
    if (!name)
        name = run_name[0] && strcmp(run_name, "builtin") ? run_name : "ollama";
    const char *url = o->judge_url;
    if (!url && run_url[0] && !strcmp(name, run_name))
        url = run_url;
    struct engine_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.name = name;
    cfg.url = url;
    int rc = engine_open(eng, &cfg, err);
    if (rc)
        return rc;
    rc = grade_judge_init(j, *eng, o->judge_model, o->judge_reps ? o->judge_reps : 1, err);
    if (rc) {
        engine_close(*eng);
        *eng = NULL;
        return rc;
    }
    log_info("judge: %s on %s at %s%s%s", j->model, (*eng)->name,
             (*eng)->url[0] ? (*eng)->url : "its default address", j->digest[0] ? ", digest " : "",
             j->digest);
    return 0;
}

int cmd_grade(int argc, char **argv)
{
    struct grade_cli o;
    memset(&o, 0, sizeof o);
    int rc = parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (o.quiet)
        log_set_level(LOG_QUIET);
    sig_install();

    char err[ERR_LEN] = "";
    struct engine *eng = NULL;
    struct grade_judge judge;
    struct grade_options opt;
    memset(&opt, 0, sizeof opt);
    opt.code_timeout_s = o.timeout_s;
    if (o.judge_model) {
        rc = open_judge(&o, &eng, &judge, err);
        if (rc) {
            log_error("judge: %s", err);
            return err_exit_code(rc);
        }
        opt.judge = &judge;
    }

    struct grade_run_summary sum;
    rc = grade_run_dir(o.dir, &opt, o.only_ungraded, o.force, &sum, err);
    engine_close(eng);
    if (rc) {
        log_error("%s", err);
        return rc == JB_ERR_NOTFOUND ? 2 : err_exit_code(rc);
    }
    log_info("graded %d answer%s; %d left ungraded (see each record's grade.skipped)%s", sum.graded,
             sum.graded == 1 ? "" : "s", sum.skipped,
             sum.bad_lines ? "; some lines were not JSON (warnings above)" : "");
    if (sum.kept)
        log_warn("%d answer%s could not be graded again and kept the score %s had (is the judge "
                 "reachable? see the warnings above)",
                 sum.kept, sum.kept == 1 ? "" : "s", sum.kept == 1 ? "it" : "they");
    if (o.no_report)
        return 0;

    struct report_options ropt;
    report_options_init(&ropt);
    ropt.quiet = o.quiet;
    struct buf table = {0};
    ropt.table = &table;
    rc = report_build(o.dir, &ropt, err);
    if (rc) {
        buf_free(&table);
        log_error("the answers are graded, but the report could not be rebuilt: %s", err);
        return err_exit_code(rc);
    }
    fputs(buf_str(&table), stdout);
    buf_free(&table);
    return fflush(stdout) ? 1 : 0;
}
