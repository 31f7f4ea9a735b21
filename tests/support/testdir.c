// The io tests' scratch directory (testdir.h).
#define _POSIX_C_SOURCE 200809L // mkdtemp

#include "support/testdir.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char nbt_dir[64];

int nbt_dir_make(void **state) {
    (void)state;
    snprintf(nbt_dir, sizeof nbt_dir, "/tmp/nabla_test_XXXXXX");
    return mkdtemp(nbt_dir) ? 0 : -1;
}

// The tests write plain files only, no subdirectories.
int nbt_dir_remove(void **state) {
    (void)state;
    DIR *d = opendir(nbt_dir);
    if (!d)
        return -1;
    char path[sizeof nbt_dir + 1 + sizeof((struct dirent *)0)->d_name]; // cannot truncate
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(path, sizeof path, "%s/%s", nbt_dir, e->d_name);
            remove(path);
        }
    }
    closedir(d);
    return rmdir(nbt_dir);
}

const char *nbt_in_dir(char *buf, size_t size, const char *file) {
    snprintf(buf, size, "%s/%s", nbt_dir, file);
    return buf;
}

int nbt_count_temp_files(void) {
    DIR *d = opendir(nbt_dir);
    if (!d)
        return -1;
    int count = 0;
    for (struct dirent *e; (e = readdir(d));)
        count += strstr(e->d_name, "tmp") != NULL;
    closedir(d);
    return count;
}

unsigned char *nbt_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = f ? malloc(1 << 20) : NULL;
    if (buf)
        *len = fread(buf, 1, 1 << 20, f);
    if (f)
        fclose(f);
    return buf;
}
