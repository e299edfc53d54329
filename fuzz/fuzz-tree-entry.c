/* valet.v1.Files' tree entries as a peer sends them (WriteTree's
 * TreeEntry), through files_tree_entry_check(), which decides whether an
 * entry may be written beneath the root at all. An accepted entry's path
 * is relative with no empty, "." or ".." component and no NUL; its type,
 * mode and the fields of its type are consistent.
 *
 * Input: the first byte picks the form. 'P': the rest is a TreeRequest in
 * protobuf, converted as the service converts it (strings end at a NUL
 * there, as protobuf-c gives them). Otherwise the raw form with explicit lengths:
 * type (1 byte), mode (4), size (8), has_mtime (1), then path, symlink
 * target and hardlink_to separated by 0xff bytes (NULs kept). */
#include <errno.h>
#include <string.h>

#include "files-service/convert.h"
#include "files/tree.h"
#include "fuzz.h"
#include "valet/v1/files.pb-c.h"

static bool component_ok(const char *p, size_t n)
{
	return n > 0 && !(n == 1 && p[0] == '.') && !(n == 2 && p[0] == '.' && p[1] == '.');
}

static void check_accepted(const struct files_tree_entry *e)
{
	FUZZ_CHECK(e->path && e->path_len > 0 && strlen(e->path) == e->path_len);
	FUZZ_CHECK(e->path[0] != '/');
	for (const char *p = e->path;;) {
		const char *s = strchr(p, '/');
		size_t n = s ? (size_t)(s - p) : strlen(p);
		FUZZ_CHECK(component_ok(p, n));
		if (!s)
			break;
		p = s + 1;
	}
	FUZZ_CHECK(e->type == FILES_TYPE_FILE || e->type == FILES_TYPE_DIRECTORY || e->type == FILES_TYPE_SYMLINK);
	FUZZ_CHECK((e->mode & ~07777u) == 0);
	if (e->type == FILES_TYPE_SYMLINK)
		FUZZ_CHECK(e->symlink_target_len > 0 && strlen(e->symlink_target) == e->symlink_target_len);
	else
		FUZZ_CHECK(e->symlink_target_len == 0);
	if (e->hardlink_to_len) {
		FUZZ_CHECK(e->type == FILES_TYPE_FILE && e->size == 0);
		FUZZ_CHECK(e->hardlink_to[0] != '/' && strlen(e->hardlink_to) == e->hardlink_to_len);
	}
}

static void check(const struct files_tree_entry *e)
{
	struct files_err err = { "" };
	int r = files_tree_entry_check(e, &err);
	if (r == 0)
		check_accepted(e);
	else
		FUZZ_CHECK(r == -EINVAL && err.msg[0]);
}

static void from_protobuf(const uint8_t *data, size_t size)
{
	Valet__V1__TreeRequest *m = valet__v1__tree_request__unpack(NULL, size, data);
	if (!m)
		return;
	if (m->part_case == VALET__V1__TREE_REQUEST__PART_ENTRY && m->entry) {
		struct files_tree_entry e;
		/* The service's own conversion (files-service/convert.c). */
		if (fsvc_entry_from_pb(m->entry, &e) == 0)
			check(&e);
		else
			FUZZ_CHECK(m->entry->mtime &&
				   (m->entry->mtime->nanos < 0 || m->entry->mtime->nanos > 999999999));
	}
	valet__v1__tree_request__free_unpacked(m, NULL);
}

static uint64_t take_le(const uint8_t **p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)(*p)[i] << (8 * i);
	*p += n;
	return v;
}

static void from_raw(const uint8_t *data, size_t size)
{
	if (size < 14)
		return;
	const uint8_t *p = data;
	struct files_tree_entry e = { 0 };
	e.type = (enum files_type)take_le(&p, 1);
	e.mode = (uint32_t)take_le(&p, 4);
	e.size = take_le(&p, 8);
	e.has_mtime = take_le(&p, 1) & 1;
	size_t rest = size - 14;
	/* Each string its own heap block, NUL-terminated after its length, so
	 * ASan sees any read past it. */
	char *s[3] = { NULL, NULL, NULL };
	size_t len[3] = { 0, 0, 0 };
	for (int i = 0; i < 3; i++) {
		const uint8_t *end = memchr(p, 0xff, rest);
		size_t n = end ? (size_t)(end - p) : rest;
		s[i] = malloc(n + 1);
		FUZZ_CHECK(s[i]);
		memcpy(s[i], p, n);
		s[i][n] = '\0';
		len[i] = n;
		p += end ? n + 1 : n;
		rest -= end ? n + 1 : n;
	}
	e.path = s[0];
	e.path_len = len[0];
	if (len[1]) {
		e.symlink_target = s[1];
		e.symlink_target_len = len[1];
	}
	if (len[2]) {
		e.hardlink_to = s[2];
		e.hardlink_to_len = len[2];
	}
	check(&e);
	for (int i = 0; i < 3; i++)
		free(s[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0 && data[0] == 'P')
		from_protobuf(data + 1, size - 1);
	else
		from_raw(data, size);
	return 0;
}
