/* Encryption of states at rest (crypt.h): AES-256-GCM through OpenSSL's libcrypto, or filter
 * commands. No cryptography of our own: only the formats around it.
 *
 * terraform-backend-git's aes: key = the 32 ASCII hex digits of MD5(passphrase), blob = nonce
 * (12) ‖ ciphertext ‖ tag (16), no associated data.
 * tfgit's keys: blob = "TFGITENC" ‖ version (1) ‖ key id (8: SHA-256 of the key) ‖ nonce (12) ‖
 * ciphertext ‖ tag (16). Associated data, version 2 (written): those 29 header bytes ‖
 * len(identity) ‖ the repository's identity ‖ len(branch) ‖ the branch ‖ the state's path, each
 * len 4 bytes big-endian (so no two triples give the same bytes); version 1 (read only, unless
 * TFGIT_ENCRYPTION_REFUSE_V1): the header ‖ the state's path. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "crypt.h"
#include "filter.h"
#include "../internal.h"
#include "../format/lockinfo.h"
#include "../net/url.h"

#define NONCE 12
#define TAG 16
#define KEY 32
#define MAGIC "TFGITENC"
#define MAGIC_LEN 8
#define FORMAT_V1 1 /* bound to the state's path only */
#define FORMAT_V2 2 /* bound to the repository's identity, the branch and the path */
#define KEY_ID 8
#define HEADER (MAGIC_LEN + 1 + KEY_ID + NONCE)
#define KEYS_MAX 16
#define KEY_FILE_MAX 256

struct aes_key {
	unsigned char key[KEY];
	unsigned char id[KEY_ID];
};

/* AES-256-GCM over in (len bytes) into out (len bytes); the tag is written (seal) or checked
 * (open). 0, or -1 (for open: wrong key or damaged). */
static int gcm(int seal, const unsigned char key[KEY], const unsigned char nonce[NONCE],
	       const unsigned char *aad, size_t aadlen, const unsigned char *in, size_t len,
	       unsigned char *out, unsigned char tag[TAG])
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, ok = ctx && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, seal) == 1 &&
			EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE, NULL) == 1 &&
			EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, seal) == 1;
	if (ok && aadlen)
		ok = EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aadlen) == 1;
	/* in pieces: EVP lengths are int, states may pass 2 GiB one day */
	for (size_t done = 0; ok && done < len;) {
		int chunk = len - done > (1u << 30) ? 1 << 30 : (int)(len - done);
		ok = EVP_CipherUpdate(ctx, out + done, &n, in + done, chunk) == 1;
		done += (size_t)chunk;
	}
	if (ok && !seal)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG, tag) == 1;
	if (ok)
		ok = EVP_CipherFinal_ex(ctx, out + len, &n) == 1;
	if (ok && seal)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG, tag) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* terraform-backend-git's key: the hex digits of MD5(passphrase), as they are. */
static int reference_key(unsigned char key[KEY], const char *passphrase)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	static const char hex[] = "0123456789abcdef";
	if (!EVP_Digest(passphrase, strlen(passphrase), md, &mdlen, EVP_md5(), NULL) || mdlen != 16)
		return -1;
	for (unsigned i = 0; i < 16; i++) {
		key[2 * i] = (unsigned char)hex[md[i] >> 4];
		key[2 * i + 1] = (unsigned char)hex[md[i] & 15];
	}
	explicit_bzero(md, sizeof(md));
	return 0;
}

/* One key file: base64 of 32 bytes, a regular file of this user (or root) that no one else may
 * read or write. */
static int read_key(struct aes_key *k, const char *path, char *why, size_t whylen)
{
	char text[KEY_FILE_MAX + 1], clean[KEY_FILE_MAX + 1];
	unsigned char raw[KEY_FILE_MAX];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(why, whylen, "encryption key file %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || (st.st_uid != geteuid() && st.st_uid != 0) || (st.st_mode & 077)) {
		close(fd);
		snprintf(why, whylen, "encryption key file %s must be a file of this user (uid %ld) or root "
			 "that no one else may read or write (0600 or 0400)", path, (long)geteuid());
		return -1;
	}
	ssize_t n = read(fd, text, KEY_FILE_MAX);
	close(fd);
	size_t c = 0;
	for (ssize_t i = 0; i < n; i++)
		if (!strchr(" \t\r\n", text[i]))
			clean[c++] = text[i];
	int len = c == 44 ? EVP_DecodeBlock(raw, (unsigned char *)clean, (int)c) : -1;
	/* 44 characters ending in one '=': 33 decoded, the last a pad */
	if (len != 33 || clean[43] != '=' || clean[42] == '=') {
		snprintf(why, whylen, "encryption key file %s does not hold base64 of 32 bytes (make one with "
			 "openssl rand -base64 32)", path);
		explicit_bzero(text, sizeof(text));
		explicit_bzero(clean, sizeof(clean));
		explicit_bzero(raw, sizeof(raw));
		return -1;
	}
	memcpy(k->key, raw, KEY);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_Digest(k->key, KEY, md, &mdlen, EVP_sha256(), NULL);
	memcpy(k->id, md, KEY_ID);
	explicit_bzero(text, sizeof(text));
	explicit_bzero(clean, sizeof(clean));
	explicit_bzero(raw, sizeof(raw));
	return 0;
}

/* Every key of the list, in order; their count, or -1. */
static int read_keys(struct aes_key keys[KEYS_MAX], const char *list, char *why, size_t whylen)
{
	int n = 0;
	char path[4096];
	for (const char *p = list; p && *p;) {
		p += strspn(p, " \t");
		size_t len = strcspn(p, " \t");
		if (!len)
			break;
		if (n == KEYS_MAX || len >= sizeof(path)) {
			snprintf(why, whylen, "TFGIT_ENCRYPTION_KEYS names more than %d keys, or too long a path",
				 KEYS_MAX);
			return -1;
		}
		memcpy(path, p, len);
		path[len] = '\0';
		if (read_key(&keys[n], path, why, whylen) < 0)
			return -1;
		n++;
		p += len;
	}
	if (n == 0)
		snprintf(why, whylen, "TFGIT_ENCRYPTION_KEYS names no key file");
	return n ? n : -1;
}

int crypt_keys_check(const char *key_files, char *why, size_t whylen)
{
	struct aes_key keys[KEYS_MAX];
	int n = read_keys(keys, key_files, why, whylen);
	explicit_bzero(keys, sizeof(keys));
	return n > 0 ? 0 : TFGIT_EINVALID;
}

int crypt_enabled(const tfgit_crypt *c)
{
	return c->passphrase || c->key_files || c->encrypt_cmd || c->decrypt_cmd;
}

static void id_hex(char out[2 * KEY_ID + 1], const unsigned char *id)
{
	for (int i = 0; i < KEY_ID; i++)
		sprintf(out + 2 * i, "%02x", id[i]);
}

/* Decryption attempts: 0 with *plain set, or -1 with the reason in r. */
static int open_reference(tfgit_buf *plain, const tfgit_crypt *c, const char *state, const tfgit_buf *b,
			  tfgit_result *r)
{
	unsigned char key[KEY];
	const unsigned char *in = (const unsigned char *)b->ptr;
	if (b->size < NONCE + TAG) {
		result_message(r, "state %s: wrong key or damaged: %zu bytes, shorter than an encrypted state "
			       "(TF_BACKEND_HTTP_ENCRYPTION_PASSPHRASE)", state, b->size);
		return -1;
	}
	size_t len = b->size - NONCE - TAG;
	plain->ptr = malloc(len + 1);
	if (!plain->ptr || reference_key(key, c->passphrase) < 0 ||
	    gcm(0, key, in, NULL, 0, in + NONCE, len, (unsigned char *)plain->ptr,
		(unsigned char *)in + NONCE + len) < 0) {
		explicit_bzero(key, sizeof(key));
		free(plain->ptr);
		plain->ptr = NULL;
		result_message(r, "state %s: wrong key or damaged (it does not decrypt with "
			       "TF_BACKEND_HTTP_ENCRYPTION_PASSPHRASE)", state);
		return -1;
	}
	explicit_bzero(key, sizeof(key));
	plain->size = len;
	return 0;
}

static unsigned char *put_field(unsigned char *p, const char *s, size_t len)
{
	p[0] = (unsigned char)(len >> 24);
	p[1] = (unsigned char)(len >> 16);
	p[2] = (unsigned char)(len >> 8);
	p[3] = (unsigned char)len;
	memcpy(p + 4, s, len);
	return p + 4 + len;
}

/* The associated data of a blob of tfgit's format whose header (HEADER bytes, its version
 * included) is given, at at (see the top): a new buffer, its length in *aadlen; the repository's
 * identity (format 2) in id. NULL with the reason in r. */
static unsigned char *binding(size_t *aadlen, char id[URL_MAX + 1], const unsigned char *header,
			      const tfgit_crypt *c, const tfgit_target *at, tfgit_result *r)
{
	int v2 = header[MAGIC_LEN] == FORMAT_V2;
	id[0] = '\0';
	if (v2 && tfgit_repository_id(id, URL_MAX + 1, at->url, c->repository_ids) < 0) {
		result_message(r, "state %s: no repository identity can be made of the repository's URL "
			       "(TFGIT_REPOSITORY_IDS)", at->state);
		return NULL;
	}
	size_t ilen = strlen(id), rlen = strlen(at->ref), slen = strlen(at->state);
	size_t n = HEADER + (v2 ? 8 + ilen + rlen : 0) + slen;
	unsigned char *aad = malloc(n), *p = aad;
	if (!aad) {
		result_message(r, "state %s: out of memory", at->state);
		return NULL;
	}
	memcpy(p, header, HEADER);
	p += HEADER;
	if (v2) {
		p = put_field(p, id, ilen);
		p = put_field(p, at->ref, rlen);
	}
	memcpy(p, at->state, slen);
	*aadlen = n;
	return aad;
}

static int open_keys(tfgit_buf *plain, const tfgit_crypt *c, const tfgit_target *at, const tfgit_buf *b,
		     tfgit_result *r)
{
	struct aes_key keys[KEYS_MAX];
	char why[512], hex[2 * KEY_ID + 1], ident[URL_MAX + 1];
	const char *state = at->state;
	const unsigned char *in = (const unsigned char *)b->ptr;
	if (b->size < HEADER + TAG || memcmp(in, MAGIC, MAGIC_LEN) != 0) {
		result_message(r, "state %s is not encrypted with tfgit's keys (no TFGITENC header)", state);
		return -1;
	}
	if (in[MAGIC_LEN] != FORMAT_V1 && in[MAGIC_LEN] != FORMAT_V2) {
		result_message(r, "state %s is in tfgit's encrypted format version %d, which this tfgit does "
			       "not know", state, in[MAGIC_LEN]);
		return -1;
	}
	if (in[MAGIC_LEN] == FORMAT_V1 && c->refuse_v1) {
		result_message(r, "state %s is in tfgit's encrypted format 1 (bound to its path only), which "
			       "TFGIT_ENCRYPTION_REFUSE_V1=1 refuses (tfgit reencrypt re-seals format 1 in "
			       "format 2 while the setting is off)", state);
		return -1;
	}
	int n = read_keys(keys, c->key_files, why, sizeof(why));
	if (n < 0) {
		result_message(r, "%s", why);
		return -1;
	}
	const unsigned char *id = in + MAGIC_LEN + 1;
	int k = 0;
	while (k < n && memcmp(keys[k].id, id, KEY_ID) != 0)
		k++;
	if (k == n) {
		explicit_bzero(keys, sizeof(keys));
		id_hex(hex, id);
		result_message(r, "state %s was encrypted with key id %s, which is not among "
			       "TFGIT_ENCRYPTION_KEYS", state, hex);
		return -1;
	}
	size_t len = b->size - HEADER - TAG, aadlen = 0;
	unsigned char *aad = binding(&aadlen, ident, in, c, at, r);
	if (!aad) {
		explicit_bzero(keys, sizeof(keys));
		return -1;
	}
	plain->ptr = malloc(len + 1);
	int rc = -1;
	if (plain->ptr)
		rc = gcm(0, keys[k].key, in + MAGIC_LEN + 1 + KEY_ID, aad, aadlen, in + HEADER, len,
			 (unsigned char *)plain->ptr, (unsigned char *)in + HEADER + len);
	explicit_bzero(keys, sizeof(keys));
	free(aad);
	if (rc < 0) {
		free(plain->ptr);
		plain->ptr = NULL;
		id_hex(hex, id);
		if (in[MAGIC_LEN] == FORMAT_V2) {
			/* the identity goes to the log only: a local one is a path of this host */
			core_log("state %s on branch %s does not open under repository identity %s (format 2, "
				 "key id %s)", state, at->ref, ident, hex);
			result_message(r, "state %s: wrong key or damaged (key id %s: the blob fails "
				       "authentication, or was sealed for another repository, branch or state "
				       "path; the log names this repository's identity)", state, hex);
		} else {
			result_message(r, "state %s: wrong key or damaged (key id %s: the blob fails "
				       "authentication, or was written for another state path)", state, hex);
		}
		return -1;
	}
	plain->size = len;
	return 0;
}

static int open_filter(tfgit_buf *plain, const tfgit_crypt *c, const char *state, const tfgit_buf *b,
		       size_t max, tfgit_result *r)
{
	char err[1024], why[512];
	if (!c->decrypt_cmd) {
		result_message(r, "state %s cannot be decrypted: TFGIT_DECRYPT_CMD is not set", state);
		return -1;
	}
	if (filter_run(c->decrypt_cmd, b->ptr, b->size, max, c->filter_timeout, plain, err, sizeof(err), why,
		       sizeof(why)) < 0) {
		core_log("TFGIT_DECRYPT_CMD for state %s: %s; its stderr: %s", state, why, err);
		result_message(r, "state %s: wrong key or damaged: TFGIT_DECRYPT_CMD failed (%s); the log has "
			       "its error output", state, why);
		return -1;
	}
	if (!json_is_state(plain->ptr, plain->size)) { /* never garbage handed to Terraform */
		tfgit_buf_free(plain);
		result_message(r, "state %s: wrong key or damaged: what TFGIT_DECRYPT_CMD gave is not a "
			       "Terraform state", state);
		return -1;
	}
	return 0;
}

int crypt_open(tfgit_buf *buf, const tfgit_crypt *c, const tfgit_target *at, tfgit_result *r)
{
	tfgit_buf plain = {0};
	const char *state = at->state;
	if (!crypt_enabled(c)) {
		if (buf->size >= MAGIC_LEN && memcmp(buf->ptr, MAGIC, MAGIC_LEN) == 0)
			result_message(r, "state %s is encrypted with tfgit's keys, and this server has none "
				       "(TFGIT_ENCRYPTION_KEYS)", state);
		else if (json_object_check(buf->ptr, buf->size) < 0)
			result_message(r, "state %s is not clear-text JSON (encrypted?), and this server has no "
				       "encryption settings", state);
		else
			return 0;
		core_log("%s", r->message);
		return TFGIT_ERROR;
	}
	int rc = -1, clear = json_is_state(buf->ptr, buf->size);
	if (c->passphrase)
		rc = open_reference(&plain, c, state, buf, r);
	else if (c->key_files)
		rc = open_keys(&plain, c, at, buf, r);
	else /* asked even for what looks clear: sops' output is JSON with the state's keys */
		rc = open_filter(&plain, c, state, buf, buf->size * 4 + (1 << 20), r);
	if (rc == 0) {
		tfgit_buf_free(buf);
		*buf = plain;
		return 1;
	}
	if (clear && c->migrate) { /* a clear-text state, readable while migrating */
		r->message[0] = '\0';
		return 0;
	}
	if (clear)
		result_message(r, "state %s is stored in clear text, and this server encrypts: set "
			       "TFGIT_ENCRYPTION_MIGRATE=encrypt to read it (it is encrypted at its next write)",
			       state);
	core_log("%s", r->message);
	return TFGIT_ERROR;
}

int crypt_seal(tfgit_buf *out, const tfgit_crypt *c, const tfgit_target *at, const char *plain, size_t len,
	       tfgit_result *r)
{
	const char *state = at->state;
	out->ptr = NULL;
	out->size = 0;
	if (!crypt_enabled(c) || c->migrate == CRYPT_MIGRATE_DECRYPT) {
		if (!(out->ptr = malloc(len ? len : 1)))
			return TFGIT_ERROR;
		memcpy(out->ptr, plain, len);
		out->size = len;
		return 0;
	}
	if (c->encrypt_cmd || c->decrypt_cmd) {
		char err[1024], why[512];
		if (!c->encrypt_cmd) {
			result_message(r, "state %s cannot be encrypted: TFGIT_ENCRYPT_CMD is not set", state);
			return TFGIT_ERROR;
		}
		if (filter_run(c->encrypt_cmd, plain, len, len * 4 + (1 << 20), c->filter_timeout, out, err,
			       sizeof(err), why, sizeof(why)) < 0) {
			core_log("TFGIT_ENCRYPT_CMD for state %s: %s; its stderr: %s", state, why, err);
			result_message(r, "state %s was not written: TFGIT_ENCRYPT_CMD failed (%s); the log has "
				       "its error output", state, why);
			return TFGIT_ERROR;
		}
		return 0;
	}
	struct aes_key keys[KEYS_MAX];
	unsigned char key[KEY], *o;
	char why[512], ident[URL_MAX + 1];
	size_t head = c->passphrase ? NONCE : HEADER;
	out->ptr = malloc(head + len + TAG);
	if (!out->ptr)
		return TFGIT_ERROR;
	o = (unsigned char *)out->ptr;
	int rc = -1;
	if (c->passphrase) {
		if (RAND_bytes(o, NONCE) == 1 && reference_key(key, c->passphrase) == 0)
			rc = gcm(1, key, o, NULL, 0, (const unsigned char *)plain, len, o + NONCE, o + NONCE + len);
		explicit_bzero(key, sizeof(key));
	} else if (read_keys(keys, c->key_files, why, sizeof(why)) > 0) {
		size_t aadlen = 0;
		unsigned char *aad = NULL;
		memcpy(o, MAGIC, MAGIC_LEN);
		o[MAGIC_LEN] = FORMAT_V2;
		memcpy(o + MAGIC_LEN + 1, keys[0].id, KEY_ID);
		if (RAND_bytes(o + MAGIC_LEN + 1 + KEY_ID, NONCE) == 1 &&
		    (aad = binding(&aadlen, ident, o, c, at, r)))
			rc = gcm(1, keys[0].key, o + MAGIC_LEN + 1 + KEY_ID, aad, aadlen,
				 (const unsigned char *)plain, len, o + HEADER, o + HEADER + len);
		free(aad);
		explicit_bzero(keys, sizeof(keys));
	} else {
		result_message(r, "state %s was not written: %s", state, why);
	}
	if (rc < 0) {
		if (!r->message[0])
			result_message(r, "state %s was not written: encryption failed (OpenSSL)", state);
		core_log("%s", r->message);
		tfgit_buf_free(out);
		return TFGIT_ERROR;
	}
	out->size = head + len + TAG;
	return 0;
}

int crypt_stale(const tfgit_crypt *c, const char *blob, size_t len)
{
	int sealed_now = crypt_enabled(c) && c->migrate != CRYPT_MIGRATE_DECRYPT;
	int ours = len >= HEADER + TAG && memcmp(blob, MAGIC, MAGIC_LEN) == 0;
	int clear = json_is_state(blob, len);
	if (!crypt_enabled(c))
		return 0;
	if (c->encrypt_cmd) /* filters: whatever they read is written again (their keys may have
			     * rotated; sops' output is JSON too, so clear text cannot be told) */
		return 1;
	if (clear)
		return sealed_now && c->migrate == CRYPT_MIGRATE_ENCRYPT;
	if (c->key_files) {
		struct aes_key keys[KEYS_MAX];
		char why[512];
		if (!ours)
			return 0;
		if (!sealed_now)
			return 1;
		if (blob[MAGIC_LEN] == FORMAT_V1) /* re-sealed bound to the repository and branch */
			return 1;
		if (blob[MAGIC_LEN] != FORMAT_V2)
			return 0;
		int n = read_keys(keys, c->key_files, why, sizeof(why)), stale = n > 0 &&
			memcmp(keys[0].id, blob + MAGIC_LEN + 1, KEY_ID) != 0;
		explicit_bzero(keys, sizeof(keys));
		return stale;
	}
	/* one passphrase: only a migration to clear text rewrites */
	return !sealed_now && json_object_check(blob, len) < 0;
}
