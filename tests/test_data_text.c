// Tests for the text corpus (src/data/text.c, text_vocab.c): UTF-8 and byte tokenisation, every
// refused input (binary, invalid UTF-8, empty, oversized, too many symbols, unknown symbols,
// non-regular files), directory loading as for Debian's fortunes, windows and next-token
// targets, the seeded split, the vocabulary's round trips, failing allocations, and the real
// fortunes corpus when the package is installed.
#define _POSIX_C_SOURCE 200809L // mkdtemp, mkfifo, symlink

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nabla.h"

#define FORTUNES_DIR "/usr/share/games/fortunes"

static char tmpdir[256];

#define assert_msg_has(sub)                                                                        \
    do {                                                                                           \
        if (!strstr(nb_last_error(), (sub)))                                                       \
            fail_msg("nb_last_error() = \"%s\" lacks \"%s\"", nb_last_error(), (sub));             \
    } while (0)

static void tpath(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const void *bytes, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len)
        assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static bool text_is_zero(const nb_text *t) {
    return t->n == 0 && !t->tokens && t->vocab.size == 0 && !t->vocab.symbols;
}

static void utf8_characters(void **state) {
    (void)state;
    const char *s = "h\xC3\xA9llo \xE2\x82\xAC!\n"; // "héllo €!\n": é U+00E9, € U+20AC
    nb_text t;
    assert_int_equal(nb_text_from_memory(s, strlen(s), "s", NULL, &t), NB_OK);
    // Symbols ascending: '\n' ' ' '!' 'h' 'l' 'o' é €
    const int32_t want_syms[] = {'\n', ' ', '!', 'h', 'l', 'o', 0xE9, 0x20AC};
    assert_int_equal(t.vocab.size, 8);
    assert_false(t.vocab.bytes);
    assert_memory_equal(t.vocab.symbols, want_syms, sizeof want_syms);
    const int32_t want_tok[] = {3, 6, 4, 4, 5, 1, 7, 2, 0};
    assert_int_equal(t.n, 9);
    assert_memory_equal(t.tokens, want_tok, sizeof want_tok);
    // Decode gives the text back; a short buffer stops at a character boundary.
    char buf[64];
    assert_int_equal(nb_vocab_decode(&t.vocab, t.tokens, t.n, buf, sizeof buf), strlen(s));
    assert_string_equal(buf, s);
    assert_int_equal(nb_vocab_decode(&t.vocab, t.tokens, t.n, buf, 3), strlen(s));
    assert_string_equal(buf, "h"); // "h\xC3\xA9" needs 3 bytes + NUL
    // Encode a prompt with the vocabulary; an unknown character is named.
    int32_t ids[16];
    assert_int_equal(nb_vocab_encode(&t.vocab, "hello", 5, ids, 16), -1); // no plain 'e'
    assert_msg_has("'e' at offset 1 is not in the vocabulary of 8 symbols");
    assert_int_equal(nb_vocab_encode(&t.vocab, "h\xC3\xA9", 3, ids, 16), 2);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 6);
    nb_text_free(&t);
    assert_true(text_is_zero(&t));
}

static void encode_errors(void **state) {
    (void)state;
    nb_text t;
    assert_int_equal(nb_text_from_memory("abc", 3, NULL, NULL, &t), NB_OK);
    int32_t ids[4];
    assert_int_equal(nb_vocab_encode(&t.vocab, "abd", 3, ids, 4), -1);
    assert_msg_has("'d' at offset 2 is not in the vocabulary of 3 symbols");
    assert_int_equal(nb_vocab_encode(&t.vocab, "a\xC3", 2, ids, 4), -1);
    assert_msg_has("invalid UTF-8 at offset 1");
    // Only cap ids are written, the count is the whole text's.
    ids[1] = -7;
    assert_int_equal(nb_vocab_encode(&t.vocab, "cba", 3, ids, 1), 3);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], -7);
    const int32_t bad[] = {0, 3};
    char buf[8];
    assert_int_equal(nb_vocab_decode(&t.vocab, bad, 2, buf, sizeof buf), -1);
    assert_msg_has("ids[1] = 3 outside the vocabulary [0, 3)");
    nb_text_free(&t);
}

static void byte_tokens(void **state) {
    (void)state;
    const char *s = "\xC3\xA9\xFF a"; // bytes mode takes any byte but NUL, even invalid UTF-8
    nb_text t;
    nb_text_options o = {.bytes = true};
    assert_int_equal(nb_text_from_memory(s, strlen(s), "s", &o, &t), NB_OK);
    const int32_t want_syms[] = {' ', 'a', 0xA9, 0xC3, 0xFF};
    assert_int_equal(t.vocab.size, 5);
    assert_true(t.vocab.bytes);
    assert_memory_equal(t.vocab.symbols, want_syms, sizeof want_syms);
    const int32_t want_tok[] = {3, 2, 4, 0, 1};
    assert_int_equal(t.n, 5);
    assert_memory_equal(t.tokens, want_tok, sizeof want_tok);
    char buf[16];
    assert_int_equal(nb_vocab_decode(&t.vocab, t.tokens, t.n, buf, sizeof buf), 5);
    assert_memory_equal(buf, s, 6);
    nb_text_free(&t);
}

static void refused_contents(void **state) {
    (void)state;
    nb_text t;
    assert_int_equal(nb_text_from_memory("ab\0cd", 5, "bin", NULL, &t), NB_ERR_FORMAT);
    assert_msg_has("bin: a NUL byte at offset 2: binary data");
    assert_true(text_is_zero(&t));
    nb_text_options bytes = {.bytes = true};
    assert_int_equal(nb_text_from_memory("ab\0cd", 5, "bin", &bytes, &t), NB_ERR_FORMAT);
    assert_msg_has("NUL byte");
    // Invalid UTF-8: a stray continuation byte, an overlong '/', a surrogate, a truncated
    // sequence at the end, a code point above U+10FFFF.
    const char *bad[] = {"ab\x80", "x\xC0\xAF", "\xED\xA0\x80", "ok\xE2\x82", "\xF4\x90\x80\x80"};
    const char *where[] = {"offset 2", "offset 1", "offset 0", "offset 2", "offset 0"};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(nb_text_from_memory(bad[i], strlen(bad[i]), "u", NULL, &t), NB_ERR_FORMAT);
        assert_msg_has("invalid UTF-8");
        assert_msg_has(where[i]);
        assert_true(text_is_zero(&t));
    }
    assert_int_equal(nb_text_from_memory("", 0, "empty", NULL, &t), NB_ERR_FORMAT);
    assert_msg_has("empty: the corpus is empty");
    nb_text_options small = {.max_bytes = 4};
    assert_int_equal(nb_text_from_memory("hello", 5, "big", &small, &t), NB_ERR_FORMAT);
    assert_msg_has("5 bytes, more than max_bytes = 4");
    nb_text_options few = {.max_vocab = 3};
    assert_int_equal(nb_text_from_memory("abcd", 4, "v", &few, &t), NB_ERR_FORMAT);
    assert_msg_has("4 distinct symbols, more than max_vocab = 3");
    assert_int_equal(nb_text_from_memory("abc", 3, "v", &few, &t), NB_OK);
    nb_text_free(&t);
    nb_text_options neg = {.max_vocab = -1};
    assert_int_equal(nb_text_from_memory("abc", 3, "v", &neg, &t), NB_ERR_ARG);
    assert_int_equal(nb_text_from_memory(NULL, 3, "v", NULL, &t), NB_ERR_NULL);
    assert_int_equal(nb_text_from_memory("abc", 3, "v", NULL, NULL), NB_ERR_NULL);
}

static void fixed_vocabulary(void **state) {
    (void)state;
    nb_text base;
    assert_int_equal(nb_text_from_memory("abcdef", 6, "base", NULL, &base), NB_OK);
    nb_text t;
    nb_text_options o = {.vocab = &base.vocab};
    // A text with a subset of the symbols keeps the base's ids.
    assert_int_equal(nb_text_from_memory("fad", 3, "sub", &o, &t), NB_OK);
    assert_int_equal(t.vocab.size, 6);
    assert_int_equal(t.tokens[0], 5);
    assert_int_equal(t.tokens[1], 0);
    assert_int_equal(t.tokens[2], 3);
    assert_ptr_not_equal(t.vocab.symbols, base.vocab.symbols); // a copy
    nb_text_free(&t);
    assert_int_equal(nb_text_from_memory("fax", 3, "new.txt", &o, &t), NB_ERR_FORMAT);
    assert_msg_has("new.txt: 'x' at offset 2 is not in the given vocabulary of 6 symbols");
    assert_true(text_is_zero(&t));
    o.bytes = true;
    assert_int_equal(nb_text_from_memory("fa", 2, "b", &o, &t), NB_ERR_ARG);
    assert_msg_has("vocabulary is of characters but the options ask for bytes");
    nb_vocab broken = {.size = 2, .symbols = (int32_t[]){'b', 'a'}};
    nb_text_options ob = {.vocab = &broken};
    assert_int_equal(nb_text_from_memory("ab", 2, "b", &ob, &t), NB_ERR_ARG);
    assert_msg_has("not strictly ascending");
    nb_text_free(&base);
}

static void files_and_directories(void **state) {
    (void)state;
    char sub[300];
    tpath(sub, sizeof sub, "corpus");
    assert_int_equal(mkdir(sub, 0700), 0);
    char a[400], b[400], dat[400], hid[400], lnk[400], inner[400];
    snprintf(a, sizeof a, "%s/a", sub);
    snprintf(b, sizeof b, "%s/b", sub);
    snprintf(dat, sizeof dat, "%s/a.dat", sub);
    snprintf(hid, sizeof hid, "%s/.hidden", sub);
    snprintf(lnk, sizeof lnk, "%s/a.u8", sub);
    snprintf(inner, sizeof inner, "%s/dir", sub);
    write_file(b, "xyz\n", 4);
    write_file(a, "ab\n%\n", 5);
    write_file(dat, "\0\0\0\x02binary index", 16);
    write_file(hid, "hidden", 6);
    assert_int_equal(symlink("a", lnk), 0);
    assert_int_equal(mkdir(inner, 0700), 0);
    nb_text t;
    // The directory: a then b (name order); .dat, hidden, link and subdirectory skipped.
    assert_int_equal(nb_text_load_dir(sub, NULL, &t), NB_OK);
    assert_int_equal(t.n, 9);
    char buf[32];
    nb_vocab_decode(&t.vocab, t.tokens, t.n, buf, sizeof buf);
    assert_string_equal(buf, "ab\n%\nxyz\n");
    nb_text_free(&t);
    // An explicit list, in the given order.
    const char *list[] = {b, a};
    assert_int_equal(nb_text_load(list, 2, NULL, &t), NB_OK);
    nb_vocab_decode(&t.vocab, t.tokens, t.n, buf, sizeof buf);
    assert_string_equal(buf, "xyz\nab\n%\n");
    nb_text_free(&t);
    // The total is capped before reading.
    nb_text_options cap = {.max_bytes = 8};
    assert_int_equal(nb_text_load(list, 2, &cap, &t), NB_ERR_FORMAT);
    assert_msg_has("would take the corpus past max_bytes = 8");
    assert_true(text_is_zero(&t));
    // A binary file in a list is named.
    const char *withdat[] = {a, dat};
    assert_int_equal(nb_text_load(withdat, 2, NULL, &t), NB_ERR_FORMAT);
    assert_msg_has("a.dat: a NUL byte at offset 0");
    // Not regular files, missing files, bad arguments.
    const char *d[] = {inner};
    assert_int_equal(nb_text_load(d, 1, NULL, &t), NB_ERR_IO);
    assert_msg_has("is a directory");
    char fifo[400];
    snprintf(fifo, sizeof fifo, "%s/fifo", tmpdir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    const char *ff[] = {fifo};
    assert_int_equal(nb_text_load(ff, 1, NULL, &t), NB_ERR_IO); // refused, never blocks
    assert_msg_has("FIFO");
    unlink(fifo);
    char missing[400];
    snprintf(missing, sizeof missing, "%s/missing", sub);
    const char *m[] = {missing};
    assert_int_equal(nb_text_load(m, 1, NULL, &t), NB_ERR_IO);
    assert_msg_has("missing: cannot open");
    assert_int_equal(nb_text_load(list, 0, NULL, &t), NB_ERR_ARG);
    const char *nul[] = {a, NULL};
    assert_int_equal(nb_text_load(nul, 2, NULL, &t), NB_ERR_NULL);
    assert_int_equal(nb_text_load_dir(missing, NULL, &t), NB_ERR_IO);
    // A directory of only skipped entries, and an empty file.
    assert_int_equal(nb_text_load_dir(inner, NULL, &t), NB_ERR_FORMAT);
    assert_msg_has("no text files");
    char e[420];
    snprintf(e, sizeof e, "%s/empty", inner);
    write_file(e, "", 0);
    assert_int_equal(nb_text_load_dir(inner, NULL, &t), NB_ERR_FORMAT);
    assert_msg_has("the corpus is empty");
    unlink(e);
    unlink(a), unlink(b), unlink(dat), unlink(hid), unlink(lnk);
    rmdir(inner);
    rmdir(sub);
}

static void windows_and_batches(void **state) {
    (void)state;
    // 23 tokens, T = 5: windows start at 0, 5, 10, 15 (the last target is token 20).
    const char *s = "abcdefghijklmnopqrstuvw";
    nb_text t;
    assert_int_equal(nb_text_from_memory(s, strlen(s), "s", NULL, &t), NB_OK);
    assert_int_equal(nb_text_windows(&t, 5), 4);
    assert_int_equal(nb_text_windows(&t, 22), 1);
    assert_int_equal(nb_text_windows(&t, 23), 0); // needs T + 1 tokens
    assert_int_equal(nb_text_windows(&t, 0), 0);
    int64_t shape[2] = {2, 5};
    nb_tensor *x = nb_tensor_create(NB_I32, 2, shape);
    nb_tensor *y = nb_tensor_create(NB_I32, 2, shape);
    const int64_t w[2] = {3, 1};
    assert_int_equal(nb_text_fill_batch(&t, 5, w, 2, x, y), NB_OK);
    const int32_t *xd = nb_tensor_data_i32(x);
    const int32_t *yd = nb_tensor_data_i32(y);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 5; j++) {
            assert_int_equal(xd[i * 5 + j], w[i] * 5 + j); // 'a' + k has id k here
            assert_int_equal(yd[i * 5 + j], w[i] * 5 + j + 1);
        }
    // Checked before anything is written.
    nb_tensor_fill(x, 0);
    const int64_t out_of_range[2] = {0, 4};
    assert_int_equal(nb_text_fill_batch(&t, 5, out_of_range, 2, x, y), NB_ERR_ARG);
    assert_msg_has("windows[1] = 4 outside [0, 4)");
    assert_int_equal(nb_tensor_data_i32(x)[0], 0);
    assert_int_equal(nb_text_fill_batch(&t, 4, w, 2, x, NULL), NB_ERR_SHAPE);
    assert_msg_has("expected (2, 4)");
    nb_tensor *f = nb_tensor_create(NB_F32, 2, shape);
    assert_int_equal(nb_text_fill_batch(&t, 5, w, 2, f, NULL), NB_ERR_DTYPE);
    assert_int_equal(nb_text_fill_batch(&t, 5, NULL, 2, x, NULL), NB_ERR_NULL);
    assert_int_equal(nb_text_fill_batch(&t, 5, w, 2, NULL, y), NB_OK); // targets only
    // int64 batches (PyTorch's index dtype), alone or mixed with int32: the same ids.
    nb_tensor *x64 = nb_tensor_create(NB_I64, 2, shape);
    nb_tensor *y64 = nb_tensor_create(NB_I64, 2, shape);
    assert_int_equal(nb_text_fill_batch(&t, 5, w, 2, x64, y64), NB_OK);
    nb_tensor_fill(y, -1);
    assert_int_equal(nb_text_fill_batch(&t, 5, w, 2, x64, y), NB_OK);
    assert_int_equal(nb_text_fill_batch(&t, 5, w, 2, x, NULL), NB_OK);
    for (int i = 0; i < 10; i++) {
        int64_t want = w[i / 5] * 5 + i % 5;
        assert_int_equal(nb_tensor_data_i64(x64)[i], want);
        assert_int_equal(xd[i], want);
        assert_int_equal(nb_tensor_data_i64(y64)[i], want + 1);
        assert_int_equal(nb_tensor_data_i32(y)[i], want + 1);
    }
    // They feed embedding and sparse cross-entropy as int32 ones do: same loss.
    double loss[2];
    for (int k = 0; k < 2; k++) {
        nb_graph *g = nb_graph_create();
        nb_tensor *emb = nb_tensor_create(NB_F64, 2, (int64_t[]){t.vocab.size, t.vocab.size});
        for (int64_t i = 0; i < nb_tensor_numel(emb); i++)
            nb_tensor_data_f64(emb)[i] = cos(0.3 * (double)i);
        nb_tensor *z = nb_embedding(g, emb, k ? x64 : x); // (2, 5, V)
        z = nb_reshape(g, z, 2, (int64_t[]){10, t.vocab.size});
        nb_tensor *yk = k ? y64 : y; // labels as a (10) view of the (2, 5) batch
        nb_tensor *lab =
            nb_tensor_wrap(nb_tensor_dtype(yk), 1, (int64_t[]){10}, nb_tensor_data(yk));
        nb_tensor *l = nb_sparse_cross_entropy_logits(g, z, lab, NB_REDUCE_MEAN);
        if (!l)
            fail_msg("%s", nb_graph_error(g));
        loss[k] = nb_tensor_get(l, 0);
        nb_graph_destroy(g);
        nb_tensor_destroy(lab);
        nb_tensor_destroy(emb);
    }
    assert_true(loss[0] == loss[1] && loss[0] > 0);
    // Bad: a 1-D int64 tensor, int64 with the wrong T; nothing written.
    nb_tensor_fill(x64, -5);
    nb_tensor *v64 = nb_tensor_create(NB_I64, 1, (int64_t[]){10});
    assert_int_equal(nb_text_fill_batch(&t, 5, w, 2, v64, NULL), NB_ERR_SHAPE);
    assert_int_equal(nb_text_fill_batch(&t, 4, w, 2, x64, NULL), NB_ERR_SHAPE);
    assert_int_equal(nb_text_fill_batch(&t, 5, w, 2, x64, f), NB_ERR_DTYPE);
    assert_msg_has("y is float32, expected int32 or int64");
    assert_int_equal(nb_tensor_data_i64(x64)[0], -5);
    nb_tensor_destroy(x64);
    nb_tensor_destroy(y64);
    nb_tensor_destroy(v64);
    nb_tensor_destroy(x);
    nb_tensor_destroy(y);
    nb_tensor_destroy(f);
    nb_text_free(&t);
}

static void seeded_split(void **state) {
    (void)state;
    char s[1001];
    for (int i = 0; i < 1000; i++)
        s[i] = (char)('a' + i % 26);
    nb_text t;
    assert_int_equal(nb_text_from_memory(s, 1000, "s", NULL, &t), NB_OK);
    const int64_t T = 9;
    int64_t W = nb_text_windows(&t, T); // 999 / 9 = 111
    assert_int_equal(W, 111);
    int64_t tr[111], va[111], tr2[111], va2[111], nt, nv, nt2, nv2;
    assert_int_equal(nb_text_split(&t, T, 0.1, 42, tr, &nt, va, &nv), NB_OK);
    assert_int_equal(nv, 11); // round(11.1)
    assert_int_equal(nt, 100);
    // Disjoint, ascending, covering every window.
    char seen[111] = {0};
    for (int64_t i = 0; i < nt; i++) {
        assert_true(tr[i] >= 0 && tr[i] < W && !seen[tr[i]]);
        seen[tr[i]] = 1;
        if (i)
            assert_true(tr[i] > tr[i - 1]);
    }
    for (int64_t i = 0; i < nv; i++) {
        assert_true(va[i] >= 0 && va[i] < W && !seen[va[i]]);
        seen[va[i]] = 1;
    }
    // The same seed gives the same split; another seed a different one.
    assert_int_equal(nb_text_split(&t, T, 0.1, 42, tr2, &nt2, va2, &nv2), NB_OK);
    assert_memory_equal(va, va2, sizeof(int64_t) * 11);
    assert_int_equal(nb_text_split(&t, T, 0.1, 43, tr2, &nt2, va2, &nv2), NB_OK);
    assert_memory_not_equal(va, va2, sizeof(int64_t) * 11);
    // A tiny fraction still gives one validation window; 0 gives none.
    assert_int_equal(nb_text_split(&t, T, 1e-9, 1, tr, &nt, va, &nv), NB_OK);
    assert_int_equal(nv, 1);
    assert_int_equal(nb_text_split(&t, T, 0.0, 1, tr, &nt, va, &nv), NB_OK);
    assert_int_equal(nv, 0);
    assert_int_equal(nt, 111);
    // Too short: one window cannot be split into train and val.
    assert_int_equal(nb_text_split(&t, 600, 0.1, 1, tr, &nt, va, &nv), NB_ERR_FORMAT);
    assert_msg_has("a corpus of 1000 tokens has 1 windows of T = 600");
    assert_int_equal(nb_text_split(&t, 1000, 0.0, 1, tr, &nt, va, &nv), NB_ERR_FORMAT);
    assert_msg_has("too short for one training window");
    assert_int_equal(nb_text_split(&t, T, 1.0, 1, tr, &nt, va, &nv), NB_ERR_ARG);
    assert_int_equal(nb_text_split(&t, 0, 0.1, 1, tr, &nt, va, &nv), NB_ERR_ARG);
    assert_int_equal(nb_text_split(&t, T, 0.1, 1, NULL, &nt, va, &nv), NB_ERR_NULL);
    nb_text_free(&t);
}

static void vocabulary_checkpoint(void **state) {
    (void)state;
    nb_text t, u;
    assert_int_equal(nb_text_from_memory("hello world", 11, "a", NULL, &t), NB_OK);
    nb_tensor *saved = nb_vocab_to_tensor(&t.vocab);
    assert_non_null(saved);
    assert_int_equal(nb_tensor_dtype(saved), NB_I32);
    assert_int_equal(nb_tensor_dim(saved, 0), t.vocab.size);
    assert_int_equal(nb_vocab_check(&t.vocab, saved), NB_OK);
    nb_vocab v;
    assert_int_equal(nb_vocab_from_tensor(saved, false, &v), NB_OK);
    assert_int_equal(v.size, t.vocab.size);
    assert_memory_equal(v.symbols, t.vocab.symbols, sizeof(int32_t) * (size_t)v.size);
    nb_vocab_free(&v);
    // Same size, one symbol different: the first differing id is named.
    assert_int_equal(nb_text_from_memory("hello xorld", 11, "b", NULL, &u), NB_OK);
    assert_int_equal(nb_vocab_check(&u.vocab, saved), NB_ERR_FORMAT);
    assert_msg_has("checkpoint has 8 symbols, corpus 8; id 7 is 'w' in the checkpoint, 'x'");
    nb_text_free(&u);
    // Different sizes.
    assert_int_equal(nb_text_from_memory("hello worldz", 12, "c", NULL, &u), NB_OK);
    assert_int_equal(nb_vocab_check(&u.vocab, saved), NB_ERR_FORMAT);
    assert_msg_has("checkpoint has 8 symbols, corpus 9; id 8 is nothing in the checkpoint");
    nb_text_free(&u);
    // Tensors that are not vocabularies.
    int32_t *d = nb_tensor_data_i32(saved);
    int32_t keep = d[1];
    d[1] = d[0];
    assert_int_equal(nb_vocab_from_tensor(saved, false, &v), NB_ERR_FORMAT);
    assert_msg_has("not a strictly ascending list of code points");
    d[1] = keep;
    d[t.vocab.size - 1] = 300;
    assert_int_equal(nb_vocab_from_tensor(saved, true, &v), NB_ERR_FORMAT);
    assert_msg_has("bytes");
    int64_t shape[1] = {3};
    nb_tensor *f = nb_tensor_create(NB_F32, 1, shape);
    assert_int_equal(nb_vocab_from_tensor(f, false, &v), NB_ERR_DTYPE);
    assert_int_equal(nb_vocab_check(&t.vocab, f), NB_ERR_DTYPE);
    assert_int_equal(nb_vocab_check(&t.vocab, NULL), NB_ERR_NULL);
    nb_tensor_destroy(f);
    nb_tensor_destroy(saved);
    nb_text_free(&t);
}

// Allocation failure: the k-th allocation fails; every k until success must be NB_ERR_NOMEM
// with *out zeroed (and under ASan nothing leaks).
static long alloc_budget;
static void *fail_malloc(size_t n) {
    return alloc_budget-- > 0 ? malloc(n) : NULL;
}
static void *fail_realloc(void *p, size_t n) {
    return alloc_budget-- > 0 ? realloc(p, n) : NULL;
}

static void out_of_memory(void **state) {
    (void)state;
    char p[300];
    tpath(p, sizeof p, "oom.txt");
    write_file(p, "some text\n", 10);
    const char *list[] = {p};
    bool ok = false;
    for (long k = 0; k < 20 && !ok; k++) {
        alloc_budget = k;
        nb_set_allocator(fail_malloc, fail_realloc, free);
        nb_text t;
        nb_status st = nb_text_load(list, 1, NULL, &t);
        nb_set_allocator(NULL, NULL, NULL);
        if (st == NB_OK) {
            ok = true;
            assert_int_equal(t.n, 10);
            nb_text_free(&t);
        } else {
            assert_int_equal(st, NB_ERR_NOMEM);
            assert_true(text_is_zero(&t));
        }
    }
    assert_true(ok);
    unlink(p);
}

// The example's corpus: Debian's fortunes, when installed.
static void fortunes_corpus(void **state) {
    (void)state;
    struct stat sb;
    if (stat(FORTUNES_DIR "/fortunes", &sb) != 0) {
        print_message("skipped: %s not installed (apt-get install fortunes)\n", FORTUNES_DIR);
        skip();
    }
    nb_text t;
    assert_int_equal(nb_text_load_dir(FORTUNES_DIR, NULL, &t), NB_OK);
    print_message("fortunes: %lld characters, vocabulary %d\n", (long long)t.n, t.vocab.size);
    assert_true(t.n > 1000000);
    assert_true(t.vocab.size > 60 && t.vocab.size < 1000);
    assert_true(nb_text_windows(&t, 64) > 10000);
    nb_text_free(&t);
}

static int group_setup(void **state) {
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/nb_text_XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    return rmdir(tmpdir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(utf8_characters),       cmocka_unit_test(encode_errors),
        cmocka_unit_test(byte_tokens),           cmocka_unit_test(refused_contents),
        cmocka_unit_test(fixed_vocabulary),      cmocka_unit_test(files_and_directories),
        cmocka_unit_test(windows_and_batches),   cmocka_unit_test(seeded_split),
        cmocka_unit_test(vocabulary_checkpoint), cmocka_unit_test(out_of_memory),
        cmocka_unit_test(fortunes_corpus),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
