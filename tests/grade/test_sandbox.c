/* The sandbox against hostile programs: each must end as a failure with its
 * reason while the caller goes on, and nothing may leak out. Controls with
 * the protections turned off show that each check can fail. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fs.h"
#include "common/str.h"
#include "common/timeutil.h"
#include "grade/sandbox.h"
#include "testutil.h"

static char python[4096];

/* A sandbox with python3 found in it, or a skip with the reason. */
static struct sandbox *open_box(const struct sandbox_config *cfg)
{
    char err[ERR_LEN];
    struct sandbox *sb = NULL;
    assert_int_equal(sandbox_open(&sb, cfg, err), 0);
    if (sandbox_find_program(sb, "python3", NULL, python, sizeof python)) {
        sandbox_close(sb);
        printf("SKIP: no python3 on this machine: the hostile programs are Python\n");
        skip();
    }
    return sb;
}

/* Writes code as prog.py and runs it. */
static void run_py(struct sandbox *sb, const char *code, double timeout_s,
                   struct sandbox_result *res)
{
    char err[ERR_LEN];
    assert_int_equal(sandbox_write_file(sb, "prog.py", code, strlen(code), err), 0);
    char *argv[] = {python, "-B", "prog.py", NULL};
    int rc = sandbox_run(sb, argv, NULL, timeout_s, res, err);
    if (rc)
        fail_msg("sandbox_run: %s", err);
}

static void test_runs_clean(void **state)
{
    (void)state;
    struct sandbox *sb = open_box(NULL);
    struct sandbox_result res;
    sandbox_result_init(&res);
    run_py(sb,
           "import os, sys\n"
           "print(sorted(os.environ))\n"
           "print(os.environ['HOME'] == os.getcwd())\n"
           "sys.stderr.write('to stderr\\n')\n"
           "sys.exit(3)\n",
           10, &res);
    assert_int_equal(res.exit_code, 3);
    assert_string_equal(res.reason, "exit status 3");
    assert_non_null(strstr(buf_str(&res.out), "True"));
    /* Nothing of ours leaks into the environment. */
    assert_null(strstr(buf_str(&res.out), "'USER'"));
    assert_null(strstr(buf_str(&res.out), "'SSH"));
    assert_non_null(strstr(buf_str(&res.out), "'PATH'"));
    assert_string_equal(buf_str(&res.err), "to stderr\n");
    unsigned always = SANDBOX_P_TMPDIR | SANDBOX_P_PGROUP | SANDBOX_P_RLIMITS | SANDBOX_P_ENV;
    assert_true((res.protections & always) == always);
    if (geteuid() == 0)
        assert_true(res.protections & SANDBOX_P_UID);
    printf("protections in force here:");
    for (unsigned b = 1; b < (1u << SANDBOX_P_COUNT); b <<= 1)
        if (res.protections & b)
            printf(" %s", sandbox_protection_name(b));
    printf("\nmissing: %s\n", res.missing[0] ? res.missing : "(none)");
    sandbox_result_free(&res);
    sandbox_close(sb);
}

static void test_endless_loop(void **state)
{
    (void)state;
    struct sandbox *sb = open_box(NULL);
    struct sandbox_result res;
    sandbox_result_init(&res);
    run_py(sb, "while True:\n    pass\n", 1.0, &res);
    assert_true(res.timed_out);
    assert_int_not_equal(res.exit_code, 0);
    assert_non_null(strstr(res.reason, "timed out"));
    sandbox_result_free(&res);
    sandbox_close(sb);
}

static void test_cpu_limit(void **state)
{
    (void)state;
    struct sandbox_config cfg = {0};
    cfg.cpu_s = 1;
    struct sandbox *sb = open_box(&cfg);
    struct sandbox_result res;
    sandbox_result_init(&res);
    run_py(sb, "while True:\n    pass\n", 20.0, &res);
    assert_false(res.timed_out);
    assert_non_null(strstr(res.reason, "CPU time limit"));
    sandbox_result_free(&res);
    sandbox_close(sb);
}

/* An unused uid, so that this test's processes are counted apart from any
 * other sandbox running at the same time (RLIMIT_NPROC is per uid). */
static int private_uid(void)
{
    for (int uid = 61000 + (int)(getpid() % 900); uid < 62000; uid++)
        if (!getpwuid((uid_t)uid))
            return uid;
    return 0;
}

static void test_fork_bomb(void **state)
{
    (void)state;
    struct sandbox_config cfg = {0};
    cfg.drop_uid = cfg.drop_gid = private_uid();
    struct sandbox *sb = open_box(&cfg);
    struct sandbox_result res;
    sandbox_result_init(&res);
    double t0 = jb_clock_s();
    run_py(sb,
           "import os\n"
           "while True:\n"
           "    os.fork()\n",
           5.0, &res);
    assert_int_not_equal(res.exit_code, 0);
    assert_true(res.reason[0] != '\0');
    /* The caller goes on: the run ends (well before a run-away would). */
    assert_true(jb_clock_s() - t0 < 30.0);
    printf("fork bomb: %s\n", res.reason);
    sandbox_result_free(&res);
    sandbox_close(sb);
}

static void test_huge_write(void **state)
{
    (void)state;
    struct sandbox *sb = open_box(NULL);
    struct sandbox_result res;
    sandbox_result_init(&res);
    run_py(sb,
           "with open('big', 'wb') as f:\n"
           "    for i in range(10 * 1024):\n"
           "        f.write(b'x' * (1 << 20))\n",
           10.0, &res);
    assert_int_not_equal(res.exit_code, 0);
    assert_true(res.reason[0] != '\0');
    char path[FS_PATH_MAX];
    fs_path_join(path, sizeof path, sandbox_dir(sb), "big");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true((uint64_t)st.st_size <= 16ull << 20); /* the file size limit held */
    printf("10 GB write: %s; file stopped at %lld bytes\n", res.reason, (long long)st.st_size);
    sandbox_result_free(&res);
    sandbox_close(sb);
}

static void test_disk_flood(void **state)
{
    (void)state;
    struct sandbox_config cfg = {0};
    cfg.disk_bytes = 8u << 20;
    struct sandbox *sb = open_box(&cfg);
    struct sandbox_result res;
    sandbox_result_init(&res);
    /* Many files, each under the file size limit: the folder watch stops it. */
    run_py(sb,
           "import itertools\n"
           "for i in itertools.count():\n"
           "    with open('f%d' % i, 'wb') as f:\n"
           "        f.write(b'x' * (1 << 20))\n",
           20.0, &res);
    if (!(res.protections & SANDBOX_P_DISK))
        fail_msg("the disk watch was not in force");
    assert_true(res.disk_capped);
    assert_non_null(strstr(res.reason, "filled its folder"));
    sandbox_result_free(&res);
    sandbox_close(sb);
}

static void test_huge_stdout(void **state)
{
    (void)state;
    struct sandbox *sb = open_box(NULL);
    struct sandbox_result res;
    sandbox_result_init(&res);
    run_py(sb,
           "import sys\n"
           "while True:\n"
           "    sys.stdout.write('y' * 65536)\n",
           10.0, &res);
    assert_true(res.output_capped);
    assert_true(res.out.len <= 64u << 10);
    assert_non_null(strstr(res.reason, "output"));
    sandbox_result_free(&res);
    sandbox_close(sb);
}

/* A listener on 127.0.0.1 (a port the kernel picks); returns its fd. */
static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static int connection_waiting(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1;
}

/* Runs the connect attempt with the given protections off; returns 1 if the
 * listener saw a connection. */
static int try_network(unsigned disable, struct sandbox_result *res, unsigned *prot)
{
    int port;
    int lfd = listen_loopback(&port);
    struct sandbox_config cfg = {0};
    cfg.disable = disable;
    struct sandbox *sb = open_box(&cfg);
    char code[512];
    snprintf(code, sizeof code,
             "import socket\n"
             "s = socket.create_connection(('127.0.0.1', %d), timeout=3)\n"
             "s.sendall(b'stolen')\n"
             "print('connected')\n",
             port);
    run_py(sb, code, 10.0, res);
    *prot = res->protections;
    int seen = connection_waiting(lfd);
    close(lfd);
    sandbox_close(sb);
    return seen;
}

static void test_network(void **state)
{
    (void)state;
    struct sandbox_result res;
    sandbox_result_init(&res);
    unsigned prot;
    int seen = try_network(0, &res, &prot);
    if (!(prot & (SANDBOX_P_NETNS | SANDBOX_P_LANDLOCK_NET))) {
        sandbox_result_free(&res);
        printf("SKIP: neither a network namespace nor Landlock TCP rules are available here\n");
        skip();
    }
    assert_false(seen);
    assert_int_not_equal(res.exit_code, 0);
    assert_null(strstr(buf_str(&res.out), "connected"));
    printf("network attempt: %s\n", res.reason);

    /* Each layer alone holds. */
    if (prot & SANDBOX_P_NETNS) {
        seen = try_network(SANDBOX_P_LANDLOCK_NET, &res, &prot);
        assert_false(seen);
        assert_int_not_equal(res.exit_code, 0);
    }
    if (prot & SANDBOX_P_LANDLOCK_NET) {
        seen = try_network(SANDBOX_P_NETNS, &res, &prot);
        assert_false(seen);
        assert_int_not_equal(res.exit_code, 0);
    }
    /* Control: with both off the same program does get through, so the
     * check above is able to see a leak. */
    seen = try_network(SANDBOX_P_NETNS | SANDBOX_P_LANDLOCK_NET, &res, &prot);
    assert_true(seen);
    assert_int_equal(res.exit_code, 0);
    sandbox_result_free(&res);
}

/* Reads a fake private key under a fake HOME with some protections off;
 * returns 1 if the secret came out. */
static int try_ssh(unsigned disable, int world_readable, unsigned *prot, char *reason, size_t size)
{
    char *home = tu_tmpdir("home");
    chmod(home, 0755);
    char secret[64];
    snprintf(secret, sizeof secret, "FAKE-KEY-%ld-%d", (long)getpid(), rand());
    tu_write(home, ".ssh/id_rsa", secret);
    char key[FS_PATH_MAX], sshdir[FS_PATH_MAX];
    fs_path_join(sshdir, sizeof sshdir, home, ".ssh");
    fs_path_join(key, sizeof key, sshdir, "id_rsa");
    /* As ssh keeps them, or readable by anyone (then only the sandbox's own
     * layers stand in the way, not the file's permissions). */
    chmod(sshdir, world_readable ? 0755 : 0700);
    chmod(key, world_readable ? 0644 : 0600);
    char *old_home = getenv("HOME") ? str_dup(getenv("HOME")) : NULL;
    setenv("HOME", home, 1);
    struct sandbox_config cfg = {0};
    cfg.disable = disable;
    struct sandbox *sb = open_box(&cfg);
    char code[FS_PATH_MAX + 128];
    snprintf(code, sizeof code, "print(open(%s%s%s).read())\n", "'", key, "'");
    struct sandbox_result res;
    sandbox_result_init(&res);
    run_py(sb, code, 10.0, &res);
    int leaked = strstr(buf_str(&res.out), secret) != NULL;
    *prot = res.protections;
    snprintf(reason, size, "%s", res.reason);
    sandbox_result_free(&res);
    sandbox_close(sb);
    if (old_home)
        setenv("HOME", old_home, 1);
    else
        unsetenv("HOME");
    free(old_home);
    tu_rmtree_free(home);
    return leaked;
}

static void test_ssh_key(void **state)
{
    (void)state;
    unsigned prot;
    char reason[256];
    const unsigned landlock =
        SANDBOX_P_LANDLOCK_FS | SANDBOX_P_LANDLOCK_NET | SANDBOX_P_LANDLOCK_SCOPE;
    /* Everything on, the key as ssh keeps it. */
    int leaked = try_ssh(0, 0, &prot, reason, sizeof reason);
    if (!(prot & (SANDBOX_P_UID | SANDBOX_P_LANDLOCK_FS | SANDBOX_P_MNTNS))) {
        printf("SKIP: this machine gives the sandbox no way to keep files from the code (no uid "
               "drop, Landlock or mount namespace)\n");
        skip();
    }
    assert_false(leaked);
    assert_true(reason[0] != '\0');
    printf("~/.ssh/id_rsa read: %s\n", reason);
    unsigned all = prot;
    /* A world-readable key: the file's permissions no longer help. */
    if (all & (SANDBOX_P_LANDLOCK_FS | SANDBOX_P_MNTNS))
        assert_false(try_ssh(0, 1, &prot, reason, sizeof reason));
    /* Each layer alone. */
    if (all & SANDBOX_P_LANDLOCK_FS) {
        assert_false(try_ssh(SANDBOX_P_UID | SANDBOX_P_MNTNS, 1, &prot, reason, sizeof reason));
        assert_true(prot & SANDBOX_P_LANDLOCK_FS);
    } else {
        printf("Landlock alone: not checked, Landlock is not available here\n");
    }
    if (all & SANDBOX_P_MNTNS) {
        assert_false(try_ssh(SANDBOX_P_UID | landlock, 1, &prot, reason, sizeof reason));
        assert_true(prot & SANDBOX_P_MNTNS);
    } else {
        printf("mount namespace alone: not checked, not available here\n");
    }
    /* Control: with them all off, the same program reads the key. */
    assert_true(
        try_ssh(SANDBOX_P_UID | SANDBOX_P_MNTNS | landlock, 1, &prot, reason, sizeof reason));
}

/* Reads this test process's /proc/PID/environ from the sandbox with some
 * protections off; returns 1 if its first entry (what the kernel shows, the
 * environment the process started with) came out. */
static int try_environ(unsigned disable, unsigned *prot)
{
    char first[256];
    ssize_t n = fs_read_small("/proc/self/environ", first, sizeof first);
    if (n < 8 || strlen(first) < 5) {
        printf("SKIP: this process has no readable environment to look for\n");
        skip();
    }
    struct sandbox_config cfg = {0};
    cfg.disable = disable;
    struct sandbox *sb = open_box(&cfg);
    char code[256];
    snprintf(code, sizeof code,
             "print(open('/proc/%ld/environ', 'rb').read().split(b'\\0')[0].decode())\n",
             (long)getpid());
    struct sandbox_result res;
    sandbox_result_init(&res);
    run_py(sb, code, 10.0, &res);
    int leaked = strstr(buf_str(&res.out), first) != NULL;
    *prot = res.protections;
    sandbox_result_free(&res);
    sandbox_close(sb);
    return leaked;
}

static void test_proc_environ(void **state)
{
    (void)state;
    unsigned prot;
    assert_false(try_environ(0, &prot));
    /* Without the PID namespace's private /proc (and, as root, without the
     * uid drop), Landlock alone keeps other processes' /proc out of reach. */
    const unsigned landlock =
        SANDBOX_P_LANDLOCK_FS | SANDBOX_P_LANDLOCK_NET | SANDBOX_P_LANDLOCK_SCOPE;
    if (!(prot & SANDBOX_P_LANDLOCK_FS)) {
        printf("SKIP: Landlock is not available here\n");
        skip();
    }
    assert_false(try_environ(SANDBOX_P_UID | SANDBOX_P_PIDNS, &prot));
    assert_false(prot & SANDBOX_P_PROC);
    /* Control: with Landlock off too, the environment leaks. */
    if (geteuid() == 0)
        assert_true(try_environ(SANDBOX_P_UID | SANDBOX_P_PIDNS | landlock, &prot));
}

/* 1 if a process whose command line holds marker is alive. */
static int process_alive(const char *marker)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[64], cmd[4096];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, cmd, sizeof cmd - 1);
        close(fd);
        if (n <= 0)
            continue;
        for (ssize_t i = 0; i < n; i++)
            if (cmd[i] == '\0')
                cmd[i] = ' ';
        cmd[n] = '\0';
        found = strstr(cmd, marker) != NULL;
    }
    closedir(d);
    return found;
}

static void test_daemon_does_not_survive(void **state)
{
    (void)state;
    struct sandbox *sb = open_box(NULL);
    char err[ERR_LEN], name[64];
    snprintf(name, sizeof name, "daemon_%ld_%d.py", (long)getpid(), rand());
    const char *code = "import os, time\n"
                       "if os.fork() == 0:\n"
                       "    os.setsid()\n"
                       "    if os.fork() == 0:\n"
                       "        time.sleep(60)\n"
                       "    os._exit(0)\n"
                       "time.sleep(0.3)\n"
                       "print('parent leaves')\n";
    assert_int_equal(sandbox_write_file(sb, name, code, strlen(code), err), 0);
    char *argv[] = {python, "-B", name, NULL};
    struct sandbox_result res;
    sandbox_result_init(&res);
    double t0 = jb_clock_s();
    assert_int_equal(sandbox_run(sb, argv, NULL, 10.0, &res, err), 0);
    assert_true(jb_clock_s() - t0 < 30.0);
    assert_int_equal(res.exit_code, 0);
    int pidns = (res.protections & SANDBOX_P_PIDNS) != 0;
    sandbox_result_free(&res);
    sandbox_close(sb);
    if (!pidns) {
        printf("SKIP: no PID namespace here; a setsid() daemon can outlive the run\n");
        skip();
    }
    /* The kernel killed the grandchild with the namespace's first process. */
    usleep(100 * 1000);
    assert_false(process_alive(name));
}

static void test_hostile_tree_removed(void **state)
{
    (void)state;
    struct sandbox *sb = open_box(NULL);
    char top[FS_PATH_MAX];
    str_lcpy(top, sandbox_dir(sb), sizeof top);
    struct sandbox_result res;
    sandbox_result_init(&res);
    run_py(sb,
           "import os\n"
           "os.makedirs('a/b/c')\n"
           "open('a/b/c/f', 'w').write('x')\n"
           "os.symlink('/', 'a/root')\n"
           "os.symlink('/etc/passwd', 'pw')\n"
           "os.chmod('a/b/c', 0)\n"
           "os.chmod('a/b', 0)\n",
           10.0, &res);
    assert_int_equal(res.exit_code, 0);
    sandbox_result_free(&res);
    sandbox_close(sb);
    struct stat st;
    assert_int_not_equal(stat(top, &st), 0);       /* the folder is gone */
    assert_int_equal(stat("/etc/passwd", &st), 0); /* and what the links pointed at is not */
}

static void test_missing_program(void **state)
{
    (void)state;
    char err[ERR_LEN];
    struct sandbox *sb = NULL;
    assert_int_equal(sandbox_open(&sb, NULL, err), 0);
    char out[256];
    char *tmp = tu_tmpdir("emptypath");
    assert_int_equal(sandbox_find_program(sb, "python3", tmp, out, sizeof out), JB_ERR_NOTFOUND);
    char *argv[] = {"/nonexistent/program", NULL};
    struct sandbox_result res;
    sandbox_result_init(&res);
    assert_int_equal(sandbox_run(sb, argv, NULL, 5.0, &res, err), 0);
    assert_int_not_equal(res.exit_code, 0);
    assert_non_null(strstr(res.reason, "cannot execute"));
    sandbox_result_free(&res);
    sandbox_close(sb);
    tu_rmtree_free(tmp);
}

static void test_write_file_no_escape(void **state)
{
    (void)state;
    char err[ERR_LEN];
    struct sandbox *sb = NULL;
    assert_int_equal(sandbox_open(&sb, NULL, err), 0);
    assert_int_not_equal(sandbox_write_file(sb, "../x", "1", 1, err), 0);
    assert_int_not_equal(sandbox_write_file(sb, "", "1", 1, err), 0);
    /* A link planted under the name is replaced, not followed. */
    char *outside = tu_tmpdir("outside");
    char target[FS_PATH_MAX], link[FS_PATH_MAX];
    fs_path_join(target, sizeof target, outside, "victim");
    tu_write(outside, "victim", "original");
    fs_path_join(link, sizeof link, sandbox_dir(sb), "solution.py");
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(sandbox_write_file(sb, "solution.py", "new", 3, err), 0);
    struct buf b = {0};
    assert_int_equal(fs_read_file(target, 0, &b, err), 0);
    assert_string_equal(buf_str(&b), "original");
    buf_free(&b);
    sandbox_close(sb);
    tu_rmtree_free(outside);
}

int main(void)
{
    srand((unsigned)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_clean),
        cmocka_unit_test(test_endless_loop),
        cmocka_unit_test(test_cpu_limit),
        cmocka_unit_test(test_fork_bomb),
        cmocka_unit_test(test_huge_write),
        cmocka_unit_test(test_disk_flood),
        cmocka_unit_test(test_huge_stdout),
        cmocka_unit_test(test_network),
        cmocka_unit_test(test_ssh_key),
        cmocka_unit_test(test_proc_environ),
        cmocka_unit_test(test_daemon_does_not_survive),
        cmocka_unit_test(test_hostile_tree_removed),
        cmocka_unit_test(test_missing_program),
        cmocka_unit_test(test_write_file_no_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
