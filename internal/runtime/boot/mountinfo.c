// Mount information (/proc/self/mountinfo) for init's root file system
// work; see boot.go.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "boot.h"

char *berth_read_file(const char *path) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 16384, n = 0;
	char *b = malloc(cap);
	for (;;) {
		if (b == NULL)
			berth_die("out of memory");
		ssize_t r = read(fd, b + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n + 1 == cap)
			b = realloc(b, cap *= 2);
	}
	close(fd);
	b[n] = '\0';
	return b;
}

static void unescape(char *s) {
	char *w = s;
	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

/* mounts parses /proc/self/mountinfo into a list ended by a NULL point. */
struct mountinfo *berth_mounts(void) {
	char *b = berth_read_file("/proc/self/mountinfo");
	if (b == NULL) {
		berth_fail("read /proc/self/mountinfo");
		return NULL;
	}
	size_t n = 0, cap = 64;
	struct mountinfo *v = malloc(cap * sizeof *v);
	for (char *save = NULL, *line = strtok_r(b, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char *sep = strstr(line, " - ");
		if (sep == NULL)
			continue;
		*sep = '\0';
		char *f[5] = {0}, *s2 = NULL;
		int i = 0;
		for (char *t = strtok_r(line, " ", &s2); t != NULL && i < 5; t = strtok_r(NULL, " ", &s2))
			f[i++] = t;
		char *post[3] = {0};
		i = 0;
		for (char *t = strtok_r(sep + 3, " ", &s2); t != NULL && i < 3; t = strtok_r(NULL, " ", &s2))
			post[i++] = t;
		if (f[4] == NULL || post[2] == NULL)
			continue;
		if (n + 1 >= cap)
			v = realloc(v, (cap *= 2) * sizeof *v);
		if (v == NULL)
			berth_die("out of memory");
		unescape(f[3]);
		unescape(f[4]);
		v[n++] = (struct mountinfo){f[4], f[3], post[0], post[2]};
	}
	if (v == NULL)
		berth_die("out of memory");
	v[n].point = NULL;
	return v;
}

/* make_parent_private makes the mount holding path private: pivot_root
 * refuses a new root whose parent mount is shared. */
int berth_make_parent_private(const char *path) {
	struct mountinfo *mi = berth_mounts();
	if (mi == NULL)
		return -1;
	const char *best = "/";
	size_t blen = 1;
	for (struct mountinfo *m = mi; m->point != NULL; m++) {
		size_t l = strlen(m->point);
		while (l > 1 && m->point[l - 1] == '/')
			l--;
		if (l > blen && strncmp(path, m->point, l) == 0 && (path[l] == '\0' || path[l] == '/')) {
			best = m->point;
			blen = l;
		}
	}
	if (mount("", best, "", MS_PRIVATE, "") < 0)
		return berth_fail("make %s private", best);
	return 0;
}

/* berth_detach_host_procfs removes from this mount namespace every whole
 * proc and sysfs mount outside root, before a --no-pivot root is moved over
 * "/" and chrooted into. With chroot the host's mounts stay in the
 * namespace, and the kernel lets a new proc or sysfs be mounted (by a user
 * namespace inside the container) when one of the same kind is fully
 * visible anywhere in it: the host's /proc would be, defeating the
 * container's masked paths. runc does the same (msMoveRoot). A mount that
 * cannot be detached (locked in a user namespace) is covered by an empty
 * tmpfs. */
int berth_detach_host_procfs(const char *root) {
	struct mountinfo *mi = berth_mounts();
	if (mi == NULL)
		return -1;
	size_t rl = strlen(root);
	for (struct mountinfo *m = mi; m->point != NULL; m++) {
		if (strcmp(m->root, "/") != 0 || (strcmp(m->fstype, "proc") != 0 && strcmp(m->fstype, "sysfs") != 0))
			continue;
		if (strncmp(m->point, root, rl) == 0 && (m->point[rl] == '/' || m->point[rl] == '\0'))
			continue;
		/* Keep the unmount from propagating to the host. A mount point
		 * already gone with a parent detached before it is skipped. */
		if (mount("", m->point, "", MS_SLAVE | MS_REC, "") < 0) {
			if (errno == ENOENT || errno == EINVAL)
				continue;
			return berth_fail("make %s slave", m->point);
		}
		if (umount2(m->point, MNT_DETACH) == 0)
			continue;
		if (errno != EINVAL && errno != EPERM)
			return berth_fail("detach the host's %s", m->point);
		if (mount("tmpfs", m->point, "tmpfs", 0, "") < 0)
			return berth_fail("cover the host's %s", m->point);
	}
	return 0;
}
