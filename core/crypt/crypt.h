/* Encryption of states at rest: what is stored in git for the state Terraform sends, and back.
 * Three ways, chosen by the settings (tfgit_crypt): terraform-backend-git's aes (a passphrase),
 * tfgit's own keys (rotation; the repository's identity, the branch and the state's path bound
 * to its blob), or filter commands.
 *
 * Layer: crypt/ turns clear states into the bytes stored and back (crypt.c; filter.c runs the
 * operator's commands). Above it the operations hold clear text, below it store/ holds opaque
 * blobs; locks bypass it. It may call store/, net/ (a repository's identity: url.c), format/ and
 * the shared core. */
#ifndef TFGIT_CRYPT_H
#define TFGIT_CRYPT_H

#include "../tfgit.h"

/* 1 when states are encrypted (or, migrating, may be) under these settings. */
int crypt_enabled(const tfgit_crypt *c);

/* The stored bytes in *buf (owned) become the state Terraform gets, in place: 1 when they were
 * decrypted, 0 when they were clear text (and may be: encryption off, or migrating). at names
 * where the blob is: at->state its path, at->ref its branch, at->url its repository (tfgit's
 * keys bind all three). A clear-text state while encryption is on, an encrypted one while it is
 * off, a blob that fails authentication (damaged, or sealed for another repository, branch or
 * path), whose key is missing or whose format is refused: TFGIT_ERROR with a message naming the
 * state in r (and *buf untouched or freed); never the stored bytes passed on as the state. */
int crypt_open(tfgit_buf *buf, const tfgit_crypt *c, const tfgit_target *at, tfgit_result *r);

/* The bytes to store at at for len bytes of plain (a new buffer in *out); TFGIT_ERROR with r's
 * message. tfgit's keys always write format 2. */
int crypt_seal(tfgit_buf *out, const tfgit_crypt *c, const tfgit_target *at, const char *plain, size_t len,
	       tfgit_result *r);

/* 1 when a stored blob is to be written again under these settings (the re-encryption of a
 * repository): sealed with another key than the first of TFGIT_ENCRYPTION_KEYS or in format 1
 * (bound to its path only), clear text while migrating to encryption, encrypted while migrating
 * to clear text, or (filters) any blob, their keys unknown to tfgit. Whether it can be read is
 * crypt_open's to say. */
int crypt_stale(const tfgit_crypt *c, const char *blob, size_t len);

/* 0 when every file of key_files is a usable key (why says which is not). */
int crypt_keys_check(const char *key_files, char *why, size_t whylen);

#endif
