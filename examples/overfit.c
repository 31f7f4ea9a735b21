// overfit: the article's under- and over-fitting story, in numbers.
// Noisy samples of y = x² are split into a train and a test set; polynomials of rising degree
// are fitted to the train set by full-batch gradient descent, then judged on the test set and
// on the unseen point x = 5 (true value 25). Degree 1 under-fits, degree 2 fits, a high degree
// chases the noise. Writes overfit_points.csv, overfit_curves.csv and, if gnuplot is on PATH,
// overfit.png. Exit: 0 story holds, 1 nabla or I/O error, 2 bad usage, 3 story does not hold.
#define _POSIX_C_SOURCE 200809L // WEXITSTATUS via <sys/wait.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "nabla.h"

// x ~ U[-X_LIM, X_LIM], but the model sees u = x / X_LIM in [-1, 1]: raw powers up to x¹⁰ ~ 1e7
// would make the loss so badly conditioned that gradient descent could not fit it.
#define X_LIM 5.0
#define X_NEW 5.0  // the article's unseen point; y = 25 there
#define MAX_DEG 15 // beyond this, monomials on [-1, 1] are too alike for descent to separate
#define MAX_MODELS 8
#define N_CURVE 201 // points per curve in overfit_curves.csv
// The high powers are nearly collinear, so the loss is flat along their directions; heavy-ball
// momentum crosses such valleys about 1 / (1 - MOMENTUM) times faster than plain descent.
#define MOMENTUM 0.9
#define CURVE_X(i) (-X_LIM + 2 * X_LIM * (i) / (N_CURVE - 1))

typedef struct {
    uint64_t seed;
    int n_train, n_test, steps, n_deg, deg[MAX_MODELS];
    double noise, lr;
    const char *out;
} options;

typedef struct {
    double train_mse, test_mse, at_new; // at_new: prediction at x = X_NEW
    const char *verdict;
    double curve[N_CURVE];
} fit;

static void usage(FILE *f) {
    fprintf(f,
            "usage: overfit [--seed N] [--n-train N] [--n-test N] [--noise SD] "
            "[--degrees D,D,...]\n               [--steps N] [--lr A] [--out DIR]\n"
            "Fits polynomials (degree 1..%d, up to %d of them) to noisy y = x^2, x in "
            "[-%g, %g].\nDefaults: --seed 54 --n-train 15 --n-test 200 --noise 3 "
            "--degrees 1,2,10 --steps 20000\n          --lr 0.2 --out .\n",
            MAX_DEG, MAX_MODELS, X_LIM, X_LIM);
}

// Strict parsing: the whole string is a number in [lo, hi] (and an integer if `whole`).
static int num(const char *s, double lo, double hi, int whole, double *v) {
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return !errno && end != s && !*end && *v >= lo && *v <= hi && (!whole || *v == floor(*v));
}

static int parse_args(int argc, char **argv, options *o) {
    *o = (options){54, 15, 200, 20000, 3, {1, 2, 10}, 3.0, 0.2, "."};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[++i] : "";
        double x;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--seed") && num(v, 0, 0x1p53, 1, &x)) {
            o->seed = (uint64_t)x;
        } else if (!strcmp(a, "--n-train") && num(v, 2, 1e5, 1, &x)) {
            o->n_train = (int)x;
        } else if (!strcmp(a, "--n-test") && num(v, 1, 1e5, 1, &x)) {
            o->n_test = (int)x;
        } else if (!strcmp(a, "--steps") && num(v, 1, 1e8, 1, &x)) {
            o->steps = (int)x;
        } else if (!strcmp(a, "--noise") && num(v, 0, 1e6, 0, &x)) {
            o->noise = x;
        } else if (!strcmp(a, "--lr") && num(v, 1e-12, 1e3, 0, &x)) {
            o->lr = x;
        } else if (!strcmp(a, "--out") && *v && strlen(v) < 2048) {
            o->out = v;
        } else if (!strcmp(a, "--degrees") && *v && strlen(v) < 128) {
            char buf[128], *tok, *save = NULL;
            strcpy(buf, v);
            o->n_deg = 0;
            for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (o->n_deg == MAX_MODELS || !num(tok, 1, MAX_DEG, 1, &x))
                    return fprintf(stderr, "overfit: bad --degrees '%s'\n", v), 0;
                o->deg[o->n_deg++] = (int)x;
            }
            if (!o->n_deg)
                return fprintf(stderr, "overfit: bad --degrees '%s'\n", v), 0;
        } else {
            return fprintf(stderr, "overfit: bad option or value: %s %s\n", a, v), 0;
        }
    }
    return 1;
}

// Design matrix (n, deg): row i holds u, u², ..., u^deg with u = x_i / X_LIM. The bias is
// nb_linear's b, so the model is  ŷ = b + Σ_k w_k u^k.
static nb_tensor *features(const double *x, int n, int deg) {
    nb_tensor *t = nb_tensor_create(NB_F64, 2, (int64_t[]){n, deg});
    double *p = t ? nb_tensor_data_f64(t) : NULL;
    for (int i = 0; p && i < n; i++) {
        double u = x[i] / X_LIM, uk = 1;
        for (int k = 0; k < deg; k++)
            p[(int64_t)i * deg + k] = uk *= u;
    }
    return t;
}

// Fits one degree and evaluates it. Returns 0, or 1 after printing a nabla error.
static int fit_degree(const options *o, int deg, const double *x, const double *y, fit *r) {
    int n = o->n_train, m = o->n_test, ok = 0;
    double xc[N_CURVE + 1];
    for (int i = 0; i < N_CURVE; i++)
        xc[i] = CURVE_X(i);
    xc[N_CURVE] = X_NEW;
    nb_tensor *xtr = features(x, n, deg), *xte = features(x + n, m, deg);
    nb_tensor *xcv = features(xc, N_CURVE + 1, deg);
    nb_tensor *ytr = nb_tensor_from_data(NB_F64, 2, (int64_t[]){n, 1}, y);
    nb_tensor *yte = nb_tensor_from_data(NB_F64, 2, (int64_t[]){m, 1}, y + n);
    nb_tensor *w = nb_tensor_create(NB_F64, 2, (int64_t[]){1, deg}); // (out, in): zeros
    nb_tensor *b = nb_tensor_create(NB_F64, 1, (int64_t[]){1});
    nb_graph *g = nb_graph_create();
    nb_sgd *opt = NULL;
    if (!xtr || !xte || !xcv || !ytr || !yte || !w || !b || !g ||
        nb_tensor_set_requires_grad(w, true) || nb_tensor_set_requires_grad(b, true) ||
        !(opt = nb_sgd_create((nb_tensor *[]){w, b}, 2, (nb_sgd_config){o->lr, MOMENTUM, 0, 0}))) {
        fprintf(stderr, "overfit: %s\n", nb_last_error());
        goto done;
    }
    // Full-batch gradient descent with momentum on L = mean (ŷ - y)².
    for (int s = 0; s < o->steps; s++) {
        nb_graph_reset(g);
        nb_sgd_zero_grad(opt);
        nb_tensor *loss = nb_mse_loss(g, nb_linear(g, xtr, w, b), ytr, NB_REDUCE_MEAN);
        if (!loss || nb_backward(g, loss) != NB_OK)
            goto graph_err;
        if (nb_sgd_step(opt) != NB_OK) {
            fprintf(stderr, "overfit: %s\n", nb_last_error());
            goto done;
        }
    }
    // Evaluation: no tape needed.
    nb_graph_reset(g);
    nb_graph_set_grad_enabled(g, false);
    nb_tensor *ltr = nb_mse_loss(g, nb_linear(g, xtr, w, b), ytr, NB_REDUCE_MEAN);
    nb_tensor *lte = nb_mse_loss(g, nb_linear(g, xte, w, b), yte, NB_REDUCE_MEAN);
    nb_tensor *yc = nb_linear(g, xcv, w, b);
    if (!ltr || !lte || !yc)
        goto graph_err;
    r->train_mse = nb_tensor_get(ltr, 0);
    r->test_mse = nb_tensor_get(lte, 0);
    for (int i = 0; i < N_CURVE; i++)
        r->curve[i] = nb_tensor_get(yc, i);
    r->at_new = nb_tensor_get(yc, N_CURVE);
    ok = isfinite(r->train_mse);
    if (!ok)
        fprintf(stderr, "overfit: degree %d diverged (loss not finite): lower --lr\n", deg);
    goto done;
graph_err:
    fprintf(stderr, "overfit: degree %d: %s\n", deg, nb_graph_error(g));
done:
    nb_sgd_destroy(opt);
    nb_graph_destroy(g);
    nb_tensor *ts[] = {xtr, xte, xcv, ytr, yte, w, b};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
        nb_tensor_destroy(ts[i]);
    return !ok;
}

// Opens DIR/name.tmp for writing; finish() closes it and renames it to DIR/name.
static FILE *start(const char *dir, const char *name, char *tmp, char *final, size_t size) {
    snprintf(final, size, "%s/%s", dir, name);
    snprintf(tmp, size, "%s.tmp", final);
    FILE *f = fopen(tmp, "w");
    if (!f)
        fprintf(stderr, "overfit: cannot write %s: %s\n", tmp, strerror(errno));
    return f;
}
static int finish(FILE *f, const char *tmp, const char *final) {
    int bad = ferror(f) | fclose(f);
    if (bad || rename(tmp, final) != 0) {
        fprintf(stderr, "overfit: cannot write %s: %s\n", final, strerror(errno));
        remove(tmp);
        return 1;
    }
    return 0;
}

static int write_csvs(const options *o, const double *x, const double *y, const fit *r) {
    char tmp[4096], final[4096];
    FILE *f = start(o->out, "overfit_points.csv", tmp, final, sizeof tmp);
    if (!f)
        return 1;
    fprintf(f, "x,y,split\n");
    for (int i = 0; i < o->n_train + o->n_test; i++)
        fprintf(f, "%.6f,%.6f,%s\n", x[i], y[i], i < o->n_train ? "train" : "test");
    if (finish(f, tmp, final) || !(f = start(o->out, "overfit_curves.csv", tmp, final, sizeof tmp)))
        return 1;
    fprintf(f, "x");
    for (int d = 0; d < o->n_deg; d++)
        fprintf(f, ",degree_%d", o->deg[d]);
    for (int i = 0; i < N_CURVE; i++) {
        fprintf(f, "\n%.4f", CURVE_X(i));
        for (int d = 0; d < o->n_deg; d++)
            fprintf(f, ",%.6f", r[d].curve[i]);
    }
    fprintf(f, "\n");
    return finish(f, tmp, final);
}

// Renders overfit.png with gnuplot, run in the output dir on a generated script. Returns 0 on
// success or when gnuplot is absent (with a note), 1 on failure.
static int plot(const options *o) {
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        printf("note: gnuplot not on PATH; skipping overfit.png\n");
        return 0;
    }
    char tmp[4096], final[4096], cmd[8400], *c = cmd;
    FILE *f = start(o->out, "overfit.gp", tmp, final, sizeof tmp);
    if (!f)
        return 1;
    fprintf(f,
            "set datafile separator ','\nset key autotitle columnhead top center\nset grid\n"
            "if (strstrt(GPVAL_TERMINALS, 'pngcairo')) {set term pngcairo size 900,600} else {"
            "set term png size 900,600}\nset output 'overfit.png.tmp'\n"
            "set xrange [-%g:%g]\nset yrange [-10:45]\nset label 1 '' at %g,%g point pt 3 ps 3\n"
            "set title 'Polynomial fits to noisy y = x^2 (star: the unseen x = 5, y = 25)'\n"
            "plot 'overfit_points.csv' using 1:(strcol(3) eq 'train' ? $2 : 1/0) pt 7 ps 1.3 "
            "lc rgb '#1f3b73' title 'train', \\\n"
            "  '' using 1:(strcol(3) eq 'test' ? $2 : 1/0) pt 6 ps 0.6 lc rgb 'gray' title 'test'",
            X_LIM + 0.5, X_LIM + 0.5, X_NEW, X_NEW * X_NEW);
    for (int d = 0; d < o->n_deg; d++)
        fprintf(f, ", \\\n  'overfit_curves.csv' using 1:%d with lines lw 2 title 'degree %d'",
                d + 2, o->deg[d]);
    fprintf(f, "\n");
    if (finish(f, tmp, final))
        return 1;
    // cd 'DIR' && gnuplot overfit.gp, with DIR single-quoted for the shell (' -> '\'').
    c += sprintf(c, "cd '"); // fits: --out is < 2048 chars, each at most 4 here
    for (const char *p = o->out; *p; p++)
        c += *p == '\'' ? sprintf(c, "'\\''") : sprintf(c, "%c", *p);
    sprintf(c, "' && gnuplot overfit.gp");
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "overfit: gnuplot failed (status %d)\n", st);
        return 1;
    }
    snprintf(tmp, sizeof tmp, "%s/overfit.png.tmp", o->out);
    snprintf(final, sizeof final, "%s/overfit.png", o->out);
    if (rename(tmp, final) != 0)
        return fprintf(stderr, "overfit: cannot write %s: %s\n", final, strerror(errno)), 1;
    printf("wrote %s\n", final);
    return 0;
}

int main(int argc, char **argv) {
    options o;
    if (!parse_args(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    int n = o.n_train + o.n_test;
    double *x = malloc(sizeof *x * (size_t)n), *y = malloc(sizeof *y * (size_t)n), best = 0;
    fit r[MAX_MODELS];
    int rc = 1;
    if (!x || !y) {
        fprintf(stderr, "overfit: out of memory\n");
        goto out;
    }
    // One random process for both sets: the first n_train samples train, the rest test.
    nb_rng rng;
    nb_rng_seed(&rng, o.seed);
    for (int i = 0; i < n; i++) {
        x[i] = X_LIM * (2 * nb_rng_uniform(&rng) - 1);
        y[i] = x[i] * x[i] + o.noise * nb_rng_normal(&rng);
    }
    printf("y = x^2 + N(0, %g^2), x ~ U[-%g, %g]; %d train / %d test points; seed %llu; "
           "%d steps, lr %g\n\n",
           o.noise, X_LIM, X_LIM, o.n_train, o.n_test, (unsigned long long)o.seed, o.steps, o.lr);
    for (int d = 0; d < o.n_deg; d++) {
        if (fit_degree(&o, o.deg[d], x, y, &r[d]))
            goto out;
        if (d == 0 || r[d].test_mse < best)
            best = r[d].test_mse;
    }
    // Verdicts from the numbers alone, against the best test error any model reached (about
    // the noise level): a model that cannot even fit its own training data that well
    // under-fits; one whose test error is far above both its train error and the best has
    // memorised noise, so it over-fits.
    printf("degree   train MSE    test MSE     f(5)  |f(5) - 25|   verdict\n");
    for (int d = 0; d < o.n_deg; d++) {
        fit *f = &r[d];
        f->verdict = f->train_mse > 2 * best                                    ? "under-fits"
                     : f->test_mse > 2 * f->train_mse && f->test_mse > 2 * best ? "over-fits"
                                                                                : "good fit";
        printf("%6d %11.3f %11.3f %8.2f %12.2f   %s\n", o.deg[d], f->train_mse, f->test_mse,
               f->at_new, fabs(f->at_new - X_NEW * X_NEW), f->verdict);
    }
    if (write_csvs(&o, x, y, r))
        goto out;
    printf("\nwrote %s/overfit_points.csv and %s/overfit_curves.csv\n", o.out, o.out);
    if (plot(&o))
        goto out;
    // The story: lower degrees under-fit, degree 2 generalises best, the highest over-fits.
    int two = -1, hi = 0, story = 1;
    for (int d = 0; d < o.n_deg; d++) {
        two = o.deg[d] == 2 ? d : two;
        hi = o.deg[d] > o.deg[hi] ? d : hi;
        story &= o.deg[d] >= 2 || !strcmp(r[d].verdict, "under-fits");
    }
    if (two < 0) {
        printf("story check skipped: degree 2 is not among --degrees\n");
        rc = 0;
        goto out;
    }
    story = story && r[two].test_mse == best && !strcmp(r[two].verdict, "good fit") &&
            (o.deg[hi] == 2 || !strcmp(r[hi].verdict, "over-fits"));
    printf(story ? "story holds: low degree under-fits, degree 2 generalises best, high degree "
                   "over-fits\n"
                 : "story does NOT hold with these settings\n");
    rc = story ? 0 : 3;
out:
    free(x);
    free(y);
    return rc;
}
