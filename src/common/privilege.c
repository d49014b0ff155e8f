/*
 * privilege.c — dropping root to the user who ran sudo (see privilege.h).
 *
 * Only POSIX calls plus setgroups/initgroups, which Linux and macOS both
 * have: with appropriate privileges setgid()/setuid() set the real,
 * effective and saved ids together, which is what makes the drop final.
 */
#include "common/privilege.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/str.h"

/* A decimal id from the environment; JB_ERR_USAGE names the variable. */
static int env_id(const char *var, int required, unsigned *out, int *present, char *err)
{
    const char *v = getenv(var);
    *present = v && *v;
    if (!*present) {
        if (required)
            return err_setf(err, JB_ERR_USAGE, "%s is not set", var);
        return 0;
    }
    uint64_t id;
    if (str_to_u64(v, (size_t)-1, &id) || id >= (uint64_t)(uid_t)-1)
        return err_setf(err, JB_ERR_USAGE,
                        "%s=\"%s\" is not a user or group id; run joulebench through sudo "
                        "unchanged, or unset %s",
                        var, v, var);
    *out = (unsigned)id;
    return 0;
}

int priv_drop_sudo(struct priv_result *out, char *err)
{
    memset(out, 0, sizeof *out);
    if (geteuid() != 0)
        return 0;
    unsigned uid = 0, gid = 0;
    int have_uid, have_gid;
    int rc = env_id("SUDO_UID", 0, &uid, &have_uid, err);
    if (rc || !have_uid || uid == 0)
        return rc;
    rc = env_id("SUDO_GID", 0, &gid, &have_gid, err);
    if (rc)
        return rc;

    struct passwd *pw = getpwuid((uid_t)uid);
    if (!have_gid) {
        if (!pw)
            return err_setf(err, JB_ERR_USAGE,
                            "SUDO_UID=%u has no passwd entry and SUDO_GID is not set", uid);
        gid = (unsigned)pw->pw_gid;
    }
    /* getpwuid's answer lives in a static buffer that the group lookups
     * below may reuse: keep copies. */
    char name[256] = "", home[1024] = "";
    if (pw) {
        str_lcpy(name, pw->pw_name, sizeof name);
        str_lcpy(out->user, pw->pw_name, sizeof out->user);
        if (pw->pw_dir)
            str_lcpy(home, pw->pw_dir, sizeof home);
    }

    /* Groups first, while root may still change them. */
    gid_t g = (gid_t)gid;
    if (name[0] ? initgroups(name, g) != 0 : setgroups(1, &g) != 0)
        return err_setf(err, JB_ERR_PERM, "cannot set the groups of uid %u: %s", uid,
                        strerror(errno));
    if (setgid(g) != 0)
        return err_setf(err, JB_ERR_PERM, "cannot change to gid %u: %s", gid, strerror(errno));
    if (setuid((uid_t)uid) != 0)
        return err_setf(err, JB_ERR_PERM, "cannot change to uid %u: %s", uid, strerror(errno));

    /* Checked, not assumed: a process that can become root again has not
     * dropped anything. */
    if (setuid(0) == 0 || geteuid() == 0 || getuid() == 0)
        return err_setf(err, JB_ERR_PERM,
                        "dropped to uid %u but root can still be regained; "
                        "stopping",
                        uid);
    if (getgid() != g || getegid() != g)
        return err_setf(err, JB_ERR_PERM, "dropped to uid %u but the group is still %u", uid,
                        (unsigned)getegid());

    if (name[0]) {
        if (home[0])
            setenv("HOME", home, 1);
        setenv("USER", name, 1);
        setenv("LOGNAME", name, 1);
    }
    out->dropped = 1;
    out->uid = uid;
    out->gid = gid;
    return 0;
}
