/* The last failed requests of every process serving from one cache directory (failures.h): a
 * ring in a mapped file. A writer takes the next slot with an atomic add and writes it between
 * two stores of its sequence number (0 while it writes, its ticket + 1 once complete); a reader
 * keeps a copy only when it saw the same non-zero number before and after copying. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failures.h"
#include "internal.h"
#include "mapped.h"

#define FAILURES_FILE ".failures-v1"
#define FAILURES_MAGIC 0x31766c6961666674ULL /* "tffailv1" */

struct slot {
	uint64_t seq;
	struct failure f;
};

struct layout {
	struct mapped_head head;
	uint64_t next; /* the next ticket: slot next % FAILURES_KEPT */
	struct slot slots[FAILURES_KEPT];
};

static struct mapped file;
static struct layout *shared; /* file's map */

int failures_open(const char *cache_dir, char *why, size_t whylen)
{
	int rc = mapped_keep(&file, cache_dir, FAILURES_FILE, FAILURES_MAGIC, sizeof(struct layout), why, whylen);
	shared = file.map;
	return rc;
}

/* Every text of f ends within its field (a torn or foreign entry cannot run past one). */
static void terminate(struct failure *f)
{
	f->id[sizeof(f->id) - 1] = f->method[sizeof(f->method) - 1] = f->user[sizeof(f->user) - 1] = '\0';
	f->repository[sizeof(f->repository) - 1] = f->ref[sizeof(f->ref) - 1] = '\0';
	f->state[sizeof(f->state) - 1] = f->message[sizeof(f->message) - 1] = '\0';
}

void failures_note(const struct failure *f)
{
	struct failure copy = *f;
	char state[sizeof(copy.state)];
	if (!shared)
		return;
	terminate(&copy);
	memcpy(state, copy.state, sizeof(state));
	secrets_redact(copy.user);
	secrets_redact(copy.repository);
	secrets_redact(copy.ref);
	secrets_redact(copy.state);
	secrets_redact(copy.message);
	if (strcmp(state, copy.state) != 0)
		copy.state[0] = '\0'; /* no longer the state's name: never matched against the ACL */
	uint64_t ticket = __atomic_fetch_add(&shared->next, 1, __ATOMIC_RELAXED);
	struct slot *s = &shared->slots[ticket % FAILURES_KEPT];
	__atomic_store_n(&s->seq, 0, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE); /* 0 is seen before any byte of the new entry */
	memcpy(&s->f, &copy, sizeof(copy));
	__atomic_store_n(&s->seq, ticket + 1, __ATOMIC_RELEASE);
}

static uint64_t seqs[FAILURES_KEPT];

static int newest_first(const void *a, const void *b)
{
	uint64_t x = seqs[*(const size_t *)a], y = seqs[*(const size_t *)b];
	return x < y ? 1 : x > y ? -1 : 0;
}

size_t failures_list(struct failure *out, size_t max)
{
	static struct failure copies[FAILURES_KEPT];
	size_t order[FAILURES_KEPT], n = 0;
	if (!shared)
		return 0;
	for (size_t i = 0; i < FAILURES_KEPT; i++) {
		struct slot *s = &shared->slots[i];
		uint64_t before = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
		if (!before)
			continue;
		memcpy(&copies[i], &s->f, sizeof(copies[i]));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) != before)
			continue; /* rewritten while copied */
		terminate(&copies[i]);
		seqs[i] = before;
		order[n++] = i;
	}
	qsort(order, n, sizeof(order[0]), newest_first);
	if (n > max)
		n = max;
	for (size_t i = 0; i < n; i++)
		out[i] = copies[order[i]];
	return n;
}
