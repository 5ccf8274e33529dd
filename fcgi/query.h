/* The request's query string: the parameters terraform-backend-git defined, decoded. */
#ifndef TFGIT_QUERY_H
#define TFGIT_QUERY_H

#include <stddef.h>

#define QUERY_MAX 16384

/* Each field is NULL when absent, else a NUL-terminated decoded copy; query_free() frees. */
struct query {
	char *type;
	char *repository;
	char *ref;
	char *state;
	char *amend;
	char *id; /* ID */
	char *version; /* a commit of the state's history (tfgit's own parameter) */
	char *sort;    /* the web view's: the states' order (path or changed) */
	char *page;    /* the web view's: which page of a state's versions */
};

/* Parses qs in any order and escaping (Terraform re-encodes and sorts it when adding ID=).
 * 0, or -1 with a message in err: bad escape, %00, a parameter given twice, too long. */
int query_parse(struct query *q, const char *qs, char *err, size_t errlen);

/* 1 for "true", 0 for absent, empty or "false" (any case), -1 otherwise. */
int query_bool(const char *value);

void query_free(struct query *q);

#endif
