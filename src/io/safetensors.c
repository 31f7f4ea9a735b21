// Checkpoints in the safetensors format: argument checks and the writer. A file is a
// little-endian u64 N, then N bytes of JSON
//   {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"<key>": "<string>"}}
// space-padded so the data buffer starts 8-byte aligned, then the data buffer; offsets are
// relative to its start, elements little-endian and row-major. Saving is atomic: write a temp
// file, fsync, rename over the target. The reader is in safetensors_load.c.
#define _POSIX_C_SOURCE 200809L // fsync, fileno, getpid, O_CLOEXEC, XSI strerror_r

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
static bool valid_utf8(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
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
        for (int k = 1; k < len; k++) {
            if ((p[k] & 0xC0) != 0x80) // also stops at the terminating NUL
                return false;
            cp = (cp << 6) | (p[k] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += len;
    }
    return true;
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

// ---- save -----------------------------------------------------------------------------------

// Data is laid out by decreasing element size, so every tensor starts at a multiple of its own
// element size in the file (as the reference writer does; readers may mmap the buffer). The
// header and the data writer both walk the tensors in this order: pass p takes the tensors
// whose element size is pass_size[p], in the caller's order.
static const size_t pass_size[] = {8, 4, 2, 1};
#define N_PASSES ((int)(sizeof pass_size / sizeof pass_size[0]))

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

// The JSON header, space-padded so that 8 + its length is a multiple of 8.
static nb_status build_header(const char *path, const char *const *names, nb_tensor *const *tensors,
                              int n, char **out, size_t *out_len) {
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
    bool ok = root != NULL;
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

// One tensor's data, little-endian whatever the host.
static bool write_tensor(FILE *f, nb_tensor *t) {
    const unsigned char *p = nb_tensor_data(t);
    size_t elem = nb_dtype_size(nb_tensor_dtype(t));
    size_t nbytes = (size_t)nb_tensor_numel(t) * elem;
    if (!nb__host_big_endian())
        return nbytes == 0 || fwrite(p, 1, nbytes, f) == nbytes;
    unsigned char chunk[4096]; // a multiple of every element size
    for (size_t done = 0; done < nbytes;) {
        size_t k = nbytes - done < sizeof chunk ? nbytes - done : sizeof chunk;
        memcpy(chunk, p + done, k);
        nb__swap_bytes(chunk, k, elem);
        if (fwrite(chunk, 1, k, f) != k)
            return false;
        done += k;
    }
    return true;
}

static bool write_data(FILE *f, nb_tensor *const *tensors, int n) {
    for (int p = 0; p < N_PASSES; p++) {
        for (int i = 0; i < n; i++) {
            if (nb_dtype_size(nb_tensor_dtype(tensors[i])) == pass_size[p] &&
                !write_tensor(f, tensors[i]))
                return false;
        }
    }
    return true;
}

// Write the whole file to tmp and make it durable; on failure tmp is removed.
static nb_status write_temp(const char *path, const char *tmp, const char *header, size_t hlen,
                            nb_tensor *const *tensors, int n) {
    char why[128];
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return nb__set_last_error(NB_ERR_IO, "%s: cannot create temporary file '%s': %s", path, tmp,
                                  nb__os_reason(errno, why, sizeof why));
    unsigned char len8[8];
    for (int k = 0; k < 8; k++)
        len8[k] = (unsigned char)((uint64_t)hlen >> (8 * k));
    // fsync before rename: otherwise a crash can leave the new name pointing at empty data.
    errno = 0;
    bool ok = fwrite(len8, 1, 8, f) == 8 && fwrite(header, 1, hlen, f) == hlen &&
              write_data(f, tensors, n) && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int err = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (ok)
        return NB_OK;
    remove(tmp);
    return nb__set_last_error(NB_ERR_IO, "%s: writing temporary file '%s' failed: %s", path, tmp,
                              nb__os_reason(err, why, sizeof why));
}

// Make the rename itself durable. Best effort: some filesystems refuse fsync on a directory,
// and by now the new file is complete and in place either way.
static void sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    size_t len = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = nb__malloc(len + 1);
    if (!dir)
        return;
    memcpy(dir, slash ? path : ".", len);
    dir[len] = '\0';
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    nb__free(dir);
}

nb_status nb_save_safetensors(const char *path, const char *const *names, nb_tensor *const *tensors,
                              int n) {
    nb_status st = nb__st_check_args("nb_save_safetensors", path, names, tensors, n, true);
    if (st != NB_OK)
        return st;
    char *header = NULL;
    size_t hlen = 0;
    st = build_header(path, names, tensors, n, &header, &hlen);
    if (st != NB_OK)
        return st;
    size_t cap = strlen(path) + 32;
    char *tmp = nb__malloc(cap);
    if (!tmp) {
        nb__free(header);
        return nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(tmp, cap, "%s.tmp.%ld", path, (long)getpid());
    st = write_temp(path, tmp, header, hlen, tensors, n);
    if (st == NB_OK && rename(tmp, path) != 0) {
        char why[128];
        int err = errno;
        remove(tmp);
        st = nb__set_last_error(NB_ERR_IO, "%s: cannot rename '%s' over it: %s", path, tmp,
                                nb__os_reason(err, why, sizeof why));
    }
    if (st == NB_OK)
        sync_parent_dir(path);
    nb__free(tmp);
    nb__free(header);
    return st;
}
