/* Filter commands (sops, age, gpg, a Vault CLI…): a state through an external program. */
#ifndef TFGIT_FILTER_H
#define TFGIT_FILTER_H

#include <stddef.h>

#include "tfgit.h"

int filter_run(const char *cmd, const char *in, size_t len, size_t max, int timeout_seconds,
	       tfgit_buf *out, char *err, size_t errlen, char *why, size_t whylen);

#endif
