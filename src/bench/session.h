/*
 * session.h — what `run` and `chat` share: a run directory, an engine, the
 * meter, the models, and measured requests written as they finish.
 *
 *     session_open()            choose and open the engine, check the models,
 *                               open the meter, write run.json ("running")
 *     session_baseline()        idle power (optional)
 *     session_ensure_loaded()   load a model (recorded as its load cost) and
 *                               run its warm-up requests
 *     session_request()         one measured, graded, recorded request
 *     session_finish()          timeline.csv, final run.json, the report
 *     session_close()
 *
 * Ownership: session_open() allocates; session_close() frees everything,
 * including the engines and the meter. The runner options are borrowed and
 * must outlive the session.
 */
#ifndef JB_BENCH_SESSION_H
#define JB_BENCH_SESSION_H

#include <stdio.h>

#include "bench/runner.h"
#include "bench/suite.h"

struct session;

/* What the progress callback sees while a request streams. */
struct session_progress {
    const char *model;
    const char *prompt_id;
    int rep;
    long tokens;
    double tokens_per_s;
    double power_w; /* total power over the last second; NAN unknown */
    int power_estimated;
    double elapsed_s; /* since the request was sent */
};
typedef void (*session_progress_fn)(void *user, const struct session_progress *p);

int session_open(struct session **out, const struct runner_options *opt, const char *suite_name,
                 char *err);
void session_close(struct session *s);

const char *session_dir(const struct session *s);
size_t session_model_count(const struct session *s);
const char *session_model_name(const struct session *s, size_t i);
void session_set_progress(struct session *s, session_progress_fn fn, void *user);

int session_baseline(struct session *s, char *err);
/* Loads model i if not loaded yet and runs its warm-ups with prompt p. */
int session_ensure_loaded(struct session *s, size_t model, const struct suite_prompt *p, char *err);
/* One measured request. stream: when not NULL, the answer is printed there
 * as it arrives (chat). Returns 0, the request's error code, or
 * JB_ERR_INTERRUPTED. The record is on disk when it returns. */
int session_request(struct session *s, size_t model, const struct suite_prompt *p, int rep,
                    int warmup, FILE *stream);
/* Non-zero (a JB_ERR_* code, with the message in err, which may be NULL)
 * once the run cannot go on: a record could not be written (disk full, a
 * file-size limit), or the server stopped answering for good. The run
 * should stop; session_finish() then marks it "failed". */
int session_fatal(const struct session *s, char *err);
/* After a failed request: 0 when the server still answers (or there is no
 * server, or --server-wait is 0). When it does not, waits up to
 * server_wait_s for it to come back (a crashed server being restarted),
 * polling; returns 0 if it does, JB_ERR_INTERRUPTED on SIGINT/SIGTERM, or
 * makes the run fatal (session_fatal()) and returns that code. */
int session_check_server(struct session *s, char *err);
/* Writes timeline.csv and the final run.json (status from rc), then builds
 * the report and prints the summary (or its JSON) on stdout. */
int session_finish(struct session *s, int rc, char *err);

#endif
