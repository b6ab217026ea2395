/*
 * npy.c - writing .npy files (format table in npy.h).
 */
#include "io/npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

dots_status dots_npy_write(dots_ctx *ctx, const char *path, const char *descr, const int64_t *shape, int n_dims,
                           const void *data, size_t elem_size) {
    if (!path || !descr || (!shape && n_dims) || n_dims < 0 || n_dims > 8)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "npy: bad argument");
    char header[512];
    int k = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    int64_t n = 1;
    for (int i = 0; i < n_dims; i++) {
        k += snprintf(header + k, sizeof header - (size_t)k, "%lld,%s", (long long)shape[i], i + 1 < n_dims ? " " : "");
        if (shape[i] < 0 || !dots_mul_i64(n, shape[i], &n)) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "npy: bad shape");
    }
    k += snprintf(header + k, sizeof header - (size_t)k, "), }");
    size_t total = (size_t)(10 + k + 1 + 63) / 64 * 64; /* + '\n' */
    size_t hlen = total - 10;
    memset(header + k, ' ', hlen - (size_t)k - 1);
    header[hlen - 1] = '\n';
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(hlen & 0xff), (uint8_t)(hlen >> 8)};
    size_t tmp_len = strlen(path) + 32;
    char *tmp = malloc(tmp_len);
    if (!tmp) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    snprintf(tmp, tmp_len, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    dots_status st = DOTS_OK;
    if (!f) {
        st = DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: %s", tmp, strerror(errno));
    } else {
        size_t bytes = (size_t)n * elem_size;
        bool ok = fwrite(pre, 1, 10, f) == 10 && fwrite(header, 1, hlen, f) == hlen &&
                  (bytes == 0 || fwrite(data, 1, bytes, f) == bytes);
        if (fclose(f) != 0) ok = false;
        if (!ok) st = DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
        else if (rename(tmp, path) != 0) st = DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: rename failed: %s", path, strerror(errno));
        if (st != DOTS_OK) unlink(tmp);
    }
    free(tmp);
    return st;
}
