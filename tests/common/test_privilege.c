/* Dropping root after sudo. Each case runs in a forked child (a drop is
 * for good, and the test runner must stay root for the next case); the
 * child reports through its exit status and a line on stderr. Needs root:
 * run as another user, the cases are skipped with the reason. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/buf.h"
#include "common/fs.h"
#include "common/privilege.h"
#include "fixture_sysfs.h"
#include "testutil.h"

#define NOBODY 65534

static char *shared_dir; /* world-writable, for the file the child writes */

static void need_root(void)
{
    if (geteuid() != 0) {
        printf("test_privilege: not running as root (euid %u); the drop cannot be tested\n",
               (unsigned)geteuid());
        skip();
    }
}

/* Runs fn in a child and asserts it exited 0. */
static void in_child(int (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn());
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

#define CHECK(cond, code)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "child: %s failed (errno %d)\n", #cond, errno);                        \
            return code;                                                                           \
        }                                                                                          \
    } while (0)

static int child_drop(void)
{
    setenv("SUDO_UID", "65534", 1);
    setenv("SUDO_GID", "65534", 1);
    setenv("HOME", "/root", 1);
    struct passwd *pw = getpwuid(NOBODY);
    char want_home[512] = "";
    if (pw && pw->pw_dir)
        snprintf(want_home, sizeof want_home, "%s", pw->pw_dir);

    struct priv_result res;
    char err[ERR_LEN] = "";
    int rc = priv_drop_sudo(&res, err);
    if (rc)
        fprintf(stderr, "child: %s\n", err);
    CHECK(rc == 0, 10);
    CHECK(res.dropped == 1 && res.uid == NOBODY && res.gid == NOBODY, 11);

    /* root cannot be regained */
    CHECK(setuid(0) == -1 && errno == EPERM, 12);
    CHECK(seteuid(0) == -1, 13);
    CHECK(getuid() == NOBODY && geteuid() == NOBODY, 14);
    CHECK(getgid() == NOBODY && getegid() == NOBODY, 15);
    gid_t groups[64];
    int n = getgroups(64, groups);
    CHECK(n >= 0, 16);
    for (int i = 0; i < n; i++)
        CHECK(groups[i] != 0, 17);

    /* a file written now belongs to the user */
    char path[1024];
    snprintf(path, sizeof path, "%s/after-drop.txt", shared_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    CHECK(fd >= 0, 18);
    CHECK(write(fd, "x\n", 2) == 2, 19);
    close(fd);
    struct stat st;
    CHECK(stat(path, &st) == 0, 20);
    CHECK(st.st_uid == NOBODY && st.st_gid == NOBODY, 21);

    /* and root's files are out of reach */
    CHECK(open("/etc/shadow", O_RDONLY) < 0 || access("/etc/shadow", F_OK) != 0, 22);

    /* HOME follows the user */
    if (want_home[0])
        CHECK(strcmp(getenv("HOME"), want_home) == 0, 23);

    /* a second call has nothing left to drop */
    rc = priv_drop_sudo(&res, err);
    CHECK(rc == 0 && res.dropped == 0, 24);
    return 0;
}

static int child_no_sudo(void)
{
    unsetenv("SUDO_UID");
    unsetenv("SUDO_GID");
    struct priv_result res;
    char err[ERR_LEN];
    CHECK(priv_drop_sudo(&res, err) == 0, 30);
    CHECK(res.dropped == 0 && geteuid() == 0, 31);
    /* sudo run from root itself: nothing to drop either */
    setenv("SUDO_UID", "0", 1);
    setenv("SUDO_GID", "0", 1);
    CHECK(priv_drop_sudo(&res, err) == 0, 32);
    CHECK(res.dropped == 0 && geteuid() == 0, 33);
    return 0;
}

static int child_bad_env(void)
{
    setenv("SUDO_UID", "12abc", 1);
    setenv("SUDO_GID", "65534", 1);
    struct priv_result res;
    char err[ERR_LEN] = "";
    CHECK(priv_drop_sudo(&res, err) == JB_ERR_USAGE, 40);
    CHECK(strstr(err, "SUDO_UID=\"12abc\"") != NULL, 41);
    CHECK(geteuid() == 0 && res.dropped == 0, 42);
    setenv("SUDO_UID", "65534", 1);
    setenv("SUDO_GID", "-1", 1);
    CHECK(priv_drop_sudo(&res, err) == JB_ERR_USAGE, 43);
    CHECK(strstr(err, "SUDO_GID") != NULL, 44);
    CHECK(geteuid() == 0, 45);
    return 0;
}

/* Without SUDO_GID the user's primary group from passwd is taken. */
static int child_gid_from_passwd(void)
{
    setenv("SUDO_UID", "65534", 1);
    unsetenv("SUDO_GID");
    struct passwd *pw = getpwuid(NOBODY);
    CHECK(pw != NULL, 50);
    gid_t want = pw->pw_gid;
    struct priv_result res;
    char err[ERR_LEN] = "";
    CHECK(priv_drop_sudo(&res, err) == 0, 51);
    CHECK(res.dropped == 1 && getegid() == want && getgid() == want, 52);
    CHECK(setuid(0) == -1, 53);
    return 0;
}

static void test_drop(void **state)
{
    (void)state;
    need_root();
    in_child(child_drop);
    /* the parent is still root and can see what the child wrote */
    char path[1024];
    snprintf(path, sizeof path, "%s/after-drop.txt", shared_dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, NOBODY);
}

static void test_no_sudo(void **state)
{
    (void)state;
    need_root();
    in_child(child_no_sudo);
}

static void test_bad_env(void **state)
{
    (void)state;
    need_root();
    in_child(child_bad_env);
}

static void test_gid_from_passwd(void **state)
{
    (void)state;
    need_root();
    if (!getpwuid(NOBODY)) {
        printf("test_privilege: no passwd entry for uid %d here\n", NOBODY);
        skip();
    }
    in_child(child_gid_from_passwd);
}

static void read_trimmed(const char *dir, const char *file, char *dst, size_t size)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    assert_true(fs_read_small(path, dst, size) > 0);
    dst[strcspn(dst, "\n")] = '\0';
}

/* The whole route: `sudo joulebench measure` opens a root-only RAPL counter
 * (mode 0400) as root, then runs the command as the sudo user, and the
 * counter it opened keeps being read after the drop. */
static void test_measure_under_sudo(void **state)
{
    (void)state;
    need_root();
    struct fx_sysfs *fx = fx_new("privrapl");
    int pkg = fx_rapl_zone(fx, "intel-rapl:0", "package-0", 0, 0);
    fx_set_watts(fx, pkg, 20.0);
    fx_start(fx, 1000);
    char path[1024];
    snprintf(path, sizeof path, "%s/class/powercap/intel-rapl:0/energy_uj", fx_sysfs_root(fx));
    assert_int_equal(chmod(path, 0400), 0);

    char *out = tu_tmpdir("privout");
    assert_int_equal(chmod(out, 01777), 0);
    char script[2048];
    snprintf(script, sizeof script,
             "id -u > %s/uid && id -g > %s/gid && echo x > %s/file && sleep 0.3", out, out, out);
    char sysfs[1100], procfs[1100];
    snprintf(sysfs, sizeof sysfs, "JOULEBENCH_SYSFS_ROOT=%s", fx_sysfs_root(fx));
    snprintf(procfs, sizeof procfs, "JOULEBENCH_PROCFS_ROOT=%s", fx_procfs_root(fx));
    char *env[] = {sysfs,
                   procfs,
                   "JOULEBENCH_NVML_LIB=/nonexistent/libnvidia-ml.so.1",
                   "SUDO_UID=65534",
                   "SUDO_GID=65534",
                   NULL};
    char *argv[] = {JB_TOOL, "measure", "--json", "--", "/bin/sh", "-c", script, NULL};
    struct buf o = {0}, e = {0};
    int status = tu_run(argv, env, &o, &e);
    if (status != 0)
        fail_msg("measure exited %d: %s", status, buf_str(&e));

    char text[64];
    read_trimmed(out, "uid", text, sizeof text);
    assert_string_equal(text, "65534");
    read_trimmed(out, "gid", text, sizeof text);
    assert_string_equal(text, "65534");
    snprintf(path, sizeof path, "%s/file", out);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, 65534);

    json_error_t jerr;
    json_t *j = json_loads(buf_str(&o), 0, &jerr);
    if (!j)
        fail_msg("measure --json: %s at line %d: %s", jerr.text, jerr.line, buf_str(&o));
    json_t *sensors = json_object_get(j, "sensors");
    assert_int_equal(json_array_size(sensors), 1);
    json_t *s0 = json_array_get(sensors, 0);
    assert_string_equal(json_string_value(json_object_get(s0, "name")), "rapl:package-0");
    assert_true(json_is_real(json_object_get(s0, "energy_j")));
    double joules = json_real_value(json_object_get(s0, "energy_j"));
    double secs = json_real_value(json_object_get(j, "duration_s"));
    assert_true(secs >= 0.3);
    assert_true(fabs(joules - 20.0 * secs) < 0.05 * 20.0 * secs);
    json_decref(j);

    /* `sensors` opens and drops the same way. */
    char *argv2[] = {JB_TOOL, "sensors", "--json", NULL};
    buf_reset(&o);
    buf_reset(&e);
    status = tu_run(argv2, env, &o, &e);
    if (status != 0)
        fail_msg("sensors exited %d: %s", status, buf_str(&e));
    assert_non_null(strstr(buf_str(&o), "rapl:package-0"));

    buf_free(&o);
    buf_free(&e);
    tu_rmtree_free(out);
    fx_free(fx);
}

static int setup(void **state)
{
    (void)state;
    shared_dir = tu_tmpdir("priv");
    return chmod(shared_dir, 01777);
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree_free(shared_dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drop),
        cmocka_unit_test(test_no_sudo),
        cmocka_unit_test(test_bad_env),
        cmocka_unit_test(test_gid_from_passwd),
        cmocka_unit_test(test_measure_under_sudo),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
