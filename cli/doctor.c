/* tfgit doctor: what is wrong with this setup and how to fix it; exit 1 when something is. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "../core/acl.h"
#include "cli.h"

#define FREE_MIN (64ULL << 20)

static int problems, warnings;

static void ok(const char *what)
{
	printf("ok:      %s\n", what);
}

static void problem(const char *what, const char *fix)
{
	printf("problem: %s\n         fix: %s\n", what, fix);
	problems++;
}

static void warning(const char *what, const char *fix)
{
	printf("warning: %s\n         fix: %s\n", what, fix);
	warnings++;
}

/* The default cache's place in memory, /dev/shm/tfgit-<uid>, when it was not usable (made by
 * another account, say): the settings fell back to the account's own cache on its disk. */
static void check_default_cache(const struct settings *s)
{
	char msg[5000], fix[700];
	if (!s->cache_fallback[0])
		return;
	snprintf(msg, sizeof(msg), "the default cache directory is not usable: %s; the cache in use is %s instead",
		 s->cache_fallback, s->store.cache_dir);
	if (!strncmp(s->cache_fallback, "/dev/shm/tfgit-", 15))
		snprintf(fix, sizeof(fix), "nothing is needed to keep serving; to have the cache in memory again, "
			 "ask root to remove /dev/shm/tfgit-%ld (another account can make it again after a reboot), "
			 "or set TFGIT_CACHE_DIR to a directory of this user's own", (long)geteuid());
	else
		snprintf(fix, sizeof(fix), "nothing is needed to keep serving; set TFGIT_CACHE_DIR to choose the "
			 "cache directory");
	warning(msg, fix);
}

static void check_cache(const char *dir)
{
	struct stat st;
	struct statvfs vfs;
	char msg[4400];
	if (lstat(dir, &st) < 0) {
		snprintf(msg, sizeof(msg), "the cache directory %s does not exist yet (made 0700 at the first request)", dir);
		ok(msg);
		return;
	}
	if (S_ISLNK(st.st_mode) || !S_ISDIR(st.st_mode)) {
		snprintf(msg, sizeof(msg), "the cache directory %s is not a directory (a symlink is not followed)", dir);
		problem(msg, "remove it, or set TFGIT_CACHE_DIR to a directory of this user");
	} else if (st.st_uid != geteuid()) {
		snprintf(msg, sizeof(msg), "the cache directory %s belongs to uid %ld, not to this user (uid %ld)", dir,
			 (long)st.st_uid, (long)geteuid());
		problem(msg, "run tfgit as the pool's user (sudo -u www-data tfgit doctor), or set TFGIT_CACHE_DIR");
	} else if (st.st_mode & 022) {
		snprintf(msg, sizeof(msg), "the cache directory %s is writable by %s", dir,
			 st.st_mode & 002 ? "every user" : "its group");
		problem(msg, "remove it (it is rebuilt from the remotes) or chmod 700 it after checking what it holds");
	} else if (access(dir, W_OK | X_OK) < 0) {
		snprintf(msg, sizeof(msg), "the cache directory %s is not writable: %s", dir, strerror(errno));
		problem(msg, "chmod 700 it, as its owner");
	} else if (statvfs(dir, &vfs) == 0 && (unsigned long long)vfs.f_bavail * vfs.f_frsize < FREE_MIN) {
		snprintf(msg, sizeof(msg), "the cache filesystem of %s has %llu MB free", dir,
			 (unsigned long long)vfs.f_bavail * vfs.f_frsize >> 20);
		problem(msg, "free space there, set TFGIT_CACHE_MAX, or move TFGIT_CACHE_DIR");
	} else {
		snprintf(msg, sizeof(msg), "the cache directory %s (ours, 0%o, %llu MB free)", dir, st.st_mode & 0777,
			 statvfs(dir, &vfs) == 0 ? (unsigned long long)vfs.f_bavail * vfs.f_frsize >> 20 : 0ULL);
		ok(msg);
	}
}

static void check_repository(struct ctx *c)
{
	tfgit_result r = {0};
	tfgit_lock_entry *l = NULL;
	size_t n = 0;
	char msg[4400], url[512];
	if (!c->s->default_repository) {
		ok("no TFGIT_DEFAULT_REPOSITORY: every request names its repository= (TFGIT_ALLOWED_REPOS)");
		return;
	}
	tfgit_url_redact(url, sizeof(url), c->s->default_repository);
	c->t.url = c->s->default_repository;
	c->t.ref = c->s->default_ref;
	c->t.state = "";
	int rc = tfgit_locks(&r, &c->s->store, &c->t, &l, &n);
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "the default repository %s does not answer: %s", url,
			 r.message[0] ? r.message : tfgit_strerror(rc));
		problem(msg, rc == TFGIT_EDENIED ? "check the credentials (GIT_USERNAME with GIT_PASSWORD_FILE or "
						   "GITHUB_TOKEN_FILE, TFGIT_NETRC, SSH_PRIVATE_KEY and TFGIT_SSH_KNOWN_HOSTS) "
						   "and that the repository exists"
						 : "check the URL, that the git server is up and reachable from here, and "
						   "TFGIT_REMOTE_TIMEOUT");
	} else {
		snprintf(msg, sizeof(msg), "the default repository %s answers with the credentials given (%zu lock%s held)",
			 url, n, n == 1 ? "" : "s");
		ok(msg);
	}
	free(l);
	tfgit_result_free(&r);
	/* what its sealed states are bound to: the operator needs it to move the repository */
	const tfgit_crypt *k = &c->s->store.crypt;
	char id[2100];
	if (!k->key_files)
		return;
	if (tfgit_repository_id(id, sizeof(id), c->s->default_repository, k->repository_ids) < 0) {
		snprintf(msg, sizeof(msg), "no repository identity can be made of the default repository %s", url);
		problem(msg, "give it one in TFGIT_REPOSITORY_IDS (URL=ID)");
		return;
	}
	snprintf(msg, sizeof(msg), "states sealed in the default repository are bound to its identity %s "
		 "(TFGIT_REPOSITORY_IDS keeps one across a move)", id);
	ok(msg);
}

int cmd_doctor(struct ctx *c)
{
	char why[512];
	const acl *a = NULL;
	problems = warnings = 0;
	ok("the settings (environment, TFGIT_CONFIG) are usable");
	check_default_cache(c->s);
	check_cache(c->s->store.cache_dir);
	if (c->s->acl_file && acl_get(&a, c->s->acl_file, why, sizeof(why)) < 0)
		problem(why, "fix TFGIT_ACL_FILE: until then every request is refused (500)");
	else if (c->s->acl_file)
		ok("the access-control file (TFGIT_ACL_FILE) parses");
	check_repository(c);
	acl_cache_free();
	printf("%d problem%s", problems, problems == 1 ? "" : "s");
	if (warnings)
		printf(", %d warning%s", warnings, warnings == 1 ? "" : "s");
	printf("\n");
	return problems ? 1 : 0;
}
