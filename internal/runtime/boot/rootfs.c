// The container's root file system, built by init inside its mount
// namespace; see boot.go.
//
// Every path from the spec is resolved inside the root: looked up with
// openat2(RESOLVE_IN_ROOT), which makes the kernel treat the root as "/"
// for every symlink and "..", or, when parts are missing, walked one
// component at a time from an open directory without following anything,
// symlinks read and resolved by hand against the root. Mounts then go to
// /proc/self/fd/N of the resulting O_PATH descriptor, so nothing can swap
// the path between lookup and mount and an image cannot point a mount or a
// device node outside its root.
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "boot.h"

static int root_fd = -1;
static char root_path[PATH_MAX];

struct fdpath {
	char s[32];
};

static struct fdpath fdpath(int fd) {
	struct fdpath p;
	snprintf(p.s, sizeof p.s, "/proc/self/fd/%d", fd);
	return p;
}

/* pathf formats a path into buf; a path that does not fit fails with
 * ENAMETOOLONG rather than being used cut short. */
static int pathf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int pathf(char *buf, size_t size, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return berth_fail("%.64s…", buf);
	}
	return 0;
}

static int open_in_root(const char *path) {
	struct open_how how = {
	    .flags = O_PATH | O_CLOEXEC,
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
	if (fd < 0)
		return berth_fail("open %s in the root", path);
	return fd;
}

/* mkdir_all creates path and its parents inside the root and returns an
 * O_PATH descriptor of it. A dangling symlink on the way (/var/run -> /run)
 * is followed, confined to the root, as runc does. */
static int mkdir_all(const char *path) {
	int fd = open_in_root(path);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	size_t cap = 16, depth = 0;
	int *dirs = malloc(cap * sizeof *dirs);
	char *rest = strdup(path);
	if (dirs == NULL || rest == NULL)
		berth_die("out of memory");
	if ((dirs[depth] = fcntl(root_fd, F_DUPFD_CLOEXEC, 3)) < 0)
		goto fail;
	depth++;
	int links = 0;
	char *p = rest;
	for (;;) {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		char *e = strchrnul(p, '/');
		size_t len = (size_t)(e - p);
		char comp[NAME_MAX + 1];
		if (len > NAME_MAX) {
			errno = ENAMETOOLONG;
			goto fail;
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		p = e;
		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			if (depth > 1)
				close(dirs[--depth]);
			continue;
		}
		int cur = dirs[depth - 1];
		fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT) {
			if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST)
				goto fail;
			fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		}
		if (fd < 0)
			goto fail;
		struct stat st;
		if (fstat(fd, &st) < 0) {
			close(fd);
			goto fail;
		}
		if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t n = readlinkat(fd, "", target, sizeof target - 1);
			close(fd);
			if (n < 0)
				goto fail;
			if (++links > 40) {
				errno = ELOOP;
				goto fail;
			}
			target[n] = '\0';
			char *next;
			if (asprintf(&next, "%s/%s", target, p) < 0)
				berth_die("out of memory");
			free(rest);
			rest = p = next;
			if (target[0] == '/')
				while (depth > 1)
					close(dirs[--depth]);
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			close(fd);
			errno = ENOTDIR;
			goto fail;
		}
		if (depth == cap && (dirs = realloc(dirs, (cap *= 2) * sizeof *dirs)) == NULL)
			berth_die("out of memory");
		dirs[depth++] = fd;
	}
	fd = dirs[--depth];
	while (depth > 0)
		close(dirs[--depth]);
	free(dirs);
	free(rest);
	return fd;
fail:
	berth_fail("mkdir %s in the root", path);
	while (depth > 0)
		close(dirs[--depth]);
	free(dirs);
	free(rest);
	return -1;
}

/* split divides a cleaned absolute path into its directory and last name,
 * in buffers the caller gives. */
static int split(const char *path, char *dir, char *base) {
	char tmp[PATH_MAX];
	if (pathf(tmp, sizeof tmp, "%s", path) < 0)
		return -1;
	size_t n = strlen(tmp);
	while (n > 1 && tmp[n - 1] == '/')
		tmp[--n] = '\0';
	char *slash = strrchr(tmp, '/');
	if (slash == NULL) {
		strcpy(dir, ".");
		strcpy(base, tmp);
	} else if (slash == tmp) {
		strcpy(dir, "/");
		strcpy(base, slash[1] ? slash + 1 : "/");
	} else {
		*slash = '\0';
		strcpy(dir, tmp);
		strcpy(base, slash + 1);
	}
	return 0;
}

/* mount_target resolves dest inside the root, creating a directory there
 * (or, for a file source, an empty file), and returns a descriptor of it. */
static int mount_target(const char *dest, int file) {
	int fd = open_in_root(dest);
	if (fd >= 0)
		return fd;
	if (!file)
		return mkdir_all(dest);
	char dir[PATH_MAX], base[PATH_MAX];
	if (split(dest, dir, base) < 0)
		return -1;
	int d = mkdir_all(dir);
	if (d < 0)
		return -1;
	int f = openat(d, base, O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_RDONLY, 0644);
	int e = errno;
	close(d);
	if (f < 0 && e != EEXIST) {
		errno = e;
		return berth_fail("create %s in the root", dest);
	}
	if (f >= 0)
		close(f);
	return open_in_root(dest);
}

/* remount applies flags to the mount at path, keeping the flags the kernel
 * locks on mounts inherited into a user namespace. */
static int remount(const char *path, const char *name, unsigned long flags) {
	struct statfs st;
	if (statfs(path, &st) < 0)
		return berth_fail("statfs %s", name);
	unsigned long locked = (unsigned long)st.f_flags &
	                       (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY | MS_NOATIME | MS_NODIRATIME | MS_RELATIME);
	if (mount("", path, "", flags | MS_BIND | MS_REMOUNT | locked, "") < 0)
		return berth_fail((flags & MS_RDONLY) ? "remount %s read-only" : "remount %s", name);
	return 0;
}

/* reopen_mounted returns a descriptor of the mount just made on the
 * directory that t refers to: the path t was resolved to, looked up again
 * following nothing, which crosses into the new mount. The destination is
 * not resolved a second time: the new mount's content (a bind source's
 * symlinks) could send that lookup elsewhere. */
static int reopen_mounted(int t, const char *name) {
	char real[PATH_MAX];
	struct fdpath p = fdpath(t);
	ssize_t n = readlink(p.s, real, sizeof real);
	if (n < 0)
		return berth_fail("readlink %s", name);
	if ((size_t)n >= sizeof real) {
		errno = ENAMETOOLONG;
		return berth_fail("%s", name);
	}
	real[n] = '\0';
	size_t rl = strlen(root_path);
	if (strncmp(real, root_path, rl) != 0 || (real[rl] != '/' && real[rl] != '\0')) {
		errno = EXDEV;
		return berth_fail("%s is not inside the root", name);
	}
	struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS};
	int fd = (int)syscall(SYS_openat2, AT_FDCWD, real, &how, sizeof how);
	if (fd < 0)
		return berth_fail("reopen %s", name);
	return fd;
}

/* after applies remount flags and propagation to the mount just made on
 * the directory t refers to (dest names it in messages). */
static int after(int t, const char *dest, unsigned long flags, const struct mnt *m) {
	size_t nprops = m != NULL ? m->nprops : 0;
	if (flags == 0 && nprops == 0)
		return 0;
	int fd = reopen_mounted(t, dest);
	if (fd < 0)
		return -1;
	struct fdpath p = fdpath(fd);
	int r = 0;
	if (flags != 0)
		r = remount(p.s, dest, flags);
	for (size_t i = 0; r == 0 && i < nprops; i++)
		if (mount("", p.s, "", m->props[i], "") < 0)
			r = berth_fail("set propagation of %s", dest);
	close(fd);
	return r;
}

/* recursive applies the recursive options (rro, rnosuid…) to the mount
 * just made on the directory t refers to and to every mount below it. A
 * kernel without mount_setattr(2) cannot, and the mount is refused rather
 * than left writable. */
static int recursive(int t, const char *dest, const struct mnt *m) {
	if (m->attr_set == 0 && m->attr_clr == 0)
		return 0;
	int fd = reopen_mounted(t, dest);
	if (fd < 0)
		return -1;
	struct mount_attr attr = {.attr_set = m->attr_set, .attr_clr = m->attr_clr};
	int r = (int)syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr);
	int e = errno;
	close(fd);
	if (r < 0 && e == ENOSYS)
		return berth_failx("recursive mount options (rro, rnosuid…) need Linux 5.12 or later");
	errno = e;
	return r < 0 ? berth_fail("apply recursive mount options") : 0;
}

/* ordinary_dir refuses to mount proc or sysfs (fs) other than on a
 * directory of the image reached through no symlink, as runc does: an
 * image whose /proc is a symlink would otherwise get the mount elsewhere,
 * and the masked and read-only paths under /proc would cover nothing. */
static int ordinary_dir(const char *dest, const char *fs) {
	struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS};
	int fd = (int)syscall(SYS_openat2, root_fd, dest, &how, sizeof how);
	if (fd < 0 && errno == ENOENT)
		return 0; /* made as a directory next */
	if (fd < 0 && errno == ELOOP)
		return berth_failx("filesystem %s must be mounted on ordinary directory, and %s in the image is or goes through a symlink", fs, dest);
	if (fd < 0)
		return berth_fail("open %s in the root", dest);
	struct stat st;
	int r = fstat(fd, &st);
	close(fd);
	if (r < 0)
		return berth_fail("stat %s", dest);
	if (!S_ISDIR(st.st_mode))
		return berth_failx("filesystem %s must be mounted on ordinary directory, and %s in the image is not a directory", fs, dest);
	return 0;
}

/* proc_dest refuses a mount on the container's /proc that is not a proc
 * file system (a bind of one is), and one inside /proc except on the files
 * lxcfs emulates, as runc's checkProcMount does: an image could otherwise
 * put its own files over /proc/self/… or /proc/sys/…. t is the resolved
 * destination, src the bind source or NULL. */
static int proc_dest(int t, const char *dest, const char *src) {
	static const char *lxcfs[] = {"cpuinfo", "diskstats", "meminfo", "stat", "swaps", "uptime", "loadavg", "slabinfo", "net/dev", NULL};
	char real[PATH_MAX];
	struct fdpath p = fdpath(t);
	ssize_t n = readlink(p.s, real, sizeof real - 1);
	if (n < 0)
		return berth_fail("readlink %s", dest);
	real[n] = '\0';
	size_t rl = strlen(root_path);
	if (strncmp(real, root_path, rl) != 0 || strncmp(real + rl, "/proc", 5) != 0)
		return 0;
	const char *rest = real + rl + 5;
	if (*rest == '\0') {
		struct statfs fs;
		if (src != NULL && statfs(src, &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC)
			return 0;
		return berth_failx("only a proc file system can be mounted on /proc");
	}
	if (*rest != '/')
		return 0; /* /procfoo */
	for (const char **ok = lxcfs; *ok; ok++)
		if (strcmp(rest + 1, *ok) == 0)
			return 0;
	return berth_failx("%s is inside /proc, where only lxcfs's files (/proc/cpuinfo, /proc/meminfo…) can be mounted over", dest);
}

static int bind_mount(const struct mnt *m) {
	struct stat st;
	if (stat(m->src, &st) < 0)
		return berth_fail("bind source %s", m->src);
	int t = mount_target(m->dest, !S_ISDIR(st.st_mode));
	if (t < 0)
		return -1;
	if (proc_dest(t, m->dest, m->src) < 0) {
		close(t);
		return -1;
	}
	struct fdpath p = fdpath(t);
	int r = mount(m->src, p.s, "", MS_BIND | (m->flags & MS_REC), "");
	if (r < 0)
		r = berth_fail("bind %s", m->src);
	else
		r = after(t, m->dest, m->flags & ~(unsigned long)(MS_BIND | MS_REC | MS_REMOUNT), m);
	if (r == 0)
		r = recursive(t, m->dest, m);
	close(t);
	return r;
}

static int plain_mount(const struct mnt *m, int new_user) {
	int kernelfs = strcmp(m->type, "proc") == 0 || strcmp(m->type, "sysfs") == 0;
	if (kernelfs && ordinary_dir(m->dest, m->type) < 0)
		return -1;
	int t = mount_target(m->dest, 0);
	if (t < 0)
		return -1;
	/* A tmpfs or mqueue there can only hide what is below. */
	if (!kernelfs && strcmp(m->type, "tmpfs") != 0 && strcmp(m->type, "mqueue") != 0 && proc_dest(t, m->dest, NULL) < 0) {
		close(t);
		return -1;
	}
	struct fdpath p = fdpath(t);
	const char *src = m->src[0] ? m->src : m->type;
	int r = mount(src, p.s, m->type, m->flags, m->data);
	unsigned long again = 0;
	if (r < 0 && strcmp(m->type, "sysfs") == 0 && (errno == EPERM || errno == EBUSY)) {
		/* sysfs cannot be mounted in a user namespace that does not own
		 * the network namespace; fall back to the host's, as runc does. */
		r = mount("/sys", p.s, "", MS_BIND | MS_REC, "");
		again = m->flags | MS_BIND;
	} else if (r < 0 && strcmp(m->type, "mqueue") == 0 && errno == EPERM && new_user) {
		r = mount("/dev/mqueue", p.s, "", MS_BIND | MS_REC, "");
	}
	if (r < 0)
		r = berth_fail("mount");
	else if (again != 0)
		r = after(t, m->dest, again, NULL);
	if (r == 0)
		r = after(t, m->dest, 0, m);
	if (r == 0)
		r = recursive(t, m->dest, m);
	close(t);
	return r;
}

/* Cgroups. */

/* own_cgroup returns this process's cgroup path for the hierarchy whose
 * controller list (as in /proc/self/cgroup) is ctrls; "" is cgroup v2. */
static const char *own_cgroup(char *data, const char *ctrls) {
	for (char *line = data; line != NULL && *line;) {
		char *next = strchr(line, '\n');
		size_t len = next ? (size_t)(next - line) : strlen(line);
		char *c1 = memchr(line, ':', len);
		char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
		if (c2 != NULL && (size_t)(c2 - c1 - 1) == strlen(ctrls) && strncmp(c1 + 1, ctrls, strlen(ctrls)) == 0) {
			static char path[PATH_MAX];
			snprintf(path, sizeof path, "%.*s", (int)(len - (size_t)(c2 + 1 - line)), c2 + 1);
			return path;
		}
		line = next ? next + 1 : NULL;
	}
	return NULL;
}

/* v1_controllers returns a cgroup v1 mount's controller list from its super
 * options ("rw,cpu,cpuacct" → "cpu,cpuacct"), or "" if it names none. */
static void v1_controllers(const char *opts, char *out, size_t size) {
	out[0] = '\0';
	char tmp[1024];
	snprintf(tmp, sizeof tmp, "%s", opts);
	for (char *save = NULL, *o = strtok_r(tmp, ",", &save); o != NULL; o = strtok_r(NULL, ",", &save)) {
		if (strncmp(o, "name=", 5) != 0 && (strcmp(o, "rw") == 0 || strcmp(o, "ro") == 0 || strchr(o, '=') != NULL))
			continue;
		/* Options of the hierarchy, not controllers. */
		if (strcmp(o, "xattr") == 0 || strcmp(o, "clone_children") == 0 || strcmp(o, "noprefix") == 0 ||
		    strcmp(o, "cpuset_v2_mode") == 0 || strcmp(o, "favordynmods") == 0 || strcmp(o, "none") == 0)
			continue;
		size_t l = strlen(out);
		snprintf(out + l, size - l, "%s%s", l ? "," : "", o);
	}
}

static int symlink_in_root(const char *target, const char *link);
static int cgroup_v1(const struct mnt *m, int cgroupns, char *own);

/* cgroup_mount mounts the cgroup file system at m->dest. With cgroup v1 it
 * is a tmpfs holding one mount per hierarchy of the container's own cgroup;
 * with v2 it is a cgroup2 mount (or a bind of the container's cgroup when
 * there is no cgroup namespace). */
static int cgroup_mount(const struct mnt *m, int cgroupns) {
	char *own = berth_read_file("/proc/self/cgroup");
	if (own == NULL)
		return berth_fail("read /proc/self/cgroup");
	int t = mount_target(m->dest, 0);
	if (t < 0)
		return -1;
	struct fdpath p = fdpath(t);
	int r;
	const char *v2 = own_cgroup(own, "");
	if (v2 != NULL && strchr(own, '\n') == strrchr(own, '\n')) { /* one line: cgroup v2 */
		if (cgroupns) {
			r = mount("cgroup2", p.s, "cgroup2", m->flags, NULL);
			r = r < 0 ? berth_fail("mount cgroup2") : recursive(t, m->dest, m);
			close(t);
			return r;
		}
		char src[PATH_MAX];
		if (pathf(src, sizeof src, "/sys/fs/cgroup%s", v2) < 0) {
			close(t);
			return -1;
		}
		r = mount(src, p.s, "", MS_BIND, "");
		if (r < 0)
			r = berth_fail("bind %s", src);
		else
			r = after(t, m->dest, m->flags, NULL);
		if (r == 0)
			r = recursive(t, m->dest, m);
		close(t);
		return r;
	}
	r = mount("tmpfs", p.s, "tmpfs", m->flags & ~(unsigned long)MS_RDONLY, "mode=755");
	if (r == 0)
		r = cgroup_v1(m, cgroupns, own);
	else
		berth_fail("mount tmpfs");
	if (r == 0 && (m->flags & MS_RDONLY))
		r = after(t, m->dest, m->flags, NULL);
	if (r == 0)
		r = recursive(t, m->dest, m);
	close(t);
	return r;
}

/* cgroup_v1 mounts each hierarchy of the container's own cgroup in the
 * tmpfs at m->dest. */
static int cgroup_v1(const struct mnt *m, int cgroupns, char *own) {
	int r;
	struct mountinfo *mi = berth_mounts();
	if (mi == NULL)
		return -1;
	for (struct mountinfo *h = mi; h->point != NULL; h++) {
		char ctrls[1024];
		if (strcmp(h->fstype, "cgroup") != 0)
			continue;
		v1_controllers(h->opts, ctrls, sizeof ctrls);
		if (ctrls[0] == '\0')
			continue;
		const char *name = strrchr(h->point, '/');
		name = name ? name + 1 : h->point;
		char dest[PATH_MAX];
		if (pathf(dest, sizeof dest, "%s/%s", m->dest, name) < 0)
			return -1;
		int sub = mkdir_all(dest);
		if (sub < 0)
			return -1;
		struct fdpath sp = fdpath(sub);
		const char *path = own_cgroup(own, ctrls);
		char src[PATH_MAX];
		if (pathf(src, sizeof src, "%s%s", h->point, path ? path : "") < 0) {
			close(sub);
			return -1;
		}
		if (cgroupns) {
			/* A fresh mount shows the namespace's root, the container's
			 * own cgroup; a bind of src would show the host's root. */
			char opts[1100];
			snprintf(opts, sizeof opts, "%s%s", strncmp(ctrls, "name=", 5) == 0 ? "none," : "", ctrls);
			r = mount("cgroup", sp.s, "cgroup", m->flags, opts);
			if (r < 0)
				berth_fail("cgroup %s", name);
		} else {
			r = mount(src, sp.s, "", MS_BIND | MS_REC, "");
			if (r < 0)
				berth_fail("cgroup %s (from %s)", name, src);
			else
				r = after(sub, dest, m->flags, NULL);
		}
		close(sub);
		if (r < 0)
			return -1;
		/* Co-mounted controllers (cpu,cpuacct) get a link per name. */
		if (strchr(name, ',') != NULL) {
			char list[PATH_MAX];
			snprintf(list, sizeof list, "%s", name);
			for (char *save = NULL, *c = strtok_r(list, ",", &save); c != NULL; c = strtok_r(NULL, ",", &save)) {
				if (pathf(dest, sizeof dest, "%s/%s", m->dest, c) == 0)
					symlink_in_root(name, dest);
			}
		}
	}
	return 0;
}

/* Devices. */

static int symlink_in_root(const char *target, const char *link) {
	char dir[PATH_MAX], base[PATH_MAX];
	if (split(link, dir, base) < 0)
		return -1;
	int d = mkdir_all(dir);
	if (d < 0)
		return -1;
	if (strcmp(link, "/dev/ptmx") == 0)
		unlinkat(d, base, 0);
	int r = symlinkat(target, d, base);
	int e = errno;
	close(d);
	if (r < 0 && e != EEXIST) {
		errno = e;
		return berth_fail("symlink %s", link);
	}
	return 0;
}

/* create_device makes one device node; inside a new user namespace, where
 * mknod is not allowed, it bind-mounts the host's node instead. */
static int create_device(const struct dev *d, int new_user) {
	char dir[PATH_MAX], base[PATH_MAX];
	if (split(d->path, dir, base) < 0)
		return -1;
	int dfd = mkdir_all(dir);
	if (dfd < 0)
		return -1;
	int r;
	if (new_user) {
		if (d->type == 'p') {
			close(dfd);
			return berth_failx("fifo devices are not supported in a user namespace");
		}
		/* Never open what the image has there (a fifo would block, a
		 * device would be opened): only a regular file is accepted. */
		int f = openat(dfd, base, O_NOFOLLOW | O_CLOEXEC | O_PATH);
		if (f < 0 && errno == ENOENT)
			f = openat(dfd, base, O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_RDONLY, 0644);
		close(dfd);
		if (f < 0)
			return berth_fail("create");
		struct stat st;
		int bad = fstat(f, &st) < 0 || !S_ISREG(st.st_mode);
		close(f);
		if (bad) {
			errno = EEXIST;
			return berth_fail("the image has something other than a file there");
		}
		int t = open_in_root(d->path);
		if (t < 0)
			return -1;
		struct fdpath p = fdpath(t);
		r = mount(d->path, p.s, "", MS_BIND, "");
		close(t);
		return r < 0 ? berth_fail("bind") : 0;
	}
	mode_t kind = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
	/* Replace whatever the image had at this path (but never follow it). */
	unlinkat(dfd, base, 0);
	r = mknodat(dfd, base, kind | (mode_t)(d->perm & 07777), makedev(d->major, d->minor));
	if (r == 0)
		r = fchownat(dfd, base, (uid_t)d->uid, (gid_t)d->gid, AT_SYMLINK_NOFOLLOW);
	close(dfd);
	return r < 0 ? berth_fail("mknod") : 0;
}

static void create_devices(struct config *c) {
	mode_t old = umask(0);
	for (size_t i = 0; i < c->ndevs; i++)
		if (create_device(&c->devs[i], c->flags & F_NEW_USERNS) < 0)
			berth_die("device %s: %s", c->devs[i].path, berth_err);
	for (size_t i = 0; i < c->nsymlinks; i++)
		if (symlink_in_root(c->symlinks[2 * i], c->symlinks[2 * i + 1]) < 0)
			berth_die("symlink %s: %s", c->symlinks[2 * i + 1], berth_err);
	umask(old);
}

/* berth_rootfs_prepare does everything that must happen before pivot_root. */
void berth_rootfs_prepare(struct config *c) {
	if (realpath(c->rootfs, root_path) == NULL)
		berth_die("root.path %s: %s", c->rootfs, (berth_fail("resolve"), berth_err));
	if (mount("", "/", "", c->root_propagation, "") < 0)
		berth_die("make / private or slave: %s", (berth_fail("mount"), berth_err));
	if (berth_make_parent_private(root_path) < 0)
		berth_die("%s", berth_err);
	if (mount(root_path, root_path, "", MS_BIND | MS_REC, "") < 0)
		berth_die("bind root %s: %s", root_path, (berth_fail("mount"), berth_err));
	root_fd = open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		berth_die("open root: %s", (berth_fail("open"), berth_err));
	for (size_t i = 0; i < c->nmounts; i++) {
		struct mnt *m = &c->mounts[i];
		int r = m->kind == MOUNT_BIND     ? bind_mount(m)
		        : m->kind == MOUNT_CGROUP ? cgroup_mount(m, c->flags & F_CGROUPNS)
		                                  : plain_mount(m, c->flags & F_NEW_USERNS);
		if (r < 0)
			berth_die("mounts[%zu] (%s on %s): %s", i, m->type, m->dest, berth_err);
	}
	if (c->flags & F_DEVICES)
		create_devices(c);
	if (c->cwd[0] != '\0') {
		int fd = mkdir_all(c->cwd);
		if (fd < 0)
			berth_die("process.cwd %s: %s", c->cwd, berth_err);
		close(fd);
	}
}

/* berth_rootfs_pivot makes the prepared root the process's root. */
void berth_rootfs_pivot(struct config *c) {
	if (chdir(root_path) < 0)
		berth_die("chdir root: %s", (berth_fail("chdir"), berth_err));
	if (c->flags & F_NO_PIVOT) {
		if (berth_detach_host_procfs(root_path) < 0)
			berth_die("--no-pivot: %s", berth_err);
		if (mount(root_path, "/", "", MS_MOVE, "") < 0)
			berth_die("move root: %s", (berth_fail("mount"), berth_err));
		if (chroot(".") < 0)
			berth_die("chroot: %s", (berth_fail("chroot"), berth_err));
	} else {
		if (syscall(SYS_pivot_root, ".", ".") < 0)
			berth_die("%s", (berth_fail("pivot_root"), berth_err));
		/* The old root is now stacked under "."; detach it without
		 * letting the unmount propagate to the host. */
		if (mount("", ".", "", MS_SLAVE | MS_REC, "") < 0)
			berth_die("make old root slave: %s", (berth_fail("mount"), berth_err));
		if (umount2(".", MNT_DETACH) < 0)
			berth_die("detach old root: %s", (berth_fail("umount"), berth_err));
	}
	if (chdir("/") < 0)
		berth_die("%s", (berth_fail("chdir /"), berth_err));
	close(root_fd);
}

static int readonly_path(const char *p) {
	if (mount(p, p, "", MS_BIND | MS_REC, "") < 0)
		return errno == ENOENT ? 0 : berth_fail("bind");
	return remount(p, p, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_REC);
}

static int mask_path(const char *p) {
	struct stat st;
	if (stat(p, &st) < 0)
		return errno == ENOENT ? 0 : berth_fail("stat");
	if (S_ISDIR(st.st_mode))
		return mount("tmpfs", p, "tmpfs", MS_RDONLY, "") < 0 ? berth_fail("mount tmpfs") : 0;
	return mount("/dev/null", p, "", MS_BIND, "") < 0 ? berth_fail("bind /dev/null") : 0;
}

static int write_text(const char *path, const char *value) {
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return berth_fail("open %s", path);
	ssize_t n = write(fd, value, strlen(value));
	int e = errno;
	close(fd);
	errno = e;
	return n < 0 ? berth_fail("write %s", path) : 0;
}

/* berth_rootfs_finish applies what needs the container's own view:
 * sysctls, read-only and masked paths, the read-only root and the root's
 * propagation. */
void berth_rootfs_finish(struct config *c) {
	/* Sysctls first: readonlyPaths usually include /proc/sys. */
	for (size_t i = 0; i < c->nsysctls; i++)
		if (write_text(c->sysctls[3 * i], c->sysctls[3 * i + 1]) < 0)
			berth_die("linux.sysctl %s: %s", c->sysctls[3 * i + 2], berth_err);
	for (char **p = c->readonly_paths; *p; p++)
		if (readonly_path(*p) < 0)
			berth_die("linux.readonlyPaths %s: %s", *p, berth_err);
	for (char **p = c->masked_paths; *p; p++)
		if (mask_path(*p) < 0)
			berth_die("linux.maskedPaths %s: %s", *p, berth_err);
	if ((c->flags & F_ROOT_READONLY) && remount("/", "/", MS_RDONLY) < 0)
		berth_die("root.readonly: %s", berth_err);
	if ((c->flags & F_FINAL_PROPAGATION) && mount("", "/", "", c->final_propagation, "") < 0)
		berth_die("linux.rootfsPropagation: %s", (berth_fail("mount"), berth_err));
}
