/*
 * ctx.c - the library context: error status + message, and the log callback.
 *
 * The library never prints. A failure is recorded once, as one line, where it
 * is detected (the innermost layer knows the file, tensor or key), and the
 * public entry point returns its code. Messages may quote hostile bytes
 * (tensor names, JSON keys), so control characters are replaced: a caller
 * printing dots_errmsg() always gets exactly one line.
 */
#include "core/internal.h"

#include <unistd.h>
#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const status_names[DOTS_STATUS_COUNT] = {
    [DOTS_OK] = "ok",
    [DOTS_ERR_INVALID_ARGUMENT] = "invalid argument",
    [DOTS_ERR_OUT_OF_MEMORY] = "out of memory",
    [DOTS_ERR_IO] = "I/O error",
    [DOTS_ERR_FORMAT] = "malformed file",
    [DOTS_ERR_CONFIG] = "invalid configuration",
    [DOTS_ERR_TENSOR] = "bad tensor",
    [DOTS_ERR_UNSUPPORTED] = "unsupported",
    [DOTS_ERR_LIMIT] = "over a limit",
    [DOTS_ERR_INTERNAL] = "internal error",
    [DOTS_ERR_CANCELLED] = "cancelled",
};

const char *dots_strerror(dots_status status) {
    if ((int)status < 0 || status >= DOTS_STATUS_COUNT) return "unknown status";
    return status_names[status];
}

const char *dots_dtype_name(dots_dtype dtype) {
    switch (dtype) {
    case DOTS_DTYPE_F32: return "F32";
    case DOTS_DTYPE_F16: return "F16";
    case DOTS_DTYPE_BF16: return "BF16";
    case DOTS_DTYPE_Q8_0: return "Q8_0";
    case DOTS_DTYPE_Q4_0: return "Q4_0";
    case DOTS_DTYPE_Q4_K: return "Q4_K";
    default: break;
    }
    /* the in-memory repacked layouts (core/internal.h) */
    switch ((int)dtype) {
    case (int)DOTS_DTYPE_Q8_0_R16: return "Q8_0 (16 rows interleaved)";
    case (int)DOTS_DTYPE_Q4_0_R16: return "Q4_0 (16 rows interleaved)";
    case (int)DOTS_DTYPE_Q4_K_R16: return "Q4_K (16 rows interleaved)";
    default: return "?";
    }
}

dots_status dots_ctx_create(dots_ctx **out) {
    if (!out) return DOTS_ERR_INVALID_ARGUMENT;
    dots_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return DOTS_ERR_OUT_OF_MEMORY;
    ctx->log_max_level = DOTS_LOG_INFO;
    *out = ctx;
    return DOTS_OK;
}

void dots_ctx_free(dots_ctx *ctx) { free(ctx); }

void dots_ctx_set_log(dots_ctx *ctx, dots_log_fn fn, void *user_data, dots_log_level max_level) {
    if (!ctx) return;
    ctx->log_fn = fn;
    ctx->log_user = user_data;
    ctx->log_max_level = max_level;
}

const char *dots_errmsg(const dots_ctx *ctx) {
    if (!ctx) return "no context";
    return ctx->err_msg;
}

dots_status dots_errcode(const dots_ctx *ctx) { return ctx ? ctx->err_code : DOTS_ERR_INVALID_ARGUMENT; }

void dots_ctx_clear_error(dots_ctx *ctx) {
    if (!ctx) return;
    ctx->err_code = DOTS_OK;
    ctx->err_msg[0] = '\0';
}

void dots_ctx_begin_call(dots_ctx *ctx) { dots_ctx_clear_error(ctx); }

/* Keeps a message on one line whatever bytes it quotes. */
static void flatten_line(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = '?';
}

dots_status dots_fail_at(dots_ctx *ctx, dots_status code, const char *file, int line,
                         const char *fmt, ...) {
    if (!ctx || ctx->err_code != DOTS_OK) return code;
    ctx->err_code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err_msg, sizeof ctx->err_msg, fmt, ap);
    va_end(ap);
    flatten_line(ctx->err_msg);
    dots_log(ctx, DOTS_LOG_DEBUG, "error %s at %s:%d: %s", dots_strerror(code), file, line,
             ctx->err_msg);
    return code;
}

void dots_log(dots_ctx *ctx, dots_log_level level, const char *fmt, ...) {
    if (!ctx || !ctx->log_fn || level > ctx->log_max_level) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    flatten_line(buf);
    ctx->log_fn(level, buf, ctx->log_user);
}

char *dots_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t n = a;
    if (a > 0 && dir[a - 1] != '/') p[n++] = '/';
    memcpy(p + n, name, b + 1);
    return p;
}

dots_status dots_read_small_file(dots_ctx *ctx, const char *path, size_t max_bytes, char **out,
                                 size_t *out_len) {
    /* a special file is refused before it is opened; O_NONBLOCK covers one
     * swapped in after the stat: opening a FIFO for reading would wait */
    struct stat pre;
    if (stat(path, &pre) == 0 && !S_ISREG(pre.st_mode))
        return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: not a regular file (a FIFO, socket, device or directory)", path);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: not a regular file (a FIFO, socket, device or directory)", path);
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return DOTS_FAIL(ctx, DOTS_ERR_LIMIT, "%s: %lld bytes, over the %zu-byte limit for this file",
                         path, (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", path, n + 1);
    }
    size_t got = fread(buf, 1, n, f);
    int read_err = ferror(f);
    fclose(f);
    if (got != n || read_err) {
        free(buf);
        return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: short read", path);
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return DOTS_OK;
}
