/*
 * bench/engine.c — the built-in engine's speed against the machine's memory
 * bandwidth.
 *
 * Decode reads every weight once per token, so its ceiling is bandwidth /
 * bytes per token (the roofline). This program measures, in one run and
 * with the same threads: the STREAM-style triad bandwidth (a = b + s * c
 * over arrays far larger than the caches, 24 bytes per element counted as
 * STREAM does, best of several passes) right before each model, then the
 * model's prefill and decode tokens per second, and decode as a fraction
 * of that roofline.
 *
 * Models: synthetic Qwen2.5-0.5B-shaped files from synth's "0.5b" preset
 * in Q8_0 and Q4_K, written once to the cache folder (--dir), or any GGUF
 * with --model (repeatable).
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
#include "infer/kernels.h"
#include "infer/pool.h"
#include "infer/synth.h"

#define MAX_MODELS 8

struct opts {
    int threads;
    enum infer_wait wait;
    int prompt, decode, reps;
    const char *dir;
    const char *models[MAX_MODELS];
    int n_models;
    int json;
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

/* Bytes per second of the best pass (STREAM's convention: 3 x 8 bytes per
 * element, write-allocate traffic not counted). */
static int measure_bandwidth(struct pool *p, double *bw, char *err)
{
    const size_t n = (size_t)64 << 20 >> 3 << 2; /* 32 Mi doubles: 256 MiB per array */
    struct triad_job j = {.n = n, .s = 3.0};
    j.a = malloc(n * sizeof(double));
    j.b = malloc(n * sizeof(double));
    j.c = malloc(n * sizeof(double));
    if (!j.a || !j.b || !j.c) {
        free(j.a);
        free(j.b);
        free(j.c);
        return err_setf(err, JB_ERR_NOMEM, "out of memory for the bandwidth arrays (768 MiB)");
    }
    pool_run(p, init_worker, &j);
    double best = 0.0;
    for (int pass = 0; pass < 6; pass++) {
        double t0 = jb_clock_s();
        pool_run(p, triad_worker, &j);
        double dt = jb_clock_s() - t0;
        double v = 24.0 * (double)n / dt;
        if (pass > 0 && v > best) /* the first pass warms up */
            best = v;
    }
    /* keep the result observable so the loops are not optimised away */
    if (j.a[n / 2] != 1.0 + 3.0 * 2.0)
        best = NAN;
    free(j.a);
    free(j.b);
    free(j.c);
    *bw = best;
    return 0;
}

/* ---- models ---- */

static int ensure_synth(const char *dir, const char *type_name, enum ggml_type type, char *path,
                        size_t size, char *err)
{
    int rc = fs_mkdir_p(dir, err);
    if (rc)
        return rc;
    char name[64];
    snprintf(name, sizeof name, "synth-0.5b-%s.gguf", type_name);
    if ((rc = fs_path_join(path, size, dir, name)))
        return err_setf(err, rc, "%s/%s: path too long", dir, name);
    if (fs_exists(path))
        return 0;
    struct synth_options o;
    if ((rc = synth_preset("0.5b", &o)))
        return err_setf(err, rc, "synth has no 0.5b preset");
    o.type = type;
    o.seed = 1;
    fprintf(stderr, "bench_engine: writing %s (once; later runs reuse it)\n", path);
    return synth_write(path, &o, err);
}

struct result {
    double prefill_tps[16], decode_tps[16];
    int n;
};

static int bench_model(const char *path, const struct opts *o, double bw, char *err)
{
    struct infer_options io = {.threads = o->threads, .wait = o->wait};
    struct infer_model *m = NULL;
    int rc = infer_model_load(&m, path, &io, err);
    if (rc)
        return rc;
    const struct infer_model_info *in = infer_model_info(m);
    infer_model_touch(m);
    struct infer_session *s = NULL;
    if ((rc = infer_session_new(m, o->prompt + o->decode + 8, &s, err))) {
        infer_model_free(m);
        return rc;
    }
    int *prompt = malloc((size_t)o->prompt * sizeof(int));
    if (!prompt) {
        infer_session_free(s);
        infer_model_free(m);
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    }
    uint64_t st = 12345;
    for (int i = 0; i < o->prompt; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        prompt[i] = (int)((st >> 33) % (uint64_t)in->vocab_size);
    }
    struct result r = {.n = 0};
    /* one untimed round first: page cache, thread start, branch predictors */
    for (int rep = -1; rep < o->reps && rep < 16 && !rc; rep++) {
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
        if (rep >= 0) {
            r.prefill_tps[r.n] = o->prompt / (t1 - t0);
            r.decode_tps[r.n] = o->decode / (t2 - t1);
            r.n++;
        }
    }
    if (!rc) {
        double pre_med = stats_percentile(r.prefill_tps, (size_t)r.n, 50.0);
        double dec_med = stats_percentile(r.decode_tps, (size_t)r.n, 50.0);
        double dec_best = r.decode_tps[0], pre_best = r.prefill_tps[0];
        for (int i = 1; i < r.n; i++) {
            dec_best = r.decode_tps[i] > dec_best ? r.decode_tps[i] : dec_best;
            pre_best = r.prefill_tps[i] > pre_best ? r.prefill_tps[i] : pre_best;
        }
        double bytes = (double)in->decode_bytes;
        double frac_med = bytes * dec_med / bw, frac_best = bytes * dec_best / bw;
        if (o->json) {
            printf("{\"model\":\"%s\",\"synthetic\":%s,\"weight_type\":\"%s\",\"n_params\":%llu,"
                   "\"decode_bytes\":%llu,\"threads\":%d,\"wait\":\"%s\",\"kernels\":\"%s\","
                   "\"prompt_tokens\":%d,\"decode_tokens\":%d,\"reps\":%d,"
                   "\"prefill_tps_median\":%.2f,\"prefill_tps_best\":%.2f,"
                   "\"decode_tps_median\":%.2f,\"decode_tps_best\":%.2f,"
                   "\"bandwidth_gbs\":%.2f,\"roofline_fraction_median\":%.3f,"
                   "\"roofline_fraction_best\":%.3f}\n",
                   path, in->synthetic ? "true" : "false", in->weight_type,
                   (unsigned long long)in->n_params, (unsigned long long)in->decode_bytes,
                   in->threads, in->wait == INFER_WAIT_SPIN ? "spin" : "sleep", in->kernels,
                   o->prompt, o->decode, r.n, pre_med, pre_best, dec_med, dec_best, bw / 1e9,
                   frac_med, frac_best);
        } else {
            printf("model %s\n  %s %s%s, %.0f M params, %.1f MB of weights read per token, "
                   "%d threads (%s), %s kernels\n",
                   path, in->arch, in->weight_type, in->synthetic ? " (synthetic model)" : "",
                   (double)in->n_params / 1e6, bytes / 1e6, in->threads,
                   in->wait == INFER_WAIT_SPIN ? "spin" : "sleep", in->kernels);
            printf("  prefill %4d tokens: %8.1f tok/s median, %8.1f best (%d reps)\n", o->prompt,
                   pre_med, pre_best, r.n);
            printf("  decode  %4d tokens: %8.2f tok/s median, %8.2f best = %.1f GB/s = %.0f %% "
                   "of the roofline (best %.0f %%)\n",
                   o->decode, dec_med, dec_best, bytes * dec_med / 1e9, 100.0 * frac_med,
                   100.0 * frac_best);
        }
    }
    free(prompt);
    infer_session_free(s);
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
            bad = parse_int(v, 1, 16, &o.reps);
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
    char paths[2][FS_PATH_MAX];
    if (o.n_models == 0) {
        if ((rc = ensure_synth(o.dir, "Q8_0", GGML_TYPE_Q8_0, paths[0], sizeof paths[0], err)) ||
            (rc = ensure_synth(o.dir, "Q4_K", GGML_TYPE_Q4_K, paths[1], sizeof paths[1], err))) {
            fprintf(stderr, "bench_engine: %s\n", err);
            return err_exit_code(rc);
        }
        o.models[0] = paths[0];
        o.models[1] = paths[1];
        o.n_models = 2;
    }

    /* Other processes on a shared machine change the bandwidth from minute
     * to minute, so it is measured again right before each model, and each
     * model's roofline uses the figure taken next to it. */
    int threads = o.threads > 0 ? o.threads : pool_cpu_count();
    struct pool *p = NULL;
    if ((rc = pool_new(&p, threads, o.wait, err))) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return err_exit_code(rc);
    }
    for (int i = 0; i < o.n_models && !rc; i++) {
        double bw = 0.0;
        if ((rc = measure_bandwidth(p, &bw, err)))
            break;
        if (o.json)
            printf("{\"bandwidth_gbs\":%.2f,\"threads\":%d}\n", bw / 1e9, threads);
        else
            printf("memory bandwidth (STREAM triad, %d threads): %.2f GB/s\n", threads, bw / 1e9);
        fflush(stdout);
        rc = bench_model(o.models[i], &o, bw, err);
        fflush(stdout);
    }
    pool_free(p);
    if (rc) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return err_exit_code(rc);
    }
    return 0;
}
