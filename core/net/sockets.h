/* The sockets an operation opens (libgit2's connections to the remote), told apart from the
 * process's older ones, so tfgit can tune them and, at the deadline, cut them. */
#ifndef TFGIT_SOCKETS_H
#define TFGIT_SOCKETS_H

/* Records the descriptors open now; what opens later is the operation's. */
void sockets_remember(void);

/* Sets TCP_NODELAY on the operation's TCP sockets: libgit2 writes a request's headers and
 * body separately, and Nagle's algorithm would hold the body for the server's delayed ACK. */
void sockets_nodelay(void);

/* Shuts down the operation's sockets; async-signal-safe (the deadline's handler calls it). */
void sockets_cut(void);

/* A TCP connection to host and port (any of its addresses, in order; none after the deadline's
 * signal), with Nagle's algorithm off: its descriptor, or -1 with a libgit2 error set. */
int sockets_connect(const char *host, const char *port);

#endif
