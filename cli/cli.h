/* tfgit, the operators' command: its parsed arguments and its subcommands. */
#ifndef TFGIT_CLI_H
#define TFGIT_CLI_H

#include <stdio.h>

#include "../core/settings.h"
#include "../core/tfgit.h"

struct args {
	const char *command;
	const char *repository, *ref, *state, *version, *from, *to, *id, *since;
	int json;
};

/* What a subcommand works on: the settings, and the repository/ref/state as checked. */
struct ctx {
	const struct args *a;
	struct settings *s;
	tfgit_target t;
	char url[4096];
};

/* Each returns the exit status: 0, 1 when the operation failed, 2 for a usage error. */
int cmd_states(struct ctx *c);
int cmd_history(struct ctx *c);
int cmd_show(struct ctx *c);
int cmd_diff(struct ctx *c);
int cmd_locks(struct ctx *c);
int cmd_unlock(struct ctx *c);
int cmd_rollback(struct ctx *c);
int cmd_reencrypt(struct ctx *c);
int cmd_doctor(struct ctx *c);
/* doctor when the settings do not load: prints why as its problem, with the fix; 1. */
int doctor_settings_refused(const char *why);
int cmd_failures(struct ctx *c);

/* A value as the log escapes it (no terminal control sequence from a state's content). */
const char *cli_safe(const char *s);
/* An ISO 8601 UTC time. */
const char *cli_time(long long t);
/* Prints a failed core call's message; 1. */
int cli_failed(const tfgit_result *r, int rc);

#endif
