// See reaper.go for the contract. Written by hand: it must run before the Go
// runtime starts (see there), so no Go library can do it.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void berth_reaper(int argc, char **argv) {
	if (argc < 1 || argv == NULL || argv[0] == NULL)
		return;
	const char *base = strrchr(argv[0], '/');
	base = base != NULL ? base + 1 : argv[0];
	if (strcmp(base, "berth-init") != 0)
		return;
	argv++;
	if (*argv != NULL && strcmp(*argv, "--") == 0)
		argv++;
	if (*argv == NULL) {
		fputs("berth-init: no command\n", stderr);
		_exit(127);
	}

	/* Every signal is taken synchronously by sigwaitinfo below, so none
	 * can arrive in between and be lost or act on berth-init itself. */
	sigset_t all, none;
	sigfillset(&all);
	sigemptyset(&none);
	sigprocmask(SIG_BLOCK, &all, NULL);
	pid_t child = fork();
	if (child < 0) {
		fprintf(stderr, "berth-init: fork: %s\n", strerror(errno));
		_exit(126);
	}
	if (child == 0) {
		sigprocmask(SIG_SETMASK, &none, NULL);
		execvp(argv[0], argv);
		int err = errno;
		fprintf(stderr, "berth-init: %s: %s\n", argv[0], strerror(err));
		_exit(err == ENOENT ? 127 : 126);
	}
	for (;;) {
		int sig = sigwaitinfo(&all, NULL);
		if (sig < 0)
			continue; /* EINTR */
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		for (;;) {
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);
			if (pid <= 0)
				break;
			if (pid != child)
				continue; /* an orphan reparented to us */
			if (WIFSIGNALED(status))
				_exit(128 + WTERMSIG(status));
			_exit(WEXITSTATUS(status));
		}
	}
}
