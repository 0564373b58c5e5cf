/*
 * System calls Swift cannot make directly: variadic ones with fixed signatures, and epoll
 * without its packed structure. Only the `SystemCalls` seam (HostSystemCalls, and the mock
 * kernel's host pass-through) calls them; the rest of the framework goes through the seam.
 */
#ifndef CVFIO_SYSCALLS_H
#define CVFIO_SYSCALLS_H

#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>

/* ioctl(2) with a fixed signature: the argument is a pointer or an integer. */
static inline int cvfio_ioctl(int fd, unsigned long request, unsigned long argument) {
    return ioctl(fd, request, argument);
}

/* prctl(PR_SET_PDEATHSIG): the signal this process gets when the thread that started it ends. */
static inline int cvfio_set_parent_death_signal(int signal) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0UL, 0UL, 0UL);
}

/* eventfd(2) and memfd_create(2). */
static inline int cvfio_eventfd(unsigned int initval, int flags) { return eventfd(initval, flags); }
int cvfio_memfd_create(const char *name, unsigned int flags);
/* memfd_create's flags, which <sys/mman.h> defines only under _GNU_SOURCE. */
#define CVFIO_MFD_CLOEXEC 0x1U
#define CVFIO_MFD_HUGETLB 0x4U

/* mremap(address, 0, length, MREMAP_MAYMOVE): a second mapping of the same pages of a shared
 * mapping (MAP_FAILED, errno EINVAL, for a private one). */
void *cvfio_mirror(void *address, size_t length);

/* fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE): frees a file's range, which then reads as zeroes. */
int cvfio_punch_hole(int fd, int64_t offset, int64_t length);

/*
 * epoll(7) without the packed struct epoll_event, which Swift imports badly:
 * events and user data travel in two plain arrays.
 */
static inline int cvfio_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev = { .events = events, .data = { .u64 = data } };
    return epoll_ctl(epfd, op, fd, &ev);
}
int cvfio_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int capacity, int timeout_ms);

#endif
