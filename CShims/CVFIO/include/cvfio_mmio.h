/*
 * Volatile MMIO accessors and barriers: each call is exactly the access or fence it names,
 * which the optimizer can neither fold nor reorder.
 */
#ifndef CVFIO_MMIO_H
#define CVFIO_MMIO_H

#include <stdint.h>

#define CVFIO_INLINE static inline __attribute__((always_inline))

/* Volatile MMIO: each call is exactly one access of its width (relaxed atomics on volatile
 * memory: the same single load or store, and what ThreadSanitizer models for memory a device
 * shares with its driver, like the kernel's READ_ONCE and WRITE_ONCE). The address must be
 * aligned to the width. */
CVFIO_INLINE uint8_t cvfio_read8(const void *a) { return __atomic_load_n((const volatile uint8_t *)a, __ATOMIC_RELAXED); }
CVFIO_INLINE uint16_t cvfio_read16(const void *a) { return __atomic_load_n((const volatile uint16_t *)a, __ATOMIC_RELAXED); }
CVFIO_INLINE uint32_t cvfio_read32(const void *a) { return __atomic_load_n((const volatile uint32_t *)a, __ATOMIC_RELAXED); }
CVFIO_INLINE uint64_t cvfio_read64(const void *a) { return __atomic_load_n((const volatile uint64_t *)a, __ATOMIC_RELAXED); }
CVFIO_INLINE void cvfio_write8(void *a, uint8_t v) { __atomic_store_n((volatile uint8_t *)a, v, __ATOMIC_RELAXED); }
CVFIO_INLINE void cvfio_write16(void *a, uint16_t v) { __atomic_store_n((volatile uint16_t *)a, v, __ATOMIC_RELAXED); }
CVFIO_INLINE void cvfio_write32(void *a, uint32_t v) { __atomic_store_n((volatile uint32_t *)a, v, __ATOMIC_RELAXED); }
CVFIO_INLINE void cvfio_write64(void *a, uint64_t v) { __atomic_store_n((volatile uint64_t *)a, v, __ATOMIC_RELAXED); }

/* Reads the 32-bit word at `a` and leaves 0 there, as one atomic exchange: a full barrier, so
 * what is read next was written no earlier than the word was emptied. */
CVFIO_INLINE uint32_t cvfio_take32(void *a) { return __atomic_exchange_n((volatile uint32_t *)a, 0, __ATOMIC_SEQ_CST); }

/* Barriers: full, read (loads before later loads), write (stores before later stores). */
CVFIO_INLINE void cvfio_mb(void) {
#if defined(__x86_64__)
    __asm__ __volatile__("mfence" ::: "memory");
#elif defined(__aarch64__)
    __asm__ __volatile__("dsb sy" ::: "memory");
#else
    __sync_synchronize();
#endif
}
CVFIO_INLINE void cvfio_rmb(void) {
#if defined(__x86_64__)
    __asm__ __volatile__("lfence" ::: "memory");
#elif defined(__aarch64__)
    __asm__ __volatile__("dsb ld" ::: "memory");
#else
    __sync_synchronize();
#endif
}
CVFIO_INLINE void cvfio_wmb(void) {
#if defined(__x86_64__)
    __asm__ __volatile__("sfence" ::: "memory");
#elif defined(__aarch64__)
    __asm__ __volatile__("dsb st" ::: "memory");
#else
    __sync_synchronize();
#endif
}

#endif
