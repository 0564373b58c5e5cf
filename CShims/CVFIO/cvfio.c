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

uint32_t cvfio_nonzero8(const void *a) {
#if defined(__has_feature) && __has_feature(thread_sanitizer)
    uint32_t mask = 0;
    for (int i = 0; i < 8; i++) mask |= (cvfio_read32((const uint32_t *)a + i) != 0) << i;
    return mask;
#elif defined(__SSE2__)
    __m128i zero = _mm_setzero_si128();
    int low = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(_mm_load_si128((const __m128i *)a), zero)));
    int high = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(_mm_load_si128((const __m128i *)a + 1), zero)));
    return ~(uint32_t)(low | high << 4) & 0xff;
#else
    uint32_t mask = 0;
    for (int i = 0; i < 8; i++) mask |= (((const uint32_t *)a)[i] != 0) << i;
    return mask;
#endif
}
