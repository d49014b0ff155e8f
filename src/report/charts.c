/*
 * charts.c — the four charts of a run, drawn with chart.c's pieces:
 * energy_comparison (J/token per model, stacked by domain),
 * intelligence_tax (Technical Score against J/token), value_for_energy
 * (score per kJ) and power_timeline (watts per domain over the run, phases
 * shaded). Estimated data is hatched, hollow or dashed and says so.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef JB_SANITIZE
#include <fontconfig/fontconfig.h>
#endif

#include "report/chart.h"
#include "report/report.h"
#include "report/writers.h"

#define LEGEND_W 230

struct ctx {
    const struct report_run *run;
    const struct report_summary *s;
};

static const char *domain_title(int d)
{
    static const char *const t[JB_DOMAIN_COUNT] = {"CPU", "Cores", "Uncore", "DRAM",
                                                   "GPU", "ANE",   "SoC",    "System"};
    return d >= 0 && d < JB_DOMAIN_COUNT ? t[d] : "?";
}

static void fmt_est(char *dst, size_t size, double v, int est)
{
    char n[64];
    report_fmt_sig(n, sizeof n, v, 3);
    snprintf(dst, size, "%s%s", est ? "~" : "", n);
}

/* What every chart's footnote must also say: a synthetic model, a partial
 * run. */
static void add_context(char *note, size_t size, const struct ctx *x)
{
    size_t l = strlen(note);
    if (x->s->any_synthetic)
        l += (size_t)snprintf(
            note + l, l < size ? size - l : 0,
            " Synthetic model (random weights): its joules are real, its answers are not.");
    if (l < size && strcmp(x->run->status, "complete") != 0)
        snprintf(note + l, size - l, " Partial run (status %s).", x->run->status);
}

/* Whether the model names fit under their bars level; if not, they are
 * drawn slanted, and the plot gives up some height for them. */
static int slant_labels(struct chart *c, const struct report_summary *s)
{
    double slot = (c->right - c->left) / (double)(s->n_models ? s->n_models : 1);
    double widest = 0;
    for (size_t i = 0; i < s->n_models; i++)
        widest = fmax(widest, chart_text_width(c->cr, s->models[i].name, 15, 1));
    if (widest <= slot - 8)
        return 0;
    c->bottom -= fmin(widest, 240) * 0.5 - 10;
    return 1;
}

/* Model names under the bars: the name (cut to fit), then a small line with
 * the sample size; or, slanted, both on one line. */
static void category_label(struct chart *c, double x, double slot,
                           const struct report_model_stats *m, const char *extra, int slant)
{
    char fit[256], small[128];
    snprintf(small, sizeof small, "n = %zu%s%s", extra ? m->n_graded : m->n_measured,
             m->synthetic ? " · synthetic" : "", extra ? extra : "");
    if (slant) {
        char both[512];
        snprintf(both, sizeof both, "%s (%s)", m->name, small);
        /* Slanted 30 degrees down to the left: the room to the page edge. */
        double room = (x + 6 - 12) / cos(M_PI / 6);
        chart_fit_text(c->cr, fit, sizeof fit, both, 14, 1, fmin(260, room));
        cairo_set_source_rgb(c->cr, 0.12, 0.12, 0.15);
        chart_text(c->cr, x + 6, c->bottom + 10, fit, 14, 1, 1, 0, -M_PI / 6);
        return;
    }
    cairo_set_source_rgb(c->cr, 0.12, 0.12, 0.15);
    chart_fit_text(c->cr, fit, sizeof fit, m->name, 15, 1, slot - 8);
    chart_text(c->cr, x, c->bottom + 12, fit, 15, 1, 0.5, 0, 0);
    cairo_set_source_rgb(c->cr, 0.4, 0.4, 0.44);
    chart_fit_text(c->cr, fit, sizeof fit, small, 13, 0, slot - 8);
    chart_text(c->cr, x, c->bottom + 34, fit, 13, 0, 0.5, 0, 0);
}

/* One bar per model, its domains stacked (estimated ones hatched), the CI
 * of the total J/token as an error bar and its value on top: where the
 * joules of a token go, and how sure we are of the total. */
static void draw_energy(cairo_t *cr, double w, double h, void *vctx)
{
    const struct ctx *x = vctx;
    const struct report_summary *s = x->s;
    struct chart c;
    chart_begin(&c, cr, w, h, "Energy per output token",
                "Mean joules per output token per request, stacked by energy domain · error "
                "bars: 95 % CI of the mean",
                LEGEND_W);
    unsigned doms = jb_domains_in_total(s->domains);
    double ymax = 0;
    for (size_t i = 0; i < s->n_models; i++) {
        const struct report_model_stats *m = &s->models[i];
        double sum = 0;
        for (int d = 0; d < JB_DOMAIN_COUNT; d++)
            if ((doms & (1u << d)) && isfinite(m->domain_j_per_token[d].mean))
                sum += m->domain_j_per_token[d].mean;
        double top =
            m->j_per_token.mean + (isfinite(m->j_per_token.ci95) ? m->j_per_token.ci95 : 0);
        if (isfinite(top))
            ymax = fmax(ymax, top);
        ymax = fmax(ymax, sum);
    }
    if (!(ymax > 0) || s->n_models == 0) {
        char note[512] = "";
        add_context(note, sizeof note, x);
        chart_message(&c, "No measured requests in this run",
                      "Every request was a warm-up or failed; see summary.md");
        chart_note(&c, note);
        return;
    }
    int slant = slant_labels(&c, s);
    c.y1 = ymax * 1.12;
    chart_y_axis(&c, "Energy per output token (J/token)", 6);

    double slot = (c.right - c.left) / (double)s->n_models;
    double bw = fmin(slot * 0.55, 150);
    int any_est = 0;
    for (size_t i = 0; i < s->n_models; i++) {
        const struct report_model_stats *m = &s->models[i];
        double cx = c.left + slot * (i + 0.5);
        double base = 0;
        for (int d = 0; d < JB_DOMAIN_COUNT; d++) {
            double v = m->domain_j_per_token[d].mean;
            if (!(doms & (1u << d)) || !isfinite(v) || v <= 0)
                continue;
            double y_top = chart_py(&c, base + v), y_bot = chart_py(&c, base);
            struct rgb col = chart_domain_color(d);
            if (m->estimated_domains & (1u << d)) {
                chart_set_color(cr, col, 0.22);
                cairo_rectangle(cr, cx - bw / 2, y_top, bw, y_bot - y_top);
                cairo_fill(cr);
                chart_hatch(cr, cx - bw / 2, y_top, bw, y_bot - y_top, col);
                any_est = 1;
            } else {
                chart_set_color(cr, col, 1);
                cairo_rectangle(cr, cx - bw / 2, y_top, bw, y_bot - y_top);
                cairo_fill(cr);
            }
            cairo_set_source_rgb(cr, 1, 1, 1);
            cairo_set_line_width(cr, 1.5);
            cairo_move_to(cr, cx - bw / 2, y_top);
            cairo_line_to(cr, cx + bw / 2, y_top);
            cairo_stroke(cr);
            base += v;
        }
        double mean = m->j_per_token.mean, ci = m->j_per_token.ci95;
        double label_y = chart_py(&c, base);
        if (isfinite(mean) && isfinite(ci)) {
            cairo_set_source_rgb(cr, 0.1, 0.1, 0.12);
            chart_error_v(cr, cx, chart_py(&c, fmax(0, mean - ci)), chart_py(&c, mean + ci), 9);
            label_y = fmin(label_y, chart_py(&c, mean + ci));
        }
        if (isfinite(mean)) {
            char t[64];
            fmt_est(t, sizeof t, mean, m->energy_estimated || m->tokens_estimated);
            cairo_set_source_rgb(cr, 0.1, 0.1, 0.12);
            chart_text(cr, cx, label_y - 8, t, 15, 1, 0.5, 1, 0);
        } else {
            cairo_set_source_rgb(cr, 0.45, 0.45, 0.5);
            chart_text(cr, cx, c.bottom - 12, "no data", 14, 0, 0.5, 1, 0);
        }
        category_label(&c, cx, slot, m, NULL, slant);
    }
    chart_frame(&c);

    double ly = c.top;
    for (int d = 0; d < JB_DOMAIN_COUNT; d++) {
        if (!(doms & (1u << d)))
            continue;
        char lab[64];
        int est = !!(s->estimated_domains & (1u << d));
        snprintf(lab, sizeof lab, "%s%s", domain_title(d), est ? " (est.)" : "");
        chart_legend_item(&c, &ly, chart_domain_color(d), est ? 1 : 0, lab);
    }
    if (any_est)
        chart_legend_item(&c, &ly, (struct rgb){0.45, 0.45, 0.5}, 1, "hatched = estimated");
    char note[512];
    snprintf(note, sizeof note, "%s",
             any_est ? "Hatched segments and ~ values are estimated (a CPU-time model, not a "
                       "meter). Warm-ups and failed requests are left out."
                     : "All segments measured by energy sensors. Warm-ups and failed requests "
                       "are left out.");
    add_context(note, sizeof note, x);
    chart_note(&c, note);
}

static void no_grades(struct chart *c)
{
    chart_message(c, "No graded answers in this run",
                  "Grade them with 'joulebench grade DIR', then rebuild with 'joulebench "
                  "report DIR'");
}

#define MAX_PLACED 64

struct rect {
    double x0, y0, x1, y1;
};

/* Rectangles already taken on a scatter plot: markers and labels. */
struct placed {
    struct rect r[MAX_PLACED];
    size_t n;
};

static double overlap(struct rect a, struct rect b)
{
    double w = fmin(a.x1, b.x1) - fmax(a.x0, b.x0), h = fmin(a.y1, b.y1) - fmax(a.y0, b.y0);
    return w > 0 && h > 0 ? w * h : 0;
}

/* A point's label goes to the first of eight spots around it that stays in
 * the plot and clear of every marker and label placed so far, or to the spot
 * that overlaps least; a thin leader line joins a label set further out. */
static void place_label(struct chart *c, struct placed *pl, double px, double py, const char *lab)
{
    double tw = chart_text_width(c->cr, lab, 14, 1), th = 14;
    static const double spots[][3] = {
        /* dx, dy, anchor x (0 left, 1 right); label box is above dy when dy < 0 */
        {14, -12, 0}, {14, 12, 0}, {-14, -12, 1}, {-14, 12, 1},
        {14, -34, 0}, {14, 34, 0}, {-14, -34, 1}, {-14, 34, 1}};
    double best = INFINITY;
    struct rect bestr = {0};
    int bestk = 0;
    for (int k = 0; k < 8; k++) {
        double ax = spots[k][2], dy = spots[k][1];
        double x0 = px + spots[k][0] - ax * tw;
        double y0 = dy < 0 ? py + dy - th : py + dy;
        struct rect r = {x0 - 2, y0 - 2, x0 + tw + 2, y0 + th + 2};
        double cost = 0;
        if (r.x0 < c->left || r.x1 > c->right || r.y0 < c->top || r.y1 > c->bottom)
            cost += 1e6;
        for (size_t i = 0; i < pl->n; i++)
            cost += overlap(r, pl->r[i]);
        cost += k * 1e-3; /* prefer the near, upper right spots on a tie */
        if (cost < best) {
            best = cost;
            bestr = r;
            bestk = k;
        }
    }
    if (bestk >= 4) {
        cairo_set_source_rgba(c->cr, 0.3, 0.3, 0.33, 0.7);
        cairo_set_line_width(c->cr, 1);
        cairo_move_to(c->cr, px, py);
        cairo_line_to(c->cr, spots[bestk][2] ? bestr.x1 : bestr.x0,
                      spots[bestk][1] < 0 ? bestr.y1 : bestr.y0);
        cairo_stroke(c->cr);
    }
    cairo_set_source_rgb(c->cr, 0.1, 0.1, 0.12);
    chart_text(c->cr, bestr.x0 + 2, bestr.y0 + 2, lab, 14, 1, 0, 0, 0);
    if (pl->n < MAX_PLACED)
        pl->r[pl->n++] = bestr;
}

/* The reference workflow's "intelligence tax": quality against joules per
 * token, one labelled point per graded model with CIs both ways, so a
 * reader sees what the extra joules of a bigger model buy. */
static void draw_tax(cairo_t *cr, double w, double h, void *vctx)
{
    const struct ctx *x = vctx;
    const struct report_summary *s = x->s;
    struct chart c;
    chart_begin(&c, cr, w, h, "Intelligence tax: quality against energy",
                "Technical Score (0-10) against joules per output token, one point per model · "
                "error bars: 95 % CI both ways",
                LEGEND_W);
    double xmax = 0;
    size_t n_pts = 0;
    for (size_t i = 0; i < s->n_models; i++) {
        const struct report_model_stats *m = &s->models[i];
        if (!isfinite(m->score.mean) || !isfinite(m->j_per_token.mean))
            continue;
        n_pts++;
        double ci = isfinite(m->j_per_token.ci95) ? m->j_per_token.ci95 : 0;
        xmax = fmax(xmax, m->j_per_token.mean + ci);
    }
    if (n_pts == 0 || !(xmax > 0)) {
        char note[512] = "The score comes from the suite's graders or an LLM judge (--judge "
                         "MODEL).";
        add_context(note, sizeof note, x);
        no_grades(&c);
        chart_note(&c, note);
        return;
    }
    c.y0 = 0;
    c.y1 = 10;
    c.x0 = 0;
    c.x1 = xmax * 1.15;
    chart_y_axis(&c, "Technical Score (0-10)", 5);
    chart_x_axis(&c, "Energy per output token (J/token)", 6);

    int any_est = 0;
    char ungraded[256] = "";
    double ly = c.top;
    struct placed placed = {0};
    /* The markers first, so labels can keep clear of all of them. */
    for (size_t i = 0; i < s->n_models && placed.n < MAX_PLACED; i++) {
        const struct report_model_stats *m = &s->models[i];
        if (!isfinite(m->score.mean) || !isfinite(m->j_per_token.mean))
            continue;
        double px = chart_px(&c, m->j_per_token.mean), py = chart_py(&c, m->score.mean);
        placed.r[placed.n++] = (struct rect){px - 10, py - 10, px + 10, py + 10};
    }
    for (size_t i = 0; i < s->n_models; i++) {
        const struct report_model_stats *m = &s->models[i];
        if (!isfinite(m->score.mean) || !isfinite(m->j_per_token.mean)) {
            size_t l = strlen(ungraded);
            snprintf(ungraded + l, sizeof ungraded - l, "%s%s", l ? ", " : "", m->name);
            continue;
        }
        struct rgb col = chart_series_color(i);
        double px = chart_px(&c, m->j_per_token.mean), py = chart_py(&c, m->score.mean);
        chart_set_color(cr, col, 0.9);
        if (isfinite(m->j_per_token.ci95))
            chart_error_h(cr, py, chart_px(&c, fmax(0, m->j_per_token.mean - m->j_per_token.ci95)),
                          chart_px(&c, m->j_per_token.mean + m->j_per_token.ci95), 7);
        if (isfinite(m->score.ci95))
            chart_error_v(cr, px, chart_py(&c, fmax(0, m->score.mean - m->score.ci95)),
                          chart_py(&c, fmin(10, m->score.mean + m->score.ci95)), 7);
        int est = m->energy_estimated || m->tokens_estimated;
        any_est |= est;
        cairo_new_path(cr);
        cairo_arc(cr, px, py, 9, 0, 2 * M_PI);
        if (est) {
            cairo_set_source_rgb(cr, 1, 1, 1);
            cairo_fill_preserve(cr);
            chart_set_color(cr, col, 1);
            cairo_set_line_width(cr, 3);
            cairo_stroke(cr);
        } else {
            chart_set_color(cr, col, 1);
            cairo_fill_preserve(cr);
            cairo_set_source_rgb(cr, 1, 1, 1);
            cairo_set_line_width(cr, 1.5);
            cairo_stroke(cr);
        }
        char lab[192], num[64];
        fmt_est(num, sizeof num, m->j_per_token.mean, est);
        snprintf(lab, sizeof lab, "%s (%.1f, %s J/tok)", m->name, m->score.mean, num);
        place_label(&c, &placed, px, py, lab);
        char leg[192];
        snprintf(leg, sizeof leg, "%s%s", m->name, est ? " (est.)" : "");
        chart_legend_item(&c, &ly, col, est ? 5 : 6, leg);
    }
    chart_frame(&c);
    char note[512];
    snprintf(note, sizeof note, "Upper left is better: more quality for fewer joules.%s%s%s",
             any_est ? " Hollow marker: J/token estimated." : "", *ungraded ? " Not graded: " : "",
             ungraded);
    add_context(note, sizeof note, x);
    chart_note(&c, note);
}

/* Score per kJ per model: the single number that ranks models by quality
 * bought per unit of energy; ungraded models keep their slot, labelled. */
static void draw_value(cairo_t *cr, double w, double h, void *vctx)
{
    const struct ctx *x = vctx;
    const struct report_summary *s = x->s;
    struct chart c;
    chart_begin(&c, cr, w, h, "Value for energy",
                "Mean Technical Score per kilojoule of a mean request · higher is better · error "
                "bars: 95 % CI (propagated)",
                0);
    double ymax = 0;
    for (size_t i = 0; i < s->n_models; i++) {
        const struct report_model_stats *m = &s->models[i];
        double ci = isfinite(m->score_per_kj_ci95) ? m->score_per_kj_ci95 : 0;
        if (isfinite(m->score_per_kj))
            ymax = fmax(ymax, m->score_per_kj + ci);
    }
    if (!(ymax > 0)) {
        if (!s->any_graded) {
            char note[512] = "Score per kJ = mean Technical Score / (mean joules per request "
                             "/ 1000).";
            add_context(note, sizeof note, x);
            no_grades(&c);
            chart_note(&c, note);
            return;
        }
        ymax = 1; /* graded, but every score was 0: an honest empty scale */
    }
    int slant = slant_labels(&c, s);
    c.y1 = ymax * 1.12;
    chart_y_axis(&c, "Technical Score per kJ (points/kJ)", 6);
    double slot = (c.right - c.left) / (double)s->n_models;
    double bw = fmin(slot * 0.55, 150);
    int any_est = 0;
    for (size_t i = 0; i < s->n_models; i++) {
        const struct report_model_stats *m = &s->models[i];
        double cx = c.left + slot * (i + 0.5);
        struct rgb col = chart_series_color(i);
        double v = m->score_per_kj, ci = m->score_per_kj_ci95;
        int est = m->energy_estimated;
        if (isfinite(v)) {
            double yt = chart_py(&c, v), yb = chart_py(&c, 0);
            if (est) {
                chart_set_color(cr, col, 0.22);
                cairo_rectangle(cr, cx - bw / 2, yt, bw, yb - yt);
                cairo_fill(cr);
                chart_hatch(cr, cx - bw / 2, yt, bw, yb - yt, col);
                any_est = 1;
            } else {
                chart_set_color(cr, col, 1);
                cairo_rectangle(cr, cx - bw / 2, yt, bw, yb - yt);
                cairo_fill(cr);
            }
            double ly = yt;
            if (isfinite(ci)) {
                cairo_set_source_rgb(cr, 0.1, 0.1, 0.12);
                chart_error_v(cr, cx, chart_py(&c, fmax(0, v - ci)), chart_py(&c, v + ci), 9);
                ly = fmin(ly, chart_py(&c, v + ci));
            }
            char t[64];
            fmt_est(t, sizeof t, v, est);
            cairo_set_source_rgb(cr, 0.1, 0.1, 0.12);
            chart_text(cr, cx, ly - 8, t, 15, 1, 0.5, 1, 0);
        } else {
            cairo_set_source_rgb(cr, 0.45, 0.45, 0.5);
            chart_text(cr, cx, c.bottom - 14, m->n_graded ? "no energy data" : "not graded", 14, 0,
                       0.5, 1, 0);
        }
        category_label(&c, cx, slot, m, " graded", slant);
    }
    chart_frame(&c);
    char note[512];
    snprintf(note, sizeof note, "%s",
             any_est ? "Hatched bars and ~ values rest on estimated energy (a CPU-time model). "
                       "Score per kJ = mean score / mean kJ per request."
                     : "Score per kJ = mean Technical Score / mean kJ per request (gross "
                       "energy).");
    add_context(note, sizeof note, x);
    chart_note(&c, note);
}

/* Phase shading colours: pale, so the power lines stay in front. */
static int phase_band(int p, struct rgb *col, const char **name)
{
    switch (p) {
    case REPORT_PHASE_PREFILL:
        *col = (struct rgb){1.0, 0.84, 0.62};
        *name = "prefill";
        return 1;
    case REPORT_PHASE_DECODE:
        *col = (struct rgb){0.83, 0.88, 0.97};
        *name = "decode";
        return 1;
    case REPORT_PHASE_LOAD:
        *col = (struct rgb){0.86, 0.80, 0.74};
        *name = "model load";
        return 1;
    case REPORT_PHASE_WARMUP:
        *col = (struct rgb){0.90, 0.90, 0.90};
        *name = "warm-up";
        return 1;
    case REPORT_PHASE_BASELINE:
        *col = (struct rgb){0.86, 0.94, 0.84};
        *name = "idle baseline";
        return 1;
    }
    return 0;
}

/* Watts of one series at row i: a domain, or (series == JB_DOMAIN_COUNT)
 * the sum of the domains that add up to a total; NaN when any is missing. */
static double series_w(const struct report_timeline *tl, size_t i, int series, unsigned sum_doms)
{
    if (series < JB_DOMAIN_COUNT)
        return tl->domain_w[i * JB_DOMAIN_COUNT + series];
    double v = 0;
    for (int d = 0; d < JB_DOMAIN_COUNT; d++)
        if (sum_doms & (1u << d))
            v += tl->domain_w[i * JB_DOMAIN_COUNT + d];
    return v;
}

/* Start of row i's interval: the previous sample, or one typical step
 * before the first. */
static double row_start(const struct report_timeline *tl, size_t i)
{
    if (i > 0)
        return tl->t_s[i - 1];
    return tl->n > 1 ? 2 * tl->t_s[0] - tl->t_s[1] : tl->t_s[0];
}

/* Few samples: each is the mean over its interval, so draw it as a step;
 * a missing value breaks the line. */
static void draw_steps(struct chart *c, const struct report_timeline *tl, int series,
                       unsigned sum_doms, double scale)
{
    int pen = 0;
    for (size_t i = 0; i < tl->n; i++) {
        double v = series_w(tl, i, series, sum_doms);
        if (!isfinite(v)) {
            pen = 0;
            continue;
        }
        double t0 = fmax(row_start(tl, i), fmin(0, tl->t_s[0]));
        double x0 = chart_px(c, t0 / scale), x1 = chart_px(c, tl->t_s[i] / scale);
        double y = chart_py(c, v);
        if (pen)
            cairo_line_to(c->cr, x0, y);
        else
            cairo_move_to(c->cr, x0, y);
        cairo_line_to(c->cr, x1, y);
        pen = 1;
    }
    cairo_stroke(c->cr);
}

/* Many samples: one mean per pixel column, so an hour at 50 Hz still draws
 * as a clean line. Columns without a sample are bridged. */
static void draw_buckets(struct chart *c, const struct report_timeline *tl, int series,
                         unsigned sum_doms, double scale, double *sum, size_t *cnt, size_t nb)
{
    memset(sum, 0, nb * sizeof *sum);
    memset(cnt, 0, nb * sizeof *cnt);
    for (size_t i = 0; i < tl->n; i++) {
        double v = series_w(tl, i, series, sum_doms);
        if (!isfinite(v))
            continue;
        double fx = (chart_px(c, tl->t_s[i] / scale) - c->left) / (c->right - c->left);
        size_t b = fx <= 0 ? 0 : fx >= 1 ? nb - 1 : (size_t)(fx * (double)nb);
        sum[b] += v;
        cnt[b]++;
    }
    int pen = 0;
    for (size_t b = 0; b < nb; b++) {
        if (!cnt[b])
            continue;
        double px = c->left + ((double)b + 0.5) / (double)nb * (c->right - c->left);
        double py = chart_py(c, sum[b] / (double)cnt[b]);
        if (pen)
            cairo_line_to(c->cr, px, py);
        else
            cairo_move_to(c->cr, px, py);
        pen = 1;
    }
    cairo_stroke(c->cr);
}

/* Watts per domain over the run, plus their total when there are several,
 * over pale bands showing what the run was doing. */
static void draw_timeline(cairo_t *cr, double w, double h, void *vctx)
{
    const struct ctx *x = vctx;
    const struct report_timeline *tl = &x->run->timeline;
    struct chart c;
    chart_begin(&c, cr, w, h, "Power over the run",
                "Mean watts per sampling interval, per energy domain · shading: what the run "
                "was doing",
                LEGEND_W);
    if (!x->run->has_timeline || tl->n == 0 || !tl->domains) {
        char note[512] = "";
        add_context(note, sizeof note, x);
        chart_message(&c,
                      x->run->has_timeline ? "The timeline has no power samples"
                                           : "No timeline.csv in this run",
                      "The runner writes it at the end of a run (and on interrupt)");
        chart_note(&c, note);
        return;
    }
    unsigned doms = tl->domains;
    unsigned sum_doms = jb_domains_in_total(doms);
    int n_sum = 0;
    for (int d = 0; d < JB_DOMAIN_COUNT; d++)
        n_sum += !!(sum_doms & (1u << d));
    int show_total = n_sum >= 2;
    double tmax = tl->t_s[tl->n - 1], tmin = fmin(0, tl->t_s[0]);
    double scale = tmax > 1200 ? 60 : 1;
    double ymax = 0;
    for (size_t i = 0; i < tl->n; i++) {
        double tot = 0;
        for (int d = 0; d < JB_DOMAIN_COUNT; d++) {
            double v = tl->domain_w[i * JB_DOMAIN_COUNT + d];
            if (!(doms & (1u << d)) || !isfinite(v))
                continue;
            ymax = fmax(ymax, v);
            if (sum_doms & (1u << d))
                tot += v;
        }
        if (show_total)
            ymax = fmax(ymax, tot);
    }
    if (!(ymax > 0))
        ymax = 1;
    c.x0 = tmin / scale;
    c.x1 = (tmax > tmin ? tmax : tmin + 1) / scale;
    c.y1 = ymax * 1.1;

    /* Phase bands first, behind the grid. Row i covers (t[i-1], t[i]]. */
    unsigned phases_seen = 0;
    for (size_t i = 0; i < tl->n;) {
        size_t j = i;
        while (j + 1 < tl->n && tl->phase[j + 1] == tl->phase[i])
            j++;
        struct rgb col;
        const char *name;
        if (phase_band(tl->phase[i], &col, &name)) {
            double t0 = i > 0 ? tl->t_s[i - 1] : (tl->n > 1 ? 2 * tl->t_s[0] - tl->t_s[1] : 0);
            double x0 = chart_px(&c, fmax(t0, tmin) / scale), x1 = chart_px(&c, tl->t_s[j] / scale);
            chart_set_color(cr, col, 1);
            cairo_rectangle(cr, x0, c.top, fmax(x1 - x0, 0.6), c.bottom - c.top);
            cairo_fill(cr);
            phases_seen |= 1u << tl->phase[i];
        }
        i = j + 1;
    }
    chart_y_axis(&c, "Power (W)", 6);
    chart_x_axis(
        &c, scale > 1 ? "Time since the run started (min)" : "Time since the run started (s)", 8);

    size_t nb = (size_t)(c.right - c.left);
    if (nb < 2)
        nb = 2;
    double *sum = calloc(nb, sizeof *sum);
    size_t *cnt = calloc(nb, sizeof *cnt);
    double ly = c.top;
    for (int series = 0; sum && cnt && series <= JB_DOMAIN_COUNT; series++) {
        int is_total = series == JB_DOMAIN_COUNT;
        if (is_total ? !show_total : !(doms & (1u << series)))
            continue;
        int est = is_total ? (tl->estimated & sum_doms) != 0 : !!(tl->estimated & (1u << series));
        struct rgb col = is_total ? (struct rgb){0.15, 0.15, 0.18} : chart_domain_color(series);
        chart_set_color(cr, col, 1);
        cairo_set_line_width(cr, is_total ? 2.6 : 2.0);
        cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
        if (est) {
            double dash[] = {7, 4};
            cairo_set_dash(cr, dash, 2, 0);
        }
        if (tl->n <= nb)
            draw_steps(&c, tl, series, sum_doms, scale);
        else
            draw_buckets(&c, tl, series, sum_doms, scale, sum, cnt, nb);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        char lab[64];
        snprintf(lab, sizeof lab, "%s%s", is_total ? "Total" : domain_title(series),
                 est ? " (est.)" : "");
        chart_legend_item(&c, &ly, col, est ? 3 : 2, lab);
    }
    free(sum);
    free(cnt);
    chart_frame(&c);
    ly += 10;
    for (int p = 1; p < REPORT_PHASE_COUNT; p++) {
        struct rgb col;
        const char *name;
        if ((phases_seen & (1u << p)) && phase_band(p, &col, &name))
            chart_legend_item(&c, &ly, col, 4, name);
    }
    char note[512];
    double dt = tl->n > 1 ? (tl->t_s[tl->n - 1] - tl->t_s[0]) / (double)(tl->n - 1) : NAN;
    snprintf(note, sizeof note, "%zu samples, one every %.0f ms on average.%s%s", tl->n, dt * 1000,
             tl->estimated ? " Dashed lines are estimated (a CPU-time model)." : "",
             show_total && (doms & (1u << JB_DOMAIN_SYSTEM))
                 ? " Total leaves out the whole-board sensor."
                 : "");
    add_context(note, sizeof note, x);
    chart_note(&c, note);
}

int report_write_charts(const struct report_run *run, const struct report_summary *s,
                        const char *out_dir, char *err)
{
    struct ctx x = {run, s};
    static const struct {
        const char *name;
        void (*draw)(cairo_t *, double, double, void *);
    } charts[] = {{"energy_comparison", draw_energy},
                  {"intelligence_tax", draw_tax},
                  {"value_for_energy", draw_value},
                  {"power_timeline", draw_timeline}};
    int rc = 0;
    for (size_t i = 0; i < sizeof charts / sizeof charts[0] && !rc; i++)
        rc = chart_render(out_dir, charts[i].name, REPORT_CHART_W, REPORT_CHART_H, charts[i].draw,
                          &x, err);
#ifdef JB_SANITIZE
    /* cairo keeps its font faces (and their fontconfig patterns) for the
     * life of the process; the leak checker would call that a leak. Nothing
     * else in joulebench holds cairo objects, so the sanitizer build hands
     * them back here, and fontconfig's configuration after them (also
     * when a chart failed: a full disk is no reason to report a leak). */
    cairo_debug_reset_static_data();
    FcFini();
#endif
    return rc;
}
