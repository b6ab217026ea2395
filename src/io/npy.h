/*
 * npy.h - NumPy .npy files (format version 1.0), the exchange format for
 * intermediate tensors between dotsocr, its tests and the PyTorch reference.
 *
 *   offset  size  contents
 *   0       6     "\x93NUMPY"
 *   6       2     version 1, 0
 *   8       2     header length H, u16 little-endian
 *   10      H     "{'descr': '<f4', 'fortran_order': False, 'shape': (N, M), }"
 *                 padded with spaces and ended by '\n' so 10 + H is a multiple of 64
 *   10 + H  ...   the data, C order
 */
#ifndef DOTS_NPY_H
#define DOTS_NPY_H

#include "core/internal.h"

/* Writes path atomically (temporary file + rename). descr is a NumPy type
 * string ("<f4", "<i4", "|u1"); the data is n elements of elem_size bytes,
 * n = product of shape. */
dots_status dots_npy_write(dots_ctx *ctx, const char *path, const char *descr, const int64_t *shape, int n_dims,
                           const void *data, size_t elem_size);

/* Reads a 1-D integer .npy (int32 or int64, little-endian) into *out
 * (malloc'd). Anything else is an error. At most max_n elements. */
dots_status dots_npy_read_ids(dots_ctx *ctx, const char *path, int64_t max_n, int32_t **out, int64_t *n);

#endif
