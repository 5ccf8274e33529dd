/* The bound on one operation's time (TFGIT_REMOTE_TIMEOUT): libgit2 1.5 has no timeouts.
 *
 * SIGALRM (no SA_RESTART) interrupts a blocking connect() or recv() with EINTR, but libssh2
 * retries some of those. So once the deadline has passed, the handler also shuts down every
 * socket opened since the operation began (the remote's connections: the FastCGI connection
 * and the listen socket are older): a blocked read then sees end of file, whatever library
 * is reading. shutdown() and getsockopt() are plain system calls, safe in a handler. */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "deadline.h"

#define FD_BITS 4096

static volatile sig_atomic_t passed;
static unsigned char old_fds[FD_BITS / 8]; /* open when the operation began */

static void cut_new_sockets(void)
{
	for (int fd = 3; fd < FD_BITS; fd++) {
		int type;
		socklen_t len = sizeof(type);
		if (old_fds[fd / 8] & (1u << (fd % 8)))
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0)
			shutdown(fd, SHUT_RDWR);
	}
}

static void on_alarm(int sig)
{
	(void)sig;
	passed = 1;
	cut_new_sockets();
}

static void remember_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	memset(old_fds, 0xff, sizeof(old_fds)); /* without /proc, cut nothing */
	if (!d)
		return;
	memset(old_fds, 0, sizeof(old_fds));
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && fd < FD_BITS)
			old_fds[fd / 8] |= (unsigned char)(1u << (fd % 8));
	}
	closedir(d); /* its own fd was recorded too, harmlessly */
}

void deadline_start(int seconds)
{
	struct sigaction sa;
	struct itimerval it = {.it_interval = {0, 100 * 1000}, .it_value = {seconds, 0}};
	passed = 0;
	if (seconds <= 0)
		return;
	remember_open_fds();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: blocking calls must return EINTR */
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
}

int deadline_passed(void)
{
	return passed;
}

void deadline_stop(void)
{
	struct itimerval off;
	memset(&off, 0, sizeof(off));
	setitimer(ITIMER_REAL, &off, NULL);
}
