/* Helpers for the engine tests: open an engine on a fake server, run one
 * request while collecting what on_token saw, and check the invariants
 * every result must keep (timestamps in order, one time per piece). */
#ifndef JB_TESTS_ETEST_H
#define JB_TESTS_ETEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "engines/engine.h"
#include "fakeserver.h"

struct seen {
    struct buf text; /* the pieces, concatenated */
    long calls;
    long stop_after; /* return 1 once this many pieces came; 0: never */
    double last_t_s;
    int out_of_order;
};

static inline int seen_token(void *user, const char *piece, size_t len, double t_s)
{
    struct seen *s = user;
    buf_append(&s->text, piece, len);
    s->calls++;
    if (t_s < s->last_t_s)
        s->out_of_order = 1;
    s->last_t_s = t_s;
    return s->stop_after && s->calls >= s->stop_after;
}

static inline struct engine *etest_open(const char *name, const char *url, double timeout_s)
{
    struct engine_config cfg = {0};
    cfg.name = name;
    cfg.url = url;
    cfg.timeout_s = timeout_s;
    struct engine *e = NULL;
    char err[ERR_LEN];
    if (engine_open(&e, &cfg, err)) {
        fprintf(stderr, "engine_open: %s\n", err);
        abort();
    }
    return e;
}

static inline void etest_request(struct engine_request *r, const char *model, const char *prompt)
{
    memset(r, 0, sizeof *r);
    r->model = model;
    r->prompt = prompt;
    r->max_tokens = 64;
    r->temperature = NAN;
    r->top_p = NAN;
}

/* Checks what must hold for any result, finished or not. */
static inline void etest_invariants(const struct engine_result *r, const struct seen *s)
{
    assert_true(r->n_token_t == (size_t)r->pieces);
    assert_false(isnan(r->t_sent_s));
    assert_false(isnan(r->t_end_s));
    assert_true(r->t_sent_s <= r->t_end_s);
    if (r->pieces > 0) {
        assert_true(r->t_sent_s <= r->t_first_s);
        assert_true(r->t_first_s <= r->t_last_s);
        assert_true(r->t_last_s <= r->t_end_s);
        assert_true(r->token_t_s[0] == r->t_first_s);
        assert_true(r->token_t_s[r->n_token_t - 1] == r->t_last_s);
        for (size_t i = 1; i < r->n_token_t; i++)
            assert_true(r->token_t_s[i - 1] <= r->token_t_s[i]);
    } else {
        assert_true(isnan(r->t_first_s));
    }
    if (s) {
        assert_int_equal(s->calls, r->pieces);
        assert_false(s->out_of_order);
    }
    if (r->status)
        assert_true(r->error[0] != '\0');
    else
        assert_string_equal(r->error, "");
}

#endif
