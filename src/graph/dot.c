// Pictures and tables of the recorded tape: nb_graph_to_dot writes Graphviz DOT (one box per
// op, one node per leaf tensor it reads, edges in data-flow direction), nb_graph_summary a
// text table. Both only read the graph; neither is meant for the training loop (they format
// text and the DOT writer allocates a small leaf table).
#include <errno.h>
#include <math.h>
#include <string.h>

#include "graph/graph_priv.h"

// ---- leaves: user tensors read by ops, numbered in order of first use -----------------------

typedef struct leaf_table {
    const nb_tensor **t;
    int64_t n;
    int64_t n_params; // leaves with requires_grad
} leaf_table;

static bool is_op_output(const nb_graph *g, const nb_tensor *t) {
    return t->graph == g && t->node >= 0 && t->node < g->n_nodes && g->nodes[t->node].out == t;
}

static int64_t leaf_find(const leaf_table *lt, const nb_tensor *t) {
    for (int64_t i = 0; i < lt->n; i++)
        if (lt->t[i] == t)
            return i;
    return -1;
}

// Every distinct leaf the tape reads, in first-use order. NB_ERR_NOMEM if the table cannot be
// allocated (then lt is empty and must still be freed).
static nb_status leaves_collect(const nb_graph *g, leaf_table *lt) {
    int64_t cap = 0;
    for (int64_t i = 0; i < g->n_nodes; i++)
        cap += g->nodes[i].n_in;
    *lt = (leaf_table){0};
    if (cap == 0)
        return NB_OK;
    lt->t = nb__malloc((size_t)cap * sizeof *lt->t);
    if (!lt->t)
        return nb__set_last_error(NB_ERR_NOMEM, "nb_graph_to_dot: out of memory (%lld leaves)",
                                  (long long)cap);
    for (int64_t i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            const nb_tensor *t = g->nodes[i].in[k];
            if (!is_op_output(g, t) && leaf_find(lt, t) < 0) {
                lt->t[lt->n++] = t;
                lt->n_params += t->requires_grad;
            }
        }
    return NB_OK;
}

// "p3" for the 4th parameter, "x1" for the 2nd other input, by first use.
static void leaf_name(const leaf_table *lt, int64_t idx, char *buf, size_t n) {
    int64_t same_kind = 0;
    for (int64_t i = 0; i < idx; i++)
        same_kind += lt->t[i]->requires_grad == lt->t[idx]->requires_grad;
    snprintf(buf, n, "%s%lld", lt->t[idx]->requires_grad ? "p" : "x", (long long)same_kind);
}

// ---- statistics --------------------------------------------------------------------------------

typedef struct stats {
    double min, max, mean, norm;
    int64_t nonfinite;
} stats;

static double elem(const nb_tensor *t, const void *buf, int64_t i) {
    switch (t->dtype) {
    case NB_F32:
        return (double)((const float *)buf)[i];
    case NB_F64:
        return ((const double *)buf)[i];
    case NB_I32:
        return ((const int32_t *)buf)[i];
    case NB_I64:
        return (double)((const int64_t *)buf)[i];
    default:
        return (double)NAN;
    }
}

// min / max / mean / L2 norm over the finite elements of buf (the data or the grad of t).
static stats compute_stats(const nb_tensor *t, const void *buf) {
    stats s = {(double)INFINITY, -(double)INFINITY, 0, 0, 0};
    double sum = 0, sq = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        double v = elem(t, buf, i);
        if (!isfinite(v)) {
            s.nonfinite++;
            continue;
        }
        s.min = fmin(s.min, v);
        s.max = fmax(s.max, v);
        sum += v;
        sq += v * v;
        n++;
    }
    s.mean = n ? sum / (double)n : (double)NAN;
    s.norm = sqrt(sq);
    if (!n)
        s.min = s.max = (double)NAN;
    return s;
}

static void put_stats(FILE *f, const char *what, const nb_tensor *t, const void *buf) {
    stats s = compute_stats(t, buf);
    fprintf(f, "\\n%s [%.3g, %.3g] mean %.3g norm %.3g", what, s.min, s.max, s.mean, s.norm);
    if (s.nonfinite)
        fprintf(f, " (%lld non-finite)", (long long)s.nonfinite);
}

// ---- DOT --------------------------------------------------------------------------------------

// A string inside a double-quoted DOT label: quotes and backslashes escaped, newlines dropped.
static void put_escaped(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if (*s != '\n' && *s != '\r')
            fputc(*s, f);
    }
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

// The caller's name for t (options.names), or NULL.
static const char *user_name(const nb_dot_options *o, const nb_tensor *t) {
    if (!o->tensors || !o->names)
        return NULL;
    for (int i = 0; i < o->n_names; i++)
        if (o->tensors[i] == t)
            return o->names[i];
    return NULL;
}

static void put_shape(FILE *f, const nb_tensor *t) {
    fprintf(f, "%s %s", NB_SHAPE_STR(t), nb_dtype_name(t->dtype));
}

static void put_leaf(FILE *f, const leaf_table *lt, int64_t i, const nb_dot_options *o) {
    const nb_tensor *t = lt->t[i];
    char id[32];
    leaf_name(lt, i, id, sizeof id);
    const char *name = user_name(o, t);
    fprintf(f, "  %s [label=\"", id);
    if (name) {
        put_escaped(f, name);
        fprintf(f, " (%s)\\n", id);
    } else {
        fprintf(f, "%s %s\\n", t->requires_grad ? "parameter" : "input", id);
    }
    put_shape(f, t);
    if (t->requires_grad)
        fprintf(f, "\\n%lld parameters", (long long)t->numel);
    if (o->stats) {
        put_stats(f, "value", t, t->data);
        if (t->grad)
            put_stats(f, "grad", t, t->grad);
    }
    fputs(t->requires_grad ? "\", shape=box, style=\"filled,bold\", fillcolor=\"#f6c85f\"];\n"
                           : "\", shape=ellipse, style=filled, fillcolor=\"#e8e8e8\"];\n",
          f);
}

static void put_op(FILE *f, const nb_graph *g, int64_t i, const nb_dot_options *o) {
    const nb_node *nd = &g->nodes[i];
    const char *name = user_name(o, nd->out);
    fprintf(f, "  n%lld [label=\"", (long long)i);
    put_escaped(f, nd->op->name);
    if (name) {
        fputs(" -> ", f);
        put_escaped(f, name);
    }
    fputs("\\n", f);
    put_shape(f, nd->out);
    if (nd->file && !o->hide_sites) {
        fputs("\\nat ", f);
        put_escaped(f, base_name(nd->file));
        fprintf(f, ":%d", nd->line);
    }
    if (o->stats) {
        put_stats(f, "value", nd->out, nd->out->data);
        if (nd->out->grad)
            put_stats(f, "grad", nd->out, nd->out->grad);
    }
    bool last = i == g->n_nodes - 1;
    fprintf(f, "\", shape=box, style=\"rounded,filled%s\", fillcolor=\"%s\"];\n",
            last ? ",bold" : "", nd->needs_grad ? "#a6cee3" : "#f2f2f2");
}

static void put_edges(FILE *f, const nb_graph *g, const leaf_table *lt, int64_t i) {
    const nb_node *nd = &g->nodes[i];
    for (int k = 0; k < nd->n_in; k++) {
        const nb_tensor *t = nd->in[k];
        char from[32];
        if (is_op_output(g, t))
            snprintf(from, sizeof from, "n%lld", (long long)t->node);
        else
            leaf_name(lt, leaf_find(lt, t), from, sizeof from);
        fprintf(f, "  %s -> n%lld", from, (long long)i);
        if (nd->n_in > 1) // argument order matters (sub, matmul, losses)
            fprintf(f, " [label=\"%d\", fontsize=9]", k);
        fputs(";\n", f);
    }
}

// fflush + ferror: a full disk or a closed stream is reported, not a truncated picture.
static nb_status finish(FILE *f, const char *fn) {
    if (fflush(f) != 0 || ferror(f))
        return nb__set_last_error(NB_ERR_IO, "%s: write failed: %s", fn,
                                  errno ? strerror(errno) : "stream error");
    return NB_OK;
}

nb_status nb_graph_to_dot(const nb_graph *g, FILE *f, nb_dot_options o) {
    if (!g || !f)
        return nb__set_last_error(NB_ERR_NULL, "nb_graph_to_dot: %s is NULL",
                                  !g ? "graph" : "FILE");
    if (o.n_names < 0 || (o.n_names > 0 && (!o.tensors || !o.names)))
        return nb__set_last_error(
            NB_ERR_ARG, "nb_graph_to_dot: n_names is %d but tensors or names is NULL", o.n_names);
    leaf_table lt;
    nb_status st = leaves_collect(g, &lt);
    if (st != NB_OK)
        return st;
    errno = 0;
    fputs("digraph nabla {\n  rankdir=TB;\n  fontname=\"Helvetica\";\n"
          "  node [fontname=\"Helvetica\", fontsize=10];\n"
          "  edge [color=\"#555555\"];\n",
          f);
    fputs("  label=\"", f);
    if (o.title) {
        put_escaped(f, o.title);
        fputs("\\n", f);
    }
    fprintf(f, "%lld ops, %lld parameter tensors, %lld other inputs%s\";\n", (long long)g->n_nodes,
            (long long)lt.n_params, (long long)(lt.n - lt.n_params),
            g->status != NB_OK ? " (graph in error: tape up to the failing op)" : "");
    for (int64_t i = 0; i < lt.n; i++)
        put_leaf(f, &lt, i, &o);
    for (int64_t i = 0; i < g->n_nodes; i++)
        put_op(f, g, i, &o);
    for (int64_t i = 0; i < g->n_nodes; i++)
        put_edges(f, g, &lt, i);
    fputs("}\n", f);
    nb__free(lt.t);
    return finish(f, "nb_graph_to_dot");
}

// ---- summary table -----------------------------------------------------------------------------

static int64_t tensor_bytes(const nb_tensor *t) {
    return t->numel * (int64_t)nb_dtype_size(t->dtype);
}

nb_status nb_graph_summary(const nb_graph *g, FILE *f) {
    if (!g || !f)
        return nb__set_last_error(NB_ERR_NULL, "nb_graph_summary: %s is NULL",
                                  !g ? "graph" : "FILE");
    leaf_table lt;
    nb_status st = leaves_collect(g, &lt);
    if (st != NB_OK)
        return st;
    errno = 0;
    int64_t act_bytes = 0, grad_bytes = 0, param_elems = 0, param_bytes = 0;
    bool *seen = lt.n ? nb__calloc((size_t)lt.n, sizeof *seen) : NULL;
    if (lt.n && !seen) {
        nb__free(lt.t);
        return nb__set_last_error(NB_ERR_NOMEM, "nb_graph_summary: out of memory");
    }
    fprintf(f, "%4s  %-28s %-20s %-8s %10s %10s  %-18s %s\n", "#", "op", "output", "dtype", "bytes",
            "params", "inputs", "call site");
    for (int64_t i = 0; i < g->n_nodes; i++) {
        const nb_node *nd = &g->nodes[i];
        char ins[64] = "", one[24];
        int64_t params = 0; // parameters first read by this op, so the column sums to the total
        size_t k = 0;
        for (int j = 0; j < nd->n_in; j++) {
            const nb_tensor *t = nd->in[j];
            if (is_op_output(g, t)) {
                snprintf(one, sizeof one, "#%lld", (long long)t->node);
            } else {
                int64_t li = leaf_find(&lt, t);
                leaf_name(&lt, li, one, sizeof one);
                if (t->requires_grad && !seen[li]) {
                    params += t->numel;
                    param_bytes += tensor_bytes(t);
                }
                seen[li] = true;
            }
            int w = snprintf(ins + k, sizeof ins - k, "%s%s", j ? " " : "", one);
            k = (w > 0 && (size_t)w < sizeof ins - k) ? k + (size_t)w : sizeof ins - 1;
        }
        param_elems += params;
        act_bytes += tensor_bytes(nd->out);
        if (nd->out->grad)
            grad_bytes += tensor_bytes(nd->out);
        char site[64] = "";
        if (nd->file)
            snprintf(site, sizeof site, "%s:%d", base_name(nd->file), nd->line);
        fprintf(f, "%4lld  %-28s %-20s %-8s %10lld %10lld  %-18s %s\n", (long long)i, nd->op->name,
                NB_SHAPE_STR(nd->out), nb_dtype_name(nd->out->dtype),
                (long long)tensor_bytes(nd->out), (long long)params, ins, site);
    }
    fprintf(f,
            "%lld ops; parameters: %lld tensors, %lld elements, %lld bytes; op outputs: %lld "
            "bytes (+ %lld bytes of their gradients)\n",
            (long long)g->n_nodes, (long long)lt.n_params, (long long)param_elems,
            (long long)param_bytes, (long long)act_bytes, (long long)grad_bytes);
    nb__free(seen);
    nb__free(lt.t);
    return finish(f, "nb_graph_summary");
}
