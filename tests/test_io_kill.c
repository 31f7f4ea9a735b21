// kill -9 during checkpoint saves (issue 15): a child process saves a ~2 MB checkpoint in a
// loop, each generation g filling every element with g and recording g in the metadata; the
// parent kills it at random moments, again and again. After every kill the file must load
// (checksums verified) as one whole generation -- old or new, never a mix or a torn file --
// and at most the one fixed-name temp file may remain, which the next save removes. Run on
// both the O_TMPFILE path and the named temp file path.
#define _GNU_SOURCE // mkdtemp, usleep

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nabla/io.h"
#include "nabla/tensor.h"
#include "support/testdir.h"

extern bool nb__io_no_tmpfile; // library internal: force the named temp file path

#define KILLS 60      // per path
#define BIG (1 << 19) // F32 elements: 2 MiB, so a save takes long enough to be hit midway

static char path[128];
static const char *const names[2] = {"big", "small"};

static nb_status save_gen(nb_tensor **t, long gen) {
    // Plain loops: the child runs after fork, where an OpenMP team must not be used.
    float *p = nb_tensor_data_f32(t[0]);
    for (int64_t i = 0; i < BIG; i++)
        p[i] = (float)gen;
    int32_t *q = nb_tensor_data_i32(t[1]);
    for (int i = 0; i < 3; i++)
        q[i] = (int32_t)-gen;
    char value[32];
    snprintf(value, sizeof value, "%ld", gen);
    const char *keys[] = {"generation"};
    const char *values[] = {value};
    return nb_save_safetensors_meta(path, names, t, 2, keys, values, 1);
}

// The file holds one whole generation >= min_gen; returns it.
static long check_file(nb_tensor **t, long min_gen) {
    nb_safetensors *h = NULL;
    nb_status st = nb_safetensors_open(path, &h);
    if (st == NB_OK)
        st = nb_safetensors_read(h, names, t, 2, 0);
    if (st != NB_OK) {
        print_error("after a kill: %s\n", nb_last_error());
        fail();
    }
    assert_true(nb_safetensors_checked(h));
    const char *g = nb_safetensors_meta(h, "generation");
    assert_non_null(g);
    long gen = strtol(g, NULL, 10);
    nb_safetensors_close(h);
    assert_true(gen >= min_gen);
    const float *p = nb_tensor_data_f32(t[0]);
    for (int64_t i = 0; i < BIG; i++)
        if (p[i] != (float)gen) {
            print_error("element %ld is %g in generation %ld\n", (long)i, (double)p[i], gen);
            fail();
        }
    assert_true(nb_tensor_get(t[1], 0) == (double)-gen);
    return gen;
}

static void kill_during_saves(bool named_temp) {
    nb__io_no_tmpfile = named_temp;
    nb_tensor *t[2] = {nb_tensor_create(NB_F32, 1, (const int64_t[]){BIG}),
                       nb_tensor_create(NB_I32, 1, (const int64_t[]){3})};
    assert_true(t[0] && t[1]);
    long gen = 1;
    assert_int_equal(save_gen(t, gen), NB_OK);
    unsigned seed = 12345u + named_temp;
    int hit_midway = 0;
    for (int k = 0; k < KILLS; k++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) { // the child saves generations gen+1, gen+2, ... until killed
            for (long g = gen + 1;; g++)
                if (save_gen(t, g) != NB_OK)
                    _exit(3);
        }
        usleep((useconds_t)(rand_r(&seed) % 30000));
        kill(pid, SIGKILL);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        int temps = nbt_count_temp_files();
        assert_true(temps <= 1);
        hit_midway += temps;
        gen = check_file(t, gen);
    }
    // The next save removes any leftover.
    assert_int_equal(save_gen(t, gen + 1), NB_OK);
    assert_int_equal(nbt_count_temp_files(), 0);
    check_file(t, gen + 1);
    if (named_temp) // kills during the write leave the named file: some must have hit it
        assert_true(hit_midway > 0);
    nb__io_no_tmpfile = false;
    nb_tensor_destroy(t[0]);
    nb_tensor_destroy(t[1]);
}

static void kill_during_saves_tmpfile(void **state) {
    (void)state;
    kill_during_saves(false);
}

static void kill_during_saves_named_temp(void **state) {
    (void)state;
    kill_during_saves(true);
}

static int make_dir(void **state) {
    if (nbt_dir_make(state) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/ck.safetensors", nbt_dir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kill_during_saves_tmpfile),
        cmocka_unit_test(kill_during_saves_named_temp),
    };
    return cmocka_run_group_tests(tests, make_dir, nbt_dir_remove);
}
