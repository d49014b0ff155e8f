/*
 * runner.h — `joulebench run`: models × prompts × repetitions, an idle
 * baseline, a load and warm-up per model, every request in its own energy
 * window split into prefill and decode, graded, appended to the run
 * directory as it finishes, and the report at the end.
 *
 * Ownership: the options and every string in them are the caller's and
 * must outlive runner_run().
 */
#ifndef JB_BENCH_RUNNER_H
#define JB_BENCH_RUNNER_H

#include <stddef.h>
#include <stdint.h>

#include "engines/engine.h"

struct runner_options {
    const char *engine;        /* "ollama" | "openai" | "builtin"; NULL: choose */
    const char *url;           /* NULL: the engine's default */
    const char *const *models; /* -m, in order; none: the engine's default */
    size_t n_models;
    const char *suite;          /* file or built-in name; NULL: "default" */
    const char *const *prompts; /* --prompt texts; when given they replace the suite */
    size_t n_prompts;
    const char *system; /* --system for --prompt texts */
    int reps;           /* >= 1 */
    int warmup;         /* unmeasured requests per model after its load */
    double baseline_s;  /* 0: no baseline */
    int max_tokens;     /* 0: per prompt, else 512 (128 on a synthetic model) */
    int has_seed;
    uint64_t seed;
    double temperature; /* NAN: engine default */
    double top_p;       /* NAN: engine default */
    int raw;
    int sequential;      /* --order sequential */
    const char *out_dir; /* NULL: results/<timestamp> */
    int json;            /* summary as JSON on stdout */
    int quiet;
    int lines_to_stderr;      /* the per-request lines go to stderr (chat: stdout
                                 holds the answers and the summary only) */
    double interval_ms;       /* meter sampler period */
    double cpu_watts;         /* estimator figure; 0 = built-in */
    double timeout_s;         /* per-request silence limit */
    double server_wait_s;     /* after a failure, wait this long for a server that
                                 stopped answering; 0: do not wait */
    double grid_gco2_kwh;     /* NAN: not given */
    double price_kwh;         /* NAN: not given */
    const char *currency;     /* label for price, e.g. "EUR"; NULL: none */
    const char *judge_model;  /* NULL: judge-graded prompts stay ungraded */
    const char *judge_engine; /* NULL: the run's engine */
    const char *judge_url;
    int judge_reps;
    int no_grade;
    int threads;         /* builtin */
    int wait_sleep;      /* builtin pool: 1 sleep, 0 spin */
    int ctx_len;         /* builtin */
    int ollama_generate; /* use /api/generate rather than /api/chat */
    const char *keep_alive;
};

void runner_options_init(struct runner_options *o);

/* Runs the benchmark. Returns 0 when every request succeeded, JB_ERR_NET
 * (or the first failure's code) when some failed but the run finished,
 * JB_ERR_INTERRUPTED on SIGINT/SIGTERM (the run directory is complete and
 * marked interrupted), or a setup error (bad options, no engine) with err
 * set. *out_dir_used receives the directory (may be NULL). */
int runner_run(const struct runner_options *opt, char *out_dir_used, size_t out_size, char *err);

#endif
