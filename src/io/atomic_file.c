/*
 * atomic_file.c - see atomic_file.h.
 */
#include "io/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool dots_atomic_open(dots_atomic_file *a, const char *path) {
    memset(a, 0, sizeof *a);
    if (strlen(path) >= sizeof a->path) {
        errno = ENAMETOOLONG;
        return false;
    }
    strcpy(a->path, path);
#ifdef O_TMPFILE
    char dir[4096];
    strcpy(dir, path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else strcpy(dir, ".");
    int fd = open(slash && slash == dir ? "/" : dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0) {
        a->f = fdopen(fd, "wb");
        if (a->f) return true;
        close(fd);
    }
#endif
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp.%ld", path, (long)getpid());
    a->f = fopen(a->tmp, "wb");
    return a->f != NULL;
}

bool dots_atomic_commit(dots_atomic_file *a) {
    if (!a->f) return false;
    bool ok = fflush(a->f) == 0 && !ferror(a->f);
    if (!a->tmp[0]) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fileno(a->f));
        if (ok) {
            unlink(a->path); /* linkat does not replace */
            ok = linkat(AT_FDCWD, proc, AT_FDCWD, a->path, AT_SYMLINK_FOLLOW) == 0;
        }
        if (fclose(a->f) != 0) ok = false;
    } else {
        if (fclose(a->f) != 0) ok = false;
        if (ok) ok = rename(a->tmp, a->path) == 0;
        if (!ok) unlink(a->tmp);
    }
    a->f = NULL;
    return ok;
}

void dots_atomic_abort(dots_atomic_file *a) {
    if (!a->f) return;
    fclose(a->f);
    if (a->tmp[0]) unlink(a->tmp);
    a->f = NULL;
}
