/* The log and the messages clients see: every line escaped so no field can forge another line,
 * and every secret the process knows replaced by *** whatever characters it holds. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "tfgit.h"

#define SECRETS_MAX 16
#define SECRET_MIN 4 /* shorter ones would blank out ordinary words of a message */
#define LINE_MAX_BYTES 8192

/* Secrets noted so far (passwords, tokens, URL passwords), newest last; copies owned here. */
static char *secrets[SECRETS_MAX];
static size_t nsecrets;

void tfgit_secret_note(const char *s)
{
	if (!s || strlen(s) < SECRET_MIN)
		return;
	for (size_t i = 0; i < nsecrets; i++)
		if (strcmp(secrets[i], s) == 0)
			return;
	char *copy = strdup(s);
	if (!copy)
		return;
	if (nsecrets == SECRETS_MAX) { /* a rotated file's old value goes first */
		explicit_bzero(secrets[0], strlen(secrets[0]));
		free(secrets[0]);
		memmove(secrets, secrets + 1, (SECRETS_MAX - 1) * sizeof(*secrets));
		nsecrets--;
	}
	secrets[nsecrets++] = copy;
}

void secrets_redact(char *text)
{
	for (size_t i = 0; i < nsecrets; i++) {
		size_t n = strlen(secrets[i]);
		for (char *p = text; (p = strstr(p, secrets[i])) != NULL; p += 3) {
			memcpy(p, "***", 3);
			memmove(p + 3, p + n, strlen(p + n) + 1);
		}
	}
}

size_t tfgit_escape(char *out, size_t outlen, const char *in, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (!outlen)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		char e[5];
		size_t n = 0;
		if (c == '\\') {
			e[n++] = '\\';
			e[n++] = '\\';
		} else if (c == '\n' || c == '\r' || c == '\t') {
			e[n++] = '\\';
			e[n++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
		} else if (c < 0x20 || c == 0x7f) {
			e[n++] = '\\';
			e[n++] = 'x';
			e[n++] = hex[c >> 4];
			e[n++] = hex[c & 15];
		} else {
			e[n++] = (char)c;
		}
		if (o + n >= outlen)
			break;
		memcpy(out + o, e, n);
		o += n;
	}
	out[o] = '\0';
	return o;
}

static void vlog(const char *fmt, va_list ap)
{
	char raw[LINE_MAX_BYTES], line[LINE_MAX_BYTES + 64];
	vsnprintf(raw, sizeof(raw), fmt, ap);
	secrets_redact(raw);
	int head = snprintf(line, sizeof(line), "tfgit[%ld]: ", (long)getpid());
	size_t n = (size_t)head + tfgit_escape(line + head, sizeof(line) - (size_t)head - 1, raw, strlen(raw));
	line[n++] = '\n';
	/* one write: lines of concurrent workers never interleave */
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}

void core_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

void tfgit_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

void result_message(tfgit_result *r, const char *fmt, ...)
{
	va_list ap;
	if (!r)
		return;
	va_start(ap, fmt);
	vsnprintf(r->message, sizeof(r->message), fmt, ap);
	va_end(ap);
	secrets_redact(r->message);
}
