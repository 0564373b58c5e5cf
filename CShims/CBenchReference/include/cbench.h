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

/*
 * Interrupt-dispatch reference: a thread blocked in epoll_wait on an eventfd, reading it and
 * stamping the time; the caller's thread signals `samples` times, yielding until each lands.
 * Writes each signal-to-handler latency in ns to `latencies`. Returns 0, or -errno.
 */
int cbench_irq_reference(uint64_t samples, uint64_t *latencies);
#endif
