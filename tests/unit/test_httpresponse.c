/* Unit tests of the HTTP/1.1 response reader behind tfgit's kept connections: a connection is
 * reused only after a response read to its last byte, and what cannot be framed for certain
 * is an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../core/net/httpresponse.h"

/* Reads text in one piece, then the end of the connection when eof: the body into body, the
 * last event; *rest: bytes left after the response. */
static hr_event read_text(http_response *h, const char *text, int eof, char *body, size_t *rest)
{
	size_t len = strlen(text), off = 0, n = 0;
	hr_event e;
	hr_init(h);
	body[0] = '\0';
	for (;;) {
		size_t used, blen;
		const char *b;
		e = hr_feed(h, text + off, len - off, &used, &b, &blen);
		off += used;
		if (e == HR_BODY) {
			memcpy(body + n, b, blen);
			n += blen;
			body[n] = '\0';
			continue;
		}
		if (e == HR_MORE && eof) /* everything consumed: the connection ends */
			e = hr_feed(h, "", 0, &used, &b, &blen);
		break;
	}
	*rest = len - off;
	return e;
}

static void reads_a_chunked_report_and_keeps_the_connection(void **st)
{
	(void)st;
	http_response h;
	char body[256];
	size_t rest;
	hr_event e = read_text(&h, "HTTP/1.1 200 OK\r\nContent-Type: application/x-git-receive-pack-result\r\n"
			       "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\nHTTP/1.1",
			       0, body, &rest);
	assert_int_equal(e, HR_DONE);
	assert_int_equal(h.status, 200);
	assert_int_equal(h.keep, 1);
	assert_string_equal(body, "hello world");
	assert_string_equal(h.content_type, "application/x-git-receive-pack-result");
	assert_int_equal(rest, 8); /* the next response's bytes are not consumed */
}

static void reads_a_length_and_skips_interim_answers(void **st)
{
	(void)st;
	http_response h;
	char body[256];
	size_t rest;
	assert_int_equal(read_text(&h, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc",
				   0, body, &rest), HR_DONE);
	assert_int_equal(h.status, 200);
	assert_string_equal(body, "abc");
	assert_int_equal(h.keep, 1);
}

/* the last bytes of a Content-Length body end the response at once: a reader that waited for
 * another event would block on a kept connection (the server sends nothing more) */
static void knows_the_end_with_the_last_body_bytes(void **st)
{
	(void)st;
	http_response h;
	const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", *b;
	size_t used, blen;
	hr_init(&h);
	assert_int_equal(hr_feed(&h, head, strlen(head), &used, &b, &blen), HR_MORE); /* the headers */
	assert_int_equal(hr_complete(&h), 0);
	assert_int_equal(hr_feed(&h, "abc", 3, &used, &b, &blen), HR_BODY);
	assert_int_equal(blen, 3);
	assert_int_equal(hr_complete(&h), 1);
}

static void closes_when_the_server_says_so_or_cannot_frame(void **st)
{
	(void)st;
	http_response h;
	char body[256];
	size_t rest;
	assert_int_equal(read_text(&h, "HTTP/1.1 401 No\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n",
				   0, body, &rest), HR_DONE);
	assert_int_equal(h.status, 401);
	assert_int_equal(h.keep, 0);
	/* until the close: complete only at the end of the connection, never reused */
	assert_int_equal(read_text(&h, "HTTP/1.1 200 OK\r\n\r\nabc", 1, body, &rest), HR_DONE);
	assert_string_equal(body, "abc");
	assert_int_equal(h.keep, 0);
	assert_int_equal(read_text(&h, "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 0, body, &rest), HR_DONE);
	assert_int_equal(h.keep, 0);
	assert_int_equal(read_text(&h, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n"
				   "1\r\nx\r\n0\r\n\r\n", 0, body, &rest), HR_DONE);
	assert_string_equal(body, "x");
	assert_int_equal(h.keep, 0);
}

static void refuses_what_it_cannot_frame(void **st)
{
	(void)st;
	http_response h;
	char body[256];
	size_t rest;
	const char *bad[] = {
		"HTTP/2 200 OK\r\n\r\n",
		"SSH-2.0-OpenSSH\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\n folded\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
		"HTTP/1.1 101 Switching\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", /* cut short by the close */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		hr_event e = read_text(&h, bad[i], 1, body, &rest);
		if (e != HR_ERROR)
			fail_msg("accepted: %s", bad[i]);
		assert_int_equal(h.keep, 0);
		assert_non_null(h.why);
	}
}

static void bounds_lines_and_headers(void **st)
{
	(void)st;
	http_response h;
	static char text[HR_HEADERS_MAX + 4096], body[64];
	size_t rest;
	strcpy(text, "HTTP/1.1 200 OK\r\nX: ");
	memset(text + strlen(text), 'a', HR_LINE_MAX);
	assert_int_equal(read_text(&h, text, 1, body, &rest), HR_ERROR);
	strcpy(text, "HTTP/1.1 200 OK\r\n");
	while (strlen(text) < HR_HEADERS_MAX + 100)
		strcat(text, "X-Filler: 0123456789abcdef0123456789abcdef\r\n");
	assert_int_equal(read_text(&h, text, 1, body, &rest), HR_ERROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reads_a_chunked_report_and_keeps_the_connection),
		cmocka_unit_test(reads_a_length_and_skips_interim_answers),
		cmocka_unit_test(knows_the_end_with_the_last_body_bytes),
		cmocka_unit_test(closes_when_the_server_says_so_or_cannot_frame),
		cmocka_unit_test(refuses_what_it_cannot_frame),
		cmocka_unit_test(bounds_lines_and_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
