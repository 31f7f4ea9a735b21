// Mini-batches from an nb_dataset: converting the uint8 samples of one batch to float tensors,
// one-hot targets, Fisher-Yates shuffling, seeded train/validation splits and the epoch
// iterator. Functions that write tensors validate every shape, dtype and index first, so a
// failed call leaves its outputs untouched.
#include <inttypes.h>
#include <string.h>

#include "base/base_impl.h"
#include "data/data_impl.h"
#include "tensor/parallel.h"

struct nb_batch_iter {
    int64_t *order; // (n) the sample indices in this epoch's visiting order
    int64_t n;
    int64_t batch_size;
    int64_t pos;   // next position in order; n once the epoch's batches are handed out
    int64_t epoch; // completed epochs
    bool shuffle;
    nb_rng rng; // owned stream: the iterator's orders depend only on its seed
};

static bool is_float(nb_dtype dt) {
    return dt == NB_F32 || dt == NB_F64;
}

// NB_OK if t is 2-D (d0, d1) with a float dtype; otherwise records why, naming `what`.
static nb_status check_float_2d(const char *fn, const char *what, const nb_tensor *t, int64_t d0,
                                int64_t d1) {
    if (!is_float(nb_tensor_dtype(t)))
        return nb__set_last_error(NB_ERR_DTYPE, "%s: %s is %s, needs f32 or f64", fn, what,
                                  nb_dtype_name(nb_tensor_dtype(t)));
    if (nb_tensor_ndim(t) != 2 || nb_tensor_dim(t, 0) != d0 || nb_tensor_dim(t, 1) != d1)
        return nb__set_last_error(NB_ERR_SHAPE, "%s: %s is %s, needs (%" PRId64 ", %" PRId64 ")",
                                  fn, what, NB_SHAPE_STR(t), d0, d1);
    return NB_OK;
}

// Zero `out` (n, classes) and set one entry per row: `hot` is an expression in the row index
// i giving that row's class, already checked to be in range.
#define FILL_ONE_HOT(T, out, n, classes, hot)                                                      \
    do {                                                                                           \
        T *y_ = (T *)nb_tensor_data(out); /* (n, classes) */                                       \
        memset(y_, 0, (size_t)((n) * (classes)) * sizeof(T));                                      \
        for (int64_t i = 0; i < (n); i++)                                                          \
            y_[i * (classes) + (hot)] = 1;                                                         \
    } while (0)

// nb_one_hot and nb_one_hot_i64: exactly one of l32 / l64 is used (labels of either width).
static nb_status one_hot_any(const char *fn, const int32_t *l32, const int64_t *l64, int64_t n,
                             int64_t classes, nb_tensor *out) {
    if (!out || (n > 0 && !l32 && !l64))
        return nb__set_last_error(NB_ERR_NULL, "%s: %s is NULL", fn, out ? "labels" : "out");
    if (n < 0 || classes <= 0)
        return nb__set_last_error(
            NB_ERR_ARG, "%s: n = %" PRId64 ", classes = %" PRId64 " (need n >= 0, classes > 0)", fn,
            n, classes);
    nb_status st = check_float_2d(fn, "out", out, n, classes);
    if (st != NB_OK)
        return st;
#define LABEL(i) (l64 ? l64[i] : (int64_t)l32[i])
    for (int64_t i = 0; i < n; i++) {
        if (LABEL(i) < 0 || LABEL(i) >= classes)
            return nb__set_last_error(
                NB_ERR_ARG, "%s: labels[%" PRId64 "] = %" PRId64 " is outside [0, %" PRId64 ")", fn,
                i, LABEL(i), classes);
    }
    if (n == 0)
        return NB_OK;
    if (nb_tensor_dtype(out) == NB_F32)
        FILL_ONE_HOT(float, out, n, classes, LABEL(i));
    else
        FILL_ONE_HOT(double, out, n, classes, LABEL(i));
#undef LABEL
    return NB_OK;
}

nb_status nb_one_hot(const int32_t *labels, int64_t n, int64_t classes, nb_tensor *out) {
    return one_hot_any("nb_one_hot", labels, NULL, n, classes, out);
}

nb_status nb_one_hot_i64(const int64_t *labels, int64_t n, int64_t classes, nb_tensor *out) {
    return one_hot_any("nb_one_hot_i64", NULL, labels, n, classes, out);
}

// A batch tensor for `what` (x or targets) is float and either flat (n, numel) for dense
// layers or (n, *shape), e.g. NCHW for a convolution, so both consume the same batch without a
// reshape.
static nb_status check_sample_tensor(const char *fn, const char *what, const nb_tensor *t,
                                     int64_t n, int ndim, const int64_t *shape, int64_t numel) {
    if (!is_float(nb_tensor_dtype(t)))
        return nb__set_last_error(NB_ERR_DTYPE, "%s: %s is %s, needs f32 or f64", fn, what,
                                  nb_dtype_name(nb_tensor_dtype(t)));
    int nd = nb_tensor_ndim(t);
    bool flat = nd == 2 && nb_tensor_dim(t, 1) == numel;
    bool full = nd == ndim + 1;
    for (int i = 0; full && i < ndim; i++)
        full = nb_tensor_dim(t, i + 1) == shape[i];
    if (nd >= 1 && nb_tensor_dim(t, 0) == n && (flat || full))
        return NB_OK;
    char want[NB_MAX_DIMS * 22 + 8];
    int k = snprintf(want, sizeof want, "(%" PRId64, n);
    for (int i = 0; i < ndim; i++)
        k += snprintf(want + k, sizeof want - (size_t)k, ", %" PRId64, shape[i]);
    snprintf(want + k, sizeof want - (size_t)k, ")");
    return nb__set_last_error(NB_ERR_SHAPE, "%s: %s is %s, needs (%" PRId64 ", %" PRId64 ") or %s",
                              fn, what, NB_SHAPE_STR(t), n, numel, want);
}

// Whether the dataset has class labels in a consistent form.
static nb_status check_labels(const char *fn, const nb_dataset *ds) {
    const nb_tensor *cl = ds->class_labels;
    if (cl && (!nb__is_index_dtype(nb_tensor_dtype(cl)) || nb_tensor_ndim(cl) != 1 ||
               nb_tensor_dim(cl, 0) != ds->n))
        return nb__set_last_error(NB_ERR_STATE,
                                  "%s: class_labels is %s %s, not int32 or int64 (%" PRId64 ")", fn,
                                  nb_dtype_name(nb_tensor_dtype(cl)), NB_SHAPE_STR(cl), ds->n);
    if ((!cl && !ds->labels) || ds->n_classes <= 0)
        return nb__set_last_error(NB_ERR_STATE,
                                  "%s: the dataset has no class labels (n_classes %" PRId64
                                  "; targets: nb_dataset_fill_targets)",
                                  fn, ds->n_classes);
    return NB_OK;
}

// Shapes, dtypes, indices and (for one-hot) label ranges, all before any write.
static nb_status check_batch(const nb_dataset *ds, const int64_t *idx, int64_t n,
                             const nb_tensor *x, const nb_tensor *onehot, const nb_tensor *labels,
                             nb__sample_layout *l) {
    static const char fn[] = "nb_dataset_fill_batch";
    if (ds && n > 0 && !idx)
        return nb__set_last_error(NB_ERR_NULL, "%s: idx is NULL", fn);
    nb_status st = nb__dataset_check(ds, fn, l);
    if (st != NB_OK)
        return st;
    if (n < 0)
        return nb__set_last_error(NB_ERR_ARG, "%s: n = %" PRId64 " is negative", fn, n);
    if (x && (st = check_sample_tensor(fn, "x", x, n, l->ndim, l->shape, l->numel)) != NB_OK)
        return st;
    if ((onehot || labels) && (st = check_labels(fn, ds)) != NB_OK)
        return st;
    if (onehot && (st = check_float_2d(fn, "onehot", onehot, n, ds->n_classes)) != NB_OK)
        return st;
    if (labels) {
        if (!nb__is_index_dtype(nb_tensor_dtype(labels)))
            return nb__set_last_error(NB_ERR_DTYPE, "%s: labels is %s, needs int32 or int64", fn,
                                      nb_dtype_name(nb_tensor_dtype(labels)));
        if (nb_tensor_ndim(labels) != 1 || nb_tensor_dim(labels, 0) != n)
            return nb__set_last_error(NB_ERR_SHAPE, "%s: labels is %s, needs (%" PRId64 ")", fn,
                                      NB_SHAPE_STR(labels), n);
    }
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= ds->n)
            return nb__set_last_error(
                NB_ERR_ARG, "%s: idx[%" PRId64 "] = %" PRId64 " is outside [0, %" PRId64 ")", fn, i,
                idx[i], ds->n);
        // A hand-built dataset may break the loader's label guarantee; do not write past a row.
        int64_t y = onehot || labels ? nb__dataset_label(ds, idx[i]) : 0;
        if ((onehot || labels) && (y < 0 || y >= ds->n_classes))
            return nb__set_last_error(NB_ERR_ARG,
                                      "%s: sample %" PRId64 " has label %" PRId64
                                      ", outside [0, %" PRId64 ")",
                                      fn, idx[i], y, ds->n_classes);
        // Only a hand-edited n_classes lets an int64 label reach past int32.
        if (labels && nb_tensor_dtype(labels) == NB_I32 && y > INT32_MAX)
            return nb__set_last_error(NB_ERR_ARG,
                                      "%s: sample %" PRId64 " has label %" PRId64
                                      ", which int32 labels cannot hold",
                                      fn, idx[i], y);
    }
    return NB_OK;
}

// dst[i, :] = src[idx[i], :] (f values per row) for one pair of element types, with `conv`
// applied. Division by 255 (not a multiply by 1/255) keeps each pixel correctly rounded, so 255
// maps to exactly 1.
#define GATHER_ROWS(TD, TS, dst, src, idx, n, f, conv)                                             \
    do {                                                                                           \
        TD *d_ = (TD *)(dst);             /* (n, f) */                                             \
        const TS *s_ = (const TS *)(src); /* (ds->n, f) */                                         \
        for (int64_t i = 0; i < (n); i++) {                                                        \
            const TS *r_ = s_ + (idx)[i] * (f);                                                    \
            for (int64_t j = 0; j < (f); j++)                                                      \
                d_[i * (f) + j] = conv(TD, r_[j]);                                                 \
        }                                                                                          \
    } while (0)
#define PIXEL(TD, v) ((TD)(v) / (TD)255)
#define AS_IS(TD, v) ((TD)(v))

// Pixel rows of a uint8 dataset into float32 [0, 1] (the training hot path), the values those
// of the scalar v / 255.0f (correctly rounded, so 255 maps to exactly 1).
// Memory: a shuffled batch reads rows scattered over the whole dataset, so each row is a cache
// (and, without huge pages, TLB) miss. The rows GATHER_AHEAD bytes ahead of the one converted
// (8 MNIST rows) are requested while it is converted, into L1: enough misses in flight to cover
// the latency, few enough that none of the requests is dropped. Measured on AMD EPYC Zen 5
// (net B's 64 shuffled Fashion-MNIST rows, 1 thread, medians): requesting the whole batch up
// front (the previous rule, tuned on an Intel machine) took 9-12 us, 4, 8 and 16 rows ahead
// 4.5-5, 3.6-3.8 and 4.2-4.7 us, no prefetch 13-16 us, the same rows hot in cache 2-2.5 us.
// Requesting the next batch's rows during the current step instead did no better: the
// requests are bounded by the same outstanding-miss slots, and spread between ops the stall
// moves into the GEMMs.
// Arithmetic: where the CPU has FMA (x86-64 AVX2, AVX-512) the division becomes a multiply by
// r = fl(1/255) and one correction with the exact residual, q = v r, q += (v - 255 q) r: for
// every v in 0..255 the correctly rounded quotient (tests/test_data_gather.c checks all 256
// against the division), at under half a vector division's cost. Elsewhere the loop divides.
#define GATHER_AHEAD ((int64_t)6 << 10)
static inline void prefetch_row(const uint8_t *p, int64_t f) {
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)63; // every line of [p, p + f), into L1
    for (uintptr_t q = a; q < (uintptr_t)p + (uintptr_t)f; q += 64)
        __builtin_prefetch((const void *)q, 0, 3);
}
// ROW(o, r, f) converts one row of f pixels.
#define GATHER_PIXELS(ROW)                                                                         \
    do {                                                                                           \
        int64_t ahead = (GATHER_AHEAD + f - 1) / f;                                                \
        for (int64_t i = 0; i < n && i < ahead; i++)                                               \
            prefetch_row(s + idx[i] * f, f);                                                       \
        for (int64_t i = 0; i < n; i++) {                                                          \
            if (i + ahead < n)                                                                     \
                prefetch_row(s + idx[i + ahead] * f, f);                                           \
            ROW(d + i * f, s + idx[i] * f, f);                                                     \
        }                                                                                          \
    } while (0)
#define PIXEL_LOOP(CONV, o, r, f)                                                                  \
    _Pragma("omp simd") for (int64_t j = 0; j < (f); j++)(o)[j] = CONV((float)(r)[j])
#define PIXEL_DIV(v) ((v) / 255.0f)
#define PIXEL_RCP (1.0f / 255.0f)
#define ROW_DIV(o, r, f) PIXEL_LOOP(PIXEL_DIV, o, r, f)

static void gather_pixels_div(float *d, const uint8_t *s, const int64_t *idx, int64_t n,
                              int64_t f) {
    GATHER_PIXELS(ROW_DIV);
}

#if defined(__GNUC__) && defined(__x86_64__)
#define HAVE_PIXEL_FMA 1
#include <immintrin.h>
// One pixel: q = v r, then q + (v - 255 q) r, both steps fused.
#define PIXEL_FMA(v)                                                                               \
    __builtin_fmaf(__builtin_fmaf(-(v)*PIXEL_RCP, 255.0f, (v)), PIXEL_RCP, (v)*PIXEL_RCP)
__attribute__((target("avx2,fma"))) static inline float pixel_avx2_one(float v) {
    return PIXEL_FMA(v);
}
#define ROW_AVX2(o, r, f) PIXEL_LOOP(pixel_avx2_one, o, r, f)
__attribute__((target("avx2,fma"))) static void
gather_pixels_avx2(float *d, const uint8_t *s, const int64_t *idx, int64_t n, int64_t f) {
    GATHER_PIXELS(ROW_AVX2);
}
// AVX-512 with intrinsics: GCC vectorises the `omp simd` loop 8 floats wide with a two-step
// byte widening; 16 wide with one vpmovzxbd the conversion of net B's batch (64 x 784, data in
// cache) took 2.0-2.5 instead of 2.5-3.5 us. The same two fused steps lane by lane as
// pixel_avx512_one, which converts the remainder.
__attribute__((target("avx512f,fma"))) static inline float pixel_avx512_one(float v) {
    return PIXEL_FMA(v);
}
__attribute__((target("avx512f,fma"))) static void pixel_row_avx512(float *o, const uint8_t *r,
                                                                    int64_t f) {
    const __m512 rcp = _mm512_set1_ps(PIXEL_RCP), k = _mm512_set1_ps(255.0f);
    int64_t j = 0;
    for (; j + 16 <= f; j += 16) {
        __m128i b = _mm_loadu_si128((const __m128i *)(r + j));
        __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b));
        __m512 q = _mm512_mul_ps(v, rcp);
        _mm512_storeu_ps(o + j, _mm512_fmadd_ps(_mm512_fnmadd_ps(q, k, v), rcp, q));
    }
    for (; j < f; j++)
        o[j] = pixel_avx512_one((float)r[j]);
}
__attribute__((target("avx512f,fma"))) static void
gather_pixels_avx512(float *d, const uint8_t *s, const int64_t *idx, int64_t n, int64_t f) {
    GATHER_PIXELS(pixel_row_avx512);
}
#endif

static void gather_rows_f32(float *d, const uint8_t *s, const int64_t *idx, int64_t n, int64_t f) {
#ifdef HAVE_PIXEL_FMA
    if (__builtin_cpu_supports("fma") && __builtin_cpu_supports("avx512f"))
        gather_pixels_avx512(d, s, idx, n, f);
    else if (__builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2"))
        gather_pixels_avx2(d, s, idx, n, f);
    else
#endif
        gather_pixels_div(d, s, idx, n, f);
}

// A batch of more than NB_OMP_MIN pixels is split into one block of rows per thread: each
// thread's core has its own miss slots, so twice the rows are in flight. Net B at 2 threads
// (64 x 784 pixels; bench_mlp replay alternated with the one-thread gather, 11 pairs under
// load): the step's median 3-8 us shorter in 8 pairs, its share of the GEMM limit +4 points
// (pairwise median); the same at 1 thread.
static void gather_pixels_f32(float *d, const uint8_t *s, const int64_t *idx, int64_t n,
                              int64_t f) {
    NB_RANGES(n, NB_OMP_MIN / f, lo, hi, gather_rows_f32(d + lo * f, s, idx + lo, hi - lo, f));
}

// out (n, f) float := rows idx of a float tensor (n_all, ...) of either float dtype.
static void gather_float(nb_tensor *out, nb_tensor *src, const int64_t *idx, int64_t n, int64_t f) {
    void *d = nb_tensor_data(out);
    const void *s = nb_tensor_data(src);
    bool d32 = nb_tensor_dtype(out) == NB_F32, s32 = nb_tensor_dtype(src) == NB_F32;
    if (d32 && s32)
        GATHER_ROWS(float, float, d, s, idx, n, f, AS_IS);
    else if (d32)
        GATHER_ROWS(float, double, d, s, idx, n, f, AS_IS);
    else if (s32)
        GATHER_ROWS(double, float, d, s, idx, n, f, AS_IS);
    else
        GATHER_ROWS(double, double, d, s, idx, n, f, AS_IS);
}

nb_status nb_dataset_fill_batch(const nb_dataset *ds, const int64_t *idx, int64_t n, nb_tensor *x,
                                nb_tensor *onehot, nb_tensor *labels) {
    nb__sample_layout l;
    nb_status st = check_batch(ds, idx, n, x, onehot, labels, &l);
    if (st != NB_OK || n == 0)
        return st;
    if (x && ds->samples)
        gather_float(x, ds->samples, idx, n, l.numel);
    else if (x && nb_tensor_dtype(x) == NB_F32)
        gather_pixels_f32(nb_tensor_data(x), ds->images, idx, n, l.numel);
    else if (x)
        GATHER_ROWS(double, uint8_t, nb_tensor_data(x), ds->images, idx, n, l.numel, PIXEL);
    if (onehot && nb_tensor_dtype(onehot) == NB_F32)
        FILL_ONE_HOT(float, onehot, n, ds->n_classes, nb__dataset_label(ds, idx[i]));
    else if (onehot)
        FILL_ONE_HOT(double, onehot, n, ds->n_classes, nb__dataset_label(ds, idx[i]));
    if (labels && nb_tensor_dtype(labels) == NB_I64) {
        int64_t *y = nb_tensor_data_i64(labels); // (n)
        for (int64_t i = 0; i < n; i++)
            y[i] = nb__dataset_label(ds, idx[i]);
    } else if (labels) {
        int32_t *y = nb_tensor_data_i32(labels); // (n), each checked to fit
        for (int64_t i = 0; i < n; i++)
            y[i] = (int32_t)nb__dataset_label(ds, idx[i]);
    }
    return NB_OK;
}

nb_status nb_dataset_fill_targets(const nb_dataset *ds, const int64_t *idx, int64_t n,
                                  nb_tensor *targets) {
    static const char fn[] = "nb_dataset_fill_targets";
    nb__sample_layout l;
    if (!targets || (ds && n > 0 && !idx))
        return nb__set_last_error(NB_ERR_NULL, "%s: %s is NULL", fn, targets ? "idx" : "targets");
    nb_status st = nb__dataset_check(ds, fn, &l);
    if (st != NB_OK)
        return st;
    nb_tensor *t = ds->targets;
    if (!t)
        return nb__set_last_error(NB_ERR_STATE, "%s: the dataset has no targets", fn);
    if (!is_float(nb_tensor_dtype(t)) || nb_tensor_ndim(t) < 1 || nb_tensor_dim(t, 0) != ds->n)
        return nb__set_last_error(NB_ERR_STATE,
                                  "%s: targets tensor is %s %s, not float (%" PRId64 ", ...)", fn,
                                  nb_dtype_name(nb_tensor_dtype(t)), NB_SHAPE_STR(t), ds->n);
    if (n < 0)
        return nb__set_last_error(NB_ERR_ARG, "%s: n = %" PRId64 " is negative", fn, n);
    int64_t shape[NB_MAX_DIMS], f = 1;
    for (int i = 1; i < nb_tensor_ndim(t); i++)
        f *= shape[i - 1] = nb_tensor_dim(t, i);
    if ((st = check_sample_tensor(fn, "targets", targets, n, nb_tensor_ndim(t) - 1, shape, f)) !=
        NB_OK)
        return st;
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= ds->n)
            return nb__set_last_error(
                NB_ERR_ARG, "%s: idx[%" PRId64 "] = %" PRId64 " is outside [0, %" PRId64 ")", fn, i,
                idx[i], ds->n);
    if (n > 0)
        gather_float(targets, t, idx, n, f);
    return NB_OK;
}

nb_status nb_shuffle(int64_t *idx, int64_t n, nb_rng *rng) {
    if (!rng || (n > 0 && !idx))
        return nb__set_last_error(NB_ERR_NULL, "nb_shuffle: %s is NULL", rng ? "idx" : "rng");
    if (n < 0)
        return nb__set_last_error(NB_ERR_ARG, "nb_shuffle: n = %" PRId64 " is negative", n);
    // Fisher-Yates: position i takes a uniform pick among the not-yet-placed 0..i.
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)nb_rng_below(rng, (uint64_t)i + 1);
        int64_t tmp = idx[i];
        idx[i] = idx[j];
        idx[j] = tmp;
    }
    return NB_OK;
}

nb_status nb_split_indices(int64_t n, int64_t n_val, nb_rng *rng, int64_t *train, int64_t *val) {
    static const char fn[] = "nb_split_indices";
    if (n < 0 || n_val < 0 || n_val > n)
        return nb__set_last_error(
            NB_ERR_ARG, "%s: n_val = %" PRId64 " with n = %" PRId64 " (need 0 <= n_val <= n)", fn,
            n_val, n);
    if (!rng || (n_val > 0 && !val) || (n_val < n && !train))
        return nb__set_last_error(NB_ERR_NULL, "%s: %s is NULL", fn,
                                  !rng                  ? "rng"
                                  : (n_val > 0 && !val) ? "val"
                                                        : "train");
    // Selection sampling (Knuth's Algorithm S): index i joins val with probability
    // (still needed) / (still left). Every n_val-subset is equally likely, both lists come out
    // ascending, and no temporary permutation is needed.
    int64_t nv = 0;
    int64_t nt = 0;
    for (int64_t i = 0; i < n; i++) {
        if ((int64_t)nb_rng_below(rng, (uint64_t)(n - i)) < n_val - nv)
            val[nv++] = i;
        else
            train[nt++] = i;
    }
    return NB_OK;
}

nb_batch_iter *nb_batch_iter_create(const int64_t *indices, int64_t n, int64_t batch_size,
                                    bool shuffle, uint64_t seed) {
    static const char fn[] = "nb_batch_iter_create";
    if (n <= 0 || batch_size <= 0) {
        nb__set_last_error(NB_ERR_ARG,
                           "%s: n = %" PRId64 ", batch_size = %" PRId64 " (both must be > 0)", fn,
                           n, batch_size);
        return NULL;
    }
    if ((uint64_t)n > SIZE_MAX / sizeof(int64_t)) {
        nb__set_last_error(NB_ERR_ARG, "%s: n = %" PRId64 " is too large", fn, n);
        return NULL;
    }
    nb_batch_iter *it = nb__calloc(1, sizeof *it);
    int64_t *order = nb__malloc((size_t)n * sizeof *order);
    if (!it || !order) {
        nb__free(it);
        nb__free(order);
        nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory for %" PRId64 " indices", fn, n);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        order[i] = indices ? indices[i] : i;
    it->order = order;
    it->n = n;
    it->batch_size = batch_size;
    it->shuffle = shuffle;
    nb_rng_seed(&it->rng, seed);
    if (shuffle)
        nb_shuffle(it->order, n, &it->rng);
    return it;
}

void nb_batch_iter_destroy(nb_batch_iter *it) {
    if (!it)
        return;
    nb__free(it->order);
    nb__free(it);
}

int64_t nb_batch_iter_next(nb_batch_iter *it, const int64_t **batch) {
    if (!it || !batch) {
        nb__set_last_error(NB_ERR_NULL, "nb_batch_iter_next: %s is NULL", it ? "batch" : "it");
        return 0;
    }
    if (it->pos >= it->n) {
        // End of epoch: report it once and prepare the next order. Reshuffling the previous
        // order (rather than 0..n-1) is still uniform and keeps the sequence seed-determined.
        it->pos = 0;
        it->epoch++;
        if (it->shuffle)
            nb_shuffle(it->order, it->n, &it->rng);
        *batch = NULL;
        return 0;
    }
    int64_t count = it->n - it->pos < it->batch_size ? it->n - it->pos : it->batch_size;
    *batch = it->order + it->pos;
    it->pos += count;
    return count;
}

int64_t nb_batch_iter_epoch(const nb_batch_iter *it) {
    return it ? it->epoch : 0;
}

void nb_batch_iter_position(const nb_batch_iter *it, int64_t *epoch, int64_t *batch) {
    if (epoch)
        *epoch = it ? it->epoch : 0;
    if (batch) // handed-out batches: pos / batch_size rounded up (the last one may be short)
        *batch = it ? it->pos / it->batch_size + (it->pos % it->batch_size != 0) : 0;
}

nb_status nb_batch_iter_seek(nb_batch_iter *it, int64_t epoch, int64_t batch) {
    static const char fn[] = "nb_batch_iter_seek";
    if (!it)
        return nb__set_last_error(NB_ERR_NULL, "%s: it is NULL", fn);
    int64_t nb = nb_batch_iter_num_batches(it), ce, cb;
    nb_batch_iter_position(it, &ce, &cb);
    if (epoch < 0 || batch < 0 || batch > nb)
        return nb__set_last_error(NB_ERR_ARG,
                                  "%s: position (epoch %" PRId64 ", batch %" PRId64
                                  ") is outside [0, %" PRId64 "] batches per epoch",
                                  fn, epoch, batch, nb);
    if (epoch < ce || (epoch == ce && batch < cb))
        return nb__set_last_error(NB_ERR_ARG,
                                  "%s: position (epoch %" PRId64 ", batch %" PRId64
                                  ") is behind the iterator's (epoch %" PRId64 ", batch %" PRId64
                                  "); seek a fresh iterator (same indices, batch size, shuffle "
                                  "and seed)",
                                  fn, epoch, batch, ce, cb);
    // The epochs in between draw their orders exactly as nb_batch_iter_next would.
    for (; it->epoch < epoch; it->epoch++)
        if (it->shuffle)
            nb_shuffle(it->order, it->n, &it->rng);
    it->pos = batch < nb ? batch * it->batch_size : it->n;
    return NB_OK;
}

int64_t nb_batch_iter_num_batches(const nb_batch_iter *it) {
    if (!it)
        return 0;
    // ceil(n / batch_size) without forming n + batch_size - 1, which overflows.
    return it->n / it->batch_size + (it->n % it->batch_size != 0);
}
