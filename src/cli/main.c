/*
 * joulebench — what a token of a local language model costs in joules.
 * main() dispatches to one file per subcommand.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/log.h"

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"run", cmd_run, "benchmark models on a suite of prompts, measuring joules per token"},
    {"chat", cmd_chat, "talk to a model; each answer is shown with its joules"},
    {"report", cmd_report, "rebuild the table and charts of a run directory"},
    {"grade", cmd_grade, "grade (or regrade) the answers of a finished run"},
    {"sensors", cmd_sensors,
     "list the energy sensors of this machine and whether they can be read"},
    {"measure", cmd_measure, "measure the energy of any command"},
    {"models", cmd_models, "list the models an engine offers"},
    {"gguf-info", cmd_gguf_info, "print the metadata and tensors of a GGUF model file"},
    {"synth", cmd_synth, "write a synthetic GGUF model (random weights) for testing"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: joulebench <command> [options]\n\n"
               "joulebench measures what local language-model inference costs in energy:\n"
               "joules per token, where they go (CPU, GPU, DRAM, ANE; load, prefill,\n"
               "decode), speed, and answer quality.\n\ncommands:\n");
    for (const struct command *c = commands; c->name; c++)
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f, "\n'joulebench <command> --help' shows a command's options.\n"
               "Exit status: 0 ok, 1 failure, 2 bad usage or input, 130 interrupted.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("joulebench %s\n", JB_VERSION);
        return 0;
    }
    for (const struct command *c = commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c->fn(argc - 1, argv + 1);
    log_error("unknown command '%s'", name);
    usage(stderr);
    return 2;
}
