/* Lookups in the generated descriptor data (descriptor-set.h): binary
 * searches over tables sorted at build time. */
#include <errno.h>
#include <string.h>

#include "descriptor-set.h"

int descset_find_file(const char *name)
{
	size_t lo = 0, hi = descset_n_files;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, descset_names + descset_files[mid].name);
		if (c == 0)
			return (int)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -ENOENT;
}

int descset_find_symbol(const char *name, enum descset_kind *ret_kind)
{
	size_t lo = 0, hi = descset_n_symbols;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct descset_symbol *s = &descset_symbols[mid];
		int c = strcmp(name, descset_names + s->name);
		if (c == 0) {
			if (ret_kind)
				*ret_kind = s->kind;
			return s->file;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -ENOENT;
}

const char *descset_file_name(unsigned file)
{
	return descset_names + descset_files[file].name;
}

const uint8_t *descset_file_bytes(unsigned file, size_t *ret_size)
{
	*ret_size = descset_files[file].size;
	return descset_bytes + descset_files[file].data;
}

const uint16_t *descset_file_deps(unsigned file, size_t *ret_n)
{
	*ret_n = descset_files[file].n_deps;
	return descset_deps + descset_files[file].deps;
}
