// Tests for safetensors checkpoints (include/nabla/io.h): bitwise round trips, the on-disk layout
// Python's reader expects, a file written byte by byte as Python would, and every way a file or
// call can be wrong: each must fail with a status and a message naming the culprit, never crash,
// and leave the caller's tensors and the existing file untouched.
#define _POSIX_C_SOURCE 200809L // mkdtemp, truncate, mkfifo, setrlimit

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nabla/io.h"
#include "nabla/tensor.h"
#include "support/testdir.h"

#define assert_msg_has(s)                                                                          \
    do {                                                                                           \
        if (!strstr(nb_last_error(), (s))) {                                                       \
            print_error("message \"%s\" lacks \"%s\"\n", nb_last_error(), (s));                    \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

static nb_tensor *make(nb_dtype dtype, int ndim, const int64_t *shape, double fill) {
    nb_tensor *t = nb_tensor_create(dtype, ndim, shape);
    assert_non_null(t);
    nb_tensor_fill(t, fill);
    return t;
}

static bool all_equal(const nb_tensor *t, double v) {
    for (int64_t i = 0; i < nb_tensor_numel(t); i++)
        if (nb_tensor_get(t, i) != v)
            return false;
    return true;
}

// A file laid out by hand: the declared u64 header length (little-endian), header bytes, data.
static void write_raw(const char *path, uint64_t declared, const char *header, size_t hlen,
                      const void *data, size_t dlen) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    unsigned char len8[8];
    for (int k = 0; k < 8; k++)
        len8[k] = (unsigned char)(declared >> (8 * k));
    assert_int_equal(fwrite(len8, 1, 8, f), 8);
    assert_int_equal(fwrite(header, 1, hlen, f), hlen);
    if (dlen)
        assert_int_equal(fwrite(data, 1, dlen, f), dlen);
    assert_int_equal(fclose(f), 0);
}

static void write_json_file(const char *path, const char *json, const void *data, size_t dlen) {
    write_raw(path, strlen(json), json, strlen(json), data, dlen);
}

// ---- round trips --------------------------------------------------------------------------

static void round_trip_is_bitwise_exact(void **state) {
    (void)state;
    char path[256];
    nbt_in_dir(path, sizeof path, "rt.safetensors");
    const char *names[] = {"f32", "f64", "i32", "scalar", "one_f32", "one_i32", "empty", "i64"};
    nb_tensor *src[8] = {
        make(NB_F32, 2, (int64_t[]){3, 4}, 0), make(NB_F64, 3, (int64_t[]){2, 3, 2}, 0),
        make(NB_I32, 1, (int64_t[]){5}, 0),    make(NB_F64, 0, NULL, 0),
        make(NB_F32, 1, (int64_t[]){1}, 0),    make(NB_I32, 2, (int64_t[]){1, 1}, 0),
        make(NB_F32, 2, (int64_t[]){0, 3}, 0), make(NB_I64, 1, (int64_t[]){5}, 0),
    };
    // Bit patterns a text or double round trip would lose: NaN payloads, -0, denormals, inf.
    const uint32_t f32_bits[12] = {0x7fc01234, 0x80000000, 0x00000001, 0x7f800000,
                                   0xff800000, 0x3f800000, 0xbf8ccccd, 0x7f7fffff,
                                   0x00800000, 0x3eaaaaab, 0xc2f6e979, 0x12345678};
    memcpy(nb_tensor_data(src[0]), f32_bits, sizeof f32_bits);
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    for (int i = 0; i < 12; i++)
        nb_tensor_data_f64(src[1])[i] = nb_rng_normal(&rng) * 1e-300 * (i % 2 ? 1e300 : 1);
    const int32_t i32[5] = {INT32_MIN, -1, 0, 1, INT32_MAX};
    memcpy(nb_tensor_data(src[2]), i32, sizeof i32);
    const int64_t i64[5] = {INT64_MIN, -1, 0, (int64_t)1 << 53 | 1, INT64_MAX}; // beyond double
    memcpy(nb_tensor_data(src[7]), i64, sizeof i64);
    nb_tensor_set(src[3], 0, 3.141592653589793);
    nb_tensor_set(src[4], 0, -0.1);
    nb_tensor_set(src[5], 0, 123456789);
    assert_int_equal(nb_save_safetensors(path, names, src, 8), NB_OK);
    assert_int_equal(nbt_count_temp_files(), 0);

    nb_tensor *dst[8];
    for (int i = 0; i < 8; i++)
        dst[i] = make(nb_tensor_dtype(src[i]), nb_tensor_ndim(src[i]), nb_tensor_shape(src[i]), 0);
    // NaN and inf are refused by default; the flag lets a debugging session load them.
    assert_int_equal(nb_load_safetensors(path, names, dst, 8), NB_ERR_NONFINITE);
    assert_msg_has("rt.safetensors: 'f32' holds nan at element 0");
    nb_safetensors *h = NULL;
    assert_int_equal(nb_safetensors_open(path, &h), NB_OK);
    assert_true(nb_safetensors_checked(h));
    assert_int_equal(nb_safetensors_read(h, names, dst, 8, NB_LOAD_ALLOW_NONFINITE), NB_OK);
    int dt = -1;
    assert_true(nb_safetensors_find(h, "i64", &dt, NULL, NULL));
    assert_int_equal(dt, NB_I64);
    nb_safetensors_close(h);
    for (int i = 0; i < 8; i++) {
        size_t bytes = (size_t)nb_tensor_numel(src[i]) * nb_dtype_size(nb_tensor_dtype(src[i]));
        if (bytes) // the (0, 3) tensor has no bytes to compare
            assert_memory_equal(nb_tensor_data(dst[i]), nb_tensor_data(src[i]), bytes);
        nb_tensor_destroy(src[i]);
        nb_tensor_destroy(dst[i]);
    }
}

static void names_needing_json_escapes_round_trip(void **state) {
    (void)state;
    char path[256];
    nbt_in_dir(path, sizeof path, "names.safetensors");
    const char *names[] = {"a\"b\\c\n", "\xe5\xb1\x82.weight", "x"}; // quote, backslash, UTF-8
    nb_tensor *src[3] = {make(NB_F32, 1, (int64_t[]){2}, 1), make(NB_F32, 1, (int64_t[]){2}, 2),
                         make(NB_F32, 1, (int64_t[]){2}, 3)};
    nb_tensor *dst[3] = {make(NB_F32, 1, (int64_t[]){2}, 0), make(NB_F32, 1, (int64_t[]){2}, 0),
                         make(NB_F32, 1, (int64_t[]){2}, 0)};
    assert_int_equal(nb_save_safetensors(path, names, src, 3), NB_OK);
    assert_int_equal(nb_load_safetensors(path, names, dst, 3), NB_OK);
    for (int i = 0; i < 3; i++) {
        assert_true(all_equal(dst[i], i + 1));
        nb_tensor_destroy(src[i]);
        nb_tensor_destroy(dst[i]);
    }
}

// CRC-32C bit by bit, straight from the definition (reflected polynomial 0x82F63B78), to check
// the library's table and hardware versions.
static uint32_t crc32c_ref(const void *data, size_t n) {
    const unsigned char *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

// What Python's reader requires of our files: LE length, a JSON object padded with spaces so the
// data starts 8-aligned, offsets that tile the buffer exactly, little-endian data. F64 comes
// first so every tensor is aligned to its element size. The metadata holds the checksums.
static void saved_layout_is_python_compatible(void **state) {
    (void)state;
    char path[256];
    nbt_in_dir(path, sizeof path, "layout.safetensors");
    const char *names[] = {"w", "d", "k"};
    nb_tensor *t[3] = {make(NB_F32, 1, (int64_t[]){3}, 1.5), make(NB_F64, 0, NULL, -2),
                       make(NB_I32, 2, (int64_t[]){1, 2}, 258)};
    assert_int_equal(nb_save_safetensors(path, names, t, 3), NB_OK);
    size_t len = 0;
    unsigned char *b = nbt_read_file(path, &len);
    assert_non_null(b);
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--)
        n = (n << 8) | b[k];
    assert_int_equal(crc32c_ref("123456789", 9), 0xE3069283u); // the standard check value
    // Golden header: metadata with a CRC-32C per tensor over its stored bytes (and one over
    // the empty user metadata), exact integers, F64 first, then the rest in the caller's order.
    const unsigned char *data = b + 8 + n;
    char json[1024];
    snprintf(json, sizeof json,
             "{\"__metadata__\":{\"nabla.crc32c.w\":\"%08x\",\"nabla.crc32c.d\":\"%08x\","
             "\"nabla.crc32c.k\":\"%08x\",\"nabla.crc32c.__metadata__\":\"%08x\"},"
             "\"d\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},"
             "\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,20]},"
             "\"k\":{\"dtype\":\"I32\",\"shape\":[1,2],\"data_offsets\":[20,28]}}",
             crc32c_ref(data + 8, 12), crc32c_ref(data, 8), crc32c_ref(data + 20, 8),
             crc32c_ref("", 0));
    size_t jlen = strlen(json);
    assert_int_equal(n, (jlen + 7) / 8 * 8); // padded so the data starts 8-aligned
    assert_int_equal(len, 8 + n + 28);       // offsets tile the buffer exactly
    assert_memory_equal(b + 8, json, jlen);
    for (size_t i = jlen; i < n; i++)
        assert_int_equal(b[8 + i], ' ');
    const unsigned char minus2_f64[8] = {0, 0, 0, 0, 0, 0, 0x00, 0xc0};
    const unsigned char one_half_f32[4] = {0, 0, 0xc0, 0x3f};
    const unsigned char i258[4] = {0x02, 0x01, 0, 0};
    assert_memory_equal(data, minus2_f64, 8);
    assert_memory_equal(data + 8, one_half_f32, 4);
    assert_memory_equal(data + 16, one_half_f32, 4);
    assert_memory_equal(data + 24, i258, 4);
    free(b);
    for (int i = 0; i < 3; i++)
        nb_tensor_destroy(t[i]);
}

// A file laid out the way Python's safetensors writes one, bytes written by hand: metadata,
// keys out of data order, pretty JSON, space padding, and an extra BF16 tensor we do not load.
static void loads_python_written_file(void **state) {
    (void)state;
    char path[256];
    nbt_in_dir(path, sizeof path, "python.safetensors");
    const char *json = "{\"__metadata__\": {\"format\": \"pt\"}, "
                       "\"weight\": {\"dtype\": \"F32\", \"shape\": [2, 2], "
                       "\"data_offsets\": [16, 32]}, "
                       "\"bias\": {\"dtype\": \"F64\", \"shape\": [2], \"data_offsets\": [0, 16]}, "
                       "\"step\": {\"dtype\": \"I32\", \"shape\": [], \"data_offsets\": [32, 36]}, "
                       "\"extra\": {\"dtype\": \"BF16\", \"shape\": [3], "
                       "\"data_offsets\": [36, 42]}}";
    char header[512];
    size_t hlen = strlen(json);
    memcpy(header, json, hlen);
    while ((8 + hlen) % 8)
        header[hlen++] = ' ';
    const unsigned char data[42] = {0,    0,    0,    0,    0,    0,    0xd0, 0x3f, 0,
                                    0,    0,    0,    0,    0,    0xf0, 0xbf, // bias: 0.25, -1.0
                                    0,    0,    0x80, 0x3f, 0,    0,    0,    0xc0, 0,
                                    0,    0,    0x3f, 0,    0,    0x40, 0x40, // weight: 1 -2 .5 3
                                    7,    0,    0,    0,                      // step: 7
                                    0x80, 0x3f, 0,    0x40, 0x40, 0x40};      // extra: bf16 1 2 3
    write_raw(path, hlen, header, hlen, data, sizeof data);
    const char *names[] = {"weight", "bias", "step"};
    nb_tensor *t[3] = {make(NB_F32, 2, (int64_t[]){2, 2}, 0), make(NB_F64, 1, (int64_t[]){2}, 0),
                       make(NB_I32, 0, NULL, 0)};
    assert_int_equal(nb_load_safetensors(path, names, t, 3), NB_OK);
    const double w[4] = {1, -2, 0.5, 3};
    for (int i = 0; i < 4; i++)
        assert_true(nb_tensor_get(t[0], i) == w[i]);
    assert_true(nb_tensor_get(t[1], 0) == 0.25 && nb_tensor_get(t[1], 1) == -1);
    assert_true(nb_tensor_get(t[2], 0) == 7);
    // A subset, and nothing at all, are valid requests: the whole header is still validated.
    assert_int_equal(nb_load_safetensors(path, names + 2, t + 2, 1), NB_OK);
    assert_int_equal(nb_load_safetensors(path, NULL, NULL, 0), NB_OK);
    for (int i = 0; i < 3; i++)
        nb_tensor_destroy(t[i]);
}

// ---- the file does not fit the model -------------------------------------------------------

static void wrong_shape_rejected_and_nothing_modified(void **state) {
    (void)state;
    char path[256];
    nbt_in_dir(path, sizeof path, "checkpoint.safetensors");
    const char *names[] = {"fc1.bias", "fc1.weight"};
    nb_tensor *saved[2] = {make(NB_F32, 1, (int64_t[]){128}, 1),
                           make(NB_F32, 2, (int64_t[]){128, 784}, 1)};
    assert_int_equal(nb_save_safetensors(path, names, saved, 2), NB_OK);
    nb_tensor *model[2] = {make(NB_F32, 1, (int64_t[]){128}, 42),
                           make(NB_F32, 2, (int64_t[]){256, 784}, 42)};
    assert_int_equal(nb_load_safetensors(path, names, model, 2), NB_ERR_SHAPE);
    assert_msg_has("checkpoint.safetensors: 'fc1.weight' has shape (128, 784), "
                   "model expects (256, 784)");
    assert_true(all_equal(model[0], 42)); // validated all first: the bias was not copied
    for (int i = 0; i < 2; i++) {
        nb_tensor_destroy(saved[i]);
        nb_tensor_destroy(model[i]);
    }
}

static void wrong_dtype_rejected(void **state) {
    (void)state;
    char path[256];
    nbt_in_dir(path, sizeof path, "dtype.safetensors");
    const char *names[] = {"w"};
    nb_tensor *saved = make(NB_F64, 1, (int64_t[]){4}, 1);
    nb_tensor *model = make(NB_F32, 1, (int64_t[]){4}, 42);
    assert_int_equal(nb_save_safetensors(path, names, &saved, 1), NB_OK);
    assert_int_equal(nb_load_safetensors(path, names, &model, 1), NB_ERR_DTYPE);
    assert_msg_has("'w' has dtype F64, model expects F32");
    assert_true(all_equal(model, 42));
    nb_tensor_destroy(saved);
    nb_tensor_destroy(model);
}

static void missing_name_rejected(void **state) {
    (void)state;
    char path[256];
    nbt_in_dir(path, sizeof path, "missing.safetensors");
    nb_tensor *saved = make(NB_F32, 1, (int64_t[]){2}, 1);
    assert_int_equal(nb_save_safetensors(path, (const char *[]){"fc1.weight"}, &saved, 1), NB_OK);
    const char *names[] = {"fc1.weight", "fc2.bias", "fc3.bias"};
    nb_tensor *model[3] = {make(NB_F32, 1, (int64_t[]){2}, 42), make(NB_F32, 1, (int64_t[]){2}, 42),
                           make(NB_F32, 1, (int64_t[]){2}, 42)};
    assert_int_equal(nb_load_safetensors(path, names, model, 3), NB_ERR_FORMAT);
    assert_msg_has("missing.safetensors: 'fc2.bias' not found");
    assert_msg_has("2 of 3 requested names missing");
    assert_true(all_equal(model[0], 42));
    nb_tensor_destroy(saved);
    for (int i = 0; i < 3; i++)
        nb_tensor_destroy(model[i]);
}

// ---- corrupt files ---------------------------------------------------------------------------

static void truncated_file_rejected(void **state) {
    (void)state;
    char path[256];
    nbt_in_dir(path, sizeof path, "trunc.safetensors");
    const char *names[] = {"w"};
    nb_tensor *t = make(NB_F32, 1, (int64_t[]){16}, 1);
    assert_int_equal(nb_save_safetensors(path, names, &t, 1), NB_OK);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    nb_tensor_fill(t, 42);
    assert_int_equal(truncate(path, sb.st_size - 4), 0); // data cut short
    assert_int_equal(nb_load_safetensors(path, names, &t, 1), NB_ERR_FORMAT);
    assert_msg_has("'w' has data_offsets [0, 64] past the end of the 60-byte data buffer");
    assert_int_equal(truncate(path, 20), 0); // header cut short
    assert_int_equal(nb_load_safetensors(path, names, &t, 1), NB_ERR_FORMAT);
    assert_msg_has("exceeds the 12 bytes");
    assert_int_equal(truncate(path, 5), 0); // not even the length field
    assert_int_equal(nb_load_safetensors(path, names, &t, 1), NB_ERR_FORMAT);
    assert_msg_has("file is 5 bytes");
    assert_int_equal(truncate(path, 0), 0);
    assert_int_equal(nb_load_safetensors(path, names, &t, 1), NB_ERR_FORMAT);
    assert_true(all_equal(t, 42));
    nb_tensor_destroy(t);
}

static void header_length_beyond_file_rejected(void **state) {
    (void)state;
    char path[256];
    nbt_in_dir(path, sizeof path, "hlen.safetensors");
    nb_tensor *t = make(NB_F32, 1, (int64_t[]){2}, 42);
    const char *names[] = {"a"};
    write_raw(path, 1000, "{}", 2, NULL, 0);
    assert_int_equal(nb_load_safetensors(path, names, &t, 1), NB_ERR_FORMAT);
    assert_msg_has("header length 1000 exceeds the 2 bytes");
    write_raw(path, UINT64_C(1) << 63, "{}", 2, NULL, 0); // must not try to allocate it
    assert_int_equal(nb_load_safetensors(path, names, &t, 1), NB_ERR_FORMAT);
    assert_msg_has("exceeds");
    // A header length that fits the (sparse) file but is over the format's 100 MB cap.
    write_raw(path, 200000000, "{}", 2, NULL, 0);
    assert_int_equal(truncate(path, 8 + 200000000 + 8), 0);
    assert_int_equal(nb_load_safetensors(path, names, &t, 1), NB_ERR_FORMAT);
    assert_msg_has("over the format's limit");
    assert_int_equal(truncate(path, 0), 0);
    assert_true(all_equal(t, 42));
    nb_tensor_destroy(t);
}

// Headers that lie or are malformed, over an 8-byte data buffer; "a" is requested as F32 (2).
#define ENTRY(dtype, shape, offsets)                                                               \
    "{\"a\": {\"dtype\": " dtype ", \"shape\": " shape ", \"data_offsets\": " offsets "}}"
static void bad_headers_rejected(void **state) {
    (void)state;
    static const struct {
        const char *json;
        const char *msg;
    } cases[] = {
        {"{", "not valid JSON"},
        {"", "not valid JSON"},
        {"{} x", "not valid JSON"},
        {"[1, 2]", "not a JSON object"},
        {"42", "not a JSON object"},
        {"{\"a\": 5}", "entry 'a' is not an object"},
        {"{\"a\": [\"F32\"]}", "entry 'a' is not an object"},
        {ENTRY("\"Q7\"", "[2]", "[0, 8]"), "'a' has unknown dtype 'Q7'"},
        {ENTRY("32", "[2]", "[0, 8]"), "'a' has no \"dtype\" string"},
        {"{\"a\": {\"dtype\": \"F32\", \"data_offsets\": [0, 8]}}", "'a' has no \"shape\""},
        {ENTRY("\"F32\"", "[-2]", "[0, 8]"), "'a' has a shape entry that is not"},
        {ENTRY("\"F32\"", "[2.5]", "[0, 8]"), "'a' has a shape entry that is not"},
        {ENTRY("\"F32\"", "[\"2\"]", "[0, 8]"), "'a' has a shape entry that is not"},
        {ENTRY("\"F32\"", "[1e300]", "[0, 8]"), "'a' has a shape entry that is not"},
        {ENTRY("\"F32\"", "[1099511627776, 1099511627776, 1099511627776]", "[0, 8]"),
         "'a' has a shape with too many elements"},
        {ENTRY("\"F32\"", "[4]", "[0, 16]"), "'a' has data_offsets [0, 16] past the end of the "
                                             "8-byte data buffer"},
        {ENTRY("\"F32\"", "[2]", "[0, 4]"), "'a' has data_offsets [0, 4] (4 bytes) but F32 "
                                            "shape (2) needs 8 bytes"},
        {ENTRY("\"F64\"", "[2]", "[0, 8]"), "but F64 shape (2) needs 16 bytes"},
        {ENTRY("\"F32\"", "[2]", "[8, 0]"), "begin after end"},
        {ENTRY("\"F32\"", "[2]", "[-1, 7]"), "'a' needs \"data_offsets\" of two"},
        {ENTRY("\"F32\"", "[2]", "[0.5, 8]"), "'a' needs \"data_offsets\" of two"},
        {ENTRY("\"F32\"", "[2]", "[0, 4, 8]"), "'a' needs \"data_offsets\" of two"},
        {ENTRY("\"F32\"", "[2]", "[\"0\", \"8\"]"), "'a' needs \"data_offsets\" of two"},
        {ENTRY("\"F32\"", "[2]", "[0, 1e300]"), "'a' needs \"data_offsets\" of two"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2]}}", "'a' needs \"data_offsets\""},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
         "\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
         "'a' appears twice"},
        {"{\"__metadata__\": 3}", "\"__metadata__\" is not an object"},
        {"{\"__metadata__\": {\"k\": 1}}", "\"__metadata__\" value 'k' is not a string"},
        // A broken entry that is not even requested still fails the whole file.
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
         "\"zz\": {\"dtype\": \"U8\", \"shape\": [9], \"data_offsets\": [0, 9]}}",
         "'zz' has data_offsets [0, 9] past the end"},
    };
    char path[256];
    nbt_in_dir(path, sizeof path, "bad.safetensors");
    const unsigned char data[8] = {0};
    const char *names[] = {"a"};
    nb_tensor *t = make(NB_F32, 1, (int64_t[]){2}, 42);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_json_file(path, cases[i].json, data, sizeof data);
        nb_status st = nb_load_safetensors(path, names, &t, 1);
        if (st != NB_ERR_FORMAT || !strstr(nb_last_error(), cases[i].msg)) {
            print_error("case %zu (%s): status %d, message \"%s\", expected \"%s\"\n", i,
                        cases[i].json, (int)st, nb_last_error(), cases[i].msg);
            fail();
        }
        assert_msg_has("bad.safetensors: ");
    }
    write_raw(path, 5, "{}\0xx", 5, data, sizeof data); // NUL would hide trailing junk
    assert_int_equal(nb_load_safetensors(path, names, &t, 1), NB_ERR_FORMAT);
    assert_msg_has("NUL byte");
    assert_true(all_equal(t, 42));
    nb_tensor_destroy(t);
}

// ---- save failures -------------------------------------------------------------------------

static void save_to_unwritable_path_fails_cleanly(void **state) {
    (void)state;
    char path[256];
    nbt_in_dir(path, sizeof path, "no_such_dir/model.safetensors");
    nb_tensor *t = make(NB_F32, 1, (int64_t[]){2}, 1);
    assert_int_equal(nb_save_safetensors(path, (const char *[]){"w"}, &t, 1), NB_ERR_IO);
    assert_msg_has("no_such_dir/model.safetensors");
    assert_msg_has("No such file or directory");
    struct stat sb;
    char sub[256];
    assert_int_not_equal(stat(nbt_in_dir(sub, sizeof sub, "no_such_dir"), &sb), 0);
    assert_int_equal(nbt_count_temp_files(), 0);
    nb_tensor_destroy(t);
}

static void save_replaces_atomically(void **state) {
    (void)state;
    char path[256];
    nbt_in_dir(path, sizeof path, "atomic.safetensors");
    const char *names[] = {"a", "b"};
    nb_tensor *v1[2] = {make(NB_F32, 1, (int64_t[]){3}, 1), make(NB_F64, 1, (int64_t[]){2}, 1)};
    nb_tensor *v2[2] = {make(NB_F32, 1, (int64_t[]){3}, 2), make(NB_F64, 1, (int64_t[]){2}, 2)};
    assert_int_equal(nb_save_safetensors(path, names, v1, 2), NB_OK);
    assert_int_equal(nb_save_safetensors(path, names, v2, 2), NB_OK); // replaces
    size_t len_before = 0;
    unsigned char *before = nbt_read_file(path, &len_before);
    assert_non_null(before);

    // Failures before writing, and during the rename: the old file stays, no temp file is left.
    nb_tensor *with_null[2] = {v1[0], NULL};
    assert_int_equal(nb_save_safetensors(path, names, with_null, 2), NB_ERR_NULL);
    assert_msg_has("'b' is NULL");
    assert_int_equal(nb_save_safetensors(path, (const char *[]){"a", "a"}, v1, 2), NB_ERR_ARG);
    assert_msg_has("name 'a' is used twice");
    size_t len_after = 0;
    unsigned char *after = nbt_read_file(path, &len_after);
    assert_non_null(after);
    assert_int_equal(len_after, len_before);
    assert_memory_equal(after, before, len_before);
    assert_int_equal(nbt_count_temp_files(), 0);

    char blocker[256];
    assert_int_equal(mkdir(nbt_in_dir(blocker, sizeof blocker, "blocked.safetensors"), 0700), 0);
    assert_int_equal(nb_save_safetensors(blocker, names, v1, 2), NB_ERR_IO);
    assert_msg_has("blocked.safetensors is a directory, not a regular file");
    assert_int_equal(nbt_count_temp_files(), 0);
    assert_int_equal(rmdir(blocker), 0);

    nb_tensor *dst[2] = {make(NB_F32, 1, (int64_t[]){3}, 0), make(NB_F64, 1, (int64_t[]){2}, 0)};
    assert_int_equal(nb_load_safetensors(path, names, dst, 2), NB_OK);
    assert_true(all_equal(dst[0], 2) && all_equal(dst[1], 2));
    free(before);
    free(after);
    for (int i = 0; i < 2; i++) {
        nb_tensor_destroy(v1[i]);
        nb_tensor_destroy(v2[i]);
        nb_tensor_destroy(dst[i]);
    }
}

// A write failing midway (a file-size limit stands in for a full disk): the old file survives
// and the partial temp file is removed.
static void save_failing_midway_keeps_old_file(void **state) {
    (void)state;
    char path[256];
    nbt_in_dir(path, sizeof path, "midway.safetensors");
    const char *names[] = {"w"};
    nb_tensor *small = make(NB_F32, 1, (int64_t[]){4}, 1);
    nb_tensor *big = make(NB_F32, 1, (int64_t[]){100000}, 2);
    assert_int_equal(nb_save_safetensors(path, names, &small, 1), NB_OK);
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    struct rlimit cap = old;
    cap.rlim_cur = 64 * 1024;
    if (old.rlim_max != RLIM_INFINITY && old.rlim_max < cap.rlim_cur)
        skip();
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN); // write fails with EFBIG instead of a signal
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &cap), 0);
    nb_status st = nb_save_safetensors(path, names, &big, 1);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    assert_int_equal(st, NB_ERR_IO);
    assert_msg_has("midway.safetensors: writing the new file failed");
    assert_msg_has("File too large");
    assert_int_equal(nbt_count_temp_files(), 0);
    assert_int_equal(nb_load_safetensors(path, names, &small, 1), NB_OK);
    assert_true(all_equal(small, 1));
    nb_tensor_destroy(small);
    nb_tensor_destroy(big);
}

static void bad_arguments_rejected(void **state) {
    (void)state;
    char path[256];
    nbt_in_dir(path, sizeof path, "args.safetensors");
    nb_tensor *t = make(NB_F32, 1, (int64_t[]){2}, 1);
    const char *w[] = {"w"};
    assert_int_equal(nb_save_safetensors(NULL, w, &t, 1), NB_ERR_NULL);
    assert_int_equal(nb_save_safetensors("", w, &t, 1), NB_ERR_ARG);
    assert_int_equal(nb_save_safetensors(path, w, &t, -1), NB_ERR_ARG);
    assert_int_equal(nb_save_safetensors(path, NULL, &t, 1), NB_ERR_NULL);
    assert_int_equal(nb_save_safetensors(path, (const char *[]){""}, &t, 1), NB_ERR_ARG);
    assert_int_equal(nb_save_safetensors(path, (const char *[]){NULL}, &t, 1), NB_ERR_ARG);
    assert_int_equal(nb_save_safetensors(path, (const char *[]){"__metadata__"}, &t, 1),
                     NB_ERR_ARG);
    assert_msg_has("reserved");
    assert_int_equal(nb_save_safetensors(path, (const char *[]){"\xff"}, &t, 1), NB_ERR_ARG);
    assert_msg_has("UTF-8");
    assert_int_equal(nb_save_safetensors(path, (const char *[]){"\xc0\x80"}, &t, 1), NB_ERR_ARG);
    struct stat sb;
    assert_int_not_equal(stat(path, &sb), 0); // no failed call created anything
    assert_int_equal(nbt_count_temp_files(), 0);

    assert_int_equal(nb_load_safetensors(path, w, &t, 1), NB_ERR_IO);
    assert_msg_has("args.safetensors: cannot open: No such file or directory");
    assert_int_equal(nb_load_safetensors(nbt_dir, w, &t, 1), NB_ERR_IO);
    assert_msg_has("not a regular file");
    char fifo[256];
    assert_int_equal(mkfifo(nbt_in_dir(fifo, sizeof fifo, "pipe.safetensors"), 0600), 0);
    assert_int_equal(nb_load_safetensors(fifo, w, &t, 1), NB_ERR_IO); // and does not block
    assert_msg_has("pipe.safetensors: not a regular file");
    assert_int_equal(nb_save_safetensors(path, NULL, NULL, 0), NB_OK); // an empty checkpoint
    assert_int_equal(nb_load_safetensors(path, NULL, NULL, 0), NB_OK);
    assert_int_equal(nb_load_safetensors(path, w, (nb_tensor *[]){NULL}, 1), NB_ERR_NULL);
    assert_int_equal(nb_load_safetensors(path, w, &t, 1), NB_ERR_FORMAT);
    assert_msg_has("'w' not found");
    nb_tensor_destroy(t);
}

// ---- the group -------------------------------------------------------------------------------

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_is_bitwise_exact),
        cmocka_unit_test(names_needing_json_escapes_round_trip),
        cmocka_unit_test(saved_layout_is_python_compatible),
        cmocka_unit_test(loads_python_written_file),
        cmocka_unit_test(wrong_shape_rejected_and_nothing_modified),
        cmocka_unit_test(wrong_dtype_rejected),
        cmocka_unit_test(missing_name_rejected),
        cmocka_unit_test(truncated_file_rejected),
        cmocka_unit_test(header_length_beyond_file_rejected),
        cmocka_unit_test(bad_headers_rejected),
        cmocka_unit_test(save_to_unwritable_path_fails_cleanly),
        cmocka_unit_test(save_replaces_atomically),
        cmocka_unit_test(save_failing_midway_keeps_old_file),
        cmocka_unit_test(bad_arguments_rejected),
    };
    return cmocka_run_group_tests(tests, nbt_dir_make, nbt_dir_remove);
}
