/* Dropping root after sudo. Each case runs in a forked child (a drop is
 * for good, and the test runner must stay root for the next case); the
 * child reports through its exit status and a line on stderr. Needs root:
 * run as another user, the cases are skipped with the reason. */
#include <errno.h>
#include <fcntl.h>
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

#include "common/privilege.h"
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

#define CHECK(cond, code)                                                                        \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "child: %s failed (errno %d)\n", #cond, errno);                     \
            return code;                                                                         \
        }                                                                                        \
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
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
