/*
 * atomic_file.h - writing a file so that it appears whole or not at all,
 * even if the process is killed: an unnamed O_TMPFILE in the target's
 * directory, given a unique temporary name when complete and renamed over
 * the target, which replaces any file there atomically (a killed writer
 * leaves nothing behind; two writers of one path never see "File exists").
 * Where O_TMPFILE is unsupported, a named temporary + rename (a killed
 * writer may then leave a *.tmp.* file, never a partial file under the
 * final name).
 */
#ifndef DOTS_ATOMIC_FILE_H
#define DOTS_ATOMIC_FILE_H

#include <stdbool.h>
#include <stdio.h>

typedef struct dots_atomic_file {
    FILE *f;
    char path[4096];
    char tmp[4128]; /* named fallback, "" with O_TMPFILE */
} dots_atomic_file;

/* false on failure (errno set). */
bool dots_atomic_open(dots_atomic_file *a, const char *path);
/* Closes and publishes the file; false (and nothing published) on error. */
bool dots_atomic_commit(dots_atomic_file *a);
/* Closes and discards. */
void dots_atomic_abort(dots_atomic_file *a);

#endif
