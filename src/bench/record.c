#include "bench/record.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fs.h"
#include "common/str.h"

/* Top-level domains: cores and uncore are contained in cpu, so a record's
 * domain object leaves them out and its sum is the total (except system,
 * which is a separate whole-board figure). */
static int top_level(int d)
{
    return d != JB_DOMAIN_CORES && d != JB_DOMAIN_UNCORE;
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

json_t *record_domains_json(const double *domain_v, unsigned valid_mask)
{
    json_t *o = json_object();
    for (int d = 0; d < JB_DOMAIN_COUNT; d++)
        if (top_level(d) && (valid_mask & (1u << d)) && isfinite(domain_v[d]))
            json_object_set_new(o, jb_domain_name((enum jb_domain)d), json_real(domain_v[d]));
    return o;
}

json_t *record_estimated_json(unsigned valid_mask, unsigned estimated_mask)
{
    json_t *a = json_array();
    for (int d = 0; d < JB_DOMAIN_COUNT; d++)
        if (top_level(d) && (valid_mask & estimated_mask & (1u << d)))
            json_array_append_new(a, json_string(jb_domain_name((enum jb_domain)d)));
    return a;
}

static json_t *flags_json(unsigned flags)
{
    json_t *a = json_array();
    if (flags & JB_ENERGY_SHORT)
        json_array_append_new(a, json_string("short_window"));
    if (flags & JB_ENERGY_WRAPPED)
        json_array_append_new(a, json_string("counter_wrap"));
    if (flags & JB_ENERGY_SENSOR_LOST)
        json_array_append_new(a, json_string("sensor_lost"));
    if (flags & JB_ENERGY_RESET)
        json_array_append_new(a, json_string("counter_reset"));
    if (flags & JB_ENERGY_GAP)
        json_array_append_new(a, json_string("timeline_gap"));
    return a;
}

static double total_of(const struct jb_energy *e)
{
    return e && e->total_valid ? e->total_j : NAN;
}

static json_t *ids_json(const int *ids, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer(ids[i]));
    return a;
}

/* Text from outside (an engine's error message, a server's done_reason, a
 * --prompt argument) as a JSON string. Messages are cut to fixed buffers,
 * which can split a UTF-8 sequence, and jansson refuses invalid UTF-8:
 * without this the field would silently be missing, and a failed request
 * without its "error" reads as a success. Invalid bytes become U+FFFD. */
static json_t *text_json(const char *s)
{
    if (!s)
        return json_null();
    struct buf clean = {0};
    json_t *j = NULL;
    if (str_utf8_sanitize(s, strlen(s), &clean) == 0)
        j = json_stringn(buf_str(&clean), clean.len);
    buf_free(&clean);
    return j ? j : json_string("?");
}

static void set_server(json_t *rec, const struct engine_result *r)
{
    json_t *s = json_object();
    json_object_set_new(s, "load_duration_s", num_or_null(r->load_s));
    json_object_set_new(s, "prompt_eval_duration_s", num_or_null(r->prompt_eval_s));
    json_object_set_new(s, "eval_duration_s", num_or_null(r->eval_s));
    json_object_set_new(s, "total_duration_s", num_or_null(r->total_s));
    json_object_set_new(s, "done_reason",
                        r->done_reason[0] ? text_json(r->done_reason) : json_null());
    if (r->server_json)
        json_object_set(s, "extra", r->server_json);
    json_object_set_new(rec, "server", s);
}

/* Timing fields from the client's own clock: TTFT, decode time, rates and
 * the inter-token gaps. */
static void set_timing(json_t *rec, const struct engine_result *r, long out_tokens,
                       long prompt_tokens)
{
    double duration = r->t_end_s - r->t_sent_s;
    double ttft = r->t_first_s - r->t_sent_s;
    double decode = r->t_last_s - r->t_first_s;
    json_object_set_new(rec, "duration_s", num_or_null(duration));
    json_object_set_new(rec, "ttft_s", num_or_null(ttft));
    json_object_set_new(rec, "decode_s", num_or_null(decode));
    double tps = (out_tokens > 1 && decode > 0) ? (double)(out_tokens - 1) / decode : NAN;
    json_object_set_new(rec, "tokens_per_s", num_or_null(tps));
    double pps = (prompt_tokens > 0 && ttft > 0) ? (double)prompt_tokens / ttft : NAN;
    json_object_set_new(rec, "prefill_tokens_per_s", num_or_null(pps));
    json_t *itl = json_array();
    for (size_t i = 1; i < r->n_token_t; i++) {
        double g = (r->token_t_s[i] - r->token_t_s[i - 1]) * 1e3;
        json_array_append_new(itl, json_real(round(g * 1000.0) / 1000.0));
    }
    json_object_set_new(rec, "itl_ms", itl);
}

/* Energy fields: gross and net per domain, phases, per-token ratios. */
static void set_energy(json_t *rec, const struct record_input *in, long out_tokens,
                       long prompt_tokens)
{
    const struct jb_energy *e = in->total;
    if (!e) {
        json_object_set_new(rec, "energy_j", json_object());
        json_object_set_new(rec, "estimated_domains", json_array());
        json_object_set_new(rec, "total_j", json_null());
        json_object_set_new(rec, "net_energy_j", json_null());
        json_object_set_new(rec, "net_total_j", json_null());
        json_object_set_new(rec, "avg_power_w", json_object());
        json_object_set_new(rec, "flags", json_array());
        return;
    }
    json_object_set_new(rec, "energy_j", record_domains_json(e->domain_j, e->domain_valid));
    json_object_set_new(rec, "estimated_domains",
                        record_estimated_json(e->domain_valid, e->domain_estimated));
    json_object_set_new(rec, "total_j", num_or_null(total_of(e)));
    const struct jb_power *b = in->baseline;
    if (b) {
        double net[JB_DOMAIN_COUNT];
        unsigned valid = 0;
        for (int d = 0; d < JB_DOMAIN_COUNT; d++) {
            net[d] = e->domain_j[d] - b->domain_w[d] * e->duration_s;
            if ((e->domain_valid & b->domain_valid) & (1u << d))
                valid |= 1u << d;
        }
        json_object_set_new(rec, "net_energy_j", record_domains_json(net, valid));
        double net_total =
            (e->total_valid && b->total_valid) ? e->total_j - b->total_w * e->duration_s : NAN;
        json_object_set_new(rec, "net_total_j", num_or_null(net_total));
        json_object_set_new(rec, "net_j_per_token",
                            num_or_null(out_tokens > 0 ? net_total / (double)out_tokens : NAN));
    } else {
        json_object_set_new(rec, "net_energy_j", json_null());
        json_object_set_new(rec, "net_total_j", json_null());
        json_object_set_new(rec, "net_j_per_token", json_null());
    }
    struct jb_power p;
    jb_energy_to_power(e, &p);
    json_object_set_new(rec, "avg_power_w", record_domains_json(p.domain_w, p.domain_valid));

    json_t *phases = json_object(), *pdur = json_object(), *pen = json_object();
    const struct {
        const char *name;
        const struct jb_energy *e;
    } ph[] = {{"load", in->load_e}, {"prefill", in->prefill}, {"decode", in->decode}};
    for (size_t i = 0; i < 3; i++) {
        json_object_set_new(phases, ph[i].name, num_or_null(total_of(ph[i].e)));
        json_object_set_new(pdur, ph[i].name,
                            ph[i].e ? num_or_null(ph[i].e->duration_s) : json_null());
        if (ph[i].e)
            json_object_set_new(pen, ph[i].name,
                                record_domains_json(ph[i].e->domain_j, ph[i].e->domain_valid));
    }
    json_object_set_new(rec, "phases", phases);
    json_object_set_new(rec, "phase_duration_s", pdur);
    json_object_set_new(rec, "phase_energy_j", pen);

    double total = total_of(e);
    json_object_set_new(rec, "j_per_token",
                        num_or_null(out_tokens > 0 ? total / (double)out_tokens : NAN));
    /* Decode runs from the first token to the last: it makes every token
     * but the first (which prefill made), so its joules are shared by
     * output_tokens - 1, the count tokens_per_s uses over the same time. */
    json_object_set_new(
        rec, "decode_j_per_token",
        num_or_null(out_tokens > 1 ? total_of(in->decode) / (double)(out_tokens - 1) : NAN));
    json_object_set_new(
        rec, "prefill_j_per_prompt_token",
        num_or_null(prompt_tokens > 0 ? total_of(in->prefill) / (double)prompt_tokens : NAN));
    json_t *sensors = json_object();
    for (size_t i = 0; i < e->n_sensors; i++)
        if (e->sensor_valid[i])
            json_object_set_new(sensors, jb_meter_sensor(in->meter, i)->name,
                                json_real(e->sensor_j[i]));
    json_object_set_new(rec, "sensor_energy_j", sensors);
    unsigned flags = e->flags;
    if (in->prefill)
        flags |= in->prefill->flags & ~JB_ENERGY_SHORT; /* short phases are expected */
    if (in->decode)
        flags |= in->decode->flags & ~JB_ENERGY_SHORT;
    json_object_set_new(rec, "flags", flags_json(flags));
    if (isfinite(in->grid_gco2_kwh))
        json_object_set_new(rec, "co2_g", num_or_null(total / 3.6e6 * in->grid_gco2_kwh));
    if (isfinite(in->price_kwh))
        json_object_set_new(rec, "cost", num_or_null(total / 3.6e6 * in->price_kwh));
}

json_t *record_build(const struct record_input *in)
{
    const struct engine_result *r = in->res;
    json_t *rec = json_object();
    if (!rec)
        return NULL;
    json_object_set_new(rec, "schema", json_integer(RECORD_SCHEMA));
    json_object_set_new(rec, "id", json_string(in->id));
    json_object_set_new(rec, "model", json_string(in->model));
    json_object_set_new(rec, "engine", json_string(in->engine));
    json_object_set_new(rec, "prompt_id", in->prompt_id ? json_string(in->prompt_id) : json_null());
    json_object_set_new(rec, "tags", in->tags ? json_deep_copy(in->tags) : json_array());
    json_object_set_new(rec, "rep", json_integer(in->rep));
    json_object_set_new(rec, "warmup", json_boolean(in->warmup));
    json_object_set_new(rec, "load", json_boolean(in->load));
    json_object_set_new(rec, "t_start_s", json_real(in->t_start_s - in->t_run0_s));
    json_object_set_new(rec, "system", text_json(in->system));
    json_object_set_new(rec, "prompt", text_json(in->prompt ? in->prompt : ""));
    /* A response cut inside a UTF-8 sequence (a dropped stream) is not valid
     * JSON text: invalid bytes become U+FFFD. */
    struct buf clean = {0};
    str_utf8_sanitize(buf_str(&r->response), r->response.len, &clean);
    json_t *resp = json_stringn(buf_str(&clean), clean.len);
    buf_free(&clean);
    json_object_set_new(rec, "response", resp ? resp : json_string(""));
    json_object_set_new(rec, "error", r->status ? text_json(r->error) : json_null());

    long out_tokens = r->output_tokens;
    int out_est = r->output_tokens_estimated;
    if (out_tokens < 0) {
        out_tokens = r->pieces;
        out_est = 1;
    }
    long prompt_tokens = r->prompt_tokens;
    json_object_set_new(rec, "prompt_tokens",
                        prompt_tokens >= 0 ? json_integer(prompt_tokens) : json_null());
    json_object_set_new(rec, "prompt_tokens_estimated", json_boolean(r->prompt_tokens_estimated));
    json_object_set_new(rec, "prompt_cached", json_boolean(r->prompt_cached));
    json_object_set_new(rec, "output_tokens", json_integer(out_tokens));
    json_object_set_new(rec, "output_tokens_estimated", json_boolean(out_est));
    set_timing(rec, r, out_tokens, prompt_tokens);
    set_energy(rec, in, out_tokens, prompt_tokens);
    set_server(rec, r);
    if (r->prompt_ids)
        json_object_set_new(rec, "prompt_token_ids", ids_json(r->prompt_ids, r->n_prompt_ids));
    if (r->output_ids)
        json_object_set_new(rec, "output_token_ids", ids_json(r->output_ids, r->n_output_ids));
    json_object_set_new(rec, "grader", in->grader ? json_deep_copy(in->grader) : json_null());
    json_object_set_new(rec, "grade", in->grade ? json_deep_copy(in->grade) : json_null());
    return rec;
}

int record_append(int fd, json_t *rec, char *err)
{
    char *line = json_dumps(rec, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!line)
        return err_setf(err, JB_ERR_NOMEM, "out of memory while writing a record");
    size_t len = strlen(line);
    line[len] = '\n'; /* json_dumps leaves room: we overwrite the NUL */
    /* Where the line starts (O_APPEND: the end), so that a line cut short
     * by a full disk or a file-size limit can be taken back: a record is
     * whole or absent, never a torn line in the middle of a run. */
    off_t start = lseek(fd, 0, SEEK_END);
    const char *p = line;
    size_t left = len + 1;
    int rc = 0;
    while (left) {
        ssize_t n = write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            rc =
                err_setf(err, fs_errno_code(e), "cannot append to requests.jsonl: %s", strerror(e));
            if (p != line && (start < 0 || ftruncate(fd, start) != 0))
                err_setf(err, fs_errno_code(e),
                         "cannot append to requests.jsonl: %s; its last line is torn (the "
                         "report skips it)",
                         strerror(e));
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    free(line);
    return rc;
}

static double get_num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* A window shorter than a sensor's update period may read 0 J: the lines
 * for people say it is coarse rather than show the 0 as measured. */
int record_short_window(json_t *rec)
{
    size_t k;
    json_t *flag;
    json_array_foreach(json_object_get(rec, "flags"), k, flag)
    {
        if (json_is_string(flag) && strcmp(json_string_value(flag), "short_window") == 0)
            return 1;
    }
    return 0;
}

void record_print(FILE *f, json_t *rec)
{
    const char *id = json_string_value(json_object_get(rec, "id"));
    const char *model = json_string_value(json_object_get(rec, "model"));
    const char *pid = json_string_value(json_object_get(rec, "prompt_id"));
    json_t *est = json_object_get(rec, "estimated_domains");
    int any_est = json_array_size(est) > 0;
    fprintf(f, "%s %s %s%s", id ? id : "?", model ? model : "?", pid ? pid : "",
            json_is_true(json_object_get(rec, "warmup")) ? " (warm-up)" : "");
    long tok = (long)json_integer_value(json_object_get(rec, "output_tokens"));
    fprintf(f, "  %ld tok%s", tok,
            json_is_true(json_object_get(rec, "output_tokens_estimated")) ? " (est.)" : "");
    double v;
    if (isfinite(v = get_num(rec, "duration_s")))
        fprintf(f, "  %.2f s", v);
    if (isfinite(v = get_num(rec, "ttft_s")))
        fprintf(f, "  TTFT %.3f s", v);
    if (isfinite(v = get_num(rec, "tokens_per_s")))
        fprintf(f, "  %.1f tok/s", v);
    const char *key;
    json_t *val;
    json_object_foreach(json_object_get(rec, "energy_j"), key, val)
    {
        int e = 0;
        size_t i;
        json_t *x;
        json_array_foreach(est, i, x) if (strcmp(json_string_value(x), key) == 0) e = 1;
        fprintf(f, "  %s %.2f J%s", key, json_number_value(val), e ? " (est.)" : "");
    }
    if (isfinite(v = get_num(rec, "total_j")))
        fprintf(f, "  total %.2f J", v);
    if (isfinite(v = get_num(rec, "j_per_token")))
        fprintf(f, "  %.4f J/tok%s", v, any_est ? " (estimated)" : "");
    if (record_short_window(rec))
        fprintf(f, "  %s", RECORD_SHORT_NOTE);
    json_t *grade = json_object_get(rec, "grade");
    if (json_is_object(grade) && json_is_number(json_object_get(grade, "score")))
        fprintf(f, "  score %.1f/10", json_number_value(json_object_get(grade, "score")));
    const char *error = json_string_value(json_object_get(rec, "error"));
    if (error)
        fprintf(f, "  ERROR: %s", error);
    fputc('\n', f);
}
