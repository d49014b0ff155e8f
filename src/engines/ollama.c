/*
 * ollama.c — the Ollama engine: /api/chat (default) or /api/generate with
 * "stream": true, read as NDJSON. Every line is one JSON object; the pieces
 * are in message.content (chat) or response (generate), reasoning models
 * add message.thinking / thinking; the last object has "done": true and the
 * server's counts and durations (nanoseconds).
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/str.h"
#include "engines/engine.h"
#include "engines/http.h"
#include "engines/stream.h"
#include "joulebench/joulebench.h"

#define OLLAMA_MAX_LINE (1u << 20) /* the longest NDJSON line accepted */

struct ollama {
    struct http_client *http;
    char base[512];
    char keep_alive[64]; /* "" = server default */
};

static struct ollama *impl(struct engine *e)
{
    return e->impl;
}

static void url_of(struct ollama *o, const char *path, char *dst, size_t size)
{
    http_join(dst, size, o->base, path);
}

static int ollama_open(struct engine *e, char *err)
{
    struct ollama *o = calloc(1, sizeof *o);
    if (!o)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    str_lcpy(o->base, e->cfg.url ? e->cfg.url : ENGINE_DEFAULT_OLLAMA_URL, sizeof o->base);
    size_t n = strlen(o->base);
    while (n && o->base[n - 1] == '/')
        o->base[--n] = '\0';
    if (e->cfg.keep_alive)
        str_lcpy(o->keep_alive, e->cfg.keep_alive, sizeof o->keep_alive);
    struct http_options ho = {
        .connect_timeout_s = e->cfg.connect_timeout_s,
        .idle_timeout_s = e->cfg.timeout_s,
        .refused_hint = "is Ollama running? start it with 'ollama serve'",
    };
    int rc = http_client_open(&o->http, &ho, err);
    if (rc) {
        free(o);
        return rc;
    }
    e->impl = o;
    return 0;
}

static void ollama_close(struct engine *e)
{
    struct ollama *o = impl(e);
    if (!o)
        return;
    http_client_close(o->http);
    free(o);
    e->impl = NULL;
}

/* keep_alive as Ollama takes it: a number of seconds, or a duration
 * string ("5m", "-1"). */
static void put_keep_alive(json_t *body, const char *ka)
{
    int64_t v;
    if (!ka || !*ka)
        return;
    if (str_to_i64(ka, (size_t)-1, &v) == 0)
        json_object_set_new(body, "keep_alive", json_integer(v));
    else
        json_object_set_new(body, "keep_alive", json_string(ka));
}

/* The request body. Chat sends the system and user messages; generate (or
 * any raw prompt, which chat cannot express) sends prompt and system, with
 * "raw": true when the template must not be applied. */
static json_t *request_body(struct ollama *o, const struct engine_request *req, int chat)
{
    json_t *b = json_object();
    json_object_set_new(b, "model", json_string(req->model));
    if (chat) {
        json_t *msgs = json_array();
        if (req->system)
            json_array_append_new(
                msgs, json_pack("{s:s, s:s}", "role", "system", "content", req->system));
        json_array_append_new(msgs,
                              json_pack("{s:s, s:s}", "role", "user", "content", req->prompt));
        json_object_set_new(b, "messages", msgs);
    } else {
        json_object_set_new(b, "prompt", json_string(req->prompt));
        if (req->system && !req->raw)
            json_object_set_new(b, "system", json_string(req->system));
        if (req->raw)
            json_object_set_new(b, "raw", json_true());
    }
    json_object_set_new(b, "stream", json_true());
    json_t *opt = json_object();
    json_object_set_new(opt, "num_predict", json_integer(req->max_tokens));
    if (!isnan(req->temperature))
        json_object_set_new(opt, "temperature", json_real(req->temperature));
    if (!isnan(req->top_p))
        json_object_set_new(opt, "top_p", json_real(req->top_p));
    if (req->has_seed)
        json_object_set_new(opt, "seed", json_integer((json_int_t)req->seed));
    if (req->num_ctx > 0)
        json_object_set_new(opt, "num_ctx", json_integer(req->num_ctx));
    json_object_set_new(b, "options", opt);
    put_keep_alive(b, o->keep_alive);
    return b;
}

/* ---- the stream -------------------------------------------------------- */

struct ostream {
    struct ndjson nd;
    struct engine_result *res;
    engine_token_fn on_token;
    void *user;
    const char *url;
    double t_chunk; /* arrival of the bytes being parsed */
    int done;       /* the "done": true object came */
    int finishing;  /* parsing the unterminated rest at end of stream */
    int has_prompt_count;
};

static double ns_to_s(json_t *v)
{
    return json_is_number(v) ? json_number_value(v) * 1e-9 : NAN;
}

/* The last object: server counts and durations. "context" (the token ids
 * of the conversation) is dropped from what is kept. */
static void take_final(struct ostream *st, json_t *j)
{
    struct engine_result *r = st->res;
    json_t *v = json_object_get(j, "prompt_eval_count");
    if (json_is_integer(v)) {
        r->prompt_tokens = (long)json_integer_value(v);
        st->has_prompt_count = 1;
    }
    v = json_object_get(j, "eval_count");
    if (json_is_integer(v)) {
        r->output_tokens = (long)json_integer_value(v);
        r->output_tokens_estimated = 0;
    }
    r->load_s = ns_to_s(json_object_get(j, "load_duration"));
    r->prompt_eval_s = ns_to_s(json_object_get(j, "prompt_eval_duration"));
    r->eval_s = ns_to_s(json_object_get(j, "eval_duration"));
    r->total_s = ns_to_s(json_object_get(j, "total_duration"));
    v = json_object_get(j, "done_reason");
    if (json_is_string(v))
        str_lcpy(r->done_reason, json_string_value(v), sizeof r->done_reason);
    json_t *keep = json_deep_copy(j);
    json_object_del(keep, "context");
    json_object_del(keep, "message");
    json_object_del(keep, "response");
    if (r->server_json)
        json_decref(r->server_json);
    r->server_json = keep;
}

static int ollama_line(void *user, const char *line, size_t len, size_t line_no, char *err)
{
    struct ostream *st = user;
    json_error_t je;
    json_t *j = json_loadb(line, len, 0, &je);
    if (!j) {
        if (st->finishing)
            return err_setf(err, JB_ERR_NET,
                            "the stream from %s ended in the middle of line %zu (%zu bytes of "
                            "it came); did the server stop?",
                            st->url, line_no, len);
        return err_setf(err, JB_ERR_FORMAT,
                        "%s sent a line that is not JSON (stream line %zu, column %d: %s): "
                        "'%.60s'",
                        st->url, line_no, je.column, je.text, line);
    }
    int rc = 0;
    if (!json_is_object(j)) {
        rc = err_setf(err, JB_ERR_FORMAT,
                      "%s sent a JSON line that is not an object (stream "
                      "line %zu): '%.60s'",
                      st->url, line_no, line);
        goto out;
    }
    json_t *e = json_object_get(j, "error");
    if (e && !json_is_null(e)) {
        char text[300];
        char *dump = json_is_string(e) ? NULL : json_dumps(e, JSON_COMPACT);
        str_lcpy(text, json_is_string(e) ? json_string_value(e) : (dump ? dump : "?"), sizeof text);
        free(dump);
        rc = err_setf(err, JB_ERR_NET,
                      "Ollama at %s reported an error in the middle of the "
                      "answer (stream line %zu): %s",
                      st->url, line_no, text);
        goto out;
    }
    if (st->done)
        goto out; /* nothing belongs after the last object */
    json_t *msg = json_object_get(j, "message");
    json_t *think =
        json_is_object(msg) ? json_object_get(msg, "thinking") : json_object_get(j, "thinking");
    json_t *text =
        json_is_object(msg) ? json_object_get(msg, "content") : json_object_get(j, "response");
    if (json_is_string(think))
        rc = engine_result_piece(st->res, json_string_value(think), json_string_length(think),
                                 st->t_chunk, 0, st->on_token, st->user, err);
    if (!rc && json_is_string(text))
        rc = engine_result_piece(st->res, json_string_value(text), json_string_length(text),
                                 st->t_chunk, 1, st->on_token, st->user, err);
    if (!rc && json_is_true(json_object_get(j, "done"))) {
        st->done = 1;
        take_final(st, j);
    }
out:
    json_decref(j);
    return rc;
}

static int ollama_body(void *user, const char *data, size_t len, double t_s, char *err)
{
    struct ostream *st = user;
    st->t_chunk = t_s;
    return ndjson_feed(&st->nd, data, len, ollama_line, st, err);
}

/* Adds what to do when Ollama says a model is missing. */
static int model_hint(int rc, const char *model, char *err)
{
    if (rc == JB_ERR_NOTFOUND && model && *model && strstr(err, "not found") &&
        strstr(err, "model")) {
        size_t n = strlen(err);
        snprintf(err + n, ERR_LEN - n, "; run 'ollama pull %s'", model);
    } else if (rc == JB_ERR_NOTFOUND) {
        size_t n = strlen(err);
        snprintf(err + n, ERR_LEN - n, "; is this an Ollama server?");
    }
    return rc;
}

/* Posts body to path and reads the NDJSON answer into res. The counts are
 * settled here for every outcome: a finished stream has the server's; a
 * cut one keeps what came, with the output count estimated from the
 * pieces. */
static int run_stream(struct ollama *o, const char *path, json_t *body, const char *model,
                      engine_token_fn on_token, void *user, struct engine_result *res)
{
    char url[640];
    url_of(o, path, url, sizeof url);
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text)
        return res->status = err_setf(res->error, JB_ERR_NOMEM, "out of memory");
    struct ostream st = {.res = res, .on_token = on_token, .user = user, .url = url};
    ndjson_init(&st.nd, OLLAMA_MAX_LINE);
    long status = 0;
    int rc =
        http_request(o->http, url, text, ollama_body, &st, &status, &res->t_sent_s, res->error);
    if (!rc) {
        st.finishing = 1;
        rc = ndjson_finish(&st.nd, ollama_line, &st, res->error);
    }
    res->t_end_s = jb_clock_s();
    if (!rc && !st.done)
        rc = err_setf(res->error, JB_ERR_NET,
                      "the stream from %s ended before Ollama's final object (after %ld "
                      "pieces); did the server stop?",
                      url, res->pieces);
    if (!st.done || res->output_tokens < 0) {
        res->output_tokens = res->pieces;
        res->output_tokens_estimated = 1;
    }
    if (st.done && (!st.has_prompt_count || res->prompt_tokens <= 1))
        res->prompt_cached = 1;
    model_hint(rc, model, res->error);
    res->status = rc;
    if (!rc)
        res->error[0] = '\0';
    ndjson_free(&st.nd);
    free(text);
    return rc;
}

static int ollama_generate(struct engine *e, const struct engine_request *req,
                           engine_token_fn on_token, void *user, struct engine_result *res)
{
    struct ollama *o = impl(e);
    if (!req->model || !*req->model || !req->prompt)
        return res->status = err_setf(res->error, JB_ERR_USAGE,
                                      "a request needs a model and "
                                      "a prompt");
    if (req->max_tokens <= 0)
        return res->status = err_setf(res->error, JB_ERR_USAGE,
                                      "max_tokens must be positive (it is always sent)");
    int chat = !e->cfg.ollama_generate && !req->raw;
    json_t *body = request_body(o, req, chat);
    int rc =
        run_stream(o, chat ? "/api/chat" : "/api/generate", body, req->model, on_token, user, res);
    json_decref(body);
    return rc;
}

/* A request with no prompt makes Ollama load the model and answer at
 * once; its load_duration (when the server reports one) is the cold-start
 * cost, and t_sent_s..t_end_s is the client's view of it. */
static int ollama_load(struct engine *e, const char *model, struct engine_result *res)
{
    struct ollama *o = impl(e);
    json_t *body = json_pack("{s:s}", "model", model);
    put_keep_alive(body, o->keep_alive);
    int rc = run_stream(o, "/api/generate", body, model, NULL, NULL, res);
    json_decref(body);
    res->prompt_cached = 0; /* no prompt was sent */
    return rc;
}

static int ollama_unload(struct engine *e, const char *model, char *err)
{
    struct ollama *o = impl(e);
    struct engine_result res;
    engine_result_init(&res);
    json_t *body = json_pack("{s:s, s:i}", "model", model, "keep_alive", 0);
    int rc = run_stream(o, "/api/generate", body, model, NULL, NULL, &res);
    json_decref(body);
    if (rc)
        str_lcpy(err, res.error, ERR_LEN);
    engine_result_free(&res);
    return rc;
}

/* ---- listings ---------------------------------------------------------- */

static void copy_str(char *dst, size_t size, json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_string(v))
        str_lcpy(dst, json_string_value(v), size);
}

static int64_t get_i64(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? (int64_t)json_number_value(v) : -1;
}

/* One entry of /api/tags or /api/ps. */
static void model_entry(json_t *m, struct engine_model_info *out)
{
    engine_model_info_init(out);
    copy_str(out->name, sizeof out->name, m, "name");
    if (!out->name[0])
        copy_str(out->name, sizeof out->name, m, "model");
    copy_str(out->digest, sizeof out->digest, m, "digest");
    out->size_bytes = get_i64(m, "size");
    out->vram_bytes = get_i64(m, "size_vram");
    json_t *d = json_object_get(m, "details");
    copy_str(out->quantization, sizeof out->quantization, d, "quantization_level");
    copy_str(out->family, sizeof out->family, d, "family");
    copy_str(out->parameter_size, sizeof out->parameter_size, d, "parameter_size");
}

static int list_path(struct engine *e, const char *path, struct engine_model_info **out, size_t *n,
                     char *err)
{
    struct ollama *o = impl(e);
    *out = NULL;
    *n = 0;
    char url[640];
    url_of(o, path, url, sizeof url);
    json_t *j;
    int rc = http_json(o->http, url, NULL, &j, NULL, err);
    if (rc)
        return model_hint(rc, "", err);
    json_t *models = json_object_get(j, "models");
    if (!json_is_array(models)) {
        json_decref(j);
        return err_setf(err, JB_ERR_FORMAT,
                        "the answer from %s has no \"models\" list; is this "
                        "an Ollama server?",
                        url);
    }
    size_t count = json_array_size(models);
    struct engine_model_info *list = calloc(count ? count : 1, sizeof *list);
    if (!list) {
        json_decref(j);
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < count; i++)
        model_entry(json_array_get(models, i), &list[i]);
    json_decref(j);
    *out = list;
    *n = count;
    return 0;
}

static int ollama_list(struct engine *e, struct engine_model_info **out, size_t *n, char *err)
{
    return list_path(e, "/api/tags", out, n, err);
}

static int ollama_running(struct engine *e, struct engine_model_info **out, size_t *n, char *err)
{
    return list_path(e, "/api/ps", out, n, err);
}

static int same_model(const char *listed, const char *asked)
{
    if (strcmp(listed, asked) == 0)
        return 1;
    size_t n = strlen(asked);
    return !strchr(asked, ':') && strncmp(listed, asked, n) == 0 &&
           strcmp(listed + n, ":latest") == 0;
}

/* /api/show gives the architecture details; size and digest come from the
 * model's /api/tags entry, which /api/show does not repeat. */
static int ollama_model_info(struct engine *e, const char *model, struct engine_model_info *out,
                             char *err)
{
    struct ollama *o = impl(e);
    engine_model_info_init(out);
    str_lcpy(out->name, model, sizeof out->name);
    char url[640];
    url_of(o, "/api/show", url, sizeof url);
    json_t *req = json_pack("{s:s}", "model", model);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    json_t *j = NULL;
    int rc = http_json(o->http, url, body, &j, NULL, err);
    free(body);
    if (rc)
        return model_hint(rc, model, err);
    json_t *d = json_object_get(j, "details");
    copy_str(out->quantization, sizeof out->quantization, d, "quantization_level");
    copy_str(out->family, sizeof out->family, d, "family");
    copy_str(out->parameter_size, sizeof out->parameter_size, d, "parameter_size");
    json_t *info = json_object_get(j, "model_info");
    json_t *arch = json_object_get(info, "general.architecture");
    if (json_is_string(arch)) {
        char key[160];
        snprintf(key, sizeof key, "%s.context_length", json_string_value(arch));
        out->context_length = get_i64(info, key);
        if (!out->family[0])
            str_lcpy(out->family, json_string_value(arch), sizeof out->family);
    }
    json_decref(j);

    struct engine_model_info *list = NULL;
    size_t n = 0;
    char lerr[ERR_LEN];
    if (ollama_list(e, &list, &n, lerr) == 0)
        for (size_t i = 0; i < n; i++)
            if (same_model(list[i].name, model)) {
                str_lcpy(out->digest, list[i].digest, sizeof out->digest);
                out->size_bytes = list[i].size_bytes;
                break;
            }
    free(list);
    return 0;
}

static int ollama_version(struct engine *e, char *buf, size_t size, char *err)
{
    struct ollama *o = impl(e);
    buf[0] = '\0';
    char url[640];
    url_of(o, "/api/version", url, sizeof url);
    json_t *j;
    int rc = http_json(o->http, url, NULL, &j, NULL, err);
    if (rc)
        return model_hint(rc, "", err);
    copy_str(buf, size, j, "version");
    json_decref(j);
    return 0;
}

int engine_ollama_answers(const char *url, double timeout_s)
{
    struct http_options ho = {.connect_timeout_s = timeout_s, .idle_timeout_s = timeout_s};
    struct http_client *c;
    char err[ERR_LEN];
    if (http_client_open(&c, &ho, err))
        return 0;
    char full[640];
    http_join(full, sizeof full, url ? url : ENGINE_DEFAULT_OLLAMA_URL, "/api/version");
    json_t *j = NULL;
    int ok = http_json(c, full, NULL, &j, NULL, err) == 0 &&
             json_is_string(json_object_get(j, "version"));
    json_decref(j);
    http_client_close(c);
    return ok;
}

const struct engine_ops engine_ollama_ops = {
    .name = "ollama",
    .open = ollama_open,
    .generate = ollama_generate,
    .load = ollama_load,
    .unload = ollama_unload,
    .list_models = ollama_list,
    .model_info = ollama_model_info,
    .version = ollama_version,
    .close = ollama_close,
    .list_running = ollama_running,
};
