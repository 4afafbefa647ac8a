/* lodge-shim: what each running container's monitor becomes once the
 * container is created. lodge-monitor (libcontainer inside) creates the
 * container and execve()s this binary, handing it the container's
 * descriptors (shim.Handoff, as JSON in _LODGE_SHIM): the control and
 * attach listeners, the output pipes or tty master, stdin. From then on
 * this process holds the container's stdio, writes its log, serves
 * attach and control requests, waits for its init (its child, or an
 * adopted one through a pidfd) and records how it ended.
 *
 * It speaks exactly the protocol of the Go loop in shim/ (monitor.go,
 * proto.go, log.go), which lodge-monitor still runs in-process for
 * containers of an external OCI runtime: the two must stay in step, and
 * the e2e tests drive this one. It is C, single-threaded around one
 * epoll loop, so that the process living as long as the container costs
 * a few hundred KiB rather than a Go runtime's ~2 MiB (issue 20). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "proc.h"

#define PUMP_BUFFER (16 * 1024) /* one read of output, as the Go loop */
#define MAX_LINE (16 * 1024)    /* json-file splits longer lines */
#define MAX_STREAMS 2
#define EXIT_UNKNOWN 255
#define EXIT_UNKNOWN_REASON                                                                      \
	"the container's monitor died before the container ended: its exit status is unknown"

static void warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warnx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("lodge-shim: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* goerr is errno as Go spells it: strerror with a small first letter. */
static const char *goerr(int e)
{
	static char s[128];
	snprintf(s, sizeof s, "%s", strerror(e));
	if (s[0] >= 'A' && s[0] <= 'Z' && !(s[1] >= 'A' && s[1] <= 'Z'))
		s[0] += 'a' - 'A';
	return s;
}

/* ---------------------------------------------------------------- config */

static struct {
	const char *id, *state_root, *log_path, *log_format, *exit_path, *cgroup;
	int64_t log_max_size, log_max_files;
	int tty, open_stdin, stdin_once;
	int adopted;
	int adopt_pid;
	uint64_t adopt_start;
	int pid;
	int ctl_fd, attach_fd, stdin_fd;
	int nout;
	int out_fd[MAX_STREAMS];
	const char *stream[MAX_STREAMS];
} cfg;

static int load_handoff(void)
{
	const char *env = getenv("_LODGE_SHIM");
	if (!env || !*env) {
		warnx("lodge-shim is started by lodge-monitor, not by hand");
		return -1;
	}
	char *copy = strdup(env);
	unsetenv("_LODGE_SHIM");
	struct jval *h = json_parse(copy, strlen(copy));
	free(copy);
	struct jval *c = json_get(h, "config");
	if (!h || !c || c->type != J_OBJ) {
		warnx("handoff: not a handoff");
		return -1;
	}
	cfg.id = json_str(c, "id", "");
	cfg.state_root = json_str(c, "stateRoot", "");
	cfg.log_path = json_str(c, "logPath", "");
	cfg.log_format = json_str(c, "logFormat", "");
	cfg.exit_path = json_str(c, "exitPath", "");
	cfg.cgroup = json_str(c, "cgroup", "");
	cfg.log_max_size = json_int(c, "logMaxSize", 0);
	cfg.log_max_files = json_int(c, "logMaxFiles", 0);
	cfg.tty = json_bool(c, "tty");
	cfg.open_stdin = json_bool(c, "openStdin");
	cfg.stdin_once = json_bool(c, "stdinOnce");
	struct jval *adopt = json_get(c, "adopt");
	cfg.adopted = json_bool(h, "adopted") && adopt && adopt->type == J_OBJ;
	if (cfg.adopted) {
		cfg.adopt_pid = json_int(adopt, "Pid", 0);
		struct jval *st = json_get(adopt, "StartTime");
		cfg.adopt_start = st && st->type == J_NUM ? (uint64_t)st->num : 0;
	}
	cfg.pid = json_int(h, "pid", 0);
	cfg.ctl_fd = json_int(h, "ctl", -1);
	cfg.attach_fd = json_int(h, "attach", -1);
	cfg.stdin_fd = json_int(h, "stdin", -1);
	struct jval *outs = json_get(h, "outputs"), *streams = json_get(h, "streams");
	if (!outs || outs->type != J_ARR || !streams || streams->type != J_ARR ||
	    outs->n != streams->n || outs->n > MAX_STREAMS || cfg.ctl_fd < 0 || cfg.attach_fd < 0 ||
	    !*cfg.exit_path) {
		warnx("handoff: missing descriptors or paths");
		return -1;
	}
	cfg.nout = outs->n;
	for (int i = 0; i < cfg.nout; i++) {
		if (outs->items[i]->type != J_NUM || streams->items[i]->type != J_STR) {
			warnx("handoff: bad output");
			return -1;
		}
		cfg.out_fd[i] = (int)outs->items[i]->num;
		cfg.stream[i] = streams->items[i]->str;
	}
	/* h stays: cfg points into it for the process's life. */
	return 0;
}

/* ------------------------------------------------------------------ time */

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* add_time appends t (Unix ns) as Go's RFC3339Nano in UTC. */
static void add_time(struct buf *b, int64_t t)
{
	time_t sec = t / 1000000000;
	long ns = t % 1000000000;
	struct tm tm;
	char s[64];
	gmtime_r(&sec, &tm);
	strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
	buf_adds(b, s);
	if (ns) {
		snprintf(s, sizeof s, ".%09ld", ns);
		size_t n = strlen(s);
		while (s[n - 1] == '0')
			s[--n] = 0;
		buf_adds(b, s);
	}
	buf_addc(b, 'Z');
}

/* ------------------------------------------------------------------- log */

static struct {
	int fd;
	int none, local, cri;
	int64_t size;
	struct buf partial[MAX_STREAMS];
} lg = {.fd = -1};

/* mkdir_p makes the directories leading to path. */
static void mkdir_p(const char *path)
{
	char p[4096];
	snprintf(p, sizeof p, "%s", path);
	for (char *s = p + 1; *s; s++) {
		if (*s == '/') {
			*s = 0;
			mkdir(p, 0700);
			*s = '/';
		}
	}
}

static int open_log(void)
{
	if (!strcmp(cfg.log_format, "none")) {
		lg.none = 1;
		return 0;
	}
	lg.local = !strcmp(cfg.log_format, "local");
	lg.cri = !strcmp(cfg.log_format, "k8s-file");
	/* The local driver's log has a directory of its own; a k8s-file log
	 * goes where the kubelet says, in a directory it may not have made. */
	if (lg.local || lg.cri)
		mkdir_p(cfg.log_path);
	lg.fd = open(cfg.log_path, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
	if (lg.fd < 0) {
		warnx("open %s: %s", cfg.log_path, goerr(errno));
		return -1;
	}
	struct stat st;
	if (fstat(lg.fd, &st) == 0)
		lg.size = st.st_size;
	if (cfg.log_max_files < 1)
		cfg.log_max_files = 1;
	return 0;
}

static void log_rotate(void)
{
	char a[4096], b[4096];
	close(lg.fd);
	if (cfg.log_max_files > 1) {
		snprintf(a, sizeof a, "%s.%lld", cfg.log_path, (long long)cfg.log_max_files - 1);
		unlink(a);
		for (int64_t i = cfg.log_max_files - 2; i >= 1; i--) {
			snprintf(a, sizeof a, "%s.%lld", cfg.log_path, (long long)i);
			snprintf(b, sizeof b, "%s.%lld", cfg.log_path, (long long)i + 1);
			rename(a, b);
		}
		snprintf(a, sizeof a, "%s.1", cfg.log_path);
		rename(cfg.log_path, a);
	} else {
		unlink(cfg.log_path);
	}
	lg.fd = open(cfg.log_path, O_CREAT | O_WRONLY | O_APPEND | O_TRUNC | O_CLOEXEC, 0600);
	if (lg.fd < 0) /* nowhere to write: drop output rather than stop the container */
		lg.fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	lg.size = 0;
}

/* log_put writes one record, rotating first if it would not fit. */
static void log_put(struct buf *b)
{
	if (cfg.log_max_size > 0 && lg.size > 0 && lg.size + (int64_t)b->len > cfg.log_max_size)
		log_rotate();
	ssize_t w = write(lg.fd, b->p, b->len);
	if (w > 0)
		lg.size += w;
}

static void add_uvarint(struct buf *b, uint64_t v)
{
	while (v >= 0x80) {
		buf_addc(b, (char)(v | 0x80));
		v >>= 7;
	}
	buf_addc(b, (char)v);
}

static void add_be32(struct buf *b, uint32_t v)
{
	char c[4] = {v >> 24, v >> 16, v >> 8, v};
	buf_add(b, c, 4);
}

/* log_emit writes one line (its newline included, if it has one) in the
 * log's format: Docker's json-file object, or the local driver's
 * protobuf LogEntry between two big-endian lengths (shim/logformat_local.go). */
static void log_emit(const char *stream, const char *line, size_t n)
{
	struct buf b = {0};
	int64_t t = now_ns();
	if (lg.local) {
		int partial = n == 0 || line[n - 1] != '\n';
		size_t ln = partial ? n : n - 1;
		struct buf m = {0};
		add_uvarint(&m, 1 << 3 | 2);
		add_uvarint(&m, strlen(stream));
		buf_adds(&m, stream);
		add_uvarint(&m, 2 << 3 | 0);
		add_uvarint(&m, (uint64_t)t);
		add_uvarint(&m, 3 << 3 | 2);
		add_uvarint(&m, ln);
		buf_add(&m, line, ln);
		if (partial) {
			add_uvarint(&m, 4 << 3 | 0);
			buf_addc(&m, 1);
		}
		add_be32(&b, m.len);
		buf_add(&b, m.p, m.len);
		add_be32(&b, m.len);
		buf_free(&m);
	} else {
		buf_adds(&b, "{\"log\":");
		json_add_str(&b, line, n);
		buf_adds(&b, ",\"stream\":");
		json_add_str(&b, stream, strlen(stream));
		buf_adds(&b, ",\"time\":\"");
		add_time(&b, t);
		buf_adds(&b, "\"}\n");
	}
	log_put(&b);
	buf_free(&b);
}

/* cri_emit writes one record of the CRI log format (shim/logformat_cri.go):
 * time at a fixed nine digits in UTC, stream, tag, content, newline. */
static void cri_emit(const char *stream, int64_t t, char tag, const char *p, size_t n)
{
	struct buf b = {0};
	time_t sec = t / 1000000000;
	struct tm tm;
	char s[64];
	gmtime_r(&sec, &tm);
	strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
	buf_adds(&b, s);
	snprintf(s, sizeof s, ".%09ldZ %s %c ", (long)(t % 1000000000), stream, tag);
	buf_adds(&b, s);
	buf_add(&b, p, n);
	buf_addc(&b, '\n');
	log_put(&b);
	buf_free(&b);
}

/* cri_write logs a chunk of output as read (criRecords): each line ended
 * in it full, the rest partial, either cut into MAX_LINE parts first. */
static void cri_write(const char *stream, const char *p, size_t n)
{
	int64_t t = now_ns();
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t ln = nl ? (size_t)(nl - p) : n;
		size_t used = nl ? ln + 1 : n;
		while (ln > MAX_LINE) {
			cri_emit(stream, t, 'P', p, MAX_LINE);
			p += MAX_LINE, ln -= MAX_LINE, n -= MAX_LINE, used -= MAX_LINE;
		}
		if (nl || ln)
			cri_emit(stream, t, nl ? 'F' : 'P', p, ln);
		p += used;
		n -= used;
	}
}

/* log_write logs p from stream i, emitting every complete line. */
static void log_write(int i, const char *p, size_t n)
{
	if (lg.none)
		return;
	if (lg.cri) {
		cri_write(cfg.stream[i], p, n);
		return;
	}
	struct buf *pb = &lg.partial[i];
	buf_add(pb, p, n);
	for (;;) {
		char *nl = memchr(pb->p, '\n', pb->len);
		if (!nl) {
			if (pb->len >= MAX_LINE) {
				log_emit(cfg.stream[i], pb->p, MAX_LINE);
				buf_drop(pb, MAX_LINE);
				continue;
			}
			return;
		}
		size_t k = nl - pb->p + 1;
		log_emit(cfg.stream[i], pb->p, k);
		buf_drop(pb, k);
	}
}

/* log_reopen closes the log's file and opens the one at its path again
 * (or anew): the kubelet renamed it. On an error the old file stays. */
static const char *log_reopen(void)
{
	if (lg.none)
		return NULL;
	static char msg[4200];
	int fd = open(cfg.log_path, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) { /* as Go's *PathError says it */
		snprintf(msg, sizeof msg, "open %s: %s", cfg.log_path, goerr(errno));
		return msg;
	}
	close(lg.fd);
	lg.fd = fd;
	struct stat st;
	lg.size = fstat(fd, &st) == 0 ? st.st_size : 0;
	return NULL;
}

/* log_close logs what is left without a newline and closes the log. No
 * fsync, as Docker's json-file: readers see the page cache. */
static void log_close(void)
{
	if (lg.none)
		return;
	for (int i = 0; i < cfg.nout; i++)
		if (lg.partial[i].len)
			log_emit(cfg.stream[i], lg.partial[i].p, lg.partial[i].len);
	close(lg.fd);
	lg.fd = -1;
}

/* ------------------------------------------------------------ the loop */

enum kind { K_CTL_L, K_ATTACH_L, K_CTL, K_ATTACH, K_OUT, K_STDIN, K_SIG, K_PIDFD, K_FIFO, K_TIMER };

struct watch {
	enum kind kind;
	int fd;
	uint32_t events; /* what is registered now, 0 when none */
	int stream;      /* K_OUT: its index */
	/* K_CTL and K_ATTACH connections */
	struct buf in;
	int waiting;           /* K_CTL: a wait request is pending */
	int registered;        /* K_ATTACH: takes output */
	int want_out, want_err;
	int reads_stdin;
	int dead;              /* closed; freed after this round of events */
	int eof;
	struct watch *next;    /* the list of connections */
};

static int ep = -1;
static struct watch *conns;
static struct watch w_ctl_l = {.kind = K_CTL_L}, w_attach_l = {.kind = K_ATTACH_L},
		    w_sig = {.kind = K_SIG}, w_pidfd = {.kind = K_PIDFD, .fd = -1},
		    w_fifo = {.kind = K_FIFO, .fd = -1}, w_timer = {.kind = K_TIMER, .fd = -1},
		    w_stdin = {.kind = K_STDIN, .fd = -1};
static struct watch w_out[MAX_STREAMS];
static int console_fd = -1;

/* stdin: its descriptor (the pipe, or the tty master), bytes not yet
 * written to it, and whether it is to be closed once they are. */
static int stdin_fd = -1;
static struct buf stdin_pending;
static int stdin_close_after, stdin_closed;

static enum { P_WAIT_GO, P_STARTING, P_RUNNING, P_DRAINING, P_DONE } phase = P_WAIT_GO;
static int exit_code;
static char *exit_error; /* NULL or the exit record's error */
static int oom_killed;
static int64_t finished_at;
static int start_failed;
static int last_signal; /* adopted: the last signal sent */
static int child_reaped, child_code;

static void set_events(struct watch *w, uint32_t ev)
{
	if (w->fd < 0 || w->events == ev)
		return;
	struct epoll_event e = {.events = ev, .data.ptr = w};
	if (!ev)
		epoll_ctl(ep, EPOLL_CTL_DEL, w->fd, NULL);
	else if (!w->events)
		epoll_ctl(ep, EPOLL_CTL_ADD, w->fd, &e);
	else
		epoll_ctl(ep, EPOLL_CTL_MOD, w->fd, &e);
	w->events = ev;
}

static void arm_timer(int64_t ms)
{
	struct itimerspec its = {0};
	its.it_value.tv_sec = ms / 1000;
	its.it_value.tv_nsec = (ms % 1000) * 1000000;
	timerfd_settime(w_timer.fd, 0, &its, NULL);
}

/* conn_close closes a connection; it stays listed, dead, until the
 * round of events that may still name it is over (conn_sweep). */
static void conn_close(struct watch *c)
{
	if (c->dead)
		return;
	set_events(c, 0);
	close(c->fd);
	c->fd = -1;
	c->dead = 1;
	c->registered = c->reads_stdin = c->waiting = 0;
	buf_free(&c->in);
}

static void conn_sweep(void)
{
	for (struct watch **pp = &conns; *pp;) {
		struct watch *c = *pp;
		if (c->dead) {
			*pp = c->next;
			free(c);
		} else {
			pp = &c->next;
		}
	}
}

/* write_all writes to a blocking socket (its send timeout bounds it). */
static int write_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= w;
	}
	return 0;
}

/* write_frame writes one frame of Docker's multiplexed stream format in
 * one writev: stream byte, three zeros, big-endian length, payload. */
static int write_frame(int fd, int stream, const char *p, size_t n)
{
	unsigned char hdr[8] = {stream, 0, 0, 0, n >> 24, n >> 16, n >> 8, n};
	struct iovec iov[2] = {{hdr, 8}, {(void *)p, n}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = n ? 2 : 1};
	size_t total = 8 + n;
	ssize_t w;
	do
		w = sendmsg(fd, &msg, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return -1;
	if ((size_t)w == total)
		return 0;
	/* A short write: send the rest plainly. */
	if ((size_t)w < 8) {
		if (write_all(fd, hdr + w, 8 - w))
			return -1;
		w = 8;
	}
	return write_all(fd, p + (w - 8), n - (w - 8));
}

static void set_timeout(int fd, int secs)
{
	struct timeval tv = {.tv_sec = secs};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* -------------------------------------------------------------- stdin */

static void stdin_update(void);

static void stdin_do_close(void)
{
	if (stdin_closed || stdin_fd < 0)
		return;
	stdin_closed = 1;
	if (stdin_fd != console_fd) {
		set_events(&w_stdin, 0);
		close(stdin_fd);
	}
}

/* stdin_flush writes what is pending without blocking. */
static void stdin_flush(void)
{
	while (stdin_pending.len && !stdin_closed) {
		ssize_t w = write(stdin_fd, stdin_pending.p, stdin_pending.len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w <= 0) { /* the container closed its stdin: drop it */
			stdin_pending.len = 0;
			break;
		}
		buf_drop(&stdin_pending, w);
	}
	if (!stdin_pending.len && stdin_close_after)
		stdin_do_close();
	stdin_update();
}

/* stdin_update registers interest: writable stdin while bytes wait, and
 * readable attach connections only while none do (so a container that
 * does not read its stdin holds up the clients, not the loop). */
static void stdin_update(void)
{
	int pending = stdin_pending.len > 0 && !stdin_closed;
	if (stdin_fd >= 0 && stdin_fd == console_fd) {
		struct watch *w = &w_out[0];
		int in = phase >= P_RUNNING && phase < P_DONE && !w->eof;
		set_events(w, (in ? EPOLLIN : 0) | (pending ? EPOLLOUT : 0));
	} else if (stdin_fd >= 0 && !stdin_closed) {
		set_events(&w_stdin, pending ? EPOLLOUT : 0);
	}
	for (struct watch *c = conns; c; c = c->next)
		if (c->kind == K_ATTACH && c->reads_stdin)
			set_events(c, pending ? 0 : EPOLLIN);
}

/* ------------------------------------------------------------- output */

static void pump(struct watch *w)
{
	char buf[PUMP_BUFFER];
	for (int rounds = 0; rounds < 4; rounds++) {
		ssize_t n = read(w->fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) { /* the end, or EIO: a tty whose last slave closed */
			w->eof = 1;
			if (w->fd == console_fd && stdin_pending.len && !stdin_closed)
				set_events(w, EPOLLOUT);
			else
				set_events(w, 0);
			return;
		}
		log_write(w->stream, buf, n);
		int sn = w->stream + 1;
		for (struct watch *c = conns, *next; c; c = next) {
			next = c->next;
			if (c->kind != K_ATTACH || !c->registered)
				continue;
			if ((sn == 1 && c->want_out) || (sn == 2 && c->want_err))
				if (write_frame(c->fd, sn, buf, n))
					conn_close(c);
		}
	}
}

/* ------------------------------------------------------------ cgroup */

static int write_str(const char *dir, const char *name, const char *v)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = write(fd, v, strlen(v)) < 0 ? -1 : 0;
	int e = errno;
	if (close(fd) && !r)
		r = -1, e = errno;
	errno = e;
	return r;
}

static int read_key(const char *dir, const char *name, const char *key, uint64_t *v)
{
	char p[4096], line[256];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "re");
	if (!f)
		return -1;
	size_t kl = strlen(key);
	int found = -1;
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, key, kl) && line[kl] == ' ') {
			*v = strtoull(line + kl + 1, NULL, 10);
			found = 0;
			break;
		}
	}
	fclose(f);
	return found;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* end_cgroup notes an OOM kill in the container's cgroup, kills what is
 * left there (a daemonised child that outlived its init) and removes it,
 * within 10 s, as shim.EndCgroup does. */
static void end_cgroup(void)
{
	const char *dir = cfg.cgroup;
	if (!*dir)
		return;
	uint64_t v;
	if (read_key(dir, "memory.events", "oom_kill", &v) == 0 && v > 0)
		oom_killed = 1;
	int64_t deadline = mono_ms() + 10000;
	if (write_str(dir, "cgroup.freeze", "0") == 0) {
		while (mono_ms() < deadline && read_key(dir, "cgroup.events", "frozen", &v) == 0 && v)
			sleep_ms(2);
	}
	struct stat st;
	if (write_str(dir, "cgroup.kill", "1") != 0 && errno == ENOENT && stat(dir, &st) == 0) {
		/* No cgroup.kill (before Linux 5.14): kill each process. */
		char p[4096];
		snprintf(p, sizeof p, "%s/cgroup.procs", dir);
		while (mono_ms() < deadline) {
			FILE *f = fopen(p, "re");
			int any = 0;
			long pid;
			if (!f)
				break;
			while (fscanf(f, "%ld", &pid) == 1)
				if (pid > 0)
					any = 1, kill(pid, SIGKILL);
			fclose(f);
			if (!any)
				break;
			sleep_ms(10);
		}
	}
	for (;;) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return;
		if (errno != EBUSY || mono_ms() >= deadline) {
			fprintf(stderr, "lodge-monitor: removing %s: %s\n", dir, goerr(errno));
			return;
		}
		sleep_ms(5);
	}
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(p);
	return 0;
}

/* ---------------------------------------------------------- the init */

/* open_init is a pidfd of the adopted init, checked after the open to be
 * the process its start time names; -1 when it has ended. */
static int open_init(void)
{
	if (cfg.adopt_pid <= 0 || !cfg.adopt_start)
		return -1;
	int fd = syscall(SYS_pidfd_open, cfg.adopt_pid, 0);
	if (fd < 0)
		return -1;
	if (start_time(cfg.adopt_pid) != cfg.adopt_start) {
		close(fd);
		return -1;
	}
	return fd;
}

static const char *signal_init(int sig)
{
	if (!cfg.adopted)
		return kill(cfg.pid, sig) ? goerr(errno) : NULL;
	last_signal = sig;
	int fd = open_init();
	if (fd < 0)
		return "the container's init process has ended";
	int r = syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
	int e = errno;
	close(fd);
	if (r < 0)
		return e == ESRCH ? "the container's init process has ended" : goerr(e);
	return NULL;
}

static void finish(void);
static void fifo_ready(void);

static void ended(int code, const char *err)
{
	exit_code = code;
	free(exit_error);
	exit_error = err ? strdup(err) : NULL;
	phase = P_DRAINING;
	int open_outputs = 0;
	for (int i = 0; i < cfg.nout; i++)
		open_outputs += !w_out[i].eof;
	if (!open_outputs) {
		finish();
		return;
	}
	/* With a tty, the master reads EIO once the last slave is closed, but
	 * a daemonised grandchild can keep it open: do not wait forever. */
	arm_timer(2000);
}

/* reap collects the init's exit status when it has ended (at any phase),
 * and acts on it once the container was started. */
static void reap(void)
{
	if (cfg.adopted)
		return;
	if (!child_reaped) {
		int ws;
		pid_t r;
		do
			r = waitpid(cfg.pid, &ws, WNOHANG);
		while (r < 0 && errno == EINTR);
		if (r == 0)
			return;
		child_reaped = 1;
		child_code = EXIT_UNKNOWN;
		if (r == cfg.pid)
			child_code = WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : WEXITSTATUS(ws);
	}
	int code = child_code;
	if (phase == P_STARTING) {
		/* It ended before the fifo's end was seen here: it may have run
		 * its program (the fifo's byte read already, or still in it) or
		 * died before. The fifo decides, with its writer gone; a start
		 * calls back here for the exit. */
		fifo_ready();
		return;
	}
	if (phase == P_RUNNING)
		ended(code, NULL);
}

static void started(void)
{
	phase = P_RUNNING;
	for (int i = 0; i < cfg.nout; i++)
		set_events(&w_out[i], EPOLLIN);
	stdin_update();
	if (cfg.adopted) {
		w_pidfd.fd = open_init();
		if (w_pidfd.fd < 0)
			ended(last_signal ? 128 + last_signal : EXIT_UNKNOWN,
			      last_signal ? NULL : EXIT_UNKNOWN_REASON);
		else
			set_events(&w_pidfd, EPOLLIN);
	} else {
		reap(); /* it may have ended already */
	}
}

static void fifo_path(char *p, size_t n)
{
	snprintf(p, n, "%s/%s/exec.fifo", cfg.state_root, cfg.id);
}

/* start lets the container's program run: libcontainer's init blocks on
 * its exec fifo until a reader takes its byte. */
static void start(void)
{
	if (phase != P_WAIT_GO)
		return;
	arm_timer(0);
	if (cfg.adopted) {
		started();
		return;
	}
	phase = P_STARTING;
	char p[4096];
	fifo_path(p, sizeof p);
	w_fifo.fd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (w_fifo.fd < 0) {
		char msg[4200];
		snprintf(msg, sizeof msg, "exec fifo: open %s: %s", p, goerr(errno));
		start_failed = 1;
		ended(127, msg);
		return;
	}
	set_events(&w_fifo, EPOLLIN);
	reap();
}

/* fifo_ready reads libcontainer's exec fifo: its byte says the init runs
 * the program, its end (the init's exec closes it) that it has. */
static void fifo_ready(void)
{
	char b[16];
	ssize_t n;
	static int got;
	while ((n = read(w_fifo.fd, b, sizeof b)) > 0)
		got += n;
	if (n < 0 && errno == EAGAIN)
		return; /* a writer that has not closed yet: the end comes */
	set_events(&w_fifo, 0);
	close(w_fifo.fd);
	w_fifo.fd = -1;
	if (!got) {
		start_failed = 1;
		ended(127, child_reaped ? "container process is already dead"
					: "cannot start an already running container");
		return;
	}
	char p[4096];
	fifo_path(p, sizeof p);
	unlink(p);
	if (phase == P_STARTING)
		started();
}

/* --------------------------------------------------------- the end */

static void add_exit(struct buf *b)
{
	buf_printf(b, "{\"exitCode\":%d", exit_code);
	if (oom_killed)
		buf_adds(b, ",\"oomKilled\":true");
	buf_adds(b, ",\"finishedAt\":\"");
	add_time(b, finished_at);
	buf_addc(b, '"');
	if (exit_error) {
		buf_adds(b, ",\"error\":");
		json_add_str(b, exit_error, strlen(exit_error));
	}
	buf_addc(b, '}');
}

static void write_exit(void)
{
	struct buf b = {0};
	add_exit(&b);
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp%d", cfg.exit_path, getpid());
	int fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	int ok = fd >= 0 && write(fd, b.p, b.len) == (ssize_t)b.len;
	if (fd >= 0 && close(fd))
		ok = 0;
	/* Renamed into place, not synced: it matters only until lodged reads it. */
	if (!ok || rename(tmp, cfg.exit_path)) {
		warnx("writing %s: %s", cfg.exit_path, goerr(errno));
		unlink(tmp);
	}
	buf_free(&b);
}

static void ctl_process(struct watch *c);
static void ctl_reply(struct watch *c, const char *err, int with_state);

static void finish(void)
{
	if (phase == P_DONE)
		return;
	if (exit_code == EXIT_UNKNOWN && cfg.adopted && !exit_error && !last_signal)
		exit_error = strdup(EXIT_UNKNOWN_REASON);
	log_close();
	end_cgroup();
	/* The container's state goes before anyone hears of the exit: a
	 * restart reuses the ID at once. */
	char p[4096];
	snprintf(p, sizeof p, "%s/%s", cfg.state_root, cfg.id);
	if (*cfg.state_root && *cfg.id)
		nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	finished_at = now_ns();
	write_exit();
	phase = P_DONE;
	for (struct watch *c = conns, *next; c; c = next) {
		next = c->next;
		if (c->kind == K_ATTACH && c->registered)
			conn_close(c);
	}
	for (struct watch *c = conns, *next; c; c = next) {
		next = c->next;
		if (c->kind == K_CTL && c->waiting) {
			/* The wait's line is gone from c->in: answer it here,
			 * then what followed it. */
			c->waiting = 0;
			ctl_reply(c, NULL, 1);
			ctl_process(c);
			if (c->eof)
				conn_close(c);
		}
	}
	/* Let waiters collect the status before the sockets go. */
	arm_timer(100);
}

/* ------------------------------------------------------------ control */

static void ctl_reply(struct watch *c, const char *err, int with_state)
{
	struct buf b = {0};
	buf_addc(&b, '{');
	int comma = 0;
	if (err) {
		buf_adds(&b, "\"error\":");
		json_add_str(&b, err, strlen(err));
		comma = 1;
	}
	if (with_state) {
		if (phase == P_DONE) {
			buf_adds(&b, comma ? ",\"exit\":" : "\"exit\":");
			add_exit(&b);
		} else {
			buf_printf(&b, "%s\"pid\":%d,\"running\":true", comma ? "," : "",
				   cfg.adopted ? cfg.adopt_pid : cfg.pid);
		}
	}
	buf_adds(&b, "}\n");
	if (write_all(c->fd, b.p, b.len))
		c->eof = 1;
	buf_free(&b);
}

/* send_outputs answers "fds": one message with the reply and the output
 * descriptors (shim.OutputFiles reads it). */
static void send_outputs(struct watch *c)
{
	struct buf b = {0};
	buf_adds(&b, "{\"streams\":[");
	for (int i = 0; i < cfg.nout; i++) {
		if (i)
			buf_addc(&b, ',');
		json_add_str(&b, cfg.stream[i], strlen(cfg.stream[i]));
	}
	buf_adds(&b, "]}\n");
	char cbuf[CMSG_SPACE(sizeof(int) * MAX_STREAMS)];
	memset(cbuf, 0, sizeof cbuf);
	struct iovec iov = {b.p, b.len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (cfg.nout) {
		msg.msg_control = cbuf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * cfg.nout);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * cfg.nout);
		memcpy(CMSG_DATA(cm), cfg.out_fd, sizeof(int) * cfg.nout);
	}
	while (sendmsg(c->fd, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
	buf_free(&b);
}

/* ctl_process answers each complete request line c holds, one JSON
 * object a line; a wait before the end holds the rest back. */
static void ctl_process(struct watch *c)
{
	while (!c->waiting && !c->eof) {
		char *nl = memchr(c->in.p, '\n', c->in.len);
		if (!nl)
			return;
		size_t k = nl - c->in.p + 1;
		struct jval *req = json_parse(c->in.p, k - 1);
		buf_drop(&c->in, k);
		if (!req || req->type != J_OBJ) {
			json_free(req);
			c->eof = 1;
			return;
		}
		const char *op = json_str(req, "op", "");
		if (!strcmp(op, "go")) {
			ctl_reply(c, NULL, 0);
			json_free(req);
			start(); /* after the reply: the daemon waits on neither */
			continue;
		} else if (!strcmp(op, "fds")) {
			send_outputs(c);
			c->eof = 1;
		} else if (!strcmp(op, "resize")) {
			struct winsize ws = {.ws_row = json_int(req, "h", 0), .ws_col = json_int(req, "w", 0)};
			if (console_fd < 0)
				ctl_reply(c, "not a tty", 0);
			else
				ctl_reply(c, ioctl(console_fd, TIOCSWINSZ, &ws) ? goerr(errno) : NULL, 0);
		} else if (!strcmp(op, "signal")) {
			if (phase == P_DONE || phase == P_DRAINING)
				ctl_reply(c, "container is not running", 0);
			else
				ctl_reply(c, signal_init(json_int(req, "sig", 0)), 0);
		} else if (!strcmp(op, "reopenlog")) {
			if (phase == P_DONE)
				ctl_reply(c, "container is not running", 0);
			else
				ctl_reply(c, log_reopen(), 0);
		} else if (!strcmp(op, "state")) {
			ctl_reply(c, NULL, 1);
		} else if (!strcmp(op, "wait")) {
			if (phase == P_DONE)
				ctl_reply(c, NULL, 1);
			else
				c->waiting = 1;
		} else {
			char msg[300];
			snprintf(msg, sizeof msg, "unknown op %.200s", op);
			ctl_reply(c, msg, 0);
		}
		json_free(req);
	}
}

/* conn_read reads what a connection sent; 0 at its end. */
static ssize_t conn_read(struct watch *c)
{
	char b[4096];
	ssize_t n;
	do
		n = recv(c->fd, b, sizeof b, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		buf_add(&c->in, b, n);
	return n;
}

static void ctl_ready(struct watch *c)
{
	if (conn_read(c) <= 0) {
		conn_close(c);
		return;
	}
	if (c->in.len > 1 << 20) { /* no request is that long */
		conn_close(c);
		return;
	}
	ctl_process(c);
	if (c->eof)
		conn_close(c);
}

/* stdin_from moves what an attach connection holds to stdin. */
static void stdin_from(struct watch *c)
{
	if (c->in.len) {
		if (!stdin_closed)
			buf_add(&stdin_pending, c->in.p, c->in.len);
		c->in.len = 0;
		stdin_flush();
	}
}

static void attach_ready(struct watch *c)
{
	ssize_t n = conn_read(c);
	if (!c->registered) {
		char *nl = c->in.p ? memchr(c->in.p, '\n', c->in.len) : NULL;
		if (!nl) {
			if (n <= 0 || c->in.len > 4096)
				conn_close(c);
			return;
		}
		size_t k = nl - c->in.p + 1;
		struct jval *req = json_parse(c->in.p, k - 1);
		buf_drop(&c->in, k);
		if (!req || req->type != J_OBJ || phase == P_DONE) {
			json_free(req);
			conn_close(c);
			return;
		}
		c->want_out = json_bool(req, "stdout");
		c->want_err = json_bool(req, "stderr");
		int want_in = json_bool(req, "stdin");
		json_free(req);
		c->registered = 1;
		/* An empty frame says the connection is registered: output from
		 * now on reaches it, so the daemon may let the container go. */
		if (write_frame(c->fd, 0, NULL, 0)) {
			conn_close(c);
			return;
		}
		if (!want_in || stdin_fd < 0) {
			set_events(c, 0); /* it only takes output now */
			c->in.len = 0;
			return;
		}
		c->reads_stdin = 1;
		stdin_from(c);
		if (n > 0)
			return;
	} else if (n > 0) {
		stdin_from(c);
		return;
	}
	/* The client closed its side: stdin ends for a StdinOnce container
	 * (docker run -i), as with Docker. With a tty it never does: the
	 * client may have detached, and the shell must go on running for the
	 * next attach. */
	c->reads_stdin = 0;
	set_events(c, 0);
	if (cfg.stdin_once && console_fd < 0) {
		stdin_close_after = 1;
		stdin_flush();
	}
}

static void accept_conn(struct watch *l)
{
	int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct watch *c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		return;
	}
	c->kind = l->kind == K_CTL_L ? K_CTL : K_ATTACH;
	c->fd = fd;
	set_timeout(fd, l->kind == K_CTL_L ? 10 : 30);
	c->next = conns;
	conns = c;
	set_events(c, EPOLLIN);
}

/* ---------------------------------------------------------------- main */

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
}

int main(void)
{
	if (load_handoff())
		return 1;
	signal(SIGPIPE, SIG_IGN);
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGCHLD);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	ep = epoll_create1(EPOLL_CLOEXEC);
	w_sig.fd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);
	w_timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (ep < 0 || w_sig.fd < 0 || w_timer.fd < 0) {
		warnx("epoll: %s", goerr(errno));
		return 1;
	}
	if (open_log())
		return 1;
	w_ctl_l.fd = cfg.ctl_fd;
	w_attach_l.fd = cfg.attach_fd;
	set_nonblock(cfg.ctl_fd);
	set_nonblock(cfg.attach_fd);
	for (int i = 0; i < cfg.nout; i++) {
		w_out[i] = (struct watch){.kind = K_OUT, .fd = cfg.out_fd[i], .stream = i};
		set_nonblock(cfg.out_fd[i]);
	}
	if (cfg.tty && cfg.nout == 1)
		console_fd = cfg.out_fd[0];
	if (cfg.stdin_fd >= 0) {
		stdin_fd = w_stdin.fd = cfg.stdin_fd;
		set_nonblock(stdin_fd);
	} else if (console_fd >= 0 && cfg.open_stdin) {
		stdin_fd = console_fd; /* a tty's master takes input too */
	}
	set_events(&w_ctl_l, EPOLLIN);
	set_events(&w_attach_l, EPOLLIN);
	set_events(&w_sig, EPOLLIN);
	set_events(&w_timer, EPOLLIN);
	if (cfg.adopted)
		start(); /* an adopted container runs already */
	else
		arm_timer(60000); /* a daemon that died before "go" must not leave it stuck */
	reap(); /* its SIGCHLD may have come before the signalfd */

	struct epoll_event evs[16];
	for (;;) {
		int n = epoll_wait(ep, evs, 16, -1);
		if (n < 0 && errno != EINTR) {
			warnx("epoll_wait: %s", goerr(errno));
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct watch *w = evs[i].data.ptr;
			uint32_t e = evs[i].events;
			if ((w->kind == K_CTL || w->kind == K_ATTACH) && w->dead)
				continue;
			switch (w->kind) {
			case K_CTL_L:
			case K_ATTACH_L:
				accept_conn(w);
				break;
			case K_CTL:
				ctl_ready(w);
				break;
			case K_ATTACH:
				attach_ready(w);
				break;
			case K_OUT:
				if (e & EPOLLOUT)
					stdin_flush();
				if (e & (EPOLLIN | EPOLLHUP | EPOLLERR) && !w->eof)
					pump(w);
				break;
			case K_STDIN:
				stdin_flush();
				break;
			case K_SIG: {
				struct signalfd_siginfo si;
				while (read(w->fd, &si, sizeof si) > 0)
					;
				reap();
				break;
			}
			case K_PIDFD:
				set_events(w, 0);
				close(w->fd);
				w->fd = -1;
				ended(last_signal ? 128 + last_signal : EXIT_UNKNOWN,
				      last_signal ? NULL : EXIT_UNKNOWN_REASON);
				break;
			case K_FIFO:
				fifo_ready();
				break;
			case K_TIMER: {
				uint64_t x;
				if (read(w->fd, &x, sizeof x) != sizeof x)
					break;
				if (phase == P_WAIT_GO)
					start();
				else if (phase == P_DRAINING)
					finish();
				else if (phase == P_DONE) {
					if (start_failed)
						warnx("%s", exit_error ? exit_error : "start failed");
					return start_failed ? 1 : 0;
				}
				break;
			}
			}
			if (phase == P_DRAINING) {
				int open_outputs = 0;
				for (int k = 0; k < cfg.nout; k++)
					open_outputs += !w_out[k].eof;
				if (!open_outputs)
					finish();
			}
		}
		conn_sweep();
	}
}
