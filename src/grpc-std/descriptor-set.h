/* The descriptors of every .proto file maitred serves, for server
 * reflection: built into the binary (scripts/descriptor-index.py writes the
 * data at build time from protoc-c's FileDescriptorSet), const and free of
 * relocations, so that no page of it is read before a reflection request
 * needs it. */
#pragma once

#include <stddef.h>
#include <stdint.h>

enum descset_kind {
	DESCSET_SERVICE,
	DESCSET_METHOD,
	DESCSET_MESSAGE,
	DESCSET_ENUM,
	DESCSET_ENUM_VALUE,
	DESCSET_FIELD,
	DESCSET_ONEOF,
	DESCSET_EXTENSION,
};

/* Offsets into the arrays below: name into descset_names, data into
 * descset_bytes, deps into descset_deps (n_deps file indexes: the file's
 * transitive imports, breadth first). */
struct descset_file {
	uint32_t name, data, size;
	uint16_t deps, n_deps;
};

struct descset_symbol {
	uint32_t name;
	uint16_t file;
	uint8_t kind; /* enum descset_kind */
};

/* Where the generated data lives. The kernel maps a file's pages in
 * 64 KiB blocks around each page read (fault-around), so data beside hot
 * read-only data counts in the RSS of a maitred that never reads it: in
 * .rodata these 32 KiB added 56 KiB to the idle RSS of the static build.
 * The linker's default script puts input sections named
 * .gcc_except_table.* after .eh_frame, at the end of the read-only
 * segment, where nothing is read while maitred idles (C has no exception
 * tables to share it with, and unwinders reach that section only through
 * .eh_frame's pointers): there the data costs no RSS until a reflection
 * request reads it. .lrodata, the ABI's own place for large read-only
 * data, is a segment after .bss, which breaks a static glibc's brk. */
#define DESCSET_SECTION __attribute__((section(".gcc_except_table.valet_descset")))

/* The generated data: files sorted by name, symbols by name (strcmp). */
extern const uint8_t descset_bytes[];
extern const char descset_names[];
extern const uint16_t descset_deps[];
extern const struct descset_file descset_files[];
extern const size_t descset_n_files;
extern const struct descset_symbol descset_symbols[];
extern const size_t descset_n_symbols;

/* The file's index, or -ENOENT. */
int descset_find_file(const char *name);
/* The index of the file that defines the fully-qualified name
 * ("vm_tools.Maitred", "vm_tools.Maitred.Mount", "valet.v1.WriteRequest"),
 * its kind in *ret_kind (may be NULL); -ENOENT when no file does. */
int descset_find_symbol(const char *name, enum descset_kind *ret_kind);
const char *descset_file_name(unsigned file);
/* A file's serialized FileDescriptorProto. */
const uint8_t *descset_file_bytes(unsigned file, size_t *ret_size);
/* A file's transitive imports (file indexes), breadth first. */
const uint16_t *descset_file_deps(unsigned file, size_t *ret_n);
