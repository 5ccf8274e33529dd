/* Access control: parses the grants file (format in acl.h) and answers whether a user holds a right. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acl.h"
#include "tfgit.h"

#define LINE_MAX_LEN 4096
#define ACL_ALL (ACL_READ | ACL_WRITE | ACL_LOCK | ACL_FORCE_UNLOCK)

/* One line of the file; the three strings share one allocation, starting at user. */
typedef struct {
	char *user;
	char *repo;
	char *state;
	int rights;
} grant;

struct acl {
	grant *grants;
	size_t n, cap;
	struct stat st; /* taken before reading: a change while we read shows at the next acl_get() */
};

static const struct {
	const char *name;
	int right;
} rights[] = {
	{"read", ACL_READ}, {"write", ACL_WRITE}, {"lock", ACL_LOCK},
	{"force-unlock", ACL_FORCE_UNLOCK}, {"all", ACL_ALL},
};

/* Writes "path:line: reason" (line 0: "path: reason") into err; returns TFGIT_EINVALID. */
static int __attribute__((format(printf, 5, 6)))
fail(char *err, size_t errlen, const char *path, int line, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(err, errlen, "%s:%d: %s", path, line, why);
	else
		snprintf(err, errlen, "%s: %s", path, why);
	return TFGIT_EINVALID;
}

/* Reads one line, without its newline, into buf (LINE_MAX_LEN + 1 bytes). 1 for a line, 0 at
 * the end, -1 with *why. Control characters are refused: a NUL would silently cut a field. */
static int read_line(FILE *f, char *buf, const char **why)
{
	size_t n = 0;
	int c;
	while ((c = getc(f)) != EOF && c != '\n') {
		if (n == LINE_MAX_LEN) {
			*why = "line longer than 4096 bytes";
			return -1;
		}
		if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
			*why = "control character";
			return -1;
		}
		buf[n++] = (char)c;
	}
	buf[n] = '\0';
	if (ferror(f)) {
		*why = strerror(errno);
		return -1;
	}
	return c == EOF && n == 0 ? 0 : 1;
}

/* Splits line in place into at most max words in w; a word starting with '#' ends the line.
 * Returns the number of words, including any beyond max. */
static int split(char *line, char **w, int max)
{
	char *save = NULL;
	int n = 0;
	for (char *t = strtok_r(line, " \t\r", &save); t && *t != '#'; t = strtok_r(NULL, " \t\r", &save)) {
		if (n < max)
			w[n] = t;
		n++;
	}
	return n;
}

/* "read,lock" -> ACL_READ | ACL_LOCK. 0 for an empty or unknown name, which *bad points at. */
static int parse_rights(const char *s, const char **bad, int *badlen)
{
	int mask = 0;
	for (const char *p = s;; p++) {
		size_t n = strcspn(p, ",");
		int r = 0;
		for (size_t i = 0; i < sizeof(rights) / sizeof(rights[0]); i++)
			if (strlen(rights[i].name) == n && strncmp(p, rights[i].name, n) == 0)
				r = rights[i].right;
		if (!r) {
			*bad = p;
			*badlen = (int)n;
			return 0;
		}
		mask |= r;
		p += n;
		if (!*p)
			return mask;
	}
}

static int add_grant(acl *a, char **w, int mask)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 16;
		grant *g = realloc(a->grants, cap * sizeof(*g));
		if (!g)
			return -1;
		a->grants = g;
		a->cap = cap;
	}
	char *m = malloc(strlen(w[0]) + strlen(w[2]) + strlen(w[3]) + 3);
	if (!m)
		return -1;
	grant *g = &a->grants[a->n++];
	g->user = m;
	g->repo = stpcpy(g->user, w[0]) + 1;
	g->state = stpcpy(g->repo, w[2]) + 1;
	strcpy(g->state, w[3]);
	g->rights = mask;
	return 0;
}

int acl_load(acl **out, const char *path, char *err, size_t errlen)
{
	char line[LINE_MAX_LEN + 1], *w[4];
	const char *why = NULL, *bad = NULL;
	int rc = TFGIT_EINVALID, lineno = 0, r, badlen = 0, fd = -1;
	FILE *f = NULL;
	acl *a = calloc(1, sizeof(*a));

	*out = NULL;
	if (!a) {
		rc = TFGIT_ERROR;
		fail(err, errlen, path, 0, "out of memory");
		goto done;
	}
	/* O_NONBLOCK: opening a FIFO must not hang the worker; it is refused below anyway */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &a->st) < 0)
		why = strerror(errno);
	else if (!S_ISREG(a->st.st_mode))
		why = "not a regular file";
	else if (!(f = fdopen(fd, "r")))
		why = strerror(errno);
	if (!f) {
		fail(err, errlen, path, 0, "%s", why);
		goto done;
	}
	while ((r = read_line(f, line, &why)) > 0) {
		lineno++;
		int n = split(line, w, 4);
		if (n == 0)
			continue;
		if (n != 4) {
			fail(err, errlen, path, lineno, "%d fields, expected 4: user rights repository states", n);
			goto done;
		}
		int mask = parse_rights(w[1], &bad, &badlen);
		if (!mask) {
			if (badlen)
				fail(err, errlen, path, lineno, "unknown right '%.*s'", badlen, bad);
			else
				fail(err, errlen, path, lineno, "empty right in '%s'", w[1]);
			goto done;
		}
		if (add_grant(a, w, mask) < 0) {
			rc = TFGIT_ERROR;
			fail(err, errlen, path, lineno, "out of memory");
			goto done;
		}
	}
	if (r < 0) {
		fail(err, errlen, path, lineno + 1, "%s", why);
		goto done;
	}
	*out = a;
	a = NULL;
	rc = 0;
done:
	if (f)
		fclose(f);
	else if (fd >= 0)
		close(fd);
	acl_free(a);
	return rc;
}

void acl_free(acl *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		free(a->grants[i].user);
	free(a->grants);
	free(a);
}

/* The grant of right on url and state; any_state: on some state (the states field ignored). */
static int grants(const acl *a, const char *user, int right, const char *url, const char *state, int any_state,
		  int (*match)(const char *pattern, const char *url))
{
	int anonymous = !user || !*user;
	if (!a || !right)
		return 0;
	for (size_t i = 0; i < a->n; i++) {
		const grant *g = &a->grants[i];
		if (anonymous ? strcmp(g->user, "anonymous") != 0
			      : strcmp(g->user, "*") != 0 && strcmp(g->user, user) != 0)
			continue;
		if ((g->rights & right) != right)
			continue;
		if (strcmp(g->repo, "*") != 0 && !(url && match && match(g->repo, url) == 1))
			continue;
		if (!any_state && strcmp(g->state, "*") != 0 &&
		    !(state && strncmp(state, g->state, strlen(g->state)) == 0))
			continue;
		return 1;
	}
	return 0;
}

int acl_allows(const acl *a, const char *user, int right, const char *url, const char *state,
	       int (*match)(const char *pattern, const char *url))
{
	return grants(a, user, right, url, state, 0, match);
}

int acl_allows_some(const acl *a, const char *user, int right, const char *url,
		    int (*match)(const char *pattern, const char *url))
{
	return grants(a, user, right, url, NULL, 1, match);
}

/* One entry per process is enough: a worker serves one request at a time, from one file. */
static struct {
	acl *a;
	char *path;
} cached;

static int same_file(const struct stat *x, const struct stat *y)
{
	return x->st_dev == y->st_dev && x->st_ino == y->st_ino && x->st_size == y->st_size &&
	       x->st_mtim.tv_sec == y->st_mtim.tv_sec && x->st_mtim.tv_nsec == y->st_mtim.tv_nsec;
}

int acl_get(const acl **out, const char *path, char *err, size_t errlen)
{
	struct stat st;
	acl *a = NULL;
	*out = NULL;
	if (cached.a && strcmp(cached.path, path) == 0 && stat(path, &st) == 0 && same_file(&st, &cached.a->st)) {
		*out = cached.a;
		return 0;
	}
	/* changed, gone or broken: drop the old grants first, so they never outlive the file */
	acl_cache_free();
	int rc = acl_load(&a, path, err, errlen);
	if (rc < 0)
		return rc;
	if (!(cached.path = strdup(path))) {
		acl_free(a);
		fail(err, errlen, path, 0, "out of memory");
		return TFGIT_ERROR;
	}
	cached.a = a;
	*out = a;
	return 0;
}

void acl_cache_free(void)
{
	acl_free(cached.a);
	free(cached.path);
	cached.a = NULL;
	cached.path = NULL;
}

const char *acl_right_name(int right)
{
	for (size_t i = 0; i < sizeof(rights) / sizeof(rights[0]); i++)
		if (rights[i].right == right)
			return rights[i].name;
	return "unknown";
}
