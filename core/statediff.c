/* What changed between two versions of a state, by Terraform resource address: added,
 * removed, changed (and which attribute names changed). Values are never reported. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "tfgit.h"

struct instance {
	char address[1024];
	json_object *attributes; /* borrowed from the parsed state */
};

static json_object *parse(const char *s, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = tok ? json_tokener_parse_ex(tok, s, (int)len) : NULL;
	json_tokener_free(tok);
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static const char *str(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ?
		       json_object_get_string(v) : NULL;
}

/* Every resource instance of a state, with its address as Terraform prints it. */
static size_t instances(json_object *state, struct instance **out)
{
	json_object *resources, *r, *insts, *in, *key;
	size_t n = 0, cap = 0;
	*out = NULL;
	if (!json_object_object_get_ex(state, "resources", &resources) ||
	    !json_object_is_type(resources, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(resources); i++) {
		r = json_object_array_get_idx(resources, i);
		const char *mode = str(r, "mode"), *type = str(r, "type"), *name = str(r, "name"), *module = str(r, "module");
		if (!type || !name || !json_object_object_get_ex(r, "instances", &insts) ||
		    !json_object_is_type(insts, json_type_array))
			continue;
		for (size_t k = 0; k < json_object_array_length(insts); k++) {
			if (n == cap) {
				cap = cap ? cap * 2 : 32;
				struct instance *l = realloc(*out, cap * sizeof(*l));
				if (!l)
					return n;
				*out = l;
			}
			in = json_object_array_get_idx(insts, k);
			struct instance *x = &(*out)[n++];
			int len = snprintf(x->address, sizeof(x->address), "%s%s%s%s.%s", module ? module : "",
					   module ? "." : "", mode && !strcmp(mode, "data") ? "data." : "", type, name);
			if (json_object_object_get_ex(in, "index_key", &key) && len > 0 && (size_t)len < sizeof(x->address))
				snprintf(x->address + len, sizeof(x->address) - (size_t)len,
					 json_object_is_type(key, json_type_string) ? "[\"%s\"]" : "[%s]",
					 json_object_get_string(key));
			if (!json_object_object_get_ex(in, "attributes", &x->attributes))
				x->attributes = NULL;
		}
	}
	return n;
}

static const struct instance *find(const struct instance *l, size_t n, const char *address)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(l[i].address, address))
			return &l[i];
	return NULL;
}

static int add(tfgit_diff_entry **list, size_t *n, size_t *cap, char kind, const char *address, const char *attrs)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 32;
		tfgit_diff_entry *l = realloc(*list, *cap * sizeof(*l));
		if (!l)
			return -1;
		*list = l;
	}
	tfgit_diff_entry *e = &(*list)[(*n)++];
	e->kind = kind;
	snprintf(e->address, sizeof(e->address), "%s", address);
	snprintf(e->attributes, sizeof(e->attributes), "%s", attrs ? attrs : "");
	return 0;
}

/* The names of the attributes whose values differ (or that one side lacks), comma-separated. */
static void changed_names(char *out, size_t outlen, json_object *a, json_object *b)
{
	size_t o = 0;
	out[0] = '\0';
	json_object_object_foreach(a, ka, va) {
		json_object *vb;
		if (!json_object_object_get_ex(b, ka, &vb) || !json_object_equal(va, vb))
			o += (size_t)snprintf(out + o, o < outlen ? outlen - o : 0, "%s%s", o ? "," : "", ka);
	}
	json_object_object_foreach(b, kb, vbb) {
		(void)vbb;
		json_object *va2;
		if (!json_object_object_get_ex(a, kb, &va2))
			o += (size_t)snprintf(out + o, o < outlen ? outlen - o : 0, "%s%s", o ? "," : "", kb);
	}
}

int tfgit_state_diff(const char *a, size_t alen, const char *b, size_t blen, tfgit_diff_entry **list, size_t *n)
{
	json_object *sa = parse(a, alen), *sb = parse(b, blen);
	struct instance *ia = NULL, *ib = NULL;
	size_t na, nb, cap = 0;
	char names[1024];
	int rc = 0;
	*list = NULL;
	*n = 0;
	if (!sa || !sb) {
		rc = TFGIT_EINVALID;
		goto done;
	}
	na = instances(sa, &ia);
	nb = instances(sb, &ib);
	for (size_t i = 0; i < nb && rc == 0; i++) {
		const struct instance *old = find(ia, na, ib[i].address);
		if (!old)
			rc = add(list, n, &cap, '+', ib[i].address, NULL);
		else if (!json_object_equal(old->attributes, ib[i].attributes)) {
			changed_names(names, sizeof(names), old->attributes, ib[i].attributes);
			rc = add(list, n, &cap, '~', ib[i].address, names);
		}
	}
	for (size_t i = 0; i < na && rc == 0; i++)
		if (!find(ib, nb, ia[i].address))
			rc = add(list, n, &cap, '-', ia[i].address, NULL);
done:
	free(ia);
	free(ib);
	json_object_put(sa);
	json_object_put(sb);
	return rc;
}
