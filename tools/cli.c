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
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : -1;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------- dispatch */

static void print_usage(FILE *f, const char *prog, const dots_cli_command *cmds, size_t n) {
    fprintf(f, "%s %s - the dots.ocr document parser, on your own machine\n\n", prog, DOTS_VERSION_STRING);
    fprintf(f, "usage: %s COMMAND [options] ...\n\ncommands:\n", prog);
    for (size_t i = 0; i < n; i++) fprintf(f, "  %-12s %s\n", cmds[i].name, cmds[i].summary);
    fprintf(f, "  %-12s %s\n  %-12s %s\n", "help [CMD]", "show help", "version", "print the version");
}

int dots_cli_main(const char *prog, int argc, char **argv, const dots_cli_command *cmds, size_t n) {
    if (argc < 2) {
        print_usage(stderr, prog, cmds, n);
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
            for (size_t i = 0; i < n; i++)
                if (strcmp(argv[2], cmds[i].name) == 0) {
                    char *args[] = {argv[2], (char *)"--help", NULL};
                    return cmds[i].run(2, args);
                }
            fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[2]);
            return DOTS_EXIT_USAGE;
        }
        print_usage(stdout, prog, cmds, n);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, cmds[i].name) == 0) return cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown command '%s' (see '%s help')\n", prog, name, prog);
    return DOTS_EXIT_USAGE;
}
