#include "common/sig.h"

#include <string.h>

volatile sig_atomic_t sig_stop;
volatile sig_atomic_t sig_number;

static void on_signal(int signo)
{
    if (sig_stop && signo == SIGINT) {
        signal(SIGINT, SIG_DFL); /* the next Ctrl-C ends us at once */
    }
    sig_stop = 1;
    sig_number = signo;
}

void sig_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: blocking calls return EINTR and see the flag */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* A write past a file-size limit then fails with EFBIG, which the
     * writer reports and stops on, keeping what it wrote; by default the
     * signal would end the program without a word. */
    signal(SIGXFSZ, SIG_IGN);
}

void sig_reset(void)
{
    sig_stop = 0;
    sig_number = 0;
}
