#include "engines/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/sig.h"
#include "common/str.h"
#include "joulebench/joulebench.h"

#define HTTP_ERROR_BODY_MAX (64u * 1024u)
#define HTTP_JSON_MAX (16u * 1024u * 1024u)
#define HTTP_POLL_MS 250
#define HTTP_MAX_SOCKS 8

/* A socket libcurl asked us to watch (CURLMOPT_SOCKETFUNCTION). */
struct http_sock {
    curl_socket_t fd;
    int what; /* CURL_POLL_IN / OUT / INOUT */
};

struct http_client {
    CURLM *multi; /* owns the connection cache, so connections are reused */
    CURL *easy;
    double connect_timeout_s, idle_timeout_s;
    const volatile sig_atomic_t *stop;
    char auth_header[1024]; /* "Authorization: Bearer ..." or "" */
    char hint[256];
    char noproxy[1024];
    char curl_err[CURL_ERROR_SIZE];
    struct http_sock socks[HTTP_MAX_SOCKS];
    int n_socks;
    double timer_due_s; /* when libcurl wants its timeout action; INFINITY: never */

    /* per request */
    http_body_fn fn;
    void *user;
    char *err;
    int cb_rc;   /* what fn returned when it stopped the transfer */
    long status; /* HTTP status, read at the first body byte */
    int status_known;
    struct buf error_body;
    double t_last_byte; /* jb_clock_s() of the last byte (or of sending) */
    unsigned long long body_bytes;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Loopback must never go through a proxy set in the environment (the
 * servers joulebench measures are local), but a user's own no_proxy list
 * is kept for the rest. */
static void build_noproxy(char *dst, size_t size)
{
    const char *env = getenv("no_proxy");
    if (!env || !*env)
        env = getenv("NO_PROXY");
    dst[0] = '\0';
    if (env && *env) {
        str_lcpy(dst, env, size);
        str_lcat(dst, ",", size);
    }
    str_lcat(dst, "localhost,127.0.0.1,::1", size);
}

/* libcurl tells which sockets to watch for what; we keep the list. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *user, void *sockp)
{
    (void)easy;
    (void)sockp;
    struct http_client *c = user;
    int i = 0;
    while (i < c->n_socks && c->socks[i].fd != fd)
        i++;
    if (what == CURL_POLL_REMOVE) {
        if (i < c->n_socks)
            c->socks[i] = c->socks[--c->n_socks];
        return 0;
    }
    if (i == c->n_socks) {
        if (c->n_socks == HTTP_MAX_SOCKS)
            return -1; /* libcurl fails the transfer */
        c->n_socks++;
    }
    c->socks[i].fd = fd;
    c->socks[i].what = what;
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *user)
{
    (void)multi;
    struct http_client *c = user;
    c->timer_due_s = timeout_ms < 0 ? INFINITY : jb_clock_s() + (double)timeout_ms / 1000.0;
    return 0;
}

int http_client_open(struct http_client **out, const struct http_options *opt, char *err)
{
    *out = NULL;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return err_setf(err, JB_ERR_NET, "libcurl could not start: %s",
                        curl_easy_strerror(curl_init_rc));
    struct http_client *c = calloc(1, sizeof *c);
    if (!c)
        return err_setf(err, JB_ERR_NOMEM, "out of memory");
    c->multi = curl_multi_init();
    c->easy = curl_easy_init();
    if (!c->multi || !c->easy) {
        http_client_close(c);
        return err_setf(err, JB_ERR_NOMEM, "libcurl could not create a handle");
    }
    c->timer_due_s = INFINITY;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    c->connect_timeout_s = opt && opt->connect_timeout_s > 0 ? opt->connect_timeout_s : 5.0;
    c->idle_timeout_s = opt && opt->idle_timeout_s > 0 ? opt->idle_timeout_s : 300.0;
    c->stop = opt && opt->stop ? opt->stop : &sig_stop;
    if (opt && opt->bearer && *opt->bearer)
        snprintf(c->auth_header, sizeof c->auth_header, "Authorization: Bearer %s", opt->bearer);
    if (opt && opt->refused_hint)
        str_lcpy(c->hint, opt->refused_hint, sizeof c->hint);
    build_noproxy(c->noproxy, sizeof c->noproxy);
    buf_init(&c->error_body, HTTP_ERROR_BODY_MAX);
    *out = c;
    return 0;
}

void http_client_close(struct http_client *c)
{
    if (!c)
        return;
    if (c->easy)
        curl_easy_cleanup(c->easy);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    buf_free(&c->error_body);
    free(c);
}

void http_join(char *dst, size_t size, const char *base, const char *path)
{
    str_lcpy(dst, base, size);
    size_t n = strlen(dst);
    while (n && dst[n - 1] == '/')
        dst[--n] = '\0';
    if (path[0] != '/')
        str_lcat(dst, "/", size);
    str_lcat(dst, path, size);
}

/* One line of printable text out of an error body: control bytes become
 * spaces, runs of spaces shrink, and it is cut at size. */
static void one_line(const char *s, size_t len, char *dst, size_t size)
{
    size_t o = 0;
    int space = 1;
    for (size_t i = 0; i < len && o + 1 < size; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            ch = ' ';
        if (ch == ' ' && space)
            continue;
        space = ch == ' ';
        dst[o++] = (char)ch;
    }
    while (o && dst[o - 1] == ' ')
        o--;
    dst[o] = '\0';
    if (o + 1 >= size && size > 4)
        memcpy(dst + size - 4, "...", 4);
}

void http_error_text(const char *body, size_t len, char *dst, size_t size)
{
    if (!size)
        return;
    json_t *j = json_loadb(body, len, 0, NULL);
    const char *text = NULL;
    if (json_is_object(j)) {
        json_t *e = json_object_get(j, "error");
        if (json_is_string(e))
            text = json_string_value(e);
        else if (json_is_object(e) && json_is_string(json_object_get(e, "message")))
            text = json_string_value(json_object_get(e, "message"));
        else if (json_is_string(json_object_get(j, "message")))
            text = json_string_value(json_object_get(j, "message"));
        else if (json_is_string(json_object_get(j, "detail")))
            text = json_string_value(json_object_get(j, "detail"));
    }
    if (text)
        one_line(text, strlen(text), dst, size);
    else
        one_line(body ? body : "", body ? len : 0, dst, size);
    if (!dst[0])
        str_lcpy(dst, "(empty answer)", size);
    json_decref(j);
}

static size_t on_header(char *data, size_t size, size_t n, void *user)
{
    (void)data;
    struct http_client *c = user;
    c->t_last_byte = jb_clock_s();
    return size * n;
}

/* The body arrives here. The status is known by the first byte: a 2xx
 * body goes to the caller's callback, anything else is kept (capped) for
 * the error message. */
static size_t on_body(char *data, size_t size, size_t n, void *user)
{
    struct http_client *c = user;
    size_t len = size * n;
    double t = jb_clock_s();
    c->t_last_byte = t;
    c->body_bytes += len;
    if (!c->status_known) {
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &c->status);
        c->status_known = 1;
    }
    if (c->status < 200 || c->status > 299) {
        size_t room = c->error_body.max - c->error_body.len;
        buf_append(&c->error_body, data, len < room ? len : room);
        return len;
    }
    if (!c->fn)
        return len;
    int rc = c->fn(c->user, data, len, t, c->err);
    if (rc) {
        c->cb_rc = rc;
        return 0; /* libcurl ends the transfer with CURLE_WRITE_ERROR */
    }
    return len;
}

/* What went wrong at the transport level, in words that say what to do. */
static int transport_error(struct http_client *c, CURLcode cc, const char *url, char *err)
{
    long os_errno = 0;
    curl_easy_getinfo(c->easy, CURLINFO_OS_ERRNO, &os_errno);
    const char *detail = c->curl_err[0] ? c->curl_err : curl_easy_strerror(cc);
    const char *sep = c->hint[0] ? "; " : "";
    switch (cc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return err_setf(err, JB_ERR_USAGE,
                        "bad URL '%s' (%s); write it like http://127.0.0.1:11434", url, detail);
    case CURLE_COULDNT_RESOLVE_HOST:
        return err_setf(err, JB_ERR_NET, "cannot resolve the host of %s (%s)", url, detail);
    case CURLE_COULDNT_CONNECT:
        if (os_errno == ECONNREFUSED)
            return err_setf(err, JB_ERR_NET, "cannot connect to %s: connection refused%s%s", url,
                            sep, c->hint);
        return err_setf(err, JB_ERR_NET, "cannot connect to %s: %s%s%s", url, detail, sep, c->hint);
    case CURLE_OPERATION_TIMEDOUT:
        return err_setf(err, JB_ERR_TIMEOUT, "cannot connect to %s within %g s%s%s", url,
                        c->connect_timeout_s, sep, c->hint);
    case CURLE_GOT_NOTHING:
        return err_setf(err, JB_ERR_NET, "%s closed the connection without answering", url);
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        return err_setf(err, JB_ERR_NET,
                        "%s closed the connection in the middle of its answer, after %llu bytes "
                        "(%s); did the server stop or crash?",
                        url, c->body_bytes, detail);
    default:
        return err_setf(err, JB_ERR_NET, "request to %s failed: %s", url, detail);
    }
}

static int status_error(struct http_client *c, const char *url, char *err)
{
    char text[300];
    http_error_text(c->error_body.data, c->error_body.len, text, sizeof text);
    int code = c->status == 404 ? JB_ERR_NOTFOUND : JB_ERR_NET;
    return err_setf(err, code, "HTTP %ld from %s: %s", c->status, url, text);
}

/* Drives one transfer through libcurl's socket interface so that the wait
 * is ours: one poll() on the sockets libcurl named, bounded by its timer,
 * the idle clock and the stop-flag period; then libcurl is told exactly
 * which socket is ready. A streamed token costs one wake-up, one poll and
 * one recv (curl_multi_poll would add a wakeup pipe and a readiness check
 * of its own on every token). */
static int drive(struct http_client *c, const char *url, char *err)
{
    int running = 1;
    c->timer_due_s = INFINITY;
    CURLMcode mc = curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    while (mc == CURLM_OK && running) {
        if (*c->stop)
            return err_setf(err, JB_ERR_INTERRUPTED, "request to %s stopped by a signal", url);
        double now = jb_clock_s();
        double idle = now - c->t_last_byte;
        if (idle >= c->idle_timeout_s) {
            if (c->body_bytes)
                return err_setf(err, JB_ERR_TIMEOUT,
                                "%s sent nothing for %g s in the middle of its answer (after "
                                "%llu bytes); raise --timeout if the model is that slow",
                                url, c->idle_timeout_s, c->body_bytes);
            return err_setf(err, JB_ERR_TIMEOUT,
                            "%s accepted the request but sent no answer within %g s; raise "
                            "--timeout if the model takes that long to load or to read the "
                            "prompt",
                            url, c->idle_timeout_s);
        }
        double wait_s = c->idle_timeout_s - idle;
        if (wait_s > HTTP_POLL_MS / 1000.0)
            wait_s = HTTP_POLL_MS / 1000.0;
        if (c->timer_due_s - now < wait_s)
            wait_s = c->timer_due_s - now;
        int wait_ms = wait_s <= 0 ? 0 : (int)ceil(wait_s * 1000.0);
        struct pollfd pfd[HTTP_MAX_SOCKS];
        int n = c->n_socks;
        for (int i = 0; i < n; i++) {
            pfd[i].fd = c->socks[i].fd;
            pfd[i].events = (short)(((c->socks[i].what & CURL_POLL_IN) ? POLLIN : 0) |
                                    ((c->socks[i].what & CURL_POLL_OUT) ? POLLOUT : 0));
            pfd[i].revents = 0;
        }
        int ready = poll(pfd, (nfds_t)n, wait_ms);
        if (ready < 0 && errno != EINTR)
            return err_setf(err, JB_ERR_NET, "poll: %s", strerror(errno));
        for (int i = 0; ready > 0 && i < n && mc == CURLM_OK; i++) {
            if (!pfd[i].revents)
                continue;
            int mask = 0;
            if (pfd[i].revents & (POLLIN | POLLHUP))
                mask |= CURL_CSELECT_IN;
            if (pfd[i].revents & POLLOUT)
                mask |= CURL_CSELECT_OUT;
            if (pfd[i].revents & (POLLERR | POLLNVAL))
                mask |= CURL_CSELECT_ERR;
            mc = curl_multi_socket_action(c->multi, pfd[i].fd, mask, &running);
        }
        if (mc == CURLM_OK && running && jb_clock_s() >= c->timer_due_s) {
            c->timer_due_s = INFINITY; /* one-shot: libcurl sets the next one if it wants */
            mc = curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
    }
    if (mc != CURLM_OK)
        return err_setf(err, JB_ERR_NET, "libcurl: %s", curl_multi_strerror(mc));
    return 0;
}

int http_request(struct http_client *c, const char *url, const char *json_body, http_body_fn fn,
                 void *user, long *status, double *t_sent_s, char *err)
{
    if (status)
        *status = 0;
    if (t_sent_s)
        *t_sent_s = jb_clock_s();
    CURL *h = c->easy;
    curl_easy_reset(h);
    c->fn = fn;
    c->user = user;
    c->err = err;
    c->cb_rc = 0;
    c->status = 0;
    c->status_known = 0;
    c->body_bytes = 0;
    c->curl_err[0] = '\0';
    buf_reset(&c->error_body);

    struct curl_slist *headers = NULL, *tmp;
    int rc = 0;
#define ADD_HEADER(s)                                                                              \
    do {                                                                                           \
        if (!(tmp = curl_slist_append(headers, (s)))) {                                            \
            rc = err_setf(err, JB_ERR_NOMEM, "out of memory");                                     \
            goto out;                                                                              \
        }                                                                                          \
        headers = tmp;                                                                             \
    } while (0)
    ADD_HEADER("Expect:");
    if (json_body)
        ADD_HEADER("Content-Type: application/json");
    if (c->auth_header[0])
        ADD_HEADER(c->auth_header);
#undef ADD_HEADER

    curl_easy_setopt(h, CURLOPT_URL, url);
    /* Model servers speak HTTP: any other scheme libcurl knows (ftp://,
     * file://) is a bad URL, said at once, not a connection attempt. */
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_err);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "joulebench/" JB_VERSION);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_NOPROXY, c->noproxy);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->connect_timeout_s * 1000.0));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, NULL);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    if (json_body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, json_body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json_body));
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }

    CURLMcode mc = curl_multi_add_handle(c->multi, h);
    if (mc != CURLM_OK) {
        rc = err_setf(err, JB_ERR_NET, "libcurl: %s", curl_multi_strerror(mc));
        goto out;
    }
    double t0 = jb_clock_s();
    if (t_sent_s)
        *t_sent_s = t0;
    c->t_last_byte = t0;
    rc = drive(c, url, err);
    if (!rc) {
        CURLcode cc = CURLE_OK;
        int msgs;
        CURLMsg *m;
        while ((m = curl_multi_info_read(c->multi, &msgs)))
            if (m->msg == CURLMSG_DONE && m->easy_handle == h)
                cc = m->data.result;
        if (!c->status_known)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
        if (c->cb_rc)
            rc = c->cb_rc;
        else if (cc != CURLE_OK && !(c->status && (c->status < 200 || c->status > 299)))
            rc = transport_error(c, cc, url, err);
        else if (c->status < 200 || c->status > 299)
            rc = status_error(c, url, err);
    }
    curl_multi_remove_handle(c->multi, h);
out:
    if (status)
        *status = c->status;
    curl_slist_free_all(headers);
    c->fn = NULL;
    c->user = NULL;
    c->err = NULL;
    return rc;
}

struct gather {
    struct buf body;
    const char *url;
};

static int gather_body(void *user, const char *data, size_t len, double t_s, char *err)
{
    (void)t_s;
    struct gather *g = user;
    if (buf_append(&g->body, data, len))
        return err_setf(err, JB_ERR_NOMEM, "the answer from %s is larger than %u MiB", g->url,
                        HTTP_JSON_MAX >> 20);
    return 0;
}

int http_json(struct http_client *c, const char *url, const char *json_body, json_t **out,
              long *status, char *err)
{
    *out = NULL;
    struct gather g = {.url = url};
    buf_init(&g.body, HTTP_JSON_MAX);
    int rc = http_request(c, url, json_body, gather_body, &g, status, NULL, err);
    if (!rc) {
        json_error_t je;
        *out = json_loadb(g.body.data ? g.body.data : "", g.body.len, 0, &je);
        if (!*out)
            rc = err_setf(err, JB_ERR_FORMAT,
                          "the answer from %s is not JSON (line %d, column %d: %s); is this "
                          "the right server and port?",
                          url, je.line, je.column, je.text);
    }
    buf_free(&g.body);
    return rc;
}
