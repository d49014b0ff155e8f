/* sampler.c — choosing the next token from logits (infer.h): greedy, or
 * softmax with temperature and optional top-p, from a seeded generator. */
#include <math.h>
#include <stdlib.h>

#include "infer/infer.h"

/* splitmix64: spreads any seed (0 included) over the xorshift state. */
static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

void sampler_init(struct sampler *s, double temperature, double top_p, uint64_t seed)
{
    s->temperature = temperature;
    s->top_p = top_p;
    s->state = splitmix64(seed);
    if (s->state == 0)
        s->state = 0x2545F4914F6CDD1Dull;
}

/* xorshift64*, top 53 bits as a double in [0, 1). */
static double next_uniform(struct sampler *s)
{
    uint64_t x = s->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->state = x;
    return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}

/* The largest logit, lowest id on ties; NaN never wins unless every
 * logit is NaN (then id 0). */
static int argmax(const float *logits, int n)
{
    int best = -1;
    float bv = -INFINITY;
    for (int i = 0; i < n; i++)
        if (logits[i] > bv || (best < 0 && logits[i] == -INFINITY)) {
            bv = logits[i];
            best = i;
        }
    return best < 0 ? 0 : best;
}

struct cand {
    double p;
    int id;
};

/* Descending probability, then ascending id: a total order, so the same
 * logits and seed always give the same token. */
static int cand_cmp(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->p != y->p)
        return x->p > y->p ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Draws from the first k candidates' weights (total `total`). */
static int draw(struct sampler *s, const struct cand *c, int k, double total)
{
    double r = next_uniform(s) * total, acc = 0.0;
    for (int i = 0; i < k; i++) {
        acc += c[i].p;
        if (r < acc)
            return c[i].id;
    }
    return c[k - 1].id; /* rounding left r at the very end */
}

/* Softmax weights exp((l - max) / T), NaN and -inf logits weighing
 * nothing. Top-p keeps the smallest set of the most likely tokens whose
 * weights reach top_p of the total (top_p 0: the most likely alone, as
 * llama.cpp keeps one). Only candidates with weight >= (1 - top_p) /
 * (n - 1) of the total can be in it (at most n - 1 others together weigh
 * less than 1 - top_p), so only those are sorted. Without top-p the draw
 * walks the ids in order. A temperature so small that 1 / T overflows is
 * greedy. Out of memory (a vocabulary-sized array), the sample falls back
 * to greedy rather than fail a generation. */
int sampler_sample(struct sampler *s, const float *logits, int n)
{
    if (n <= 0)
        return -1;
    int top = argmax(logits, n);
    double inv_t = 1.0 / s->temperature;
    if (!(s->temperature > 0.0) || !isfinite(inv_t) || n == 1 || !isfinite(logits[top]) ||
        s->top_p <= 0.0)
        return top;
    struct cand *c = malloc((size_t)n * sizeof(*c));
    if (!c)
        return top;
    double max = logits[top], sum = 0.0;
    for (int i = 0; i < n; i++) {
        double d = (double)logits[i] - max;
        double p = d == d && d > -INFINITY ? exp(d * inv_t) : 0.0;
        c[i] = (struct cand){p, i};
        sum += p;
    }
    int id;
    if (s->top_p < 1.0) {
        double cutoff = (1.0 - s->top_p) / (double)(n - 1) * sum;
        int k = 0;
        for (int i = 0; i < n; i++)
            if ((c[i].p >= cutoff && c[i].p > 0.0) || i == top)
                c[k++] = c[i];
        qsort(c, (size_t)k, sizeof(*c), cand_cmp);
        double cum = 0.0, limit = s->top_p * sum;
        int keep = k;
        for (int i = 0; i < k; i++) {
            cum += c[i].p;
            if (cum >= limit) {
                keep = i + 1;
                break;
            }
        }
        id = draw(s, c, keep, cum);
    } else {
        id = draw(s, c, n, sum);
    }
    free(c);
    return id;
}
