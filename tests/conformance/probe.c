/* probe: what busybox cannot show from inside a container, printed as KEY=VALUE lines.
 *
 * Built static by the conformance suite (tests/conformance/oci_conformance.py) and bind-mounted
 * read-only into the containers that need it. One subcommand per question:
 *   probe mempolicy   MPOL=<mode> NODES=<hex mask>          (get_mempolicy(2))
 *   probe ioprio      IOPRIO_CLASS=<n> IOPRIO_LEVEL=<n>       (ioprio_get(2))
 *   probe sched       SCHED_POLICY=<n> SCHED_PRIORITY=<n> NICE=<n>
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static int mempolicy(void)
{
    int mode = -1;
    unsigned long mask[16] = {0};
    if (syscall(SYS_get_mempolicy, &mode, mask, 8 * sizeof(mask), NULL, 0UL) != 0) {
        printf("MPOL_ERROR=%s\n", strerror(errno));
        return 1;
    }
    /* The mode flags (MPOL_F_STATIC_NODES...) come back or-ed into the mode. */
    printf("MPOL=%d\nNODES=%lx\n", mode, mask[0]);
    return 0;
}

static int ioprio(void)
{
    /* IOPRIO_WHO_PROCESS = 1, who = 0: the calling process. */
    long value = syscall(SYS_ioprio_get, 1, 0);
    if (value < 0) {
        printf("IOPRIO_ERROR=%s\n", strerror(errno));
        return 1;
    }
    printf("IOPRIO_CLASS=%ld\nIOPRIO_LEVEL=%ld\n", value >> 13, value & 0x1fff);
    return 0;
}

static int sched(void)
{
    struct sched_param param = {0};
    int policy = sched_getscheduler(0);
    if (policy < 0 || sched_getparam(0, &param) != 0) {
        printf("SCHED_ERROR=%s\n", strerror(errno));
        return 1;
    }
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    printf("SCHED_POLICY=%d\nSCHED_PRIORITY=%d\nNICE=%d\n", policy & 0xff, param.sched_priority,
           nice);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "mempolicy") == 0)
        return mempolicy();
    if (argc == 2 && strcmp(argv[1], "ioprio") == 0)
        return ioprio();
    if (argc == 2 && strcmp(argv[1], "sched") == 0)
        return sched();
    fprintf(stderr, "usage: probe mempolicy|ioprio|sched\n");
    return 2;
}
