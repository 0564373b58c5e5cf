/* CUring's io_uring half: liburing behind an opaque ring (see curing.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <liburing.h>
#include "curing.h"

struct curing_ring { struct io_uring ring; };

struct curing_ring *curing_create(unsigned entries, unsigned flags, int *error) {
    struct curing_ring *r = calloc(1, sizeof *r);
    if (!r) { *error = -ENOMEM; return NULL; }
    int rc = io_uring_queue_init(entries, &r->ring, flags);
    if (rc < 0) { free(r); *error = rc; return NULL; }
    *error = 0;
    return r;
}

void curing_destroy(struct curing_ring *r) {
    io_uring_queue_exit(&r->ring);
    free(r);
}

int curing_fd(struct curing_ring *r) { return r->ring.ring_fd; }

int curing_prep_ublk_ctrl(struct curing_ring *r, int fd, uint32_t op, const struct cublk_ctrl_cmd *cmd, uint64_t user_data) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) return -EBUSY;
    memset(sqe, 0, 128);
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = fd;
    sqe->cmd_op = op;
    sqe->user_data = user_data;
    memcpy(sqe->cmd, cmd, sizeof *cmd);
    return 0;
}

int curing_prep_ublk_io(struct curing_ring *r, int fd, uint32_t op, uint16_t q, uint16_t tag, int32_t result, uint64_t addr) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) return -EBUSY;
    memset(sqe, 0, 64);
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = fd;
    sqe->cmd_op = op;
    sqe->user_data = tag;
    struct cublk_io_cmd *io = (struct cublk_io_cmd *)sqe->cmd;
    io->q_id = q;
    io->tag = tag;
    io->result = result;
    io->addr = addr;
    return 0;
}

int curing_submit(struct curing_ring *r) { return io_uring_submit(&r->ring); }

int curing_submit_and_wait(struct curing_ring *r) { return io_uring_submit_and_wait(&r->ring, 1); }

int curing_peek(struct curing_ring *r, uint64_t *user_data, int32_t *res) {
    struct io_uring_cqe *cqe = NULL;
    if (io_uring_peek_cqe(&r->ring, &cqe) != 0 || !cqe) return 0;
    *user_data = cqe->user_data;
    *res = cqe->res;
    io_uring_cqe_seen(&r->ring, cqe);
    return 1;
}
