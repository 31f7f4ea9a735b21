// nb_batch_iter_position / nb_batch_iter_seek: resuming an iterator in the middle of an epoch.
// A fresh iterator sought to any position an uninterrupted one reported (before, inside and at
// the end of an epoch, several epochs in, shuffled or not, with a short last batch) hands out
// exactly the batches the uninterrupted one handed out from there; positions behind the
// iterator or outside an epoch are refused naming both.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"
#include "support/expect.h"

enum { N = 23, BS = 5, STEPS = 80 }; // 5 batches per epoch, the last of 3

// One call of nb_batch_iter_next, recorded as (count, indices...) into rec[k].
typedef struct {
    int64_t count, idx[BS];
} step;

static void take(nb_batch_iter *it, step *s) {
    const int64_t *b = NULL;
    s->count = nb_batch_iter_next(it, &b);
    memset(s->idx, 0, sizeof s->idx);
    if (s->count)
        memcpy(s->idx, b, (size_t)s->count * sizeof *b);
}

static void seek_replays_the_batches(void **state) {
    (void)state;
    int64_t base[N];
    for (int i = 0; i < N; i++)
        base[i] = 100 + 7 * i;
    for (int shuffle = 0; shuffle < 2; shuffle++) {
        static step ref[STEPS], got[STEPS];
        int64_t ep[STEPS], bt[STEPS];
        nb_batch_iter *a = nb_batch_iter_create(base, N, BS, shuffle, 42);
        for (int k = 0; k < STEPS; k++) {
            nb_batch_iter_position(a, &ep[k], &bt[k]); // before call k
            take(a, &ref[k]);
        }
        assert_int_equal(ep[STEPS - 1], (STEPS - 1) / 6); // 5 batches + the ending 0 per epoch
        nb_batch_iter_destroy(a);
        for (int k = 0; k < STEPS; k++) { // resume before call k
            nb_batch_iter *b = nb_batch_iter_create(base, N, BS, shuffle, 42);
            assert_int_equal(nb_batch_iter_seek(b, ep[k], bt[k]), NB_OK);
            int64_t e, t;
            nb_batch_iter_position(b, &e, &t);
            assert_int_equal(e, ep[k]);
            assert_int_equal(t, bt[k]);
            for (int j = k; j < STEPS; j++)
                take(b, &got[j]);
            assert_memory_equal(got + k, ref + k, (size_t)(STEPS - k) * sizeof *ref);
            nb_batch_iter_destroy(b);
        }
    }
}

static void seek_refuses_bad_positions(void **state) {
    (void)state;
    nb_batch_iter *it = nb_batch_iter_create(NULL, N, BS, true, 7);
    assert_int_equal(nb_batch_iter_seek(it, 2, 3), NB_OK);
    assert_int_equal(nb_batch_iter_seek(it, 2, 3), NB_OK); // where it is: nothing to do
    assert_int_equal(nb_batch_iter_seek(it, 1, 4), NB_ERR_ARG);
    assert_has(nb_last_error(), "(epoch 1, batch 4) is behind the iterator's (epoch 2, batch 3)");
    assert_int_equal(nb_batch_iter_seek(it, 2, 2), NB_ERR_ARG);
    assert_int_equal(nb_batch_iter_seek(it, 3, 6), NB_ERR_ARG);
    assert_has(nb_last_error(), "outside [0, 5] batches per epoch");
    assert_int_equal(nb_batch_iter_seek(it, -1, 0), NB_ERR_ARG);
    assert_int_equal(nb_batch_iter_seek(NULL, 0, 0), NB_ERR_NULL);
    int64_t e = -1, t = -1;
    nb_batch_iter_position(NULL, &e, &t);
    assert_true(e == 0 && t == 0);
    nb_batch_iter_position(it, NULL, NULL);
    nb_batch_iter_destroy(it);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seek_replays_the_batches),
        cmocka_unit_test(seek_refuses_bad_positions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
