/* Unit tests of the one mapping from core codes to HTTP statuses, and of Content-MD5. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../fcgi/response.h"

static void every_code_has_its_status(void **st)
{
	(void)st;
	assert_int_equal(status_for(TFGIT_OK), 200);
	assert_int_equal(status_for(TFGIT_ENOTFOUND), 204);
	assert_int_equal(status_for(TFGIT_ELOCKED), 409);
	assert_int_equal(status_for(TFGIT_ENOLOCK), 428);
	assert_int_equal(status_for(TFGIT_EINVALID), 400);
	assert_int_equal(status_for(TFGIT_EFORBIDDEN), 403);
	assert_int_equal(status_for(TFGIT_EDENIED), 502);
	assert_int_equal(status_for(TFGIT_EUNREACHABLE), 503);
	assert_int_equal(status_for(TFGIT_ECONFLICT), 503);
	assert_int_equal(status_for(TFGIT_ETIMEOUT), 504);
	assert_int_equal(status_for(TFGIT_ENOSPACE), 507);
	assert_int_equal(status_for(TFGIT_ERROR), 500);
	assert_int_equal(status_for(-99), 500);
}

static void content_md5_is_base64_of_raw_md5(void **st)
{
	(void)st;
	char out[32];
	content_md5(out, "", 0);
	assert_string_equal(out, "1B2M2Y8AsgTpgAmY7PhCfg==");
	content_md5(out, "{\"version\":4}", 13);
	assert_int_equal(strlen(out), 24);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_code_has_its_status),
		cmocka_unit_test(content_md5_is_base64_of_raw_md5),
	};
	return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
