/*
 * internal.h - what every dotsocr source file shares but users don't see:
 * the context struct, the error and log macros, and checked arithmetic.
 */
#ifndef DOTS_INTERNAL_H
#define DOTS_INTERNAL_H

#include "dotsocr.h"

#include <stdarg.h>
#include <stdint.h>

#define DOTS_ERRMSG_CAP 512

struct dots_ctx {
    dots_status err_code;          /* DOTS_OK when no error is recorded */
    char err_msg[DOTS_ERRMSG_CAP]; /* one line, control characters replaced */
    dots_log_fn log_fn;
    void *log_user;
    dots_log_level log_max_level;
};

#if defined(__GNUC__)
#define DOTS_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define DOTS_PRINTF(fmt_idx, arg_idx)
#endif

/* Records an error in ctx (unless one is already recorded: the innermost
 * failure explains best) and returns code. One breakpoint spot for every
 * failure: dots_fail_at(). ctx may be NULL. */
dots_status dots_fail_at(dots_ctx *ctx, dots_status code, const char *file, int line,
                         const char *fmt, ...) DOTS_PRINTF(5, 6);
#define DOTS_FAIL(ctx, code, ...) dots_fail_at((ctx), (code), __FILE__, __LINE__, __VA_ARGS__)

/* Sends one formatted line to the log callback, if any and if level passes. */
void dots_log(dots_ctx *ctx, dots_log_level level, const char *fmt, ...) DOTS_PRINTF(3, 4);

/* Clears the error at the entry of a public call. */
void dots_ctx_begin_call(dots_ctx *ctx);

/* Overflow-checked arithmetic: return false (and leave *out alone) when the
 * exact result does not fit. Every size that reaches malloc or an offset
 * goes through these. */
static inline bool dots_mul_i64(int64_t a, int64_t b, int64_t *out) {
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) return false;
    *out = r;
    return true;
}
static inline bool dots_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    uint64_t r;
    if (__builtin_add_overflow(a, b, &r)) return false;
    *out = r;
    return true;
}
static inline bool dots_mul_size(size_t a, size_t b, size_t *out) {
    size_t r;
    if (__builtin_mul_overflow(a, b, &r)) return false;
    *out = r;
    return true;
}

/* Bytes per element of a float dtype (0 for the block formats). */
static inline int dots_dtype_size(dots_dtype t) {
    switch (t) {
    case DOTS_DTYPE_F32: return 4;
    case DOTS_DTYPE_F16: return 2;
    case DOTS_DTYPE_BF16: return 2;
    default: return 0;
    }
}

/* The block formats with 16 rows interleaved (kernels/repack.c): the decode
 * kernel's in-memory layout, made when the weights are copied to RAM and
 * never written to a file. Values past DOTS_DTYPE_COUNT: not public. */
#define DOTS_DTYPE_Q8_0_R16 ((dots_dtype)(DOTS_DTYPE_COUNT + 1))
#define DOTS_DTYPE_Q4_0_R16 ((dots_dtype)(DOTS_DTYPE_COUNT + 2))
#define DOTS_DTYPE_Q4_K_R16 ((dots_dtype)(DOTS_DTYPE_COUNT + 3))
static inline bool dots_dtype_is_r16(dots_dtype t) {
    return t == DOTS_DTYPE_Q8_0_R16 || t == DOTS_DTYPE_Q4_0_R16 || t == DOTS_DTYPE_Q4_K_R16;
}
/* The file format a repacked type holds (t itself otherwise). */
static inline dots_dtype dots_dtype_r16_base(dots_dtype t) {
    return t == DOTS_DTYPE_Q8_0_R16 ? DOTS_DTYPE_Q8_0 : t == DOTS_DTYPE_Q4_0_R16 ? DOTS_DTYPE_Q4_0 : t == DOTS_DTYPE_Q4_K_R16 ? DOTS_DTYPE_Q4_K : t;
}

/* Elements per block and bytes per block (1 and the element size for floats).
 * A repacked type's bytes are per row (a group of 16 rows holds 16 times as
 * many); Q4_K_R16 keeps the scales unpacked, 4 bytes more per block. */
static inline int dots_dtype_block(dots_dtype t) {
    t = dots_dtype_r16_base(t);
    return t == DOTS_DTYPE_Q8_0 || t == DOTS_DTYPE_Q4_0 ? 32 : t == DOTS_DTYPE_Q4_K ? 256 : 1;
}
static inline int dots_dtype_block_bytes(dots_dtype t) {
    if (t == DOTS_DTYPE_Q4_K_R16) return 148;
    t = dots_dtype_r16_base(t);
    return t == DOTS_DTYPE_Q8_0 ? 34 : t == DOTS_DTYPE_Q4_0 ? 18 : t == DOTS_DTYPE_Q4_K ? 144 : dots_dtype_size(t);
}
/* The file block formats (rows addressed one by one; not the repacked types). */
static inline bool dots_dtype_is_quant(dots_dtype t) {
    return t == DOTS_DTYPE_Q8_0 || t == DOTS_DTYPE_Q4_0 || t == DOTS_DTYPE_Q4_K;
}
/* Bytes of n elements (n a multiple of the block). */
static inline int64_t dots_dtype_bytes(dots_dtype t, int64_t n) {
    return n / dots_dtype_block(t) * dots_dtype_block_bytes(t);
}

/* Reads a whole (small) file into a NUL-terminated heap buffer. Files over
 * max_bytes are refused with DOTS_ERR_LIMIT; a missing file gives
 * DOTS_ERR_IO. *out is freed by the caller with free(). */
dots_status dots_read_small_file(dots_ctx *ctx, const char *path, size_t max_bytes,
                                 char **out, size_t *out_len);

/* Seconds on the monotonic clock, for timings. */
#include <time.h>
static inline double dots_monotonic_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Joins dir and name with a '/' into a heap string; NULL on OOM. */
char *dots_path_join(const char *dir, const char *name);

#endif /* DOTS_INTERNAL_H */
