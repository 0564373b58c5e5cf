#define _GNU_SOURCE
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <sys/mman.h>
#include "cvfio.h"

int cvfio_memfd_create(const char *name, unsigned int flags) { return memfd_create(name, flags); }

int cvfio_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int capacity, int timeout_ms) {
    struct epoll_event ready[64];
    if (capacity > 64) capacity = 64;
    int n = epoll_wait(epfd, ready, capacity, timeout_ms);
    for (int i = 0; i < n; i++) {
        events[i] = ready[i].events;
        data[i] = ready[i].data.u64;
    }
    return n;
}

uint64_t cvfio_nonzero64(const void *a, unsigned count) {
    const uint32_t *words = a;
    uint64_t mask = 0;
    unsigned i = 0;
#if !(defined(__has_feature) && __has_feature(thread_sanitizer)) && defined(__SSE2__)
    __m128i zero = _mm_setzero_si128();
    for (; i + 4 <= count; i += 4) {
        int zeros = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(words + i)), zero)));
        mask |= (uint64_t)(~zeros & 0xf) << i;
    }
#endif
    for (; i < count; i++) mask |= (uint64_t)(cvfio_read32(words + i) != 0) << i;
    return mask;
}
