// charlm's closing sample (train.h): top-k sampling at a temperature, seeded.
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charlm/train.h"

// Samples n characters after the prompt: softmax(logits / temperature) over the k likeliest.
int charlm_sample(charlm_run *r) {
    const charlm_opts *o = &r->o;
    int64_t cap = (int64_t)strlen(o->prompt) + o->sample + 1;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    double *p = malloc((size_t)r->txt.vocab.size * sizeof *p);
    char *buf = malloc((size_t)cap * 4 + 1);
    if (!ids || !p || !buf)
        return free(ids), free(p), free(buf), 1;
    int64_t n = nb_vocab_encode(&r->txt.vocab, o->prompt, strlen(o->prompt), ids, cap);
    if (n < 0) {
        fprintf(stderr, "charlm: --prompt: %s\n", nb_last_error());
        return free(ids), free(p), free(buf), 1;
    }
    if (n == 0)
        ids[n++] = 0;
    nb_rng rng;
    nb_rng_seed(&rng, o->seed + 1000);
    nb_layer_train(r->model, false);
    int64_t V = r->txt.vocab.size, start = n;
    for (int s = 0; s < o->sample; s++) {
        int64_t t = n < o->context ? n : o->context;
        nb_graph_reset(r->g);
        nb_graph_set_grad_enabled(r->g, false);
        nb_tensor *x = nb_tensor_wrap(NB_I32, 2, (int64_t[]){1, t}, ids + n - t);
        nb_tensor *logits = nb_layer_forward(r->g, r->model, x);
        if (!logits) {
            fprintf(stderr, "charlm: sampling: %s\n", nb_graph_error(r->g));
            nb_tensor_destroy(x);
            return free(ids), free(p), free(buf), 1;
        }
        const float *lr = nb_tensor_data_f32(logits) + (t - 1) * V;
        // keep the top k: the k-th largest logit is the threshold
        double thr = -(double)INFINITY;
        if (o->top_k > 0 && o->top_k < V) {
            for (int64_t i = 0; i < V; i++)
                p[i] = lr[i];
            for (int k = 0; k < o->top_k; k++) { // partial selection, V is small
                int64_t best = -1;
                for (int64_t i = 0; i < V; i++)
                    if (p[i] != -(double)INFINITY && (best < 0 || p[i] > p[best]))
                        best = i;
                thr = p[best];
                p[best] = -(double)INFINITY;
            }
        }
        double mx = -(double)INFINITY, sum = 0;
        for (int64_t i = 0; i < V; i++)
            if ((double)lr[i] >= thr && (double)lr[i] > mx)
                mx = (double)lr[i];
        for (int64_t i = 0; i < V; i++) {
            p[i] = (double)lr[i] >= thr ? exp(((double)lr[i] - mx) / o->temperature) : 0.0;
            sum += p[i];
        }
        double u = nb_rng_uniform(&rng) * sum, c = 0;
        int64_t pick = V - 1;
        for (int64_t i = 0; i < V; i++) {
            c += p[i];
            if (u < c && p[i] > 0) {
                pick = i;
                break;
            }
        }
        ids[n++] = (int32_t)pick;
        nb_tensor_destroy(x);
    }
    nb_vocab_decode(&r->txt.vocab, ids, n, buf, (size_t)cap * 4 + 1);
    (void)start;
    printf("--- sample (temperature %.2f, top-k %d, seed %" PRIu64 ") ---\n%s\n---\n",
           o->temperature, o->top_k, o->seed, buf);
    free(ids), free(p), free(buf);
    return 0;
}
