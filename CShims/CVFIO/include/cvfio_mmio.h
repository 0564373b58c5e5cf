/*
 * Volatile MMIO accessors and barriers: each call is exactly the access or fence it names,
 * which the optimizer can neither fold nor reorder.
 */
#ifndef CVFIO_MMIO_H
#define CVFIO_MMIO_H

#include <stdint.h>

#define CVFIO_INLINE static inline __attribute__((always_inline))

/* Volatile MMIO: each call is exactly one access of its width, like the kernel's readl and
 * writel. The address must be aligned to the width. On x86-64 each is one MOV in inline
 * assembly: no sanitizer instruments it (device memory is not memory ThreadSanitizer can
 * model), and an access that faults (a trapped register BAR of the mock) faults in this MOV,
 * not inside a sanitizer's runtime, whose state a signal handler must not re-enter. Elsewhere,
 * relaxed atomics on volatile memory (READ_ONCE and WRITE_ONCE). */
#if defined(__x86_64__)
#define CVFIO_MMIO_READ(bits, suffix)                                                             \
    CVFIO_INLINE uint##bits##_t cvfio_read##bits(const void *a) {                                 \
        uint##bits##_t v;                                                                         \
        __asm__ __volatile__("mov" suffix " %1, %0" : "=q"(v) : "m"(*(const volatile uint##bits##_t *)a)); \
        return v;                                                                                 \
    }
#define CVFIO_MMIO_WRITE(bits, suffix)                                                            \
    CVFIO_INLINE void cvfio_write##bits(void *a, uint##bits##_t v) {                              \
        __asm__ __volatile__("mov" suffix " %1, %0" : "=m"(*(volatile uint##bits##_t *)a) : "q"(v)); \
    }
#else
#define CVFIO_MMIO_READ(bits, suffix)                                                             \
    CVFIO_INLINE uint##bits##_t cvfio_read##bits(const void *a) {                                 \
        return __atomic_load_n((const volatile uint##bits##_t *)a, __ATOMIC_RELAXED);             \
    }
#define CVFIO_MMIO_WRITE(bits, suffix)                                                            \
    CVFIO_INLINE void cvfio_write##bits(void *a, uint##bits##_t v) {                              \
        __atomic_store_n((volatile uint##bits##_t *)a, v, __ATOMIC_RELAXED);                      \
    }
#endif
CVFIO_MMIO_READ(8, "b")
CVFIO_MMIO_READ(16, "w")
CVFIO_MMIO_READ(32, "l")
CVFIO_MMIO_READ(64, "q")
CVFIO_MMIO_WRITE(8, "b")
CVFIO_MMIO_WRITE(16, "w")
CVFIO_MMIO_WRITE(32, "l")
CVFIO_MMIO_WRITE(64, "q")

/* Reads the 32-bit word at `a` and leaves 0 there, as one atomic exchange: a full barrier, so
 * what is read next was written no earlier than the word was emptied. */
CVFIO_INLINE uint32_t cvfio_take32(void *a) { return __atomic_exchange_n((volatile uint32_t *)a, 0, __ATOMIC_SEQ_CST); }

/* Barriers: full, read (loads before later loads), write (stores before later stores). Each is
 * the x86-64 fence or arm64 DSB named, elsewhere a full barrier. */
#if defined(__x86_64__)
#define CVFIO_BARRIER(x86_64, arm64) __asm__ __volatile__(x86_64 ::: "memory")
#elif defined(__aarch64__)
#define CVFIO_BARRIER(x86_64, arm64) __asm__ __volatile__(arm64 ::: "memory")
#else
#define CVFIO_BARRIER(x86_64, arm64) __sync_synchronize()
#endif
CVFIO_INLINE void cvfio_mb(void) { CVFIO_BARRIER("mfence", "dsb sy"); }
CVFIO_INLINE void cvfio_rmb(void) { CVFIO_BARRIER("lfence", "dsb ld"); }
CVFIO_INLINE void cvfio_wmb(void) { CVFIO_BARRIER("sfence", "dsb st"); }

#endif
