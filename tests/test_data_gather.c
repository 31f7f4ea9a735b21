// Tests for the uint8 pixel gather of nb_dataset_fill_batch (src/data/batch.c): the values of
// every byte against the division v / 255 (the FMA path replaces the division on x86-64), rows
// longer than the prefetch window and batches longer than it, and a dataset large enough for
// the huge-page storage (src/data/dataset.c).
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "nabla/data.h"

// x (n, f) f32 and f64 batches of ds's samples idx must hold exactly v / 255 of each byte.
static void expect_batch(const nb_dataset *ds, const int64_t *idx, int64_t n, int64_t f) {
    nb_tensor *x32 = nb_tensor_create(NB_F32, 2, (int64_t[]){n, f});
    nb_tensor *x64 = nb_tensor_create(NB_F64, 2, (int64_t[]){n, f});
    assert_non_null(x32);
    assert_non_null(x64);
    assert_int_equal(nb_dataset_fill_batch(ds, idx, n, x32, NULL, NULL), NB_OK);
    assert_int_equal(nb_dataset_fill_batch(ds, idx, n, x64, NULL, NULL), NB_OK);
    const float *a = nb_tensor_data_f32(x32);
    const double *b = nb_tensor_data_f64(x64);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < f; j++) {
            uint8_t v = ds->images[idx[i] * f + j];
            volatile float q = (float)v / 255.0f; // the correctly rounded quotient
            if (a[i * f + j] != q)
                fail_msg("row %lld (sample %lld), pixel %lld = %u: got %.9g, want %.9g",
                         (long long)i, (long long)idx[i], (long long)j, v, (double)a[i * f + j],
                         (double)q);
            assert_true(b[i * f + j] == (double)v / 255.0);
        }
    nb_tensor_destroy(x32);
    nb_tensor_destroy(x64);
}

// Every byte value, in rows long enough for the vector loop and its remainder, in any order.
static void every_byte_is_the_quotient(void **state) {
    (void)state;
    enum { F = 256 + 13 };
    nb_dataset ds;
    assert_int_equal(nb_dataset_create(3, 1, (int64_t[]){F}, NB_DATA_U8, &ds), NB_OK);
    for (int j = 0; j < F; j++) {
        ds.images[0 * F + j] = (uint8_t)j;         // 0..255, then 0..12
        ds.images[1 * F + j] = (uint8_t)(255 - j); // descending
        ds.images[2 * F + j] = (uint8_t)(j * 7 + 3);
    }
    expect_batch(&ds, (const int64_t[]){2, 0, 1, 0, 2}, 5, F);
    // Spot values: the ends are exact.
    nb_tensor *x = nb_tensor_create(NB_F32, 2, (int64_t[]){1, F});
    assert_int_equal(nb_dataset_fill_batch(&ds, (const int64_t[]){0}, 1, x, NULL, NULL), NB_OK);
    assert_true(nb_tensor_data_f32(x)[0] == 0.0f);
    assert_true(nb_tensor_data_f32(x)[255] == 1.0f);
    nb_tensor_destroy(x);
    nb_dataset_free(&ds);
}

// Rows longer than the gather's 6 KiB look-ahead window (one row ahead at a time), and a
// batch of more rows than the window holds (7 rows of 1003 bytes: the look-ahead slides), at
// odd row sizes so rows start inside cache lines.
static void rows_beyond_the_prefetch_window(void **state) {
    (void)state;
    const int64_t sizes[] = {(300 << 10) + 5, (64 << 10) + 3, 1003};
    for (int k = 0; k < 3; k++) {
        int64_t f = sizes[k], n = 12;
        nb_dataset ds;
        assert_int_equal(nb_dataset_create(n, 1, (int64_t[]){f}, NB_DATA_U8, &ds), NB_OK);
        for (int64_t i = 0; i < n * f; i++)
            ds.images[i] = (uint8_t)(i * 31 + i / 977);
        int64_t idx[10];
        for (int i = 0; i < 10; i++)
            idx[i] = (i * 5 + 3) % n;
        expect_batch(&ds, idx, k == 0 ? 3 : 10, f);
        nb_dataset_free(&ds);
    }
}

// 12 MB of storage (over the 4 MiB from which it is advised onto huge pages): created zeroed,
// written and read back through batches at its far end.
static void large_dataset_storage(void **state) {
    (void)state;
    enum { N = 16000, F = 784 };
    nb_dataset ds;
    assert_int_equal(nb_dataset_create(N, 3, (int64_t[]){1, 28, 28}, NB_DATA_U8, &ds), NB_OK);
    for (int64_t i = 0; i < (int64_t)N * F; i++)
        if (ds.images[i] != 0)
            fail_msg("byte %lld of a new dataset is %u, not 0", (long long)i, ds.images[i]);
    for (int64_t i = (int64_t)(N - 4) * F; i < (int64_t)N * F; i++)
        ds.images[i] = (uint8_t)(i % 251);
    expect_batch(&ds, (const int64_t[]){N - 1, 0, N - 4, N - 2}, 4, F);
    nb_dataset_free(&ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_byte_is_the_quotient),
        cmocka_unit_test(rows_beyond_the_prefetch_window),
        cmocka_unit_test(large_dataset_storage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
