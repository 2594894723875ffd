/* Tries to go around sctrace with an untraced child: clone(CLONE_UNTRACED) makes a child
 * the tracer does not follow; the child asks its parent to trace it (PTRACE_TRACEME), so
 * the calls sctrace's seccomp filter sends to a tracer reach the parent, which lets them
 * run. The child unlinks argv[1] and prints "child unlink: RET [ERRNO]"; a refused clone
 * prints "clone: ERRNO" and exits 3. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
static char stack[1 << 16];
static const char *victim;
static int child(void *arg)
{
    (void)arg;
    ptrace(PTRACE_TRACEME, 0, 0, 0);
    raise(SIGSTOP);
    long r = syscall(SYS_unlink, victim);
    printf("child unlink: %ld %s\n", r, r ? strerrorname_np(errno) : "");
    fflush(stdout);
    _exit(0);
}
int main(int argc, char **argv)
{
    victim = argv[1];
    pid_t pid = clone(child, stack + sizeof stack, CLONE_UNTRACED | SIGCHLD, NULL);
    if (pid < 0) {
        printf("clone: %s\n", strerrorname_np(errno));
        return 3;
    }
    int st;
    waitpid(pid, &st, 0);
    ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESECCOMP);
    ptrace(PTRACE_CONT, pid, 0, 0);
    for (;;) {
        waitpid(pid, &st, 0);
        if (WIFEXITED(st) || WIFSIGNALED(st))
            break;
        ptrace(PTRACE_CONT, pid, 0, 0);
    }
    return 0;
}
