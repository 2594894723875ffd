/* openat2(open(DIR), NAME, {O_WRONLY | O_TRUNC, resolve = RESOLVE}): prints "openat2: OK" or
 * "openat2: ERRNO" (its name). RESOLVE_IN_ROOT / RESOLVE_BENEATH make DIR the root of the
 * walk: an absolute NAME, `..` and absolute symlinks stay below it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    int dir = open(argv[1], O_DIRECTORY);
    struct open_how how = {.flags = O_WRONLY | O_TRUNC, .resolve = strtoull(argv[3], NULL, 0)};
    long fd = syscall(SYS_openat2, dir, argv[2], &how, sizeof how);
    printf("openat2: %s\n", fd < 0 ? strerrorname_np(errno) : "OK");
    return 0;
}
