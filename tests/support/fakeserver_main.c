/*
 * jb-fakeserver — the fake LLM server of tests/support/fakeserver.h as a
 * process of its own, for benchmarks and scripts that must not share a
 * process with it. Prints its port on stdout (one line), then serves until
 * SIGTERM or SIGINT, or, with --stdin-eof, until its stdin closes.
 *
 *   jb-fakeserver [--port N] [--script FILE | --json TEXT] [--flavour F]
 *                 [--answer TEXT] [--tokens N] [--tokens-per-s X] [--ttft S]
 *                 [--log FILE] [--stdin-eof]
 *
 * The options after the script override its keys.
 */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/str.h"
#include "fakeserver.h"

static int wake_pipe[2];

static void *signal_main(void *arg)
{
    sigset_t *set = arg;
    int sig;
    sigwait(set, &sig);
    ssize_t w = write(wake_pipe[1], "s", 1);
    (void)w;
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: jb-fakeserver [--port N] [--script FILE | --json TEXT] "
                    "[--flavour any|ollama|openai]\n"
                    "                     [--answer TEXT] [--tokens N] [--tokens-per-s X] "
                    "[--ttft S] [--log FILE] [--stdin-eof]\n"
                    "(the script keys are documented in tests/support/fakeserver.h)\n");
    return 2;
}

static int number(const char *opt, const char *s, double *out)
{
    if (str_to_double(s, (size_t)-1, out)) {
        fprintf(stderr, "jb-fakeserver: %s takes a number, not '%s'\n", opt, s);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    json_t *script = json_object();
    int port = 0, stdin_eof = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        if (strcmp(a, "--stdin-eof") == 0) {
            stdin_eof = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            json_decref(script);
            return 0;
        }
        if (!v) {
            usage();
            goto bad;
        }
        i++;
        if (strcmp(a, "--port") == 0) {
            if (number(a, v, &d))
                goto bad;
            port = (int)d;
        } else if (strcmp(a, "--script") == 0 || strcmp(a, "--json") == 0) {
            json_error_t je;
            json_t *s = a[2] == 's' ? json_load_file(v, 0, &je) : json_loads(v, 0, &je);
            if (!json_is_object(s)) {
                fprintf(stderr, "jb-fakeserver: %s: line %d column %d: %s\n",
                        a[2] == 's' ? v : "--json", je.line, je.column,
                        s ? "not a JSON object" : je.text);
                json_decref(s);
                goto bad;
            }
            json_object_update(script, s);
            json_decref(s);
        } else if (strcmp(a, "--flavour") == 0) {
            json_object_set_new(script, "flavour", json_string(v));
        } else if (strcmp(a, "--answer") == 0) {
            json_object_set_new(script, "answer", json_string(v));
        } else if (strcmp(a, "--log") == 0) {
            json_object_set_new(script, "request_log", json_string(v));
        } else if (strcmp(a, "--tokens") == 0 || strcmp(a, "--tokens-per-s") == 0 ||
                   strcmp(a, "--ttft") == 0) {
            if (number(a, v, &d))
                goto bad;
            const char *key = strcmp(a, "--tokens") == 0         ? "tokens"
                              : strcmp(a, "--tokens-per-s") == 0 ? "tokens_per_s"
                                                                 : "ttft_s";
            json_object_set_new(script, key, json_real(d));
        } else {
            fprintf(stderr, "jb-fakeserver: unknown option %s\n", a);
            usage();
            goto bad;
        }
    }
    /* signals are taken by one thread with sigwait, so block them first */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (pipe(wake_pipe)) {
        json_decref(script);
        return 1;
    }
    char *text = json_dumps(script, JSON_COMPACT);
    json_decref(script);
    struct fakeserver *fs;
    char err[ERR_LEN];
    int rc = fakeserver_start_port(&fs, port, text, err);
    free(text);
    if (rc) {
        fprintf(stderr, "jb-fakeserver: %s\n", err);
        return 1;
    }
    pthread_t sig_th;
    pthread_create(&sig_th, NULL, signal_main, &set);
    printf("%d\n", fakeserver_port(fs));
    fflush(stdout);
    struct pollfd p[2] = {{wake_pipe[0], POLLIN, 0}, {stdin_eof ? 0 : -1, POLLIN, 0}};
    for (;;) {
        if (poll(p, 2, -1) < 0 && errno == EINTR)
            continue;
        if (p[0].revents)
            break;
        if (p[1].revents) {
            char sink[256];
            if (read(0, sink, sizeof sink) <= 0)
                break;
        }
    }
    fakeserver_stop(fs);
    return 0;
bad:
    json_decref(script);
    return 2;
}
