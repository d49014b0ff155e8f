/*
 * summary.c — summary.md: the reference workflow's table first, then the
 * detail a careful reader checks before believing it (spread, net figures,
 * phases, latency, per prompt, baseline, hardware, sensors, warnings), and a
 * note on every figure that is an estimate.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "report/rundata.h"
#include "report/writers.h"

/* summary.md is built through these: the first failed append is kept and
 * the rest are skipped, so one check at the end covers the whole file. */
struct md {
    struct buf *b;
    int rc;
};

static void md_puts(struct md *m, const char *s)
{
    if (!m->rc)
        m->rc = buf_puts(m->b, s);
}

static void md_putc(struct md *m, char c)
{
    if (!m->rc)
        m->rc = buf_putc(m->b, c);
}

static void md_printf(struct md *m, const char *fmt, ...) JB_PRINTF(2, 3);
static void md_printf(struct md *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!m->rc)
        m->rc = buf_vprintf(m->b, fmt, ap);
    va_end(ap);
}

int report_sig_decimals(double v, int sig)
{
    if (!isfinite(v) || v == 0)
        return sig - 1 > 0 ? sig - 1 : 0;
    int dec = sig - 1 - (int)floor(log10(fabs(v)));
    return dec < 0 ? 0 : dec > 6 ? 6 : dec;
}

void report_fmt_sig(char *dst, size_t size, double v, int sig)
{
    if (!isfinite(v)) {
        snprintf(dst, size, "n/a");
        return;
    }
    if (v != 0 && fabs(v) < 1e-5) {
        snprintf(dst, size, "%.*e", sig - 1, v);
        return;
    }
    snprintf(dst, size, "%.*f", report_sig_decimals(v, sig), v);
}

/* "~0.452 ± 0.013": the mean with its 95 % CI half-width at the same number
 * of decimals, "~" in front when estimated; "n/a" when there is no mean. */
static void fmt_ci(char *dst, size_t size, double mean, double ci, int estimated)
{
    if (!isfinite(mean)) {
        snprintf(dst, size, "n/a");
        return;
    }
    char m[64];
    report_fmt_sig(m, sizeof m, mean, 3);
    if (isfinite(ci)) {
        int dec = report_sig_decimals(mean, 3);
        if (fabs(mean) < 1e-5 && mean != 0)
            snprintf(dst, size, "%s%s ± %.2e", estimated ? "~" : "", m, ci);
        else
            snprintf(dst, size, "%s%s ± %.*f", estimated ? "~" : "", m, dec, ci);
    } else {
        snprintf(dst, size, "%s%s", estimated ? "~" : "", m);
    }
}

static void fmt_val(char *dst, size_t size, double v, int estimated)
{
    char m[64];
    report_fmt_sig(m, sizeof m, v, 3);
    snprintf(dst, size, "%s%s", isfinite(v) && estimated ? "~" : "", m);
}

/* A table cell: '|' escaped, line breaks folded into spaces. */
static void md_cell(struct md *b, const char *s)
{
    md_puts(b, " ");
    for (; s && *s; s++) {
        if (*s == '|')
            md_puts(b, "\\|");
        else if (*s == '\n' || *s == '\r' || *s == '\t')
            md_putc(b, ' ');
        else
            md_putc(b, *s);
    }
    md_puts(b, " |");
}

static const char *domain_title(int d)
{
    static const char *const t[JB_DOMAIN_COUNT] = {"CPU", "Cores", "Uncore", "DRAM",
                                                   "GPU", "ANE",   "SoC",    "System"};
    return d >= 0 && d < JB_DOMAIN_COUNT ? t[d] : "?";
}

/* Opens a table row with the model's cell, "(synthetic)" after the name of
 * a synthetic model. */
static void model_row(struct md *b, const struct report_model_stats *m)
{
    char c[128];
    snprintf(c, sizeof c, "%s%s", m->name, m->synthetic ? " (synthetic)" : "");
    md_puts(b, "|");
    md_cell(b, c);
}

/* The reference workflow's table, one row per model, plus speed and power
 * per domain: what a reader compares first. */
static void headline(struct md *b, const struct report_summary *s)
{
    md_puts(b, "| Model | Efficiency (J/Tok) | Avg. Total Energy (J) | Technical Score (/10) "
               "| tokens/s | TTFT (s) |");
    for (int d = 0; d < JB_DOMAIN_COUNT; d++)
        if (s->domains & (1u << d))
            md_printf(b, " Avg. power %s (W) |", domain_title(d));
    md_puts(b, "\n| :--- | :---: | :---: | :---: | :---: | :---: |");
    for (int d = 0; d < JB_DOMAIN_COUNT; d++)
        if (s->domains & (1u << d))
            md_puts(b, " :---: |");
    md_puts(b, "\n");
    char c[128];
    for (size_t i = 0; i < s->n_models; i++) {
        const struct report_model_stats *m = &s->models[i];
        model_row(b, m);
        fmt_ci(c, sizeof c, m->j_per_token.mean, m->j_per_token.ci95,
               m->energy_estimated || m->tokens_estimated);
        md_cell(b, c);
        fmt_ci(c, sizeof c, m->total_j.mean, m->total_j.ci95, m->energy_estimated);
        md_cell(b, c);
        fmt_ci(c, sizeof c, m->score.mean, m->score.ci95, 0);
        md_cell(b, c);
        fmt_val(c, sizeof c, m->tokens_per_s.mean, m->tokens_estimated);
        md_cell(b, c);
        fmt_val(c, sizeof c, m->ttft_s.mean, 0);
        md_cell(b, c);
        for (int d = 0; d < JB_DOMAIN_COUNT; d++)
            if (s->domains & (1u << d)) {
                fmt_val(c, sizeof c, m->power_w[d].mean, !!(m->estimated_domains & (1u << d)));
                md_cell(b, c);
            }
        md_puts(b, "\n");
    }
}

/* The sentence that explains every "~" in the file. */
static void estimated_note(struct md *b, const struct report_run *run,
                           const struct report_summary *s)
{
    if (!s->estimated_domains && !s->any_tokens_estimated) {
        /* nothing measured (a run stopped in its baseline, every request
         * failed): there is no figure to call measured */
        if (!s->domains &&
            !json_object_size(json_object_get(json_object_get(run->run, "baseline"), "power_w")))
            md_puts(b, "No energy was measured in this run: no request finished "
                       "with an energy figure.\n");
        else
            md_puts(b, "All figures are measured; none is estimated.\n");
        return;
    }
    md_puts(b, "**~ marks an estimated figure (est.).**");
    if (s->estimated_domains) {
        md_puts(b, " Estimated domains:");
        int first = 1;
        for (int d = 0; d < JB_DOMAIN_COUNT; d++) {
            if (!(s->estimated_domains & (1u << d)))
                continue;
            md_printf(b, "%s %s", first ? "" : ",", jb_domain_name((enum jb_domain)d));
            int sfirst = 1;
            for (size_t k = 0; k < run->n_sensors; k++) {
                const struct report_sensor *sn = &run->sensors[k];
                if (sn->used && sn->estimated && sn->domain == d) {
                    md_printf(b, "%s%s", sfirst ? " (from " : ", ", sn->name);
                    sfirst = 0;
                }
            }
            if (!sfirst)
                md_puts(b, ")");
            first = 0;
        }
        md_puts(b, " come from a model (CPU time × watts), not from a meter, so every total "
                   "that includes them is an estimate too.");
    }
    if (s->any_tokens_estimated)
        md_puts(b, " Some output token counts were estimated (the engine did not report "
                   "them), so J/token and tokens/s built on them are estimates.");
    md_puts(b, "\n");
}

static void warnings_list(struct md *b, const struct report_summary *s)
{
    size_t n = json_array_size(s->warnings);
    if (n == 0) {
        md_puts(b, "None.\n");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        md_puts(b, "- ");
        const char *w = json_string_value(json_array_get(s->warnings, i));
        for (; w && *w; w++)
            md_putc(b, *w == '\n' ? ' ' : *w);
        md_puts(b, "\n");
    }
}

/* Gross and net (baseline-subtracted) energy, decode and prefill per
 * token, then J/token split by domain. */
static void energy_detail(struct md *b, const struct report_summary *s, int has_baseline)
{
    md_puts(b, "\n## Energy\n\n"
               "| Model | Measured (failed, warm-up) | J/token | Net J/token | Total J | Net "
               "total J | Decode J/token | Prefill J/prompt token |\n"
               "| :--- | :---: | :---: | :---: | :---: | :---: | :---: | :---: |\n");
    char c[128];
    for (size_t i = 0; i < s->n_models; i++) {
        const struct report_model_stats *m = &s->models[i];
        int est = m->energy_estimated;
        model_row(b, m);
        snprintf(c, sizeof c, "%zu (%zu, %zu)", m->n_measured, m->n_failed, m->n_warmup);
        md_cell(b, c);
        fmt_ci(c, sizeof c, m->j_per_token.mean, m->j_per_token.ci95, est || m->tokens_estimated);
        md_cell(b, c);
        fmt_ci(c, sizeof c, m->net_j_per_token.mean, m->net_j_per_token.ci95,
               est || m->tokens_estimated || s->baseline_estimated);
        md_cell(b, c);
        fmt_ci(c, sizeof c, m->total_j.mean, m->total_j.ci95, est);
        md_cell(b, c);
        fmt_ci(c, sizeof c, m->net_total_j.mean, m->net_total_j.ci95, est || s->baseline_estimated);
        md_cell(b, c);
        fmt_ci(c, sizeof c, m->decode_j_per_token.mean, m->decode_j_per_token.ci95,
               est || m->tokens_estimated);
        md_cell(b, c);
        fmt_ci(c, sizeof c, m->prefill_j_per_prompt_token.mean, m->prefill_j_per_prompt_token.ci95,
               est);
        md_cell(b, c);
        md_puts(b, "\n");
    }
    md_printf(b,
              "\nNet figures subtract the idle baseline's power × the request's "
              "duration%s%s. Decode J/token: decode-phase joules / the output tokens after the "
              "first (prefill makes the first); prefill "
              "J/prompt token: prefill-phase joules / prompt tokens (requests whose prompt "
              "was cached are left out).\n",
              has_baseline ? "" : " (this run had no baseline, so they are n/a)",
              s->baseline_estimated ? "; the baseline was partly estimated, so they are too" : "");

    md_puts(b, "\n### Joules per token by domain\n\n| Model |");
    for (int d = 0; d < JB_DOMAIN_COUNT; d++)
        if (s->domains & (1u << d))
            md_printf(b, " %s J/token |", domain_title(d));
    md_puts(b, "\n| :--- |");
    for (int d = 0; d < JB_DOMAIN_COUNT; d++)
        if (s->domains & (1u << d))
            md_puts(b, " :---: |");
    md_puts(b, "\n");
    for (size_t i = 0; i < s->n_models; i++) {
        const struct report_model_stats *m = &s->models[i];
        model_row(b, m);
        for (int d = 0; d < JB_DOMAIN_COUNT; d++)
            if (s->domains & (1u << d)) {
                fmt_ci(c, sizeof c, m->domain_j_per_token[d].mean, m->domain_j_per_token[d].ci95,
                       !!(m->estimated_domains & (1u << d)) || m->tokens_estimated);
                md_cell(b, c);
            }
        md_puts(b, "\n");
    }
}

static void latency(struct md *b, const struct report_summary *s)
{
    md_puts(b, "\n## Speed and latency\n\n"
               "| Model | tokens/s | TTFT (s) | TTFT p50 | TTFT p90 | TTFT p99 | ITL p50 (ms) "
               "| ITL p90 (ms) | ITL p99 (ms) |\n"
               "| :--- | :---: | :---: | :---: | :---: | :---: | :---: | :---: | :---: |\n");
    char c[128];
    for (size_t i = 0; i < s->n_models; i++) {
        const struct report_model_stats *m = &s->models[i];
        model_row(b, m);
        fmt_ci(c, sizeof c, m->tokens_per_s.mean, m->tokens_per_s.ci95, m->tokens_estimated);
        md_cell(b, c);
        fmt_ci(c, sizeof c, m->ttft_s.mean, m->ttft_s.ci95, 0);
        md_cell(b, c);
        const double v[] = {m->ttft_s.p50, m->ttft_s.p90, m->ttft_s.p99,
                            m->itl_ms.p50, m->itl_ms.p90, m->itl_ms.p99};
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
            fmt_val(c, sizeof c, v[k], 0);
            md_cell(b, c);
        }
        md_puts(b, "\n");
    }
}

/* The cold-start cost per model: what loading it took before its first
 * measured request (and again after a server restart). */
static void loads(struct md *b, const struct report_summary *s)
{
    int any = 0;
    for (size_t i = 0; i < s->n_models; i++)
        any |= s->models[i].n_loads > 0;
    if (!any)
        return;
    md_puts(b, "\n## Model load\n\n"
               "| Model | Loads | Load time (s) | Load energy (J) |\n"
               "| :--- | :---: | :---: | :---: |\n");
    char c[128];
    for (size_t i = 0; i < s->n_models; i++) {
        const struct report_model_stats *m = &s->models[i];
        model_row(b, m);
        snprintf(c, sizeof c, "%zu", m->n_loads);
        md_cell(b, c);
        fmt_val(c, sizeof c, m->load_s, 0);
        md_cell(b, c);
        fmt_val(c, sizeof c, m->load_j, m->load_estimated);
        md_cell(b, c);
        md_puts(b, "\n");
    }
    md_puts(b, "\nThe cold-start cost, measured in a window of its own before the model's first "
               "request (mean over its loads); it is not in the per-request figures above.\n");
}

/* One row per model and prompt, with the spread between repetitions. */
static void per_prompt(struct md *b, const struct report_summary *s)
{
    md_puts(b, "\n## Per prompt\n\n"
               "| Model | Prompt | n | J/token | Total J | tokens/s | TTFT (s) | Score (/10) | "
               "Spread (CV) |\n"
               "| :--- | :--- | :---: | :---: | :---: | :---: | :---: | :---: | :---: |\n");
    char c[128];
    for (size_t i = 0; i < s->n_models; i++) {
        const struct report_model_stats *m = &s->models[i];
        for (size_t p = 0; p < m->n_prompts; p++) {
            const struct report_prompt_stats *ps = &m->prompts[p];
            model_row(b, m);
            md_cell(b, *ps->prompt_id ? ps->prompt_id : "(no prompt id)");
            snprintf(c, sizeof c, "%zu", ps->n);
            md_cell(b, c);
            fmt_ci(c, sizeof c, ps->j_per_token.mean, ps->j_per_token.ci95,
                   m->energy_estimated || m->tokens_estimated);
            md_cell(b, c);
            fmt_ci(c, sizeof c, ps->total_j.mean, ps->total_j.ci95, m->energy_estimated);
            md_cell(b, c);
            fmt_val(c, sizeof c, ps->tokens_per_s.mean, m->tokens_estimated);
            md_cell(b, c);
            fmt_val(c, sizeof c, ps->ttft_s.mean, 0);
            md_cell(b, c);
            fmt_ci(c, sizeof c, ps->score.mean, ps->score.ci95, 0);
            md_cell(b, c);
            if (isfinite(ps->cv))
                snprintf(c, sizeof c, "%.1f %%%s", ps->cv * 100,
                         ps->cv > REPORT_CV_WARN ? " (wide)" : "");
            else
                snprintf(c, sizeof c, "n/a");
            md_cell(b, c);
            md_puts(b, "\n");
        }
    }
}

/* The idle baseline row: what the machine drew doing nothing, the power
 * the net figures subtract. */
static void baseline(struct md *b, const struct report_run *run)
{
    md_puts(b, "\n## Idle baseline\n\n");
    const json_t *base = json_object_get(run->run, "baseline");
    if (!json_is_object(base)) {
        md_puts(b, "No idle baseline was measured (--baseline 0), so net figures are n/a.\n");
        return;
    }
    double pw[JB_DOMAIN_COUNT];
    unsigned est = 0, doms = 0;
    const json_t *p = json_object_get(base, "power_w");
    const char *key;
    json_t *val;
    for (int d = 0; d < JB_DOMAIN_COUNT; d++)
        pw[d] = NAN;
    json_object_foreach((json_t *)p, key, val)
    {
        int d = jb_domain_from_name(key);
        if (d >= 0 && json_is_number(val)) {
            pw[d] = json_number_value(val);
            doms |= 1u << d;
        }
    }
    size_t i;
    json_array_foreach(json_object_get(base, "estimated_domains"), i, val)
    {
        int d = json_is_string(val) ? jb_domain_from_name(json_string_value(val)) : -1;
        if (d >= 0)
            est |= 1u << d;
    }
    md_puts(b, "| Baseline | Duration (s) |");
    for (int d = 0; d < JB_DOMAIN_COUNT; d++)
        if (doms & (1u << d))
            md_printf(b, " %s (W) |", domain_title(d));
    md_puts(b, " Total (W) |\n| :--- | :---: |");
    for (int d = 0; d < JB_DOMAIN_COUNT; d++)
        if (doms & (1u << d))
            md_puts(b, " :---: |");
    md_puts(b, " :---: |\n| idle |");
    char c[64];
    fmt_val(c, sizeof c, report_jnum(base, "duration_s"), 0);
    md_cell(b, c);
    for (int d = 0; d < JB_DOMAIN_COUNT; d++)
        if (doms & (1u << d)) {
            fmt_val(c, sizeof c, pw[d], !!(est & (1u << d)));
            md_cell(b, c);
        }
    fmt_val(c, sizeof c, report_jnum(base, "total_w"), est != 0);
    md_cell(b, c);
    md_puts(b, "\n");
}

/* Carbon and money, only when the user gave a grid intensity or a price:
 * there is no default that could know their grid. */
static void carbon_cost(struct md *b, const struct report_summary *s)
{
    int co2 = isfinite(s->grid_gco2_kwh), cost = isfinite(s->price_kwh);
    if (!co2 && !cost)
        return;
    md_puts(b, "\n## Carbon and cost\n\n| Model |");
    if (co2)
        md_puts(b, " gCO2e / request | gCO2e / 1M tokens |");
    if (cost)
        md_printf(b, " Cost / request%s%s | Cost / 1M tokens%s%s |", *s->currency ? " " : "",
                  s->currency, *s->currency ? " " : "", s->currency);
    md_puts(b, "\n| :--- |");
    for (int k = 0; k < co2 * 2 + cost * 2; k++)
        md_puts(b, " :---: |");
    md_puts(b, "\n");
    char c[128];
    for (size_t i = 0; i < s->n_models; i++) {
        const struct report_model_stats *m = &s->models[i];
        int est = m->energy_estimated;
        model_row(b, m);
        if (co2) {
            fmt_val(c, sizeof c, m->co2_g_per_request, est);
            md_cell(b, c);
            fmt_val(c, sizeof c, m->co2_g_per_mtok, est || m->tokens_estimated);
            md_cell(b, c);
        }
        if (cost) {
            fmt_val(c, sizeof c, m->cost_per_request, est);
            md_cell(b, c);
            fmt_val(c, sizeof c, m->cost_per_mtok, est || m->tokens_estimated);
            md_cell(b, c);
        }
        md_puts(b, "\n");
    }
    md_puts(b, "\nFrom gross energy (what the machine drew, idle included)");
    if (co2)
        md_printf(b, " at a grid intensity of %g gCO2e/kWh", s->grid_gco2_kwh);
    if (cost)
        md_printf(b, "%s at %g%s%s per kWh", co2 ? " and" : "", s->price_kwh,
                  *s->currency ? " " : "", s->currency);
    md_puts(b, ", as given to the run.\n");
}

/* Hardware, OS, engine, options and the models with quantization and
 * digest: what someone needs to compare this run with theirs. */
static void host_engine(struct md *b, const struct report_run *run)
{
    md_puts(b, "\n## Hardware and software\n\n");
    const json_t *h = json_object_get(run->run, "host");
    const char *v;
    if ((v = report_jstr(h, "cpu_model")))
        md_printf(b, "- CPU: %s", v);
    double n = report_jnum(h, "cpu_count");
    if (isfinite(n))
        md_printf(b, " (%g logical CPUs)", n);
    md_puts(b, "\n");
    double mem = report_jnum(h, "memory_bytes");
    if (isfinite(mem))
        md_printf(b, "- Memory: %.1f GiB\n", mem / (1024.0 * 1024 * 1024));
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(h, "gpus"), i, g)
    {
        md_printf(b, "- GPU %zu: %s", i, report_jstr(g, "name") ? report_jstr(g, "name") : "?");
        if ((v = report_jstr(g, "driver")))
            md_printf(b, ", driver %s", v);
        md_puts(b, "\n");
    }
    md_printf(b, "- OS: %s %s (%s)", report_jstr(h, "os") ? report_jstr(h, "os") : "?",
              report_jstr(h, "kernel") ? report_jstr(h, "kernel") : "",
              report_jstr(h, "arch") ? report_jstr(h, "arch") : "?");
    if ((v = report_jstr(h, "hostname")))
        md_printf(b, ", host %s", v);
    md_puts(b, "\n");
    const json_t *e = json_object_get(run->run, "engine");
    md_printf(b, "- Engine: %s", report_jstr(e, "name") ? report_jstr(e, "name") : "?");
    if ((v = report_jstr(e, "version")))
        md_printf(b, " %s", v);
    if ((v = report_jstr(e, "url")))
        md_printf(b, " at %s", v);
    double th = report_jnum(e, "threads");
    if (isfinite(th))
        md_printf(b, ", %g threads", th);
    md_puts(b, "\n");
    md_printf(b, "- joulebench %s (run directory schema %g)\n",
              report_jstr(run->run, "joulebench_version")
                  ? report_jstr(run->run, "joulebench_version")
                  : "?",
              report_jnum(run->run, "schema"));
    const json_t *o = json_object_get(run->run, "options");
    if (json_is_object(o)) {
        md_puts(b, "- Options:");
        const char *key;
        json_t *val;
        int first = 1;
        json_object_foreach((json_t *)o, key, val)
        {
            if (json_is_null(val))
                continue;
            char *t = json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(10));
            md_printf(b, "%s %s=%s", first ? "" : ",", key, t ? t : "?");
            free(t);
            first = 0;
        }
        md_puts(b, "\n");
    }

    md_puts(b, "\n### Models\n\n| Model | Quantization | Parameters | Family | Size | Digest | "
               "Source |\n| :--- | :---: | :---: | :---: | :---: | :--- | :--- |\n");
    json_t *m;
    json_array_foreach(json_object_get(run->run, "models"), i, m)
    {
        char c[128];
        md_puts(b, "|");
        md_cell(b, report_jstr(m, "name"));
        md_cell(b, report_jstr(m, "quantization") ? report_jstr(m, "quantization") : "n/a");
        md_cell(b, report_jstr(m, "parameter_size") ? report_jstr(m, "parameter_size") : "n/a");
        md_cell(b, report_jstr(m, "family") ? report_jstr(m, "family") : "n/a");
        double sz = report_jnum(m, "size_bytes");
        if (isfinite(sz) && sz >= 1e9)
            snprintf(c, sizeof c, "%.2f GB", sz / 1e9);
        else if (isfinite(sz))
            snprintf(c, sizeof c, "%.2f MB", sz / 1e6);
        else
            snprintf(c, sizeof c, "n/a");
        md_cell(b, c);
        md_cell(b, report_jstr(m, "digest") ? report_jstr(m, "digest") : "n/a");
        if (report_jbool(m, "synthetic", 0))
            md_cell(b, "**synthetic model** (random weights: its answers mean nothing)");
        else
            md_cell(b, report_jstr(m, "path") ? report_jstr(m, "path") : "engine");
        md_puts(b, "\n");
    }
}

/* The sensors used (measured or estimated) and the ones that were not,
 * with why and the fix, so a reader can get real meters next time. */
static void sensors(struct md *b, const struct report_run *run)
{
    md_puts(b, "\n### Sensors\n\n");
    int any = 0;
    for (size_t k = 0; k < run->n_sensors; k++)
        any |= run->sensors[k].used;
    if (!any)
        md_puts(b, "No sensor was used.\n");
    else
        md_puts(b, "| Sensor | Backend | Domain | Kind | Counts in totals | Update period | "
                   "Label |\n| :--- | :---: | :---: | :---: | :---: | :---: | :--- |\n");
    for (size_t k = 0; k < run->n_sensors; k++) {
        const struct report_sensor *sn = &run->sensors[k];
        if (!sn->used)
            continue;
        char c[64];
        md_puts(b, "|");
        md_cell(b, sn->name);
        md_cell(b, sn->backend);
        md_cell(b, sn->domain >= 0 ? jb_domain_name((enum jb_domain)sn->domain) : "?");
        md_cell(b, sn->estimated ? "**estimated**" : "measured");
        md_cell(b, sn->top ? "yes" : "no (inside another sensor)");
        if (isfinite(sn->update_period_s))
            snprintf(c, sizeof c, "%g ms", sn->update_period_s * 1000);
        else
            snprintf(c, sizeof c, "unknown");
        md_cell(b, c);
        md_cell(b, sn->label);
        md_puts(b, "\n");
    }
    int blank = 0;
    for (size_t k = 0; k < run->n_sensors; k++) {
        const struct report_sensor *sn = &run->sensors[k];
        if (sn->used)
            continue;
        if (!blank++)
            md_puts(b, "\n");
        md_printf(b, "- Not used: %s (%s)%s%s%s\n", sn->name,
                  *sn->reason ? sn->reason : "not readable", *sn->fix ? "; fix: `" : "", sn->fix,
                  *sn->fix ? "`" : "");
    }
}

int report_write_summary_md(const struct report_run *run, const struct report_summary *s,
                            struct buf *out, struct buf *table)
{
    struct md md = {out, 0};
    struct md *b = &md;
    md_puts(b, "# joulebench results\n\n");
    if (strcmp(run->status, "complete") != 0)
        md_printf(b,
                  "> **%s run** (run.json status \"%s\"): the figures cover only the "
                  "requests it recorded.\n\n",
                  strcmp(run->status, "interrupted") == 0 ? "Interrupted" : "Incomplete",
                  run->status);
    if (s->any_synthetic)
        md_puts(b, "> **Synthetic model**: a model with random weights made the answers. Its "
                   "joules are real work on this machine, but its answers and scores mean "
                   "nothing.\n\n");
    const char *started = report_jstr(run->run, "started");
    const char *ended = report_jstr(run->run, "ended");
    md_printf(b, "Run started %s, ended %s, status %s.\n\n", started ? started : "?",
              ended ? ended : "(not recorded)", run->status);

    size_t tstart = out->len;
    md_puts(b, "## Summary\n\n");
    headline(b, s);
    size_t n_meas = 0;
    for (size_t i = 0; i < s->n_models; i++)
        n_meas += s->models[i].n_measured;
    md_printf(b,
              "\nMean per measured request ± the 95 %% confidence interval of the mean "
              "(Student's t), over %zu measured request%s; warm-ups and failed requests "
              "are left out. Technical Score: mean grade on a 0-10 scale over every graded "
              "answer (failed requests included), n/a where none was graded. Avg. power: mean "
              "power over each request.\n\n",
              n_meas, n_meas == 1 ? "" : "s");
    estimated_note(b, run, s);
    md_puts(b, "\n## Warnings\n\n");
    warnings_list(b, s);
    if (!md.rc && table && buf_append(table, out->data + tstart, out->len - tstart))
        return JB_ERR_NOMEM;

    const json_t *base = json_object_get(run->run, "baseline");
    energy_detail(b, s, json_is_object(base));
    latency(b, s);
    loads(b, s);
    per_prompt(b, s);
    baseline(b, run);
    carbon_cost(b, s);
    host_engine(b, run);
    sensors(b, run);

    md_printf(b,
              "\n## Notes\n\n"
              "- Spread warning: the coefficient of variation (sd / mean) of J/token over "
              "one prompt's repetitions above %.0f %%.\n"
              "- Drift warning: the least-squares trend of a model's decode power from its "
              "first to its last request changes by more than %.0f %% of its mean.\n"
              "- Percentiles interpolate linearly between order statistics; ITL is the gap "
              "between streamed tokens, pooled over a model's measured requests.\n"
              "- Files: metrics.csv (numbers, one row per request, warm-ups flagged) and "
              "responses.csv (prompt and response text), linked by `id`.\n",
              REPORT_CV_WARN * 100, REPORT_DRIFT_WARN * 100);
    if (s->estimated_domains || s->any_tokens_estimated) {
        md_puts(b, "- ");
        estimated_note(b, run, s);
    }
    return md.rc;
}
