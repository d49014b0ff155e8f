/*
 * chart.h — the few drawing pieces every joulebench chart shares, on cairo:
 * a frame with title and subtitle, "nice" axis ticks (1, 2 or 5 × 10^k),
 * grid lines, labels, error bars, hatching for estimated data, legends,
 * and rendering one drawing to both PNG and SVG.
 *
 * Coordinates: cairo user units, origin top left, y down; one unit is one
 * PNG pixel and one SVG point. Data values map into the plot area through
 * chart_px()/chart_py().
 *
 * Ownership: struct chart is the caller's and borrows the cairo_t.
 */
#ifndef JB_REPORT_CHART_H
#define JB_REPORT_CHART_H

#include <cairo.h>
#include <stddef.h>

struct rgb {
    double r, g, b;
};

/* Fixed colours: per domain (enum jb_domain), per model (cycled). */
struct rgb chart_domain_color(int domain);
struct rgb chart_series_color(size_t i);

struct chart {
    cairo_t *cr;
    double w, h;
    double left, top, right, bottom; /* plot area in user units */
    double x0, x1, y0, y1;           /* data range mapped onto it */
};

/* White page, the title (bold, large) and a subtitle under it; sets the
 * plot area with room for axis labels and, when legend_w > 0, a legend
 * column of that width on the right. */
void chart_begin(struct chart *c, cairo_t *cr, double w, double h, const char *title,
                 const char *subtitle, double legend_w);

double chart_px(const struct chart *c, double x);
double chart_py(const struct chart *c, double y);

void chart_set_color(cairo_t *cr, struct rgb col, double alpha);
/* Text anchored at (x, y): ax 0 left, 0.5 centre, 1 right; ay 0 top, 0.5
 * middle, 1 bottom (of the ink of capital letters). angle in radians. */
void chart_text(cairo_t *cr, double x, double y, const char *s, double size, int bold, double ax,
                double ay, double angle);
double chart_text_width(cairo_t *cr, const char *s, double size, int bold);
/* Copies s into dst, cut with an ellipsis so it fits max_w at that size. */
void chart_fit_text(cairo_t *cr, char *dst, size_t dsize, const char *s, double size, int bold,
                    double max_w);

/* Ticks covering [lo, hi]: the first tick, the step and the count (2-12).
 * target is the number of intervals wanted. */
int chart_nice_ticks(double lo, double hi, int target, double *first, double *step);
/* A tick label with as many decimals as the step needs. */
void chart_fmt_tick(char *dst, size_t size, double v, double step);

/* Y axis: grid lines, tick labels, the rotated label. Extends y1 up to the
 * next tick. */
void chart_y_axis(struct chart *c, const char *label, int target_ticks);
/* X axis for numeric data, same contract. */
void chart_x_axis(struct chart *c, const char *label, int target_ticks);
/* The plot frame's left and bottom lines. */
void chart_frame(struct chart *c);

/* Diagonal hatching inside a rectangle, in colour col. */
void chart_hatch(cairo_t *cr, double x, double y, double w, double h, struct rgb col);
/* An error bar from (x, y_lo) to (x, y_hi) with caps, in user units; and
 * horizontal. */
void chart_error_v(cairo_t *cr, double x, double y_lo, double y_hi, double cap);
void chart_error_h(cairo_t *cr, double y, double x_lo, double x_hi, double cap);

/* A legend column: chart_legend_item() draws one swatch + label at *y and
 * advances it. kind: 0 filled box, 1 hatched box, 2 line, 3 dashed line,
 * 4 pale band, 5 hollow marker, 6 filled marker. */
void chart_legend_item(struct chart *c, double *y, struct rgb col, int kind, const char *label);

/* A centred message over the plot area (no data to draw). */
void chart_message(struct chart *c, const char *msg, const char *detail);
/* A footnote at the bottom left of the page (wrapped, up to 3 lines). */
void chart_note(struct chart *c, const char *note);

/* Draws with draw(cr, w, h, ctx) twice: dir/base.svg and dir/base.png,
 * each written to a temporary name and renamed into place. */
int chart_render(const char *dir, const char *base, double w, double h,
                 void (*draw)(cairo_t *cr, double w, double h, void *ctx), void *ctx, char *err);

#endif
