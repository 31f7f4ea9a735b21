// The safetensors header, parsed and validated once into a compact form. A purpose-built
// JSON reader instead of a DOM: strings are decoded in place in the header text (JSON escapes
// never get longer when decoded) and every entry becomes 48 bytes plus 8 per dimension, so a
// header costs at most ~2.5x its size in memory at the peak (tests/test_io_integrity.c), where
// a general JSON tree cost over 10x (1 GB for an 89 MB header of 1.3 M entries; now 178 MB).
// Everything in the header is checked: JSON syntax (RFC 8259, nesting at most MAX_DEPTH), entries
// (known dtype, exact integer shape and offsets consistent with the data buffer), metadata (strings
// only), duplicates, and, in st_check.c, the tiling of the data buffer and nabla's checksum keys.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base_impl.h"
#include "io/safetensors_impl.h"

#define MAX_DEPTH 64 // nesting of values the format does not use (skipped extra fields)
// The shortest valid entry: "a":{"dtype":"U8","shape":[],"data_offsets":[0,0]},
#define MIN_ENTRY 47

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

const char *nb__st_dtype_str(int k) {
    return st_dtypes[k].name;
}

const char *nb__st_shown(const char *s, char *buf, size_t size) {
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

char *nb__st_shape_str(const nb__st_header *h, const nb__st_entry *e, char *buf, size_t size) {
    const size_t tail = sizeof "...)"; // room always kept for the ellipsis
    size_t used = (size_t)snprintf(buf, size, "(");
    for (int d = 0; d < e->ndim; d++) {
        char dim[32];
        int k = snprintf(dim, sizeof dim, "%s%" PRId64, d ? ", " : "", h->dims[e->dims + d]);
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

// ---- the JSON reader -------------------------------------------------------------------------

typedef struct {
    char *p;          // next byte of the text
    char *start;      // the text (for positions in messages)
    const char *path; // for messages
    nb__st_header *h; // output
    nb_status st;     // first error
} reader;

static bool syntax(reader *r, const char *what) {
    if (r->st == NB_OK)
        r->st = nb__set_last_error(NB_ERR_FORMAT, "%s: header is not valid JSON (%s near byte %td)",
                                   r->path, what, r->p - r->start);
    return false;
}

static void ws(reader *r) {
    while (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')
        r->p++;
}

static bool eat(reader *r, char c) {
    ws(r);
    if (*r->p != c)
        return false;
    r->p++;
    return true;
}

static int hex4(const char *s) {
    int v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

// A JSON string at r->p, decoded in place (NUL-terminated); NULL on error.
static char *string(reader *r) {
    ws(r);
    if (*r->p != '"')
        return syntax(r, "expected a string"), NULL;
    char *out = ++r->p, *w = out;
    for (;;) {
        unsigned char c = (unsigned char)*r->p;
        if (c == '"')
            break;
        if (c < 0x20) // includes the text's terminating NUL
            return syntax(r, c ? "control character in a string" : "unterminated string"), NULL;
        r->p++;
        if (c != '\\') {
            *w++ = (char)c;
            continue;
        }
        char e = *r->p++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            *w++ = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            continue;
        }
        if (e != 'u')
            return syntax(r, "bad escape in a string"), NULL;
        int cp = hex4(r->p);
        if (cp < 0)
            return syntax(r, "bad \\u escape"), NULL;
        r->p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) { // a surrogate pair makes one code point
            int lo = r->p[0] == '\\' && r->p[1] == 'u' ? hex4(r->p + 2) : -1;
            if (lo < 0xDC00 || lo > 0xDFFF)
                return syntax(r, "unpaired surrogate"), NULL;
            r->p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
            return syntax(r, cp ? "unpaired surrogate" : "\\u0000 in a string"), NULL;
        }
        // UTF-8 is never longer than the escape it came from (6 or 12 bytes).
        if (cp < 0x80) {
            *w++ = (char)cp;
        } else if (cp < 0x800) {
            *w++ = (char)(0xC0 | (cp >> 6));
            *w++ = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            *w++ = (char)(0xE0 | (cp >> 12));
            *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *w++ = (char)(0x80 | (cp & 0x3F));
        } else {
            *w++ = (char)(0xF0 | (cp >> 18));
            *w++ = (char)(0x80 | ((cp >> 12) & 0x3F));
            *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *w++ = (char)(0x80 | (cp & 0x3F));
        }
    }
    r->p++; // the closing quote, consumed before the terminator may overwrite it
    *w = '\0';
    return out;
}

// A JSON number; *exact is set when it is a plain non-negative integer below 2^63 (*v).
static bool number(reader *r, bool *exact, int64_t *v) {
    ws(r);
    char *s = r->p;
    bool neg = *r->p == '-';
    r->p += neg;
    if (*r->p == '0') {
        r->p++;
    } else if (*r->p >= '1' && *r->p <= '9') {
        while (*r->p >= '0' && *r->p <= '9')
            r->p++;
    } else {
        return syntax(r, "bad number");
    }
    char *int_end = r->p;
    bool frac = false;
    if (*r->p == '.') {
        frac = true;
        if (!(*++r->p >= '0' && *r->p <= '9'))
            return syntax(r, "bad number");
        while (*r->p >= '0' && *r->p <= '9')
            r->p++;
    }
    if (*r->p == 'e' || *r->p == 'E') {
        frac = true;
        r->p += r->p[1] == '+' || r->p[1] == '-' ? 2 : 1;
        if (!(*r->p >= '0' && *r->p <= '9'))
            return syntax(r, "bad number");
        while (*r->p >= '0' && *r->p <= '9')
            r->p++;
    }
    *exact = !neg && !frac && int_end - s <= 18; // up to 10^18 - 1 < 2^63
    *v = 0;
    for (char *d = s; *exact && d < int_end; d++)
        *v = *v * 10 + (*d - '0');
    return true;
}

static bool value(reader *r, int depth);

static bool literal(reader *r, const char *word) {
    size_t n = strlen(word);
    if (strncmp(r->p, word, n) != 0)
        return syntax(r, "unexpected character");
    r->p += n;
    return true;
}

// Any JSON value, checked and skipped (fields the format does not define).
static bool value(reader *r, int depth) {
    ws(r);
    if (depth > MAX_DEPTH)
        return syntax(r, "nested too deeply");
    char c = *r->p;
    if (c == '"')
        return string(r) != NULL;
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        r->p++;
        if (eat(r, close))
            return true;
        do {
            if (c == '{' && (!string(r) || (!eat(r, ':') && !syntax(r, "expected ':'"))))
                return false;
            if (!value(r, depth + 1))
                return false;
        } while (eat(r, ','));
        return eat(r, close) || syntax(r, c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    if (c == 't')
        return literal(r, "true");
    if (c == 'f')
        return literal(r, "false");
    if (c == 'n')
        return literal(r, "null");
    bool exact;
    int64_t v;
    return number(r, &exact, &v);
}

// ---- entries -----------------------------------------------------------------------------------

// Raw fields of one entry as read, validated afterwards in a fixed order so the message does
// not depend on the order of the JSON keys.
typedef struct {
    const char *dtype; // NULL: missing or not a string
    bool has_shape, shape_ok, has_offs, offs_ok;
    int64_t n_offs, offs[2];
} raw_entry;

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    n = *cap == 0 && need > 64 ? need : n; // a first request is taken as the estimate
    void *q = nb__realloc(*p, n * elem);
    if (!q)
        return false;
    *p = q;
    *cap = n;
    return true;
}

typedef struct {
    size_t es_cap, dims_cap, meta_cap, n_dims;
} caps;

// An array of integers: each exact one is appended to the dims pool (shape) or to offs.
static bool int_array(reader *r, caps *c, bool to_dims, raw_entry *raw, int *count, bool *ok) {
    *count = 0;
    *ok = true;
    r->p++; // '['
    if (eat(r, ']'))
        return true;
    do {
        ws(r);
        bool exact = false;
        int64_t v = 0;
        if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9')) {
            if (!number(r, &exact, &v))
                return false;
        } else if (!value(r, 2)) {
            return false;
        }
        *ok = *ok && exact;
        if (to_dims && exact) {
            if (!grow((void **)&r->h->dims, &c->dims_cap, c->n_dims + 1, sizeof *r->h->dims))
                return r->st = nb__set_last_error(NB_ERR_NOMEM,
                                                  "%s: out of memory reading the "
                                                  "header",
                                                  r->path),
                       false;
            r->h->dims[c->n_dims++] = v;
        } else if (!to_dims && *count < 2) {
            raw->offs[*count] = v;
        }
        (*count)++;
    } while (eat(r, ','));
    return eat(r, ']') || syntax(r, "expected ',' or ']'");
}

static nb_status bad_entry(reader *r, const char *name, const char *fmt_tail) {
    return r->st = nb__set_last_error(NB_ERR_FORMAT, "%s: '%s' %s", r->path, SHOWN(name), fmt_tail);
}

// Checks an entry's fields against the format and the data buffer (messages as the tests pin).
static nb_status validate(reader *r, nb__st_entry *e, const raw_entry *raw, int64_t data_size) {
    const char *path = r->path;
    if (!raw->dtype)
        return bad_entry(r, e->name, "has no \"dtype\" string");
    e->dtype = -1;
    for (int k = 0; k < N_ST_DTYPES; k++)
        if (strcmp(raw->dtype, st_dtypes[k].name) == 0)
            e->dtype = k;
    if (e->dtype < 0)
        return r->st = nb__set_last_error(
                   NB_ERR_FORMAT,
                   "%s: '%s' has unknown dtype '%s' (the format's are BOOL, U8, I8, F8_E5M2, "
                   "F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, I64, U64, F64)",
                   path, SHOWN(e->name), SHOWN(raw->dtype));
    if (!raw->has_shape)
        return bad_entry(r, e->name, "has no \"shape\" array");
    if (!raw->shape_ok)
        return bad_entry(r, e->name, "has a shape entry that is not a non-negative integer");
    int64_t numel = 1;
    for (int d = 0; d < e->ndim; d++) {
        int64_t dim = r->h->dims[e->dims + d];
        // Bounded by INT64_MAX / 8 so that numel * element size cannot overflow either.
        if (dim > 0 && numel > INT64_MAX / 8 / dim)
            return bad_entry(r, e->name, "has a shape with too many elements");
        numel *= dim;
    }
    if (!raw->has_offs || !raw->offs_ok || raw->n_offs != 2)
        return bad_entry(r, e->name, "needs \"data_offsets\" of two non-negative integers");
    e->begin = raw->offs[0];
    e->end = raw->offs[1];
    if (e->begin > e->end)
        return r->st = nb__set_last_error(NB_ERR_FORMAT,
                                          "%s: '%s' has data_offsets [%" PRId64 ", %" PRId64
                                          "] with begin after end",
                                          path, SHOWN(e->name), e->begin, e->end);
    if (e->end > data_size)
        return r->st = nb__set_last_error(NB_ERR_FORMAT,
                                          "%s: '%s' has data_offsets [%" PRId64 ", %" PRId64
                                          "] past the end of the %" PRId64 "-byte data buffer: "
                                          "truncated file?",
                                          path, SHOWN(e->name), e->begin, e->end, data_size);
    int64_t want = numel * st_dtypes[e->dtype].size;
    if (e->end - e->begin != want) {
        char s[128];
        return r->st = nb__set_last_error(
                   NB_ERR_FORMAT,
                   "%s: '%s' has data_offsets [%" PRId64 ", %" PRId64 "] (%" PRId64
                   " bytes) but %s shape %s needs %" PRId64 " bytes",
                   path, SHOWN(e->name), e->begin, e->end, e->end - e->begin,
                   st_dtypes[e->dtype].name, nb__st_shape_str(r->h, e, s, sizeof s), want);
    }
    return NB_OK;
}

// One tensor entry: {"dtype": .., "shape": [..], "data_offsets": [..], other fields skipped}.
static bool entry_value(reader *r, caps *c, const char *name, int64_t data_size) {
    nb__st_header *h = r->h;
    ws(r);
    if (*r->p != '{')
        return r->st = nb__set_last_error(NB_ERR_FORMAT, "%s: entry '%s' is not an object", r->path,
                                          SHOWN(name)),
               false;
    if (!grow((void **)&h->es, &c->es_cap, (size_t)h->m + 1, sizeof *h->es))
        return r->st = nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory reading the header",
                                          r->path),
               false;
    nb__st_entry *e = &h->es[h->m];
    memset(e, 0, sizeof *e);
    e->name = name;
    e->dims = (int64_t)c->n_dims;
    raw_entry raw = {0};
    r->p++;
    if (!eat(r, '}')) {
        do {
            const char *key = string(r);
            if (!key || (!eat(r, ':') && !syntax(r, "expected ':'")))
                return false;
            ws(r);
            bool is_dtype = !strcmp(key, "dtype"), is_shape = !strcmp(key, "shape"),
                 is_offs = !strcmp(key, "data_offsets");
            if ((is_dtype && raw.dtype) || (is_shape && raw.has_shape) || (is_offs && raw.has_offs))
                return r->st = nb__set_last_error(NB_ERR_FORMAT, "%s: '%s' has \"%s\" twice",
                                                  r->path, SHOWN(name), key),
                       false;
            int count = 0;
            if (is_dtype && *r->p == '"') {
                if (!(raw.dtype = string(r)))
                    return false;
            } else if (is_shape && *r->p == '[') {
                raw.has_shape = true;
                e->dims = (int64_t)c->n_dims;
                if (!int_array(r, c, true, &raw, &count, &raw.shape_ok))
                    return false;
                e->ndim = count;
            } else if (is_offs && *r->p == '[') {
                raw.has_offs = true;
                if (!int_array(r, c, false, &raw, &count, &raw.offs_ok))
                    return false;
                raw.n_offs = count;
            } else if (!value(r, 2)) {
                return false;
            }
        } while (eat(r, ','));
        if (!eat(r, '}'))
            return syntax(r, "expected ',' or '}'");
    }
    if (validate(r, e, &raw, data_size) != NB_OK)
        return false;
    h->m++;
    return true;
}

// "__metadata__": a flat string-to-string map.
static bool metadata(reader *r, caps *c) {
    nb__st_header *h = r->h;
    ws(r);
    if (h->has_meta)
        return r->st =
                   nb__set_last_error(NB_ERR_FORMAT, "%s: \"__metadata__\" appears twice", r->path),
               false;
    h->has_meta = true;
    if (*r->p != '{')
        return r->st = nb__set_last_error(NB_ERR_FORMAT, "%s: \"__metadata__\" is not an object",
                                          r->path),
               false;
    r->p++;
    if (eat(r, '}'))
        return true;
    do {
        const char *key = string(r);
        if (!key || (!eat(r, ':') && !syntax(r, "expected ':'")))
            return false;
        ws(r);
        if (*r->p != '"')
            return r->st = nb__set_last_error(NB_ERR_FORMAT,
                                              "%s: \"__metadata__\" value '%s' is not a string",
                                              r->path, SHOWN(key)),
                   false;
        const char *v = string(r);
        if (!v)
            return false;
        if (!grow((void **)&h->meta, &c->meta_cap, (size_t)h->n_meta + 1, sizeof *h->meta))
            return r->st = nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory reading the header",
                                              r->path),
                   false;
        h->meta[h->n_meta++] = (nb__st_kv){key, v};
    } while (eat(r, ','));
    return eat(r, '}') || syntax(r, "expected ',' or '}'");
}

// ---- the whole header ------------------------------------------------------------------------

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const nb__st_entry *)a)->name, ((const nb__st_entry *)b)->name);
}

static int cmp_kv(const void *a, const void *b) {
    return strcmp(((const nb__st_kv *)a)->key, ((const nb__st_kv *)b)->key);
}

static bool top_level(reader *r, caps *c, int64_t data_size) {
    ws(r);
    if (!*r->p)
        return syntax(r, "empty header");
    if (*r->p != '{') {
        if (value(r, 0) && (ws(r), !*r->p))
            r->st = nb__set_last_error(NB_ERR_FORMAT, "%s: header is not a JSON object", r->path);
        else
            syntax(r, "trailing characters");
        return false;
    }
    r->p++;
    if (!eat(r, '}')) {
        do {
            const char *key = string(r);
            if (!key || (!eat(r, ':') && !syntax(r, "expected ':'")))
                return false;
            if (!(strcmp(key, "__metadata__") == 0 ? metadata(r, c)
                                                   : entry_value(r, c, key, data_size)))
                return false;
        } while (eat(r, ','));
        if (!eat(r, '}'))
            return syntax(r, "expected ',' or '}'");
    }
    ws(r);
    return !*r->p || syntax(r, "trailing characters");
}

nb_status nb__st_parse_header(const char *path, char *text, int64_t data_size, nb__st_header *h) {
    memset(h, 0, sizeof *h);
    h->text = text;
    reader r = {text, text, path, h, NB_OK};
    caps c = {0, 0, 0, 0};
    // Entries are sized once: each is one '{' and at least MIN_ENTRY bytes of header, so the
    // array never outgrows min(braces, length / MIN_ENTRY) and is never copied while growing.
    size_t braces = 1, len = strlen(text);
    for (const char *q = text; (q = strchr(q, '{')); q++)
        braces++;
    size_t cap = len / MIN_ENTRY + 1 < braces ? len / MIN_ENTRY + 1 : braces;
    if (!grow((void **)&h->es, &c.es_cap, cap, sizeof *h->es))
        return nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory reading the header", path);
    if (!top_level(&r, &c, data_size))
        return r.st;
    // Sorted by name: duplicates become neighbours, and lookup is a bsearch.
    if (h->m > 1) {
        qsort(h->es, (size_t)h->m, sizeof *h->es, cmp_entry);
        for (int k = 1; k < h->m; k++)
            if (strcmp(h->es[k - 1].name, h->es[k].name) == 0)
                return nb__set_last_error(NB_ERR_FORMAT, "%s: '%s' appears twice in the header",
                                          path, SHOWN(h->es[k].name));
    }
    if (h->n_meta > 1) {
        qsort(h->meta, (size_t)h->n_meta, sizeof *h->meta, cmp_kv);
        for (int k = 1; k < h->n_meta; k++)
            if (strcmp(h->meta[k - 1].key, h->meta[k].key) == 0)
                return nb__set_last_error(NB_ERR_FORMAT,
                                          "%s: \"__metadata__\" key '%s' appears twice", path,
                                          SHOWN(h->meta[k].key));
    }
    nb_status st = nb__st_check_tiling(path, h->es, h->m, data_size);
    return st == NB_OK ? nb__st_check_checksums(path, h) : st;
}

void nb__st_header_free(nb__st_header *h) {
    nb__free(h->text);
    nb__free(h->es);
    nb__free(h->dims);
    nb__free(h->meta);
    memset(h, 0, sizeof *h);
}

const nb__st_entry *nb__st_find(const nb__st_header *h, const char *name) {
    const nb__st_entry key = {.name = name};
    return h->m > 0 ? bsearch(&key, h->es, (size_t)h->m, sizeof *h->es, cmp_entry) : NULL;
}

const char *nb__st_meta(const nb__st_header *h, const char *key) {
    const nb__st_kv k = {key, NULL};
    const nb__st_kv *v =
        h->n_meta > 0 ? bsearch(&k, h->meta, (size_t)h->n_meta, sizeof *h->meta, cmp_kv) : NULL;
    return v ? v->value : NULL;
}
