/* tfgit core: Terraform state and locks kept in a git repository. Knows nothing of HTTP. */
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
} tfgit_remote_opts;

enum { HOSTKEY_STRICT = 1, HOSTKEY_OFF = 0, HOSTKEY_ACCEPT_NEW = 2 };

/* Server-wide settings of the store; strings are borrowed, not copied. */
typedef struct {
	const char *cache_dir;    /* one bare repository per remote below it */
	const char *author_name;  /* author and committer of every commit */
	const char *author_email;
	int require_lock;         /* POST refused with ENOLOCK when the state is not locked */
	int allow_force_unlock;   /* UNLOCK without an ID removes any lock */
	tfgit_remote_opts remote;
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
	tfgit_buf holder;   /* ELOCKED: the holder's lock JSON; forced UNLOCK: the lock removed */
	char blob_id[41];   /* GET: id of the state blob */
	int changed;        /* a new commit or ref update reached the remote */
	int forced;         /* UNLOCK went ahead without the holder's ID */
	int attempts;       /* pushes tried (more than 1 when the branch moved) */
	char message[512];  /* for the log and the error body; never holds secrets */
} tfgit_result;

/* Call once per process, after fork(), before any other function. ca_file: a private CA to
 * trust besides the system's (NULL: the system's only). */
int tfgit_init(const char *ca_file);
void tfgit_shutdown(void);

int tfgit_state_get(tfgit_result *out, const tfgit_store *store, const tfgit_target *t);
/* lock_id may be NULL (no ID= in the request). amend replaces the tip commit. */
int tfgit_state_put(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
		    const char *lock_id, const char *body, size_t len, int amend);
int tfgit_state_delete(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
		       const char *lock_id);
/* body is Terraform's lock info JSON; it is stored as it came. */
int tfgit_lock(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
	       const char *body, size_t len);
/* An empty body, or one without an ID, is a force-unlock. */
int tfgit_unlock(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
		 const char *body, size_t len);

void tfgit_result_free(tfgit_result *r);
void tfgit_buf_free(tfgit_buf *b);
const char *tfgit_strerror(int code);

/* Validation, before anything touches git (validate.c). Each returns 0 or TFGIT_EINVALID. */
int tfgit_state_path_check(const char *state);
int tfgit_ref_check(const char *ref, const char *state);
int tfgit_repository_check(const char *url);
/* 1 when url matches one of the space-separated glob patterns, else 0. */
int tfgit_repository_allowed(const char *url, const char *patterns);
/* Copies url into out with any user:password@ replaced by ***@. */
void tfgit_url_redact(char *out, size_t outlen, const char *url);

#endif
