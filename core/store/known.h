/* States known by their blob id, per cache repository: a POST need not read (inflate) the
 * state it replaces to know that it is one, nor to find its lineage. */
#ifndef TFGIT_KNOWN_H
#define TFGIT_KNOWN_H

#include <git2.h>

#include "../format/lockinfo.h"

/* 1 when the blob id of the cache repository at repo_path is known to hold a Terraform state
 * (top-level serial and lineage); its top-level "lineage" as written (with its quotes; "" when
 * it has none) into lineage. 0 when it is not known. */
int known_state(const char *repo_path, const git_oid *id, char *lineage, size_t lineagelen);

/* Remembers id as a state whose lineage is that span (len 0: none). Best effort: a lineage
 * longer than 512 bytes is not remembered, nor anything when the file cannot be written. The
 * last KNOWN_MAX are kept. */
void known_state_add(const char *repo_path, const git_oid *id, json_span lineage);

#define KNOWN_MAX 64

#endif
