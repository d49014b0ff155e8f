/*
 * jb-fixture — fixture RAPL counters (fixture_sysfs.h) as a process of its
 * own, for scripts that run joulebench as a user would (scripts/soak.sh).
 * Builds a sysfs tree with a package zone and its core and dram zones
 * driven at fixed watts, prints the sysfs root and the procfs root on
 * stdout (one line each), then drives the counters until SIGTERM, SIGINT
 * or SIGHUP, and removes the tree.
 *
 *   jb-fixture [--watts PKG_W] [--hz N]      (defaults 25 W, 100 Hz)
 *
 * Point joulebench at it with JOULEBENCH_SYSFS_ROOT and
 * JOULEBENCH_PROCFS_ROOT.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/str.h"
#include "fixture_sysfs.h"

static int usage(void)
{
    fprintf(stderr, "usage: jb-fixture [--watts PKG_W] [--hz N]\n");
    return 2;
}

int main(int argc, char **argv)
{
    double watts = 25.0, hz = 100.0;
    for (int i = 1; i < argc; i++) {
        double *dst = strcmp(argv[i], "--watts") == 0 ? &watts
                      : strcmp(argv[i], "--hz") == 0  ? &hz
                                                      : NULL;
        if (!dst || i + 1 >= argc || str_to_double(argv[i + 1], (size_t)-1, dst) || *dst <= 0)
            return usage();
        i++;
    }
    /* The writer thread inherits the mask: the signals come to sigwait. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    struct fx_sysfs *fx = fx_new("fixture");
    int pkg = fx_rapl_zone(fx, "intel-rapl:0", "package-0", 0, 0);
    int core = fx_rapl_zone(fx, "intel-rapl:0:0", "core", 0, 0);
    int dram = fx_rapl_zone(fx, "intel-rapl:0:1", "dram", 0, 0);
    fx_set_watts(fx, pkg, watts);
    fx_set_watts(fx, core, watts * 0.6);
    fx_set_watts(fx, dram, watts * 0.12);
    fx_proc_stat(fx, 4, 1000, 100000);
    fx_start(fx, hz);
    printf("%s\n%s\n", fx_sysfs_root(fx), fx_procfs_root(fx));
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    fx_free(fx);
    return 0;
}
