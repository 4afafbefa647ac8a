/* lodge-exec: runs one `docker exec` process in a running container, in C,
 * so that an exec costs no Go program start (issue 20). It speaks the exec
 * helper protocol of lodge-monitor (runtime/exec_helper.go), so lodged runs
 * either: descriptor 3 is the control socket (one execRequest in; one
 * execReply with the pid or the error, then one with the exit code, out),
 * 4 the console socket with a tty, else stdin (when the exec has input),
 * 5 stdout, 6 stderr.
 *
 * What the container needs is in its exec plan (runtime/execplan.go),
 * which lodged makes from libcontainer's state at the container's first
 * exec: the init's pid and start time, its namespaces, cgroup,
 * capabilities, no_new_privs, rlimits, oom_score_adj and the seccomp
 * program libcontainer loads. This process joins the namespaces (through a
 * pidfd of the init: all at once, and never those of a process that took
 * a dead init's pid), forks the exec's process into the pid namespace,
 * reports its pid, waits for it and reports its exit. The child applies
 * what libcontainer's setns init applies, in its order (oom_score_adj is
 * set before the fork and inherited): cgroup, session
 * keyring, console, no_new_privs, seccomp (early when it needs privilege,
 * else last), the bounding set, groups, gid, uid, cwd, capabilities, and
 * execs the command found on the exec's $PATH. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "json.h"
#include "proc.h"

#define CTL_FD 3
#define CONSOLE_FD 4 /* with a tty; else stdin, when the exec has input */
#define STDOUT_FD 5
#define STDERR_FD 6
#define EXIT_UNKNOWN 255

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#define KEYCTL_JOIN_SESSION_KEYRING 1

/* goerr is errno as Go spells it: strerror with a small first letter. */
static const char *goerr(int e)
{
	static char s[128];
	snprintf(s, sizeof s, "%s", strerror(e));
	if (s[0] >= 'A' && s[0] <= 'Z' && !(s[1] >= 'A' && s[1] <= 'Z'))
		s[0] += 'a' - 'A';
	return s;
}

/* ------------------------------------------------------------- replies */

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* reply sends one execReply line, as Go's json.Encoder writes it. */
static int reply(const char *key, const char *err, long v)
{
	struct buf b = {0};
	buf_addc(&b, '{');
	if (err) {
		buf_adds(&b, "\"error\":");
		json_add_str(&b, err, strlen(err));
	} else {
		buf_printf(&b, "\"%s\":%ld", key, v);
	}
	buf_adds(&b, "}\n");
	int r = send_all(CTL_FD, b.p, b.len);
	buf_free(&b);
	return r;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	char msg[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	reply(NULL, msg, 0);
	_exit(1);
}

/* ------------------------------------------------------------- input */

static char *read_fd(int fd, size_t *len, int one_line)
{
	struct buf b = {0};
	char tmp[8192];
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof tmp);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		buf_add(&b, tmp, (size_t)n);
		if (one_line && memchr(tmp, '\n', (size_t)n))
			break;
	}
	buf_addc(&b, 0);
	*len = b.len - 1;
	return b.p;
}

static struct jval *read_json_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t n;
	char *s = read_fd(fd, &n, 0);
	close(fd);
	struct jval *v = json_parse(s, n);
	free(s);
	return v;
}

static uint64_t json_u64(const struct jval *o, const char *key)
{
	const char *s = json_str(o, key, "0");
	return strtoull(s, NULL, 10);
}

/* strv is a JSON array of strings as a NULL-terminated vector. */
static char **strv(const struct jval *a, size_t *count)
{
	size_t n = a && a->type == J_ARR ? a->n : 0;
	char **v = calloc(n + 1, sizeof *v);
	if (!v)
		fail("out of memory");
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (a->items[i]->type == J_STR)
			v[k++] = a->items[i]->str;
	if (count)
		*count = k;
	return v;
}

/* ------------------------------------------------------------- the init */

static ino_t ns_ino(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_ino : 0;
}

static const struct {
	int flag;
	const char *name;
} nstab[] = {
	/* the user namespace first: it gives the rights to join the others */
	{CLONE_NEWUSER, "user"}, {CLONE_NEWIPC, "ipc"}, {CLONE_NEWUTS, "uts"},
	{CLONE_NEWNET, "net"},   {CLONE_NEWPID, "pid"}, {CLONE_NEWNS, "mnt"},
	{CLONE_NEWCGROUP, "cgroup"},
};

/* join enters the init's namespaces named by flags: through its pidfd in
 * one call where the kernel can (5.8), else one /proc/pid/ns file each,
 * all opened before the first is joined. */
static void join(int pidfd, int pid, int flags)
{
	if (!flags)
		return;
	if (setns(pidfd, flags) == 0)
		return;
	if (errno != EINVAL)
		fail("joining the container's namespaces: %s", goerr(errno));
	int fds[sizeof nstab / sizeof nstab[0]];
	for (size_t i = 0; i < sizeof nstab / sizeof nstab[0]; i++) {
		fds[i] = -1;
		if (!(flags & nstab[i].flag))
			continue;
		char p[64];
		snprintf(p, sizeof p, "/proc/%d/ns/%s", pid, nstab[i].name);
		if ((fds[i] = open(p, O_RDONLY | O_CLOEXEC)) < 0)
			fail("opening %s: %s", p, goerr(errno));
	}
	for (size_t i = 0; i < sizeof nstab / sizeof nstab[0]; i++) {
		if (fds[i] < 0)
			continue;
		if (setns(fds[i], nstab[i].flag) < 0)
			fail("joining the container's %s namespace: %s", nstab[i].name, goerr(errno));
		close(fds[i]);
	}
}

/* ------------------------------------------------------------- the child */

static int errpipe = -1; /* the child's failures, to the parent */

static void child_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void child_fail(const char *fmt, ...)
{
	char msg[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof msg - 1)
		n = sizeof msg - 1;
	if (write(errpipe, msg, (size_t)n) < 0) {
		/* the parent is gone: nobody to tell */
	}
	_exit(EXIT_UNKNOWN);
}

struct req {
	const char *id;
	char **args, **env;
	size_t nenv;
	const char *cwd;
	uid_t uid;
	gid_t gid;
	gid_t *gids;
	size_t ngids;
	int tty, has_stdin;
	unsigned short width, height;
};

struct plan {
	int pid, ns;
	uint64_t start;
	char **cgroups; /* v1 directories, then the v2 one */
	size_t ncgroups;
	int rootless_cgroups, nnp, no_new_keyring, rootless_euid;
	int has_caps;
	uint64_t bounding, effective, inheritable, permitted, ambient;
	int has_oom;
	long oom;
	int has_umask;
	mode_t umask;
	const struct jval *rlimits;
	struct sock_filter *bpf;
	unsigned short bpf_len;
	unsigned seccomp_flags;
};

static void load_seccomp(const struct plan *p)
{
	if (!p->bpf)
		return;
	struct sock_fprog prog = {.len = p->bpf_len, .filter = p->bpf};
	int r;
	if (p->seccomp_flags == 0)
		r = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
	else
		r = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->seccomp_flags, &prog);
	if (r < 0)
		child_fail("error loading seccomp filter into kernel: error loading seccomp filter: %s", goerr(errno));
}

/* send_console hands the tty's master to lodged, as libcontainer's console
 * socket does. */
static void send_console(int sock, int master, const char *name)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	memset(cbuf, 0, sizeof cbuf);
	struct iovec iov = {.iov_base = (void *)name, .iov_len = strlen(name)};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &master, sizeof(int));
	while (sendmsg(sock, &m, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			child_fail("sending the console: %s", goerr(errno));
}

/* console makes a tty of the container's own /dev/ptmx, hands its master
 * over and makes its slave this process's controlling tty and stdio. */
static void console(const struct req *r)
{
	int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		child_fail("opening /dev/ptmx: %s", goerr(errno));
	int unlock = 0;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		child_fail("unlockpt: %s", goerr(errno));
	int n;
	if (ioctl(master, TIOCGPTN, &n) < 0)
		child_fail("ptsname: %s", goerr(errno));
	int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		child_fail("opening the tty's peer: %s", goerr(errno));
	if (r->width || r->height) {
		struct winsize ws = {.ws_row = r->height, .ws_col = r->width};
		if (ioctl(master, TIOCSWINSZ, &ws) < 0)
			child_fail("setting the tty size: %s", goerr(errno));
	}
	char name[64];
	snprintf(name, sizeof name, "/dev/pts/%d", n);
	send_console(CONSOLE_FD, master, name);
	close(master);
	close(CONSOLE_FD);
	for (int fd = 0; fd < 3; fd++)
		if (dup2(slave, fd) < 0)
			child_fail("dup2: %s", goerr(errno));
	close(slave);
	if (ioctl(0, TIOCSCTTY, 0) < 0)
		child_fail("setctty: %s", goerr(errno));
}

static void stdio(const struct req *r, int devnull)
{
	if (dup2(r->has_stdin ? CONSOLE_FD : devnull, 0) < 0 || dup2(STDOUT_FD, 1) < 0 ||
	    dup2(STDERR_FD, 2) < 0)
		child_fail("dup2: %s", goerr(errno));
	close(CONSOLE_FD);
	close(STDOUT_FD);
	close(STDERR_FD);
}

/* own_stdio gives the exec's user its stdio, as libcontainer does, so a
 * non-root user can use its tty; /dev/null and what cannot be changed are
 * left as they are. */
static void own_stdio(uid_t uid)
{
	for (int fd = 0; fd < 3; fd++) {
		struct stat st;
		if (fstat(fd, &st) < 0)
			child_fail("fstat: %s", goerr(errno));
		if (st.st_uid == uid || (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)))
			continue;
		if (fchown(fd, uid, (gid_t)-1) < 0 && errno != EPERM && errno != EROFS)
			child_fail("fchown stdio: %s", goerr(errno));
	}
}

/* env_value is key's value in env, NULL when unset. */
static const char *env_value(char **env, const char *key)
{
	size_t kl = strlen(key);
	const char *v = NULL;
	for (char **e = env; *e; e++)
		if (strncmp(*e, key, kl) == 0 && (*e)[kl] == '=')
			v = *e + kl + 1;
	return v;
}

/* user_home is uid's home in the container's /etc/passwd, "/" without. */
static char *user_home(uid_t uid)
{
	static char home[4096];
	snprintf(home, sizeof home, "/");
	FILE *f = fopen("/etc/passwd", "re");
	if (!f)
		return home;
	char line[8192];
	while (fgets(line, sizeof line, f)) {
		char *field[7] = {0};
		int n = 0;
		char *s = line;
		for (; n < 7; n++) {
			field[n] = s;
			char *c = strchr(s, ':');
			if (!c)
				break;
			*c = 0;
			s = c + 1;
		}
		if (n < 5 || !field[2] || !field[5])
			continue;
		char *end;
		unsigned long u = strtoul(field[2], &end, 10);
		if (*end || end == field[2] || u != uid)
			continue;
		snprintf(home, sizeof home, "%s", field[5]);
		break;
	}
	fclose(f);
	return home;
}

/* prepare_env drops duplicate keys (the last wins, in the order of the
 * first) and adds HOME from /etc/passwd when it is unset or empty, as
 * libcontainer does. */
static char **prepare_env(const struct req *r)
{
	char **out = calloc(r->nenv + 2, sizeof *out);
	if (!out)
		child_fail("out of memory");
	size_t n = 0;
	int home = 0;
	for (size_t i = r->nenv; i-- > 0;) {
		const char *kv = r->env[i];
		const char *eq = strchr(kv, '=');
		if (!eq)
			child_fail("invalid environment variable: missing '='");
		if (eq == kv)
			child_fail("invalid environment variable: name cannot be empty");
		size_t kl = (size_t)(eq - kv);
		int dup = 0;
		for (size_t j = 0; j < n && !dup; j++)
			dup = strncmp(out[j], kv, kl + 1) == 0;
		if (dup)
			continue;
		if (kl == 4 && strncmp(kv, "HOME", 4) == 0) {
			if (!eq[1])
				continue;
			home = 1;
		}
		out[n++] = (char *)kv;
	}
	for (size_t i = 0; i < n / 2; i++) {
		char *t = out[i];
		out[i] = out[n - 1 - i];
		out[n - 1 - i] = t;
	}
	if (!home) {
		char *h = user_home(r->uid);
		char *kv = malloc(strlen(h) + 6);
		if (!kv)
			child_fail("out of memory");
		sprintf(kv, "HOME=%s", h);
		out[n++] = kv;
	}
	out[n] = NULL;
	return out;
}

/* executable says whether path can be run, as Go's exec.LookPath checks
 * it: 0, or the error's text. */
static const char *executable(const char *path, char *why, size_t n)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		snprintf(why, n, "stat %s: %s", path, goerr(errno));
		return why;
	}
	if (S_ISDIR(st.st_mode))
		return "is a directory";
	if (faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == 0)
		return NULL;
	if (errno == ENOSYS || errno == EPERM) {
		if (st.st_mode & 0111)
			return NULL;
	}
	return "permission denied";
}

/* look_path finds name as Go's exec.LookPath does on path. */
static char *look_path(const char *name, const char *path)
{
	static char full[8192];
	char why[4200];
	if (strchr(name, '/')) {
		const char *e = executable(name, why, sizeof why);
		if (e)
			child_fail("exec: \"%s\": %s", name, e);
		return (char *)name;
	}
	const char *p = path;
	for (;;) {
		const char *colon = strchr(p, ':');
		size_t dl = colon ? (size_t)(colon - p) : strlen(p);
		if (dl == 0)
			snprintf(full, sizeof full, "./%s", name);
		else
			snprintf(full, sizeof full, "%.*s/%s", (int)dl, p, name);
		if (!executable(full, why, sizeof why)) {
			if (full[0] != '/')
				child_fail("exec: \"%s\": cannot run executable found relative to current directory", name);
			return full;
		}
		if (!colon)
			break;
		p = colon + 1;
	}
	child_fail("exec: \"%s\": executable file not found in $PATH", name);
}

static int last_cap(void)
{
	int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	int last = 40;
	if (fd >= 0) {
		char s[16] = {0};
		if (read(fd, s, sizeof s - 1) > 0)
			last = atoi(s);
		close(fd);
	}
	return last;
}

static void set_caps(const struct plan *p)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof d);
	for (int i = 0; i < 2; i++) {
		d[i].effective = (uint32_t)(p->effective >> (32 * i));
		d[i].permitted = (uint32_t)(p->permitted >> (32 * i));
		d[i].inheritable = (uint32_t)(p->inheritable >> (32 * i));
	}
	if (syscall(SYS_capset, &h, d) < 0)
		child_fail("unable to apply caps: can't apply capabilities: %s", goerr(errno));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		child_fail("clearing ambient capabilities: %s", goerr(errno));
	for (int c = 0; c < 64; c++)
		if (p->ambient & (1ULL << c))
			(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0); /* as libcontainer: a warning */
}

static int setgroups_denied(void)
{
	int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char s[16] = {0};
	ssize_t n = read(fd, s, sizeof s - 1);
	close(fd);
	return n > 0 && strncmp(s, "deny", 4) == 0;
}

static void child(const struct req *r, const struct plan *p, int cgnsfd, const int *cgfds, int ncgfds, int devnull)
{
	for (int i = 0; i < ncgfds; i++)
		if (write(cgfds[i], "0", 1) < 0 && !p->rootless_cgroups)
			child_fail("joining the container's cgroup: %s", goerr(errno));
	if (cgnsfd >= 0 && setns(cgnsfd, CLONE_NEWCGROUP) < 0)
		child_fail("joining the container's cgroup namespace: %s", goerr(errno));
	if (setsid() < 0)
		child_fail("setsid: %s", goerr(errno));
	const struct jval *rl = p->rlimits;
	for (size_t i = 0; rl && rl->type == J_ARR && i < rl->n; i++) {
		struct rlimit lim = {.rlim_cur = json_u64(rl->items[i], "soft"), .rlim_max = json_u64(rl->items[i], "hard")};
		if (setrlimit((int)json_int(rl->items[i], "type", -1), &lim) < 0)
			child_fail("error setting rlimits for ready process: %s", goerr(errno));
	}
	if (!p->no_new_keyring) {
		char name[512];
		snprintf(name, sizeof name, "_ses.%s", r->id);
		if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name) < 0 && errno != ENOSYS)
			child_fail("unable to join session keyring: %s", goerr(errno));
	}
	if (r->tty)
		console(r);
	else
		stdio(r, devnull);
	if (p->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail("setting no_new_privs: %s", goerr(errno));
	if (p->has_umask)
		umask(p->umask);
	/* Without no_new_privs, loading a filter takes privilege: before the
	 * capabilities go. With it, as late as can be. */
	if (!p->nnp)
		load_seccomp(p);
	if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		child_fail("error closing exec fds: %s", goerr(errno));

	int chdir_later = 0;
	if (r->cwd && r->cwd[0] && chdir(r->cwd) < 0) {
		if (errno != EACCES && errno != EPERM)
			child_fail("chdir to cwd (\"%s\") set in config.json failed: %s", r->cwd, goerr(errno));
		chdir_later = 1;
	}
	char **env = prepare_env(r);
	if (p->has_caps) {
		int last = last_cap();
		for (int c = 0; c <= last && c < 64; c++)
			if (!(p->bounding & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
				child_fail("unable to apply bounding set: %s", goerr(errno));
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
			child_fail("unable to set keep caps: %s", goerr(errno));
	}
	own_stdio(r->uid);
	if (!p->rootless_euid && !setgroups_denied() && setgroups(r->ngids, r->gids) < 0)
		child_fail("unable to setup user: setgroups: %s", goerr(errno));
	if (setgid(r->gid) < 0) {
		if (errno == EINVAL)
			child_fail("unable to setup user: cannot setgid to unmapped gid %u in user namespace", (unsigned)r->gid);
		child_fail("unable to setup user: %s", goerr(errno));
	}
	if (setuid(r->uid) < 0) {
		if (errno == EINVAL)
			child_fail("unable to setup user: cannot setuid to unmapped uid %u in user namespace", (unsigned)r->uid);
		child_fail("unable to setup user: %s", goerr(errno));
	}
	if (chdir_later && chdir(r->cwd) < 0)
		child_fail("chdir to cwd (\"%s\") set in config.json failed: %s", r->cwd, goerr(errno));
	char wd[4096];
	if (!getcwd(wd, sizeof wd)) {
		if (errno == ENOENT)
			child_fail("current working directory is outside of container mount namespace root -- possible container breakout detected");
		child_fail("failed to verify if current working directory is safe: getwd: %s", goerr(errno));
	}
	if (wd[0] != '/')
		child_fail("current working directory is not absolute -- possible container breakout detected: cwd is \"%s\"", wd);
	if (p->has_caps) {
		if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
			child_fail("unable to clear keep caps: %s", goerr(errno));
		set_caps(p);
	}
	const char *path = env_value(env, "PATH");
	char *exe = look_path(r->args[0], path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (p->nnp)
		load_seccomp(p);
	execve(exe, r->args, env);
	child_fail("exec %s: %s", exe, goerr(errno));
}

/* ------------------------------------------------------------- main */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void load_plan(const char *path, struct plan *p)
{
	struct jval *v = read_json_file(path);
	if (!v || v->type != J_OBJ)
		fail("reading the exec plan %s: %s", path, v ? "not a JSON object" : goerr(errno));
	p->pid = (int)json_int(v, "pid", 0);
	p->start = json_u64(v, "start");
	p->ns = (int)json_int(v, "ns", 0);
	size_t nv1;
	char **v1 = strv(json_get(v, "cgroupsV1"), &nv1);
	p->cgroups = calloc(nv1 + 2, sizeof *p->cgroups);
	if (!p->cgroups)
		fail("out of memory");
	for (size_t i = 0; i < nv1; i++)
		p->cgroups[p->ncgroups++] = v1[i];
	const char *v2 = json_str(v, "cgroup", "");
	if (v2[0])
		p->cgroups[p->ncgroups++] = (char *)v2;
	p->rootless_cgroups = json_bool(v, "rootlessCgroups");
	p->nnp = json_bool(v, "nnp");
	p->no_new_keyring = json_bool(v, "noNewKeyring");
	p->rootless_euid = json_bool(v, "rootlessEUID");
	const struct jval *caps = json_get(v, "caps");
	if (caps && caps->type == J_OBJ) {
		p->has_caps = 1;
		p->bounding = json_u64(caps, "bounding");
		p->effective = json_u64(caps, "effective");
		p->inheritable = json_u64(caps, "inheritable");
		p->permitted = json_u64(caps, "permitted");
		p->ambient = json_u64(caps, "ambient");
	}
	const struct jval *oom = json_get(v, "oomScoreAdj");
	if (oom && oom->type == J_NUM) {
		p->has_oom = 1;
		p->oom = (long)oom->num;
	}
	const struct jval *um = json_get(v, "umask");
	if (um && um->type == J_NUM) {
		p->has_umask = 1;
		p->umask = (mode_t)um->num;
	}
	p->rlimits = json_get(v, "rlimits");
	const char *hex = json_str(v, "seccomp", "");
	size_t hl = strlen(hex);
	if (hl) {
		if (hl % 16 || hl / 16 > 0xffff)
			fail("the exec plan's seccomp program is malformed");
		p->bpf_len = (unsigned short)(hl / 16);
		unsigned char *raw = malloc(hl / 2);
		if (!raw)
			fail("out of memory");
		for (size_t i = 0; i < hl / 2; i++) {
			int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
			if (hi < 0 || lo < 0)
				fail("the exec plan's seccomp program is malformed");
			raw[i] = (unsigned char)(hi << 4 | lo);
		}
		p->bpf = (struct sock_filter *)raw;
		p->seccomp_flags = (unsigned)json_int(v, "seccompFlags", 0);
	}
}

int main(void)
{
	size_t n;
	char *line = read_fd(CTL_FD, &n, 1);
	struct jval *rq = json_parse(line, n);
	if (!rq || rq->type != J_OBJ)
		fail("exec helper: the request is not a JSON object");
	struct req r = {0};
	r.id = json_str(rq, "id", "");
	r.args = strv(json_get(rq, "args"), &n);
	if (n == 0)
		fail("exec helper: the request has no command");
	r.env = strv(json_get(rq, "env"), &r.nenv);
	r.cwd = json_str(rq, "cwd", "");
	r.uid = (uid_t)json_int(rq, "uid", 0);
	r.gid = (gid_t)json_int(rq, "gid", 0);
	const struct jval *g = json_get(rq, "gids");
	if (g && g->type == J_ARR) {
		r.gids = calloc(g->n + 1, sizeof *r.gids);
		for (size_t i = 0; r.gids && i < g->n; i++)
			if (g->items[i]->type == J_NUM)
				r.gids[r.ngids++] = (gid_t)g->items[i]->num;
	}
	r.tty = json_bool(rq, "tty");
	r.has_stdin = json_bool(rq, "stdin");
	r.width = (unsigned short)json_int(rq, "width", 0);
	r.height = (unsigned short)json_int(rq, "height", 0);
	const char *plan_path = json_str(rq, "plan", "");
	if (!plan_path[0])
		fail("exec helper: the request names no exec plan (lodge-exec runs only embedded-runtime containers)");
	struct plan p = {0};
	load_plan(plan_path, &p);

	/* The child inherits the score; set here, where /proc/self is this
	 * process's own whatever namespaces come next. */
	if (p.has_oom) {
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		char s[32];
		int len = snprintf(s, sizeof s, "%ld", p.oom);
		if (fd < 0 || write(fd, s, (size_t)len) < 0)
			fail("setting oom_score_adj: %s", goerr(errno));
		close(fd);
	}
	/* Once it has joined, this process sits in the container's namespaces
	 * with lodged's privileges: nothing there may ptrace it or read its
	 * memory. The child's execve makes the command dumpable again. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fail("prctl(PR_SET_DUMPABLE): %s", goerr(errno));
	int pidfd = (int)syscall(SYS_pidfd_open, p.pid, 0);
	if (pidfd < 0 || start_time(p.pid) != p.start)
		fail("container %s is not running here: its init %d has ended", r.id, p.pid);
	/* the cgroups' files, opened while their paths are the host's */
	int cgfds[32], ncgfds = 0;
	for (size_t i = 0; i < p.ncgroups && ncgfds < 32; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/cgroup.procs", p.cgroups[i]);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0)
			cgfds[ncgfds++] = fd;
		else if (!p.rootless_cgroups)
			fail("opening the container's cgroup %s: %s", p.cgroups[i], goerr(errno));
	}
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		fail("opening /dev/null: %s", goerr(errno));
	/* The cgroup namespace is joined by the child, once it is in the
	 * cgroup: from inside the namespace, the cgroup it comes from would
	 * be out of reach. */
	int ns = p.ns & ~CLONE_NEWCGROUP;
	int cgnsfd = -1;
	if (p.ns & CLONE_NEWCGROUP) {
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/ns/cgroup", p.pid);
		if ((cgnsfd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			fail("opening %s: %s", path, goerr(errno));
	}
	if (ns & CLONE_NEWUSER) {
		char self[64], init[64];
		snprintf(self, sizeof self, "/proc/self/ns/user");
		snprintf(init, sizeof init, "/proc/%d/ns/user", p.pid);
		if (ns_ino(self) == ns_ino(init))
			ns &= ~CLONE_NEWUSER; /* joining one's own user namespace is refused */
	}
	join(pidfd, p.pid, ns);

	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0)
		fail("pipe: %s", goerr(errno));
	pid_t pid = fork();
	if (pid < 0)
		fail("fork: %s", goerr(errno));
	if (pid == 0) {
		close(ep[0]);
		errpipe = ep[1];
		child(&r, &p, cgnsfd, cgfds, ncgfds, devnull);
	}
	close(ep[1]);
	close(CONSOLE_FD);
	close(STDOUT_FD);
	close(STDERR_FD);
	char *err = read_fd(ep[0], &n, 0);
	close(ep[0]);
	int status;
	if (n > 0) {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		fail("unable to start container process: %s", err);
	}
	if (reply("pid", NULL, pid) < 0) {
		/* lodged is gone: nobody would see the process or its end */
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		return 1;
	}
	int code = EXIT_UNKNOWN;
	for (;;) {
		if (waitpid(pid, &status, 0) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (WIFEXITED(status))
			code = WEXITSTATUS(status);
		else if (WIFSIGNALED(status))
			code = 128 + WTERMSIG(status);
		else
			continue;
		break;
	}
	return reply("exit", NULL, code) < 0;
}
