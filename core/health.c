/* The deep health probe: the default repository's refs, read as an operation reads them. */
#include "health.h"
#include "op.h"

struct ping {
	int found;
};

static int ping_attempt(op *o, void *ctx)
{
	struct ping *p = ctx;
	git_oid id;
	p->found = session_ref(&id, o->sess, o->ref) == 0;
	return 0;
}

int tfgit_ping(tfgit_result *r, const tfgit_store *store, const char *url, const char *ref,
	       int *branch_found)
{
	/* the state names nothing that is read: op_run needs one for its lock branch's name */
	tfgit_target t = {url, ref, "tfgit-health"};
	struct ping p = {0};
	int rc = op_run(r, store, &t, 0, ping_attempt, &p);
	*branch_found = p.found;
	return rc;
}
