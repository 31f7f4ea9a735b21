// Text corpora: files read whole into one byte buffer, checked (no NUL bytes, strict UTF-8
// unless tokenising bytes), then tokenised. A first pass turns every symbol into its code point
// (or byte value) in the token array and marks it in a presence bitmap; the vocabulary is the
// marked symbols in ascending order; a second pass replaces each code point by its id with a
// binary search in the vocabulary (a few hundred symbols: ~8 comparisons per token).
#define _POSIX_C_SOURCE 200809L // fstat, fcntl, O_CLOEXEC, fstatat, opendir

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base_impl.h"
#include "data/text_impl.h"
#include "nabla/data.h"

#define CODE_POINTS 0x110000u // Unicode's code space: U+0000..U+10FFFF

int nb__utf8_next(const uint8_t *p, size_t n, uint32_t *cp) {
    uint8_t b = p[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    int len;
    uint32_t c;
    uint32_t min;
    if (b >= 0xC2 && b <= 0xDF) {
        len = 2, c = b & 0x1Fu, min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3, c = b & 0x0Fu, min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4, c = b & 0x07u, min = 0x10000;
    } else {
        return 0; // a continuation byte, an overlong lead (C0, C1) or F5..FF
    }
    if (n < (size_t)len)
        return 0;
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (p[i] & 0x3Fu);
    }
    if (c < min || c >= CODE_POINTS || (c >= 0xD800 && c <= 0xDFFF))
        return 0; // overlong, beyond U+10FFFF, or a UTF-16 surrogate
    *cp = c;
    return len;
}

int32_t nb__vocab_find(const nb_vocab *v, uint32_t sym) {
    int32_t lo = 0;
    int32_t hi = v->size;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if ((uint32_t)v->symbols[mid] < sym)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < v->size && (uint32_t)v->symbols[lo] == sym ? lo : -1;
}

void nb__symbol_str(bool bytes, uint32_t sym, char *out, size_t cap) {
    if (bytes || sym < 0x20 || sym == 0x7F || sym > 0x7E) {
        if (bytes)
            snprintf(out, cap, "byte 0x%02X", (unsigned)sym);
        else
            snprintf(out, cap, "U+%04X", (unsigned)sym);
    } else {
        snprintf(out, cap, "'%c'", (char)sym);
    }
}

typedef struct text_part { // one file's bytes inside the whole buffer
    const char *name;
    size_t off, len;
} text_part;

typedef struct text_options { // nb_text_options with the defaults filled in
    bool bytes;
    uint64_t max_bytes;
    int32_t max_vocab;
    const nb_vocab *vocab;
} text_options;

static nb_status resolve_options(const nb_text_options *opts, text_options *o) {
    nb_text_options in = opts ? *opts : (nb_text_options){0};
    o->bytes = in.bytes;
    o->max_bytes = in.max_bytes ? in.max_bytes : NB_TEXT_DEFAULT_MAX_BYTES;
    if (o->max_bytes > (uint64_t)SIZE_MAX / 8) // tokens take 4 bytes each: keep the sizes small
        o->max_bytes = (uint64_t)SIZE_MAX / 8;
    o->max_vocab = in.max_vocab ? in.max_vocab : NB_TEXT_DEFAULT_MAX_VOCAB;
    o->vocab = in.vocab;
    if (in.max_vocab < 0)
        return nb__set_last_error(NB_ERR_ARG, "text: max_vocab = %" PRId32 " (must be >= 0)",
                                  in.max_vocab);
    if (o->vocab) {
        const nb_vocab *v = o->vocab;
        if (v->size < 1 || !v->symbols)
            return nb__set_last_error(NB_ERR_ARG, "text: the given vocabulary is empty");
        if (v->bytes != o->bytes)
            return nb__set_last_error(
                NB_ERR_ARG, "text: the given vocabulary is of %s but the options ask for %s",
                v->bytes ? "bytes" : "characters", o->bytes ? "bytes" : "characters");
        for (int32_t i = 0; i < v->size; i++) {
            uint32_t lim = v->bytes ? 256u : CODE_POINTS;
            if (v->symbols[i] < 0 || (uint32_t)v->symbols[i] >= lim ||
                (i > 0 && v->symbols[i] <= v->symbols[i - 1]))
                return nb__set_last_error(NB_ERR_ARG,
                                          "text: the given vocabulary is not strictly ascending "
                                          "valid symbols (id %" PRId32 " holds %" PRId32 ")",
                                          i, v->symbols[i]);
        }
    }
    return NB_OK;
}

// First pass over one part: code points (or bytes) into tok[*n...], marked in `seen` (a bitmap,
// or NULL with a fixed vocabulary, whose membership is checked instead).
static nb_status scan_part(const uint8_t *buf, const text_part *p, const text_options *o,
                           uint32_t *seen, int32_t *tok, int64_t *n) {
    const uint8_t *s = buf + p->off;
    size_t i = 0;
    while (i < p->len) {
        uint32_t cp;
        int len = 1;
        if (s[i] == 0)
            return nb__set_last_error(NB_ERR_FORMAT,
                                      "text: %s: a NUL byte at offset %zu: binary data, not text",
                                      p->name, i);
        if (o->bytes) {
            cp = s[i];
        } else {
            len = nb__utf8_next(s + i, p->len - i, &cp);
            if (len == 0)
                return nb__set_last_error(NB_ERR_FORMAT,
                                          "text: %s: invalid UTF-8 at offset %zu (byte 0x%02X); "
                                          "tokenise bytes instead (bytes = true) if intended",
                                          p->name, i, (unsigned)s[i]);
        }
        if (seen) {
            seen[cp >> 5] |= 1u << (cp & 31);
        } else if (nb__vocab_find(o->vocab, cp) < 0) {
            char sym[32];
            nb__symbol_str(o->bytes, cp, sym, sizeof sym);
            return nb__set_last_error(NB_ERR_FORMAT,
                                      "text: %s: %s at offset %zu is not in the given vocabulary "
                                      "of %" PRId32 " symbols",
                                      p->name, sym, i, o->vocab->size);
        }
        tok[(*n)++] = (int32_t)cp;
        i += (size_t)len;
    }
    return NB_OK;
}

// Tokenises parts[0..n_parts) of buf into *out (zeroed on error).
static nb_status tokenise(const uint8_t *buf, size_t total, const text_part *parts, int n_parts,
                          const text_options *o, nb_text *out) {
    if (total == 0)
        return nb__set_last_error(NB_ERR_FORMAT, "text: %s%s: the corpus is empty",
                                  n_parts == 1 ? "" : "every file of ", parts[0].name);
    nb_text t = {0};
    uint32_t *seen = NULL;
    nb_status st = NB_OK;
    t.tokens = nb__malloc(total * sizeof *t.tokens);
    if (!o->vocab)
        seen = nb__calloc(CODE_POINTS / 32, sizeof *seen);
    if (!t.tokens || (!o->vocab && !seen)) {
        st = nb__set_last_error(NB_ERR_NOMEM, "text: out of memory for %zu tokens", total);
        goto fail;
    }
    for (int k = 0; k < n_parts && st == NB_OK; k++)
        st = scan_part(buf, &parts[k], o, seen, t.tokens, &t.n);
    if (st != NB_OK)
        goto fail;
    if (o->vocab) {
        t.vocab.size = o->vocab->size;
        t.vocab.symbols = nb__malloc((size_t)t.vocab.size * sizeof *t.vocab.symbols);
        if (!t.vocab.symbols) {
            st = nb__set_last_error(NB_ERR_NOMEM, "text: out of memory for the vocabulary");
            goto fail;
        }
        memcpy(t.vocab.symbols, o->vocab->symbols, (size_t)t.vocab.size * sizeof *t.vocab.symbols);
    } else {
        int64_t count = 0;
        for (uint32_t w = 0; w < CODE_POINTS / 32; w++)
            count += __builtin_popcount(seen[w]);
        if (count > o->max_vocab) {
            st = nb__set_last_error(NB_ERR_FORMAT,
                                    "text: %s: %" PRId64 " distinct symbols, more than max_vocab "
                                    "= %" PRId32,
                                    parts[0].name, count, o->max_vocab);
            goto fail;
        }
        t.vocab.size = (int32_t)count;
        t.vocab.symbols = nb__malloc((size_t)count * sizeof *t.vocab.symbols);
        if (!t.vocab.symbols) {
            st = nb__set_last_error(NB_ERR_NOMEM, "text: out of memory for the vocabulary");
            goto fail;
        }
        int32_t k = 0;
        for (uint32_t w = 0; w < CODE_POINTS / 32; w++)
            for (uint32_t bits = seen[w]; bits; bits &= bits - 1) // each set bit, ascending
                t.vocab.symbols[k++] = (int32_t)(w * 32 + (uint32_t)__builtin_ctz(bits));
    }
    t.vocab.bytes = o->bytes;
    for (int64_t i = 0; i < t.n; i++)
        t.tokens[i] = nb__vocab_find(&t.vocab, (uint32_t)t.tokens[i]);
    nb__free(seen);
    *out = t;
    return NB_OK;
fail:
    nb__free(seen);
    nb_text_free(&t);
    return st;
}

nb_status nb_text_from_memory(const void *data, size_t len, const char *name,
                              const nb_text_options *opts, nb_text *out) {
    if (out)
        memset(out, 0, sizeof *out);
    if (!out || (!data && len))
        return nb__set_last_error(NB_ERR_NULL, "nb_text_from_memory: %s is NULL",
                                  out ? "data" : "out");
    text_options o;
    nb_status st = resolve_options(opts, &o);
    if (st != NB_OK)
        return st;
    text_part part = {name ? name : "<memory>", 0, len};
    if (len > o.max_bytes)
        return nb__set_last_error(NB_ERR_FORMAT,
                                  "text: %s: %zu bytes, more than max_bytes = %" PRIu64, part.name,
                                  len, o.max_bytes);
    return tokenise(data, len, &part, 1, &o, out);
}

// Appends the regular file `path` to *buf (capacity *cap, length *len), refusing more than
// max bytes in all.
static nb_status read_file(const char *path, uint8_t **buf, size_t *cap, size_t *len,
                           uint64_t max) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return nb__set_last_error(NB_ERR_IO, "text: %s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    memset(&sb, 0, sizeof sb);
    nb_status st = NB_OK;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st =
            nb__set_last_error(NB_ERR_IO, "text: %s: %s", path,
                               S_ISDIR(sb.st_mode)    ? "is a directory, not a text file"
                               : S_ISFIFO(sb.st_mode) ? "is a FIFO (named pipe), not a regular file"
                                                      : "is not a regular file");
        goto done;
    }
    if ((uint64_t)sb.st_size > max - *len) {
        st = nb__set_last_error(NB_ERR_FORMAT,
                                "text: %s: %" PRIu64 " bytes would take the corpus past "
                                "max_bytes = %" PRIu64,
                                path, (uint64_t)sb.st_size, max);
        goto done;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl == -1 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1) {
        st = nb__set_last_error(NB_ERR_IO, "text: %s: cannot read: %s", path, strerror(errno));
        goto done;
    }
    // Read until end of file, with one byte of room beyond the stat size to notice a file that
    // grew (st_size <= max - *len, so need <= max + 1).
    size_t need = *len + (size_t)sb.st_size + 1;
    for (;;) {
        if (need > *cap) {
            uint8_t *nb = nb__realloc(*buf, need);
            if (!nb) {
                st = nb__set_last_error(NB_ERR_NOMEM, "text: %s: out of memory for %zu bytes", path,
                                        need);
                goto done;
            }
            *buf = nb;
            *cap = need;
        }
        ssize_t r = read(fd, *buf + *len, *cap - *len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            st = nb__set_last_error(NB_ERR_IO, "text: %s: read error: %s", path, strerror(errno));
            goto done;
        }
        if (r == 0)
            break;
        *len += (size_t)r;
        if (*len == *cap) // the file grew: double the room, up to one byte past the limit
            need = *cap * 2 > (size_t)max + 1 ? (size_t)max + 1 : *cap * 2;
        if (*len > max) {
            st = nb__set_last_error(NB_ERR_FORMAT,
                                    "text: %s: the corpus grew past max_bytes = %" PRIu64
                                    " while being read",
                                    path, max);
            goto done;
        }
    }
done:
    close(fd);
    return st;
}

nb_status nb_text_load(const char *const *paths, int n_paths, const nb_text_options *opts,
                       nb_text *out) {
    if (out)
        memset(out, 0, sizeof *out);
    if (!out || !paths)
        return nb__set_last_error(NB_ERR_NULL, "nb_text_load: %s is NULL", out ? "paths" : "out");
    if (n_paths < 1)
        return nb__set_last_error(NB_ERR_ARG, "nb_text_load: n_paths = %d (need >= 1)", n_paths);
    for (int i = 0; i < n_paths; i++)
        if (!paths[i])
            return nb__set_last_error(NB_ERR_NULL, "nb_text_load: paths[%d] is NULL", i);
    text_options o;
    nb_status st = resolve_options(opts, &o);
    if (st != NB_OK)
        return st;
    text_part *parts = nb__calloc((size_t)n_paths, sizeof *parts);
    if (!parts)
        return nb__set_last_error(NB_ERR_NOMEM, "nb_text_load: out of memory");
    uint8_t *buf = NULL;
    size_t cap = 0;
    size_t len = 0;
    for (int i = 0; i < n_paths && st == NB_OK; i++) {
        parts[i].name = paths[i];
        parts[i].off = len;
        st = read_file(paths[i], &buf, &cap, &len, o.max_bytes);
        parts[i].len = len - parts[i].off;
    }
    if (st == NB_OK)
        st = tokenise(buf, len, parts, n_paths, &o, out);
    nb__free(buf);
    nb__free(parts);
    return st;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

nb_status nb_text_load_dir(const char *dir, const nb_text_options *opts, nb_text *out) {
    if (out)
        memset(out, 0, sizeof *out);
    if (!out || !dir)
        return nb__set_last_error(NB_ERR_NULL, "nb_text_load_dir: %s is NULL", out ? "dir" : "out");
    DIR *d = opendir(dir);
    if (!d)
        return nb__set_last_error(NB_ERR_IO, "text: %s: cannot open the directory: %s", dir,
                                  strerror(errno));
    char **paths = nb__calloc(NB_TEXT_MAX_FILES, sizeof *paths);
    int n = 0;
    nb_status st = paths ? NB_OK : nb__set_last_error(NB_ERR_NOMEM, "text: out of memory");
    struct dirent *e;
    while (st == NB_OK && (e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        size_t l = strlen(nm);
        if (nm[0] == '.' || (l >= 4 && strcmp(nm + l - 4, ".dat") == 0))
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), nm, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (n == NB_TEXT_MAX_FILES) {
            st = nb__set_last_error(NB_ERR_FORMAT, "text: %s: more than %d files", dir,
                                    NB_TEXT_MAX_FILES);
            break;
        }
        size_t pl = strlen(dir) + 1 + l + 1;
        paths[n] = nb__malloc(pl);
        if (!paths[n]) {
            st = nb__set_last_error(NB_ERR_NOMEM, "text: out of memory");
            break;
        }
        snprintf(paths[n++], pl, "%s/%s", dir, nm);
    }
    closedir(d);
    if (st == NB_OK && n == 0)
        st = nb__set_last_error(
            NB_ERR_FORMAT, "text: %s: no text files (regular files not named .* or *.dat)", dir);
    if (st == NB_OK) {
        qsort(paths, (size_t)n, sizeof *paths, cmp_names);
        st = nb_text_load((const char *const *)paths, n, opts, out);
    }
    for (int i = 0; i < n; i++)
        nb__free(paths[i]);
    nb__free(paths);
    return st;
}

void nb_text_free(nb_text *t) {
    if (!t)
        return;
    nb__free(t->tokens);
    nb_vocab_free(&t->vocab);
    memset(t, 0, sizeof *t);
}
