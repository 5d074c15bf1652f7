// Shared by the C files of package boot; see boot.go for the contract.
#ifndef BERTH_BOOT_H
#define BERTH_BOOT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Wire format (the Go side is internal/runtime/initwire_linux.go, and
 * initwire_const_linux_test.go checks that every constant here has the
 * same value there): every message is a frame, a little-endian u32
 * length, then a type byte and the payload. The configuration frame's
 * payload is a sequence of little-endian u64 values and strings (u64
 * length, bytes, NUL). */
enum {
	MSG_CONFIG = 'C', /* runtime → init: the configuration */
	MSG_CGROUP = 'c', /* runtime → init: init is in its cgroup */
	MSG_HOOKS = 'h',  /* init → runtime: run prestart/createRuntime hooks */
	MSG_RESUME = 'r', /* runtime → init: hooks done */
	MSG_READY = 'R',  /* init → runtime: created, waiting for start */
	MSG_ERROR = 'E',  /* init → runtime: setup failed; payload is the message */
};

enum { MODE_CREATE = 0, MODE_EXEC = 1 };

/* Configuration flags. */
enum {
	F_NO_PIVOT = 1 << 0,
	F_NO_KEYRING = 1 << 1,
	F_TERMINAL = 1 << 2,
	F_HOOKS = 1 << 3, /* stop for the runtime's hooks */
	F_NEW_USERNS = 1 << 4,
	F_UNSHARE_CGROUPNS = 1 << 5,
	F_MOUNT_NS = 1 << 6,
	F_NO_NEW_PRIVS = 1 << 7,
	F_ROOT_READONLY = 1 << 8,
	F_DEVICES = 1 << 9, /* populate /dev (no bind mount over it) */
	F_UMASK = 1 << 10,
	F_OOM_SCORE = 1 << 11,
	F_CGROUPNS = 1 << 12, /* the container has its own cgroup namespace */
	F_HOSTNAME = 1 << 13,
	F_DOMAINNAME = 1 << 14,
	F_FINAL_PROPAGATION = 1 << 15,
	F_LOOPBACK = 1 << 16, /* a new network namespace: bring lo up, as runc does */
};

enum { MOUNT_PLAIN = 0, MOUNT_BIND = 1, MOUNT_CGROUP = 2 };
enum { MOUNT_MAX_PROPS = 8 }; /* propagation changes after one mount */
enum { CAP_SET_BOUNDING, CAP_SET_EFFECTIVE, CAP_SET_PERMITTED, CAP_SET_INHERITABLE, CAP_SET_AMBIENT, CAP_SETS };

struct mnt {
	uint64_t kind, flags, nprops, props[MOUNT_MAX_PROPS];
	uint64_t attr_set, attr_clr; /* MOUNT_ATTR_* for the mount and those below it */
	const char *src, *dest, *type, *data;
};

struct dev {
	const char *path;
	uint64_t type, major, minor, perm, uid, gid;
};

struct hook {
	const char *path;
	char **args, **env;
	uint64_t timeout; /* seconds; 0: none */
};

struct rlim {
	const char *name;
	uint64_t resource, soft, hard;
};

struct config {
	uint64_t mode, flags;
	const char *id, *rootfs, *exec_root;
	uint64_t root_propagation, final_propagation;
	size_t nmounts, ndevs, nsymlinks, ncreate_hooks, nstart_hooks, nsysctls, nrlimits, ngids;
	struct mnt *mounts;
	struct dev *devs;
	const char **symlinks; /* target, link, target, link… */
	struct hook *create_hooks, *start_hooks;
	const char *state_creating, *state_created;
	const char *hostname, *domainname;
	const char **sysctls; /* path, value, key… */
	char **readonly_paths, **masked_paths;
	char **args, **env;
	const char *cwd;
	uint64_t uid, gid, umask, oom_score, preserve_fds, rows, cols;
	gid_t *gids;
	struct rlim *rlimits;
	uint64_t caps[CAP_SETS];
	const unsigned char *bpf;
	size_t bpf_len;
	uint64_t seccomp_flags;
};

/* wire.c */
extern int berth_errfd; /* where die() reports: the sync socket, later the start connection */
void berth_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* berth_fail keeps a message and errno's text in berth_err and returns -1;
 * berth_failx keeps the message alone. */
int berth_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int berth_failx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern char berth_err[1024];
int berth_send(int fd, int type, const void *payload, size_t n);
void *berth_recv(int fd, int *type, size_t *n);
void berth_expect(int fd, int type);
void berth_decode(struct config *c, const unsigned char *p, size_t n);

/* mountinfo.c */
struct mountinfo {
	char *point, *root, *fstype, *opts; /* root: the mount's root within its file system */
};
char *berth_read_file(const char *path);
/* berth_mounts parses /proc/self/mountinfo into a list ended by a NULL
 * point, or keeps why not in berth_err and returns NULL. */
struct mountinfo *berth_mounts(void);
int berth_make_parent_private(const char *path);
int berth_detach_host_procfs(const char *root);

/* rootfs.c */
void berth_rootfs_prepare(struct config *c);
void berth_rootfs_pivot(struct config *c);
void berth_rootfs_finish(struct config *c);

#endif
