/*
 * cli.h — the command line: one file per subcommand (cmd_<name>.c), each an
 * int cmd_<name>(int argc, char **argv) that returns the exit status
 * (0 ok, 1 failure, 2 bad usage or input). Only these functions and main()
 * decide exit statuses; everything below returns JB_ERR_* codes.
 */
#ifndef JB_CLI_CLI_H
#define JB_CLI_CLI_H

#include "common/err.h"

int cmd_sensors(int argc, char **argv);
int cmd_measure(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_grade(int argc, char **argv);
int cmd_gguf_info(int argc, char **argv);
int cmd_synth(int argc, char **argv);

/* Prints "joulebench CMD: message" and a pointer to --help; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) JB_PRINTF(2, 3);
/* Strict option values: on failure print a usage error naming the option
 * and return 2; 0 on success. */
int cli_double(const char *cmd, const char *opt, const char *s, double min, double max,
               double *out);
int cli_int(const char *cmd, const char *opt, const char *s, int min, int max, int *out);

/* Options shared by the commands that measure energy (measure, run, chat),
 * parsed in one place (cli_meter.c) so they mean the same everywhere:
 *   --interval-ms N   sampler period, 1 to 60000 ms (default 20: 50 Hz)
 *   --baseline S      seconds of idle baseline before the work (0: none)
 *   --cpu-watts W     full-load CPU power for the CPU-time estimate */
struct cli_meter_opts {
    double interval_ms; /* 0: the meter's default */
    double baseline_s;  /* 0: no baseline */
    double cpu_watts;   /* 0: the estimator's built-in guess */
};
void cli_meter_opts_init(struct cli_meter_opts *o, double default_baseline_s);
/* Looks at argv[*i]: if it is one of the shared options ("--opt V" or
 * "--opt=V"), stores its value, leaves *i on the last argument it used
 * (so a for loop's i++ moves past it) and returns 1; returns 0 when it is
 * not one of them; prints a usage error naming the option and returns 2
 * when its value is missing or out of range. */
int cli_meter_arg(const char *cmd, int argc, char **argv, int *i, struct cli_meter_opts *o);
/* The --help lines for the shared options (each ends in a newline). */
extern const char cli_meter_help[];
/* Copies the options into meter options (which the caller initialised). */
void cli_meter_apply(const struct cli_meter_opts *o, struct jb_meter_options *mo);
/* Names of JB_ENERGY_* flags as the run files spell them ("counter_wrap",
 * "counter_reset", "sensor_lost", "short_window", "interpolated"); writes
 * up to max names into names[] and returns how many. */
size_t cli_energy_flag_names(unsigned flags, const char **names, size_t max);

/* Started through sudo: drops to the invoking user for good (see
 * common/privilege.h). Call it right after the sensors are opened
 * (jb_meter_open), before running a command, talking to a server or
 * writing a file. Returns 0 (also when there was nothing to drop), or 1
 * after printing why root could not be given up: the command must stop. */
int cli_drop_root(void);

#endif
