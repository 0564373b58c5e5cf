/*
 * Trapped device mappings (mmio_trap.c), for a simulated device whose registers must see every
 * access: a range mapped with no access at all, whose loads and stores fault (SIGSEGV) into a
 * handler that performs them on the device model instead, the way an MMIO exit reaches a
 * hypervisor's device model. The handler decodes the faulting instruction (x86-64 MOV and
 * MOVZX, the forms cvfio_mmio.h's accessors compile to), calls `handler` with the offset in
 * the range, the width and, for a store, the value; a load's register gets what it returns,
 * and the instruction is skipped. A SIGSEGV anywhere else goes to the handler that was there
 * before (the Swift backtracer's, a sanitizer's, or the default action).
 */
#ifndef CVFIO_MMIO_TRAP_H
#define CVFIO_MMIO_TRAP_H

#include <stddef.h>
#include <stdint.h>

/* How many ranges can be trapped at once. */
#define CVFIO_TRAPPED_MAPPINGS 256

/* What a handler says about an access. */
enum {
    CVFIO_TRAP_DONE = 0,   /* performed: a load's register takes the returned value */
    CVFIO_TRAP_REVOKE = 1, /* the memory is disabled: treat the access as vfio-pci's SIGBUS */
};

/* Performs one access of `width` (1, 2, 4 or 8) bytes at `offset`; for a store `value` holds
 * what is stored. Sets `*result` to the value loaded (loads) and returns CVFIO_TRAP_DONE or
 * CVFIO_TRAP_REVOKE. Runs on the faulting thread, in its signal handler, with the signal mask
 * the faulting code had (not the handler's, which an interposer may have filled). */
typedef int (*cvfio_trap_handler)(void *context, size_t offset, int width, int store, uint64_t value, uint64_t *result);

/* 1 when this architecture's loads and stores can be decoded (x86-64), else 0. */
int cvfio_trap_supported(void);

/* Traps the `length` bytes at `address` (mapped PROT_NONE by the caller). Returns the trap
 * (>= 0); -ENOTSUP where unsupported; -ENOSPC when CVFIO_TRAPPED_MAPPINGS ranges are trapped;
 * -errno when the handler cannot be installed. Any thread; lock-free. */
int cvfio_trap_mapping(void *address, size_t length, cvfio_trap_handler handler, void *context);

/* Ends a trap and returns its context once no handler runs on it; call it before the range
 * is unmapped. An access that races it reads all ones and its store goes nowhere. */
void *cvfio_untrap_mapping(int trap);

#endif
