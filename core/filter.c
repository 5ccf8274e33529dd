/* Filter commands: not built yet (issue 10 in progress); every filter fails closed. */
#include <stdio.h>

#include "filter.h"

int filter_run(const char *cmd, const char *in, size_t len, size_t max, int timeout_seconds,
	       tfgit_buf *out, char *err, size_t errlen, char *why, size_t whylen)
{
	(void)cmd, (void)in, (void)len, (void)max, (void)timeout_seconds, (void)out;
	if (errlen)
		err[0] = '\0';
	snprintf(why, whylen, "filter commands are not supported by this build yet");
	return TFGIT_ERROR;
}
