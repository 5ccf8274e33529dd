/* The sockets an operation opens (libgit2's connections to the remote), told apart from the
 * process's older ones, so tfgit can tune them and, at the deadline, cut them. */
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <git2.h>

#include "sockets.h"

#define FD_BITS 4096

static unsigned char old_fds[FD_BITS / 8];

void sockets_remember(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	memset(old_fds, 0xff, sizeof(old_fds)); /* without /proc, touch nothing */
	if (!d)
		return;
	memset(old_fds, 0, sizeof(old_fds));
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && fd < FD_BITS)
			old_fds[fd / 8] |= (unsigned char)(1u << (fd % 8));
	}
	closedir(d); /* its own descriptor was recorded too, harmlessly */
}

static int is_new_socket(int fd, int *type)
{
	socklen_t len = sizeof(*type);
	if (old_fds[fd / 8] & (1u << (fd % 8)))
		return 0;
	return getsockopt(fd, SOL_SOCKET, SO_TYPE, type, &len) == 0;
}

void sockets_nodelay(void)
{
	int one = 1, type;
	DIR *d = opendir("/proc/self/fd"); /* the open descriptors only: a few, not FD_BITS */
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd < 3 || fd >= FD_BITS)
			continue;
		if (is_new_socket(fd, &type) && type == SOCK_STREAM) /* fails on unix sockets, harmlessly */
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	closedir(d);
}

void sockets_cut(void)
{
	int type;
	for (int fd = 3; fd < FD_BITS; fd++)
		if (is_new_socket(fd, &type))
			shutdown(fd, SHUT_RDWR);
}

int sockets_connect(const char *host, const char *port)
{
	struct addrinfo hints, *res = NULL;
	int one = 1, err = 0, rc, fd = -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		git_error_set(GIT_ERROR_NET, "failed to resolve address for %s: %s", host,
			      rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return -1;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
		/* the deadline's SIGALRM (no SA_RESTART): give up, do not try the next address */
		if (err == EINTR)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		git_error_set(GIT_ERROR_NET, "failed to connect to %s: %s", host, strerror(err));
		return -1;
	}
	/* libgit2 writes a request's headers and body separately: without this, Nagle's
	 * algorithm holds the body for the server's delayed ACK */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}
