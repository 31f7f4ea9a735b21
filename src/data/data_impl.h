// Library-private helpers shared by the data module's files (src/data/*.c).
#ifndef NABLA_DATA_IMPL_H
#define NABLA_DATA_IMPL_H

#include "nabla/data.h"

// One sample's layout as the batch functions see it: a hand-built MNIST-style dataset
// (sample_ndim 0) is (1, rows, cols).
typedef struct {
    int ndim;
    int64_t shape[NB_MAX_DIMS - 1];
    int64_t numel;
} nb__sample_layout;

// Whether ds is a usable dataset (n > 0, a sample shape whose sizes do not overflow, exactly one
// storage, a samples tensor shaped (n, *sample_shape)); if so fills *out. Otherwise
// NB_ERR_NULL / NB_ERR_STATE with "fn: ..." as the last error.
nb_status nb__dataset_check(const nb_dataset *ds, const char *fn, nb__sample_layout *out);

// Advises sample storage [p, p + len) onto transparent huge pages where Linux offers them, for
// len >= NB__DATA_HUGE_MIN (p NULL: nothing). `written`: its pages are already in use (they
// are collapsed in place); otherwise call before the first write. A shuffled batch reads rows
// all over the dataset: with 4 KiB pages nearly every row is also a TLB miss and a page walk
// (MNIST's 47 MB are 11 500 pages), with 2 MiB pages the whole set needs 23 TLB entries.
#define NB__DATA_HUGE_MIN ((size_t)4 << 20)
void nb__data_huge_pages(void *p, size_t len, bool written);

// The class label of sample i of a checked dataset that has labels (int32, int64 or uint8).
static inline int64_t nb__dataset_label(const nb_dataset *ds, int64_t i) {
    nb_tensor *cl = ds->class_labels;
    if (!cl)
        return (int64_t)ds->labels[i];
    return nb_tensor_dtype(cl) == NB_I64 ? nb_tensor_data_i64(cl)[i]
                                         : (int64_t)nb_tensor_data_i32(cl)[i];
}

// Whether dt is a class-index dtype (NB_I32 or NB_I64).
static inline bool nb__is_index_dtype(nb_dtype dt) {
    return dt == NB_I32 || dt == NB_I64;
}

#endif
