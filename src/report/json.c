/*
 * json.c — the summary as one JSON object (joulebench report --json, and
 * run --json at the end of a run). Missing numbers are null, never 0.
 */
#include <math.h>
#include <string.h>

#include "report/writers.h"

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* {mean, sd, ci95, n} plus the percentiles when asked; null with n == 0. */
static json_t *stat(const struct stats_summary *st, int percentiles)
{
    if (st->n == 0)
        return json_null();
    json_t *o = json_object();
    json_object_set_new(o, "mean", num(st->mean));
    json_object_set_new(o, "sd", num(st->sd));
    json_object_set_new(o, "ci95", num(st->ci95));
    json_object_set_new(o, "n", json_integer((json_int_t)st->n));
    if (percentiles) {
        json_object_set_new(o, "min", num(st->min));
        json_object_set_new(o, "p50", num(st->p50));
        json_object_set_new(o, "p90", num(st->p90));
        json_object_set_new(o, "p99", num(st->p99));
        json_object_set_new(o, "max", num(st->max));
    }
    return o;
}

static json_t *domain_names(unsigned bits)
{
    json_t *a = json_array();
    for (int d = 0; d < JB_DOMAIN_COUNT; d++)
        if (bits & (1u << d))
            json_array_append_new(a, json_string(jb_domain_name((enum jb_domain)d)));
    return a;
}

static json_t *domain_stats(const struct stats_summary st[JB_DOMAIN_COUNT], unsigned bits)
{
    json_t *o = json_object();
    for (int d = 0; d < JB_DOMAIN_COUNT; d++)
        if (bits & (1u << d))
            json_object_set_new(o, jb_domain_name((enum jb_domain)d), stat(&st[d], 0));
    return o;
}

/* One model's figures; carbon and cost appear only when the run priced
 * them, so a consumer cannot mistake a missing price for a zero one. */
static json_t *model_json(const struct report_model_stats *m, const struct report_summary *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(m->name));
    json_object_set_new(o, "synthetic", json_boolean(m->synthetic));
    const char *q = m->info ? json_string_value(json_object_get(m->info, "quantization")) : NULL;
    const char *dg = m->info ? json_string_value(json_object_get(m->info, "digest")) : NULL;
    json_object_set_new(o, "quantization", q ? json_string(q) : json_null());
    json_object_set_new(o, "digest", dg ? json_string(dg) : json_null());
    json_object_set_new(o, "requests", json_integer((json_int_t)m->n_requests));
    json_object_set_new(o, "measured", json_integer((json_int_t)m->n_measured));
    json_object_set_new(o, "failed", json_integer((json_int_t)m->n_failed));
    json_object_set_new(o, "warmup", json_integer((json_int_t)m->n_warmup));
    json_object_set_new(o, "graded", json_integer((json_int_t)m->n_graded));
    json_object_set_new(o, "j_per_token", stat(&m->j_per_token, 0));
    json_object_set_new(o, "net_j_per_token", stat(&m->net_j_per_token, 0));
    json_object_set_new(o, "decode_j_per_token", stat(&m->decode_j_per_token, 0));
    json_object_set_new(o, "prefill_j_per_prompt_token", stat(&m->prefill_j_per_prompt_token, 0));
    json_object_set_new(o, "total_j", stat(&m->total_j, 0));
    json_object_set_new(o, "net_total_j", stat(&m->net_total_j, 0));
    json_object_set_new(o, "output_tokens", stat(&m->output_tokens, 0));
    if (m->n_loads) {
        json_t *l = json_object();
        json_object_set_new(l, "n", json_integer((json_int_t)m->n_loads));
        json_object_set_new(l, "duration_s", num(m->load_s));
        json_object_set_new(l, "energy_j", num(m->load_j));
        json_object_set_new(l, "estimated", json_boolean(m->load_estimated));
        json_object_set_new(o, "load", l);
    } else {
        json_object_set_new(o, "load", json_null());
    }
    json_object_set_new(o, "score", stat(&m->score, 0));
    json_t *v = json_object();
    json_object_set_new(v, "value", num(m->score_per_kj));
    json_object_set_new(v, "ci95", num(m->score_per_kj_ci95));
    json_object_set_new(o, "score_per_kj", isfinite(m->score_per_kj) ? v : json_null());
    if (!isfinite(m->score_per_kj))
        json_decref(v);
    json_object_set_new(o, "tokens_per_s", stat(&m->tokens_per_s, 0));
    json_object_set_new(o, "ttft_s", stat(&m->ttft_s, 1));
    json_object_set_new(o, "itl_ms", stat(&m->itl_ms, 1));
    json_object_set_new(o, "power_w", domain_stats(m->power_w, m->domains));
    json_object_set_new(o, "j_per_token_by_domain",
                        domain_stats(m->domain_j_per_token, m->domains));
    json_object_set_new(o, "estimated", json_boolean(m->energy_estimated || m->tokens_estimated));
    json_object_set_new(o, "estimated_domains", domain_names(m->estimated_domains));
    json_object_set_new(o, "tokens_estimated", json_boolean(m->tokens_estimated));
    json_object_set_new(
        o, "net_estimated",
        json_boolean(m->energy_estimated || m->tokens_estimated || s->baseline_estimated));
    json_object_set_new(o, "decode_power_drift", num(m->decode_power_drift));
    json_t *flags = json_object();
    json_object_set_new(flags, "short_window", json_integer((json_int_t)m->n_short));
    json_object_set_new(flags, "counter_wrap", json_integer((json_int_t)m->n_wrap));
    json_object_set_new(flags, "sensor_lost", json_integer((json_int_t)m->n_lost));
    json_object_set_new(flags, "counter_reset", json_integer((json_int_t)m->n_reset));
    json_object_set_new(o, "flags", flags);
    if (isfinite(s->grid_gco2_kwh)) {
        json_object_set_new(o, "co2_g_per_request", num(m->co2_g_per_request));
        json_object_set_new(o, "co2_g_per_million_tokens", num(m->co2_g_per_mtok));
    }
    if (isfinite(s->price_kwh)) {
        json_object_set_new(o, "cost_per_request", num(m->cost_per_request));
        json_object_set_new(o, "cost_per_million_tokens", num(m->cost_per_mtok));
    }
    json_t *prompts = json_array();
    for (size_t p = 0; p < m->n_prompts; p++) {
        const struct report_prompt_stats *ps = &m->prompts[p];
        json_t *po = json_object();
        json_object_set_new(po, "prompt_id", json_string(ps->prompt_id));
        json_object_set_new(po, "n", json_integer((json_int_t)ps->n));
        json_object_set_new(po, "j_per_token", stat(&ps->j_per_token, 0));
        json_object_set_new(po, "total_j", stat(&ps->total_j, 0));
        json_object_set_new(po, "tokens_per_s", stat(&ps->tokens_per_s, 0));
        json_object_set_new(po, "ttft_s", stat(&ps->ttft_s, 0));
        json_object_set_new(po, "score", stat(&ps->score, 0));
        json_object_set_new(po, "cv", num(ps->cv));
        json_array_append_new(prompts, po);
    }
    json_object_set_new(o, "prompts", prompts);
    return o;
}

static json_t *copy_or_null(const json_t *v)
{
    return v ? json_deep_copy(v) : json_null();
}

json_t *report_json(const struct report_run *run, const struct report_summary *s)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "schema", json_integer(REPORT_SCHEMA));
    json_object_set_new(o, "dir", json_string(run->dir));
    json_object_set_new(o, "status", json_string(run->status));
    json_object_set_new(o, "interrupted", json_boolean(strcmp(run->status, "interrupted") == 0));
    json_object_set_new(o, "synthetic", json_boolean(s->any_synthetic));
    json_object_set_new(o, "started", copy_or_null(json_object_get(run->run, "started")));
    json_object_set_new(o, "ended", copy_or_null(json_object_get(run->run, "ended")));
    json_object_set_new(o, "host", copy_or_null(json_object_get(run->run, "host")));
    json_object_set_new(o, "engine", copy_or_null(json_object_get(run->run, "engine")));
    json_object_set_new(o, "baseline", copy_or_null(json_object_get(run->run, "baseline")));
    json_object_set_new(o, "domains", domain_names(s->domains));
    json_object_set_new(o, "estimated_domains", domain_names(s->estimated_domains));
    json_object_set_new(o, "grid_gco2_kwh", num(s->grid_gco2_kwh));
    json_object_set_new(o, "price_kwh", num(s->price_kwh));
    json_object_set_new(o, "currency", *s->currency ? json_string(s->currency) : json_null());
    json_t *models = json_array();
    for (size_t i = 0; i < s->n_models; i++)
        json_array_append_new(models, model_json(&s->models[i], s));
    json_object_set_new(o, "models", models);
    json_object_set_new(o, "warnings", json_deep_copy(s->warnings));
    return o;
}
