/* Unit tests of the cross-site check: what a browser sends from another site is refused, what
 * Terraform, OpenTofu and a script send is not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../fcgi/crosssite.h"

static const char *server_port = "8080";

static int check(const char *site, const char *origin, const char *host, const char *scheme, const char *ct)
{
	char why[300];
	struct crosssite_headers h = {site, origin, host, scheme, server_port, ct};
	return crosssite_check(&h, why, sizeof(why));
}

static void terraform_and_scripts_pass(void **st)
{
	(void)st;
	assert_int_equal(check(NULL, NULL, "tfgit.example:8443", "https", "application/json"), 0);
	assert_int_equal(check(NULL, NULL, NULL, "http", NULL), 0); /* DELETE, force-unlock by curl */
	assert_int_equal(check(NULL, NULL, "h", "http", "application/json; charset=utf-8"), 0);
	assert_int_equal(check(NULL, NULL, "h", "http", "Application/JSON"), 0);
}

static void same_origin_browser_passes(void **st)
{
	(void)st;
	assert_int_equal(check("same-origin", "https://Tfgit.example:8080", "tfgit.example", "https", "application/json"), 0);
	assert_int_equal(check("none", NULL, "h", "http", "application/json"), 0);
	assert_int_equal(check(NULL, "http://127.0.0.1:8080", "127.0.0.1:8080", "http", "application/json"), 0);
}

static void cross_site_refused(void **st)
{
	(void)st;
	assert_int_equal(check("cross-site", NULL, "h", "http", "application/json"), 403);
	assert_int_equal(check("same-site", NULL, "h", "http", "application/json"), 403);
	assert_int_equal(check("", NULL, "h", "http", "application/json"), 403);
	assert_int_equal(check(NULL, "http://evil.example", "h", "http", "application/json"), 403);
	assert_int_equal(check(NULL, "null", "h", "http", "application/json"), 403);
	/* another scheme or port of the same host is another origin */
	assert_int_equal(check(NULL, "http://tfgit.example", "tfgit.example", "https", NULL), 403);
	assert_int_equal(check(NULL, "https://tfgit.example:444", "tfgit.example", "https", NULL), 403);
	/* a prefix or suffix of the host is not the host */
	assert_int_equal(check(NULL, "https://tfgit.example.evil", "tfgit.example", "https", NULL), 403);
	assert_int_equal(check(NULL, "https://tfgit.exampl", "tfgit.example", "https", NULL), 403);
	assert_int_equal(check(NULL, "https://x", NULL, "https", NULL), 403); /* no Host to compare with */
	assert_int_equal(check(NULL, "http://h:8080x", "h", "http", NULL), 403);
	assert_int_equal(check(NULL, "http://h:", "h:", "http", NULL), 403);
}

/* Debian's nginx passes HTTP_HOST without the port: SERVER_PORT, else the scheme's own */
static void port_from_server_port(void **st)
{
	(void)st;
	assert_int_equal(check(NULL, "http://127.0.0.1:8080", "127.0.0.1", "http", NULL), 0);
	assert_int_equal(check(NULL, "http://127.0.0.1:8081", "127.0.0.1", "http", NULL), 403);
	assert_int_equal(check(NULL, "http://127.0.0.1", "127.0.0.1", "http", NULL), 403);
	assert_int_equal(check(NULL, "http://[::1]:8080", "[::1]", "http", NULL), 0);
	assert_int_equal(check(NULL, "http://[::1]:8080", "[::1]:8080", "http", NULL), 0);
	assert_int_equal(check(NULL, "http://[::2]:8080", "[::1]", "http", NULL), 403);
	server_port = NULL;
	assert_int_equal(check(NULL, "https://h", "h", "https", NULL), 0);
	assert_int_equal(check(NULL, "https://h:443", "h", "https", NULL), 0);
	assert_int_equal(check(NULL, "http://h:80", "h", "http", NULL), 0);
	assert_int_equal(check(NULL, "https://h:80", "h", "https", NULL), 403);
	server_port = "8080";
}

static void simple_content_types_refused(void **st)
{
	(void)st;
	assert_int_equal(check(NULL, NULL, "h", "http", "text/plain"), 415);
	assert_int_equal(check(NULL, NULL, "h", "http", "text/plain;charset=UTF-8"), 415);
	assert_int_equal(check(NULL, NULL, "h", "http", "application/x-www-form-urlencoded"), 415);
	assert_int_equal(check(NULL, NULL, "h", "http", "multipart/form-data; boundary=x"), 415);
	assert_int_equal(check(NULL, NULL, "h", "http", "application/jsonx"), 415);
	assert_int_equal(check(NULL, NULL, "h", "http", ""), 415);
}

static void json_media_type(void **st)
{
	(void)st;
	assert_true(crosssite_is_json("application/json"));
	assert_true(crosssite_is_json(" application/json ;charset=utf-8"));
	assert_false(crosssite_is_json(NULL));
	assert_false(crosssite_is_json("application/json-seq"));
	assert_false(crosssite_is_json("text/json"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(terraform_and_scripts_pass),
		cmocka_unit_test(same_origin_browser_passes),
		cmocka_unit_test(cross_site_refused),
		cmocka_unit_test(port_from_server_port),
		cmocka_unit_test(simple_content_types_refused),
		cmocka_unit_test(json_media_type),
	};
	return cmocka_run_group_tests_name("crosssite", tests, NULL, NULL);
}
