/*
 * cmd_measure.c — `joulebench measure [options] -- CMD [ARGS...]`: runs CMD
 * inside one meter window and reports its energy per domain, average
 * power and total, then exits with CMD's exit status (128 + signal when a
 * signal ended it).
 *
 * The report goes to stderr, like time(1), so CMD's own output on stdout
 * stays clean; --json prints one object on one line of stdout instead,
 * after CMD has finished. SIGINT and SIGTERM sent to joulebench are passed
 * on to CMD (a Ctrl-C on the terminal already reaches both).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/log.h"
#include "common/str.h"

static volatile sig_atomic_t child_pid;   /* 0 until CMD runs */
static volatile sig_atomic_t pending_sig; /* arrived before CMD ran */
static volatile sig_atomic_t stop_flag;   /* ends the baseline early */

static void help(FILE *f)
{
    fprintf(f,
            "usage: joulebench measure [--json] [--interval-ms N] [--baseline S]\n"
            "                          [--cpu-watts W] [--] CMD [ARGS...]\n\n"
            "Runs CMD and reports the energy it took: duration, joules per domain\n"
            "(cpu, dram, gpu, ...), average power, and the total (each joule counted once;\n"
            "psys/system is shown apart). Exits with CMD's exit status (128 + N if signal N\n"
            "ended it). The report goes to stderr; figures from a model rather than a sensor\n"
            "are marked estimated.\n\n"
            "  --json            print one JSON object (one line) on stdout instead\n"
            "%s"
            "  -h, --help        this text\n\n"
            "Example: joulebench measure --json -- ollama run qwen2.5:7b 'hello'\n",
            cli_meter_help);
}

/* A signal sent to us on purpose (kill, a supervisor) goes on to CMD. One
 * from the terminal (si_code > 0) already reached CMD, which shares our
 * process group: passing it on would deliver it twice. */
static void on_signal(int signo, siginfo_t *info, void *ctx)
{
    (void)ctx;
    stop_flag = 1;
    if (info && info->si_code > 0)
        return;
    if (child_pid > 0)
        kill((pid_t)child_pid, signo);
    else
        pending_sig = signo;
}

static void install_forwarding(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Starts CMD; returns its pid, or -1 with the exec error in *exec_errno
 * (learnt through a close-on-exec pipe: EOF means exec succeeded). */
static pid_t spawn(char **cmd, int *exec_errno)
{
    int fds[2];
    *exec_errno = 0;
    if (pipe(fds))
        return (*exec_errno = errno), -1;
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    pid_t pid = fork();
    if (pid < 0) {
        *exec_errno = errno;
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        close(fds[0]);
        execvp(cmd[0], cmd);
        int e = errno;
        ssize_t w = write(fds[1], &e, sizeof e);
        (void)w;
        _exit(e == ENOENT ? 127 : 126);
    }
    child_pid = (sig_atomic_t)pid;
    if (pending_sig)
        kill(pid, pending_sig);
    close(fds[1]);
    int e = 0;
    ssize_t n;
    do
        n = read(fds[0], &e, sizeof e);
    while (n < 0 && errno == EINTR);
    close(fds[0]);
    if (n == (ssize_t)sizeof e) {
        *exec_errno = e;
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        return -1;
    }
    return pid;
}

static int wait_status(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return 1;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 1;
}

/* Domains a report lists: the top-level ones that have a used sensor. */
static int domain_shown(struct jb_meter *m, int d)
{
    if (d == JB_DOMAIN_CORES || d == JB_DOMAIN_UNCORE)
        return 0;
    for (size_t i = 0; i < jb_meter_sensor_count(m); i++) {
        const struct jb_sensor_info *s = jb_meter_sensor(m, i);
        if (s->used && (int)s->domain == d)
            return 1;
    }
    return 0;
}

static json_t *num_or_null(int valid, double v)
{
    return valid && isfinite(v) ? json_real(v) : json_null();
}

static json_t *estimated_domains(unsigned bits)
{
    json_t *a = json_array();
    for (int d = 0; d < JB_DOMAIN_COUNT; d++)
        if (bits & (1u << d))
            json_array_append_new(a, json_string(jb_domain_name((enum jb_domain)d)));
    return a;
}

/* One object on one line, so `... | tail -n1` finds it after CMD's own
 * output. Figures that could not be measured are null, never 0. */
static void print_json(struct jb_meter *m, char **cmd, int exit_code, const struct jb_energy *e,
                       const struct jb_power *base, double baseline_s, double interval_ms)
{
    json_t *o = json_object();
    json_t *argv = json_array();
    for (char **a = cmd; *a; a++)
        json_array_append_new(argv, json_string(*a));
    json_object_set_new(o, "command", argv);
    json_object_set_new(o, "exit_code", json_integer(exit_code));
    json_object_set_new(o, "duration_s", json_real(e->duration_s));
    json_object_set_new(o, "total_j", num_or_null(e->total_valid, e->total_j));
    json_object_set_new(o, "total_estimated", json_boolean(e->total_estimated));
    json_object_set_new(o, "estimated", json_boolean(jb_meter_any_estimated(m)));
    json_t *doms = json_object(), *pw = json_object();
    for (int d = 0; d < JB_DOMAIN_COUNT; d++) {
        if (!domain_shown(m, d))
            continue;
        int valid = (e->domain_valid >> d) & 1;
        json_object_set_new(doms, jb_domain_name((enum jb_domain)d),
                            num_or_null(valid, e->domain_j[d]));
        json_object_set_new(
            pw, jb_domain_name((enum jb_domain)d),
            num_or_null(valid && e->duration_s > 0, e->domain_j[d] / e->duration_s));
    }
    json_object_set_new(o, "domains", doms);
    json_object_set_new(o, "estimated_domains", estimated_domains(e->domain_estimated));
    json_object_set_new(o, "avg_power_w", pw);
    json_object_set_new(
        o, "total_power_w",
        num_or_null(e->total_valid && e->duration_s > 0, e->total_j / e->duration_s));
    json_t *sensors = json_array(), *unreadable = json_array();
    for (size_t i = 0; i < jb_meter_sensor_count(m); i++) {
        const struct jb_sensor_info *s = jb_meter_sensor(m, i);
        if (s->used) {
            json_t *so = json_object();
            json_object_set_new(so, "name", json_string(s->name));
            json_object_set_new(so, "backend", json_string(s->backend));
            json_object_set_new(so, "domain", json_string(jb_domain_name(s->domain)));
            json_object_set_new(so, "energy_j", num_or_null(e->sensor_valid[i], e->sensor_j[i]));
            json_object_set_new(so, "estimated", json_boolean(s->estimated));
            json_object_set_new(so, "parent",
                                s->parent >= 0
                                    ? json_string(jb_meter_sensor(m, (size_t)s->parent)->name)
                                    : json_null());
            char why[JB_TEXT_LEN];
            if (jb_meter_sensor_error(m, i, why, sizeof why))
                json_object_set_new(so, "error", json_string(why));
            json_array_append_new(sensors, so);
        } else if (!s->readable) {
            json_t *uo = json_object();
            json_object_set_new(uo, "name", json_string(s->name));
            json_object_set_new(uo, "reason", json_string(s->reason));
            json_object_set_new(uo, "fix", json_string(s->fix));
            json_array_append_new(unreadable, uo);
        }
    }
    json_object_set_new(o, "sensors", sensors);
    json_object_set_new(o, "unreadable", unreadable);
    const char *names[8];
    size_t nf = cli_energy_flag_names(e->flags, names, 8);
    json_t *flags = json_array();
    for (size_t k = 0; k < nf; k++)
        json_array_append_new(flags, json_string(names[k]));
    json_object_set_new(o, "flags", flags);
    json_object_set_new(o, "interval_ms", json_real(interval_ms > 0 ? interval_ms : 20));
    json_object_set_new(o, "meter_cpu_s", json_real(jb_meter_sampler_cpu_s(m)));
    if (base) {
        json_t *b = json_object(), *bw = json_object(), *net = json_object();
        json_object_set_new(b, "duration_s", json_real(baseline_s));
        for (int d = 0; d < JB_DOMAIN_COUNT; d++) {
            if (!domain_shown(m, d))
                continue;
            int bv = (base->domain_valid >> d) & 1, ev = (e->domain_valid >> d) & 1;
            const char *dn = jb_domain_name((enum jb_domain)d);
            json_object_set_new(bw, dn, num_or_null(bv, base->domain_w[d]));
            json_object_set_new(
                net, dn, num_or_null(bv && ev, e->domain_j[d] - base->domain_w[d] * e->duration_s));
        }
        json_object_set_new(b, "power_w", bw);
        json_object_set_new(b, "total_w", num_or_null(base->total_valid, base->total_w));
        json_object_set_new(b, "estimated_domains", estimated_domains(base->domain_estimated));
        json_object_set_new(o, "baseline", b);
        json_object_set_new(o, "net_domains", net);
        json_object_set_new(o, "net_total_j",
                            num_or_null(base->total_valid && e->total_valid,
                                        e->total_j - base->total_w * e->duration_s));
    }
    json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    fflush(stdout);
    json_decref(o);
}

static void fmt_j(char *dst, size_t size, int valid, double j, int est)
{
    if (!valid || !isfinite(j))
        snprintf(dst, size, "n/a");
    else
        snprintf(dst, size, "%.3f J%s", j, est ? " (estimated)" : "");
}

/* The report for people: domains with power, the total, every sensor,
 * then what could not be read (with the fix) and what is estimated. */
static void print_text(struct jb_meter *m, char **cmd, int exit_code, const struct jb_energy *e,
                       const struct jb_power *base, double baseline_s)
{
    FILE *f = stderr;
    char line[JB_TEXT_LEN], a[64], b[64];
    line[0] = '\0';
    for (char **p = cmd; *p; p++) {
        if (p != cmd)
            str_lcat(line, " ", sizeof line);
        str_lcat(line, *p, sizeof line);
    }
    fprintf(f, "\njoulebench measure: %s\n", line);
    fprintf(f, "  exit status   %d\n", exit_code);
    fprintf(f, "  duration      %.3f s\n", e->duration_s);
    fprintf(f, "  %-12s  %-26s %s\n", "domain", "energy", "avg power");
    for (int d = 0; d < JB_DOMAIN_COUNT; d++) {
        if (!domain_shown(m, d))
            continue;
        int valid = (e->domain_valid >> d) & 1, est = (e->domain_estimated >> d) & 1;
        fmt_j(a, sizeof a, valid, e->domain_j[d], est);
        if (valid && e->duration_s > 0)
            snprintf(b, sizeof b, "%.2f W", e->domain_j[d] / e->duration_s);
        else
            snprintf(b, sizeof b, "n/a");
        fprintf(f, "  %-12s  %-26s %s%s\n", jb_domain_name((enum jb_domain)d), a, b,
                d == JB_DOMAIN_SYSTEM ? "   (whole platform; not added to the total)" : "");
    }
    fmt_j(a, sizeof a, e->total_valid, e->total_j, e->total_estimated);
    if (e->total_valid && e->duration_s > 0)
        snprintf(b, sizeof b, "%.2f W", e->total_j / e->duration_s);
    else
        snprintf(b, sizeof b, "n/a");
    fprintf(f, "  %-12s  %-26s %s\n", "total", a, b);
    if (base) {
        fprintf(f, "  idle baseline over %.1f s: ", baseline_s);
        if (base->total_valid)
            fprintf(f, "%.2f W%s; net of idle: ", base->total_w,
                    base->total_estimated ? " (estimated)" : "");
        if (base->total_valid && e->total_valid)
            fprintf(f, "%.3f J\n", e->total_j - base->total_w * e->duration_s);
        else
            fprintf(f, "n/a\n");
    }
    fprintf(f, "  sensors:\n");
    for (size_t i = 0; i < jb_meter_sensor_count(m); i++) {
        const struct jb_sensor_info *s = jb_meter_sensor(m, i);
        if (!s->used)
            continue;
        fmt_j(a, sizeof a, e->sensor_valid[i], e->sensor_j[i], s->estimated);
        char inside[JB_NAME_LEN + 16] = "";
        if (s->parent >= 0)
            snprintf(inside, sizeof inside, "  inside %s",
                     jb_meter_sensor(m, (size_t)s->parent)->name);
        fprintf(f, "    %-26s %-7s %s%s\n", s->name, jb_domain_name(s->domain), a, inside);
        char why[JB_TEXT_LEN];
        if (jb_meter_sensor_error(m, i, why, sizeof why))
            fprintf(f, "      stopped answering: %s\n", why);
    }
    int header = 0;
    for (size_t i = 0; i < jb_meter_sensor_count(m); i++) {
        const struct jb_sensor_info *s = jb_meter_sensor(m, i);
        if (s->readable)
            continue;
        if (!header++)
            fprintf(f, "  not readable:\n");
        fprintf(f, "    %s: %s\n", s->name, s->reason);
        if (s->fix[0])
            fprintf(f, "      fix: %s\n", s->fix);
    }
    if (e->flags & JB_ENERGY_WRAPPED)
        fprintf(f, "  note: a counter wrapped during the run and was corrected\n");
    if (e->flags & JB_ENERGY_RESET)
        fprintf(f, "  warning: a counter was reset during the run; its figure is left out\n");
    if (e->flags & JB_ENERGY_SENSOR_LOST)
        fprintf(f,
                "  warning: a sensor stopped answering during the run; its figure is left out\n");
    if (e->flags & JB_ENERGY_SHORT)
        fprintf(f, "  warning: the run was shorter than a sensor's update period\n");
    if (e->domain_estimated) {
        fprintf(f, "  ESTIMATED: the figures marked (estimated) come from a CPU-time model, not "
                   "a sensor:\n");
        for (size_t i = 0; i < jb_meter_sensor_count(m); i++) {
            const struct jb_sensor_info *s = jb_meter_sensor(m, i);
            if (s->used && s->estimated)
                fprintf(f, "    %s\n", s->label);
        }
    }
    if (!e->total_valid && jb_meter_sensor_count(m) == 0)
        fprintf(f, "  no energy sensor could be read on this machine\n");
}

/* Options stop at "--" or at the first word that is not an option, so
 * CMD's own options are never read as ours. */
int cmd_measure(int argc, char **argv)
{
    int as_json = 0, first = -1;
    struct cli_meter_opts mo;
    cli_meter_opts_init(&mo, 0);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            first = i + 1;
            break;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            help(stdout);
            return 0;
        }
        if (strcmp(a, "--json") == 0) {
            as_json = 1;
            continue;
        }
        int r = cli_meter_arg("measure", argc, argv, &i, &mo);
        if (r == 2)
            return 2;
        if (r == 1)
            continue;
        if (a[0] == '-')
            return cli_usage_error("measure", "unknown option '%s'", a);
        first = i;
        break;
    }
    if (first < 0 || first >= argc)
        return cli_usage_error("measure", "no command to measure: joulebench measure [options] -- "
                                          "CMD [ARGS...]");
    char **cmd = argv + first;

    struct jb_meter_options opt;
    jb_meter_options_init(&opt);
    cli_meter_apply(&mo, &opt);
    struct jb_meter *m;
    char err[ERR_LEN];
    int rc = jb_meter_open(&m, &opt, err, sizeof err);
    if (rc) {
        log_error("%s", err);
        return err_exit_code(rc);
    }
    /* The sensors are open: under sudo, CMD must not run as root. */
    if (cli_drop_root()) {
        jb_meter_close(m);
        return 1;
    }
    install_forwarding();
    rc = jb_meter_start(m);
    if (rc) {
        log_error("cannot start the sampler thread: %s", jb_strerror(rc));
        jb_meter_close(m);
        return 1;
    }
    struct jb_power base;
    int have_base = 0;
    if (mo.baseline_s > 0) {
        if (!as_json)
            log_info("measuring idle power for %g s before running %s ...", mo.baseline_s, cmd[0]);
        rc = jb_meter_baseline(m, mo.baseline_s, &stop_flag, &base);
        if (rc == JB_ERR_INTERRUPTED) {
            log_error("interrupted during the idle baseline; %s was not run", cmd[0]);
            jb_meter_close(m);
            return 128 + (pending_sig ? (int)pending_sig : SIGINT);
        }
        have_base = rc == 0;
    }
    rc = jb_meter_begin(m, "command");
    if (rc) {
        log_error("cannot open a meter window: %s", jb_strerror(rc));
        jb_meter_close(m);
        return 1;
    }
    int exec_errno = 0;
    pid_t pid = spawn(cmd, &exec_errno);
    int exit_code;
    if (pid < 0) {
        log_error("cannot run '%s': %s%s", cmd[0], strerror(exec_errno),
                  exec_errno == ENOENT ? " (not found in $PATH)" : "");
        exit_code = exec_errno == ENOENT ? 127 : 126;
    } else {
        exit_code = wait_status(pid);
    }
    child_pid = 0;
    struct jb_energy e;
    jb_meter_end(m, "command", &e);
    if (pid >= 0) {
        if (as_json)
            print_json(m, cmd, exit_code, &e, have_base ? &base : NULL, mo.baseline_s,
                       mo.interval_ms);
        else
            print_text(m, cmd, exit_code, &e, have_base ? &base : NULL, mo.baseline_s);
    }
    jb_meter_close(m);
    return exit_code;
}
