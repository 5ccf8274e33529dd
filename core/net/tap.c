/* libgit2's smart subtransports, wrapped (tap.h).
 *
 * libgit2 1.5's smart transport drives a subtransport through action(): *_LS for the
 * advertisement, then UPLOADPACK or RECEIVEPACK. SSH and git:// return the same stream for
 * both (one connection, stateful); smart HTTP returns a new request each time (stateless, rpc),
 * and libgit2 frees the advertisement's stream once read. The wrapper returns a wrapping stream
 * for each real one (the same wrapper again for the same real stream, as libgit2 expects) and
 * records what a receive-pack advertisement's stream reads. */
#include <stdlib.h>
#include <string.h>

#include "receivepack.h"
#include "sshkeep.h"
#include "tap.h"

#define ADV_MAX (65536 + 1024) /* the service comment, a flush and the first ref line fit */

struct tap_stream {
	git_smart_subtransport_stream parent;
	git_smart_subtransport_stream *real;
	struct tap *tap;
	int record;
};

struct tap {
	git_smart_subtransport parent;
	git_smart_subtransport *real;
	tap **slot;
	int rpc;
	char *url;                  /* the URL of the advertisement */
	struct tap_stream *current; /* the wrapper of the stream last handed out */
	char adv[ADV_MAX];
	size_t advlen;
	int finished;               /* a stateful connection's push is done */
};

static int stream_read(git_smart_subtransport_stream *stream, char *buf, size_t size, size_t *got)
{
	struct tap_stream *w = (struct tap_stream *)stream;
	int err = w->real->read(w->real, buf, size, got);
	if (err == 0 && w->record) {
		struct tap *t = w->tap;
		size_t keep = *got < ADV_MAX - t->advlen ? *got : ADV_MAX - t->advlen;
		memcpy(t->adv + t->advlen, buf, keep);
		t->advlen += keep;
	}
	return err;
}

static int stream_write(git_smart_subtransport_stream *stream, const char *buf, size_t len)
{
	struct tap_stream *w = (struct tap_stream *)stream;
	if (w->tap->finished && !w->tap->rpc)
		return 0;
	return w->real->write(w->real, buf, len);
}

static void stream_free(git_smart_subtransport_stream *stream)
{
	struct tap_stream *w = (struct tap_stream *)stream;
	if (w->tap->current == w)
		w->tap->current = NULL;
	w->real->free(w->real);
	free(w);
}

static int tap_action(git_smart_subtransport_stream **out, git_smart_subtransport *sub, const char *url,
		      git_smart_service_t action)
{
	struct tap *t = (struct tap *)sub;
	git_smart_subtransport_stream *real = NULL;
	*out = NULL;
	int err = t->real->action(&real, t->real, url, action);
	if (err < 0)
		return err;
	if (t->current && t->current->real == real) {
		t->current->record = 0; /* the advertisement is over: a push or a goodbye now */
		*out = &t->current->parent;
		return 0;
	}
	struct tap_stream *w = calloc(1, sizeof(*w));
	if (!w) {
		real->free(real);
		git_error_set_oom();
		return -1;
	}
	w->parent.subtransport = sub;
	w->parent.read = stream_read;
	w->parent.write = stream_write;
	w->parent.free = stream_free;
	w->real = real;
	w->tap = t;
	if (action == GIT_SERVICE_RECEIVEPACK_LS || action == GIT_SERVICE_UPLOADPACK_LS) {
		char *u = strdup(url);
		if (!u) {
			stream_free(&w->parent);
			git_error_set_oom();
			return -1;
		}
		free(t->url);
		t->url = u;
		t->advlen = 0;
		t->finished = 0;
		w->record = action == GIT_SERVICE_RECEIVEPACK_LS;
	}
	t->current = w;
	*out = &w->parent;
	return 0;
}

static int tap_close(git_smart_subtransport *sub)
{
	struct tap *t = (struct tap *)sub;
	return t->real->close(t->real);
}

static void tap_free(git_smart_subtransport *sub)
{
	struct tap *t = (struct tap *)sub;
	if (t->slot && *t->slot == t)
		*t->slot = NULL;
	t->real->free(t->real);
	free(t->url);
	free(t);
}

struct tap_param {
	tap_kind kind;
	tap **slot;
	void *ssh_auth;
};

static int make_subtransport(git_smart_subtransport **out, git_transport *owner, void *param)
{
	const struct tap_param *p = param;
	struct tap *t = calloc(1, sizeof(*t));
	int err;
	if (!t) {
		git_error_set_oom();
		return -1;
	}
	if (p->kind == TAP_HTTP)
		err = git_smart_subtransport_http(&t->real, owner, NULL);
	else if (p->kind == TAP_SSH && p->ssh_auth)
		err = sshkeep_subtransport(&t->real, owner, p->ssh_auth);
	else if (p->kind == TAP_SSH)
		err = git_smart_subtransport_ssh(&t->real, owner, NULL);
	else
		err = git_smart_subtransport_git(&t->real, owner, NULL);
	if (err < 0) {
		free(t);
		return err;
	}
	t->parent.action = tap_action;
	t->parent.close = tap_close;
	t->parent.free = tap_free;
	t->rpc = p->kind == TAP_HTTP;
	t->slot = p->slot;
	*p->slot = t;
	*out = &t->parent;
	return 0;
}

int tap_transport(git_transport **out, git_remote *owner, tap_kind kind, tap **slot, void *ssh_auth)
{
	struct tap_param p = {kind, slot, ssh_auth};
	git_smart_subtransport_definition def = {make_subtransport, kind == TAP_HTTP, &p};
	return git_transport_smart(out, owner, &def);
}

int tap_caps(const tap *t)
{
	return t && t->advlen ? rp_caps(t->adv, t->advlen) : -1;
}

int tap_push_stream(git_smart_subtransport_stream **out, tap *t)
{
	*out = NULL;
	if (!t->url) {
		git_error_set(GIT_ERROR_NET, "no advertisement was read before the push");
		return -1;
	}
	return tap_action(out, &t->parent, t->url, GIT_SERVICE_RECEIVEPACK);
}

void tap_push_done(tap *t, git_smart_subtransport_stream *stream)
{
	if (!stream)
		return;
	if (t->rpc)
		stream->free(stream);
	else
		t->finished = 1;
}
