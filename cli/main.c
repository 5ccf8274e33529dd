/* tfgit: the operators' command, on the same core as tfgit.fcgi (no HTTP in between), with
 * the settings read as the program reads them (environment, then the settings file: TFGIT_CONFIG's,
 * or ~/.config/tfgit/tfgit.conf, or $(SYSCONFDIR)/tfgit/tfgit.conf). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const struct command {
	const char *name;
	int (*run)(struct ctx *c);
	int needs_state; /* --state required */
	const char *usage;
} commands[] = {
	{"states", cmd_states, 0, "states                       every state on the branch: serial, lineage, last change, lock"},
	{"history", cmd_history, 1, "history --state S            its versions, newest first"},
	{"show", cmd_show, 1, "show --state S --version V   the state at version V (a commit id) on stdout"},
	{"diff", cmd_diff, 1, "diff --state S --from V1 [--to V2]  what changed, by resource address"},
	{"rollback", cmd_rollback, 1, "rollback --state S --to V    V's content as a new version (serial raised), under a lock"},
	{"locks", cmd_locks, 0, "locks                        every lock of the repository"},
	{"unlock", cmd_unlock, 1, "unlock --state S [--id ID]   removes the lock (with --id only that holder's)"},
	{"reencrypt", cmd_reencrypt, 0, "reencrypt                    every stale encrypted state written again (rotation, migration)"},
	{"doctor", cmd_doctor, 0, "doctor                       what breaks requests: settings, cache, the repository's writes and states"},
	{"failures", cmd_failures, 0, "failures [--since UNIXTIME]  the last failed requests, newest first, of every repository"},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: tfgit COMMAND [--repository URL] [--ref BRANCH] [--state PATH] [--json]\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %s\n", commands[i].usage);
	fprintf(out, "--repository defaults to TFGIT_DEFAULT_REPOSITORY (another must match TFGIT_ALLOWED_REPOS),\n"
		     "--ref to TFGIT_DEFAULT_REF. Settings come from the environment, then the settings file, as\n"
		     "for tfgit.fcgi: TFGIT_CONFIG's, else ~/.config/tfgit/tfgit.conf, else %s.\n"
		     "Run it as the pool's user (sudo -u www-data tfgit ...): it shares its settings and cache.\n",
		settings_system_file());
}

static int parse(struct args *a, int argc, char **argv)
{
	static const struct {
		const char *flag;
		size_t offset;
	} values[] = {
		{"--repository", offsetof(struct args, repository)}, {"--ref", offsetof(struct args, ref)},
		{"--state", offsetof(struct args, state)},           {"--version", offsetof(struct args, version)},
		{"--from", offsetof(struct args, from)},             {"--to", offsetof(struct args, to)},
		{"--id", offsetof(struct args, id)},                 {"--since", offsetof(struct args, since)},
	};
	memset(a, 0, sizeof(*a));
	for (int i = 1; i < argc; i++) {
		size_t k = 0;
		while (k < sizeof(values) / sizeof(values[0]) && strcmp(argv[i], values[k].flag))
			k++;
		if (k < sizeof(values) / sizeof(values[0]) && i + 1 < argc)
			*(const char **)((char *)a + values[k].offset) = argv[++i];
		else if (!strcmp(argv[i], "--json"))
			a->json = 1;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			exit(0);
		} else if (!a->command && argv[i][0] != '-')
			a->command = argv[i];
		else
			return -1;
	}
	return a->command ? 0 : -1;
}

/* The repository, ref and state, checked as the FastCGI program checks a request's (one
 * place in the core for both: TFGIT_ALLOWED_REPOS, _STATES, _REFS). */
static int target(struct ctx *c, int needs_state)
{
	char why[512];
	const struct args *a = c->a;
	if (needs_state && !a->state) {
		fprintf(stderr, "tfgit %s: --state is required\n", a->command);
		return -1;
	}
	if (!a->repository && !c->s->default_repository) {
		fprintf(stderr, "tfgit: give --repository, or set TFGIT_DEFAULT_REPOSITORY\n");
		return -1;
	}
	if (settings_target(c->s, a->repository, a->ref, a->state, &c->t, c->url, sizeof(c->url), why,
			    sizeof(why)) != TFGIT_OK) {
		fprintf(stderr, "tfgit: %s\n", cli_safe(why));
		return -1;
	}
	if (!c->t.state)
		c->t.state = "";
	return 0;
}

int main(int argc, char **argv)
{
	struct args a;
	struct settings s;
	struct ctx c = {.a = &a, .s = &s};
	char why[640];
	const struct command *cmd = NULL;
	umask(077); /* the cache it shares with the pool holds states */
	if (parse(&a, argc, argv) == 0)
		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
			if (!strcmp(commands[i].name, a.command))
				cmd = &commands[i];
	if (!cmd) {
		usage(stderr);
		return 2;
	}
	if (geteuid() == 0 && !getenv("TFGIT_ALLOW_ROOT")) {
		fprintf(stderr, "tfgit: refusing to run as root (the pool's cache would get root's files): "
				"sudo -u <the pool's user> tfgit ...\n");
		return 2;
	}
	if (tfgit_init(NULL) < 0)
		return 1;
	int rc = 2;
	if (settings_load(&s, NULL, 0, why, sizeof(why)) < 0) {
		fprintf(stderr, "tfgit: %s\n", why);
		rc = cmd->run == cmd_doctor ? doctor_settings_refused(why) : 2;
	} else if (tfgit_tls_trust(s.ca_file) < 0) {
		fprintf(stderr, "tfgit: TFGIT_SSL_CA_FILE cannot be loaded\n");
	} else if (cmd->run == cmd_doctor || cmd->run == cmd_failures || target(&c, cmd->needs_state) == 0) {
		rc = cmd->run(&c);
	}
	settings_free(&s);
	tfgit_shutdown();
	return rc;
}
