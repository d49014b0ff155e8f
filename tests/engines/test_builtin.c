/* The built-in engine behind the engine interface, on synthetic models:
 * raw prompts tokenized as the servers do, the pieces it streams, what the
 * prompt-too-long message advises, and top-p 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/sig.h"
#include "common/str.h"
#include "etest.h"
#include "infer/infer.h"
#include "infer/synth.h"
#include "infer/tokenizer.h"
#include "testutil.h"

static char *g_dir;
static char g_tiny[4200];  /* qwen2, ChatML */
static char g_short[4200]; /* llama, trained context 64 */

static int setup(void **state)
{
    (void)state;
    char err[ERR_LEN];
    g_dir = tu_tmpdir("jb-builtin");
    if (!g_dir)
        return -1;
    struct synth_options o;
    snprintf(g_tiny, sizeof g_tiny, "%s/tiny.gguf", g_dir);
    snprintf(g_short, sizeof g_short, "%s/short.gguf", g_dir);
    if (synth_preset("tiny", &o) || synth_write(g_tiny, &o, err))
        return -1;
    o.arch = "llama";
    o.ctx_len = 64;
    if (synth_write(g_short, &o, err))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree_free(g_dir);
    return 0;
}

static struct engine *open_builtin(int ctx_len)
{
    struct engine_config cfg = {0};
    cfg.name = "builtin";
    cfg.threads = 1;
    cfg.ctx_len = ctx_len;
    struct engine *e = NULL;
    char err[ERR_LEN];
    if (engine_open(&e, &cfg, err))
        fail_msg("engine_open: %s", err);
    return e;
}

static void expect_same_ids(const int *a, size_t na, const int *b, size_t nb)
{
    assert_true(na > 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof a[0]);
}

/* A raw prompt that spells out the chat template gives the same token ids
 * as the templated prompt: special-token text becomes special tokens, as
 * Ollama and llama.cpp's server tokenize raw prompts. */
static void test_raw_specials(void **state)
{
    (void)state;
    char err[ERR_LEN];
    struct infer_model *m = NULL;
    struct infer_options io = {0};
    io.threads = 1;
    assert_int_equal(infer_model_load(&m, g_tiny, &io, err), 0);
    struct buf text = {0};
    assert_int_equal(tokenizer_chat_format(infer_model_tokenizer(m), NULL, "hi there", &text), 0);
    int im_start = tokenizer_find(infer_model_tokenizer(m), "<|im_start|>", 12);
    assert_true(im_start >= 0);
    assert_non_null(strstr(buf_str(&text), "<|im_start|>"));
    infer_model_free(m);

    struct engine *e = open_builtin(0);
    struct engine_request req;
    struct engine_result templated, raw;
    etest_request(&req, g_tiny, "hi there");
    req.max_tokens = 1;
    req.temperature = 0.0;
    engine_result_init(&templated);
    assert_int_equal(e->ops->generate(e, &req, NULL, NULL, &templated), 0);
    req.prompt = buf_str(&text);
    req.raw = 1;
    engine_result_init(&raw);
    assert_int_equal(e->ops->generate(e, &req, NULL, NULL, &raw), 0);
    expect_same_ids(raw.prompt_ids, raw.n_prompt_ids, templated.prompt_ids, templated.n_prompt_ids);
    int found = 0;
    for (size_t i = 0; i < raw.n_prompt_ids; i++)
        found |= raw.prompt_ids[i] == im_start;
    assert_true(found);
    engine_result_free(&templated);
    engine_result_free(&raw);
    buf_free(&text);
    engine_close(e);
}

/* What on_token sees is the answer: the pieces, concatenated, are the
 * response, valid UTF-8, one time per piece, no empty piece, and never
 * more pieces than tokens (a character split over tokens comes whole). */
static void test_pieces(void **state)
{
    (void)state;
    struct engine *e = open_builtin(0);
    for (uint64_t seed = 1; seed <= 6; seed++) {
        struct engine_request req;
        etest_request(&req, g_tiny, "Write something long, with emoji and accents.");
        req.max_tokens = 48;
        req.temperature = 1.5;
        req.top_p = 1.0;
        req.has_seed = 1;
        req.seed = seed;
        struct engine_result res;
        struct seen s = {0};
        engine_result_init(&res);
        assert_int_equal(e->ops->generate(e, &req, seen_token, &s, &res), 0);
        etest_invariants(&res, &s);
        assert_true(res.pieces <= res.output_tokens);
        assert_int_equal(res.output_tokens, (long)res.n_output_ids);
        assert_int_equal(s.text.len, res.response.len);
        assert_memory_equal(buf_str(&s.text), buf_str(&res.response), res.response.len);
        assert_true(str_utf8_valid(buf_str(&res.response), res.response.len));
        buf_free(&s.text);
        engine_result_free(&res);
    }
    engine_close(e);
}

static void expect_too_long(struct engine *e, const char *want, const char *not_want)
{
    struct buf prompt = {0};
    for (int i = 0; i < 40; i++)
        buf_puts(&prompt, "hello world ");
    struct engine_request req;
    etest_request(&req, g_short, buf_str(&prompt));
    req.max_tokens = 4;
    struct engine_result res;
    engine_result_init(&res);
    assert_int_equal(e->ops->generate(e, &req, NULL, NULL, &res), JB_ERR_USAGE);
    if (!strstr(res.error, want) || (not_want && strstr(res.error, not_want)))
        fail_msg("message: %s", res.error);
    engine_result_free(&res);
    buf_free(&prompt);
}

/* A prompt longer than the context: --ctx is the advice only where it can
 * help; at the model's trained context the prompt must be shortened. */
static void test_prompt_too_long(void **state)
{
    (void)state;
    struct engine *e = open_builtin(1024); /* capped at the model's 64 */
    expect_too_long(e, "trained for a context of 64", "--ctx");
    engine_close(e);
    e = open_builtin(32);
    expect_too_long(e, "raise it with --ctx", NULL);
    engine_close(e);
}

/* top-p 0 keeps the most likely token alone: the greedy answer, whatever
 * the temperature and seed. */
static void test_top_p_zero(void **state)
{
    (void)state;
    struct engine *e = open_builtin(0);
    struct engine_request req;
    etest_request(&req, g_tiny, "Count to ten.");
    req.max_tokens = 16;
    req.temperature = 0.0;
    struct engine_result greedy, nucleus;
    engine_result_init(&greedy);
    assert_int_equal(e->ops->generate(e, &req, NULL, NULL, &greedy), 0);
    req.temperature = 2.0;
    req.top_p = 0.0;
    req.has_seed = 1;
    req.seed = 99;
    engine_result_init(&nucleus);
    assert_int_equal(e->ops->generate(e, &req, NULL, NULL, &nucleus), 0);
    expect_same_ids(nucleus.output_ids, nucleus.n_output_ids, greedy.output_ids,
                    greedy.n_output_ids);
    engine_result_free(&greedy);
    engine_result_free(&nucleus);
    engine_close(e);
}

/* SIGINT during a prompt stops its prefill (a long prompt on a large
 * model takes a while) instead of waiting for the first token; the next
 * request works as before. */
static void test_interrupt_prefill(void **state)
{
    (void)state;
    struct engine *e = open_builtin(0);
    struct engine_request req;
    etest_request(&req, g_tiny,
                  "A prompt of several batches. A prompt of several batches. "
                  "A prompt of several batches. A prompt of several batches.");
    req.max_tokens = 8;
    req.temperature = 0.0;
    struct engine_result res;
    engine_result_init(&res);
    sig_stop = 1;
    assert_int_equal(e->ops->generate(e, &req, NULL, NULL, &res), JB_ERR_INTERRUPTED);
    sig_reset();
    assert_non_null(strstr(res.error, "interrupted during the prompt"));
    assert_int_equal(res.output_tokens, 0);
    assert_true(isnan(res.t_first_s));
    engine_result_free(&res);
    engine_result_init(&res);
    assert_int_equal(e->ops->generate(e, &req, NULL, NULL, &res), 0);
    assert_int_equal(res.output_tokens, 8);
    engine_result_free(&res);
    engine_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_specials),      cmocka_unit_test(test_pieces),
        cmocka_unit_test(test_prompt_too_long),   cmocka_unit_test(test_top_p_zero),
        cmocka_unit_test(test_interrupt_prefill),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
