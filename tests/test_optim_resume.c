// Exact resume across processes. A small float32 MLP trains on random batches drawn from an
// nb_rng with AdamW (no decay on 1-D tensors), a cosine schedule with linear warmup, a
// reduce-on-plateau factor fed every 5 steps and gradient clipping, at 2 threads:
//   A: N steps straight;
//   B: N/2 steps, save (parameters + optimizer state + step + plateau + RNG) to a safetensors
//      file, then a FRESH PROCESS (this binary re-executed with --child) creates everything
//      from a different seed, loads the file and runs the other N/2 steps.
// The parameters of A and B must be bitwise identical. A control run that reloads only the
// parameters (fresh optimizer) must differ, showing the check can fail.
#define _POSIX_C_SOURCE 200809L // mkdtemp, fork, execv
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "nabla.h"

enum { N_STEPS = 24, BATCH = 32, IN = 160, HID = 256, N_PARAMS = 4 };
static const char *const names[N_PARAMS] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};

typedef struct {
    nb_tensor *p[N_PARAMS]; // fc1 (HID, IN), (HID); fc2 (1, HID), (1): fc1.weight is above the
                            // OpenMP threshold, so the threaded loops run
    nb_tensor *x, *y;       // (BATCH, IN), (BATCH, 1)
    nb_optim *opt;
    nb_schedule sched;
    nb_plateau plateau;
    nb_rng rng;  // data stream
    double step; // optimizer steps taken
    nb_graph *g;
    double loss_sum;
} trainer;

static void trainer_init(trainer *t, uint64_t seed) {
    memset(t, 0, sizeof *t);
    const int64_t shapes[N_PARAMS][2] = {{HID, IN}, {HID, 0}, {1, HID}, {1, 0}};
    nb_rng init;
    nb_rng_seed(&init, seed);
    for (int k = 0; k < N_PARAMS; k++) {
        t->p[k] = nb_tensor_create(NB_F32, shapes[k][1] ? 2 : 1, shapes[k]);
        assert_non_null(t->p[k]);
        assert_int_equal(nb_init_uniform(t->p[k], &init, -0.1, 0.1), NB_OK);
        assert_int_equal(nb_tensor_set_requires_grad(t->p[k], true), NB_OK);
    }
    t->x = nb_tensor_create(NB_F32, 2, (int64_t[]){BATCH, IN});
    t->y = nb_tensor_create(NB_F32, 2, (int64_t[]){BATCH, 1});
    nb_optim_config cfg = nb_optim_defaults(NB_OPTIM_ADAMW, 3e-3);
    cfg.amsgrad = true;
    t->opt = nb_optim_create_no_decay_1d(t->p, names, N_PARAMS, cfg);
    assert_non_null(t->opt);
    t->sched = (nb_schedule){.kind = NB_SCHED_COSINE, .lr = 3e-3, .total = N_STEPS, .warmup = 5};
    t->plateau = (nb_plateau){.factor = 0.5, .patience = 0, .threshold = 0.5};
    assert_int_equal(nb_plateau_init(&t->plateau, 1.0), NB_OK);
    nb_rng_seed(&t->rng, seed ^ 0x5eed);
    t->g = nb_graph_create();
}

static void trainer_free(trainer *t) {
    for (int k = 0; k < N_PARAMS; k++)
        nb_tensor_destroy(t->p[k]);
    nb_tensor_destroy(t->x);
    nb_tensor_destroy(t->y);
    nb_optim_destroy(t->opt);
    nb_graph_destroy(t->g);
}

static void train_steps(trainer *t, int n) {
    for (int s = 0; s < n; s++) {
        assert_int_equal(nb_init_normal(t->x, &t->rng, 0, 1), NB_OK);
        assert_int_equal(nb_init_normal(t->y, &t->rng, 0, 1), NB_OK);
        nb_graph_reset(t->g);
        nb_tensor *h = nb_relu(t->g, nb_linear(t->g, t->x, t->p[0], t->p[1]));
        nb_tensor *loss =
            nb_mse_loss(t->g, nb_linear(t->g, h, t->p[2], t->p[3]), t->y, NB_REDUCE_MEAN);
        assert_non_null(loss);
        nb_optim_zero_grad(t->opt);
        assert_int_equal(nb_backward(t->g, loss), NB_OK);
        double norm;
        assert_int_equal(nb_optim_clip_grad_norm(t->opt, 0.5, &norm), NB_OK);
        double lr = nb_schedule_lr(&t->sched, (int64_t)t->step) * t->plateau.lr;
        assert_int_equal(nb_optim_set_lr(t->opt, lr), NB_OK);
        assert_int_equal(nb_optim_step(t->opt), NB_OK);
        t->step++;
        t->loss_sum += nb_tensor_get(loss, 0);
        if ((int64_t)t->step % 5 == 0) {
            nb_plateau_step(&t->plateau, t->loss_sum);
            t->loss_sum = 0;
        }
    }
}

// Training progress as tensors: "train.progress" (step, loss_sum, plateau state) in float64,
// "train.rng" the data stream's 4 x 64-bit state as 8 int32 words.
static double progress[7];
static int32_t rng_words[8];
static nb_tensor *extra[2];
static const char *const extra_names[2] = {"train.progress", "train.rng"};

static void extra_init(void) {
    extra[0] = nb_tensor_wrap(NB_F64, 1, (int64_t[]){7}, progress);
    extra[1] = nb_tensor_wrap(NB_I32, 1, (int64_t[]){8}, rng_words);
}

static void pack(const trainer *t) {
    const nb_plateau *p = &t->plateau;
    double v[7] = {t->step,
                   t->loss_sum,
                   p->lr,
                   p->best,
                   (double)p->num_bad_epochs,
                   (double)p->cooldown_counter,
                   (double)p->epochs};
    memcpy(progress, v, sizeof v);
    memcpy(rng_words, t->rng.s, sizeof rng_words);
}

static void unpack(trainer *t) {
    nb_plateau *p = &t->plateau;
    t->step = progress[0], t->loss_sum = progress[1], p->lr = progress[2], p->best = progress[3];
    p->num_bad_epochs = (int64_t)progress[4], p->cooldown_counter = (int64_t)progress[5];
    p->epochs = (int64_t)progress[6];
    memcpy(t->rng.s, rng_words, sizeof rng_words);
}

static void save(trainer *t, const char *path) {
    const char *const *onames;
    nb_tensor *const *ots;
    int n_opt = nb_optim_state_export(t->opt, &onames, &ots);
    pack(t);
    const char *all_names[64];
    nb_tensor *all[64];
    int n = 0;
    for (int k = 0; k < N_PARAMS; k++)
        all_names[n] = names[k], all[n++] = t->p[k];
    for (int k = 0; k < n_opt; k++)
        all_names[n] = onames[k], all[n++] = ots[k];
    for (int k = 0; k < 2; k++)
        all_names[n] = extra_names[k], all[n++] = extra[k];
    assert_int_equal(nb_save_safetensors(path, all_names, all, n), NB_OK);
}

static nb_status file_loader(void *ctx, const char *const *n, nb_tensor *const *ts, int count) {
    return nb_load_safetensors(ctx, n, ts, count);
}

static void load(trainer *t, char *path, bool with_state) {
    assert_int_equal(nb_load_safetensors(path, names, t->p, N_PARAMS), NB_OK);
    if (!with_state)
        return;
    if (nb_optim_state_import(t->opt, file_loader, path) != NB_OK)
        fail_msg("%s", nb_last_error());
    assert_int_equal(nb_load_safetensors(path, extra_names, extra, 2), NB_OK);
    unpack(t);
}

// The child: fresh objects from another seed, load, finish the run, save the parameters.
static int child(char *ckpt, const char *out) {
    nb_set_num_threads(2);
    trainer t;
    trainer_init(&t, 999);
    load(&t, ckpt, true);
    train_steps(&t, N_STEPS - (int)t.step);
    assert_int_equal(nb_save_safetensors(out, names, t.p, N_PARAMS), NB_OK);
    trainer_free(&t);
    return 0;
}

static char self[4096];

static void test_resume_in_fresh_process_is_bitwise(void **state) {
    (void)state;
    nb_set_num_threads(2);
    char dir[] = "/tmp/nb_resume_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char ckpt[128], out[128];
    snprintf(ckpt, sizeof ckpt, "%s/half.safetensors", dir);
    snprintf(out, sizeof out, "%s/end.safetensors", dir);

    trainer a;
    trainer_init(&a, 1);
    train_steps(&a, N_STEPS);

    trainer b;
    trainer_init(&b, 1);
    train_steps(&b, N_STEPS / 2);
    save(&b, ckpt);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(self, self, "--child", ckpt, out, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    trainer r; // the child's result, read into fresh tensors
    trainer_init(&r, 5);
    load(&r, out, false);
    for (int k = 0; k < N_PARAMS; k++) {
        size_t bytes = (size_t)nb_tensor_numel(a.p[k]) * sizeof(float);
        if (memcmp(nb_tensor_data(a.p[k]), nb_tensor_data(r.p[k]), bytes) != 0)
            fail_msg("%s differs between the straight and the resumed run", names[k]);
    }
    printf("  %d steps straight == %d + save + fresh process + load + %d: bitwise identical\n",
           N_STEPS, N_STEPS / 2, N_STEPS - N_STEPS / 2);

    // Control: parameters alone (fresh optimizer state, step 0, fresh RNG) must not match.
    trainer c;
    trainer_init(&c, 1);
    load(&c, ckpt, false);
    train_steps(&c, N_STEPS - N_STEPS / 2);
    assert_true(memcmp(nb_tensor_data(a.p[0]), nb_tensor_data(c.p[0]),
                       (size_t)nb_tensor_numel(a.p[0]) * sizeof(float)) != 0);

    trainer_free(&a);
    trainer_free(&b);
    trainer_free(&r);
    trainer_free(&c);
    remove(ckpt);
    remove(out);
    rmdir(dir);
}

int main(int argc, char **argv) {
    extra_init();
    if (argc == 4 && !strcmp(argv[1], "--child")) {
        int rc = child(argv[2], argv[3]);
        nb_tensor_destroy(extra[0]);
        nb_tensor_destroy(extra[1]);
        return rc;
    }
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return 1;
    self[len] = '\0';
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_in_fresh_process_is_bitwise),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nb_tensor_destroy(extra[0]);
    nb_tensor_destroy(extra[1]);
    return rc;
}
