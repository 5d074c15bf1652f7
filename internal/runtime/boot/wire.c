// Frames, the configuration decoder and error reporting for init; see
// boot.go. The configuration comes from the runtime process, which is
// trusted, but a corrupt frame still ends init with a message, never with
// a read past the buffer.
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boot.h"

int berth_errfd = -1;
char berth_err[1024];

static int write_all(int fd, const void *p, size_t n) {
	const char *b = p;
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* read_all returns 0 when n bytes were read, 1 at end of file before any
 * byte, -1 otherwise. */
static int read_all(int fd, void *p, size_t n) {
	char *b = p;
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return got == 0 ? 1 : -1;
		got += (size_t)r;
	}
	return 0;
}

int berth_send(int fd, int type, const void *payload, size_t n) {
	unsigned char hdr[5];
	uint32_t len = (uint32_t)n + 1;
	for (int i = 0; i < 4; i++)
		hdr[i] = (unsigned char)(len >> (8 * i));
	hdr[4] = (unsigned char)type;
	if (write_all(fd, hdr, sizeof hdr) < 0)
		return -1;
	return n > 0 ? write_all(fd, payload, n) : 0;
}

/* berth_recv reads one frame and returns its payload (NUL-terminated, so a
 * text payload is a string), or NULL at end of file. */
void *berth_recv(int fd, int *type, size_t *n) {
	unsigned char hdr[4];
	int r = read_all(fd, hdr, sizeof hdr);
	if (r == 1)
		return NULL;
	if (r < 0)
		berth_die("read from the runtime: %s", strerror(errno));
	uint32_t len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
	if (len == 0 || len > 64u << 20)
		berth_die("read from the runtime: bad frame length %u", len);
	unsigned char *b = malloc(len + 1);
	if (b == NULL)
		berth_die("out of memory");
	if (read_all(fd, b, len) != 0)
		berth_die("read from the runtime: short frame");
	b[len] = '\0';
	*type = b[0];
	*n = len - 1;
	return b + 1;
}

void berth_expect(int fd, int type) {
	int got;
	size_t n;
	if (berth_recv(fd, &got, &n) == NULL)
		berth_die("the runtime closed the sync socket");
	if (got != type)
		berth_die("the runtime sent message %c, expected %c", got, type);
}

static void vformat(const char *fmt, va_list ap, int with_errno) {
	int e = errno;
	int n = vsnprintf(berth_err, sizeof berth_err, fmt, ap);
	if (with_errno && n >= 0 && (size_t)n < sizeof berth_err) {
		/* Lower-case, as Go prints errno values elsewhere in berth. */
		char text[256];
		snprintf(text, sizeof text, "%s", strerror(e));
		text[0] = (char)tolower((unsigned char)text[0]);
		snprintf(berth_err + n, sizeof berth_err - (size_t)n, ": %s", text);
	}
	errno = e;
}

int berth_fail(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	vformat(fmt, ap, 1);
	va_end(ap);
	return -1;
}

int berth_failx(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	vformat(fmt, ap, 0);
	va_end(ap);
	return -1;
}

void berth_die(const char *fmt, ...) {
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (berth_errfd < 0 || berth_send(berth_errfd, MSG_ERROR, msg, strlen(msg)) < 0)
		fprintf(stderr, "berth-runtime init: %s\n", msg);
	_exit(125);
}

/* The decoder. */

struct rd {
	const unsigned char *p, *end;
};

static void corrupt(void) { berth_die("init configuration is corrupt"); }

static uint64_t u64(struct rd *r) {
	if (r->end - r->p < 8)
		corrupt();
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | r->p[i];
	r->p += 8;
	return v;
}

static const unsigned char *bytes(struct rd *r, size_t *len) {
	uint64_t n = u64(r);
	if (n >= (uint64_t)(r->end - r->p) || r->p[n] != '\0')
		corrupt();
	const unsigned char *s = r->p;
	r->p += n + 1;
	*len = (size_t)n;
	return s;
}

static const char *str(struct rd *r) {
	size_t n;
	const char *s = (const char *)bytes(r, &n);
	if (strlen(s) != n)
		berth_die("init configuration: a string holds a NUL byte");
	return s;
}

/* count reads a list length, bounded by the bytes left (each item takes at
 * least min bytes). */
static size_t count(struct rd *r, size_t min) {
	uint64_t n = u64(r);
	if (n > (uint64_t)(r->end - r->p) / min)
		corrupt();
	return (size_t)n;
}

static void *array(size_t n, size_t size) {
	void *p = calloc(n + 1, size);
	if (p == NULL)
		berth_die("out of memory");
	return p;
}

static char **strs(struct rd *r) {
	size_t n = count(r, 9);
	char **v = array(n, sizeof *v);
	for (size_t i = 0; i < n; i++)
		v[i] = (char *)str(r);
	return v;
}

static struct hook *hooks(struct rd *r, size_t *n) {
	*n = count(r, 9 + 8 + 8 + 8); /* path, args, env, timeout */
	struct hook *h = array(*n, sizeof *h);
	for (size_t i = 0; i < *n; i++) {
		h[i].path = str(r);
		h[i].args = strs(r);
		h[i].env = strs(r);
		h[i].timeout = u64(r);
	}
	return h;
}

void berth_decode(struct config *c, const unsigned char *p, size_t n) {
	struct rd r = {p, p + n};
	memset(c, 0, sizeof *c);
	c->mode = u64(&r);
	c->flags = u64(&r);
	c->id = str(&r);
	c->rootfs = str(&r);
	c->exec_root = str(&r);
	c->root_propagation = u64(&r);
	c->final_propagation = u64(&r);

	c->nmounts = count(&r, 9 * 4 + 8 * 5);
	c->mounts = array(c->nmounts, sizeof *c->mounts);
	for (size_t i = 0; i < c->nmounts; i++) {
		struct mnt *m = &c->mounts[i];
		m->kind = u64(&r);
		m->src = str(&r);
		m->dest = str(&r);
		m->type = str(&r);
		m->data = str(&r);
		m->flags = u64(&r);
		m->attr_set = u64(&r);
		m->attr_clr = u64(&r);
		m->nprops = u64(&r);
		if (m->nprops > sizeof m->props / sizeof m->props[0])
			corrupt();
		for (size_t j = 0; j < m->nprops; j++)
			m->props[j] = u64(&r);
	}
	c->ndevs = count(&r, 9 + 8 * 6);
	c->devs = array(c->ndevs, sizeof *c->devs);
	for (size_t i = 0; i < c->ndevs; i++) {
		struct dev *d = &c->devs[i];
		d->path = str(&r);
		d->type = u64(&r);
		d->major = u64(&r);
		d->minor = u64(&r);
		d->perm = u64(&r);
		d->uid = u64(&r);
		d->gid = u64(&r);
	}
	c->nsymlinks = count(&r, 18);
	c->symlinks = array(2 * c->nsymlinks, sizeof *c->symlinks);
	for (size_t i = 0; i < 2 * c->nsymlinks; i++)
		c->symlinks[i] = str(&r);
	c->create_hooks = hooks(&r, &c->ncreate_hooks);
	c->state_creating = str(&r);
	c->start_hooks = hooks(&r, &c->nstart_hooks);
	c->state_created = str(&r);
	c->hostname = str(&r);
	c->domainname = str(&r);
	c->nsysctls = count(&r, 27);
	c->sysctls = array(3 * c->nsysctls, sizeof *c->sysctls);
	for (size_t i = 0; i < 3 * c->nsysctls; i++)
		c->sysctls[i] = str(&r);
	c->readonly_paths = strs(&r);
	c->masked_paths = strs(&r);

	c->args = strs(&r);
	if (c->args[0] == NULL)
		berth_die("process.args: empty");
	c->env = strs(&r);
	c->cwd = str(&r);
	c->uid = u64(&r);
	c->gid = u64(&r);
	c->ngids = count(&r, 8);
	c->gids = array(c->ngids, sizeof *c->gids);
	for (size_t i = 0; i < c->ngids; i++)
		c->gids[i] = (gid_t)u64(&r);
	c->umask = u64(&r);
	c->oom_score = u64(&r);
	c->nrlimits = count(&r, 9 + 24);
	c->rlimits = array(c->nrlimits, sizeof *c->rlimits);
	for (size_t i = 0; i < c->nrlimits; i++) {
		c->rlimits[i].name = str(&r);
		c->rlimits[i].resource = u64(&r);
		c->rlimits[i].soft = u64(&r);
		c->rlimits[i].hard = u64(&r);
	}
	for (int i = 0; i < CAP_SETS; i++)
		c->caps[i] = u64(&r);
	c->bpf = bytes(&r, &c->bpf_len);
	c->seccomp_flags = u64(&r);
	c->preserve_fds = u64(&r);
	c->rows = u64(&r);
	c->cols = u64(&r);
	if (r.p != r.end)
		corrupt();
}
