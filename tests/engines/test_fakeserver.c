/* The fake server itself, since other layers' tests rely on it: answers
 * per prompt, request recording and the request log, flavours, unstreamed
 * answers, the separate-process form, and a stop that never hangs on a
 * client that holds its connection open. */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fs.h"
#include "common/str.h"
#include "engines/http.h"
#include "etest.h"
#include "joulebench/joulebench.h"
#include "testutil.h"

static char *ask(struct engine *e, const char *prompt)
{
    struct engine_request req;
    etest_request(&req, "m", prompt);
    struct engine_result res;
    engine_result_init(&res);
    assert_int_equal(e->ops->generate(e, &req, NULL, NULL, &res), 0);
    char *text = str_dup(buf_str(&res.response));
    engine_result_free(&res);
    return text;
}

static void test_rules(void **state)
{
    (void)state;
    struct fakeserver *fs;
    char err[ERR_LEN];
    assert_int_equal(
        fakeserver_start(&fs,
                         "{\"answer\": \"I do not know.\", \"rules\": ["
                         "{\"contains\": \"capital of France\", \"answer\": \"Paris\"},"
                         "{\"contains\": \"2+2\", \"pieces\": [\"4\", \".\"]}]}",
                         err),
        0);
    const char *engines[] = {"ollama", "openai"};
    for (int i = 0; i < 2; i++) {
        struct engine *e = etest_open(engines[i], fakeserver_url(fs), 10);
        char *a = ask(e, "What is the capital of France?");
        assert_string_equal(a, "Paris");
        free(a);
        a = ask(e, "What is 2+2?");
        assert_string_equal(a, "4.");
        free(a);
        a = ask(e, "Why is the sky blue?");
        assert_string_equal(a, "I do not know.");
        free(a);
        engine_close(e);
    }
    fakeserver_stop(fs);
}

static void test_recording_and_log(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("fakeserver");
    char log_path[FS_PATH_MAX];
    fs_path_join(log_path, sizeof log_path, dir, "requests.jsonl");
    char script[FS_PATH_MAX + 64];
    snprintf(script, sizeof script, "{\"request_log\": \"%s\"}", log_path);
    struct fakeserver *fs;
    char err[ERR_LEN];
    assert_int_equal(fakeserver_start(&fs, script, err), 0);
    struct engine *e = etest_open("ollama", fakeserver_url(fs), 10);
    free(ask(e, "hello"));
    char version[32];
    assert_int_equal(e->ops->version(e, version, sizeof version, err), 0);
    assert_string_equal(version, "0.0.0-fake");
    engine_close(e);
    assert_int_equal(fakeserver_request_count(fs), 2);
    json_t *r = fakeserver_request(fs, 0);
    assert_string_equal(json_string_value(json_object_get(r, "method")), "POST");
    json_t *h = json_object_get(r, "headers");
    assert_string_equal(json_string_value(json_object_get(h, "content-type")), "application/json");
    assert_non_null(strstr(json_string_value(json_object_get(h, "user-agent")), "joulebench/"));
    assert_true(json_is_object(json_object_get(r, "body")));
    json_decref(r);
    r = fakeserver_request(fs, 1);
    assert_string_equal(json_string_value(json_object_get(r, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(r, "path")), "/api/version");
    assert_true(json_is_null(json_object_get(r, "body")));
    json_decref(r);
    assert_null(fakeserver_request(fs, 2));
    fakeserver_stop(fs);
    /* the log has the same two requests, one JSON object per line */
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        assert_true(json_is_object(j));
        assert_true(json_is_string(json_object_get(j, "path")));
        json_decref(j);
        n++;
    }
    fclose(f);
    assert_int_equal(n, 2);
    tu_rmtree_free(dir);
}

static long get_status(struct http_client *c, const char *base, const char *path, json_t **out)
{
    char url[256];
    http_join(url, sizeof url, base, path);
    long status = 0;
    char err[ERR_LEN];
    http_json(c, url, NULL, out, &status, err);
    return status;
}

static void test_flavours_and_routes(void **state)
{
    (void)state;
    struct fakeserver *fs;
    char err[ERR_LEN];
    assert_int_equal(fakeserver_start(&fs, "{\"flavour\": \"ollama\"}", err), 0);
    struct http_client *c;
    struct http_options ho = {.idle_timeout_s = 10};
    assert_int_equal(http_client_open(&c, &ho, err), 0);
    json_t *j = NULL;
    assert_int_equal(get_status(c, fakeserver_url(fs), "/api/tags", &j), 200);
    assert_true(json_is_array(json_object_get(j, "models")));
    json_decref(j);
    assert_int_equal(get_status(c, fakeserver_url(fs), "/v1/models", &j), 404);
    assert_int_equal(get_status(c, fakeserver_url(fs), "/nothing", &j), 404);
    fakeserver_set_script(fs, "{\"flavour\": \"openai\"}", err);
    assert_int_equal(get_status(c, fakeserver_url(fs), "/api/tags", &j), 404);
    assert_int_equal(get_status(c, fakeserver_url(fs), "/v1/models", &j), 200);
    json_decref(j);
    assert_int_not_equal(fakeserver_set_script(fs, "{not json", err), 0);
    assert_non_null(strstr(err, "line 1"));
    http_client_close(c);
    fakeserver_stop(fs);
}

/* "stream": false gets one object, as the real servers do. */
static void test_unstreamed(void **state)
{
    (void)state;
    struct fakeserver *fs;
    char err[ERR_LEN];
    assert_int_equal(fakeserver_start(&fs, "{\"answer\": \"Paris is the capital.\"}", err), 0);
    struct http_client *c;
    struct http_options ho = {.idle_timeout_s = 10};
    assert_int_equal(http_client_open(&c, &ho, err), 0);
    char url[256];
    http_join(url, sizeof url, fakeserver_url(fs), "/api/chat");
    json_t *j = NULL;
    assert_int_equal(http_json(c, url,
                               "{\"model\": \"m\", \"stream\": false, \"messages\": "
                               "[{\"role\": \"user\", \"content\": \"hi\"}]}",
                               &j, NULL, err),
                     0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "message"), "content")),
        "Paris is the capital.");
    assert_true(json_is_true(json_object_get(j, "done")));
    assert_int_equal(json_integer_value(json_object_get(j, "eval_count")), 4);
    json_decref(j);
    http_join(url, sizeof url, fakeserver_url(fs), "/v1/chat/completions");
    assert_int_equal(http_json(c, url,
                               "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", "
                               "\"content\": \"hi\"}]}",
                               &j, NULL, err),
                     0);
    json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "content")),
                        "Paris is the capital.");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")), 4);
    json_decref(j);
    http_client_close(c);
    fakeserver_stop(fs);
}

/* The separate process: prints its port, serves, stops on request. */
static void test_process(void **state)
{
    (void)state;
    struct fakeserver_proc p;
    char err[ERR_LEN];
    assert_int_equal(fakeserver_spawn(&p, JB_FAKESERVER, "{\"answer\": \"from a process\"}", err),
                     0);
    assert_true(p.port > 0);
    struct engine *e = etest_open("openai", p.url, 10);
    char *a = ask(e, "hi");
    assert_string_equal(a, "from a process");
    free(a);
    assert_int_equal(fakeserver_proc_stop(&p), 0);
    /* gone: nothing listens any more */
    struct engine_request req;
    etest_request(&req, "m", "hi");
    struct engine_result res;
    engine_result_init(&res);
    assert_int_equal(e->ops->generate(e, &req, NULL, NULL, &res), JB_ERR_NET);
    assert_non_null(strstr(res.error, "connection refused"));
    engine_result_free(&res);
    engine_close(e);

    /* a bad script is bad input: exit status 2, with the place */
    struct buf out = {0}, errb = {0};
    char *argv[] = {JB_FAKESERVER, "--json", "{\"answer\": ", NULL};
    assert_int_equal(tu_run(argv, NULL, &out, &errb), 2);
    assert_non_null(strstr(buf_str(&errb), "line 1"));
    assert_string_equal(buf_str(&out), "");
    buf_free(&out);
    buf_free(&errb);
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Clients that hold connections open (one silent, one waiting for an
 * answer that never comes, one that never reads a long stream) must not
 * keep fakeserver_stop() from returning. */
static void test_stop_with_open_clients(void **state)
{
    (void)state;
    struct fakeserver *fs;
    char err[ERR_LEN];
    assert_int_equal(fakeserver_start(&fs, "{\"never_answer\": true}", err), 0);
    int silent = connect_to(fakeserver_port(fs));
    int waiting = connect_to(fakeserver_port(fs));
    const char req[] = "GET /api/tags HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(send(waiting, req, sizeof req - 1, 0), (ssize_t)(sizeof req - 1));
    for (int i = 0; i < 500 && fakeserver_request_count(fs) < 1; i++)
        usleep(10000);
    assert_int_equal(fakeserver_request_count(fs), 1);
    fakeserver_set_script(fs, "{\"endless_line\": true}", err);
    int stuck = connect_to(fakeserver_port(fs));
    const char body[] = "{\"model\":\"m\",\"prompt\":\"hi\"}";
    char post[256];
    int n = snprintf(post, sizeof post,
                     "POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s",
                     sizeof body - 1, body);
    assert_int_equal(send(stuck, post, (size_t)n, 0), (ssize_t)n);
    /* wait until the server has all three, so that stop meets them */
    for (int i = 0; i < 500 && fakeserver_request_count(fs) < 2; i++)
        usleep(10000);
    assert_int_equal(fakeserver_request_count(fs), 2);
    /* and the endless line is flowing into a client that does not read */
    char first[64];
    assert_true(recv(stuck, first, sizeof first, 0) > 0);
    fakeserver_stop(fs);
    close(silent);
    close(waiting);
    close(stuck);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_recording_and_log),
        cmocka_unit_test(test_flavours_and_routes),
        cmocka_unit_test(test_unstreamed),
        cmocka_unit_test(test_process),
        cmocka_unit_test(test_stop_with_open_clients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
