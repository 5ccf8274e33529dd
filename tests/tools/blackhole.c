/* A TCP server on 127.0.0.1 that accepts connections and never answers: the remote that hangs.
 * usage: blackhole PORT; prints "ready" once listening and "accepted" for each connection,
 * runs until killed. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);
	if (argc != 2 || s < 0)
		return 2;
	sa.sin_port = htons((unsigned short)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 64) < 0) {
		perror("blackhole");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c >= 0) { /* held open, never read or written */
			printf("accepted\n");
			fflush(stdout);
		}
	}
}
