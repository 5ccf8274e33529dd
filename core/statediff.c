/* What a state holds and what changed between two versions of it, by Terraform resource
 * address: added, removed, changed (and which attribute names changed). Values are never
 * reported. */
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

/* A resource's address as Terraform prints it (module.x.data.type.name), without an instance
 * key; its length, or -1 when the resource has no type or name. */
static int resource_address(char *out, size_t outlen, json_object *r)
{
	const char *mode = str(r, "mode"), *type = str(r, "type"), *name = str(r, "name"), *module = str(r, "module");
	if (!type || !name)
		return -1;
	return snprintf(out, outlen, "%s%s%s%s.%s", module ? module : "", module ? "." : "",
			mode && !strcmp(mode, "data") ? "data." : "", type, name);
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
		char address[1024];
		int len = resource_address(address, sizeof(address), r);
		if (len < 0 || !json_object_object_get_ex(r, "instances", &insts) ||
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
			snprintf(x->address, sizeof(x->address), "%s", address);
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

static int by_address(const void *a, const void *b)
{
	return strcmp(((const struct instance *)a)->address, ((const struct instance *)b)->address);
}

/* list (n of *cap elements of size bytes used) with room for one more; -1 when out of memory. */
static int grow(void **list, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 16;
	void *l = realloc(*list, ncap * size);
	if (!l)
		return -1;
	*list = l;
	*cap = ncap;
	return 0;
}

static int add(tfgit_diff_entry **list, size_t *n, size_t *cap, char kind, const char *address, const char *attrs)
{
	if (grow((void **)list, cap, *n, sizeof(**list)) < 0)
		return -1;
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
	/* both sorted by address, walked side by side: n log n, whatever the size */
	if (na)
		qsort(ia, na, sizeof(*ia), by_address);
	if (nb)
		qsort(ib, nb, sizeof(*ib), by_address);
	for (size_t i = 0, k = 0; (i < na || k < nb) && rc == 0;) {
		int order = i == na ? 1 : k == nb ? -1 : strcmp(ia[i].address, ib[k].address);
		if (order < 0) {
			rc = add(list, n, &cap, '-', ia[i++].address, NULL);
		} else if (order > 0) {
			rc = add(list, n, &cap, '+', ib[k++].address, NULL);
		} else {
			if (!json_object_equal(ia[i].attributes, ib[k].attributes)) {
				changed_names(names, sizeof(names), ia[i].attributes, ib[k].attributes);
				rc = add(list, n, &cap, '~', ib[k].address, names);
			}
			i++;
			k++;
		}
	}
done:
	free(ia);
	free(ib);
	json_object_put(sa);
	json_object_put(sb);
	return rc;
}

int tfgit_state_summary(const char *json, size_t len, tfgit_resource **resources, size_t *nresources,
			tfgit_output **outputs, size_t *noutputs)
{
	json_object *state = parse(json, len), *list, *v;
	size_t cap = 0;
	int rc = 0;
	*resources = NULL;
	*outputs = NULL;
	*nresources = *noutputs = 0;
	if (!state)
		return TFGIT_EINVALID;
	if (json_object_object_get_ex(state, "resources", &list) && json_object_is_type(list, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(list) && rc == 0; i++) {
			json_object *r = json_object_array_get_idx(list, i);
			char address[1024];
			if (resource_address(address, sizeof(address), r) < 0)
				continue;
			if (grow((void **)resources, &cap, *nresources, sizeof(**resources)) < 0) {
				rc = TFGIT_ERROR;
				break;
			}
			tfgit_resource *x = &(*resources)[(*nresources)++];
			const char *mode = str(r, "mode"), *type = str(r, "type"), *provider = str(r, "provider");
			snprintf(x->address, sizeof(x->address), "%s", address);
			snprintf(x->mode, sizeof(x->mode), "%s", mode ? mode : "");
			snprintf(x->type, sizeof(x->type), "%s", type ? type : "");
			snprintf(x->provider, sizeof(x->provider), "%s", provider ? provider : "");
			x->instances = json_object_object_get_ex(r, "instances", &v) && json_object_is_type(v, json_type_array) ?
					       json_object_array_length(v) : 0;
		}
	}
	cap = 0;
	if (rc == 0 && json_object_object_get_ex(state, "outputs", &list) && json_object_is_type(list, json_type_object)) {
		json_object_object_foreach(list, name, out) {
			if (grow((void **)outputs, &cap, *noutputs, sizeof(**outputs)) < 0) {
				rc = TFGIT_ERROR;
				break;
			}
			tfgit_output *x = &(*outputs)[(*noutputs)++];
			snprintf(x->name, sizeof(x->name), "%s", name);
			x->sensitive = json_object_object_get_ex(out, "sensitive", &v) && json_object_get_boolean(v);
		}
	}
	json_object_put(state);
	return rc;
}
