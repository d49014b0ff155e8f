/*
 * fakeserver.h — a scriptable fake LLM server for tests and benchmarks: an
 * HTTP/1.1 server on 127.0.0.1 (ephemeral port) that speaks Ollama's API
 * (NDJSON streams) and the OpenAI-compatible API (Server-Sent Events), in a
 * thread of the test process or as the separate executable jb-fakeserver.
 *
 *     struct fakeserver *fs;
 *     char err[ERR_LEN];
 *     if (fakeserver_start(&fs, "{\"answer\": \"Paris is the capital.\"}", err)) abort();
 *     ... point the client at fakeserver_url(fs) ...
 *     json_t *req = fakeserver_request(fs, 0);   // what the client sent
 *     json_decref(req);
 *     fakeserver_stop(fs);
 *
 * Every answer uses "Connection: close"; streams use chunked encoding (as
 * Ollama and llama.cpp do), so a dropped connection is a cut body.
 *
 * Routes. "flavour" decides which half answers ("any", the default: both).
 *   GET  /api/version             {"version": V}
 *   GET  /api/tags                the "models" of the script
 *   POST /api/show                {"model": NAME} -> details + model_info, 404 if unknown
 *   GET  /api/ps                  models loaded by a request and not unloaded
 *   POST /api/generate, /api/chat stream (default) or one object with
 *                                 "stream": false; no prompt / no messages
 *                                 loads the model (done_reason "load"),
 *                                 and with keep_alive 0 unloads it ("unload")
 *   GET  /v1/models               {"object": "list", "data": [{"id": ...}]}
 *   POST /v1/chat/completions     SSE with "stream": true, else one object
 *   POST /v1/completions          the same with choices[].text (raw prompts)
 *   anything else                 404 "404 page not found"
 *
 * The script: one JSON object, every key optional.
 *   flavour          "any" | "ollama" | "openai"
 *   answer           text, cut into pieces at word starts (" word")
 *   pieces           ["Hel", "lo"]: the pieces exactly (wins over answer)
 *   thinking         ["Let", " me"]: reasoning pieces sent before the answer
 *                    (Ollama: message.thinking / thinking; OpenAI:
 *                    delta.reasoning_content); not part of the answer text
 *   tokens           N: cycle the pieces up to N pieces; with no answer and
 *                    no pieces, the pieces are " t0", " t1", ...
 *   rules            [{"contains": "capital of France", "answer": "Paris"}]:
 *                    the first rule whose text occurs in the prompt (or in
 *                    the messages' contents) gives the answer or pieces
 *   tokens_per_s     pacing of the pieces (0: as fast as possible)
 *   ttft_s           wait before the first piece (headers go out first;
 *                    "headers_late": true holds them back too)
 *   prompt_tokens    reported prompt count (default: words of the prompt + 5)
 *   output_tokens    reported output count (default: the pieces sent)
 *   usage            false: report no counts (Ollama: no prompt_eval_count or
 *                    eval_count; OpenAI: no usage chunk even if asked for)
 *   load_duration_s  Ollama's load_duration (default 0.001); the other
 *                    durations are the real times of the stream
 *   done_reason      default "stop" ("length" when max_tokens/num_predict
 *                    cut the answer: those limits are honoured)
 *   timings          true: OpenAI streams end with llama.cpp's "timings"
 *   cache_n          timings.cache_n (default 0)
 *   status, error    answer every request with this HTTP status and this
 *                    error text, in the flavour's error format
 *   never_answer     true: read the request, then send nothing, ever
 *   drop_after       N: after N pieces close the connection mid-body;
 *                    with "drop_clean": true end the body properly instead
 *                    (no final chunk, no [DONE])
 *   endless_after    N: after N pieces send one line that never ends
 *                    (stops when the client goes away or at 1 GiB)
 *   malformed_after  N: after N pieces send a line that is not JSON
 *   error_after      N: after N pieces send an in-stream error object
 *                    ({"error": "..."} / data: {"error": {...}}), then end
 *   write_bytes      N: write the body N bytes per send() (cuts lines and
 *                    UTF-8 sequences anywhere)
 *   crlf             true: SSE lines end in CRLF
 *   models           [{"name", "size", "digest", "family", "parameter_size",
 *                    "quantization", "context_length", "vram_bytes"}]; when
 *                    given, requests for other models get 404 "not found"
 *                    (default: one model "fake:latest", any name accepted)
 *   version          /api/version's answer (default "0.0.0-fake")
 *   request_log      a path: every request is appended as one JSON line
 *
 * Recorded requests are objects {"method", "path", "headers": {lowercase
 * name: value}, "body": parsed JSON (or the raw text, or null), "t_s":
 * jb_clock_s() when the request was complete}.
 *
 * Ownership: fakeserver_start() allocates, fakeserver_stop() stops every
 * thread, closes every socket and frees. Scripts are parsed and copied.
 * fakeserver_request() returns a new reference (json_decref it).
 */
#ifndef JB_TESTS_FAKESERVER_H
#define JB_TESTS_FAKESERVER_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

struct fakeserver;

/* Starts on 127.0.0.1:port (0: an ephemeral port) with the script text
 * (NULL or "" for the defaults). */
int fakeserver_start(struct fakeserver **out, const char *script_json, char *err);
int fakeserver_start_port(struct fakeserver **out, int port, const char *script_json, char *err);
/* Replaces the script for the requests that arrive from now on. */
int fakeserver_set_script(struct fakeserver *fs, const char *script_json, char *err);
int fakeserver_port(const struct fakeserver *fs);
const char *fakeserver_url(const struct fakeserver *fs); /* "http://127.0.0.1:PORT" */
size_t fakeserver_request_count(struct fakeserver *fs);
json_t *fakeserver_request(struct fakeserver *fs, size_t i); /* NULL past the end */
/* The body of the last request to path (a new reference), or NULL. */
json_t *fakeserver_last_body(struct fakeserver *fs, const char *path);
void fakeserver_stop(struct fakeserver *fs);

/* A loopback port where nothing listens (bound, then closed), for
 * "connection refused" tests. */
int fakeserver_unused_port(void);

/* The same server as a separate process (jb-fakeserver, built in tests/),
 * for benchmarks that must not count the server's CPU time. The child's
 * stdin is a pipe held here: it exits on SIGTERM or when the pipe closes
 * (so it never outlives a crashed parent). */
struct fakeserver_proc {
    pid_t pid;
    int port;
    int stdin_fd;
    char url[64];
};
int fakeserver_spawn(struct fakeserver_proc *p, const char *exe, const char *script_json,
                     char *err);
/* The same on a given port (0: an ephemeral one), so that a server killed
 * mid-run can be started again where the client expects it. */
int fakeserver_spawn_port(struct fakeserver_proc *p, const char *exe, int port,
                          const char *script_json, char *err);
/* Stops the child and waits for it; returns its exit status (128+signal
 * when killed by one other than SIGTERM). */
int fakeserver_proc_stop(struct fakeserver_proc *p);

#endif
