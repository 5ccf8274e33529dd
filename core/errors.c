/* The core's return codes: mapping libgit2 failures to them, their names; results' release. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <git2.h>

#include "internal.h"

/* Replaces user:password@ in every URL inside a message. */
static void redact_urls(char *msg)
{
	const char *host, *at;
	for (char *p = msg; (p = strstr(p, "://")) != NULL; p += 3) {
		if ((at = url_userinfo_at(p, &host, "/ \t'\"")) != NULL) {
			memcpy(p + 3, "***", 3);
			memmove(p + 6, at, strlen(at) + 1);
		}
	}
}

static int contains(const char *hay, const char *needle)
{
	return hay && strcasestr(hay, needle) != NULL;
}

/* Errors of the network classes, and the system's socket errors, speak of the remote; the
 * others of the local cache. */
static int is_remote_error(const git_error *e)
{
	int k = e->klass;
	if (k == GIT_ERROR_NET || k == GIT_ERROR_SSL || k == GIT_ERROR_SSH || k == GIT_ERROR_HTTP ||
	    k == GIT_ERROR_CALLBACK)
		return 1;
	return k == GIT_ERROR_OS && (contains(e->message, "connect") || contains(e->message, "socket") ||
				     contains(e->message, "resolve") || contains(e->message, "address"));
}

/* Errors that say the cache itself is damaged (missing objects, bad packs, a removed
 * directory): the only ones worth throwing it away for. */
static int is_damage(const git_error *e)
{
	int k = e ? e->klass : GIT_ERROR_OS;
	return k == GIT_ERROR_ODB || k == GIT_ERROR_ZLIB || k == GIT_ERROR_INDEXER ||
	       k == GIT_ERROR_OBJECT || k == GIT_ERROR_REPOSITORY || k == GIT_ERROR_OS ||
	       k == GIT_ERROR_FILESYSTEM || k == GIT_ERROR_REFERENCE;
}

int git_failure(tfgit_result *r, int giterr, const char *what)
{
	const git_error *e = git_error_last();
	char reason[400];
	snprintf(reason, sizeof(reason), "%s", e && e->message ? e->message : "unknown error");
	redact_urls(reason);
	int code = TFGIT_ERROR;
	if (contains(reason, "no space left"))
		code = TFGIT_ENOSPACE;
	else if (!e || !is_remote_error(e)) {
		code = TFGIT_ERROR;
		if (r && is_damage(e))
			r->damaged = 1; /* op_run rebuilds the cache once */
	} else if (contains(reason, "redirect"))
		code = TFGIT_EDENIED; /* libgit2's own refusal of a redirect to another host */
	else if (giterr == GIT_EAUTH || giterr == GIT_ECERTIFICATE ||
		 contains(reason, "authentication") || contains(reason, "401") ||
		 contains(reason, "403") || contains(reason, "credentials"))
		code = TFGIT_EDENIED;
	else if (contains(reason, "not found") || contains(reason, "404") ||
		 contains(reason, "not appear to be a git repository") ||
		 contains(reason, "could not find repository") || contains(reason, "access denied") ||
		 contains(reason, "not exported") || contains(reason, "remote error"))
		code = TFGIT_EDENIED;
	else if (contains(reason, "timed out"))
		code = TFGIT_ETIMEOUT;
	else
		code = TFGIT_EUNREACHABLE; /* connection refused, reset, early EOF, resolution... */
	result_message(r, "%s failed: %s", what, reason);
	core_log("%s failed: %s (libgit2 %d, class %d)", what, reason, giterr, e ? e->klass : 0);
	git_error_clear();
	return code;
}

const char *tfgit_strerror(int code)
{
	switch (code) {
	case TFGIT_OK: return "ok";
	case TFGIT_ENOTFOUND: return "not found";
	case TFGIT_ELOCKED: return "locked by another ID";
	case TFGIT_ENOLOCK: return "not locked";
	case TFGIT_EINVALID: return "invalid input";
	case TFGIT_EDENIED: return "the repository refused the request";
	case TFGIT_EUNREACHABLE: return "the repository could not be reached";
	case TFGIT_ETIMEOUT: return "the repository did not answer in time";
	case TFGIT_ECONFLICT: return "the branch kept moving; gave up";
	case TFGIT_ENOSPACE: return "the cache filesystem is full";
	case TFGIT_EFORBIDDEN: return "not allowed";
	case TFGIT_EBUSY: return "the repository is busy";
	case TFGIT_ETOOLARGE: return "too large";
	case TFGIT_EEXISTS: return "collides with what the repository holds";
	default: return "internal error";
	}
}

void tfgit_buf_free(tfgit_buf *b)
{
	if (!b)
		return;
	free(b->ptr);
	b->ptr = NULL;
	b->size = 0;
}

void result_content_free(tfgit_result *r)
{
	if (r->content_owner) {
		git_odb_object_free(r->content_owner);
		r->content_owner = NULL;
		r->content.ptr = NULL;
		r->content.size = 0;
	}
	tfgit_buf_free(&r->content);
}

void tfgit_result_free(tfgit_result *r)
{
	if (!r)
		return;
	result_content_free(r);
	tfgit_buf_free(&r->holder);
}
