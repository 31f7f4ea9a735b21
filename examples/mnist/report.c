// mnist example (and examples/cnn): predictions (the argmax of a row of logits) and the test
// report's confusion matrix, rows the true class, columns the prediction, each row's recall.
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>

#include "mnist.h"

static const char *const fashion_names[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot",
};

// Whether the directory's name says Fashion-MNIST (case-insensitive "fashion" in it).
static bool is_fashion(const char *dir) {
    for (const char *s = dir; *s; s++) {
        const char *w = "fashion";
        size_t k = 0;
        while (w[k] && s[k] && tolower((unsigned char)s[k]) == w[k])
            k++;
        if (!w[k])
            return true;
    }
    return false;
}

void mnist_print_confusion(const int64_t *confusion, int classes, const char *data_dir) {
    bool fashion = classes == 10 && is_fashion(data_dir);
    printf("\nconfusion matrix (rows: true class, columns: predicted)\n%*s", fashion ? 15 : 3, "");
    for (int j = 0; j < classes; j++)
        printf("%6d", j);
    printf("%8s\n", "recall");
    for (int i = 0; i < classes; i++) {
        int64_t row = 0;
        if (fashion)
            printf("%d %-12s", i, fashion_names[i]);
        else
            printf("%d", i);
        printf("  ");
        for (int j = 0; j < classes; j++) {
            printf("%6" PRId64, confusion[i * classes + j]);
            row += confusion[i * classes + j];
        }
        printf("%7.1f%%\n", row ? 100.0 * (double)confusion[i * classes + i] / (double)row : 0.0);
    }
}

int mnist_argmax_row(const nb_tensor *logits, int64_t row) {
    int64_t c = nb_tensor_dim(logits, 1);
    int best = 0;
    double best_v = nb_tensor_get(logits, row * c);
    for (int64_t j = 1; j < c; j++) {
        double v = nb_tensor_get(logits, row * c + j);
        if (v > best_v) {
            best_v = v;
            best = (int)j;
        }
    }
    return best;
}
