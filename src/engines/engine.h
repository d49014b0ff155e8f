/*
 * engine.h — one interface to every inference engine joulebench measures:
 * Ollama, OpenAI-compatible servers (llama.cpp server, vLLM, LM Studio,
 * mlx_lm.server, Ollama's /v1) and the built-in engine.
 *
 *     struct engine *e;
 *     engine_open(&e, &cfg, err);
 *     struct engine_result res;
 *     engine_result_init(&res);
 *     rc = e->ops->generate(e, &req, on_token, user, &res);
 *     ... res.output_tokens, res.t_first_s ...
 *     engine_result_free(&res);
 *     engine_close(e);
 *
 * Ownership: engine_open() allocates the engine, engine_close() frees it.
 * engine_result is caller-owned; generate() fills it (heap parts: response,
 * token_t_s, prompt_ids, output_ids, server_json) and engine_result_free()
 * releases them. Strings in requests and configs are borrowed for the call.
 *
 * Timing: every timestamp is jb_clock_s(). generate() fills what it reached
 * even when it fails, so the runner can record a half-finished request.
 */
#ifndef JB_ENGINES_ENGINE_H
#define JB_ENGINES_ENGINE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

#define ENGINE_DEFAULT_OLLAMA_URL "http://127.0.0.1:11434"
#define ENGINE_DEFAULT_OPENAI_URL "http://127.0.0.1:8080"

enum engine_wait { ENGINE_WAIT_SPIN = 0, ENGINE_WAIT_SLEEP = 1 };

struct engine_config {
    const char *name;         /* "ollama", "openai", "builtin" */
    const char *url;          /* NULL: the engine's default */
    const char *api_key;      /* openai: bearer token, or NULL ($OPENAI_API_KEY) */
    double timeout_s;         /* no byte from the server for this long: give up; 0 = 300 */
    double connect_timeout_s; /* 0 = 5 */
    int ollama_generate;      /* ollama: 1 = /api/generate, 0 = /api/chat (default) */
    const char *keep_alive;   /* ollama keep_alive, NULL = server default */
    /* builtin */
    int threads;           /* 0 = all cores */
    enum engine_wait wait; /* thread pool wait policy (recorded: it changes joules) */
    int ctx_len;           /* 0 = model's, capped at 4096 */
};

struct engine_request {
    const char *model;
    const char *system; /* NULL: none */
    const char *prompt;
    int raw;            /* 1: no chat template */
    int max_tokens;     /* always sent explicitly */
    double temperature; /* NAN: engine default; 0: greedy */
    double top_p;       /* NAN: engine default */
    int has_seed;
    uint64_t seed;
    int num_ctx; /* 0: engine default */
};

/* Called for every streamed piece of text; t_s is when it arrived. Return
 * non-zero to stop the request (generate() then returns JB_ERR_INTERRUPTED). */
typedef int (*engine_token_fn)(void *user, const char *piece, size_t len, double t_s);

struct engine_result {
    /* client-side timing (jb_clock_s), NAN where not reached */
    double t_sent_s;  /* request handed to the server / engine */
    double t_first_s; /* first non-empty piece */
    double t_last_s;  /* last piece */
    double t_end_s;   /* stream finished */
    /* built-in engine only: exact in-process phase marks */
    double t_tokenized_s;   /* tokenizer done (prefill starts) */
    double t_prefill_end_s; /* prompt processed, first logits ready */
    double *token_t_s;      /* arrival time of each piece (heap) */
    size_t n_token_t, cap_token_t;

    /* counts: server-reported where available, -1 unknown */
    long prompt_tokens, output_tokens;
    int prompt_tokens_estimated; /* 1: counted by joulebench, not by the server */
    int output_tokens_estimated;
    int prompt_cached; /* server reported 0 or 1 prompt tokens: cache hit */
    long pieces;       /* streamed pieces seen */

    /* server-reported durations in seconds, NAN when not reported */
    double load_s, prompt_eval_s, eval_s, total_s;
    char done_reason[32]; /* "stop", "length", ... */

    struct buf response;          /* the generated text */
    int *prompt_ids, *output_ids; /* built-in engine: token ids (heap) */
    size_t n_prompt_ids, n_output_ids;
    json_t *server_json; /* extra server fields (llama.cpp "timings"), or NULL */

    int status;          /* 0 or JB_ERR_* */
    char error[ERR_LEN]; /* message when status != 0 */
};

void engine_result_init(struct engine_result *r);
void engine_result_free(struct engine_result *r);
/* Appends a token timestamp (used by the implementations). */
int engine_result_push_time(struct engine_result *r, double t_s);
/* Records one streamed piece that arrived at t_s (used by the
 * implementations): counts it, stamps it, sets t_first_s/t_last_s, appends
 * it to response when in_response (reasoning/"thinking" pieces are timed and
 * counted but kept out of the answer), then calls on_token (may be NULL).
 * Empty pieces are ignored. Returns 0, JB_ERR_NOMEM (response over its cap)
 * or JB_ERR_INTERRUPTED when on_token asked to stop; err says which. */
int engine_result_piece(struct engine_result *r, const char *piece, size_t len, double t_s,
                        int in_response, engine_token_fn on_token, void *user, char *err);

struct engine_model_info {
    char name[128];
    char digest[80];         /* sha256 hex where the engine tells */
    char quantization[32];   /* "Q4_K_M" */
    char family[32];         /* "qwen2" */
    char parameter_size[32]; /* "7.6B" */
    int64_t size_bytes;      /* -1 unknown */
    int64_t context_length;  /* -1 unknown */
    int64_t vram_bytes;      /* running models (list_running): bytes in GPU memory, -1 unknown */
    int synthetic;           /* built-in synthetic model: text is meaningless */
    char path[512];          /* built-in: the GGUF file */
};

struct engine;

struct engine_ops {
    const char *name;
    int (*open)(struct engine *e, char *err);
    /* Streams one request. Fills res as far as it got; returns res->status. */
    int (*generate)(struct engine *e, const struct engine_request *req, engine_token_fn on_token,
                    void *user, struct engine_result *res);
    /* Loads the model so that the next request measures no load (Ollama: an
     * empty prompt; built-in: map and touch the weights). May be NULL: the
     * runner then loads with a short warm-up request. res gets load_s. */
    int (*load)(struct engine *e, const char *model, struct engine_result *res);
    /* Unloads the model (Ollama keep_alive 0), or NULL. */
    int (*unload)(struct engine *e, const char *model, char *err);
    /* Lists the models (heap array, caller frees). */
    int (*list_models)(struct engine *e, struct engine_model_info **out, size_t *n, char *err);
    int (*model_info)(struct engine *e, const char *model, struct engine_model_info *out,
                      char *err);
    /* Server or engine version into buf ("0.5.7"); "" if unknown. */
    int (*version)(struct engine *e, char *buf, size_t size, char *err);
    void (*close)(struct engine *e);
    /* Lists the models loaded right now (Ollama /api/ps: size and
     * vram_bytes tell how much sits in GPU memory), or NULL. Heap array,
     * caller frees. */
    int (*list_running)(struct engine *e, struct engine_model_info **out, size_t *n, char *err);
};

struct engine {
    const struct engine_ops *ops;
    struct engine_config cfg; /* strings copied into store below */
    char url[512];
    char name[32];
    void *impl; /* the implementation's state */
};

/* Looks the name up in the engine table and opens it. */
int engine_open(struct engine **out, const struct engine_config *cfg, char *err);
void engine_close(struct engine *e);
/* 1 if the engine table has an engine of that name in this build. */
int engine_available(const char *name);
/* Fills the "unknown" values of a model info (-1 sizes, empty strings). */
void engine_model_info_init(struct engine_model_info *m);
/* 1 if an Ollama server answers at url (NULL: default) within timeout_s. */
int engine_ollama_answers(const char *url, double timeout_s);

extern const struct engine_ops engine_ollama_ops;
extern const struct engine_ops engine_openai_ops;
extern const struct engine_ops engine_builtin_ops;

#endif
