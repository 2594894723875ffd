#define _GNU_SOURCE
/* Unlinks argv[1] through io_uring (IORING_OP_UNLINKAT), with no unlink system call:
 * prints "setup: <errno name>" and exits 3 when io_uring_setup is refused, else
 * "unlinkat: <result>" (0 or -errno) and exits 0. No liburing: raw system calls. */
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    if (argc != 2)
        return 2;
    int ring = (int)syscall(__NR_io_uring_setup, 4, &p);
    if (ring < 0) {
        printf("setup: %s\n", strerrorname_np(errno));
        return 3;
    }
    size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (cq_size > sq_size)
        sq_size = cq_size;  /* one mapping for both rings (IORING_FEAT_SINGLE_MMAP) */
    char *sq = mmap(NULL, sq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
                    IORING_OFF_SQ_RING);
    struct io_uring_sqe *sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe),
                                     PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
                                     IORING_OFF_SQES);
    if (sq == MAP_FAILED || sqes == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    memset(&sqes[0], 0, sizeof sqes[0]);
    sqes[0].opcode = IORING_OP_UNLINKAT;
    sqes[0].fd = AT_FDCWD;
    sqes[0].addr = (unsigned long)argv[1];
    unsigned *tail = (unsigned *)(sq + p.sq_off.tail);
    unsigned *array = (unsigned *)(sq + p.sq_off.array);
    array[*tail & *(unsigned *)(sq + p.sq_off.ring_mask)] = 0;
    __atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
    if (syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) {
        perror("io_uring_enter");
        return 2;
    }
    struct io_uring_cqe *cqes = (struct io_uring_cqe *)(sq + p.cq_off.cqes);
    unsigned head = *(unsigned *)(sq + p.cq_off.head);
    printf("unlinkat: %d\n", cqes[head & *(unsigned *)(sq + p.cq_off.ring_mask)].res);
    return 0;
}
