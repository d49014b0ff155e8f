/* Placeholder until its issue lands: the command exists but says so. */
#include "cli/cli.h"
#include "common/log.h"

int cmd_sensors(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    log_error("this command is not built yet");
    return 1;
}
