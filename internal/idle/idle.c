// See idle.go for the contract. Written by hand: it runs before the Go
// runtime starts, which is the point of it (see there).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINE (16 << 10) /* logfile.MaxLine */

extern char **environ;

/* One output stream of the container: its fd and the line it has begun. */
struct stream {
	const char *name;
	int fd;
	size_t len;
	char line[MAX_LINE + 1];
};

static struct {
	char **argv;
	pid_t pid;
	int stdin_fd, listen_fd;
	long long max_size, size;
	int max_files, log_fd;
	const char *log_path;
	struct stream out, err;
	/* One entry escaped as JSON: at most six bytes per input byte. */
	char entry[6 * (MAX_LINE + 1) + 128];
} m;

/* rotated names the file at index i of the log's rotation chain, as
 * logfile.rotated does. */
static void rotated(char *buf, size_t n, int i) {
	if (i == 0)
		snprintf(buf, n, "%s", m.log_path);
	else
		snprintf(buf, n, "%s.%d", m.log_path, i);
}

static int open_log(void) {
	int fd = open(m.log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	struct stat st;
	m.size = fstat(fd, &st) == 0 ? st.st_size : 0;
	return fd;
}

/* rotate shifts the chain by one, oldest first, as logfile.Writer.rotate
 * does, so that readers never see more than one index missing. */
static void rotate(void) {
	char from[4096], to[4096];
	if (m.max_files == 1) {
		unlink(m.log_path);
	} else {
		for (int i = m.max_files - 2; i >= 0; i--) {
			rotated(from, sizeof from, i);
			rotated(to, sizeof to, i + 1);
			rename(from, to);
		}
	}
	int fd = open_log();
	if (fd >= 0) {
		close(m.log_fd);
		m.log_fd = fd;
	}
}

/* utf8_len returns the length of the valid UTF-8 sequence at p (of n
 * bytes), or 0 if none starts there. */
static size_t utf8_len(const unsigned char *p, size_t n) {
	unsigned char c = p[0];
	size_t len;
	uint32_t min, cp;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		len = 2, min = 0x80, cp = c & 0x1f;
	else if ((c & 0xf0) == 0xe0)
		len = 3, min = 0x800, cp = c & 0x0f;
	else if ((c & 0xf8) == 0xf0)
		len = 4, min = 0x10000, cp = c & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* emit appends one entry in Docker's json-file format, as logfile.Writer
 * does: invalid UTF-8 becomes U+FFFD, control characters are escaped. */
static void emit(const char *stream, const char *line, size_t n) {
	static const char hex[] = "0123456789abcdef";
	char *o = m.entry;
	o += sprintf(o, "{\"log\":\"");
	const unsigned char *p = (const unsigned char *)line;
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		if (c >= 0x80) {
			size_t l = utf8_len(p + i, n - i);
			if (l == 0) {
				o += sprintf(o, "\\ufffd");
				i++;
			} else {
				memcpy(o, p + i, l);
				o += l;
				i += l;
			}
			continue;
		}
		switch (c) {
		case '"': *o++ = '\\'; *o++ = '"'; break;
		case '\\': *o++ = '\\'; *o++ = '\\'; break;
		case '\n': *o++ = '\\'; *o++ = 'n'; break;
		case '\r': *o++ = '\\'; *o++ = 'r'; break;
		case '\t': *o++ = '\\'; *o++ = 't'; break;
		default:
			if (c < 0x20 || c == 0x7f || c == '<' || c == '>' || c == '&') {
				o += sprintf(o, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
			} else {
				*o++ = c;
			}
		}
		i++;
	}
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	o += sprintf(o, "\",\"stream\":\"%s\",\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ\"}\n", stream,
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
	size_t len = o - m.entry;
	if (m.max_size > 0 && m.size > 0 && m.size + (long long)len > m.max_size)
		rotate();
	ssize_t w = write(m.log_fd, m.entry, len);
	if (w > 0)
		m.size += w;
}

/* feed splits what a stream delivered into entries, holding a begun line,
 * as logfile's stream.Write does: a line ends at its newline, or is cut
 * at MAX_LINE bytes, a little earlier so as not to split a UTF-8 character. */
static void feed(struct stream *s, const char *p, size_t n) {
	for (size_t i = 0; i < n; i++) {
		s->line[s->len++] = p[i];
		if (p[i] == '\n') {
			emit(s->name, s->line, s->len);
			s->len = 0;
		} else if (s->len == MAX_LINE + 1) {
			size_t cut = MAX_LINE;
			while (cut > MAX_LINE - 3 && (s->line[cut] & 0xc0) == 0x80)
				cut--;
			if ((s->line[cut] & 0xc0) == 0x80)
				cut = MAX_LINE;
			emit(s->name, s->line, cut);
			memmove(s->line, s->line + cut, s->len - cut);
			s->len -= cut;
		}
	}
}

/* drain reads what the stream has; at its end it stops watching it. */
static void drain(struct stream *s, struct pollfd *pfd) {
	static char buf[32 << 10];
	for (;;) {
		ssize_t n = read(s->fd, buf, sizeof buf);
		if (n > 0) {
			feed(s, buf, n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			pfd->fd = -1; /* EOF, or EIO from a terminal whose slave closed */
		return;
	}
}

/* wake hands the monitor back to its Go code (same process, same
 * arguments), telling it why in _BERTH_RESUME; begun lines are written
 * out first, as logfile.Writer.Close does. */
static void wake(const char *why) {
	struct stream *ss[] = {&m.out, &m.err};
	for (int i = 0; i < 2; i++)
		if (ss[i]->len > 0)
			emit(ss[i]->name, ss[i]->line, ss[i]->len);
	close(m.log_fd);
	unsetenv("_BERTH_IDLE");
	setenv("_BERTH_RESUME", why, 1);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve("/proc/self/exe", m.argv, environ);
	fprintf(stderr, "berth-monitor: resume: %s\n", strerror(errno));
	_exit(125);
}

/* check starts one health check: the monitor's Go code, in a child, with
 * _BERTH_HEALTH set. */
static pid_t check(void) {
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int fds[] = {m.out.fd, m.err.fd, m.listen_fd, m.stdin_fd};
	for (int i = 0; i < 4; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	unsetenv("_BERTH_IDLE");
	setenv("_BERTH_HEALTH", "1", 1);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve("/proc/self/exe", m.argv, environ);
	_exit(125);
}

void berth_idle(int argc, char **argv) {
	const char *env = getenv("_BERTH_IDLE");
	if (env == NULL || argc < 1)
		return;
	long long health_ns = 0;
	int pty = -1, off = 0;
	if (sscanf(env, "%d %d %d %d %d %d %lld %d %lld %n", &m.pid, &m.out.fd, &m.err.fd, &pty,
		   &m.listen_fd, &m.stdin_fd, &m.max_size, &m.max_files, &health_ns, &off) < 9 || off == 0) {
		fprintf(stderr, "berth-monitor: bad _BERTH_IDLE %s\n", env);
		_exit(125);
	}
	m.argv = argv;
	m.log_path = env + off;
	m.out.name = "stdout";
	m.err.name = "stderr";
	if (pty >= 0)
		m.out.fd = pty; /* a terminal's output is all stdout */
	int watched[] = {m.out.fd, m.err.fd};
	for (int i = 0; i < 2; i++)
		if (watched[i] >= 0)
			fcntl(watched[i], F_SETFL, fcntl(watched[i], F_GETFL) | O_NONBLOCK);
	if ((m.log_fd = open_log()) < 0) {
		fprintf(stderr, "berth-monitor: log %s: %s\n", m.log_path, strerror(errno));
		_exit(125);
	}

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	/* SIGUSR1, berth stop's nudge for a restart back-off, comes ignored
	 * from the Go code and stays so until it is back there. */
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	int tfd = -1;
	if (health_ns > 0) {
		tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		struct itimerspec its = {
			.it_interval = {health_ns / 1000000000, health_ns % 1000000000},
			.it_value = {health_ns / 1000000000, health_ns % 1000000000},
		};
		timerfd_settime(tfd, 0, &its, NULL);
	}
	struct pollfd pfd[5] = {
		{.fd = m.out.fd, .events = POLLIN},
		{.fd = m.err.fd, .events = POLLIN},
		{.fd = m.listen_fd, .events = POLLIN},
		{.fd = sfd, .events = POLLIN},
		{.fd = tfd, .events = POLLIN},
	};
	pid_t checking = 0;
	/* A child may have exited while the Go code handed over. */
	for (int first = 1;; first = 0) {
		if (!first && poll(pfd, 5, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "berth-monitor: poll: %s\n", strerror(errno));
			_exit(125);
		}
		if (pfd[0].revents)
			drain(&m.out, &pfd[0]);
		if (pfd[1].revents)
			drain(&m.err, &pfd[1]);
		if (pfd[2].revents & POLLIN)
			wake("attach");
		if (first || pfd[3].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) == sizeof si)
				;
			int status;
			pid_t pid;
			while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
				if (pid == checking)
					checking = 0;
				if (pid == m.pid) {
					/* Take in what it wrote last before waking. */
					if (pfd[0].fd >= 0)
						drain(&m.out, &pfd[0]);
					if (pfd[1].fd >= 0)
						drain(&m.err, &pfd[1]);
					char why[32];
					snprintf(why, sizeof why, "exit %d", status);
					wake(why);
				}
			}
		}
		if (tfd >= 0 && pfd[4].revents) {
			uint64_t n;
			if (read(tfd, &n, sizeof n) == sizeof n && checking == 0)
				checking = check();
		}
		for (int i = 0; i < 5; i++)
			pfd[i].revents = 0;
	}
}
