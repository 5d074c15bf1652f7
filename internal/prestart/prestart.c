// See prestart.go for the contract. Written by hand: it must run before
// the Go runtime starts, so no Go library can do it.
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/close_range.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

int berth_prestart_pid = -1, berth_prestart_report = -1, berth_prestart_ctl = -1;
const char *berth_prestart_root = NULL;

extern char **environ;

static const char placeholder[] = "................................................................";

void berth_prestart(int argc, char **argv) {
	if (argc < 2 || argv == NULL || argv[0] == NULL)
		return;
	const char *base = strrchr(argv[0], '/');
	base = base != NULL ? base + 1 : argv[0];
	if (strcmp(base, "berth") != 0 || getenv("_BERTH_IDLE") != NULL || getenv("_BERTH_INIT_FDS") != NULL)
		return;
	const char *root = NULL;
	int i = 1;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--root") == 0 && i + 1 < argc)
			root = argv[++i];
		else if (strncmp(argv[i], "--root=", 7) == 0)
			root = argv[i] + 7;
		else
			break;
	}
	if (i >= argc || strcmp(argv[i], "run") != 0)
		return;

	int report[2], ctl[2];
	if (pipe2(report, O_CLOEXEC) < 0)
		return;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0) {
		close(report[0]);
		close(report[1]);
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		/* The monitor: report pipe on 3, control socket on 4, nothing else
		 * of this command's (a pipeline's end it held would never close). */
		setsid();
		int r = fcntl(report[1], F_DUPFD, 10), c = fcntl(ctl[1], F_DUPFD, 10);
		if (r < 0 || c < 0 || dup2(r, 3) < 0 || dup2(c, 4) < 0)
			_exit(127);
		syscall(SYS_close_range, 5, ~0u, 0);
		int null = open("/dev/null", O_RDWR);
		for (int fd = 0; fd < 3 && null >= 0; fd++)
			dup2(null, fd);
		if (null > 2)
			close(null);
		setenv("GOMAXPROCS", "1", 1);
		char *args[6];
		int n = 0;
		args[n++] = "berth-monitor";
		if (root != NULL) {
			args[n++] = "--root";
			args[n++] = (char *)root;
		}
		args[n++] = "container-monitor";
		args[n++] = (char *)placeholder;
		args[n] = NULL;
		execve("/proc/self/exe", args, environ);
		_exit(127);
	}
	close(report[1]);
	close(ctl[1]);
	if (pid < 0) {
		close(report[0]);
		close(ctl[0]);
		return;
	}
	berth_prestart_pid = pid;
	berth_prestart_report = report[0];
	berth_prestart_ctl = ctl[0];
	berth_prestart_root = root != NULL ? root : "";
}
