/* Terraform lock info JSON: the fields tfgit reads from it, and a bounded JSON check of bodies.
 *
 * Layer: format/ is the bottom of the core: Terraform's JSON (lock info, the checks of states
 * and bodies, the differences between two states) and the names a request may use (validate.c:
 * state paths, branches). Pure functions of their input; they call only the shared core
 * (tfgit.h, internal.h) and libraries. */
#ifndef TFGIT_LOCKINFO_H
#define TFGIT_LOCKINFO_H

#include <stddef.h>

#define LOCKINFO_ID_MAX 256
#define LOCKINFO_FIELD_MAX 256
#define JSON_DEPTH_MAX 64
#define LOCK_BODY_MAX 65536 /* LOCK and UNLOCK bodies; a stored lock file larger is unreadable */

typedef struct {
	char id[LOCKINFO_ID_MAX + 1];             /* empty when the body has no ID */
	char who[LOCKINFO_FIELD_MAX + 1];         /* as sent: escape before showing */
	char operation[LOCKINFO_FIELD_MAX + 1];
} lockinfo;

/* 0 when body is a JSON object (ID may be absent or empty); TFGIT_EINVALID otherwise,
 * including an ID that is not a string, is longer than LOCKINFO_ID_MAX or holds a NUL. */
int lockinfo_parse(lockinfo *out, const char *body, size_t len);

/* 0 when body is one JSON object nesting at most JSON_DEPTH_MAX deep; TFGIT_EINVALID otherwise.
 * Builds no tree (jsoncheck.c): its memory does not grow with the body. */
int json_object_check(const char *body, size_t len);

/* 1 when body is such an object and a Terraform (or OpenTofu) state: top-level "serial" and
 * "lineage", or OpenTofu's encrypted form ("encrypted_data" and "encryption_version"); else 0. */
int json_is_state(const char *body, size_t len);
/* One pass for both: 1 a state, 0 another JSON object, TFGIT_EINVALID not one JSON object. */
int json_state_check(const char *body, size_t len);

/* A JSON value as written in a body (a string with its quotes); len 0: absent. */
typedef struct {
	const char *ptr;
	size_t len;
} json_span;

/* The top-level fields of a state the audit trail and the lineage guard read. */
typedef struct {
	json_span serial, terraform_version, lineage, resources, outputs;
} state_top;

/* Finds the top-level "serial", "terraform_version", "lineage" and "resources" of a state (the last of
 * repeated keys, as Terraform's reader takes) without building a tree: one pass, constant
 * memory whatever the size (a 50 MB state is not turned into a json-c tree several times its
 * size). Spans point into body. 0, or TFGIT_EINVALID when body is not an object (what was
 * found before the fault is kept). */
int state_top_scan(state_top *f, const char *body, size_t len);

/* A scalar's text: a string decoded (escapes resolved), a number or literal as written; cut to
 * fit out. 1 when it fit, 0 when it was cut (or is longer than 4 KiB, then not decoded: out is
 * empty), -1 when absent or not a scalar (out empty). */
int json_span_text(char *out, size_t outlen, json_span s);

/* How many elements the array s holds (counted without building a tree); -1 when s is absent
 * or not an array. */
long json_span_count(json_span s);

/* Walking an object's members or an array's elements in place, without a tree (the web view
 * reads states of any size this way). */
typedef struct {
	const unsigned char *p, *end;
	int object;
} json_iter;
/* 0, or -1 when s is not an object or array. */
int json_iter_init(json_iter *it, json_span s);
/* The next member (key: its string with quotes; for an array key is left empty) and value:
 * 1, or 0 at the end (or at a fault: the walk stays inside the text). */
int json_iter_next(json_iter *it, json_span *key, json_span *value);
/* 1 when a key span is the string name (written without escapes, as Terraform writes keys). */
int json_key_is(json_span key, const char *name);
/* The member name of object s (its value span; the last when repeated), len 0 when absent. */
json_span json_member(json_span s, const char *name);

#endif
