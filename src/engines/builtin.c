/*
 * builtin.c — joulebench's own engine (`-e builtin`) behind the engine
 * interface: GGUF models by path or by Ollama name, run in this process, so
 * every phase boundary (tokenize, prefill, decode) is known exactly.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/sig.h"
#include "common/str.h"
#include "common/timeutil.h"
#include "engines/engine.h"
#include "common/fs.h"
#include "infer/gguf.h"
#include "infer/infer.h"
#include "infer/store.h"

#define BUILTIN_MAX_MODELS 16
#define BUILTIN_DEFAULT_CTX 4096
/* Sampling defaults when the request leaves them to the engine. */
#define BUILTIN_TEMPERATURE 0.8
#define BUILTIN_TOP_P 0.95

struct builtin_model {
    char key[512]; /* the name or path it was asked for */
    char path[1024];
    char digest[80];
    struct infer_model *model;
    struct infer_session *session;
};

struct builtin {
    struct builtin_model models[BUILTIN_MAX_MODELS];
    size_t n;
};

static int builtin_open(struct engine *e, char *err)
{
    e->impl = calloc(1, sizeof(struct builtin));
    if (!e->impl)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    e->url[0] = '\0';
    return 0;
}

static void builtin_close(struct engine *e)
{
    struct builtin *b = e->impl;
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        infer_session_free(b->models[i].session);
        infer_model_free(b->models[i].model);
    }
    free(b);
    e->impl = NULL;
}

/* A long prompt's prefill stops between batches once SIGINT or SIGTERM
 * asked the program to stop (the runner then keeps what it measured). */
static int stop_asked(void *ctx)
{
    (void)ctx;
    return sig_stop != 0;
}

/* Finds or loads the model named `name` (a .gguf path, or an Ollama name
 * looked up in Ollama's store). */
static int get_model(struct engine *e, const char *name, struct builtin_model **out, char *err)
{
    struct builtin *b = e->impl;
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->models[i].key, name) == 0) {
            *out = &b->models[i];
            return 0;
        }
    if (b->n == BUILTIN_MAX_MODELS)
        return err_setf(err, JB_ERR_USAGE, "the built-in engine holds at most %d models",
                        BUILTIN_MAX_MODELS);
    struct builtin_model *m = &b->models[b->n];
    memset(m, 0, sizeof *m);
    str_lcpy(m->key, name, sizeof m->key);
    int rc;
    if (store_is_path(name) || str_has_suffix(name, ".gguf")) {
        str_lcpy(m->path, name, sizeof m->path);
    } else {
        rc = store_resolve(NULL, name, m->path, sizeof m->path, m->digest, sizeof m->digest, err);
        if (rc)
            return rc;
    }
    struct infer_options io = {0};
    io.threads = e->cfg.threads;
    io.wait = e->cfg.wait == ENGINE_WAIT_SPIN ? INFER_WAIT_SPIN : INFER_WAIT_SLEEP;
    rc = infer_model_load(&m->model, m->path, &io, err);
    if (rc)
        return rc;
    const struct infer_model_info *info = infer_model_info(m->model);
    int ctx = e->cfg.ctx_len > 0 ? e->cfg.ctx_len : BUILTIN_DEFAULT_CTX;
    if (info->ctx_train > 0 && ctx > info->ctx_train)
        ctx = info->ctx_train;
    rc = infer_session_new(m->model, ctx, &m->session, err);
    if (rc) {
        infer_model_free(m->model);
        m->model = NULL;
        return rc;
    }
    infer_session_set_stop(m->session, stop_asked, NULL);
    b->n++;
    *out = m;
    return 0;
}

static void fill_info(const struct builtin_model *m, struct engine_model_info *out)
{
    const struct infer_model_info *i = infer_model_info(m->model);
    engine_model_info_init(out);
    const char *base = strrchr(m->key, '/');
    if (m->digest[0] || !(store_is_path(m->key) || str_has_suffix(m->key, ".gguf")))
        str_lcpy(out->name, m->key, sizeof out->name);
    else if (i->name[0])
        str_lcpy(out->name, i->name, sizeof out->name);
    else
        str_lcpy(out->name, base ? base + 1 : m->key, sizeof out->name);
    str_lcpy(out->digest, m->digest, sizeof out->digest);
    str_lcpy(out->quantization, i->file_type[0] ? i->file_type : i->weight_type,
             sizeof out->quantization);
    str_lcpy(out->family, i->arch, sizeof out->family);
    double p = (double)i->n_params;
    if (p >= 1e9)
        snprintf(out->parameter_size, sizeof out->parameter_size, "%.1fB", p / 1e9);
    else
        snprintf(out->parameter_size, sizeof out->parameter_size, "%.0fM", p / 1e6);
    out->size_bytes = (int64_t)i->file_bytes;
    out->context_length = i->ctx_train;
    out->synthetic = i->synthetic;
    str_lcpy(out->path, m->path, sizeof out->path);
}

/* Frees the most recently loaded model (the last slot). */
static void drop_last(struct builtin *b)
{
    struct builtin_model *m = &b->models[--b->n];
    infer_session_free(m->session);
    infer_model_free(m->model);
    memset(m, 0, sizeof *m);
}

/* Describes a model. One that is not loaded yet is loaded for the look and
 * freed again, so that its real load happens later in load(), inside the
 * runner's load window, where its cost is measured. */
static int builtin_model_info(struct engine *e, const char *model, struct engine_model_info *out,
                              char *err)
{
    struct builtin *b = e->impl;
    size_t before = b->n;
    struct builtin_model *m;
    int rc = get_model(e, model, &m, err);
    if (rc)
        return rc;
    fill_info(m, out);
    if (b->n > before)
        drop_last(b);
    return 0;
}

static int builtin_load(struct engine *e, const char *model, struct engine_result *res)
{
    res->t_sent_s = jb_clock_s();
    struct builtin_model *m;
    int rc = get_model(e, model, &m, res->error);
    if (!rc)
        infer_model_touch(m->model);
    res->t_end_s = jb_clock_s();
    res->load_s = res->t_end_s - res->t_sent_s;
    res->status = rc;
    return rc;
}

/* Emits the longest run of complete UTF-8 characters held in pending, so a
 * character split over two tokens reaches the listener whole. Bytes that
 * can never become valid UTF-8 are ready too (stream_piece replaces them). */
static size_t complete_utf8(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t n = str_utf8_seq_len(s + i, len - i);
        if (n) {
            i += n;
            continue;
        }
        unsigned char c = (unsigned char)s[i];
        size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (need && len - i < need) {
            size_t k = 1;
            while (i + k < len && ((unsigned char)s[i + k] & 0xC0) == 0x80)
                k++;
            if (i + k == len)
                break; /* an unfinished character: wait for the next token */
        }
        i++;
    }
    return i;
}

static int push_id(int **arr, size_t *n, size_t *cap, int id)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 256;
        int *p = realloc(*arr, c * sizeof *p);
        if (!p)
            return JB_ERR_NOMEM;
        *arr = p;
        *cap = c;
    }
    (*arr)[(*n)++] = id;
    return 0;
}

/* One piece of the answer to the listener and the result, as a server
 * would send it: valid UTF-8, bytes that can never be a character
 * replaced by U+FFFD. */
static int stream_piece(struct engine_result *res, const char *s, size_t len,
                        engine_token_fn on_token, void *user)
{
    if (str_utf8_valid(s, len))
        return engine_result_piece(res, s, len, jb_clock_s(), 1, on_token, user, res->error);
    struct buf clean = {0};
    int rc = str_utf8_sanitize(s, len, &clean);
    if (rc)
        rc = err_setf(res->error, rc, "out of memory");
    else
        rc = engine_result_piece(res, buf_str(&clean), clean.len, jb_clock_s(), 1, on_token, user,
                                 res->error);
    buf_free(&clean);
    return rc;
}

static int builtin_generate(struct engine *e, const struct engine_request *req,
                            engine_token_fn on_token, void *user, struct engine_result *res)
{
    res->t_sent_s = jb_clock_s();
    struct builtin_model *m;
    int rc = get_model(e, req->model, &m, res->error);
    if (rc)
        return res->status = rc;
    const struct tokenizer *tok = infer_model_tokenizer(m->model);
    const struct infer_model_info *info = infer_model_info(m->model);

    struct buf text = {0}, pending = {0};
    int *ids = NULL;
    size_t n_ids = 0, cap_out = 0;
    if (req->raw)
        rc = buf_puts(&text, req->prompt);
    else
        rc = tokenizer_chat_format(tok, req->system, req->prompt, &text);
    if (rc) {
        err_setf(res->error, rc, "cannot format the prompt for %s", m->key);
        goto out;
    }
    /* Special-token text becomes special tokens in raw prompts too, as
     * Ollama and llama.cpp's server tokenize them. */
    rc = tokenizer_encode(tok, buf_str(&text), text.len, 1, &ids, &n_ids, res->error);
    if (rc)
        goto out;
    if (tokenizer_add_bos(tok) && tokenizer_bos(tok) >= 0 &&
        (n_ids == 0 || ids[0] != tokenizer_bos(tok))) {
        int *p = realloc(ids, (n_ids + 1) * sizeof *p);
        if (!p) {
            rc = err_setf(res->error, JB_ERR_NOMEM, "out of memory");
            goto out;
        }
        memmove(p + 1, p, n_ids * sizeof *p);
        p[0] = tokenizer_bos(tok);
        ids = p;
        n_ids++;
    }
    res->t_tokenized_s = jb_clock_s();
    res->prompt_tokens = (long)n_ids;
    res->output_tokens = 0; /* exact from here on, even if the prompt is cut short */
    res->prompt_ids = ids;
    res->n_prompt_ids = n_ids;
    ids = NULL;
    if (n_ids == 0) {
        rc = err_setf(res->error, JB_ERR_USAGE, "the prompt is empty after tokenization");
        goto out;
    }
    if ((int)n_ids >= infer_session_ctx(m->session)) {
        int ctx = infer_session_ctx(m->session);
        if (info->ctx_train > 0 && ctx >= info->ctx_train)
            rc = err_setf(res->error, JB_ERR_USAGE,
                          "the prompt has %zu tokens; %s was trained for a context of %d, "
                          "which must also hold the answer: shorten the prompt",
                          n_ids, m->key, info->ctx_train);
        else
            rc = err_setf(res->error, JB_ERR_USAGE,
                          "the prompt has %zu tokens; the context holds %d (raise it with --ctx%s)",
                          n_ids, ctx,
                          info->ctx_train > 0 ? ", up to the model's trained context" : "");
        goto out;
    }

    infer_session_reset(m->session);
    const float *logits;
    rc = infer_prefill(m->session, res->prompt_ids, n_ids, &logits, res->error);
    if (rc)
        goto out;
    res->t_prefill_end_s = jb_clock_s();
    res->prompt_eval_s = res->t_prefill_end_s - res->t_tokenized_s;

    struct sampler smp;
    double temp = isnan(req->temperature) ? BUILTIN_TEMPERATURE : req->temperature;
    double top_p = isnan(req->top_p) ? BUILTIN_TOP_P : req->top_p;
    sampler_init(&smp, temp, top_p, req->has_seed ? req->seed : (uint64_t)(res->t_sent_s * 1e9));
    long produced = 0;
    /* ids the vocabulary cannot spell (embedding rows past its end) are
     * never drawn */
    int n_vocab = info->vocab_size;
    if (tokenizer_vocab_size(tok) < (size_t)n_vocab)
        n_vocab = (int)tokenizer_vocab_size(tok);
    str_lcpy(res->done_reason, "length", sizeof res->done_reason);
    while (produced < req->max_tokens) {
        int id = sampler_sample(&smp, logits, n_vocab);
        if (tokenizer_is_eog(tok, id)) {
            str_lcpy(res->done_reason, "stop", sizeof res->done_reason);
            break;
        }
        if ((rc = push_id(&res->output_ids, &res->n_output_ids, &cap_out, id)))
            break;
        produced++;
        if ((rc = tokenizer_decode(tok, id, &pending))) {
            err_setf(res->error, rc, "cannot decode token %d", id);
            break;
        }
        /* Pieces as the servers stream them: text that can show, a
         * character split over tokens arriving with its last token (so
         * the first piece, and TTFT, is the first text). */
        size_t ready = complete_utf8(buf_str(&pending), pending.len);
        rc = stream_piece(res, buf_str(&pending), ready, on_token, user);
        buf_consume(&pending, ready);
        if (rc)
            break;
        if (infer_session_pos(m->session) + 1 >= infer_session_ctx(m->session)) {
            str_lcpy(res->done_reason, "context", sizeof res->done_reason);
            break;
        }
        if (produced == req->max_tokens)
            break;
        rc = infer_decode(m->session, id, &logits, res->error);
        if (rc)
            break;
    }
    if (rc == JB_ERR_NOMEM)
        err_setf(res->error, rc, "out of memory while generating");
    if (pending.len && !rc) /* a character left unfinished at the end */
        rc = stream_piece(res, buf_str(&pending), pending.len, on_token, user);
    res->output_tokens = produced;
    if (produced > 1)
        res->eval_s = res->t_last_s - res->t_first_s;
out:
    res->t_end_s = jb_clock_s();
    res->total_s = res->t_end_s - res->t_sent_s;
    free(ids);
    buf_free(&text);
    buf_free(&pending);
    res->status = rc;
    return rc;
}

/* The models the built-in engine can run by name: those in Ollama's store.
 * The family and parameter count come from each file's GGUF header (a
 * mapping; the weights are not read). */
static int builtin_list_models(struct engine *e, struct engine_model_info **out, size_t *n,
                               char *err)
{
    (void)e;
    char **names;
    size_t count;
    *out = NULL;
    *n = 0;
    int rc = store_list(NULL, &names, &count, err);
    if (rc)
        return rc;
    struct engine_model_info *v = count ? calloc(count, sizeof *v) : NULL;
    if (count && !v)
        rc = err_setf(err, JB_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < count && !rc; i++) {
        struct engine_model_info *mi = &v[k];
        engine_model_info_init(mi);
        str_lcpy(mi->name, names[i], sizeof mi->name);
        char lerr[ERR_LEN];
        if (store_resolve(NULL, names[i], mi->path, sizeof mi->path, mi->digest, sizeof mi->digest,
                          lerr))
            continue; /* a manifest without its blob: not runnable */
        struct fs_map map;
        struct gguf_file gf;
        if (gguf_open(mi->path, &map, &gf, lerr) == 0) {
            struct gguf_str arch;
            if (gguf_get_str(&gf, "general.architecture", &arch) == 0)
                snprintf(mi->family, sizeof mi->family, "%.*s", (int)arch.len, arch.ptr);
            uint64_t params = 0;
            for (uint64_t t = 0; t < gf.n_tensors; t++)
                params += gf.tensors[t].n_elements;
            if (params >= 1000000000u)
                snprintf(mi->parameter_size, sizeof mi->parameter_size, "%.1fB",
                         (double)params / 1e9);
            else
                snprintf(mi->parameter_size, sizeof mi->parameter_size, "%.1fM",
                         (double)params / 1e6);
            mi->size_bytes = (int64_t)map.size;
            gguf_close(&map, &gf);
        }
        k++;
    }
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *n = k;
    return 0;
}

static int builtin_version(struct engine *e, char *buf, size_t size, char *err)
{
    (void)e;
    (void)err;
    snprintf(buf, size, "%s (built-in)", JB_VERSION);
    return 0;
}

const struct engine_ops engine_builtin_ops = {
    .name = "builtin",
    .open = builtin_open,
    .generate = builtin_generate,
    .load = builtin_load,
    .unload = NULL,
    .list_models = builtin_list_models,
    .model_info = builtin_model_info,
    .version = builtin_version,
    .close = builtin_close,
};
