/*
 * compute.c — the statistics of a run: per model and per prompt, over the
 * measured requests (not warm-ups, not failed), and the warnings a reader
 * must see before trusting them.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/stats.h"
#include "report/rundata.h"

#define J_PER_KWH 3.6e6

static void warn(struct report_summary *s, const char *fmt, ...) JB_PRINTF(2, 3);
static void warn(struct report_summary *s, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_array_append_new(s->warnings, json_string(msg));
}

static int measured(const struct report_record *r)
{
    return !r->warmup && !r->error;
}

/* Finds or appends the model called name; NULL when out of memory. */
static struct report_model_stats *model_slot(struct report_summary *s, size_t *cap,
                                             const char *name)
{
    for (size_t i = 0; i < s->n_models; i++)
        if (strcmp(s->models[i].name, name) == 0)
            return &s->models[i];
    if (s->n_models == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        struct report_model_stats *m = realloc(s->models, nc * sizeof *m);
        if (!m)
            return NULL;
        s->models = m;
        *cap = nc;
    }
    struct report_model_stats *m = &s->models[s->n_models++];
    memset(m, 0, sizeof *m);
    m->name = name;
    return m;
}

/* Collects one number per matching record into v (NaN entries are skipped
 * by every stats_* function). */
enum field {
    F_JPT,
    F_NET_JPT,
    F_DEC_JPT,
    F_PRE_JPT,
    F_TOTAL,
    F_NET_TOTAL,
    F_TPS,
    F_TTFT,
    F_OUT,
    F_SCORE,
    F_DECODE_W
};

static double field_of(const struct report_record *r, enum field f)
{
    switch (f) {
    case F_JPT:
        return r->j_per_token;
    case F_NET_JPT:
        return r->net_j_per_token;
    case F_DEC_JPT:
        return r->decode_j_per_token;
    case F_PRE_JPT:
        return r->prompt_cached ? NAN : r->prefill_j_per_prompt_token;
    case F_TOTAL:
        return r->total_j;
    case F_NET_TOTAL:
        return r->net_total_j;
    case F_TPS:
        return r->tokens_per_s;
    case F_TTFT:
        return r->ttft_s;
    case F_OUT:
        return r->output_tokens;
    case F_SCORE:
        return r->score;
    case F_DECODE_W:
        return r->phase_s[REPORT_RP_DECODE] > 0
                   ? r->phase_j[REPORT_RP_DECODE] / r->phase_s[REPORT_RP_DECODE]
                   : NAN;
    }
    return NAN;
}

static void summarize(const struct report_run *run, const char *model, const char *prompt,
                      int graded_too, enum field f, double *v, struct stats_summary *out)
{
    size_t k = 0;
    for (size_t i = 0; i < run->n_rec; i++) {
        const struct report_record *r = &run->rec[i];
        if (strcmp(r->model, model) != 0 || (prompt && strcmp(r->prompt_id, prompt) != 0))
            continue;
        /* A failed request still earned its grade; it only has no energy
         * figures worth averaging. */
        if (r->warmup || (r->error && !graded_too))
            continue;
        v[k++] = field_of(r, f);
    }
    stats_summarize(v, k, out);
}

/* Score per kJ from the two means; the CI half-width is propagated to first
 * order from the relative half-widths (a missing CI adds nothing). */
static void value_for_energy(struct report_model_stats *m)
{
    m->score_per_kj = m->score_per_kj_ci95 = NAN;
    double s = m->score.mean, e = m->total_j.mean / 1000.0;
    if (!isfinite(s) || !isfinite(e) || e <= 0)
        return;
    m->score_per_kj = s / e;
    double rs = isfinite(m->score.ci95) ? m->score.ci95 : NAN;
    double re = isfinite(m->total_j.ci95) ? m->total_j.ci95 / 1000.0 / e : NAN;
    if (!isfinite(rs) && !isfinite(re))
        return;
    double var = 0;
    if (isfinite(rs))
        var += (rs / e) * (rs / e); /* absolute, so a zero score still gets an error bar */
    if (isfinite(re))
        var += (m->score_per_kj * re) * (m->score_per_kj * re);
    m->score_per_kj_ci95 = sqrt(var);
}

/* Per-prompt statistics over the repetitions of each prompt: the spread
 * warning needs repetitions of the same work, not a mix of prompts. */
static int model_prompts(const struct report_run *run, struct report_model_stats *m, double *v)
{
    for (size_t i = 0; i < run->n_rec; i++) {
        const struct report_record *r = &run->rec[i];
        if (strcmp(r->model, m->name) != 0 || !measured(r))
            continue;
        size_t p = 0;
        while (p < m->n_prompts && strcmp(m->prompts[p].prompt_id, r->prompt_id) != 0)
            p++;
        if (p < m->n_prompts)
            continue;
        struct report_prompt_stats *np = realloc(m->prompts, (m->n_prompts + 1) * sizeof *np);
        if (!np)
            return JB_ERR_NOMEM;
        m->prompts = np;
        memset(&np[p], 0, sizeof np[p]);
        np[p].prompt_id = r->prompt_id;
        m->n_prompts++;
    }
    for (size_t p = 0; p < m->n_prompts; p++) {
        struct report_prompt_stats *ps = &m->prompts[p];
        summarize(run, m->name, ps->prompt_id, 0, F_JPT, v, &ps->j_per_token);
        summarize(run, m->name, ps->prompt_id, 0, F_TOTAL, v, &ps->total_j);
        summarize(run, m->name, ps->prompt_id, 0, F_TPS, v, &ps->tokens_per_s);
        summarize(run, m->name, ps->prompt_id, 0, F_TTFT, v, &ps->ttft_s);
        summarize(run, m->name, ps->prompt_id, 1, F_SCORE, v, &ps->score);
        ps->n = 0;
        for (size_t i = 0; i < run->n_rec; i++)
            ps->n += strcmp(run->rec[i].model, m->name) == 0 &&
                     strcmp(run->rec[i].prompt_id, ps->prompt_id) == 0 && measured(&run->rec[i]);
        ps->cv = ps->j_per_token.n >= 2 && ps->j_per_token.mean > 0
                     ? ps->j_per_token.sd / ps->j_per_token.mean
                     : NAN;
    }
    return 0;
}

/* Decode power against time: a least-squares line through (t_start_s,
 * watts), its change over the model's span relative to its mean. */
static double decode_drift(const struct report_run *run, const char *model, double *t, double *w)
{
    size_t k = 0;
    double t0 = INFINITY, t1 = -INFINITY;
    for (size_t i = 0; i < run->n_rec; i++) {
        const struct report_record *r = &run->rec[i];
        double p = field_of(r, F_DECODE_W);
        if (strcmp(r->model, model) != 0 || !measured(r) || !isfinite(p) || !isfinite(r->t_start_s))
            continue;
        t[k] = r->t_start_s;
        w[k] = p;
        t0 = fmin(t0, t[k]);
        t1 = fmax(t1, t[k]);
        k++;
    }
    if (k < 3 || !(t1 > t0))
        return NAN;
    double mean = stats_mean(w, k);
    double slope = stats_slope(t, w, k);
    if (!isfinite(slope) || !(mean > 0))
        return NAN;
    return slope * (t1 - t0) / mean;
}

static int compute_model(const struct report_run *run, struct report_model_stats *m,
                         const struct report_summary *s, double *v, double *v2)
{
    double load_s = 0, load_j = 0;
    size_t n_load_s = 0, n_load_j = 0;
    for (size_t i = 0; i < run->n_rec; i++) {
        const struct report_record *r = &run->rec[i];
        if (strcmp(r->model, m->name) != 0)
            continue;
        m->n_requests++;
        if (r->warmup) {
            m->n_warmup++;
            if (r->load && !r->error) {
                m->n_loads++;
                if (isfinite(r->duration_s)) {
                    load_s += r->duration_s;
                    n_load_s++;
                }
                if (isfinite(r->total_j)) {
                    load_j += r->total_j;
                    n_load_j++;
                    m->load_estimated |= r->estimated_domains != 0;
                }
            }
            continue;
        }
        m->n_graded += isfinite(r->score);
        if (r->error) {
            m->n_failed++;
            continue;
        }
        /* Flags qualify joules that enter the statistics: a failed
         * request's do not. */
        m->n_short += !!(r->flags & REPORT_FLAG_SHORT);
        m->n_wrap += !!(r->flags & REPORT_FLAG_WRAP);
        m->n_lost += !!(r->flags & REPORT_FLAG_LOST);
        m->n_reset += !!(r->flags & REPORT_FLAG_RESET);
        m->n_measured++;
        m->domains |= r->domains;
        m->estimated_domains |= r->estimated_domains;
        m->tokens_estimated |= r->output_tokens_estimated;
    }
    m->load_s = n_load_s ? load_s / (double)n_load_s : NAN;
    m->load_j = n_load_j ? load_j / (double)n_load_j : NAN;
    m->energy_estimated = m->estimated_domains != 0;
    summarize(run, m->name, NULL, 0, F_JPT, v, &m->j_per_token);
    summarize(run, m->name, NULL, 0, F_NET_JPT, v, &m->net_j_per_token);
    summarize(run, m->name, NULL, 0, F_DEC_JPT, v, &m->decode_j_per_token);
    summarize(run, m->name, NULL, 0, F_PRE_JPT, v, &m->prefill_j_per_prompt_token);
    summarize(run, m->name, NULL, 0, F_TOTAL, v, &m->total_j);
    summarize(run, m->name, NULL, 0, F_NET_TOTAL, v, &m->net_total_j);
    summarize(run, m->name, NULL, 0, F_TPS, v, &m->tokens_per_s);
    summarize(run, m->name, NULL, 0, F_TTFT, v, &m->ttft_s);
    summarize(run, m->name, NULL, 0, F_OUT, v, &m->output_tokens);
    summarize(run, m->name, NULL, 1, F_SCORE, v, &m->score);

    for (int d = 0; d < JB_DOMAIN_COUNT; d++) {
        size_t k = 0, kj = 0;
        for (size_t i = 0; i < run->n_rec; i++) {
            const struct report_record *r = &run->rec[i];
            if (strcmp(r->model, m->name) != 0 || !measured(r))
                continue;
            double w = r->avg_power_w[d];
            if (!isfinite(w) && r->duration_s > 0)
                w = r->energy_j[d] / r->duration_s;
            v[k++] = w;
            v2[kj++] = r->output_tokens > 0 ? r->energy_j[d] / r->output_tokens : NAN;
        }
        stats_summarize(v, k, &m->power_w[d]);
        stats_summarize(v2, kj, &m->domain_j_per_token[d]);
    }

    /* Inter-token gaps of every measured request, pooled. */
    size_t n_itl = 0;
    for (size_t i = 0; i < run->n_rec; i++)
        if (strcmp(run->rec[i].model, m->name) == 0 && measured(&run->rec[i]) && run->rec[i].itl_ms)
            n_itl += json_array_size(run->rec[i].itl_ms);
    double *itl = n_itl ? malloc(n_itl * sizeof *itl) : NULL;
    if (n_itl && !itl)
        return JB_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < run->n_rec; i++) {
        const struct report_record *r = &run->rec[i];
        if (strcmp(r->model, m->name) != 0 || !measured(r) || !r->itl_ms)
            continue;
        size_t j;
        json_t *x;
        json_array_foreach(r->itl_ms, j, x) itl[k++] =
            json_is_number(x) ? json_number_value(x) : NAN;
    }
    stats_summarize(itl, k, &m->itl_ms);
    free(itl);

    value_for_energy(m);
    m->decode_power_drift = decode_drift(run, m->name, v, v2);
    int rc = model_prompts(run, m, v);
    if (rc)
        return rc;

    m->co2_g_per_request = m->co2_g_per_mtok = NAN;
    m->cost_per_request = m->cost_per_mtok = NAN;
    if (isfinite(s->grid_gco2_kwh)) {
        m->co2_g_per_request = m->total_j.mean / J_PER_KWH * s->grid_gco2_kwh;
        m->co2_g_per_mtok = m->j_per_token.mean * 1e6 / J_PER_KWH * s->grid_gco2_kwh;
    }
    if (isfinite(s->price_kwh)) {
        m->cost_per_request = m->total_j.mean / J_PER_KWH * s->price_kwh;
        m->cost_per_mtok = m->j_per_token.mean * 1e6 / J_PER_KWH * s->price_kwh;
    }
    return 0;
}

static void model_warnings(const struct report_run *run, struct report_summary *s,
                           const struct report_model_stats *m)
{
    if (m->n_failed) {
        char ids[1024] = "";
        size_t shown = 0;
        for (size_t i = 0; i < run->n_rec && shown < 5; i++) {
            const struct report_record *r = &run->rec[i];
            if (strcmp(r->model, m->name) != 0 || r->warmup || !r->error)
                continue;
            size_t l = strlen(ids);
            snprintf(ids + l, sizeof ids - l, "%s%s (%.160s%s)", shown ? "; " : "", r->id, r->error,
                     strlen(r->error) > 160 ? "..." : "");
            shown++;
        }
        warn(s, "%s: %zu request%s failed and %s left out of the statistics: %s%s", m->name,
             m->n_failed, m->n_failed == 1 ? "" : "s", m->n_failed == 1 ? "is" : "are", ids,
             m->n_failed > shown ? "; ..." : "");
    }
    if (m->n_measured == 0 && m->n_requests > 0)
        warn(s, "%s: no measured request (only warm-ups or failures); its row is empty", m->name);
    for (size_t p = 0; p < m->n_prompts; p++) {
        const struct report_prompt_stats *ps = &m->prompts[p];
        if (isfinite(ps->cv) && ps->cv > REPORT_CV_WARN)
            warn(s,
                 "%s, prompt %s: J/token varies by %.0f %% between its %zu repetitions "
                 "(coefficient of variation; threshold %.0f %%): something else was using the "
                 "machine, or answers differ in length; run more repetitions",
                 m->name, ps->prompt_id, ps->cv * 100, ps->n, REPORT_CV_WARN * 100);
    }
    if (isfinite(m->decode_power_drift) && fabs(m->decode_power_drift) > REPORT_DRIFT_WARN)
        warn(s,
             "%s: decode power %s by %.0f %% of its mean from its first to its last request "
             "(least-squares trend; threshold %.0f %%)%s",
             m->name, m->decode_power_drift < 0 ? "fell" : "rose",
             fabs(m->decode_power_drift) * 100, REPORT_DRIFT_WARN * 100,
             m->decode_power_drift < 0 ? ": thermal throttling is likely; let the machine cool "
                                         "or add a pause between requests"
                                       : ": the machine was warming up or got busier");
    if (m->n_short)
        warn(s,
             "%s: %zu request%s had a window shorter than a sensor's update period "
             "(short_window): %s joules are coarse; ask for longer answers (--max-tokens)",
             m->name, m->n_short, m->n_short == 1 ? "" : "s", m->n_short == 1 ? "its" : "their");
    if (m->n_lost || m->n_reset)
        warn(s,
             "%s: a sensor was lost or its counter reset during %zu request%s; those joules "
             "leave that sensor out",
             m->name, m->n_lost + m->n_reset, m->n_lost + m->n_reset == 1 ? "" : "s");
}

int report_compute(const struct report_run *run, struct report_summary *s, char *err)
{
    memset(s, 0, sizeof *s);
    s->warnings = json_array();
    if (!s->warnings)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    json_array_extend(s->warnings, run->warnings);
    const json_t *opts = json_object_get(run->run, "options");
    s->grid_gco2_kwh = report_jnum(opts, "grid_gco2_kwh");
    s->price_kwh = report_jnum(opts, "price_kwh");
    s->currency = report_jstr(opts, "currency");
    if (!s->currency)
        s->currency = "";

    /* Models in run.json order, then any that only the records name. */
    size_t cap = 0;
    const json_t *models = json_object_get(run->run, "models");
    size_t i;
    json_t *mj;
    json_array_foreach(models, i, mj)
    {
        const char *name = report_jstr(mj, "name");
        if (!name)
            continue;
        struct report_model_stats *m = model_slot(s, &cap, name);
        if (!m)
            goto nomem;
        m->info = mj;
        m->synthetic = report_jbool(mj, "synthetic", 0);
    }
    for (i = 0; i < run->n_rec; i++)
        if (!model_slot(s, &cap, run->rec[i].model))
            goto nomem;

    size_t nv = run->n_rec ? run->n_rec : 1;
    double *v = malloc(nv * sizeof *v), *v2 = malloc(nv * sizeof *v2);
    if (!v || !v2) {
        free(v);
        free(v2);
        goto nomem;
    }
    for (i = 0; i < s->n_models; i++) {
        struct report_model_stats *m = &s->models[i];
        if (compute_model(run, m, s, v, v2)) {
            free(v);
            free(v2);
            goto nomem;
        }
        s->domains |= m->domains;
        s->estimated_domains |= m->estimated_domains;
        s->any_graded |= m->n_graded > 0;
        s->any_synthetic |= m->synthetic;
        s->any_tokens_estimated |= m->tokens_estimated;
    }
    free(v);
    free(v2);

    const json_t *base = json_object_get(run->run, "baseline");
    size_t k;
    json_t *x;
    json_array_foreach(json_object_get(base, "estimated_domains"), k, x)
    {
        int d = json_is_string(x) ? jb_domain_from_name(json_string_value(x)) : -1;
        if (d >= 0) {
            s->estimated_domains |= 1u << d;
            s->baseline_estimated = 1;
        }
    }

    if (strcmp(run->status, "interrupted") == 0)
        warn(s, "the run was interrupted: these figures cover only the requests it finished");
    else if (strcmp(run->status, "running") == 0)
        warn(s, "run.json still says \"running\": the run stopped without finishing (a crash "
                "or a kill); these figures cover only the requests it recorded");
    else if (strcmp(run->status, "failed") == 0)
        warn(s, "the run failed; these figures cover only the requests it recorded");
    json_array_foreach(json_object_get(run->run, "warnings"), k, x)
    {
        if (json_is_string(x))
            warn(s, "%s", json_string_value(x));
    }
    for (i = 0; i < s->n_models; i++)
        model_warnings(run, s, &s->models[i]);
    return 0;
nomem:
    report_summary_free(s);
    return err_setf(err, JB_ERR_NOMEM, "out of memory computing the statistics");
}

void report_summary_free(struct report_summary *s)
{
    for (size_t i = 0; i < s->n_models; i++)
        free(s->models[i].prompts);
    free(s->models);
    json_decref(s->warnings);
    memset(s, 0, sizeof *s);
}
