// ThreadSanitizer builds only: makes Synchronization.Mutex's contended hand-over visible.
//
// Mutex's uncontended lock and unlock are atomics inlined into instrumented code, which
// ThreadSanitizer sees. Under contention the lock is taken in `_lockSlow` (a spin, then
// FUTEX_LOCK_PI) and given in `_unlockSlow` (FUTEX_UNLOCK_PI), both in libswiftSynchronization.so,
// which is not instrumented, so ThreadSanitizer sees no happens-before between the two holders
// (the reproduction is .ci/sanitizers/mutex-handoff.swift). These definitions take the place of
// the library's (the executable's symbols come first), call the library's own, and tell
// ThreadSanitizer of the acquire and the release on the mutex's word.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>

void __tsan_acquire(void *addr);
void __tsan_release(void *addr);

// Swift's calling convention: `self` (the handle's address) travels in the context register.
#define SWIFTCALL __attribute__((swiftcall))
#define SELF __attribute__((swift_context))
#define LOCK_SLOW "$s15Synchronization12_MutexHandleV9_lockSlowyys6UInt32VF"
#define UNLOCK_SLOW "$s15Synchronization12_MutexHandleV11_unlockSlowyyF"
#define TRY_LOCK_SLOW "$s15Synchronization12_MutexHandleV12_tryLockSlowSbyF"

static SWIFTCALL void (*library_lock_slow)(uint32_t, SELF void *);
static SWIFTCALL void (*library_unlock_slow)(SELF void *);
static SWIFTCALL bool (*library_try_lock_slow)(SELF void *);

// Resolved before any thread exists.
__attribute__((constructor)) static void resolve_mutex_slow_paths(void) {
    library_lock_slow = (SWIFTCALL void (*)(uint32_t, SELF void *))dlsym(RTLD_NEXT, LOCK_SLOW);
    library_unlock_slow = (SWIFTCALL void (*)(SELF void *))dlsym(RTLD_NEXT, UNLOCK_SLOW);
    library_try_lock_slow = (SWIFTCALL bool (*)(SELF void *))dlsym(RTLD_NEXT, TRY_LOCK_SLOW);
}

SWIFTCALL void cvfio_tsan_lock_slow(uint32_t owner, SELF void *handle) __asm__(LOCK_SLOW);
SWIFTCALL void cvfio_tsan_lock_slow(uint32_t owner, SELF void *handle) {
    library_lock_slow(owner, handle);
    __tsan_acquire(handle);
}

SWIFTCALL void cvfio_tsan_unlock_slow(SELF void *handle) __asm__(UNLOCK_SLOW);
SWIFTCALL void cvfio_tsan_unlock_slow(SELF void *handle) {
    __tsan_release(handle);
    library_unlock_slow(handle);
}

SWIFTCALL bool cvfio_tsan_try_lock_slow(SELF void *handle) __asm__(TRY_LOCK_SLOW);
SWIFTCALL bool cvfio_tsan_try_lock_slow(SELF void *handle) {
    bool locked = library_try_lock_slow(handle);
    if (locked) __tsan_acquire(handle);
    return locked;
}
#endif
#endif
