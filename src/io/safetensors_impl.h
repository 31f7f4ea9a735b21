// Library-private parts shared by the safetensors writer (safetensors.c) and reader
// (safetensors_load.c). The format itself is described at the top of safetensors.c.
#ifndef NABLA_IO_SAFETENSORS_IMPL_H
#define NABLA_IO_SAFETENSORS_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nabla/io.h"
#include "nabla/tensor.h"

// The reference implementation's header limit; it also caps what a lying header can make a
// reader allocate.
#define NB_ST_MAX_HEADER 100000000u

// The format's name for a nabla dtype ("F32", "F64", "I32", "I64"); NULL for anything else.
const char *nb__st_dtype_name(nb_dtype d);
// Thread-safe text for errno e (EIO when e is 0: a short read or write without errno).
const char *nb__os_reason(int e, char *buf, size_t size);
// The format is little-endian; a big-endian host reverses every elem-byte element in place.
bool nb__host_big_endian(void);
void nb__swap_bytes(unsigned char *p, size_t nbytes, size_t elem);
// Argument checks shared by save and load (fn names the caller in messages). Saving also
// requires names that make a valid, unambiguous header: UTF-8, unique, not "__metadata__".
nb_status nb__st_check_args(const char *fn, const char *path, const char *const *names,
                            nb_tensor *const *tensors, int n, bool saving);

// Metadata keys the library writes and checks; user keys may not start with "nabla.".
#define NB_ST_KEY_PREFIX "nabla."
#define NB_ST_CRC_PREFIX "nabla.crc32c."           // + tensor name: CRC-32C of its bytes
#define NB_ST_CRC_META "nabla.crc32c.__metadata__" // CRC-32C of the other metadata

// CRC-32C of n more bytes, continuing from crc (start from 0).
uint32_t nb__crc32c_update(uint32_t crc, const void *data, size_t n);
uint32_t nb__crc32c_soft(uint32_t crc, const void *data, size_t n); // the portable path
// CRC-32C over metadata pairs as stored: for keys sorted by strcmp, skipping checksum keys,
// key bytes, a NUL, value bytes, a NUL. keys/values are parallel arrays of n. false: no memory.
bool nb__crc32c_meta(const char *const *keys, const char *const *values, int n, uint32_t *out);
// Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF) of len bytes.
bool nb__valid_utf8(const char *s, size_t len);

// Atomic output (atomic.c). fn names the public caller in messages.
extern bool nb__io_no_tmpfile; // tests: force the named-temp-file path
nb_status nb__check_output_path(const char *fn, const char *path);
nb_status nb__write_atomic(const char *fn, const char *path, nb_file_writer write, void *ctx);

// ---- the parsed header (st_header.c) --------------------------------------------------------

typedef struct {
    const char *name; // decoded, in the header text
    int dtype;        // index into the format's dtypes (nb__st_dtype_str)
    int ndim;
    int64_t dims;       // index of the first dimension in nb__st_header.dims
    int64_t begin, end; // byte range in the data buffer, checked against it and the shape
    uint32_t crc;       // stored CRC-32C of the bytes (when the header is checked)
    bool has_crc;
} nb__st_entry;

typedef struct {
    const char *key, *value;
} nb__st_kv;

typedef struct {
    char *text;       // the header, strings decoded in place; owned
    nb__st_entry *es; // (m) sorted by name
    int m;
    int64_t *dims;   // every entry's shape
    nb__st_kv *meta; // (n_meta) "__metadata__" sorted by key
    int n_meta;
    bool has_meta;
    bool checked; // carries nabla's checksums (all present, the metadata's verified)
} nb__st_header;

// Parses and validates text (NUL-terminated, valid UTF-8, owned by h from now on: free h with
// nb__st_header_free whatever the result) against a data buffer of data_size bytes.
nb_status nb__st_parse_header(const char *path, char *text, int64_t data_size, nb__st_header *h);
void nb__st_header_free(nb__st_header *h);
const nb__st_entry *nb__st_find(const nb__st_header *h, const char *name);
const char *nb__st_meta(const nb__st_header *h, const char *key); // NULL when absent
// st_check.c: the tensors tile the data buffer of data_size bytes exactly (sorted by offset:
// no overlap, gap or trailing bytes); nabla's checksum keys are absent, or one per tensor plus
// the metadata's, the latter matching (sets each entry's crc and h->checked).
nb_status nb__st_check_tiling(const char *path, nb__st_entry *es, int m, int64_t data_size);
nb_status nb__st_check_checksums(const char *path, nb__st_header *h);
const char *nb__st_dtype_str(int k); // "F32"
char *nb__st_shape_str(const nb__st_header *h, const nb__st_entry *e, char *buf, size_t size);
// A string from a file made safe to print: control characters escaped, long ones cut.
const char *nb__st_shown(const char *s, char *buf, size_t size);
#define SHOWN(s) nb__st_shown((s), (char[96]){0}, 96)

#endif
