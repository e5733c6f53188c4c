/*
 * pyoci-exec: the last program a container-side pyoci process runs before the user's.
 *
 * Why it exists (runc CVE-2019-5736): until it execs the user's program, every container-side
 * pyoci process *is* the host's Python interpreter. If that process execs a file of the
 * container's, the kernel resolves `#!/proc/self/exe` (or a `/proc/self/exe` opened by the
 * container's dynamic loader) to the host interpreter, which the container could then open
 * for writing. pyoci therefore never execs the user's program from Python: it execs this
 * helper from a sealed memfd (pyoci/linux/exechelper.py), so that at the final execve
 * /proc/self/exe is a sealed, unwritable copy of this program, and the container never gets
 * a handle on a host executable.
 *
 * It also does what is left of `create` after READY: wait on exec.fifo until `start`, so the
 * process waiting in a `created` container is this small program, not an interpreter.
 *
 *   pyoci-exec FIFO_FD SECCOMP INIT STATUS PATH ARG0 [ARG...]  (environment: the user process's)
 *
 * FIFO_FD is "-" or the number of an O_PATH fd on exec.fifo: reopen it for writing through
 * /proc/self/fd (blocks until `start` opens it for reading), write "0", close it. SECCOMP is
 * "-" or "FD:FLAGS": an fd holding a compiled seccomp program (struct sock_filter[], as
 * libseccomp exports it) to load with seccomp(2) and those filter flags as the very last step
 * (with no_new_privs: the filter then only has to allow execve). INIT is "-" or "init": stay
 * as the container's PID 1, fork the program and reap (`run_init`). STATUS is "-" or the fd
 * of `exec`'s socket to its parent: "EXEC" is sent on it right before the final execve,
 * which closes it (it is made close-on-exec then); an error goes there as "FAILED <line>"
 * instead of to stderr. So the parent takes its EOF for a started program only after "EXEC"
 * (a process killed before has sent none). Then execve PATH with ARG0... and the environment
 * as given. Errors go to stderr as one `pyoci:` line and end in the exit codes a shell uses
 * (127 not found, 126 not executable).
 *
 * No libc: a few raw syscalls keep the binary a few KB (it is copied into a memfd for every
 * container) and its resident size tiny while it waits.
 */

typedef unsigned long size_t;
typedef long ssize_t;

#if defined(__x86_64__)
#define NR_rt_sigprocmask 14
#define NR_clone 56
#define NR_wait4 61
#define NR_kill 62
#define NR_rt_sigtimedwait 128
#define NR_read 0
#define NR_seccomp 317
#define NR_write 1
#define NR_close 3
#define NR_rt_sigaction 13
#define NR_execve 59
#define NR_prctl 157
#define NR_exit_group 231
#define NR_openat 257
#define NR_fcntl 72
static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
#elif defined(__aarch64__)
#define NR_rt_sigprocmask 135
#define NR_clone 220
#define NR_wait4 260
#define NR_kill 129
#define NR_rt_sigtimedwait 137
#define NR_read 63
#define NR_seccomp 277
#define NR_write 64
#define NR_close 57
#define NR_rt_sigaction 134
#define NR_execve 221
#define NR_exit_group 94
#define NR_openat 56
#define NR_fcntl 25
#define NR_prctl 167
static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;
	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	return x0;
}
#else
#error "pyoci-exec: add this architecture's syscall numbers and calling convention"
#endif

#define AT_FDCWD -100
#define O_WRONLY 01
#define O_CLOEXEC 02000000
#define PR_SET_DUMPABLE 4
#define PR_SET_NAME 15
#define SA_RESTORER 0x04000000
#define SIGHUP 1
#define SIGINT 2
#define SIGKILL 9
#define SIGTERM 15
#define SIGCHLD 17
#define SIGSTOP 19
#define SIG_BLOCK 0
#define SIG_SETMASK 2
#define WNOHANG 1
#define EINTR 4
#define SECCOMP_SET_MODE_FILTER 1
#define F_SETFD 2
#define FD_CLOEXEC 1

/* STATUS (see above), or -1. An error line is gathered in `line` and written once, on
 * `leave`: to STATUS as one message (a SOCK_SEQPACKET keeps it whole), else to stderr. */
static long status_fd = -1;
static char line[600] = "FAILED ";
static volatile size_t line_len = 7;

static void put(const char *s)
{
	for (; *s && line_len < sizeof(line); s++)
		line[line_len++] = *s;
}

static __attribute__((noreturn)) void leave(int code)
{
	if (line_len > 7) {
		if (status_fd >= 0)
			sys6(NR_write, status_fd, (long)line, (long)line_len, 0, 0, 0);
		else
			sys6(NR_write, 2, (long)line + 7, (long)line_len - 7, 0, 0, 0);
	}
	for (;;)
		sys6(NR_exit_group, code, 0, 0, 0, 0, 0);
}

static const char *reason(long err)
{
	switch (err) {
	case 2: return "no such file or directory";
	case 13: return "permission denied";
	case 8: return "exec format error";
	case 20: return "not a directory";
	case 40: return "too many levels of symbolic links";
	case 26: return "text file busy";
	case 7: return "argument list too long";
	case 12: return "cannot allocate memory";
	case 1: return "operation not permitted";
	case 6: return "no such device or address";
	default: return "error";
	}
}

static __attribute__((noreturn)) void fail(const char *what, const char *name, long err, int code)
{
	put("pyoci: ");
	put(what);
	put(": \"");
	put(name);
	put("\": ");
	put(reason(err));
	put("\n");
	leave(code);
}

/* Until `start`, TERM/INT/HUP end the waiting container, as they end runc's: PID 1 of a pid
 * namespace without a handler never sees them. The handler never returns, so the restorer
 * the x86-64 ABI insists on is never used. execve resets handled signals to their defaults. */
static void on_signal(int sig)
{
	leave(128 + sig);
}

struct kernel_sigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	unsigned long mask;
};

static void exit_on_signals(void)
{
	static const int sigs[] = {SIGHUP, SIGINT, SIGTERM};
	struct kernel_sigaction sa = {on_signal, SA_RESTORER, (void (*)(void))on_signal, 0};
	for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sys6(NR_rt_sigaction, sigs[i], (long)&sa, 0, sizeof(sa.mask), 0, 0);
}

/* A decimal number ending at `end` (0 or ':'); -1 if malformed. */
static long parse_num(const char *s, const char **rest)
{
	long n = 0;
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (n > 100000000)
			return -1;
		n = n * 10 + (*s - '0');
	}
	*rest = s;
	return n;
}

static long parse_fd(const char *s)
{
	const char *rest;
	long n = parse_num(s, &rest);
	return n >= 0 && *rest == 0 ? n : -1;
}

struct sock_fprog {
	unsigned short len;
	void *filter;
};

/* BPF_MAXINSNS instructions of 8 bytes: the largest program the kernel accepts. */
static unsigned long long program[4096];

static void load_seccomp(const char *arg)
{
	const char *rest;
	long fd = parse_num(arg, &rest), flags, got, total = 0;
	struct sock_fprog prog;

	if (fd < 0 || *rest != ':' || (flags = parse_num(rest + 1, &rest)) < 0 || *rest) {
		put("pyoci: pyoci-exec: SECCOMP must be - or FD:FLAGS\n");
		leave(2);
	}
	do {
		got = sys6(NR_read, fd, (long)program + total, sizeof(program) - total, 0, 0, 0);
		if (got < 0 && got != -EINTR)
			fail("linux.seccomp", "reading the filter", -got, 1);
		if (got > 0)
			total += got;
	} while (got != 0 && total < (long)sizeof(program));
	sys6(NR_close, fd, 0, 0, 0, 0, 0);
	if (total == 0 || total % 8) {
		put("pyoci: linux.seccomp: the compiled filter is malformed\n");
		leave(1);
	}
	prog.len = total / 8;
	prog.filter = program;
	got = sys6(NR_seccomp, SECCOMP_SET_MODE_FILTER, flags, (long)&prog, 0, 0, 0);
	if (got < 0)
		fail("linux.seccomp", "loading the filter", -got, 1);
}

static void wait_for_start(long fifo_fd)
{
	char path[40] = "/proc/self/fd/";
	char digits[20];
	int n = 0, at = 14;
	long v = fifo_fd, fd;

	do {
		digits[n++] = '0' + v % 10;
		v /= 10;
	} while (v);
	while (n)
		path[at++] = digits[--n];
	path[at] = 0;
	exit_on_signals();
	do
		fd = sys6(NR_openat, AT_FDCWD, (long)path, O_WRONLY | O_CLOEXEC, 0, 0, 0);
	while (fd == -EINTR);
	if (fd < 0)
		fail("exec.fifo", path, -fd, 1);
	if (sys6(NR_write, fd, (long)"0", 1, 0, 0, 0) != 1)
		fail("exec.fifo", path, 5, 1);
	sys6(NR_close, fd, 0, 0, 0, 0, 0);
	sys6(NR_close, fifo_fd, 0, 0, 0, 0, 0);
}

static int is_dash(const char *s)
{
	return s[0] == '-' && s[1] == 0;
}

/* The exec itself: the child of the init, or this process. */
static __attribute__((noreturn)) void exec_user(char **argv, char **envp, const char *seccomp)
{
	long err;

	if (!is_dash(seccomp))
		load_seccomp(seccomp);
	if (status_fd >= 0) {
		sys6(NR_write, status_fd, (long)"EXEC", 4, 0, 0, 0);
		sys6(NR_fcntl, status_fd, F_SETFD, FD_CLOEXEC, 0, 0, 0);
	}
	err = -sys6(NR_execve, (long)argv[0], (long)(argv + 1), (long)envp, 0, 0, 0);
	fail("exec", argv[1], err, err == 13 ? 126 : 127);
}

/* --init: PID 1 of the container, which a normal program is not fit to be (signals without a
 * handler never reach it; every orphan becomes its child). Fork the user's program, forward
 * every catchable signal to it, reap every zombie, and exit with its status (128+N for a
 * signal N). Signals are blocked and taken with rt_sigtimedwait, so none is lost while
 * reaping. Being this small program, PID 1 is no host interpreter the container could reach
 * through /proc/1/exe. */
static __attribute__((noreturn)) void run_init(char **argv, char **envp, const char *seccomp)
{
	unsigned long all = ~0UL & ~((1UL << (SIGKILL - 1)) | (1UL << (SIGSTOP - 1))), old = 0;
	unsigned char info[128];
	long child, pid;
	int status, code = -1;

	sys6(NR_rt_sigprocmask, SIG_BLOCK, (long)&all, (long)&old, sizeof(all), 0, 0);
	child = sys6(NR_clone, SIGCHLD, 0, 0, 0, 0, 0);
	if (child < 0)
		fail("init", "fork", -child, 1);
	if (child == 0) {
		sys6(NR_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, sizeof(old), 0, 0);
		exec_user(argv, envp, seccomp);
	}
	while (code < 0) {
		long sig = sys6(NR_rt_sigtimedwait, (long)&all, (long)info, 0, sizeof(all), 0, 0);
		if (sig < 0)
			continue; /* EINTR */
		if (sig != SIGCHLD) {
			sys6(NR_kill, child, sig, 0, 0, 0, 0);
			continue;
		}
		while ((pid = sys6(NR_wait4, -1, (long)&status, WNOHANG, 0, 0, 0)) > 0) {
			if (pid != child)
				continue;
			if ((status & 0x7f) == 0)
				code = (status >> 8) & 0xff; /* exited */
			else
				code = 128 + (status & 0x7f); /* killed by a signal */
		}
	}
	leave(code);
}

int helper_main(long argc, char **argv, char **envp)
{
	if (argc < 7) {
		put("pyoci: pyoci-exec: usage: pyoci-exec FIFO_FD SECCOMP INIT STATUS PATH ARG0 "
		    "[ARG...]\n");
		leave(2);
	}
	if (!is_dash(argv[4])) {
		/* Holding exec's socket: no /proc/PID/fd for the container (the memfd is not
		 * readable, which already made us so unless we hold a DAC capability). */
		sys6(NR_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0, 0);
		status_fd = parse_fd(argv[4]);
		if (status_fd < 0) {
			put("pyoci: pyoci-exec: STATUS must be - or an fd number\n");
			leave(2);
		}
	}
	if (!is_dash(argv[1])) {
		long fifo_fd = parse_fd(argv[1]);
		if (fifo_fd < 0) {
			put("pyoci: pyoci-exec: FIFO_FD must be - or an fd number\n");
			leave(2);
		}
		/* Holding the fifo until start: keep /proc/PID/fd closed to the container. */
		sys6(NR_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0, 0);
		sys6(NR_prctl, PR_SET_NAME, (long)"pyoci:[2:INIT]", 0, 0, 0, 0);
		wait_for_start(fifo_fd);
	}
	if (!is_dash(argv[3])) {
		/* Not the waiting init's name: `state` takes a live "pyoci:[2:INIT]" for one that
		 * still waits on exec.fifo. */
		sys6(NR_prctl, PR_SET_NAME, (long)"pyoci:[init]", 0, 0, 0, 0);
		run_init(argv + 5, envp, argv[2]);
	}
	exec_user(argv + 5, envp, argv[2]);
}

/* The entry point: the kernel leaves argc, argv and envp on the stack. */
#if defined(__x86_64__)
__asm__(".text\n.global _start\n_start:\n"
	"xor %rbp, %rbp\n"
	"mov (%rsp), %rdi\n"
	"lea 8(%rsp), %rsi\n"
	"lea 16(%rsp,%rdi,8), %rdx\n"
	"and $-16, %rsp\n"
	"call helper_main\n"
	"hlt\n");
#elif defined(__aarch64__)
__asm__(".text\n.global _start\n_start:\n"
	"ldr x0, [sp]\n"
	"add x1, sp, #8\n"
	"add x2, x1, x0, lsl #3\n"
	"add x2, x2, #8\n"
	"and sp, x1, #-16\n"
	"bl helper_main\n"
	"brk #0\n");
#endif
