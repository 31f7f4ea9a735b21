// IDX (MNIST) file loading. Files are read through zlib's gz* stream, which decompresses gzip
// and passes raw files through unchanged, so one code path serves both. A file is trusted for
// nothing: the header is validated before any allocation, the payload must be exactly as long as
// the header says (one extra read probes for trailing data and lets zlib verify the gzip CRC),
// and both headers are checked against each other before the large image payload is read.
#define _POSIX_C_SOURCE 200809L // fstat, fcntl, O_CLOEXEC

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "base/base_impl.h"
#include "data/data_impl.h"

#define IDX_TYPE_UBYTE 0x08
#define IDX_MAGIC_IMAGES 0x00000803u // ubyte, 3 dims (n, rows, cols)
#define IDX_MAGIC_LABELS 0x00000801u // ubyte, 1 dim (n)
// Plausibility bounds so a corrupt header fails cleanly instead of requesting terabytes. With
// sides <= 2^14 and n < 2^32 the byte count n * rows * cols stays below 2^60: no overflow.
// The bytes actually kept are further capped by nb_idx_options.max_bytes.
#define IDX_MAX_SIDE 16384
#define IDX_CHUNK (1u << 20) // gzread takes an unsigned length: read in chunks

typedef struct idx_file {
    const char *path;
    gzFile gz;        // NULL when closed
    uint64_t dims[3]; // header sizes, dims[0] = item count
    const volatile sig_atomic_t *cancel;
} idx_file;

static uint32_t read_be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void idx_close(idx_file *f) {
    if (f->gz)
        gzclose(f->gz);
    f->gz = NULL;
}

// Reads up to n bytes; returns how many arrived (fewer at end of stream or on an error, which
// the caller then classifies with stream_error).
static size_t read_upto(const idx_file *f, void *buf, size_t n) {
    gzFile gz = f->gz;
    unsigned char *p = buf;
    size_t got = 0;
    while (got < n && !(f->cancel && *f->cancel)) {
        size_t want = n - got < IDX_CHUNK ? n - got : IDX_CHUNK;
        int r = gzread(gz, p + got, (unsigned)want);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

// Classifies the stream state after a short read. Returns NB_OK when the data simply ended
// (the caller reports the truncation with counts), otherwise records the stream's own error.
// zlib reports a gzip member cut short as Z_BUF_ERROR; when end_is_error is set (after the
// payload, where the stream must end cleanly) that too is a format error.
static nb_status stream_error(const idx_file *f, bool end_is_error) {
    int code = Z_OK;
    int saved_errno = errno;
    const char *msg = gzerror(f->gz, &code);
    switch (code) {
    case Z_OK:
        return NB_OK;
    case Z_BUF_ERROR:
        if (!end_is_error)
            return NB_OK;
        return nb__set_last_error(NB_ERR_FORMAT, "idx: %s: truncated gzip stream: %s", f->path,
                                  msg);
    case Z_ERRNO:
        return nb__set_last_error(NB_ERR_IO, "idx: %s: read error: %s", f->path,
                                  strerror(saved_errno));
    case Z_MEM_ERROR:
        return nb__set_last_error(NB_ERR_NOMEM, "idx: %s: out of memory in zlib", f->path);
    default:
        return nb__set_last_error(NB_ERR_FORMAT, "idx: %s: corrupt gzip data: %s", f->path, msg);
    }
}

static nb_status interrupted(const idx_file *f) {
    return nb__set_last_error(NB_ERR_STATE, "idx: %s: interrupted while loading", f->path);
}

// Opens `path` and validates an unsigned-byte IDX header with `ndims` dimensions (1 or 3).
// On success f->gz is open and positioned at the payload; on failure it is closed.
static nb_status idx_open(idx_file *f, const char *path, int ndims) {
    const uint32_t want_magic = ndims == 3 ? IDX_MAGIC_IMAGES : IDX_MAGIC_LABELS;
    unsigned char head[4 + 4 * 3];
    size_t head_len = 4 + 4 * (size_t)ndims;
    nb_status st;

    f->path = path;
    // O_NONBLOCK so that a FIFO named like a data file fails the regular-file check below
    // instead of blocking in open() for a writer; it is cleared again for the reads.
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return nb__set_last_error(NB_ERR_IO, "idx: %s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    memset(&sb, 0, sizeof sb);
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        int e = errno;
        close(fd);
        return nb__set_last_error(
            NB_ERR_IO, "idx: %s: %s", path,
            S_ISDIR(sb.st_mode)    ? "is a directory, not a data file"
            : S_ISFIFO(sb.st_mode) ? "is a FIFO (named pipe), not a regular file"
            : S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode) ? "is a device, not a regular file"
            : e                                          ? strerror(e)
                                                         : "is not a regular file");
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl == -1 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1) {
        int e = errno;
        close(fd);
        return nb__set_last_error(NB_ERR_IO, "idx: %s: cannot open: %s", path, strerror(e));
    }
    errno = 0;
    f->gz = gzdopen(fd, "rb");
    if (!f->gz) {
        close(fd);
        return nb__set_last_error(NB_ERR_NOMEM, "idx: %s: cannot open: out of memory", path);
    }
    gzbuffer(f->gz, 1u << 17); // fewer syscalls than zlib's 8 KiB default

    // Read the dims only after the magic matched, so their count is known to be right.
    size_t got = read_upto(f, head, 4);
    bool magic_ok =
        got == 4 && head[0] == 0 && head[1] == 0 && head[2] == IDX_TYPE_UBYTE && head[3] == ndims;
    if (magic_ok)
        got += read_upto(f, head + 4, head_len - 4);
    if (f->cancel && *f->cancel) {
        idx_close(f);
        return interrupted(f);
    }
    if (got < (magic_ok ? head_len : 4) && (st = stream_error(f, false)) != NB_OK) {
        idx_close(f);
        return st;
    }
    if (got < 4) {
        idx_close(f);
        return nb__set_last_error(NB_ERR_FORMAT, "idx: %s: %s (%zu bytes): no IDX header", path,
                                  got ? "too short" : "empty file", got);
    }
    uint32_t magic = read_be32(head);
    st = NB_ERR_FORMAT;
    if (head[0] != 0 || head[1] != 0)
        nb__set_last_error(st,
                           "idx: %s: bad magic 0x%08" PRIx32 ": not an IDX file (expected "
                           "0x%08" PRIx32 ")",
                           path, magic, want_magic);
    else if (head[2] != IDX_TYPE_UBYTE)
        nb__set_last_error(st,
                           "idx: %s: bad magic 0x%08" PRIx32 ": element type 0x%02x is not "
                           "unsigned byte (0x08)",
                           path, magic, (unsigned)head[2]);
    else if (head[3] != ndims)
        nb__set_last_error(st,
                           "idx: %s: bad magic 0x%08" PRIx32 ": %d dimension(s), expected "
                           "%d (%s file, magic 0x%08" PRIx32 ")",
                           path, magic, head[3], ndims,
                           ndims == 3 ? "an idx3 image" : "an idx1 label", want_magic);
    else if (got < head_len)
        nb__set_last_error(st, "idx: %s: truncated header: %zu of %zu bytes", path, got, head_len);
    else
        st = NB_OK;
    if (st != NB_OK) {
        idx_close(f);
        return st;
    }

    for (int i = 0; i < ndims; i++)
        f->dims[i] = read_be32(head + 4 + 4 * i);
    if (ndims == 1 && f->dims[0] == 0)
        st = nb__set_last_error(NB_ERR_FORMAT, "idx: %s: no labels (count is 0)", path);
    if (ndims == 3) {
        uint64_t rows = f->dims[1];
        uint64_t cols = f->dims[2];
        if (f->dims[0] == 0)
            st = nb__set_last_error(NB_ERR_FORMAT, "idx: %s: no images (count is 0)", path);
        else if (rows == 0 || cols == 0 || rows > IDX_MAX_SIDE || cols > IDX_MAX_SIDE)
            st = nb__set_last_error(NB_ERR_FORMAT,
                                    "idx: %s: implausible image size %" PRIu64 "x%" PRIu64
                                    " (each side must be 1..%d)",
                                    path, rows, cols, IDX_MAX_SIDE);
    }
    if (st != NB_OK)
        idx_close(f);
    return st;
}

// Reads exactly n_items * item_bytes payload bytes into a new buffer *out, then requires the
// stream to end right there. `noun` names the items in messages ("images", "labels").
// The buffer grows geometrically as bytes actually arrive, so a header that lies about a huge
// count (a gzip file cannot be sized in advance) fails as truncated after a small allocation
// instead of reserving gigabytes first.
// With `whole` false only the first n_items of a longer file are wanted (--limit): the stream
// is left there, unread, and not checked for its end.
static nb_status idx_read_payload(idx_file *f, uint8_t **out, uint64_t n_items, size_t item_bytes,
                                  const char *noun, bool whole) {
    size_t want = (size_t)n_items * item_bytes;
    size_t cap = want < ((size_t)1 << 20) ? want : ((size_t)1 << 20);
    size_t got = 0;
    uint8_t *dst = NULL;
    nb_status st;
    *out = NULL;
    for (;;) {
        uint8_t *grown = nb__realloc(dst, cap);
        if (!grown) {
            nb__free(dst);
            return nb__set_last_error(NB_ERR_NOMEM, "idx: %s: out of memory for %" PRIu64 " %s",
                                      f->path, n_items, noun);
        }
        dst = grown;
        got += read_upto(f, dst + got, cap - got);
        if (got < cap || cap == want)
            break;
        cap = cap > want / 2 ? want : cap * 2;
    }
    *out = dst; // owned by the caller from here on, also on error
    if (f->cancel && *f->cancel)
        return interrupted(f);
    if (got < want) {
        if ((st = stream_error(f, false)) != NB_OK)
            return st;
        if (item_bytes > 1)
            return nb__set_last_error(NB_ERR_FORMAT,
                                      "idx: %s: truncated: expected %" PRIu64
                                      " %s, got %zu (%zu of %zu payload bytes)",
                                      f->path, n_items, noun, got / item_bytes, got, want);
        return nb__set_last_error(NB_ERR_FORMAT,
                                  "idx: %s: truncated: expected %" PRIu64 " %s, got %zu", f->path,
                                  n_items, noun, got);
    }
    if (!whole)
        return NB_OK;
    unsigned char extra;
    if (gzread(f->gz, &extra, 1) > 0)
        return nb__set_last_error(
            NB_ERR_FORMAT, "idx: %s: trailing data after the %" PRIu64 " %s the header declares",
            f->path, n_items, noun);
    return stream_error(f, true);
}

// Every label must index a class: report how many do not and the first offender.
static nb_status check_labels(const char *path, const uint8_t *labels, uint64_t n,
                              int64_t n_classes) {
    uint64_t bad = 0;
    uint64_t first = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (labels[i] >= n_classes && bad++ == 0)
            first = i;
    }
    if (bad == 0)
        return NB_OK;
    return nb__set_last_error(NB_ERR_FORMAT,
                              "idx: %s: %" PRIu64 " bad label(s) for %" PRId64 " classes; "
                              "first: label %u at index %" PRIu64,
                              path, bad, n_classes, (unsigned)labels[first], first);
}

nb_status nb_idx_load(const char *images_path, const char *labels_path, nb_dataset *out) {
    return nb_idx_load_ex(images_path, labels_path, NULL, out);
}

nb_status nb_idx_load_ex(const char *images_path, const char *labels_path,
                         const nb_idx_options *opts, nb_dataset *out) {
    if (!out)
        return nb__set_last_error(NB_ERR_NULL, "nb_idx_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!images_path || !labels_path)
        return nb__set_last_error(NB_ERR_NULL, "nb_idx_load: %s path is NULL",
                                  images_path ? "labels" : "images");
    nb_idx_options o = {0};
    if (opts)
        o = *opts;
    if (o.limit < 0)
        return nb__set_last_error(NB_ERR_ARG, "nb_idx_load: limit %" PRId64 " is negative",
                                  o.limit);
    int64_t n_classes = o.n_classes ? o.n_classes : NB_MNIST_CLASSES;
    if (n_classes < 1 || n_classes > 256)
        return nb__set_last_error(NB_ERR_ARG,
                                  "nb_idx_load: n_classes %" PRId64 " is outside [1, 256] (labels "
                                  "are uint8)",
                                  o.n_classes);
    uint64_t max_bytes = o.max_bytes ? o.max_bytes : NB_IDX_DEFAULT_MAX_BYTES;
    if ((uint64_t)SIZE_MAX / 2 < max_bytes) // a 32-bit host: the buffer must fit a size_t
        max_bytes = (uint64_t)SIZE_MAX / 2;

    idx_file img = {.cancel = o.cancel};
    idx_file lab = {.cancel = o.cancel};
    uint8_t *labels = NULL;
    uint8_t *images = NULL;
    uint64_t n = 0;
    size_t pixels = 0; // per image
    nb_status st;

    // Both headers first: a mismatch is reported before the large payload is read.
    if ((st = idx_open(&img, images_path, 3)) != NB_OK)
        goto fail;
    if ((st = idx_open(&lab, labels_path, 1)) != NB_OK)
        goto fail;
    if (o.cancel && *o.cancel) {
        st = interrupted(&img);
        goto fail;
    }
    n = img.dims[0];
    pixels = (size_t)(img.dims[1] * img.dims[2]); // bounded by idx_open
    // The cap applies to what is kept: the header's claim (n x rows x cols, below 2^60 by
    // idx_open's bounds), or the first `limit` images of it. Checked before anything else is
    // read or allocated.
    bool whole = o.limit == 0 || (uint64_t)o.limit >= n;
    uint64_t kept = whole ? n : (uint64_t)o.limit;
    if (kept * pixels > max_bytes) {
        st = nb__set_last_error(
            NB_ERR_FORMAT,
            "idx: %s: implausible size: %" PRIu64 " images of %" PRIu64 "x%" PRIu64 " are %" PRIu64
            " MiB, over the %" PRIu64 " MiB limit on loaded data (raise it, or load fewer)",
            images_path, kept, img.dims[1], img.dims[2], (kept * pixels) >> 20, max_bytes >> 20);
        goto fail;
    }
    if (lab.dims[0] != n) {
        st = nb__set_last_error(NB_ERR_FORMAT,
                                "idx: count mismatch: %s has %" PRIu64 " images "
                                "but %s has %" PRIu64 " labels",
                                images_path, n, labels_path, lab.dims[0]);
        goto fail;
    }

    n = kept;
    if ((st = idx_read_payload(&lab, &labels, n, 1, "labels", whole)) != NB_OK)
        goto fail;
    if ((st = check_labels(labels_path, labels, n, n_classes)) != NB_OK)
        goto fail;
    if ((st = idx_read_payload(&img, &images, n, pixels, "images", whole)) != NB_OK)
        goto fail;
    // The buffer grew by doubling as bytes arrived, so it could not be placed on huge pages up
    // front: collapse it onto them in place now that it is written.
    nb__data_huge_pages(images, (size_t)n * pixels, true);
    idx_close(&lab);
    idx_close(&img);

    out->n = (int64_t)n;
    out->rows = (int64_t)img.dims[1];
    out->cols = (int64_t)img.dims[2];
    out->n_classes = n_classes;
    out->images = images;
    out->labels = labels;
    out->sample_ndim = 3; // one channel: (1, rows, cols)
    out->sample_shape[0] = 1;
    out->sample_shape[1] = out->rows;
    out->sample_shape[2] = out->cols;
    return NB_OK;

fail:
    idx_close(&lab);
    idx_close(&img);
    nb__free(labels);
    nb__free(images);
    return st;
}

// *path := "<dir>/<split>-<kind>-ubyte.gz" if that name exists, else the raw name if it exists.
// The caller frees *path.
static nb_status mnist_path(const char *dir, const char *split, const char *kind, char **path) {
    size_t len = strlen(dir) + strlen(split) + strlen(kind) + sizeof "/--ubyte.gz";
    char *p = nb__malloc(len);
    *path = NULL;
    if (!p)
        return nb__set_last_error(NB_ERR_NOMEM, "mnist: out of memory");
    for (int gz = 1; gz >= 0; gz--) {
        snprintf(p, len, "%s/%s-%s-ubyte%s", dir, split, kind, gz ? ".gz" : "");
        struct stat sb; // stat, not open: opening a FIFO would block (idx_open refuses it)
        if (stat(p, &sb) == 0) {
            *path = p;
            return NB_OK;
        }
    }
    nb_status st =
        nb__set_last_error(NB_ERR_IO, "mnist: cannot open %s or %s.gz: %s", p, p, strerror(errno));
    nb__free(p);
    return st;
}

nb_status nb_mnist_load(const char *dir, const char *split, nb_dataset *out) {
    return nb_mnist_load_ex(dir, split, NULL, out);
}

nb_status nb_mnist_load_ex(const char *dir, const char *split, const nb_idx_options *opts,
                           nb_dataset *out) {
    if (!out)
        return nb__set_last_error(NB_ERR_NULL, "nb_mnist_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!dir || !split)
        return nb__set_last_error(NB_ERR_NULL, "nb_mnist_load: %s is NULL", dir ? "split" : "dir");
    if (strcmp(split, "train") != 0 && strcmp(split, "t10k") != 0)
        return nb__set_last_error(NB_ERR_ARG,
                                  "nb_mnist_load: split \"%s\" is not \"train\" or "
                                  "\"t10k\"",
                                  split);
    char *images = NULL;
    char *labels = NULL;
    nb_status st = mnist_path(dir, split, "images-idx3", &images);
    if (st == NB_OK)
        st = mnist_path(dir, split, "labels-idx1", &labels);
    if (st == NB_OK)
        st = nb_idx_load_ex(images, labels, opts, out);
    nb__free(images);
    nb__free(labels);
    return st;
}
