/* Access control: which web-server user (REMOTE_USER) may do what on which repository and state. */
#ifndef TFGIT_ACL_H
#define TFGIT_ACL_H

#include <stddef.h>

/* The grants file (TFGIT_ACL_FILE) has one grant per line, exactly four whitespace-separated
 * fields; blank lines are ignored and a field starting with '#' begins a comment to the end of
 * the line ('#' inside a field is literal):
 *
 *   # user      rights               repository           states
 *   alice       read                 *                    *
 *   bob         read,write,lock      /srv/git/infra.git   envs/
 *   *           read                 *                    public/
 *   anonymous   read                 *                    *
 *
 * user: a REMOTE_USER name; '*' any authenticated user (non-empty REMOTE_USER); "anonymous"
 *   requests without one ('*' never matches those; a REMOTE_USER literally named "anonymous"
 *   matches both).
 * rights: comma-separated read (GET), write (POST, DELETE), lock (LOCK, UNLOCK with an ID),
 *   force-unlock (UNLOCK without an ID) or all.
 * repository: '*' any, else a pattern for the caller's matcher.
 * states: '*' any, else a plain prefix of the state path: "envs/" grants "envs/prod.tfstate",
 *   while "envs" would also grant "envsx.tfstate", so a directory prefix should end in '/'.
 * A line is at most 4096 bytes, without control characters other than tab (and CR). Any error
 * makes the whole file invalid (fail closed). */

enum { ACL_READ = 1, ACL_WRITE = 2, ACL_LOCK = 4, ACL_FORCE_UNLOCK = 8 };
typedef struct acl acl;

/* Parses the file at path. 0 and *out (freed by acl_free()), or TFGIT_EINVALID with
 * "path:line: reason" ("path: reason" for the file as a whole) in err and *out NULL;
 * TFGIT_ERROR when out of memory. */
int acl_load(acl **out, const char *path, char *err, size_t errlen);
/* Accepts NULL. */
void acl_free(acl *a);

/* 1 when some line grants user (NULL or "": anonymous) the right on repository url and state,
 * else 0. match(pattern, url) returns 1 when url matches a repository pattern other than "*";
 * a NULL match grants only through "*". */
int acl_allows(const acl *a, const char *user, int right, const char *url, const char *state,
	       int (*match)(const char *pattern, const char *url));

/* 1 when some line grants user the right on repository url for some state (a branch's page,
 * which then shows the states acl_allows grants one by one), else 0. */
int acl_allows_some(const acl *a, const char *user, int right, const char *url,
		    int (*match)(const char *pattern, const char *url));

/* The parsed file for path, reloaded when the file changed (device, inode, size, mtime with
 * nanoseconds). The module owns it (one cached entry per process): valid until the next
 * acl_get() or acl_cache_free(). 0, or the codes and err of acl_load(); after an error nothing
 * stays cached, so the old grants never outlive a broken file. */
int acl_get(const acl **out, const char *path, char *err, size_t errlen);
/* Drops acl_get()'s cached entry (at a worker's exit, and in tests). */
void acl_cache_free(void);

/* "read", "write", "lock", "force-unlock" for one right ("all" for all four, else "unknown"). */
const char *acl_right_name(int right);

#endif
