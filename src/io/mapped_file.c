/*
 * mapped_file.c - read-only mmap of a whole file (see mapped_file.h).
 */
#include "io/mapped_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

dots_status dots_mapped_file_open(dots_ctx *ctx, const char *path, dots_mapped_file *out) {
    if (!path || !out) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "mapped_file_open: NULL argument");
    struct stat pre; /* a special file is refused before it is opened */
    if (stat(path, &pre) == 0 && !S_ISREG(pre.st_mode)) return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: not a regular file", path);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* and one swapped in after the stat must not block */
    if (fd < 0) return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: not a regular file", path);
    }
    char *copy = strdup(path);
    if (!copy) {
        close(fd);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    }
    const uint8_t *data = NULL;
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            free(copy);
            return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: mmap failed: %s", path, strerror(e));
        }
        data = p;
    }
    close(fd); /* the mapping keeps the file alive */
    out->path = copy;
    out->data = data;
    out->size = (uint64_t)st.st_size;
    return DOTS_OK;
}

void dots_mapped_file_close(dots_mapped_file *f) {
    if (!f) return;
    if (f->data) munmap((void *)f->data, (size_t)f->size);
    free(f->path);
    f->path = NULL;
    f->data = NULL;
    f->size = 0;
}
