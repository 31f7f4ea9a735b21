// Tensor lifecycle, accessors and data movement. A tensor is a small header plus a contiguous
// row-major buffer; user tensors own (or wrap) their buffer, graph tensors live in an arena.
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "tensor/tensor_impl.h"

size_t nb_dtype_size(nb_dtype dtype) {
    switch (dtype) {
    case NB_F32:
        return sizeof(float);
    case NB_F64:
        return sizeof(double);
    case NB_I32:
        return sizeof(int32_t);
    case NB_I64:
        return sizeof(int64_t);
    default:
        return 0;
    }
}

const char *nb_dtype_name(nb_dtype dtype) {
    switch (dtype) {
    case NB_F32:
        return "float32";
    case NB_F64:
        return "float64";
    case NB_I32:
        return "int32";
    case NB_I64:
        return "int64";
    default:
        return "invalid";
    }
}

nb_status nb__shape_check(int ndim, const int64_t *shape, int64_t *numel, char *err, size_t n) {
    if (ndim < 0 || ndim > NB_MAX_DIMS) {
        snprintf(err, n, "ndim %d out of range [0, %d]", ndim, NB_MAX_DIMS);
        return NB_ERR_SHAPE;
    }
    if (ndim > 0 && !shape) {
        snprintf(err, n, "shape is NULL");
        return NB_ERR_NULL;
    }
    // The limit (INT64_MAX / 8, so a byte count of any dtype fits int64) is on the product of
    // the nonzero dims, for empty tensors too: then every product of some of a tensor's dims
    // (an op's outer/inner/row counts, strides) fits int64, and no op needs its own overflow
    // check. (2^40, 2^40, 0) is refused like (2^40, 2^40, 1), as PyTorch refuses it ("Storage
    // size calculation overflowed").
    // A multiply with an overflow check instead of a division per dim: every op output
    // passes here.
    bool empty = false;
    int64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            snprintf(err, n, "dim %d is negative (%" PRId64 ")", i, shape[i]);
            return NB_ERR_SHAPE;
        }
        if (shape[i] == 0) {
            empty = true;
            continue;
        }
        if (__builtin_mul_overflow(count, shape[i], &count) || count > INT64_MAX / 8) {
            bool has_zero = empty;
            for (int j = i; j < ndim; j++)
                has_zero = has_zero || shape[j] == 0;
            snprintf(err, n, "too many elements: the %sdims multiply past 2^60",
                     has_zero ? "nonzero " : "");
            return NB_ERR_SHAPE;
        }
    }
    *numel = empty ? 0 : count;
    return NB_OK;
}

// Header + validated shape; data left NULL.
static nb_tensor *tensor_header(const char *fn, nb_dtype dtype, int ndim, const int64_t *shape) {
    char err[128];
    int64_t numel = 0;
    if (nb_dtype_size(dtype) == 0) {
        nb__set_last_error(NB_ERR_DTYPE, "%s: invalid dtype %d", fn, (int)dtype);
        return NULL;
    }
    nb_status st = nb__shape_check(ndim, shape, &numel, err, sizeof err);
    if (st != NB_OK) {
        nb__set_last_error(st, "%s: %s", fn, err);
        return NULL;
    }
    nb_tensor *t = nb__calloc(1, sizeof *t);
    if (!t) {
        nb__set_last_error(NB_ERR_NOMEM, "%s: out of memory", fn);
        return NULL;
    }
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->numel = numel;
    t->node = -1;
    t->epoch = NB_LEAF_EPOCH;
    return t;
}

nb_tensor *nb_tensor_create(nb_dtype dtype, int ndim, const int64_t *shape) {
    nb_tensor *t = tensor_header("nb_tensor_create", dtype, ndim, shape);
    if (!t)
        return NULL;
    t->data = nb__calloc_aligned((size_t)t->numel, nb_dtype_size(dtype));
    if (!t->data) {
        nb__free(t);
        nb__set_last_error(NB_ERR_NOMEM, "nb_tensor_create: out of memory");
        return NULL;
    }
    t->owns_data = true;
    return t;
}

nb_tensor *nb_tensor_from_data(nb_dtype dtype, int ndim, const int64_t *shape, const void *data) {
    if (!data) {
        nb__set_last_error(NB_ERR_NULL, "nb_tensor_from_data: data is NULL");
        return NULL;
    }
    nb_tensor *t = nb_tensor_create(dtype, ndim, shape);
    if (t)
        memcpy(t->data, data, (size_t)t->numel * nb_dtype_size(dtype));
    return t;
}

nb_tensor *nb_tensor_wrap(nb_dtype dtype, int ndim, const int64_t *shape, void *data) {
    if (!data) {
        nb__set_last_error(NB_ERR_NULL, "nb_tensor_wrap: data is NULL");
        return NULL;
    }
    nb_tensor *t = tensor_header("nb_tensor_wrap", dtype, ndim, shape);
    if (t)
        t->data = data;
    return t;
}

nb_status nb_tensor_destroy(nb_tensor *t) {
    if (!t)
        return NB_OK;
    if (t->graph || t->epoch != NB_LEAF_EPOCH) { // an op output, live or from an earlier step
        return nb__set_last_error(NB_ERR_STATE,
                                  "nb_tensor_destroy: tensor %s belongs to a graph; it is freed by "
                                  "nb_graph_reset/nb_graph_destroy",
                                  NB_SHAPE_STR(t));
    }
    if (t->owns_data)
        nb__free_aligned(t->data);
    nb__free_aligned(t->grad);
    nb__free(t);
    return NB_OK;
}

nb_dtype nb_tensor_dtype(const nb_tensor *t) {
    return t ? t->dtype : NB_DTYPE_COUNT;
}
int nb_tensor_ndim(const nb_tensor *t) {
    return t ? t->ndim : 0;
}
const int64_t *nb_tensor_shape(const nb_tensor *t) {
    return t ? t->shape : NULL;
}
int64_t nb_tensor_numel(const nb_tensor *t) {
    return t ? t->numel : 0;
}

int64_t nb_tensor_dim(const nb_tensor *t, int i) {
    if (!t)
        return 0;
    if (i < 0)
        i += t->ndim;
    return (i >= 0 && i < t->ndim) ? t->shape[i] : 0;
}

void *nb_tensor_data(nb_tensor *t) {
    return t ? t->data : NULL;
}
float *nb_tensor_data_f32(nb_tensor *t) {
    return t && t->dtype == NB_F32 ? t->data : NULL;
}
double *nb_tensor_data_f64(nb_tensor *t) {
    return t && t->dtype == NB_F64 ? t->data : NULL;
}
int32_t *nb_tensor_data_i32(nb_tensor *t) {
    return t && t->dtype == NB_I32 ? t->data : NULL;
}
int64_t *nb_tensor_data_i64(nb_tensor *t) {
    return t && t->dtype == NB_I64 ? t->data : NULL;
}
void *nb_tensor_grad(nb_tensor *t) {
    return t ? t->grad : NULL;
}
float *nb_tensor_grad_f32(nb_tensor *t) {
    return t && t->dtype == NB_F32 ? t->grad : NULL;
}
double *nb_tensor_grad_f64(nb_tensor *t) {
    return t && t->dtype == NB_F64 ? t->grad : NULL;
}

static double load(const void *p, nb_dtype dtype, int64_t i) {
    switch (dtype) {
    case NB_F32:
        return (double)((const float *)p)[i];
    case NB_F64:
        return ((const double *)p)[i];
    case NB_I32:
        return (double)((const int32_t *)p)[i];
    case NB_I64:
        return (double)((const int64_t *)p)[i];
    default:
        return 0;
    }
}

// int32 holds a value when its truncation toward zero is in [INT32_MIN, INT32_MAX]; NaN,
// infinities and larger values have no int32 (converting them is undefined behaviour in C).
static bool fits_i32(double v) {
    return v > -2147483649.0 && v < 2147483648.0;
}
// The same for int64: truncation in [-2^63, 2^63).
static bool fits_i64(double v) {
    return v >= -9223372036854775808.0 && v < 9223372036854775808.0;
}
static bool fits_int(nb_dtype dt, double v) {
    return dt == NB_I32 ? fits_i32(v) : dt == NB_I64 ? fits_i64(v) : true;
}

static void store(void *p, nb_dtype dtype, int64_t i, double v) {
    switch (dtype) {
    case NB_F32:
        ((float *)p)[i] = (float)v;
        break;
    case NB_F64:
        ((double *)p)[i] = v;
        break;
    case NB_I32:
        ((int32_t *)p)[i] = (int32_t)v;
        break;
    case NB_I64:
        ((int64_t *)p)[i] = (int64_t)v;
        break;
    default:
        break;
    }
}

// False (with nb_last_error set) unless t is a tensor and i one of its elements.
static bool index_ok(const char *fn, const nb_tensor *t, int64_t i) {
    if (!t) {
        nb__set_last_error(NB_ERR_NULL, "%s: tensor is NULL", fn);
        return false;
    }
    if (i < 0 || i >= t->numel) {
        nb__set_last_error(
            NB_ERR_ARG, "%s: index %" PRId64 " out of range for tensor %s (%" PRId64 " elements)",
            fn, i, NB_SHAPE_STR(t), t->numel);
        return false;
    }
    return true;
}

double nb_tensor_get(const nb_tensor *t, int64_t i) {
    if (!index_ok("nb_tensor_get", t, i))
        return (double)NAN;
    return t->data ? load(t->data, t->dtype, i) : 0;
}

double nb_tensor_grad_get(const nb_tensor *t, int64_t i) {
    if (!index_ok("nb_tensor_grad_get", t, i))
        return (double)NAN;
    return t->grad ? load(t->grad, t->dtype, i) : 0;
}

// Records why v cannot be stored into an int32 / int64 tensor; false when it can.
static bool refuse_i32(const char *fn, const nb_tensor *t, double v) {
    if (fits_int(t->dtype, v))
        return false;
    nb__set_last_error(NB_ERR_ARG, "%s: %g does not fit %s tensor %s (left unchanged)", fn, v,
                       nb_dtype_name(t->dtype), NB_SHAPE_STR(t));
    return true;
}

nb_status nb_tensor_set(nb_tensor *t, int64_t i, double v) {
    if (!index_ok("nb_tensor_set", t, i))
        return t ? NB_ERR_ARG : NB_ERR_NULL;
    if (refuse_i32("nb_tensor_set", t, v))
        return NB_ERR_ARG;
    if (t->data)
        store(t->data, t->dtype, i, v);
    return NB_OK;
}

nb_status nb_tensor_set_requires_grad(nb_tensor *t, bool requires_grad) {
    if (!t)
        return nb__set_last_error(NB_ERR_NULL, "nb_tensor_set_requires_grad: tensor is NULL");
    if (requires_grad && (t->dtype == NB_I32 || t->dtype == NB_I64))
        return nb__set_last_error(NB_ERR_DTYPE,
                                  "nb_tensor_set_requires_grad: %s tensor %s cannot require "
                                  "grad",
                                  nb_dtype_name(t->dtype), NB_SHAPE_STR(t));
    if (t->graph)
        return nb__set_last_error(NB_ERR_STATE,
                                  "nb_tensor_set_requires_grad: %s is an op output; only leaf "
                                  "tensors can be marked",
                                  NB_SHAPE_STR(t));
    t->requires_grad = requires_grad;
    return NB_OK;
}

bool nb_tensor_requires_grad(const nb_tensor *t) {
    return t && t->requires_grad;
}
bool nb_tensor_is_leaf(const nb_tensor *t) {
    return t && !t->graph;
}

char *nb_tensor_shape_str(const nb_tensor *t, char *buf, size_t size) {
    if (!buf || size == 0)
        return buf;
    if (!t) {
        snprintf(buf, size, "(null)");
        return buf;
    }
    size_t used = 0;
    int w = snprintf(buf, size, "(");
    int ndim = t->ndim < 0 ? 0 : t->ndim > NB_MAX_DIMS ? NB_MAX_DIMS : t->ndim;
    for (int i = 0; i < ndim && w >= 0; i++) {
        used += (size_t)w;
        if (used >= size)
            break;
        w = snprintf(buf + used, size - used, "%s%" PRId64, i ? ", " : "", t->shape[i]);
    }
    if (w >= 0)
        used += (size_t)w;
    if (used < size)
        snprintf(buf + used, size - used, ")");
    return buf;
}

nb_status nb_tensor_fill(nb_tensor *t, double v) {
    if (!t)
        return nb__set_last_error(NB_ERR_NULL, "nb_tensor_fill: tensor is NULL");
    if (refuse_i32("nb_tensor_fill", t, v))
        return NB_ERR_ARG;
    for (int64_t i = 0; t->data && i < t->numel; i++)
        store(t->data, t->dtype, i, v);
    return NB_OK;
}

static nb_status copy_elems(const char *fn, void *dst, nb_dtype dd, const void *src, nb_dtype sd,
                            int64_t n) {
    if (dd == sd) {
        if (n > 0)
            memcpy(dst, src, (size_t)n * nb_dtype_size(dd));
        return NB_OK;
    }
    if (dd == NB_I32 || dd == NB_I64) { // all or nothing: check every value before writing
        for (int64_t i = 0; i < n; i++) {
            double v = load(src, sd, i);
            if (!fits_int(dd, v))
                return nb__set_last_error(NB_ERR_ARG,
                                          "%s: element %" PRId64 " (%g) does not fit %s; "
                                          "nothing was copied",
                                          fn, i, v, nb_dtype_name(dd));
        }
    }
    for (int64_t i = 0; i < n; i++)
        store(dst, dd, i, load(src, sd, i));
    return NB_OK;
}

// Shared argument checks of copy_in / copy_out: buffer, its dtype and its element count.
static nb_status check_copy(const char *fn, const nb_tensor *t, const void *buf, nb_dtype dtype,
                            int64_t n) {
    if (!t || !buf)
        return nb__set_last_error(NB_ERR_NULL, "%s: NULL argument", fn);
    if (nb_dtype_size(dtype) == 0)
        return nb__set_last_error(NB_ERR_DTYPE, "%s: invalid dtype", fn);
    if (n != t->numel)
        return nb__set_last_error(NB_ERR_SHAPE,
                                  "%s: buffer of %" PRId64 " elements, tensor %s holds %" PRId64,
                                  fn, n, NB_SHAPE_STR(t), t->numel);
    return NB_OK;
}

nb_status nb_tensor_copy_in(nb_tensor *t, const void *src, nb_dtype src_dtype, int64_t n) {
    nb_status st = check_copy("nb_tensor_copy_in", t, src, src_dtype, n);
    return st != NB_OK ? st : copy_elems("nb_tensor_copy_in", t->data, t->dtype, src, src_dtype, n);
}

nb_status nb_tensor_copy_out(const nb_tensor *t, void *dst, nb_dtype dst_dtype, int64_t n) {
    nb_status st = check_copy("nb_tensor_copy_out", t, dst, dst_dtype, n);
    return st != NB_OK ? st
                       : copy_elems("nb_tensor_copy_out", dst, dst_dtype, t->data, t->dtype, n);
}

nb_status nb_tensor_copy(nb_tensor *dst, const nb_tensor *src) {
    if (!dst || !src)
        return nb__set_last_error(NB_ERR_NULL, "nb_tensor_copy: NULL argument");
    if (dst->numel != src->numel)
        return nb__set_last_error(NB_ERR_SHAPE, "nb_tensor_copy: dst %s and src %s differ in size",
                                  NB_SHAPE_STR(dst), NB_SHAPE_STR(src));
    return copy_elems("nb_tensor_copy", dst->data, dst->dtype, src->data, src->dtype, src->numel);
}

void nb_tensor_zero_grad(nb_tensor *t) {
    if (t && t->grad)
        memset(t->grad, 0, (size_t)t->numel * nb_dtype_size(t->dtype));
}
