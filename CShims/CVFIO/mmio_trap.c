// Trapped device mappings: every load and store faults into a device model (the contract is in
// cvfio_mmio_trap.h).
//
// The table is claimed and read with atomics only. The handler is installed once, with the
// first trap, and stays. It is installed with SA_NODEFER and runs the model with the
// interrupted code's mask, so a fault inside a device model (a bug) reaches the previous
// handler instead of being blocked.
//
// Untrapping must not return while a handler still uses the entry's context. A handler counts
// itself in `busy` before it reads `handler`; untrapping clears `handler` before it reads
// `busy`. Both sides are sequentially consistent, so at least one sees the other: with acquire
// and release alone each could read the old value (a store-buffer race, real on x86), and the
// model would run after untrap returned. Untrap then sleeps on `busy` as a futex until the
// handlers it counted have left.
#define _GNU_SOURCE
#include "cvfio_mmio_trap.h"
#include "cvfio_mapping_guard.h"
#include "signal_chain.h"
#include <errno.h>
#include <pthread.h>
#include <linux/futex.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static struct {
    atomic_int claimed;
    _Atomic uintptr_t start; /* 0 while not trapping */
    _Atomic uintptr_t end;
    _Atomic(cvfio_trap_handler) handler; /* NULL once untrapped: the range reads all ones */
    _Atomic(void *) context;
    atomic_int busy;    /* handlers running on this entry, a futex word; untrapping waits for none */
    atomic_int waiting; /* an untrap sleeps on `busy`: the last handler out wakes it */
} traps[CVFIO_TRAPPED_MAPPINGS];

#if defined(__x86_64__)

// A handler leaves entry `i`; the last one out wakes an untrap that sleeps on it.
static void leave(int i) {
    if (atomic_fetch_sub(&traps[i].busy, 1) == 1 && atomic_load(&traps[i].waiting))
        syscall(SYS_futex, &traps[i].busy, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static pthread_once_t installed = PTHREAD_ONCE_INIT;
static int install_error;
static struct sigaction previous;

// A decoded MOV or MOVZX with a memory operand.
struct access {
    int length; /* bytes of the instruction */
    int width;  /* bytes accessed in memory */
    int store;
    int reg;            /* the register operand (x86 numbering, REX.R applied), -1 for an immediate */
    int high_byte;      /* an 8-bit register without REX: 4-7 name AH, CH, DH, BH */
    int dest_width;     /* a load: the destination register's width */
    uint64_t immediate; /* a store of an immediate */
};

// x86 register numbers (rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8-r15) to mcontext slots.
static const int greg_slot[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
                                  REG_R8,  REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15};

// Decodes the forms the MMIO accessors compile to: MOV r/m,r (88, 89), MOV r,r/m (8A, 8B),
// MOV r/m,imm (C6 /0, C7 /0), MOVZX r,r/m8 and r/m16 (0F B6, 0F B7), with operand-size,
// segment and REX prefixes. Returns 0 when the instruction is another.
static int decode(const uint8_t *ip, struct access *out) {
    const uint8_t *p = ip;
    int opsize16 = 0, rex = 0;
    for (;; p++) {
        if (*p == 0x66) opsize16 = 1;
        else if (*p == 0x2e || *p == 0x3e || *p == 0x26 || *p == 0x36) continue;
        else break;
    }
    if ((*p & 0xf0) == 0x40) rex = *p++;
    int rex_w = (rex & 8) != 0, rex_r = (rex & 4) != 0;
    int wide = rex_w ? 8 : (opsize16 ? 2 : 4);
    memset(out, 0, sizeof *out);
    out->reg = -1;
    int imm_bytes = 0;
    uint8_t op = *p++;
    switch (op) {
    case 0x88: out->store = 1; out->width = 1; break;
    case 0x89: out->store = 1; out->width = wide; break;
    case 0x8a: out->width = 1; out->dest_width = 1; break;
    case 0x8b: out->width = wide; out->dest_width = wide; break;
    case 0xc6: out->store = 1; out->width = 1; imm_bytes = 1; break;
    case 0xc7: out->store = 1; out->width = wide; imm_bytes = wide == 2 ? 2 : 4; break;
    case 0x0f:
        op = *p++;
        if (op != 0xb6 && op != 0xb7) return 0;
        out->width = op == 0xb6 ? 1 : 2;
        out->dest_width = wide;
        break;
    default: return 0;
    }
    uint8_t modrm = *p++;
    int mod = modrm >> 6, reg = (modrm >> 3) & 7, rm = modrm & 7;
    if (mod == 3) return 0;
    if (imm_bytes) {
        if (reg != 0) return 0;
    } else {
        out->reg = reg | (rex_r ? 8 : 0);
        out->high_byte = out->width == 1 && op != 0xb6 && !rex && reg >= 4;
    }
    if (rm == 4) {
        uint8_t sib = *p++;
        if (mod == 0 && (sib & 7) == 5) p += 4;
    } else if (mod == 0 && rm == 5) {
        p += 4; // RIP-relative
    }
    if (mod == 1) p += 1;
    else if (mod == 2) p += 4;
    if (imm_bytes) {
        uint64_t v = 0;
        for (int i = 0; i < imm_bytes; i++) v |= (uint64_t)p[i] << (8 * i);
        if (imm_bytes == 4 && wide == 8 && (v & 0x80000000u)) v |= 0xffffffff00000000ull; // sign-extended
        out->immediate = v;
        p += imm_bytes;
    }
    out->length = (int)(p - ip);
    return 1;
}

static uint64_t width_mask(int width) { return width == 8 ? ~(uint64_t)0 : ((uint64_t)1 << (8 * width)) - 1; }

static uint64_t register_value(const greg_t *g, const struct access *a) {
    if (a->reg < 0) return a->immediate & width_mask(a->width);
    if (a->high_byte) return ((uint64_t)g[greg_slot[a->reg - 4]] >> 8) & 0xff;
    return (uint64_t)g[greg_slot[a->reg]] & width_mask(a->width);
}

// A load's result into its register: 32- and 64-bit writes replace the whole register (the
// former zero-extends), 8- and 16-bit ones only their part, as the CPU does.
static void set_register(greg_t *g, const struct access *a, uint64_t value) {
    value &= width_mask(a->width);
    if (a->high_byte) {
        greg_t *r = &g[greg_slot[a->reg - 4]];
        *r = (greg_t)(((uint64_t)*r & ~(uint64_t)0xff00) | value << 8);
        return;
    }
    greg_t *r = &g[greg_slot[a->reg]];
    if (a->dest_width >= 4) *r = (greg_t)value;
    else *r = (greg_t)(((uint64_t)*r & ~width_mask(a->dest_width)) | value);
}

static void say(const char *text) {
    ssize_t ignored = write(2, text, strlen(text));
    (void)ignored;
}

static void on_sigsegv(int sig, siginfo_t *info, void *context) {
    int saved = errno;
    uintptr_t a = (uintptr_t)info->si_addr;
    // A live trap's range first; failing that, a range whose trap just ended (the device was
    // released on another thread while this access ran): it reads all ones and its store goes
    // nowhere, as a retired view's would.
    int ended = -1;
    for (int i = 0; i < CVFIO_TRAPPED_MAPPINGS; i++) {
        uintptr_t start = atomic_load_explicit(&traps[i].start, memory_order_acquire);
        if (start == 0 || a < start) continue;
        uintptr_t end = atomic_load_explicit(&traps[i].end, memory_order_relaxed);
        if (a >= end) continue;
        atomic_fetch_add(&traps[i].busy, 1);
        cvfio_trap_handler handler = atomic_load(&traps[i].handler);
        void *ctx = atomic_load(&traps[i].context);
        // The entry may have been untrapped and claimed for another range since `start` was
        // read; only what it holds now counts.
        if (atomic_load(&traps[i].start) != start || a >= atomic_load(&traps[i].end)) {
            leave(i);
            continue;
        }
        if (handler == NULL) {
            leave(i);
            if (ended < 0) ended = i;
            continue;
        }
        greg_t *g = ((ucontext_t *)context)->uc_mcontext.gregs;
        struct access access;
        if (!decode((const uint8_t *)g[REG_RIP], &access)) {
            leave(i);
            say("cvfio: an access to a trapped device mapping is not a MOV or MOVZX; use cvfio_mmio.h's accessors\n");
            break;
        }
        uint64_t result = ~(uint64_t)0;
        // The model runs with the interrupted code's signal mask, not the one the handler was
        // entered with: a handler installed through an interposer can run with every signal
        // blocked (ThreadSanitizer installs its own with a full sa_mask), and a thread the
        // model starts (a Dispatch worker) would inherit that mask, SIGSEGV included, so its
        // first trapped access would end the process.
        sigset_t entry_mask;
        pthread_sigmask(SIG_SETMASK, &((ucontext_t *)context)->uc_sigmask, &entry_mask);
        int outcome = handler(ctx, a - (uintptr_t)start, access.width, access.store, access.store ? register_value(g, &access) : 0, &result);
        pthread_sigmask(SIG_SETMASK, &entry_mask, NULL);
        leave(i);
        if (outcome == CVFIO_TRAP_REVOKE) {
            // The kernel's fault path: a guarded mapping becomes all ones and the access runs
            // again there; an unguarded one gets the SIGBUS the kernel would send.
            errno = saved;
            if (cvfio_guard_revoke(info->si_addr)) return;
            signal(SIGBUS, SIG_DFL);
            raise(SIGBUS);
            return;
        }
        if (!access.store) set_register(g, &access, result);
        g[REG_RIP] += access.length;
        errno = saved;
        return;
    }
    if (ended >= 0) {
        greg_t *g = ((ucontext_t *)context)->uc_mcontext.gregs;
        struct access access;
        if (decode((const uint8_t *)g[REG_RIP], &access)) {
            if (!access.store) set_register(g, &access, ~(uint64_t)0);
            g[REG_RIP] += access.length;
            errno = saved;
            return;
        }
    }
    errno = saved;
    cvfio_pass_on(&previous, sig, info, context);
}

static void install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
    sigemptyset(&action.sa_mask);
    action.sa_sigaction = on_sigsegv;
    if (sigaction(SIGSEGV, &action, &previous) != 0) install_error = errno;
}

int cvfio_trap_supported(void) { return 1; }

int cvfio_trap_mapping(void *address, size_t length, cvfio_trap_handler handler, void *context) {
    pthread_once(&installed, install);
    if (install_error != 0) return -install_error;
    for (int i = 0; i < CVFIO_TRAPPED_MAPPINGS; i++) {
        int free = 0;
        if (!atomic_compare_exchange_strong_explicit(&traps[i].claimed, &free, 1, memory_order_acquire, memory_order_relaxed)) continue;
        // The range is withdrawn while the entry changes, and the handler is set after its
        // context: a handler that sees the new handler sees its context and range.
        atomic_store(&traps[i].start, 0);
        atomic_store(&traps[i].end, (uintptr_t)address + length);
        atomic_store(&traps[i].context, context);
        atomic_store(&traps[i].handler, handler);
        atomic_store(&traps[i].start, (uintptr_t)address);
        return i;
    }
    return -ENOSPC;
}

#else

int cvfio_trap_supported(void) { return 0; }

int cvfio_trap_mapping(void *address, size_t length, cvfio_trap_handler handler, void *context) {
    (void)address, (void)length, (void)handler, (void)context;
    return -ENOTSUP;
}

#endif

void *cvfio_untrap_mapping(int trap) {
    void *context = atomic_load_explicit(&traps[trap].context, memory_order_relaxed);
    // The range stays known, handler-less, so an access racing this call is answered rather
    // than crashing; the handler's context is the caller's again once no handler runs.
    atomic_store(&traps[trap].handler, NULL);
    atomic_store(&traps[trap].waiting, 1);
    for (int busy; (busy = atomic_load(&traps[trap].busy)) != 0;)
        syscall(SYS_futex, &traps[trap].busy, FUTEX_WAIT_PRIVATE, busy, NULL, NULL, 0);
    atomic_store(&traps[trap].waiting, 0);
    atomic_store_explicit(&traps[trap].claimed, 0, memory_order_release);
    return context;
}
