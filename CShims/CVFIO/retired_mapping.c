// Retired BAR mappings: what a stale view of a closed or removed device touches.
//
// A retired range is private anonymous memory, all ones and read-only, so a read through a
// stale view reads all ones, as a PCI read of a vanished device does. A write faults; the
// SIGSEGV handler below recognises the range, lets that one instruction write (the page made
// writable for that one instruction, single-stepped with the trap flag), then puts the page
// back to all ones and read-only. So the write is dropped: it reaches neither a device
// nor memory in use, and a later read still sees all ones. A fault anywhere else goes to the
// handler that was there before (the Swift runtime's backtracer, a sanitizer's, or the default).
// x86-64 only: elsewhere the range stays writable private memory, so a stale write is kept
// there (it still reaches no device and no memory in use).
#define _GNU_SOURCE
#include "cvfio.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__x86_64__)
#define RETIRED_RANGES 1024
#define TRAP_FLAG 0x100 /* x86 EFLAGS.TF */

static struct {
    _Atomic uintptr_t start; /* 0: free */
    _Atomic uintptr_t end;
} retired[RETIRED_RANGES];
static pthread_mutex_t registry = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t installed = PTHREAD_ONCE_INIT;
static struct sigaction previous_segv, previous_trap;

// The pages this thread made writable for the instruction being stepped (an unaligned write
// may straddle two).
static __thread __attribute__((tls_model("initial-exec"))) uintptr_t stepping[2];
static __thread __attribute__((tls_model("initial-exec"))) int stepping_count;
// Held while a trap handler puts pages back. Only that code makes a page read-only again, so
// its own writes never fault (a handler may run with every signal blocked, as under
// ThreadSanitizer, and a fault there would end the process).
static atomic_flag restoring = ATOMIC_FLAG_INIT;
// Read once at installation, so the handlers make no library call to learn it.
static uintptr_t page_bytes;

static int is_retired(uintptr_t a) {
    for (int i = 0; i < RETIRED_RANGES; i++) {
        uintptr_t start = atomic_load_explicit(&retired[i].start, memory_order_acquire);
        if (start != 0 && start <= a && a < atomic_load_explicit(&retired[i].end, memory_order_relaxed)) return 1;
    }
    return 0;
}

// Word by word as relaxed atomics: other threads may read the page meanwhile.
static void make_all_ones(uintptr_t page) {
    uint64_t *w = (uint64_t *)page;
    for (uintptr_t i = 0; i < page_bytes / 8; i++) __atomic_store_n(&w[i], ~(uint64_t)0, __ATOMIC_RELAXED);
}

// Hands a signal that is not ours to whoever had it before.
static void pass_on(const struct sigaction *before, int sig, siginfo_t *info, void *context) {
    if (before->sa_flags & SA_SIGINFO) {
        before->sa_sigaction(sig, info, context);
    } else if (before->sa_handler != SIG_IGN && before->sa_handler != SIG_DFL) {
        before->sa_handler(sig);
    } else {
        // The default action: returning re-runs the instruction, which faults again and ends
        // the process as if no handler had been installed.
        signal(sig, SIG_DFL);
    }
}

static void on_segv(int sig, siginfo_t *info, void *context) {
    uintptr_t a = (uintptr_t)info->si_addr;
    if (info->si_code != SEGV_ACCERR || !is_retired(a)) {
        pass_on(&previous_segv, sig, info, context);
        return;
    }
    uintptr_t page = a & ~(page_bytes - 1);
    ucontext_t *uc = context;
    if (stepping_count < 2) stepping[stepping_count++] = page;
    mprotect((void *)page, page_bytes, PROT_READ | PROT_WRITE);
    uc->uc_mcontext.gregs[REG_EFL] |= TRAP_FLAG;
}

// The stepped write has happened: the page goes back to all ones and read-only.
static void on_trap(int sig, siginfo_t *info, void *context) {
    if (stepping_count == 0) {
        pass_on(&previous_trap, sig, info, context);
        return;
    }
    while (atomic_flag_test_and_set_explicit(&restoring, memory_order_acquire)) {}
    for (int i = 0; i < stepping_count; i++) {
        mprotect((void *)stepping[i], page_bytes, PROT_READ | PROT_WRITE);
        make_all_ones(stepping[i]);
        mprotect((void *)stepping[i], page_bytes, PROT_READ);
    }
    atomic_flag_clear_explicit(&restoring, memory_order_release);
    stepping_count = 0;
    ((ucontext_t *)context)->uc_mcontext.gregs[REG_EFL] &= ~TRAP_FLAG;
}

static void install(void) {
    page_bytes = (uintptr_t)sysconf(_SC_PAGESIZE);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&action.sa_mask);
    action.sa_sigaction = on_segv;
    sigaction(SIGSEGV, &action, &previous_segv);
    action.sa_sigaction = on_trap;
    sigaction(SIGTRAP, &action, &previous_trap);
}

#endif

int cvfio_retire_mapping(void *address, size_t length) {
    void *p = mmap(address, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED) return -errno;
    memset(p, 0xff, length);
#if defined(__x86_64__)
    pthread_once(&installed, install);
    pthread_mutex_lock(&registry);
    int slot = -1;
    for (int i = 0; i < RETIRED_RANGES && slot < 0; i++) {
        if (atomic_load_explicit(&retired[i].start, memory_order_relaxed) == 0) slot = i;
    }
    if (slot >= 0) {
        atomic_store_explicit(&retired[slot].end, (uintptr_t)p + length, memory_order_relaxed);
        atomic_store_explicit(&retired[slot].start, (uintptr_t)p, memory_order_release);
    }
    pthread_mutex_unlock(&registry);
    if (slot < 0) return 1;
    if (mprotect(p, length, PROT_READ) != 0) {
        cvfio_forget_retired(p);
        return 1;
    }
    return 0;
#else
    return 1;
#endif
}

void cvfio_forget_retired(void *address) {
#if defined(__x86_64__)
    pthread_mutex_lock(&registry);
    for (int i = 0; i < RETIRED_RANGES; i++) {
        if (atomic_load_explicit(&retired[i].start, memory_order_relaxed) == (uintptr_t)address) {
            atomic_store_explicit(&retired[i].start, 0, memory_order_release);
        }
    }
    pthread_mutex_unlock(&registry);
#endif
}
