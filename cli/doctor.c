/* tfgit doctor: what is wrong with this setup and how to fix it; exit 1 when something is. */
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "../core/acl.h"
#include "../core/probe.h"
#include "cli.h"

#define FREE_MIN (64ULL << 20)
#define STATES_MAX 1000 /* files of a branch doctor reads (README: 1,000) */

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

/* This process's user name, "USER" when it has none. */
static const char *user_name(void)
{
	struct passwd *pw = getpwuid(geteuid());
	return pw ? pw->pw_name : "USER";
}

/* The nearest directory of path's that exists (path itself when it does) into out. */
static void existing_parent(char *out, size_t outlen, const char *path)
{
	struct stat st;
	snprintf(out, outlen, "%s", path);
	for (char *slash; lstat(out, &st) < 0 && (slash = strrchr(out, '/')) != NULL;)
		*(slash == out ? slash + 1 : slash) = '\0';
}

/* The cache directory: 0 when requests can use it (low space is a problem, but it is used);
 * -1 when they cannot, the repository's checks then pointless. */
static int check_cache(const char *dir)
{
	struct stat st;
	struct statvfs vfs;
	char msg[4400], parent[4096], fix[4400];
	if (lstat(dir, &st) < 0) {
		existing_parent(parent, sizeof(parent), dir);
		if (access(parent, W_OK | X_OK) < 0) {
			snprintf(msg, sizeof(msg), "the cache directory %s does not exist, and this user cannot make it "
				 "(%s: %s)", dir, parent, strerror(errno));
			snprintf(fix, sizeof(fix), "as root: install -d -o %s -m 700 %s (or set TFGIT_CACHE_DIR to a "
				 "directory this user may make)", user_name(), dir);
			problem(msg, fix);
			return -1;
		}
		snprintf(msg, sizeof(msg), "the cache directory %s does not exist yet (made 0700 at the first request)", dir);
		ok(msg);
		return 0;
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
	} else {
		unsigned long long free_mb = statvfs(dir, &vfs) == 0 ? (unsigned long long)vfs.f_bavail * vfs.f_frsize >> 20 : 0;
		if ((free_mb << 20) < FREE_MIN) {
			snprintf(msg, sizeof(msg), "the cache filesystem of %s has %llu MB free", dir, free_mb);
			problem(msg, "free space there, set TFGIT_CACHE_MAX, or move TFGIT_CACHE_DIR");
		} else {
			snprintf(msg, sizeof(msg), "the cache directory %s (ours, 0%o, %llu MB free)", dir, st.st_mode & 0777,
				 free_mb);
			ok(msg);
		}
		return 0;
	}
	return -1;
}

/* Who this process is, for the messages: "www-data, uid 33". */
static const char *whoami(void)
{
	static char me[300];
	snprintf(me, sizeof(me), "%s, uid %ld", user_name(), (long)geteuid());
	return me;
}

/* Settings under which no request can be served: no repository a request could use. */
static void check_serves(const struct settings *s)
{
	if (s->default_repository || s->allowed_repos)
		return;
	problem("neither TFGIT_DEFAULT_REPOSITORY nor TFGIT_ALLOWED_REPOS is set: nothing can be served "
		"(a request without repository= is a 400, one naming a repository a 403)",
		"set TFGIT_DEFAULT_REPOSITORY to the repository requests use, or TFGIT_ALLOWED_REPOS to the URL "
		"patterns requests may name with repository= (README: Settings)");
}

/* The proof that this process (the pool's user) can write the repository: nothing stays. */
static void check_writable(struct ctx *c, const char *url)
{
	tfgit_result r = {0};
	char probe[128], msg[5000], fix[1200];
	int left = 0, atomic = 0, local = c->t.url[0] == '/' || !strncmp(c->t.url, "file://", 7);
	int rc = tfgit_probe_write(&r, &c->s->store, &c->t, probe, sizeof(probe), &left, &atomic);
	if (rc == 0) {
		snprintf(msg, sizeof(msg), "this user (%s) can write the repository %s: %s%s", whoami(), url,
			 local ? "a file made and removed in each of its directories, and " : "",
			 probe[0] ? "a probe ref made and deleted (nothing stays)"
				  : "a push connection accepted (no branch yet to make a probe ref at)");
		ok(msg);
	} else {
		snprintf(msg, sizeof(msg), "this user (%s) cannot write the repository %s: %s; every LOCK, write "
			 "and UNLOCK fails (500)", whoami(), url, r.message[0] ? r.message : tfgit_strerror(rc));
		if (local)
			snprintf(fix, sizeof(fix), "let uid %ld write it: chown -R %s %s (or give a group of that user "
				 "write access: chgrp -R GROUP, chmod -R g+rwX and git config core.sharedRepository group); "
				 "run doctor as the pool's user (sudo -u www-data tfgit doctor)",
				 (long)geteuid(), user_name(), c->t.url[0] == '/' ? c->t.url : c->t.url + 7);
		else if (rc == TFGIT_EDENIED)
			snprintf(fix, sizeof(fix), "give the account of the credentials (GIT_USERNAME with GIT_PASSWORD_FILE, "
				 "GITHUB_TOKEN_FILE, TFGIT_NETRC, SSH_PRIVATE_KEY) push rights to the repository: its "
				 "branches, and refs named %s… for this check", PROBE_REF_PREFIX);
		else
			snprintf(fix, sizeof(fix), "check that the git server is up and reachable from here, and "
				 "TFGIT_REMOTE_TIMEOUT");
		problem(msg, fix);
	}
	if (rc == 0 && atomic) {
		snprintf(msg, sizeof(msg), "a write carries its lock: %s", local
			 ? "the state's branch and its lock branch change in one ref transaction"
			 : "the repository advertises atomic pushes, and the state's update and its lock branch "
			   "go in one (the probe ref went with its branch asserted)");
		ok(msg);
	} else if (rc == 0) {
		snprintf(msg, sizeof(msg), "the repository %s does not advertise atomic pushes: a write under a "
			 "lock checks the lock, then pushes the state (two steps); a force-unlock and a new LOCK "
			 "between the two let the old holder's write land (README: What tfgit guarantees)", url);
		warning(msg, "serve the repository with git 2.4 or later and receive.advertiseAtomic left on "
			"(git config receive.advertiseAtomic true), or use a server that advertises it (GitHub, "
			"GitLab, Gitea, git http-backend)");
	}
	if (left) {
		snprintf(msg, sizeof(msg), "the probe ref %s stays in %s (nothing reads it)", probe, url);
		snprintf(fix, sizeof(fix), "delete it: git push <the repository> :%s", probe);
		problem(msg, fix);
	}
	tfgit_result_free(&r);
}

/* What brings the key a state needs, by the way of encryption set. */
static const char *key_fix(const tfgit_crypt *k, const char *why)
{
	if (strstr(why, "clear text"))
		return "set TFGIT_ENCRYPTION_MIGRATE=encrypt (it is then read, and encrypted at its next write, or "
		       "all at once with tfgit reencrypt), or write it again through tfgit";
	if (k->key_files)
		return "add the key it was sealed with to TFGIT_ENCRYPTION_KEYS (every key listed decrypts; keep an "
		       "old key until tfgit reencrypt has run), or, sealed for another repository, branch or path, "
		       "write it again through tfgit from where it was sealed (README: What a sealed state is bound to)";
	if (k->passphrase)
		return "set the TF_BACKEND_HTTP_ENCRYPTION_PASSPHRASE it was written with";
	if (k->decrypt_cmd)
		return "check TFGIT_DECRYPT_CMD and the key it uses (its error output is in the log lines above)";
	return "set the encryption settings it was written with (README: Encryption at rest)";
}

/* Every state of the branch opened as a GET opens it, with the encryption settings given. */
static void check_states(struct ctx *c, const char *url)
{
	tfgit_result r = {0};
	tfgit_probe_failure *f = NULL;
	size_t opened = 0, unchecked = 0, n = 0;
	int found = 0;
	char msg[5000], fix[1200];
	const tfgit_crypt *k = &c->s->store.crypt;
	const char *how = k->key_files ? "TFGIT_ENCRYPTION_KEYS" : k->passphrase ? "the aes passphrase" :
			  k->decrypt_cmd ? "TFGIT_DECRYPT_CMD" : "no encryption";
	int rc = tfgit_probe_states(&r, &c->s->store, &c->t, STATES_MAX, &found, &opened, &unchecked, &f, &n);
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "the states of branch %s of %s cannot be read: %s", c->t.ref, url,
			 r.message[0] ? r.message : tfgit_strerror(rc));
		problem(msg, "check the cache directory and the repository (the lines above)");
	} else if (!found) {
		snprintf(msg, sizeof(msg), "branch %s of %s holds no state yet (%s)", c->t.ref, url, how);
		ok(msg);
	} else {
		for (size_t i = 0; i < n; i++) {
			snprintf(msg, sizeof(msg), "state %s on branch %s does not open with %s: %s; every GET and "
				 "write of it fails (500)", cli_safe(f[i].state), c->t.ref, how, cli_safe(f[i].message));
			snprintf(fix, sizeof(fix), "%s", key_fix(k, f[i].message));
			problem(msg, fix);
		}
		snprintf(msg, sizeof(msg), "%zu state%s on branch %s open%s with %s%s", opened, opened == 1 ? "" : "s",
			 c->t.ref, opened == 1 ? "s" : "", how,
			 unchecked ? " (the branch holds more files than doctor reads)" : "");
		if (opened || !n)
			ok(msg);
	}
	free(f);
	tfgit_result_free(&r);
}

/* The repository doctor checks: --repository and --ref, else the defaults. */
static void check_repository(struct ctx *c)
{
	tfgit_result r = {0};
	tfgit_lock_entry *l = NULL;
	size_t n = 0;
	char msg[4400], url[512], why[512];
	if (!c->a->repository && !c->s->default_repository) {
		if (c->s->allowed_repos)
			ok("no TFGIT_DEFAULT_REPOSITORY: every request names its repository= (TFGIT_ALLOWED_REPOS); "
			   "doctor --repository URL checks one");
		return;
	}
	if (settings_target(c->s, c->a->repository, c->a->ref, NULL, &c->t, c->url, sizeof(c->url), why,
			    sizeof(why)) != TFGIT_OK) {
		tfgit_url_redact(url, sizeof(url), c->a->repository ? c->a->repository : c->s->default_repository);
		snprintf(msg, sizeof(msg), "the repository %s, branch %s: %s", url,
			 c->a->ref ? c->a->ref : c->s->default_ref, cli_safe(why));
		problem(msg, "give a repository and branch TFGIT_ALLOWED_REPOS and TFGIT_ALLOWED_REFS allow, "
			"or change those settings (README: Settings)");
		return;
	}
	tfgit_url_redact(url, sizeof(url), c->t.url);
	c->t.state = "";
	int rc = tfgit_locks(&r, &c->s->store, &c->t, &l, &n);
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "the %srepository %s does not answer: %s", c->a->repository ? "" : "default ",
			 url, r.message[0] ? r.message : tfgit_strerror(rc));
		problem(msg, rc == TFGIT_EDENIED ? "check the credentials (GIT_USERNAME with GIT_PASSWORD_FILE or "
						   "GITHUB_TOKEN_FILE, TFGIT_NETRC, SSH_PRIVATE_KEY and TFGIT_SSH_KNOWN_HOSTS) "
						   "and that the repository exists"
						 : "check the URL, that the git server is up and reachable from here, and "
						   "TFGIT_REMOTE_TIMEOUT");
	} else {
		snprintf(msg, sizeof(msg), "the %srepository %s answers with the credentials given (%zu lock%s held)",
			 c->a->repository ? "" : "default ", url, n, n == 1 ? "" : "s");
		ok(msg);
	}
	free(l);
	tfgit_result_free(&r);
	if (rc == 0) {
		check_writable(c, url);
		check_states(c, url);
	}
	/* what its sealed states are bound to: the operator needs it to move the repository */
	const tfgit_crypt *k = &c->s->store.crypt;
	char id[2100];
	if (!k->key_files)
		return;
	if (tfgit_repository_id(id, sizeof(id), c->t.url, k->repository_ids) < 0) {
		snprintf(msg, sizeof(msg), "no repository identity can be made of the repository %s", url);
		problem(msg, "give it one in TFGIT_REPOSITORY_IDS (URL=ID)");
		return;
	}
	snprintf(msg, sizeof(msg), "states sealed in the repository %s are bound to its identity %s "
		 "(TFGIT_REPOSITORY_IDS keeps one across a move)", url, id);
	ok(msg);
}

/* The settings could not be loaded (main.c): the reason as a problem, with its fix; the exit
 * status. Every misspelt name is in why (settings_load lists them all). */
int doctor_settings_refused(const char *why)
{
	char msg[1200];
	snprintf(msg, sizeof(msg), "the settings: %s", why);
	problem(msg, strstr(why, "not a tfgit setting")
			     ? "correct or remove each name listed (README: Settings lists every setting); until then "
			       "nothing is served (500) and the pool does not start"
			     : "correct the setting named (README: Settings); until then nothing is served (500) and "
			       "the pool does not start");
	printf("1 problem\n");
	return 1;
}

int cmd_doctor(struct ctx *c)
{
	char why[512];
	const acl *a = NULL;
	problems = warnings = 0;
	char line[4300];
	snprintf(line, sizeof(line), "the settings (environment, %s%s) are usable", c->s->config_file[0] ? "settings file " : "no settings file",
		 c->s->config_file);
	ok(line);
	check_serves(c->s);
	check_default_cache(c->s);
	int cache_usable = check_cache(c->s->store.cache_dir) == 0;
	if (c->s->acl_file && acl_get(&a, c->s->acl_file, why, sizeof(why)) < 0)
		problem(why, "fix TFGIT_ACL_FILE: until then every request is refused (500)");
	else if (c->s->acl_file)
		ok("the access-control file (TFGIT_ACL_FILE) parses");
	if (cache_usable)
		check_repository(c);
	else
		printf("not checked: the repository (requests cannot use the cache directory: the problem above)\n");
	acl_cache_free();
	printf("%d problem%s", problems, problems == 1 ? "" : "s");
	if (warnings)
		printf(", %d warning%s", warnings, warnings == 1 ? "" : "s");
	printf("\n");
	return problems ? 1 : 0;
}
