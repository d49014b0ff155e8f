#include "common/str.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Narrows [s, s+len) to the part between leading and trailing white space. */
static void span_trim(const char **s, size_t *len)
{
    if (*len == (size_t)-1)
        *len = strlen(*s);
    while (*len && is_space(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && is_space((*s)[*len - 1]))
        (*len)--;
}

int str_to_u64(const char *s, size_t len, uint64_t *out)
{
    if (!s)
        return JB_ERR_FORMAT;
    span_trim(&s, &len);
    if (len == 0)
        return JB_ERR_FORMAT;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return JB_ERR_FORMAT;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return JB_ERR_FORMAT;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int str_to_i64(const char *s, size_t len, int64_t *out)
{
    if (!s)
        return JB_ERR_FORMAT;
    span_trim(&s, &len);
    int neg = 0;
    if (len && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        s++;
        len--;
    }
    uint64_t u;
    int rc = str_to_u64(s, len, &u);
    if (rc)
        return rc;
    if (len && is_space(s[0]))
        return JB_ERR_FORMAT; /* "- 5" */
    if (neg) {
        if (u > (uint64_t)INT64_MAX + 1)
            return JB_ERR_FORMAT;
        *out = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
    } else {
        if (u > (uint64_t)INT64_MAX)
            return JB_ERR_FORMAT;
        *out = (int64_t)u;
    }
    return 0;
}

int str_to_double(const char *s, size_t len, double *out)
{
    if (!s)
        return JB_ERR_FORMAT;
    span_trim(&s, &len);
    if (len == 0 || len > 64)
        return JB_ERR_FORMAT;
    char tmp[65];
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    /* strtod accepts hex floats, "inf" and "nan"; only plain decimals pass. */
    for (size_t i = 0; i < len; i++) {
        char c = tmp[i];
        if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'))
            return JB_ERR_FORMAT;
    }
    char *end = NULL;
    errno = 0;
    double v = strtod(tmp, &end);
    if (end != tmp + len || errno == ERANGE || !isfinite(v))
        return JB_ERR_FORMAT;
    *out = v;
    return 0;
}

int str_to_int_range(const char *s, int min, int max, int *out)
{
    int64_t v;
    if (str_to_i64(s, (size_t)-1, &v) || v < min || v > max)
        return JB_ERR_USAGE;
    *out = (int)v;
    return 0;
}

size_t str_lcpy(char *dst, const char *src, size_t size)
{
    size_t n = strlen(src);
    if (size) {
        size_t c = n < size - 1 ? n : size - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

size_t str_lcat(char *dst, const char *src, size_t size)
{
    size_t d = strnlen(dst, size);
    if (d == size)
        return size + strlen(src);
    return d + str_lcpy(dst + d, src, size - d);
}

char *str_trim(char *s)
{
    size_t len = strlen(s);
    while (len && is_space(s[len - 1]))
        s[--len] = '\0';
    size_t i = 0;
    while (is_space(s[i]))
        i++;
    if (i)
        memmove(s, s + i, len - i + 1);
    return s;
}

int str_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int str_has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

char *str_ndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = malloc(len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *str_dup(const char *s)
{
    return str_ndup(s, (size_t)-1);
}

size_t str_utf8_seq_len(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    if (len == 0)
        return 0;
    unsigned c = p[0];
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0)
        n = 1, min = 0x80, c &= 0x1F;
    else if ((c & 0xF0) == 0xE0)
        n = 2, min = 0x800, c &= 0x0F;
    else if ((c & 0xF8) == 0xF0)
        n = 3, min = 0x10000, c &= 0x07;
    else
        return 0;
    if (n > len - 1)
        return 0; /* truncated sequence */
    for (size_t k = 1; k <= n; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (p[k] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0; /* overlong, out of range, surrogate */
    return n + 1;
}

int str_utf8_valid(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t n = str_utf8_seq_len(s + i, len - i);
        if (!n)
            return 0;
        i += n;
    }
    return 1;
}

int str_utf8_sanitize(const char *s, size_t len, struct buf *out)
{
    size_t i = 0, run = 0;
    while (i < len) {
        size_t n = str_utf8_seq_len(s + i, len - i);
        if (n) {
            i += n;
            continue;
        }
        if (buf_append(out, s + run, i - run) || buf_puts(out, "\xEF\xBF\xBD"))
            return JB_ERR_NOMEM;
        i++;
        run = i;
    }
    return buf_append(out, s + run, len - run);
}

static uint64_t hash_finish(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

uint64_t str_hash(uint64_t seed, const void *p, size_t n)
{
    const unsigned char *c = p;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001b3ull;
    }
    return hash_finish(h);
}

uint64_t str_hash_u64(uint64_t seed, uint64_t x)
{
    return hash_finish(x ^ seed);
}

uint64_t str_hash_seed(const void *where)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)(uintptr_t)where;
    return str_hash(0x9e3779b97f4a7c15ull, &x, sizeof x);
}
