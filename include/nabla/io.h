// nabla checkpoints: named tensors saved to and loaded from the safetensors format, the layout
// the Python ecosystem uses (8-byte little-endian header length, JSON header, raw little-endian
// row-major data), so weights move both ways. nabla writes F32, F64, I32 and I64 tensors. Nothing
// here allocates anything the caller must free except an nb_safetensors handle (close it).
// Errors are returned as an nb_status with the file path and cause in nb_last_error.
//
// Integrity: nabla stores in the file's "__metadata__" map, next to any user metadata,
//   "nabla.crc32c.<tensor name>": CRC-32C of the tensor's bytes as stored (8 lowercase hex)
//   "nabla.crc32c.__metadata__":  CRC-32C of the other metadata (pairs sorted by key, each
//                                 key, NUL, value, NUL; "nabla.crc32c.*" keys left out)
// and verifies them on every load: a file with any checksum key must have all of them and
// they must match. Files from other tools have none; they still load (nb_safetensors_checked
// tells the caller, to print a note). Other readers ignore the keys.
//
// Extending a checkpoint (optimizer state, step counts...): save extra tensors under their own
// names (e.g. "optim.fc1.weight.momentum") and strings with nb_save_safetensors_meta; read
// them back through a handle: nb_safetensors_open, _meta, _find, _read, _close. Everything
// saved is covered by the checksums. Keys starting with "nabla." are the library's.
//
// Output paths (here and for any tool using nb_write_file_atomic): the target must be a
// regular file or not exist yet. Directories, FIFOs, devices and sockets are refused (a rename
// would replace the node itself), and so are symbolic links: they are not followed, because
// the rename would replace the link with a file; pass the link's target instead.
#ifndef NABLA_IO_H
#define NABLA_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nabla/base.h"
#include "nabla/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

// ---- atomic output files -----------------------------------------------------------------

// Writes the file's whole content to f; returns false on failure (errno set if known).
// May be called twice for one save (after a failed attempt on a filesystem without
// O_TMPFILE), so it must not consume its input.
typedef bool (*nb_file_writer)(FILE *f, void *ctx);

// Replaces `path` atomically with what write(f, ctx) produces: the content is written to an
// unnamed file in path's directory (O_TMPFILE; elsewhere a fixed temp name
// ".<name>.nabla-tmp" next to it, removed by the next save if a kill -9 left it), fsynced,
// then renamed over `path`, keeping the old file's permission bits. `path` always holds its
// old content or the whole new one; after any failure it is untouched and no temp file is
// left. Not for two threads or processes writing the same path at once.
// Errors: NB_ERR_NULL, NB_ERR_ARG, NB_ERR_NOMEM, NB_ERR_IO (path refused -- see "Output paths"
// above -- or cannot create, write, sync or rename; the message names the file and reason).
nb_status nb_write_file_atomic(const char *path, nb_file_writer write, void *ctx);

// Whether path is acceptable to nb_write_file_atomic / nb_save_safetensors: refused as above,
// or its directory missing or not writable. Creates nothing. A tool calls this before long
// work so a bad path fails at once. NB_OK, or NB_ERR_NULL/ARG/IO/NOMEM with the reason.
nb_status nb_check_output_path(const char *path);

// ---- save ----------------------------------------------------------------------------------

// Write tensors[i] under names[i] (0 <= i < n) to `path` with nb_write_file_atomic. Names must
// be non-empty, valid UTF-8, unique and not "__metadata__".
// Errors: NB_ERR_NULL, NB_ERR_ARG (bad or duplicate name, n < 0), NB_ERR_DTYPE, NB_ERR_NOMEM,
// NB_ERR_IO (as nb_write_file_atomic).
nb_status nb_save_safetensors(const char *path, const char *const *names, nb_tensor *const *tensors,
                              int n);

// The same plus n_meta string pairs in "__metadata__" (keys non-empty, unique, valid UTF-8, not
// starting with "nabla."; values valid UTF-8).
nb_status nb_save_safetensors_meta(const char *path, const char *const *names,
                                   nb_tensor *const *tensors, int n, const char *const *meta_keys,
                                   const char *const *meta_values, int n_meta);

// ---- load ----------------------------------------------------------------------------------

// Flags for nb_safetensors_read.
#define NB_LOAD_ALLOW_NONFINITE 1u // accept NaN/Inf in F32/F64 tensors (refused by default)

// An open checkpoint: the header parsed and validated once (every entry, loaded or not, must
// be consistent with the file: strict UTF-8, known dtypes, offsets tiling the data buffer
// without overlap or gap as the reference implementation requires, checksum keys complete).
typedef struct nb_safetensors nb_safetensors;

// Errors: NB_ERR_NULL, NB_ERR_ARG, NB_ERR_IO (open/read, not a regular file), NB_ERR_FORMAT
// (truncated or corrupt header), NB_ERR_NOMEM. Memory: at most ~2.5x the header size.
nb_status nb_safetensors_open(const char *path, nb_safetensors **out);
void nb_safetensors_close(nb_safetensors *f); // NULL is fine

// Whether the file carries nabla's checksums (false: another tool wrote it; loads are then
// unverified and a tool should say so).
bool nb_safetensors_checked(const nb_safetensors *f);
// The metadata value for key, or NULL; valid until close.
const char *nb_safetensors_meta(const nb_safetensors *f, const char *key);
// Whether the file holds tensor `name`; if so and the pointers are not NULL, its dtype (an
// nb_dtype, or -1 for a format dtype nabla does not have, e.g. BF16), rank and shape
// (shape must have room for NB_MAX_DIMS; ranks above that report ndim only).
bool nb_safetensors_find(const nb_safetensors *f, const char *name, int *dtype, int *ndim,
                         int64_t *shape);

// Number of tensors in the file, and the name of tensor i (0 <= i < count, in strcmp order;
// NULL out of range), valid until close.
int nb_safetensors_count(const nb_safetensors *f);
const char *nb_safetensors_name(const nb_safetensors *f, int i);

// Copy the file's tensor names[i] into tensors[i] (0 <= i < n), bit for bit. Each name must be
// in the file with exactly the tensor's dtype and shape; other tensors in the file are ignored.
// All or nothing: the requested bytes are staged in memory, their checksums verified and (unless
// NB_LOAD_ALLOW_NONFINITE) every F32/F64 value checked finite before any tensor is written.
// Errors: NB_ERR_NULL, NB_ERR_ARG, NB_ERR_IO (read), NB_ERR_FORMAT (a requested name missing,
// a checksum mismatch, the file changed underneath), NB_ERR_DTYPE and NB_ERR_SHAPE
// ("ckpt.safetensors: 'fc1.weight' has shape (128, 784), model expects (256, 784)"),
// NB_ERR_NONFINITE (names the tensor and element), NB_ERR_NOMEM.
nb_status nb_safetensors_read(nb_safetensors *f, const char *const *names,
                              nb_tensor *const *tensors, int n, unsigned flags);

// open + read (flags 0) + close.
nb_status nb_load_safetensors(const char *path, const char *const *names, nb_tensor *const *tensors,
                              int n);

#ifdef __cplusplus
}
#endif
#endif
