// Library-private parts shared by the safetensors writer (safetensors.c) and reader
// (safetensors_load.c). The format itself is described at the top of safetensors.c.
#ifndef NABLA_IO_SAFETENSORS_IMPL_H
#define NABLA_IO_SAFETENSORS_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "nabla/tensor.h"

// The reference implementation's header limit; it also caps what a lying header can make a
// reader allocate.
#define NB_ST_MAX_HEADER 100000000u

// The format's name for a nabla dtype ("F32", "F64", "I32"); NULL for anything else.
const char *nb__st_dtype_name(nb_dtype d);
// Thread-safe text for errno e (EIO when e is 0: a short read or write without errno).
const char *nb__os_reason(int e, char *buf, size_t size);
// The format is little-endian; a big-endian host reverses every elem-byte element in place.
bool nb__host_big_endian(void);
void nb__swap_bytes(unsigned char *p, size_t nbytes, size_t elem);
// Argument checks shared by save and load (fn names the caller in messages). Saving also
// requires names that make a valid, unambiguous header: UTF-8, unique, not "__metadata__".
nb_status nb__st_check_args(const char *fn, const char *path, const char *const *names,
                            nb_tensor *const *tensors, int n, bool saving);

#endif
