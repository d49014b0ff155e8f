/* The runner's pure parts: suite parsing and its error positions, the
 * request order, and the record built from a measured request. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/plan.h"
#include "bench/record.h"
#include "bench/suite.h"

static int parse(const char *text, struct suite **s, char *err)
{
    return suite_parse(text, strlen(text), "t.json", s, err);
}

static void test_suite_ok(void **state)
{
    (void)state;
    char err[ERR_LEN];
    struct suite *s;
    const char *text =
        "{\"name\": \"x\", \"defaults\": {\"max_tokens\": 64, \"system\": \"S\"},\n"
        " \"prompts\": [{\"prompt\": \"a\"},\n"
        "  {\"id\": \"b\", \"prompt\": \"bb\", \"system\": \"T\", \"tags\": [\"k\"],\n"
        "   \"max_tokens\": 9, \"grader\": {\"type\": \"exact\", \"answer\": \"1\"}}]}";
    assert_int_equal(parse(text, &s, err), 0);
    assert_int_equal(s->n_prompts, 2);
    assert_string_equal(s->name, "x");
    assert_string_equal(s->prompts[0].id, "p1");
    assert_string_equal(s->prompts[0].system, "S");
    assert_int_equal(s->prompts[0].max_tokens, 64);
    assert_null(s->prompts[0].grader);
    assert_int_equal(json_array_size(s->prompts[0].tags), 0);
    assert_string_equal(s->prompts[1].id, "b");
    assert_string_equal(s->prompts[1].system, "T");
    assert_int_equal(s->prompts[1].max_tokens, 9);
    assert_non_null(s->prompts[1].grader);
    suite_free(s);
}

static void test_suite_errors(void **state)
{
    (void)state;
    char err[ERR_LEN];
    struct suite *s = NULL;
    /* syntax error on line 3: file, line and column in the message */
    assert_int_equal(parse("{\"prompts\": [\n{\"prompt\": \"a\"},\n{\"prompt\": }]}", &s, err),
                     JB_ERR_FORMAT);
    assert_null(s);
    assert_non_null(strstr(err, "t.json:3:"));
    assert_int_equal(parse("{\"prompts\": []}", &s, err), JB_ERR_FORMAT);
    assert_non_null(strstr(err, "non-empty"));
    assert_int_equal(parse("{\"prompts\": [{\"id\": \"q\", \"prompt\": 5}]}", &s, err),
                     JB_ERR_FORMAT);
    assert_non_null(strstr(err, "prompts[0] (id \"q\")"));
    assert_int_equal(parse("{\"prompts\": [{\"id\": \"a\", \"prompt\": \"x\"},"
                           "{\"id\": \"a\", \"prompt\": \"y\"}]}",
                           &s, err),
                     JB_ERR_FORMAT);
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(parse("{\"prompts\": [{\"prompt\": \"x\", \"max_tokens\": 0}]}", &s, err),
                     JB_ERR_FORMAT);
    assert_int_equal(parse("{\"prompts\": [{\"prompt\": \"x\", \"grader\": {\"t\": 1}}]}", &s, err),
                     JB_ERR_FORMAT);
    assert_int_equal(parse("{\"prompts\": [{\"prompt\": \"x\"}], \"prompts\": 1}", &s, err),
                     JB_ERR_FORMAT); /* duplicate key */
    assert_int_equal(parse("[1]", &s, err), JB_ERR_FORMAT);
    assert_int_equal(suite_load("no-such-suite", &s, err), JB_ERR_USAGE);
    assert_non_null(strstr(err, "built-in"));
    assert_int_equal(suite_load("/nonexistent/suite.json", &s, err), JB_ERR_USAGE);
}

static void test_suite_texts(void **state)
{
    (void)state;
    char err[ERR_LEN];
    struct suite *s;
    const char *texts[] = {"one \"quoted\"", "two"};
    assert_int_equal(suite_from_texts(texts, 2, "sys", &s, err), 0);
    assert_int_equal(s->n_prompts, 2);
    assert_string_equal(s->prompts[0].prompt, "one \"quoted\"");
    assert_string_equal(s->prompts[1].id, "p2");
    assert_string_equal(s->prompts[1].system, "sys");
    suite_free(s);
}

static void test_plan(void **state)
{
    (void)state;
    struct plan_item *p;
    size_t n;
    assert_int_equal(plan_build(2, 3, 2, 0, &p, &n), 0);
    assert_int_equal(n, 12);
    /* every (model, prompt, rep) exactly once */
    int seen[2][3][2] = {{{0}}};
    for (size_t i = 0; i < n; i++)
        seen[p[i].model][p[i].prompt][p[i].rep]++;
    for (int m = 0; m < 2; m++)
        for (int q = 0; q < 3; q++)
            for (int r = 0; r < 2; r++)
                assert_int_equal(seen[m][q][r], 1);
    /* interleaved: consecutive requests alternate models, and the model
     * that goes first changes between prompts */
    assert_int_not_equal(p[0].model, p[1].model);
    assert_int_equal(p[0].prompt, p[1].prompt);
    assert_int_not_equal(p[0].model, p[2].model);
    free(p);
    assert_int_equal(plan_build(2, 3, 2, 1, &p, &n), 0);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(p[i].model, 0); /* sequential: model 0's share first */
    free(p);
    assert_int_not_equal(plan_build(0, 3, 2, 0, &p, &n), 0);
}

static struct jb_energy energy(double cpu, double dram, double dur, unsigned est)
{
    struct jb_energy e;
    memset(&e, 0, sizeof e);
    e.duration_s = dur;
    e.domain_j[JB_DOMAIN_CPU] = cpu;
    e.domain_j[JB_DOMAIN_CORES] = cpu * 0.8;
    e.domain_j[JB_DOMAIN_DRAM] = dram;
    e.domain_valid = (1u << JB_DOMAIN_CPU) | (1u << JB_DOMAIN_CORES) | (1u << JB_DOMAIN_DRAM);
    e.domain_estimated = est;
    e.total_j = cpu + dram;
    e.total_valid = 1;
    e.total_estimated = est != 0;
    return e;
}

static void test_record(void **state)
{
    (void)state;
    struct engine_result r;
    engine_result_init(&r);
    r.t_sent_s = 10.0;
    r.t_first_s = 10.5;
    r.t_last_s = 12.5;
    r.t_end_s = 12.6;
    for (int i = 0; i < 5; i++)
        engine_result_push_time(&r, 10.5 + 0.5 * i);
    r.output_tokens = 5;
    r.prompt_tokens = 20;
    buf_puts(&r.response, "ok \xe2\x82"); /* cut inside a UTF-8 sequence */
    struct jb_energy total = energy(20, 5, 2.6, 0), pre = energy(4, 1, 0.5, 0),
                     dec = energy(15, 4, 2.0, 0);
    struct jb_power base;
    memset(&base, 0, sizeof base);
    base.domain_w[JB_DOMAIN_CPU] = 2.0;
    base.domain_w[JB_DOMAIN_DRAM] = 0.5;
    base.domain_valid = (1u << JB_DOMAIN_CPU) | (1u << JB_DOMAIN_DRAM);
    base.total_w = 2.5;
    base.total_valid = 1;
    struct record_input in = {0};
    in.id = "r0001";
    in.model = "m";
    in.engine = "ollama";
    in.prompt_id = "p1";
    in.prompt = "hi";
    in.res = &r;
    in.total = &total;
    in.prefill = &pre;
    in.decode = &dec;
    in.baseline = &base;
    in.t_run0_s = 9.0;
    in.t_start_s = 10.0;
    in.grid_gco2_kwh = 400;
    in.price_kwh = NAN;
    json_t *rec = record_build(&in);
    assert_non_null(rec);
    assert_true(fabs(json_real_value(json_object_get(rec, "total_j")) - 25.0) < 1e-9);
    assert_true(fabs(json_real_value(json_object_get(rec, "j_per_token")) - 5.0) < 1e-9);
    /* decode (t_first -> t_last) made 4 of the 5 tokens: 19 J / 4 */
    assert_true(fabs(json_real_value(json_object_get(rec, "decode_j_per_token")) - 19.0 / 4) <
                1e-9);
    assert_true(fabs(json_real_value(json_object_get(rec, "prefill_j_per_prompt_token")) -
                     5.0 / 20) < 1e-9);
    /* net = 25 - 2.5 W * 2.6 s = 18.5 */
    assert_true(fabs(json_real_value(json_object_get(rec, "net_total_j")) - 18.5) < 1e-9);
    json_t *dom = json_object_get(rec, "energy_j");
    assert_int_equal(json_object_size(dom), 2); /* cores left out: inside cpu */
    assert_null(json_object_get(dom, "cores"));
    assert_true(fabs(json_real_value(json_object_get(rec, "ttft_s")) - 0.5) < 1e-9);
    /* 4 gaps between 5 tokens over 2 s: (5-1)/2 = 2 tok/s */
    assert_true(fabs(json_real_value(json_object_get(rec, "tokens_per_s")) - 2.0) < 1e-9);
    assert_int_equal(json_array_size(json_object_get(rec, "itl_ms")), 4);
    /* 25 J = 6.944e-6 kWh x 400 g = 2.778e-3 g */
    assert_true(fabs(json_real_value(json_object_get(rec, "co2_g")) - 25.0 / 3.6e6 * 400) < 1e-12);
    assert_null(json_object_get(rec, "cost"));
    assert_string_equal(json_string_value(json_object_get(rec, "response")),
                        "ok \xef\xbf\xbd\xef\xbf\xbd");
    assert_true(json_is_null(json_object_get(rec, "error")));
    json_decref(rec);

    /* estimated cpu: listed; output count missing: pieces, estimated */
    r.output_tokens = -1;
    r.pieces = 7;
    total = energy(20, 5, 2.6, 1u << JB_DOMAIN_CPU);
    in.baseline = NULL;
    rec = record_build(&in);
    json_t *est = json_object_get(rec, "estimated_domains");
    assert_int_equal(json_array_size(est), 1);
    assert_string_equal(json_string_value(json_array_get(est, 0)), "cpu");
    assert_int_equal(json_integer_value(json_object_get(rec, "output_tokens")), 7);
    assert_true(json_is_true(json_object_get(rec, "output_tokens_estimated")));
    assert_true(json_is_null(json_object_get(rec, "net_total_j")));
    json_decref(rec);
    engine_result_free(&r);
}

/* The line printed per request: a window shorter than a sensor's update
 * period (flag short_window) may read 0.00 J; the line must say that its
 * joules are coarse rather than show the 0 as if it were measured. */
static void test_record_print_short_window(void **state)
{
    (void)state;
    const char *base = "{\"id\": \"r0002\", \"model\": \"m\", \"prompt_id\": \"p1\", "
                       "\"warmup\": false, \"output_tokens\": 6, \"duration_s\": 0.004, "
                       "\"energy_j\": {\"cpu\": 0.0}, \"estimated_domains\": [], "
                       "\"total_j\": 0.0, \"j_per_token\": 0.0}";
    for (int short_window = 1; short_window >= 0; short_window--) {
        json_t *rec = json_loads(base, 0, NULL);
        assert_non_null(rec);
        json_t *flags = json_array();
        if (short_window)
            json_array_append_new(flags, json_string("short_window"));
        json_object_set_new(rec, "flags", flags);
        char *line = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&line, &len);
        assert_non_null(f);
        record_print(f, rec);
        fclose(f);
        int said = strstr(line, "shorter than a sensor's update period") != NULL;
        if (said != short_window)
            fail_msg("short_window %d printed: %s", short_window, line);
        free(line);
        json_decref(rec);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suite_ok),    cmocka_unit_test(test_suite_errors),
        cmocka_unit_test(test_suite_texts), cmocka_unit_test(test_plan),
        cmocka_unit_test(test_record),      cmocka_unit_test(test_record_print_short_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
