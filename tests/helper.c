/* Test helper: runs the operations named on its command line with raw syscalls and
 * prints one line per operation, "OP ARG = RET ERRNO", so tests can check what the
 * program saw.  Operations:
 *   unlink P | unlinkat P | open P (prints the file's first line) | setuid U | uid
 *   i386unlink P (int $0x80, nr 10) | i386ftruncate P LEN (int $0x80 ftruncate64, nr 194:
 *   LEN over two registers; prints the size after) | coldunlink P (P in a page not yet
 *   faulted in) | edgeopen P (path ends at a page end before PROT_NONE) | badunlink (unreadable pointer) | getppid N | threads N P (N pthreads
 *   unlink P.i) | fork P (child unlinks P) | vforkexec PROG [ARG] | loop P (rewrite P
 *   with a counter every 10 ms, forever) | ready P (create P: "I got this far")
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void report(const char *op, const char *arg, long ret) {
    printf("%s %s = %ld %d\n", op, arg, ret, ret < 0 ? errno : 0);
    fflush(stdout);
}

static void *thread_main(void *p) {
    long r = syscall(SYS_unlink, (char *)p);
    report("unlink", (char *)p, r);
    return NULL;
}

static long i386_unlink(const char *path) {
    size_t n = strlen(path) + 1;
    char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT,
                     -1, 0);
    if (low == MAP_FAILED) return -1;
    memcpy(low, path, n);
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(10L), "b"((long)(uintptr_t)low) : "memory");
    if (ret < 0) { errno = -ret; ret = -1; }
    return ret;
}

/* The path in a page of a fresh memfd mapping that nothing has touched: not in the
   process's page tables yet, so a BPF program cannot read it (it may not fault pages
   in), while the kernel's own read faults it in. */
static long cold_unlink(const char *path) {
    int fd = memfd_create("cold", 0);
    if (fd < 0 || write(fd, path, strlen(path) + 1) < 0) return -1;
    char *cold = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (cold == MAP_FAILED) return -1;
    return syscall(SYS_unlink, cold);
}

static long i386_ftruncate64(const char *path, unsigned long long length) {
    long fd = syscall(SYS_openat, AT_FDCWD, path, O_WRONLY);
    if (fd < 0) return -1;
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret)
                     : "a"(194L), "b"(fd), "c"((long)(length & 0xffffffffu)),
                       "d"((long)(length >> 32)) : "memory");
    close(fd);
    if (ret < 0) { errno = -ret; ret = -1; }
    return ret;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *op = argv[i];
        const char *arg = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(op, "unlink")) {
            report(op, arg, syscall(SYS_unlink, arg)); i++;
        } else if (!strcmp(op, "unlinkat")) {
            report(op, arg, syscall(SYS_unlinkat, AT_FDCWD, arg, 0)); i++;
        } else if (!strcmp(op, "open")) {
            long fd = syscall(SYS_openat, AT_FDCWD, arg, O_RDONLY);
            if (fd >= 0) {
                char buf[256] = {0};
                ssize_t n = read(fd, buf, sizeof buf - 1);
                close(fd);
                buf[n > 0 ? n : 0] = 0;
                buf[strcspn(buf, "\n")] = 0;
                printf("content %s\n", buf);
            }
            report(op, arg, fd); i++;
        } else if (!strcmp(op, "setuid")) {
            report(op, arg, syscall(SYS_setuid, atoi(arg))); i++;
        } else if (!strcmp(op, "uid")) {
            report(op, "", syscall(SYS_getuid));
        } else if (!strcmp(op, "coldunlink")) {
            report(op, arg, cold_unlink(arg)); i++;
        } else if (!strcmp(op, "i386unlink")) {
            report(op, arg, i386_unlink(arg)); i++;
        } else if (!strcmp(op, "i386ftruncate")) {
            long r = i386_ftruncate64(arg, strtoull(argv[i + 2], NULL, 0));
            int saved = errno;
            struct stat st;
            stat(arg, &st);
            errno = saved;
            printf("size %lld\n", (long long)st.st_size);
            report(op, arg, r); i += 2;
        } else if (!strcmp(op, "edgeopen")) {
            char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            mprotect(m + 4096, 4096, PROT_NONE);
            size_t n = strlen(arg) + 1;
            char *p = m + 4096 - n;
            memcpy(p, arg, n);
            report(op, arg, syscall(SYS_openat, AT_FDCWD, p, O_RDONLY)); i++;
        } else if (!strcmp(op, "badunlink")) {
            report(op, "", syscall(SYS_unlink, (char *)0x10));
        } else if (!strcmp(op, "getppid")) {
            long n = atol(arg), r = 0;
            for (long k = 0; k < n; k++) r = syscall(SYS_getppid);
            report(op, arg, r > 0 ? 0 : -1); i++;
        } else if (!strcmp(op, "threads")) {
            int n = atoi(arg);
            const char *prefix = argv[i + 2];
            pthread_t t[64];
            char *names[64];
            for (int k = 0; k < n; k++) {
                names[k] = malloc(strlen(prefix) + 16);
                sprintf(names[k], "%s.%d", prefix, k);
                pthread_create(&t[k], NULL, thread_main, names[k]);
            }
            for (int k = 0; k < n; k++) pthread_join(t[k], NULL);
            i += 2;
        } else if (!strcmp(op, "fork")) {
            pid_t pid = fork();
            if (pid == 0) { report("child-unlink", arg, syscall(SYS_unlink, arg)); _exit(0); }
            int st;
            waitpid(pid, &st, 0);
            report(op, arg, WIFEXITED(st) ? WEXITSTATUS(st) : -1); i++;
        } else if (!strcmp(op, "vforkexec")) {
            char *args[] = {(char *)arg, i + 2 < argc ? argv[i + 2] : NULL, NULL};
            pid_t pid = vfork();
            if (pid == 0) { execv(arg, args); _exit(127); }
            int st;
            waitpid(pid, &st, 0);
            report(op, arg, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
            i += args[1] ? 2 : 1;
        } else if (!strcmp(op, "loop")) {
            for (long k = 0;; k++) {
                char buf[32];
                int fd = open(arg, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                int n = snprintf(buf, sizeof buf, "%ld\n", k);
                if (fd >= 0) { write(fd, buf, n); close(fd); }
                struct timespec ts = {0, 10 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
        } else if (!strcmp(op, "ready")) {
            close(open(arg, O_WRONLY | O_CREAT, 0644)); i++;
        } else {
            fprintf(stderr, "unknown op %s\n", op);
            return 2;
        }
    }
    return 0;
}
