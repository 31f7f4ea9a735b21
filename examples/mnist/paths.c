// mnist example: the output files (--save, --csv, --dot) are checked before any work, so that a run
// can never destroy data: an output may not be a dataset file or another input, nor a
// directory, FIFO, device or symbolic link (nb_check_output_path; links are refused, not
// followed), and an existing file is only replaced when the user asked for it (--overwrite, or
// --load of the same checkpoint to continue training it).
#define _XOPEN_SOURCE 700 // realpath

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mnist.h"

const char *mnist_program = "mnist";

// Whether a and b name the same file: same inode when both exist, else the same name in the
// same (resolved) directory.
static bool same_file(const char *a, const char *b) {
    struct stat sa, sb;
    bool ea = stat(a, &sa) == 0, eb = stat(b, &sb) == 0;
    if (ea || eb)
        return ea && eb && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char da[PATH_MAX], db[PATH_MAX], ra[PATH_MAX], rb[PATH_MAX];
    const char *ba = strrchr(a, '/'), *bb = strrchr(b, '/');
    snprintf(da, sizeof da, "%.*s", ba ? (int)(ba - a + 1) : 1, ba ? a : ".");
    snprintf(db, sizeof db, "%.*s", bb ? (int)(bb - b + 1) : 1, bb ? b : ".");
    return realpath(da, ra) && realpath(db, rb) && !strcmp(ra, rb) &&
           !strcmp(ba ? ba + 1 : a, bb ? bb + 1 : b);
}

// The dataset file of --data that `out` is, or NULL.
static const char *dataset_file(const mnist_options *o, const char *out, char *buf, size_t size) {
    static const char *const files[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    for (int k = 0; k < 8; k++) {
        snprintf(buf, size, "%s/%s%s", o->data_dir, files[k / 2], k % 2 ? ".gz" : "");
        struct stat sb;
        if (stat(buf, &sb) == 0 && same_file(buf, out))
            return buf;
    }
    return NULL;
}

static int refuse(const char *flag, const char *path, const char *why) {
    fprintf(stderr, "%s: %s %s: %s\n", mnist_program, flag, path, why);
    return 1;
}

static int check_one(const mnist_options *o, const char *flag, const char *out) {
    if (nb_check_output_path(out) != NB_OK) {
        const char *msg = nb_last_error();
        const char *colon = strstr(msg, ": ");
        fprintf(stderr, "%s: %s: %s\n", mnist_program, flag, colon ? colon + 2 : msg);
        return 1;
    }
    char buf[PATH_MAX + 64];
    const char *data = dataset_file(o, out, buf, sizeof buf);
    if (data) {
        fprintf(stderr, "%s: %s %s is the dataset file %s; refusing to overwrite input data\n",
                mnist_program, flag, out, data);
        return 1;
    }
    bool is_save = out == o->save;
    if (o->load && same_file(out, o->load) && !is_save)
        return refuse(flag, out, "is the --load checkpoint; refusing to overwrite it with metrics");
    if (o->resume && same_file(out, o->resume) && !is_save)
        return refuse(flag, out,
                      "is the --resume checkpoint; refusing to overwrite it with metrics");
    struct stat sb;
    bool resume = is_save && ((o->load && same_file(out, o->load)) ||
                              (o->resume && same_file(out, o->resume)));
    if (stat(out, &sb) == 0 && !o->overwrite && !resume) {
        fprintf(stderr,
                "%s: %s %s already exists and this run would replace it; pass --overwrite "
                "to allow that%s\n",
                mnist_program, flag, out,
                is_save ? " (or --load it to continue training it; either way it is only "
                          "written after the first finished epoch)"
                        : "");
        return 1;
    }
    return 0;
}

int mnist_check_outputs(const mnist_options *o) {
    if (o->save && o->csv && same_file(o->save, o->csv))
        return refuse("--csv", o->csv, "is also the --save checkpoint");
    if (o->save && check_one(o, "--save", o->save))
        return 1;
    if (o->csv && check_one(o, "--csv", o->csv))
        return 1;
    if (o->dot) {
        if ((o->save && same_file(o->dot, o->save)) || (o->csv && same_file(o->dot, o->csv)))
            return refuse("--dot", o->dot, "is also the --save or --csv output");
        if (check_one(o, "--dot", o->dot))
            return 1;
    }
    return 0;
}

bool mnist_file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 || errno != ENOENT;
}
