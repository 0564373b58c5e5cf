/*
 * Guarded device mappings (mapping_guard.c), DPDK's answer to a revoked BAR: when the kernel
 * disables the memory behind a vfio mapping (a reset in progress, a device removed), an access
 * through it raises SIGBUS. The process-wide SIGBUS handler installed with the first guard
 * recognises a guarded range, replaces the whole range in place with private anonymous memory
 * that reads all ones, marks the guard tripped, and lets the access run again there: a read
 * returns all ones, a write lands in private memory, and the process lives on. A SIGBUS
 * anywhere else goes to the handler that was there before (the Swift backtracer's, a
 * sanitizer's, or the default action).
 */
#ifndef CVFIO_MAPPING_GUARD_H
#define CVFIO_MAPPING_GUARD_H

#include <stddef.h>

/* How many ranges can be guarded at once. */
#define CVFIO_GUARDED_MAPPINGS 1024

/* Guards the `length` bytes mapped at `address`. Returns the guard (>= 0); -ENOSPC when
 * CVFIO_GUARDED_MAPPINGS ranges are guarded already; -errno when the handler cannot be
 * installed. Any thread; lock-free. */
int cvfio_guard_mapping(void *address, size_t length);

/* 1 once a SIGBUS replaced the guarded range with all-ones memory, else 0. */
int cvfio_guard_tripped(int guard);

/* What the SIGBUS handler does for a fault at `address`: when a guarded range holds it, the
 * range becomes all-ones memory, the guard is tripped, and 1 is returned; else 0. For a
 * handler that stands for the kernel's fault path (cvfio_mmio_trap.h). Async-signal-safe. */
int cvfio_guard_revoke(const void *address);

/* Ends a guard. Call it before the range is unmapped, when nothing accesses it any more. */
void cvfio_unguard_mapping(int guard);

#endif
