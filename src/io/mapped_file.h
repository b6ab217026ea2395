/*
 * mapped_file.h - read-only memory mapping of a whole file.
 *
 * Weights are used in place from the page cache: opening a 6 GB checkpoint
 * costs a few page-table entries, not a copy, and pages are read on first
 * touch.
 */
#ifndef DOTS_MAPPED_FILE_H
#define DOTS_MAPPED_FILE_H

#include "core/internal.h"

typedef struct dots_mapped_file {
    char *path;           /* owned */
    const uint8_t *data;  /* [size] bytes, read-only; NULL when size is 0 */
    uint64_t size;
} dots_mapped_file;

/* Maps path read-only. Not a regular file, unreadable or unmappable files
 * fail with DOTS_ERR_IO; an empty file maps to data == NULL, size == 0. */
dots_status dots_mapped_file_open(dots_ctx *ctx, const char *path, dots_mapped_file *out);
void dots_mapped_file_close(dots_mapped_file *f);

#endif
