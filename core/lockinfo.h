/* Terraform lock info JSON: the fields tfgit reads from it, and a bounded JSON check of bodies. */
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

#endif
