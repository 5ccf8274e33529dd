/* tfgit core: Terraform state and locks kept in a git repository. Knows nothing of HTTP.
 *
 * Layer: core/ holds the operations, the top of the core: op.c (a repository's flock and
 * session, held for one operation), batch.c (group commit), state.c, lock.c, history.c,
 * rotate.c (re-encryption), health.c, probe.c (tfgit doctor's proofs), init.c, settings.c,
 * acl.c and metrics.c (the shared counters, which only count). They may call every layer
 * below: crypt/ (encryption at rest) > store/ (the host's cache) > net/ (git servers) >
 * format/ (Terraform's JSON, names). What every layer shares is this header, internal.h and
 * their code in log.c and errors.c, which call nothing else of the core. No file of a layer
 * includes a header of one above it (tests/t-layers.sh); the fronts (fcgi/, cli/) call this
 * header's functions. */
#ifndef TFGIT_H
#define TFGIT_H

#include <stddef.h>

/* libgit2-style return codes: 0 on success, one of these otherwise. */
typedef enum {
	TFGIT_OK = 0,
	TFGIT_ERROR = -1,        /* internal failure (cache, libgit2, memory) */
	TFGIT_ENOTFOUND = -2,    /* no such ref or state */
	TFGIT_ELOCKED = -3,      /* held by another lock ID; result.holder has its lock JSON */
	TFGIT_ENOLOCK = -4,      /* a lock is required and the state is not locked */
	TFGIT_EINVALID = -5,     /* bad input: state path, ref, body */
	TFGIT_EDENIED = -6,      /* the remote refused: authentication, missing repository, hook */
	TFGIT_EUNREACHABLE = -7, /* the remote could not be reached */
	TFGIT_ETIMEOUT = -8,     /* the remote did not answer in time */
	TFGIT_ECONFLICT = -9,    /* the ref kept moving under us: gave up after bounded retries */
	TFGIT_ENOSPACE = -10,    /* the cache filesystem is full */
	TFGIT_EFORBIDDEN = -11,  /* the repository is not allowed, or force-unlock is disabled */
	TFGIT_EBUSY = -12,       /* another request held the repository past the queue bound */
	TFGIT_ETOOLARGE = -13,   /* a stored blob is larger than the server serves */
	TFGIT_EEXISTS = -14,     /* the path collides with what the repository holds: another
				  * state's path or lock branch, or a file that is not a state */
} tfgit_error;

/* A heap buffer; tfgit_buf_free() releases it and accepts an empty one. */
typedef struct {
	char *ptr;
	size_t size;
} tfgit_buf;

/* How to reach remotes; strings are borrowed (NULL when unset). Files are read at each use,
 * so a rotated token or password file takes effect without a restart. */
typedef struct {
	const char *username;      /* GIT_USERNAME */
	const char *password;      /* GIT_PASSWORD */
	const char *password_file; /* GIT_PASSWORD_FILE */
	const char *token;         /* GITHUB_TOKEN */
	const char *token_file;    /* GITHUB_TOKEN_FILE */
	const char *netrc;         /* TFGIT_NETRC: per-host credentials */
	const char *ssh_key;       /* SSH_PRIVATE_KEY; NULL: ~/.ssh/id_ed25519, then ~/.ssh/id_rsa */
	const char *known_hosts;   /* TFGIT_SSH_KNOWN_HOSTS */
	int host_key_check;        /* HOSTKEY_STRICT, HOSTKEY_OFF or HOSTKEY_ACCEPT_NEW */
	int tls_no_verify;         /* TFGIT_SSL_NO_VERIFY */
	int timeout;               /* seconds an operation may take, remote included; 0: no bound */
	size_t max_object;         /* a local remote's object larger than this is not copied; 0: any */
	int keep_connections;      /* TFGIT_KEEP_CONNECTIONS: connections to a git server are kept
				    * between operations (smart HTTP(S): keepalive.c, SSH: sshkeep.c), and
				    * a write to an http(s) remote goes as one push from the cache's view (op.c) */
} tfgit_remote_opts;

enum { HOSTKEY_STRICT = 1, HOSTKEY_OFF = 0, HOSTKEY_ACCEPT_NEW = 2 };

/* Encryption of states at rest (crypt.c); strings are borrowed (NULL when unset). At most one
 * of passphrase, key_files and the commands is set (the settings check it). */
typedef struct {
	const char *passphrase;  /* TF_BACKEND_HTTP_ENCRYPTION_PASSPHRASE: terraform-backend-git's aes */
	const char *key_files;   /* TFGIT_ENCRYPTION_KEYS: space-separated; the first encrypts */
	const char *encrypt_cmd; /* TFGIT_ENCRYPT_CMD and TFGIT_DECRYPT_CMD: filters */
	const char *decrypt_cmd;
	int filter_timeout;      /* TFGIT_FILTER_TIMEOUT, seconds */
	int migrate;             /* TFGIT_ENCRYPTION_MIGRATE: one of CRYPT_MIGRATE_* */
	const char *repository_ids; /* TFGIT_REPOSITORY_IDS: "URL=ID ..." (tfgit_repository_id) */
	int refuse_v1;           /* TFGIT_ENCRYPTION_REFUSE_V1: format 1 (bound to the path only)
				  * is not read */
} tfgit_crypt;

enum { CRYPT_MIGRATE_NONE = 0, CRYPT_MIGRATE_ENCRYPT = 1, CRYPT_MIGRATE_DECRYPT = 2 };

/* Server-wide settings of the store; strings are borrowed, not copied. */
typedef struct {
	const char *cache_dir;    /* one bare repository per remote below it */
	const char *author_name;  /* author and committer of every commit */
	const char *author_email;
	int require_lock;         /* POST and DELETE refused with ENOLOCK when not locked */
	int allow_force_unlock;   /* UNLOCK without an ID removes any lock */
	size_t max_blob;          /* a state blob larger than this is not read (ETOOLARGE) */
	int queue_timeout;        /* seconds to wait while another request holds the repository */
	long cache_max_count;     /* cache entries kept (least recently used evicted); 0: no bound */
	long long cache_max_bytes; /* bytes the cache may take; 0: no bound */
	long lock_ttl;            /* TFGIT_LOCK_TTL: a LOCK takes over a lock older than this many
				   * seconds (its commit's time); 0: never */
	int lineage_guard;        /* TFGIT_LINEAGE_GUARD: a write of another lineage is EEXISTS */
	int group_commit;         /* TFGIT_GROUP_COMMIT: requests waiting for one repository are
				   * served together, in one push (batch.c) */
	const char *allowed_states; /* TFGIT_ALLOWED_STATES (NULL: any): a branch's re-encryption
				   * leaves the states outside it as they are */
	tfgit_remote_opts remote;
	tfgit_crypt crypt;
} tfgit_store;

/* What a request addresses; strings are borrowed and must be validated first. */
typedef struct {
	const char *url;   /* remote URL or absolute local path */
	const char *ref;   /* branch name, without refs/heads/ */
	const char *state; /* path of the state file in the tree */
} tfgit_target;

/* Everything an operation reports back; released by tfgit_result_free(). */
typedef struct {
	tfgit_buf content;  /* GET: the state bytes */
	void *content_owner; /* internal: what content points into when it was not copied (a
			      * libgit2 object), released with the result */
	tfgit_buf holder;   /* ELOCKED: the holder's lock JSON; forced UNLOCK: the lock removed */
	char blob_id[41];   /* GET: id of the state blob */
	char version[41];   /* GET: the commit the state was read at (the branch tip, or the
			     * version asked for) */
	int changed;        /* a new commit or ref update reached the remote */
	int forced;         /* UNLOCK went ahead without the holder's ID */
	int attempts;       /* pushes tried (more than 1 when the branch moved) */
	int batch;          /* group commit: how many requests the batch that served this one
			     * held (0: served alone, without the queue) */
	int led;            /* group commit: this process led that batch (its remote round
			     * trips are the batch's) */
	int damaged;        /* internal: the failure was the cache's own (missing objects, bad
			     * packs), worth a rebuild, not the request's */
	int transient;      /* internal: a fetch (which changes nothing) was cut short by the
			     * network, worth one more try on a new connection */
	char message[512];  /* for the log and the error body; never holds secrets */
} tfgit_result;

/* Call once per process, after fork(), before any other function. ca_file: a private CA to
 * trust besides the system's (NULL: the system's only). */
int tfgit_init(const char *ca_file);
/* From now on TLS remotes are trusted by the system's CAs plus ca_file (NULL: none); the
 * context is rebuilt only when ca_file differs from the last one. 0 or TFGIT_ERROR. */
int tfgit_tls_trust(const char *ca_file);
void tfgit_shutdown(void);

int tfgit_state_get(tfgit_result *out, const tfgit_store *store, const tfgit_target *t);
/* The state as it was at version (a commit id of the branch's history, full or at least 7 hex
 * digits); ENOTFOUND when version is no commit of the branch or the state is not in it;
 * EINVALID when version is not hex or is ambiguous. */
int tfgit_state_get_version(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
			    const char *version);
/* lock_id may be NULL (no ID= in the request). amend replaces the tip commit when it is
 * tfgit's own "Update <state>" that changed nothing else; otherwise a commit is added. An
 * existing file at the path that is not a Terraform state is never overwritten (EEXISTS). */
int tfgit_state_put(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
		    const char *lock_id, const char *body, size_t len, int amend);
/* tfgit_state_put taking the body: body->ptr (from malloc) may be freed, and *body emptied,
 * once the state is stored in the cache, so that a large state is not held in memory twice
 * while it is pushed. The caller frees what is left. */
int tfgit_state_put_owned(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
			  const char *lock_id, tfgit_buf *body, int amend);
int tfgit_state_delete(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
		       const char *lock_id);
/* body is Terraform's lock info JSON; it is stored as it came. */
int tfgit_lock(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
	       const char *body, size_t len);
/* An empty body, or one without an ID, is a force-unlock: tfgit_unlock_is_force() says 1. */
int tfgit_unlock_is_force(const char *body, size_t len);
int tfgit_unlock(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
		 const char *body, size_t len);

/* Writes again, in one commit, every state of the branch t->ref (t->state unused) whose stored
 * form is stale under the store's encryption settings: sealed with an older key, or clear
 * text / encrypted while migrating. who (user@host of the operator; NULL or "": none) is the
 * commit's Who trailer. *count: how many. Files it cannot read are left. */
int tfgit_reencrypt(tfgit_result *out, const tfgit_store *store, const tfgit_target *t, const char *who,
		    size_t *count);

/* What changed between two states' clear texts by resource instance address (statediff.c),
 * sorted by address: kind '+' added, '-' removed, '~' changed (attributes: the names of the
 * attributes that changed, comma-separated; never values). At most max are listed (*n);
 * *total (may be NULL) counts them all. EINVALID when either is not a JSON object, ETOOLARGE
 * beyond 250,000 instances. The states are read in place, without a tree. *list is freed
 * with tfgit_diff_free. */
typedef struct {
	char kind;
	char *address;
	char *attributes;
} tfgit_diff_entry;
int tfgit_state_diff(const char *a, size_t alen, const char *b, size_t blen, size_t max, tfgit_diff_entry **list,
		     size_t *n, size_t *total);
void tfgit_diff_free(tfgit_diff_entry *list, size_t n);

/* The operators' views (history.c): a state's versions, the locks, the states of a branch. */
typedef struct {
	char commit[41];
	long long time;          /* the commit's time, seconds since the epoch */
	char who[256];           /* the commit's trailers (empty when absent) */
	char lock_id[256];
	char operation[256];
	long long serial;        /* from the state; -1 when unknown */
	char lineage[128];
	size_t size;             /* bytes Terraform gets */
	int deleted;             /* the commit removed the state */
	/* tfgit_history_page with changes only: what changed against the version before it
	 * (compared 0 when either side could not be read as a state); freed by
	 * tfgit_versions_free */
	tfgit_diff_entry *changes;
	size_t nchanges;
	size_t changes_total;    /* changes beyond the listed ones are counted only */
	int compared;
} tfgit_version;

typedef struct {
	char state[1100];
	char id[256], who[256], operation[256], created[64];
	long long time;          /* the lock commit's time */
} tfgit_lock_entry;

typedef struct {
	char state[1100];
	long long serial;
	char lineage[128];
	char terraform_version[64];
	long resources;          /* entries of its "resources"; -1 when unknown (encrypted by OpenTofu) */
	tfgit_version last;      /* its last change */
	int locked;
	tfgit_lock_entry lock;
} tfgit_state_entry;

/* t->state's versions on t->ref, newest first (*list freed with free()). */
int tfgit_history(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
		  tfgit_version **list, size_t *n);
/* A page of them, for a state's page: the newest skip passed over, at most limit listed, each
 * with its changes against the version before it; *total: how many versions the state has.
 * Only the listed versions (and the one before the last) are read. In the same session:
 * out->content the state as the branch holds it now (empty when it no longer does) and its
 * lock (*locked 1, *lock filled). *list freed with tfgit_versions_free. */
int tfgit_history_page(tfgit_result *out, const tfgit_store *store, const tfgit_target *t, size_t skip,
		       size_t limit, tfgit_version **list, size_t *n, size_t *total, tfgit_lock_entry *lock,
		       int *locked);
void tfgit_versions_free(tfgit_version *list, size_t n);
/* Every lock of the repository t->url (*list freed with free()). */
int tfgit_locks(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
		tfgit_lock_entry **list, size_t *n);
/* Every state on t->ref with its last change and lock (*list freed with free()). */
int tfgit_states(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
		 tfgit_state_entry **list, size_t *n);

/* What a state holds, for the web view (statediff.c): its resources (the first 2,000 listed,
 * *total_resources counts them all) and its outputs' names (never a value). EINVALID when
 * json is not a JSON object; lists freed with free(). */
typedef struct {
	char address[1024];      /* as Terraform prints it, without an instance key */
	char mode[16];           /* managed or data */
	char type[256];
	char provider[512];
	size_t instances;
} tfgit_resource;
typedef struct {
	char name[256];
	int sensitive;
} tfgit_output;
int tfgit_state_summary(const char *json, size_t len, tfgit_resource **resources, size_t *nresources,
			size_t *total_resources, tfgit_output **outputs, size_t *noutputs);

void tfgit_result_free(tfgit_result *r);
void tfgit_buf_free(tfgit_buf *b);
const char *tfgit_strerror(int code);

/* Validation, before anything touches git (validate.c, url.c). Each returns 0 or TFGIT_EINVALID. */
int tfgit_state_path_check(const char *state);
int tfgit_ref_check(const char *ref, const char *state);
/* A repository URL parsed (url.c); credentials: userinfo allowed (the operator's default
 * repository only). The reason of a refusal, never echoing userinfo, goes to why. */
int tfgit_repository_check(const char *url, int credentials, char *why, size_t whylen);
/* The form of a checked url that is matched and used: a local path with its existing
 * directories resolved (realpath), any other URL as it is. */
int tfgit_repository_resolve(char *out, size_t outlen, const char *url);
/* 1 when the checked, resolved url matches one of the space-separated patterns part by part
 * (scheme, user, host, port, %-decoded path; '*' never crosses '/'), else 0. */
int tfgit_repository_allowed(const char *url, const char *patterns);
/* 1 when url matches the one pattern (a pattern of TFGIT_ALLOWED_REPOS or of the ACL). */
int tfgit_pattern_match(const char *pattern, const char *url);
/* 0 when every space-separated pattern parses, else TFGIT_EINVALID naming it in why. */
int tfgit_patterns_check(const char *patterns, char *why, size_t whylen);
/* 1 when name matches one of the space-separated globs ('*' not crossing '/'), or patterns
 * is NULL (no restriction). */
int tfgit_name_allowed(const char *name, const char *patterns);
/* Copies url into out with any user:password@ replaced by ***@. */
void tfgit_url_redact(char *out, size_t outlen, const char *url);
/* The identity tfgit's encryption binds a state to (crypt.c): url (checked; credentials
 * allowed) without its userinfo, the scheme's default port left out, the path without a
 * trailing '/' and ".git" (http(s): %-encoded only where it must be); a local path or file://
 * URL as its absolute real path. "https://u:p@Git.Example.org:443/infra.git/" is
 * "https://git.example.org/infra", "git@host:org/x.git" is "host:org/x". 0 or TFGIT_EINVALID. */
int tfgit_repository_identity(char *out, size_t outlen, const char *url);
/* url's identity under TFGIT_REPOSITORY_IDS (ids, NULL when unset): the ID of the entry whose URL
 * has url's identity, else url's identity. 0 or TFGIT_EINVALID. */
int tfgit_repository_id(char *out, size_t outlen, const char *url, const char *ids);
/* 0 when ids is space-separated URL=ID entries (split at the last '='): a repository URL without
 * credentials, an ID of 1 to 256 letters, digits and . _ ~ : / @ + % -, no repository named
 * twice and no ID given twice; else TFGIT_EINVALID naming the entry in why. */
int tfgit_repository_ids_check(const char *ids, char *why, size_t whylen);

/* The log (log.c): one line on stderr per call, every noted secret replaced by ***, control
 * characters and backslashes escaped (\n, \x1b, \\) so no field can start a line of its own. */
void tfgit_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Writes obj (a json-c object) as one line on stderr (one write), every noted secret in its
 * string members replaced by *** first; json-c escapes control characters, so no member starts
 * a line (TFGIT_LOG_FORMAT=json). */
struct json_object;
void tfgit_log_json(struct json_object *obj);
/* Remembers a secret (password, token) so that no log line or message shows it; copied. */
void tfgit_secret_note(const char *secret);
/* Escapes len bytes of in as the log does into out (always NUL-terminated); its length. */
size_t tfgit_escape(char *out, size_t outlen, const char *in, size_t len);

#endif
