// Checkpoints in the safetensors format: the reader (layout at the top of safetensors.c). The
// one idea: the file is hostile until proven otherwise. The header is parsed and validated
// once (st_header.c), every length and offset is checked against the file's real size before
// a byte of data is read, and the data is staged and verified (checksums, finite values) so
// that any failure leaves the caller's tensors untouched.
#define _POSIX_C_SOURCE 200809L // open flags, fdopen, fileno, fseeko
#define _FILE_OFFSET_BITS 64    // 64-bit off_t even on 32-bit hosts

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

#include "base/base_impl.h"
#include "io/safetensors_impl.h"
#include "nabla/io.h"

struct nb_safetensors {
    char *path;
    FILE *f;
    int64_t data_start; // file offset of the data buffer
    int64_t data_size;
    nb__st_header h;
};

// Check the file size, then read, check and parse the header.
static nb_status read_header(nb_safetensors *s) {
    const char *path = s->path;
    char why[128];
    struct stat sb;
    if (fstat(fileno(s->f), &sb) != 0)
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
    if (fread(len8, 1, 8, s->f) != 8)
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
    if (hlen > 0 && fread(text, 1, (size_t)hlen, s->f) != hlen) {
        nb__free(text);
        return nb__set_last_error(NB_ERR_IO, "%s: cannot read the header: %s", path,
                                  nb__os_reason(errno, why, sizeof why));
    }
    text[hlen] = '\0';
    // A NUL would end the text early, so "{}\0garbage" would otherwise pass as "{}".
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
    s->data_start = 8 + (int64_t)hlen;
    s->data_size = size - 8 - (int64_t)hlen;
    return nb__st_parse_header(path, text, s->data_size, &s->h); // owns text now
}

static bool same_shape(const nb__st_header *h, const nb__st_entry *e, const nb_tensor *t) {
    if (e->ndim != nb_tensor_ndim(t))
        return false;
    for (int d = 0; d < e->ndim; d++)
        if (h->dims[e->dims + d] != nb_tensor_dim(t, d))
            return false;
    return true;
}

// Resolve each requested name to its entry and compare dtype and shape; nothing is read yet.
static nb_status match_request(const nb_safetensors *s, const char *const *names,
                               nb_tensor *const *tensors, int n, const nb__st_entry **found) {
    const char *path = s->path;
    // The first problem in request order is reported: callers list layers input side first,
    // so the message names the first layer that differs.
    int missing = 0;
    int first_missing = -1;
    for (int i = 0; i < n; i++) {
        const nb__st_entry *e = found[i] = nb__st_find(&s->h, names[i]);
        if (!e) {
            if (missing++ == 0)
                first_missing = i;
            continue;
        }
        if (missing)
            continue;
        const char *want = nb__st_dtype_name(nb_tensor_dtype(tensors[i]));
        const char *have = nb__st_dtype_str(e->dtype);
        if (strcmp(have, want) != 0)
            return nb__set_last_error(NB_ERR_DTYPE, "%s: '%s' has dtype %s, model expects %s", path,
                                      SHOWN(names[i]), have, want);
        if (!same_shape(&s->h, e, tensors[i])) {
            char buf[128];
            return nb__set_last_error(NB_ERR_SHAPE, "%s: '%s' has shape %s, model expects %s", path,
                                      SHOWN(names[i]), nb__st_shape_str(&s->h, e, buf, sizeof buf),
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
static nb_status verify(const nb_safetensors *h, const nb__st_entry *e, const unsigned char *p,
                        size_t len, nb_dtype dt, unsigned flags) {
    if (h->h.checked) {
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
static nb_status read_data(const nb_safetensors *h, const nb__st_entry **found,
                           nb_tensor *const *tensors, int n, unsigned flags) {
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
    nb__st_header_free(&h->h);
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
    if (st != NB_OK) {
        nb_safetensors_close(h);
        return st;
    }
    *out = h;
    return NB_OK;
}

bool nb_safetensors_checked(const nb_safetensors *h) {
    return h && h->h.checked;
}

const char *nb_safetensors_meta(const nb_safetensors *h, const char *key) {
    return h && key ? nb__st_meta(&h->h, key) : NULL;
}

int nb_safetensors_count(const nb_safetensors *h) {
    return h ? h->h.m : 0;
}

const char *nb_safetensors_name(const nb_safetensors *h, int i) {
    return h && i >= 0 && i < h->h.m ? h->h.es[i].name : NULL;
}

bool nb_safetensors_find(const nb_safetensors *h, const char *name, int *dtype, int *ndim,
                         int64_t *shape) {
    const nb__st_entry *e = h && name ? nb__st_find(&h->h, name) : NULL;
    if (!e)
        return false;
    if (dtype) {
        const char *s = nb__st_dtype_str(e->dtype);
        *dtype = !strcmp(s, "F32")   ? NB_F32
                 : !strcmp(s, "F64") ? NB_F64
                 : !strcmp(s, "I32") ? NB_I32
                 : !strcmp(s, "I64") ? NB_I64
                                     : -1;
    }
    if (ndim)
        *ndim = e->ndim;
    for (int d = 0; shape && e->ndim <= NB_MAX_DIMS && d < e->ndim; d++)
        shape[d] = h->h.dims[e->dims + d];
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
    const nb__st_entry **found = nb__calloc(n > 0 ? (size_t)n : 1, sizeof *found);
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
