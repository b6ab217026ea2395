/*
 * atomic_file.c - see atomic_file.h.
 */
#include "io/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A temporary name next to path that no other writer (another process, or
 * another thread of this one) picks at the same time. */
static void temp_name(char *out, size_t cap, const char *path, const void *self, unsigned attempt) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(out, cap, "%s.tmp.%ld.%lx.%u", path, (long)getpid(),
             (unsigned long)((uintptr_t)self ^ (uintptr_t)ts.tv_nsec), attempt);
}

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
    for (unsigned attempt = 0; attempt < 16; attempt++) {
        temp_name(a->tmp, sizeof a->tmp, path, a, attempt);
        int tfd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (tfd < 0 && errno == EEXIST) continue;
        if (tfd < 0) return false;
        a->f = fdopen(tfd, "wb");
        if (!a->f) {
            close(tfd);
            unlink(a->tmp);
        }
        return a->f != NULL;
    }
    return false;
}

bool dots_atomic_commit(dots_atomic_file *a) {
    if (!a->f) return false;
    bool ok = fflush(a->f) == 0 && !ferror(a->f);
    if (!a->tmp[0]) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fileno(a->f));
        /* linkat cannot replace a file: give the data a unique temporary
         * name, then rename it over the target, which replaces atomically
         * (a concurrent writer of the same path loses nothing but the race) */
        char tmp[sizeof a->tmp];
        tmp[0] = '\0';
        for (unsigned attempt = 0; ok && attempt < 16; attempt++) {
            temp_name(tmp, sizeof tmp, a->path, a, attempt);
            if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0) break;
            if (errno != EEXIST) ok = false;
            tmp[0] = '\0';
        }
        if (ok && !tmp[0]) ok = false;
        if (fclose(a->f) != 0) ok = false;
        if (ok) {
            ok = rename(tmp, a->path) == 0;
            if (!ok) {
                int e = errno;
                unlink(tmp);
                errno = e;
            }
        } else if (tmp[0]) {
            unlink(tmp);
        }
    } else {
        if (fclose(a->f) != 0) ok = false;
        if (ok) ok = rename(a->tmp, a->path) == 0;
        if (!ok) {
            int e = errno;
            unlink(a->tmp);
            errno = e;
        }
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
