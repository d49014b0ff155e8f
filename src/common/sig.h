/*
 * sig.h — SIGINT/SIGTERM as a request to stop. The handler only sets
 * sig_stop; long operations poll it, finish the record in hand, write what
 * they have, and return JB_ERR_INTERRUPTED. A second SIGINT while stopping
 * restores the default action, so a stuck program can still be killed.
 * sig_install() also ignores SIGPIPE and SIGXFSZ: a closed socket or a
 * file-size limit becomes an error from write(), not a silent death.
 */
#ifndef JB_COMMON_SIG_H
#define JB_COMMON_SIG_H

#include <signal.h>

extern volatile sig_atomic_t sig_stop;   /* non-zero once a stop was asked for */
extern volatile sig_atomic_t sig_number; /* the signal that asked */

void sig_install(void);
void sig_reset(void); /* clears the flags (tests) */

#endif
