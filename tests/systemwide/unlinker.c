/* Calls unlink and unlinkat directly (no libc path rewriting), then prints its pid. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    /* argv: classic-path modern-path */
    long a = syscall(SYS_unlink, argv[1]);
    long b = syscall(SYS_unlinkat, AT_FDCWD, argv[2], 0);
    printf("%d %ld %ld\n", getpid(), a, b);
    return argc == 3 ? 0 : 2;
}
