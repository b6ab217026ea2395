/*
 * cli.c - dispatch, logging and option values for the dotsocr commands
 * (see cli.h). Exit status: 0 ok, 1 the job failed, 2 bad command line.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int g_verbosity; /* the CLI's own state: -v / -q */

void cli_more_verbose(void) {
    if (g_verbosity >= 0) g_verbosity++;
}
void cli_quiet(void) { g_verbosity = -1; }
int cli_verbosity(void) { return g_verbosity; }

static void log_to_stderr(dots_log_level level, const char *msg, void *user) {
    (void)user;
    static const char *const names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "dotsocr: %s: %s\n", names[level], msg);
}

dots_ctx *cli_make_ctx(void) {
    dots_ctx *ctx = NULL;
    if (dots_ctx_create(&ctx) != DOTS_OK) {
        fprintf(stderr, "dotsocr: error: out of memory\n");
        return NULL;
    }
    dots_log_level max = g_verbosity < 0 ? DOTS_LOG_ERROR : g_verbosity == 0 ? DOTS_LOG_WARN
                         : g_verbosity == 1 ? DOTS_LOG_INFO : DOTS_LOG_DEBUG;
    dots_ctx_set_log(ctx, log_to_stderr, NULL, max);
    return ctx;
}

int cli_fail(dots_ctx *ctx) {
    fprintf(stderr, "dotsocr: error: %s\n", ctx ? dots_errmsg(ctx) : "out of memory");
    return 1;
}

int cli_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "dotsocr %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'dotsocr help %s')\n", cmd);
    va_end(ap);
    return DOTS_EXIT_USAGE;
}

int cli_bad_option(const char *cmd, int argc, char **argv, const struct option *opts, const char *shortopts) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) break;
        if (a[0] != '-' || a[1] == '\0') continue;
        if (a[1] == '-') {
            size_t n = strcspn(a + 2, "=");
            const struct option *o = opts;
            for (; o->name; o++)
                if (strlen(o->name) == n && strncmp(o->name, a + 2, n) == 0) break;
            if (!o->name) return cli_usage(cmd, "unknown option '%.*s'", (int)(n + 2), a);
            if (o->has_arg == required_argument && !strchr(a, '=')) {
                if (i + 1 >= argc) return cli_usage(cmd, "option '%s' needs a value", a);
                i++;
            }
            if (o->has_arg == no_argument && strchr(a, '=')) return cli_usage(cmd, "option '--%s' takes no value", o->name);
        } else {
            for (const char *c = a + 1; *c; c++) {
                const char *s = strchr(shortopts, *c);
                if (!s || *c == ':') return cli_usage(cmd, "unknown option '-%c'", *c);
                if (s[1] == ':') {
                    if (!c[1] && i + 1 >= argc) return cli_usage(cmd, "option '-%c' needs a value", *c);
                    if (!c[1]) i++;
                    break;
                }
            }
        }
    }
    return cli_usage(cmd, "%s", "bad command line");
}

/* strtoll/strtoull with the whole string consumed and no overflow. */
static bool whole_i64(const char *s, int64_t *out) {
    if (!s || !*s) return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s) return false;
    *out = v;
    return true;
}

int cli_int(const char *cmd, const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out) {
    int64_t v;
    if (!whole_i64(s, &v) || v < lo || v > hi)
        return cli_usage(cmd, "bad %s '%s': an integer in %lld..%lld", opt, s, (long long)lo, (long long)hi);
    *out = v;
    return 0;
}

int cli_u64(const char *cmd, const char *opt, const char *s, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = s && *s && *s != '-' ? strtoull(s, &end, 10) : 0;
    if (!s || !*s || *s == '-' || errno || !end || *end)
        return cli_usage(cmd, "bad %s '%s': an integer in 0..18446744073709551615", opt, s ? s : "");
    *out = v;
    return 0;
}

int cli_float(const char *cmd, const char *opt, const char *s, float lo, float hi, float *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) return cli_usage(cmd, "bad %s '%s': a number in %g..%g", opt, s, lo, hi);
    *out = (float)v;
    return 0;
}

int cli_mode(const char *cmd, const char *s, dots_prompt_mode *out) {
    for (int i = 0; i < DOTS_MODE_COUNT; i++)
        if (strcmp(s, dots_prompt_mode_name((dots_prompt_mode)i)) == 0) {
            *out = (dots_prompt_mode)i;
            return 0;
        }
    return cli_usage(cmd, "unknown --mode '%s': layout-all, layout-only, ocr or grounding", s);
}

int cli_precision(const char *cmd, const char *s, dots_precision *out) {
    if (strcmp(s, "fp32") == 0) *out = DOTS_PRECISION_FP32;
    else if (strcmp(s, "bf16") == 0) *out = DOTS_PRECISION_BF16;
    else if (strcmp(s, "auto") == 0) *out = DOTS_PRECISION_AUTO;
    else return cli_usage(cmd, "bad --precision '%s': fp32, bf16 or auto", s);
    return 0;
}

int cli_bbox(const char *cmd, const char *s, int32_t out[4]) {
    int64_t v[4];
    const char *p = s;
    for (int i = 0; i < 4; i++) {
        char buf[32];
        size_t n = strcspn(p, ",");
        if (n == 0 || n >= sizeof buf || (i < 3 && p[n] != ',') || (i == 3 && p[n] != '\0')) goto bad;
        memcpy(buf, p, n);
        buf[n] = '\0';
        if (!whole_i64(buf, &v[i]) || v[i] < 0 || v[i] > 1000000) goto bad;
        p += n + (i < 3);
    }
    if (v[0] >= v[2] || v[1] >= v[3]) goto bad;
    for (int i = 0; i < 4; i++) out[i] = (int32_t)v[i];
    return 0;
bad:
    return cli_usage(cmd, "bad --bbox '%s': x1,y1,x2,y2, integers in 0..1000000 with x1 < x2 and y1 < y2 (source pixels)", s);
}

int cli_pixels(const char *cmd, int64_t min_px, int64_t max_px) {
    int64_t mn = min_px ? min_px : DOTS_MIN_PIXELS, mx = max_px ? max_px : DOTS_MAX_PIXELS;
    if (mn < DOTS_MIN_PIXELS || mx > DOTS_MAX_PIXELS || mn > mx)
        return cli_usage(cmd, "--min-pixels %lld / --max-pixels %lld: need %d <= min <= max <= %d", (long long)mn, (long long)mx,
                         DOTS_MIN_PIXELS, DOTS_MAX_PIXELS);
    return 0;
}

void cli_page_args_init(cli_page_args *a) {
    memset(a, 0, sizeof *a);
    a->placement = DOTS_PLACE_AUTO;
    a->precision = DOTS_PRECISION_AUTO;
    dots_page_options_init(&a->po);
}

int cli_page_option(const char *cmd, int c, const char *arg, cli_page_args *a) {
    int64_t v = 0;
    int rc = 0;
    switch (c) {
    case 'm': a->model = arg; break;
    case 1002: a->mmproj = arg; break;
    case 1001: a->placement = DOTS_PLACE_MAP; break;
    case 'W': a->placement = DOTS_PLACE_COPY; break;
    case 't': rc = cli_int(cmd, "--threads", arg, 1, 256, &a->threads); break;
    case 'R': rc = cli_precision(cmd, arg, &a->precision); break;
    case 'M': rc = cli_mode(cmd, arg, &a->po.mode); break;
    case 'b':
        rc = cli_bbox(cmd, arg, a->po.bbox);
        a->have_bbox = true;
        break;
    case 'd':
        rc = cli_int(cmd, "--dpi", arg, 1, 2400, &v);
        a->po.dpi = (int32_t)v;
        break;
    case 'F': a->po.fitz_preprocess = false; break;
    case 'n': rc = cli_int(cmd, "--min-pixels", arg, DOTS_MIN_PIXELS, DOTS_MAX_PIXELS, &a->po.min_pixels); break;
    case 'x': rc = cli_int(cmd, "--max-pixels", arg, DOTS_MIN_PIXELS, DOTS_MAX_PIXELS, &a->po.max_pixels); break;
    case 'N':
        rc = cli_int(cmd, "--max-new-tokens", arg, 1, 131072, &v);
        a->po.max_new_tokens = (int32_t)v;
        break;
    case 'T': rc = cli_float(cmd, "--temperature", arg, 0, 100, &a->po.temperature); break;
    case 'P': rc = cli_float(cmd, "--top-p", arg, 0, 1, &a->po.top_p); break;
    case 's': rc = cli_u64(cmd, "--seed", arg, &a->po.seed); break;
    case 1010: a->po.no_json_constraint = true; break;
    case 1011: a->po.no_loop_guard = true; break;
    case 1012: a->po.prompt = arg; break;
    case 1013: a->po.system = arg; break;
    default: return -1;
    }
    return rc ? DOTS_EXIT_USAGE : 0;
}

int cli_page_args_check(const char *cmd, const cli_page_args *a) {
    if (!a->model) return cli_usage(cmd, "%s", "--model MODEL is required");
    if ((a->po.mode == DOTS_MODE_GROUNDING) != a->have_bbox)
        return cli_usage(cmd, "%s", "--bbox goes with --mode grounding, and grounding needs it");
    return cli_pixels(cmd, a->po.min_pixels, a->po.max_pixels);
}

static bool env_int(const char *name, int64_t *out) {
    const char *v = getenv(name);
    return v && whole_i64(v, out);
}

int cli_shard(const char *cmd, const char *spec, int64_t *k, int64_t *n) {
    const int64_t max_n = 1000000;
    if (strncmp(spec, "auto", 4) == 0) {
        int64_t id = 0, min = 0;
        if (spec[4] == '/') {
            if (!whole_i64(spec + 5, n) || *n < 1 || *n > max_n)
                return cli_usage(cmd, "bad --shard '%s': auto/N with N in 1..%lld", spec, (long long)max_n);
            /* K is the index itself (0..N-1): a task resubmitted alone
             * (--array=2) keeps its place in the split */
            if (!env_int("JOB_COMPLETION_INDEX", &id) && !env_int("SLURM_ARRAY_TASK_ID", &id))
                return cli_usage(cmd, "--shard %s: neither JOB_COMPLETION_INDEX nor SLURM_ARRAY_TASK_ID is set", spec);
        } else if (spec[4] == '\0') {
            if (!env_int("SLURM_ARRAY_TASK_ID", &id) || !env_int("SLURM_ARRAY_TASK_COUNT", n))
                return cli_usage(cmd, "--shard auto: SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT are not set (not a Slurm "
                                      "array task? use --shard K/N or auto/N)");
            env_int("SLURM_ARRAY_TASK_MIN", &min);
        } else {
            return cli_usage(cmd, "bad --shard '%s': K/N, auto or auto/N", spec);
        }
        *k = id - min;
    } else {
        const char *slash = strchr(spec, '/');
        char buf[32];
        if (!slash || (size_t)(slash - spec) >= sizeof buf) return cli_usage(cmd, "bad --shard '%s': K/N, auto or auto/N", spec);
        memcpy(buf, spec, (size_t)(slash - spec));
        buf[slash - spec] = '\0';
        if (!whole_i64(buf, k) || !whole_i64(slash + 1, n)) return cli_usage(cmd, "bad --shard '%s': K/N, auto or auto/N", spec);
    }
    if (*n < 1 || *n > max_n || *k < 0 || *k >= *n)
        return cli_usage(cmd, "bad --shard '%s': shard %lld of %lld (need 0 <= K < N <= %lld)", spec, (long long)*k, (long long)*n,
                         (long long)max_n);
    return 0;
}

int cli_ensure_dir(const char *dir) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        fprintf(stderr, "dotsocr: error: %s: path too long\n", dir);
        return 1;
    }
    for (char *p = path + 1;; p++) {
        bool end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            struct stat sb;
            if (mkdir(path, 0777) != 0 && errno != EEXIST) {
                fprintf(stderr, "dotsocr: error: %s: %s\n", path, strerror(errno));
                return 1;
            }
            if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
                fprintf(stderr, "dotsocr: error: %s: not a directory\n", path);
                return 1;
            }
            if (end) break;
            *p = '/';
        }
    }
    return 0;
}

dots_status cli_open_model(dots_ctx *ctx, const char *path, const char *mmproj, dots_placement placement, dots_model **out) {
    dots_model *m = NULL;
    dots_status s = mmproj ? dots_model_open_pair(ctx, path, mmproj, &m) : dots_model_open(ctx, path, &m);
    if (s == DOTS_OK) s = dots_model_place(ctx, m, placement);
    if (s != DOTS_OK) {
        dots_model_close(m);
        return s;
    }
    *out = m;
    return DOTS_OK;
}

double cli_peak_rss_mb(void) {
    struct rusage ru;
#ifdef __APPLE__ /* bytes there, kilobytes on Linux */
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / (1024.0 * 1024.0) : -1;
#else
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : -1;
#endif
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------- dispatch */

static const dots_cli_command public_commands[] = {
    {"parse", dots_cmd_parse, "documents -> layout JSON, Markdown and layout pictures per page"},
    {"run", dots_cmd_run, "one page -> the model's raw answer, streamed"},
    {"serve", dots_cmd_serve, "an OpenAI-compatible HTTP server (the official parser's backend)"},
    {"shards", dots_cmd_shards, "totals of the progress files that parse --shard leaves"},
    {"info", dots_cmd_info, "validate a model and print its config and sizes"},
    {"convert", dots_cmd_convert, "model -> one GGUF file, or llama.cpp's LM + mmproj pair"},
    {"tokenize", dots_cmd_tokenize, "text on stdin -> token ids"},
    {"detokenize", dots_cmd_detokenize, "token ids on stdin -> text"},
    {"make-model", dots_cmd_make_model, "write a random-weight checkpoint (tests, benchmarks)"},
};
#define N_PUBLIC (sizeof public_commands / sizeof public_commands[0])

/* The command called name: extra's first (a tool's own variant of a public
 * command), then the public ones. */
static const dots_cli_command *find_command(const char *name, const dots_cli_command *extra, size_t n_extra) {
    for (size_t i = 0; i < n_extra; i++)
        if (strcmp(name, extra[i].name) == 0) return &extra[i];
    for (size_t i = 0; i < N_PUBLIC; i++)
        if (strcmp(name, public_commands[i].name) == 0) return &public_commands[i];
    return NULL;
}

static void print_usage(FILE *f, const char *prog, const dots_cli_command *extra, size_t n_extra) {
    fprintf(f, "%s %s - the dots.ocr document parser, on your own machine\n\n", prog, DOTS_VERSION_STRING);
    fprintf(f, "usage: %s COMMAND [options] ...\n\ncommands:\n", prog);
    for (size_t i = 0; i < N_PUBLIC; i++) {
        const dots_cli_command *c = find_command(public_commands[i].name, extra, n_extra);
        fprintf(f, "  %-12s %s\n", c->name, c->summary);
    }
    for (size_t i = 0; i < n_extra; i++)
        if (!find_command(extra[i].name, NULL, 0)) fprintf(f, "  %-12s %s\n", extra[i].name, extra[i].summary);
    fprintf(f, "  %-12s %s\n  %-12s %s\n", "help [CMD]", "show help", "version", "print the version");
}

int dots_cli_main(const char *prog, int argc, char **argv, const dots_cli_command *extra, size_t n_extra) {
    if (argc < 2) {
        print_usage(stderr, prog, extra, n_extra);
        return DOTS_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "version") == 0 || strcmp(name, "--version") == 0) {
        printf("%s %s\n", prog, DOTS_VERSION_STRING);
        return 0;
    }
    opterr = 0; /* the commands print their own one-line message */
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        if (argc >= 3) {
            const dots_cli_command *c = find_command(argv[2], extra, n_extra);
            if (c) {
                char *args[] = {argv[2], (char *)"--help", NULL};
                return c->run(2, args);
            }
            fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[2]);
            return DOTS_EXIT_USAGE;
        }
        print_usage(stdout, prog, extra, n_extra);
        return 0;
    }
    const dots_cli_command *c = find_command(name, extra, n_extra);
    if (c) return c->run(argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown command '%s' (see '%s help')\n", prog, name, prog);
    return DOTS_EXIT_USAGE;
}

/* Bytes of memory available without swapping: MemAvailable counts the page
 * cache the kernel can drop (a mapped model fills it); MemFree does not. */
static int64_t mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    long long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
    if (f) fclose(f);
    if (kb >= 0) return (int64_t)kb * 1024;
#ifdef _SC_AVPHYS_PAGES
    return (int64_t)sysconf(_SC_AVPHYS_PAGES) * (int64_t)sysconf(_SC_PAGESIZE);
#else
    return -1; /* macOS: unknown, the batch is not cut down for memory */
#endif
}

/* --batch by default: decode is bound by streaming the weights, so more
 * pages per step pay until the cores are busy (twice the threads, at least
 * 4, at most 16), as far as memory allows each page a KV cache for a full
 * page's prompt and its whole token budget. */
int64_t cli_default_batch(const dots_model *m, int64_t threads, const dots_page_options *po, dots_precision prec) {
    const dots_config *cfg = dots_model_config(m);
    int64_t n = 2 * (threads > 0 ? threads : sysconf(_SC_NPROCESSORS_ONLN));
    if (n < 4) n = 4;
    if (n > 16) n = 16;
    const int64_t tokens = (po->max_new_tokens ? po->max_new_tokens : 16384) + 5000; /* an A4 page at 200 dpi: ~4,900 image tokens */
    const int64_t per_page = 2 * (int64_t)cfg->text.num_hidden_layers * cfg->text.num_key_value_heads * cfg->text.head_dim *
                             (prec == DOTS_PRECISION_BF16 ? 2 : 4) * tokens;
    int64_t avail = mem_available();
    if (avail > 0 && per_page > 0 && n > avail / 2 / per_page) n = avail / 2 / per_page; /* half of what is free */
    return n < 1 ? 1 : n;
}
