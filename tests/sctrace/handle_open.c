/* Opens argv[1] for writing (O_TRUNC) by file handle, with no path at the open:
 * name_to_handle_at, then open_by_handle_at (root only: CAP_DAC_READ_SEARCH). Prints
 * "open_by_handle_at: OK" or its errno name; exits 3 when the handle cannot be made. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    struct file_handle *handle = malloc(sizeof *handle + MAX_HANDLE_SZ);
    handle->handle_bytes = MAX_HANDLE_SZ;
    int mount_id;
    if (name_to_handle_at(AT_FDCWD, argv[1], handle, &mount_id, 0)) {
        printf("name_to_handle_at: %s\n", strerrorname_np(errno));
        return 3;
    }
    int mount_fd = open("/", O_RDONLY | O_DIRECTORY);
    int fd = open_by_handle_at(mount_fd, handle, O_WRONLY | O_TRUNC);
    printf("open_by_handle_at: %s\n", fd < 0 ? strerrorname_np(errno) : "OK");
    return 0;
}
