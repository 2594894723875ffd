/* Tries to go around sctrace with a seccomp listener of its own: a filter answering unlink
 * with SECCOMP_RET_USER_NOTIF (which takes precedence over sctrace's RET_TRACE) and a
 * supervisor thread letting the call run (SECCOMP_USER_NOTIF_FLAG_CONTINUE). Unlinks argv[1]
 * and prints "unlink: RET [ERRNO]"; a refused listener prints "seccomp: ERRNO", exits 3. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int listener;

static void *supervise(void *arg)
{
    (void)arg;
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
        return NULL;
    resp.id = req.id;
    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    return NULL;
}

int main(int argc, char **argv)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_unlink, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    if (argc != 2)
        return 2;
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                            SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (listener < 0) {
        printf("seccomp: %s\n", strerrorname_np(errno));
        return 3;
    }
    pthread_t t;
    pthread_create(&t, NULL, supervise, NULL);
    long r = syscall(SYS_unlink, argv[1]);
    printf("unlink: %ld %s\n", r, r ? strerrorname_np(errno) : "");
    return 0;
}
