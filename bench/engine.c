/*
 * bench/engine.c — the built-in engine's speed against the machine's memory
 * bandwidth.
 *
 * Decode reads every weight once per token, so its ceiling is bandwidth /
 * bytes per token (the roofline). This program measures, in one run and
 * with the same number of threads: the STREAM-style triad bandwidth (a = b
 * + s * c over arrays far larger than the caches, 24 bytes per element
 * counted as STREAM does, best of three passes) right before every timed
 * rep, then that rep's prefill and decode tokens per second. Each rep's
 * decode is a fraction of the roofline from the bandwidth taken next to
 * it, and the median of those fractions is the figure: on a shared machine
 * the bandwidth moves by a quarter from one minute to the next, and a
 * single measurement at the start would move every fraction with it.
 *
 * Models: three synthetic files of about 0.5 B parameters, written once to
 * the cache folder (--dir): Q8_0 in the shape of Qwen2.5-0.5B; every matrix
 * in Q4_K (rows of 1024 and 4096, since K-quant rows are multiples of
 * 256); and Qwen2.5-0.5B in llama.cpp's Q4_K_M mix, the kind of file
 * Ollama's default small Qwen tags are (its rows of 896 fall back to Q5_0
 * and Q8_0).
 * Or any GGUF with --model (repeatable).
 *
 * Right before every rep too, it measures what the kernels themselves do
 * with the weights already in cache: the same threads run the one-token
 * product over a slice of one of the model's own matrices of each type and
 * row length, a slice per thread that fits in L2, read as the engine reads
 * it (from a packed copy where the kernels have a layout for the type),
 * and the rates are combined by the model's bytes per kind. Decode cannot read weights faster than
 * that, so when it is below the triad the roofline is out of reach on this machine, whatever the
 * memory does (a 2-vCPU VM whose vCPUs share one core, for one), and decode's fraction of it says
 * how much the memory costs.
 *
 * It also prints what one empty job of the thread pool costs, start to end:
 * the forward pass hands the pool about five jobs a layer per token.
 *
 *   bench_engine [--threads N] [--wait spin|sleep] [--prompt N] [--decode N]
 *                [--reps N] [--dir DIR] [--model FILE]... [--json]
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/fs.h"
#include "common/stats.h"
#include "common/str.h"
#include "common/timeutil.h"
#include "infer/infer.h"
#include "infer/gguf.h"
#include "infer/kernels.h"
#include "infer/pool.h"
#include "infer/quant.h"
#include "infer/synth.h"

#define MAX_MODELS 8
#define MAX_REPS 16

struct opts {
    int threads;
    enum infer_wait wait;
    int prompt, decode, reps;
    const char *dir;
    const char *models[MAX_MODELS];
    int n_models;
    int json;
    double pool_job_s; /* measured: one empty pool_run */
};

/* ---- memory bandwidth ---- */

struct triad_job {
    double *a, *b, *c;
    size_t n;
    double s;
};

/* Each thread owns a contiguous slice, the same slice on every pass, so the
 * pages it touches first are the ones it streams (NUMA-friendly). */
static void triad_worker(void *ctx, int thread, int n_threads)
{
    struct triad_job *j = ctx;
    size_t per = (j->n + (size_t)n_threads - 1) / (size_t)n_threads;
    size_t lo = per * (size_t)thread, hi = lo + per < j->n ? lo + per : j->n;
    double *restrict a = j->a;
    const double *restrict b = j->b, *restrict c = j->c;
    for (size_t i = lo; i < hi; i++)
        a[i] = b[i] + j->s * c[i];
}

static void init_worker(void *ctx, int thread, int n_threads)
{
    struct triad_job *j = ctx;
    size_t per = (j->n + (size_t)n_threads - 1) / (size_t)n_threads;
    size_t lo = per * (size_t)thread, hi = lo + per < j->n ? lo + per : j->n;
    for (size_t i = lo; i < hi; i++) {
        j->a[i] = 0.0;
        j->b[i] = 1.0;
        j->c[i] = 2.0;
    }
}

/* The arrays, 256 MiB each, made once for the whole run. */
static int triad_new(struct pool *p, struct triad_job *j, char *err)
{
    j->n = (size_t)32 << 20; /* doubles */
    j->s = 3.0;
    j->a = malloc(j->n * sizeof(double));
    j->b = malloc(j->n * sizeof(double));
    j->c = malloc(j->n * sizeof(double));
    if (!j->a || !j->b || !j->c) {
        free(j->a);
        free(j->b);
        free(j->c);
        return err_setf(err, JB_ERR_NOMEM, "out of memory for the bandwidth arrays (768 MiB)");
    }
    pool_run(p, init_worker, j);
    return 0;
}

static void triad_free(struct triad_job *j)
{
    free(j->a);
    free(j->b);
    free(j->c);
}

/* Bytes per second of the best of three passes after one that warms up
 * (STREAM's convention: 3 x 8 bytes per element, write-allocate traffic
 * not counted). Every pass writes the same a = b + 3c, which is checked,
 * so the loops cannot be optimised away. */
static double triad_measure(struct pool *p, struct triad_job *j)
{
    double best = 0.0;
    for (int pass = 0; pass < 4; pass++) {
        double t0 = jb_clock_s();
        pool_run(p, triad_worker, j);
        double dt = jb_clock_s() - t0;
        double v = 24.0 * (double)j->n / dt;
        if (pass > 0 && v > best)
            best = v;
    }
    return j->a[j->n / 2] == 1.0 + 3.0 * 2.0 ? best : NAN;
}

/* ---- the thread pool ---- */

static void empty_job(void *ctx, int thread, int n_threads)
{
    (void)ctx;
    (void)thread;
    (void)n_threads;
}

/* The cost of one pool_run with nothing to do: what the start and end of
 * every job of the forward pass cost (about five jobs a layer per token).
 * The median of five rounds of 2000, after 1000 untimed ones. */
static double pool_job_measure(struct pool *p)
{
    for (int i = 0; i < 1000; i++)
        pool_run(p, empty_job, NULL);
    double round_s[5];
    for (int k = 0; k < 5; k++) {
        double t0 = jb_clock_s();
        for (int i = 0; i < 2000; i++)
            pool_run(p, empty_job, NULL);
        round_s[k] = (jb_clock_s() - t0) / 2000.0;
    }
    return stats_percentile(round_s, 5, 50.0);
}

/* ---- the kernels' own rate ---- */

#define KERN_SLICE_BYTES ((size_t)192 << 10) /* per thread: in L2, not in L1 */
#define KERN_PASS_BYTES ((size_t)128 << 20)  /* per thread per timed run */

struct kern_job {
    enum ggml_type type;
    size_t n, row_bytes; /* the sample matrix */
    size_t region;       /* its first rows, which the threads share out */
    size_t rows;         /* per thread */
    double read_row;     /* bytes a row is read as: the copy's share where packed */
    const uint8_t *w;    /* the rows in place, or */
    const uint8_t *wp;   /* the region's packed copy, as the engine reads it */
    const void *act;
    float *y; /* region rows per thread */
    int passes;
};

/* Thread t multiplies its own rows of the region (wrapping round a small
 * matrix) by the one activation row, passes times over. */
static void kern_worker(void *ctx, int thread, int n_threads)
{
    (void)n_threads;
    struct kern_job *j = ctx;
    size_t r0 = (size_t)thread * j->rows % j->region;
    if (r0 + j->rows > j->region)
        r0 = j->region - j->rows;
    float *y = j->y + (size_t)thread * j->region; /* a region's worth a thread */
    for (int k = 0; k < j->passes; k++) {
        if (j->wp)
            kern_matmul_packed(j->type, j->n, j->wp, r0, r0 + j->rows, j->act, 0, 1, y, 0);
        else
            kern_matmul(j->type, j->n, j->w, j->row_bytes, r0, r0 + j->rows, j->act, 0, 1, y, 0);
    }
}

/* Weight bytes per second of one type's decode product with the weights
 * in cache, read as the engine reads them (from a packed copy where the
 * kernels have a layout for the type, when the engine packed: packs): the
 * best of three runs after a warm-up one, or NAN when memory runs out. */
static double kern_rate(struct pool *p, const struct gguf_tensor *t, int packs)
{
    int threads = pool_threads(p);
    size_t n_rows = (size_t)t->ne[1];
    struct kern_job j = {.type = t->type, .n = (size_t)t->ne[0]};
    j.row_bytes = quant_row_bytes(t->type, t->ne[0]);
    j.rows = KERN_SLICE_BYTES / j.row_bytes;
    j.rows = j.rows < 1 ? 1 : j.rows > n_rows ? n_rows : j.rows;
    j.region = (size_t)threads * j.rows < n_rows ? (size_t)threads * j.rows : n_rows;
    j.w = t->data;
    j.read_row = (double)j.row_bytes;
    uint8_t *packed = NULL;
    if (packs && j.rows >= KERN_PACK_ROWS) {
        j.rows = j.rows / KERN_PACK_ROWS * KERN_PACK_ROWS;
        size_t region = j.region / KERN_PACK_ROWS * KERN_PACK_ROWS;
        size_t bytes = kern_pack_bytes(t->type, j.n, region);
        if (bytes && (packed = aligned_alloc(64, (bytes + 63) / 64 * 64))) {
            kern_pack(t->type, j.n, t->data, j.row_bytes, region, packed);
            j.region = region;
            j.wp = packed;
            j.read_row = (double)bytes / (double)region;
        }
    }
    j.passes = (int)(KERN_PASS_BYTES / (j.rows * j.row_bytes)) + 1;
    float *x = malloc(j.n * sizeof *x);
    void *act = malloc(kern_act_row_bytes(t->type, j.n));
    j.y = malloc((size_t)threads * j.region * sizeof *j.y);
    double best = NAN;
    if (x && act && j.y) {
        uint64_t st = 7;
        for (size_t i = 0; i < j.n; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            x[i] = (float)((double)(st >> 11) / 9007199254740992.0 - 0.5);
        }
        kern_quantize_act(t->type, x, act, j.n);
        j.act = act;
        best = 0.0;
        for (int run = 0; run < 4; run++) {
            double t0 = jb_clock_s();
            pool_run(p, kern_worker, &j);
            double v =
                (double)threads * (double)j.rows * j.read_row * j.passes / (jb_clock_s() - t0);
            if (run > 0 && v > best)
                best = v;
        }
    }
    free(packed);
    free(x);
    free(act);
    free(j.y);
    return best;
}

/* The matrices a decoded token reads whole: every layer's 2-D weights and
 * the output matrix (the embedding when there is none; otherwise the
 * embedding gives one row). */
static int decode_matrix(const struct gguf_file *f, const struct gguf_tensor *t)
{
    if (t->n_dims != 2 || !t->data)
        return 0;
    if (t->name.len > 4 && memcmp(t->name.ptr, "blk.", 4) == 0)
        return 1;
    if (gguf_str_eq(t->name, "output.weight"))
        return 1;
    return gguf_str_eq(t->name, "token_embd.weight") && !gguf_find_tensor(f, "output.weight");
}

#define MAX_KTYPES 12 /* (type, row length) pairs */

struct kern_mix {
    struct fs_map map; /* the model file again: the samples point into it */
    struct gguf_file f;
    int packs; /* the engine packed what the kernels have a layout for */
    int n_kinds;
    enum ggml_type type[MAX_KTYPES];
    uint64_t n[MAX_KTYPES];                       /* row length */
    const struct gguf_tensor *sample[MAX_KTYPES]; /* its largest matrix of the pair */
    double bytes[MAX_KTYPES];
    double rate[MAX_KTYPES][MAX_REPS]; /* bytes/s, weights in cache, per rep */
    double total[MAX_REPS];            /* the mix: all bytes / the time they take */
};

/* The types and row lengths of the matrices a token reads (short rows
 * cost more per byte: a Q4_K row of 1024 is four blocks), their bytes, and
 * one matrix of each pair to measure on. packs: the engine's model packed
 * what the kernels have a layout for (its packed_bytes is not 0; it is 0
 * with JOULEBENCH_PACK=0, or when nothing here has a layout), so the bench
 * need not know how the engine decides. */
static int kern_mix_open(const char *path, int packs, struct kern_mix *mx, char *err)
{
    memset(mx, 0, sizeof *mx);
    mx->packs = packs;
    int rc = gguf_open(path, &mx->map, &mx->f, err);
    if (rc)
        return rc;
    for (uint64_t i = 0; i < mx->f.n_tensors; i++) {
        const struct gguf_tensor *t = &mx->f.tensors[i];
        if (!decode_matrix(&mx->f, t) || !kern_supported(t->type))
            continue;
        int k = 0;
        while (k < mx->n_kinds && (mx->type[k] != t->type || mx->n[k] != t->ne[0]))
            k++;
        if (k == mx->n_kinds) {
            if (k == MAX_KTYPES)
                continue;
            mx->type[k] = t->type;
            mx->n[k] = t->ne[0];
            mx->n_kinds++;
        }
        /* as the engine reads it: at its packed copy's size where packed */
        size_t packed = mx->packs ? kern_pack_bytes(t->type, t->ne[0], t->ne[1]) : 0;
        mx->bytes[k] += packed ? (double)packed : (double)t->size_bytes;
        if (!mx->sample[k] || t->size_bytes > mx->sample[k]->size_bytes)
            mx->sample[k] = t;
    }
    return 0;
}

static void kern_mix_close(struct kern_mix *mx)
{
    gguf_close(&mx->map, &mx->f);
}

/* Rep rep's rate of each type and of the whole mix, taken right before
 * the rep as the triad is: this machine's speed moves from one minute to
 * the next too. */
static void kern_mix_measure(struct kern_mix *mx, struct pool *p, int rep)
{
    double bytes = 0.0, secs = 0.0;
    for (int k = 0; k < mx->n_kinds; k++) {
        mx->rate[k][rep] = kern_rate(p, mx->sample[k], mx->packs);
        bytes += mx->bytes[k];
        secs += mx->bytes[k] / mx->rate[k][rep];
    }
    mx->total[rep] = secs > 0.0 ? bytes / secs : NAN;
}

/* ---- models ---- */

/* The default models: synth's "0.5b" preset (Qwen2.5-0.5B's shape) with
 * the given type, or with dim, heads and ffn changed to multiples of 256. */
struct default_model {
    const char *file;
    enum ggml_type type;
    int q4_k_m;
    int dim, n_heads, ffn_dim; /* 0: the preset's */
    const char *what;
};

static const struct default_model default_models[] = {
    {"synth-0.5b-Q8_0.gguf", GGML_TYPE_Q8_0, 0, 0, 0, 0, "Qwen2.5-0.5B shape, every matrix Q8_0"},
    {"synth-0.5b-d1024-Q4_K.gguf", GGML_TYPE_Q4_K, 0, 1024, 16, 4096,
     "dim 1024, ffn 4096: every matrix Q4_K"},
    {"synth-0.5b-Q4_K_M.gguf", GGML_TYPE_Q4_K, 1, 0, 0, 0,
     "Qwen2.5-0.5B shape in llama.cpp's Q4_K_M mix: rows of 896 are no K-quant rows, so Q5_0, "
     "Q8_0 for the embedding and some attn_v, Q4_K and Q6_K for ffn_down"},
};
#define N_DEFAULT_MODELS (int)(sizeof default_models / sizeof default_models[0])

static int ensure_synth(const char *dir, const struct default_model *d, char *path, size_t size,
                        char *err)
{
    int rc = fs_mkdir_p(dir, err);
    if (rc)
        return rc;
    if ((rc = fs_path_join(path, size, dir, d->file)))
        return err_setf(err, rc, "%s/%s: path too long", dir, d->file);
    if (fs_exists(path))
        return 0;
    struct synth_options o;
    if ((rc = synth_preset("0.5b", &o)))
        return err_setf(err, rc, "synth has no 0.5b preset");
    o.type = d->type;
    o.q4_k_m = d->q4_k_m;
    o.seed = 1;
    if (d->dim) {
        o.dim = d->dim;
        o.n_heads = d->n_heads;
        o.ffn_dim = d->ffn_dim;
    }
    fprintf(stderr, "bench_engine: writing %s (once; later runs reuse it)\n", path);
    return synth_write(path, &o, err);
}

struct result {
    double prefill_tps[MAX_REPS], decode_tps[MAX_REPS];
    double bw[MAX_REPS];    /* the triad taken right before each rep, bytes/s */
    double frac[MAX_REPS];  /* each rep's decode against its own roofline */
    double kfrac[MAX_REPS]; /* and against its kernels' in-cache rate */
    int n;
};

static double max_of(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

static double min_of(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

static void print_result(const char *path, const char *what, const struct infer_model_info *in,
                         const struct opts *o, const struct result *r, const struct kern_mix *mx)
{
    double pre_med = stats_percentile(r->prefill_tps, (size_t)r->n, 50.0);
    double dec_med = stats_percentile(r->decode_tps, (size_t)r->n, 50.0);
    double bw_med = stats_percentile(r->bw, (size_t)r->n, 50.0);
    double frac_med = stats_percentile(r->frac, (size_t)r->n, 50.0);
    double kern_med = stats_percentile(mx->total, (size_t)r->n, 50.0);
    double kfrac_med = stats_percentile(r->kfrac, (size_t)r->n, 50.0);
    double type_med[MAX_KTYPES];
    for (int k = 0; k < mx->n_kinds; k++)
        type_med[k] = stats_percentile(mx->rate[k], (size_t)r->n, 50.0);
    double bytes = (double)in->decode_bytes;
    if (o->json) {
        printf("{\"model\":\"%s\",\"synthetic\":%s,\"file_type\":\"%s\",\"weight_type\":\"%s\","
               "\"n_params\":%llu,"
               "\"decode_bytes\":%llu,\"packed_bytes\":%llu,\"threads\":%d,\"wait\":\"%s\","
               "\"kernels\":\"%s\","
               "\"prompt_tokens\":%d,\"decode_tokens\":%d,\"reps\":%d,"
               "\"prefill_tps_median\":%.2f,\"prefill_tps_best\":%.2f,"
               "\"decode_tps_median\":%.2f,\"decode_tps_best\":%.2f,"
               "\"bandwidth_gbs_median\":%.2f,\"bandwidth_gbs_min\":%.2f,"
               "\"bandwidth_gbs_max\":%.2f,\"roofline_fraction_median\":%.3f,"
               "\"roofline_fraction_min\":%.3f,\"roofline_fraction_max\":%.3f,"
               "\"pool_job_us\":%.3f,\"kernel_gbs_median\":%.2f,"
               "\"kernel_fraction_median\":%.3f,\"kernel_gbs_by_type\":{",
               path, in->synthetic ? "true" : "false", in->file_type, in->weight_type,
               (unsigned long long)in->n_params, (unsigned long long)in->decode_bytes,
               (unsigned long long)in->packed_bytes, in->threads,
               in->wait == INFER_WAIT_SPIN ? "spin" : "sleep", in->kernels, o->prompt, o->decode,
               r->n, pre_med, max_of(r->prefill_tps, r->n), dec_med, max_of(r->decode_tps, r->n),
               bw_med / 1e9, min_of(r->bw, r->n) / 1e9, max_of(r->bw, r->n) / 1e9, frac_med,
               min_of(r->frac, r->n), max_of(r->frac, r->n), o->pool_job_s * 1e6, kern_med / 1e9,
               kfrac_med);
        for (int k = 0; k < mx->n_kinds; k++)
            printf("%s\"%s n=%llu\":%.2f", k ? "," : "", ggml_type_name(mx->type[k]),
                   (unsigned long long)mx->n[k], type_med[k] / 1e9);
        printf("}}\n");
        return;
    }
    /* the file's label (Q4_K_M) where it has one, and the type most of
     * its matrix bytes are in when the label does not start with it (Q5_0
     * for a small Qwen) */
    char type[64];
    if (!in->file_type[0])
        snprintf(type, sizeof type, "%s", in->weight_type);
    else if (strncmp(in->file_type, in->weight_type, strlen(in->weight_type)) == 0)
        snprintf(type, sizeof type, "%s", in->file_type);
    else
        snprintf(type, sizeof type, "%s with most bytes in %s", in->file_type, in->weight_type);
    char packed[64] = "";
    if (in->packed_bytes)
        snprintf(packed, sizeof packed, " (%.1f MB from the kernels' packed copies)",
                 (double)in->packed_bytes / 1e6);
    printf("model %s%s%s%s\n  %s %s%s, %.0f M params, %.1f MB of weights read per token%s, "
           "%d threads (%s), %s kernels\n",
           path, what ? " (" : "", what ? what : "", what ? ")" : "", in->arch, type,
           in->synthetic ? " (synthetic model)" : "", (double)in->n_params / 1e6, bytes / 1e6,
           packed, in->threads, in->wait == INFER_WAIT_SPIN ? "spin" : "sleep", in->kernels);
    printf("  memory bandwidth (STREAM triad, %d threads) before each rep: %.1f GB/s median, "
           "%.1f-%.1f\n",
           in->threads, bw_med / 1e9, min_of(r->bw, r->n) / 1e9, max_of(r->bw, r->n) / 1e9);
    printf("  kernels with the weights in cache, before each rep: %.1f GB/s median for this mix (",
           kern_med / 1e9);
    for (int k = 0; k < mx->n_kinds; k++)
        printf("%s%s n=%llu %.1f", k ? ", " : "", ggml_type_name(mx->type[k]),
               (unsigned long long)mx->n[k], type_med[k] / 1e9);
    printf(")\n");
    printf("  prefill %4d tokens: %8.1f tok/s median, %8.1f best (%d reps)\n", o->prompt, pre_med,
           max_of(r->prefill_tps, r->n), r->n);
    printf("  decode  %4d tokens: %8.2f tok/s median, %8.2f best = %.1f GB/s = %.0f %% of the "
           "roofline (median of the reps' own; %.0f-%.0f %%), %.0f %% of the kernels' rate\n",
           o->decode, dec_med, max_of(r->decode_tps, r->n), bytes * dec_med / 1e9, 100.0 * frac_med,
           100.0 * min_of(r->frac, r->n), 100.0 * max_of(r->frac, r->n), 100.0 * kfrac_med);
}

static int bench_model(const char *path, const char *what, const struct opts *o,
                       struct pool *bw_pool, struct triad_job *triad, char *err)
{
    struct infer_options io = {.threads = o->threads, .wait = o->wait};
    struct infer_model *m = NULL;
    int rc = infer_model_load(&m, path, &io, err);
    if (rc)
        return rc;
    const struct infer_model_info *in = infer_model_info(m);
    infer_model_touch(m);
    struct kern_mix *mx = malloc(sizeof *mx);
    if (!mx) {
        infer_model_free(m);
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    }
    if ((rc = kern_mix_open(path, in->packed_bytes > 0, mx, err))) {
        free(mx);
        infer_model_free(m);
        return rc;
    }
    struct infer_session *s = NULL;
    int *prompt = NULL;
    if ((rc = infer_session_new(m, o->prompt + o->decode + 8, &s, err)))
        goto out;
    if (!(prompt = malloc((size_t)o->prompt * sizeof(int)))) {
        rc = err_setf(err, JB_ERR_NOMEM, "out of memory");
        goto out;
    }
    uint64_t st = 12345;
    for (int i = 0; i < o->prompt; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        prompt[i] = (int)((st >> 33) % (uint64_t)in->vocab_size);
    }
    struct result r = {.n = 0};
    /* one untimed round first: page cache, thread start, branch predictors */
    for (int rep = -1; rep < o->reps && rep < MAX_REPS && !rc; rep++) {
        double bw = 0.0;
        if (rep >= 0) {
            bw = triad_measure(bw_pool, triad);
            kern_mix_measure(mx, bw_pool, r.n);
        }
        infer_session_reset(s);
        const float *lg;
        double t0 = jb_clock_s();
        if ((rc = infer_prefill(s, prompt, (size_t)o->prompt, &lg, err)))
            break;
        double t1 = jb_clock_s();
        struct sampler smp;
        sampler_init(&smp, 0.0, 1.0, 1);
        for (int i = 0; i < o->decode && !rc; i++)
            rc = infer_decode(s, sampler_sample(&smp, lg, in->vocab_size), &lg, err);
        double t2 = jb_clock_s();
        if (rep >= 0 && !rc) {
            r.prefill_tps[r.n] = o->prompt / (t1 - t0);
            r.decode_tps[r.n] = o->decode / (t2 - t1);
            r.bw[r.n] = bw;
            r.frac[r.n] = (double)in->decode_bytes * r.decode_tps[r.n] / bw;
            r.kfrac[r.n] = (double)in->decode_bytes * r.decode_tps[r.n] / mx->total[r.n];
            r.n++;
        }
    }
    if (!rc)
        print_result(path, what, in, o, &r, mx);
out:
    free(prompt);
    infer_session_free(s);
    kern_mix_close(mx);
    free(mx);
    infer_model_free(m);
    return rc;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    int64_t v;
    if (str_to_i64(s, (size_t)-1, &v) || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {.threads = 0, .wait = INFER_WAIT_SPIN, .prompt = 128, .decode = 64, .reps = 3};
    char dirbuf[FS_PATH_MAX];
    const char *cache = getenv("XDG_CACHE_HOME");
    if (cache && *cache)
        snprintf(dirbuf, sizeof dirbuf, "%s/joulebench/bench", cache);
    else
        snprintf(dirbuf, sizeof dirbuf, "%s/.cache/joulebench/bench", fs_env_or("HOME", "/tmp"));
    o.dir = dirbuf;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (strcmp(a, "--json") == 0) {
            o.json = 1;
            continue;
        }
        if (!v) {
            bad = 1;
        } else if (strcmp(a, "--threads") == 0) {
            bad = parse_int(v, 0, POOL_MAX_THREADS, &o.threads);
        } else if (strcmp(a, "--wait") == 0) {
            bad = strcmp(v, "spin") && strcmp(v, "sleep");
            o.wait = strcmp(v, "sleep") == 0 ? INFER_WAIT_SLEEP : INFER_WAIT_SPIN;
        } else if (strcmp(a, "--prompt") == 0) {
            bad = parse_int(v, 1, 4096, &o.prompt);
        } else if (strcmp(a, "--decode") == 0) {
            bad = parse_int(v, 1, 4096, &o.decode);
        } else if (strcmp(a, "--reps") == 0) {
            bad = parse_int(v, 1, MAX_REPS, &o.reps);
        } else if (strcmp(a, "--dir") == 0) {
            o.dir = v;
        } else if (strcmp(a, "--model") == 0 && o.n_models < MAX_MODELS) {
            o.models[o.n_models++] = v;
        } else {
            bad = 1;
        }
        if (bad) {
            fprintf(stderr,
                    "usage: bench_engine [--threads N] [--wait spin|sleep] [--prompt N] "
                    "[--decode N] [--reps N] [--dir DIR] [--model FILE]... [--json]\n"
                    "bench_engine: bad or incomplete option '%s'\n",
                    a);
            return 2;
        }
        i++;
    }

    char err[ERR_LEN] = "";
    int rc = 0;
    char paths[N_DEFAULT_MODELS][FS_PATH_MAX];
    const char *whats[MAX_MODELS] = {NULL};
    if (o.n_models == 0) {
        for (int i = 0; i < N_DEFAULT_MODELS; i++) {
            if ((rc = ensure_synth(o.dir, &default_models[i], paths[i], sizeof paths[i], err))) {
                fprintf(stderr, "bench_engine: %s\n", err);
                return err_exit_code(rc);
            }
            o.models[i] = paths[i];
            whats[i] = default_models[i].what;
        }
        o.n_models = N_DEFAULT_MODELS;
    }

    /* The triad runs on a pool of its own with the engine's thread count;
     * the model's workers stop spinning and sleep within milliseconds of
     * their last job, before the warm-up pass ends. */
    int threads = o.threads > 0 ? o.threads : pool_cpu_count();
    struct pool *p = NULL;
    struct triad_job triad;
    if ((rc = pool_new(&p, threads, o.wait, err))) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return err_exit_code(rc);
    }
    if ((rc = triad_new(p, &triad, err))) {
        pool_free(p);
        fprintf(stderr, "bench_engine: %s\n", err);
        return err_exit_code(rc);
    }
    o.pool_job_s = pool_job_measure(p);
    if (!o.json)
        printf("thread pool: %d threads (%s), %.2f us per empty job (median of 5 rounds of "
               "2000)\n",
               threads, o.wait == INFER_WAIT_SPIN ? "spin" : "sleep", o.pool_job_s * 1e6);
    for (int i = 0; i < o.n_models && !rc; i++) {
        rc = bench_model(o.models[i], whats[i], &o, p, &triad, err);
        fflush(stdout);
    }
    triad_free(&triad);
    pool_free(p);
    if (rc) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return err_exit_code(rc);
    }
    return 0;
}
