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

dots_status dots_npy_read_ids(dots_ctx *ctx, const char *path, int64_t max_n, int32_t **out, int64_t *n_out) {
    char *buf = NULL;
    size_t len = 0;
    dots_status st = dots_read_small_file(ctx, path, (size_t)max_n * 8 + 65536, &buf, &len);
    if (st != DOTS_OK) return st;
    const uint8_t *b = (const uint8_t *)buf;
    size_t hl = 0, off = 0;
    if (len >= 10 && memcmp(b, "\x93NUMPY", 6) == 0) {
        if (b[6] == 1) hl = (size_t)b[8] | (size_t)b[9] << 8, off = 10;
        else if (len >= 12 && (b[6] == 2 || b[6] == 3)) hl = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24, off = 12;
    }
    if (!off || hl > len - off) {
        free(buf);
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: not a .npy file", path);
    }
    char header[1024];
    snprintf(header, sizeof header, "%.*s", (int)(hl < sizeof header - 1 ? hl : sizeof header - 1), buf + off);
    int es = strstr(header, "'<i4'") ? 4 : strstr(header, "'<i8'") ? 8 : 0;
    const char *shape = strstr(header, "'shape': (");
    long long n = -1;
    if (shape) {
        char *end = NULL;
        n = strtoll(shape + 10, &end, 10);
        if (!end || (*end != ',' && *end != ')') || (*end == ',' && end[1] != ')' && end[1] != ' ')) n = -1;
        if (end && *end == ',' && end[1] == ' ' && end[2] != ')') n = -1; /* more than one dimension */
    }
    if (!es || strstr(header, "True") || n < 0 || n > max_n || (size_t)n * (size_t)es > len - off - hl) {
        free(buf);
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: expected a 1-D int32/int64 array of at most %lld ids", path, (long long)max_n);
    }
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    if (!ids) {
        free(buf);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    }
    const uint8_t *d = b + off + hl;
    for (long long i = 0; i < n; i++) {
        int64_t v = 0;
        for (int k = es - 1; k >= 0; k--) v = (v << 8) | d[i * es + k];
        if (es == 4) v = (int32_t)(uint32_t)v;
        if (v < INT32_MIN || v > INT32_MAX) {
            free(ids);
            free(buf);
            return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: id %lld out of range", path, (long long)v);
        }
        ids[i] = (int32_t)v;
    }
    free(buf);
    *out = ids;
    *n_out = n;
    return DOTS_OK;
}
