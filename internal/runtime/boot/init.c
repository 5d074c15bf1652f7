// A container's init: see boot.go for the contract.
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/if.h>
#include <linux/keyctl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "boot.h"

extern char **environ;

static int env_fd(const char *list, int i) {
	for (; i > 0 && list != NULL; i--)
		if ((list = strchr(list, ',')) != NULL)
			list++;
	if (list == NULL || *list == '-')
		return -1;
	return atoi(list);
}

/* Hooks. */

/* hook_io feeds the state to a hook's stdin and keeps its stderr while it
 * runs; the state is written as the pipe takes it, so a hook that does not
 * read it cannot block init past its timeout. */
struct hook_io {
	int in, err;
	const char *state;
	size_t left;
	char *out;
	size_t size, got;
};

static void hook_stderr(struct hook_io *io) {
	char buf[512];
	ssize_t r = read(io->err, buf, sizeof buf);
	if (r <= 0) {
		close(io->err);
		io->err = -1;
	} else if (io->got < io->size - 1) {
		size_t k = (size_t)r < io->size - 1 - io->got ? (size_t)r : io->size - 1 - io->got;
		memcpy(io->out + io->got, buf, k);
		io->got += k;
	}
}

static void hook_stdin(struct hook_io *io) {
	ssize_t w = write(io->in, io->state, io->left);
	if (w > 0) {
		io->state += w;
		io->left -= (size_t)w;
	}
	if (io->left == 0 || (w < 0 && errno != EAGAIN && errno != EINTR)) {
		close(io->in); /* EPIPE: the hook does not read it */
		io->in = -1;
	}
}

/* wait_hook returns 0 when the hook exited, 1 when it outlived its
 * timeout (it is killed), -1 on an error. */
static int wait_hook(pid_t pid, struct hook_io *io, uint64_t timeout, int *status) {
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -1;
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	long long limit = timeout > (uint64_t)INT_MAX / 1000 ? INT_MAX : (long long)timeout * 1000;
	for (;;) {
		struct pollfd fds[3] = {{pidfd, POLLIN, 0}, {io->err, POLLIN, 0}, {io->in, POLLOUT, 0}};
		int wait_ms = -1;
		if (timeout > 0) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			long long spent = (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000;
			wait_ms = spent >= limit ? 0 : (int)(limit - spent);
		}
		int n = poll(fds, 3, wait_ms); /* a negative fd is skipped */
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, status, 0);
			close(pidfd);
			return 1;
		}
		if (io->err >= 0 && (fds[1].revents & (POLLIN | POLLHUP)))
			hook_stderr(io);
		if (io->in >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP)))
			hook_stdin(io);
		if (fds[0].revents & POLLIN) {
			waitpid(pid, status, 0);
			close(pidfd);
			io->out[io->got] = '\0';
			return 0;
		}
	}
}

/* run_hook runs one hook with the state on its stdin and returns its
 * failure as a message in berth_err. */
static int run_hook(const struct hook *h, const char *state) {
	int in[2], err[2];
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		return berth_fail("pipe");
	pid_t pid = fork();
	if (pid < 0)
		return berth_fail("fork");
	if (pid == 0) {
		/* stdout goes nowhere: it is the container's (its terminal). */
		int null = open("/dev/null", O_WRONLY);
		dup2(in[0], 0);
		dup2(null, 1);
		dup2(err[1], 2);
		char *def[] = {(char *)h->path, NULL};
		execve(h->path, h->args[0] ? h->args : def, h->env);
		dprintf(2, "exec %s: %s", h->path, strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(err[1]);
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	/* A hook that does not read its stdin must not end init. */
	struct sigaction ign = {.sa_handler = SIG_IGN}, old;
	sigaction(SIGPIPE, &ign, &old);
	char text[1024];
	struct hook_io io = {.in = in[1], .err = err[0], .state = state, .left = strlen(state), .out = text, .size = sizeof text};
	int status = 0;
	int r = wait_hook(pid, &io, h->timeout, &status);
	sigaction(SIGPIPE, &old, NULL);
	if (io.in >= 0)
		close(io.in);
	if (io.err >= 0)
		close(io.err);
	if (r < 0)
		return berth_fail("wait");
	if (r == 1)
		return berth_failx("timed out after %llus", (unsigned long long)h->timeout);
	for (size_t n = strlen(text); n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '); n--)
		text[n - 1] = '\0';
	if (WIFSIGNALED(status)) {
		char sig[64];
		snprintf(sig, sizeof sig, "%s", strsignal(WTERMSIG(status)));
		sig[0] = (char)tolower((unsigned char)sig[0]);
		return berth_failx("signal: %s%s%s", sig, text[0] ? ": " : "", text);
	}
	if (WEXITSTATUS(status) != 0)
		return berth_failx("exit status %d%s%s", WEXITSTATUS(status), text[0] ? ": " : "", text);
	return 0;
}

static void run_hooks(const char *phase, const struct hook *h, size_t n, const char *state) {
	for (size_t i = 0; i < n; i++)
		if (run_hook(&h[i], state) < 0)
			berth_die("%s hook #%zu (%s): %s", phase, i, h[i].path, berth_err);
}

/* The console: a pseudo-terminal made in the container, whose master goes
 * to the console socket and whose slave becomes the process's controlling
 * terminal and stdio. */
static void setup_console(int sock, struct config *c) {
	if (sock < 0)
		berth_die("process.terminal is set but there is no console socket");
	int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		berth_die("console: %s", (berth_fail("open /dev/ptmx"), berth_err));
	int unlock = 0, n;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0 || ioctl(master, TIOCGPTN, &n) < 0)
		berth_die("console: %s", (berth_fail("pty"), berth_err));
	char name[64];
	snprintf(name, sizeof name, "/dev/pts/%d", n);
	if (c->rows || c->cols) {
		struct winsize ws = {.ws_row = (unsigned short)c->rows, .ws_col = (unsigned short)c->cols};
		ioctl(master, TIOCSWINSZ, &ws);
	}
	char ctl[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {name, strlen(name)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &master, sizeof(int));
	if (sendmsg(sock, &msg, 0) < 0)
		berth_die("console: send master: %s", (berth_fail("sendmsg"), berth_err));
	int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		berth_die("console: %s", (berth_fail("open %s", name), berth_err));
	for (int fd = 0; fd < 3; fd++)
		if (dup3(slave, fd, 0) < 0)
			berth_die("console: %s", (berth_fail("dup"), berth_err));
	close(slave);
	close(master);
	close(sock);
	if (ioctl(0, TIOCSCTTY, 0) < 0)
		berth_die("console: set controlling terminal: %s", (berth_fail("ioctl"), berth_err));
}

/* The process. */

/* home_env returns HOME from the container's /etc/passwd for uid, "/" if
 * it has none, as runc does. */
static char *home_env(uint64_t uid) {
	static char env[4200] = "HOME=/";
	FILE *f = fopen("/etc/passwd", "re");
	if (f == NULL)
		return env;
	char line[4096];
	while (fgets(line, sizeof line, f) != NULL) {
		char *field[7] = {0}, *p = line;
		int n = 0;
		while (n < 7 && p != NULL) {
			field[n++] = p;
			if ((p = strchr(p, ':')) != NULL)
				*p++ = '\0';
		}
		if (n < 6 || field[2][0] == '\0')
			continue;
		char *end;
		unsigned long long u = strtoull(field[2], &end, 10);
		if (*end != '\0' || u != uid)
			continue;
		field[5][strcspn(field[5], "\n")] = '\0';
		if (field[5][0] != '\0')
			snprintf(env, sizeof env, "HOME=%s", field[5]);
		break;
	}
	fclose(f);
	return env;
}

static char **process_env(struct config *c) {
	size_t n = 0;
	for (; c->env[n] != NULL; n++)
		if (strncmp(c->env[n], "HOME=", 5) == 0)
			return c->env;
	char **env = calloc(n + 2, sizeof *env);
	if (env == NULL)
		berth_die("out of memory");
	memcpy(env, c->env, n * sizeof *env);
	env[n] = home_env(c->uid);
	return env;
}

static const char *not_executable(const char *p) {
	struct stat st;
	if (stat(p, &st) < 0)
		return (berth_fail("stat %s", p), berth_err);
	if (S_ISDIR(st.st_mode))
		return "is a directory";
	if ((st.st_mode & 0111) == 0)
		return "permission denied";
	return NULL;
}

/* look_path finds the program in the PATH of env, inside the root. */
static char *look_path(const char *name, char **env) {
	if (strchr(name, '/') != NULL) {
		const char *why = not_executable(name);
		if (why != NULL)
			berth_die("process.args[0] \"%s\": %s", name, why);
		return (char *)name;
	}
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (char **e = env; *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	for (const char *p = path;;) {
		const char *end = strchrnul(p, ':');
		char *full;
		/* An empty entry is the working directory. */
		int len = end == p ? 1 : (int)(end - p);
		if (asprintf(&full, "%.*s/%s", len, end == p ? "." : p, name) < 0)
			berth_die("out of memory");
		if (not_executable(full) == NULL)
			return full;
		free(full);
		if (*end == '\0')
			break;
		p = end + 1;
	}
	berth_die("process.args[0] \"%s\": executable file not found in $PATH", name);
}

static void set_rlimits(struct config *c, int lower) {
	for (size_t i = 0; i < c->nrlimits; i++) {
		struct rlim *l = &c->rlimits[i];
		int nproc = l->resource == RLIMIT_NPROC;
		if (lower && (l->soft == l->hard || nproc))
			continue;
		/* Before lowering, soft limits stay at the hard ones: init still
		 * has to work, and RLIMIT_NPROC's soft limit is what setuid
		 * checks. Lowering a soft limit needs no privilege. */
		struct rlimit r = {.rlim_cur = (lower || nproc) ? l->soft : l->hard, .rlim_max = l->hard};
		if (setrlimit((int)l->resource, &r) < 0)
			berth_die("process.rlimits %s: %s", l->name, (berth_fail("setrlimit"), berth_err));
	}
}

static void load_seccomp(struct config *c) {
	static int loaded;
	if (c->bpf_len == 0 || loaded)
		return;
	loaded = 1;
	if (c->bpf_len % sizeof(struct sock_filter) != 0 || c->bpf_len / sizeof(struct sock_filter) > 0xffff)
		berth_die("seccomp: compiled filter of %zu bytes is malformed", c->bpf_len);
	struct sock_filter *insns = malloc(c->bpf_len);
	if (insns == NULL)
		berth_die("out of memory");
	memcpy(insns, c->bpf, c->bpf_len);
	struct sock_fprog prog = {.len = (unsigned short)(c->bpf_len / sizeof *insns), .filter = insns};
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned)c->seccomp_flags, &prog) < 0)
		berth_die("seccomp: load filter: %s", (berth_fail("seccomp"), berth_err));
	free(insns);
}

static void apply_caps(struct config *c, int bounding) {
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	if (bounding) {
		/* Dropping needs CAP_SETPCAP; without it the set stays. */
		if (syscall(SYS_capget, &hdr, data) < 0)
			berth_die("capabilities: %s", (berth_fail("capget"), berth_err));
		if (!(data[0].effective & (1u << CAP_SETPCAP)))
			return;
		for (int cap = 0; cap < 64; cap++) {
			if (c->caps[CAP_SET_BOUNDING] & (1ull << cap))
				continue;
			if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
				berth_die("capabilities: bounding set: %s", (berth_fail("drop %d", cap), berth_err));
		}
		return;
	}
	for (int i = 0; i < 2; i++) {
		data[i].effective = (uint32_t)(c->caps[CAP_SET_EFFECTIVE] >> (32 * i));
		data[i].permitted = (uint32_t)(c->caps[CAP_SET_PERMITTED] >> (32 * i));
		data[i].inheritable = (uint32_t)(c->caps[CAP_SET_INHERITABLE] >> (32 * i));
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		berth_die("capabilities: %s", (berth_fail("capset"), berth_err));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		berth_die("capabilities: ambient set: %s", (berth_fail("clear"), berth_err));
	for (int cap = 0; cap < 64; cap++)
		if ((c->caps[CAP_SET_AMBIENT] & (1ull << cap)) &&
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0 && errno != EINVAL)
			berth_die("capabilities: ambient set: %s", (berth_fail("raise %d", cap), berth_err));
}

/* set_user switches to the process's user and groups; capabilities survive
 * (PR_SET_KEEPCAPS) and are set afterwards. The raw system calls change
 * this one thread, which is all init has. */
static void set_user(struct config *c) {
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		berth_die("keepcaps: %s", (berth_fail("prctl"), berth_err));
	/* setgid and setuid refuse -1, which setres*id would take as "keep
	 * root". Init has one thread, so glibc's wrappers change just it. */
	if (setgroups(c->ngids, c->gids) < 0 && !(errno == EPERM && c->ngids == 0))
		berth_die("process.user.additionalGids: %s", (berth_fail("setgroups"), berth_err));
	if (c->gid >= UINT32_MAX)
		berth_die("process.user.gid %llu: not a valid group ID", (unsigned long long)c->gid);
	if (setgid((gid_t)c->gid) < 0)
		berth_die("process.user.gid %llu: %s", (unsigned long long)c->gid, (berth_fail("setgid"), berth_err));
	if (c->uid >= UINT32_MAX)
		berth_die("process.user.uid %llu: not a valid user ID", (unsigned long long)c->uid);
	if (setuid((uid_t)c->uid) < 0)
		berth_die("process.user.uid %llu: %s", (unsigned long long)c->uid, (berth_fail("setuid"), berth_err));
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		berth_die("keepcaps: %s", (berth_fail("prctl"), berth_err));
	umask((c->flags & F_UMASK) ? (mode_t)c->umask : 022);
}

/* prepare_process does everything short of exec: limits, privileges, user,
 * working directory. Seccomp is loaded here unless no_new_privs lets it
 * wait until just before the startContainer hooks and exec. It returns the
 * program's path. */
static char *prepare_process(struct config *c, char ***env) {
	if (syscall(SYS_close_range, 3 + c->preserve_fds, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
		berth_die("close descriptors: %s", (berth_fail("close_range"), berth_err));
	set_rlimits(c, 0);
	if (c->flags & F_OOM_SCORE) {
		char v[32];
		snprintf(v, sizeof v, "%lld", (long long)c->oom_score);
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, v, strlen(v)) < 0)
			berth_die("process.oomScoreAdj: %s", (berth_fail("write"), berth_err));
		close(fd);
	}
	*env = process_env(c);
	char *argv0 = look_path(c->args[0], *env);
	if (c->flags & F_NO_NEW_PRIVS) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			berth_die("no_new_privs: %s", (berth_fail("prctl"), berth_err));
	} else {
		load_seccomp(c);
	}
	/* The working directory is entered with the runtime's privileges, as
	 * runc does, so that a directory the process's user cannot search
	 * (a root-owned 0700 cwd for a non-root user, or one an exec --user 0
	 * without CAP_DAC_OVERRIDE could not enter) still works; only when
	 * that is refused is it tried again as the process's user, who may
	 * own it (a volume chowned to the container's user). */
	int cwd_later = 0;
	if (chdir(c->cwd) < 0) {
		if (errno != EACCES && errno != EPERM)
			berth_die("process.cwd %s: %s", c->cwd, (berth_fail("chdir"), berth_err));
		cwd_later = 1;
	}
	apply_caps(c, 1);
	set_user(c);
	if (cwd_later && chdir(c->cwd) < 0)
		berth_die("process.cwd %s: %s", c->cwd, (berth_fail("chdir"), berth_err));
	apply_caps(c, 0);
	return argv0;
}

static void exec_process(struct config *c, char *argv0, char **env) {
	if (c->flags & F_NO_NEW_PRIVS)
		load_seccomp(c);
	set_rlimits(c, 1);
	execve(argv0, c->args, env);
	berth_die("exec %s: %s", argv0, (berth_fail("exec"), berth_err));
}

static void set_identity(struct config *c) {
	if ((c->flags & F_HOSTNAME) && sethostname(c->hostname, strlen(c->hostname)) < 0)
		berth_die("hostname: %s", (berth_fail("sethostname"), berth_err));
	if ((c->flags & F_DOMAINNAME) && setdomainname(c->domainname, strlen(c->domainname)) < 0)
		berth_die("domainname: %s", (berth_fail("setdomainname"), berth_err));
}

/* loopback_up brings up lo in the new network namespace, as runc does. */
static void loopback_up(void) {
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	strcpy(ifr.ifr_name, "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		berth_die("loopback: %s", (berth_fail("get flags"), berth_err));
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		berth_die("loopback: %s", (berth_fail("set up"), berth_err));
	close(s);
}

/* create prepares a new container and waits for start. */
static void create(struct config *c, int sync, int listener, int console) {
	if (listener < 0)
		berth_die("no start socket");
	if (setsid() < 0)
		berth_die("setsid: %s", (berth_fail("setsid"), berth_err));
	if (c->flags & F_LOOPBACK)
		loopback_up();
	berth_expect(sync, MSG_CGROUP);
	/* Only now, in its cgroup, so that the new namespace is rooted there. */
	if ((c->flags & F_UNSHARE_CGROUPNS) && unshare(CLONE_NEWCGROUP) < 0)
		berth_die("cgroup namespace: %s", (berth_fail("unshare"), berth_err));
	int mountns = c->flags & F_MOUNT_NS;
	if (mountns)
		berth_rootfs_prepare(c);
	if (c->flags & F_HOOKS) {
		if (berth_send(sync, MSG_HOOKS, NULL, 0) < 0)
			berth_die("%s", (berth_fail("send"), berth_err));
		berth_expect(sync, MSG_RESUME);
	}
	run_hooks("createContainer", c->create_hooks, c->ncreate_hooks, c->state_creating);
	if (mountns) {
		berth_rootfs_pivot(c);
	} else {
		char root[4096];
		if (realpath(c->rootfs, root) == NULL || chroot(root) < 0 || chdir("/") < 0)
			berth_die("chroot %s: %s", c->rootfs, (berth_fail("chroot"), berth_err));
	}
	if (c->flags & F_TERMINAL)
		setup_console(console, c);
	if (mountns)
		berth_rootfs_finish(c);
	set_identity(c);
	if (!(c->flags & F_NO_KEYRING)) {
		char name[300];
		snprintf(name, sizeof name, "_ses.%s", c->id);
		if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name) < 0 && errno != ENOSYS && errno != EACCES)
			berth_die("session keyring: %s", (berth_fail("keyctl"), berth_err));
	}
	char **env;
	char *argv0 = prepare_process(c, &env);
	if (berth_send(sync, MSG_READY, NULL, 0) < 0)
		berth_die("%s", (berth_fail("send"), berth_err));
	/* Block until start connects; from then on errors go to start. */
	int conn;
	while ((conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (conn < 0)
		berth_die("wait for start: %s", (berth_fail("accept"), berth_err));
	close(listener);
	close(sync);
	berth_errfd = conn;
	/* startContainer hooks run as part of the container's process, under
	 * its seccomp filter, as with runc: with no_new_privs the filter,
	 * otherwise loaded last before exec, is loaded now. */
	if (c->flags & F_NO_NEW_PRIVS)
		load_seccomp(c);
	run_hooks("startContainer", c->start_hooks, c->nstart_hooks, c->state_created);
	exec_process(c, argv0, env);
}

/* exec prepares a process inside a running container and execs it. */
static void exec_in(struct config *c, int console) {
	if (c->exec_root[0] != '\0' && chroot(c->exec_root) < 0)
		berth_die("chroot into the container: %s", (berth_fail("chroot"), berth_err));
	if (c->flags & F_TERMINAL) {
		if (setsid() < 0)
			berth_die("setsid: %s", (berth_fail("setsid"), berth_err));
		setup_console(console, c);
	}
	char **env;
	char *argv0 = prepare_process(c, &env);
	exec_process(c, argv0, env);
}

void berth_init(int argc, char **argv) {
	const char *fds = getenv("_BERTH_INIT_FDS");
	if (argc < 2 || strcmp(argv[1], "init") != 0 || fds == NULL)
		return;
	int sync = env_fd(fds, 0), listener = env_fd(fds, 1), console = env_fd(fds, 2);
	unsetenv("_BERTH_INIT_FDS");
	if (sync < 0)
		berth_die("no sync socket");
	fcntl(sync, F_SETFD, FD_CLOEXEC);
	if (listener >= 0)
		fcntl(listener, F_SETFD, FD_CLOEXEC);
	if (console >= 0)
		fcntl(console, F_SETFD, FD_CLOEXEC);
	berth_errfd = sync;
	int type;
	size_t n;
	unsigned char *cfg = berth_recv(sync, &type, &n);
	if (cfg == NULL)
		_exit(125); /* the runtime gave up */
	if (type != MSG_CONFIG)
		berth_die("the runtime sent message %c, expected the configuration", type);
	struct config c;
	berth_decode(&c, cfg, n);
	if (c.mode == MODE_CREATE)
		create(&c, sync, listener, console);
	else if (c.mode == MODE_EXEC)
		exec_in(&c, console);
	berth_die("unknown init mode %llu", (unsigned long long)c.mode);
}
