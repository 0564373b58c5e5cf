/*
 * CVFIO: the few things Swift cannot express, one header per job.
 *
 *   cvfio_uapi.h            VFIO and iommufd ioctl numbers and structures
 *   cvfio_syscalls.h        fixed-signature ioctl, prctl, eventfd, memfd and epoll (syscalls.c);
 *                           reached only through the `SystemCalls` seam
 *   cvfio_mmio.h            volatile MMIO accessors and barriers
 *   cvfio_ims_scan.h        the IMS status-group scan (ims_scan.c)
 *   cvfio_mapping_guard.h   SIGBUS on a revoked device mapping makes it stale (mapping_guard.c)
 *   cvfio_mmio_trap.h       a mapping whose every access faults into a device model (mmio_trap.c)
 *
 * tsan_mutex.c, built only under ThreadSanitizer, has no header: it replaces the
 * Synchronization library's contended Mutex paths so ThreadSanitizer sees their hand-over.
 */
#ifndef CVFIO_H
#define CVFIO_H

#include "cvfio_uapi.h"
#include "cvfio_syscalls.h"
#include "cvfio_mmio.h"
#include "cvfio_ims_scan.h"
#include "cvfio_mapping_guard.h"
#include "cvfio_mmio_trap.h"

#endif
