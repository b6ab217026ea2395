/*
 * cmd_tokenize.c - `dotsocr tokenize` / `detokenize`: text <-> token ids on stdin/stdout.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------ tokenize / detokenize */

#define DOTS_MAX_STDIN_BYTES (256u << 20) /* protects memory from an endless pipe */

/* Reads all of stdin. NULL (with a message printed) on error. */
static char *read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) return NULL;
    for (;;) {
        if (n == cap) {
            if (cap >= DOTS_MAX_STDIN_BYTES) {
                fprintf(stderr, "dotsocr: error: standard input is over %u bytes\n", DOTS_MAX_STDIN_BYTES);
                free(buf);
                return NULL;
            }
            char *b = realloc(buf, cap * 2 + 1);
            if (!b) {
                free(buf);
                fprintf(stderr, "dotsocr: error: out of memory reading standard input\n");
                return NULL;
            }
            buf = b;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0) break;
    }
    if (ferror(stdin)) {
        fprintf(stderr, "dotsocr: error: cannot read standard input\n");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static const char help_tokenize[] =
    "usage: dotsocr tokenize --model DIR [--bench N]\n"
    "  Reads UTF-8 text on standard input (all of it, as one text; added tokens\n"
    "  such as <|imgpad|> are recognised) and prints the token ids on one line.\n"
    "  DIR is a model directory (tokenizer.json or vocab.json + merges.txt) or a\n"
    "  tokenizer.json file. --bench N encodes the input N times and prints the\n"
    "  load time and encoding throughput instead.\n";

static const char help_detokenize[] =
    "usage: dotsocr detokenize --model DIR [--skip-special]\n"
    "  Reads token ids (separated by spaces, commas or newlines) on standard\n"
    "  input and prints the decoded text. Invalid UTF-8 becomes U+FFFD.\n";

static int open_tokenizer(dots_ctx *ctx, const char *model, dots_tokenizer **tok, double *load_s) {
    double t0 = cli_now();
    if (dots_tokenizer_open(ctx, model, tok) != DOTS_OK) return cli_fail(ctx);
    *load_s = cli_now() - t0;
    return 0;
}

int dots_cmd_tokenize(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, NULL, 'm'}, {"bench", required_argument, NULL, 'b'},
                                         {"verbose", no_argument, NULL, 'v'}, {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    const char *model = NULL;
    int64_t bench = 0;
    int c;
    while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'b':
            if (cli_int("tokenize", "--bench", optarg, 1, 1000000, &bench)) return DOTS_EXIT_USAGE;
            break;
        case 'v': cli_more_verbose(); break;
        case 'q': cli_quiet(); break;
        case 'h': fputs(help_tokenize, stdout); return 0;
        default: return cli_bad_option("tokenize", argc, argv, opts, "vqh");
        }
    }
    if (!model) return cli_usage("tokenize", "%s", "--model DIR is required");
    if (optind != argc) return cli_usage("tokenize", "unexpected argument '%s'", argv[optind]);
    dots_ctx *ctx = cli_make_ctx();
    if (!ctx) return 1;
    dots_tokenizer *tok = NULL;
    double load_s = 0;
    size_t len = 0;
    char *text = NULL;
    int rc = open_tokenizer(ctx, model, &tok, &load_s);
    if (rc == 0 && !(text = read_stdin(&len))) rc = 1;
    int32_t *ids = NULL;
    size_t n = 0;
    double t0 = cli_now();
    for (int64_t r = 0; rc == 0 && r < (bench ? bench : 1); r++) {
        dots_free(ids);
        ids = NULL;
        if (dots_tok_encode(ctx, tok, text, len, &ids, &n) != DOTS_OK) rc = cli_fail(ctx);
    }
    if (rc == 0 && bench) {
        double s = cli_now() - t0;
        printf("load %.3f s; encoded %zu bytes -> %zu tokens x %llu in %.3f s: %.2f MB/s, %.0f tokens/s\n", load_s, len, n,
               (unsigned long long)bench, s, (double)len * (double)bench / s / 1e6, (double)n * (double)bench / s);
    } else if (rc == 0) {
        for (size_t i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
        printf("\n");
    }
    dots_free(ids);
    free(text);
    dots_tokenizer_free(tok);
    dots_ctx_free(ctx);
    return rc;
}

int dots_cmd_detokenize(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, NULL, 'm'}, {"skip-special", no_argument, NULL, 's'},
                                         {"verbose", no_argument, NULL, 'v'}, {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    const char *model = NULL;
    bool skip = false;
    int c;
    while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 's': skip = true; break;
        case 'v': cli_more_verbose(); break;
        case 'q': cli_quiet(); break;
        case 'h': fputs(help_detokenize, stdout); return 0;
        default: return cli_bad_option("detokenize", argc, argv, opts, "vqh");
        }
    }
    if (!model) return cli_usage("detokenize", "%s", "--model DIR is required");
    if (optind != argc) return cli_usage("detokenize", "unexpected argument '%s'", argv[optind]);
    dots_ctx *ctx = cli_make_ctx();
    if (!ctx) return 1;
    dots_tokenizer *tok = NULL;
    double load_s;
    size_t len = 0, n = 0, cap = 0;
    char *text = NULL, *out = NULL;
    int32_t *ids = NULL;
    int rc = open_tokenizer(ctx, model, &tok, &load_s);
    if (rc == 0 && !(text = read_stdin(&len))) rc = 1;
    for (char *p = text; rc == 0 && p && *p;) {
        if (*p == ' ' || *p == ',' || *p == '\n' || *p == '\t' || *p == '\r') {
            p++;
            continue;
        }
        char *end = NULL;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < INT32_MIN || v > INT32_MAX || (*end && !strchr(" ,\n\t\r", *end))) {
            int shown = (int)strcspn(p, " ,\n\t\r");
            fprintf(stderr, "dotsocr: error: standard input: '%.*s' is not a token id (an integer in 0..2147483647)\n",
                    shown > 40 ? 40 : shown, p);
            rc = 1;
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            int32_t *b = realloc(ids, cap * sizeof *ids);
            if (!b) {
                fprintf(stderr, "dotsocr: error: out of memory\n");
                rc = 1;
                break;
            }
            ids = b;
        }
        ids[n++] = (int32_t)v;
        p = end;
    }
    size_t out_len = 0;
    if (rc == 0 && dots_tok_decode(ctx, tok, ids, n, skip, &out, &out_len) != DOTS_OK) rc = cli_fail(ctx);
    if (rc == 0) fwrite(out, 1, out_len, stdout);
    dots_free(out);
    free(ids);
    free(text);
    dots_tokenizer_free(tok);
    dots_ctx_free(ctx);
    return rc;
}

