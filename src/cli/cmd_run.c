/* joulebench run — and joulebench chat, which shares its options. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/runner.h"
#include "bench/session.h"
#include "cli/cli.h"
#include "common/log.h"
#include "common/sig.h"
#include "common/str.h"

static const char run_usage[] =
    "usage: joulebench run [options]\n"
    "\n"
    "Runs every model on every prompt of a suite, several times, and measures\n"
    "each request's energy (split into prefill and decode), speed and quality.\n"
    "Results go to a run directory: run.json, requests.jsonl, metrics.csv,\n"
    "responses.csv, summary.md, timeline.csv and charts.\n"
    "\n"
    "engine and models:\n"
    "  -e, --engine E        ollama | openai | builtin (default: ollama when a\n"
    "                        server answers at 127.0.0.1:11434, else builtin)\n"
    "      --url URL         the server (ollama: http://127.0.0.1:11434,\n"
    "                        openai: http://127.0.0.1:8080)\n"
    "  -m, --model M         a model (repeat for several); for builtin also a\n"
    "                        .gguf path; builtin without -m: a synthetic model\n"
    "prompts:\n"
    "      --suite S         a suite file or a built-in suite: default, coding,\n"
    "                        math, systems (default: default)\n"
    "      --prompt TEXT     a prompt instead of a suite (repeatable)\n"
    "      --system TEXT     system prompt for --prompt\n"
    "      --raw             send prompts without the chat template\n"
    "repetitions and sampling:\n"
    "      --reps N          repetitions of each prompt per model (default 3)\n"
    "      --warmup N        unmeasured requests per model after its load (default 1;\n"
    "                        openai has no load call: its first warm-up loads, so >= 1)\n"
    "      --order O         interleaved (default) | sequential\n"
    "      --max-tokens N    output limit (default: the prompt's, else 512;\n"
    "                        128 on a synthetic model)\n"
    "      --seed N          sampling seed (default 42)\n"
    "      --temperature T   0 is greedy (default: the engine's)\n"
    "      --top-p P         nucleus sampling (default: the engine's)\n"
    "measurement:\n"
    "      --baseline S      idle power measured for S seconds first (default 5; 0 off)\n"
    "      --interval-ms N   sampler period (default 20)\n"
    "      --cpu-watts W     full-load CPU power for the estimator, where no\n"
    "                        CPU sensor can be read\n"
    "      --timeout S       give up on a request silent for S seconds (default 300)\n"
    "      --server-wait S   when the server stops answering, wait S seconds for\n"
    "                        it to come back, then stop the run (default 60; 0 off)\n"
    "      --grid-gco2-kwh G carbon intensity of your electricity (gCO2e/kWh)\n"
    "      --price-kwh P     price of a kWh (with --currency NAME)\n"
    "grading:\n"
    "      --judge MODEL     grade judge-graded prompts with this model\n"
    "      --judge-engine E  its engine (default: the run's)\n"
    "      --judge-url URL   its server\n"
    "      --judge-reps N    ask the judge N times and average (default 1)\n"
    "      --no-grade        do not grade\n"
    "built-in engine:\n"
    "      --threads N       compute threads (default: all cores)\n"
    "      --wait W          idle threads spin | sleep (default sleep)\n"
    "      --ctx N           context length (default: the model's, at most 4096)\n"
    "ollama:\n"
    "      --api A           chat (default) | generate\n"
    "      --keep-alive D    how long the server keeps a model loaded (e.g. 10m)\n"
    "output:\n"
    "  -o, --output DIR      run directory (default results/<timestamp>)\n"
    "      --json            print the summary as JSON on stdout\n"
    "  -q, --quiet           print only errors (no request lines, no table; the run\n"
    "                        directory holds everything)\n"
    "\n"
    "Exit status: 0 all requests succeeded, 1 some failed, 2 bad usage or input,\n"
    "130 interrupted (what was measured is kept and reported).\n";

static const char chat_usage[] =
    "usage: joulebench chat [options]\n"
    "\n"
    "Talk to a model; each answer is printed as it streams, followed by its\n"
    "joules, J/token and tokens/s. Every turn is a single prompt (no history)\n"
    "and is appended to a run directory like 'run' writes, so 'joulebench\n"
    "report DIR' works on a chat session. End with Ctrl-D or /quit.\n"
    "\n"
    "Takes the engine, model, sampling, measurement and output options of\n"
    "'joulebench run' (see 'joulebench run --help'); --baseline defaults to 0.\n";

enum {
    OPT_SUITE = 256,
    OPT_PROMPT,
    OPT_SYSTEM,
    OPT_RAW,
    OPT_REPS,
    OPT_WARMUP,
    OPT_ORDER,
    OPT_MAX_TOKENS,
    OPT_SEED,
    OPT_TEMPERATURE,
    OPT_TOP_P,
    OPT_BASELINE,
    OPT_INTERVAL,
    OPT_CPU_WATTS,
    OPT_TIMEOUT,
    OPT_SERVER_WAIT,
    OPT_GRID,
    OPT_PRICE,
    OPT_CURRENCY,
    OPT_JUDGE,
    OPT_JUDGE_ENGINE,
    OPT_JUDGE_URL,
    OPT_JUDGE_REPS,
    OPT_NO_GRADE,
    OPT_THREADS,
    OPT_WAIT,
    OPT_CTX,
    OPT_API,
    OPT_KEEP_ALIVE,
    OPT_JSON,
    OPT_URL,
};

static const struct option long_opts[] = {
    {"engine", required_argument, 0, 'e'},
    {"url", required_argument, 0, OPT_URL},
    {"model", required_argument, 0, 'm'},
    {"suite", required_argument, 0, OPT_SUITE},
    {"prompt", required_argument, 0, OPT_PROMPT},
    {"system", required_argument, 0, OPT_SYSTEM},
    {"raw", no_argument, 0, OPT_RAW},
    {"reps", required_argument, 0, OPT_REPS},
    {"warmup", required_argument, 0, OPT_WARMUP},
    {"order", required_argument, 0, OPT_ORDER},
    {"max-tokens", required_argument, 0, OPT_MAX_TOKENS},
    {"seed", required_argument, 0, OPT_SEED},
    {"temperature", required_argument, 0, OPT_TEMPERATURE},
    {"top-p", required_argument, 0, OPT_TOP_P},
    {"baseline", required_argument, 0, OPT_BASELINE},
    {"interval-ms", required_argument, 0, OPT_INTERVAL},
    {"cpu-watts", required_argument, 0, OPT_CPU_WATTS},
    {"timeout", required_argument, 0, OPT_TIMEOUT},
    {"server-wait", required_argument, 0, OPT_SERVER_WAIT},
    {"grid-gco2-kwh", required_argument, 0, OPT_GRID},
    {"price-kwh", required_argument, 0, OPT_PRICE},
    {"currency", required_argument, 0, OPT_CURRENCY},
    {"judge", required_argument, 0, OPT_JUDGE},
    {"judge-engine", required_argument, 0, OPT_JUDGE_ENGINE},
    {"judge-url", required_argument, 0, OPT_JUDGE_URL},
    {"judge-reps", required_argument, 0, OPT_JUDGE_REPS},
    {"no-grade", no_argument, 0, OPT_NO_GRADE},
    {"threads", required_argument, 0, OPT_THREADS},
    {"wait", required_argument, 0, OPT_WAIT},
    {"ctx", required_argument, 0, OPT_CTX},
    {"api", required_argument, 0, OPT_API},
    {"keep-alive", required_argument, 0, OPT_KEEP_ALIVE},
    {"output", required_argument, 0, 'o'},
    {"json", no_argument, 0, OPT_JSON},
    {"quiet", no_argument, 0, 'q'},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

struct run_args {
    struct runner_options opt;
    const char **models, **prompts; /* heap arrays of borrowed argv strings */
};

static int push(const char ***arr, size_t *n, const char *v)
{
    const char **p = realloc(*arr, (*n + 1) * sizeof *p);
    if (!p)
        return JB_ERR_NOMEM;
    p[(*n)++] = v;
    *arr = p;
    return 0;
}

static int is_engine(const char *e)
{
    return strcmp(e, "ollama") == 0 || strcmp(e, "openai") == 0 || strcmp(e, "builtin") == 0;
}

/* Parses the options `run` and `chat` share into a; returns 0, 1 for
 * --help (printed), or an exit status for a usage error. */
static int parse_args(const char *cmd, const char *usage, int argc, char **argv, struct run_args *a)
{
    struct runner_options *o = &a->opt;
    size_t nm = 0, np = 0;
    int c, rc;
    int v;
    double d;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":e:m:o:qh", long_opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(usage, stdout);
            return 1;
        case 'e':
            if (!is_engine(optarg))
                return cli_usage_error(cmd, "-e takes ollama, openai or builtin, not '%s'", optarg);
            o->engine = optarg;
            break;
        case OPT_URL:
            o->url = optarg;
            break;
        case 'm':
            if (push(&a->models, &nm, optarg))
                return 1;
            break;
        case OPT_SUITE:
            o->suite = optarg;
            break;
        case OPT_PROMPT:
            if (!*optarg)
                return cli_usage_error(cmd, "--prompt needs some text");
            if (push(&a->prompts, &np, optarg))
                return 1;
            break;
        case OPT_SYSTEM:
            o->system = optarg;
            break;
        case OPT_RAW:
            o->raw = 1;
            break;
        case OPT_REPS:
            if ((rc = cli_int(cmd, "--reps", optarg, 1, 100000, &o->reps)))
                return rc;
            break;
        case OPT_WARMUP:
            if ((rc = cli_int(cmd, "--warmup", optarg, 0, 1000, &o->warmup)))
                return rc;
            break;
        case OPT_ORDER:
            if (strcmp(optarg, "sequential") == 0)
                o->sequential = 1;
            else if (strcmp(optarg, "interleaved") == 0)
                o->sequential = 0;
            else
                return cli_usage_error(cmd, "--order takes interleaved or sequential");
            break;
        case OPT_MAX_TOKENS:
            if ((rc = cli_int(cmd, "--max-tokens", optarg, 1, 1000000, &o->max_tokens)))
                return rc;
            break;
        case OPT_SEED: {
            uint64_t s;
            if (str_to_u64(optarg, (size_t)-1, &s))
                return cli_usage_error(cmd, "--seed takes a whole number, not '%s'", optarg);
            o->seed = s;
            o->has_seed = 1;
            break;
        }
        case OPT_TEMPERATURE:
            if ((rc = cli_double(cmd, "--temperature", optarg, 0, 100, &o->temperature)))
                return rc;
            break;
        case OPT_TOP_P:
            if ((rc = cli_double(cmd, "--top-p", optarg, 0, 1, &o->top_p)))
                return rc;
            break;
        case OPT_BASELINE:
            if ((rc = cli_double(cmd, "--baseline", optarg, 0, 3600, &o->baseline_s)))
                return rc;
            break;
        case OPT_INTERVAL:
            if ((rc = cli_double(cmd, "--interval-ms", optarg, 1, 60000, &o->interval_ms)))
                return rc;
            break;
        case OPT_CPU_WATTS:
            if ((rc = cli_double(cmd, "--cpu-watts", optarg, 0.1, 100000, &o->cpu_watts)))
                return rc;
            break;
        case OPT_TIMEOUT:
            if ((rc = cli_double(cmd, "--timeout", optarg, 0.1, 86400, &o->timeout_s)))
                return rc;
            break;
        case OPT_SERVER_WAIT:
            if ((rc = cli_double(cmd, "--server-wait", optarg, 0, 86400, &o->server_wait_s)))
                return rc;
            break;
        case OPT_GRID:
            if ((rc = cli_double(cmd, "--grid-gco2-kwh", optarg, 0, 10000, &o->grid_gco2_kwh)))
                return rc;
            break;
        case OPT_PRICE:
            if ((rc = cli_double(cmd, "--price-kwh", optarg, 0, 1000, &o->price_kwh)))
                return rc;
            break;
        case OPT_CURRENCY:
            o->currency = optarg;
            break;
        case OPT_JUDGE:
            o->judge_model = optarg;
            break;
        case OPT_JUDGE_ENGINE:
            if (!is_engine(optarg))
                return cli_usage_error(cmd, "--judge-engine takes ollama, openai or builtin");
            o->judge_engine = optarg;
            break;
        case OPT_JUDGE_URL:
            o->judge_url = optarg;
            break;
        case OPT_JUDGE_REPS:
            if ((rc = cli_int(cmd, "--judge-reps", optarg, 1, 100, &o->judge_reps)))
                return rc;
            break;
        case OPT_NO_GRADE:
            o->no_grade = 1;
            break;
        case OPT_THREADS:
            if ((rc = cli_int(cmd, "--threads", optarg, 1, 1024, &o->threads)))
                return rc;
            break;
        case OPT_WAIT:
            if (strcmp(optarg, "spin") == 0)
                o->wait_sleep = 0;
            else if (strcmp(optarg, "sleep") == 0)
                o->wait_sleep = 1;
            else
                return cli_usage_error(cmd, "--wait takes spin or sleep");
            break;
        case OPT_CTX:
            if ((rc = cli_int(cmd, "--ctx", optarg, 16, 1 << 20, &o->ctx_len)))
                return rc;
            break;
        case OPT_API:
            if (strcmp(optarg, "generate") == 0)
                o->ollama_generate = 1;
            else if (strcmp(optarg, "chat") == 0)
                o->ollama_generate = 0;
            else
                return cli_usage_error(cmd, "--api takes chat or generate");
            break;
        case OPT_KEEP_ALIVE:
            o->keep_alive = optarg;
            break;
        case 'o':
            o->out_dir = optarg;
            break;
        case OPT_JSON:
            o->json = 1;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case ':':
            return cli_usage_error(cmd, "%s needs a value", argv[optind - 1]);
        default:
            return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    o->models = a->models;
    o->n_models = nm;
    o->prompts = a->prompts;
    o->n_prompts = np;
    if (o->n_prompts && o->suite)
        return cli_usage_error(cmd, "--prompt and --suite exclude each other");
    if (o->system && !o->n_prompts && strcmp(cmd, "run") == 0)
        return cli_usage_error(cmd, "--system goes with --prompt (a suite has its own)");
    if (o->currency && !isfinite(o->price_kwh))
        return cli_usage_error(cmd, "--currency goes with --price-kwh");
    for (size_t i = 0; i < nm; i++)
        for (size_t k = 0; k < i; k++)
            if (strcmp(a->models[i], a->models[k]) == 0)
                return cli_usage_error(cmd, "model '%s' is given twice", a->models[i]);
    (void)v;
    (void)d;
    return 0;
}

static int exit_status(int rc)
{
    if (rc == 0)
        return 0;
    if (rc == JB_ERR_INTERRUPTED)
        return 128 + (sig_number ? (int)sig_number : 2);
    return err_exit_code(rc);
}

int cmd_run(int argc, char **argv)
{
    struct run_args a = {0};
    runner_options_init(&a.opt);
    a.opt.has_seed = 1;
    a.opt.seed = 42;
    int rc = parse_args("run", run_usage, argc, argv, &a);
    if (rc) {
        free(a.models);
        free(a.prompts);
        return rc == 1 ? 0 : rc;
    }
    if (a.opt.quiet)
        log_set_level(LOG_QUIET);
    char err[ERR_LEN] = "", dir[4096] = "";
    rc = runner_run(&a.opt, dir, sizeof dir, err);
    if (rc && rc != JB_ERR_INTERRUPTED)
        log_error("%s", err[0] ? err : jb_strerror(rc));
    free(a.models);
    free(a.prompts);
    return exit_status(rc);
}

int cmd_chat(int argc, char **argv)
{
    struct run_args a = {0};
    runner_options_init(&a.opt);
    a.opt.baseline_s = 0;
    a.opt.warmup = 0;
    a.opt.lines_to_stderr = 1; /* a warm-up's line must not land among the answers */
    a.opt.has_seed = 1;
    a.opt.seed = 42;
    int rc = parse_args("chat", chat_usage, argc, argv, &a);
    if (rc) {
        free(a.models);
        free(a.prompts);
        return rc == 1 ? 0 : rc;
    }
    if (a.opt.n_models > 1) {
        free(a.models);
        free(a.prompts);
        return cli_usage_error("chat", "chat talks to one model (-m once)");
    }
    if (a.opt.n_prompts || a.opt.suite) {
        free(a.models);
        free(a.prompts);
        return cli_usage_error("chat", "chat reads its prompts from standard input");
    }
    if (a.opt.quiet)
        log_set_level(LOG_QUIET);
    char err[ERR_LEN] = "";
    struct session *s = NULL;
    rc = session_open(&s, &a.opt, "chat", err);
    if (rc) {
        log_error("%s", err);
        free(a.models);
        free(a.prompts);
        return exit_status(rc);
    }
    rc = session_baseline(s, err);
    struct suite_prompt p = {0};
    json_t *no_tags = json_array();
    char id[32];
    char *line = NULL;
    size_t cap = 0;
    int turn = 0, failures = 0;
    int tty = log_stderr_is_tty();
    if (!rc) {
        log_info("chatting with %s — results in %s (Ctrl-D or /quit to end)",
                 session_model_name(s, 0), session_dir(s));
        struct suite_prompt warm = {"warmup", "Say hello.", a.opt.system, no_tags, 0, NULL};
        rc = session_ensure_loaded(s, 0, &warm, err);
        if (rc && rc != JB_ERR_INTERRUPTED)
            log_error("%s", err);
    }
    while (!rc && !sig_stop) {
        if (tty)
            fputs("\n> ", stderr);
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0)
            break;
        str_trim(line);
        if (!*line)
            continue;
        if (strcmp(line, "/quit") == 0 || strcmp(line, "/exit") == 0)
            break;
        snprintf(id, sizeof id, "chat-%d", ++turn);
        p.id = id;
        p.prompt = line;
        p.system = a.opt.system;
        p.tags = no_tags;
        int r = session_request(s, 0, &p, turn - 1, 0, stdout);
        if (session_fatal(s, err)) {
            /* the answer could not be recorded: the session cannot go on */
            log_error("%s", err);
            rc = session_fatal(s, NULL);
        } else if (r == JB_ERR_INTERRUPTED) {
            rc = r;
        } else if (r) {
            failures++;
        }
    }
    free(line);
    json_decref(no_tags);
    if (sig_stop)
        rc = JB_ERR_INTERRUPTED;
    if (!rc && failures)
        rc = JB_ERR_NET;
    int frc = session_finish(s, rc, err);
    if (frc)
        log_error("%s", err);
    session_close(s);
    free(a.models);
    free(a.prompts);
    return exit_status(rc ? rc : frc);
}
