/* Fuzz target: the JSON syntax check of request bodies. Beyond not crashing, it checks that a
 * body accepted by the check is also accepted by json-c (the check must never be looser than a
 * real parser on what it lets into git). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "../../core/format/lockinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (json_object_check((const char *)data, size) != 0 || size > (1 << 20))
		return 0;
	json_tokener *tok = json_tokener_new_ex(JSON_DEPTH_MAX + 1);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	json_object *obj = json_tokener_parse_ex(tok, (const char *)data, (int)size);
	int ok = obj && json_tokener_get_error(tok) == json_tokener_success;
	json_object_put(obj);
	json_tokener_free(tok);
	if (!ok)
		abort(); /* accepted by the check, refused by json-c */
	return 0;
}
