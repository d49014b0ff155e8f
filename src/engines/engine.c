#include "engines/engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/str.h"

/* The engine table: a plain array, searched by name. The built-in engine
 * joins it (&engine_builtin_ops) when src/engines/builtin.c exists. */
static const struct engine_ops *const engine_table[] = {
    &engine_ollama_ops,
    &engine_openai_ops,
    &engine_builtin_ops,
};

void engine_result_init(struct engine_result *r)
{
    memset(r, 0, sizeof *r);
    r->t_sent_s = r->t_first_s = r->t_last_s = r->t_end_s = NAN;
    r->t_tokenized_s = r->t_prefill_end_s = NAN;
    r->prompt_tokens = r->output_tokens = -1;
    r->load_s = r->prompt_eval_s = r->eval_s = r->total_s = NAN;
    buf_init(&r->response, 64u << 20);
}

void engine_result_free(struct engine_result *r)
{
    free(r->token_t_s);
    free(r->prompt_ids);
    free(r->output_ids);
    buf_free(&r->response);
    if (r->server_json)
        json_decref(r->server_json);
    engine_result_init(r);
    buf_free(&r->response);
}

int engine_result_push_time(struct engine_result *r, double t_s)
{
    if (r->n_token_t == r->cap_token_t) {
        size_t cap = r->cap_token_t ? r->cap_token_t * 2 : 256;
        double *p = realloc(r->token_t_s, cap * sizeof *p);
        if (!p)
            return JB_ERR_NOMEM;
        r->token_t_s = p;
        r->cap_token_t = cap;
    }
    r->token_t_s[r->n_token_t++] = t_s;
    return 0;
}

int engine_result_piece(struct engine_result *r, const char *piece, size_t len, double t_s,
                        int in_response, engine_token_fn on_token, void *user, char *err)
{
    if (!len)
        return 0;
    if (engine_result_push_time(r, t_s))
        return err_setf(err, JB_ERR_NOMEM, "out of memory keeping token times");
    r->pieces++;
    if (isnan(r->t_first_s))
        r->t_first_s = t_s;
    r->t_last_s = t_s;
    if (in_response && buf_append(&r->response, piece, len))
        return err_setf(err, JB_ERR_NOMEM, "the answer is longer than %zu MiB; stopped reading it",
                        r->response.max >> 20);
    if (on_token && on_token(user, piece, len, t_s))
        return err_setf(err, JB_ERR_INTERRUPTED, "stopped by the caller after %ld pieces",
                        r->pieces);
    return 0;
}

void engine_model_info_init(struct engine_model_info *m)
{
    memset(m, 0, sizeof *m);
    m->size_bytes = m->context_length = m->vram_bytes = -1;
}

int engine_available(const char *name)
{
    for (size_t i = 0; i < sizeof engine_table / sizeof engine_table[0]; i++)
        if (engine_table[i] && strcmp(engine_table[i]->name, name) == 0)
            return 1;
    return 0;
}

int engine_open(struct engine **out, const struct engine_config *cfg, char *err)
{
    *out = NULL;
    const struct engine_ops *ops = NULL;
    for (size_t i = 0; i < sizeof engine_table / sizeof engine_table[0]; i++)
        if (engine_table[i] && strcmp(engine_table[i]->name, cfg->name) == 0)
            ops = engine_table[i];
    if (!ops)
        return err_setf(err, JB_ERR_USAGE, "unknown engine '%s' (choose ollama, openai or builtin)",
                        cfg->name);
    struct engine *e = calloc(1, sizeof *e);
    if (!e)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    e->ops = ops;
    e->cfg = *cfg;
    str_lcpy(e->name, cfg->name, sizeof e->name);
    if (cfg->url)
        str_lcpy(e->url, cfg->url, sizeof e->url);
    e->cfg.name = e->name;
    e->cfg.url = e->url[0] ? e->url : NULL;
    int rc = ops->open(e, err);
    if (rc) {
        free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void engine_close(struct engine *e)
{
    if (!e)
        return;
    if (e->ops->close)
        e->ops->close(e);
    free(e);
}
