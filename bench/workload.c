/* Workloads for bench/sctrace.py, with raw syscalls so that libc cannot swap the call
 * numbers.  Exit status 0 only if every call did what the bench expects:
 *   calls N        N x (getppid, stat "/", openat+close "/dev/null"): no unlink at all
 *   churn N PATH   N x (create PATH, close, unlink PATH); every unlink succeeds
 *   deny N PATH    N x unlink PATH; every unlink fails with EPERM
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s calls N | churn N PATH | deny N PATH\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    long n = atol(argv[2]);
    const char *path = argc > 3 ? argv[3] : "";
    long bad = 0;
    struct stat st;
    for (long i = 0; i < n; i++) {
        if (!strcmp(mode, "calls")) {
            syscall(SYS_getppid);
            bad += syscall(SYS_stat, "/", &st) != 0;
            long fd = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY);
            bad += fd < 0 || syscall(SYS_close, fd) != 0;
        } else if (!strcmp(mode, "churn")) {
            long fd = syscall(SYS_openat, AT_FDCWD, path, O_CREAT | O_WRONLY, 0600);
            bad += fd < 0 || syscall(SYS_close, fd) != 0;
            bad += syscall(SYS_unlink, path) != 0;
        } else if (!strcmp(mode, "deny")) {
            bad += syscall(SYS_unlink, path) != -1 || errno != EPERM;
        } else {
            fprintf(stderr, "unknown mode %s\n", mode);
            return 2;
        }
    }
    if (bad) {
        fprintf(stderr, "%s: %ld of %ld iterations went wrong\n", mode, bad, n);
        return 1;
    }
    return 0;
}
