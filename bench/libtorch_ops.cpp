// The libtorch (PyTorch's C++ frontend) column of the op families in bench/suite_families.py:
// the workloads of bench/torch_matmul.py, torch_conv.py, torch_layernorm.py, torch_lstm.py,
// torch_attention.py and torch_adam.py, line for line, without Python in the loop. Built by
// bench/CMakeLists.txt only when CMake finds Torch; suite.py runs it when the binary exists.
//
//   libtorch_ops matmul [--reps R]                      (1 and 2 threads inside, as the script)
//   libtorch_ops conv|layernorm|lstm --threads T [--reps R]
//   libtorch_ops attention --threads T [--reps R]       (process CPU time, as the script)
//   libtorch_ops adam [--reps R] [--n N]                (1 and 2 threads inside)
//
// The caller sets OMP_NUM_THREADS and OPENBLAS_NUM_THREADS; torch::set_num_threads is called
// here too. One JSON line per measurement, with "impl": "libtorch" and the fields of the
// matching Python script.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

namespace {

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

double cpu_now() {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct Args {
    std::string cmd;
    long threads = 1, reps = 3, n = 10000000;
};

[[noreturn]] void usage() {
    std::fprintf(stderr, "usage: libtorch_ops matmul|conv|layernorm|lstm|attention|adam "
                         "[--threads T] [--reps R] [--n N]\n");
    std::exit(2);
}

Args parse(int argc, char **argv) {
    Args a;
    if (argc < 2)
        usage();
    a.cmd = argv[1];
    for (int i = 2; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        char *end = nullptr;
        long v = std::strtol(argv[i + 1], &end, 10);
        if (!end || *end || v <= 0)
            usage();
        if (k == "--threads")
            a.threads = v;
        else if (k == "--reps")
            a.reps = v;
        else if (k == "--n")
            a.n = v;
        else
            usage();
    }
    if (argc % 2 != 0)
        usage();
    return a;
}

torch::Tensor uniform(at::IntArrayRef shape) { return torch::rand(shape).mul_(2).sub_(1); }

// Seconds per call of fn: best of reps runs of >= min_s each, after one warm-up run.
template <class F> double best_of(long reps, double min_s, F fn) {
    double best = 1e30;
    for (long r = 0; r <= reps; r++) {
        long it = 0;
        double t0 = now(), t;
        do {
            fn();
            it++;
            t = now() - t0;
        } while (t < min_s);
        if (r > 0)
            best = std::min(best, t / (double)it);
    }
    return best;
}

// torch_matmul.py: 32 products per batch, fwd y = a b, bwd dy bᵀ and aᵀ dy; calls per second
// with the count doubled until a run takes >= 0.05 s; 1 and 2 threads alternate.
void matmul(const Args &a) {
    struct S {
        const char *name;
        long m, k, n;
    } shapes[] = {{"32x(64x64)(64x64)", 64, 64, 64}, {"32x(128x64)(64x128)", 128, 64, 128}};
    torch::manual_seed(1);
    auto rate = [](auto fn) {
        for (long iters = 1;; iters *= 2) {
            double t0 = now();
            for (long i = 0; i < iters; i++)
                fn();
            double dt = now() - t0;
            if (dt >= 0.05)
                return (double)iters / dt;
        }
    };
    for (const S &s : shapes) {
        torch::Tensor x = uniform({32, s.m, s.k}), w = uniform({32, s.k, s.n});
        torch::Tensor gy = uniform({32, s.m, s.n});
        double flops = 2.0 * 32 * (double)(s.m * s.k * s.n);
        for (long rep = -1; rep < a.reps; rep++)
            for (int t = 1; t <= 2; t++) {
                torch::set_num_threads(t);
                double fwd = rate([&] { torch::matmul(x, w); });
                double bwd = rate([&] {
                    torch::matmul(gy, w.transpose(-1, -2));
                    torch::matmul(x.transpose(-1, -2), gy);
                });
                if (rep < 0)
                    continue;
                std::printf("{\"bench\": \"torch_bmm\", \"impl\": \"libtorch\", \"shape\": \"%s\", "
                            "\"dir\": \"fwd\", \"threads\": %d, \"gflops\": %.3f}\n"
                            "{\"bench\": \"torch_bmm\", \"impl\": \"libtorch\", \"shape\": \"%s\", "
                            "\"dir\": \"bwd\", \"threads\": %d, \"gflops\": %.3f}\n",
                            s.name, t, fwd * flops * 1e-9, s.name, t, bwd * 2 * flops * 1e-9);
                std::fflush(stdout);
            }
    }
}

// torch_conv.py: F.conv2d forward + backward, batch 64, padding 1, best of runs >= 0.3 s.
void conv(const Args &a) {
    struct S {
        const char *name;
        long n, c, h, o, k;
        bool xg;
    } shapes[] = {{"conv1 64x1x28x28 -> 32, 3x3", 64, 1, 28, 32, 3, false},
                  {"conv2 64x32x14x14 -> 64, 3x3", 64, 32, 14, 64, 3, true}};
    torch::manual_seed(7);
    for (const S &s : shapes) {
        torch::Tensor x = uniform({s.n, s.c, s.h, s.h}).requires_grad_(s.xg);
        torch::Tensor w = uniform({s.o, s.c, s.k, s.k}).requires_grad_();
        torch::Tensor b = torch::rand({s.o}).requires_grad_();
        torch::Tensor gy = torch::rand({s.n, s.o, s.h, s.h});
        double t = best_of(a.reps, 0.3, [&] {
            torch::Tensor y = torch::conv2d(x, w, b, 1, s.k / 2);
            y.backward(gy);
            w.mutable_grad() = torch::Tensor();
            b.mutable_grad() = torch::Tensor();
            x.mutable_grad() = torch::Tensor();
        });
        std::printf("{\"bench\": \"conv2d fwd+bwd\", \"impl\": \"libtorch\", \"shape\": \"%s\", "
                    "\"threads\": %ld, \"torch_ms\": %.3f}\n",
                    s.name, a.threads, t * 1e3);
        std::fflush(stdout);
    }
}

// torch_layernorm.py: layer_norm over the last axis, affine, forward + backward; 20 n bytes.
void layernorm(const Args &a) {
    const long shapes[][2] = {{2048, 128}, {8192, 1024}};
    torch::manual_seed(7);
    for (const auto &s : shapes) {
        torch::Tensor x = uniform({s[0], s[1]}).requires_grad_();
        torch::Tensor w = uniform({s[1]}).requires_grad_(), b = uniform({s[1]}).requires_grad_();
        torch::Tensor gy = torch::rand({s[0], s[1]});
        double t = best_of(a.reps, 0.2, [&] {
            torch::Tensor y = torch::layer_norm(x, {s[1]}, w, b, 1e-5);
            y.backward(gy);
            x.mutable_grad() = torch::Tensor();
            w.mutable_grad() = torch::Tensor();
            b.mutable_grad() = torch::Tensor();
        });
        std::printf("{\"bench\": \"layer_norm fwd+bwd\", \"impl\": \"libtorch\", \"rows\": %ld, "
                    "\"cols\": %ld, \"threads\": %ld, \"torch_ms\": %.4f, \"torch_gbs\": %.2f}\n",
                    s[0], s[1], a.threads, t * 1e3, 20.0 * (double)(s[0] * s[1]) / t / 1e9);
        std::fflush(stdout);
    }
}

// torch_lstm.py: one nn::LSTM layer over (T, B, F) = (64, 32, F), forward + backward with an
// upstream gradient on every output; x needs its gradient.
void lstm(const Args &a) {
    const long shapes[][4] = {{64, 32, 64, 128}, {64, 32, 128, 256}}; // T, B, F, H
    torch::manual_seed(7);
    for (const auto &s : shapes) {
        torch::nn::LSTM m(torch::nn::LSTMOptions(s[2], s[3]));
        torch::Tensor x = uniform({s[0], s[1], s[2]}).requires_grad_();
        torch::Tensor gy = uniform({s[0], s[1], s[3]});
        double t = best_of(a.reps, 0.3, [&] {
            torch::Tensor y = std::get<0>(m->forward(x));
            y.backward(gy);
            for (auto &p : m->parameters())
                p.mutable_grad() = torch::Tensor();
            x.mutable_grad() = torch::Tensor();
        });
        std::printf("{\"bench\": \"lstm fwd+bwd\", \"impl\": \"libtorch\", \"T\": %ld, \"B\": %ld, "
                    "\"F\": %ld, \"H\": %ld, \"threads\": %ld, \"torch_ms\": %.3f, "
                    "\"tokens_per_s\": %.0f}\n",
                    s[0], s[1], s[2], s[3], a.threads, t * 1e3, (double)(s[0] * s[1]) / t);
        std::fflush(stdout);
    }
}

// torch_attention.py: the math path (no fused kernel in 1.13), causal, (B, H, D) = (32, 4, 32),
// process CPU time, median of reps after 2 warm-ups.
void attention(const Args &a) {
    const long B = 32, H = 4, D = 32;
    torch::manual_seed(1);
    for (long T : {64L, 128L, 256L}) {
        torch::Tensor q = uniform({B, H, T, D}).requires_grad_();
        torch::Tensor k = uniform({B, H, T, D}).requires_grad_();
        torch::Tensor v = uniform({B, H, T, D}).requires_grad_();
        torch::Tensor dy = uniform({B, H, T, D});
        torch::Tensor mask = torch::ones({T, T}, torch::kBool).triu(1);
        std::vector<double> times;
        for (long r = 0; r < a.reps + 2; r++) {
            double t0 = cpu_now();
            torch::Tensor s = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt((double)D);
            torch::Tensor p = s.masked_fill(mask, -INFINITY).softmax(-1);
            (torch::matmul(p, v) * dy).sum().backward();
            q.mutable_grad() = k.mutable_grad() = v.mutable_grad() = torch::Tensor();
            if (r >= 2)
                times.push_back(cpu_now() - t0);
        }
        std::sort(times.begin(), times.end());
        std::printf("{\"bench\": \"torch_attention\", \"impl\": \"libtorch\", \"B\": %ld, "
                    "\"H\": %ld, \"T\": %ld, \"D\": %ld, \"threads\": %ld, "
                    "\"fwd_bwd_cpu_ms\": %.3f}\n",
                    B, H, T, D, a.threads, 1e3 * times[times.size() / 2]);
        std::fflush(stdout);
    }
}

// torch_adam.py: one Adam step (lr 1e-3, defaults) over n float32 parameters in one tensor,
// with a triad a = b + 0.5 c timed right before each step; median of 9 steps per repetition,
// 1 and 2 threads alternating; 28 n bytes for Adam, 12 n for the triad.
void adam(const Args &a) {
    const long n = a.n, steps = 9;
    torch::manual_seed(1);
    torch::Tensor w = uniform({n}).requires_grad_();
    w.mutable_grad() = (torch::rand({n}) - 0.5) * 1e-3;
    torch::optim::Adam opt(std::vector<torch::Tensor>{w}, torch::optim::AdamOptions(1e-3));
    torch::Tensor ta = torch::zeros({n}), tb = torch::ones({n}), tc = torch::full({n}, 2.0);
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    for (long r = 0; r < a.reps; r++)
        for (int t = 1; t <= 2; t++) {
            torch::set_num_threads(t);
            torch::add_out(ta, tb, tc, 0.5);
            opt.step();
            std::vector<double> tt, at;
            for (long s = 0; s < steps; s++) {
                double t0 = now();
                torch::add_out(ta, tb, tc, 0.5);
                double t1 = now();
                opt.step();
                double t2 = now();
                tt.push_back(t1 - t0);
                at.push_back(t2 - t1);
            }
            double tri = median(tt), ad = median(at);
            double ag = 28.0 * (double)n / ad / 1e9, tg = 12.0 * (double)n / tri / 1e9;
            std::printf("{\"bench\": \"torch_adam\", \"impl\": \"libtorch\", \"n\": %ld, "
                        "\"threads\": %d, \"rep\": %ld, \"adam_ms\": %.3f, \"adam_gbs\": %.2f, "
                        "\"triad_gbs\": %.2f, \"ratio\": %.3f}\n",
                        n, t, r, ad * 1e3, ag, tg, ag / tg);
            std::fflush(stdout);
        }
}

} // namespace

int main(int argc, char **argv) {
    Args a = parse(argc, argv);
    torch::set_num_threads((int)a.threads);
    if (a.cmd == "matmul")
        matmul(a);
    else if (a.cmd == "conv")
        conv(a);
    else if (a.cmd == "layernorm")
        layernorm(a);
    else if (a.cmd == "lstm")
        lstm(a);
    else if (a.cmd == "attention")
        attention(a);
    else if (a.cmd == "adam")
        adam(a);
    else
        usage();
    return 0;
}
