// Test support: the scratch directory of a test program that writes files (the io tests), made
// by the cmocka group setup and removed with its files by the group teardown:
//   return cmocka_run_group_tests(tests, nbt_dir_make, nbt_dir_remove);
#ifndef NABLA_TEST_TESTDIR_H
#define NABLA_TEST_TESTDIR_H

#include <stddef.h>

// "/tmp/nabla_test_XXXXXX" made unique by nbt_dir_make.
extern char nbt_dir[64];
// Group setup / teardown: 0 on success (cmocka's convention).
int nbt_dir_make(void **state);
int nbt_dir_remove(void **state);
// buf (size bytes) := "<nbt_dir>/<file>"; returns buf.
const char *nbt_in_dir(char *buf, size_t size, const char *file);
// Files in the directory whose name holds "tmp" (a save's leftover temp file); -1 if it
// cannot be read.
int nbt_count_temp_files(void);
// The first MiB of path in a malloc'd buffer (free it), its length in *len; NULL if unreadable.
unsigned char *nbt_read_file(const char *path, size_t *len);

#endif
