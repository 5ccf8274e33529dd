/* The log and the messages clients see: every line escaped so no field can forge another line,
 * and every secret the process knows replaced by *** whatever characters it holds. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

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

#define JSON_MEMBER_MAX 16384

/* Replaces noted secrets in obj's string members (and those of its objects), in place. */
static void redact_members(json_object *obj, int depth)
{
	char buf[JSON_MEMBER_MAX];
	json_object_object_foreach(obj, key, val) {
		if (json_object_is_type(val, json_type_object) && depth < 2) {
			redact_members(val, depth + 1);
		} else if (json_object_is_type(val, json_type_string)) {
			snprintf(buf, sizeof(buf), "%s", json_object_get_string(val));
			secrets_redact(buf);
			if (strcmp(buf, json_object_get_string(val)) != 0)
				json_object_object_add(obj, key, json_object_new_string(buf));
		}
	}
}

void tfgit_log_json(struct json_object *obj)
{
	size_t len = 0;
	redact_members(obj, 0);
	const char *text = json_object_to_json_string_length(
		obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (!text)
		return;
	char *line = malloc(len + 1);
	if (!line)
		return;
	memcpy(line, text, len);
	for (size_t i = 0; i < len; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' '; /* json-c escapes them in strings: never reached */
	line[len] = '\n';
	/* one write: lines of concurrent workers never interleave */
	ssize_t w = write(STDERR_FILENO, line, len + 1);
	(void)w;
	free(line);
}

const char *url_userinfo_at(const char *url, const char **authority, const char *stops)
{
	const char *scheme = url ? strstr(url, "://") : NULL;
	const char *at = NULL;
	*authority = scheme ? scheme + 3 : url;
	if (!scheme)
		return NULL;
	for (const char *c = *authority; *c && !strchr(stops, *c); c++)
		if (*c == '@')
			at = c;
	return at;
}
