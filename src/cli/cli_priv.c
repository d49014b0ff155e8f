/*
 * cli_priv.c — the command line's side of least privilege: once a command
 * has opened its sensors, a joulebench started through sudo becomes the
 * user who ran sudo again (common/privilege.h), before it runs anything,
 * talks to a server or writes a file.
 */
#include "cli/cli.h"

#include "common/log.h"
#include "common/privilege.h"

int cli_drop_root(void)
{
    struct priv_result res;
    char err[ERR_LEN];
    int rc = priv_drop_sudo(&res, err);
    if (rc) {
        log_error("cannot give up root: %s", err);
        return 1;
    }
    if (res.dropped)
        log_verbose("sensors opened as root; running as %s (uid %u, gid %u) from now on",
                    res.user[0] ? res.user : "the sudo user", res.uid, res.gid);
    return 0;
}
