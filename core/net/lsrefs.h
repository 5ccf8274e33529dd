/* Protocol v2's ls-refs (gitprotocol-v2(5)): the request for the refs under given prefixes
 * only, so a repository with thousands of branches costs what one with two does, and its
 * answer. Pure functions over bytes; the parser reads what a git server sent (fuzzed by
 * tests/fuzz/fuzz_lsrefs.c). */
#ifndef TFGIT_LSREFS_H
#define TFGIT_LSREFS_H

#include <stddef.h>

#include <git2.h>

/* The request body: "command=ls-refs", an agent, the delimiter, a "ref-prefix" per name and
 * the flush, into a new buffer *out of *outlen bytes (free()). 0, or -1 (out of memory, a
 * name too long, none). */
int lsrefs_request(char **out, size_t *outlen, const char *const *prefixes, size_t n);

/* Reads the answer's first len bytes: lines "<40 hex> <refname>[ <attribute>...]" then a flush;
 * calls fn(refname, oid, ctx) for each (fn NULL: to learn whether it is whole yet). 1 when
 * whole, 0 when more bytes are needed, -1 when it is no ls-refs answer (why: an "ERR" line is
 * quoted). */
int lsrefs_parse(const char *buf, size_t len, void (*fn)(const char *refname, const git_oid *oid, void *ctx),
		 void *ctx, char *why, size_t whylen);

#endif
