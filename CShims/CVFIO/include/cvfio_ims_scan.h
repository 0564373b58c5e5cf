/*
 * The IMS status scan: which words of a status group a device wrote (ims_scan.c).
 */
#ifndef CVFIO_IMS_SCAN_H
#define CVFIO_IMS_SCAN_H

#include <stdint.h>

/* Which of the `count` (at most 64) 32-bit words at `a`, in memory a device writes, are not
 * zero: bit i for word i. Vector compares; word by word, as relaxed atomics, in a
 * ThreadSanitizer build. */
uint64_t cvfio_nonzero64(const void *a, unsigned count);

#endif
