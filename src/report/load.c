/*
 * load.c — reading a run directory: run.json, requests.jsonl and
 * timeline.csv into struct report_run (rundata.h).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/str.h"
#include "report/csv.h"
#include "report/rundata.h"

#define RUN_JSON_MAX ((size_t)64 << 20)
#define REQUESTS_MAX ((size_t)2 << 30)
#define TIMELINE_MAX ((size_t)1 << 30)

static const char *const phase_names[REPORT_PHASE_COUNT] = {"",        "baseline", "load", "warmup",
                                                            "prefill", "decode",   "idle"};

const char *report_phase_name(enum report_phase p)
{
    return (unsigned)p < REPORT_PHASE_COUNT ? phase_names[p] : "";
}

double report_jnum(const json_t *obj, const char *key)
{
    const json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || !json_is_number(v))
        return NAN;
    double d = json_number_value(v);
    return isfinite(d) ? d : NAN;
}

const char *report_jstr(const json_t *obj, const char *key)
{
    const json_t *v = obj ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

int report_jbool(const json_t *obj, const char *key, int def)
{
    const json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (json_is_boolean(v))
        return json_is_true(v);
    return def;
}

/* Logs a warning (unless quiet) and keeps it for summary.md and --json. */
static void add_warning(struct report_run *run, int quiet, const char *fmt, ...) JB_PRINTF(3, 4);
static void add_warning(struct report_run *run, int quiet, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!quiet)
        log_warn("%s", msg);
    json_array_append_new(run->warnings, json_string(msg));
}

/* Reads an object of domain -> number into v[] (NaN elsewhere); returns
 * the bit set of domains present. Unknown domain names are ignored. */
static unsigned read_domains(const json_t *obj, double v[JB_DOMAIN_COUNT])
{
    for (int d = 0; d < JB_DOMAIN_COUNT; d++)
        v[d] = NAN;
    unsigned bits = 0;
    if (!json_is_object(obj))
        return 0;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val)
    {
        int d = jb_domain_from_name(key);
        if (d < 0 || !json_is_number(val))
            continue;
        v[d] = json_number_value(val);
        bits |= 1u << d;
    }
    return bits;
}

static unsigned read_domain_list(const json_t *arr)
{
    unsigned bits = 0;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        int d = json_is_string(v) ? jb_domain_from_name(json_string_value(v)) : -1;
        if (d >= 0)
            bits |= 1u << d;
    }
    return bits;
}

static unsigned read_flags(const json_t *arr)
{
    static const struct {
        const char *name;
        unsigned bit;
    } known[] = {{"short_window", REPORT_FLAG_SHORT},
                 {"counter_wrap", REPORT_FLAG_WRAP},
                 {"sensor_lost", REPORT_FLAG_LOST},
                 {"counter_reset", REPORT_FLAG_RESET}};
    unsigned bits = 0;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v))
            continue;
        unsigned bit = REPORT_FLAG_OTHER;
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            if (strcmp(json_string_value(v), known[k].name) == 0)
                bit = known[k].bit;
        bits |= bit;
    }
    return bits;
}

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

/* Copies one record's numbers into the flat struct the statistics use;
 * any field that is absent, null or of the wrong type becomes NaN (or
 * "" / 0 for ids and booleans), never a number it was not. */
static void fill_record(struct report_record *r, const json_t *o, size_t line)
{
    static const char *const rp_names[REPORT_RP_COUNT] = {"load", "prefill", "decode"};
    memset(r, 0, sizeof *r);
    r->line = line;
    r->obj = o;
    r->id = str_or_empty(report_jstr(o, "id"));
    r->model = str_or_empty(report_jstr(o, "model"));
    r->prompt_id = str_or_empty(report_jstr(o, "prompt_id"));
    const json_t *e = json_object_get(o, "error");
    r->error = json_is_string(e) ? json_string_value(e) : NULL;
    if (r->error && !*r->error)
        r->error = "error (no message)";
    double rep = report_jnum(o, "rep");
    r->rep = isfinite(rep) && rep >= 0 && rep < 1e6 ? (int)rep : 0;
    r->warmup = report_jbool(o, "warmup", 0);
    r->load = report_jbool(o, "load", 0);
    r->t_start_s = report_jnum(o, "t_start_s");
    r->duration_s = report_jnum(o, "duration_s");
    r->ttft_s = report_jnum(o, "ttft_s");
    r->decode_s = report_jnum(o, "decode_s");
    r->tokens_per_s = report_jnum(o, "tokens_per_s");
    r->prefill_tokens_per_s = report_jnum(o, "prefill_tokens_per_s");
    r->prompt_tokens = report_jnum(o, "prompt_tokens");
    r->output_tokens = report_jnum(o, "output_tokens");
    r->prompt_tokens_estimated = report_jbool(o, "prompt_tokens_estimated", 0);
    r->output_tokens_estimated = report_jbool(o, "output_tokens_estimated", 0);
    r->prompt_cached = report_jbool(o, "prompt_cached", 0);
    r->total_j = report_jnum(o, "total_j");
    r->net_total_j = report_jnum(o, "net_total_j");
    r->j_per_token = report_jnum(o, "j_per_token");
    r->net_j_per_token = report_jnum(o, "net_j_per_token");
    r->decode_j_per_token = report_jnum(o, "decode_j_per_token");
    r->prefill_j_per_prompt_token = report_jnum(o, "prefill_j_per_prompt_token");
    r->domains = read_domains(json_object_get(o, "energy_j"), r->energy_j);
    read_domains(json_object_get(o, "net_energy_j"), r->net_energy_j);
    read_domains(json_object_get(o, "avg_power_w"), r->avg_power_w);
    r->estimated_domains = read_domain_list(json_object_get(o, "estimated_domains"));
    r->flags = read_flags(json_object_get(o, "flags"));
    const json_t *ph = json_object_get(o, "phases");
    const json_t *phs = json_object_get(o, "phase_duration_s");
    const json_t *phd = json_object_get(o, "phase_energy_j");
    for (int p = 0; p < REPORT_RP_COUNT; p++) {
        r->phase_j[p] = report_jnum(ph, rp_names[p]);
        r->phase_s[p] = report_jnum(phs, rp_names[p]);
        read_domains(json_object_get(phd, rp_names[p]), r->phase_domain_j[p]);
    }
    const json_t *g = json_object_get(o, "grade");
    r->score = report_jnum(g, "score");
    if (isfinite(r->score) && (r->score < 0 || r->score > 10))
        r->score = NAN; /* outside the scale: not a score we can average */
    r->co2_g = report_jnum(o, "co2_g");
    r->cost = report_jnum(o, "cost");
    const json_t *itl = json_object_get(o, "itl_ms");
    r->itl_ms = json_is_array(itl) ? itl : NULL;
}

/* Parses run.json; a newer schema is read as far as it is understood. */
static int load_run_json(struct report_run *run, int quiet, char *err)
{
    char path[FS_PATH_MAX];
    if (fs_path_join(path, sizeof path, run->dir, "run.json"))
        return err_setf(err, JB_ERR_USAGE, "%s: path too long", run->dir);
    if (!fs_exists(path))
        return err_setf(err, JB_ERR_NOTFOUND,
                        "%s: not found; is %s a joulebench run directory? ('joulebench run -o "
                        "DIR' writes run.json there)",
                        path, run->dir);
    struct buf b = {0};
    int rc = fs_read_file(path, RUN_JSON_MAX, &b, err);
    if (rc) {
        buf_free(&b);
        return rc;
    }
    json_error_t je;
    run->run = json_loadb(b.data ? b.data : "", b.len, 0, &je);
    buf_free(&b);
    if (!run->run)
        return err_setf(err, JB_ERR_FORMAT, "%s:%d:%d: %s (the file is not valid JSON)", path,
                        je.line, je.column, je.text);
    if (!json_is_object(run->run))
        return err_setf(err, JB_ERR_FORMAT, "%s: the top level must be a JSON object", path);
    double schema = report_jnum(run->run, "schema");
    if (!isfinite(schema))
        add_warning(run, quiet, "%s: no \"schema\" number; reading it as schema %d", path,
                    REPORT_SCHEMA);
    else if (schema > REPORT_SCHEMA)
        add_warning(run, quiet,
                    "%s: schema %g is newer than this joulebench understands (%d); fields it "
                    "does not know are ignored (a newer joulebench reports them all)",
                    path, schema, REPORT_SCHEMA);
    run->status = report_jstr(run->run, "status");
    if (!run->status)
        run->status = "unknown";
    return 0;
}

/* run.json's sensors: which are used, top-level and estimated decides
 * what the timeline adds up and which figures carry a "~". */
static int load_sensors(struct report_run *run)
{
    const json_t *arr = json_object_get(run->run, "sensors");
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    if (n == 0)
        return 0;
    run->sensors = calloc(n, sizeof *run->sensors);
    if (!run->sensors)
        return JB_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(arr, i);
        struct report_sensor *o = &run->sensors[run->n_sensors];
        const char *name = report_jstr(s, "name");
        if (!json_is_object(s) || !name)
            continue;
        o->name = name;
        o->backend = str_or_empty(report_jstr(s, "backend"));
        o->label = str_or_empty(report_jstr(s, "label"));
        o->reason = str_or_empty(report_jstr(s, "reason"));
        o->fix = str_or_empty(report_jstr(s, "fix"));
        const char *dom = report_jstr(s, "domain");
        o->domain = dom ? jb_domain_from_name(dom) : -1;
        o->estimated = report_jbool(s, "estimated", 0);
        o->readable = report_jbool(s, "readable", 1);
        o->used = report_jbool(s, "used", 1);
        const json_t *parent = json_object_get(s, "parent");
        o->top = parent == NULL || json_is_null(parent);
        o->update_period_s = report_jnum(s, "update_period_s");
        if (o->update_period_s <= 0)
            o->update_period_s = NAN;
        run->n_sensors++;
    }
    return 0;
}

/* Reads requests.jsonl line by line. A line that does not parse (a torn
 * last line after a crash, an editor accident) costs only itself. */
static int load_requests(struct report_run *run, int quiet, char *err)
{
    char path[FS_PATH_MAX];
    if (fs_path_join(path, sizeof path, run->dir, "requests.jsonl"))
        return err_setf(err, JB_ERR_USAGE, "%s: path too long", run->dir);
    if (!fs_exists(path))
        return err_setf(err, JB_ERR_NOTFOUND,
                        "%s: not found; the run recorded no request (run.json is there, so the "
                        "run may have stopped before its first request)",
                        path);
    struct buf b = {0};
    int rc = fs_read_file(path, REQUESTS_MAX, &b, err);
    if (rc) {
        buf_free(&b);
        return rc;
    }
    size_t line = 0, pos = 0, cap = 0;
    int schema_warned = 0;
    while (pos < b.len) {
        const char *start = b.data + pos;
        const char *nl = memchr(start, '\n', b.len - pos);
        size_t len = nl ? (size_t)(nl - start) : b.len - pos;
        pos += len + (nl ? 1 : 0);
        line++;
        size_t k = 0;
        while (k < len && (start[k] == ' ' || start[k] == '\t' || start[k] == '\r'))
            k++;
        if (k == len)
            continue; /* blank line */
        json_error_t je;
        json_t *o = json_loadb(start, len, 0, &je);
        if (!o) {
            add_warning(run, quiet, "%s line %zu, column %d: %s; line skipped%s", path, line,
                        je.column, je.text,
                        nl ? "" : " (a torn last line: the run was probably cut off)");
            continue;
        }
        if (!json_is_object(o) || !report_jstr(o, "model")) {
            add_warning(run, quiet,
                        "%s line %zu: not a request record (a JSON object with a \"model\"); "
                        "line skipped",
                        path, line);
            json_decref(o);
            continue;
        }
        double schema = report_jnum(o, "schema");
        if (isfinite(schema) && schema > REPORT_SCHEMA && !schema_warned++)
            add_warning(run, quiet,
                        "%s line %zu: record schema %g is newer than this joulebench "
                        "understands (%d); unknown fields are ignored",
                        path, line, schema, REPORT_SCHEMA);
        if (run->n_rec == cap) {
            size_t nc = cap ? cap * 2 : 64;
            struct report_record *r = realloc(run->rec, nc * sizeof *r);
            if (!r) {
                json_decref(o);
                buf_free(&b);
                return err_setf(err, JB_ERR_NOMEM, "%s: out of memory", path);
            }
            run->rec = r;
            cap = nc;
        }
        if (json_array_append_new(run->lines, o)) {
            buf_free(&b);
            return err_setf(err, JB_ERR_NOMEM, "%s: out of memory", path);
        }
        /* o stays alive (and at the same address) inside run->lines. */
        fill_record(&run->rec[run->n_rec++], o, line);
    }
    buf_free(&b);
    return 0;
}

static int phase_from_name(const char *s)
{
    for (int p = 1; p < REPORT_PHASE_COUNT; p++)
        if (strcmp(s, phase_names[p]) == 0)
            return p;
    return REPORT_PHASE_NONE;
}

/* Maps timeline.csv's "<sensor>_w" columns to domains through run.json's
 * sensors: only used, top-level sensors add to a domain, so a joule inside
 * another sensor's counter is never shown twice. */
static int load_timeline(struct report_run *run, int quiet, char *err)
{
    char path[FS_PATH_MAX];
    if (fs_path_join(path, sizeof path, run->dir, "timeline.csv"))
        return err_setf(err, JB_ERR_USAGE, "%s: path too long", run->dir);
    if (!fs_exists(path)) {
        add_warning(run, quiet, "%s: not found; the power timeline chart will be empty", path);
        return 0;
    }
    struct buf b = {0};
    struct csv_row row = {0};
    int *col_domain = NULL;
    size_t ncols = 0;
    int rc = fs_read_file(path, TIMELINE_MAX, &b, err);
    if (rc)
        goto out;
    size_t pos = 0, line = 1;
    rc = csv_next_row(b.data, b.len, &pos, &line, &row, err);
    if (rc <= 0) {
        if (rc == 0)
            add_warning(run, quiet, "%s: empty; the power timeline chart will be empty", path);
        goto out;
    }
    if (row.n < 3 || strcmp(csv_field(&row, 0), "t_s") != 0 ||
        strcmp(csv_field(&row, 1), "phase") != 0) {
        rc = err_setf(err, JB_ERR_FORMAT,
                      "%s line 1: the header must start with t_s,phase,request_id (found "
                      "'%s,%s')",
                      path, csv_field(&row, 0), csv_field(&row, 1));
        goto out;
    }
    ncols = row.n;
    col_domain = malloc(ncols * sizeof *col_domain);
    if (!col_domain) {
        rc = err_setf(err, JB_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    struct report_timeline *tl = &run->timeline;
    for (size_t c = 0; c < ncols; c++) {
        col_domain[c] = -1;
        const char *h = csv_field(&row, c);
        size_t hl = strlen(h);
        if (c < 3 || hl < 3 || !str_has_suffix(h, "_w"))
            continue;
        const struct report_sensor *s = NULL;
        for (size_t k = 0; k < run->n_sensors; k++)
            if (strlen(run->sensors[k].name) == hl - 2 &&
                strncmp(run->sensors[k].name, h, hl - 2) == 0)
                s = &run->sensors[k];
        if (!s) {
            add_warning(run, quiet,
                        "%s: column '%s' names no sensor of run.json; it is left out of the "
                        "power timeline",
                        path, h);
            continue;
        }
        if (!s->used || !s->top || s->domain < 0)
            continue;
        col_domain[c] = s->domain;
        tl->domains |= 1u << s->domain;
        if (s->estimated)
            tl->estimated |= 1u << s->domain;
    }
    size_t cap = 0;
    for (;;) {
        size_t row_line = line;
        rc = csv_next_row(b.data, b.len, &pos, &line, &row, err);
        if (rc < 0) {
            err_prefix(err, "%s", path);
            goto out;
        }
        if (rc == 0)
            break;
        if (row.n == 1 && csv_field(&row, 0)[0] == '\0')
            continue; /* blank line */
        double t;
        if (str_to_double(csv_field(&row, 0), (size_t)-1, &t)) {
            add_warning(run, quiet, "%s line %zu: t_s '%s' is not a number; row skipped", path,
                        row_line, csv_field(&row, 0));
            continue;
        }
        if (tl->n == cap) {
            size_t nc = cap ? cap * 2 : 1024;
            double *ts = realloc(tl->t_s, nc * sizeof *ts);
            if (ts)
                tl->t_s = ts;
            unsigned char *ph = realloc(tl->phase, nc);
            if (ph)
                tl->phase = ph;
            double *w = realloc(tl->domain_w, nc * JB_DOMAIN_COUNT * sizeof *w);
            if (w)
                tl->domain_w = w;
            if (!ts || !ph || !w) {
                rc = err_setf(err, JB_ERR_NOMEM, "%s: out of memory", path);
                goto out;
            }
            cap = nc;
        }
        double *w = tl->domain_w + tl->n * JB_DOMAIN_COUNT;
        unsigned seen = 0, bad = 0;
        for (int d = 0; d < JB_DOMAIN_COUNT; d++)
            w[d] = 0;
        for (size_t c = 3; c < ncols; c++) {
            int d = col_domain[c];
            if (d < 0)
                continue;
            double v;
            seen |= 1u << d;
            if (c >= row.n || str_to_double(csv_field(&row, c), (size_t)-1, &v))
                bad |= 1u << d; /* empty: the sensor could not be read then */
            else
                w[d] += v;
        }
        for (int d = 0; d < JB_DOMAIN_COUNT; d++)
            if (!(seen & (1u << d)) || (bad & (1u << d)))
                w[d] = NAN; /* part of a domain is not the domain */
        tl->t_s[tl->n] = t;
        tl->phase[tl->n] = (unsigned char)phase_from_name(csv_field(&row, 1));
        tl->n++;
    }
    rc = 0;
    run->has_timeline = 1;
out:
    free(col_domain);
    csv_row_free(&row);
    buf_free(&b);
    return rc;
}

int report_load(const char *dir, int quiet, struct report_run *run, char *err)
{
    memset(run, 0, sizeof *run);
    int rc = 0;
    if (str_lcpy(run->dir, dir, sizeof run->dir) >= sizeof run->dir)
        return err_setf(err, JB_ERR_USAGE, "%s: path too long", dir);
    if (!fs_is_dir(dir))
        return err_setf(err, fs_exists(dir) ? JB_ERR_USAGE : JB_ERR_NOTFOUND,
                        "%s: %s; give the run directory that 'joulebench run' wrote", dir,
                        fs_exists(dir) ? "not a directory" : "no such directory");
    run->warnings = json_array();
    run->lines = json_array();
    if (!run->warnings || !run->lines)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    if ((rc = load_run_json(run, quiet, err)))
        return rc;
    if ((rc = load_sensors(run)))
        return err_setf(err, rc, "%s/run.json: out of memory", dir);
    if ((rc = load_requests(run, quiet, err)))
        return rc;
    if ((rc = load_timeline(run, quiet, err)))
        return rc;
    return 0;
}

void report_run_free(struct report_run *run)
{
    free(run->rec);
    free(run->sensors);
    free(run->timeline.t_s);
    free(run->timeline.phase);
    free(run->timeline.domain_w);
    json_decref(run->lines);
    json_decref(run->run);
    json_decref(run->warnings);
    memset(run, 0, sizeof *run);
}
