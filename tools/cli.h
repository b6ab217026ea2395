/*
 * cli.h - what the dotsocr commands share: the command table and dispatch,
 * logging to stderr, option values checked against their ranges, output
 * directories. The commands see only the public API (dotsocr.h); the
 * developer tool (tools/debug) adds the commands that need internals.
 */
#ifndef DOTS_CLI_H
#define DOTS_CLI_H

#include "dotsocr.h"

#include <getopt.h>
#include <stdio.h>

#define DOTS_EXIT_USAGE 2

typedef struct dots_cli_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    const char *summary;
} dots_cli_command;

/* argv[1] picks a command of extra (may be NULL), else of the public
 * table; help and version are built in. */
int dots_cli_main(const char *prog, int argc, char **argv, const dots_cli_command *extra, size_t n_extra);

/* The public commands, one file each (cmd_*.c). */
int dots_cmd_info(int argc, char **argv);
int dots_cmd_make_model(int argc, char **argv);
int dots_cmd_convert(int argc, char **argv);
int dots_cmd_tokenize(int argc, char **argv);
int dots_cmd_detokenize(int argc, char **argv);
int dots_cmd_run(int argc, char **argv);
int dots_cmd_parse(int argc, char **argv);
int dots_cmd_shards(int argc, char **argv);
int dots_cmd_serve(int argc, char **argv);

/* -v / -q: the log level of the contexts made after them. */
void cli_more_verbose(void);
void cli_quiet(void);
int cli_verbosity(void);
/* A context that logs to stderr at the chosen level; NULL (message printed) on OOM. */
dots_ctx *cli_make_ctx(void);
/* Prints "dotsocr: error: <message>" and returns 1. */
int cli_fail(dots_ctx *ctx);
/* Prints "dotsocr CMD: <message> (see 'dotsocr help CMD')" and returns 2. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The option getopt refused, found again in argv (getopt's own view of it
 * can point at the next argument), as a usage error. */
int cli_bad_option(const char *cmd, int argc, char **argv, const struct option *opts, const char *shortopts);

/* Option values: 0 when good (stored in *out), else a usage error naming
 * the option, the value and the allowed range. */
int cli_int(const char *cmd, const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out);
int cli_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);
int cli_float(const char *cmd, const char *opt, const char *s, float lo, float hi, float *out);
int cli_mode(const char *cmd, const char *s, dots_prompt_mode *out);
int cli_precision(const char *cmd, const char *s, dots_precision *out);
/* "x1,y1,x2,y2": four integers 0..1000000 with x1 < x2 and y1 < y2. */
int cli_bbox(const char *cmd, const char *s, int32_t out[4]);
/* min/max pixels as the official parser bounds them: DOTS_MIN_PIXELS <=
 * min <= max <= DOTS_MAX_PIXELS (0 = the model's default). */
int cli_pixels(const char *cmd, int64_t min_px, int64_t max_px);

/* The options `run` and `parse` share: the model, where its weights live,
 * threads, precision, and every page option. */
typedef struct cli_page_args {
    const char *model, *mmproj;
    dots_placement placement;
    dots_precision precision;
    int64_t threads;
    bool have_bbox;
    dots_page_options po;
} cli_page_args;

/* Their getopt_long entries, to put at the head of a command's table. */
#define CLI_PAGE_OPTIONS                                                                                                \
    {"model", required_argument, NULL, 'm'}, {"mmproj", required_argument, NULL, 1002},                               \
        {"mmap", no_argument, NULL, 1001}, {"no-mmap", no_argument, NULL, 'W'},                                       \
        {"threads", required_argument, NULL, 't'}, {"precision", required_argument, NULL, 'R'},                       \
        {"mode", required_argument, NULL, 'M'}, {"bbox", required_argument, NULL, 'b'},                               \
        {"dpi", required_argument, NULL, 'd'}, {"no-fitz-preprocess", no_argument, NULL, 'F'},                        \
        {"min-pixels", required_argument, NULL, 'n'}, {"max-pixels", required_argument, NULL, 'x'},                   \
        {"max-new-tokens", required_argument, NULL, 'N'}, {"temperature", required_argument, NULL, 'T'},              \
        {"top-p", required_argument, NULL, 'P'}, {"seed", required_argument, NULL, 's'},                              \
        {"no-json-constraint", no_argument, NULL, 1010}, {"no-loop-guard", no_argument, NULL, 1011},                 \
        {"prompt", required_argument, NULL, 1012}, {"system", required_argument, NULL, 1013}

void cli_page_args_init(cli_page_args *a);
/* Handles getopt's c if it is one of CLI_PAGE_OPTIONS: returns 0 when
 * handled, DOTS_EXIT_USAGE on a bad value (message printed), -1 when c is
 * not a page option. */
int cli_page_option(const char *cmd, int c, const char *arg, cli_page_args *a);
/* The checks across options, once all are read: 0 or DOTS_EXIT_USAGE. */
int cli_page_args_check(const char *cmd, const cli_page_args *a);

/* --shard: "K/N" (0 <= K < N), "auto" (K = SLURM_ARRAY_TASK_ID minus
 * SLURM_ARRAY_TASK_MIN, N = SLURM_ARRAY_TASK_COUNT) or "auto/N" (K =
 * Kubernetes' JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID as it is). */
int cli_shard(const char *cmd, const char *spec, int64_t *k, int64_t *n);

/* mkdir -p; 0 or 1 (message printed). */
int cli_ensure_dir(const char *dir);
/* Opens a model (with its mmproj file when given) and places its weights. */
dots_status cli_open_model(dots_ctx *ctx, const char *path, const char *mmproj, dots_placement placement, dots_model **out);
/* Peak resident set size of this process in MB. */
double cli_peak_rss_mb(void);
/* The decode batch by default: twice the threads (4..16), as far as half
 * the free memory holds a full page's KV cache for each run. */
int64_t cli_default_batch(const dots_model *m, int64_t threads, const dots_page_options *po, dots_precision prec);
/* Seconds on the monotonic clock. */
double cli_now(void);

#endif
