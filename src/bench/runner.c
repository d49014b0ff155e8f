#include "bench/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/host.h"
#include "bench/plan.h"
#include "bench/record.h"
#include "bench/session.h"
#include "bench/suite.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/sig.h"
#include "common/str.h"
#include "common/timeutil.h"
#include "grade/grade.h"

void runner_options_init(struct runner_options *o)
{
    memset(o, 0, sizeof *o);
    o->reps = 3;
    o->warmup = 1;
    o->baseline_s = 5;
    o->temperature = NAN;
    o->top_p = NAN;
    o->grid_gco2_kwh = NAN;
    o->price_kwh = NAN;
    o->judge_reps = 1;
    o->wait_sleep = 1;
    o->server_wait_s = 60;
}

/* Formats seconds as "1h02m", "3m05s" or "12s" for the progress line. */
static void fmt_eta(double s, char *out, size_t size)
{
    if (!isfinite(s) || s < 0) {
        str_lcpy(out, "?", size);
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, size, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
    else if (t >= 60)
        snprintf(out, size, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(out, size, "%lds", t);
}

struct progress {
    struct session *S;
    size_t index, total;
    double elapsed_measured_s; /* time spent on finished measured requests */
    size_t done_measured;
};

/* Called by the session while a request streams: one redrawn stderr line
 * (only on a terminal) with the request's place, speed, power now and the
 * time left. */
static void on_progress(void *user, const struct session_progress *p)
{
    struct progress *pr = user;
    double per = pr->done_measured ? pr->elapsed_measured_s / (double)pr->done_measured : NAN;
    char eta[32];
    fmt_eta(per * (double)(pr->total - pr->index + 1) - p->elapsed_s, eta, sizeof eta);
    char watts[32] = "";
    if (isfinite(p->power_w))
        snprintf(watts, sizeof watts, " | %.1f W%s", p->power_w,
                 p->power_estimated ? " (est.)" : "");
    log_progress("[%zu/%zu] %s %s rep %d | %ld tok | %.1f tok/s%s | ~%s left", pr->index, pr->total,
                 p->model, p->prompt_id, p->rep + 1, p->tokens, p->tokens_per_s, watts, eta);
}

int runner_run(const struct runner_options *opt, char *out_dir_used, size_t out_size, char *err)
{
    struct suite *suite = NULL;
    struct plan_item *plan = NULL;
    size_t n_plan = 0;
    struct session *S = NULL;
    int rc;

    if (opt->n_prompts)
        rc = suite_from_texts(opt->prompts, opt->n_prompts, opt->system, &suite, err);
    else
        rc = suite_load(opt->suite ? opt->suite : "default", &suite, err);
    if (rc)
        return rc;

    for (size_t i = 0; i < suite->n_prompts; i++) {
        const struct suite_prompt *p = &suite->prompts[i];
        if (p->grader && (rc = grade_spec_check(p->grader, err))) {
            err_prefix(err, "%s: prompt \"%s\": grader", suite->source, p->id);
            goto out;
        }
    }

    rc = session_open(&S, opt, suite->name ? suite->name : suite->source, err);
    if (rc)
        goto out;
    if (out_dir_used)
        str_lcpy(out_dir_used, session_dir(S), out_size);

    rc = plan_build(session_model_count(S), suite->n_prompts, opt->reps, opt->sequential, &plan,
                    &n_plan);
    if (rc) {
        err_setf(err, rc, "cannot plan %zu models x %zu prompts x %d repetitions",
                 session_model_count(S), suite->n_prompts, opt->reps);
        goto out;
    }
    log_info("run: %zu model%s x %zu prompt%s x %d repetition%s = %zu request%s -> %s",
             session_model_count(S), session_model_count(S) == 1 ? "" : "s", suite->n_prompts,
             suite->n_prompts == 1 ? "" : "s", opt->reps, opt->reps == 1 ? "" : "s", n_plan,
             n_plan == 1 ? "" : "s", session_dir(S));

    rc = session_baseline(S, err);
    if (rc)
        goto finish;

    struct progress pr = {S, 0, n_plan, 0, 0};
    session_set_progress(S, on_progress, &pr);
    int failures = 0;
    for (size_t i = 0; i < n_plan && !sig_stop; i++) {
        const struct plan_item *it = &plan[i];
        const struct suite_prompt *p = &suite->prompts[it->prompt];
        rc = session_ensure_loaded(S, it->model, p, err);
        if (rc == JB_ERR_INTERRUPTED || session_fatal(S, NULL))
            break;
        if (rc) {
            if (err[0]) /* a model that failed to load is reported once */
                log_error("%s", err);
            failures++;
            rc = 0;
            if (session_check_server(S, err))
                break;
            continue;
        }
        pr.index = i + 1;
        double t0 = jb_clock_s();
        int req_rc = session_request(S, it->model, p, it->rep, 0, NULL);
        if (req_rc == JB_ERR_INTERRUPTED)
            break;
        if (req_rc)
            failures++;
        pr.elapsed_measured_s += jb_clock_s() - t0;
        pr.done_measured++;
        if (session_fatal(S, NULL))
            break;
        /* A failed request may mean the server died: wait for it rather
         * than spend every remaining request on a closed port. */
        if (req_rc && session_check_server(S, err))
            break;
    }
    log_progress_done();
    int fatal = session_fatal(S, err);
    rc = sig_stop ? JB_ERR_INTERRUPTED : fatal ? fatal : (failures ? JB_ERR_NET : 0);
    if (failures && !sig_stop && !fatal)
        err_setf(err, JB_ERR_NET, "%d of %zu requests failed (see 'error' in %s/requests.jsonl)",
                 failures, n_plan, session_dir(S));
finish : {
    char ferr[ERR_LEN];
    int frc = session_finish(S, rc, ferr);
    if (frc && !rc) {
        rc = frc;
        str_lcpy(err, ferr, ERR_LEN);
    } else if (frc) {
        log_error("%s", ferr);
    }
}
out:
    session_close(S);
    free(plan);
    suite_free(suite);
    return rc;
}
