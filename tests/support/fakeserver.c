/* The fake LLM server (see fakeserver.h for the script). One accept thread;
 * one thread per connection, each answering one request and closing. Every
 * wait (reading, pacing, a blocked send) also watches a wake pipe that is
 * written once at stop, so fakeserver_stop() never hangs on a client. */
#include "fakeserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/str.h"
#include "joulebench/joulebench.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: SO_NOSIGPIPE is set on the socket instead */
#endif

#define FS_MAX_HEAD (64 * 1024)
#define FS_MAX_BODY (8 * 1024 * 1024)
#define FS_MAX_LOADED 32
#define FS_ENDLESS_MAX (1024LL * 1024 * 1024)

struct conn {
    struct fakeserver *fs;
    pthread_t th;
    int fd;
    atomic_int finished;
    struct conn *next;
};

struct fakeserver {
    int listen_fd;
    int port;
    char url[64];
    int wake[2];
    atomic_int stopping;
    pthread_t accept_th;
    pthread_mutex_t mu;
    json_t *script;   /* under mu; replaced, never modified */
    json_t *requests; /* array, under mu */
    struct conn *conns;
    char loaded[FS_MAX_LOADED][128];
    size_t n_loaded;
};

/* ---- script ------------------------------------------------------------ */

static int parse_script(const char *text, json_t **out, char *err)
{
    *out = NULL;
    if (!text || !*text) {
        *out = json_object();
        return 0;
    }
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j)
        return err_setf(err, JB_ERR_FORMAT, "fake server script: line %d column %d: %s", je.line,
                        je.column, je.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return err_setf(err, JB_ERR_FORMAT, "fake server script: not a JSON object");
    }
    *out = j;
    return 0;
}

static json_t *script_get(struct fakeserver *fs)
{
    pthread_mutex_lock(&fs->mu);
    json_t *s = json_incref(fs->script);
    pthread_mutex_unlock(&fs->mu);
    return s;
}

static void script_put(struct fakeserver *fs, json_t *s)
{
    pthread_mutex_lock(&fs->mu);
    json_decref(s);
    pthread_mutex_unlock(&fs->mu);
}

static double sget_num(json_t *s, const char *key, double dflt)
{
    json_t *v = json_object_get(s, key);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static long sget_int(json_t *s, const char *key, long dflt)
{
    json_t *v = json_object_get(s, key);
    return json_is_number(v) ? (long)json_number_value(v) : dflt;
}

static int sget_bool(json_t *s, const char *key)
{
    json_t *v = json_object_get(s, key);
    return json_is_true(v) || (json_is_integer(v) && json_integer_value(v) != 0);
}

static const char *sget_str(json_t *s, const char *key, const char *dflt)
{
    json_t *v = json_object_get(s, key);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

/* ---- waiting and sending ----------------------------------------------- */

static int stopping(struct fakeserver *fs)
{
    return atomic_load(&fs->stopping);
}

/* Sleeps until jb_clock_s() reaches t_s; 1 if the server is stopping. */
static int sleep_until(struct fakeserver *fs, double t_s)
{
    for (;;) {
        if (stopping(fs))
            return 1;
        double left = t_s - jb_clock_s();
        if (left <= 0)
            return 0;
        struct pollfd p = {fs->wake[0], POLLIN, 0};
        poll(&p, 1, (int)(left * 1000.0) + 1);
    }
}

/* Waits until fd is ready for events; 0 ready, -1 stopping or error. */
static int wait_fd(struct fakeserver *fs, int fd, short events)
{
    for (;;) {
        struct pollfd p[2] = {{fd, events, 0}, {fs->wake[0], POLLIN, 0}};
        int n = poll(p, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (p[1].revents & POLLIN) || stopping(fs))
            return -1;
        if (p[0].revents)
            return 0;
    }
}

struct out {
    struct fakeserver *fs;
    int fd;
    long write_bytes; /* 0: whole buffers */
    int failed;       /* the client went away */
};

static int send_all(struct out *o, const char *p, size_t len)
{
    while (len && !o->failed) {
        size_t n = len;
        if (o->write_bytes > 0 && n > (size_t)o->write_bytes)
            n = (size_t)o->write_bytes;
        if (wait_fd(o->fs, o->fd, POLLOUT)) {
            o->failed = 1;
            break;
        }
        ssize_t w = send(o->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            o->failed = 1;
            break;
        }
        p += w;
        len -= (size_t)w;
    }
    return o->failed ? -1 : 0;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 411:
        return "Length Required";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

static int send_head(struct out *o, int status, const char *ctype, long content_length)
{
    char head[512];
    if (content_length >= 0)
        snprintf(head, sizeof head,
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %ld\r\n"
                 "Connection: close\r\n\r\n",
                 status, reason_phrase(status), ctype, content_length);
    else
        snprintf(head, sizeof head,
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n"
                 "Connection: close\r\n\r\n",
                 status, reason_phrase(status), ctype);
    return send_all(o, head, strlen(head));
}

static int send_whole(struct out *o, int status, const char *ctype, const char *body)
{
    size_t len = strlen(body);
    if (send_head(o, status, ctype, (long)len))
        return -1;
    return send_all(o, body, len);
}

static int send_json(struct out *o, int status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    int rc = send_whole(o, status, "application/json; charset=utf-8", text ? text : "null");
    free(text);
    return rc;
}

/* One chunk of a chunked body, framed and sent as one buffer (cut by
 * write_bytes like the rest). */
static int send_chunk(struct out *o, const char *data, size_t len)
{
    if (!len)
        return 0;
    struct buf b = {0};
    buf_printf(&b, "%zx\r\n", len);
    buf_append(&b, data, len);
    buf_puts(&b, "\r\n");
    int rc = send_all(o, b.data, b.len);
    buf_free(&b);
    return rc;
}

static int send_chunk_str(struct out *o, const char *s)
{
    return send_chunk(o, s, strlen(s));
}

static int send_end(struct out *o)
{
    return send_all(o, "0\r\n\r\n", 5);
}

/* ---- requests ---------------------------------------------------------- */

struct request {
    char method[16];
    char path[1024];
    json_t *headers; /* lowercase name -> value */
    char *body;
    size_t body_len;
    json_t *json; /* parsed body, or NULL */
};

static void request_free(struct request *r)
{
    json_decref(r->headers);
    json_decref(r->json);
    free(r->body);
}

static ssize_t recv_some(struct fakeserver *fs, int fd, char *p, size_t n)
{
    for (;;) {
        if (wait_fd(fs, fd, POLLIN))
            return -1;
        ssize_t got = recv(fd, p, n, 0);
        if (got < 0 && errno == EINTR)
            continue;
        return got;
    }
}

/* Reads one request: the head up to the blank line, then Content-Length
 * bytes of body. 0 ok, -1 the client went away, 400/411 for bad requests. */
static int read_request(struct fakeserver *fs, int fd, struct request *r)
{
    memset(r, 0, sizeof *r);
    struct buf in = {0};
    char chunk[8192];
    char *end = NULL;
    int rc = -1;
    while (!end) {
        ssize_t n = recv_some(fs, fd, chunk, sizeof chunk);
        if (n <= 0)
            goto out;
        buf_append(&in, chunk, (size_t)n);
        end = strstr(in.data, "\r\n\r\n");
        if (!end && in.len > FS_MAX_HEAD) {
            rc = 400;
            goto out;
        }
    }
    size_t head_len = (size_t)(end - in.data) + 4;
    r->headers = json_object();
    char *line = in.data;
    char *eol = strstr(line, "\r\n");
    *eol = '\0';
    char version[16];
    if (sscanf(line, "%15s %1023s %15s", r->method, r->path, version) != 3) {
        rc = 400;
        goto out;
    }
    char *q = strchr(r->path, '?');
    if (q)
        *q = '\0';
    long content_length = 0;
    for (line = eol + 2; line < in.data + head_len - 2; line = eol + 2) {
        eol = strstr(line, "\r\n");
        *eol = '\0';
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        for (char *c = line; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        char *val = colon + 1;
        while (*val == ' ' || *val == '\t')
            val++;
        json_object_set_new(r->headers, line, json_string(val));
        if (strcmp(line, "content-length") == 0) {
            int64_t v;
            if (str_to_i64(val, (size_t)-1, &v) || v < 0 || v > FS_MAX_BODY) {
                rc = 400;
                goto out;
            }
            content_length = (long)v;
        } else if (strcmp(line, "transfer-encoding") == 0) {
            rc = 411;
            goto out;
        }
    }
    r->body = malloc((size_t)content_length + 1);
    size_t have = in.len - head_len;
    if (have > (size_t)content_length)
        have = (size_t)content_length;
    memcpy(r->body, in.data + head_len, have);
    while (have < (size_t)content_length) {
        ssize_t n = recv_some(fs, fd, r->body + have, (size_t)content_length - have);
        if (n <= 0)
            goto out;
        have += (size_t)n;
    }
    r->body[have] = '\0';
    r->body_len = have;
    if (have)
        r->json = json_loadb(r->body, have, 0, NULL);
    rc = 0;
out:
    buf_free(&in);
    return rc;
}

static void record_request(struct fakeserver *fs, const struct request *r, json_t *script)
{
    json_t *rec = json_object();
    json_object_set_new(rec, "method", json_string(r->method));
    json_object_set_new(rec, "path", json_string(r->path));
    json_object_set(rec, "headers", r->headers);
    if (r->json)
        json_object_set(rec, "body", r->json);
    else if (r->body_len && str_utf8_valid(r->body, r->body_len))
        json_object_set_new(rec, "body", json_stringn(r->body, r->body_len));
    else
        json_object_set_new(rec, "body", json_null());
    json_object_set_new(rec, "t_s", json_real(jb_clock_s()));
    const char *log_path = sget_str(script, "request_log", NULL);
    pthread_mutex_lock(&fs->mu);
    if (log_path) {
        FILE *f = fopen(log_path, "a");
        if (f) {
            char *line = json_dumps(rec, JSON_COMPACT);
            if (line)
                fprintf(f, "%s\n", line);
            free(line);
            fclose(f);
        }
    }
    json_array_append_new(fs->requests, rec);
    pthread_mutex_unlock(&fs->mu);
}

/* ---- models ------------------------------------------------------------ */

/* The script's models, or the one default model. New reference. */
static json_t *models_of(json_t *script)
{
    json_t *m = json_object_get(script, "models");
    if (json_is_array(m))
        return json_incref(m);
    return json_pack(
        "[{s:s, s:I, s:s, s:s, s:s, s:s, s:I}]", "name", "fake:latest", "size", (json_int_t)1234567,
        "digest", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "family",
        "fake", "parameter_size", "1M", "quantization", "F32", "context_length", (json_int_t)4096);
}

/* Finds a model by name; "name" without a tag also matches "name:latest". */
static json_t *model_find(json_t *models, const char *name)
{
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m)
    {
        const char *n = sget_str(m, "name", "");
        if (strcmp(n, name) == 0)
            return m;
        size_t len = strlen(name);
        if (!strchr(name, ':') && strncmp(n, name, len) == 0 && strcmp(n + len, ":latest") == 0)
            return m;
    }
    return NULL;
}

static json_t *ollama_details(json_t *m)
{
    const char *family = sget_str(m, "family", "");
    return json_pack("{s:s, s:s, s:s, s:[s], s:s, s:s}", "parent_model", "", "format", "gguf",
                     "family", family, "families", family, "parameter_size",
                     sget_str(m, "parameter_size", ""), "quantization_level",
                     sget_str(m, "quantization", ""));
}

static json_t *ollama_model_entry(json_t *m)
{
    const char *name = sget_str(m, "name", "");
    json_t *e = json_pack("{s:s, s:s, s:s, s:I, s:s}", "name", name, "model", name, "modified_at",
                          "2025-01-01T00:00:00Z", "size", (json_int_t)sget_num(m, "size", 0),
                          "digest", sget_str(m, "digest", ""));
    json_object_set_new(e, "details", ollama_details(m));
    return e;
}

static void loaded_set(struct fakeserver *fs, const char *name, int on)
{
    pthread_mutex_lock(&fs->mu);
    size_t i = 0;
    for (; i < fs->n_loaded; i++)
        if (strcmp(fs->loaded[i], name) == 0)
            break;
    if (on && i == fs->n_loaded && fs->n_loaded < FS_MAX_LOADED)
        str_lcpy(fs->loaded[fs->n_loaded++], name, sizeof fs->loaded[0]);
    else if (!on && i < fs->n_loaded)
        memmove(fs->loaded[i], fs->loaded[i + 1], (fs->n_loaded-- - i - 1) * sizeof fs->loaded[0]);
    pthread_mutex_unlock(&fs->mu);
}

/* ---- generation plan --------------------------------------------------- */

struct plan {
    char **pieces;
    size_t n;
    size_t n_think; /* the first n_think pieces are reasoning ("thinking") */
    int cut;        /* max_tokens cut the answer */
    long prompt_words;
    char model[256];
};

static void plan_free(struct plan *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->pieces[i]);
    free(p->pieces);
}

static void plan_push(struct plan *p, const char *s, size_t len)
{
    p->pieces = realloc(p->pieces, (p->n + 1) * sizeof *p->pieces);
    p->pieces[p->n++] = str_ndup(s, len);
}

/* Words start a new piece: "Paris is" -> "Paris", " is". */
static void plan_split(struct plan *p, const char *text)
{
    size_t start = 0, len = strlen(text);
    for (size_t i = 1; i < len; i++)
        if ((text[i] == ' ' || text[i] == '\n') && text[i - 1] != ' ' && text[i - 1] != '\n') {
            plan_push(p, text + start, i - start);
            start = i;
        }
    if (len > start)
        plan_push(p, text + start, len - start);
}

static void plan_from(struct plan *p, json_t *src)
{
    json_t *pieces = json_object_get(src, "pieces");
    if (json_is_array(pieces)) {
        size_t i;
        json_t *v;
        json_array_foreach(pieces, i, v) if (json_is_string(v))
            plan_push(p, json_string_value(v), json_string_length(v));
    } else if (json_is_string(json_object_get(src, "answer"))) {
        plan_split(p, json_string_value(json_object_get(src, "answer")));
    }
}

/* The prompt as one text: "prompt", or the messages' contents. */
static void prompt_text(json_t *body, struct buf *out)
{
    json_t *prompt = json_object_get(body, "prompt");
    if (json_is_string(prompt))
        buf_puts(out, json_string_value(prompt));
    json_t *msgs = json_object_get(body, "messages");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        const char *c = sget_str(m, "content", NULL);
        if (c) {
            if (out->len)
                buf_putc(out, '\n');
            buf_puts(out, c);
        }
    }
}

static long count_words(const char *s)
{
    long n = 0;
    int in = 0;
    for (; *s; s++) {
        int sp = *s == ' ' || *s == '\n' || *s == '\t' || *s == '\r';
        if (!sp && !in)
            n++;
        in = !sp;
    }
    return n;
}

static void plan_build(struct plan *p, json_t *script, json_t *body, long max_tokens)
{
    memset(p, 0, sizeof *p);
    str_lcpy(p->model, sget_str(body, "model", ""), sizeof p->model);
    struct buf text = {0};
    prompt_text(body, &text);
    p->prompt_words = count_words(buf_str(&text));
    json_t *rules = json_object_get(script, "rules");
    json_t *chosen = script;
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r)
    {
        const char *needle = sget_str(r, "contains", NULL);
        if (needle && strstr(buf_str(&text), needle)) {
            chosen = r;
            break;
        }
    }
    buf_free(&text);
    json_t *think = json_object_get(script, "thinking");
    json_t *v;
    json_array_foreach(think, i, v) if (json_is_string(v))
        plan_push(p, json_string_value(v), json_string_length(v));
    p->n_think = p->n;
    plan_from(p, chosen);
    long tokens = sget_int(script, "tokens", -1);
    size_t t0 = p->n_think;
    if (tokens >= 0) {
        if (p->n == t0) {
            for (long k = 0; k < tokens; k++) {
                char w[32];
                snprintf(w, sizeof w, " t%ld", k);
                plan_push(p, w, strlen(w));
            }
        } else {
            size_t base = p->n - t0;
            while ((long)(p->n - t0) < tokens) {
                const char *src = p->pieces[t0 + (p->n - t0) % base];
                plan_push(p, src, strlen(src));
            }
            while ((long)(p->n - t0) > tokens)
                free(p->pieces[--p->n]);
        }
    } else if (p->n == t0 && chosen == script) {
        plan_split(p, "Hello from the fake server.");
    }
    if (max_tokens > 0 && (long)p->n > max_tokens) {
        while ((long)p->n > max_tokens)
            free(p->pieces[--p->n]);
        p->cut = 1;
        if (p->n_think > p->n)
            p->n_think = p->n;
    }
}

/* ---- error answers ----------------------------------------------------- */

enum flavour { FL_OLLAMA, FL_OPENAI };

static int send_error(struct out *o, enum flavour fl, int status, const char *text)
{
    json_t *j;
    if (fl == FL_OLLAMA)
        j = json_pack("{s:s}", "error", text);
    else
        j = json_pack("{s:{s:s, s:s, s:i}}", "error", "message", text, "type",
                      status == 404 ? "not_found_error" : "server_error", "code", status);
    int rc = send_json(o, status, j);
    json_decref(j);
    return rc;
}

static int model_missing(struct out *o, enum flavour fl, json_t *script, json_t *models,
                         const char *model)
{
    if (!json_is_array(json_object_get(script, "models")) || model_find(models, model))
        return 0;
    char text[512];
    if (fl == FL_OLLAMA)
        snprintf(text, sizeof text, "model \"%s\" not found, try pulling it first", model);
    else
        snprintf(text, sizeof text, "The model `%s` does not exist.", model);
    send_error(o, fl, 404, text);
    return 1;
}

/* ---- streaming --------------------------------------------------------- */

struct stream_ctx {
    struct out *o;
    json_t *script;
    enum flavour fl;
    int sse;
    int crlf;
};

/* Sends one line (NDJSON) or one event (SSE) holding j. */
static int emit(struct stream_ctx *sc, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    struct buf b = {0};
    if (sc->sse)
        buf_printf(&b, "data: %s%s", text, sc->crlf ? "\r\n\r\n" : "\n\n");
    else
        buf_printf(&b, "%s\n", text);
    int rc = send_chunk(sc->o, b.data, b.len);
    buf_free(&b);
    free(text);
    return rc;
}

/* The faults that interrupt a stream before piece k. 1: the stream is
 * over (the caller returns), 0: go on. */
static int stream_faults(struct stream_ctx *sc, size_t k)
{
    json_t *s = sc->script;
    if (sget_int(s, "drop_after", -1) == (long)k) {
        if (sget_bool(s, "drop_clean"))
            send_end(sc->o);
        return 1; /* the caller closes the socket: a cut chunked body */
    }
    if (sget_int(s, "endless_after", sget_bool(s, "endless_line") ? 0 : -1) == (long)k) {
        const char *head =
            sc->sse ? "data: {\"choices\":[{\"delta\":{\"content\":\"" : "{\"response\":\"";
        send_chunk_str(sc->o, head);
        char fill[16384];
        memset(fill, 'a', sizeof fill);
        for (long long sent = 0; sent < FS_ENDLESS_MAX && !sc->o->failed; sent += sizeof fill)
            if (send_chunk(sc->o, fill, sizeof fill))
                break;
        return 1;
    }
    if (sget_int(s, "malformed_after", -1) == (long)k) {
        if (sc->sse)
            send_chunk_str(sc->o, sc->crlf ? "data: {\"choices\": [{\"delta\": \r\n\r\n"
                                           : "data: {\"choices\": [{\"delta\": \n\n");
        else
            send_chunk_str(sc->o, "{\"model\": \"x\", \"response\": \"oops\"\n");
    }
    if (sget_int(s, "error_after", -1) == (long)k) {
        const char *text = sget_str(s, "error", "the model runner crashed");
        json_t *j = sc->fl == FL_OLLAMA ? json_pack("{s:s}", "error", text)
                                        : json_pack("{s:{s:s, s:s}}", "error", "message", text,
                                                    "type", "server_error");
        emit(sc, j);
        json_decref(j);
        send_end(sc->o);
        return 1;
    }
    return 0;
}

static json_int_t ns(double s)
{
    return (json_int_t)(s * 1e9);
}

/* Ollama /api/generate and /api/chat. */
static void serve_ollama_gen(struct fakeserver *fs, struct out *o, json_t *script,
                             const struct request *r, int chat)
{
    json_t *body = r->json;
    const char *model = sget_str(body, "model", "");
    json_t *models = models_of(script);
    if (model_missing(o, FL_OLLAMA, script, models, model)) {
        json_decref(models);
        return;
    }
    json_decref(models);
    json_t *msgs = json_object_get(body, "messages");
    json_t *prompt = json_object_get(body, "prompt");
    json_t *keep = json_object_get(body, "keep_alive");
    int unload = (json_is_number(keep) && json_number_value(keep) == 0) ||
                 (json_is_string(keep) && (strcmp(json_string_value(keep), "0") == 0 ||
                                           strcmp(json_string_value(keep), "0s") == 0));
    int empty = chat ? json_array_size(msgs) == 0
                     : !json_is_string(prompt) || json_string_length(prompt) == 0;
    if (empty) {
        loaded_set(fs, model, !unload);
        json_t *j =
            json_pack("{s:s, s:s, s:b, s:s}", "model", model, "created_at", "2025-01-01T00:00:00Z",
                      "done", 1, "done_reason", unload ? "unload" : "load");
        if (chat)
            json_object_set_new(j, "message",
                                json_pack("{s:s, s:s}", "role", "assistant", "content", ""));
        else
            json_object_set_new(j, "response", json_string(""));
        if (!unload && json_is_number(json_object_get(script, "load_duration_s")))
            json_object_set_new(j, "load_duration",
                                json_integer(ns(sget_num(script, "load_duration_s", 0))));
        send_json(o, 200, j);
        json_decref(j);
        return;
    }
    loaded_set(fs, model, !unload);
    long max_tokens = -1;
    json_t *opts = json_object_get(body, "options");
    if (json_is_number(json_object_get(opts, "num_predict")))
        max_tokens = (long)json_number_value(json_object_get(opts, "num_predict"));
    struct plan p;
    plan_build(&p, script, body, max_tokens);
    double t_req = jb_clock_s();
    int stream = !json_is_false(json_object_get(body, "stream"));
    double ttft = sget_num(script, "ttft_s", 0);
    double tps = sget_num(script, "tokens_per_s", 0);
    struct stream_ctx sc = {.o = o, .script = script, .fl = FL_OLLAMA};
    int late = sget_bool(script, "headers_late") || !stream;
    if (!late && send_head(o, 200, "application/x-ndjson", -1))
        goto out;
    if (sleep_until(fs, t_req + ttft))
        goto out;
    if (late && stream && send_head(o, 200, "application/x-ndjson", -1))
        goto out;
    double t_first = jb_clock_s();
    struct buf all = {0};
    size_t k = 0;
    for (; k < p.n; k++) {
        if (stream && stream_faults(&sc, k)) {
            buf_free(&all);
            goto out;
        }
        if (tps > 0 && sleep_until(fs, t_first + (double)k / tps)) {
            buf_free(&all);
            goto out;
        }
        int thinking = k < p.n_think;
        if (!thinking)
            buf_puts(&all, p.pieces[k]);
        if (!stream)
            continue;
        json_t *j = json_pack("{s:s, s:s}", "model", model, "created_at", "2025-01-01T00:00:00Z");
        const char *content = thinking ? "" : p.pieces[k];
        if (chat) {
            json_t *m = json_pack("{s:s, s:s}", "role", "assistant", "content", content);
            if (thinking)
                json_object_set_new(m, "thinking", json_string(p.pieces[k]));
            json_object_set_new(j, "message", m);
        } else {
            json_object_set_new(j, "response", json_string(content));
            if (thinking)
                json_object_set_new(j, "thinking", json_string(p.pieces[k]));
        }
        json_object_set_new(j, "done", json_false());
        int rc = emit(&sc, j);
        json_decref(j);
        if (rc) {
            buf_free(&all);
            goto out;
        }
    }
    if (stream && stream_faults(&sc, k)) {
        buf_free(&all);
        goto out;
    }
    double t_end = jb_clock_s();
    json_t *fin = json_pack("{s:s, s:s}", "model", model, "created_at", "2025-01-01T00:00:00Z");
    const char *text = stream ? "" : buf_str(&all);
    if (chat)
        json_object_set_new(fin, "message",
                            json_pack("{s:s, s:s}", "role", "assistant", "content", text));
    else
        json_object_set_new(fin, "response", json_string(text));
    json_object_set_new(fin, "done", json_true());
    json_object_set_new(fin, "done_reason",
                        json_string(p.cut ? "length" : sget_str(script, "done_reason", "stop")));
    double load_s = sget_num(script, "load_duration_s", 0.001);
    json_object_set_new(fin, "total_duration", json_integer(ns(t_end - t_req + load_s)));
    json_object_set_new(fin, "load_duration", json_integer(ns(load_s)));
    if (!json_is_false(json_object_get(script, "usage"))) {
        json_object_set_new(fin, "prompt_eval_count",
                            json_integer(sget_int(script, "prompt_tokens", p.prompt_words + 5)));
        json_object_set_new(fin, "eval_count",
                            json_integer(sget_int(script, "output_tokens", (long)p.n)));
    }
    json_object_set_new(fin, "prompt_eval_duration", json_integer(ns(t_first - t_req)));
    json_object_set_new(fin, "eval_duration", json_integer(ns(t_end - t_first)));
    if (!chat)
        json_object_set_new(fin, "context", json_pack("[i,i,i]", 1, 2, 3));
    if (stream) {
        if (!emit(&sc, fin))
            send_end(o);
    } else {
        send_json(o, 200, fin);
    }
    json_decref(fin);
    buf_free(&all);
out:
    plan_free(&p);
}

static json_t *openai_chunk(const char *model, int chat, const char *piece, const char *finish,
                            int role)
{
    json_t *choice = json_pack("{s:i}", "index", 0);
    if (chat) {
        json_t *delta = json_object();
        if (role)
            json_object_set_new(delta, "role", json_string("assistant"));
        if (piece)
            json_object_set_new(delta, "content", json_string(piece));
        json_object_set_new(choice, "delta", delta);
    } else {
        json_object_set_new(choice, "text", json_string(piece ? piece : ""));
    }
    json_object_set_new(choice, "finish_reason", finish ? json_string(finish) : json_null());
    return json_pack("{s:s, s:s, s:i, s:s, s:[o]}", "id", "chatcmpl-fake", "object",
                     chat ? "chat.completion.chunk" : "text_completion", "created", 0, "model",
                     model, "choices", choice);
}

/* /v1/chat/completions (chat) and /v1/completions. */
static void serve_openai_gen(struct fakeserver *fs, struct out *o, json_t *script,
                             const struct request *r, int chat)
{
    json_t *body = r->json;
    const char *model = sget_str(body, "model", "");
    json_t *models = models_of(script);
    if (model_missing(o, FL_OPENAI, script, models, model)) {
        json_decref(models);
        return;
    }
    json_decref(models);
    long max_tokens = -1;
    if (json_is_number(json_object_get(body, "max_tokens")))
        max_tokens = (long)json_number_value(json_object_get(body, "max_tokens"));
    else if (json_is_number(json_object_get(body, "max_completion_tokens")))
        max_tokens = (long)json_number_value(json_object_get(body, "max_completion_tokens"));
    struct plan p;
    plan_build(&p, script, body, max_tokens);
    double t_req = jb_clock_s();
    int stream = json_is_true(json_object_get(body, "stream"));
    int want_usage =
        json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage"));
    int usage = !json_is_false(json_object_get(script, "usage"));
    double ttft = sget_num(script, "ttft_s", 0);
    double tps = sget_num(script, "tokens_per_s", 0);
    struct stream_ctx sc = {
        .o = o, .script = script, .fl = FL_OPENAI, .sse = 1, .crlf = sget_bool(script, "crlf")};
    int late = sget_bool(script, "headers_late") || !stream;
    const char *ctype = "text/event-stream";
    if (!late && send_head(o, 200, ctype, -1))
        goto out;
    if (stream && !late && chat) {
        /* like OpenAI: a first chunk with the role and empty content */
        json_t *j = openai_chunk(model, chat, "", NULL, 1);
        int rc = emit(&sc, j);
        json_decref(j);
        if (rc)
            goto out;
    }
    if (sleep_until(fs, t_req + ttft))
        goto out;
    if (late && stream && send_head(o, 200, ctype, -1))
        goto out;
    double t_first = jb_clock_s();
    struct buf all = {0};
    size_t k = 0;
    for (; k < p.n; k++) {
        if (stream && stream_faults(&sc, k)) {
            buf_free(&all);
            goto out;
        }
        if (tps > 0 && sleep_until(fs, t_first + (double)k / tps)) {
            buf_free(&all);
            goto out;
        }
        int thinking = k < p.n_think;
        if (!thinking)
            buf_puts(&all, p.pieces[k]);
        if (!stream)
            continue;
        json_t *j = openai_chunk(model, chat, thinking ? NULL : p.pieces[k], NULL, 0);
        if (thinking && chat)
            json_object_set_new(
                json_object_get(json_array_get(json_object_get(j, "choices"), 0), "delta"),
                "reasoning_content", json_string(p.pieces[k]));
        int rc = emit(&sc, j);
        json_decref(j);
        if (rc) {
            buf_free(&all);
            goto out;
        }
    }
    if (stream && stream_faults(&sc, k)) {
        buf_free(&all);
        goto out;
    }
    double t_end = jb_clock_s();
    const char *finish = p.cut ? "length" : sget_str(script, "done_reason", "stop");
    long prompt_n = sget_int(script, "prompt_tokens", p.prompt_words + 5);
    long out_n = sget_int(script, "output_tokens", (long)p.n);
    json_t *usage_obj =
        json_pack("{s:i, s:i, s:i}", "prompt_tokens", (int)prompt_n, "completion_tokens",
                  (int)out_n, "total_tokens", (int)(prompt_n + out_n));
    json_t *timings = NULL;
    if (sget_bool(script, "timings")) {
        double pm = (t_first - t_req) * 1000.0, dm = (t_end - t_first) * 1000.0;
        timings = json_pack("{s:i, s:i, s:f, s:i, s:f}", "cache_n",
                            (int)sget_int(script, "cache_n", 0), "prompt_n", (int)prompt_n,
                            "prompt_ms", pm, "predicted_n", (int)out_n, "predicted_ms", dm);
    }
    if (stream) {
        json_t *j = openai_chunk(model, chat, chat ? NULL : "", finish, 0);
        if (chat)
            json_object_set_new(
                json_object_get(json_array_get(json_object_get(j, "choices"), 0), "delta"),
                "content", json_null());
        if (timings && !(usage && want_usage))
            json_object_set(j, "timings", timings);
        int rc = emit(&sc, j);
        json_decref(j);
        if (!rc && usage && want_usage) {
            j = json_pack("{s:s, s:s, s:i, s:s, s:[], s:O}", "id", "chatcmpl-fake", "object",
                          chat ? "chat.completion.chunk" : "text_completion", "created", 0, "model",
                          model, "choices", "usage", usage_obj);
            if (timings)
                json_object_set(j, "timings", timings);
            rc = emit(&sc, j);
            json_decref(j);
        }
        if (!rc)
            rc = send_chunk_str(o, sc.crlf ? "data: [DONE]\r\n\r\n" : "data: [DONE]\n\n");
        if (!rc)
            send_end(o);
    } else {
        json_t *choice = json_pack("{s:i, s:s}", "index", 0, "finish_reason", finish);
        if (chat)
            json_object_set_new(
                choice, "message",
                json_pack("{s:s, s:s}", "role", "assistant", "content", buf_str(&all)));
        else
            json_object_set_new(choice, "text", json_string(buf_str(&all)));
        json_t *j = json_pack("{s:s, s:s, s:i, s:s, s:[o]}", "id", "chatcmpl-fake", "object",
                              chat ? "chat.completion" : "text_completion", "created", 0, "model",
                              model, "choices", choice);
        if (usage)
            json_object_set(j, "usage", usage_obj);
        if (timings)
            json_object_set(j, "timings", timings);
        send_json(o, 200, j);
        json_decref(j);
    }
    json_decref(usage_obj);
    json_decref(timings);
    buf_free(&all);
out:
    plan_free(&p);
}

/* ---- listings ---------------------------------------------------------- */

static void serve_tags(struct out *o, json_t *script)
{
    json_t *models = models_of(script);
    json_t *arr = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m) json_array_append_new(arr, ollama_model_entry(m));
    json_t *j = json_pack("{s:o}", "models", arr);
    send_json(o, 200, j);
    json_decref(j);
    json_decref(models);
}

static void serve_ps(struct fakeserver *fs, struct out *o, json_t *script)
{
    json_t *models = models_of(script);
    json_t *arr = json_array();
    pthread_mutex_lock(&fs->mu);
    for (size_t i = 0; i < fs->n_loaded; i++) {
        json_t *m = model_find(models, fs->loaded[i]);
        json_t *e;
        if (m) {
            e = ollama_model_entry(m);
            json_object_set_new(
                e, "size_vram",
                json_integer((json_int_t)sget_num(m, "vram_bytes", sget_num(m, "size", 0))));
        } else {
            e = json_pack("{s:s, s:s, s:i, s:i}", "name", fs->loaded[i], "model", fs->loaded[i],
                          "size", 0, "size_vram", 0);
        }
        json_object_set_new(e, "expires_at", json_string("2099-01-01T00:00:00Z"));
        json_array_append_new(arr, e);
    }
    pthread_mutex_unlock(&fs->mu);
    json_t *j = json_pack("{s:o}", "models", arr);
    send_json(o, 200, j);
    json_decref(j);
    json_decref(models);
}

static void serve_show(struct out *o, json_t *script, json_t *body)
{
    const char *name = sget_str(body, "model", sget_str(body, "name", ""));
    json_t *models = models_of(script);
    json_t *m = model_find(models, name);
    if (!m && !json_is_array(json_object_get(script, "models")))
        m = json_array_get(models, 0); /* default: any name is the fake model */
    if (!m) {
        char text[512];
        snprintf(text, sizeof text, "model '%s' not found", name);
        send_error(o, FL_OLLAMA, 404, text);
        json_decref(models);
        return;
    }
    const char *family = sget_str(m, "family", "llama");
    json_t *info = json_object();
    json_object_set_new(info, "general.architecture", json_string(family));
    char key[128];
    snprintf(key, sizeof key, "%s.context_length", family);
    json_object_set_new(info, key, json_integer((json_int_t)sget_num(m, "context_length", 4096)));
    json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "modelfile", "", "parameters", "", "template",
                          "{{ .Prompt }}", "modified_at", "2025-01-01T00:00:00Z");
    json_object_set_new(j, "details", ollama_details(m));
    json_object_set_new(j, "model_info", info);
    send_json(o, 200, j);
    json_decref(j);
    json_decref(models);
}

static void serve_v1_models(struct out *o, json_t *script)
{
    json_t *models = models_of(script);
    json_t *arr = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m)
    {
        json_t *e = json_pack("{s:s, s:s, s:i, s:s}", "id", sget_str(m, "name", ""), "object",
                              "model", "created", 0, "owned_by", "library");
        if (json_is_number(json_object_get(m, "size")))
            json_object_set_new(e, "meta",
                                json_pack("{s:I}", "size", (json_int_t)sget_num(m, "size", 0)));
        json_array_append_new(arr, e);
    }
    json_t *j = json_pack("{s:s, s:o}", "object", "list", "data", arr);
    send_json(o, 200, j);
    json_decref(j);
    json_decref(models);
}

/* ---- connections ------------------------------------------------------- */

static void never_answer(struct fakeserver *fs, int fd)
{
    char sink[512];
    while (recv_some(fs, fd, sink, sizeof sink) > 0)
        ;
}

static void serve(struct fakeserver *fs, int fd)
{
    struct request r;
    struct out o = {.fs = fs, .fd = fd};
    int rc = read_request(fs, fd, &r);
    if (rc < 0)
        goto out;
    if (rc) {
        send_whole(&o, rc, "text/plain",
                   rc == 411 ? "chunked requests are not supported\n" : "bad request\n");
        goto out;
    }
    json_t *script = script_get(fs);
    record_request(fs, &r, script);
    o.write_bytes = sget_int(script, "write_bytes", 0);
    const char *fl = sget_str(script, "flavour", "any");
    int is_api = str_has_prefix(r.path, "/api/");
    int is_v1 = str_has_prefix(r.path, "/v1/");
    int allowed = (is_api && strcmp(fl, "openai") != 0) || (is_v1 && strcmp(fl, "ollama") != 0);
    int post = strcmp(r.method, "POST") == 0;
    int get = strcmp(r.method, "GET") == 0;
    if (sget_bool(script, "never_answer")) {
        never_answer(fs, fd);
    } else if (!allowed) {
        send_whole(&o, 404, "text/plain", "404 page not found");
    } else if (json_is_number(json_object_get(script, "status"))) {
        send_error(&o, is_api ? FL_OLLAMA : FL_OPENAI, (int)sget_int(script, "status", 500),
                   sget_str(script, "error", "internal error"));
    } else if (post && !json_is_object(r.json) &&
               (is_v1 || strcmp(r.path, "/api/show") == 0 || strcmp(r.path, "/api/chat") == 0 ||
                strcmp(r.path, "/api/generate") == 0)) {
        send_error(&o, is_api ? FL_OLLAMA : FL_OPENAI, 400, "the request body is not JSON");
    } else if (get && strcmp(r.path, "/api/version") == 0) {
        json_t *j = json_pack("{s:s}", "version", sget_str(script, "version", "0.0.0-fake"));
        send_json(&o, 200, j);
        json_decref(j);
    } else if (get && strcmp(r.path, "/api/tags") == 0) {
        serve_tags(&o, script);
    } else if (get && strcmp(r.path, "/api/ps") == 0) {
        serve_ps(fs, &o, script);
    } else if (post && strcmp(r.path, "/api/show") == 0) {
        serve_show(&o, script, r.json);
    } else if (post && strcmp(r.path, "/api/generate") == 0) {
        serve_ollama_gen(fs, &o, script, &r, 0);
    } else if (post && strcmp(r.path, "/api/chat") == 0) {
        serve_ollama_gen(fs, &o, script, &r, 1);
    } else if (get && strcmp(r.path, "/v1/models") == 0) {
        serve_v1_models(&o, script);
    } else if (post && strcmp(r.path, "/v1/chat/completions") == 0) {
        serve_openai_gen(fs, &o, script, &r, 1);
    } else if (post && strcmp(r.path, "/v1/completions") == 0) {
        serve_openai_gen(fs, &o, script, &r, 0);
    } else {
        send_whole(&o, 404, "text/plain", "404 page not found");
    }
    script_put(fs, script);
out:
    request_free(&r);
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    serve(c->fs, c->fd);
    close(c->fd);
    atomic_store(&c->finished, 1);
    return NULL;
}

/* Joins the connection threads that have finished (all of them when
 * everything is stopping). */
static void reap(struct fakeserver *fs, int all)
{
    struct conn **pp = &fs->conns;
    while (*pp) {
        struct conn *c = *pp;
        if (all || atomic_load(&c->finished)) {
            pthread_join(c->th, NULL);
            *pp = c->next;
            free(c);
        } else {
            pp = &c->next;
        }
    }
}

static void *accept_main(void *arg)
{
    struct fakeserver *fs = arg;
    for (;;) {
        if (wait_fd(fs, fs->listen_fd, POLLIN))
            break;
        int fd = accept(fs->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#ifdef SO_NOSIGPIPE
        setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
        reap(fs, 0);
        struct conn *c = calloc(1, sizeof *c);
        c->fs = fs;
        c->fd = fd;
        if (pthread_create(&c->th, NULL, conn_main, c)) {
            close(fd);
            free(c);
            continue;
        }
        c->next = fs->conns;
        fs->conns = c;
    }
    reap(fs, 1);
    return NULL;
}

int fakeserver_start_port(struct fakeserver **out, int port, const char *script_json, char *err)
{
    *out = NULL;
    json_t *script;
    int rc = parse_script(script_json, &script, err);
    if (rc)
        return rc;
    struct fakeserver *fs = calloc(1, sizeof *fs);
    fs->listen_fd = -1;
    fs->wake[0] = fs->wake[1] = -1;
    fs->script = script;
    fs->requests = json_array();
    pthread_mutex_init(&fs->mu, NULL);
    if (pipe(fs->wake)) {
        rc = err_setf(err, JB_ERR_IO, "pipe: %s", strerror(errno));
        goto fail;
    }
    fs->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fs->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (fs->listen_fd < 0 || bind(fs->listen_fd, (struct sockaddr *)&a, sizeof a) ||
        listen(fs->listen_fd, 64) || getsockname(fs->listen_fd, (struct sockaddr *)&a, &alen)) {
        rc = err_setf(err, JB_ERR_IO, "fake server: cannot listen on 127.0.0.1:%d: %s", port,
                      strerror(errno));
        goto fail;
    }
    fs->port = ntohs(a.sin_port);
    snprintf(fs->url, sizeof fs->url, "http://127.0.0.1:%d", fs->port);
    if (pthread_create(&fs->accept_th, NULL, accept_main, fs)) {
        rc = err_setf(err, JB_ERR_IO, "fake server: cannot start a thread");
        goto fail;
    }
    *out = fs;
    return 0;
fail:
    if (fs->listen_fd >= 0)
        close(fs->listen_fd);
    if (fs->wake[0] >= 0) {
        close(fs->wake[0]);
        close(fs->wake[1]);
    }
    json_decref(fs->script);
    json_decref(fs->requests);
    pthread_mutex_destroy(&fs->mu);
    free(fs);
    return rc;
}

int fakeserver_unused_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    int port = 1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

int fakeserver_start(struct fakeserver **out, const char *script_json, char *err)
{
    return fakeserver_start_port(out, 0, script_json, err);
}

int fakeserver_set_script(struct fakeserver *fs, const char *script_json, char *err)
{
    json_t *script;
    int rc = parse_script(script_json, &script, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&fs->mu);
    json_t *old = fs->script;
    fs->script = script;
    json_decref(old);
    pthread_mutex_unlock(&fs->mu);
    return 0;
}

int fakeserver_port(const struct fakeserver *fs)
{
    return fs->port;
}

const char *fakeserver_url(const struct fakeserver *fs)
{
    return fs->url;
}

size_t fakeserver_request_count(struct fakeserver *fs)
{
    pthread_mutex_lock(&fs->mu);
    size_t n = json_array_size(fs->requests);
    pthread_mutex_unlock(&fs->mu);
    return n;
}

json_t *fakeserver_request(struct fakeserver *fs, size_t i)
{
    pthread_mutex_lock(&fs->mu);
    json_t *r = json_deep_copy(json_array_get(fs->requests, i));
    pthread_mutex_unlock(&fs->mu);
    return r;
}

json_t *fakeserver_last_body(struct fakeserver *fs, const char *path)
{
    json_t *found = NULL;
    pthread_mutex_lock(&fs->mu);
    for (size_t i = json_array_size(fs->requests); i-- > 0;) {
        json_t *r = json_array_get(fs->requests, i);
        if (strcmp(sget_str(r, "path", ""), path) == 0) {
            found = json_deep_copy(json_object_get(r, "body"));
            break;
        }
    }
    pthread_mutex_unlock(&fs->mu);
    return found;
}

void fakeserver_stop(struct fakeserver *fs)
{
    if (!fs)
        return;
    atomic_store(&fs->stopping, 1);
    ssize_t w = write(fs->wake[1], "x", 1);
    (void)w;
    pthread_join(fs->accept_th, NULL);
    close(fs->listen_fd);
    close(fs->wake[0]);
    close(fs->wake[1]);
    json_decref(fs->script);
    json_decref(fs->requests);
    pthread_mutex_destroy(&fs->mu);
    free(fs);
}
