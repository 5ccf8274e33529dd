/* Unit tests of lock info parsing and the JSON body check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../core/format/lockinfo.h"
#include "../../core/tfgit.h"

#define S(x) x, strlen(x)

static void reads_terraform_lock_info(void **st)
{
	(void)st;
	lockinfo li;
	assert_int_equal(lockinfo_parse(&li, S("{\"ID\":\"0b0c-11\",\"Operation\":\"OperationTypeApply\","
					       "\"Info\":\"\",\"Who\":\"me@host\",\"Version\":\"1.11.4\","
					       "\"Created\":\"2026-01-01T00:00:00.000000001Z\",\"Path\":\"\"}")), 0);
	assert_string_equal(li.id, "0b0c-11");
	assert_string_equal(li.who, "me@host");
	assert_string_equal(li.operation, "OperationTypeApply");
}

static void id_may_be_absent_or_empty(void **st)
{
	(void)st;
	lockinfo li;
	assert_int_equal(lockinfo_parse(&li, S("{\"Who\":\"x\"}")), 0);
	assert_string_equal(li.id, "");
	assert_int_equal(lockinfo_parse(&li, S("{\"ID\":\"\",\"Created\":\"0001-01-01T00:00:00Z\"}")), 0);
	assert_string_equal(li.id, "");
}

static void refuses_what_is_not_lock_json(void **st)
{
	(void)st;
	lockinfo li;
	assert_int_equal(lockinfo_parse(&li, S("")), TFGIT_EINVALID);
	assert_int_equal(lockinfo_parse(&li, S("[1]")), TFGIT_EINVALID);
	assert_int_equal(lockinfo_parse(&li, S("{\"ID\":42}")), TFGIT_EINVALID);
	assert_int_equal(lockinfo_parse(&li, S("{\"ID\":\"a\"} trailing")), TFGIT_EINVALID);
	assert_int_equal(lockinfo_parse(&li, S("{\"ID\":\"a\"")), TFGIT_EINVALID);
	char longid[600];
	snprintf(longid, sizeof(longid), "{\"ID\":\"%0400d\"}", 1);
	assert_int_equal(lockinfo_parse(&li, S(longid)), TFGIT_EINVALID);
}

/* IDs are compared byte for byte: kept as sent (the log and trailers escape them) */
static void fields_are_kept_byte_for_byte(void **st)
{
	(void)st;
	lockinfo li;
	assert_int_equal(lockinfo_parse(&li, S("{\"ID\":\"I1\\nX\",\"Who\":\"me\\nSigned-off-by: x\"}")), 0);
	assert_string_equal(li.id, "I1\nX");
	assert_string_not_equal(li.id, "I1 X");
	assert_non_null(strchr(li.who, '\n'));
	/* a NUL inside an ID would make two IDs look equal */
	assert_int_equal(lockinfo_parse(&li, S("{\"ID\":\"I1\\u0000X\"}")), TFGIT_EINVALID);
}

static void states_are_told_from_other_json(void **st)
{
	(void)st;
	assert_int_equal(json_is_state(S("{\"version\":4,\"terraform_version\":\"1.11.4\",\"serial\":3,"
					 "\"lineage\":\"l\",\"outputs\":{},\"resources\":[]}")), 1);
	assert_int_equal(json_is_state(S("{\"serial\":1}")), 0);
	assert_int_equal(json_is_state(S("{\"name\":\"pkg\",\"version\":\"1.0.0\"}")), 0);
	assert_int_equal(json_is_state(S("{\"resource\":{\"version\":1,\"serial\":2,\"lineage\":3}}")), 0);
	assert_int_equal(json_is_state(S("{\"version\":4,\"serial\":1,\"lineage\":\"l\"")), 0);
	assert_int_equal(json_is_state(S("stages: [build]")), 0);
	/* OpenTofu's client-side encrypted state */
	assert_int_equal(json_is_state(S("{\"serial\":2,\"lineage\":\"l\",\"meta\":{},\"encrypted_data\":\"AAA=\","
					 "\"encryption_version\":\"v0\"}")), 1);
	assert_int_equal(json_is_state(S("{\"meta\":{},\"encrypted_data\":\"AAA=\",\"encryption_version\":\"v0\"}")), 1);
	/* what a hostile writer would put in a state's place: configuration, a pipeline */
	assert_int_equal(json_state_check(S("{\"resource\":{\"terraform_data\":{\"x\":{}}}}")), 0);
	assert_int_equal(json_state_check(S("{\"trigger\":[\"main\"],\"steps\":[]}")), 0);
	assert_int_equal(json_state_check(S("{\"serial\":1,\"lineage\":\"l\"}")), 1);
	assert_int_equal(json_state_check(S("[1]")), TFGIT_EINVALID);
}

static void json_check_bounds_depth(void **st)
{
	(void)st;
	char deep[1024] = "", shallow[1024] = "";
	for (int i = 0; i < 100; i++)
		strcat(deep, "{\"a\":");
	strcat(deep, "1");
	for (int i = 0; i < 100; i++)
		strcat(deep, "}");
	for (int i = 0; i < 10; i++)
		strcat(shallow, "{\"a\":");
	strcat(shallow, "1");
	for (int i = 0; i < 10; i++)
		strcat(shallow, "}");
	assert_int_equal(json_object_check(S(deep)), TFGIT_EINVALID);
	assert_int_equal(json_object_check(S(shallow)), 0);
	assert_int_equal(json_object_check(S("{\"version\":4}\n")), 0);
	assert_int_equal(json_object_check(S("\"string\"")), TFGIT_EINVALID);
	assert_int_equal(json_object_check(S("{\"a\":1,}")), TFGIT_EINVALID);
	assert_int_equal(json_object_check(S("{'single':1}")), TFGIT_EINVALID);
	assert_int_equal(json_object_check(S("{}")), 0);
	assert_int_equal(json_object_check(S(" {\"a\":[1,-2.5e+3,0.1,true,false,null,\"x\\u00e9\\n\",{},[]]} ")), 0);
	assert_int_equal(json_object_check(S("{\"a\":[1,2,]}")), TFGIT_EINVALID);
	assert_int_equal(json_object_check(S("{\"a\":1}{}")), TFGIT_EINVALID);
	assert_int_equal(json_object_check(S("{\"a\" 1}")), TFGIT_EINVALID);
	assert_int_equal(json_object_check(S("{1:1}")), TFGIT_EINVALID);
	assert_int_equal(json_object_check(S("{\"a\":\"tab\there\"}")), TFGIT_EINVALID);
	assert_int_equal(json_object_check(S("{\"a\":\"\\x\"}")), TFGIT_EINVALID);
	assert_int_equal(json_object_check(S("{\"a\":\"\\u12\"}")), TFGIT_EINVALID);
	assert_int_equal(json_object_check(S("{\"a\":-}")), TFGIT_EINVALID);
	assert_int_equal(json_object_check(S("{\"a\":1.}")), TFGIT_EINVALID);
	assert_int_equal(json_object_check(S("{\"a\":tru}")), TFGIT_EINVALID);
	assert_int_equal(json_object_check(S("{\"a\":[}")), TFGIT_EINVALID);
	assert_int_equal(json_object_check(S("{\"a\":\"unterminated}")), TFGIT_EINVALID);
	assert_int_equal(json_object_check(S("[1]")), TFGIT_EINVALID);
	assert_int_equal(json_object_check(S("{\"a\":01}")), TFGIT_EINVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reads_terraform_lock_info),
		cmocka_unit_test(id_may_be_absent_or_empty),
		cmocka_unit_test(refuses_what_is_not_lock_json),
		cmocka_unit_test(fields_are_kept_byte_for_byte),
		cmocka_unit_test(states_are_told_from_other_json),
		cmocka_unit_test(json_check_bounds_depth),
	};
	return cmocka_run_group_tests_name("lockinfo", tests, NULL, NULL);
}
