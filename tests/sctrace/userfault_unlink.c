/* unlink(P) with P in a page a userfaultfd watches: the page is missing until the kernel's
 * read of the name faults, and a handler thread, started just before, then copies P in.
 * argv: PATH kernel|user ("user": UFFD_USER_MODE_ONLY, so the kernel's own read of the
 * name fails with EFAULT instead of waiting for the handler). Prints "unlink: OK" or
 * "unlink: ERRNO"; a refused userfaultfd prints "userfaultfd: ERRNO" and exits 3. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int uffd;
static char *region;
static long page;
static const char *path;

static void *handler(void *unused)
{
    (void)unused;
    struct uffd_msg msg;
    char *src = aligned_alloc(page, page);
    memset(src, 0, page);
    strcpy(src, path);
    if (read(uffd, &msg, sizeof msg) != sizeof msg)
        return NULL;  /* (closed at exit: no fault ever came) */
    struct uffdio_copy copy = {.dst = (unsigned long)region, .src = (unsigned long)src,
                               .len = page};
    ioctl(uffd, UFFDIO_COPY, &copy);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    path = argv[1];
    page = sysconf(_SC_PAGESIZE);
    int flags = O_CLOEXEC | (strcmp(argv[2], "user") ? 0 : UFFD_USER_MODE_ONLY);
    uffd = (int)syscall(SYS_userfaultfd, flags);
    if (uffd < 0) {
        printf("userfaultfd: %s\n", strerrorname_np(errno));
        return 3;
    }
    struct uffdio_api api = {.api = UFFD_API};
    region = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct uffdio_register reg = {.range = {(unsigned long)region, page},
                                  .mode = UFFDIO_REGISTER_MODE_MISSING};
    if (ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg)) {
        perror("userfaultfd setup");
        return 2;
    }
    pthread_t thread;
    pthread_create(&thread, NULL, handler, NULL);
    long r = syscall(SYS_unlink, region);
    printf("unlink: %s\n", r ? strerrorname_np(errno) : "OK");
    fflush(stdout);
    _exit(0);
}
