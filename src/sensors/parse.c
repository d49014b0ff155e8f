#include "sensors/parse.h"

#include <math.h>
#include <string.h>

#include "common/str.h"
#include "joulebench/joulebench.h"

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Trims white space from both ends of [*b, *e). */
static void trim(const char **b, const char **e)
{
    while (*b < *e && is_space(**b))
        (*b)++;
    while (*e > *b && is_space((*e)[-1]))
        (*e)--;
}

/* An unsigned number, "0x1f" or "31", filling exactly [b, e). */
static int parse_uint(const char *b, const char *e, uint64_t *out)
{
    uint64_t v = 0;
    if (e - b > 2 && b[0] == '0' && (b[1] == 'x' || b[1] == 'X')) {
        b += 2;
        if (e - b > 16)
            return JB_ERR_FORMAT;
        for (; b < e; b++) {
            int h = hex_val(*b);
            if (h < 0)
                return JB_ERR_FORMAT;
            v = v << 4 | (uint64_t)h;
        }
        *out = v;
        return 0;
    }
    if (b == e)
        return JB_ERR_FORMAT;
    for (const char *c = b; c < e; c++)
        if (!is_digit(*c))
            return JB_ERR_FORMAT;
    return str_to_u64(b, (size_t)(e - b), out) ? JB_ERR_FORMAT : 0;
}

int parse_perf_event(const char *buf, size_t len, struct parse_term *terms, size_t max, size_t *n)
{
    const char *p = buf, *end = buf + len;
    trim(&p, &end);
    if (p == end)
        return JB_ERR_FORMAT;
    size_t count = 0;
    struct parse_term tmp[8];
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *te = comma ? comma : end;
        const char *eq = memchr(p, '=', (size_t)(te - p));
        const char *nb = p, *ne = eq ? eq : te;
        trim(&nb, &ne);
        if (nb == ne || (size_t)(ne - nb) >= sizeof tmp[0].name)
            return JB_ERR_FORMAT;
        for (const char *c = nb; c < ne; c++)
            if (!(is_digit(*c) || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  *c == '_'))
                return JB_ERR_FORMAT;
        if (count >= max || count >= sizeof tmp / sizeof tmp[0])
            return JB_ERR_FORMAT;
        struct parse_term *t = &tmp[count];
        memcpy(t->name, nb, (size_t)(ne - nb));
        t->name[ne - nb] = '\0';
        t->value = 1;
        if (eq) {
            const char *vb = eq + 1, *ve = te;
            trim(&vb, &ve);
            if (vb == ve || parse_uint(vb, ve, &t->value))
                return JB_ERR_FORMAT;
        }
        count++;
        if (!comma)
            break;
        p = comma + 1;
        if (p == end)
            return JB_ERR_FORMAT; /* trailing comma */
    }
    memcpy(terms, tmp, count * sizeof tmp[0]);
    *n = count;
    return 0;
}

int parse_perf_format(const char *buf, size_t len, int *word, unsigned *lo, unsigned *hi)
{
    const char *p = buf, *end = buf + len;
    trim(&p, &end);
    const char *colon = memchr(p, ':', (size_t)(end - p));
    if (!colon)
        return JB_ERR_FORMAT;
    int w;
    size_t nl = (size_t)(colon - p);
    if (nl == 6 && memcmp(p, "config", 6) == 0)
        w = 0;
    else if (nl == 7 && memcmp(p, "config1", 7) == 0)
        w = 1;
    else if (nl == 7 && memcmp(p, "config2", 7) == 0)
        w = 2;
    else
        return JB_ERR_FORMAT;
    const char *dash = memchr(colon + 1, '-', (size_t)(end - colon - 1));
    uint64_t a, b;
    if (str_to_u64(colon + 1, (size_t)((dash ? dash : end) - colon - 1), &a))
        return JB_ERR_FORMAT;
    b = a;
    if (dash && str_to_u64(dash + 1, (size_t)(end - dash - 1), &b))
        return JB_ERR_FORMAT;
    if (a > b || b > 63)
        return JB_ERR_FORMAT;
    *word = w;
    *lo = (unsigned)a;
    *hi = (unsigned)b;
    return 0;
}

int parse_perf_place(uint64_t *config, unsigned lo, unsigned hi, uint64_t value)
{
    if (lo > hi || hi > 63)
        return JB_ERR_FORMAT;
    unsigned width = hi - lo + 1;
    uint64_t mask = width == 64 ? UINT64_MAX : (((uint64_t)1 << width) - 1);
    if (value & ~mask)
        return JB_ERR_FORMAT;
    *config = (*config & ~(mask << lo)) | (value << lo);
    return 0;
}

int parse_perf_scale(const char *buf, size_t len, double *scale)
{
    double v;
    if (str_to_double(buf, len, &v) || !(v > 0) || !isfinite(v))
        return JB_ERR_FORMAT;
    *scale = v;
    return 0;
}

static int word_is(const char *b, const char *e, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(e - b) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != w[i])
            return 0;
    }
    return 1;
}

int parse_perf_unit(const char *buf, size_t len, double *joules_per_unit)
{
    const char *b = buf, *e = buf + len;
    trim(&b, &e);
    if (b == e)
        return JB_ERR_FORMAT;
    if (word_is(b, e, "joules") || word_is(b, e, "j"))
        *joules_per_unit = 1.0;
    else if (word_is(b, e, "millijoules") || word_is(b, e, "mj"))
        *joules_per_unit = 1e-3;
    else if (word_is(b, e, "microjoules") || word_is(b, e, "uj"))
        *joules_per_unit = 1e-6;
    else
        return JB_ERR_UNSUPPORTED;
    return 0;
}

static int read_small_uint(const char **p, const char *end, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    while (*p < end && is_digit(**p)) {
        x = x * 10 + (uint64_t)(**p - '0');
        if (x > (1u << 20))
            return JB_ERR_FORMAT;
        (*p)++;
    }
    if (*p == s)
        return JB_ERR_FORMAT;
    *v = x;
    return 0;
}

int parse_cpulist(const char *buf, size_t len, int *cpus, size_t max, size_t *n)
{
    const char *p = buf, *end = buf + len;
    trim(&p, &end);
    if (p == end)
        return JB_ERR_FORMAT;
    size_t count = 0;
    for (;;) {
        uint64_t a, b;
        if (read_small_uint(&p, end, &a))
            return JB_ERR_FORMAT;
        b = a;
        if (p < end && *p == '-') {
            p++;
            if (read_small_uint(&p, end, &b) || b < a)
                return JB_ERR_FORMAT;
        }
        for (uint64_t c = a; c <= b; c++) {
            if (count >= max)
                return JB_ERR_FORMAT;
            cpus[count++] = (int)c;
        }
        if (p == end)
            break;
        if (*p != ',')
            return JB_ERR_FORMAT;
        p++;
    }
    *n = count;
    return 0;
}

int parse_rapl_zone(const char *buf, size_t len, char *prefix, size_t prefix_size, unsigned *idx,
                    int *depth)
{
    const char *colon = memchr(buf, ':', len);
    if (!colon || colon == buf || (size_t)(colon - buf) >= prefix_size)
        return JB_ERR_FORMAT;
    for (const char *c = buf; c < colon; c++)
        if (!((*c >= 'a' && *c <= 'z') || is_digit(*c) || *c == '-' || *c == '_'))
            return JB_ERR_FORMAT;
    const char *p = colon + 1, *end = buf + len;
    unsigned got[2];
    int d = 0;
    for (;;) {
        if (d >= 2)
            return JB_ERR_FORMAT;
        uint64_t v;
        if (read_small_uint(&p, end, &v))
            return JB_ERR_FORMAT;
        got[d++] = (unsigned)v;
        if (p == end)
            break;
        if (*p != ':')
            return JB_ERR_FORMAT;
        p++;
    }
    memcpy(prefix, buf, (size_t)(colon - buf));
    prefix[colon - buf] = '\0';
    for (int i = 0; i < d; i++)
        idx[i] = got[i];
    *depth = d;
    return 0;
}

/* Reads the next white-space separated number of a /proc/stat line. */
static int next_field(const char **p, const char *end, uint64_t *v)
{
    while (*p < end && (**p == ' ' || **p == '\t'))
        (*p)++;
    const char *s = *p;
    uint64_t x = 0;
    while (*p < end && is_digit(**p)) {
        unsigned d = (unsigned)(**p - '0');
        if (x > (UINT64_MAX - d) / 10)
            return JB_ERR_FORMAT;
        x = x * 10 + d;
        (*p)++;
    }
    if (*p == s)
        return JB_ERR_FORMAT;
    *v = x;
    return 0;
}

int parse_proc_stat(const char *buf, size_t len, uint64_t *busy, uint64_t *total, int *ncpu)
{
    const char *p = buf, *end = buf + len;
    if (len < 4 || memcmp(p, "cpu", 3) != 0 || (p[3] != ' ' && p[3] != '\t'))
        return JB_ERR_FORMAT;
    p += 3;
    /* user nice system idle iowait irq softirq steal: the first four are
     * always there; later kernels added the rest. */
    uint64_t f[8] = {0};
    int nf = 0;
    while (nf < 8) {
        const char *save = p;
        if (next_field(&p, end, &f[nf])) {
            p = save;
            break;
        }
        nf++;
    }
    if (nf < 4)
        return JB_ERR_FORMAT;
    uint64_t b = f[0] + f[1] + f[2] + f[5] + f[6];
    uint64_t t = b + f[3] + f[4] + f[7];
    if (b < f[0] || t < b) /* overflow: garbage */
        return JB_ERR_FORMAT;
    int cpus = 0;
    const char *line = memchr(p, '\n', (size_t)(end - p));
    while (line && line + 1 < end) {
        line++;
        if (end - line > 3 && memcmp(line, "cpu", 3) == 0 && is_digit(line[3]))
            cpus++;
        else
            break;
        line = memchr(line, '\n', (size_t)(end - line));
    }
    *busy = b;
    *total = t;
    *ncpu = cpus;
    return 0;
}
