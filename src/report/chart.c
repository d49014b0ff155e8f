#include "report/chart.h"

#include <cairo-svg.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/fs.h"
#include "joulebench/joulebench.h"

#define FONT "DejaVu Sans"

static struct rgb hex(unsigned v)
{
    struct rgb c = {((v >> 16) & 0xff) / 255.0, ((v >> 8) & 0xff) / 255.0, (v & 0xff) / 255.0};
    return c;
}

struct rgb chart_domain_color(int d)
{
    switch (d) {
    case JB_DOMAIN_CPU:
        return hex(0x4e79a7);
    case JB_DOMAIN_CORES:
        return hex(0xa0cbe8);
    case JB_DOMAIN_UNCORE:
        return hex(0x76b7b2);
    case JB_DOMAIN_DRAM:
        return hex(0xf28e2b);
    case JB_DOMAIN_GPU:
        return hex(0x59a14f);
    case JB_DOMAIN_ANE:
        return hex(0xb07aa1);
    case JB_DOMAIN_SOC:
        return hex(0xedc948);
    case JB_DOMAIN_SYSTEM:
        return hex(0x79706e);
    }
    return hex(0x333333);
}

struct rgb chart_series_color(size_t i)
{
    static const unsigned pal[] = {0x4e79a7, 0xe15759, 0x59a14f, 0xf28e2b, 0xb07aa1,
                                   0x76b7b2, 0x9c755f, 0xff9da7, 0xedc948, 0xbab0ac};
    return hex(pal[i % (sizeof pal / sizeof pal[0])]);
}

void chart_set_color(cairo_t *cr, struct rgb col, double alpha)
{
    cairo_set_source_rgba(cr, col.r, col.g, col.b, alpha);
}

static void font(cairo_t *cr, double size, int bold)
{
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

double chart_text_width(cairo_t *cr, const char *s, double size, int bold)
{
    cairo_text_extents_t te;
    font(cr, size, bold);
    cairo_text_extents(cr, s, &te);
    return te.x_advance;
}

/* Vertical anchoring uses the height of a capital letter at this size, so
 * labels with and without descenders line up. */
void chart_text(cairo_t *cr, double x, double y, const char *s, double size, int bold, double ax,
                double ay, double angle)
{
    cairo_text_extents_t te;
    font(cr, size, bold);
    cairo_text_extents(cr, s, &te);
    double cap = size * 0.72;
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, angle);
    cairo_move_to(cr, -ax * te.x_advance, cap * (1.0 - ay));
    cairo_show_text(cr, s);
    cairo_restore(cr);
    /* show_text leaves a current point (the path is not part of the saved
     * state); an arc drawn next would join it with a stray line. */
    cairo_new_path(cr);
}

void chart_fit_text(cairo_t *cr, char *dst, size_t dsize, const char *s, double size, int bold,
                    double max_w)
{
    snprintf(dst, dsize, "%s", s);
    if (chart_text_width(cr, dst, size, bold) <= max_w)
        return;
    size_t n = strlen(dst);
    while (n > 0) {
        n--;
        while (n > 0 && ((unsigned char)dst[n] & 0xc0) == 0x80)
            n--; /* stay on a UTF-8 character boundary */
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%.*s…", (int)n, s);
        if (chart_text_width(cr, tmp, size, bold) <= max_w || n == 0) {
            snprintf(dst, dsize, "%s", tmp);
            return;
        }
    }
}

void chart_begin(struct chart *c, cairo_t *cr, double w, double h, const char *title,
                 const char *subtitle, double legend_w)
{
    memset(c, 0, sizeof *c);
    c->cr = cr;
    c->w = w;
    c->h = h;
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.12);
    chart_text(cr, 40, 30, title, 24, 1, 0, 0, 0);
    if (subtitle) {
        cairo_set_source_rgb(cr, 0.38, 0.38, 0.42);
        chart_text(cr, 40, 66, subtitle, 14, 0, 0, 0, 0);
    }
    c->left = 110;
    c->top = 110;
    c->right = w - 40 - (legend_w > 0 ? legend_w + 20 : 0);
    c->bottom = h - 130;
    c->x0 = 0;
    c->x1 = 1;
    c->y0 = 0;
    c->y1 = 1;
}

double chart_px(const struct chart *c, double x)
{
    return c->left + (x - c->x0) / (c->x1 - c->x0) * (c->right - c->left);
}

double chart_py(const struct chart *c, double y)
{
    return c->bottom - (y - c->y0) / (c->y1 - c->y0) * (c->bottom - c->top);
}

int chart_nice_ticks(double lo, double hi, int target, double *first, double *step)
{
    if (!isfinite(lo) || !isfinite(hi) || hi <= lo) {
        hi = lo + 1;
    }
    if (target < 2)
        target = 2;
    double raw = (hi - lo) / target;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    double nice = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    *step = nice * mag;
    *first = ceil(lo / *step - 1e-9) * *step;
    int n = (int)floor((hi - *first) / *step + 1e-9) + 1;
    return n < 1 ? 1 : n > 13 ? 13 : n;
}

void chart_fmt_tick(char *dst, size_t size, double v, double step)
{
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 8)
        dec = 8;
    if (fabs(v) < step * 1e-6)
        v = 0;
    snprintf(dst, size, "%.*f", dec, v);
}

void chart_y_axis(struct chart *c, const char *label, int target)
{
    cairo_t *cr = c->cr;
    double first, step;
    chart_nice_ticks(c->y0, c->y1, target, &first, &step);
    /* Stretch the top to a whole tick so the scale ends on a label. */
    double top = ceil(c->y1 / step - 1e-9) * step;
    if (top > c->y1)
        c->y1 = top;
    int n = (int)floor((c->y1 - first) / step + 1e-9) + 1;
    cairo_set_line_width(cr, 1);
    for (int i = 0; i < n; i++) {
        double v = first + i * step;
        double y = round(chart_py(c, v)) + 0.5;
        cairo_set_source_rgb(cr, 0.88, 0.88, 0.9);
        cairo_move_to(cr, c->left, y);
        cairo_line_to(cr, c->right, y);
        cairo_stroke(cr);
        char t[32];
        chart_fmt_tick(t, sizeof t, v, step);
        cairo_set_source_rgb(cr, 0.25, 0.25, 0.28);
        chart_text(cr, c->left - 10, y, t, 14, 0, 1, 0.5, 0);
    }
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.18);
    chart_text(cr, 34, (c->top + c->bottom) / 2, label, 16, 0, 0.5, 0.5, -M_PI / 2);
}

void chart_x_axis(struct chart *c, const char *label, int target)
{
    cairo_t *cr = c->cr;
    double first, step;
    chart_nice_ticks(c->x0, c->x1, target, &first, &step);
    double right = ceil(c->x1 / step - 1e-9) * step;
    if (right > c->x1)
        c->x1 = right;
    int n = (int)floor((c->x1 - first) / step + 1e-9) + 1;
    cairo_set_line_width(cr, 1);
    for (int i = 0; i < n; i++) {
        double v = first + i * step;
        double x = round(chart_px(c, v)) + 0.5;
        cairo_set_source_rgb(cr, 0.88, 0.88, 0.9);
        cairo_move_to(cr, x, c->top);
        cairo_line_to(cr, x, c->bottom);
        cairo_stroke(cr);
        char t[32];
        chart_fmt_tick(t, sizeof t, v, step);
        cairo_set_source_rgb(cr, 0.25, 0.25, 0.28);
        chart_text(cr, x, c->bottom + 10, t, 14, 0, 0.5, 0, 0);
    }
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.18);
    chart_text(cr, (c->left + c->right) / 2, c->bottom + 44, label, 16, 0, 0.5, 0, 0);
}

void chart_frame(struct chart *c)
{
    cairo_t *cr = c->cr;
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.33);
    cairo_set_line_width(cr, 1.5);
    cairo_move_to(cr, c->left, c->top);
    cairo_line_to(cr, c->left, c->bottom);
    cairo_line_to(cr, c->right, c->bottom);
    cairo_stroke(cr);
}

void chart_hatch(cairo_t *cr, double x, double y, double w, double h, struct rgb col)
{
    cairo_save(cr);
    cairo_rectangle(cr, x, y, w, h);
    cairo_clip(cr);
    chart_set_color(cr, col, 1);
    cairo_set_line_width(cr, 2);
    for (double k = -h; k < w + h; k += 9) {
        cairo_move_to(cr, x + k, y + h);
        cairo_line_to(cr, x + k + h, y);
    }
    cairo_stroke(cr);
    cairo_restore(cr);
}

void chart_error_v(cairo_t *cr, double x, double y_lo, double y_hi, double cap)
{
    cairo_set_line_width(cr, 1.8);
    cairo_move_to(cr, x, y_lo);
    cairo_line_to(cr, x, y_hi);
    cairo_move_to(cr, x - cap, y_lo);
    cairo_line_to(cr, x + cap, y_lo);
    cairo_move_to(cr, x - cap, y_hi);
    cairo_line_to(cr, x + cap, y_hi);
    cairo_stroke(cr);
}

void chart_error_h(cairo_t *cr, double y, double x_lo, double x_hi, double cap)
{
    cairo_set_line_width(cr, 1.8);
    cairo_move_to(cr, x_lo, y);
    cairo_line_to(cr, x_hi, y);
    cairo_move_to(cr, x_lo, y - cap);
    cairo_line_to(cr, x_lo, y + cap);
    cairo_move_to(cr, x_hi, y - cap);
    cairo_line_to(cr, x_hi, y + cap);
    cairo_stroke(cr);
}

void chart_legend_item(struct chart *c, double *y, struct rgb col, int kind, const char *label)
{
    cairo_t *cr = c->cr;
    double x = c->right + 24, sw = 26, sh = 16;
    switch (kind) {
    case 0:
    case 1:
        if (kind == 0) {
            chart_set_color(cr, col, 1);
            cairo_rectangle(cr, x, *y, sw, sh);
            cairo_fill(cr);
        } else {
            cairo_set_source_rgb(cr, 1, 1, 1);
            cairo_rectangle(cr, x, *y, sw, sh);
            cairo_fill(cr);
            chart_hatch(cr, x, *y, sw, sh, col);
            chart_set_color(cr, col, 1);
            cairo_set_line_width(cr, 1);
            cairo_rectangle(cr, x + 0.5, *y + 0.5, sw - 1, sh - 1);
            cairo_stroke(cr);
        }
        break;
    case 2:
    case 3: {
        chart_set_color(cr, col, 1);
        cairo_set_line_width(cr, 2.5);
        if (kind == 3) {
            double dash[] = {7, 4};
            cairo_set_dash(cr, dash, 2, 0);
        }
        cairo_move_to(cr, x, *y + sh / 2);
        cairo_line_to(cr, x + sw, *y + sh / 2);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        break;
    }
    case 5:
    case 6:
        cairo_new_sub_path(cr);
        cairo_arc(cr, x + sw / 2, *y + sh / 2, 7, 0, 2 * M_PI);
        if (kind == 5) {
            cairo_set_source_rgb(cr, 1, 1, 1);
            cairo_fill_preserve(cr);
            chart_set_color(cr, col, 1);
            cairo_set_line_width(cr, 2.5);
            cairo_stroke(cr);
        } else {
            chart_set_color(cr, col, 1);
            cairo_fill(cr);
        }
        break;
    default:
        chart_set_color(cr, col, 1);
        cairo_rectangle(cr, x, *y, sw, sh);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0.7, 0.7, 0.72);
        cairo_set_line_width(cr, 1);
        cairo_rectangle(cr, x + 0.5, *y + 0.5, sw - 1, sh - 1);
        cairo_stroke(cr);
        break;
    }
    char fit[256];
    chart_fit_text(cr, fit, sizeof fit, label, 14, 0, c->w - (x + sw + 10) - 12);
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.18);
    chart_text(cr, x + sw + 10, *y + sh / 2, fit, 14, 0, 0, 0.5, 0);
    *y += 28;
}

void chart_message(struct chart *c, const char *msg, const char *detail)
{
    cairo_t *cr = c->cr;
    cairo_set_source_rgb(cr, 0.97, 0.97, 0.98);
    cairo_rectangle(cr, c->left, c->top, c->right - c->left, c->bottom - c->top);
    cairo_fill(cr);
    double cx = (c->left + c->right) / 2, cy = (c->top + c->bottom) / 2;
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.34);
    chart_text(cr, cx, cy - 14, msg, 22, 1, 0.5, 0.5, 0);
    if (detail) {
        cairo_set_source_rgb(cr, 0.42, 0.42, 0.46);
        chart_text(cr, cx, cy + 22, detail, 15, 0, 0.5, 0.5, 0);
    }
}

/* Footnotes wrap at word boundaries onto at most three lines, the last
 * line on the page's bottom margin. */
void chart_note(struct chart *c, const char *note)
{
    char lines[3][512];
    int n = 0;
    double max_w = c->w - 80;
    const char *p = note;
    while (*p && n < 3) {
        while (*p == ' ')
            p++;
        size_t best = 0, len = strlen(p);
        for (size_t k = 1; k <= len && k < sizeof lines[0]; k++) {
            if (k < len && p[k] != ' ')
                continue;
            char tmp[512];
            snprintf(tmp, sizeof tmp, "%.*s", (int)k, p);
            if (chart_text_width(c->cr, tmp, 13, 0) > max_w && best)
                break;
            best = k;
        }
        if (!best)
            break;
        if (n == 2 && best < len) /* out of lines: cut the rest */
            chart_fit_text(c->cr, lines[n], sizeof lines[n], p, 13, 0, max_w);
        else
            snprintf(lines[n], sizeof lines[n], "%.*s", (int)best, p);
        n++;
        p += best;
    }
    cairo_set_source_rgb(c->cr, 0.38, 0.38, 0.42);
    for (int i = 0; i < n; i++)
        chart_text(c->cr, 40, c->h - 20 - (n - 1 - i) * 18, lines[i], 13, 0, 0, 1, 0);
}

static int finish(cairo_surface_t *s, const char *what, char *err)
{
    cairo_surface_finish(s);
    cairo_status_t st = cairo_surface_status(s);
    cairo_surface_destroy(s);
    if (st != CAIRO_STATUS_SUCCESS)
        return err_setf(err, JB_ERR_IO, "%s: cannot draw the chart: %s", what,
                        cairo_status_to_string(st));
    return 0;
}

int chart_render(const char *dir, const char *base, double w, double h,
                 void (*draw)(cairo_t *cr, double w, double h, void *ctx), void *ctx, char *err)
{
    char path[FS_PATH_MAX], tmp[FS_PATH_MAX], name[256];
    const char *ext[] = {"svg", "png"};
    for (int k = 0; k < 2; k++) {
        snprintf(name, sizeof name, "%s.%s", base, ext[k]);
        if (fs_path_join(path, sizeof path, dir, name) ||
            (size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
            return err_setf(err, JB_ERR_USAGE, "%s: path too long", dir);
        cairo_surface_t *s = k == 0
                                 ? cairo_svg_surface_create(tmp, w, h)
                                 : cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)w, (int)h);
        cairo_t *cr = cairo_create(s);
        draw(cr, w, h, ctx);
        cairo_status_t st = cairo_status(cr);
        cairo_destroy(cr);
        if (st != CAIRO_STATUS_SUCCESS) {
            cairo_surface_destroy(s);
            remove(tmp);
            return err_setf(err, JB_ERR_IO, "%s: cannot draw the chart: %s", path,
                            cairo_status_to_string(st));
        }
        if (k == 1) {
            st = cairo_surface_write_to_png(s, tmp);
            if (st != CAIRO_STATUS_SUCCESS) {
                cairo_surface_destroy(s);
                remove(tmp);
                return err_setf(err, JB_ERR_IO, "%s: cannot write: %s", tmp,
                                cairo_status_to_string(st));
            }
        }
        int rc = finish(s, tmp, err);
        if (rc) {
            remove(tmp);
            return rc;
        }
        if (rename(tmp, path)) {
            int e = errno;
            remove(tmp);
            return err_setf(err, fs_errno_code(e), "%s: cannot rename into place: %s", path,
                            strerror(e));
        }
    }
    return 0;
}
