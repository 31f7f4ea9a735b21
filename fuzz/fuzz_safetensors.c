// libFuzzer harness for the checkpoint reader (nb_load_safetensors). The input is the file.
// Each input is loaded three ways: with no names (header validation only), as a model of
// "w" (2, 3) F32 and "b" (3) F64, and with a scalar I32 "step" and an empty F32 "none" (0, 4)
// as well, so the request matching and the data copy run deep. Oracles: a failure leaves the
// tensors bit for bit untouched with a message; validation does not depend on the request (a
// file that fails with no names fails with any); loading a superset yields the same bytes;
// loaded bytes occur in the file. The full request is then repeated with one allocation
// failing: NB_ERR_NOMEM, tensors untouched, nothing leaked.
#define _GNU_SOURCE // memfd_create, memmem
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "nabla/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_MODEL 4
#define SENTINEL 0xA5

static const char *const names[N_MODEL] = {"w", "b", "step", "none"};

static void make_model(nb_tensor **t) {
    t[0] = nb_tensor_create(NB_F32, 2, (const int64_t[]){2, 3});
    t[1] = nb_tensor_create(NB_F64, 1, (const int64_t[]){3});
    t[2] = nb_tensor_create(NB_I32, 0, NULL);
    t[3] = nb_tensor_create(NB_F32, 2, (const int64_t[]){0, 4});
    FZ_CHECK(t[0] && t[1] && t[2] && t[3]);
}

static size_t nbytes(nb_tensor *t) {
    return (size_t)nb_tensor_numel(t) * nb_dtype_size(nb_tensor_dtype(t));
}

static bool all_sentinel(nb_tensor *t) {
    const unsigned char *p = nb_tensor_data(t);
    for (size_t k = 0; k < nbytes(t); k++)
        if (p[k] != SENTINEL)
            return false;
    return true;
}

// Loads the first n model tensors from path, each pre-filled with the sentinel.
static nb_status load(const char *path, nb_tensor **t, int n) {
    for (int i = 0; i < N_MODEL; i++)
        memset(nb_tensor_data(t[i]), SENTINEL, nbytes(t[i]));
    nb_status st = nb_load_safetensors(path, n ? names : NULL, n ? t : NULL, n);
    if (fz_verbose())
        fprintf(stderr, "load n=%d: %s: %s\n", n, nb_status_str(st), st ? nb_last_error() : "");
    if (st != NB_OK) {
        FZ_CHECK(nb_last_error()[0] != '\0');
        FZ_CHECK(st == NB_ERR_FORMAT || st == NB_ERR_DTYPE || st == NB_ERR_SHAPE ||
                 st == NB_ERR_NOMEM || st == NB_ERR_NONFINITE);
    }
    for (int i = 0; i < N_MODEL; i++)
        if (st != NB_OK || i >= n)
            FZ_CHECK(all_sentinel(t[i])); // all or nothing, and nothing beyond the request
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static fz_file file;
    static nb_tensor *a[N_MODEL];
    static nb_tensor *b[N_MODEL];
    static bool ready = false;
    if (!ready) { // kept for the process's life: allocated once, not per input
        fz_file_init(&file, "fuzz-safetensors");
        make_model(a);
        make_model(b);
        fz_alloc_install();
        ready = true;
    }
    fz_file_set(&file, data, size);

    fz_alloc_arm(0);
    nb_status st0 = load(file.path, a, 0);
    nb_status st2 = load(file.path, a, 2);
    fz_alloc_arm(0);
    nb_status st4 = load(file.path, b, N_MODEL);
    size_t allocs = fz_alloc_count;
    if (st0 != NB_OK) // a corrupt file is rejected whatever is asked of it
        FZ_CHECK(st2 != NB_OK && st4 != NB_OK);
    if (st2 == NB_OK)
        FZ_CHECK(st0 == NB_OK);
    if (st4 == NB_OK) {
        FZ_CHECK(st2 == NB_OK);
        for (int i = 0; i < 2; i++)
            FZ_CHECK(memcmp(nb_tensor_data(a[i]), nb_tensor_data(b[i]), nbytes(a[i])) == 0);
        for (int i = 0; i < N_MODEL; i++) // little-endian host: the file's bytes verbatim
            FZ_CHECK(memmem(data, size, nb_tensor_data(b[i]), nbytes(b[i])) != NULL);
    }
    // The full request again with one of its allocations failing.
    if (allocs > 0) {
        fz_alloc_arm(1 + fz_hash(data, size) % allocs);
        nb_status st = load(file.path, b, N_MODEL);
        fz_alloc_arm(0);
        FZ_CHECK(st == NB_ERR_NOMEM);
    }
    return 0;
}
