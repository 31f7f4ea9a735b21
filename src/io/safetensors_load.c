// Checkpoints in the safetensors format: the reader (layout at the top of safetensors.c). The
// one idea: the header is hostile until proven otherwise. Every length and offset is checked
// against the file's real size before a byte of data is read, and the data is staged so that
// any failure leaves the caller's tensors untouched.
#define _POSIX_C_SOURCE 200809L // open flags, fdopen, fileno, fseeko
#define _FILE_OFFSET_BITS 64    // 64-bit off_t even on 32-bit hosts

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
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
    uint32_t crc;       // stored CRC-32C of the bytes, when the file is checked
    bool has_crc;
} entry;

struct nb_safetensors {
    char *path;
    FILE *f;
    int64_t data_start; // file offset of the data buffer
    int64_t data_size;
    cJSON *root;       // entries and metadata point into it
    const cJSON *meta; // "__metadata__" or NULL
    entry *es;         // sorted by name
    int m;
    bool checked; // carries nabla's checksums
};

// A string from the file, made safe to print: control characters (C0, DEL, C1) escaped, long
// strings cut with "...". The header is valid UTF-8 by the time anything is printed.
static const char *shown(const char *s, char *buf, size_t size) {
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        char piece[8];
        size_t k;
        if (*p < 0x20 || *p == 0x7f) {
            k = (size_t)snprintf(piece, sizeof piece, "\\x%02x", *p);
            p++;
        } else if (*p == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0) {
            k = (size_t)snprintf(piece, sizeof piece, "\\u%04x", p[1]);
            p += 2;
        } else { // one whole UTF-8 character
            size_t len = *p < 0x80 ? 1 : *p < 0xe0 ? 2 : *p < 0xf0 ? 3 : 4;
            for (k = 0; k < len && p[k]; k++)
                piece[k] = (char)p[k];
            p += k;
        }
        if (o + k + 4 > size) {
            memcpy(buf + o, "...", 4);
            return buf;
        }
        memcpy(buf + o, piece, k);
        o += k;
    }
    buf[o] = '\0';
    return buf;
}
#define SHOWN(s) shown((s), (char[96]){0}, 96)

static int cmp_entry(const void *a, const void *b) {
    const entry *x = a;
    const entry *y = b;
    return strcmp(x->name, y->name);
}

static int cmp_offsets(const void *a, const void *b) {
    const entry *x = *(const entry *const *)a;
    const entry *y = *(const entry *const *)b;
    return x->begin != y->begin ? (x->begin < y->begin ? -1 : 1)
                                : (x->end != y->end ? (x->end < y->end ? -1 : 1) : 0);
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

// "(2, 3)" from a validated shape array; a shape too long for buf ends in "...)".
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

// Check the file size, then read, check and parse the header.
static nb_status read_header(nb_safetensors *h) {
    const char *path = h->path;
    char why[128];
    struct stat sb;
    if (fstat(fileno(h->f), &sb) != 0)
        return nb__set_last_error(NB_ERR_IO, "%s: cannot stat: %s", path,
                                  nb__os_reason(errno, why, sizeof why));
    if (!S_ISREG(sb.st_mode))
        return nb__set_last_error(NB_ERR_IO, "%s: not a regular file (%s)", path,
                                  S_ISDIR(sb.st_mode)    ? "a directory"
                                  : S_ISFIFO(sb.st_mode) ? "a FIFO"
                                  : S_ISCHR(sb.st_mode)  ? "a character device"
                                                         : "a special file");
    int64_t size = (int64_t)sb.st_size;
    if (size < 8)
        return nb__set_last_error(NB_ERR_FORMAT,
                                  "%s: file is %" PRId64 " bytes, too short for "
                                  "the 8-byte header length of a safetensors file",
                                  path, size);
    unsigned char len8[8];
    if (fread(len8, 1, 8, h->f) != 8)
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
    if (hlen > 0 && fread(text, 1, (size_t)hlen, h->f) != hlen) {
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
    // JSON text is UTF-8 (RFC 8259); the reference reader refuses anything else, and names
    // from the file are only ever printed once they are known to be valid.
    if (!nb__valid_utf8(text, (size_t)hlen)) {
        nb__free(text);
        return nb__set_last_error(NB_ERR_FORMAT, "%s: header is not valid UTF-8", path);
    }
    // Length includes the terminator so that require_null_terminated rejects trailing junk
    // (trailing spaces, the format's padding, are skipped as whitespace).
    const char *end = NULL;
    h->root = cJSON_ParseWithLengthOpts(text, (size_t)hlen + 1, &end, true);
    size_t where = end ? (size_t)(end - text) : 0;
    nb__free(text);
    if (!h->root)
        return nb__set_last_error(NB_ERR_FORMAT,
                                  "%s: header is not valid JSON (near byte %zu "
                                  "of %" PRIu64 ")",
                                  path, where, hlen);
    if (!cJSON_IsObject(h->root))
        return nb__set_last_error(NB_ERR_FORMAT, "%s: header is not a JSON object", path);
    h->data_start = 8 + (int64_t)hlen;
    h->data_size = size - 8 - (int64_t)hlen;
    return NB_OK;
}

// Validate one tensor entry against the format and the real data buffer size.
static nb_status parse_entry(const char *path, const cJSON *item, int64_t data_size, entry *e) {
    const char *name = SHOWN(item->string);
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
        return nb__set_last_error(NB_ERR_FORMAT,
                                  "%s: '%s' has unknown dtype '%s' (the format's are BOOL, U8, "
                                  "I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, "
                                  "I64, U64, F64)",
                                  path, name, SHOWN(dtype->valuestring));
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
            return nb__set_last_error(NB_ERR_FORMAT, "%s: '%s' has a shape with too many elements",
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
    e->name = item->string;
    e->shape = shape;
    return NB_OK;
}

// The format's metadata: a flat string-to-string map.
static nb_status check_metadata(const char *path, const cJSON *meta) {
    if (!cJSON_IsObject(meta))
        return nb__set_last_error(NB_ERR_FORMAT, "%s: \"__metadata__\" is not an object", path);
    const cJSON *v;
    cJSON_ArrayForEach(v, meta) {
        if (!cJSON_IsString(v))
            return nb__set_last_error(NB_ERR_FORMAT,
                                      "%s: \"__metadata__\" value '%s' is not a "
                                      "string",
                                      path, SHOWN(v->string));
    }
    return NB_OK;
}

// The reference implementation's rule: sorted by offset, the tensors tile the data buffer
// exactly, with no overlap (two names sharing bytes) and no gap or trailing bytes.
static nb_status check_tiling(const char *path, entry *es, int m, int64_t data_size) {
    const entry **by_off = nb__malloc((size_t)(m > 0 ? m : 1) * sizeof *by_off);
    if (!by_off)
        return nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory reading the header", path);
    for (int k = 0; k < m; k++)
        by_off[k] = &es[k];
    qsort(by_off, (size_t)m, sizeof *by_off, cmp_offsets);
    nb_status st = NB_OK;
    int64_t at = 0;
    for (int k = 0; k < m && st == NB_OK; k++) {
        const entry *e = by_off[k];
        if (e->begin < at)
            st = nb__set_last_error(
                NB_ERR_FORMAT, "%s: '%s' (bytes [%" PRId64 ", %" PRId64 ")) overlaps '%s'", path,
                SHOWN(e->name), e->begin, e->end, SHOWN(by_off[k - 1]->name));
        else if (e->begin > at)
            st = nb__set_last_error(NB_ERR_FORMAT,
                                    "%s: %" PRId64 " unused bytes before '%s' in the data buffer "
                                    "(offsets must tile it)",
                                    path, e->begin - at, SHOWN(e->name));
        at = e->end;
    }
    if (st == NB_OK && at != data_size)
        st = nb__set_last_error(NB_ERR_FORMAT,
                                "%s: %" PRId64 " bytes after the last tensor (the data buffer is "
                                "%" PRId64 " bytes, the tensors use %" PRId64 ")",
                                path, data_size - at, data_size, at);
    nb__free(by_off);
    return st;
}

// nabla's checksum keys: none (a foreign file), or exactly one per tensor plus the metadata's.
static nb_status check_checksums(nb_safetensors *h) {
    const char *path = h->path;
    size_t plen = strlen(NB_ST_CRC_PREFIX);
    const cJSON *v;
    int keys = 0, n_meta = 0;
    cJSON_ArrayForEach(v, h->meta) {
        n_meta++;
        keys += strncmp(v->string, NB_ST_CRC_PREFIX, plen) == 0;
    }
    h->checked = keys > 0;
    if (!h->checked)
        return NB_OK;
    const char **mk = nb__malloc((size_t)n_meta * sizeof *mk);
    const char **mv = nb__malloc((size_t)n_meta * sizeof *mv);
    nb_status st = mk && mv ? NB_OK : nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory", path);
    int i = 0;
    cJSON_ArrayForEach(v, h->meta) {
        if (st != NB_OK)
            break;
        mk[i] = v->string;
        mv[i++] = v->valuestring;
        const char *what = v->string + plen;
        if (strncmp(v->string, NB_ST_CRC_PREFIX, plen) != 0)
            continue;
        char *end = NULL;
        unsigned long crc = strtoul(v->valuestring, &end, 16);
        if (strlen(v->valuestring) != 8 || *end || !isxdigit((unsigned char)v->valuestring[0])) {
            st = nb__set_last_error(NB_ERR_FORMAT, "%s: checksum '%s' is not 8 hex digits", path,
                                    SHOWN(v->string));
        } else if (strcmp(v->string, NB_ST_CRC_META) != 0) {
            const entry key = {.name = what};
            entry *e =
                h->m > 0 ? bsearch(&key, h->es, (size_t)h->m, sizeof *h->es, cmp_entry) : NULL;
            if (!e)
                st = nb__set_last_error(NB_ERR_FORMAT,
                                        "%s: checksum for '%s', which is not in the file: "
                                        "corrupt header",
                                        path, SHOWN(what));
            else
                e->crc = (uint32_t)crc, e->has_crc = true;
        } // the metadata's own checksum is compared below, once all pairs are known
    }
    for (int k = 0; k < h->m && st == NB_OK; k++) {
        if (!h->es[k].has_crc)
            st = nb__set_last_error(NB_ERR_FORMAT,
                                    "%s: '%s' has no checksum while others do: corrupt header",
                                    path, SHOWN(h->es[k].name));
    }
    const cJSON *mc = cJSON_GetObjectItemCaseSensitive(h->meta, NB_ST_CRC_META);
    if (st == NB_OK && !mc)
        st = nb__set_last_error(NB_ERR_FORMAT,
                                "%s: the metadata checksum is missing: corrupt "
                                "header",
                                path);
    uint32_t crc = 0;
    if (st == NB_OK && !nb__crc32c_meta(mk, mv, n_meta, &crc))
        st = nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory", path);
    if (st == NB_OK && strtoul(mc->valuestring, NULL, 16) != crc)
        st = nb__set_last_error(NB_ERR_FORMAT,
                                "%s: metadata checksum mismatch: the file is corrupt", path);
    nb__free(mk);
    nb__free(mv);
    return st;
}

// Validate every entry of the header (loaded or not) into an array sorted by name.
static nb_status parse_entries(nb_safetensors *h) {
    const char *path = h->path;
    int cap = cJSON_GetArraySize(h->root);
    h->es = nb__calloc(cap > 0 ? (size_t)cap : 1, sizeof *h->es);
    if (!h->es)
        return nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory reading the header", path);
    nb_status st = NB_OK;
    const cJSON *item;
    cJSON_ArrayForEach(item, h->root) {
        if (strcmp(item->string, "__metadata__") == 0) {
            if (h->meta)
                st = nb__set_last_error(NB_ERR_FORMAT, "%s: \"__metadata__\" appears twice", path);
            else if ((st = check_metadata(path, item)) == NB_OK)
                h->meta = item;
        } else if ((st = parse_entry(path, item, h->data_size, &h->es[h->m])) == NB_OK) {
            h->m++;
        }
        if (st != NB_OK)
            return st;
    }
    // cJSON keeps duplicate keys; sorting makes them neighbours (and makes lookup a bsearch).
    if (h->m > 1) {
        qsort(h->es, (size_t)h->m, sizeof *h->es, cmp_entry);
        for (int k = 1; k < h->m; k++)
            if (strcmp(h->es[k - 1].name, h->es[k].name) == 0)
                return nb__set_last_error(NB_ERR_FORMAT, "%s: '%s' appears twice in the header",
                                          path, SHOWN(h->es[k].name));
    }
    st = check_tiling(path, h->es, h->m, h->data_size);
    return st == NB_OK ? check_checksums(h) : st;
}

static const entry *find(const nb_safetensors *h, const char *name) {
    const entry key = {.name = name};
    return h->m > 0 ? bsearch(&key, h->es, (size_t)h->m, sizeof *h->es, cmp_entry) : NULL;
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
static nb_status match_request(const nb_safetensors *h, const char *const *names,
                               nb_tensor *const *tensors, int n, const entry **found) {
    const char *path = h->path;
    // The first problem in request order is reported: callers list layers input side first,
    // so the message names the first layer that differs.
    int missing = 0;
    int first_missing = -1;
    for (int i = 0; i < n; i++) {
        const entry *e = found[i] = find(h, names[i]);
        if (!e) {
            if (missing++ == 0)
                first_missing = i;
            continue;
        }
        if (missing)
            continue;
        const char *want = nb__st_dtype_name(nb_tensor_dtype(tensors[i]));
        if (strcmp(st_dtypes[e->dtype].name, want) != 0)
            return nb__set_last_error(NB_ERR_DTYPE, "%s: '%s' has dtype %s, model expects %s", path,
                                      SHOWN(names[i]), st_dtypes[e->dtype].name, want);
        if (!same_shape(e->shape, tensors[i])) {
            char s[128];
            return nb__set_last_error(NB_ERR_SHAPE, "%s: '%s' has shape %s, model expects %s", path,
                                      SHOWN(names[i]), json_shape_str(e->shape, s, sizeof s),
                                      NB_SHAPE_STR(tensors[i]));
        }
    }
    if (missing)
        return nb__set_last_error(NB_ERR_FORMAT,
                                  "%s: '%s' not found in the file (%d of %d "
                                  "requested names missing)",
                                  path, SHOWN(names[first_missing]), missing, n);
    return NB_OK;
}

// The first non-finite element of len bytes of little-endian F32/F64 data, or -1.
static int64_t first_nonfinite(const unsigned char *p, size_t len, nb_dtype dt, double *v) {
    size_t elem = nb_dtype_size(dt);
    for (size_t i = 0; i + elem <= len; i += elem) {
        unsigned char b[8];
        memcpy(b, p + i, elem);
        if (nb__host_big_endian())
            nb__swap_bytes(b, elem, elem);
        double x;
        if (dt == NB_F32) {
            float f;
            memcpy(&f, b, 4);
            x = (double)f;
        } else {
            memcpy(&x, b, 8);
        }
        if (!isfinite(x)) {
            *v = x;
            return (int64_t)(i / elem);
        }
    }
    return -1;
}

// Checks one staged tensor: its checksum and (unless allowed) finite values.
static nb_status verify(const nb_safetensors *h, const entry *e, const unsigned char *p, size_t len,
                        nb_dtype dt, unsigned flags) {
    if (h->checked) {
        uint32_t crc = nb__crc32c_update(0, p, len);
        if (crc != e->crc)
            return nb__set_last_error(NB_ERR_FORMAT,
                                      "%s: '%s' fails its checksum (CRC-32C %08" PRIx32
                                      ", stored %08" PRIx32 "): the file is corrupt",
                                      h->path, SHOWN(e->name), crc, e->crc);
    }
    double v = 0;
    int64_t at = -1;
    if (!(flags & NB_LOAD_ALLOW_NONFINITE) && (dt == NB_F32 || dt == NB_F64) &&
        (at = first_nonfinite(p, len, dt, &v)) >= 0)
        return nb__set_last_error(NB_ERR_NONFINITE,
                                  "%s: '%s' holds %g at element %" PRId64
                                  " (a diverged or damaged model; NB_LOAD_ALLOW_NONFINITE "
                                  "loads it anyway)",
                                  h->path, SHOWN(e->name), v, at);
    return NB_OK;
}

// Read every requested tensor into one staging buffer, verify, then copy into the tensors: a
// failure midway (I/O error, file shrinking underneath us, bad checksum) leaves them untouched.
static nb_status read_data(const nb_safetensors *h, const entry **found, nb_tensor *const *tensors,
                           int n, unsigned flags) {
    const char *path = h->path;
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        int64_t len = found[i]->end - found[i]->begin;
        if (len > INT64_MAX - total || (uint64_t)(total + len) > SIZE_MAX)
            return nb__set_last_error(NB_ERR_NOMEM, "%s: requested tensors too large", path);
        total += len;
    }
    unsigned char *stage = nb__malloc(total > 0 ? (size_t)total : 1);
    if (!stage)
        return nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory staging %" PRId64 " bytes", path,
                                  total);
    nb_status st = NB_OK;
    size_t at = 0;
    for (int i = 0; i < n && st == NB_OK; i++) {
        size_t len = (size_t)(found[i]->end - found[i]->begin);
        errno = 0;
        if (len > 0 && (fseeko(h->f, (off_t)(h->data_start + found[i]->begin), SEEK_SET) != 0 ||
                        fread(stage + at, 1, len, h->f) != len)) {
            char why[128];
            st = feof(h->f) ? nb__set_last_error(NB_ERR_FORMAT,
                                                 "%s: file ended while reading '%s' (was "
                                                 "it truncated meanwhile?)",
                                                 path, SHOWN(found[i]->name))
                            : nb__set_last_error(NB_ERR_IO, "%s: cannot read '%s': %s", path,
                                                 SHOWN(found[i]->name),
                                                 nb__os_reason(errno, why, sizeof why));
        }
        if (st == NB_OK)
            st = verify(h, found[i], stage + at, len, nb_tensor_dtype(tensors[i]), flags);
        at += len;
    }
    const bool swap = nb__host_big_endian();
    at = 0;
    for (int i = 0; i < n && st == NB_OK; i++) {
        size_t len = (size_t)(found[i]->end - found[i]->begin);
        if (len == 0)
            continue;
        if (swap)
            nb__swap_bytes(stage + at, len, nb_dtype_size(nb_tensor_dtype(tensors[i])));
        memcpy(nb_tensor_data(tensors[i]), stage + at, len);
        at += len;
    }
    nb__free(stage);
    return st;
}

// ---- the public handle ------------------------------------------------------------------------

void nb_safetensors_close(nb_safetensors *h) {
    if (!h)
        return;
    if (h->f)
        fclose(h->f);
    cJSON_Delete(h->root);
    nb__free(h->es);
    nb__free(h->path);
    nb__free(h);
}

nb_status nb_safetensors_open(const char *path, nb_safetensors **out) {
    if (!out)
        return nb__set_last_error(NB_ERR_NULL, "nb_safetensors_open: out is NULL");
    *out = NULL;
    nb_status st = nb__st_check_args("nb_safetensors_open", path, NULL, NULL, 0, false);
    if (st != NB_OK)
        return st;
    nb_safetensors *h = nb__calloc(1, sizeof *h);
    size_t plen = strlen(path) + 1;
    if (h)
        h->path = nb__malloc(plen);
    if (!h || !h->path) {
        nb__free(h);
        return nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(h->path, path, plen);
    // O_NONBLOCK so that a FIFO given by mistake fails the regular-file check instead of
    // blocking for a writer; it changes nothing for regular files.
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    h->f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!h->f) {
        char why[128];
        int err = errno;
        if (fd >= 0)
            close(fd);
        nb_safetensors_close(h);
        return nb__set_last_error(NB_ERR_IO, "%s: cannot open: %s", path,
                                  nb__os_reason(err, why, sizeof why));
    }
    st = read_header(h);
    if (st == NB_OK)
        st = parse_entries(h);
    if (st != NB_OK) {
        nb_safetensors_close(h);
        return st;
    }
    *out = h;
    return NB_OK;
}

bool nb_safetensors_checked(const nb_safetensors *h) {
    return h && h->checked;
}

const char *nb_safetensors_meta(const nb_safetensors *h, const char *key) {
    if (!h || !key || !h->meta)
        return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(h->meta, key);
    return v ? v->valuestring : NULL;
}

bool nb_safetensors_find(const nb_safetensors *h, const char *name, int *dtype, int *ndim,
                         int64_t *shape) {
    const entry *e = h && name ? find(h, name) : NULL;
    if (!e)
        return false;
    if (dtype) {
        const char *s = st_dtypes[e->dtype].name;
        *dtype = !strcmp(s, "F32")   ? NB_F32
                 : !strcmp(s, "F64") ? NB_F64
                 : !strcmp(s, "I32") ? NB_I32
                                     : -1;
    }
    int r = cJSON_GetArraySize(e->shape);
    if (ndim)
        *ndim = r;
    if (shape && r <= NB_MAX_DIMS) {
        int i = 0;
        const cJSON *d;
        cJSON_ArrayForEach(d, e->shape) shape[i++] = (int64_t)d->valuedouble;
    }
    return true;
}

nb_status nb_safetensors_read(nb_safetensors *h, const char *const *names,
                              nb_tensor *const *tensors, int n, unsigned flags) {
    if (!h)
        return nb__set_last_error(NB_ERR_NULL, "nb_safetensors_read: the handle is NULL");
    nb_status st = nb__st_check_args("nb_safetensors_read", h->path, names, tensors, n, false);
    if (st != NB_OK)
        return st;
    if (flags & ~NB_LOAD_ALLOW_NONFINITE)
        return nb__set_last_error(NB_ERR_ARG, "nb_safetensors_read: %s: unknown flags 0x%x",
                                  h->path, flags);
    const entry **found = nb__calloc(n > 0 ? (size_t)n : 1, sizeof *found);
    if (!found)
        return nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory", h->path);
    st = match_request(h, names, tensors, n, found);
    if (st == NB_OK)
        st = read_data(h, found, tensors, n, flags);
    nb__free(found);
    return st;
}

nb_status nb_load_safetensors(const char *path, const char *const *names, nb_tensor *const *tensors,
                              int n) {
    nb_status st = nb__st_check_args("nb_load_safetensors", path, names, tensors, n, false);
    if (st != NB_OK)
        return st;
    nb_safetensors *h = NULL;
    st = nb_safetensors_open(path, &h);
    if (st == NB_OK)
        st = nb_safetensors_read(h, names, tensors, n, 0);
    nb_safetensors_close(h);
    return st;
}
