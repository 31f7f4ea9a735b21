// Checkpoints in the safetensors format: argument checks and the writer. A file is a
// little-endian u64 N, then N bytes of JSON
//   {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"<key>": "<string>"}}
// space-padded so the data buffer starts 8-byte aligned, then the data buffer; offsets are
// relative to its start, elements little-endian and row-major. nabla's checksums go in the
// metadata (include/nabla/io.h). Saving is atomic (atomic.c). The reader is in
// safetensors_load.c.
#define _POSIX_C_SOURCE 200809L // XSI strerror_r

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/base_impl.h"
#include "io/safetensors_impl.h"
#include "nabla/io.h"

const char *nb__st_dtype_name(nb_dtype d) {
    switch (d) {
    case NB_F32:
        return "F32";
    case NB_F64:
        return "F64";
    case NB_I32:
        return "I32";
    case NB_I64:
        return "I64";
    default:
        return NULL;
    }
}

// XSI strerror_r, selected by _POSIX_C_SOURCE.
const char *nb__os_reason(int e, char *buf, size_t size) {
    if (e == 0)
        e = EIO; // a short write or read without errno: still an I/O failure
    if (strerror_r(e, buf, size) != 0)
        snprintf(buf, size, "error %d", e);
    return buf;
}

bool nb__host_big_endian(void) {
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 0;
}

void nb__swap_bytes(unsigned char *p, size_t nbytes, size_t elem) {
    for (size_t i = 0; i + elem <= nbytes; i += elem) {
        for (size_t k = 0; k < elem / 2; k++) {
            unsigned char c = p[i + k];
            p[i + k] = p[i + elem - 1 - k];
            p[i + elem - 1 - k] = c;
        }
    }
}

// Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF): the header is JSON,
// which must be UTF-8, and Python's reader rejects anything else.
bool nb__valid_utf8(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *end = p + n;
    while (p < end) {
        unsigned c = *p;
        int len;
        uint32_t cp;
        uint32_t min;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
            min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
            min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        if (end - p < len)
            return false;
        for (int k = 1; k < len; k++) {
            if ((p[k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[k] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += len;
    }
    return true;
}

static bool valid_utf8(const char *s) {
    return nb__valid_utf8(s, strlen(s));
}

static int cmp_str(const void *a, const void *b) {
    const char *const *x = a;
    const char *const *y = b;
    return strcmp(*x, *y);
}

nb_status nb__st_check_args(const char *fn, const char *path, const char *const *names,
                            nb_tensor *const *tensors, int n, bool saving) {
    if (!path)
        return nb__set_last_error(NB_ERR_NULL, "%s: path is NULL", fn);
    if (!*path)
        return nb__set_last_error(NB_ERR_ARG, "%s: path is empty", fn);
    if (n < 0)
        return nb__set_last_error(NB_ERR_ARG, "%s: %s: n = %d is negative", fn, path, n);
    if (n > 0 && (!names || !tensors))
        return nb__set_last_error(NB_ERR_NULL, "%s: %s: names or tensors is NULL", fn, path);
    for (int i = 0; i < n; i++) {
        const char *name = names[i];
        if (!name || !*name)
            return nb__set_last_error(NB_ERR_ARG, "%s: %s: tensor %d has a NULL or empty name", fn,
                                      path, i);
        if (!tensors[i])
            return nb__set_last_error(NB_ERR_NULL, "%s: %s: tensor '%s' is NULL", fn, path, name);
        if (!nb__st_dtype_name(nb_tensor_dtype(tensors[i])))
            return nb__set_last_error(NB_ERR_DTYPE, "%s: %s: tensor '%s' has an unsupported dtype",
                                      fn, path, name);
        if (saving && strcmp(name, "__metadata__") == 0)
            return nb__set_last_error(NB_ERR_ARG, "%s: %s: the name '__metadata__' is reserved", fn,
                                      path);
        if (saving && !valid_utf8(name))
            return nb__set_last_error(NB_ERR_ARG, "%s: %s: name of tensor %d is not valid UTF-8",
                                      fn, path, i);
    }
    if (!saving || n < 2)
        return NB_OK;
    // Sorted copy: duplicates become neighbours, O(n log n) for models with many tensors.
    const char **sorted = nb__malloc((size_t)n * sizeof *sorted);
    if (!sorted)
        return nb__set_last_error(NB_ERR_NOMEM, "%s: %s: out of memory", fn, path);
    memcpy(sorted, names, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_str);
    nb_status st = NB_OK;
    for (int i = 1; i < n && st == NB_OK; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            st = nb__set_last_error(NB_ERR_ARG, "%s: %s: name '%s' is used twice", fn, path,
                                    sorted[i]);
    nb__free(sorted);
    return st;
}

// Metadata pairs from the caller: valid, unique, and clear of the library's "nabla." keys.
static nb_status check_meta(const char *fn, const char *path, const char *const *keys,
                            const char *const *values, int n) {
    if (n < 0)
        return nb__set_last_error(NB_ERR_ARG, "%s: %s: n_meta = %d is negative", fn, path, n);
    if (n > 0 && (!keys || !values))
        return nb__set_last_error(NB_ERR_NULL, "%s: %s: meta_keys or meta_values is NULL", fn,
                                  path);
    for (int i = 0; i < n; i++) {
        if (!keys[i] || !*keys[i] || !values[i])
            return nb__set_last_error(NB_ERR_ARG,
                                      "%s: %s: metadata pair %d has a NULL or empty "
                                      "key or a NULL value",
                                      fn, path, i);
        if (!valid_utf8(keys[i]) || !valid_utf8(values[i]))
            return nb__set_last_error(NB_ERR_ARG, "%s: %s: metadata pair %d is not valid UTF-8", fn,
                                      path, i);
        if (strncmp(keys[i], NB_ST_KEY_PREFIX, strlen(NB_ST_KEY_PREFIX)) == 0)
            return nb__set_last_error(NB_ERR_ARG,
                                      "%s: %s: metadata key '%s' is reserved (keys "
                                      "starting with \"" NB_ST_KEY_PREFIX "\" are nabla's)",
                                      fn, path, keys[i]);
        for (int j = 0; j < i; j++)
            if (strcmp(keys[i], keys[j]) == 0)
                return nb__set_last_error(NB_ERR_ARG, "%s: %s: metadata key '%s' is used twice", fn,
                                          path, keys[i]);
    }
    return NB_OK;
}

static bool is_crc_key(const char *key) {
    return strncmp(key, NB_ST_CRC_PREFIX, strlen(NB_ST_CRC_PREFIX)) == 0;
}

typedef struct {
    const char *key, *value;
} kv;

static int cmp_kv(const void *a, const void *b) {
    return strcmp(((const kv *)a)->key, ((const kv *)b)->key);
}

bool nb__crc32c_meta(const char *const *keys, const char *const *values, int n, uint32_t *out) {
    kv *pairs = nb__malloc((size_t)(n > 0 ? n : 1) * sizeof *pairs);
    if (!pairs)
        return false;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!is_crc_key(keys[i]))
            pairs[m++] = (kv){keys[i], values[i]};
    qsort(pairs, (size_t)m, sizeof *pairs, cmp_kv);
    uint32_t crc = 0;
    for (int i = 0; i < m; i++) {
        crc = nb__crc32c_update(crc, pairs[i].key, strlen(pairs[i].key) + 1);
        crc = nb__crc32c_update(crc, pairs[i].value, strlen(pairs[i].value) + 1);
    }
    nb__free(pairs);
    *out = crc;
    return true;
}

// ---- save -----------------------------------------------------------------------------------

// Data is laid out by decreasing element size, so every tensor starts at a multiple of its own
// element size in the file (as the reference writer does; readers may mmap the buffer). The
// header and the data writer both walk the tensors in this order: pass p takes the tensors
// whose element size is pass_size[p], in the caller's order.
static const size_t pass_size[] = {8, 4, 2, 1};
#define N_PASSES ((int)(sizeof pass_size / sizeof pass_size[0]))

// Calls emit on the tensor's bytes in file order (little-endian whatever the host).
static bool tensor_bytes(nb_tensor *t, bool (*emit)(const void *, size_t, void *), void *ctx) {
    const unsigned char *p = nb_tensor_data(t);
    size_t elem = nb_dtype_size(nb_tensor_dtype(t));
    size_t nbytes = (size_t)nb_tensor_numel(t) * elem;
    if (!nb__host_big_endian())
        return nbytes == 0 || emit(p, nbytes, ctx);
    unsigned char chunk[4096]; // a multiple of every element size
    for (size_t done = 0; done < nbytes;) {
        size_t k = nbytes - done < sizeof chunk ? nbytes - done : sizeof chunk;
        memcpy(chunk, p + done, k);
        nb__swap_bytes(chunk, k, elem);
        if (!emit(chunk, k, ctx))
            return false;
        done += k;
    }
    return true;
}

static bool emit_crc(const void *p, size_t n, void *ctx) {
    uint32_t *crc = ctx;
    *crc = nb__crc32c_update(*crc, p, n);
    return true;
}

static bool emit_file(const void *p, size_t n, void *ctx) {
    return fwrite(p, 1, n, (FILE *)ctx) == n;
}

// One header entry: {"dtype": .., "shape": [..], "data_offsets": [offset, offset + nbytes]}.
// Numbers go in as raw JSON text so they are exact integers, never a double's "1e+15".
static bool add_entry(cJSON *root, const char *name, const nb_tensor *t, int64_t *offset) {
    int64_t nbytes = nb_tensor_numel(t) * (int64_t)nb_dtype_size(nb_tensor_dtype(t));
    char shape[NB_MAX_DIMS * 22 + 4]; // "[d0,d1,...]", each dim at most 19 digits
    size_t used = (size_t)snprintf(shape, sizeof shape, "[");
    for (int d = 0; d < nb_tensor_ndim(t); d++)
        used += (size_t)snprintf(shape + used, sizeof shape - used, "%s%" PRId64, d ? "," : "",
                                 nb_tensor_dim(t, d));
    snprintf(shape + used, sizeof shape - used, "]");
    char offsets[48];
    snprintf(offsets, sizeof offsets, "[%" PRId64 ",%" PRId64 "]", *offset, *offset + nbytes);
    *offset += nbytes;
    cJSON *e = cJSON_AddObjectToObject(root, name);
    return e && cJSON_AddStringToObject(e, "dtype", nb__st_dtype_name(nb_tensor_dtype(t))) &&
           cJSON_AddRawToObject(e, "shape", shape) &&
           cJSON_AddRawToObject(e, "data_offsets", offsets);
}

// "__metadata__": the caller's pairs, a checksum per tensor and one over the caller's pairs.
static bool add_metadata(cJSON *root, const char *const *names, nb_tensor *const *tensors, int n,
                         const char *const *keys, const char *const *values, int n_meta) {
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    bool ok = meta != NULL;
    for (int i = 0; i < n_meta && ok; i++)
        ok = cJSON_AddStringToObject(meta, keys[i], values[i]) != NULL;
    char hex[16];
    for (int i = 0; i < n && ok; i++) {
        uint32_t crc = 0;
        tensor_bytes(tensors[i], emit_crc, &crc);
        size_t klen = strlen(NB_ST_CRC_PREFIX) + strlen(names[i]) + 1;
        char *key = nb__malloc(klen);
        ok = key != NULL;
        if (ok) {
            snprintf(key, klen, "%s%s", NB_ST_CRC_PREFIX, names[i]);
            snprintf(hex, sizeof hex, "%08" PRIx32, crc);
            ok = cJSON_AddStringToObject(meta, key, hex) != NULL;
        }
        nb__free(key);
    }
    uint32_t crc = 0;
    if (ok && (ok = nb__crc32c_meta(keys, values, n_meta, &crc))) {
        snprintf(hex, sizeof hex, "%08" PRIx32, crc);
        ok = cJSON_AddStringToObject(meta, NB_ST_CRC_META, hex) != NULL;
    }
    return ok;
}

// The JSON header, space-padded so that 8 + its length is a multiple of 8.
static nb_status build_header(const char *path, const char *const *names, nb_tensor *const *tensors,
                              int n, const char *const *keys, const char *const *values, int n_meta,
                              char **out, size_t *out_len) {
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        // numel <= INT64_MAX / 8 (tensor invariant), so only the sum can overflow.
        int64_t nbytes =
            nb_tensor_numel(tensors[i]) * (int64_t)nb_dtype_size(nb_tensor_dtype(tensors[i]));
        if (nbytes > INT64_MAX - total)
            return nb__set_last_error(NB_ERR_ARG, "%s: total tensor size overflows", path);
        total += nbytes;
    }
    cJSON *root = cJSON_CreateObject();
    bool ok = root && add_metadata(root, names, tensors, n, keys, values, n_meta);
    int64_t offset = 0;
    for (int p = 0; p < N_PASSES && ok; p++) {
        for (int i = 0; i < n && ok; i++) {
            if (nb_dtype_size(nb_tensor_dtype(tensors[i])) == pass_size[p])
                ok = add_entry(root, names[i], tensors[i], &offset);
        }
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json)
        return nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory building the header", path);
    size_t len = strlen(json);
    size_t padded = (len + 7) & ~(size_t)7;
    if (padded > NB_ST_MAX_HEADER) {
        cJSON_free(json);
        return nb__set_last_error(NB_ERR_ARG,
                                  "%s: header would be %zu bytes, over the format's "
                                  "limit of %u",
                                  path, padded, NB_ST_MAX_HEADER);
    }
    char *header = nb__malloc(padded);
    if (header) {
        memcpy(header, json, len);
        memset(header + len, ' ', padded - len);
    }
    cJSON_free(json);
    if (!header)
        return nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory building the header", path);
    *out = header;
    *out_len = padded;
    return NB_OK;
}

typedef struct {
    const char *header;
    size_t hlen;
    nb_tensor *const *tensors;
    int n;
} save_job;

// The whole file: u64 header length, header, data buffer.
static bool write_file(FILE *f, void *ctx) {
    const save_job *job = ctx;
    unsigned char len8[8];
    for (int k = 0; k < 8; k++)
        len8[k] = (unsigned char)((uint64_t)job->hlen >> (8 * k));
    if (fwrite(len8, 1, 8, f) != 8 || fwrite(job->header, 1, job->hlen, f) != job->hlen)
        return false;
    for (int p = 0; p < N_PASSES; p++) {
        for (int i = 0; i < job->n; i++) {
            if (nb_dtype_size(nb_tensor_dtype(job->tensors[i])) == pass_size[p] &&
                !tensor_bytes(job->tensors[i], emit_file, f))
                return false;
        }
    }
    return true;
}

static nb_status save(const char *fn, const char *path, const char *const *names,
                      nb_tensor *const *tensors, int n, const char *const *keys,
                      const char *const *values, int n_meta) {
    nb_status st = nb__st_check_args(fn, path, names, tensors, n, true);
    if (st == NB_OK)
        st = check_meta(fn, path, keys, values, n_meta);
    // Refuse a bad target before the work of building the header.
    if (st == NB_OK)
        st = nb__check_output_path(fn, path);
    if (st != NB_OK)
        return st;
    save_job job = {NULL, 0, tensors, n};
    char *header = NULL;
    st = build_header(path, names, tensors, n, keys, values, n_meta, &header, &job.hlen);
    job.header = header;
    if (st == NB_OK)
        st = nb__write_atomic(fn, path, write_file, &job);
    nb__free(header);
    return st;
}

nb_status nb_save_safetensors(const char *path, const char *const *names, nb_tensor *const *tensors,
                              int n) {
    return save("nb_save_safetensors", path, names, tensors, n, NULL, NULL, 0);
}

nb_status nb_save_safetensors_meta(const char *path, const char *const *names,
                                   nb_tensor *const *tensors, int n, const char *const *meta_keys,
                                   const char *const *meta_values, int n_meta) {
    return save("nb_save_safetensors_meta", path, names, tensors, n, meta_keys, meta_values,
                n_meta);
}
