/* What a state holds and what changed between two versions of it, by Terraform resource
 * address: added, removed, changed (and which attribute names changed). Values are never
 * reported. The states are read in place (lockinfo.h's spans), not as json-c trees: memory
 * grows by one small record per resource instance whatever the values hold (a tree costs
 * about 800 bytes per JSON object, which a crafted state turns into gigabytes). Attribute
 * values are compared as written; Terraform writes the same value the same way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockinfo.h"
#include "../tfgit.h"

#define INSTANCES_MAX 250000 /* per state: beyond it a comparison is refused (TFGIT_ETOOLARGE) */
#define RESOURCES_LISTED 2000 /* a summary lists the first ones and counts the rest */

struct instance {
	char *address;
	json_span attributes;
};

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

/* A string member's text into out ("" when absent or not a string). */
static void member_text(char *out, size_t outlen, json_span obj, const char *name)
{
	json_span v = json_member(obj, name);
	if (!v.len || *v.ptr != '"' || json_span_text(out, outlen, v) < 0)
		out[0] = '\0';
}

/* A resource's address as Terraform prints it (module.x.data.type.name), without an instance
 * key; its length, or -1 when the resource has no type or name. */
static int resource_address(char *out, size_t outlen, json_span r)
{
	char mode[16], type[256], name[256], module[512];
	member_text(mode, sizeof(mode), r, "mode");
	member_text(type, sizeof(type), r, "type");
	member_text(name, sizeof(name), r, "name");
	member_text(module, sizeof(module), r, "module");
	if (!type[0] || !name[0])
		return -1;
	return snprintf(out, outlen, "%s%s%s%s.%s", module, module[0] ? "." : "", !strcmp(mode, "data") ? "data." : "",
			type, name);
}

/* The resources array of a state, or an empty span. */
static json_span resources_of(const char *json, size_t len, int *ok)
{
	state_top top;
	*ok = state_top_scan(&top, json, len) == 0;
	return top.resources;
}

static void free_instances(struct instance *l, size_t n)
{
	for (size_t i = 0; l && i < n; i++)
		free(l[i].address);
	free(l);
}

/* Every resource instance of a state with its address (an instance key as Terraform prints
 * it: ["name"] or [0]; a key of another kind, which Terraform never writes, as [?]). */
static int instances(const char *json, size_t len, struct instance **out, size_t *n)
{
	json_iter rs, is;
	json_span k, r, in;
	size_t cap = 0;
	int ok;
	*out = NULL;
	*n = 0;
	json_span resources = resources_of(json, len, &ok);
	if (!ok)
		return TFGIT_EINVALID;
	if (json_iter_init(&rs, resources) < 0)
		return 0;
	while (json_iter_next(&rs, &k, &r)) {
		char address[1024], key[512];
		int alen = resource_address(address, sizeof(address), r);
		if (alen < 0 || json_iter_init(&is, json_member(r, "instances")) < 0)
			continue;
		while (json_iter_next(&is, &k, &in)) {
			if (*n >= INSTANCES_MAX)
				return TFGIT_ETOOLARGE;
			if (grow((void **)out, &cap, *n, sizeof(**out)) < 0)
				return TFGIT_ERROR;
			json_span ik = json_member(in, "index_key");
			char text[240];
			key[0] = '\0';
			if (ik.len && *ik.ptr == '"' && json_span_text(text, sizeof(text), ik) >= 0) {
				size_t o = 0; /* ["…"] with " and \ escaped, as Terraform prints it */
				key[o++] = '[';
				key[o++] = '"';
				for (const char *t = text; *t; t++) {
					if (*t == '"' || *t == '\\')
						key[o++] = '\\';
					key[o++] = *t;
				}
				memcpy(key + o, "\"]", 3);
			} else if (ik.len && *ik.ptr != '{' && *ik.ptr != '[' && *ik.ptr != 'n' &&
				   json_span_text(key + 1, sizeof(key) - 2, ik) >= 0) {
				key[0] = '[';
				strcat(key, "]");
			} else if (ik.len && *ik.ptr != 'n') {
				snprintf(key, sizeof(key), "[?]");
			}
			struct instance *x = &(*out)[(*n)++];
			x->attributes = json_member(in, "attributes");
			if (asprintf(&x->address, "%s%s", address, key) < 0) {
				x->address = NULL;
				return TFGIT_ERROR;
			}
		}
	}
	return 0;
}

static int by_address(const void *a, const void *b)
{
	return strcmp(((const struct instance *)a)->address, ((const struct instance *)b)->address);
}

static int add(tfgit_diff_entry **list, size_t *n, size_t *cap, char kind, const char *address, const char *attrs)
{
	if (grow((void **)list, cap, *n, sizeof(**list)) < 0)
		return -1;
	tfgit_diff_entry *e = &(*list)[*n];
	e->kind = kind;
	e->address = strdup(address);
	e->attributes = strdup(attrs ? attrs : "");
	if (!e->address || !e->attributes) {
		free(e->address);
		free(e->attributes);
		return -1;
	}
	(*n)++;
	return 0;
}

static int same(json_span a, json_span b)
{
	return a.len == b.len && (!a.len || !memcmp(a.ptr, b.ptr, a.len));
}

/* The names of the attributes whose values differ (or that one side lacks), comma-separated,
 * cut to fit out. Attribute objects are small: each name is looked up in the other. */
static void changed_names(char *out, size_t outlen, json_span a, json_span b)
{
	json_iter it;
	json_span k, v;
	size_t o = 0;
	char name[256];
	out[0] = '\0';
	for (int side = 0; side < 2; side++) {
		json_span mine = side ? b : a, theirs = side ? a : b;
		if (json_iter_init(&it, mine) < 0 || !it.object)
			continue;
		while (json_iter_next(&it, &k, &v)) {
			if (json_span_text(name, sizeof(name), k) < 0)
				continue;
			json_span other = json_member(theirs, name);
			if ((side == 0 && (!other.len || !same(v, other))) || (side == 1 && !other.len))
				o += (size_t)snprintf(out + o, o < outlen ? outlen - o : 0, "%s%s", o ? "," : "", name);
		}
	}
}

void tfgit_diff_free(tfgit_diff_entry *list, size_t n)
{
	for (size_t i = 0; list && i < n; i++) {
		free(list[i].address);
		free(list[i].attributes);
	}
	free(list);
}

/* One change found: listed while fewer than max are, counted always. */
static int found(tfgit_diff_entry **list, size_t *n, size_t *cap, size_t max, size_t *total, char kind,
		 const char *address, const char *attrs)
{
	(*total)++;
	return *n < max ? add(list, n, cap, kind, address, attrs) : 0;
}

int tfgit_state_diff(const char *a, size_t alen, const char *b, size_t blen, size_t max, tfgit_diff_entry **list,
		     size_t *n, size_t *total)
{
	struct instance *ia = NULL, *ib = NULL;
	size_t na = 0, nb = 0, cap = 0, all = 0;
	char names[1024];
	*list = NULL;
	*n = 0;
	int rc = instances(a, alen, &ia, &na);
	if (rc == 0)
		rc = instances(b, blen, &ib, &nb);
	if (rc < 0)
		goto done;
	/* both sorted by address, walked side by side: n log n, whatever the size */
	if (na)
		qsort(ia, na, sizeof(*ia), by_address);
	if (nb)
		qsort(ib, nb, sizeof(*ib), by_address);
	for (size_t i = 0, k = 0; (i < na || k < nb) && rc == 0;) {
		int order = i == na ? 1 : k == nb ? -1 : strcmp(ia[i].address, ib[k].address);
		if (order < 0) {
			rc = found(list, n, &cap, max, &all, '-', ia[i++].address, NULL);
		} else if (order > 0) {
			rc = found(list, n, &cap, max, &all, '+', ib[k++].address, NULL);
		} else {
			if (!same(ia[i].attributes, ib[k].attributes)) {
				if (*n < max)
					changed_names(names, sizeof(names), ia[i].attributes, ib[k].attributes);
				rc = found(list, n, &cap, max, &all, '~', ib[k].address, names);
			}
			i++;
			k++;
		}
	}
	if (rc < 0)
		rc = TFGIT_ERROR;
done:
	if (rc < 0) {
		tfgit_diff_free(*list, *n);
		*list = NULL;
		*n = all = 0;
	}
	if (total)
		*total = all;
	free_instances(ia, na);
	free_instances(ib, nb);
	return rc;
}

int tfgit_state_summary(const char *json, size_t len, tfgit_resource **resources, size_t *nresources,
			size_t *total_resources, tfgit_output **outputs, size_t *noutputs)
{
	state_top top;
	json_iter it;
	json_span k, v;
	size_t cap = 0;
	int rc = 0;
	*resources = NULL;
	*outputs = NULL;
	*nresources = *noutputs = *total_resources = 0;
	if (state_top_scan(&top, json, len) < 0)
		return TFGIT_EINVALID;
	if (json_iter_init(&it, top.resources) == 0) {
		while (rc == 0 && json_iter_next(&it, &k, &v)) {
			char address[1024];
			if (resource_address(address, sizeof(address), v) < 0 || (*total_resources)++ >= RESOURCES_LISTED)
				continue;
			if (grow((void **)resources, &cap, *nresources, sizeof(**resources)) < 0) {
				rc = TFGIT_ERROR;
				break;
			}
			tfgit_resource *x = &(*resources)[(*nresources)++];
			long count = json_span_count(json_member(v, "instances"));
			snprintf(x->address, sizeof(x->address), "%s", address);
			member_text(x->mode, sizeof(x->mode), v, "mode");
			member_text(x->type, sizeof(x->type), v, "type");
			member_text(x->provider, sizeof(x->provider), v, "provider");
			x->instances = count > 0 ? (size_t)count : 0;
		}
	}
	cap = 0;
	if (rc == 0 && json_iter_init(&it, top.outputs) == 0 && it.object) {
		while (json_iter_next(&it, &k, &v)) {
			if (*noutputs >= RESOURCES_LISTED)
				break;
			if (grow((void **)outputs, &cap, *noutputs, sizeof(**outputs)) < 0) {
				rc = TFGIT_ERROR;
				break;
			}
			tfgit_output *x = &(*outputs)[(*noutputs)++];
			json_span sensitive = json_member(v, "sensitive");
			if (json_span_text(x->name, sizeof(x->name), k) < 0)
				x->name[0] = '\0';
			x->sensitive = sensitive.len == 4 && !memcmp(sensitive.ptr, "true", 4);
		}
	}
	if (rc < 0) {
		free(*resources);
		free(*outputs);
		*resources = NULL;
		*outputs = NULL;
		*nresources = *noutputs = 0;
	}
	return rc;
}
