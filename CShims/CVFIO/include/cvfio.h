/*
 * CVFIO: the few things Swift cannot express over the VFIO, iommufd and eventfd
 * interfaces. Function-like ioctl macros become plain constants, variadic calls
 * get fixed signatures, and MMIO gets volatile accessors that the optimizer can
 * neither fold nor reorder.
 */
#ifndef CVFIO_H
#define CVFIO_H

#include <stdint.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <linux/vfio.h>
#if __has_include(<linux/iommufd.h>)
#include <linux/iommufd.h>
#endif

#include "cvfio_uapi_compat.h"

#define CVFIO_INLINE static inline __attribute__((always_inline))

/* ioctl request numbers, as constants Swift can import. */
enum {
    CVFIO_GET_API_VERSION = VFIO_GET_API_VERSION,
    CVFIO_CHECK_EXTENSION = VFIO_CHECK_EXTENSION,
    CVFIO_SET_IOMMU = VFIO_SET_IOMMU,
    CVFIO_GROUP_GET_STATUS = VFIO_GROUP_GET_STATUS,
    CVFIO_GROUP_SET_CONTAINER = VFIO_GROUP_SET_CONTAINER,
    CVFIO_GROUP_UNSET_CONTAINER = VFIO_GROUP_UNSET_CONTAINER,
    CVFIO_GROUP_GET_DEVICE_FD = VFIO_GROUP_GET_DEVICE_FD,
    CVFIO_DEVICE_GET_INFO = VFIO_DEVICE_GET_INFO,
    CVFIO_DEVICE_GET_REGION_INFO = VFIO_DEVICE_GET_REGION_INFO,
    CVFIO_DEVICE_GET_IRQ_INFO = VFIO_DEVICE_GET_IRQ_INFO,
    CVFIO_DEVICE_SET_IRQS = VFIO_DEVICE_SET_IRQS,
    CVFIO_DEVICE_RESET = VFIO_DEVICE_RESET,
    CVFIO_DEVICE_FEATURE = VFIO_DEVICE_FEATURE,
    CVFIO_DEVICE_BIND_IOMMUFD = VFIO_DEVICE_BIND_IOMMUFD,
    CVFIO_DEVICE_ATTACH_IOMMUFD_PT = VFIO_DEVICE_ATTACH_IOMMUFD_PT,
    CVFIO_DEVICE_DETACH_IOMMUFD_PT = VFIO_DEVICE_DETACH_IOMMUFD_PT,
    CVFIO_IOMMU_GET_INFO = VFIO_IOMMU_GET_INFO,
    CVFIO_IOMMU_MAP_DMA = VFIO_IOMMU_MAP_DMA,
    CVFIO_IOMMU_UNMAP_DMA = VFIO_IOMMU_UNMAP_DMA,
    CVFIO_IOMMU_ENABLE = VFIO_IOMMU_ENABLE,
    CVFIO_IOMMU_DISABLE = VFIO_IOMMU_DISABLE,
    CVFIO_IOMMUFD_DESTROY = IOMMU_DESTROY,
    CVFIO_IOMMUFD_IOAS_ALLOC = IOMMU_IOAS_ALLOC,
    CVFIO_IOMMUFD_IOAS_IOVA_RANGES = IOMMU_IOAS_IOVA_RANGES,
    CVFIO_IOMMUFD_IOAS_MAP = IOMMU_IOAS_MAP,
    CVFIO_IOMMUFD_IOAS_UNMAP = IOMMU_IOAS_UNMAP,
};

/* ioctl(2) with a fixed signature: the argument is a pointer or an integer. */
static inline int cvfio_ioctl(int fd, unsigned long request, unsigned long argument) {
    return ioctl(fd, request, argument);
}

/* prctl(PR_SET_PDEATHSIG): the signal this process gets when the thread that started it ends. */
static inline int cvfio_set_parent_death_signal(int signal) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0UL, 0UL, 0UL);
}

/* eventfd(2) and memfd_create(2). */
static inline int cvfio_eventfd(unsigned int initval, int flags) { return eventfd(initval, flags); }
int cvfio_memfd_create(const char *name, unsigned int flags);

/*
 * epoll(7) without the packed struct epoll_event, which Swift imports badly:
 * events and user data travel in two plain arrays.
 */
static inline int cvfio_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev = { .events = events, .data = { .u64 = data } };
    return epoll_ctl(epfd, op, fd, &ev);
}
int cvfio_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int capacity, int timeout_ms);

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

/* Which of the `count` (at most 64) 32-bit words at `a`, in memory a device writes, are not
 * zero: bit i for word i. Vector compares; word by word, as relaxed atomics, in a
 * ThreadSanitizer build. */
uint64_t cvfio_nonzero64(const void *a, unsigned count);

/* Replaces the mapping at `address` (page-aligned, `length` bytes), in place, with private
 * memory that reads all ones and drops writes (retired_mapping.c). Returns 0; 1 when writes
 * cannot be dropped here (no room, or an architecture without the fault handler), so they land
 * in the private memory instead; -errno when the replacement could not be mapped. */
int cvfio_retire_mapping(void *address, size_t length);
/* Forgets a retired mapping that starts at `address`, before it is unmapped. */
void cvfio_forget_retired(void *address);

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
