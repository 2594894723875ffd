/* Old i386 calls whose arguments are not all in registers (for test_unseen_arguments.py):
   oldmmap (int $0x80 mmap 90, a PROT_EXEC anonymous mapping described in a struct),
   mmapx / mmapr (x86_64 anonymous mmap with / without PROT_EXEC), waitpid (int $0x80
   waitpid 7, which has no rusage argument), wait4 (x86_64, with a rusage).  Prints
   "OP ok" or "OP ERRNONAME". */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
struct mmap_arg_struct { uint32_t addr, len, prot, flags, fd, offset; };
static void show(const char *what, long ret) {
    printf("%s %s\n", what, ret < 0 && ret > -4096 ? strerrorname_np(-ret) : "ok");
}
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "oldmmap")) {  /* i386 mmap (90): its arguments in a struct */
            struct mmap_arg_struct *a = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
            *a = (struct mmap_arg_struct){0, 4096, PROT_READ | PROT_EXEC,
                                          MAP_PRIVATE | MAP_ANONYMOUS, (uint32_t)-1, 0};
            long ret;
            __asm__ volatile("int $0x80" : "=a"(ret) : "a"(90L), "b"((long)(uintptr_t)a)
                             : "memory");
            show("oldmmap", ret);
        } else if (!strcmp(argv[i], "mmapx") || !strcmp(argv[i], "mmapr")) {
            void *p = mmap(NULL, 4096, PROT_READ | (argv[i][4] == 'x' ? PROT_EXEC : 0),
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            show(argv[i], p == MAP_FAILED ? -errno : 0);
        } else if (!strcmp(argv[i], "wait4")) {  /* x86_64 wait4, with a rusage */
            pid_t child = fork();
            if (child == 0) _exit(0);
            struct rusage ru;
            show("wait4", wait4(child, NULL, 0, &ru) < 0 ? -errno : 0);
        } else if (!strcmp(argv[i], "waitpid")) {  /* i386 waitpid (7): no rusage */
            pid_t child = fork();
            if (child == 0) _exit(0);
            long ret;
            __asm__ volatile("int $0x80" : "=a"(ret) : "a"(7L), "b"((long)child), "c"(0L),
                             "d"(0L) : "memory");
            show("waitpid", ret < 0 ? ret : 0);
        }
    }
    return 0;
}
