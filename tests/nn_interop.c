// Helper of tests/nn_torch_interop.py (PyTorch interop of whole-model
// checkpoints):
//   nn_interop save DIR   builds the model below (seed 1), runs two training
//   forwards (batch
//                         norm's running statistics and counter move), saves it
//                         with nb_layer_save to DIR/nabla_model.safetensors and
//                         a fixed input x with the model's eval-mode output y
//                         to DIR/nabla_io.safetensors
//   nn_interop check DIR  builds the model with another seed, loads
//   DIR/torch_model.safetensors
//                         (written by the script from a torch state_dict) with
//                         nb_layer_load and checks its eval-mode output on x
//                         against DIR/torch_io.safetensors's y
// The model is torch's
//   Sequential(OrderedDict(
//       features=Sequential(Conv2d(3, 4, 3, padding=1), BatchNorm2d(4), ReLU(),
//       MaxPool2d(2),
//                           AvgPool2d(3, 1, 1), Dropout(0.5), Flatten(),
//                           LayerNorm(16), Linear(16, 6, bias=False)),
//       act=ReLU(), head=Linear(6, 3)))
// so its names are "features.0.weight", "features.0.bias", "features.1.weight",
// ..., "features.1.running_mean", "features.1.running_var",
// "features.1.num_batches_tracked", "features.7.weight", "features.7.bias",
// "features.8.weight", "head.weight", "head.bias". Exit status 0 on success, 1
// with a message otherwise.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nabla.h"

static nb_rng rng,
    drop_rng; // dropout borrows its generator for the model's lifetime

static nb_layer *build(uint64_t seed) {
    nb_rng_seed(&rng, seed);
    nb_rng_seed(&drop_rng, seed + 100);
    nb_layer *f = nb_nn_sequential_create(), *m = nb_nn_sequential_create();
    nb_nn_conv2d_options k3 = {.kernel = {3, 3}, .padding = {1, 1}};
    if (nb_nn_sequential_add(f, NULL, nb_nn_conv2d_create(3, 4, k3, NB_F32, &rng)) != NB_OK ||
        nb_nn_sequential_add(f, NULL, nb_nn_batch_norm2d_create(4, 1e-5, 0.1, true, NB_F32)) !=
            NB_OK ||
        nb_nn_sequential_add(f, NULL, nb_nn_relu_create()) != NB_OK ||
        nb_nn_sequential_add(f, NULL, nb_nn_max_pool2d_create(2, 0, 0)) != NB_OK ||
        nb_nn_sequential_add(f, NULL, nb_nn_avg_pool2d_create(3, 1, 1)) != NB_OK ||
        nb_nn_sequential_add(f, NULL, nb_nn_dropout_create(0.5, &drop_rng)) != NB_OK ||
        nb_nn_sequential_add(f, NULL, nb_nn_flatten_create(1, -1)) != NB_OK ||
        nb_nn_sequential_add(
            f, NULL, nb_nn_layer_norm_create(1, (int64_t[]){16}, 1e-5, true, NB_F32)) != NB_OK ||
        nb_nn_sequential_add(f, NULL, nb_nn_linear_create(16, 6, false, NB_F32, &rng)) != NB_OK ||
        nb_nn_sequential_add(m, "features", f) != NB_OK ||
        nb_nn_sequential_add(m, "act", nb_nn_relu_create()) != NB_OK ||
        nb_nn_sequential_add(m, "head", nb_nn_linear_create(6, 3, true, NB_F32, &rng)) != NB_OK) {
        fprintf(stderr, "nn_interop: building the model: %s\n", nb_last_error());
        return NULL;
    }
    return m;
}

static int fail(const char *what) {
    fprintf(stderr, "nn_interop: %s: %s\n", what, nb_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "save") && strcmp(argv[1], "check"))) {
        fprintf(stderr, "usage: nn_interop save|check DIR\n");
        return 2;
    }
    bool save = strcmp(argv[1], "save") == 0;
    char model_path[512], io_path[512];
    snprintf(model_path, sizeof model_path, "%s/%s_model.safetensors", argv[2],
             save ? "nabla" : "torch");
    snprintf(io_path, sizeof io_path, "%s/%s_io.safetensors", argv[2], save ? "nabla" : "torch");
    nb_layer *model = build(save ? 1 : 2);
    if (!model)
        return 1;
    // x (4, 3, 4, 4) -> conv (4, 4, 4, 4) -> pooled (4, 4, 2, 2) -> flattened (4,
    // 16).
    nb_tensor *x = nb_tensor_create(NB_F32, 4, (int64_t[]){4, 3, 4, 4});
    nb_tensor *y_file = nb_tensor_create(NB_F32, 2, (int64_t[]){4, 3});
    nb_graph *g = nb_graph_create();
    int rc = 0;
    for (int64_t i = 0; i < 192; i++)
        nb_tensor_set(x, i, sin(0.7 * (double)i) * 2.0);
    if (!save && nb_layer_load(model, model_path) != NB_OK) {
        rc = fail("loading the torch checkpoint");
        goto out;
    }
    nb_nn_batch_norm2d *bn =
        nb_nn_batch_norm2d_of(nb_nn_sequential_child(nb_nn_sequential_child(model, 0), 1));
    if (!save && (!bn || nb_tensor_get(bn->num_batches_tracked, 0) != 7)) {
        fprintf(stderr, "nn_interop: num_batches_tracked not loaded (torch's is 7)\n");
        rc = 1;
        goto out;
    }
    char init_path[512];
    snprintf(init_path, sizeof init_path, "%s/nabla_init.safetensors", argv[2]);
    if (save && nb_layer_save(model, init_path) != NB_OK) {
        rc = fail("saving the initial model");
        goto out;
    }
    for (int i = 0; save && i < 2; i++) { // training forwards: running statistics move
        nb_graph_reset(g);
        if (!nb_layer_forward(g, model, x)) {
            fprintf(stderr, "nn_interop: training forward: %s\n", nb_graph_error(g));
            rc = 1;
            goto out;
        }
    }
    nb_graph_reset(g);
    nb_layer_train(model, false);
    nb_tensor *y = nb_layer_forward(g, model, x);
    if (!y) {
        fprintf(stderr, "nn_interop: forward: %s\n", nb_graph_error(g));
        rc = 1;
        goto out;
    }
    if (save) {
        if (nb_layer_save(model, model_path) != NB_OK)
            rc = fail("saving the model");
        else if (nb_save_safetensors(io_path, (const char *[]){"x", "y"}, (nb_tensor *[]){x, y},
                                     2) != NB_OK)
            rc = fail("saving x and y");
        goto out;
    }
    if (nb_load_safetensors(io_path, (const char *[]){"y"}, (nb_tensor *[]){y_file}, 1) != NB_OK) {
        rc = fail("reading torch's output");
        goto out;
    }
    for (int64_t i = 0; i < 12; i++) {
        double a = nb_tensor_get(y, i), b = nb_tensor_get(y_file, i);
        if (!(fabs(a - b) <= 1e-5 * (1 + fabs(b)))) {
            fprintf(stderr, "nn_interop: output %lld: nabla %.9g, torch %.9g\n", (long long)i, a,
                    b);
            rc = 1;
        }
    }
    if (rc == 0)
        printf("nn_interop: a torch state_dict loaded by nb_layer_load gives "
               "torch's outputs\n");
out:
    nb_graph_destroy(g);
    nb_tensor_destroy(x);
    nb_tensor_destroy(y_file);
    nb_layer_destroy(model);
    return rc;
}
