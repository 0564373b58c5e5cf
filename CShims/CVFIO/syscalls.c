// The system calls behind cvfio_syscalls.h that are not inline.
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include "cvfio_syscalls.h"

int cvfio_memfd_create(const char *name, unsigned int flags) { return memfd_create(name, flags); }

void *cvfio_mirror(void *address, size_t length) { return mremap(address, 0, length, MREMAP_MAYMOVE); }

int cvfio_punch_hole(int fd, int64_t offset, int64_t length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
}

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
