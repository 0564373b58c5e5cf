/*
 * CUring: io_uring through liburing, and the kernel's ublk interface (include/uapi/linux/
 * ublk_cmd.h), for the ublk export. The ublk structures and command numbers are declared here
 * under CUBLK_ names, whatever the build host's kernel headers carry (Debian 12's lack the
 * ioctl-encoded commands, GET_FEATURES and the later flags), so one build serves every kernel
 * from 6.0 on; what a running kernel accepts is asked at run time (GET_FEATURES). The ring is
 * opaque here: liburing's own copy of the io_uring uapi would clash with the system's
 * <linux/io_uring.h> that Glibc's module brings, so only curing.c sees liburing.
 */
#ifndef CURING_H
#define CURING_H

#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>

#define CURING_INLINE static inline __attribute__((always_inline))

/* ---- The ublk uapi: layouts as the kernel defines them. ---- */

/* The control command, carried in a 128-byte SQE's command area. */
struct cublk_ctrl_cmd {
    uint32_t dev_id;
    uint16_t queue_id;      /* (uint16_t)-1 when the command is not for a queue */
    uint16_t len;           /* bytes at addr */
    uint64_t addr;
    uint64_t data[2];
};

struct cublk_dev_info {
    uint16_t nr_hw_queues;
    uint16_t queue_depth;
    uint16_t state;
    uint16_t pad0;
    uint32_t max_io_buf_bytes;
    uint32_t dev_id;
    int32_t ublksrv_pid;
    uint32_t pad1;
    uint64_t flags;
    uint64_t ublksrv_flags;
    uint32_t owner_uid;
    uint32_t owner_gid;
    uint64_t reserved1;
    uint64_t reserved2;
};

/* One request, in the per-queue descriptor array the kernel writes and the server maps. */
struct cublk_io_desc {
    uint32_t op_flags;      /* op: bits 0-7; flags: bits 8-31 */
    uint32_t nr_sectors;
    uint64_t start_sector;
    uint64_t addr;
};

/* The I/O command, carried in a 64-byte SQE's command area. */
struct cublk_io_cmd {
    uint16_t q_id;
    uint16_t tag;
    int32_t result;
    uint64_t addr;
};

struct cublk_param_basic {
    uint32_t attrs;
    uint8_t logical_bs_shift;
    uint8_t physical_bs_shift;
    uint8_t io_opt_shift;
    uint8_t io_min_shift;
    uint32_t max_sectors;
    uint32_t chunk_sectors;
    uint64_t dev_sectors;
    uint64_t virt_boundary_mask;
};

struct cublk_param_discard {
    uint32_t discard_alignment;
    uint32_t discard_granularity;
    uint32_t max_discard_sectors;
    uint32_t max_write_zeroes_sectors;
    uint16_t max_discard_segments;
    uint16_t reserved0;
};

/* The parameters this server sets: basic and discard. len (CUBLK_PARAMS_LEN, 60) says how much
 * the kernel reads; the struct's tail padding is not part of it. */
struct cublk_params {
    uint32_t len;
    uint32_t types;
    struct cublk_param_basic basic;
    struct cublk_param_discard discard;
};

static const uint32_t CUBLK_PARAMS_LEN = __builtin_offsetof(struct cublk_params, discard) + sizeof(struct cublk_param_discard);

static const uint32_t CUBLK_CMD_GET_DEV_INFO = 0x02;
static const uint32_t CUBLK_CMD_ADD_DEV = 0x04;
static const uint32_t CUBLK_CMD_DEL_DEV = 0x05;
static const uint32_t CUBLK_CMD_START_DEV = 0x06;
static const uint32_t CUBLK_CMD_STOP_DEV = 0x07;
static const uint32_t CUBLK_CMD_SET_PARAMS = 0x08;
static const uint32_t CUBLK_CMD_GET_FEATURES = 0x13;
static const uint32_t CUBLK_IO_FETCH_REQ = 0x20;
static const uint32_t CUBLK_IO_COMMIT_AND_FETCH_REQ = 0x21;

/* The ioctl-encoded command numbers (_IOC type 'u'), as the kernel checks them. */
static const uint32_t CUBLK_U_CMD_GET_DEV_INFO = _IOR('u', CUBLK_CMD_GET_DEV_INFO, struct cublk_ctrl_cmd);
static const uint32_t CUBLK_U_CMD_ADD_DEV = _IOWR('u', CUBLK_CMD_ADD_DEV, struct cublk_ctrl_cmd);
static const uint32_t CUBLK_U_CMD_DEL_DEV = _IOWR('u', CUBLK_CMD_DEL_DEV, struct cublk_ctrl_cmd);
static const uint32_t CUBLK_U_CMD_START_DEV = _IOWR('u', CUBLK_CMD_START_DEV, struct cublk_ctrl_cmd);
static const uint32_t CUBLK_U_CMD_STOP_DEV = _IOWR('u', CUBLK_CMD_STOP_DEV, struct cublk_ctrl_cmd);
static const uint32_t CUBLK_U_CMD_SET_PARAMS = _IOWR('u', CUBLK_CMD_SET_PARAMS, struct cublk_ctrl_cmd);
static const uint32_t CUBLK_U_CMD_GET_FEATURES = _IOR('u', CUBLK_CMD_GET_FEATURES, struct cublk_ctrl_cmd);
static const uint32_t CUBLK_U_IO_FETCH_REQ = _IOWR('u', CUBLK_IO_FETCH_REQ, struct cublk_io_cmd);
static const uint32_t CUBLK_U_IO_COMMIT_AND_FETCH_REQ = _IOWR('u', CUBLK_IO_COMMIT_AND_FETCH_REQ, struct cublk_io_cmd);

_Static_assert(sizeof(struct cublk_ctrl_cmd) == 32, "ublksrv_ctrl_cmd is 32 bytes");
_Static_assert(sizeof(struct cublk_dev_info) == 64, "ublksrv_ctrl_dev_info is 64 bytes");
_Static_assert(sizeof(struct cublk_io_desc) == 24, "ublksrv_io_desc is 24 bytes");
_Static_assert(sizeof(struct cublk_io_cmd) == 16, "ublksrv_io_cmd is 16 bytes");
_Static_assert(__builtin_offsetof(struct cublk_params, discard) + sizeof(struct cublk_param_discard) == 60,
               "ublk_params through the discard part is 60 bytes");

/* Constants of the interface. */
static const uint32_t CUBLK_IO_RES_OK = 0;
static const uint32_t CUBLK_MAX_QUEUE_DEPTH = 4096;
static const uint32_t CUBLK_PARAM_TYPE_BASIC = 1 << 0;
static const uint32_t CUBLK_PARAM_TYPE_DISCARD = 1 << 1;
static const uint32_t CUBLK_ATTR_READ_ONLY = 1 << 0;
static const uint32_t CUBLK_ATTR_VOLATILE_CACHE = 1 << 2;
static const uint32_t CUBLK_ATTR_FUA = 1 << 3;
static const uint32_t CUBLK_IO_OP_READ = 0;
static const uint32_t CUBLK_IO_OP_WRITE = 1;
static const uint32_t CUBLK_IO_OP_FLUSH = 2;
static const uint32_t CUBLK_IO_OP_DISCARD = 3;
static const uint32_t CUBLK_IO_OP_WRITE_SAME = 4;
static const uint32_t CUBLK_IO_OP_WRITE_ZEROES = 5;
static const uint32_t CUBLK_IO_F_FUA = 1 << 13;

/* Feature flags (ublksrv_ctrl_dev_info.flags and GET_FEATURES). */
static const uint64_t CUBLK_F_NEED_GET_DATA = 1ULL << 2;
static const uint64_t CUBLK_F_CMD_IOCTL_ENCODE = 1ULL << 6;
static const uint64_t CUBLK_F_USER_COPY = 1ULL << 7;

/* The descriptor area of queue q in /dev/ublkcN: offset and length for mmap. */
CURING_INLINE uint64_t cublk_descriptor_offset(unsigned q) {
    /* Each queue's area is sized for the largest depth, rounded up to pages. */
    uint64_t max = ((uint64_t)CUBLK_MAX_QUEUE_DEPTH * sizeof(struct cublk_io_desc) + 4095) & ~4095ULL;
    return (uint64_t)q * max;
}
CURING_INLINE uint64_t cublk_descriptor_length(unsigned depth) {
    return ((uint64_t)depth * sizeof(struct cublk_io_desc) + 4095) & ~4095ULL;
}

/* ---- io_uring, through liburing (curing.c). ---- */

/* A ring; its only owner is whoever made it with curing_create. */
struct curing_ring;

static const uint32_t CURING_SETUP_SQE128 = 1U << 10;

/* A ring of `entries` SQEs with IORING_SETUP_ `flags`; NULL with *error set to -errno. */
struct curing_ring *curing_create(unsigned entries, unsigned flags, int *error);
/* Tears the ring down (cancelling what is in flight) and frees it. */
void curing_destroy(struct curing_ring *ring);
/* The ring's file: readable (epoll) while completions wait in its CQ. */
int curing_fd(struct curing_ring *ring);

/* Prepares a control command (ring made with CURING_SETUP_SQE128); 0, or -EBUSY (SQ full). */
int curing_prep_ublk_ctrl(struct curing_ring *ring, int fd, uint32_t op, const struct cublk_ctrl_cmd *cmd, uint64_t user_data);
/* Prepares an I/O command (FETCH_REQ, COMMIT_AND_FETCH_REQ) for `tag`, user_data = tag; 0, or -EBUSY. */
int curing_prep_ublk_io(struct curing_ring *ring, int fd, uint32_t op, uint16_t q, uint16_t tag, int32_t result, uint64_t addr);

/* Submits what was prepared: the number submitted, or -errno. */
int curing_submit(struct curing_ring *ring);
/* Submits and waits until at least one completion is there: >= 0, or -errno (-EINTR too). */
int curing_submit_and_wait(struct curing_ring *ring);
/* Takes the next completion without waiting: 1 with *user_data and *res set, or 0. */
int curing_peek(struct curing_ring *ring, uint64_t *user_data, int32_t *res);

#endif
