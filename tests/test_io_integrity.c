// Checkpoint integrity (include/nabla/io.h, issue 15): CRC-32C checksums catch every single-bit
// flip of a saved file, foreign files without them still load, non-finite weights are refused
// unless allowed, the reader is as strict as the reference one (UTF-8, tiling), messages never
// echo raw control bytes from a file, and output paths that a rename would destroy (links,
// FIFOs, directories) are refused, with long names and permission bits handled.
#define _GNU_SOURCE // mkdtemp, mkfifo, symlink

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nabla/io.h"
#include "nabla/tensor.h"
#include "support/testdir.h"

// Library internals under test: the portable CRC path and the switch that forces the named
// temp file path (as on a filesystem without O_TMPFILE).
uint32_t nb__crc32c_update(uint32_t crc, const void *data, size_t n);
uint32_t nb__crc32c_soft(uint32_t crc, const void *data, size_t n);
extern bool nb__io_no_tmpfile;

#define assert_msg_has(s)                                                                          \
    do {                                                                                           \
        if (!strstr(nb_last_error(), (s))) {                                                       \
            print_error("message \"%s\" lacks \"%s\"\n", nb_last_error(), (s));                    \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

static void spit(const char *path, const void *p, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

// A file from a JSON header (padded) and data.
static void write_st(const char *path, const char *json, const void *data, size_t dlen) {
    size_t hlen = strlen(json);
    unsigned char *b = malloc(8 + hlen + dlen + 1);
    assert_non_null(b);
    for (int k = 0; k < 8; k++)
        b[k] = (unsigned char)((uint64_t)hlen >> (8 * k));
    memcpy(b + 8, json, hlen);
    if (dlen)
        memcpy(b + 8 + hlen, data, dlen);
    spit(path, b, 8 + hlen + dlen);
    free(b);
}

static uint32_t crc_ref(const void *data, size_t n) {
    const unsigned char *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

static void crc32c_matches_definition(void **state) {
    (void)state;
    unsigned char buf[4099];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 131 + (i >> 5));
    assert_int_equal(nb__crc32c_update(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(nb__crc32c_soft(0, "123456789", 9), 0xE3069283u);
    const size_t lens[] = {0, 1, 7, 8, 9, 15, 16, 63, 64, 1000, 4099};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t n = lens[k];
        uint32_t want = crc_ref(buf + 3, n > 4096 ? 4096 : n); // odd start: unaligned loads
        size_t m = n > 4096 ? 4096 : n;
        assert_int_equal(nb__crc32c_update(0, buf + 3, m), want);
        assert_int_equal(nb__crc32c_soft(0, buf + 3, m), want);
        // In two pieces: the running value continues.
        uint32_t c = nb__crc32c_update(0, buf + 3, m / 3);
        assert_int_equal(nb__crc32c_update(c, buf + 3 + m / 3, m - m / 3), want);
    }
}

// A small checkpoint with user metadata: three dtypes, and the bytes each tensor holds.
#define N_T 3
static const char *const t_names[N_T] = {"fc1.weight", "fc1.bias", "step"};
static nb_tensor *t_make(int which, double fill) {
    static const int64_t shapes[N_T][2] = {{3, 4}, {3, 0}, {0, 0}};
    static const nb_dtype dts[N_T] = {NB_F32, NB_F64, NB_I32};
    static const int ndims[N_T] = {2, 1, 0};
    nb_tensor *t = nb_tensor_create(dts[which], ndims[which], shapes[which]);
    assert_non_null(t);
    nb_tensor_fill(t, fill);
    return t;
}

static void save_small(const char *path, nb_tensor **t) {
    for (int i = 0; i < N_T; i++)
        t[i] = t_make(i, 0);
    for (int64_t k = 0; k < 12; k++)
        nb_tensor_set(t[0], k, 0.37 * (double)k - 1.1);
    nb_tensor_set(t[1], 0, 1e-3);
    nb_tensor_set(t[1], 2, -250.5);
    nb_tensor_set(t[2], 0, 1234);
    const char *keys[] = {"epoch", "optimizer"};
    const char *values[] = {"7", "sgd"};
    assert_int_equal(nb_save_safetensors_meta(path, t_names, t, N_T, keys, values, 2), NB_OK);
}

static bool same_bytes(nb_tensor *a, nb_tensor *b) {
    size_t n = (size_t)nb_tensor_numel(a) * nb_dtype_size(nb_tensor_dtype(a));
    return memcmp(nb_tensor_data(a), nb_tensor_data(b), n) == 0;
}

// Every single-bit flip anywhere in the file: the load fails, or gives exactly the saved
// tensors and metadata (a flip in the padding or in a JSON spelling that changes nothing).
static void every_bit_flip_is_caught(void **state) {
    (void)state;
    char path[512], flipped[512];
    nbt_in_dir(path, sizeof path, "small.safetensors");
    nbt_in_dir(flipped, sizeof flipped, "flipped.safetensors");
    nb_tensor *orig[N_T], *got[N_T];
    save_small(path, orig);
    for (int i = 0; i < N_T; i++)
        got[i] = t_make(i, 0);
    size_t len = 0;
    unsigned char *b = nbt_read_file(path, &len);
    assert_non_null(b);
    int silent = 0, refused = 0;
    spit(flipped, b, len);
    // Flipped in place (no truncating rewrite: ext4 flushes a file truncated on open, 3 ms).
    int fd = open(flipped, O_WRONLY);
    assert_true(fd >= 0);
    for (size_t byte = 0; byte < len; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            unsigned char c = b[byte] ^ (unsigned char)(1u << bit);
            assert_int_equal(pwrite(fd, &c, 1, (off_t)byte), 1);
            nb_safetensors *h = NULL;
            nb_status st = nb_safetensors_open(flipped, &h);
            if (st == NB_OK)
                st = nb_safetensors_read(h, t_names, got, N_T, 0);
            if (st != NB_OK) {
                refused++;
                nb_safetensors_close(h);
                continue;
            }
            const char *epoch = nb_safetensors_meta(h, "epoch");
            const char *opt = nb_safetensors_meta(h, "optimizer");
            bool same = nb_safetensors_checked(h) && epoch && !strcmp(epoch, "7") && opt &&
                        !strcmp(opt, "sgd");
            for (int i = 0; i < N_T; i++)
                same = same && same_bytes(got[i], orig[i]);
            if (!same) {
                print_error("flip of bit %d of byte %zu loaded different content\n", bit, byte);
                silent++;
            }
            nb_safetensors_close(h);
        }
        assert_int_equal(pwrite(fd, &b[byte], 1, (off_t)byte), 1);
    }
    close(fd);
    assert_int_equal(silent, 0);
    // Only flips in whitespace-insensitive places can pass; the data and digits all fail.
    assert_true(refused > (int)(len * 8) * 9 / 10);
    free(b);
    for (int i = 0; i < N_T; i++) {
        nb_tensor_destroy(orig[i]);
        nb_tensor_destroy(got[i]);
    }
}

static void metadata_round_trips_and_reserved_keys_refused(void **state) {
    (void)state;
    char path[512];
    nbt_in_dir(path, sizeof path, "meta.safetensors");
    nb_tensor *t[N_T];
    save_small(path, t);
    nb_safetensors *h = NULL;
    assert_int_equal(nb_safetensors_open(path, &h), NB_OK);
    assert_true(nb_safetensors_checked(h));
    assert_string_equal(nb_safetensors_meta(h, "epoch"), "7");
    assert_string_equal(nb_safetensors_meta(h, "optimizer"), "sgd");
    assert_null(nb_safetensors_meta(h, "missing"));
    int dtype = -2, ndim = -1;
    int64_t shape[NB_MAX_DIMS];
    assert_true(nb_safetensors_find(h, "fc1.weight", &dtype, &ndim, shape));
    assert_int_equal(dtype, NB_F32);
    assert_int_equal(ndim, 2);
    assert_true(shape[0] == 3 && shape[1] == 4);
    assert_false(nb_safetensors_find(h, "fc2.weight", NULL, NULL, NULL));
    assert_int_equal(nb_safetensors_read(h, t_names, t, N_T, 0x80), NB_ERR_ARG);
    nb_safetensors_close(h);
    nb_safetensors_close(NULL);

    const char *k1[] = {"nabla.crc32c.x"};
    const char *v1[] = {"0"};
    assert_int_equal(nb_save_safetensors_meta(path, t_names, t, N_T, k1, v1, 1), NB_ERR_ARG);
    assert_msg_has("reserved");
    const char *k2[] = {"a", "a"};
    const char *v2[] = {"1", "2"};
    assert_int_equal(nb_save_safetensors_meta(path, t_names, t, N_T, k2, v2, 2), NB_ERR_ARG);
    assert_msg_has("used twice");
    const char *v3[] = {"\xff"};
    assert_int_equal(nb_save_safetensors_meta(path, t_names, t, N_T, k2, v3, 1), NB_ERR_ARG);
    assert_msg_has("UTF-8");
    for (int i = 0; i < N_T; i++)
        nb_tensor_destroy(t[i]);
}

// Files from other tools carry no checksums: they load, and the handle says so. A file whose
// checksum keys are incomplete or name other tensors is corrupt.
static void foreign_files_load_and_partial_checksums_fail(void **state) {
    (void)state;
    char path[512];
    nbt_in_dir(path, sizeof path, "foreign.safetensors");
    const float two[2] = {1.5f, -2};
    nb_tensor *a = nb_tensor_create(NB_F32, 1, (const int64_t[]){2});
    assert_non_null(a);
    write_st(path,
             "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
             "\"data_offsets\":[0,8]}}",
             two, 8);
    nb_safetensors *h = NULL;
    assert_int_equal(nb_safetensors_open(path, &h), NB_OK);
    assert_false(nb_safetensors_checked(h));
    assert_int_equal(nb_safetensors_read(h, (const char *[]){"a"}, &a, 1, 0), NB_OK);
    assert_true(nb_tensor_get(a, 1) == -2);
    nb_safetensors_close(h);

    char json[512];
    snprintf(json, sizeof json,
             "{\"__metadata__\":{\"nabla.crc32c.b\":\"%08x\",\"nabla.crc32c.__metadata__\":"
             "\"00000000\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
             crc_ref(two, 8));
    write_st(path, json, two, 8);
    assert_int_equal(nb_load_safetensors(path, (const char *[]){"a"}, &a, 1), NB_ERR_FORMAT);
    assert_msg_has("checksum for 'b', which is not in the file");
    snprintf(json, sizeof json,
             "{\"__metadata__\":{\"nabla.crc32c.a\":\"%08x\"},\"a\":{\"dtype\":\"F32\","
             "\"shape\":[2],\"data_offsets\":[0,8]}}",
             crc_ref(two, 8));
    write_st(path, json, two, 8);
    assert_int_equal(nb_load_safetensors(path, (const char *[]){"a"}, &a, 1), NB_ERR_FORMAT);
    assert_msg_has("metadata checksum is missing");
    snprintf(json, sizeof json,
             "{\"__metadata__\":{\"nabla.crc32c.a\":\"%08x\",\"nabla.crc32c.__metadata__\":"
             "\"00000000\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
             crc_ref(two, 8) ^ 1);
    write_st(path, json, two, 8);
    nb_tensor_fill(a, 42);
    assert_int_equal(nb_load_safetensors(path, (const char *[]){"a"}, &a, 1), NB_ERR_FORMAT);
    assert_msg_has("'a' fails its checksum");
    assert_true(nb_tensor_get(a, 0) == 42); // untouched
    nb_tensor_destroy(a);
}

static void nonfinite_weights_refused_unless_allowed(void **state) {
    (void)state;
    char path[512];
    nbt_in_dir(path, sizeof path, "nan.safetensors");
    nb_tensor *t[2] = {nb_tensor_create(NB_F32, 1, (const int64_t[]){4}),
                       nb_tensor_create(NB_F64, 2, (const int64_t[]){2, 3})};
    assert_true(t[0] && t[1]);
    nb_tensor_fill(t[0], 1);
    nb_tensor_fill(t[1], 2);
    nb_tensor_set(t[1], 4, INFINITY);
    const char *names[] = {"ok", "bad"};
    assert_int_equal(nb_save_safetensors(path, names, t, 2), NB_OK); // saving is allowed
    nb_tensor_fill(t[0], 5);
    nb_tensor_fill(t[1], 5);
    assert_int_equal(nb_load_safetensors(path, names, t, 2), NB_ERR_NONFINITE);
    assert_msg_has("nan.safetensors: 'bad' holds inf at element 4");
    assert_true(nb_tensor_get(t[0], 0) == 5 && nb_tensor_get(t[1], 0) == 5); // all or nothing
    assert_int_equal(nb_load_safetensors(path, names, t, 1), NB_OK);         // 'ok' alone is fine
    nb_safetensors *h = NULL;
    assert_int_equal(nb_safetensors_open(path, &h), NB_OK);
    assert_int_equal(nb_safetensors_read(h, names, t, 2, NB_LOAD_ALLOW_NONFINITE), NB_OK);
    assert_true(isinf(nb_tensor_get(t[1], 4)));
    nb_safetensors_close(h);
    nb_tensor_destroy(t[0]);
    nb_tensor_destroy(t[1]);
}

// The reference reader's rules (finding 9), and messages that show file strings escaped.
static void strict_header_rules(void **state) {
    (void)state;
    static const struct {
        const char *json;
        size_t dlen;
        const char *msg;
    } cases[] = {
        {"{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
         "header is not valid UTF-8"},
        {"{\"__metadata__\":{\"k\":\"\xc0\x80\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
         "\"data_offsets\":[0,8]}}",
         8, "header is not valid UTF-8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, "overlaps"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         8, "overlaps"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
         "4 unused bytes before 'a'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8,
         "4 bytes after the last tensor"},
        {"{\"a\":{\"dtype\":\"\\u001b[31mX\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
         "unknown dtype '\\x1b[31mX'"},
        {"{\"a\\u0007\":{\"dtype\":\"Q\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
         "'a\\x07' has unknown dtype 'Q'"},
        {"{\"a\":{\"dtype\":\"\\u0085\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
         "unknown dtype '\\u0085'"},
    };
    char path[512];
    nbt_in_dir(path, sizeof path, "strict.safetensors");
    unsigned char data[8] = {0};
    nb_tensor *t = nb_tensor_create(NB_F32, 1, (const int64_t[]){2});
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_st(path, cases[i].json, data, cases[i].dlen);
        nb_status st = nb_load_safetensors(path, (const char *[]){"a"}, &t, 1);
        const char *m = nb_last_error();
        bool raw_ctl = false;
        for (const char *c = m; *c; c++)
            raw_ctl = raw_ctl || (unsigned char)*c < 0x20 || *c == 0x7f;
        if (st != NB_ERR_FORMAT || !strstr(m, cases[i].msg) || raw_ctl) {
            print_error("case %zu: status %d, message \"%s\", expected \"%s\"\n", i, (int)st, m,
                        cases[i].msg);
            fail();
        }
    }
    // A long dtype is cut short in the message.
    char json[2048];
    char longd[1001];
    memset(longd, 'Z', 1000);
    longd[1000] = '\0';
    snprintf(json, sizeof json, "{\"a\":{\"dtype\":\"%s\",\"shape\":[2],\"data_offsets\":[0,8]}}",
             longd);
    write_st(path, json, data, 8);
    assert_int_equal(nb_load_safetensors(path, (const char *[]){"a"}, &t, 1), NB_ERR_FORMAT);
    assert_msg_has("ZZZ...'");
    assert_true(strlen(nb_last_error()) < 400);
    nb_tensor_destroy(t);
}

// Outputs a rename would destroy are refused (finding 2); nothing is created or replaced.
static void special_output_paths_refused(void **state) {
    (void)state;
    char target[512], link[512], fifo[512], sub[512], path[600];
    nb_tensor *t = nb_tensor_create(NB_F32, 1, (const int64_t[]){2});
    assert_non_null(t);
    const char *w[] = {"w"};
    nbt_in_dir(target, sizeof target, "target.safetensors");
    assert_int_equal(nb_save_safetensors(target, w, &t, 1), NB_OK);
    size_t before_len = 0;
    unsigned char *before = nbt_read_file(target, &before_len);
    assert_non_null(before);
    assert_int_equal(symlink(target, nbt_in_dir(link, sizeof link, "link.safetensors")), 0);
    assert_int_equal(nb_check_output_path(link), NB_ERR_IO);
    assert_msg_has("link.safetensors is a symbolic link");
    nb_tensor_fill(t, 9);
    assert_int_equal(nb_save_safetensors(link, w, &t, 1), NB_ERR_IO);
    struct stat sb;
    assert_int_equal(lstat(link, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    size_t after_len = 0;
    unsigned char *after = nbt_read_file(target, &after_len);
    assert_non_null(after);
    assert_true(after_len == before_len && !memcmp(before, after, before_len));
    assert_int_equal(mkfifo(nbt_in_dir(fifo, sizeof fifo, "out.fifo"), 0600), 0);
    assert_int_equal(nb_save_safetensors(fifo, w, &t, 1), NB_ERR_IO);
    assert_msg_has("out.fifo is a FIFO (named pipe), not a regular file");
    assert_int_equal(lstat(fifo, &sb), 0);
    assert_true(S_ISFIFO(sb.st_mode));
    assert_int_equal(mkdir(nbt_in_dir(sub, sizeof sub, "sub"), 0700), 0);
    assert_int_equal(nb_check_output_path(sub), NB_ERR_IO);
    assert_msg_has("sub is a directory");
    snprintf(path, sizeof path, "%s/", sub);
    assert_int_equal(nb_check_output_path(path), NB_ERR_ARG);
    assert_int_equal(nb_check_output_path(nbt_in_dir(path, sizeof path, "none/x.safetensors")),
                     NB_ERR_IO);
    assert_msg_has("cannot create files in");
    assert_int_equal(nb_check_output_path(nbt_in_dir(path, sizeof path, "new.safetensors")), NB_OK);
    assert_int_not_equal(stat(path, &sb), 0); // checking created nothing
    assert_int_equal(nb_check_output_path(NULL), NB_ERR_NULL);
    assert_int_equal(nb_write_file_atomic(path, NULL, NULL), NB_ERR_NULL);
    assert_int_equal(nbt_count_temp_files(), 0);
    unlink(link);
    unlink(fifo);
    rmdir(sub);
    free(before);
    free(after);
    nb_tensor_destroy(t);
}

// Long names (finding 8), leftovers of a killed save removed by the next one, permission
// bits kept, on both the O_TMPFILE path and the named temp file path.
static void temp_files_never_accumulate(void **state) {
    (void)state;
    nb_tensor *t = nb_tensor_create(NB_F32, 1, (const int64_t[]){3});
    assert_non_null(t);
    nb_tensor_fill(t, 4);
    const char *w[] = {"w"};
    for (int pass = 0; pass < 2; pass++) {
        nb__io_no_tmpfile = pass == 1;
        char name[300], path[512], stale[600];
        memset(name, 'n', 239);
        snprintf(name + 239, sizeof name - 239, "%d.safetensors", pass); // 252 bytes
        assert_int_equal(strlen(name), 252);
        nbt_in_dir(path, sizeof path, name);
        assert_int_equal(nb_save_safetensors(path, w, &t, 1), NB_OK);
        assert_int_equal(nbt_count_temp_files(), 0);
        assert_int_equal(nb_load_safetensors(path, w, &t, 1), NB_OK);
        // What a kill -9 between naming and renaming leaves: a fixed name next to the file.
        nbt_in_dir(path, sizeof path, "short.safetensors");
        snprintf(stale, sizeof stale, "%s/.short.safetensors.nabla-tmp", nbt_dir);
        spit(stale, "partial", 7);
        assert_int_equal(chmod(stale, 0400), 0);
        assert_int_equal(nb_save_safetensors(path, w, &t, 1), NB_OK);
        assert_int_equal(nbt_count_temp_files(), 0);
        assert_int_equal(chmod(path, 0640), 0);
        assert_int_equal(nb_save_safetensors(path, w, &t, 1), NB_OK);
        struct stat sb;
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0640);
        unlink(path);
    }
    nb__io_no_tmpfile = false;
    nb_tensor_destroy(t);
}

// A counting allocator (size prefix) to measure what a load costs at its peak.
static size_t live_bytes, peak_bytes;
static void *count_malloc(size_t n) {
    size_t *p = malloc(n + 16);
    if (!p)
        return NULL;
    *p = n;
    live_bytes += n;
    peak_bytes = live_bytes > peak_bytes ? live_bytes : peak_bytes;
    return (char *)p + 16;
}
static void count_free(void *q) {
    if (!q)
        return;
    size_t *p = (size_t *)((char *)q - 16);
    live_bytes -= *p;
    free(p);
}
static void *count_realloc(void *q, size_t n) {
    void *r = count_malloc(n);
    if (r && q) {
        size_t old = *(size_t *)((char *)q - 16);
        memcpy(r, q, old < n ? old : n);
        count_free(q);
    }
    return r;
}

// Finding 4 (the checkpoint part): a big header is parsed once per open, in memory bounded by
// 2.5x its size (a JSON tree took over 10x: 1 GB for an 89 MB header).
static void header_memory_is_bounded(void **state) {
    (void)state;
    char path[512];
    nbt_in_dir(path, sizeof path, "wide.safetensors");
    enum { N = 100000 }; // entries "t<i>": one U8 each, ~58 bytes of header apiece
    size_t cap = (size_t)N * 80 + 16;
    char *json = malloc(cap);
    assert_non_null(json);
    size_t len = (size_t)snprintf(json, cap, "{");
    for (int i = 0; i < N; i++)
        len +=
            (size_t)snprintf(json + len, cap - len,
                             "%s\"t%d\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[%d,%d]}",
                             i ? "," : "", i, i, i + 1);
    len += (size_t)snprintf(json + len, cap - len, "}");
    unsigned char *data = calloc(N, 1);
    assert_non_null(data);
    write_st(path, json, data, N);
    nb_set_allocator(count_malloc, count_realloc, count_free);
    live_bytes = peak_bytes = 0;
    nb_safetensors *h = NULL;
    assert_int_equal(nb_safetensors_open(path, &h), NB_OK);
    assert_true(nb_safetensors_find(h, "t77777", NULL, NULL, NULL));
    assert_false(nb_safetensors_checked(h));
    nb_safetensors_close(h);
    size_t peak = peak_bytes;
    assert_int_equal(live_bytes, 0);
    nb_set_allocator(NULL, NULL, NULL);
    if (peak > len * 5 / 2) {
        print_error("opening a %zu-byte header peaked at %zu bytes\n", len, peak);
        fail();
    }
    free(json);
    free(data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc32c_matches_definition),
        cmocka_unit_test(every_bit_flip_is_caught),
        cmocka_unit_test(metadata_round_trips_and_reserved_keys_refused),
        cmocka_unit_test(foreign_files_load_and_partial_checksums_fail),
        cmocka_unit_test(nonfinite_weights_refused_unless_allowed),
        cmocka_unit_test(strict_header_rules),
        cmocka_unit_test(special_output_paths_refused),
        cmocka_unit_test(temp_files_never_accumulate),
        cmocka_unit_test(header_memory_is_bounded),
    };
    return cmocka_run_group_tests(tests, nbt_dir_make, nbt_dir_remove);
}
