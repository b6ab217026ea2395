/*
 * cmd_parse.h - the parse subcommand, with the CLI helpers it shares.
 */
#ifndef DOTS_CMD_PARSE_H
#define DOTS_CMD_PARSE_H

#include "dotsocr.h"

typedef struct dots_cli {
    dots_ctx *(*make_ctx)(void);
    int (*fail)(dots_ctx *ctx);
    int (*usage)(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
    bool (*parse_i64)(const char *s, int64_t lo, int64_t hi, int64_t *out);
    bool (*parse_u64)(const char *s, uint64_t *out);
    bool (*parse_float)(const char *s, float lo, float hi, float *out);
    bool (*parse_mode)(const char *s, dots_prompt_mode *m);
    int (*ensure_dir)(const char *dir);
    bool (*parse_precision)(const char *s, bool *bf16);
    /* Where the weights live for run/parse: mapped (mmap_choice > 0, --mmap),
     * copied (< 0, --no-mmap), or by default copied when the language model's
     * matrices are a block format (they are then repacked for decode) and
     * mapped otherwise (bf16 zero-copy). */
    dots_status (*place_weights)(dots_ctx *ctx, dots_model *model, int mmap_choice);
    /* -v: one more level of the log (warnings, then info, then debug) */
    void (*more_verbose)(void);
} dots_cli;

/* Peak resident set size of this process in MB (Linux reports KiB). */
#include <sys/resource.h>
static inline double dots_peak_rss_mb(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : -1;
}

int dots_cmd_parse(int argc, char **argv, const dots_cli *cli);
int dots_cmd_bench(int argc, char **argv, const dots_cli *cli);

#endif
