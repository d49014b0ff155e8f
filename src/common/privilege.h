/*
 * privilege.h — giving up root once the sensors are open.
 *
 * Some energy counters can only be opened by root (RAPL energy_uj since
 * Linux 5.10, perf without CAP_PERFMON). An open file keeps working after
 * the process changes user, so `sudo joulebench ...` opens its sensors as
 * root and then calls priv_drop_sudo() before it talks to a server, runs a
 * command or generated code, or writes a file. The drop is permanent: the
 * supplementary groups become the invoking user's, then the group id and
 * the user id (real, effective and saved) become SUDO_GID and SUDO_UID, and
 * the call checks that setuid(0) now fails.
 *
 * Nothing is allocated; struct priv_result is the caller's.
 */
#ifndef JB_COMMON_PRIVILEGE_H
#define JB_COMMON_PRIVILEGE_H

#include "common/err.h"

struct priv_result {
    int dropped;  /* 1: this call dropped root */
    unsigned uid; /* the user now running (when dropped) */
    unsigned gid;
    char user[64]; /* its name, "" when the passwd database has none */
};

/* Drops root for good when the process runs as root under sudo (effective
 * uid 0, SUDO_UID set and not 0). Otherwise it does nothing and returns 0
 * with dropped = 0: an ordinary user, or root logged in as root, keeps what
 * it has. Also points HOME, USER and LOGNAME at the invoking user, so what
 * runs afterwards finds that user's files.
 *
 * Errors: JB_ERR_USAGE for a malformed SUDO_UID/SUDO_GID; JB_ERR_PERM when
 * a step fails or root could be regained afterwards. After an error the
 * caller must stop: the process may hold privileges it was meant to lose. */
int priv_drop_sudo(struct priv_result *out, char *err);

#endif
