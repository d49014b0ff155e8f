/*
 * tables.c — metrics.csv and responses.csv, the reference workflow's two
 * files: numbers in one, full text in the other, linked by the record id.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/stats.h"
#include "common/str.h"
#include "report/csv.h"
#include "report/writers.h"

/* Sticky error: the first failure is kept and the rest become no-ops, so a
 * long row reads as a plain list of fields. */
struct out {
    struct buf *b;
    int rc;
    int first;
};

static void f_num(struct out *o, double v)
{
    if (!o->rc)
        o->rc = csv_put_num(o->b, o->first, v);
    o->first = 0;
}

static void f_str(struct out *o, const char *s)
{
    if (!o->rc)
        o->rc = csv_put_str(o->b, o->first, s);
    o->first = 0;
}

static void f_json_str(struct out *o, const json_t *v)
{
    if (!o->rc)
        o->rc = json_is_string(v)
                    ? csv_put_field(o->b, o->first, json_string_value(v), json_string_length(v))
                    : csv_put_field(o->b, o->first, NULL, 0);
    o->first = 0;
}

static void f_bool(struct out *o, int v)
{
    f_str(o, v ? "1" : "0");
}

static void end_row(struct out *o)
{
    if (!o->rc)
        o->rc = csv_end_row(o->b);
    o->first = 1;
}

static void domain_list(char *dst, size_t size, unsigned bits)
{
    dst[0] = '\0';
    for (int d = 0; d < JB_DOMAIN_COUNT; d++)
        if (bits & (1u << d)) {
            if (dst[0])
                str_lcat(dst, ";", size);
            str_lcat(dst, jb_domain_name((enum jb_domain)d), size);
        }
}

static void flag_list(char *dst, size_t size, const json_t *flags)
{
    dst[0] = '\0';
    size_t i;
    json_t *f;
    json_array_foreach(flags, i, f)
    {
        if (!json_is_string(f))
            continue;
        if (dst[0])
            str_lcat(dst, ";", size);
        str_lcat(dst, json_string_value(f), size);
    }
}

static void itl_percentiles(const struct report_record *r, double p[3])
{
    p[0] = p[1] = p[2] = NAN;
    size_t n = r->itl_ms ? json_array_size(r->itl_ms) : 0;
    if (n == 0)
        return;
    double *v = malloc(n * sizeof *v);
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_array_get(r->itl_ms, i);
        v[i] = json_is_number(x) ? json_number_value(x) : NAN;
    }
    struct stats_summary st;
    stats_summarize(v, n, &st);
    p[0] = st.p50;
    p[1] = st.p90;
    p[2] = st.p99;
    free(v);
}

/* Columns: identity, tokens, timing, energy (gross and net, per phase, per
 * domain of the run), quality, then carbon and cost only when priced. Every
 * missing value is an empty cell. */
int report_write_metrics_csv(const struct report_run *run, const struct report_summary *s,
                             struct buf *b)
{
    struct out o = {b, 0, 1};
    unsigned doms = 0;
    for (size_t i = 0; i < run->n_rec; i++)
        doms |= run->rec[i].domains;
    int co2 = isfinite(s->grid_gco2_kwh), cost = isfinite(s->price_kwh);
    static const char *const head[] = {"id",
                                       "model",
                                       "engine",
                                       "prompt_id",
                                       "rep",
                                       "warmup",
                                       "load",
                                       "failed",
                                       "t_start_s",
                                       "prompt_tokens",
                                       "prompt_tokens_estimated",
                                       "prompt_cached",
                                       "output_tokens",
                                       "output_tokens_estimated",
                                       "duration_s",
                                       "ttft_s",
                                       "decode_s",
                                       "tokens_per_s",
                                       "prefill_tokens_per_s",
                                       "itl_p50_ms",
                                       "itl_p90_ms",
                                       "itl_p99_ms",
                                       "total_j",
                                       "net_total_j",
                                       "j_per_token",
                                       "net_j_per_token",
                                       "decode_j_per_token",
                                       "prefill_j_per_prompt_token",
                                       "load_j",
                                       "prefill_j",
                                       "decode_j",
                                       "load_duration_s",
                                       "prefill_duration_s",
                                       "decode_duration_s"};
    for (size_t k = 0; k < sizeof head / sizeof head[0]; k++)
        f_str(&o, head[k]);
    char name[64];
    for (int d = 0; d < JB_DOMAIN_COUNT; d++) {
        if (!(doms & (1u << d)))
            continue;
        const char *dn = jb_domain_name((enum jb_domain)d);
        snprintf(name, sizeof name, "energy_%s_j", dn);
        f_str(&o, name);
        snprintf(name, sizeof name, "net_energy_%s_j", dn);
        f_str(&o, name);
        snprintf(name, sizeof name, "avg_power_%s_w", dn);
        f_str(&o, name);
    }
    f_str(&o, "estimated");
    f_str(&o, "estimated_domains");
    f_str(&o, "flags");
    f_str(&o, "score");
    f_str(&o, "grader");
    if (co2)
        f_str(&o, "co2_g");
    if (cost)
        f_str(&o, "cost");
    end_row(&o);

    for (size_t i = 0; i < run->n_rec; i++) {
        const struct report_record *r = &run->rec[i];
        f_str(&o, r->id);
        f_str(&o, r->model);
        f_json_str(&o, json_object_get(r->obj, "engine"));
        f_str(&o, r->prompt_id);
        f_num(&o, r->rep);
        f_bool(&o, r->warmup);
        f_bool(&o, r->load);
        f_bool(&o, r->error != NULL);
        f_num(&o, r->t_start_s);
        f_num(&o, r->prompt_tokens);
        f_bool(&o, r->prompt_tokens_estimated);
        f_bool(&o, r->prompt_cached);
        f_num(&o, r->output_tokens);
        f_bool(&o, r->output_tokens_estimated);
        f_num(&o, r->duration_s);
        f_num(&o, r->ttft_s);
        f_num(&o, r->decode_s);
        f_num(&o, r->tokens_per_s);
        f_num(&o, r->prefill_tokens_per_s);
        double p[3];
        itl_percentiles(r, p);
        for (int k = 0; k < 3; k++)
            f_num(&o, p[k]);
        f_num(&o, r->total_j);
        f_num(&o, r->net_total_j);
        f_num(&o, r->j_per_token);
        f_num(&o, r->net_j_per_token);
        f_num(&o, r->decode_j_per_token);
        f_num(&o, r->prefill_j_per_prompt_token);
        for (int k = 0; k < REPORT_RP_COUNT; k++)
            f_num(&o, r->phase_j[k]);
        for (int k = 0; k < REPORT_RP_COUNT; k++)
            f_num(&o, r->phase_s[k]);
        for (int d = 0; d < JB_DOMAIN_COUNT; d++) {
            if (!(doms & (1u << d)))
                continue;
            f_num(&o, r->energy_j[d]);
            f_num(&o, r->net_energy_j[d]);
            f_num(&o, r->avg_power_w[d]);
        }
        char list[256];
        f_bool(&o, r->estimated_domains != 0 || r->output_tokens_estimated);
        domain_list(list, sizeof list, r->estimated_domains);
        f_str(&o, list);
        flag_list(list, sizeof list, json_object_get(r->obj, "flags"));
        f_str(&o, list);
        f_num(&o, r->score);
        f_json_str(&o, json_object_get(json_object_get(r->obj, "grade"), "grader"));
        if (co2)
            f_num(&o, r->co2_g);
        if (cost)
            f_num(&o, r->cost);
        end_row(&o);
    }
    return o.rc;
}

int report_write_responses_csv(const struct report_run *run, struct buf *b)
{
    struct out o = {b, 0, 1};
    static const char *const head[] = {"id", "model", "prompt_id", "prompt", "response", "error"};
    for (size_t k = 0; k < sizeof head / sizeof head[0]; k++)
        f_str(&o, head[k]);
    end_row(&o);
    for (size_t i = 0; i < run->n_rec; i++) {
        const struct report_record *r = &run->rec[i];
        f_str(&o, r->id);
        f_str(&o, r->model);
        f_str(&o, r->prompt_id);
        f_json_str(&o, json_object_get(r->obj, "prompt"));
        f_json_str(&o, json_object_get(r->obj, "response"));
        f_json_str(&o, json_object_get(r->obj, "error"));
        end_row(&o);
    }
    return o.rc;
}
