// Text corpora, continued: windows, the seeded split, batch filling, and the vocabulary's
// conversions (decode to text, encode a prompt, to and from a checkpoint tensor).
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "base/base_impl.h"
#include "data/text_impl.h"
#include "nabla/data.h"

int64_t nb_text_windows(const nb_text *t, int64_t T) {
    if (!t || T < 1 || t->n <= T)
        return 0;
    return (t->n - 1) / T;
}

nb_status nb_text_split(const nb_text *t, int64_t T, double val_fraction, uint64_t seed,
                        int64_t *train, int64_t *n_train, int64_t *val, int64_t *n_val) {
    static const char fn[] = "nb_text_split";
    if (!t || !train || !n_train || !val || !n_val)
        return nb__set_last_error(NB_ERR_NULL, "%s: %s is NULL", fn,
                                  !t         ? "t"
                                  : !train   ? "train"
                                  : !n_train ? "n_train"
                                  : !val     ? "val"
                                             : "n_val");
    *n_train = *n_val = 0;
    if (T < 1 || !(val_fraction >= 0.0 && val_fraction < 1.0))
        return nb__set_last_error(NB_ERR_ARG,
                                  "%s: T = %" PRId64 ", val_fraction = %g (need T >= 1, "
                                  "0 <= val_fraction < 1)",
                                  fn, T, val_fraction);
    int64_t w = nb_text_windows(t, T);
    int64_t nv = (int64_t)llround(val_fraction * (double)w);
    if (val_fraction > 0 && nv < 1)
        nv = 1;
    if (w - nv < 1)
        return nb__set_last_error(
            NB_ERR_FORMAT,
            "%s: a corpus of %" PRId64 " tokens has %" PRId64 " windows of T = %" PRId64
            " (each needs T + 1 tokens): too "
            "short for %s",
            fn, t->n, w, T, nv > 0 ? "a training and a validation window" : "one training window");
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    nb_status st = nb_split_indices(w, nv, &rng, train, val);
    if (st != NB_OK)
        return st;
    *n_train = w - nv;
    *n_val = nv;
    return NB_OK;
}

static nb_status check_batch_tensor(const char *what, nb_tensor *x, int64_t n, int64_t T) {
    if (!x)
        return NB_OK;
    if (nb_tensor_dtype(x) != NB_I32 && nb_tensor_dtype(x) != NB_I64)
        return nb__set_last_error(NB_ERR_DTYPE,
                                  "nb_text_fill_batch: %s is %s, expected int32 or int64", what,
                                  nb_dtype_name(nb_tensor_dtype(x)));
    if (nb_tensor_ndim(x) != 2 || nb_tensor_dim(x, 0) != n || nb_tensor_dim(x, 1) != T)
        return nb__set_last_error(NB_ERR_SHAPE,
                                  "nb_text_fill_batch: %s has %d dims (%" PRId64 ", %" PRId64
                                  "...), expected (%" PRId64 ", %" PRId64 ")",
                                  what, nb_tensor_ndim(x), nb_tensor_dim(x, 0),
                                  nb_tensor_ndim(x) > 1 ? nb_tensor_dim(x, 1) : 0, n, T);
    return NB_OK;
}

// Row i of a checked (n, T) int32 or int64 batch tensor (or none) := T tokens from src.
static void put_window(nb_tensor *x, int64_t i, int64_t T, const int32_t *src) {
    if (x && nb_tensor_dtype(x) == NB_I64) {
        int64_t *d = nb_tensor_data_i64(x) + i * T;
        for (int64_t j = 0; j < T; j++)
            d[j] = src[j];
    } else if (x) {
        memcpy(nb_tensor_data_i32(x) + i * T, src, (size_t)T * sizeof *src);
    }
}

nb_status nb_text_fill_batch(const nb_text *t, int64_t T, const int64_t *windows, int64_t n,
                             nb_tensor *x, nb_tensor *y) {
    static const char fn[] = "nb_text_fill_batch";
    if (!t || (!windows && n > 0))
        return nb__set_last_error(NB_ERR_NULL, "%s: %s is NULL", fn, !t ? "t" : "windows");
    if (T < 1 || n < 0)
        return nb__set_last_error(NB_ERR_ARG, "%s: T = %" PRId64 ", n = %" PRId64, fn, T, n);
    nb_status st = check_batch_tensor("x", x, n, T);
    if (st == NB_OK)
        st = check_batch_tensor("y", y, n, T);
    if (st != NB_OK)
        return st;
    int64_t w = nb_text_windows(t, T);
    for (int64_t i = 0; i < n; i++)
        if (windows[i] < 0 || windows[i] >= w)
            return nb__set_last_error(NB_ERR_ARG,
                                      "%s: windows[%" PRId64 "] = %" PRId64 " outside [0, %" PRId64
                                      ") (corpus of %" PRId64 " tokens, T = %" PRId64 ")",
                                      fn, i, windows[i], w, t->n, T);
    for (int64_t i = 0; i < n; i++) {
        const int32_t *src = t->tokens + windows[i] * T;
        put_window(x, i, T, src);
        put_window(y, i, T, src + 1);
    }
    return NB_OK;
}

// UTF-8 bytes of code point c into out (room for 4); returns the length.
static int utf8_put(uint32_t c, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (c < 0x80) {
        o[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (unsigned char)(0xC0 | c >> 6);
        o[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (unsigned char)(0xE0 | c >> 12);
        o[1] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | c >> 18);
    o[1] = (unsigned char)(0x80 | (c >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

int64_t nb_vocab_decode(const nb_vocab *v, const int32_t *ids, int64_t n, char *buf, size_t cap) {
    if (!v || !v->symbols || (!ids && n > 0) || (!buf && cap > 0) || n < 0) {
        nb__set_last_error(NB_ERR_NULL, "nb_vocab_decode: a NULL argument or n < 0");
        return -1;
    }
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= v->size) {
            nb__set_last_error(NB_ERR_ARG,
                               "nb_vocab_decode: ids[%" PRId64 "] = %" PRId32
                               " outside the vocabulary [0, %" PRId32 ")",
                               i, ids[i], v->size);
            return -1;
        }
    int64_t need = 0;
    size_t used = 0;
    bool full = cap == 0;
    for (int64_t i = 0; i < n; i++) {
        char tmp[4];
        int len = 1;
        uint32_t c = (uint32_t)v->symbols[ids[i]];
        if (v->bytes)
            tmp[0] = (char)(unsigned char)c;
        else
            len = utf8_put(c, tmp);
        need += len;
        if (!full && used + (size_t)len < cap) {
            memcpy(buf + used, tmp, (size_t)len);
            used += (size_t)len;
        } else {
            full = true; // stop at a symbol boundary
        }
    }
    if (cap > 0)
        buf[used] = '\0';
    return need;
}

int64_t nb_vocab_encode(const nb_vocab *v, const char *s, size_t len, int32_t *ids, int64_t cap) {
    if (!v || !v->symbols || (!s && len) || (!ids && cap > 0) || cap < 0) {
        nb__set_last_error(NB_ERR_NULL, "nb_vocab_encode: a NULL argument or cap < 0");
        return -1;
    }
    const uint8_t *p = (const uint8_t *)s;
    int64_t n = 0;
    size_t i = 0;
    while (i < len) {
        uint32_t c = p[i];
        int l = 1;
        if (!v->bytes && (l = nb__utf8_next(p + i, len - i, &c)) == 0) {
            nb__set_last_error(NB_ERR_FORMAT, "nb_vocab_encode: invalid UTF-8 at offset %zu", i);
            return -1;
        }
        int32_t id = nb__vocab_find(v, c);
        if (id < 0) {
            char sym[32];
            nb__symbol_str(v->bytes, c, sym, sizeof sym);
            nb__set_last_error(NB_ERR_FORMAT,
                               "nb_vocab_encode: %s at offset %zu is not in the vocabulary of "
                               "%" PRId32 " symbols",
                               sym, i, v->size);
            return -1;
        }
        if (n < cap)
            ids[n] = id;
        n++;
        i += (size_t)l;
    }
    return n;
}

nb_tensor *nb_vocab_to_tensor(const nb_vocab *v) {
    if (!v || !v->symbols || v->size < 1) {
        nb__set_last_error(NB_ERR_NULL, "nb_vocab_to_tensor: no vocabulary");
        return NULL;
    }
    int64_t shape[1] = {v->size};
    return nb_tensor_from_data(NB_I32, 1, shape, v->symbols);
}

// The tensor's symbols (*out) and count after the checks shared by from_tensor and check.
static nb_status saved_symbols(const char *fn, const nb_tensor *t, const int32_t **out,
                               int32_t *size) {
    if (!t)
        return nb__set_last_error(NB_ERR_NULL, "%s: the tensor is NULL", fn);
    if (nb_tensor_dtype(t) != NB_I32 || nb_tensor_ndim(t) != 1 || nb_tensor_dim(t, 0) < 1 ||
        nb_tensor_dim(t, 0) > INT32_MAX)
        return nb__set_last_error(nb_tensor_dtype(t) != NB_I32 ? NB_ERR_DTYPE : NB_ERR_SHAPE,
                                  "%s: a vocabulary tensor is 1-D non-empty int32; got %s with "
                                  "%d dims (%" PRId64 " elements)",
                                  fn, nb_dtype_name(nb_tensor_dtype(t)), nb_tensor_ndim(t),
                                  nb_tensor_numel(t));
    *size = (int32_t)nb_tensor_dim(t, 0);
    *out = nb_tensor_data_i32((nb_tensor *)(uintptr_t)t);
    return NB_OK;
}

nb_status nb_vocab_from_tensor(const nb_tensor *t, bool bytes, nb_vocab *out) {
    static const char fn[] = "nb_vocab_from_tensor";
    if (out)
        memset(out, 0, sizeof *out);
    if (!out)
        return nb__set_last_error(NB_ERR_NULL, "%s: out is NULL", fn);
    int32_t n = 0;
    const int32_t *s = NULL;
    nb_status st = saved_symbols(fn, t, &s, &n);
    if (st != NB_OK)
        return st;
    int32_t lim = bytes ? 256 : 0x110000;
    for (int32_t i = 0; i < n; i++)
        if (s[i] < 0 || s[i] >= lim || (s[i] >= 0xD800 && s[i] <= 0xDFFF && !bytes) ||
            (i > 0 && s[i] <= s[i - 1]))
            return nb__set_last_error(NB_ERR_FORMAT,
                                      "%s: id %" PRId32 " holds %" PRId32 ": not a strictly "
                                      "ascending list of %s",
                                      fn, i, s[i], bytes ? "bytes" : "code points");
    out->symbols = nb__malloc((size_t)n * sizeof *out->symbols);
    if (!out->symbols)
        return nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory", fn);
    memcpy(out->symbols, s, (size_t)n * sizeof *s);
    out->size = n;
    out->bytes = bytes;
    return NB_OK;
}

nb_status nb_vocab_check(const nb_vocab *v, const nb_tensor *saved) {
    static const char fn[] = "nb_vocab_check";
    if (!v || !v->symbols)
        return nb__set_last_error(NB_ERR_NULL, "%s: no vocabulary", fn);
    int32_t n = 0;
    const int32_t *s = NULL;
    nb_status st = saved_symbols(fn, saved, &s, &n);
    if (st != NB_OK)
        return st;
    int32_t common = n < v->size ? n : v->size;
    int32_t i = 0;
    while (i < common && s[i] == v->symbols[i])
        i++;
    if (i == common && n == v->size)
        return NB_OK;
    char a[32] = "nothing";
    char b[32] = "nothing";
    if (i < n)
        nb__symbol_str(v->bytes, (uint32_t)s[i], a, sizeof a);
    if (i < v->size)
        nb__symbol_str(v->bytes, (uint32_t)v->symbols[i], b, sizeof b);
    return nb__set_last_error(NB_ERR_FORMAT,
                              "vocabulary mismatch: checkpoint has %" PRId32
                              " symbols, corpus %" PRId32 "; id %" PRId32
                              " is %s in the checkpoint, %s in the corpus",
                              n, v->size, i, a, b);
}

void nb_vocab_free(nb_vocab *v) {
    if (!v)
        return;
    nb__free(v->symbols);
    memset(v, 0, sizeof *v);
}
