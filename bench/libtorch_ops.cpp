// The libtorch (PyTorch's C++ frontend) column of the op families in bench/suite_families.py:
// the workloads of bench/torch_matmul.py, torch_conv.py, torch_layernorm.py, torch_lstm.py,
// torch_attention.py, torch_charlm.py and torch_adam.py, line for line, without Python in the
// loop. Built by bench/CMakeLists.txt only when CMake finds Torch; suite.py runs it when the
// binary exists.
//
//   libtorch_ops matmul [--reps R]                      (1 and 2 threads inside, as the script)
//   libtorch_ops conv|layernorm|lstm --threads T [--reps R]
//   libtorch_ops attention --threads T [--reps R]       (process CPU time, as the script)
//   libtorch_ops charlm --threads T [--steps S]         (the transformer's training step)
//   libtorch_ops adam [--reps R] [--n N]                (1 and 2 threads inside)
//
// The caller sets OMP_NUM_THREADS and OPENBLAS_NUM_THREADS; torch::set_num_threads is called
// here too. One JSON line per measurement, with "impl": "libtorch" and the fields of the
// matching Python script.
#include <torch/torch.h>

#include <dirent.h>
#include <sys/resource.h>

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
    long threads = 1, reps = 3, n = 10000000, steps = 30;
};

[[noreturn]] void usage() {
    std::fprintf(stderr, "usage: libtorch_ops matmul|conv|layernorm|lstm|attention|charlm|adam "
                         "[--threads T] [--reps R] [--n N] [--steps S]\n");
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
        else if (k == "--steps")
            a.steps = v;
        else
            usage();
    }
    if (argc % 2 != 0)
        usage();
    return a;
}

torch::Tensor uniform(at::IntArrayRef shape) {
    return torch::rand(shape).mul_(2).sub_(1);
}

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

// torch_charlm.py's model: token + position embedding, 2 pre-norm blocks of 4-head causal
// nn::MultiheadAttention + GELU MLP with residuals, final LayerNorm, linear head; width 128.
// The C++ MultiheadAttention has no batch_first: it takes (T, B, E), so the block transposes in
// and out as Python's batch_first=True does inside nn.MultiheadAttention. It adds attn_mask to
// the scores (a bool mask would add 0/1), so the causal mask is float: -inf above the diagonal,
// which is what Python turns its bool triu(1) mask into.
struct BlockImpl : torch::nn::Module {
    torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
    torch::nn::MultiheadAttention attn{nullptr};
    torch::nn::Sequential mlp{nullptr};
    BlockImpl(long e, long h) {
        ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({e})));
        attn = register_module("attn", torch::nn::MultiheadAttention(e, h));
        ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({e})));
        mlp = register_module("mlp",
                              torch::nn::Sequential(torch::nn::Linear(e, 4 * e), torch::nn::GELU(),
                                                    torch::nn::Linear(4 * e, e)));
    }
    // x (B, T, E), mask (T, T) -> (B, T, E)
    torch::Tensor forward(torch::Tensor x, const torch::Tensor &mask) {
        torch::Tensor a = ln1(x).transpose(0, 1);
        auto [y, unused] = attn->forward(a, a, a, {}, /*need_weights=*/false, mask);
        (void)unused;
        x = x + y.transpose(0, 1);
        return x + mlp->forward(ln2(x));
    }
};
TORCH_MODULE(Block);

struct CharLMImpl : torch::nn::Module {
    torch::nn::Embedding tok_emb{nullptr}, pos_emb{nullptr};
    torch::nn::ModuleList blocks{nullptr}; // names blocks.0.attn.in_proj_weight, ... as in Python
    torch::nn::LayerNorm ln_f{nullptr};
    torch::nn::Linear head{nullptr};
    CharLMImpl(long v, long t, long e, long h, long layers) {
        tok_emb = register_module("tok_emb", torch::nn::Embedding(v, e));
        pos_emb = register_module("pos_emb", torch::nn::Embedding(t, e));
        blocks = register_module("blocks", torch::nn::ModuleList());
        for (long i = 0; i < layers; i++)
            blocks->push_back(Block(e, h));
        ln_f = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({e})));
        head = register_module("head", torch::nn::Linear(e, v));
    }
    // ids (B, T) int64 -> logits (B, T, V)
    torch::Tensor forward(const torch::Tensor &ids) {
        long t = ids.size(1);
        torch::Tensor x = tok_emb(ids) + pos_emb->weight.slice(0, 0, t);
        torch::Tensor mask = torch::full({t, t}, -INFINITY).triu(1);
        for (const auto &b : *blocks)
            x = b->as<BlockImpl>()->forward(x, mask);
        return head(ln_f(x));
    }
};
TORCH_MODULE(CharLM);

// Tasks (threads) of this process now: what the thread settings really gave.
int os_threads() {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    for (dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

double tv_s(timeval t) {
    return (double)t.tv_sec + 1e-6 * (double)t.tv_usec;
}

// torch_charlm.py's step: forward, cross-entropy, zero_grad, backward, AdamW (lr 3e-3, weight
// decay 0.01 on the parameters with >= 2 dims, 0 on the rest) on fresh random ids and targets;
// WARMUP untimed steps (bench_charlm.c's protocol), then medians of process CPU time and wall
// time over --steps steps, and bench_charlm.c's os_threads, cores_used, minflt_per_step,
// sys_ms_per_step and best_step_{cpu,wall}_ms.
void charlm(const Args &a) {
    const long WARMUP = 5;
    const long B = 32, T = 64, V = 113;
    torch::manual_seed(1);
    CharLM m(V, T, 128, 4, 2);
    std::vector<torch::Tensor> decay, no_decay;
    long params = 0;
    for (const torch::Tensor &p : m->parameters()) {
        if (!p.defined())
            continue; // MultiheadAttention registers its unused separate q/k/v weights empty
        (p.dim() >= 2 ? decay : no_decay).push_back(p);
        params += p.numel();
    }
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                   torch::optim::AdamWOptions(3e-3).weight_decay(0.01)));
    groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                      torch::optim::AdamWOptions(3e-3).weight_decay(0.0)));
    torch::optim::AdamW opt(std::move(groups), torch::optim::AdamWOptions(3e-3));
    std::vector<double> cpu, wall;
    double cpu_sum = 0, wall_sum = 0, sys_sum = 0;
    long minflt = 0;
    for (long s = 0; s < WARMUP + a.steps; s++) {
        torch::Tensor x = torch::randint(0, V, {B, T}), y = torch::randint(0, V, {B, T});
        rusage r0, r1;
        getrusage(RUSAGE_SELF, &r0);
        double c0 = cpu_now(), w0 = now();
        torch::Tensor loss = torch::nn::functional::cross_entropy(m->forward(x).reshape({B * T, V}),
                                                                  y.reshape({B * T}));
        opt.zero_grad();
        loss.backward();
        opt.step();
        if (s >= WARMUP) {
            cpu.push_back(cpu_now() - c0);
            wall.push_back(now() - w0);
            getrusage(RUSAGE_SELF, &r1);
            cpu_sum += cpu.back(), wall_sum += wall.back();
            sys_sum += tv_s(r1.ru_stime) - tv_s(r0.ru_stime);
            minflt += r1.ru_minflt - r0.ru_minflt;
        }
    }
    int nthreads = os_threads();
    std::sort(cpu.begin(), cpu.end());
    std::sort(wall.begin(), wall.end());
    double c = cpu[cpu.size() / 2], w = wall[wall.size() / 2];
    rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    std::printf("{\"bench\": \"torch_charlm_step\", \"impl\": \"libtorch\", \"threads\": %ld, "
                "\"params\": %ld, \"step_cpu_ms\": %.2f, \"tok_per_cpu_s\": %.0f, "
                "\"step_wall_ms\": %.2f, \"tok_per_s\": %.0f, \"peak_rss_mib\": %.1f, "
                "\"os_threads\": %d, \"cores_used\": %.2f, \"minflt_per_step\": %.0f, "
                "\"sys_ms_per_step\": %.2f, \"warmup\": %ld, \"best_step_cpu_ms\": %.2f, "
                "\"best_step_wall_ms\": %.2f}\n",
                a.threads, params, 1e3 * c, (double)(B * T) / c, 1e3 * w, (double)(B * T) / w,
                (double)ru.ru_maxrss / 1024.0, nthreads, cpu_sum / wall_sum,
                (double)minflt / (double)a.steps, 1e3 * sys_sum / (double)a.steps, WARMUP,
                1e3 * cpu[0], 1e3 * wall[0]);
    std::fflush(stdout);
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
    else if (a.cmd == "charlm")
        charlm(a);
    else if (a.cmd == "adam")
        adam(a);
    else
        usage();
    return 0;
}
