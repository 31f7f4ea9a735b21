// nabla checkpoints: named tensors saved to and loaded from the safetensors format, the layout
// the Python ecosystem uses (8-byte little-endian header length, JSON header, raw little-endian
// row-major data), so weights move both ways. nabla writes F32, F64 and I32 tensors. Nothing
// here allocates anything the caller must free: save reads the caller's tensors and load copies
// into them. Errors are returned as an nb_status with the file path and cause in nb_last_error.
#ifndef NABLA_IO_H
#define NABLA_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nabla/base.h"
#include "nabla/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

// Write tensors[i] under names[i] (0 <= i < n) to `path`. Names must be non-empty, valid UTF-8,
// unique and not "__metadata__". Atomic: the data goes to "<path>.tmp.<pid>", is fsynced, then
// renamed over `path`, so `path` always holds either its old content or the whole new file; on
// any failure the temp file is removed and `path` is untouched. Not safe for two threads of one
// process saving to the same path at once (they share the temp name).
// Errors: NB_ERR_NULL, NB_ERR_ARG (bad or duplicate name, n < 0), NB_ERR_DTYPE, NB_ERR_NOMEM,
// NB_ERR_IO (cannot create, write, sync or rename; the message names the file and OS reason).
nb_status nb_save_safetensors(const char *path, const char *const *names, nb_tensor *const *tensors,
                              int n);

// Copy the file's tensor names[i] into tensors[i] (0 <= i < n), bit for bit. Each name must be
// in the file with exactly the tensor's dtype and shape. The file may hold more tensors than
// requested (load a sub-model, or a file with extra buffers in other safetensors dtypes); those
// are ignored but still validated, so a corrupt file is always rejected. All or nothing: tensors
// are written only after the whole request validated and was read (this stages the requested
// bytes once in memory).
// Errors: NB_ERR_NULL, NB_ERR_ARG, NB_ERR_IO (open/read), NB_ERR_FORMAT (truncated or corrupt
// file, or a requested name missing), NB_ERR_DTYPE and NB_ERR_SHAPE ("ckpt.safetensors:
// 'fc1.weight' has shape (128, 784), model expects (256, 784)"), NB_ERR_NOMEM.
nb_status nb_load_safetensors(const char *path, const char *const *names, nb_tensor *const *tensors,
                              int n);

#ifdef __cplusplus
}
#endif
#endif
