/*
 * lodge-wait: what the foreground lodged becomes once its daemon answers.
 *
 * From then on that process only waits for the daemon's end, which the
 * keeper tells it on a unix connection ({"exit":N}), and passes SIGINT,
 * SIGTERM, SIGHUP and SIGQUIT on to the daemon, saying STOPPING=1 to
 * systemd first when asked to stop. A terminal or a systemd unit keeps it
 * for the daemon's whole life; as lodged, a Go program linking every
 * package of the engine, it held ~5 MiB for that (issue 20). lodged execs
 * it (the pid stays what the terminal or systemd knows) with the signals
 * it passes on blocked, so none that comes in between is lost.
 *
 * Usage: lodge-wait DAEMON_PID KEEPER_FD [NOTIFY_SOCKET]
 * It exits with the daemon's status, or 1 if the keeper did not say it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const int passed[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
static volatile sig_atomic_t pending[NSIG];

static void on_signal(int s) { pending[s] = 1; }

/* notify sends state to systemd's NOTIFY_SOCKET (a path, or @abstract). */
static void notify(const char *addr, const char *state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = addr ? strlen(addr) : 0;
	if (n == 0 || n >= sizeof sa.sun_path)
		return;
	memcpy(sa.sun_path, addr, n);
	if (addr[0] == '@')
		sa.sun_path[0] = '\0';
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	if (sendto(s, state, strlen(state), 0, (struct sockaddr *)&sa, offsetof(struct sockaddr_un, sun_path) + n) < 0)
		fprintf(stderr, "lodged: sd_notify: %s\n", strerror(errno));
	close(s);
}

/* exit_status finds {"exit":N} in what the keeper said; -1 until whole. */
static int exit_status(const char *buf)
{
	const char *e = strstr(buf, "\"exit\":");
	if (!e)
		return -1;
	e += strlen("\"exit\":");
	char *end;
	long c = strtol(e, &end, 10);
	if (end == e || (*end != '}' && *end != ','))
		return -1;
	return (int)c;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: lodge-wait DAEMON_PID KEEPER_FD [NOTIFY_SOCKET]\n");
		return 2;
	}
	pid_t pid = (pid_t)atoi(argv[1]);
	int fd = atoi(argv[2]);
	const char *notify_addr = argc > 3 ? argv[3] : NULL;

	sigset_t block, waitmask;
	sigemptyset(&block);
	for (size_t i = 0; i < sizeof passed / sizeof passed[0]; i++)
		sigaddset(&block, passed[i]);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof passed / sizeof passed[0]; i++) {
		sigaction(passed[i], &sa, NULL);
		sigdelset(&waitmask, passed[i]);
	}
	signal(SIGPIPE, SIG_IGN);

	char buf[4096];
	size_t len = 0;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		/* The signals are let in only while waiting here. */
		int r = ppoll(&p, 1, NULL, &waitmask);
		for (size_t i = 0; i < sizeof passed / sizeof passed[0]; i++) {
			int s = passed[i];
			if (!pending[s])
				continue;
			pending[s] = 0;
			if (s == SIGTERM || s == SIGINT)
				notify(notify_addr, "STOPPING=1");
			/* A daemon already gone is ending anyway. */
			if (kill(pid, s) < 0 && errno != ESRCH)
				fprintf(stderr, "lodged: passing signal %d to the daemon: %s\n", s, strerror(errno));
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "lodged: waiting for the daemon: %s\n", strerror(errno));
			return 1;
		}
		ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, "lodged: waiting for the daemon: %s\n", strerror(errno));
			return 1;
		}
		if (n == 0)
			return 1; /* the keeper went without saying */
		len += (size_t)n;
		buf[len] = '\0';
		int code = exit_status(buf);
		if (code >= 0)
			return code;
		if (len >= sizeof buf - 1)
			len = 0; /* not a reply of the keeper's: keep listening */
	}
}
