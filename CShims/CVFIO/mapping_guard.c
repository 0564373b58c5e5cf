// Guarded device mappings: a SIGBUS inside one makes it stale instead of ending the process
// (the contract is in cvfio_mapping_guard.h).
//
// The table is claimed and read with atomics only, so the handler takes no lock and calls
// nothing but mmap(2), which is async-signal-safe. The handler is installed once, with the
// first guard, and stays: a process that guards nothing never installs it.
#define _GNU_SOURCE
#include "cvfio_mapping_guard.h"
#include "signal_chain.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

static struct {
    atomic_int claimed;
    _Atomic uintptr_t start; /* 0 while not guarding */
    _Atomic uintptr_t end;
    atomic_int tripped;
} guards[CVFIO_GUARDED_MAPPINGS];

static pthread_once_t installed = PTHREAD_ONCE_INIT;
static int install_error;
static struct sigaction previous;

// Word by word as relaxed atomics: other threads may read the range meanwhile.
static void fill_ones(uintptr_t start, uintptr_t end) {
    for (uint64_t *w = (uint64_t *)start; (uintptr_t)w < end; w++) __atomic_store_n(w, ~(uint64_t)0, __ATOMIC_RELAXED);
}

int cvfio_guard_revoke(const void *address) {
    uintptr_t a = (uintptr_t)address;
    for (int i = 0; i < CVFIO_GUARDED_MAPPINGS; i++) {
        uintptr_t start = atomic_load_explicit(&guards[i].start, memory_order_acquire);
        if (start == 0 || a < start) continue;
        uintptr_t end = atomic_load_explicit(&guards[i].end, memory_order_relaxed);
        if (a >= end) continue;
        void *p = mmap((void *)start, end - start, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (p == MAP_FAILED) return 0;
        fill_ones(start, end);
        atomic_store_explicit(&guards[i].tripped, 1, memory_order_release);
        return 1;
    }
    return 0;
}

static void on_sigbus(int sig, siginfo_t *info, void *context) {
    int saved = errno;
    int revoked = cvfio_guard_revoke(info->si_addr);
    errno = saved;
    if (!revoked) cvfio_pass_on(&previous, sig, info, context);
}

static void install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&action.sa_mask);
    action.sa_sigaction = on_sigbus;
    if (sigaction(SIGBUS, &action, &previous) != 0) install_error = errno;
}

int cvfio_guard_mapping(void *address, size_t length) {
    pthread_once(&installed, install);
    if (install_error != 0) return -install_error;
    for (int i = 0; i < CVFIO_GUARDED_MAPPINGS; i++) {
        int free = 0;
        if (!atomic_compare_exchange_strong_explicit(&guards[i].claimed, &free, 1, memory_order_acquire, memory_order_relaxed)) continue;
        atomic_store_explicit(&guards[i].tripped, 0, memory_order_relaxed);
        atomic_store_explicit(&guards[i].end, (uintptr_t)address + length, memory_order_relaxed);
        atomic_store_explicit(&guards[i].start, (uintptr_t)address, memory_order_release);
        return i;
    }
    return -ENOSPC;
}

int cvfio_guard_tripped(int guard) {
    return atomic_load_explicit(&guards[guard].tripped, memory_order_acquire);
}

void cvfio_unguard_mapping(int guard) {
    atomic_store_explicit(&guards[guard].start, 0, memory_order_release);
    atomic_store_explicit(&guards[guard].claimed, 0, memory_order_release);
}
