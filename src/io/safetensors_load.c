// Checkpoints in the safetensors format: the reader (layout at the top of safetensors.c). The
// one idea: the header is hostile until proven otherwise. Every length and offset is checked
// against the file's real size before a byte of data is read, and the data is staged so that
// any failure leaves the caller's tensors untouched.
#define _POSIX_C_SOURCE 200809L // open flags, fdopen, fileno, fseeko
#define _FILE_OFFSET_BITS 64    // 64-bit off_t even on 32-bit hosts

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/base_impl.h"
#include "io/safetensors_impl.h"
#include "nabla/io.h"

// cJSON hands numbers over as doubles, which hold integers exactly only up to 2^53.
#define MAX_JSON_INT 9007199254740992.0

// Every dtype of the format, so that files carrying extra tensors we do not load (F16, BF16,
// I64...) still validate. Sizes in bytes.
static const struct {
    const char *name;
    int64_t size;
} st_dtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
    {"U32", 4},  {"F32", 4}, {"I64", 8}, {"U64", 8},     {"F64", 8},
};
#define N_ST_DTYPES ((int)(sizeof st_dtypes / sizeof st_dtypes[0]))

// One tensor entry of a loaded header, after validation.
typedef struct {
    const char *name;   // the JSON key (owned by the parsed cJSON tree)
    const cJSON *shape; // array of exact non-negative integers
    int dtype;          // index into st_dtypes
    int64_t begin;      // byte range [begin, end) within the data buffer,
    int64_t end;        //   already checked against the buffer size and the shape
} entry;

static int cmp_entry(const void *a, const void *b) {
    const entry *x = a;
    const entry *y = b;
    return strcmp(x->name, y->name);
}

// An exact non-negative integer from a JSON number.
static bool json_index(const cJSON *x, int64_t *out) {
    if (!cJSON_IsNumber(x))
        return false;
    double v = x->valuedouble;
    if (!(v >= 0 && v <= MAX_JSON_INT) || (double)(int64_t)v != v)
        return false;
    *out = (int64_t)v;
    return true;
}

// "(2, 3)" from a validated shape array, like nb_tensor_shape_str.
// "(2, 3)"; a shape too long for buf ends in "...)" so the message stays well-formed.
static char *json_shape_str(const cJSON *shape, char *buf, size_t size) {
    const size_t tail = sizeof "...)"; // room always kept for the ellipsis
    size_t used = (size_t)snprintf(buf, size, "(");
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        char dim[32];
        int k = snprintf(dim, sizeof dim, "%s%" PRId64, d == shape->child ? "" : ", ",
                         (int64_t)d->valuedouble);
        if (k < 0 || used + (size_t)k + tail > size) {
            snprintf(buf + used, size - used, "...)");
            return buf;
        }
        memcpy(buf + used, dim, (size_t)k + 1);
        used += (size_t)k;
    }
    snprintf(buf + used, size - used, ")");
    return buf;
}

// Check the file size, then read and parse the header. *data_start is the file offset of the
// data buffer, *data_size its length.
static nb_status read_header(const char *path, FILE *f, cJSON **root, int64_t *data_start,
                             int64_t *data_size) {
    char why[128];
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0)
        return nb__set_last_error(NB_ERR_IO, "%s: cannot stat: %s", path,
                                  nb__os_reason(errno, why, sizeof why));
    if (!S_ISREG(sb.st_mode))
        return nb__set_last_error(NB_ERR_IO, "%s: not a regular file", path);
    int64_t size = (int64_t)sb.st_size;
    if (size < 8)
        return nb__set_last_error(NB_ERR_FORMAT,
                                  "%s: file is %" PRId64 " bytes, too short for "
                                  "the 8-byte header length of a safetensors file",
                                  path, size);
    unsigned char len8[8];
    if (fread(len8, 1, 8, f) != 8)
        return nb__set_last_error(NB_ERR_IO, "%s: cannot read the header length: %s", path,
                                  nb__os_reason(errno, why, sizeof why));
    uint64_t hlen = 0;
    for (int k = 7; k >= 0; k--)
        hlen = (hlen << 8) | len8[k];
    if (hlen > (uint64_t)(size - 8))
        return nb__set_last_error(NB_ERR_FORMAT,
                                  "%s: header length %" PRIu64 " exceeds the %" PRId64
                                  " bytes that follow it: truncated or not a safetensors "
                                  "file",
                                  path, hlen, size - 8);
    if (hlen > NB_ST_MAX_HEADER)
        return nb__set_last_error(NB_ERR_FORMAT,
                                  "%s: header length %" PRIu64 " is over the "
                                  "format's limit of %u",
                                  path, hlen, NB_ST_MAX_HEADER);
    char *text = nb__malloc((size_t)hlen + 1);
    if (!text)
        return nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory reading the header", path);
    if (hlen > 0 && fread(text, 1, (size_t)hlen, f) != hlen) {
        nb__free(text);
        return nb__set_last_error(NB_ERR_IO, "%s: cannot read the header: %s", path,
                                  nb__os_reason(errno, why, sizeof why));
    }
    text[hlen] = '\0';
    // cJSON stops at a NUL, so "{}\0garbage" would otherwise pass as "{}".
    if (memchr(text, '\0', (size_t)hlen)) {
        nb__free(text);
        return nb__set_last_error(NB_ERR_FORMAT, "%s: header contains a NUL byte", path);
    }
    // Length includes the terminator so that require_null_terminated rejects trailing junk
    // (trailing spaces, the format's padding, are skipped as whitespace).
    const char *end = NULL;
    *root = cJSON_ParseWithLengthOpts(text, (size_t)hlen + 1, &end, true);
    size_t where = end ? (size_t)(end - text) : 0;
    nb__free(text);
    if (!*root)
        return nb__set_last_error(NB_ERR_FORMAT,
                                  "%s: header is not valid JSON (near byte %zu "
                                  "of %" PRIu64 ")",
                                  path, where, hlen);
    if (!cJSON_IsObject(*root))
        return nb__set_last_error(NB_ERR_FORMAT, "%s: header is not a JSON object", path);
    *data_start = 8 + (int64_t)hlen;
    *data_size = size - 8 - (int64_t)hlen;
    return NB_OK;
}

// Validate one tensor entry against the format and the real data buffer size.
static nb_status parse_entry(const char *path, const cJSON *item, int64_t data_size, entry *e) {
    const char *name = item->string;
    if (!cJSON_IsObject(item))
        return nb__set_last_error(NB_ERR_FORMAT, "%s: entry '%s' is not an object", path, name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dtype))
        return nb__set_last_error(NB_ERR_FORMAT, "%s: '%s' has no \"dtype\" string", path, name);
    e->dtype = -1;
    for (int k = 0; k < N_ST_DTYPES; k++)
        if (strcmp(dtype->valuestring, st_dtypes[k].name) == 0)
            e->dtype = k;
    if (e->dtype < 0)
        return nb__set_last_error(NB_ERR_FORMAT, "%s: '%s' has unknown dtype '%s'", path, name,
                                  dtype->valuestring);
    if (!cJSON_IsArray(shape))
        return nb__set_last_error(NB_ERR_FORMAT, "%s: '%s' has no \"shape\" array", path, name);
    int64_t numel = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        int64_t dim;
        if (!json_index(d, &dim))
            return nb__set_last_error(NB_ERR_FORMAT,
                                      "%s: '%s' has a shape entry that is not a "
                                      "non-negative integer",
                                      path, name);
        // Bounded by INT64_MAX / 8 so that numel * element size cannot overflow either.
        if (dim > 0 && numel > INT64_MAX / 8 / dim)
            return nb__set_last_error(NB_ERR_FORMAT,
                                      "%s: '%s' has a shape with too many "
                                      "elements",
                                      path, name);
        numel *= dim;
    }
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !json_index(cJSON_GetArrayItem(offs, 0), &e->begin) ||
        !json_index(cJSON_GetArrayItem(offs, 1), &e->end))
        return nb__set_last_error(NB_ERR_FORMAT,
                                  "%s: '%s' needs \"data_offsets\" of two "
                                  "non-negative integers",
                                  path, name);
    if (e->begin > e->end)
        return nb__set_last_error(NB_ERR_FORMAT,
                                  "%s: '%s' has data_offsets [%" PRId64 ", %" PRId64
                                  "] with begin after end",
                                  path, name, e->begin, e->end);
    if (e->end > data_size)
        return nb__set_last_error(NB_ERR_FORMAT,
                                  "%s: '%s' has data_offsets [%" PRId64 ", %" PRId64
                                  "] past the end of the %" PRId64 "-byte data buffer: "
                                  "truncated file?",
                                  path, name, e->begin, e->end, data_size);
    int64_t want = numel * st_dtypes[e->dtype].size;
    if (e->end - e->begin != want) {
        char s[128];
        return nb__set_last_error(NB_ERR_FORMAT,
                                  "%s: '%s' has data_offsets [%" PRId64 ", %" PRId64 "] (%" PRId64
                                  " bytes) but %s shape %s needs %" PRId64 " bytes",
                                  path, name, e->begin, e->end, e->end - e->begin,
                                  st_dtypes[e->dtype].name, json_shape_str(shape, s, sizeof s),
                                  want);
    }
    e->name = name;
    e->shape = shape;
    return NB_OK;
}

// The format's metadata: a flat string-to-string map. Its content is not interpreted.
static nb_status check_metadata(const char *path, const cJSON *meta) {
    if (!cJSON_IsObject(meta))
        return nb__set_last_error(NB_ERR_FORMAT, "%s: \"__metadata__\" is not an object", path);
    const cJSON *v;
    cJSON_ArrayForEach(v, meta) {
        if (!cJSON_IsString(v))
            return nb__set_last_error(NB_ERR_FORMAT,
                                      "%s: \"__metadata__\" value '%s' is not a "
                                      "string",
                                      path, v->string);
    }
    return NB_OK;
}

// Validate every entry of the header (loaded or not) into an array sorted by name.
static nb_status parse_entries(const char *path, const cJSON *root, int64_t data_size, entry **out,
                               int *count) {
    int cap = cJSON_GetArraySize(root);
    entry *es = nb__calloc(cap > 0 ? (size_t)cap : 1, sizeof *es);
    if (!es)
        return nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory reading the header", path);
    nb_status st = NB_OK;
    int m = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (strcmp(item->string, "__metadata__") == 0)
            st = check_metadata(path, item);
        else if ((st = parse_entry(path, item, data_size, &es[m])) == NB_OK)
            m++;
        if (st != NB_OK)
            break;
    }
    // cJSON keeps duplicate keys; sorting makes them neighbours (and makes lookup a bsearch).
    if (st == NB_OK && m > 1) {
        qsort(es, (size_t)m, sizeof *es, cmp_entry);
        for (int k = 1; k < m && st == NB_OK; k++)
            if (strcmp(es[k - 1].name, es[k].name) == 0)
                st = nb__set_last_error(NB_ERR_FORMAT, "%s: '%s' appears twice in the header", path,
                                        es[k].name);
    }
    if (st != NB_OK) {
        nb__free(es);
        return st;
    }
    *out = es;
    *count = m;
    return NB_OK;
}

static bool same_shape(const cJSON *shape, const nb_tensor *t) {
    if (cJSON_GetArraySize(shape) != nb_tensor_ndim(t))
        return false;
    int i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        if ((int64_t)d->valuedouble != nb_tensor_dim(t, i++))
            return false;
    }
    return true;
}

// Resolve each requested name to its entry and compare dtype and shape; nothing is read yet.
static nb_status match_request(const char *path, const entry *es, int m, const char *const *names,
                               nb_tensor *const *tensors, int n, const entry **found) {
    int missing = 0;
    int first_missing = -1;
    for (int i = 0; i < n; i++) {
        const entry key = {.name = names[i]};
        found[i] = m > 0 ? bsearch(&key, es, (size_t)m, sizeof *es, cmp_entry) : NULL;
        if (!found[i] && missing++ == 0)
            first_missing = i;
    }
    if (missing)
        return nb__set_last_error(NB_ERR_FORMAT,
                                  "%s: '%s' not found in the file (%d of %d "
                                  "requested names missing)",
                                  path, names[first_missing], missing, n);
    for (int i = 0; i < n; i++) {
        const entry *e = found[i];
        const char *want = nb__st_dtype_name(nb_tensor_dtype(tensors[i]));
        if (strcmp(st_dtypes[e->dtype].name, want) != 0)
            return nb__set_last_error(NB_ERR_DTYPE, "%s: '%s' has dtype %s, model expects %s", path,
                                      names[i], st_dtypes[e->dtype].name, want);
        if (!same_shape(e->shape, tensors[i])) {
            char s[128];
            return nb__set_last_error(NB_ERR_SHAPE, "%s: '%s' has shape %s, model expects %s", path,
                                      names[i], json_shape_str(e->shape, s, sizeof s),
                                      NB_SHAPE_STR(tensors[i]));
        }
    }
    return NB_OK;
}

// Read every requested tensor into one staging buffer, then copy into the tensors: a failed
// read midway (I/O error, file shrinking underneath us) then leaves the model untouched.
static nb_status read_data(const char *path, FILE *f, int64_t data_start, const entry **found,
                           nb_tensor *const *tensors, int n) {
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        int64_t len = found[i]->end - found[i]->begin;
        if (len > INT64_MAX - total || (uint64_t)(total + len) > SIZE_MAX)
            return nb__set_last_error(NB_ERR_NOMEM, "%s: requested tensors too large", path);
        total += len;
    }
    unsigned char *stage = nb__malloc((size_t)total);
    if (!stage)
        return nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory staging %" PRId64 " bytes", path,
                                  total);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        size_t len = (size_t)(found[i]->end - found[i]->begin);
        if (len == 0)
            continue;
        errno = 0;
        if (fseeko(f, (off_t)(data_start + found[i]->begin), SEEK_SET) != 0 ||
            fread(stage + at, 1, len, f) != len) {
            char why[128];
            nb_status st =
                feof(f) ? nb__set_last_error(NB_ERR_FORMAT,
                                             "%s: file ended while reading '%s' (was "
                                             "it truncated meanwhile?)",
                                             path, found[i]->name)
                        : nb__set_last_error(NB_ERR_IO, "%s: cannot read '%s': %s", path,
                                             found[i]->name, nb__os_reason(errno, why, sizeof why));
            nb__free(stage);
            return st;
        }
        at += len;
    }
    const bool swap = nb__host_big_endian();
    at = 0;
    for (int i = 0; i < n; i++) {
        size_t len = (size_t)(found[i]->end - found[i]->begin);
        if (len == 0)
            continue;
        if (swap)
            nb__swap_bytes(stage + at, len, nb_dtype_size(nb_tensor_dtype(tensors[i])));
        memcpy(nb_tensor_data(tensors[i]), stage + at, len);
        at += len;
    }
    nb__free(stage);
    return NB_OK;
}

nb_status nb_load_safetensors(const char *path, const char *const *names, nb_tensor *const *tensors,
                              int n) {
    nb_status st = nb__st_check_args("nb_load_safetensors", path, names, tensors, n, false);
    if (st != NB_OK)
        return st;
    // O_NONBLOCK so that a FIFO given by mistake fails the regular-file check instead of
    // blocking for a writer; it changes nothing for regular files.
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        char why[128];
        int err = errno;
        if (fd >= 0)
            close(fd);
        return nb__set_last_error(NB_ERR_IO, "%s: cannot open: %s", path,
                                  nb__os_reason(err, why, sizeof why));
    }
    cJSON *root = NULL;
    entry *es = NULL;
    const entry **found = NULL;
    int m = 0;
    int64_t data_start = 0;
    int64_t data_size = 0;
    st = read_header(path, f, &root, &data_start, &data_size);
    if (st == NB_OK)
        st = parse_entries(path, root, data_size, &es, &m);
    if (st == NB_OK && !(found = nb__calloc(n > 0 ? (size_t)n : 1, sizeof *found)))
        st = nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory", path);
    if (st == NB_OK)
        st = match_request(path, es, m, names, tensors, n, found);
    if (st == NB_OK)
        st = read_data(path, f, data_start, found, tensors, n);
    nb__free(found);
    nb__free(es);
    cJSON_Delete(root);
    fclose(f);
    return st;
}
