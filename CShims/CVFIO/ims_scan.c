// The IMS status-group scan behind cvfio_ims_scan.h.
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include "cvfio_ims_scan.h"
#include "cvfio_mmio.h"

#if !(defined(__has_feature) && __has_feature(thread_sanitizer)) && defined(__SSE2__)
/* Bit i set when 32-bit lane i of `v` is not zero. */
static inline unsigned nonzero_lanes(__m128i v) {
    return ~(unsigned)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(v, _mm_setzero_si128()))) & 0xf;
}
#endif

uint64_t cvfio_nonzero64(const void *a, unsigned count) {
    const uint32_t *words = a;
    uint64_t mask = 0;
    unsigned i = 0;
#if !(defined(__has_feature) && __has_feature(thread_sanitizer)) && defined(__SSE2__)
    // 16 words at a time, skipped with one test when all are zero (a summary group mostly is).
    for (; i + 16 <= count; i += 16) {
        const __m128i *p = (const __m128i *)(words + i);
        __m128i v0 = _mm_loadu_si128(p), v1 = _mm_loadu_si128(p + 1), v2 = _mm_loadu_si128(p + 2), v3 = _mm_loadu_si128(p + 3);
        if (nonzero_lanes(_mm_or_si128(_mm_or_si128(v0, v1), _mm_or_si128(v2, v3))) == 0) continue;
        uint64_t m = nonzero_lanes(v0) | nonzero_lanes(v1) << 4 | nonzero_lanes(v2) << 8 | nonzero_lanes(v3) << 12;
        mask |= m << i;
    }
    for (; i + 4 <= count; i += 4) mask |= (uint64_t)nonzero_lanes(_mm_loadu_si128((const __m128i *)(words + i))) << i;
#endif
    for (; i < count; i++) mask |= (uint64_t)(cvfio_read32(words + i) != 0) << i;
    return mask;
}
