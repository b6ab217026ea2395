/*
 * image_pnm.c - Netpbm images: P1/P4 (bitmap), P2/P5 (gray), P3/P6 (RGB),
 * plain and raw, maxval 1..65535. Written by hand: libnetpbm reports errors
 * by exiting the process. Samples are scaled to 8 bits with rounding
 * (v * 255 / maxval); in bitmaps 1 is black.
 */
#include "input/decode.h"

#include <stdlib.h>

typedef struct pnm_reader {
    const uint8_t *p, *end;
} pnm_reader;

static void skip_space_and_comments(pnm_reader *r) {
    while (r->p < r->end) {
        if (*r->p == '#') {
            while (r->p < r->end && *r->p != '\n' && *r->p != '\r') r->p++;
        } else if (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r' || *r->p == '\v' || *r->p == '\f') {
            r->p++;
        } else {
            break;
        }
    }
}

/* A decimal number of at most 9 digits; -1 if none. */
static int64_t read_uint(pnm_reader *r) {
    skip_space_and_comments(r);
    int64_t v = 0;
    int digits = 0;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        if (++digits > 9) return -1;
        v = v * 10 + (*r->p++ - '0');
    }
    return digits ? v : -1;
}

dots_status dots_decode_pnm(dots_ctx *ctx, const char *label, const uint8_t *data, size_t len, dots_image *out) {
    if (len < 3 || data[0] != 'P' || data[1] < '1' || data[1] > '6')
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: not a PNM file", label);
    const int kind = data[1] - '0';
    const bool raw = kind >= 4, bitmap = kind == 1 || kind == 4, color = kind == 3 || kind == 6;
    pnm_reader r = {data + 2, data + len};
    int64_t w = read_uint(&r), h = read_uint(&r), maxval = bitmap ? 1 : read_uint(&r);
    if (w < 0 || h < 0 || maxval < 1 || maxval > 65535)
        return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: bad PNM header (width, height, maxval)", label);
    dots_image img = {0};
    dots_status st = dots_image_alloc(ctx, label, w, h, &img);
    if (st != DOTS_OK) return st;
    if (raw) {
        if (r.p >= r.end) goto truncated;
        r.p++; /* exactly one whitespace byte before raster data */
    }
    const int bytes = maxval > 255 ? 2 : 1;
    const int channels = color ? 3 : 1;
    for (int64_t y = 0; y < h; y++) {
        for (int64_t x = 0; x < w; x++) {
            uint8_t v8[3];
            for (int c = 0; c < channels; c++) {
                int64_t v;
                if (bitmap && raw) {
                    size_t row_bytes = (size_t)(w + 7) / 8;
                    const uint8_t *byte = r.p + (size_t)y * row_bytes + (size_t)x / 8;
                    if (byte >= r.end) goto truncated;
                    v = (*byte >> (7 - x % 8)) & 1;
                } else if (bitmap) {
                    skip_space_and_comments(&r);
                    if (r.p >= r.end || (*r.p != '0' && *r.p != '1')) goto truncated;
                    v = *r.p++ - '0';
                } else if (raw) {
                    if (r.end - r.p < bytes) goto truncated;
                    v = bytes == 2 ? (r.p[0] << 8 | r.p[1]) : r.p[0];
                    r.p += bytes;
                } else {
                    v = read_uint(&r);
                    if (v < 0) goto truncated;
                }
                if (v > maxval) {
                    dots_image_free(&img);
                    return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: sample %lld is above maxval %lld", label, (long long)v,
                                     (long long)maxval);
                }
                v8[c] = bitmap ? (uint8_t)(v ? 0 : 255) : (uint8_t)((v * 255 + maxval / 2) / maxval);
            }
            uint8_t *q = img.rgb + ((size_t)y * (size_t)w + (size_t)x) * 3;
            q[0] = v8[0];
            q[1] = v8[color ? 1 : 0];
            q[2] = v8[color ? 2 : 0];
        }
    }
    *out = img;
    return DOTS_OK;
truncated:
    dots_image_free(&img);
    return DOTS_FAIL(ctx, DOTS_ERR_FORMAT, "%s: PNM data ends early (truncated?)", label);
}
