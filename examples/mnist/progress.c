// mnist example: the training progress bar on stderr. On a terminal one line is redrawn with
// \r (at most 10 times a second, so drawing costs nothing measurable); otherwise (a pipe, a CI
// log) a plain line is written at every tenth of an epoch.
#define _POSIX_C_SOURCE 200809L // clock_gettime, isatty, fileno

#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "mnist.h"

#define BAR_WIDTH 24
#define REDRAW_SECONDS 0.1

double mnist_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void mnist_progress_init(mnist_progress *p, int epochs, int64_t n_batches) {
    p->tty = isatty(fileno(stderr)) == 1;
    p->epochs = epochs;
    p->n_batches = n_batches;
    p->run_start = mnist_now();
    p->run_batches = 0;
    p->epoch = 0;
    p->quiet = false;
}

void mnist_progress_epoch(mnist_progress *p, int epoch) {
    if (p->epoch > 0)
        p->run_batches += p->n_batches;
    p->epoch = epoch;
    p->epoch_start = mnist_now();
    p->last_draw = 0;
    p->next_tenth = 1;
}

// "m:ss" (or "h:mm:ss") into buf.
static const char *clock_str(double s, char *buf, size_t size) {
    long t = s > 0 && s < 1e8 ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
    return buf;
}

void mnist_progress_update(mnist_progress *p, int64_t done, int64_t samples, double loss) {
    if (p->quiet)
        return;
    double now = mnist_now();
    bool last = done == p->n_batches;
    if (p->tty ? (!last && now - p->last_draw < REDRAW_SECONDS)
               : done * 10 < p->next_tenth * p->n_batches)
        return;
    p->last_draw = now;
    while (!p->tty && done * 10 >= p->next_tenth * p->n_batches)
        p->next_tenth++;
    double epoch_s = now - p->epoch_start;
    double rate = epoch_s > 0 ? (double)samples / epoch_s : 0; // samples/s
    int64_t run_done = p->run_batches + done;
    int64_t run_left = (int64_t)p->epochs * p->n_batches - run_done;
    double eta = run_done > 0 ? (now - p->run_start) / (double)run_done * (double)run_left : 0;
    char eta_buf[32];
    clock_str(eta, eta_buf, sizeof eta_buf);
    if (p->tty) {
        char bar[BAR_WIDTH + 1];
        int64_t fill = done * BAR_WIDTH / p->n_batches;
        for (int i = 0; i < BAR_WIDTH; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[BAR_WIDTH] = '\0';
        // \033[K clears what a longer previous line left behind.
        fprintf(stderr,
                "\repoch %d/%d [%s] %" PRId64 "/%" PRId64 "  %.0f samples/s  loss %.4f"
                "  ETA %s\033[K",
                p->epoch, p->epochs, bar, done, p->n_batches, rate, loss, eta_buf);
    } else {
        fprintf(stderr,
                "epoch %d/%d  %" PRId64 "/%" PRId64 " batches  %.0f samples/s  loss %.4f"
                "  ETA %s\n",
                p->epoch, p->epochs, done, p->n_batches, rate, loss, eta_buf);
    }
    fflush(stderr);
}

void mnist_progress_finish(mnist_progress *p) {
    if (p->tty && !p->quiet) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
}
