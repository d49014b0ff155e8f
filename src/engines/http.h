/*
 * http.h — the little HTTP joulebench needs, over libcurl: POST a JSON body
 * and stream the answer to a callback as it arrives, or GET/POST and parse
 * a JSON answer. One client holds one connection cache (keep-alive across
 * requests) and is used by one thread at a time.
 *
 * Timeouts: connect_timeout_s bounds the TCP connect; idle_timeout_s bounds
 * any silence, from the request being sent to the first byte and between
 * bytes after it ("accepts and never answers" ends after idle_timeout_s).
 * The wait loop also polls a stop flag (SIGINT), at least every 250 ms.
 *
 * Errors name the URL and the fix: connection refused carries the engine's
 * hint ("is Ollama running? ..."); an HTTP status outside 2xx carries the
 * server's own error text, read from {"error": "..."}, {"error": {"message":
 * ...}}, {"message": ...}, {"detail": ...} or the plain body. Codes:
 * JB_ERR_NET (refused, reset, HTTP error), JB_ERR_NOTFOUND (HTTP 404),
 * JB_ERR_TIMEOUT, JB_ERR_INTERRUPTED (stop flag), JB_ERR_USAGE (bad URL),
 * JB_ERR_FORMAT (malformed JSON answer), or the body callback's own code.
 *
 * Ownership: http_client_open() allocates, http_client_close() frees; the
 * options' strings are copied. http_json() hands a new JSON reference to
 * the caller (json_decref it).
 */
#ifndef JB_ENGINES_HTTP_H
#define JB_ENGINES_HTTP_H

#include <jansson.h>
#include <signal.h>
#include <stddef.h>

#include "common/err.h"

struct http_options {
    double connect_timeout_s;          /* 0 = 5 */
    double idle_timeout_s;             /* 0 = 300 */
    const char *bearer;                /* "Authorization: Bearer ..." or NULL */
    const char *refused_hint;          /* appended when nothing listens, or NULL */
    const volatile sig_atomic_t *stop; /* NULL: sig_stop (common/sig.h) */
};

struct http_client;

int http_client_open(struct http_client **out, const struct http_options *opt, char *err);
void http_client_close(struct http_client *c);

/* Gets each piece of a 2xx body as it arrives; t_s is jb_clock_s() at
 * arrival. A non-zero return aborts the transfer and is returned by
 * http_request() (the callback writes err itself). */
typedef int (*http_body_fn)(void *user, const char *data, size_t len, double t_s, char *err);

/* Sends json_body with POST (GET when NULL) and streams a 2xx body to fn.
 * *status gets the HTTP status (0 if none came); *t_sent_s (may be NULL)
 * the moment the request was handed to the connection. Returns 0 when the
 * whole body arrived. */
int http_request(struct http_client *c, const char *url, const char *json_body, http_body_fn fn,
                 void *user, long *status, double *t_sent_s, char *err);

/* Like http_request but gathers the body (at most 16 MiB) and parses it. */
int http_json(struct http_client *c, const char *url, const char *json_body, json_t **out,
              long *status, char *err);

/* The server's error text out of an error body (see above), one line, cut
 * to size; "(empty answer)" when there is nothing. */
void http_error_text(const char *body, size_t len, char *dst, size_t size);

/* Joins a base URL ("http://h:1/" or "http://h:1") and a path ("/api/tags")
 * into dst without doubling the slash. */
void http_join(char *dst, size_t size, const char *base, const char *path);

#endif
