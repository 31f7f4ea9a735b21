// libFuzzer harness for the text corpus reader (nb_text_load through a file, and the vocabulary
// conversions). Input layout:
//   byte 0   control: bit 0 tokenise bytes instead of UTF-8 characters; bits 1-2 pick max_vocab
//            (default, 1, 3, 40); bit 3 re-tokenise with the loaded vocabulary as a fixed one
//   rest     the file's bytes
// Oracles: a failure leaves *out zeroed with a message; a success has every token in range, a
// strictly ascending vocabulary within max_vocab, decodes back to exactly the file's bytes,
// encodes back to the same tokens, survives the checkpoint tensor round trip, and its windows
// and split cover every window once. Each input is then loaded again with one allocation
// failing: NB_ERR_NOMEM, *out zeroed, nothing leaked.
#define _GNU_SOURCE // memfd_create
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "nabla/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int32_t vocab_caps[4] = {0, 1, 3, 40};

static bool text_zero(const nb_text *t) {
    return t->n == 0 && !t->tokens && t->vocab.size == 0 && !t->vocab.symbols && !t->vocab.bytes;
}

static void check_loaded(const nb_text *t, const uint8_t *p, size_t n, const nb_text_options *o) {
    FZ_CHECK(t->n > 0 && t->n <= (int64_t)n && t->tokens && t->vocab.symbols);
    FZ_CHECK(t->vocab.bytes == o->bytes);
    FZ_CHECK(t->vocab.size >= 1 && t->vocab.size <= (o->max_vocab ? o->max_vocab : 4096));
    for (int32_t i = 1; i < t->vocab.size; i++)
        FZ_CHECK(t->vocab.symbols[i] > t->vocab.symbols[i - 1]);
    for (int64_t i = 0; i < t->n; i++)
        FZ_CHECK(t->tokens[i] >= 0 && t->tokens[i] < t->vocab.size);
    if (o->bytes)
        FZ_CHECK(t->n == (int64_t)n);
    // Decoding gives the bytes back exactly; encoding them gives the tokens back.
    char *buf = malloc(n + 1);
    int32_t *ids = malloc((size_t)t->n * sizeof *ids);
    FZ_CHECK(buf && ids);
    FZ_CHECK(nb_vocab_decode(&t->vocab, t->tokens, t->n, buf, n + 1) == (int64_t)n);
    FZ_CHECK(memcmp(buf, p, n) == 0 && buf[n] == '\0');
    FZ_CHECK(nb_vocab_encode(&t->vocab, (const char *)p, n, ids, t->n) == t->n);
    FZ_CHECK(memcmp(ids, t->tokens, (size_t)t->n * sizeof *ids) == 0);
    free(buf);
    free(ids);
    // The checkpoint form.
    nb_tensor *saved = nb_vocab_to_tensor(&t->vocab);
    if (saved) { // NULL only when an allocation failed
        FZ_CHECK(nb_vocab_check(&t->vocab, saved) == NB_OK);
        nb_vocab v;
        nb_status st = nb_vocab_from_tensor(saved, t->vocab.bytes, &v);
        FZ_CHECK(st == NB_OK || st == NB_ERR_NOMEM);
        if (st == NB_OK)
            FZ_CHECK(v.size == t->vocab.size &&
                     memcmp(v.symbols, t->vocab.symbols, (size_t)v.size * 4) == 0);
        nb_vocab_free(&v);
        nb_tensor_destroy(saved);
    }
    // Windows of T = 1..3 and their split: every window exactly once.
    for (int64_t T = 1; T <= 3; T++) {
        int64_t w = nb_text_windows(t, T);
        FZ_CHECK(w == (t->n > T ? (t->n - 1) / T : 0));
        if (w < 2 || w > 100000)
            continue;
        int64_t *tr = malloc((size_t)w * sizeof *tr), *va = malloc((size_t)w * sizeof *va);
        char *seen = calloc((size_t)w, 1);
        int64_t nt = -1, nv = -1;
        FZ_CHECK(tr && va && seen);
        FZ_CHECK(nb_text_split(t, T, 0.25, 1, tr, &nt, va, &nv) == NB_OK);
        FZ_CHECK(nt >= 1 && nv >= 1 && nt + nv == w);
        for (int64_t i = 0; i < nt; i++)
            FZ_CHECK(tr[i] >= 0 && tr[i] < w && !seen[tr[i]]++);
        for (int64_t i = 0; i < nv; i++)
            FZ_CHECK(va[i] >= 0 && va[i] < w && !seen[va[i]]++);
        free(tr);
        free(va);
        free(seen);
    }
}

static void check_failed(const nb_text *t, nb_status st) {
    FZ_CHECK(text_zero(t));
    FZ_CHECK(st == NB_ERR_FORMAT || st == NB_ERR_NOMEM);
    FZ_CHECK(nb_last_error()[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static fz_file file;
    static bool ready = false;
    if (!ready) {
        fz_file_init(&file, "fuzz-text");
        fz_alloc_install();
        ready = true;
    }
    uint8_t ctl = size > 0 ? data[0] : 0;
    const uint8_t *p = data + (size > 0);
    size_t n = size > 0 ? size - 1 : 0;
    fz_file_set(&file, p, n);
    nb_text_options o = {.bytes = ctl & 1, .max_vocab = vocab_caps[(ctl >> 1) & 3]};
    const char *paths[] = {file.path};

    nb_text t;
    memset(&t, 0xA5, sizeof t); // the loader must zero it whatever happens
    fz_alloc_arm(0);
    nb_status st = nb_text_load(paths, 1, &o, &t);
    size_t allocs = fz_alloc_count;
    if (fz_verbose())
        fprintf(stderr, "nb_text_load: %s: %s\n", nb_status_str(st), st ? nb_last_error() : "");
    if (st == NB_OK) {
        check_loaded(&t, p, n, &o);
        if (ctl & 8) { // the same text with its own vocabulary as a fixed one: the same tokens
            nb_text u;
            nb_text_options fixed = o;
            fixed.vocab = &t.vocab;
            FZ_CHECK(nb_text_load(paths, 1, &fixed, &u) == NB_OK);
            FZ_CHECK(u.n == t.n && memcmp(u.tokens, t.tokens, (size_t)t.n * 4) == 0);
            nb_text_free(&u);
        }
    } else {
        check_failed(&t, st);
    }
    nb_text_free(&t);
    if (allocs > 0) {
        memset(&t, 0xA5, sizeof t);
        fz_alloc_arm(1 + fz_hash(data, size) % allocs);
        st = nb_text_load(paths, 1, &o, &t);
        fz_alloc_arm(0);
        FZ_CHECK(st == NB_ERR_NOMEM);
        check_failed(&t, st);
    }
    return 0;
}
