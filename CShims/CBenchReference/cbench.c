#define _GNU_SOURCE
#include "cbench.h"
#include "cvfio.h"
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

uint64_t cbench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint32_t cbench_read32_loop(const void *address, uint64_t iterations) {
    uint32_t sum = 0;
    for (uint64_t i = 0; i < iterations; i++) sum += cvfio_read32(address);
    return sum;
}

void cbench_write32_loop(void *address, uint64_t iterations) {
    for (uint64_t i = 0; i < iterations; i++) cvfio_write32(address, (uint32_t)i);
}

const uint32_t cbench_scattered_offsets[8] = {0x00, 0x04, 0x08, 0x20, 0x24, 0x60, 0x64, 0x80};

uint32_t cbench_read32_scattered_loop(const void *base, uint64_t rounds) {
    const char *b = base;
    uint32_t sum = 0;
    for (uint64_t i = 0; i < rounds; i++) {
        sum += cvfio_read32(b + 0x00);
        sum += cvfio_read32(b + 0x04);
        sum += cvfio_read32(b + 0x08);
        sum += cvfio_read32(b + 0x20);
        sum += cvfio_read32(b + 0x24);
        sum += cvfio_read32(b + 0x60);
        sum += cvfio_read32(b + 0x64);
        sum += cvfio_read32(b + 0x80);
    }
    return sum;
}

void cbench_write32_scattered_loop(void *base, uint64_t rounds) {
    char *b = base;
    for (uint64_t i = 0; i < rounds; i++) {
        cvfio_write32(b + 0x00, (uint32_t)i);
        cvfio_write32(b + 0x04, (uint32_t)i);
        cvfio_write32(b + 0x08, (uint32_t)i);
        cvfio_write32(b + 0x20, (uint32_t)i);
        cvfio_write32(b + 0x24, (uint32_t)i);
        cvfio_write32(b + 0x60, (uint32_t)i);
        cvfio_write32(b + 0x64, (uint32_t)i);
        cvfio_write32(b + 0x80, (uint32_t)i);
    }
}

struct irq_reference {
    int epoll;
    int event;
    uint64_t stamp;
    _Atomic uint64_t handled;
    _Atomic int stop;
};

static void *irq_reference_loop(void *arg) {
    struct irq_reference *r = arg;
    struct epoll_event ready[64];
    while (!atomic_load(&r->stop)) {
        int n = epoll_wait(r->epoll, ready, 64, 100);
        for (int i = 0; i < n; i++) {
            uint64_t count;
            if (read(r->event, &count, sizeof count) == sizeof count) {
                r->stamp = cbench_now_ns();
                atomic_fetch_add(&r->handled, 1);
            }
        }
    }
    return NULL;
}

int cbench_irq_reference(uint64_t samples, uint64_t *latencies) {
    struct irq_reference r = { .handled = 0, .stop = 0 };
    r.epoll = epoll_create1(EPOLL_CLOEXEC);
    r.event = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r.epoll < 0 || r.event < 0) return -errno;
    struct epoll_event ev = { .events = EPOLLIN, .data = { .u64 = 1 } };
    epoll_ctl(r.epoll, EPOLL_CTL_ADD, r.event, &ev);
    pthread_t thread;
    int rc = pthread_create(&thread, NULL, irq_reference_loop, &r);
    if (rc != 0) return -rc;
    for (uint64_t i = 0; i < samples; i++) {
        uint64_t one = 1, start = cbench_now_ns();
        if (write(r.event, &one, sizeof one) != sizeof one) break;
        while (atomic_load(&r.handled) <= i) sched_yield();
        latencies[i] = r.stamp - start;
    }
    atomic_store(&r.stop, 1);
    pthread_join(thread, NULL);
    close(r.event);
    close(r.epoll);
    return 0;
}
