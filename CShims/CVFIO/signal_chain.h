// Private to CVFIO's signal handlers (mapping_guard.c, mmio_trap.c): hands a signal that is not
// theirs to whoever had it before.
#ifndef CVFIO_SIGNAL_CHAIN_H
#define CVFIO_SIGNAL_CHAIN_H

#include <signal.h>

static inline void cvfio_pass_on(const struct sigaction *previous, int sig, siginfo_t *info, void *context) {
    if (previous->sa_flags & SA_SIGINFO) {
        previous->sa_sigaction(sig, info, context);
    } else if (previous->sa_handler != SIG_IGN && previous->sa_handler != SIG_DFL) {
        previous->sa_handler(sig);
    } else {
        // The default action: returning re-runs the access, which faults again and ends the
        // process as if no handler had been installed.
        signal(sig, SIG_DFL);
    }
}

#endif
