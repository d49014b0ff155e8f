/*
 * joulebench models [-e ENGINE] [--url URL] [--json] [--running] [--timeout S]
 *
 * Lists what an engine offers: name, size, quantization, family, parameter
 * count and digest, as far as the engine tells. With no -e, Ollama is used
 * when it answers at its address, otherwise the built-in engine, which
 * lists the models of Ollama's store it can run (see pick_engine()).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/log.h"
#include "common/str.h"
#include "common/fs.h"
#include "engines/engine.h"
#include "infer/store.h"

static const char *const models_usage =
    "usage: joulebench models [-e ENGINE] [--url URL] [--json] [--running] [--timeout S]\n"
    "\n"
    "Lists the models an engine offers, with size, quantization, family and digest\n"
    "where the engine tells.\n"
    "\n"
    "  -e, --engine ENGINE  ollama, openai or builtin (default: ollama when it answers at\n"
    "                       its URL, else builtin: the models of Ollama's store,\n"
    "                       $OLLAMA_MODELS or ~/.ollama/models, that it can run)\n"
    "  --url URL            the server (ollama: " ENGINE_DEFAULT_OLLAMA_URL ",\n"
    "                       openai: " ENGINE_DEFAULT_OPENAI_URL ")\n"
    "  --json               one JSON object on stdout: {\"engine\", \"url\", \"models\": [...]}\n"
    "  --running            only the models loaded now, with their GPU memory (ollama)\n"
    "  --timeout S          give up when the server is silent for S seconds (default 30)\n";

struct models_opts {
    const char *engine; /* NULL: pick */
    const char *url;
    int json;
    int running;
    double timeout_s;
};

/* "--opt VALUE" or "--opt=VALUE"; *i moves past what was used. Returns the
 * value, or NULL when opt is not this option. */
static const char *opt_value(int argc, char **argv, int *i, const char *short_name,
                             const char *long_name, int *missing)
{
    const char *a = argv[*i];
    size_t n = strlen(long_name);
    if (strncmp(a, long_name, n) == 0 && a[n] == '=')
        return a + n + 1;
    if (strcmp(a, long_name) != 0 && !(short_name && strcmp(a, short_name) == 0))
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

static int parse(int argc, char **argv, struct models_opts *o, int *done)
{
    *done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v;
        int missing = 0;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(models_usage, stdout);
            *done = 1;
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (strcmp(a, "--running") == 0) {
            o->running = 1;
        } else if ((v = opt_value(argc, argv, &i, "-e", "--engine", &missing))) {
            o->engine = v;
        } else if ((v = opt_value(argc, argv, &i, NULL, "--url", &missing))) {
            o->url = v;
        } else if ((v = opt_value(argc, argv, &i, NULL, "--timeout", &missing))) {
            if (cli_double("models", "--timeout", v, 0.1, 86400, &o->timeout_s))
                return 2;
        } else if (missing) {
            return cli_usage_error("models", "%s needs a value", a);
        } else {
            return cli_usage_error("models", "unknown option '%s'", a);
        }
    }
    if (o->engine && !engine_available(o->engine)) {
        return cli_usage_error("models", "unknown engine '%s' (choose ollama, openai or builtin)",
                               o->engine);
    }
    return 0;
}

/* The default engine: Ollama when it answers, else the built-in engine
 * (unless a --url says a server was meant). */
static const char *pick_engine(const struct models_opts *o)
{
    if (engine_ollama_answers(o->url, 2.0))
        return "ollama";
    if (engine_available("builtin") && !o->url)
        return "builtin";
    return NULL;
}

static void human_size(int64_t bytes, char *dst, size_t size)
{
    if (bytes < 0)
        snprintf(dst, size, "-");
    else if (bytes >= 1000000000)
        snprintf(dst, size, "%.1f GB", (double)bytes / 1e9);
    else if (bytes >= 1000000)
        snprintf(dst, size, "%.0f MB", (double)bytes / 1e6);
    else if (bytes >= 1000)
        snprintf(dst, size, "%.0f kB", (double)bytes / 1e3);
    else
        snprintf(dst, size, "%lld B", (long long)bytes);
}

static const char *or_dash(const char *s)
{
    return s && *s ? s : "-";
}

/* The digest without its "sha256:" prefix, cut to 12 characters, as
 * 'ollama list' shows it. */
static void short_digest(const char *d, char *dst, size_t size)
{
    if (str_has_prefix(d, "sha256:"))
        d += 7;
    snprintf(dst, size, "%.12s", or_dash(d));
}

static void print_table(const struct engine_model_info *m, size_t n, int running)
{
    int w_name = 4, w_quant = 5, w_family = 6, w_params = 6;
    for (size_t i = 0; i < n; i++) {
        int l;
        if ((l = (int)strlen(or_dash(m[i].name))) > w_name)
            w_name = l;
        if ((l = (int)strlen(or_dash(m[i].quantization))) > w_quant)
            w_quant = l;
        if ((l = (int)strlen(or_dash(m[i].family))) > w_family)
            w_family = l;
        if ((l = (int)strlen(or_dash(m[i].parameter_size))) > w_params)
            w_params = l;
    }
    int w_digest = running ? 12 : 0; /* no padding at the end of a line */
    printf("%-*s  %9s  %-*s  %-*s  %-*s  %-*s%s\n", w_name, "NAME", "SIZE", w_quant, "QUANT",
           w_family, "FAMILY", w_params, "PARAMS", w_digest, "DIGEST", running ? "  IN GPU" : "");
    for (size_t i = 0; i < n; i++) {
        char size[32], digest[16], vram[32] = "";
        human_size(m[i].size_bytes, size, sizeof size);
        short_digest(m[i].digest, digest, sizeof digest);
        if (running)
            human_size(m[i].vram_bytes, vram, sizeof vram);
        printf("%-*s  %9s  %-*s  %-*s  %-*s  %-*s%s%s\n", w_name, or_dash(m[i].name), size, w_quant,
               or_dash(m[i].quantization), w_family, or_dash(m[i].family), w_params,
               or_dash(m[i].parameter_size), w_digest, digest, running ? "  " : "", vram);
    }
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *int_or_null(int64_t v)
{
    return v >= 0 ? json_integer((json_int_t)v) : json_null();
}

static int print_json(const char *engine, const char *url, const struct engine_model_info *m,
                      size_t n, int running)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(m[i].name));
        json_object_set_new(o, "size_bytes", int_or_null(m[i].size_bytes));
        json_object_set_new(o, "quantization", str_or_null(m[i].quantization));
        json_object_set_new(o, "digest", str_or_null(m[i].digest));
        json_object_set_new(o, "family", str_or_null(m[i].family));
        json_object_set_new(o, "parameter_size", str_or_null(m[i].parameter_size));
        json_object_set_new(o, "context_length", int_or_null(m[i].context_length));
        if (running)
            json_object_set_new(o, "vram_bytes", int_or_null(m[i].vram_bytes));
        if (m[i].synthetic)
            json_object_set_new(o, "synthetic", json_true());
        if (m[i].path[0])
            json_object_set_new(o, "path", json_string(m[i].path));
        json_array_append_new(arr, o);
    }
    json_t *root =
        json_pack("{s:s, s:o, s:o}", "engine", engine, "url", str_or_null(url), "models", arr);
    int rc = json_dumpf(root, stdout, JSON_INDENT(2)) ? 1 : 0;
    fputc('\n', stdout);
    json_decref(root);
    return rc;
}

/* The built-in engine lists Ollama's store: when it is empty, name the
 * folder looked in and the other way to run the engine. */
static void builtin_empty_note(void)
{
    char dir[FS_PATH_MAX], err[ERR_LEN];
    if (store_default_dir(dir, sizeof dir, err))
        str_lcpy(dir, "Ollama's store", sizeof dir);
    log_info("no models in %s (set OLLAMA_MODELS to another store, or 'ollama pull NAME'); "
             "the built-in engine also runs any GGUF file: joulebench run -e builtin -m "
             "FILE.gguf (or a synthetic model: joulebench synth)",
             dir);
}

int cmd_models(int argc, char **argv)
{
    struct models_opts o = {.timeout_s = 30};
    int done;
    int rc = parse(argc, argv, &o, &done);
    if (rc || done)
        return rc;
    const char *engine = o.engine;
    if (!engine) {
        engine = pick_engine(&o);
        if (!engine) {
            log_error("no Ollama server answers at %s; is Ollama running? start it with "
                      "'ollama serve', or name the engine: -e openai --url http://HOST:PORT",
                      o.url ? o.url : ENGINE_DEFAULT_OLLAMA_URL);
            return 1;
        }
    }
    struct engine_config cfg = {.name = engine, .url = o.url, .timeout_s = o.timeout_s};
    struct engine *e = NULL;
    char err[ERR_LEN];
    rc = engine_open(&e, &cfg, err);
    if (rc) {
        log_error("%s", err);
        return err_exit_code(rc);
    }
    const char *url = e->url[0]                       ? e->url
                      : strcmp(engine, "ollama") == 0 ? ENGINE_DEFAULT_OLLAMA_URL
                      : strcmp(engine, "openai") == 0 ? ENGINE_DEFAULT_OPENAI_URL
                                                      : NULL;
    struct engine_model_info *list = NULL;
    size_t n = 0;
    if (o.running && !e->ops->list_running) {
        engine_close(e);
        return cli_usage_error("models",
                               "--running needs an engine that reports its loaded "
                               "models (ollama), not %s",
                               engine);
    }
    rc = o.running ? e->ops->list_running(e, &list, &n, err)
                   : e->ops->list_models(e, &list, &n, err);
    if (rc) {
        log_error("%s", err);
        engine_close(e);
        return err_exit_code(rc);
    }
    if (o.json) {
        rc = print_json(engine, url, list, n, o.running);
    } else if (n == 0) {
        if (o.running)
            log_info("no model is loaded in %s at %s right now", engine, or_dash(url));
        else if (strcmp(engine, "ollama") == 0)
            log_info("Ollama at %s has no models yet; get one with 'ollama pull NAME' "
                     "(e.g. 'ollama pull qwen2.5:7b')",
                     or_dash(url));
        else if (strcmp(engine, "builtin") == 0)
            builtin_empty_note();
        else
            log_info("the %s engine at %s lists no models", engine, or_dash(url));
    } else {
        print_table(list, n, o.running);
    }
    free(list);
    engine_close(e);
    return rc;
}
