/* Settings of both fronts (the FastCGI program, the admin command): each looked up in the
 * request's server variables, then the process environment, then a settings file: the one
 * TFGIT_CONFIG names, or else the one tfgit finds by itself (default_config). */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/cachedir.h"
#include "crypt/crypt.h"
#include "internal.h"
#include "settings.h"

#define CONFIG_MAX (64 * 1024)

/* Every setting a server variable, the environment or TFGIT_CONFIG may give. */
static const char *const known[] = {
	"TFGIT_DEFAULT_REPOSITORY", "TFGIT_DEFAULT_REF", "TFGIT_ALLOWED_REPOS", "TFGIT_ALLOWED_STATES",
	"TFGIT_ALLOWED_REFS", "TFGIT_ACL_FILE", "TFGIT_CACHE_DIR", "TFGIT_CACHE_MAX",
	"TFGIT_QUEUE_TIMEOUT", "TFGIT_REQUIRE_LOCK", "TFGIT_FORCE_UNLOCK", "TFGIT_MAX_BODY",
	"TFGIT_AUTHOR_NAME", "TFGIT_AUTHOR_EMAIL", "TFGIT_MAX_REQUESTS", "TFGIT_REMOTE_TIMEOUT",
	"GIT_USERNAME", "GIT_PASSWORD", "GIT_PASSWORD_FILE", "GITHUB_TOKEN", "GITHUB_TOKEN_FILE",
	"TFGIT_NETRC", "SSH_PRIVATE_KEY", "TFGIT_SSH_KNOWN_HOSTS", "StrictHostKeyChecking",
	"TFGIT_SSL_CA_FILE", "TFGIT_SSL_NO_VERIFY", "TF_BACKEND_HTTP_ENCRYPTION_PROVIDER",
	"TF_BACKEND_HTTP_ENCRYPTION_PASSPHRASE", "TFGIT_ENCRYPTION_KEYS", "TFGIT_ENCRYPT_CMD",
	"TFGIT_DECRYPT_CMD", "TFGIT_FILTER_TIMEOUT", "TFGIT_ENCRYPTION_MIGRATE", "TFGIT_REPOSITORY_IDS",
	"TFGIT_ENCRYPTION_REFUSE_V1",
	"TFGIT_LOCK_TTL", "TFGIT_LINEAGE_GUARD", "TFGIT_LOG_FORMAT", "TFGIT_GROUP_COMMIT",
	"TFGIT_KEEP_CONNECTIONS",
};

/* TFGIT_* names that are tfgit's but not settings, taken from the environment only: the file
 * of settings may also be named by a server variable; the programs' start as root and the pool
 * launcher's (scripts/pool.sh, the installed tfgit-pool) mean nothing per request. */
static const char *const not_settings[] = {
	"TFGIT_CONFIG", "TFGIT_ALLOW_ROOT", "TFGIT_CONF", "TFGIT_BIN", "TFGIT_WRAPPER",
};

struct source {
	char **params;    /* the request's server variables; NULL at start-up */
	const char *file; /* TFGIT_CONFIG's entries, "NAME=value\0" each, ending with "\0" */
	char *why;
	size_t whylen;
};

static int refuse(const struct source *src, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(const struct source *src, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(src->why, src->whylen, fmt, ap);
	va_end(ap);
	return -1;
}

/* NAME's value in "NAME=value" strings (NULL-terminated), as the web server passed them. */
static const char *param(const char *name, char **params, size_t n)
{
	for (char **p = params; p && *p; p++)
		if (!strncmp(*p, name, n) && (*p)[n] == '=')
			return *p + n + 1;
	return NULL;
}

/* A setting's value, NULL when unset (or empty) everywhere. */
static const char *lookup(const struct source *src, const char *name)
{
	const char *v;
	size_t n = strlen(name);
	if ((v = param(name, src->params, n)) && *v)
		return v;
	if ((v = getenv(name)) && *v)
		return v;
	for (const char *e = src->file; e && *e; e += strlen(e) + 1)
		if (!strncmp(e, name, n) && e[n] == '=')
			return e[n + 1] ? e + n + 1 : NULL;
	return NULL;
}

static const char *value_or(const struct source *src, const char *name, const char *fallback)
{
	const char *v = lookup(src, name);
	return v ? v : fallback;
}

static int is_known(const char *name)
{
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(known[i], name))
			return 1;
	return 0;
}

/* 1 when the NAME of a "NAME=value" entry claims to be tfgit's (TFGIT_*, or the reference's
 * TF_BACKEND_*, in any case) but is no name tfgit knows here: a misspelt setting, whose
 * restriction would silently be off. env: the entry is the environment's (the launcher's names
 * and TFGIT_ALLOW_ROOT are read there alone). */
static int misspelt(const char *entry, int env)
{
	char name[128];
	size_t n = strcspn(entry, "=");
	if (strncasecmp(entry, "TFGIT_", 6) != 0 && strncasecmp(entry, "TF_BACKEND_", 11) != 0)
		return 0;
	if (n >= sizeof(name))
		return 1;
	memcpy(name, entry, n);
	name[n] = '\0';
	for (size_t i = 0; i < sizeof(not_settings) / sizeof(not_settings[0]); i++)
		if (!strcmp(not_settings[i], name))
			return !env && i > 0;
	return !is_known(name);
}

/* Refuses every misspelt name of the request's server variables and of the environment (fail
 * closed: nothing is served with a restriction the operator meant and mistyped). Under CGI the
 * server variables are the environment: each name is said once. */
static int check_names(const struct source *src)
{
	extern char **environ;
	char names[512] = "";
	size_t used = 0;
	for (int from = 0; from < 2; from++)
		for (char **p = from ? environ : src->params; p && *p && !(from && src->params == environ); p++)
			if (misspelt(*p, from || src->params == environ) && used < sizeof(names) - 1)
				used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%.*s (%s)",
							 used ? ", " : "", (int)strcspn(*p, "="), *p,
							 from ? "environment" : "server variable");
	if (!used)
		return 0;
	return refuse(src, "not a tfgit setting: %s; a misspelt name would leave what it sets off, so "
			   "nothing is served until it is corrected or removed (README: Settings)", names);
}

#ifndef TFGIT_SYSCONFDIR /* make: $(SYSCONFDIR), /etc for PREFIX=/usr */
#define TFGIT_SYSCONFDIR "/usr/local/etc"
#endif

/* Reads the settings file open on fd (named path, called what in messages: "TFGIT_CONFIG
 * <path>" or "settings file <path>") into s->file_text as "NAME=value\0" entries: one
 * NAME=value per line, '#' lines and blank lines skipped, value without surrounding quotes or
 * trailing blanks; FCGI_* (spawn-fcgi.conf's own) ignored, any other unknown name refused. The
 * file must belong to this user or root and be writable by no one else. Closes fd. */
static int read_config(struct settings *s, struct source *src, int fd, const char *what)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return refuse(src, "%s: %s", what, strerror(e));
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CONFIG_MAX ||
	    (st.st_uid != geteuid() && st.st_uid != 0) || (st.st_mode & 022)) {
		close(fd);
		return refuse(src, "%s must be a file of at most %d bytes, owned by this user (uid %ld) or "
				   "root and writable by no one else", what, CONFIG_MAX, (long)geteuid());
	}
	char *text = calloc(1, (size_t)st.st_size + 2), *out;
	ssize_t got = text ? read(fd, text, (size_t)st.st_size) : -1;
	close(fd);
	if (got < 0) {
		free(text);
		return refuse(src, "%s cannot be read", what);
	}
	text[got] = '\0';
	s->file_text = out = text; /* entries are written over the text, never past it */
	s->file_size = (size_t)st.st_size + 2;
	int line = 0;
	char names[400] = "";
	size_t unknown = 0;
	for (char *p = text, *next; p && *p; p = next) {
		line++;
		next = strchr(p, '\n');
		if (next)
			*next++ = '\0';
		p += strspn(p, " \t");
		size_t len = strlen(p);
		while (len && strchr(" \t\r", p[len - 1]))
			p[--len] = '\0';
		if (!*p || *p == '#')
			continue;
		char *eq = strchr(p, '=');
		size_t klen = strcspn(p, " \t=");
		if (!eq || klen == 0 || p + klen + strspn(p + klen, " \t") != eq)
			return refuse(src, "%s line %d: not NAME=value", what, line);
		p[klen] = '\0';
		char *v = eq + 1;
		v += strspn(v, " \t");
		size_t vlen = strlen(v);
		if (vlen >= 2 && (v[0] == '"' || v[0] == '\'') && v[vlen - 1] == v[0]) {
			v[--vlen] = '\0';
			v++;
			vlen--;
		}
		if (!strncmp(p, "FCGI_", 5))
			continue;
		if (!is_known(p)) { /* each one named, not only the first (tfgit doctor lists them) */
			if (unknown < sizeof(names) - 1)
				unknown += (size_t)snprintf(names + unknown, sizeof(names) - unknown, "%sline %d: %.64s "
							    "is not a tfgit setting", unknown ? "; " : "", line, p);
			continue;
		}
		/* out never passes p: each entry is no longer than its line */
		size_t n = strlen(p);
		memmove(out, p, n);
		out[n] = '=';
		memmove(out + n + 1, v, vlen);
		out += n + 1 + vlen;
		*out++ = '\0';
	}
	*out = '\0';
	src->file = s->file_text;
	return unknown ? refuse(src, "%s %s", what, names) : 0;
}

/* The settings file named by TFGIT_CONFIG: the operator's path, followed as given. */
static int named_config(struct settings *s, struct source *src, const char *path)
{
	char what[sizeof(s->config_file) + 16];
	snprintf(s->config_file, sizeof(s->config_file), "%s", path);
	snprintf(what, sizeof(what), "TFGIT_CONFIG %s", path);
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return refuse(src, "%s: %s", what, strerror(errno));
	return read_config(s, src, fd, what);
}

/* This account's home as the password database names it ("" when none, or not absolute): never
 * $HOME, which a web server may not set or may set to another's. Looked up once: the process's
 * user does not change. */
static const char *account_home(void)
{
	static char home[3900];
	static int looked;
	if (!looked) {
		struct passwd *pw = getpwuid(geteuid());
		if (pw && pw->pw_dir && *pw->pw_dir == '/' && strlen(pw->pw_dir) < sizeof(home))
			snprintf(home, sizeof(home), "%s", pw->pw_dir);
		looked = 1;
	}
	return home;
}

/* Opens top/tfgit/tfgit.conf, each name below top never through a symlink (top itself is
 * followed: a home in the password database may be one). The file's fd; -2 when some part is
 * missing (nothing there: the next place is looked at); -1 with the reason in why (refused:
 * fail closed, never the next place). The directory holding the file must be this user's or
 * root's and writable by no one else: whoever could write it could swap the file. */
static int open_default(const char *top, const char *sub, char *path, size_t pathlen, char *why, size_t whylen)
{
	const char *names[] = {sub, "tfgit", "tfgit.conf"};
	struct stat st;
	int fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC), at;
	snprintf(path, pathlen, "%s", top);
	for (size_t i = 0; fd >= 0 && i < sizeof(names) / sizeof(names[0]); i++) {
		if (!names[i])
			continue;
		if (i == 2 && (fstat(fd, &st) < 0 || (st.st_uid != geteuid() && st.st_uid != 0) || (st.st_mode & 022))) {
			snprintf(why, whylen, "the settings file's directory %s must belong to this user (uid %ld) "
					      "or root and be writable by no one else", path, (long)geteuid());
			close(fd);
			return -1;
		}
		at = fd;
		fd = openat(at, names[i], (i == 2 ? O_RDONLY | O_NONBLOCK : O_RDONLY | O_DIRECTORY) | O_NOFOLLOW | O_CLOEXEC);
		close(at);
		size_t used = strlen(path);
		snprintf(path + used, pathlen - used, "%s%s", path[used - 1] == '/' ? "" : "/", names[i]);
	}
	if (fd >= 0)
		return fd;
	if (errno == ENOENT)
		return -2;
	snprintf(why, whylen, "settings file %s: %s", path, errno == ELOOP || errno == ENOTDIR ?
		 "a symlink or not a directory on the way (not followed)" : strerror(errno));
	return -1;
}

/* The settings file tfgit finds by itself when TFGIT_CONFIG is not given, never from the
 * environment (suexec clears it; a web server's HOME may be another's): the first that exists of
 * <home>/.config/tfgit/tfgit.conf (home from the password database: the account's own, outside
 * its web site; what suexec and the account's admin command both see) and
 * TFGIT_SYSCONFDIR/tfgit/tfgit.conf (make install's, for services). Neither: no file, 0. */
static int default_config(struct settings *s, struct source *src)
{
	char what[sizeof(s->config_file) + 16];
	const char *tops[][2] = {{account_home(), ".config"}, {TFGIT_SYSCONFDIR, NULL}};
	for (size_t i = 0; i < 2; i++) {
		if (!*tops[i][0])
			continue;
		int fd = open_default(tops[i][0], tops[i][1], s->config_file, sizeof(s->config_file), src->why,
				      src->whylen);
		if (fd == -1)
			return -1;
		if (fd >= 0) {
			snprintf(what, sizeof(what), "settings file %s", s->config_file);
			return read_config(s, src, fd, what);
		}
	}
	s->config_file[0] = '\0';
	return 0;
}

static int flag_setting(const struct source *src, const char *name, int fallback, int *out)
{
	const char *v = lookup(src, name);
	if (!v)
		*out = fallback;
	else if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"))
		*out = 1;
	else if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off"))
		*out = 0;
	else
		return refuse(src, "%s=%s is not a boolean (use 1 or 0)", name, v);
	return 0;
}

/* A whole number from lo to hi. */
static int number_setting(const struct source *src, const char *name, const char *fallback,
			  unsigned long long lo, unsigned long long hi, unsigned long long *out)
{
	const char *v = value_or(src, name, fallback);
	char *end;
	errno = 0;
	*out = strtoull(v, &end, 10);
	if (errno || *end || *v == '-' || *out < lo || *out > hi)
		return refuse(src, "%s=%s is not a number from %llu to %llu", name, v, lo, hi);
	return 0;
}

/* TFGIT_CACHE_MAX: a number of repositories, or a size with a K, M or G suffix. */
static int cache_max(struct settings *s, const struct source *src)
{
	const char *v = value_or(src, "TFGIT_CACHE_MAX", "0");
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	int shift = !*end ? -1 : !strcasecmp(end, "K") ? 10 : !strcasecmp(end, "M") ? 20 :
		    !strcasecmp(end, "G") ? 30 : -2;
	if (errno || *v == '-' || shift == -2 || n > (1ULL << 40))
		return refuse(src, "TFGIT_CACHE_MAX=%s: give a number of repositories (50) or a size "
				   "(512M, 2G)", v);
	if (shift < 0)
		s->store.cache_max_count = (long)n;
	else
		s->store.cache_max_bytes = (long long)(n << shift);
	return 0;
}

/* What keeps path from being this user's own directory, writable by no one else (written into
 * why); 0 when nothing does. Only looks: never changes what is there (another account's). */
static int not_own_dir(const char *path, char *why, size_t whylen)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
	else if (S_ISLNK(st.st_mode))
		snprintf(why, whylen, "%s is a symlink (not followed)", path);
	else if (!S_ISDIR(st.st_mode))
		snprintf(why, whylen, "%s is not a directory", path);
	else if (st.st_uid != geteuid())
		snprintf(why, whylen, "%s belongs to uid %ld, not to this user (uid %ld)", path, (long)st.st_uid,
			 (long)geteuid());
	else if (st.st_mode & 022)
		snprintf(why, whylen, "%s is writable by %s", path, st.st_mode & 002 ? "every user" : "its group");
	else
		return 0;
	return -1;
}

/* The account's own cache on its disk, <home>/.cache/tfgit with home from the password database
 * (a web server's HOME may be missing or another's): made 0700 whatever the umask, then checked
 * where it is (not through a symlink). 0, or -1 with the reason in why. */
static int home_cache(char *out, size_t outlen, char *why, size_t whylen)
{
	const char *home = account_home();
	char dot[4000];
	struct stat st;
	if (!*home) {
		snprintf(why, whylen, "this user (uid %ld) has no home directory in the password database",
			 (long)geteuid());
		return -1;
	}
	snprintf(dot, sizeof(dot), "%s/.cache", home);
	snprintf(out, outlen, "%s/tfgit", dot);
	/* whoever could write these could swap the directory for one of theirs after the check */
	const char *parents[] = {home, dot};
	for (size_t i = 0; i < 2; i++) {
		if (i && mkdir(dot, 0700) < 0 && errno != EEXIST) {
			snprintf(why, whylen, "%s cannot be made: %s", dot, strerror(errno));
			return -1;
		}
		if (stat(parents[i], &st) < 0 || !S_ISDIR(st.st_mode) ||
		    (st.st_uid != geteuid() && st.st_uid != 0) || (st.st_mode & 022)) {
			snprintf(why, whylen, "%s is not a directory of this user (or root) writable by it alone",
				 parents[i]);
			return -1;
		}
	}
	if (mkdir(out, 0700) < 0 && errno != EEXIST) {
		snprintf(why, whylen, "%s cannot be made: %s", out, strerror(errno));
		return -1;
	}
	int fd = open(out, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(why, whylen, "%s: %s", out, errno == ELOOP || errno == ENOTDIR ?
			 "not a directory (a symlink is not followed)" : strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	int rc = 0;
	if (st.st_uid != geteuid() || (st.st_mode & 022)) {
		snprintf(why, whylen, "%s is not this user's (uid %ld) or is writable by others", out, (long)geteuid());
		rc = -1;
	} else if ((st.st_mode & 077) && fchmod(fd, 0700) < 0) {
		snprintf(why, whylen, "%s is readable by others and cannot be made private: %s", out, strerror(errno));
		rc = -1;
	}
	close(fd);
	return rc;
}

/* TFGIT_CACHE_DIR, by default private to this account: /dev/shm/tfgit-<uid> (memory). /dev/shm
 * is shared: another account can make that name first (after every boot); what is there is then
 * left alone, and the account's own <home>/.cache/tfgit is used instead, logged once a process
 * and kept in s->cache_fallback for tfgit doctor. A TFGIT_CACHE_DIR given is never replaced. */
static int cache_dir(struct settings *s, const struct source *src)
{
	static char logged[sizeof(s->cache_fallback) + 4800];
	const char *v = lookup(src, "TFGIT_CACHE_DIR");
	char shm[64], why[8192];
	struct stat st;
	if (v) {
		if (*v != '/')
			return refuse(src, "TFGIT_CACHE_DIR=%s is not an absolute path", v);
		s->store.cache_dir = v;
		return 0;
	}
	snprintf(shm, sizeof(shm), "/dev/shm/tfgit-%ld", (long)geteuid());
	if (stat("/dev/shm", &st) < 0 || !S_ISDIR(st.st_mode) || access("/dev/shm", W_OK | X_OK) < 0) {
		snprintf(s->cache_fallback, sizeof(s->cache_fallback), "/dev/shm is not usable");
	} else {
		/* made here when missing: whatever holds the name then is judged, never the other way */
		if (lstat(shm, &st) < 0 && errno == ENOENT && mkdir(shm, 0700) < 0 && errno != EEXIST)
			snprintf(s->cache_fallback, sizeof(s->cache_fallback), "%s cannot be made: %s", shm,
				 strerror(errno));
		else if (not_own_dir(shm, s->cache_fallback, sizeof(s->cache_fallback)) == 0) {
			snprintf(s->cache_dir, sizeof(s->cache_dir), "%s", shm);
			s->store.cache_dir = s->cache_dir;
			return 0;
		}
	}
	if (home_cache(s->cache_dir, sizeof(s->cache_dir), why, sizeof(why)) < 0)
		return refuse(src, "no usable cache directory: %s, and %s; set TFGIT_CACHE_DIR to a "
				   "directory of this account's own", s->cache_fallback, why);
	s->store.cache_dir = s->cache_dir;
	char line[sizeof(logged)];
	snprintf(line, sizeof(line), "the cache is %s (%s) instead of %s: %s%s", s->cache_dir,
		 cache_in_memory(s->cache_dir) ? "in memory" : "on disk: every object read is checked against its id",
		 shm, s->cache_fallback, strncmp(s->cache_fallback, shm, strlen(shm)) ? "" :
		 " (another account may have made it; it is left as it is: root can remove it, or set "
		 "TFGIT_CACHE_DIR)");
	if (strcmp(line, logged)) { /* once a process, not on every request */
		core_log("%s", line);
		snprintf(logged, sizeof(logged), "%s", line);
	}
	return 0;
}

/* Notes a password written in the default repository's URL, as written and %-decoded. */
static void note_url_password(const char *url)
{
	const char *at = strrchr(url, '@');
	const char *scheme = strstr(url, "://");
	const char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
	if (!at || !colon || colon > at)
		return;
	char pw[512] = "", dec[512] = "";
	size_t n = (size_t)(at - colon - 1), o = 0;
	snprintf(pw, sizeof(pw), "%.*s", (int)(n < sizeof(pw) ? n : sizeof(pw) - 1), colon + 1);
	for (size_t i = 0; pw[i] && o + 1 < sizeof(dec); i++) {
		unsigned int c;
		if (pw[i] == '%' && pw[i + 1] && pw[i + 2] && sscanf(pw + i + 1, "%2x", &c) == 1) {
			dec[o++] = (char)c;
			i += 2;
		} else {
			dec[o++] = pw[i];
		}
	}
	dec[o] = '\0';
	tfgit_secret_note(pw);
	tfgit_secret_note(dec);
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(dec, sizeof(dec));
}

/* Notes every secret of the settings (so no message shows it) and checks the patterns. */
static int secrets_and_patterns(struct settings *s, const struct source *src)
{
	char why[512];
	tfgit_secret_note(s->store.remote.password);
	tfgit_secret_note(s->store.remote.token);
	if (s->default_repository) {
		note_url_password(s->default_repository);
		if (tfgit_repository_check(s->default_repository, 1, why, sizeof(why)) < 0)
			return refuse(src, "TFGIT_DEFAULT_REPOSITORY: %s", why);
	}
	if (s->allowed_repos && tfgit_patterns_check(s->allowed_repos, why, sizeof(why)) < 0)
		return refuse(src, "TFGIT_ALLOWED_REPOS: %s", why);
	return 0;
}

static int remote_settings(struct settings *s, const struct source *src)
{
	tfgit_remote_opts *r = &s->store.remote;
	unsigned long long v;
	r->username = lookup(src, "GIT_USERNAME");
	r->password = lookup(src, "GIT_PASSWORD");
	r->password_file = lookup(src, "GIT_PASSWORD_FILE");
	r->token = lookup(src, "GITHUB_TOKEN");
	r->token_file = lookup(src, "GITHUB_TOKEN_FILE");
	r->netrc = lookup(src, "TFGIT_NETRC");
	r->ssh_key = lookup(src, "SSH_PRIVATE_KEY");
	r->known_hosts = lookup(src, "TFGIT_SSH_KNOWN_HOSTS");
	if (flag_setting(src, "TFGIT_SSL_NO_VERIFY", 0, &r->tls_no_verify) < 0)
		return -1;
	const char *strict = value_or(src, "StrictHostKeyChecking", "yes");
	if (!strcasecmp(strict, "yes"))
		r->host_key_check = HOSTKEY_STRICT;
	else if (!strcasecmp(strict, "no"))
		r->host_key_check = HOSTKEY_OFF;
	else if (!strcasecmp(strict, "accept-new"))
		r->host_key_check = HOSTKEY_ACCEPT_NEW;
	else
		return refuse(src, "StrictHostKeyChecking=%s: use yes, no or accept-new", strict);
	if (number_setting(src, "TFGIT_REMOTE_TIMEOUT", "60", 0, 86400, &v) < 0)
		return -1;
	r->timeout = (int)v;
	return 0;
}

/* Encryption at rest: terraform-backend-git's two settings, tfgit's keys, or filters; one way. */
static int crypt_settings(struct settings *s, const struct source *src)
{
	tfgit_crypt *c = &s->store.crypt;
	unsigned long long v;
	char why[512];
	const char *provider = lookup(src, "TF_BACKEND_HTTP_ENCRYPTION_PROVIDER");
	const char *passphrase = lookup(src, "TF_BACKEND_HTTP_ENCRYPTION_PASSPHRASE");
	const char *migrate = lookup(src, "TFGIT_ENCRYPTION_MIGRATE");
	tfgit_secret_note(passphrase);
	if (provider && strcmp(provider, "aes") != 0)
		return refuse(src, "TF_BACKEND_HTTP_ENCRYPTION_PROVIDER=%s: tfgit knows aes; for sops (or age, "
				   "gpg, a Vault CLI) set TFGIT_ENCRYPT_CMD and TFGIT_DECRYPT_CMD", provider);
	if (!provider != !passphrase)
		return refuse(src, "TF_BACKEND_HTTP_ENCRYPTION_PROVIDER=aes and TF_BACKEND_HTTP_ENCRYPTION_PASSPHRASE "
				   "go together");
	c->passphrase = passphrase;
	c->key_files = lookup(src, "TFGIT_ENCRYPTION_KEYS");
	c->encrypt_cmd = lookup(src, "TFGIT_ENCRYPT_CMD");
	c->decrypt_cmd = lookup(src, "TFGIT_DECRYPT_CMD");
	if ((c->passphrase != NULL) + (c->key_files != NULL) + (c->encrypt_cmd || c->decrypt_cmd) > 1)
		return refuse(src, "choose one way to encrypt: TF_BACKEND_HTTP_ENCRYPTION_PASSPHRASE, "
				   "TFGIT_ENCRYPTION_KEYS, or TFGIT_ENCRYPT_CMD with TFGIT_DECRYPT_CMD");
	if (!c->encrypt_cmd != !c->decrypt_cmd)
		return refuse(src, "TFGIT_ENCRYPT_CMD and TFGIT_DECRYPT_CMD go together");
	if (c->key_files && crypt_keys_check(c->key_files, why, sizeof(why)) < 0)
		return refuse(src, "%s", why);
	if (number_setting(src, "TFGIT_FILTER_TIMEOUT", "30", 1, 3600, &v) < 0)
		return -1;
	c->filter_timeout = (int)v;
	if (!migrate)
		c->migrate = CRYPT_MIGRATE_NONE;
	else if (!strcmp(migrate, "encrypt") || !strcmp(migrate, "1"))
		c->migrate = CRYPT_MIGRATE_ENCRYPT;
	else if (!strcmp(migrate, "decrypt"))
		c->migrate = CRYPT_MIGRATE_DECRYPT;
	else
		return refuse(src, "TFGIT_ENCRYPTION_MIGRATE=%s: use encrypt (clear text is read, and encrypted "
				   "at its next write) or decrypt (encrypted states are read, written in clear text)",
			      migrate);
	if (c->migrate && !crypt_enabled(c))
		return refuse(src, "TFGIT_ENCRYPTION_MIGRATE needs the encryption settings (the keys to read or "
				   "write with)");
	/* what binds a sealed state to its repository: tfgit's keys only (the other ways bind
	 * nothing, so a setting that seems to would mislead) */
	c->repository_ids = lookup(src, "TFGIT_REPOSITORY_IDS");
	if (flag_setting(src, "TFGIT_ENCRYPTION_REFUSE_V1", 0, &c->refuse_v1) < 0)
		return -1;
	if ((c->repository_ids || c->refuse_v1) && !c->key_files)
		return refuse(src, "%s binds tfgit's own format only: it needs TFGIT_ENCRYPTION_KEYS",
			      c->repository_ids ? "TFGIT_REPOSITORY_IDS" : "TFGIT_ENCRYPTION_REFUSE_V1");
	if (c->repository_ids && tfgit_repository_ids_check(c->repository_ids, why, sizeof(why)) < 0)
		return refuse(src, "TFGIT_REPOSITORY_IDS: %s", why);
	return 0;
}

int settings_load(struct settings *s, char **params, int warn, char *why, size_t whylen)
{
	struct source src = {params, NULL, why, whylen};
	char host[256] = "localhost";
	unsigned long long v;
	memset(s, 0, sizeof(*s));
	if (whylen)
		*why = '\0';
	if (check_names(&src) < 0)
		return -1;
	const char *config = lookup(&src, "TFGIT_CONFIG");
	if (config ? named_config(s, &src, config) < 0 : default_config(s, &src) < 0)
		return -1;
	s->default_repository = lookup(&src, "TFGIT_DEFAULT_REPOSITORY");
	s->default_ref = value_or(&src, "TFGIT_DEFAULT_REF", "master");
	s->allowed_repos = lookup(&src, "TFGIT_ALLOWED_REPOS");
	s->allowed_states = s->store.allowed_states = lookup(&src, "TFGIT_ALLOWED_STATES");
	s->allowed_refs = lookup(&src, "TFGIT_ALLOWED_REFS");
	s->acl_file = lookup(&src, "TFGIT_ACL_FILE");
	s->store.author_name = value_or(&src, "TFGIT_AUTHOR_NAME", "tfgit");
	gethostname(host, sizeof(host) - 1);
	snprintf(s->email, sizeof(s->email), "tfgit@%s", host);
	s->store.author_email = value_or(&src, "TFGIT_AUTHOR_EMAIL", s->email);
	s->ca_file = lookup(&src, "TFGIT_SSL_CA_FILE");
	if (cache_dir(s, &src) < 0 || flag_setting(&src, "TFGIT_REQUIRE_LOCK", 1, &s->store.require_lock) < 0 ||
	    flag_setting(&src, "TFGIT_FORCE_UNLOCK", 1, &s->store.allow_force_unlock) < 0 ||
	    remote_settings(s, &src) < 0)
		return -1;
	if (number_setting(&src, "TFGIT_MAX_REQUESTS", "10000", 0, 1ULL << 40, &v) < 0)
		return -1;
	s->max_requests = (long)v;
	const char *log_format = value_or(&src, "TFGIT_LOG_FORMAT", "text");
	if (strcmp(log_format, "text") != 0 && strcmp(log_format, "json") != 0)
		return refuse(&src, "TFGIT_LOG_FORMAT=%s: use text or json", log_format);
	s->log_json = !strcmp(log_format, "json");
	if (number_setting(&src, "TFGIT_MAX_BODY", "268435456", 1, 1ULL << 40, &v) < 0)
		return -1;
	s->max_body = (size_t)v;
	s->store.max_blob = s->max_body;
	s->store.remote.max_object = s->max_body;
	if (number_setting(&src, "TFGIT_QUEUE_TIMEOUT", "10", 0, 86400, &v) < 0)
		return -1;
	s->store.queue_timeout = (int)v;
	if (number_setting(&src, "TFGIT_LOCK_TTL", "0", 0, 10ULL * 366 * 86400, &v) < 0 ||
	    flag_setting(&src, "TFGIT_LINEAGE_GUARD", 0, &s->store.lineage_guard) < 0 ||
	    flag_setting(&src, "TFGIT_GROUP_COMMIT", 1, &s->store.group_commit) < 0 ||
	    flag_setting(&src, "TFGIT_KEEP_CONNECTIONS", 1, &s->store.remote.keep_connections) < 0)
		return -1;
	s->store.lock_ttl = (long)v;
	if (cache_max(s, &src) < 0 || secrets_and_patterns(s, &src) < 0 || crypt_settings(s, &src) < 0)
		return -1;
	if (tfgit_ref_check(s->default_ref, NULL) < 0)
		return refuse(&src, "TFGIT_DEFAULT_REF=%s is not a valid branch name", s->default_ref);
	if (warn && s->store.remote.tls_no_verify)
		fprintf(stderr, "tfgit: WARNING: TFGIT_SSL_NO_VERIFY=1: TLS certificates of remotes are "
				"not verified; anyone in between can read and change your state\n");
	if (warn && s->store.remote.host_key_check == HOSTKEY_OFF)
		fprintf(stderr, "tfgit: WARNING: StrictHostKeyChecking=no: SSH host keys are not "
				"checked; anyone in between can read and change your state\n");
	return 0;
}

const char *settings_system_file(void)
{
	return TFGIT_SYSCONFDIR "/tfgit/tfgit.conf";
}

void settings_free(struct settings *s)
{
	if (s->file_text) {
		explicit_bzero(s->file_text, s->file_size); /* it may hold passwords */
		free(s->file_text);
	}
	s->file_text = NULL;
}

int settings_repository_allowed(const struct settings *s, const char *given, const char *resolved)
{
	if (s->default_repository && strcmp(given, s->default_repository) == 0)
		return 1;
	return s->allowed_repos && tfgit_repository_allowed(resolved, s->allowed_repos);
}

/* Each check with the reason both fronts give. */
static int refused(int code, char *why, size_t whylen, const char *reason)
{
	snprintf(why, whylen, "%s", reason);
	return code;
}

/* 1 when a and b differ and one is a directory of the other ("main" and "main/x"): git keeps
 * refs as paths, so only the first made of the two can exist. */
static int nests(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la == lb)
		return 0;
	const char *shorter = la < lb ? a : b, *longer = la < lb ? b : a;
	size_t n = la < lb ? la : lb;
	return strncmp(shorter, longer, n) == 0 && longer[n] == '/';
}

int settings_target(const struct settings *s, const char *repository, const char *ref, const char *state,
		    tfgit_target *t, char *url, size_t urllen, char *why, size_t whylen)
{
	int given = repository && *repository;
	const char *repo = given ? repository : s->default_repository;
	if (!repo)
		return refused(TFGIT_EINVALID, why, whylen, "repository is required: this server has no default repository");
	if (given && tfgit_repository_check(repo, 0, why, whylen) < 0)
		return TFGIT_EINVALID;
	if (!given || !strcmp(repo, s->default_repository ? s->default_repository : "")) {
		if ((size_t)snprintf(url, urllen, "%s", repo) >= urllen) /* the operator's, as given */
			return refused(TFGIT_EINVALID, why, whylen, "the repository URL is too long");
	} else if (tfgit_repository_resolve(url, urllen, repo) < 0 || !settings_repository_allowed(s, repo, url)) {
		return refused(TFGIT_EFORBIDDEN, why, whylen,
			       "this repository is not allowed on this server (TFGIT_ALLOWED_REPOS)");
	}
	if (!ref || !*ref)
		ref = s->default_ref;
	if (state && tfgit_state_path_check(state) < 0)
		return refused(TFGIT_EINVALID, why, whylen,
			       "state must be a relative path of plain segments (no empty, . or .. segment, no .git, "
			       "no control characters, not ending in .lock, at most 1024 bytes)");
	if (tfgit_ref_check(ref, state) < 0)
		return refused(TFGIT_EINVALID, why, whylen,
			       state ? "ref must be a valid git branch name other than locks and locks/…, and "
				       "locks/<state> a valid one too"
				     : "ref must be a valid git branch name other than locks and locks/…");
	if (nests(ref, s->default_ref))
		return refused(TFGIT_EINVALID, why, whylen,
			       "ref may not be a branch below the default branch (TFGIT_DEFAULT_REF) nor one of its "
			       "directories: made first, it would make the default branch impossible to create");
	if (state && !tfgit_name_allowed(state, s->allowed_states))
		return refused(TFGIT_EFORBIDDEN, why, whylen,
			       "this state path is not allowed on this server (TFGIT_ALLOWED_STATES)");
	if (!tfgit_name_allowed(ref, s->allowed_refs))
		return refused(TFGIT_EFORBIDDEN, why, whylen,
			       "this branch is not allowed on this server (TFGIT_ALLOWED_REFS)");
	t->url = url;
	t->ref = ref;
	t->state = state;
	return TFGIT_OK;
}
