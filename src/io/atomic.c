// Output files that never lose data: the path check and the atomic writer of include/nabla/io.h.
// A save writes the new content where nobody sees it, makes it durable, then renames it over
// the target in one step, so the target holds its old or its new content, never a mix.
// Where the content lives meanwhile:
//  - an unnamed O_TMPFILE inode in the target's directory (Linux >= 3.11 on ext4, xfs, btrfs,
//    tmpfs...): a kill -9 while writing leaves nothing behind. Once complete it gets a name
//    with linkat and is renamed; only a kill in that microsecond window leaves the name.
//  - otherwise a named temp file, created fresh.
// The temp name is fixed per target (".<name>.nabla-tmp" next to it, shortened with a hash
// for long names so it stays within NAME_MAX), so a leftover is never more than one file
// per target and the next save to that target removes it. No temp names accumulate.
#define _GNU_SOURCE // O_TMPFILE, AT_EMPTY_PATH, linkat

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors_impl.h"
#include "nabla/io.h"
#include "base/base_impl.h"

bool nb__io_no_tmpfile = false;

#ifndef NAME_MAX
#define NAME_MAX 255
#endif
#define TMP_SUFFIX ".nabla-tmp"
#define KEEP_BYTES 200 // of a long name, before "-<16 hex digits>" + TMP_SUFFIX

static const char *node_kind(mode_t m) {
    return S_ISDIR(m)    ? "a directory"
           : S_ISLNK(m)  ? "a symbolic link"
           : S_ISFIFO(m) ? "a FIFO (named pipe)"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
                         : "not a regular file";
}

// Splits path into its directory ("." when none) and the last component.
typedef struct {
    char *dir;
    const char *base;
    char *tmp; // dir + "/" + temp name
} parts;

static void parts_free(parts *p) {
    nb__free(p->dir);
    nb__free(p->tmp);
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3u;
    return h;
}

static nb_status split_path(const char *fn, const char *path, parts *p) {
    memset(p, 0, sizeof *p);
    const char *slash = strrchr(path, '/');
    p->base = slash ? slash + 1 : path;
    if (!*p->base)
        return nb__set_last_error(NB_ERR_ARG, "%s: %s: names a directory (ends in '/')", fn, path);
    size_t dlen = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    size_t blen = strlen(p->base);
    p->dir = nb__malloc(dlen + 1);
    p->tmp = nb__malloc(dlen + blen + 64);
    if (!p->dir || !p->tmp) {
        parts_free(p);
        return nb__set_last_error(NB_ERR_NOMEM, "%s: %s: out of memory", fn, path);
    }
    memcpy(p->dir, slash ? path : ".", dlen);
    p->dir[dlen] = '\0';
    if (1 + blen + strlen(TMP_SUFFIX) <= NAME_MAX) {
        sprintf(p->tmp, "%s/.%s" TMP_SUFFIX, p->dir, p->base);
    } else {
        size_t keep = KEEP_BYTES;
        while (keep > 0 && ((unsigned char)p->base[keep] & 0xC0) == 0x80)
            keep--; // cut at a UTF-8 character boundary
        sprintf(p->tmp, "%s/.%.*s-%016llx" TMP_SUFFIX, p->dir, (int)keep, p->base,
                (unsigned long long)fnv1a(p->base));
    }
    return NB_OK;
}

// What is at path now: NB_OK with *exists false (nothing), or true and its mode; an error for
// anything a rename must not replace.
static nb_status check_target(const char *fn, const char *path, bool *exists, mode_t *mode) {
    struct stat sb;
    char why[128];
    *exists = false;
    if (lstat(path, &sb) != 0) {
        if (errno == ENOENT)
            return NB_OK;
        return nb__set_last_error(NB_ERR_IO, "%s: %s: cannot check the output path: %s", fn, path,
                                  nb__os_reason(errno, why, sizeof why));
    }
    if (S_ISLNK(sb.st_mode))
        return nb__set_last_error(NB_ERR_IO,
                                  "%s: %s is a symbolic link; outputs are replaced by rename, "
                                  "which would replace the link itself, so links are refused: "
                                  "give the file it points to",
                                  fn, path);
    if (!S_ISREG(sb.st_mode))
        return nb__set_last_error(NB_ERR_IO,
                                  "%s: %s is %s, not a regular file; refusing to replace it", fn,
                                  path, node_kind(sb.st_mode));
    *exists = true;
    *mode = sb.st_mode & 07777;
    return NB_OK;
}

// O_TMPFILE in dir; -1 with errno when the kernel or filesystem does not support it.
static int open_unnamed(const char *dir) {
#ifdef O_TMPFILE
    if (!nb__io_no_tmpfile)
        return open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
#endif
    (void)dir;
    errno = EOPNOTSUPP;
    return -1;
}

static bool tmpfile_unsupported(int e) {
    return e == EOPNOTSUPP || e == EISDIR || e == EINVAL || e == ENOSYS;
}

nb_status nb__check_output_path(const char *fn, const char *path) {
    if (!path)
        return nb__set_last_error(NB_ERR_NULL, "%s: path is NULL", fn);
    if (!*path)
        return nb__set_last_error(NB_ERR_ARG, "%s: path is empty", fn);
    parts p;
    nb_status st = split_path(fn, path, &p);
    bool exists;
    mode_t mode;
    if (st == NB_OK)
        st = check_target(fn, path, &exists, &mode);
    if (st == NB_OK) {
        // Can we create a file there? An unnamed one answers without leaving a trace.
        char why[128];
        int fd = open_unnamed(p.dir);
        int err = errno;
        if (fd >= 0)
            close(fd);
        else if (tmpfile_unsupported(err))
            err = access(p.dir, W_OK | X_OK) == 0 ? 0 : errno;
        if (fd < 0 && err)
            st = nb__set_last_error(NB_ERR_IO, "%s: %s: cannot create files in '%s': %s", fn, path,
                                    p.dir, nb__os_reason(err, why, sizeof why));
    }
    parts_free(&p);
    return st;
}

nb_status nb_check_output_path(const char *path) {
    return nb__check_output_path("nb_check_output_path", path);
}

// Runs the writer on fd and makes the result durable. Closes fd.
static nb_status fill(const char *fn, const char *path, int fd, nb_file_writer write, void *ctx) {
    char why[128];
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int err = errno;
        close(fd);
        return nb__set_last_error(NB_ERR_IO, "%s: %s: %s", fn, path,
                                  nb__os_reason(err, why, sizeof why));
    }
    errno = 0;
    // fsync before the rename: otherwise a crash can leave the new name pointing at no data.
    bool ok = write(f, ctx) && fflush(f) == 0 && !ferror(f) && fsync(fileno(f)) == 0;
    int err = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (ok)
        return NB_OK;
    return nb__set_last_error(NB_ERR_IO, "%s: %s: writing the new file failed: %s", fn, path,
                              nb__os_reason(err, why, sizeof why));
}

// Gives the unnamed file fd the name tmp (replacing a leftover). false with errno on failure.
static bool link_unnamed(int fd, const char *tmp) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (unlink(tmp) != 0 && errno != ENOENT)
            return false;
        if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0)
            return true;
        if (errno == ENOENT && linkat(fd, "", AT_FDCWD, tmp, AT_EMPTY_PATH) == 0)
            return true; // no /proc: needs CAP_DAC_READ_SEARCH
        if (errno != EEXIST)
            return false;
    }
    return false;
}

// Make the rename itself durable. Best effort: some filesystems refuse fsync on a directory,
// and by now the new file is complete and in place either way.
static void sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

nb_status nb__write_atomic(const char *fn, const char *path, nb_file_writer write, void *ctx) {
    if (!path)
        return nb__set_last_error(NB_ERR_NULL, "%s: path is NULL", fn);
    if (!*path)
        return nb__set_last_error(NB_ERR_ARG, "%s: path is empty", fn);
    parts p;
    nb_status st = split_path(fn, path, &p);
    if (st != NB_OK)
        return st;
    bool exists = false;
    mode_t mode = 0;
    char why[128];
    st = check_target(fn, path, &exists, &mode);
    bool named = false; // the content has a name (p.tmp) that must go on failure
    bool fallback = false;
    if (st == NB_OK) {
        int fd = open_unnamed(p.dir);
        if (fd < 0 && tmpfile_unsupported(errno))
            fallback = true;
        else if (fd < 0)
            st = nb__set_last_error(NB_ERR_IO, "%s: %s: cannot create a file in '%s': %s", fn, path,
                                    p.dir, nb__os_reason(errno, why, sizeof why));
        if (fd >= 0) {
            // The file stays unnamed until it is complete; only then does it get p.tmp.
            if (exists)
                (void)fchmod(fd, mode); // keep the permissions the user gave the old file
            int wfd = dup(fd);          // fill closes its descriptor; linking needs fd
            st = wfd >= 0 ? fill(fn, path, wfd, write, ctx)
                          : nb__set_last_error(NB_ERR_IO, "%s: %s: %s", fn, path,
                                               nb__os_reason(errno, why, sizeof why));
            if (st == NB_OK) {
                named = link_unnamed(fd, p.tmp);
                fallback = !named; // e.g. no /proc: write it again under the name
            }
            close(fd);
        }
    }
    if (st == NB_OK && fallback) {
        int fd = -1;
        if (unlink(p.tmp) != 0 && errno != ENOENT)
            st = nb__set_last_error(NB_ERR_IO, "%s: %s: cannot remove the old temp file %s: %s", fn,
                                    path, p.tmp, nb__os_reason(errno, why, sizeof why));
        else if ((fd = open(p.tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                            exists ? mode : 0666)) < 0)
            st = nb__set_last_error(NB_ERR_IO, "%s: %s: cannot create %s: %s", fn, path, p.tmp,
                                    nb__os_reason(errno, why, sizeof why));
        if (fd >= 0) {
            named = true;
            if (exists)
                (void)fchmod(fd, mode);
            st = fill(fn, path, fd, write, ctx);
        }
    }
    // Re-check just before the rename: the target may have been replaced meanwhile.
    if (st == NB_OK)
        st = check_target(fn, path, &exists, &mode);
    if (st == NB_OK && rename(p.tmp, path) != 0)
        st = nb__set_last_error(NB_ERR_IO, "%s: %s: cannot rename the new file over it: %s", fn,
                                path, nb__os_reason(errno, why, sizeof why));
    else if (st == NB_OK)
        named = false;
    if (named)
        unlink(p.tmp);
    if (st == NB_OK)
        sync_dir(p.dir);
    parts_free(&p);
    return st;
}

nb_status nb_write_file_atomic(const char *path, nb_file_writer write, void *ctx) {
    if (!write)
        return nb__set_last_error(NB_ERR_NULL, "nb_write_file_atomic: write is NULL");
    return nb__write_atomic("nb_write_file_atomic", path, write, ctx);
}
