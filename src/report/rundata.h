/*
 * rundata.h — a run directory read back into memory (run.json,
 * requests.jsonl, timeline.csv), and the statistics computed from it. This
 * is the report layer's own model; every writer (summary.md, CSV, JSON,
 * charts) works from it and from nothing else.
 *
 * Missing is not zero: every number that was null or absent in the files is
 * NaN here, and every statistic skips NaN.
 *
 * Ownership: report_load() fills a caller-owned struct report_run and
 * report_run_free() releases everything in it; the strings and json_t
 * pointers inside point into its JSON documents. report_compute() fills a
 * caller-owned struct report_summary that borrows from the run (free it with
 * report_summary_free() before the run).
 */
#ifndef JB_REPORT_RUNDATA_H
#define JB_REPORT_RUNDATA_H

#include <jansson.h>
#include <stddef.h>

#include "common/stats.h"
#include "joulebench/joulebench.h"

/* The run-directory schema this code was written for (docs/results.md). */
#define REPORT_SCHEMA 1

/* Thresholds of the warnings, printed in summary.md's notes too.
 * Spread: the coefficient of variation (sd / mean) of J/token over the
 * repetitions of one prompt. Drift: the least-squares change of a model's
 * decode power from its first to its last measured request, relative to its
 * mean decode power (thermal throttling shows up as a fall). */
#define REPORT_CV_WARN 0.10
#define REPORT_DRIFT_WARN 0.10

enum report_phase {
    REPORT_PHASE_NONE = 0,
    REPORT_PHASE_BASELINE,
    REPORT_PHASE_LOAD,
    REPORT_PHASE_WARMUP,
    REPORT_PHASE_PREFILL,
    REPORT_PHASE_DECODE,
    REPORT_PHASE_IDLE,
    REPORT_PHASE_COUNT
};
const char *report_phase_name(enum report_phase p);

/* Phases a request's energy is split into (requests.jsonl "phases"). */
enum report_req_phase { REPORT_RP_LOAD = 0, REPORT_RP_PREFILL, REPORT_RP_DECODE, REPORT_RP_COUNT };

/* Record flags (requests.jsonl "flags"). */
#define REPORT_FLAG_SHORT 0x1u  /* "short_window" */
#define REPORT_FLAG_WRAP 0x2u   /* "counter_wrap" */
#define REPORT_FLAG_LOST 0x4u   /* "sensor_lost" */
#define REPORT_FLAG_RESET 0x8u  /* "counter_reset" */
#define REPORT_FLAG_OTHER 0x10u /* a flag this version does not know */

/* One line of requests.jsonl. */
struct report_record {
    size_t line;                        /* 1-based line number in requests.jsonl */
    const json_t *obj;                  /* the whole record */
    const char *id, *model, *prompt_id; /* "" when absent */
    const char *error;                  /* NULL when the request succeeded */
    int rep, warmup, load;
    double t_start_s, duration_s, ttft_s, decode_s, tokens_per_s, prefill_tokens_per_s;
    double prompt_tokens, output_tokens;
    int prompt_tokens_estimated, output_tokens_estimated, prompt_cached;
    double total_j, net_total_j;
    double j_per_token, net_j_per_token, decode_j_per_token, prefill_j_per_prompt_token;
    double energy_j[JB_DOMAIN_COUNT]; /* gross, per domain; NaN when not measured */
    double net_energy_j[JB_DOMAIN_COUNT];
    double avg_power_w[JB_DOMAIN_COUNT];
    double phase_j[REPORT_RP_COUNT]; /* total joules per phase */
    double phase_s[REPORT_RP_COUNT];
    double phase_domain_j[REPORT_RP_COUNT][JB_DOMAIN_COUNT];
    unsigned domains;           /* bit (1u << domain) set for each domain in energy_j */
    unsigned estimated_domains; /* bit per domain */
    unsigned flags;             /* REPORT_FLAG_* */
    double score;               /* grade.score, 0-10; NaN when ungraded */
    double co2_g, cost;         /* NaN unless the run priced carbon / energy */
    const json_t *itl_ms;       /* array of inter-token gaps, or NULL */
};

/* One entry of run.json "sensors". */
struct report_sensor {
    const char *name, *backend, *label, *reason, *fix;
    int domain; /* enum jb_domain, -1 when unknown */
    int estimated, readable, used;
    int top;                /* 1: parent is null, so it counts towards domain totals */
    double update_period_s; /* NaN when unknown */
};

/* timeline.csv: one row per sample interval. */
struct report_timeline {
    size_t n;
    double *t_s;          /* (n) seconds since the run started, end of the interval */
    unsigned char *phase; /* (n) enum report_phase */
    double *domain_w;     /* (n, JB_DOMAIN_COUNT) mean watts; NaN when unknown */
    unsigned domains;     /* domains with a used top-level sensor column */
    unsigned estimated;   /* domains fed by an estimated sensor */
};

struct report_run {
    char dir[4096];
    json_t *run;   /* run.json */
    json_t *lines; /* array of the valid requests.jsonl objects (owns them) */
    struct report_record *rec;
    size_t n_rec;
    struct report_sensor *sensors;
    size_t n_sensors;
    int has_timeline;
    struct report_timeline timeline;
    const char *status; /* "complete", "interrupted", ...; "unknown" when absent */
    json_t *warnings;   /* array of strings: what loading found (torn lines, newer schema) */
};

/* Reads dir/run.json and dir/requests.jsonl (both required) and
 * dir/timeline.csv (optional). A line of requests.jsonl that is not a JSON
 * object is skipped with a warning naming its line. Errors name the file:
 * JB_ERR_NOTFOUND for a missing file, JB_ERR_FORMAT (file:line:column) for
 * a malformed run.json or timeline.csv. Warnings are also logged unless
 * quiet. */
int report_load(const char *dir, int quiet, struct report_run *run, char *err);
void report_run_free(struct report_run *run);

/* Statistics over the measured requests of one prompt of one model. */
struct report_prompt_stats {
    const char *prompt_id;
    size_t n; /* measured repetitions */
    struct stats_summary j_per_token, total_j, tokens_per_s, ttft_s, score;
    double cv; /* sd / mean of J/token; NaN below 2 repetitions */
};

/* Statistics per model. "Measured" requests are those that count: not a
 * warm-up, no error. Each statistic is over the measured requests (one value
 * per request), so its 95 % CI is that of the mean request of the suite.
 * The score alone also counts failed requests that were graded: a model
 * that fails mid-answer has earned that grade. */
struct report_model_stats {
    const char *name;
    const json_t *info; /* its run.json "models" entry, or NULL */
    int synthetic;
    size_t n_requests, n_measured, n_failed, n_warmup, n_graded;
    struct stats_summary j_per_token, net_j_per_token, decode_j_per_token;
    struct stats_summary prefill_j_per_prompt_token, total_j, net_total_j;
    struct stats_summary tokens_per_s, ttft_s, itl_ms, output_tokens, score;
    struct stats_summary power_w[JB_DOMAIN_COUNT]; /* avg power per domain */
    struct stats_summary domain_j_per_token[JB_DOMAIN_COUNT];
    unsigned domains;                       /* domains measured for this model */
    unsigned estimated_domains;             /* domains estimated in any measured request */
    int tokens_estimated;                   /* output token counts were estimated somewhere */
    int energy_estimated;                   /* any estimated domain: totals are estimates */
    double score_per_kj, score_per_kj_ci95; /* mean score / mean kJ; CI propagated */
    double decode_power_drift; /* relative change over the run (-0.15 = fell 15 %); NaN */
    size_t n_short, n_wrap, n_lost, n_reset;
    /* Model loads (warm-up records marked load: the cold-start cost, kept
     * out of the figures above): how many, and their mean seconds and
     * joules (NaN when none was measured). */
    size_t n_loads;
    double load_s, load_j;
    int load_estimated;
    struct report_prompt_stats *prompts;
    size_t n_prompts;
    double co2_g_per_request, co2_g_per_mtok; /* NaN unless grid_gco2_kwh is set */
    double cost_per_request, cost_per_mtok;   /* NaN unless price_kwh is set */
};

struct report_summary {
    struct report_model_stats *models;
    size_t n_models;
    unsigned domains;           /* union over models */
    unsigned estimated_domains; /* union over models and the baseline */
    int any_graded, any_synthetic, any_tokens_estimated;
    int baseline_estimated;          /* net figures inherit the baseline's estimate */
    double grid_gco2_kwh, price_kwh; /* NaN when not given */
    const char *currency;            /* "" when not given */
    json_t *warnings;                /* loader's warnings and the computed ones */
};

int report_compute(const struct report_run *run, struct report_summary *out, char *err);
void report_summary_free(struct report_summary *s);

/* Small JSON readers shared by the writers: NaN / NULL / def when absent. */
double report_jnum(const json_t *obj, const char *key);
const char *report_jstr(const json_t *obj, const char *key);
int report_jbool(const json_t *obj, const char *key, int def);

#endif
