/* The push half of git's pack protocol: capabilities, commands, report-status (receivepack.h).
 *
 * Everything is pkt-lines: four hex digits giving the length of the line including themselves,
 * then the line; "0000" is a flush. Lengths 1 to 3 are protocol v2's delimiters, which
 * receive-pack's v0 protocol (what libgit2 1.5 asks for) never sends: malformed here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pktline.h"
#include "receivepack.h"

static int starts(const char *data, size_t n, const char *prefix)
{
	size_t p = strlen(prefix);
	return n >= p && memcmp(data, prefix, p) == 0;
}

/* The mask of the capability words in caps (n bytes, space-separated, maybe ending in LF). */
static int cap_words(const char *caps, size_t n)
{
	int mask = 0;
	size_t i = 0;
	if (n && caps[n - 1] == '\n')
		n--;
	while (i < n) {
		size_t j = i;
		while (j < n && caps[j] != ' ')
			j++;
		const char *w = caps + i;
		size_t wn = j - i;
		if (wn == 13 && !memcmp(w, "report-status", 13))
			mask |= RP_CAP_REPORT_STATUS;
		else if (wn == 6 && !memcmp(w, "atomic", 6))
			mask |= RP_CAP_ATOMIC;
		else if (wn == 9 && !memcmp(w, "ofs-delta", 9))
			mask |= RP_CAP_OFS_DELTA;
		else if (starts(w, wn, "object-format=") && !(wn == 18 && !memcmp(w + 14, "sha1", 4)))
			mask |= RP_CAP_OTHER_FORMAT;
		i = j + 1;
	}
	return mask;
}

int rp_caps(const char *adv, size_t len)
{
	size_t pos = 0, n = 0;
	const char *data = NULL;
	int flushes = 0;
	for (;;) {
		int k = pktline_next(adv, len, &pos, &data, &n);
		if (k == PKT_MORE || k == PKT_BAD)
			return -1;
		if (k == PKT_FLUSH) {
			if (++flushes > 1)
				return -1; /* the end of an advertisement without a ref line */
			continue;
		}
		if (starts(data, n, "# ") || starts(data, n, "version "))
			continue;
		const char *nul = memchr(data, '\0', n);
		if (n < 41 || data[40] != ' ')
			return -1;
		return nul ? cap_words(nul + 1, n - (size_t)(nul + 1 - data)) : 0;
	}
}

int rp_needs_pack(const rp_command *cmds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!git_oid_is_zero(&cmds[i].new))
			return 1;
	return 0;
}

int rp_commands(char **out, size_t *outlen, const rp_command *cmds, size_t n, int atomic)
{
	/* NUL, then the capabilities on the first line: report-status always, atomic when asked */
	const char *caps = atomic ? "report-status atomic agent=tfgit" : "report-status agent=tfgit";
	size_t cap = 4, len = 0;
	*out = NULL;
	*outlen = 0;
	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		size_t line = 4 + 2 * GIT_OID_HEXSZ + 2 + strlen(cmds[i].ref) + (i ? 0 : 1 + strlen(caps));
		if (line > PKT_MAX)
			return -1;
		cap += line;
	}
	char *buf = malloc(cap + 1); /* + 1: snprintf's NUL */
	if (!buf)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char old[GIT_OID_HEXSZ + 1], new[GIT_OID_HEXSZ + 1];
		git_oid_tostr(old, sizeof(old), &cmds[i].old);
		git_oid_tostr(new, sizeof(new), &cmds[i].new);
		char *at = buf + len + 4;
		size_t body = (size_t)sprintf(at, "%s %s %s", old, new, cmds[i].ref);
		if (i == 0)
			body += 1 + (size_t)sprintf(at + body + 1, "%s", caps); /* at[body] stays NUL */
		char head[5];
		snprintf(head, sizeof(head), "%04zx", body + 4);
		memcpy(buf + len, head, 4);
		len += 4 + body;
	}
	memcpy(buf + len, "0000", 4);
	*out = buf;
	*outlen = len + 4;
	return 0;
}

int rp_report(const char *buf, size_t len, void (*fn)(const char *ref, const char *reason, void *ctx),
	      void *ctx, char *unpack, size_t unpacklen, char *why, size_t whylen)
{
	size_t pos = 0, n = 0;
	const char *data = NULL;
	int have_unpack = 0;
	char line[8192];
	for (;;) {
		int k = pktline_next(buf, len, &pos, &data, &n);
		if (k == PKT_MORE)
			return 0;
		if (k == PKT_BAD) {
			snprintf(why, whylen, "the report is not made of pkt-lines");
			return -1;
		}
		if (k == PKT_FLUSH) {
			if (have_unpack)
				return 1;
			snprintf(why, whylen, "the report ended without an unpack status");
			return -1;
		}
		if (n && data[n - 1] == '\n')
			n--;
		if (n >= sizeof(line))
			n = sizeof(line) - 1; /* only a reason is that long: cut */
		memcpy(line, data, n);
		line[n] = '\0';
		if (strlen(line) != n) {
			snprintf(why, whylen, "the report holds a NUL byte");
			return -1;
		}
		if (starts(line, n, "ERR ")) {
			snprintf(why, whylen, "the server said: %.200s", line + 4);
			return -1;
		}
		if (!have_unpack) {
			if (!starts(line, n, "unpack ")) {
				snprintf(why, whylen, "the report does not start with an unpack status");
				return -1;
			}
			snprintf(unpack, unpacklen, "%s", line + 7);
			have_unpack = 1;
			continue;
		}
		if (starts(line, n, "option "))
			continue; /* report-status-v2's, never asked for: passed over */
		int ok = starts(line, n, "ok ");
		if (!ok && !starts(line, n, "ng ")) {
			snprintf(why, whylen, "the report holds a line that is neither ok nor ng");
			return -1;
		}
		char *ref = line + 3, *reason = NULL;
		if (!ok && (reason = strchr(ref, ' ')) != NULL)
			*reason++ = '\0';
		if (!*ref) {
			snprintf(why, whylen, "the report names no ref");
			return -1;
		}
		if (fn)
			fn(ref, ok ? NULL : reason && *reason ? reason : "failed", ctx);
	}
}
