/* Allowlist checks of what a request may name: state paths and branches (URLs: url.c). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <git2.h>

#include "../internal.h"
#include "../tfgit.h"

#define STATE_MAX 1024
#define REF_MAX 1024

static int is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* Each '/'-separated segment must be non-empty, not "." or "..", not ".git". */
static int segments_safe(const char *p, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && p[i] != '/')
			continue;
		size_t n = i - start;
		const char *s = p + start;
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return 0;
		if (n == 4 && strncasecmp(s, ".git", 4) == 0)
			return 0;
		start = i + 1;
	}
	return 1;
}

int tfgit_state_path_check(const char *state)
{
	if (!state || !*state)
		return TFGIT_EINVALID;
	size_t len = strlen(state);
	if (len > STATE_MAX || state[0] == '/' || state[len - 1] == '/')
		return TFGIT_EINVALID;
	for (size_t i = 0; i < len; i++)
		if (is_ctl((unsigned char)state[i]) || state[i] == '\\')
			return TFGIT_EINVALID;
	if (len >= 5 && strcmp(state + len - 5, ".lock") == 0)
		return TFGIT_EINVALID;
	return segments_safe(state, len) ? 0 : TFGIT_EINVALID;
}

static int branch_ok(const char *name)
{
	int valid = 0;
	if (git_branch_name_is_valid(&valid, name) < 0)
		return 0;
	return valid;
}

/* The branch itself and the lock branch locks/<state> must both be valid branch names. */
int tfgit_ref_check(const char *ref, const char *state)
{
	char lock[REF_MAX + STATE_MAX + 8];
	if (!ref || !*ref || strlen(ref) > REF_MAX || !branch_ok(ref))
		return TFGIT_EINVALID;
	/* locks/… would be a lock branch; locks itself would make every locks/<state> impossible
	 * (a ref cannot be a file and a directory at once): one tenant's branch would block every
	 * tenant's locks. Any case: a git server on a case-insensitive file system mixes them. */
	if (strncasecmp(ref, "locks/", 6) == 0 || strcasecmp(ref, "locks") == 0)
		return TFGIT_EINVALID;
	if (state) {
		snprintf(lock, sizeof(lock), "locks/%s", state);
		if (!branch_ok(lock))
			return TFGIT_EINVALID;
	}
	return 0;
}
