/*
 * Plain C baselines that VFIOKit's benchmarks run in the same process, over the same memory
 * and the same kernel objects, so the ratios compare only the framework's own cost.
 */
#ifndef CBENCH_H
#define CBENCH_H
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t cbench_now_ns(void);

/* `iterations` volatile 32-bit reads of `address`; returns their sum so none is dropped. */
uint32_t cbench_read32_loop(const void *address, uint64_t iterations);

/* `iterations` volatile 32-bit writes of the loop counter to `address`. */
void cbench_write32_loop(void *address, uint64_t iterations);

/* The scattered pattern: eight 32-bit registers at these offsets from a base, in this order. */
extern const uint32_t cbench_scattered_offsets[8];

/* `rounds` passes of volatile reads of the eight registers; returns their sum. */
uint32_t cbench_read32_scattered_loop(const void *base, uint64_t rounds);

/* `rounds` passes of volatile writes of the round number to the eight registers. */
void cbench_write32_scattered_loop(void *base, uint64_t rounds);

/*
 * Interrupt-dispatch reference: a thread blocked in epoll_wait on an eventfd, reading it and
 * stamping the time; the caller's thread signals `samples` times, yielding until each lands.
 * Writes each signal-to-handler latency in ns to `latencies`. Returns 0, or -errno.
 */
int cbench_irq_reference(uint64_t samples, uint64_t *latencies);
#endif
