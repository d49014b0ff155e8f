/*
 * openai.c — any OpenAI-compatible server (llama.cpp's llama-server, vLLM,
 * LM Studio, mlx_lm.server, Ollama's /v1): /v1/chat/completions, or
 * /v1/completions for raw prompts, with "stream": true and
 * stream_options.include_usage, read as Server-Sent Events. Each event's
 * data is a JSON chunk (choices[0].delta.content, or choices[0].text) or
 * the literal [DONE]; usage comes in a last chunk with empty choices;
 * llama.cpp adds a "timings" object (milliseconds).
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

#define OPENAI_MAX_LINE (1u << 20)

struct openai {
    struct http_client *http;
    char base[512]; /* without a trailing "/v1" */
};

static struct openai *impl(struct engine *e)
{
    return e->impl;
}

static int openai_open(struct engine *e, char *err)
{
    struct openai *o = calloc(1, sizeof *o);
    if (!o)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    str_lcpy(o->base, e->cfg.url ? e->cfg.url : ENGINE_DEFAULT_OPENAI_URL, sizeof o->base);
    /* people paste the client base URL, "http://host:8080/v1/"; the paths
     * below carry /v1 themselves */
    size_t n = strlen(o->base);
    while (n && o->base[n - 1] == '/')
        o->base[--n] = '\0';
    if (str_has_suffix(o->base, "/v1"))
        o->base[n - 3] = '\0';
    char hint[300];
    snprintf(hint, sizeof hint, "is the server running at %s? (or give its address with --url)",
             o->base);
    const char *key = e->cfg.api_key ? e->cfg.api_key : getenv("OPENAI_API_KEY");
    struct http_options ho = {
        .connect_timeout_s = e->cfg.connect_timeout_s,
        .idle_timeout_s = e->cfg.timeout_s,
        .bearer = key,
        .refused_hint = hint,
    };
    int rc = http_client_open(&o->http, &ho, err);
    if (rc) {
        free(o);
        return rc;
    }
    e->impl = o;
    return 0;
}

static void openai_close(struct engine *e)
{
    struct openai *o = impl(e);
    if (!o)
        return;
    http_client_close(o->http);
    free(o);
    e->impl = NULL;
}

/* max_tokens is always sent: servers differ in their default (some stop
 * at 16 tokens, some never), and the measurement must not depend on it. */
static json_t *request_body(const struct engine_request *req, int chat)
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
    }
    json_object_set_new(b, "stream", json_true());
    json_object_set_new(b, "stream_options", json_pack("{s:b}", "include_usage", 1));
    json_object_set_new(b, "max_tokens", json_integer(req->max_tokens));
    if (!isnan(req->temperature))
        json_object_set_new(b, "temperature", json_real(req->temperature));
    if (!isnan(req->top_p))
        json_object_set_new(b, "top_p", json_real(req->top_p));
    if (req->has_seed)
        json_object_set_new(b, "seed", json_integer((json_int_t)req->seed));
    return b;
}

/* ---- the stream -------------------------------------------------------- */

struct ostream {
    struct sse sse;
    struct engine_result *res;
    engine_token_fn on_token;
    void *user;
    const char *url;
    int chat;
    double t_chunk;
    int done;     /* data: [DONE] came */
    int finished; /* a finish_reason came */
    int has_usage;
    long cached_tokens; /* usage.prompt_tokens_details.cached_tokens, -1 none */
    long timings_prompt_n;
};

static void keep_server(struct engine_result *r, const char *key, json_t *v)
{
    if (!r->server_json)
        r->server_json = json_object();
    json_object_set_new(r->server_json, key, json_deep_copy(v));
}

static void take_usage(struct ostream *st, json_t *u)
{
    struct engine_result *r = st->res;
    json_t *p = json_object_get(u, "prompt_tokens");
    json_t *c = json_object_get(u, "completion_tokens");
    if (json_is_integer(p))
        r->prompt_tokens = (long)json_integer_value(p);
    if (json_is_integer(c)) {
        r->output_tokens = (long)json_integer_value(c);
        st->has_usage = 1;
    }
    json_t *cached = json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens");
    if (json_is_integer(cached))
        st->cached_tokens = (long)json_integer_value(cached);
    keep_server(r, "usage", u);
}

/* llama.cpp's timings: prompt_n is the prompt tokens it evaluated (the
 * rest came from its cache), prompt_ms and predicted_ms its own clocks. */
static void take_timings(struct ostream *st, json_t *t)
{
    struct engine_result *r = st->res;
    json_t *v = json_object_get(t, "prompt_ms");
    if (json_is_number(v))
        r->prompt_eval_s = json_number_value(v) / 1000.0;
    v = json_object_get(t, "predicted_ms");
    if (json_is_number(v))
        r->eval_s = json_number_value(v) / 1000.0;
    v = json_object_get(t, "prompt_n");
    if (json_is_integer(v))
        st->timings_prompt_n = (long)json_integer_value(v);
    keep_server(r, "timings", t);
}

static int openai_event(void *user, const struct sse_event *ev, char *err)
{
    struct ostream *st = user;
    if (strcmp(ev->data, "[DONE]") == 0) {
        st->done = 1;
        return 0;
    }
    if (st->done)
        return 0;
    json_error_t je;
    json_t *j = json_loadb(ev->data, ev->data_len, 0, &je);
    if (!j)
        return err_setf(err, JB_ERR_FORMAT,
                        "%s sent an event whose data is not JSON (event ending at stream line "
                        "%zu, column %d: %s): '%.60s'",
                        st->url, ev->line_no, je.column, je.text, ev->data);
    int rc = 0;
    json_t *e = json_object_get(j, "error");
    if (strcmp(ev->type, "error") == 0 || (e && !json_is_null(e))) {
        char text[300];
        http_error_text(ev->data, ev->data_len, text, sizeof text);
        rc = err_setf(err, JB_ERR_NET,
                      "the server at %s reported an error in the middle of the answer (stream "
                      "line %zu): %s",
                      st->url, ev->line_no, text);
        goto out;
    }
    json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
    if (json_is_object(choice)) {
        json_t *delta = json_object_get(choice, "delta");
        json_t *think = json_object_get(delta, "reasoning_content");
        if (!json_is_string(think))
            think = json_object_get(delta, "reasoning");
        json_t *text =
            st->chat ? json_object_get(delta, "content") : json_object_get(choice, "text");
        if (json_is_string(think))
            rc = engine_result_piece(st->res, json_string_value(think), json_string_length(think),
                                     st->t_chunk, 0, st->on_token, st->user, err);
        if (!rc && json_is_string(text))
            rc = engine_result_piece(st->res, json_string_value(text), json_string_length(text),
                                     st->t_chunk, 1, st->on_token, st->user, err);
        json_t *fin = json_object_get(choice, "finish_reason");
        if (json_is_string(fin)) {
            st->finished = 1;
            str_lcpy(st->res->done_reason, json_string_value(fin), sizeof st->res->done_reason);
        }
    }
    json_t *usage = json_object_get(j, "usage");
    if (json_is_object(usage))
        take_usage(st, usage);
    json_t *timings = json_object_get(j, "timings");
    if (json_is_object(timings))
        take_timings(st, timings);
out:
    json_decref(j);
    return rc;
}

static int openai_body(void *user, const char *data, size_t len, double t_s, char *err)
{
    struct ostream *st = user;
    st->t_chunk = t_s;
    return sse_feed(&st->sse, data, len, openai_event, st, err);
}

/* Model not found comes back as 404 (llama.cpp, OpenAI) or 400 (vLLM):
 * either way the list at /v1/models is what the user needs. */
static void model_hint(int rc, const char *model, const char *base, char *err)
{
    if (rc == JB_ERR_NOTFOUND || (rc == JB_ERR_NET && strstr(err, "HTTP 400") &&
                                  strstr(err, "model") && strstr(err, "exist"))) {
        size_t n = strlen(err);
        if (model && *model)
            snprintf(err + n, ERR_LEN - n,
                     "; is '%s' the name the server knows? 'joulebench models -e openai --url "
                     "%s' lists them",
                     model, base);
    }
}

static int openai_generate(struct engine *e, const struct engine_request *req,
                           engine_token_fn on_token, void *user, struct engine_result *res)
{
    struct openai *o = impl(e);
    if (!req->model || !*req->model || !req->prompt)
        return res->status = err_setf(res->error, JB_ERR_USAGE,
                                      "a request needs a model and "
                                      "a prompt");
    if (req->max_tokens <= 0)
        return res->status = err_setf(res->error, JB_ERR_USAGE,
                                      "max_tokens must be positive (it is always sent)");
    int chat = !req->raw;
    char url[640];
    http_join(url, sizeof url, o->base, chat ? "/v1/chat/completions" : "/v1/completions");
    json_t *body = request_body(req, chat);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return res->status = err_setf(res->error, JB_ERR_NOMEM, "out of memory");
    struct ostream st = {.res = res,
                         .on_token = on_token,
                         .user = user,
                         .url = url,
                         .chat = chat,
                         .cached_tokens = -1,
                         .timings_prompt_n = -1};
    sse_init(&st.sse, OPENAI_MAX_LINE);
    long status = 0;
    int rc =
        http_request(o->http, url, text, openai_body, &st, &status, &res->t_sent_s, res->error);
    if (!rc)
        rc = sse_finish(&st.sse, openai_event, &st, res->error);
    res->t_end_s = jb_clock_s();
    /* a stream that ends cleanly after its finish_reason but without
     * [DONE] is complete; one that has neither was cut short */
    if (!rc && !st.done && !st.finished)
        rc = err_setf(res->error, JB_ERR_NET,
                      "the stream from %s ended before 'data: [DONE]' (after %ld pieces); did "
                      "the server stop?",
                      url, res->pieces);
    if (!st.has_usage) {
        res->output_tokens = res->pieces;
        res->output_tokens_estimated = 1;
    }
    if (st.timings_prompt_n >= 0 && st.timings_prompt_n <= 1)
        res->prompt_cached = 1;
    if (st.cached_tokens > 0 && res->prompt_tokens >= 0 &&
        res->prompt_tokens - st.cached_tokens <= 1)
        res->prompt_cached = 1;
    model_hint(rc, req->model, o->base, res->error);
    res->status = rc;
    if (!rc)
        res->error[0] = '\0';
    sse_free(&st.sse);
    free(text);
    return rc;
}

/* ---- listings ---------------------------------------------------------- */

/* /v1/models: ids only in the standard; llama.cpp adds "meta" with the
 * file size and the training context. */
static int openai_list(struct engine *e, struct engine_model_info **out, size_t *n, char *err)
{
    struct openai *o = impl(e);
    *out = NULL;
    *n = 0;
    char url[640];
    http_join(url, sizeof url, o->base, "/v1/models");
    json_t *j;
    int rc = http_json(o->http, url, NULL, &j, NULL, err);
    if (rc) {
        if (rc == JB_ERR_NOTFOUND) {
            size_t len = strlen(err);
            snprintf(err + len, ERR_LEN - len, "; is this an OpenAI-compatible server?");
        }
        return rc;
    }
    json_t *data = json_object_get(j, "data");
    if (!json_is_array(data)) {
        json_decref(j);
        return err_setf(err, JB_ERR_FORMAT,
                        "the answer from %s has no \"data\" list; is this an "
                        "OpenAI-compatible server?",
                        url);
    }
    size_t count = json_array_size(data);
    struct engine_model_info *list = calloc(count ? count : 1, sizeof *list);
    if (!list) {
        json_decref(j);
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < count; i++) {
        json_t *m = json_array_get(data, i);
        engine_model_info_init(&list[i]);
        json_t *id = json_object_get(m, "id");
        if (json_is_string(id))
            str_lcpy(list[i].name, json_string_value(id), sizeof list[i].name);
        json_t *meta = json_object_get(m, "meta");
        json_t *v = json_object_get(meta, "size");
        if (json_is_number(v))
            list[i].size_bytes = (int64_t)json_number_value(v);
        v = json_object_get(meta, "n_ctx_train");
        if (json_is_number(v))
            list[i].context_length = (int64_t)json_number_value(v);
    }
    json_decref(j);
    *out = list;
    *n = count;
    return 0;
}

static int openai_model_info(struct engine *e, const char *model, struct engine_model_info *out,
                             char *err)
{
    engine_model_info_init(out);
    str_lcpy(out->name, model, sizeof out->name);
    struct engine_model_info *list;
    size_t n;
    int rc = openai_list(e, &list, &n, err);
    if (rc)
        return rc;
    char names[256] = "";
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].name, model) == 0) {
            *out = list[i];
            free(list);
            return 0;
        }
        if (i)
            str_lcat(names, ", ", sizeof names);
        str_lcat(names, list[i].name, sizeof names);
    }
    free(list);
    return err_setf(err, JB_ERR_NOTFOUND,
                    "the server at %s does not list a model '%s' (it has: "
                    "%s)",
                    impl(e)->base, model, n ? names : "none");
}

/* No standard endpoint tells the version; vLLM answers /version. */
static int openai_version(struct engine *e, char *buf, size_t size, char *err)
{
    (void)err;
    struct openai *o = impl(e);
    buf[0] = '\0';
    char url[640];
    http_join(url, sizeof url, o->base, "/version");
    json_t *j = NULL;
    char ignore[ERR_LEN];
    if (http_json(o->http, url, NULL, &j, NULL, ignore) == 0) {
        json_t *v = json_object_get(j, "version");
        if (json_is_string(v))
            str_lcpy(buf, json_string_value(v), size);
    }
    json_decref(j);
    return 0;
}

const struct engine_ops engine_openai_ops = {
    .name = "openai",
    .open = openai_open,
    .generate = openai_generate,
    .load = NULL,
    .unload = NULL,
    .list_models = openai_list,
    .model_info = openai_model_info,
    .version = openai_version,
    .close = openai_close,
    .list_running = NULL,
};
