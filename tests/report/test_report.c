/*
 * The report layer against fixture run directories (tests/data/runs) and
 * small runs written here: loading (torn lines, newer schemas, missing
 * files), statistics equal to hand-computed values, summary.md rows and
 * estimated marks, CSV files read back, JSON, and charts that are valid
 * PNG and SVG of the expected size.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairo.h>
#include <cmocka.h>
#include <jansson.h>

#include "common/buf.h"
#include "common/fs.h"
#include "common/str.h"
#include "report/csv.h"
#include "report/report.h"
#include "report/rundata.h"
#include "report/writers.h"
#include "testutil.h"

#define RUNS JB_TEST_DATA "/runs"
#define TWO RUNS "/two-models"
#define SYN RUNS "/synthetic-interrupted"
#define M7 "qwen2.5-coder:7b"
#define M32 "qwen2.5-coder:32b"

static void assert_near(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol)) {
        fprintf(stderr, "got %.9g, want %.9g (± %g)\n", got, want, tol);
        fail();
    }
}

static char *slurp(const char *dir, const char *name)
{
    char path[FS_PATH_MAX], err[ERR_LEN];
    fs_path_join(path, sizeof path, dir, name);
    struct buf b = {0};
    if (fs_read_file(path, 0, &b, err)) {
        fprintf(stderr, "%s\n", err);
        fail();
    }
    return buf_take(&b);
}

static int has_warning(const json_t *warnings, const char *needle)
{
    size_t i;
    json_t *w;
    json_array_foreach(warnings, i, w) if (strstr(json_string_value(w), needle)) return 1;
    return 0;
}

static const struct report_model_stats *model(const struct report_summary *s, const char *name)
{
    for (size_t i = 0; i < s->n_models; i++)
        if (strcmp(s->models[i].name, name) == 0)
            return &s->models[i];
    fail_msg("no model %s", name);
    return NULL;
}

static const struct report_prompt_stats *prompt(const struct report_model_stats *m, const char *id)
{
    for (size_t i = 0; i < m->n_prompts; i++)
        if (strcmp(m->prompts[i].prompt_id, id) == 0)
            return &m->prompts[i];
    fail_msg("no prompt %s", id);
    return NULL;
}

static void assert_png(const char *dir, const char *name);

/* ---- loading ---------------------------------------------------------- */

static void test_load_two_models(void **state)
{
    (void)state;
    struct report_run run;
    char err[ERR_LEN];
    assert_int_equal(report_load(TWO, 1, &run, err), 0);
    /* 14 lines; the 14th was torn when the disk filled up. */
    assert_int_equal(run.n_rec, 13);
    assert_true(has_warning(run.warnings, "requests.jsonl line 14"));
    assert_true(has_warning(run.warnings, "torn last line"));
    assert_string_equal(run.status, "failed");
    assert_string_equal(run.rec[0].id, "r0001");
    assert_true(run.rec[0].warmup);
    assert_true(run.rec[0].load);
    assert_string_equal(run.rec[7].id, "r0008");
    assert_non_null(run.rec[7].error);
    assert_true(run.rec[11].flags & REPORT_FLAG_SHORT);
    assert_int_equal(run.rec[2].estimated_domains, 1u << JB_DOMAIN_CPU);
    assert_int_equal(run.rec[2].domains, (1u << JB_DOMAIN_CPU) | (1u << JB_DOMAIN_GPU));
    assert_near(run.rec[2].score, 6, 0);
    assert_true(isnan(run.rec[3 - 1 + 3].score)); /* r0006: 32b tcp, ungraded */
    assert_near(run.rec[0].phase_s[REPORT_RP_LOAD], 1.8, 1e-12);

    /* Sensors: the unreadable RAPL counter is listed but not used. */
    assert_int_equal(run.n_sensors, 3);
    assert_false(run.sensors[0].used);
    assert_true(run.sensors[1].estimated);
    assert_near(run.sensors[2].update_period_s, 0.1, 1e-12);

    /* Timeline: one row per line after the header, cpu estimated. */
    char *tl = slurp(TWO, "timeline.csv");
    size_t lines = 0;
    for (char *p = tl; *p; p++)
        lines += *p == '\n';
    free(tl);
    assert_true(run.has_timeline);
    assert_int_equal(run.timeline.n, lines - 1);
    assert_int_equal(run.timeline.domains, (1u << JB_DOMAIN_CPU) | (1u << JB_DOMAIN_GPU));
    assert_int_equal(run.timeline.estimated, 1u << JB_DOMAIN_CPU);
    /* First row: "0.5,baseline,,2,6". */
    assert_near(run.timeline.t_s[0], 0.5, 0);
    assert_int_equal(run.timeline.phase[0], REPORT_PHASE_BASELINE);
    assert_near(run.timeline.domain_w[JB_DOMAIN_CPU], 2, 0);
    assert_near(run.timeline.domain_w[JB_DOMAIN_GPU], 6, 0);
    report_run_free(&run);
}

/* A run the test writes: run.json, requests.jsonl, timeline.csv (any may be
 * NULL to leave the file out). */
static char *mini_run(const char *run_json, const char *requests, const char *timeline)
{
    char *dir = tu_tmpdir("report");
    if (run_json)
        tu_write(dir, "run.json", run_json);
    if (requests)
        tu_write(dir, "requests.jsonl", requests);
    if (timeline)
        tu_write(dir, "timeline.csv", timeline);
    return dir;
}

static const char *MINI_RUN_JSON =
    "{\"schema\":1,\"status\":\"complete\",\"started\":\"2026-01-01T00:00:00Z\","
    "\"ended\":\"2026-01-01T00:01:00Z\",\"engine\":{\"name\":\"openai\"},"
    "\"models\":[{\"name\":\"m\",\"synthetic\":false}],"
    "\"sensors\":[{\"name\":\"rapl:package-0\",\"domain\":\"cpu\",\"estimated\":false,"
    "\"used\":true,\"parent\":null,\"update_period_s\":0.001},"
    "{\"name\":\"rapl:core-0\",\"domain\":\"cores\",\"estimated\":false,\"used\":true,"
    "\"parent\":\"rapl:package-0\"},"
    "{\"name\":\"rapl:dram-0\",\"domain\":\"dram\",\"estimated\":false,\"used\":true,"
    "\"parent\":null},"
    "{\"name\":\"hwmon:gpu\",\"domain\":\"gpu\",\"estimated\":false,\"used\":false,"
    "\"parent\":null,\"reason\":\"duplicate of nvml:gpu0\"}],"
    "\"options\":{\"reps\":3},\"baseline\":null}\n";

/* Child and unused sensors never add to a domain; an empty cell makes the
 * domain unknown for that row rather than smaller. */
static void test_timeline_domains(void **state)
{
    (void)state;
    char *dir = mini_run(MINI_RUN_JSON, "",
                         "t_s,phase,request_id,rapl:package-0_w,rapl:core-0_w,rapl:dram-0_w,"
                         "hwmon:gpu_w,mystery_w\r\n"
                         "0.02,prefill,r1,10.5,8,2.5,30,1\r\n"
                         "0.04,decode,r1,,8,2.25,30,1\r\n"
                         "0.06,,,9,7,2,30,1\r\n");
    struct report_run run;
    char err[ERR_LEN];
    assert_int_equal(report_load(dir, 1, &run, err), 0);
    assert_int_equal(run.timeline.n, 3);
    assert_int_equal(run.timeline.domains, (1u << JB_DOMAIN_CPU) | (1u << JB_DOMAIN_DRAM));
    const double *w = run.timeline.domain_w;
    assert_near(w[JB_DOMAIN_CPU], 10.5, 0); /* package only, not + cores */
    assert_near(w[JB_DOMAIN_DRAM], 2.5, 0);
    assert_true(isnan(w[JB_DOMAIN_GPU]));                   /* unused sensor */
    assert_true(isnan(w[JB_DOMAIN_CORES]));                 /* child: not a domain total */
    assert_true(isnan(w[JB_DOMAIN_COUNT + JB_DOMAIN_CPU])); /* empty cell */
    assert_near(w[JB_DOMAIN_COUNT + JB_DOMAIN_DRAM], 2.25, 0);
    assert_int_equal(run.timeline.phase[1], REPORT_PHASE_DECODE);
    assert_int_equal(run.timeline.phase[2], REPORT_PHASE_NONE);
    assert_true(has_warning(run.warnings, "mystery_w"));
    report_run_free(&run);
    tu_rmtree_free(dir);
}

static void test_missing_files(void **state)
{
    (void)state;
    struct report_run run;
    char err[ERR_LEN] = "";
    assert_int_equal(report_load("/nonexistent/joulebench-run", 1, &run, err), JB_ERR_NOTFOUND);
    assert_non_null(strstr(err, "/nonexistent/joulebench-run"));
    report_run_free(&run);

    char *dir = mini_run(NULL, NULL, NULL);
    assert_int_equal(report_load(dir, 1, &run, err), JB_ERR_NOTFOUND);
    assert_non_null(strstr(err, "run.json"));
    assert_non_null(strstr(err, dir));
    report_run_free(&run);

    tu_write(dir, "run.json", MINI_RUN_JSON);
    assert_int_equal(report_load(dir, 1, &run, err), JB_ERR_NOTFOUND);
    assert_non_null(strstr(err, "requests.jsonl"));
    report_run_free(&run);

    /* Without timeline.csv the run still loads, with a warning. */
    tu_write(dir, "requests.jsonl", "");
    assert_int_equal(report_load(dir, 1, &run, err), 0);
    assert_false(run.has_timeline);
    assert_true(has_warning(run.warnings, "timeline.csv: not found"));
    report_run_free(&run);

    /* And report_build says the same through its error. */
    struct report_options opt;
    report_options_init(&opt);
    opt.quiet = 1;
    char path[FS_PATH_MAX];
    fs_path_join(path, sizeof path, dir, "run.json");
    remove(path);
    assert_int_equal(report_build(dir, &opt, err), JB_ERR_NOTFOUND);
    assert_non_null(strstr(err, "run.json"));
    tu_rmtree_free(dir);
}

static void test_malformed_run_json(void **state)
{
    (void)state;
    char *dir = mini_run("{\"schema\": 1,\n  \"status\": \"complete\",,\n}\n", "", NULL);
    struct report_run run;
    char err[ERR_LEN] = "";
    assert_int_equal(report_load(dir, 1, &run, err), JB_ERR_FORMAT);
    assert_non_null(strstr(err, "run.json:2:"));
    report_run_free(&run);
    tu_rmtree_free(dir);
}

/* A newer schema is read as far as it is understood, with a warning. */
static void test_newer_schema(void **state)
{
    (void)state;
    char *dir =
        mini_run("{\"schema\":2,\"status\":\"complete\",\"hologram\":{\"x\":1},"
                 "\"models\":[{\"name\":\"m\"}],\"sensors\":[]}",
                 "{\"schema\":2,\"id\":\"r1\",\"model\":\"m\",\"prompt_id\":\"p\",\"warmup\":false,"
                 "\"total_j\":10,\"output_tokens\":5,\"j_per_token\":2,\"energy_j\":{\"cpu\":10,"
                 "\"quantum\":3},\"new_field\":[1,2]}\n",
                 NULL);
    struct report_options opt;
    report_options_init(&opt);
    opt.quiet = 1;
    char *out = tu_tmpdir("report-out");
    opt.out_dir = out;
    char err[ERR_LEN] = "";
    assert_int_equal(report_build(dir, &opt, err), 0);
    char *md = slurp(out, "summary.md");
    assert_non_null(strstr(md, "schema 2 is newer than this joulebench"));
    assert_non_null(strstr(md, "| m | 2.00 | 10.0 | n/a |"));
    free(md);
    tu_rmtree_free(out);
    tu_rmtree_free(dir);
}

/* ---- statistics ------------------------------------------------------- */

static void test_stats_two_models(void **state)
{
    (void)state;
    struct report_run run;
    struct report_summary s;
    char err[ERR_LEN];
    assert_int_equal(report_load(TWO, 1, &run, err), 0);
    assert_int_equal(report_compute(&run, &s, err), 0);
    assert_int_equal(s.n_models, 2);
    assert_string_equal(s.models[0].name, M7); /* run.json order */

    /* 7b: J/token 0.40 0.42 0.44 (lru-cache), 0.54 0.50 (tcp-handshake;
     * the failed r0008 and the warm-up r0001 are out). mean 0.46; squared
     * deviations sum to 0.0136, sd = sqrt(0.0136 / 4) = 0.0583095;
     * CI = t(4) 2.776 x sd / sqrt(5) = 0.0723893. */
    const struct report_model_stats *a = model(&s, M7);
    assert_int_equal(a->n_requests, 7);
    assert_int_equal(a->n_measured, 5);
    assert_int_equal(a->n_failed, 1);
    assert_int_equal(a->n_warmup, 1);
    /* the warm-up r0001 was the load: 7.285 s, 108 J, CPU estimated */
    assert_int_equal(a->n_loads, 1);
    assert_true(fabs(a->load_s - 7.285) < 1e-9);
    assert_true(fabs(a->load_j - 108.0) < 1e-9);
    assert_true(a->load_estimated);
    assert_int_equal(a->j_per_token.n, 5);
    assert_near(a->j_per_token.mean, 0.46, 1e-9);
    assert_near(a->j_per_token.sd, 0.0583095, 1e-6);
    assert_near(a->j_per_token.ci95, 0.0723893, 1e-6);
    /* Total J: 200 210 220 108 100 -> mean 167.6, sd sqrt(13715.2 / 4). */
    assert_near(a->total_j.mean, 167.6, 1e-9);
    assert_near(a->total_j.sd, sqrt(13715.2 / 4), 1e-6);
    /* Scores 6 7 8 (code) 2 4 (judge) -> 5.4, sd sqrt(23.2 / 4). */
    assert_int_equal(a->n_graded, 5);
    assert_near(a->score.mean, 5.4, 1e-12);
    assert_near(a->score.ci95, 2.776 * sqrt(5.8) / sqrt(5), 1e-9);
    /* Score per kJ = 5.4 / 0.1676. */
    assert_near(a->score_per_kj, 5.4 / 0.1676, 1e-9);
    assert_true(a->score_per_kj_ci95 > 0);
    /* Tokens/s: (n - 1) / decode_s = 40 for every request. */
    assert_near(a->tokens_per_s.mean, 40, 1e-6);
    /* TTFT 0.12 0.13 0.14 0.10 0.09: mean 0.116, p50 0.12. */
    assert_near(a->ttft_s.mean, 0.116, 1e-12);
    assert_near(a->ttft_s.p50, 0.12, 1e-12);
    assert_true(a->energy_estimated);
    assert_int_equal(a->estimated_domains, 1u << JB_DOMAIN_CPU);
    assert_int_equal(a->n_short, 1);
    /* Decode power swings between prompts but does not trend. */
    assert_true(fabs(a->decode_power_drift) < REPORT_DRIFT_WARN);
    /* The domain split is 25 % cpu, 75 % gpu of every request. */
    assert_near(a->domain_j_per_token[JB_DOMAIN_CPU].mean, 0.25 * 0.46, 1e-6);
    assert_near(a->domain_j_per_token[JB_DOMAIN_GPU].mean, 0.75 * 0.46, 1e-6);
    /* Carbon at 400 g/kWh, cost at 0.30/kWh. */
    assert_near(a->co2_g_per_request, 167.6 / 3.6e6 * 400, 1e-12);
    assert_near(a->co2_g_per_mtok, 0.46e6 / 3.6e6 * 400, 1e-9);
    assert_near(a->cost_per_mtok, 0.46e6 / 3.6e6 * 0.30, 1e-12);
    const struct report_prompt_stats *tcp = prompt(a, "tcp-handshake");
    assert_int_equal(tcp->n, 2);
    assert_near(tcp->j_per_token.mean, 0.52, 1e-9);
    assert_near(tcp->cv, sqrt(0.0008) / 0.52, 1e-6);

    /* 32b: 2.6 2.2 1.8 (lru-cache), 2.1 2.3 (tcp-handshake) -> 2.2;
     * sd sqrt(0.34 / 4); scores 10 10 9 only (tcp-handshake ungraded). */
    const struct report_model_stats *b = model(&s, M32);
    assert_int_equal(b->n_measured, 5);
    assert_near(b->j_per_token.mean, 2.2, 1e-9);
    assert_near(b->j_per_token.sd, sqrt(0.085), 1e-6);
    assert_near(b->j_per_token.ci95, 2.776 * sqrt(0.085) / sqrt(5), 1e-6);
    assert_near(b->total_j.mean, 1056, 1e-9);
    assert_int_equal(b->n_graded, 3);
    assert_near(b->score.mean, 29.0 / 3, 1e-12);
    assert_near(b->score.ci95, 4.303 * sqrt(1.0 / 3) / sqrt(3), 1e-9);
    const struct report_prompt_stats *lru = prompt(b, "lru-cache");
    assert_near(lru->cv, 0.4 / 2.2, 1e-6);
    assert_true(b->decode_power_drift < -REPORT_DRIFT_WARN);

    assert_true(s.any_graded);
    assert_false(s.any_synthetic);
    assert_int_equal(s.estimated_domains, 1u << JB_DOMAIN_CPU);
    assert_true(has_warning(s.warnings, "r0008"));
    assert_true(has_warning(s.warnings, M32 ", prompt lru-cache: J/token varies by 18 %"));
    assert_true(has_warning(s.warnings, M32 ": decode power fell"));
    /* relative to the mean, as measured: a trend can exceed 100 % of it,
     * and "fell by 215 %" alone reads as nonsense */
    assert_true(has_warning(s.warnings, "% of its mean from its first to its last request"));
    assert_false(has_warning(s.warnings, M7 ": decode power"));
    assert_true(has_warning(s.warnings, "short_window"));
    assert_true(has_warning(s.warnings, "No space left on device")); /* run.json's own */
    assert_true(has_warning(s.warnings, "the run failed"));
    report_summary_free(&s);
    report_run_free(&run);
}

/* Pooled ITL percentiles, the power fallback, cached prompts, estimated
 * token counts, on numbers small enough to check by hand. */
static void test_stats_small(void **state)
{
    (void)state;
    char *dir = mini_run(
        MINI_RUN_JSON,
        "{\"id\":\"w\",\"model\":\"m\",\"prompt_id\":\"p\",\"warmup\":true,\"total_j\":999,"
        "\"output_tokens\":1,\"j_per_token\":999,\"itl_ms\":[1000],\"ttft_s\":9}\n"
        "{\"id\":\"a\",\"model\":\"m\",\"prompt_id\":\"p\",\"rep\":0,\"itl_ms\":[10,20,30],"
        "\"ttft_s\":0.1,\"duration_s\":2,\"energy_j\":{\"cpu\":30,\"dram\":10},"
        "\"avg_power_w\":{\"cpu\":15,\"dram\":5},\"total_j\":40,\"output_tokens\":4,"
        "\"j_per_token\":10,\"prefill_j_per_prompt_token\":0.5,\"grade\":null}\n"
        "{\"id\":\"b\",\"model\":\"m\",\"prompt_id\":\"p\",\"rep\":1,\"itl_ms\":[40,50],"
        "\"ttft_s\":0.2,\"duration_s\":4,\"energy_j\":{\"cpu\":40,\"dram\":8},"
        "\"total_j\":48,\"output_tokens\":3,\"output_tokens_estimated\":true,"
        "\"j_per_token\":16,\"prompt_cached\":true,\"prefill_j_per_prompt_token\":7}\n"
        "{\"id\":\"c\",\"model\":\"m\",\"prompt_id\":\"q\",\"rep\":0,\"itl_ms\":[60],"
        "\"ttft_s\":0.3,\"duration_s\":1,\"energy_j\":{\"cpu\":6},\"total_j\":6,"
        "\"output_tokens\":2,\"j_per_token\":3,\"prefill_j_per_prompt_token\":1.5,"
        "\"flags\":[\"counter_wrap\",\"sensor_lost\",\"future_flag\"]}\n"
        "{\"id\":\"d\",\"model\":\"m\",\"prompt_id\":\"q\",\"rep\":1,\"error\":\"cut\","
        "\"total_j\":1,\"output_tokens\":1,\"j_per_token\":1,"
        "\"flags\":[\"short_window\",\"sensor_lost\",\"counter_reset\"]}\n",
        NULL);
    struct report_run run;
    struct report_summary s;
    char err[ERR_LEN];
    assert_int_equal(report_load(dir, 1, &run, err), 0);
    assert_int_equal(report_compute(&run, &s, err), 0);
    const struct report_model_stats *m = model(&s, "m");
    /* ITL pooled: 10 20 30 40 50 60 (the warm-up's 1000 is out).
     * p50 = 35; p90 at rank 4.5 = 55; p99 at rank 4.95 = 59.5. */
    assert_int_equal(m->itl_ms.n, 6);
    assert_near(m->itl_ms.p50, 35, 1e-9);
    assert_near(m->itl_ms.p90, 55, 1e-9);
    assert_near(m->itl_ms.p99, 59.5, 1e-9);
    /* TTFT 0.1 0.2 0.3 -> p90 at rank 1.8 = 0.28. */
    assert_near(m->ttft_s.p90, 0.28, 1e-12);
    /* CPU power: 15 (given), 40/4 = 10 and 6/1 = 6 (from energy) -> 31/3. */
    assert_near(m->power_w[JB_DOMAIN_CPU].mean, 31.0 / 3, 1e-12);
    /* DRAM: 5 and 8/4 = 2; the third request had no DRAM reading. */
    assert_int_equal(m->power_w[JB_DOMAIN_DRAM].n, 2);
    assert_near(m->power_w[JB_DOMAIN_DRAM].mean, 3.5, 1e-12);
    /* The cached prompt's prefill figure is left out: (0.5 + 1.5) / 2. */
    assert_near(m->prefill_j_per_prompt_token.mean, 1.0, 1e-12);
    assert_near(m->j_per_token.mean, 29.0 / 3, 1e-12);
    assert_true(m->tokens_estimated);
    assert_false(m->energy_estimated);
    assert_int_equal(m->n_wrap, 1);
    /* The failed request's flags qualify joules no statistic uses. */
    assert_int_equal(m->n_lost, 1);
    assert_int_equal(m->n_reset, 0);
    assert_int_equal(m->n_short, 0);
    assert_int_equal(m->n_failed, 1);
    assert_false(has_warning(s.warnings, "short_window"));
    assert_true(isnan(m->score.mean));
    assert_true(isnan(m->net_j_per_token.mean)); /* no baseline: n/a, not 0 */
    assert_true(isnan(m->co2_g_per_request));    /* no grid intensity given */
    assert_true(has_warning(s.warnings, "sensor was lost"));
    assert_false(s.any_graded);

    struct buf md = {0}, table = {0};
    assert_int_equal(report_write_summary_md(&run, &s, &md, &table), 0);
    /* Estimated token counts mark J/token and tokens/s, not the energy. */
    assert_non_null(strstr(buf_str(&table), "| m | ~9.67 ± "));
    assert_non_null(strstr(buf_str(&table), "output token counts were estimated"));
    assert_null(strstr(buf_str(&md), "## Carbon and cost"));
    assert_non_null(strstr(buf_str(&md), "No idle baseline was measured"));
    buf_free(&md);
    buf_free(&table);
    report_summary_free(&s);
    report_run_free(&run);
    tu_rmtree_free(dir);
}

/* ---- the files -------------------------------------------------------- */

static char *build(const char *dir, struct buf *table)
{
    struct report_options opt;
    report_options_init(&opt);
    opt.quiet = 1;
    opt.table = table;
    char *out = tu_tmpdir("report-out");
    opt.out_dir = out;
    char err[ERR_LEN] = "";
    int rc = report_build(dir, &opt, err);
    if (rc)
        fail_msg("report_build(%s): %s", dir, err);
    return out;
}

/* A baseline that was itself estimated makes every net figure an estimate,
 * while the gross figures of measured sensors stay unmarked. A record
 * without a prompt id (a chat session) still gets its row. */
static void test_estimated_baseline_marks_net(void **state)
{
    (void)state;
    char *dir =
        mini_run("{\"schema\":1,\"status\":\"complete\",\"models\":[{\"name\":\"m\"}],"
                 "\"sensors\":[],\"baseline\":{\"duration_s\":5,\"power_w\":{\"cpu\":2},"
                 "\"total_w\":2,\"estimated_domains\":[\"cpu\"]}}",
                 "{\"id\":\"c1\",\"model\":\"m\",\"energy_j\":{\"gpu\":20},\"total_j\":20,"
                 "\"net_total_j\":12,\"output_tokens\":2,\"j_per_token\":10,\"net_j_per_token\":6,"
                 "\"estimated_domains\":[]}\n",
                 NULL);
    char *out = build(dir, NULL);
    char *md = slurp(out, "summary.md");
    assert_non_null(strstr(md, "| m | 1 (0, 0) | 10.0 | ~6.00 | 20.0 | ~12.0 |"));
    assert_non_null(strstr(md, "the baseline was partly estimated"));
    assert_non_null(strstr(md, "| m | (no prompt id) | 1 |"));
    free(md);
    tu_rmtree_free(out);
    tu_rmtree_free(dir);
}

/* Every field of the wrong JSON type: nothing crashes, nothing becomes a
 * number, and every file is still written. */
static void test_wrong_types(void **state)
{
    (void)state;
    char *dir =
        mini_run("{\"schema\":\"one\",\"status\":7,\"models\":{\"name\":\"x\"},\"sensors\":"
                 "[1,{\"name\":5},{\"name\":\"s\",\"domain\":\"warp\",\"used\":\"yes\"}],"
                 "\"options\":[],\"baseline\":\"none\",\"host\":[1],\"engine\":\"e\","
                 "\"warnings\":[3,\"real warning\"]}",
                 "[1,2,3]\n"
                 "\"just a string\"\n"
                 "{\"model\":7}\n"
                 "{\"model\":\"m\",\"id\":[],\"prompt_id\":{},\"rep\":-5,\"warmup\":\"no\","
                 "\"error\":false,\"total_j\":\"12\",\"energy_j\":\"abc\",\"avg_power_w\":[1],"
                 "\"itl_ms\":{\"a\":1},\"phases\":[],\"grade\":5,\"flags\":\"short_window\","
                 "\"estimated_domains\":\"cpu\",\"prompt\":42,\"response\":null}\n"
                 "{\"model\":\"m\",\"itl_ms\":[\"x\",null,5],\"grade\":{\"score\":11},"
                 "\"energy_j\":{\"cpu\":\"1\",\"gpu\":2},\"output_tokens\":0,\"total_j\":2,"
                 "\"j_per_token\":null}\n",
                 "t_s,phase,request_id,s_w\nnot-a-number,decode,,1\n1.0,warp,,x\n");
    struct report_run run;
    struct report_summary sm;
    char err[ERR_LEN] = "";
    assert_int_equal(report_load(dir, 1, &run, err), 0);
    assert_int_equal(run.n_rec, 2); /* the array, the string, model 7 skipped */
    assert_true(has_warning(run.warnings, "line 1: not a request record"));
    assert_true(has_warning(run.warnings, "line 3: not a request record"));
    assert_true(has_warning(run.warnings, "t_s 'not-a-number'"));
    assert_int_equal(report_compute(&run, &sm, err), 0);
    const struct report_model_stats *m = model(&sm, "m");
    assert_int_equal(m->n_measured, 2);
    assert_near(m->total_j.mean, 2, 0); /* "12" is a string, not 12 */
    assert_int_equal(m->itl_ms.n, 1);   /* only the 5 */
    assert_true(isnan(m->score.mean));  /* 11 is off the 0-10 scale */
    assert_int_equal(m->domains, 1u << JB_DOMAIN_GPU);
    assert_true(has_warning(sm.warnings, "real warning"));
    report_summary_free(&sm);
    report_run_free(&run);
    char *out = build(dir, NULL);
    assert_png(out, "power_timeline.png");
    tu_rmtree_free(out);
    tu_rmtree_free(dir);
}

static void test_summary_md_two_models(void **state)
{
    (void)state;
    struct buf table = {0};
    char *out = build(TWO, &table);
    char *md = slurp(out, "summary.md");
    /* The headline rows, with the hand-computed means and CIs above, "~"
     * on every figure that includes the estimated CPU domain. */
    assert_non_null(strstr(md, "| Model | Efficiency (J/Tok) | Avg. Total Energy (J) | Technical "
                               "Score (/10) | tokens/s | TTFT (s) | Avg. power CPU (W) | Avg. "
                               "power GPU (W) |"));
    assert_non_null(strstr(md, "| " M7 " | ~0.460 ± 0.072 | ~168 ± 73 | 5.40 ± 2.99 | 40.0 | "
                               "0.116 | ~"));
    assert_non_null(strstr(md, "| " M32 " | ~2.20 ± 0.36 | ~1056 ± 496 | 9.67 ± 1.43 | 10.0 |"));
    assert_non_null(strstr(md, "**~ marks an estimated figure (est.).**"));
    assert_non_null(strstr(md, "cpu (from estimate:cpu)"));
    assert_non_null(strstr(md, "**Incomplete run**"));
    assert_null(strstr(md, "Synthetic model"));
    /* Baseline row: 5 s, cpu 2 W estimated, gpu 6 W, total 8 W estimated. */
    assert_non_null(strstr(md, "| idle | 5.00 | ~2.00 | 6.00 | ~8.00 |"));
    /* Carbon and cost, because run.json gave both. */
    assert_non_null(strstr(md, "## Carbon and cost"));
    assert_non_null(strstr(md, "Cost / request EUR"));
    assert_non_null(strstr(md, "400 gCO2e/kWh"));
    /* 7b: 0.46 J/token x 1e6 / 3.6e6 x 400 = 51.1 g per million tokens. */
    assert_non_null(strstr(md, "| " M7 " | ~0.0186 | ~51.1 |"));
    /* Per prompt, sensors, models, warnings. */
    assert_non_null(strstr(md, "| " M32 " | lru-cache | 3 | ~2.20 ± 0.99 |"));
    assert_non_null(strstr(md, "18.2 % (wide)"));
    assert_non_null(strstr(md, "| estimate:cpu | estimate | cpu | **estimated** |"));
    assert_non_null(strstr(md, "Not used: rapl:package-0"));
    assert_non_null(strstr(md, "sudo chmod o+r"));
    assert_non_null(strstr(md, "| Q4_K_M | 7.6B |"));
    assert_non_null(strstr(md, "Engine: ollama 0.5.7 at http://127.0.0.1:11434"));
    assert_non_null(strstr(md, "requests.jsonl line 14"));
    assert_non_null(strstr(md, "| " M7 " | 5 (1, 1) |"));
    /* The cold-start cost of each model, in its own section. */
    assert_non_null(strstr(md, "## Model load"));
    assert_non_null(strstr(md, "| " M7 " | 1 | 7.29 | ~108 |"));
    assert_non_null(strstr(md, "| " M32 " | 1 | 27.4 | ~480 |"));
    /* The table for the terminal is the head of summary.md. */
    assert_non_null(strstr(md, buf_str(&table)));
    assert_non_null(strstr(buf_str(&table), "## Warnings"));
    free(md);
    buf_free(&table);
    tu_rmtree_free(out);
}

static void test_summary_md_partial_synthetic(void **state)
{
    (void)state;
    char *out = build(SYN, NULL);
    char *md = slurp(out, "summary.md");
    assert_non_null(strstr(md, "**Interrupted run**"));
    assert_non_null(strstr(md, "**Synthetic model**"));
    assert_non_null(strstr(md, "| synthetic-tiny (synthetic) | ~"));
    assert_non_null(strstr(md, "| n/a |")); /* no score */
    assert_non_null(strstr(md, "**synthetic model** (random weights"));
    assert_null(strstr(md, "## Carbon and cost"));
    assert_non_null(strstr(md, "No idle baseline was measured"));
    assert_non_null(strstr(md, "the run was interrupted"));
    free(md);
    tu_rmtree_free(out);
}

/* Reads a whole CSV file into rows of strings (heap; freed by the caller
 * through free_rows). */
struct table {
    size_t n_rows, n_cols;
    char ***cell;
};

static struct table read_csv(const char *dir, const char *name)
{
    char *text = slurp(dir, name);
    struct table t = {0};
    struct csv_row row = {0};
    size_t pos = 0, line = 1;
    char err[ERR_LEN];
    int rc;
    while ((rc = csv_next_row(text, strlen(text), &pos, &line, &row, err)) == 1) {
        if (t.n_rows == 0)
            t.n_cols = row.n;
        assert_int_equal(row.n, t.n_cols); /* every row as wide as the header */
        t.cell = realloc(t.cell, (t.n_rows + 1) * sizeof *t.cell);
        t.cell[t.n_rows] = calloc(row.n, sizeof(char *));
        for (size_t c = 0; c < row.n; c++)
            t.cell[t.n_rows][c] = str_dup(csv_field(&row, c));
        t.n_rows++;
    }
    assert_int_equal(rc, 0);
    csv_row_free(&row);
    free(text);
    return t;
}

static void free_rows(struct table *t)
{
    for (size_t r = 0; r < t->n_rows; r++) {
        for (size_t c = 0; c < t->n_cols; c++)
            free(t->cell[r][c]);
        free(t->cell[r]);
    }
    free(t->cell);
}

static size_t col(const struct table *t, const char *name)
{
    for (size_t c = 0; c < t->n_cols; c++)
        if (strcmp(t->cell[0][c], name) == 0)
            return c;
    fail_msg("no column %s", name);
    return 0;
}

static void test_csv_files(void **state)
{
    (void)state;
    char *out = build(TWO, NULL);
    struct table m = read_csv(out, "metrics.csv");
    assert_int_equal(m.n_rows, 1 + 13);
    size_t id = col(&m, "id"), warm = col(&m, "warmup"), failed = col(&m, "failed");
    size_t jpt = col(&m, "j_per_token"), flags = col(&m, "flags");
    size_t est = col(&m, "estimated_domains"), score = col(&m, "score");
    size_t gpu = col(&m, "energy_gpu_j");
    col(&m, "co2_g");
    col(&m, "cost");
    col(&m, "itl_p99_ms");
    assert_string_equal(m.cell[1][id], "r0001");
    assert_string_equal(m.cell[1][warm], "1");
    assert_string_equal(m.cell[3][id], "r0003");
    assert_string_equal(m.cell[3][warm], "0");
    assert_string_equal(m.cell[3][jpt], "0.4");
    assert_string_equal(m.cell[3][gpu], "150"); /* 75 % of 200 J */
    assert_string_equal(m.cell[3][est], "cpu");
    assert_string_equal(m.cell[3][score], "6");
    assert_string_equal(m.cell[6][score], ""); /* ungraded: empty, not 0 */
    assert_string_equal(m.cell[8][id], "r0008");
    assert_string_equal(m.cell[8][failed], "1");
    assert_string_equal(m.cell[12][flags], "short_window");
    free_rows(&m);

    /* responses.csv: the text must come back exactly as requests.jsonl has
     * it (commas, quotes, CR/LF, UTF-8). */
    struct table r = read_csv(out, "responses.csv");
    assert_int_equal(r.n_cols, 6);
    assert_string_equal(r.cell[0][0], "id");
    assert_string_equal(r.cell[0][4], "response");
    assert_int_equal(r.n_rows, 1 + 13);
    char *jsonl = slurp(TWO, "requests.jsonl");
    size_t checked = 0, line_start = 0;
    for (size_t row = 1; row < r.n_rows; row++) {
        const char *nl = strchr(jsonl + line_start, '\n');
        json_error_t je;
        json_t *o = json_loadb(jsonl + line_start, (size_t)(nl - (jsonl + line_start)), 0, &je);
        assert_non_null(o);
        assert_string_equal(r.cell[row][0], json_string_value(json_object_get(o, "id")));
        assert_string_equal(r.cell[row][3], json_string_value(json_object_get(o, "prompt")));
        assert_string_equal(r.cell[row][4], json_string_value(json_object_get(o, "response")));
        const json_t *e = json_object_get(o, "error");
        assert_string_equal(r.cell[row][5], json_is_string(e) ? json_string_value(e) : "");
        checked += strstr(r.cell[row][4], "\r\n") || strstr(r.cell[row][4], "🚀");
        json_decref(o);
        line_start = (size_t)(nl - jsonl) + 1;
    }
    assert_true(checked >= 2); /* the awkward ones were among them */
    free(jsonl);
    free_rows(&r);
    tu_rmtree_free(out);
}

/* ---- charts ----------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void assert_png(const char *dir, const char *name)
{
    char path[FS_PATH_MAX], err[ERR_LEN];
    fs_path_join(path, sizeof path, dir, name);
    struct buf b = {0};
    assert_int_equal(fs_read_file(path, 0, &b, err), 0);
    const unsigned char *p = (const unsigned char *)b.data;
    assert_true(b.len > 1000);
    assert_memory_equal(p, "\x89PNG\r\n\x1a\n", 8);
    assert_int_equal(be32(p + 8), 13);
    assert_memory_equal(p + 12, "IHDR", 4);
    assert_int_equal(be32(p + 16), REPORT_CHART_W);
    assert_int_equal(be32(p + 20), REPORT_CHART_H);
    assert_memory_equal(p + b.len - 8, "IEND", 4);
    buf_free(&b);
}

/* Well-formed enough to open: one root <svg> of the chart's size, every
 * element closed in order, quoted attributes. */
static void assert_svg(const char *dir, const char *name)
{
    char *s = slurp(dir, name);
    assert_true(strncmp(s, "<?xml", 5) == 0);
    char want[128];
    snprintf(want, sizeof want, "width=\"%dpt\" height=\"%dpt\"", REPORT_CHART_W, REPORT_CHART_H);
    char *root = strstr(s, "<svg");
    assert_non_null(root);
    char *end = strchr(root, '>');
    assert_non_null(end);
    *end = '\0';
    assert_non_null(strstr(root, want));
    *end = '>';
    char stack[64][32];
    int depth = 0, elements = 0;
    for (char *p = s; (p = strchr(p, '<'));) {
        if (p[1] == '?' || p[1] == '!') {
            p = strchr(p, '>');
            assert_non_null(p);
            continue;
        }
        int closing = p[1] == '/';
        char *q = p + 1 + closing;
        size_t n = strcspn(q, " \t\r\n/>");
        assert_true(n > 0 && n < 32);
        /* Skip to the end of the tag, minding quoted attribute values. */
        char *t = q + n;
        int quote = 0;
        while (*t && (quote || *t != '>')) {
            if (*t == '"' || *t == '\'')
                quote = quote == *t ? 0 : quote ? quote : *t;
            t++;
        }
        assert_true(*t == '>');
        int self = t[-1] == '/';
        if (closing) {
            assert_true(depth > 0);
            depth--;
            assert_int_equal(strlen(stack[depth]), n);
            assert_memory_equal(stack[depth], q, n);
        } else if (!self) {
            assert_true(depth < 64);
            memcpy(stack[depth], q, n);
            stack[depth][n] = '\0';
            depth++;
        }
        elements++;
        p = t;
    }
    assert_int_equal(depth, 0);
    assert_true(elements > 20);
    free(s);
}

static void assert_charts(const char *out)
{
    static const char *const names[] = {"energy_comparison", "intelligence_tax", "value_for_energy",
                                        "power_timeline"};
    for (size_t i = 0; i < 4; i++) {
        char f[64];
        snprintf(f, sizeof f, "%s.png", names[i]);
        assert_png(out, f);
        snprintf(f, sizeof f, "%s.svg", names[i]);
        assert_svg(out, f);
    }
}

/* Counts pixels that are not white in a rectangle of a PNG. */
static size_t inked(const char *dir, const char *name, int x0, int y0, int x1, int y1)
{
    char path[FS_PATH_MAX];
    fs_path_join(path, sizeof path, dir, name);
    cairo_surface_t *img = cairo_image_surface_create_from_png(path);
    assert_int_equal(cairo_surface_status(img), CAIRO_STATUS_SUCCESS);
    const unsigned char *px = cairo_image_surface_get_data(img);
    int stride = cairo_image_surface_get_stride(img);
    size_t n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            uint32_t v;
            memcpy(&v, px + (size_t)y * (size_t)stride + (size_t)x * 4, 4);
            n += (v & 0xffffffu) != 0xffffffu;
        }
    cairo_surface_destroy(img);
    return n;
}

static void test_charts_two_models(void **state)
{
    (void)state;
    char *out = build(TWO, NULL);
    assert_charts(out);
    /* The strip between the plot (right edge at x = 910) and the legend
     * (from x = 934) is blank: no path may leak from a label to a marker.
     * The plot itself is not blank. */
    assert_int_equal(inked(out, "intelligence_tax.png", 914, 105, 930, 585), 0);
    assert_true(inked(out, "intelligence_tax.png", 110, 110, 910, 590) > 1000);
    assert_int_equal(inked(out, "energy_comparison.png", 914, 105, 930, 585), 0);
    tu_rmtree_free(out);
}

/* No grades, no baseline, interrupted: the score charts still render (with
 * their message), and so does everything else. */
static void test_charts_ungraded_partial(void **state)
{
    (void)state;
    char *out = build(SYN, NULL);
    assert_charts(out);
    tu_rmtree_free(out);
}

/* A run with no timeline and no measured request still gets every file,
 * and its summary says that nothing was measured. */
static void test_charts_empty_run(void **state)
{
    (void)state;
    char *dir =
        mini_run(MINI_RUN_JSON,
                 "{\"id\":\"a\",\"model\":\"m\",\"warmup\":false,\"error\":\"refused\"}\n", NULL);
    char *out = build(dir, NULL);
    assert_charts(out);
    char *md = slurp(out, "summary.md");
    assert_non_null(strstr(md, "m: no measured request"));
    /* with no figure at all, the note on estimates must not claim that
     * "all figures are measured" */
    if (strstr(md, "All figures are measured") || !strstr(md, "No energy was measured"))
        fail_msg("summary.md of a run with no figure:\n%s", md);
    free(md);
    tu_rmtree_free(out);
    tu_rmtree_free(dir);
}

static void test_nice_ticks(void **state)
{
    (void)state;
    /* Chart ticks come from report's chart.c through the charts; here the
     * number formatting the tables share. */
    char b[32];
    report_fmt_sig(b, sizeof b, 0.45213, 3);
    assert_string_equal(b, "0.452");
    report_fmt_sig(b, sizeof b, 3823.4, 3);
    assert_string_equal(b, "3823");
    report_fmt_sig(b, sizeof b, 39.04, 3);
    assert_string_equal(b, "39.0");
    report_fmt_sig(b, sizeof b, 0.0341, 3);
    assert_string_equal(b, "0.0341");
    report_fmt_sig(b, sizeof b, NAN, 3);
    assert_string_equal(b, "n/a");
}

/* ---- JSON and the command line --------------------------------------- */

static void test_json(void **state)
{
    (void)state;
    json_t *o = NULL;
    char err[ERR_LEN];
    assert_int_equal(report_summary_json(TWO, 1, &o, err), 0);
    json_t *models = json_object_get(o, "models");
    assert_int_equal(json_array_size(models), 2);
    json_t *a = json_array_get(models, 0);
    assert_string_equal(json_string_value(json_object_get(a, "name")), M7);
    json_t *jpt = json_object_get(a, "j_per_token");
    assert_near(json_real_value(json_object_get(jpt, "mean")), 0.46, 1e-9);
    assert_near(json_real_value(json_object_get(jpt, "ci95")), 0.0723893, 1e-6);
    assert_int_equal(json_integer_value(json_object_get(jpt, "n")), 5);
    assert_true(json_is_true(json_object_get(a, "estimated")));
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(a, "estimated_domains"), 0)), "cpu");
    assert_near(json_real_value(json_object_get(json_object_get(a, "score"), "mean")), 5.4, 1e-12);
    assert_non_null(json_object_get(json_object_get(a, "power_w"), "gpu"));
    assert_non_null(json_object_get(a, "co2_g_per_million_tokens"));
    assert_int_equal(json_array_size(json_object_get(a, "prompts")), 2);
    json_t *load = json_object_get(a, "load");
    assert_int_equal(json_integer_value(json_object_get(load, "n")), 1);
    assert_near(json_real_value(json_object_get(load, "energy_j")), 108.0, 1e-9);
    assert_true(json_is_true(json_object_get(load, "estimated")));
    assert_true(json_array_size(json_object_get(o, "warnings")) >= 5);
    assert_string_equal(json_string_value(json_object_get(o, "status")), "failed");
    json_decref(o);

    assert_int_equal(report_summary_json(SYN, 1, &o, err), 0);
    assert_true(json_is_true(json_object_get(o, "interrupted")));
    assert_true(json_is_true(json_object_get(o, "synthetic")));
    a = json_array_get(json_object_get(o, "models"), 0);
    assert_true(json_is_null(json_object_get(a, "score")));
    assert_true(json_is_null(json_object_get(a, "score_per_kj")));
    assert_true(json_is_null(json_object_get(a, "net_j_per_token")));
    assert_null(json_object_get(a, "co2_g_per_request")); /* not priced: absent */
    json_decref(o);
}

static void test_cli(void **state)
{
    (void)state;
    char *out = tu_tmpdir("report-cli");
    struct buf so = {0}, se = {0};
    char *argv1[] = {JB_TOOL, "report", TWO, "-o", out, NULL};
    assert_int_equal(tu_run(argv1, NULL, &so, &se), 0);
    assert_non_null(strstr(buf_str(&so), "| Model | Efficiency (J/Tok) |"));
    assert_non_null(strstr(buf_str(&se), "requests.jsonl line 14"));
    assert_png(out, "energy_comparison.png");

    buf_reset(&so);
    buf_reset(&se);
    char *argv2[] = {JB_TOOL, "report", SYN, "--json", "-o", out, NULL};
    assert_int_equal(tu_run(argv2, NULL, &so, &se), 0);
    json_error_t je;
    json_t *o = json_loads(buf_str(&so), 0, &je);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "status")), "interrupted");
    json_decref(o);

    buf_reset(&so);
    buf_reset(&se);
    char *argv3[] = {JB_TOOL, "report", "/nonexistent/run-dir", NULL};
    assert_int_equal(tu_run(argv3, NULL, &so, &se), 2);
    assert_non_null(strstr(buf_str(&se), "/nonexistent/run-dir"));

    buf_reset(&se);
    char *argv4[] = {JB_TOOL, "report", NULL};
    assert_int_equal(tu_run(argv4, NULL, &so, &se), 2);
    char *argv5[] = {JB_TOOL, "report", TWO, "--bogus", NULL};
    assert_int_equal(tu_run(argv5, NULL, &so, &se), 2);
    assert_non_null(strstr(buf_str(&se), "--bogus"));
    buf_free(&so);
    buf_free(&se);
    tu_rmtree_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_two_models),
        cmocka_unit_test(test_timeline_domains),
        cmocka_unit_test(test_missing_files),
        cmocka_unit_test(test_malformed_run_json),
        cmocka_unit_test(test_newer_schema),
        cmocka_unit_test(test_stats_two_models),
        cmocka_unit_test(test_stats_small),
        cmocka_unit_test(test_summary_md_two_models),
        cmocka_unit_test(test_summary_md_partial_synthetic),
        cmocka_unit_test(test_estimated_baseline_marks_net),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_csv_files),
        cmocka_unit_test(test_charts_two_models),
        cmocka_unit_test(test_charts_ungraded_partial),
        cmocka_unit_test(test_charts_empty_run),
        cmocka_unit_test(test_nice_ticks),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
