// refcrypt: an independent implementation (Go standard library only) of the two at-rest
// encryption formats of issue 10, used by tests/t-encryption.sh to make fixtures that tfgit
// must read and to read the blobs tfgit writes.
//
//	refcrypt ref-encrypt PASSPHRASE <plain >blob
//	refcrypt ref-decrypt PASSPHRASE <blob >plain
//	refcrypt tfgit-encrypt KEYFILE STATEPATH <plain >blob          (format 1)
//	refcrypt tfgit-decrypt KEYFILE STATEPATH <blob >plain          (format 1)
//	refcrypt tfgit2-encrypt KEYFILE REPOID BRANCH STATEPATH <plain >blob
//	refcrypt tfgit2-decrypt KEYFILE REPOID BRANCH STATEPATH <blob >plain
//	refcrypt key-id KEYFILE          (prints the 8-byte key id in lower-case hex)
//
// Exit status: 0 done, 1 the blob fails authentication (or is too short / not this format),
// 2 usage or I/O error.
//
// Formats:
//   - ref (terraform-backend-git's "aes" provider): key = the 32 ASCII characters of
//     hex(MD5(passphrase)) used as the 32-byte AES-256 key; blob = nonce(12) ‖ AES-256-GCM
//     ciphertext ‖ tag(16), no associated data. Size = plain + 28.
//   - tfgit v1: key file = base64 of 32 random bytes (whitespace around it ignored);
//     key id = first 8 bytes of SHA-256(raw key); blob = "TFGITENC" ‖ 0x01 ‖ key id(8) ‖
//     nonce(12) ‖ ciphertext ‖ tag(16); associated data = the 29-byte header followed by
//     the state's path as given in state= (e.g. envs/prod.tfstate). Size = plain + 45.
//   - tfgit v2 (issue 18): the same blob with 0x02 as its version; associated data = the header ‖
//     len(REPOID) ‖ REPOID ‖ len(BRANCH) ‖ BRANCH ‖ STATEPATH, each len 4 bytes big-endian.
//     REPOID is the repository's identity (its normalised URL, e.g. the real path of a local
//     repository, or its TFGIT_REPOSITORY_IDS entry). Size = plain + 45.
//
// Recipe that made the committed fixtures (run from the repository's root; the nonces are
// random, so re-running makes different but equally valid blobs):
//
//	export GOCACHE=/tmp/refcrypt-gocache GOPROXY=off GOTOOLCHAIN=local
//	go build -o /tmp/refcrypt tests/enc/refcrypt.go
//	# tests/enc/state.json: a Terraform-shaped state (written by hand, one terraform_data resource)
//	/tmp/refcrypt ref-encrypt 'tfgit-TEST-passphrase-not-a-secret' <tests/enc/state.json >tests/enc/ref-aes.blob
//	head -c 32 /dev/urandom | base64 >tests/enc/tfgit-v1.key   # TEST KEY, public, never use it for real
//	chmod 600 tests/enc/tfgit-v1.key
//	/tmp/refcrypt tfgit-encrypt tests/enc/tfgit-v1.key envs/prod.tfstate <tests/enc/state.json >tests/enc/tfgit-v1.blob
//
// So ref-aes.blob decrypts with the passphrase "tfgit-TEST-passphrase-not-a-secret", and
// tfgit-v1.blob with tfgit-v1.key bound to the state path "envs/prod.tfstate".
// (git keeps no file modes but the executable bit: the test copies the key to a 0600 file.)
package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
)

const (
	magic     = "TFGITENC"
	version   = 0x01
	version2  = 0x02
	nonceSize = 12
	tagSize   = 16
	headerLen = len(magic) + 1 + 8 + nonceSize // 29
)

func die(code int, format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "refcrypt: "+format+"\n", args...)
	os.Exit(code)
}

func gcm(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		die(2, "%v", err)
	}
	a, err := cipher.NewGCM(block) // 12-byte nonce, 16-byte tag
	if err != nil {
		die(2, "%v", err)
	}
	return a
}

func refKey(passphrase string) []byte {
	sum := md5.Sum([]byte(passphrase))
	return []byte(hex.EncodeToString(sum[:])) // 32 ASCII bytes used as the key itself
}

func readKeyFile(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		die(2, "%v", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		die(2, "%s: not base64 of 32 bytes", path)
	}
	return key
}

func keyID(key []byte) []byte {
	sum := sha256.Sum256(key)
	return sum[:8]
}

func nonce() []byte {
	n := make([]byte, nonceSize)
	if _, err := io.ReadFull(rand.Reader, n); err != nil {
		die(2, "%v", err)
	}
	return n
}

func stdin() []byte {
	b, err := io.ReadAll(os.Stdin)
	if err != nil {
		die(2, "%v", err)
	}
	return b
}

func out(b []byte) {
	if _, err := os.Stdout.Write(b); err != nil {
		die(2, "%v", err)
	}
}

// ad2: the associated data of format 2.
func ad2(header []byte, repo, branch, state string) []byte {
	ad := append([]byte{}, header...)
	for _, f := range []string{repo, branch} {
		ad = binary.BigEndian.AppendUint32(ad, uint32(len(f)))
		ad = append(ad, f...)
	}
	return append(ad, state...)
}

func main() {
	if len(os.Args) < 3 {
		die(2, "usage: refcrypt ref-encrypt|ref-decrypt PASSPHRASE, tfgit-encrypt|tfgit-decrypt KEYFILE STATEPATH, key-id KEYFILE")
	}
	switch cmd := os.Args[1]; cmd {
	case "ref-encrypt":
		n := nonce()
		out(gcm(refKey(os.Args[2])).Seal(n, n, stdin(), nil))
	case "ref-decrypt":
		blob := stdin()
		if len(blob) < nonceSize+tagSize {
			die(1, "blob shorter than nonce and tag")
		}
		plain, err := gcm(refKey(os.Args[2])).Open(nil, blob[:nonceSize], blob[nonceSize:], nil)
		if err != nil {
			die(1, "authentication failed: wrong passphrase or damaged blob")
		}
		out(plain)
	case "key-id":
		fmt.Println(hex.EncodeToString(keyID(readKeyFile(os.Args[2]))))
	case "tfgit-encrypt", "tfgit-decrypt", "tfgit2-encrypt", "tfgit2-decrypt":
		v, nargs, what := byte(version), 4, "KEYFILE STATEPATH"
		if strings.HasPrefix(cmd, "tfgit2-") {
			v, nargs, what = version2, 6, "KEYFILE REPOID BRANCH STATEPATH"
		}
		if len(os.Args) != nargs {
			die(2, "usage: refcrypt %s %s", cmd, what)
		}
		key := readKeyFile(os.Args[2])
		a := gcm(key)
		ad := func(header []byte) []byte {
			if v == version {
				return append(append([]byte{}, header...), os.Args[3]...)
			}
			return ad2(header, os.Args[3], os.Args[4], os.Args[5])
		}
		if strings.HasSuffix(cmd, "-encrypt") {
			header := append(append(append([]byte(magic), v), keyID(key)...), nonce()...)
			out(a.Seal(header, header[headerLen-nonceSize:], stdin(), ad(header)))
			return
		}
		blob := stdin()
		if len(blob) < headerLen+tagSize || string(blob[:len(magic)]) != magic {
			die(1, "not a tfgit blob (too short or no magic)")
		}
		if blob[len(magic)] != v {
			die(1, "format version %d, not %d", blob[len(magic)], v)
		}
		if id := blob[len(magic)+1 : len(magic)+9]; !bytes.Equal(id, keyID(key)) {
			die(1, "blob is under key id %x, not %x", id, keyID(key))
		}
		plain, err := a.Open(nil, blob[headerLen-nonceSize:headerLen], blob[headerLen:], ad(blob[:headerLen]))
		if err != nil {
			die(1, "authentication failed: wrong key, repository, branch or state path, or damaged blob")
		}
		out(plain)
	default:
		die(2, "unknown subcommand %q", cmd)
	}
}
