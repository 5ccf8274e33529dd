/* The push half of git's pack protocol as tfgit speaks it (gitprotocol-pack(5), "Pushing Data
 * To a Server"), over any transport: the capabilities of receive-pack's advertisement, the
 * command list tfgit writes (with "atomic" when the server has it), and the report-status it
 * reads back. Pure functions over bytes: the transport (tap.c) and the session (remote.c) move
 * them. Every parser here reads bytes a git server sent: each has a fuzz target. */
#ifndef TFGIT_RECEIVEPACK_H
#define TFGIT_RECEIVEPACK_H

#include <stddef.h>

#include <git2.h>

#define RP_CAP_REPORT_STATUS 1u
#define RP_CAP_ATOMIC 2u
#define RP_CAP_OFS_DELTA 4u
#define RP_CAP_OTHER_FORMAT 8u /* object-format= other than sha1: tfgit cannot push there */

/* The capabilities of receive-pack's advertisement, from its first bytes (adv, len): a smart
 * HTTP "# service=" comment and its flush are passed over, then the first ref line holds them
 * after a NUL. A mask of RP_CAP_*; -1 when the first ref line is missing, cut short, or no
 * pkt-line. */
int rp_caps(const char *adv, size_t len);

/* One ref update: old and new are zero ids for "absent" (create, delete). An update whose old
 * and new are the same id asserts that the ref still holds it. */
typedef struct {
	const char *ref;
	git_oid old, new;
} rp_command;

/* The command list as pkt-lines, the capabilities on the first (report-status, atomic when
 * asked, an agent), and the flush, into a new buffer *out of *outlen bytes (free()). 0, or -1
 * (out of memory, a ref name too long for a pkt-line, no command). */
int rp_commands(char **out, size_t *outlen, const rp_command *cmds, size_t n, int atomic);

/* 1 when some command needs a pack after it (one that is not a delete). */
int rp_needs_pack(const rp_command *cmds, size_t n);

/* Reads a report-status from its first len bytes: "unpack ok" or "unpack <error>", then per ref
 * "ok <ref>" or "ng <ref> <reason>", then a flush. Calls fn(ref, NULL or reason, ctx) for each
 * ref line (fn NULL: to learn whether the report is complete yet). 1 when the report is complete (the unpack
 * status, without "unpack ", in unpack), 0 when more bytes are needed, -1 when it is malformed
 * (why says how; a server's "ERR" line is quoted there). */
int rp_report(const char *buf, size_t len, void (*fn)(const char *ref, const char *reason, void *ctx),
	      void *ctx, char *unpack, size_t unpacklen, char *why, size_t whylen);

#endif
