// The libtorch (PyTorch's C++ frontend, Debian libtorch-dev) side of the nabla benchmarks: the
// same MLP and per-op workloads as bench/torch_bench.py and the CNN step of bench/torch_cnn.py,
// without Python in the loop. This is a
// C/C++ user's real alternative to nabla. Built by bench/CMakeLists.txt only when CMake finds
// Torch; bench/suite.py runs it when the binary exists.
//
//   libtorch_bench mlp --hidden 512,512 --batch 64 --threads 1 [--warmup N] [--samples N]
//                      [--data DIR]
//   libtorch_bench overhead [--iters N] [--reps R]
//   libtorch_bench cnn --threads 1 [--batch 64] [--steps S] [--reps R]
//
// The caller sets OMP_NUM_THREADS and OPENBLAS_NUM_THREADS (Debian's torch sends Linear to the
// system OpenBLAS); this program also calls torch::set_num_threads. One JSON line per
// measurement, with "impl": "libtorch", in the fields torch_bench.py prints.
#include <torch/torch.h>

#include <sys/resource.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <numeric>
#include <random>
#include <sstream>
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

double max_rss_mib() {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

// The bytes of an IDX file (gzip or plain: gzread reads both) after its header.
std::vector<uint8_t> load_idx(const std::string &dir, const std::string &stem, size_t header) {
    std::string path = dir + "/" + stem + ".gz";
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f)
        f = gzopen((dir + "/" + stem).c_str(), "rb");
    if (!f) {
        std::fprintf(stderr, "libtorch_bench: cannot open %s(.gz) in %s\n", stem.c_str(),
                     dir.c_str());
        std::exit(1);
    }
    std::vector<uint8_t> out;
    uint8_t buf[1 << 16];
    int n;
    while ((n = gzread(f, buf, sizeof buf)) > 0)
        out.insert(out.end(), buf, buf + n);
    gzclose(f);
    if (out.size() < header) {
        std::fprintf(stderr, "libtorch_bench: %s is truncated\n", stem.c_str());
        std::exit(1);
    }
    out.erase(out.begin(), out.begin() + (long)header);
    return out;
}

struct Args {
    std::string cmd, hidden = "512,512", data = "/usr/share/datasets/fashion-mnist";
    long batch = 64, threads = 1, warmup = 50, samples = 60000, iters = 20000, reps = 3, steps = 40;
};

Args parse(int argc, char **argv) {
    Args a;
    if (argc < 2) {
        std::fprintf(stderr, "usage: libtorch_bench mlp|overhead|cnn [--option value ...]\n");
        std::exit(2);
    }
    a.cmd = argv[1];
    for (int i = 2; i + 1 < argc; i += 2) {
        std::string k = argv[i], v = argv[i + 1];
        char *end = nullptr;
        long n = std::strtol(v.c_str(), &end, 10);
        bool num = end && *end == 0 && n > 0;
        if (k == "--hidden")
            a.hidden = v;
        else if (k == "--data")
            a.data = v;
        else if (num && k == "--batch")
            a.batch = n;
        else if (num && k == "--threads")
            a.threads = n;
        else if (num && k == "--warmup")
            a.warmup = n;
        else if (num && k == "--samples")
            a.samples = n;
        else if (num && k == "--iters")
            a.iters = n;
        else if (num && k == "--reps")
            a.reps = n;
        else if (num && k == "--steps")
            a.steps = n;
        else {
            std::fprintf(stderr, "libtorch_bench: bad option %s %s\n", k.c_str(), v.c_str());
            std::exit(2);
        }
    }
    if (a.cmd != "mlp" && a.cmd != "overhead" && a.cmd != "cnn") {
        std::fprintf(stderr, "libtorch_bench: unknown command %s\n", a.cmd.c_str());
        std::exit(2);
    }
    return a;
}

// 784-h...-10, ReLU between layers, softmax cross-entropy from logits, SGD lr 0.01, float32;
// uint8 images gathered and converted per shuffled batch; the short last batch is skipped.
void bench_mlp(const Args &a) {
    torch::set_num_threads((int)a.threads);
    torch::manual_seed(42);
    std::vector<uint8_t> img = load_idx(a.data, "train-images-idx3-ubyte", 16);
    std::vector<uint8_t> lab = load_idx(a.data, "train-labels-idx1-ubyte", 8);
    const long n = (long)lab.size();
    torch::Tensor images = torch::from_blob(img.data(), {n, 784}, torch::kUInt8);
    torch::Tensor labels = torch::from_blob(lab.data(), {n}, torch::kUInt8).to(torch::kLong);

    std::vector<long> dims{784};
    std::stringstream hs(a.hidden);
    for (std::string h; std::getline(hs, h, ',');)
        dims.push_back(std::atol(h.c_str()));
    dims.push_back(10);
    torch::nn::Sequential model;
    for (size_t i = 0; i + 1 < dims.size(); i++) {
        model->push_back(torch::nn::Linear(dims[i], dims[i + 1]));
        if (i + 2 < dims.size())
            model->push_back(torch::nn::ReLU());
    }
    torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.01));

    std::mt19937_64 rng(7);
    std::vector<long> order((size_t)n);
    std::iota(order.begin(), order.end(), 0L);
    long pos = n; // start a new epoch at the first step
    torch::Tensor loss;
    auto step = [&]() {
        if (pos + a.batch > n) {
            std::shuffle(order.begin(), order.end(), rng);
            pos = 0;
        }
        torch::Tensor idx = torch::from_blob(order.data() + pos, {a.batch}, torch::kLong);
        pos += a.batch;
        torch::Tensor x = images.index_select(0, idx).to(torch::kFloat).div_(255.0);
        torch::Tensor y = labels.index_select(0, idx);
        for (auto &p : model->parameters()) // zero_grad(set_to_none=True), as torch_bench.py
            p.mutable_grad() = torch::Tensor();
        loss = torch::nn::functional::cross_entropy(model->forward(x), y);
        loss.backward();
        opt.step();
    };
    for (long i = 0; i < a.warmup; i++)
        step();
    long steps = (a.samples + a.batch - 1) / a.batch;
    double t0 = now();
    for (long i = 0; i < steps; i++)
        step();
    double dt = now() - t0;
    long done = steps * a.batch;
    std::printf("{\"bench\": \"mlp\", \"impl\": \"libtorch\", \"hidden\": \"%s\", \"batch\": %ld, "
                "\"threads\": %ld, \"samples\": %ld, \"samples_per_s\": %.1f, "
                "\"max_rss_mib\": %.1f, \"loss\": %.4f}\n",
                a.hidden.c_str(), a.batch, a.threads, done, done / dt, max_rss_mib(),
                loss.item<float>());
}

// y = relu(x·w + b) on 1-element tensors, forward + backward; gradients accumulate.
void bench_overhead(const Args &a) {
    torch::set_num_threads(1);
    auto opt = torch::TensorOptions().requires_grad(true);
    torch::Tensor x = torch::full({1, 1}, 0.5, opt), w = torch::full({1, 1}, 0.75, opt),
                  b = torch::full({1}, 0.25, opt);
    // As bench_overhead.c: 20 chunks by process CPU time, the fastest chunk's time per
    // iteration; also the whole run's CPU and wall time per iteration.
    struct timing {
        double best, cpu, wall;
    };
    auto run = [&](long iters) {
        const long per = std::max(1L, iters / 20);
        timing t{1e30, 0, 0};
        double w0 = now(), c0 = cpu_now();
        for (long done = 0; done < iters;) {
            long n = iters - done < 2 * per ? iters - done : per;
            double cc = cpu_now();
            for (long i = 0; i < n; i++) {
                torch::Tensor y = torch::relu(x.mm(w) + b);
                y.backward();
            }
            t.best = std::min(t.best, (cpu_now() - cc) / (double)n);
            done += n;
        }
        t.cpu = (cpu_now() - c0) / (double)iters;
        t.wall = (now() - w0) / (double)iters;
        return t;
    };
    run(a.iters / 10 + 1);
    for (long r = 0; r < a.reps; r++) {
        timing t = run(a.iters);
        std::printf("{\"bench\": \"overhead\", \"impl\": \"libtorch\", \"iters\": %ld, "
                    "\"us_per_iter\": %.4f, \"cpu_us_per_iter\": %.4f, "
                    "\"wall_us_per_iter\": %.4f}\n",
                    a.iters, t.best * 1e6, t.cpu * 1e6, t.wall * 1e6);
        std::fflush(stdout);
    }
}

// examples/cnn's default model, as bench/torch_cnn.py (and bench_cnn): conv(1->32, 3x3, pad 1)
// BatchNorm2d ReLU MaxPool(2), conv(32->64) BatchNorm2d ReLU MaxPool(2), Flatten Dropout(0.25)
// Linear(3136->128) ReLU Dropout(0.25) Linear(128->10), cross-entropy, backward, Adam(lr 1e-3),
// gradients set to none, on one batch of random images and labels made once; the best of R
// runs of S steps after one warm-up run.
void bench_cnn(const Args &a) {
    namespace nn = torch::nn;
    torch::set_num_threads((int)a.threads);
    torch::manual_seed(7);
    nn::Sequential m(nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)), nn::BatchNorm2d(32),
                     nn::ReLU(), nn::MaxPool2d(2),
                     nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)), nn::BatchNorm2d(64),
                     nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(), nn::Dropout(0.25),
                     nn::Linear(64 * 49, 128), nn::ReLU(), nn::Dropout(0.25), nn::Linear(128, 10));
    m->train();
    torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(1e-3));
    torch::Tensor x = torch::rand({a.batch, 1, 28, 28});
    torch::Tensor y = torch::randint(0, 10, {a.batch}, torch::kLong);
    double best = 1e30;
    torch::Tensor loss;
    for (long r = 0; r <= a.reps; r++) { // rep 0 warms up
        double t0 = now();
        for (long i = 0; i < a.steps; i++) {
            for (auto &p : m->parameters()) // zero_grad(set_to_none=True)
                p.mutable_grad() = torch::Tensor();
            loss = torch::nn::functional::cross_entropy(m->forward(x), y);
            loss.backward();
            opt.step();
        }
        double t = (now() - t0) / (double)a.steps;
        if (r > 0)
            best = std::min(best, t);
    }
    std::printf("{\"bench\": \"cnn step\", \"impl\": \"libtorch\", \"batch\": %ld, \"threads\": "
                "%ld, \"libtorch_step_ms\": %.3f, \"libtorch_samples_per_s\": %.0f, "
                "\"loss\": %.4f}\n",
                a.batch, a.threads, best * 1e3, (double)a.batch / best, loss.item<float>());
}

} // namespace

int main(int argc, char **argv) {
    Args a = parse(argc, argv);
    if (a.cmd == "mlp")
        bench_mlp(a);
    else if (a.cmd == "cnn")
        bench_cnn(a);
    else
        bench_overhead(a);
    return 0;
}
