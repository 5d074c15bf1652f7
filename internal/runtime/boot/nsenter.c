// Joining namespaces before the Go runtime starts; see boot.go for the
// contract.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static void fail(const char *what, const char *arg) {
	fprintf(stderr, "berth-runtime: nsenter: %s %s: %s\n", what, arg, strerror(errno));
	_exit(125);
}

void berth_nsenter(void) {
	const char *env = getenv("_BERTH_NSENTER");
	if (env == NULL || *env == '\0')
		return;
	/* A process that is about to enter a container must not be readable
	 * through /proc/PID by the container (CVE-2019-5736 defence in depth). */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	char *spec = strdup(env);
	if (spec == NULL)
		fail("out of memory", "");
	for (char *save = NULL, *item = strtok_r(spec, ",", &save); item != NULL;
	     item = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(item, ':');
		if (colon == NULL)
			fail("bad entry", item);
		*colon = '\0';
		const char *kind = item, *arg = colon + 1;
		if (strcmp(kind, "unshare") == 0) {
			if (unshare((int)strtol(arg, NULL, 10)) < 0)
				fail("unshare", arg);
			continue;
		}
		int nstype;
		if (strcmp(kind, "user") == 0)
			nstype = CLONE_NEWUSER;
		else if (strcmp(kind, "mnt") == 0)
			nstype = CLONE_NEWNS;
		else
			fail("unknown namespace", kind);
		int fd = open(arg, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			fail("open", arg);
		if (setns(fd, nstype) < 0)
			fail("setns", arg);
		close(fd);
		if (nstype == CLONE_NEWUSER) {
			/* Become root of the joined namespace where it is mapped, as
			 * runc does; the Go side sets the process user later. */
			if (setresgid(0, 0, 0) == 0)
				(void)setresuid(0, 0, 0);
		}
	}
	free(spec);
	unsetenv("_BERTH_NSENTER");
}
