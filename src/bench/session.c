#include "bench/session.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/host.h"
#include "bench/record.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/privilege.h"
#include "common/sig.h"
#include "common/str.h"
#include "common/timeutil.h"
#include "engines/http.h"
#include "grade/grade.h"
#include "infer/store.h"
#include "infer/synth.h"
#include "report/report.h"

/* Output tokens when neither the prompt nor --max-tokens says. A synthetic
 * model never stops by itself, so it gets a shorter default that keeps the
 * fresh-machine run short. */
#define DEFAULT_MAX_TOKENS 512
#define SYNTHETIC_MAX_TOKENS 128
/* An Ollama load_duration above this inside a measured request means the
 * model was (re)loaded during it. */
#define RELOAD_THRESHOLD_S 0.5

struct session_model {
    char name[512];    /* what the engine is asked for (-m, or a path) */
    char display[256]; /* what records and tables call it */
    struct engine_model_info info;
    int have_info;
    int loaded;
    int failed; /* its load or warm-up failed: its requests are skipped */
    int reload_warned;
};

/* A labelled interval for timeline.csv: baseline, load, warmup, prefill,
 * decode. */
struct mark {
    double t0_s, t1_s;
    char phase[12];
    char id[16];
};

struct session {
    const struct runner_options *opt;
    char dir[FS_PATH_MAX];
    struct engine *engine;
    struct engine *judge_engine;
    struct grade_judge judge;
    int have_judge;
    struct jb_meter *meter;
    struct session_model *models;
    size_t n_models;
    json_t *run;
    int fd;
    double t0_s;
    struct jb_power baseline;
    int have_baseline;
    struct mark *marks;
    size_t n_marks, cap_marks;
    unsigned seq;
    session_progress_fn progress;
    void *progress_user;
    unsigned estimated_mask;
    int cached_warned;
    int graders; /* measured records that carry a grader */
    int synthetic;
    /* Set when the run cannot go on (requests.jsonl cannot be written, the
     * server is gone): the code, and the message for people. */
    int fatal;
    char fatal_err[ERR_LEN];
};

int session_fatal(const struct session *s, char *err)
{
    if (s->fatal && err)
        str_lcpy(err, s->fatal_err, ERR_LEN);
    return s->fatal;
}

/* A record that could not be appended ends the run: every later one would
 * be lost too. The message names the file and says what is kept. */
static void record_failed(struct session *s, int rc, const char *why)
{
    if (s->fatal)
        return;
    s->fatal = rc;
    snprintf(s->fatal_err, sizeof s->fatal_err,
             "%s (in %s); stopping the run, keeping the %u records written before it", why, s->dir,
             s->seq - 1);
}

/* Appends rec (may be NULL: out of memory) to requests.jsonl and syncs it
 * to the disk. Returns 0, or the error that made the run fatal: a record
 * that is not on the disk must not be counted as kept. */
static int keep_record(struct session *s, json_t *rec, const char *id)
{
    char err[ERR_LEN];
    int rc = rec ? record_append(s->fd, rec, err)
                 : err_setf(err, JB_ERR_NOMEM, "out of memory building record %s", id);
    if (!rc && fdatasync(s->fd) != 0 && errno != EINVAL && errno != EROFS)
        rc = err_setf(err, fs_errno_code(errno),
                      "cannot sync record %s of requests.jsonl to the disk: %s", id,
                      strerror(errno));
    if (rc)
        record_failed(s, rc, err);
    return rc;
}

const char *session_dir(const struct session *s)
{
    return s->dir;
}

size_t session_model_count(const struct session *s)
{
    return s->n_models;
}

const char *session_model_name(const struct session *s, size_t i)
{
    return s->models[i].display;
}

void session_set_progress(struct session *s, session_progress_fn fn, void *user)
{
    s->progress = fn;
    s->progress_user = user;
}

static void add_mark(struct session *s, double t0, double t1, const char *phase, const char *id)
{
    if (!isfinite(t0) || !isfinite(t1) || t1 <= t0)
        return;
    if (s->n_marks == s->cap_marks) {
        size_t cap = s->cap_marks ? s->cap_marks * 2 : 64;
        struct mark *m = realloc(s->marks, cap * sizeof *m);
        if (!m)
            return; /* the timeline loses a label, nothing else */
        s->marks = m;
        s->cap_marks = cap;
    }
    struct mark *m = &s->marks[s->n_marks++];
    m->t0_s = t0;
    m->t1_s = t1;
    str_lcpy(m->phase, phase, sizeof m->phase);
    str_lcpy(m->id, id ? id : "", sizeof m->id);
}

static void warn_run(struct session *s, const char *fmt, ...) JB_PRINTF(2, 3);
static void warn_run(struct session *s, const char *fmt, ...)
{
    char msg[ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_warn("%s", msg);
    json_array_append_new(json_object_get(s->run, "warnings"), json_string(msg));
}

static int write_run_json(struct session *s, char *err)
{
    char path[FS_PATH_MAX];
    fs_path_join(path, sizeof path, s->dir, "run.json");
    char *text = json_dumps(s->run, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    if (!text)
        return err_setf(err, JB_ERR_NOMEM, "out of memory writing %s", path);
    size_t len = strlen(text);
    int rc = fs_write_atomic(path, text, len, err);
    free(text);
    return rc;
}

/* ---- engine and model choice ---- */

static int looks_like_file(const char *m)
{
    return store_is_path(m) || str_has_suffix(m, ".gguf");
}

static const char *choose_engine(const struct runner_options *opt)
{
    if (opt->engine)
        return opt->engine;
    for (size_t i = 0; i < opt->n_models; i++)
        if (looks_like_file(opt->models[i]))
            return "builtin";
    const char *url = opt->url ? opt->url : ENGINE_DEFAULT_OLLAMA_URL;
    if (engine_ollama_answers(url, 1.0))
        return "ollama";
    log_info("no Ollama server answers at %s: using the built-in engine", url);
    return "builtin";
}

static int open_engine(struct session *s, const char *name, const char *url, struct engine **out,
                       char *err)
{
    const struct runner_options *opt = s->opt;
    struct engine_config cfg = {0};
    cfg.name = name;
    cfg.url = url;
    cfg.timeout_s = opt->timeout_s;
    cfg.ollama_generate = opt->ollama_generate || opt->raw;
    cfg.keep_alive = opt->keep_alive;
    cfg.threads = opt->threads;
    cfg.wait = opt->wait_sleep ? ENGINE_WAIT_SLEEP : ENGINE_WAIT_SPIN;
    cfg.ctx_len = opt->ctx_len;
    return engine_open(out, &cfg, err);
}

static json_t *model_json(const struct session_model *m)
{
    const struct engine_model_info *i = &m->info;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(m->display));
    json_object_set_new(o, "requested", json_string(m->name));
#define STR_OR_NULL(x) ((x)[0] ? json_string(x) : json_null())
    json_object_set_new(o, "digest", STR_OR_NULL(i->digest));
    json_object_set_new(o, "quantization", STR_OR_NULL(i->quantization));
    json_object_set_new(o, "family", STR_OR_NULL(i->family));
    json_object_set_new(o, "parameter_size", STR_OR_NULL(i->parameter_size));
    json_object_set_new(o, "path", STR_OR_NULL(i->path));
#undef STR_OR_NULL
    json_object_set_new(o, "size_bytes",
                        i->size_bytes >= 0 ? json_integer(i->size_bytes) : json_null());
    json_object_set_new(o, "context_length",
                        i->context_length >= 0 ? json_integer(i->context_length) : json_null());
    json_object_set_new(o, "synthetic", json_boolean(i->synthetic));
    return o;
}

/* Resolves the models: those given with -m, or for the built-in engine the
 * default synthetic model. Each is checked with the engine now, so a typo
 * fails before anything is measured. */
static int resolve_models(struct session *s, char *err)
{
    const struct runner_options *opt = s->opt;
    size_t n = opt->n_models ? opt->n_models : 1;
    s->models = calloc(n, sizeof *s->models);
    if (!s->models)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    s->n_models = n;
    if (!opt->n_models) {
        if (strcmp(s->engine->name, "builtin") != 0)
            return err_setf(err, JB_ERR_USAGE,
                            "no model given: name one with -m (see 'joulebench models -e %s')",
                            s->engine->name);
        int rc = synth_default_model(s->models[0].name, sizeof s->models[0].name, err);
        if (rc)
            return rc;
    } else {
        for (size_t i = 0; i < n; i++)
            str_lcpy(s->models[i].name, opt->models[i], sizeof s->models[i].name);
    }
    for (size_t i = 0; i < n; i++) {
        struct session_model *m = &s->models[i];
        str_lcpy(m->display, m->name, sizeof m->display);
        memset(&m->info, 0, sizeof m->info);
        m->info.size_bytes = m->info.context_length = -1;
        if (s->engine->ops->model_info) {
            int rc = s->engine->ops->model_info(s->engine, m->name, &m->info, err);
            if (rc)
                return rc;
            m->have_info = 1;
        }
        if (m->info.synthetic) {
            s->synthetic = 1;
            if (m->info.name[0])
                snprintf(m->display, sizeof m->display, "%s", m->info.name);
        } else if (looks_like_file(m->name) && m->info.name[0]) {
            snprintf(m->display, sizeof m->display, "%s", m->info.name);
        }
    }
    if (s->synthetic)
        log_info("synthetic model: its text is meaningless (random weights); its compute and "
                 "energy are real");
    return 0;
}

static json_t *sensors_json(struct jb_meter *m)
{
    json_t *a = json_array();
    size_t n = jb_meter_sensor_count(m);
    for (size_t i = 0; i < n; i++) {
        const struct jb_sensor_info *si = jb_meter_sensor(m, i);
        json_t *o = json_pack("{s:s,s:s,s:s,s:b,s:b,s:b,s:s,s:s,s:f,s:s,s:s}", "name", si->name,
                              "backend", si->backend, "domain", jb_domain_name(si->domain),
                              "estimated", si->estimated, "readable", si->readable, "used",
                              si->used, "reason", si->reason, "fix", si->fix, "update_period_s",
                              si->update_period_s, "label", si->label, "device", si->device);
        json_object_set_new(o, "parent",
                            si->parent >= 0
                                ? json_string(jb_meter_sensor(m, (size_t)si->parent)->name)
                                : json_null());
        json_object_set_new(o, "kind",
                            json_string(si->kind == JB_SENSOR_POWER ? "power" : "energy"));
        json_object_set_new(o, "read_cost_s",
                            si->read_cost_s > 0 ? json_real(si->read_cost_s) : json_null());
        json_object_set_new(o, "read_interval_s",
                            si->read_interval_s > 0 ? json_real(si->read_interval_s) : json_null());
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *options_json(const struct session *s, const char *suite_name)
{
    const struct runner_options *o = s->opt;
    json_t *j = json_object();
    json_object_set_new(j, "suite", suite_name ? json_string(suite_name) : json_null());
    json_object_set_new(j, "reps", json_integer(o->reps));
    json_object_set_new(j, "warmup", json_integer(o->warmup));
    json_object_set_new(j, "max_tokens", o->max_tokens ? json_integer(o->max_tokens) : json_null());
    json_object_set_new(j, "seed", o->has_seed ? json_integer((json_int_t)o->seed) : json_null());
    json_object_set_new(j, "temperature",
                        isfinite(o->temperature) ? json_real(o->temperature) : json_null());
    json_object_set_new(j, "top_p", isfinite(o->top_p) ? json_real(o->top_p) : json_null());
    json_object_set_new(j, "raw", json_boolean(o->raw));
    json_object_set_new(j, "order", json_string(o->sequential ? "sequential" : "interleaved"));
    json_object_set_new(j, "baseline_s", json_real(o->baseline_s));
    json_object_set_new(j, "interval_ms", json_real(o->interval_ms > 0 ? o->interval_ms : 20));
    json_object_set_new(j, "timeout_s", json_real(o->timeout_s > 0 ? o->timeout_s : 300));
    json_object_set_new(j, "server_wait_s", json_real(o->server_wait_s));
    json_object_set_new(j, "grid_gco2_kwh",
                        isfinite(o->grid_gco2_kwh) ? json_real(o->grid_gco2_kwh) : json_null());
    json_object_set_new(j, "price_kwh",
                        isfinite(o->price_kwh) ? json_real(o->price_kwh) : json_null());
    json_object_set_new(j, "currency", o->currency ? json_string(o->currency) : json_null());
    json_object_set_new(j, "judge", o->judge_model ? json_string(o->judge_model) : json_null());
    json_object_set_new(j, "cpu_watts", o->cpu_watts > 0 ? json_real(o->cpu_watts) : json_null());
    return j;
}

static int make_dir(struct session *s, char *err)
{
    if (s->opt->out_dir) {
        str_lcpy(s->dir, s->opt->out_dir, sizeof s->dir);
    } else {
        char stamp[32];
        time_stamp_compact(stamp, sizeof stamp);
        snprintf(s->dir, sizeof s->dir, "results/%s", stamp);
        /* Two runs in the same second get their own folders. */
        for (int k = 2; fs_exists(s->dir) && k < 100; k++)
            snprintf(s->dir, sizeof s->dir, "results/%s-%d", stamp, k);
    }
    int rc = fs_mkdir_p(s->dir, err);
    if (rc)
        return rc;
    char path[FS_PATH_MAX];
    fs_path_join(path, sizeof path, s->dir, "requests.jsonl");
    if (fs_exists(path))
        return err_setf(err, JB_ERR_USAGE,
                        "%s already holds a run (requests.jsonl): choose another -o folder",
                        s->dir);
    s->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (s->fd < 0)
        return err_setf(err, fs_errno_code(errno), "cannot create %s: %s", path, strerror(errno));
    return 0;
}

int session_open(struct session **out, const struct runner_options *opt, const char *suite_name,
                 char *err)
{
    *out = NULL;
    struct session *s = calloc(1, sizeof *s);
    if (!s)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    s->opt = opt;
    s->fd = -1;
    int rc;
    sig_install();

    /* Sensors first: some need root, and under sudo root is given up right
     * after they are open, before any server, file or generated code. */
    struct jb_meter_options mo;
    jb_meter_options_init(&mo);
    mo.interval_ms = opt->interval_ms;
    mo.cpu_watts = opt->cpu_watts;
    rc = jb_meter_open(&s->meter, &mo, err, ERR_LEN);
    if (rc)
        goto fail;
    struct priv_result pr;
    rc = priv_drop_sudo(&pr, err);
    if (rc) {
        err_prefix(err, "cannot give up root");
        goto fail;
    }

    const char *engine_name = choose_engine(opt);
    rc = open_engine(s, engine_name, opt->url, &s->engine, err);
    if (rc)
        goto fail;
    rc = resolve_models(s, err);
    if (rc)
        goto fail;
    if (opt->judge_model) {
        const char *je = opt->judge_engine ? opt->judge_engine : engine_name;
        const char *ju =
            opt->judge_url ? opt->judge_url : (strcmp(je, engine_name) == 0 ? opt->url : NULL);
        rc = open_engine(s, je, ju, &s->judge_engine, err);
        if (!rc)
            rc = grade_judge_init(&s->judge, s->judge_engine, opt->judge_model, opt->judge_reps,
                                  err);
        if (rc) {
            err_prefix(err, "judge %s", opt->judge_model);
            goto fail;
        }
        s->have_judge = 1;
    }

    rc = make_dir(s, err);
    if (rc)
        goto fail;

    s->run = json_object();
    char now[32];
    time_iso8601(now, sizeof now);
    json_object_set_new(s->run, "schema", json_integer(RECORD_SCHEMA));
    json_object_set_new(s->run, "joulebench_version", json_string(JB_VERSION));
    json_object_set_new(s->run, "status", json_string("running"));
    json_object_set_new(s->run, "started", json_string(now));
    json_object_set_new(s->run, "ended", json_null());
    json_object_set_new(s->run, "host", host_describe());
    char version[64] = "";
    if (s->engine->ops->version)
        s->engine->ops->version(s->engine, version, sizeof version, NULL);
    json_t *ej = json_pack("{s:s,s:s?,s:s?}", "name", s->engine->name, "url",
                           s->engine->url[0] ? s->engine->url : NULL, "version",
                           version[0] ? version : NULL);
    if (strcmp(s->engine->name, "builtin") == 0) {
        json_object_set_new(ej, "threads", opt->threads ? json_integer(opt->threads) : json_null());
        json_object_set_new(ej, "wait", json_string(opt->wait_sleep ? "sleep" : "spin"));
    }
    json_object_set_new(s->run, "engine", ej);
    json_t *models = json_array();
    for (size_t i = 0; i < s->n_models; i++)
        json_array_append_new(models, model_json(&s->models[i]));
    json_object_set_new(s->run, "models", models);
    json_object_set_new(s->run, "sensors", sensors_json(s->meter));
    json_t *gpus = json_object_get(json_object_get(s->run, "host"), "gpus");
    for (size_t i = 0; i < jb_meter_sensor_count(s->meter); i++) {
        const struct jb_sensor_info *si = jb_meter_sensor(s->meter, i);
        if (si->domain == JB_DOMAIN_GPU && si->readable && si->device[0])
            json_array_append_new(gpus, json_string(si->device));
    }
    json_object_set_new(s->run, "options", options_json(s, suite_name));
    if (s->have_judge)
        json_object_set_new(json_object_get(s->run, "options"), "judge",
                            grade_judge_identity(&s->judge));
    json_object_set_new(s->run, "baseline", json_null());
    json_object_set_new(s->run, "warnings", json_array());
    json_object_set_new(s->run, "estimated_domains", json_array());
    json_object_set_new(s->run, "synthetic", json_boolean(s->synthetic));

    for (size_t i = 0; i < jb_meter_sensor_count(s->meter); i++) {
        const struct jb_sensor_info *si = jb_meter_sensor(s->meter, i);
        if (!si->readable && si->reason[0])
            log_info("sensor %s unreadable: %s%s%s", si->name, si->reason, si->fix[0] ? " — " : "",
                     si->fix);
    }
    if (jb_meter_any_estimated(s->meter))
        warn_run(s, "no measured sensor for some domains on this machine: their figures are "
                    "estimated (see 'joulebench sensors')");

    rc = write_run_json(s, err);
    if (rc)
        goto fail;
    rc = jb_meter_start(s->meter);
    if (rc) {
        err_setf(err, rc, "cannot start the meter's sampler thread");
        goto fail;
    }
    s->t0_s = jb_clock_s();
    *out = s;
    return 0;
fail:
    session_close(s);
    return rc;
}

void session_close(struct session *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    engine_close(s->judge_engine);
    engine_close(s->engine);
    jb_meter_close(s->meter);
    if (s->run)
        json_decref(s->run);
    free(s->marks);
    free(s->models);
    free(s);
}

int session_baseline(struct session *s, char *err)
{
    if (!(s->opt->baseline_s > 0))
        return 0;
    log_info("measuring idle power for %g s (leave the machine idle)...", s->opt->baseline_s);
    double t0 = jb_clock_s();
    int rc = jb_meter_baseline(s->meter, s->opt->baseline_s, &sig_stop, &s->baseline);
    add_mark(s, t0, jb_clock_s(), "baseline", NULL);
    if (rc == JB_ERR_INTERRUPTED)
        return err_setf(err, rc, "interrupted during the idle baseline");
    if (rc) {
        warn_run(s, "idle baseline failed (%s): net figures are not available", jb_strerror(rc));
        return 0;
    }
    s->have_baseline = 1;
    json_t *b = json_object();
    json_object_set_new(b, "duration_s", json_real(s->baseline.duration_s));
    json_object_set_new(b, "power_w",
                        record_domains_json(s->baseline.domain_w, s->baseline.domain_valid));
    json_object_set_new(b, "total_w",
                        s->baseline.total_valid ? json_real(s->baseline.total_w) : json_null());
    json_object_set_new(
        b, "estimated_domains",
        record_estimated_json(s->baseline.domain_valid, s->baseline.domain_estimated));
    json_object_set_new(s->run, "baseline", b);
    if (s->baseline.total_valid)
        log_info("idle power: %.2f W%s", s->baseline.total_w,
                 s->baseline.total_estimated ? " (estimated)" : "");
    return write_run_json(s, err);
}

/* ---- one request ---- */

struct tok_ctx {
    struct session *s;
    const char *model;
    const char *prompt_id;
    int rep;
    FILE *stream;
    int marked;
    long pieces;
    double t_first;
    double last_progress;
};

/* Streams pieces: pins the prefill/decode boundary with a meter reading at
 * the first token, echoes text for chat, redraws the progress line a few
 * times a second, and asks the engine to stop on SIGINT/SIGTERM. */
static int on_token(void *user, const char *piece, size_t len, double t_s)
{
    struct tok_ctx *c = user;
    if (!c->marked) {
        double t;
        jb_meter_mark(c->s->meter, &t);
        c->marked = 1;
        c->t_first = t_s;
    }
    c->pieces++;
    if (c->stream && len) {
        fwrite(piece, 1, len, c->stream);
        fflush(c->stream);
    }
    if (sig_stop)
        return 1;
    if (c->s->progress && t_s - c->last_progress > 0.25) {
        c->last_progress = t_s;
        struct session_progress p = {c->model, c->prompt_id, c->rep, c->pieces, NAN, NAN, 0, 0};
        if (c->pieces > 1 && t_s > c->t_first)
            p.tokens_per_s = (double)(c->pieces - 1) / (t_s - c->t_first);
        struct jb_energy e;
        if (jb_meter_energy_between(c->s->meter, t_s - 1.0, t_s, &e) == 0 && e.total_valid &&
            e.duration_s > 0) {
            p.power_w = e.total_j / e.duration_s;
            p.power_estimated = e.total_estimated;
        }
        c->s->progress(c->s->progress_user, &p);
    }
    return 0;
}

static int max_tokens_for(const struct session *s, const struct suite_prompt *p)
{
    if (s->opt->max_tokens > 0)
        return s->opt->max_tokens;
    if (s->synthetic)
        return SYNTHETIC_MAX_TOKENS;
    if (p && p->max_tokens > 0)
        return p->max_tokens;
    return DEFAULT_MAX_TOKENS;
}

static int do_request(struct session *s, size_t mi, const struct suite_prompt *p, int rep,
                      int warmup, int is_load, FILE *stream)
{
    struct session_model *m = &s->models[mi];
    char id[16];
    snprintf(id, sizeof id, "r%04u", ++s->seq);
    struct engine_request req = {0};
    req.model = m->name;
    req.system = p ? p->system : NULL;
    req.prompt = p ? p->prompt : "";
    req.raw = s->opt->raw;
    req.max_tokens = max_tokens_for(s, p);
    req.temperature = s->opt->temperature;
    req.top_p = s->opt->top_p;
    req.has_seed = s->opt->has_seed;
    req.seed = s->opt->seed;
    req.num_ctx = s->opt->ctx_len;

    struct engine_result res;
    engine_result_init(&res);
    struct tok_ctx ctx = {s, m->display, p ? p->id : "", rep, stream, 0, 0, NAN, 0};
    double t_start = jb_clock_s();
    int meter_ok = jb_meter_begin(s->meter, id) == 0;
    int rc = s->engine->ops->generate(s->engine, &req, on_token, &ctx, &res);
    struct jb_energy total, prefill, decode;
    struct jb_energy *pt = NULL, *pp = NULL, *pd = NULL;
    if (meter_ok && jb_meter_end(s->meter, id, &total) == 0)
        pt = &total;
    if (pt && isfinite(res.t_sent_s) && isfinite(res.t_first_s) &&
        jb_meter_energy_between(s->meter, res.t_sent_s, res.t_first_s, &prefill) == 0)
        pp = &prefill;
    if (pt && isfinite(res.t_first_s) && isfinite(res.t_last_s) && res.t_last_s > res.t_first_s &&
        jb_meter_energy_between(s->meter, res.t_first_s, res.t_last_s, &decode) == 0)
        pd = &decode;
    const char *phase_pre = warmup ? "warmup" : "prefill";
    const char *phase_dec = warmup ? "warmup" : "decode";
    /* A request that ended before its first token spent all its time
     * waiting for it: the timeline shows that as prefill, not idle. */
    add_mark(s, res.t_sent_s, isfinite(res.t_first_s) ? res.t_first_s : res.t_end_s, phase_pre, id);
    add_mark(s, res.t_first_s, isfinite(res.t_last_s) ? res.t_last_s : res.t_end_s, phase_dec, id);

    /* A measured request that included a model load (Ollama reports it) is
     * flagged: its prefill holds the load. */
    int loaded_now = is_load;
    if (!warmup && isfinite(res.load_s) && res.load_s > RELOAD_THRESHOLD_S) {
        loaded_now = 1;
        if (!m->reload_warned) {
            m->reload_warned = 1;
            warn_run(s,
                     "%s was loaded again during the run (load %.1f s inside request %s): the "
                     "server cannot keep all models loaded; use --order sequential or let it "
                     "keep them (OLLAMA_MAX_LOADED_MODELS)",
                     m->display, res.load_s, id);
        }
    }
    if (!warmup && res.prompt_cached && !s->cached_warned) {
        s->cached_warned = 1;
        warn_run(s,
                 "the server reused a cached prompt (it reported 0 or 1 prompt tokens, "
                 "first in %s): prefill figures of such requests measure a cache hit",
                 id);
    }

    struct record_input in = {0};
    in.id = id;
    in.model = m->display;
    in.engine = s->engine->name;
    in.prompt_id = p ? p->id : NULL;
    in.tags = p ? p->tags : NULL;
    in.rep = rep;
    in.warmup = warmup;
    in.load = loaded_now;
    in.t_run0_s = s->t0_s;
    in.t_start_s = t_start;
    in.system = req.system;
    in.prompt = req.prompt;
    in.res = &res;
    in.meter = s->meter;
    in.total = pt;
    in.prefill = pp;
    in.decode = pd;
    in.load_e = is_load ? pt : NULL;
    in.baseline = s->have_baseline ? &s->baseline : NULL;
    in.grader = (p && !warmup) ? p->grader : NULL;
    in.grade = NULL; /* graded after the last request (session_finish) */
    in.grid_gco2_kwh = s->opt->grid_gco2_kwh;
    in.price_kwh = s->opt->price_kwh;
    json_t *rec = record_build(&in);
    if (in.grader)
        s->graders++;
    if (pt)
        s->estimated_mask |= pt->domain_estimated & pt->domain_valid;
    int wrc = keep_record(s, rec, id);
    if (rec && !wrc && !s->opt->quiet && !s->opt->json) {
        log_progress_done();
        if (stream)
            fputc('\n', stream);
        FILE *lines = stream || s->opt->lines_to_stderr ? stderr : stdout;
        record_print(lines, rec);
        fflush(lines);
    }
    if (rec)
        json_decref(rec);
    if (rc && rc != JB_ERR_INTERRUPTED && !s->opt->json)
        log_error("%s: %s", id, res.error);
    engine_result_free(&res);
    if (wrc)
        return wrc;
    return rc;
}

int session_request(struct session *s, size_t model, const struct suite_prompt *p, int rep,
                    int warmup, FILE *stream)
{
    return do_request(s, model, p, rep, warmup, 0, stream);
}

static int session_load(struct session *s, size_t mi, const struct suite_prompt *p, char *err);

int session_ensure_loaded(struct session *s, size_t mi, const struct suite_prompt *p, char *err)
{
    struct session_model *m = &s->models[mi];
    if (m->loaded)
        return 0;
    if (m->failed) { /* said once already: skip quietly */
        err[0] = '\0';
        return JB_ERR_STATE;
    }
    int rc = session_load(s, mi, p, err);
    if (rc && rc != JB_ERR_INTERRUPTED)
        m->failed = 1;
    return rc;
}

/* Loads model mi in a window of its own (the cold-start cost), then runs
 * its warm-ups with prompt p. */
static int session_load(struct session *s, size_t mi, const struct suite_prompt *p, char *err)
{
    struct session_model *m = &s->models[mi];
    int rc = 0;
    int warmups = s->opt->warmup;
    if (s->engine->ops->load) {
        char id[16];
        snprintf(id, sizeof id, "r%04u", ++s->seq);
        log_info("loading %s...", m->display);
        struct engine_result res;
        engine_result_init(&res);
        double t0 = jb_clock_s();
        int meter_ok = jb_meter_begin(s->meter, id) == 0;
        rc = s->engine->ops->load(s->engine, m->name, &res);
        struct jb_energy e, *pe = NULL;
        if (meter_ok && jb_meter_end(s->meter, id, &e) == 0)
            pe = &e;
        double t1 = jb_clock_s();
        add_mark(s, t0, t1, "load", id);
        if (isnan(res.t_sent_s))
            res.t_sent_s = t0;
        if (isnan(res.t_end_s))
            res.t_end_s = t1;
        struct record_input in = {0};
        in.id = id;
        in.model = m->display;
        in.engine = s->engine->name;
        in.warmup = 1;
        in.load = 1;
        in.t_run0_s = s->t0_s;
        in.t_start_s = t0;
        in.prompt = "";
        in.res = &res;
        in.meter = s->meter;
        in.total = pe;
        in.load_e = pe;
        in.baseline = s->have_baseline ? &s->baseline : NULL;
        in.grid_gco2_kwh = s->opt->grid_gco2_kwh;
        in.price_kwh = s->opt->price_kwh;
        json_t *rec = record_build(&in);
        int wrc = keep_record(s, rec, id);
        if (rec && !wrc && !s->opt->quiet && !s->opt->json && pe && pe->total_valid)
            log_info("loaded %s in %.2f s: %.2f J%s%s%s", m->display, t1 - t0, pe->total_j,
                     pe->total_estimated ? " (estimated)" : "", record_short_window(rec) ? " " : "",
                     record_short_window(rec) ? RECORD_SHORT_NOTE : "");
        if (rec)
            json_decref(rec);
        if (rc)
            err_setf(err, rc, "cannot load %s: %s", m->display, res.error);
        engine_result_free(&res);
        if (s->fatal)
            return session_fatal(s, err);
        if (rc)
            return rc;
    } else if (warmups < 1) {
        warmups = 1; /* without a load call, the first warm-up loads the model */
    }
    for (int w = 0; w < warmups && !sig_stop; w++) {
        int is_load = !s->engine->ops->load && w == 0;
        rc = do_request(s, mi, p, w, 1, is_load, NULL);
        if (rc == JB_ERR_INTERRUPTED)
            return rc;
        if (rc) {
            return err_setf(err, rc, "warm-up of %s failed (see requests.jsonl)", m->display);
        }
    }
    m->loaded = 1;
    return sig_stop ? JB_ERR_INTERRUPTED : 0;
}

/* ---- a server that went away ---- */

static int ignore_body(void *user, const char *data, size_t len, double t_s, char *err)
{
    (void)user;
    (void)data;
    (void)len;
    (void)t_s;
    (void)err;
    return 0;
}

/* 1 when anything answers HTTP at url within timeout_s: any status counts
 * (a server that answers 404 to "/" is up); 0 when nothing listens or
 * nothing answers. */
static int server_answers(const char *url, double timeout_s)
{
    struct http_options ho = {
        .connect_timeout_s = timeout_s, .idle_timeout_s = timeout_s, .stop = &sig_stop};
    struct http_client *c;
    char err[ERR_LEN];
    if (http_client_open(&c, &ho, err))
        return 1; /* cannot tell: do not stop the run on it */
    long status = 0;
    (void)http_request(c, url, NULL, ignore_body, NULL, &status, NULL, err);
    http_client_close(c);
    return status > 0;
}

int session_check_server(struct session *s, char *err)
{
    double wait_s = s->opt->server_wait_s;
    const char *url = s->engine->url;
    if (!url[0] || !(wait_s > 0) || s->fatal)
        return s->fatal;
    if (server_answers(url, 2.0))
        return 0;
    if (sig_stop)
        return JB_ERR_INTERRUPTED;
    log_warn("%s is not answering; waiting up to %.0f s for it to come back (--server-wait)", url,
             wait_s);
    double t0 = jb_clock_s();
    while (!sig_stop) {
        double left = wait_s - (jb_clock_s() - t0);
        if (left <= 0)
            break;
        time_sleep_s(left < 0.25 ? left : 0.25, &sig_stop);
        if (server_answers(url, 1.0)) {
            log_info("%s answers again after %.1f s; going on", url, jb_clock_s() - t0);
            /* A restarted server has no model loaded: each is loaded (and
             * warmed up) again before its next measured request, and one
             * whose load or warm-up died with the server gets another try. */
            for (size_t i = 0; i < s->n_models; i++) {
                s->models[i].loaded = 0;
                s->models[i].failed = 0;
            }
            return 0;
        }
    }
    if (sig_stop)
        return JB_ERR_INTERRUPTED;
    s->fatal = JB_ERR_NET;
    snprintf(s->fatal_err, sizeof s->fatal_err,
             "%s has not answered for %.0f s: stopping the run, keeping the %u records written "
             "(raise --server-wait to wait longer)",
             url, wait_s, s->seq);
    return session_fatal(s, err);
}

/* ---- the end ---- */

/* timeline.csv: one row per sampler interval (short intervals merged), the
 * phase it falls in, and each sensor's mean watts over it. The watts come
 * from the meter's interval energy, so a counter that moves in steps
 * (NVML's, every 100 ms) reads as the power between its steps rather than
 * as 0 W rows and spikes. */
static int write_timeline(struct session *s, char *err)
{
    char path[FS_PATH_MAX];
    fs_path_join(path, sizeof path, s->dir, "timeline.csv");
    FILE *f = fopen(path, "w");
    if (!f)
        return err_setf(err, fs_errno_code(errno), "cannot write %s: %s", path, strerror(errno));
    size_t ns = jb_meter_sensor_count(s->meter);
    fputs("t_s,phase,request_id", f);
    for (size_t i = 0; i < ns; i++)
        fprintf(f, ",%s_w", jb_meter_sensor(s->meter, i)->name);
    fputc('\n', f);
    size_t n = jb_meter_timeline_len(s->meter);
    double min_dt = (s->opt->interval_ms > 0 ? s->opt->interval_ms : 20) * 1e-3 * 0.5;
    double jp[JB_MAX_SENSORS], jc[JB_MAX_SENSORS], tp = 0, tc;
    unsigned char vp[JB_MAX_SENSORS], vc[JB_MAX_SENSORS];
    int have_prev = 0;
    size_t mk = 0;
    for (size_t i = 0; i < n; i++) {
        if (jb_meter_timeline_get(s->meter, i, &tc, jc, vc))
            break;
        if (!have_prev) {
            memcpy(jp, jc, sizeof jp);
            memcpy(vp, vc, sizeof vp);
            tp = tc;
            have_prev = 1;
            continue;
        }
        double dt = tc - tp;
        if (dt < min_dt)
            continue;
        double mid = 0.5 * (tp + tc);
        while (mk < s->n_marks && s->marks[mk].t1_s < mid)
            mk++;
        const struct mark *hit = NULL;
        for (size_t k = mk; k < s->n_marks && s->marks[k].t0_s <= mid; k++)
            if (s->marks[k].t1_s >= mid)
                hit = &s->marks[k];
        fprintf(f, "%.3f,%s,%s", tc - s->t0_s, hit ? hit->phase : "idle", hit ? hit->id : "");
        struct jb_energy e;
        int have_e = jb_meter_energy_between(s->meter, tp, tc, &e) == 0;
        for (size_t k = 0; k < ns; k++) {
            if (have_e && e.sensor_valid[k])
                fprintf(f, ",%.4f", e.sensor_j[k] / dt);
            else if (!have_e && vp[k] && vc[k])
                fprintf(f, ",%.4f", (jc[k] - jp[k]) / dt);
            else
                fputc(',', f);
        }
        fputc('\n', f);
        memcpy(jp, jc, sizeof jp);
        memcpy(vp, vc, sizeof vp);
        tp = tc;
    }
    if (fclose(f))
        return err_setf(err, JB_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return 0;
}

int session_finish(struct session *s, int rc, char *err)
{
    const char *status = s->fatal                        ? "failed"
                         : (rc == 0 || rc == JB_ERR_NET) ? "complete"
                         : rc == JB_ERR_INTERRUPTED      ? "interrupted"
                                                         : "failed";
    if (rc == JB_ERR_INTERRUPTED)
        log_warn("interrupted: keeping what was measured in %s", s->dir);
    char terr[ERR_LEN];
    if (write_timeline(s, terr))
        warn_run(s, "%s", terr);
    json_object_set_new(s->run, "estimated_domains",
                        record_estimated_json(s->estimated_mask, s->estimated_mask));
    char now[32];
    time_iso8601(now, sizeof now);
    json_object_set_new(s->run, "ended", json_string(now));
    json_object_set_new(s->run, "status", json_string(status));
    if (s->fd >= 0)
        fsync(s->fd);
    int wrc = write_run_json(s, err);
    if (wrc)
        return wrc;

    /* Grading runs generated code and asks a judge: it happens after the last
     * measured request, so it never heats the machine between two of them. */
    if (s->graders && !s->opt->no_grade && rc != JB_ERR_INTERRUPTED && !s->fatal) {
        struct grade_options go = {0};
        go.judge = s->have_judge ? &s->judge : NULL;
        struct grade_run_summary gs = {0};
        char gerr[ERR_LEN];
        log_info("grading %d answer%s...", s->graders, s->graders == 1 ? "" : "s");
        if (grade_run_dir(s->dir, &go, 0, 1, &gs, gerr))
            log_error("grading: %s (grade later with 'joulebench grade %s')", gerr, s->dir);
        else if (gs.skipped && !s->opt->quiet)
            log_info("%d answer%s left ungraded (see 'skipped' in requests.jsonl)%s", gs.skipped,
                     gs.skipped == 1 ? "" : "s",
                     s->have_judge ? "" : "; judge-graded prompts need --judge MODEL");
    } else if (s->graders && (rc == JB_ERR_INTERRUPTED || s->fatal)) {
        /* a disk that is full or a server that is gone would fail it too */
        log_info("not graded (%s): grade with 'joulebench grade %s'",
                 s->fatal ? "the run failed" : "interrupted", s->dir);
    }

    struct report_options ro;
    report_options_init(&ro);
    struct buf table = {0};
    ro.table = &table;
    ro.quiet = s->opt->quiet;
    char rerr[ERR_LEN];
    if (report_build(s->dir, &ro, rerr)) {
        log_error("report: %s (the measurements are kept in %s; retry with 'joulebench report "
                  "%s')",
                  rerr, s->dir, s->dir);
        buf_free(&table);
        return 0;
    }
    if (s->opt->json) {
        json_t *sum = NULL;
        if (report_summary_json(s->dir, 1, &sum, rerr) == 0) {
            json_dumpf(sum, stdout, JSON_INDENT(2));
            fputc('\n', stdout);
            json_decref(sum);
        } else {
            log_error("report: %s", rerr);
        }
    } else if (!s->opt->quiet) {
        fputc('\n', stdout);
        fwrite(buf_str(&table), 1, table.len, stdout);
        fflush(stdout);
        log_info("results, table and charts: %s", s->dir);
    }
    buf_free(&table);
    return 0;
}
