/* Byte-level BPE: the pre-tokenizer rules on known strings, merges applied
 * by rank, special tokens, byte fallback, UTF-8 round trips, bos/eos/eog,
 * chat templates, and malformed vocabularies. Vocabularies are hand-built
 * GGUF files, so every expected id follows from the test's own data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fs.h"
#include "infer/gguf.h"
#include "infer/synth.h"
#include "infer/tokenizer.h"
#include "testutil.h"

/* ---- building vocabularies ---- */

struct vocab {
    char *text[600];
    int32_t type[600];
    size_t n;
    char *merges[64];
    size_t n_merges;
};

/* Adds a token given as raw bytes (converted to the GPT-2 alphabet for
 * normal tokens); returns its id. */
static int add_tok(struct vocab *v, const char *raw, int type)
{
    struct buf b = {0};
    if (type == TOKENIZER_TYPE_NORMAL)
        tokenizer_vocab_text(raw, strlen(raw), &b);
    else
        buf_puts(&b, raw);
    v->text[v->n] = buf_take(&b);
    v->type[v->n] = type;
    return (int)v->n++;
}

static void add_byte_tokens(struct vocab *v)
{
    for (int c = 0; c < 256; c++) {
        struct buf b = {0};
        unsigned char ch = (unsigned char)c;
        tokenizer_vocab_text(&ch, 1, &b);
        v->text[v->n] = buf_take(&b);
        v->type[v->n] = TOKENIZER_TYPE_NORMAL;
        v->n++;
    }
}

/* A merge of two raw-byte strings: "a" + "b" -> "a b" in vocabulary form. */
static void add_merge(struct vocab *v, const char *left, const char *right)
{
    struct buf b = {0};
    tokenizer_vocab_text(left, strlen(left), &b);
    buf_putc(&b, ' ');
    tokenizer_vocab_text(right, strlen(right), &b);
    v->merges[v->n_merges++] = buf_take(&b);
}

static void vocab_free(struct vocab *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->text[i]);
    for (size_t i = 0; i < v->n_merges; i++)
        free(v->merges[i]);
    memset(v, 0, sizeof *v);
}

struct opts {
    const char *model; /* default "gpt2" */
    const char *pre;
    const char *chat_template;
    int bos, eos, eot; /* -1: absent */
    int add_bos;       /* -1: absent */
    int no_types;
    int short_types;
};

static struct opts defaults(void)
{
    struct opts o = {
        .model = "gpt2", .pre = "qwen2", .bos = -1, .eos = -1, .eot = -1, .add_bos = -1};
    return o;
}

struct loaded {
    char *dir;
    struct fs_map map;
    struct gguf_file f;
};

/* Writes the vocabulary to a GGUF file and loads a tokenizer from it;
 * returns the tokenizer_from_gguf code (message in err). */
static int build(const struct vocab *v, const struct opts *o, struct tokenizer **t, char *err)
{
    struct loaded L;
    L.dir = tu_tmpdir("tok");
    char path[FS_PATH_MAX];
    fs_path_join(path, sizeof path, L.dir, "v.gguf");
    struct gguf_writer *w;
    assert_int_equal(gguf_writer_open(&w, path, err), 0);
    gguf_writer_kv_str(w, "general.architecture", "qwen2");
    gguf_writer_kv_str(w, "tokenizer.ggml.model", o->model);
    if (o->pre)
        gguf_writer_kv_str(w, "tokenizer.ggml.pre", o->pre);
    gguf_writer_kv_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->text, v->n);
    if (!o->no_types)
        gguf_writer_kv_arr_i32(w, "tokenizer.ggml.token_type", v->type,
                               o->short_types ? v->n - 1 : v->n);
    gguf_writer_kv_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merges, v->n_merges);
    if (o->bos >= 0)
        gguf_writer_kv_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)o->bos);
    if (o->eos >= 0)
        gguf_writer_kv_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)o->eos);
    if (o->eot >= 0)
        gguf_writer_kv_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)o->eot);
    if (o->add_bos >= 0)
        gguf_writer_kv_bool(w, "tokenizer.ggml.add_bos_token", o->add_bos);
    if (o->chat_template)
        gguf_writer_kv_str(w, "tokenizer.chat_template", o->chat_template);
    assert_int_equal(gguf_writer_finish(w, err), 0);
    assert_int_equal(gguf_open(path, &L.map, &L.f, err), 0);
    int rc = tokenizer_from_gguf(&L.f, t, err);
    /* the tokenizer copies what it needs: the file may go now */
    gguf_close(&L.map, &L.f);
    tu_rmtree_free(L.dir);
    return rc;
}

static struct tokenizer *build_ok(const struct vocab *v, const struct opts *o)
{
    struct tokenizer *t;
    char err[ERR_LEN];
    int rc = build(v, o, &t, err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    return t;
}

static void expect_ids(const struct tokenizer *t, const char *text, int parse_special,
                       const int *want, size_t n_want)
{
    int *ids;
    size_t n;
    char err[ERR_LEN];
    assert_int_equal(tokenizer_encode(t, text, strlen(text), parse_special, &ids, &n, err), 0);
    if (n != n_want || memcmp(ids, want, n * sizeof *ids) != 0) {
        fprintf(stderr, "\"%s\": got", text);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, ", want");
        for (size_t i = 0; i < n_want; i++)
            fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n");
        fail();
    }
    free(ids);
}

/* ---- pre-tokenizer ---- */

struct pieces {
    char out[1024];
};

static int collect(void *user, const char *p, size_t n)
{
    struct pieces *ps = user;
    size_t len = strlen(ps->out);
    snprintf(ps->out + len, sizeof ps->out - len, "%s%.*s", len ? "|" : "", (int)n, p);
    return 0;
}

static void expect_split(const char *pre, const char *text, const char *want)
{
    struct pieces ps = {{0}};
    char err[ERR_LEN];
    assert_int_equal(tokenizer_split(pre, text, strlen(text), collect, &ps, err), 0);
    if (strcmp(ps.out, want) != 0) {
        fprintf(stderr, "%s: \"%s\" split as \"%s\", want \"%s\"\n", pre, text, ps.out, want);
        fail();
    }
}

static void test_pretokenizer(void **state)
{
    (void)state;
    /* digits: one by one for qwen2, groups of up to three for Llama 3,
     * runs (with a leading space) for GPT-2 */
    expect_split("qwen2", "12345", "1|2|3|4|5");
    expect_split("llama-bpe", "12345", "123|45");
    expect_split("llama-bpe", "1234567", "123|456|7");
    expect_split("gpt2", "a 12345", "a| 12345");
    expect_split("qwen2", "x=2024", "x|=|2|0|2|4");
    /* contractions, case-insensitive in the newer rules */
    expect_split("qwen2", "I'm don't", "I|'m| don|'t");
    expect_split("llama-bpe", "WE'LL", "WE|'LL");
    expect_split("gpt2", "WE'LL we'll", "WE|'|LL| we|'ll");
    /* leading spaces join the word; a run of spaces leaves its last */
    expect_split("qwen2", "Hello world", "Hello| world");
    expect_split("qwen2", "a   b", "a|  | b");
    expect_split("gpt2", "a   b", "a|  | b");
    expect_split("qwen2", "  x", " | x");
    /* newlines: their own piece, with the spaces before them */
    expect_split("qwen2", "a\n\nb", "a|\n\n|b");
    expect_split("qwen2", "a  \n b", "a|  \n| b");
    expect_split("llama-bpe", "x;\n\ny", "x|;\n\n|y");
    /* punctuation runs, with one leading space */
    expect_split("qwen2", "foo(). bar", "foo|().| bar");
    expect_split("qwen2", "(x)", "(x|)");
    /* letters of any script, marks and emoji */
    expect_split("qwen2", "\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c",
                 "\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c");
    expect_split("qwen2", "hi \xf0\x9f\x98\x80\xf0\x9f\x98\x80",
                 "hi| \xf0\x9f\x98\x80\xf0\x9f\x98\x80");
    expect_split("qwen2", "caf\xc3\xa9 x", "caf\xc3\xa9| x");
    /* a combining mark is not a letter: like punctuation, it may lead a
     * word, or stands alone at the end of one */
    expect_split("qwen2", "e\xcc\x81t", "e|\xcc\x81t");
    expect_split("qwen2", "e\xcc\x81 t", "e|\xcc\x81| t");
    /* invalid UTF-8: one byte per piece, the rest as usual */
    expect_split("qwen2", "ab\xff\xfe cd", "ab|\xff|\xfe| cd");
    expect_split("qwen2", "\xe4\xbd", "\xe4|\xbd");    /* a cut character */
    expect_split("unheard-of", "a 12345", "a| 12345"); /* unknown: GPT-2 */
}

/* GPT-2's byte alphabet: known code points, and 256 distinct ones. */
static void test_byte_alphabet(void **state)
{
    (void)state;
    static const struct {
        unsigned char byte;
        const char *utf8;
    } known[] = {
        {' ', "\xc4\xa0"},                      /* U+0120 */
        {'\n', "\xc4\x8a"},                     /* U+010A */
        {0x00, "\xc4\x80"},                     /* U+0100 */
        {0x7f, "\xc4\xa1"},                     /* U+0121 */
        {0xa0, "\xc5\x82"},                     /* U+0142 */
        {0xad, "\xc5\x83"},                     /* U+0143 */
        {'a', "a"},         {0xe9, "\xc3\xa9"}, /* U+00E9 stands for itself */
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        struct buf b = {0};
        assert_int_equal(tokenizer_vocab_text(&known[i].byte, 1, &b), 0);
        assert_string_equal(buf_str(&b), known[i].utf8);
        buf_free(&b);
    }
    char all[256];
    for (int c = 0; c < 256; c++)
        all[c] = (char)c;
    struct buf b = {0};
    assert_int_equal(tokenizer_vocab_text(all, 256, &b), 0);
    /* each byte is one code point below U+0144, all different */
    unsigned char seen[0x144] = {0};
    size_t count = 0;
    for (size_t i = 0; i < b.len; count++) {
        unsigned char c = (unsigned char)b.data[i];
        unsigned cp = c < 0x80 ? c : ((c & 0x1fu) << 6) | ((unsigned char)b.data[i + 1] & 0x3fu);
        i += c < 0x80 ? 1 : 2;
        assert_true(cp < 0x144 && cp > 0x20 && !seen[cp]);
        seen[cp] = 1;
    }
    assert_int_equal(count, 256);
    buf_free(&b);
}

/* ---- merges ---- */

static void test_merge_rank(void **state)
{
    (void)state;
    struct vocab v = {0};
    add_byte_tokens(&v);
    int ab = add_tok(&v, "ab", TOKENIZER_TYPE_NORMAL);
    int bc = add_tok(&v, "bc", TOKENIZER_TYPE_NORMAL);
    int abc = add_tok(&v, "abc", TOKENIZER_TYPE_NORMAL);
    int aa = add_tok(&v, "aa", TOKENIZER_TYPE_NORMAL);
    struct opts o = defaults();

    /* "a b" ranks first: ab + c */
    add_merge(&v, "a", "b");
    add_merge(&v, "b", "c");
    struct tokenizer *t = build_ok(&v, &o);
    expect_ids(t, "abc", 0, (int[]){ab, 'c'}, 2);
    tokenizer_free(t);

    /* "b c" ranks first: a + bc */
    for (size_t i = 0; i < v.n_merges; i++)
        free(v.merges[i]);
    v.n_merges = 0;
    add_merge(&v, "b", "c");
    add_merge(&v, "a", "b");
    t = build_ok(&v, &o);
    expect_ids(t, "abc", 0, (int[]){'a', bc}, 2);
    /* "ab" alone still merges; a merge needs both sides adjacent */
    expect_ids(t, "ab", 0, (int[]){ab}, 1);
    expect_ids(t, "cab", 0, (int[]){'c', ab}, 2);
    tokenizer_free(t);

    /* a later merge builds on an earlier result */
    add_merge(&v, "a", "bc");
    add_merge(&v, "a", "a");
    t = build_ok(&v, &o);
    expect_ids(t, "abc", 0, (int[]){abc}, 1);
    /* equal ranks: the leftmost pair first */
    expect_ids(t, "aaa", 0, (int[]){aa, 'a'}, 2);
    expect_ids(t, "aaaa", 0, (int[]){aa, aa}, 2);
    /* pieces never merge across the pre-tokenizer's boundaries */
    expect_ids(t, "a bc", 0, (int[]){'a', ' ', bc}, 3);
    tokenizer_free(t);
    vocab_free(&v);
}

/* Llama 3 takes a pre-token that is itself a token whole, even when no
 * merge chain builds it; qwen2 does not. */
static void test_ignore_merges(void **state)
{
    (void)state;
    struct vocab v = {0};
    add_byte_tokens(&v);
    int whole = add_tok(&v, " hello", TOKENIZER_TYPE_NORMAL);
    int he = add_tok(&v, "he", TOKENIZER_TYPE_NORMAL);
    add_merge(&v, "h", "e");
    struct opts o = defaults();
    o.pre = "llama-bpe";
    struct tokenizer *t = build_ok(&v, &o);
    expect_ids(t, "say hello", 0, (int[]){'s', 'a', 'y', whole}, 4);
    tokenizer_free(t);
    o.pre = "qwen2";
    t = build_ok(&v, &o);
    expect_ids(t, "say hello", 0, (int[]){'s', 'a', 'y', ' ', he, 'l', 'l', 'o'}, 8);
    tokenizer_free(t);
    vocab_free(&v);
}

/* ---- special tokens ---- */

static void test_special(void **state)
{
    (void)state;
    struct vocab v = {0};
    add_byte_tokens(&v);
    int im_start = add_tok(&v, "<|im_start|>", TOKENIZER_TYPE_CONTROL);
    int im_end = add_tok(&v, "<|im_end|>", TOKENIZER_TYPE_CONTROL);
    int im = add_tok(&v, "<|im", TOKENIZER_TYPE_USER_DEFINED);
    int tool = add_tok(&v, "<tool_call>", TOKENIZER_TYPE_USER_DEFINED);
    struct opts o = defaults();
    struct tokenizer *t = build_ok(&v, &o);
    /* parsed: whole and first, longest match wins over "<|im" */
    expect_ids(t, "<|im_start|>hi<|im_end|>", 1, (int[]){im_start, 'h', 'i', im_end}, 4);
    expect_ids(t, "x<|im_end|><|im_end|>", 1, (int[]){'x', im_end, im_end}, 3);
    /* not parsed: control text is text; user-defined tokens still match */
    expect_ids(t, "<|im_end|>", 0, (int[]){im, '_', 'e', 'n', 'd', '|', '>'}, 7);
    expect_ids(t, "a<tool_call>b", 0, (int[]){'a', tool, 'b'}, 3);
    expect_ids(t, "a<tool_call>b", 1, (int[]){'a', tool, 'b'}, 3);
    /* a special in the middle of a word splits it */
    expect_ids(t, "ab<|im_end|>ab", 1, (int[]){'a', 'b', im_end, 'a', 'b'}, 5);
    /* special tokens decode to their text */
    struct buf b = {0};
    assert_int_equal(tokenizer_decode(t, im_start, &b), 0);
    assert_string_equal(buf_str(&b), "<|im_start|>");
    assert_int_equal(tokenizer_decode(t, (int)v.n, &b), JB_ERR_USAGE);
    assert_int_equal(tokenizer_decode(t, -1, &b), JB_ERR_USAGE);
    buf_free(&b);
    tokenizer_free(t);
    vocab_free(&v);
}

/* ---- round trips ---- */

static void round_trip(const struct tokenizer *t, const char *text, size_t len)
{
    int *ids;
    size_t n;
    char err[ERR_LEN];
    assert_int_equal(tokenizer_encode(t, text, len, 0, &ids, &n, err), 0);
    struct buf b = {0};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(tokenizer_decode(t, ids[i], &b), 0);
    if (b.len != len || (len && memcmp(b.data, text, len) != 0)) {
        fprintf(stderr, "round trip of \"%.*s\" gave \"%s\"\n", (int)len, text, buf_str(&b));
        fail();
    }
    buf_free(&b);
    free(ids);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct vocab v = {0};
    add_byte_tokens(&v);
    add_tok(&v, "th", TOKENIZER_TYPE_NORMAL);
    add_tok(&v, "the", TOKENIZER_TYPE_NORMAL);
    add_tok(&v, " the", TOKENIZER_TYPE_NORMAL);
    add_tok(&v, "\xe4\xbd\xa0", TOKENIZER_TYPE_NORMAL);
    add_tok(&v, "  ", TOKENIZER_TYPE_NORMAL);
    add_merge(&v, "t", "h");
    add_merge(&v, "th", "e");
    add_merge(&v, " ", "the");
    add_merge(&v, "\xe4", "\xbd");
    add_tok(&v, "\xe4\xbd", TOKENIZER_TYPE_NORMAL);
    add_merge(&v, "\xe4\xbd", "\xa0");
    add_merge(&v, " ", " ");
    static const char *const texts[] = {
        "the theme of the thesis",
        "emoji \xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd and flags "
        "\xf0\x9f\x87\xab\xf0\x9f\x87\xb7",
        "CJK \xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c\xe3\x80\x82 "
        "\xe3\x81\x93\xe3\x82\x93",
        "combining e\xcc\x81 a\xcc\x8a\xcc\x81 \xe0\xa4\xa8\xe0\xa4\xbf",
        "whitespace    runs\t\t\tand\r\n\r\n\n  \n",
        "digits 0 12 345 6789 3.14159 1,000,000",
        "newlines\n\n\nend\n",
        "code: for (int i = 0; i < n; i++) { x[i] += y[i]; }",
        "   leading and trailing   ",
        "\xc2\xa0"
        "nbsp\xe2\x80\x83"
        "em-space\xe3\x80\x80"
        "ideographic",
        "",
    };
    static const char *const pres[] = {"qwen2", "llama-bpe", "gpt2"};
    for (size_t p = 0; p < 3; p++) {
        struct opts o = defaults();
        o.pre = pres[p];
        struct tokenizer *t = build_ok(&v, &o);
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
            round_trip(t, texts[i], strlen(texts[i]));
        /* bytes that are not UTF-8, and a NUL inside */
        static const char bad[] = "bad \xff\xfe\xc3 ok \xed\xa0\x80 \xf4\x90\x80\x80";
        round_trip(t, bad, sizeof bad - 1);
        round_trip(t, "nul\0inside", 10);
        /* every byte value */
        char all[256];
        for (int c = 0; c < 256; c++)
            all[c] = (char)c;
        round_trip(t, all, 256);
        tokenizer_free(t);
    }
    /* merges really happen in the round trip */
    struct opts o = defaults();
    struct tokenizer *t = build_ok(&v, &o);
    int the = tokenizer_find(t, "the", 3);
    int sp_the = tokenizer_find(t, "\xc4\xa0the", 5);
    assert_true(the >= 0 && sp_the >= 0);
    expect_ids(t, "the the", 0, (int[]){the, sp_the}, 2);
    struct buf form = {0};
    tokenizer_vocab_text("\xe4\xbd\xa0", 3, &form);
    int ni = tokenizer_find(t, form.data, form.len);
    assert_true(ni >= 256);
    expect_ids(t, "\xe4\xbd\xa0", 0, (int[]){ni}, 1);
    buf_free(&form);
    tokenizer_free(t);
    vocab_free(&v);
}

/* A longer text: fast enough to be part of every request. */
static void test_long_text(void **state)
{
    (void)state;
    struct vocab v = {0};
    add_byte_tokens(&v);
    add_tok(&v, "  ", TOKENIZER_TYPE_NORMAL);
    add_merge(&v, " ", " ");
    struct opts o = defaults();
    struct tokenizer *t = build_ok(&v, &o);
    struct buf text = {0};
    for (int i = 0; i < 200; i++)
        buf_printf(&text, "line %d: the quick brown fox \xe2\x80\x94 \xf0\x9f\xa6\x8a %d\n", i,
                   i * 37);
    buf_puts(&text, "and a very long run of spaces:");
    for (int i = 0; i < 3000; i++)
        buf_putc(&text, ' ');
    buf_puts(&text, "end");
    round_trip(t, text.data, text.len);
    int *ids;
    size_t n;
    char err[ERR_LEN];
    assert_int_equal(tokenizer_encode(t, text.data, text.len, 0, &ids, &n, err), 0);
    /* the 2999-space run (the last space joins "end") pairs up */
    int two = tokenizer_find(t, "\xc4\xa0\xc4\xa0", 4);
    size_t pairs = 0;
    for (size_t i = 0; i < n; i++)
        pairs += ids[i] == two;
    assert_true(pairs >= 1499);
    free(ids);
    buf_free(&text);
    tokenizer_free(t);
    vocab_free(&v);
}

/* A vocabulary without some byte: the unknown token stands in, or the
 * encoder says which byte it cannot encode. */
static void test_byte_fallback(void **state)
{
    (void)state;
    struct vocab v = {0};
    for (int c = 'a'; c <= 'z'; c++) {
        char s[2] = {(char)c, 0};
        add_tok(&v, s, TOKENIZER_TYPE_NORMAL);
    }
    /* SentencePiece-style byte tokens also count */
    int nl = add_tok(&v, "<0x0A>", TOKENIZER_TYPE_BYTE);
    struct opts o = defaults();
    struct tokenizer *t = build_ok(&v, &o);
    expect_ids(t, "ab\n", 0, (int[]){0, 1, nl}, 3);
    int *ids;
    size_t n;
    char err[ERR_LEN];
    assert_int_equal(tokenizer_encode(t, "a!", 2, 0, &ids, &n, err), JB_ERR_FORMAT);
    assert_non_null(strstr(err, "byte 0x21"));
    struct buf b = {0};
    assert_int_equal(tokenizer_decode(t, nl, &b), 0);
    assert_string_equal(buf_str(&b), "\n");
    buf_free(&b);
    tokenizer_free(t);
    vocab_free(&v);
}

/* ---- ids, end of generation, templates ---- */

static void test_ids_and_templates(void **state)
{
    (void)state;
    struct vocab v = {0};
    add_byte_tokens(&v);
    int eot = add_tok(&v, "<|endoftext|>", TOKENIZER_TYPE_CONTROL);
    int im_start = add_tok(&v, "<|im_start|>", TOKENIZER_TYPE_CONTROL);
    int im_end = add_tok(&v, "<|im_end|>", TOKENIZER_TYPE_CONTROL);
    struct opts o = defaults();
    o.bos = eot;
    o.eos = im_end;
    o.add_bos = 0;
    struct tokenizer *t = build_ok(&v, &o);
    assert_int_equal(tokenizer_vocab_size(t), v.n);
    assert_int_equal(tokenizer_bos(t), eot);
    assert_int_equal(tokenizer_eos(t), im_end);
    assert_int_equal(tokenizer_add_bos(t), 0);
    assert_true(tokenizer_is_eog(t, im_end));
    assert_true(tokenizer_is_eog(t, eot)); /* <|endoftext|> ends a turn too */
    assert_false(tokenizer_is_eog(t, im_start));
    assert_false(tokenizer_is_eog(t, 'a'));
    assert_int_equal(tokenizer_token_type(t, im_start), TOKENIZER_TYPE_CONTROL);
    assert_int_equal(tokenizer_token_type(t, 'a'), TOKENIZER_TYPE_NORMAL);
    assert_int_equal(tokenizer_token_type(t, -5), 0);
    assert_string_equal(tokenizer_pre_name(t), "qwen2");
    /* no template text: ChatML from the vocabulary */
    assert_int_equal(tokenizer_template(t), TOKENIZER_TEMPLATE_CHATML);
    struct buf b = {0};
    assert_int_equal(tokenizer_chat_format(t, "Be brief.", "Hi?", &b), 0);
    assert_string_equal(buf_str(&b), "<|im_start|>system\nBe brief.<|im_end|>\n"
                                     "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n");
    buf_reset(&b);
    assert_int_equal(tokenizer_chat_format(t, NULL, "Hi?", &b), 0);
    assert_string_equal(buf_str(&b), "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n");
    /* the formatted prompt encodes with its specials */
    int *ids;
    size_t n;
    char err[ERR_LEN];
    assert_int_equal(tokenizer_encode(t, b.data, b.len, 1, &ids, &n, err), 0);
    assert_int_equal(ids[0], im_start);
    /* ..., <|im_start|>, a s s i s t a n t, \n (no merges here) */
    assert_int_equal(ids[n - 1], '\n');
    assert_int_equal(ids[n - 11], im_start);
    free(ids);
    tokenizer_free(t);

    /* a Llama 3 vocabulary and template text; add_bos defaults on */
    struct vocab v3 = {0};
    add_byte_tokens(&v3);
    int bot = add_tok(&v3, "<|begin_of_text|>", TOKENIZER_TYPE_CONTROL);
    add_tok(&v3, "<|start_header_id|>", TOKENIZER_TYPE_CONTROL);
    add_tok(&v3, "<|end_header_id|>", TOKENIZER_TYPE_CONTROL);
    int eot_id = add_tok(&v3, "<|eot_id|>", TOKENIZER_TYPE_CONTROL);
    int eom = add_tok(&v3, "<|eom_id|>", TOKENIZER_TYPE_CONTROL);
    o = defaults();
    o.pre = "llama-bpe";
    o.bos = bot;
    o.eos = eot_id;
    o.chat_template = "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m.role }}"
                      "<|end_header_id|>\n\n{{ m.content }}<|eot_id|>{% endfor %}";
    t = build_ok(&v3, &o);
    assert_int_equal(tokenizer_template(t), TOKENIZER_TEMPLATE_LLAMA3);
    assert_int_equal(tokenizer_add_bos(t), 1);
    assert_true(tokenizer_is_eog(t, eot_id));
    assert_true(tokenizer_is_eog(t, eom));
    buf_reset(&b);
    assert_int_equal(tokenizer_chat_format(t, "S", "U", &b), 0);
    assert_string_equal(buf_str(&b), "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
                                     "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
                                     "<|start_header_id|>assistant<|end_header_id|>\n\n");
    tokenizer_free(t);

    /* a template text wins over the vocabulary; none at all: the text */
    o = defaults();
    o.chat_template = "{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}";
    t = build_ok(&v3, &o);
    assert_int_equal(tokenizer_template(t), TOKENIZER_TEMPLATE_CHATML);
    tokenizer_free(t);
    struct vocab plain = {0};
    add_byte_tokens(&plain);
    o = defaults();
    t = build_ok(&plain, &o);
    assert_int_equal(tokenizer_template(t), TOKENIZER_TEMPLATE_NONE);
    assert_int_equal(tokenizer_bos(t), -1);
    assert_int_equal(tokenizer_add_bos(t), 0);
    buf_reset(&b);
    assert_int_equal(tokenizer_chat_format(t, "sys", "just this", &b), 0);
    assert_string_equal(buf_str(&b), "sys\n\njust this");
    tokenizer_free(t);
    buf_free(&b);
    vocab_free(&v);
    vocab_free(&v3);
    vocab_free(&plain);
}

static void test_bad_vocab(void **state)
{
    (void)state;
    struct vocab v = {0};
    add_byte_tokens(&v);
    struct tokenizer *t;
    char err[ERR_LEN];
    struct opts o = defaults();
    o.model = "llama";
    assert_int_equal(build(&v, &o, &t, err), JB_ERR_UNSUPPORTED);
    assert_non_null(strstr(err, "\"llama\""));
    o = defaults();
    o.short_types = 1;
    assert_int_equal(build(&v, &o, &t, err), JB_ERR_FORMAT);
    assert_non_null(strstr(err, "token_type"));
    o = defaults();
    o.eos = 9999;
    assert_int_equal(build(&v, &o, &t, err), JB_ERR_FORMAT);
    assert_non_null(strstr(err, "tokenizer.ggml.eos_token_id is 9999"));
    v.merges[v.n_merges++] = strdup("nospace");
    o = defaults();
    assert_int_equal(build(&v, &o, &t, err), JB_ERR_FORMAT);
    assert_non_null(strstr(err, "tokenizer.ggml.merges[0]"));
    free(v.merges[--v.n_merges]);
    /* merges naming unknown tokens are skipped; no token_type is fine */
    add_merge(&v, "x", "yz");
    o = defaults();
    o.no_types = 1;
    o.pre = "some-new-rule"; /* warns, uses GPT-2 */
    assert_int_equal(build(&v, &o, &t, err), 0);
    assert_string_equal(tokenizer_pre_name(t), "gpt2");
    expect_ids(t, "xyz", 0, (int[]){'x', 'y', 'z'}, 3);
    tokenizer_free(t);
    vocab_free(&v);
}

/* Writes the given tokens (types per token) and optional extra keys of
 * odd types to a GGUF file and loads it; returns tokenizer_from_gguf's
 * code. */
enum odd_key { ODD_NONE, ODD_ADD_BOS_U32, ODD_PRE_U32, ODD_TEMPLATE_U32, ODD_PRE_NUL };

static int build_raw(const char *const *tokens, const int32_t *types, size_t n, enum odd_key odd,
                     struct tokenizer **t, char *err)
{
    char *dir = tu_tmpdir("tok");
    char path[FS_PATH_MAX];
    fs_path_join(path, sizeof path, dir, "v.gguf");
    struct gguf_writer *w;
    assert_int_equal(gguf_writer_open(&w, path, err), 0);
    gguf_writer_kv_str(w, "tokenizer.ggml.model", "gpt2");
    if (odd == ODD_PRE_U32)
        gguf_writer_kv_u32(w, "tokenizer.ggml.pre", 7);
    else if (odd == ODD_PRE_NUL) {
        struct gguf_value v = {.type = GGUF_TYPE_STRING};
        v.v.s.ptr = "qwen2\0junk";
        v.v.s.len = 10;
        gguf_writer_kv(w, "tokenizer.ggml.pre", &v);
    } else
        gguf_writer_kv_str(w, "tokenizer.ggml.pre", "qwen2");
    if (odd == ODD_ADD_BOS_U32)
        gguf_writer_kv_u32(w, "tokenizer.ggml.add_bos_token", 1);
    if (odd == ODD_TEMPLATE_U32)
        gguf_writer_kv_u32(w, "tokenizer.chat_template", 3);
    gguf_writer_kv_arr_str(w, "tokenizer.ggml.tokens", tokens, n);
    gguf_writer_kv_arr_i32(w, "tokenizer.ggml.token_type", types, n);
    assert_int_equal(gguf_writer_finish(w, err), 0);
    struct fs_map map;
    struct gguf_file f;
    assert_int_equal(gguf_open(path, &map, &f, err), 0);
    int rc = tokenizer_from_gguf(&f, t, err);
    gguf_close(&map, &f);
    tu_rmtree_free(dir);
    return rc;
}

/* A vocabulary a hostile file could hold: thousands of tokens whose texts
 * share their slot under a fixed hash, and thousands of special tokens
 * with one first byte (the table is seeded and the specials sorted, where
 * both had gone quadratic: 13 s and 10 s for files of 1 and 4 MB). Every
 * token is found, and special tokens match longest first. */
static void test_many_tokens(void **state)
{
    (void)state;
    enum { N_SPECIAL_TOKS = 6000 };
    size_t n = 256 + TU_N_COLLIDE + N_SPECIAL_TOKS;
    char **tokens = calloc(n, sizeof *tokens);
    int32_t *types = calloc(n, sizeof *types);
    static char keys[TU_N_COLLIDE][40];
    assert_non_null(tokens);
    assert_non_null(types);
    tu_colliding_keys(keys);
    size_t k = 0;
    for (int c = 0; c < 256; c++, k++) {
        struct buf b = {0};
        unsigned char ch = (unsigned char)c;
        tokenizer_vocab_text(&ch, 1, &b);
        tokens[k] = buf_take(&b);
        types[k] = TOKENIZER_TYPE_NORMAL;
    }
    for (int i = 0; i < TU_N_COLLIDE; i++, k++) {
        tokens[k] = strdup(keys[i]);
        types[k] = TOKENIZER_TYPE_NORMAL;
    }
    for (int i = 0; i < N_SPECIAL_TOKS; i++, k++) {
        char sp[32];
        snprintf(sp, sizeof sp, "<s%d>", i); /* "<s1>" is a prefix of "<s10>"'s text */
        tokens[k] = strdup(sp);
        types[k] = TOKENIZER_TYPE_USER_DEFINED;
    }
    struct tokenizer *t;
    char err[ERR_LEN];
    if (build_raw((const char *const *)tokens, types, n, ODD_NONE, &t, err))
        fail_msg("%s", err);
    for (int i = 0; i < TU_N_COLLIDE; i++)
        assert_int_equal(tokenizer_find(t, keys[i], strlen(keys[i])), 256 + i);
    int s10 = 256 + TU_N_COLLIDE + 10, s1 = 256 + TU_N_COLLIDE + 1;
    expect_ids(t, "<s10><s1>", 1, (int[]){s10, s1}, 2);
    tokenizer_free(t);
    for (size_t i = 0; i < n; i++)
        free(tokens[i]);
    free(tokens);
    free(types);
}

/* Keys of the wrong type are errors naming the key, not defaults taken
 * quietly; a name with a NUL inside is no name joulebench knows. */
static void test_odd_keys(void **state)
{
    (void)state;
    const char *tokens[3] = {"a", "b", "c"};
    int32_t types[3] = {1, 1, 1};
    struct tokenizer *t;
    char err[ERR_LEN];
    assert_int_equal(build_raw(tokens, types, 3, ODD_ADD_BOS_U32, &t, err), JB_ERR_FORMAT);
    assert_non_null(strstr(err, "add_bos_token is not a bool"));
    assert_int_equal(build_raw(tokens, types, 3, ODD_PRE_U32, &t, err), JB_ERR_FORMAT);
    assert_non_null(strstr(err, "tokenizer.ggml.pre is not a string"));
    assert_int_equal(build_raw(tokens, types, 3, ODD_TEMPLATE_U32, &t, err), JB_ERR_FORMAT);
    assert_non_null(strstr(err, "chat_template is not a string"));
    assert_int_equal(build_raw(tokens, types, 3, ODD_PRE_NUL, &t, err), 0);
    assert_string_equal(tokenizer_pre_name(t), "gpt2");
    tokenizer_free(t);
    /* type 0 (llama.cpp's "undefined") is a plain token; 7 is no type */
    types[1] = 0;
    assert_int_equal(build_raw(tokens, types, 3, ODD_NONE, &t, err), 0);
    assert_int_equal(tokenizer_token_type(t, 1), TOKENIZER_TYPE_NORMAL);
    assert_int_equal(tokenizer_find(t, "b", 1), 1);
    tokenizer_free(t);
    types[1] = 7;
    assert_int_equal(build_raw(tokens, types, 3, ODD_NONE, &t, err), JB_ERR_FORMAT);
    assert_non_null(strstr(err, "token_type[1] is 7"));
}

/* ---- the committed vocabulary and texts (fuzzing seeds) ---- */

#define VOCAB JB_TEST_DATA "/tokenizer/vocab.gguf"

static const char *const sample_texts[] = {"english.txt",    "code.c.txt", "unicode.txt",
                                           "whitespace.txt", "chatml.txt", "invalid.bin"};

/* Writes the tiny synthetic model's tokenizer keys, and nothing else, to
 * path: `test_tokenizer --write-vocab tests/data/tokenizer/vocab.gguf`. */
static int write_vocab(const char *path)
{
    char err[ERR_LEN];
    char *dir = tu_tmpdir("vocab");
    char model[FS_PATH_MAX];
    fs_path_join(model, sizeof model, dir, "tiny.gguf");
    struct synth_options o;
    synth_preset("tiny", &o);
    o.n_layers = 1;
    int rc = synth_write(model, &o, err);
    struct fs_map map;
    struct gguf_file f;
    if (!rc)
        rc = gguf_open(model, &map, &f, err);
    if (rc) {
        fprintf(stderr, "%s\n", err);
        tu_rmtree_free(dir);
        return 1;
    }
    struct gguf_writer *w;
    rc = gguf_writer_open(&w, path, err);
    for (uint64_t i = 0; !rc && i < f.n_kv; i++) {
        const struct gguf_kv *kv = &f.kv[i];
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.ptr);
        if (strncmp(key, "tokenizer.", 10) == 0 || strcmp(key, "general.architecture") == 0)
            rc = gguf_writer_kv(w, key, &kv->value);
    }
    if (!rc)
        rc = gguf_writer_finish(w, err);
    else
        gguf_writer_abort(w);
    gguf_close(&map, &f);
    tu_rmtree_free(dir);
    if (rc)
        fprintf(stderr, "%s\n", err);
    return rc ? 1 : 0;
}

static struct tokenizer *load_vocab_sample(void)
{
    struct buf b = {0};
    char err[ERR_LEN];
    assert_int_equal(fs_read_file(VOCAB, 0, &b, err), 0);
    struct gguf_file f;
    assert_int_equal(gguf_parse(b.data, b.len, &f, err), 0);
    struct tokenizer *t;
    int rc = tokenizer_from_gguf(&f, &t, err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    gguf_free(&f);
    buf_free(&b);
    return t;
}

static void test_committed_samples(void **state)
{
    (void)state;
    struct tokenizer *t = load_vocab_sample();
    assert_int_equal(tokenizer_template(t), TOKENIZER_TEMPLATE_CHATML);
    for (size_t i = 0; i < sizeof sample_texts / sizeof sample_texts[0]; i++) {
        char path[FS_PATH_MAX], err[ERR_LEN];
        fs_path_join(path, sizeof path, JB_TEST_DATA "/tokenizer", sample_texts[i]);
        struct buf text = {0};
        assert_int_equal(fs_read_file(path, 0, &text, err), 0);
        round_trip(t, text.data, text.len);
        /* with specials parsed, ChatML text keeps its five markers whole */
        int *ids;
        size_t n;
        assert_int_equal(tokenizer_encode(t, text.data, text.len, 1, &ids, &n, err), 0);
        size_t specials = 0;
        for (size_t k = 0; k < n; k++)
            specials += tokenizer_token_type(t, ids[k]) == TOKENIZER_TYPE_CONTROL;
        assert_int_equal(specials, strcmp(sample_texts[i], "chatml.txt") == 0 ? 5 : 0);
        if (strcmp(sample_texts[i], "english.txt") == 0)
            assert_true(n * 2 < text.len); /* merges learned from English apply */
        free(ids);
        buf_free(&text);
    }
    tokenizer_free(t);
}

/* Random changes to the vocabulary file: whatever still parses and loads
 * must encode and decode without crashing (ASan watches). */
static void test_mutated_vocab(void **state)
{
    (void)state;
    struct buf b = {0};
    char err[ERR_LEN];
    assert_int_equal(fs_read_file(VOCAB, 0, &b, err), 0);
    uint64_t rng = 99;
    int loaded = 0;
    const char *text = "The energy of a token: 12 joules \xf0\x9f\x98\x80 <|im_end|>";
    for (int iter = 0; iter < 400; iter++) {
        uint8_t *copy = malloc(b.len);
        assert_non_null(copy);
        memcpy(copy, b.data, b.len);
        for (int k = 0; k < 1 + iter % 3; k++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            copy[rng % b.len] ^= (uint8_t)(1u << ((rng >> 20) % 8));
        }
        struct gguf_file f;
        if (gguf_parse(copy, b.len, &f, err) == 0) {
            struct tokenizer *t;
            if (tokenizer_from_gguf(&f, &t, err) == 0) {
                loaded++;
                int *ids;
                size_t n;
                if (tokenizer_encode(t, text, strlen(text), 1, &ids, &n, err) == 0) {
                    struct buf out = {0};
                    for (size_t k = 0; k < n; k++)
                        assert_int_equal(tokenizer_decode(t, ids[k], &out), 0);
                    buf_free(&out);
                    free(ids);
                }
                tokenizer_free(t);
            }
            gguf_free(&f);
        }
        free(copy);
    }
    printf("mutated vocabularies that still loaded: %d of 400\n", loaded);
    assert_true(loaded > 0);
    buf_free(&b);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-vocab") == 0)
        return write_vocab(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pretokenizer),      cmocka_unit_test(test_byte_alphabet),
        cmocka_unit_test(test_merge_rank),        cmocka_unit_test(test_ignore_merges),
        cmocka_unit_test(test_special),           cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_long_text),         cmocka_unit_test(test_byte_fallback),
        cmocka_unit_test(test_ids_and_templates), cmocka_unit_test(test_bad_vocab),
        cmocka_unit_test(test_committed_samples), cmocka_unit_test(test_mutated_vocab),
        cmocka_unit_test(test_many_tokens),       cmocka_unit_test(test_odd_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
