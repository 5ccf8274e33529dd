/* git's pkt-lines (gitprotocol-common(5)): four hex digits giving the line's length including
 * themselves, then its bytes; "0000" is a flush. Reading only: what a git server sent. */
#ifndef TFGIT_PKTLINE_H
#define TFGIT_PKTLINE_H

#include <stddef.h>

#include <git2.h>
#include <git2/sys/transport.h>

#define PKT_MAX 65520 /* the largest pkt-line, its four length digits included */

enum { PKT_BAD = -1, PKT_MORE = 0, PKT_DATA = 1, PKT_FLUSH = 2 };

/* The pkt-line at *pos of buf (len bytes): PKT_DATA (its bytes without the length in *data,
 * *n; *pos moves past it), PKT_FLUSH (*pos moves past it), PKT_MORE (cut short: nothing
 * moves) or PKT_BAD (not a pkt-line; lengths 1 to 3, protocol v2's delimiters, included). */
int pktline_next(const char *buf, size_t len, size_t *pos, const char **data, size_t *n);

/* Moves *pos over the whole pkt-lines of buf from *pos on, up to and past the first flush:
 * PKT_FLUSH (reached), PKT_MORE (the bytes so far end before it) or PKT_BAD. Called again with
 * more bytes, it goes on from *pos: a stream read piece by piece is scanned once. */
int pktline_to_flush(const char *buf, size_t len, size_t *pos);

/* Reads st until the bytes read hold a flush (or are no pkt-lines), or the stream ends, into
 * *buf (free()), *len; each byte is scanned once. 0; -1 when the stream failed, the deadline
 * passed or memory ran out (a libgit2 error set); -2 when it is longer than max bytes (why:
 * "<what> is over max bytes"). What was read is for the caller's parser to judge. */
int pktline_read(git_smart_subtransport_stream *st, char **buf, size_t *len, size_t max, const char *what,
		 char *why, size_t whylen);

#endif
