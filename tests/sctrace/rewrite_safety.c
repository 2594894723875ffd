/* Programs for tests/sctrace/test_rewrite_safety.py: where a REWRITE copy may go, and
 * what the caller's registers hold after a rewritten call.  Operations (one per run):
 *   heapaltstack P   SIGUSR1 handler on a malloc'd signal stack opens P; a 4 KB "victim"
 *                    buffer malloc'd just before it must stay all 'V'
 *   smallstack P     the same on an mmap'd 8 KB signal stack over a PROT_NONE guard page,
 *                    the handler using 2 KB of it before the open
 *   asmopenat P      openat(AT_FDCWD, P, O_WRONLY|O_CREAT, 0644) in inline asm: were
 *                    rdi, rsi, rdx, r10 preserved?
 *   i386open P       open(P, O_WRONLY|O_CREAT, 0644) with int $0x80 from this 64-bit
 *                    process; counts changed bytes of a pattern left below the stack pointer
 * Each prints "open = RET ERRNO" and one line of its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *path;
static volatile long result;
static volatile int result_errno;

static void on_usr1(int sig) {
    (void)sig;
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    result = fd;
    result_errno = fd < 0 ? errno : 0;
    if (fd >= 0) close(fd);
}

static void on_usr1_deep(int sig) {
    volatile char pad[2048];  /* a handler that has used some of its stack already */
    for (size_t i = 0; i < sizeof pad; i += 64) pad[i] = 1;
    on_usr1(sig);
    __asm__ volatile("" : : "r"(pad) : "memory");
}

static void on_altstack(void *stack, size_t size, void (*handler)(int)) {
    stack_t ss = {.ss_sp = stack, .ss_size = size, .ss_flags = 0};
    if (sigaltstack(&ss, NULL)) { perror("sigaltstack"); exit(2); }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    printf("open = %ld %d\n", result, result_errno);
}

static uintptr_t pattern;  /* where fill() left its pattern, below the caller's stack pointer */
#define PATTERN 16384

__attribute__((noinline)) static void fill(void) {
    char buf[PATTERN];
    memset(buf, 'P', sizeof buf);
    pattern = (uintptr_t)buf;
    __asm__ volatile("" : : "r"(buf) : "memory");
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s OP PATH\n", argv[0]); return 2; }
    const char *op = argv[1];
    path = argv[2];
    if (!strcmp(op, "heapaltstack")) {
        size_t size = sysconf(_SC_MINSIGSTKSZ) + 2048;
        char *victim = malloc(4096);
        char *stack = malloc(size);
        memset(victim, 'V', 4096);
        on_altstack(stack, size, on_usr1);
        int bad = 0;
        for (int i = 0; i < 4096; i++) bad += victim[i] != 'V';
        printf("victim bytes corrupted: %d\n", bad);
    } else if (!strcmp(op, "smallstack")) {
        long page = sysconf(_SC_PAGESIZE);
        char *base = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                          -1, 0);
        if (base == MAP_FAILED) { perror("mmap"); return 2; }
        memset(base, 'V', page);                        /* victim */
        mprotect(base + page, page, PROT_NONE);         /* guard */
        on_altstack(base + 2 * page, 2 * page, on_usr1_deep);
        int bad = 0;
        for (long i = 0; i < page; i++) bad += base[i] != 'V';
        printf("victim bytes corrupted: %d\n", bad);
    } else if (!strcmp(op, "asmopenat")) {
        long rdi = AT_FDCWD, rdx = O_WRONLY | O_CREAT, ret, r10_after;
        const char *rsi = path;
        __asm__ volatile("mov %[mode], %%r10\n\tsyscall\n\tmov %%r10, %[r10]"
                         : "=a"(ret), "+D"(rdi), "+S"(rsi), "+d"(rdx), [r10] "=&r"(r10_after)
                         : "a"(257L), [mode] "r"(0644L) : "rcx", "r10", "r11", "memory");
        printf("open = %ld %d\n", ret < 0 ? -1 : ret, ret < 0 ? (int)-ret : 0);
        printf("same rdi=%d rsi=%d rdx=%d r10=%d\n", rdi == AT_FDCWD, rsi == path,
               rdx == (O_WRONLY | O_CREAT), r10_after == 0644);
    } else if (!strcmp(op, "i386open")) {
        size_t n = strlen(path) + 1;
        char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
        if (low == MAP_FAILED || n > 4096) return 2;
        memcpy(low, path, n);
        fill();
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret)
                         : "a"(5L), "b"((long)(uintptr_t)low), "c"((long)(O_WRONLY | O_CREAT)),
                           "d"(0644L) : "memory");
        int bad = 0;
        for (int i = 0; i < PATTERN; i++) bad += ((volatile char *)pattern)[i] != 'P';
        printf("open = %ld %d\n", ret < 0 ? -1 : ret, ret < 0 ? (int)-ret : 0);
        printf("pattern bytes changed: %d\n", bad);
    } else {
        fprintf(stderr, "unknown op %s\n", op);
        return 2;
    }
    return 0;
}
