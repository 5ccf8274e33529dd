/* States known by their blob id, per cache repository: a POST need not read (inflate) the
 * state it replaces to know that it is one, nor to find its lineage.
 *
 * Whether a blob is a Terraform state, and its lineage, depend on its bytes only, and a blob id
 * names its bytes: an entry never goes stale. <repo>/tfgit-states holds one line per blob,
 * "<40 hex> <lineage as written, or ->", the newest last; it is rewritten under a temporary name
 * and renamed (a full filesystem leaves the old one), under the repository's flock. The states
 * tfgit writes are added once pushed; one read from the remote (another host wrote it) is added
 * when the POST that replaces it has read it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "known.h"

#define KNOWN_FILE "tfgit-states"
#define LINEAGE_MAX 512
#define LINE_MAX_LEN (GIT_OID_HEXSZ + 2 + LINEAGE_MAX + 2)

static void file_of(char *out, size_t outlen, const char *repo_path)
{
	size_t n = strlen(repo_path);
	snprintf(out, outlen, "%s%s%s", repo_path, n && repo_path[n - 1] == '/' ? "" : "/", KNOWN_FILE);
}

int known_state(const char *repo_path, const git_oid *id, char *lineage, size_t lineagelen)
{
	char path[4200], line[LINE_MAX_LEN + 2], hex[GIT_OID_HEXSZ + 1];
	int found = 0;
	file_of(path, sizeof(path), repo_path);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	git_oid_tostr(hex, sizeof(hex), id);
	while (fgets(line, sizeof(line), f)) {
		size_t n = strcspn(line, "\n");
		line[n] = '\0';
		if (n < GIT_OID_HEXSZ + 2 || memcmp(line, hex, GIT_OID_HEXSZ) || line[GIT_OID_HEXSZ] != ' ')
			continue;
		const char *l = line + GIT_OID_HEXSZ + 1;
		snprintf(lineage, lineagelen, "%s", strcmp(l, "-") ? l : "");
		found = 1; /* the last line for it wins (they say the same) */
	}
	fclose(f);
	return found;
}

void known_state_add(const char *repo_path, const git_oid *id, json_span lineage)
{
	char path[4200], tmp[4300], hex[GIT_OID_HEXSZ + 1], seen[LINEAGE_MAX + 1];
	char (*lines)[LINE_MAX_LEN + 2] = NULL;
	size_t n = 0;
	if (lineage.len > LINEAGE_MAX || memchr(lineage.ptr ? lineage.ptr : "", '\n', lineage.len) ||
	    known_state(repo_path, id, seen, sizeof(seen)))
		return;
	file_of(path, sizeof(path), repo_path);
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp) ||
	    !(lines = calloc(KNOWN_MAX, sizeof(*lines))))
		return;
	FILE *f = fopen(path, "re");
	if (f) {
		char line[LINE_MAX_LEN + 2];
		while (fgets(line, sizeof(line), f)) {
			if (!strchr(line, '\n'))
				continue;
			if (n == KNOWN_MAX - 1) { /* the newest KNOWN_MAX - 1 stay, in order */
				memmove(lines[0], lines[1], (n - 1) * sizeof(lines[0]));
				n--;
			}
			memcpy(lines[n++], line, sizeof(line));
		}
		fclose(f);
	}
	snprintf(lines[n++], sizeof(lines[0]), "%s %.*s\n", git_oid_tostr(hex, sizeof(hex), id),
		 lineage.len ? (int)lineage.len : 1, lineage.len ? lineage.ptr : "-");
	int fd = mkostemp(tmp, O_CLOEXEC), ok = fd >= 0;
	for (size_t i = 0; ok && i < n; i++) {
		size_t len = strlen(lines[i]);
		ok = write(fd, lines[i], len) == (ssize_t)len;
	}
	if (fd >= 0 && close(fd) < 0)
		ok = 0;
	if (ok && rename(tmp, path) < 0)
		ok = 0;
	if (!ok && fd >= 0)
		unlink(tmp);
	free(lines);
}
