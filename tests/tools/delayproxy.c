/* A TCP proxy on loopback that adds latency: every byte is delivered RTT/2 after it was read,
 * in each direction, so a request and its answer take one RTT more than without it (the
 * benchmark's "40 ms round trip" in front of the git server). Order and half-close are kept.
 * usage: delayproxy LISTEN_PORT TARGET_PORT RTT_MS
 * Listens on 127.0.0.1:LISTEN_PORT, prints "ready" once listening, forwards each connection to
 * 127.0.0.1:TARGET_PORT; runs until killed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int target_port;
static long delay_us; /* one way */

struct chunk {
	struct chunk *next;
	long long due; /* microseconds, monotonic */
	size_t len;    /* 0: end of stream */
	char data[];
};

struct conn {
	int fd[2];           /* client, server */
	pthread_mutex_t mu;
	int left;            /* directions still running */
};

struct pipe_dir {
	struct conn *c;
	int from, to;
};

static long long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One direction: reads whenever data comes, writes each chunk when it is due. */
static void *forward(void *arg)
{
	struct pipe_dir *d = arg;
	struct chunk *head = NULL, **tail = &head;
	int eof = 0, broken = 0;
	char buf[65536];
	while (!broken && (!eof || head)) {
		long long wait = -1;
		if (head) {
			long long left = head->due - now_us();
			wait = left > 0 ? (left + 999) / 1000 : 0;
		}
		struct pollfd p = {d->from, POLLIN, 0};
		int ready = eof ? (wait > 0 ? poll(NULL, 0, (int)wait) : 0) : poll(&p, 1, (int)wait);
		if (ready < 0 && errno != EINTR)
			break;
		if (!eof && ready > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = read(d->from, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			struct chunk *c = malloc(sizeof(*c) + (n > 0 ? (size_t)n : 0));
			if (!c)
				break;
			c->next = NULL;
			c->due = now_us() + delay_us;
			c->len = n > 0 ? (size_t)n : 0;
			if (n > 0)
				memcpy(c->data, buf, (size_t)n);
			else
				eof = 1;
			*tail = c;
			tail = &c->next;
		}
		while (head && head->due <= now_us()) {
			struct chunk *c = head;
			if (c->len == 0)
				shutdown(d->to, SHUT_WR);
			else if (write_all(d->to, c->data, c->len) < 0)
				broken = 1;
			head = c->next;
			if (!head)
				tail = &head;
			free(c);
		}
	}
	while (head) {
		struct chunk *c = head;
		head = c->next;
		free(c);
	}
	if (broken) { /* the other side is gone: end both directions */
		shutdown(d->from, SHUT_RDWR);
		shutdown(d->to, SHUT_RDWR);
	}
	struct conn *c = d->c;
	pthread_mutex_lock(&c->mu);
	int last = --c->left == 0;
	pthread_mutex_unlock(&c->mu);
	if (last) {
		close(c->fd[0]);
		close(c->fd[1]);
		pthread_mutex_destroy(&c->mu);
		free(c);
	}
	free(d);
	return NULL;
}

static int dial(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)target_port)};
	int one = 1, s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0)
		return -1;
	/* the connection's own set-up (SYN, SYN-ACK) crosses the link too */
	struct timespec ts = {delay_us * 2 / 1000000, (delay_us * 2 % 1000000) * 1000};
	nanosleep(&ts, NULL);
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(s);
		return -1;
	}
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return s;
}

static void *serve(void *arg)
{
	int client = (int)(long)arg, server = dial();
	if (server < 0) {
		close(client);
		return NULL;
	}
	struct conn *c = calloc(1, sizeof(*c));
	struct pipe_dir *up = calloc(1, sizeof(*up)), *down = calloc(1, sizeof(*down));
	if (!c || !up || !down) {
		close(client);
		close(server);
		free(c);
		free(up);
		free(down);
		return NULL;
	}
	c->fd[0] = client;
	c->fd[1] = server;
	c->left = 2;
	pthread_mutex_init(&c->mu, NULL);
	*up = (struct pipe_dir){c, client, server};
	*down = (struct pipe_dir){c, server, client};
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_create(&t, &attr, forward, up);
	forward(down);
	pthread_attr_destroy(&attr);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: delayproxy LISTEN_PORT TARGET_PORT RTT_MS\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	int port = atoi(argv[1]), one = 1;
	target_port = atoi(argv[2]);
	delay_us = atol(argv[3]) * 1000 / 2;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 128) < 0) {
		perror("delayproxy");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("delayproxy: accept");
			return 1;
		}
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, serve, (void *)(long)c) != 0)
			close(c);
		pthread_attr_destroy(&attr);
	}
}
