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

#endif
