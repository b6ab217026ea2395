/*
 * debug_main.c - dotsocr-debug: the dotsocr commands plus the ones that
 * reach into the library's internals, for tests and benchmarks:
 *
 *   preprocess --dump   the decoded page, the resized image, pixel rows (.npy)
 *   vision --dump       the encoder's embeddings and every block's output
 *   run --dump          prompt ids, prefill logits, tokens; --teacher-force
 *                       feeds given tokens and records the logits after each.
 *                       Unlike `dotsocr run`, its --bbox is in the model's
 *                       resized pixels and no fitz_preprocess is applied:
 *                       exactly the input the PyTorch reference gets.
 *   bench               every stage against this machine's measured limits
 *
 * Built with the tests, never installed.
 */
#include "../cli.h"

#include "decode/guided.h"
#include "io/npy.h"
#include "lm/qwen2.h"
#include "model/weights.h"
#include "kernels/kernels.h"
#include "pipeline/run.h"
#include "prompt/prompt.h"
#include "vision/vision.h"

#include <errno.h>
#include <jansson.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static bool parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s || *s == '-') return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

static bool parse_i64_opt(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    uint64_t u;
    if (!parse_u64(s, &u) || u > (uint64_t)hi || (int64_t)u < lo) return false;
    *out = (int64_t)u;
    return true;
}

/* --mmproj FILE: the vision file of an LM + mmproj pair */
static const char *g_mmproj;

/* --mmap (> 0), --no-mmap (< 0) or the library's default placement */
static dots_status place_weights(dots_ctx *ctx, dots_model *model, int mmap_choice) {
    return dots_model_place(ctx, model, mmap_choice > 0 ? DOTS_PLACE_MAP : mmap_choice < 0 ? DOTS_PLACE_COPY : DOTS_PLACE_AUTO);
}

static bool parse_precision(const char *s, bool *bf16) {
    if (strcmp(s, "fp32") == 0) *bf16 = false;
    else if (strcmp(s, "bf16") == 0) *bf16 = true;
    else return false;
    return true;
}

/* ------------------------------------------------------------ preprocess */

static const char help_preprocess[] =
    "usage: dotsocr preprocess --model DIR INPUT [--page K] [--dpi N] [--min-pixels N] [--max-pixels N]\n"
    "                          [--fitz-preprocess] [--dump OUT_DIR] [--mmproj FILE]\n"
    "  Runs the image side of the pipeline on one page: decode (PNG, JPEG, WebP, TIFF,\n"
    "  PNM; PDF pages rendered with MuPDF at --dpi, default 200, or 72 when a side\n"
    "  would exceed 4500 px), smart_resize, Pillow-exact bicubic resize, normalisation\n"
    "  and patch rows. Prints the sizes, grid and token count, and timings. --dump\n"
    "  writes input.npy (uint8 HxWx3, the decoded page), resized.npy (uint8),\n"
    "  pixels.npy (float32 N x 588) and positions.npy (int32 N x 2).\n"
    "  --fitz-preprocess renders an image through MuPDF first, as the official parser\n"
    "  does by default (input.npy is then that render).\n"
    "  --page is 1-based; --min-pixels/--max-pixels must satisfy\n"
    "  3136 <= min <= max <= 11289600, as in the official parser.\n";


/* mkdir -p */

static int cmd_preprocess(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'}, {"page", required_argument, NULL, 'p'},
        {"dpi", required_argument, NULL, 'd'}, {"min-pixels", required_argument, NULL, 'n'},
        {"max-pixels", required_argument, NULL, 'x'}, {"dump", required_argument, NULL, 'o'},
        {"fitz-preprocess", no_argument, NULL, 'F'}, {"mmproj", required_argument, NULL, 1002},
        {"verbose", no_argument, NULL, 'v'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    const char *model_dir = NULL, *dump = NULL;
    bool fitz = false;
    int64_t page = 1, dpi = 0, min_px = 0, max_px = 0;
    int c;
    while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 1002: g_mmproj = optarg; break;
        case 'p':
            if (!parse_i64_opt(optarg, 1, 1000000, &page)) return cli_usage("preprocess", "bad --page '%s' (1-based)", optarg);
            break;
        case 'd':
            if (!parse_i64_opt(optarg, 1, 2400, &dpi)) return cli_usage("preprocess", "bad --dpi '%s' (1..2400)", optarg);
            break;
        case 'n':
            if (!parse_i64_opt(optarg, 1, INT32_MAX, &min_px)) return cli_usage("preprocess", "bad --min-pixels '%s'", optarg);
            break;
        case 'x':
            if (!parse_i64_opt(optarg, 1, INT32_MAX, &max_px)) return cli_usage("preprocess", "bad --max-pixels '%s'", optarg);
            break;
        case 'o': dump = optarg; break;
        case 'F': fitz = true; break;
        case 'v': cli_more_verbose(); break;
        case 'q': cli_quiet(); break;
        case 'h': fputs(help_preprocess, stdout); return 0;
        default: return cli_usage("preprocess", "bad option '%s'", argv[optind - 1]);
        }
    }
    if (!model_dir) return cli_usage("preprocess", "%s", "--model DIR is required");
    if (argc - optind != 1) return cli_usage("preprocess", "expected one INPUT, got %s", argc - optind ? "more" : "none");
    const char *input = argv[optind];
    dots_ctx *ctx = cli_make_ctx();
    if (!ctx) return 1;
    dots_model *model = NULL;
    dots_document *doc = NULL;
    dots_image page_img = {0}, resized = {0};
    dots_pixel_rows rows = {0};
    int rc = 0;
    int32_t dpi_used = 0;
    double t0 = dots_monotonic_s(), t_decode = 0, t_prep = 0;
    if (cli_open_model(ctx, model_dir, g_mmproj, DOTS_PLACE_MAP, &model) != DOTS_OK || dots_document_open(ctx, input, &doc) != DOTS_OK ||
        dots_document_render_page(ctx, doc, (int32_t)(page - 1), (int32_t)dpi, &page_img, &dpi_used) != DOTS_OK) {
        rc = cli_fail(ctx);
        goto done;
    }
    if (fitz && !dots_document_is_pdf(doc)) {
        dots_image r = {0};
        if (dots_image_fitz_render(ctx, &page_img, (int32_t)dpi, &r, &dpi_used) != DOTS_OK) {
            rc = cli_fail(ctx);
            goto done;
        }
        dots_image_free(&page_img);
        page_img = r;
    }
    t_decode = dots_monotonic_s() - t0;
    t0 = dots_monotonic_s();
    if (dots_preprocess(ctx, dots_model_config(model), &page_img, min_px, max_px, &resized, &rows) != DOTS_OK) {
        rc = cli_fail(ctx);
        goto done;
    }
    t_prep = dots_monotonic_s() - t0;
    printf("input: %s, page %lld of %d%s\n", input, (long long)page, dots_document_n_pages(doc),
           dots_document_is_pdf(doc) ? "" : " (image)");
    if (dots_document_is_pdf(doc)) printf("rendered at %d dpi\n", dpi_used);
    printf("size: %d x %d -> resized %d x %d\n", page_img.width_px, page_img.height_px, resized.width_px, resized.height_px);
    printf("grid: %d x %d patches = %lld patches, %lld LM image tokens\n", rows.grid_h, rows.grid_w,
           (long long)rows.n_patches, (long long)rows.n_patches / 4);
    printf("time: decode %.1f ms, preprocess %.1f ms\n", 1e3 * t_decode, 1e3 * t_prep);
    if (dump) {
        if ((rc = cli_ensure_dir(dump)) != 0) goto done;
        char path[4096];
        const int64_t in_shape[3] = {page_img.height_px, page_img.width_px, 3};
        const int64_t rs_shape[3] = {resized.height_px, resized.width_px, 3};
        const int64_t px_shape[2] = {rows.n_patches, rows.patch_dim};
        const int64_t pos_shape[2] = {rows.n_patches, 2};
        struct { const char *name, *descr; const int64_t *shape; int nd; const void *data; size_t es; } files[] = {
            {"input.npy", "|u1", in_shape, 3, page_img.rgb, 1},
            {"resized.npy", "|u1", rs_shape, 3, resized.rgb, 1},
            {"pixels.npy", "<f4", px_shape, 2, rows.pixels, 4},
            {"positions.npy", "<i4", pos_shape, 2, rows.positions, 4},
        };
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            snprintf(path, sizeof path, "%s/%s", dump, files[i].name);
            if (dots_npy_write(ctx, path, files[i].descr, files[i].shape, files[i].nd, files[i].data, files[i].es) != DOTS_OK) {
                rc = cli_fail(ctx);
                goto done;
            }
        }
    }
done:
    dots_pixel_rows_free(&rows);
    dots_image_free(&resized);
    dots_image_free(&page_img);
    dots_document_close(doc);
    dots_model_close(model);
    dots_ctx_free(ctx);
    return rc;
}

/* The policy of dots_cli.place_weights (cmd_parse.h). */

/* ---------------------------------------------------------------- vision */

static const char help_vision[] =
    "usage: dotsocr vision --model DIR INPUT [--page K] [--dpi N] [--min-pixels N] [--max-pixels N]\n"
    "                      [--threads N] [--precision fp32|bf16] [--dump OUT_DIR] [--dump-blocks] [--no-mmap|--mmap] [--mmproj FILE]\n"
    "  Preprocesses one page and runs the vision encoder. Prints the grid, the time\n"
    "  and GFLOP/s. --dump writes vision_embeds.npy (float32 tokens x hidden);\n"
    "  --dump-blocks also patch_embed.npy, block_XX.npy and post_norm.npy.\n";

typedef struct dump_ctx {
    const char *dir;
    dots_ctx *ctx;
    int failed;
} dump_ctx;

static void dump_block(void *user, const char *name, const float *data, int64_t rows, int64_t cols) {
    dump_ctx *d = user;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", d->dir, name);
    const int64_t shape[2] = {rows, cols};
    if (dots_npy_write(d->ctx, path, "<f4", shape, 2, data, 4) != DOTS_OK) d->failed = 1;
}


static int cmd_vision(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'}, {"page", required_argument, NULL, 'p'},
        {"dpi", required_argument, NULL, 'd'}, {"min-pixels", required_argument, NULL, 'n'},
        {"max-pixels", required_argument, NULL, 'x'}, {"dump", required_argument, NULL, 'o'},
        {"dump-blocks", no_argument, NULL, 'B'}, {"threads", required_argument, NULL, 't'},
        {"precision", required_argument, NULL, 'P'}, {"no-mmap", no_argument, NULL, 'W'}, {"mmap", no_argument, NULL, 1001},
        {"mmproj", required_argument, NULL, 1002}, {"verbose", no_argument, NULL, 'v'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    const char *model_dir = NULL, *dump = NULL;
    int64_t page = 1, dpi = 0, min_px = 0, max_px = 0, threads = 0;
    bool blocks = false, bf16 = false;
    int mmap_choice = 0; /* the vision tower is never repacked: mapped unless --no-mmap */
    int c;
    while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 1002: g_mmproj = optarg; break;
        case 'p': if (!parse_i64_opt(optarg, 1, 1000000, &page)) return cli_usage("vision", "bad --page '%s'", optarg); break;
        case 'd': if (!parse_i64_opt(optarg, 1, 2400, &dpi)) return cli_usage("vision", "bad --dpi '%s'", optarg); break;
        case 'n': if (!parse_i64_opt(optarg, 1, INT32_MAX, &min_px)) return cli_usage("vision", "bad --min-pixels '%s'", optarg); break;
        case 'x': if (!parse_i64_opt(optarg, 1, INT32_MAX, &max_px)) return cli_usage("vision", "bad --max-pixels '%s'", optarg); break;
        case 't': if (!parse_i64_opt(optarg, 1, 256, &threads)) return cli_usage("vision", "bad --threads '%s' (1..256)", optarg); break;
        case 'o': dump = optarg; break;
        case 'W': mmap_choice = -1; break;
        case 1001: mmap_choice = 1; break;
        case 'B': blocks = true; break;
        case 'P':
            if (!parse_precision(optarg, &bf16)) return cli_usage("vision", "bad --precision '%s' (fp32 or bf16)", optarg);
            break;
        case 'v': cli_more_verbose(); break;
        case 'q': cli_quiet(); break;
        case 'h': fputs(help_vision, stdout); return 0;
        default: return cli_usage("vision", "bad option '%s'", argv[optind - 1]);
        }
    }
    if (!model_dir) return cli_usage("vision", "%s", "--model DIR is required");
    if (argc - optind != 1) return cli_usage("vision", "expected one INPUT, got %s", argc - optind ? "more" : "none");
    if (blocks && !dump) return cli_usage("vision", "%s", "--dump-blocks needs --dump OUT_DIR");
    dots_ctx *ctx = cli_make_ctx();
    if (!ctx) return 1;
    dots_model *model = NULL;
    dots_document *doc = NULL;
    dots_image img = {0};
    dots_pixel_rows rows = {0};
    float *emb = NULL;
    int64_t n_emb = 0;
    int rc = 0;
    dots_pool *pool = dots_pool_create(threads ? (int)threads : dots_default_threads());
    dots_scratch scratch = {0}, worker_scratch[DOTS_MAX_THREADS] = {{0}};
    dots_kernels kern = {dots_cpu_isa(), pool, &scratch, bf16, worker_scratch, NULL};
    dump_ctx dc = {dump, ctx, 0};
    if (!pool) {
        fprintf(stderr, "dotsocr: error: cannot start threads\n");
        rc = 1;
        goto done;
    }
    if (cli_open_model(ctx, model_dir, g_mmproj, DOTS_PLACE_MAP, &model) != DOTS_OK || (mmap_choice < 0 && dots_model_load_to_ram(ctx, model) != DOTS_OK) ||
        dots_document_open(ctx, argv[optind], &doc) != DOTS_OK ||
        dots_document_render_page(ctx, doc, (int32_t)(page - 1), (int32_t)dpi, &img, NULL) != DOTS_OK ||
        dots_preprocess(ctx, dots_model_config(model), &img, min_px, max_px, NULL, &rows) != DOTS_OK) {
        rc = cli_fail(ctx);
        goto done;
    }
    if (dump && (rc = cli_ensure_dir(dump)) != 0) goto done;
    double t0 = dots_monotonic_s();
    if (dots_vision_encode(ctx, dots_model_config(model), dots_model_weights(model), &kern, &rows, &emb, &n_emb,
                           blocks ? dump_block : NULL, &dc) != DOTS_OK) {
        rc = cli_fail(ctx);
        goto done;
    }
    double secs = dots_monotonic_s() - t0, flops = dots_vision_flops(dots_model_config(model), rows.n_patches);
    printf("grid %d x %d: %lld patches -> %lld tokens\n", rows.grid_h, rows.grid_w, (long long)rows.n_patches,
           (long long)n_emb);
    printf("vision: %.3f s, %.1f GFLOP, %.1f GFLOP/s, %d threads, %s kernels, %s, peak RSS %.0f MB\n", secs, flops / 1e9,
           flops / 1e9 / secs, dots_pool_size(pool), dots_isa_name(kern.isa),
           bf16 && kern.isa >= DOTS_ISA_AVX512BF16 ? "bf16 products" : "fp32", cli_peak_rss_mb());
    if (dc.failed) {
        rc = cli_fail(ctx);
        goto done;
    }
    if (dump) {
        char path[4096];
        snprintf(path, sizeof path, "%s/vision_embeds.npy", dump);
        const int64_t shape[2] = {n_emb, dots_model_config(model)->vision.hidden_size};
        if (dots_npy_write(ctx, path, "<f4", shape, 2, emb, 4) != DOTS_OK) rc = cli_fail(ctx);
    }
done:
    free(emb);
    dots_pixel_rows_free(&rows);
    dots_image_free(&img);
    dots_document_close(doc);
    dots_model_close(model);
    dots_pool_free(pool);
    dots_scratch_free(&scratch);
    for (int i = 0; i < DOTS_MAX_THREADS; i++) dots_scratch_free(&worker_scratch[i]);
    dots_ctx_free(ctx);
    return rc;
}

/* ------------------------------------------------------------------- run */

static const char help_run[] =
    "usage: dotsocr run --model DIR INPUT [--mode layout-all|layout-only|ocr|grounding] [--bbox x1,y1,x2,y2]\n"
    "                   [--page K] [--dpi N] [--min-pixels N] [--max-pixels N] [--max-new-tokens N]\n"
    "                   [--temperature T] [--top-p P] [--seed N] [--threads N]\n"
    "                   [--precision fp32|bf16] [--dump OUT_DIR] [--teacher-force TOKENS.npy] [--no-mmap|--mmap]\n"
    "                   [--mmproj FILE] [--json-constraint] [--loop-guard]\n"
    "  Runs the model on one page and prints its raw answer as it is generated\n"
    "  (stdout), then statistics (stderr). Greedy unless --temperature > 0. Stops at\n"
    "  an EOS token, at --max-new-tokens (default 16384) or on Ctrl-C, keeping what\n"
    "  was produced. --bbox (grounding) is in resized-image pixels, appended to the\n"
    "  prompt as the official parser does. --dump writes prompt_ids.npy,\n"
    "  logits_prefill.npy (last position) and tokens.npy; with --teacher-force the\n"
    "  given tokens are fed instead of chosen and logits_teacher.npy [T, vocab]\n"
    "  holds the logits after each. Weights: see parse --help.\n";

static volatile sig_atomic_t g_interrupted; /* set by SIGINT; the CLI's only signal state */

static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

static bool stream_token(void *user, int32_t token, const char *text, size_t len) {
    (void)user;
    (void)token;
    if (len) {
        fwrite(text, 1, len, stdout);
        fflush(stdout);
    }
    return !g_interrupted;
}

typedef struct run_dump {
    const char *dir;
    dots_ctx *ctx;
    int failed;
    float *teacher; /* [n_forced, vocab] */
    int64_t vocab;
} run_dump;

static void dump_prompt(void *user, const int32_t *ids, int64_t n) {
    run_dump *d = user;
    char path[4096];
    snprintf(path, sizeof path, "%s/prompt_ids.npy", d->dir);
    if (dots_npy_write(d->ctx, path, "<i4", &n, 1, ids, 4) != DOTS_OK) d->failed = 1;
}

static void dump_logits(void *user, int64_t step, const float *logits, int64_t vocab) {
    run_dump *d = user;
    if (step < 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/logits_prefill.npy", d->dir);
        if (dots_npy_write(d->ctx, path, "<f4", &vocab, 1, logits, 4) != DOTS_OK) d->failed = 1;
    } else if (d->teacher) {
        memcpy(d->teacher + step * vocab, logits, sizeof(float) * (size_t)vocab);
    }
}

static bool parse_mode(const char *s, dots_prompt_mode *m) {
    for (int i = 0; i < DOTS_MODE_COUNT; i++)
        if (strcmp(s, dots_prompt_mode_name((dots_prompt_mode)i)) == 0) {
            *m = (dots_prompt_mode)i;
            return true;
        }
    return false;
}

static bool parse_float(const char *s, float lo, float hi, float *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) return false;
    *out = (float)v;
    return true;
}

static int cmd_run(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'}, {"mode", required_argument, NULL, 'M'},
        {"bbox", required_argument, NULL, 'b'}, {"page", required_argument, NULL, 'p'},
        {"dpi", required_argument, NULL, 'd'}, {"min-pixels", required_argument, NULL, 'n'},
        {"max-pixels", required_argument, NULL, 'x'}, {"max-new-tokens", required_argument, NULL, 'N'},
        {"temperature", required_argument, NULL, 'T'}, {"top-p", required_argument, NULL, 'P'},
        {"seed", required_argument, NULL, 's'}, {"threads", required_argument, NULL, 't'},
        {"dump", required_argument, NULL, 'o'}, {"teacher-force", required_argument, NULL, 'F'},
        {"precision", required_argument, NULL, 'R'}, {"no-mmap", no_argument, NULL, 'W'}, {"mmap", no_argument, NULL, 1001},
        {"mmproj", required_argument, NULL, 1002}, {"verbose", no_argument, NULL, 'v'}, {"quiet", no_argument, NULL, 'q'},
        {"json-constraint", no_argument, NULL, 1010}, {"loop-guard", no_argument, NULL, 1011},
        {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    const char *model_dir = NULL, *dump = NULL, *forced_path = NULL;
    bool bf16 = false;
    int mmap_choice = 0;
    int64_t page = 1, dpi = 0, threads = 0, max_new = 0;
    uint64_t seed = 0;
    dots_run_params rp;
    dots_run_params_init(&rp);
    /* the reference has neither: same tokens unless asked (--json-constraint, --loop-guard) */
    rp.no_json_constraint = true;
    rp.no_loop_guard = true;
    bool have_bbox = false;
    int c;
    while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 1002: g_mmproj = optarg; break;
        case 'W': mmap_choice = -1; break;
        case 1001: mmap_choice = 1; break;
        case 'M': if (!parse_mode(optarg, &rp.mode)) return cli_usage("run", "unknown mode '%s'", optarg); break;
        case 'b': {
            int n = 0;
            if (sscanf(optarg, "%d,%d,%d,%d%n", &rp.bbox[0], &rp.bbox[1], &rp.bbox[2], &rp.bbox[3], &n) != 4 || optarg[n])
                return cli_usage("run", "bad --bbox '%s' (x1,y1,x2,y2)", optarg);
            have_bbox = true;
            break;
        }
        case 'p': if (!parse_i64_opt(optarg, 1, 1000000, &page)) return cli_usage("run", "bad --page '%s'", optarg); break;
        case 'd': if (!parse_i64_opt(optarg, 1, 2400, &dpi)) return cli_usage("run", "bad --dpi '%s'", optarg); break;
        case 'n': if (!parse_i64_opt(optarg, 1, INT32_MAX, &rp.min_pixels)) return cli_usage("run", "bad --min-pixels '%s'", optarg); break;
        case 'x': if (!parse_i64_opt(optarg, 1, INT32_MAX, &rp.max_pixels)) return cli_usage("run", "bad --max-pixels '%s'", optarg); break;
        case 'N': if (!parse_i64_opt(optarg, 1, 131072, &max_new)) return cli_usage("run", "bad --max-new-tokens '%s'", optarg); break;
        case 'T': if (!parse_float(optarg, 0, 100, &rp.temperature)) return cli_usage("run", "bad --temperature '%s'", optarg); break;
        case 'P': if (!parse_float(optarg, 0, 1, &rp.top_p)) return cli_usage("run", "bad --top-p '%s' (0..1)", optarg); break;
        case 's': if (!parse_u64(optarg, &seed)) return cli_usage("run", "bad --seed '%s'", optarg); break;
        case 't': if (!parse_i64_opt(optarg, 1, 256, &threads)) return cli_usage("run", "bad --threads '%s'", optarg); break;
        case 'o': dump = optarg; break;
        case 'F': forced_path = optarg; break;
        case 'R':
            if (!parse_precision(optarg, &bf16)) return cli_usage("run", "bad --precision '%s' (fp32 or bf16)", optarg);
            break;
        case 'v': cli_more_verbose(); break;
        case 'q': cli_quiet(); break;
        case 1010: rp.no_json_constraint = false; break;
        case 1011: rp.no_loop_guard = false; break;
        case 'h': fputs(help_run, stdout); return 0;
        default: return cli_usage("run", "bad option '%s'", argv[optind - 1]);
        }
    }
    if (!model_dir) return cli_usage("run", "%s", "--model DIR is required");
    if (argc - optind != 1) return cli_usage("run", "expected one INPUT, got %s", argc - optind ? "more" : "none");
    if ((rp.mode == DOTS_MODE_GROUNDING) != have_bbox)
        return cli_usage("run", "%s", "--bbox goes with --mode grounding, and grounding needs it");
    if (forced_path && !dump) return cli_usage("run", "%s", "--teacher-force needs --dump OUT_DIR");
    rp.max_new_tokens = (int32_t)max_new;
    rp.seed = seed;
    rp.on_token = stream_token;
    dots_ctx *ctx = cli_make_ctx();
    if (!ctx) return 1;
    dots_model *model = NULL;
    dots_state *st = NULL;
    dots_document *doc = NULL;
    dots_image img = {0};
    dots_run_result res = {0};
    run_dump rd = {dump, ctx, 0, NULL, 0};
    dots_run_hooks hooks = {&rd, dump_prompt, dump_logits, NULL, 0};
    int32_t *forced = NULL;
    int64_t n_forced = 0;
    int rc = 0;
    if (cli_open_model(ctx, model_dir, g_mmproj, DOTS_PLACE_MAP, &model) != DOTS_OK || place_weights(ctx, model, mmap_choice) != DOTS_OK ||
        dots_state_create(ctx, model, (int32_t)threads, &st) != DOTS_OK ||
        dots_state_set_precision(ctx, st, bf16 ? DOTS_PRECISION_BF16 : DOTS_PRECISION_FP32) != DOTS_OK ||
        dots_document_open(ctx, argv[optind], &doc) != DOTS_OK ||
        dots_document_render_page(ctx, doc, (int32_t)(page - 1), (int32_t)dpi, &img, NULL) != DOTS_OK) {
        rc = cli_fail(ctx);
        goto done;
    }
    if (dump && (rc = cli_ensure_dir(dump)) != 0) goto done;
    if (forced_path) {
        if (dots_npy_read_ids(ctx, forced_path, 131072, &forced, &n_forced) != DOTS_OK) {
            rc = cli_fail(ctx);
            goto done;
        }
        rd.vocab = dots_model_config(model)->text.vocab_size;
        rd.teacher = malloc(sizeof(float) * (size_t)(n_forced * rd.vocab + 1));
        if (!rd.teacher) {
            fprintf(stderr, "dotsocr: error: out of memory\n");
            rc = 1;
            goto done;
        }
        hooks.forced = forced;
        hooks.n_forced = n_forced;
    }
    g_interrupted = 0;
    signal(SIGINT, on_sigint);
    dots_status s = dots_run_image_ex(ctx, st, &img, &rp, dump ? &hooks : NULL, &res);
    signal(SIGINT, SIG_DFL);
    if (s != DOTS_OK) {
        rc = cli_fail(ctx);
        goto done;
    }
    printf("\n");
    static const char *const stops[] = {"eos", "max-new-tokens", "interrupted", "context full"};
    int64_t n_gen = res.n_tokens;
    if (cli_verbosity() >= 0)
        fprintf(stderr,
                "dotsocr: %s; image %d x %d -> %lld image tokens, prompt %lld tokens, generated %lld (%s)\n"
                "dotsocr: preprocess %.2f s, vision %.2f s, prefill %.2f s (%.1f tok/s), decode %.2f s (%.2f tok/s), peak RSS %.0f MB\n",
                dots_prompt_mode_name(rp.mode), res.resized_width_px, res.resized_height_px, (long long)res.n_image_tokens,
                (long long)res.n_prompt_tokens, (long long)n_gen, stops[res.stop], res.preprocess_s, res.vision_s,
                res.prefill_s, res.n_prompt_tokens / (res.prefill_s > 0 ? res.prefill_s : 1e-9), res.decode_s,
                n_gen > 1 ? (n_gen - 1) / (res.decode_s > 0 ? res.decode_s : 1e-9) : 0.0, cli_peak_rss_mb());
    if (dump) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tokens.npy", dump);
        if (dots_npy_write(ctx, path, "<i4", &n_gen, 1, res.tokens, 4) != DOTS_OK) rd.failed = 1;
        if (rd.teacher && !rd.failed) {
            const int64_t shape[2] = {n_forced, rd.vocab};
            snprintf(path, sizeof path, "%s/logits_teacher.npy", dump);
            if (dots_npy_write(ctx, path, "<f4", shape, 2, rd.teacher, 4) != DOTS_OK) rd.failed = 1;
        }
        if (rd.failed) rc = cli_fail(ctx);
    }
    if (res.stop == DOTS_STOP_CALLBACK && rc == 0) rc = 130; /* interrupted: the text above is what was produced */
done:
    free(rd.teacher);
    free(forced);
    dots_run_result_free(&res);
    dots_image_free(&img);
    dots_document_close(doc);
    dots_state_free(st);
    dots_model_close(model);
    dots_ctx_free(ctx);
    return rc;
}

/* ---------------------------------------------------------- grammar-check */

static const char help_grammar_check[] =
    "usage: dotsocr-debug grammar-check --model DIR --width W --height H [--mode layout-all|layout-only|ocr]\n"
    "  Teacher-forces the answer on stdin (then EOS) through the layout constraint and\n"
    "  the loop guard, without the model: at every token, whether the constraint's\n"
    "  mask holds it, and whether the guard fires. Prints one JSON line:\n"
    "  {\"tokens\", \"refused_at\" (-1: none), \"complete\", \"guard_fired\", \"guard_first_at\",\n"
    "  \"mask_ms\"}. W x H is the resized image the model saw. Exit 0 when every token was\n"
    "  allowed, the answer ended complete and the guard never fired.\n";

static int cmd_grammar_check(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, NULL, 'm'}, {"width", required_argument, NULL, 'W'},
                                         {"height", required_argument, NULL, 'H'}, {"mode", required_argument, NULL, 'M'},
                                         {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    const char *model_dir = NULL;
    int64_t w = 0, h = 0;
    dots_prompt_mode mode = DOTS_MODE_LAYOUT_ALL;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'W': if (cli_int("grammar-check", "--width", optarg, 28, 1 << 20, &w)) return DOTS_EXIT_USAGE; break;
        case 'H': if (cli_int("grammar-check", "--height", optarg, 28, 1 << 20, &h)) return DOTS_EXIT_USAGE; break;
        case 'M': if (cli_mode("grammar-check", optarg, &mode)) return DOTS_EXIT_USAGE; break;
        case 'h': fputs(help_grammar_check, stdout); return 0;
        default: return cli_bad_option("grammar-check", argc, argv, opts, "h");
        }
    }
    if (!model_dir || !w || !h) return cli_usage("grammar-check", "%s", "--model, --width and --height are required");
    size_t len = 0, cap = 1 << 16;
    char *text = malloc(cap);
    for (size_t got; text && (got = fread(text + len, 1, cap - len, stdin)) > 0;) {
        len += got;
        if (len == cap) {
            char *p = realloc(text, cap *= 2);
            if (!p) free(text);
            text = p;
        }
    }
    dots_ctx *ctx = cli_make_ctx();
    dots_tokenizer *tok = NULL;
    dots_token_mask *mask = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = 1;
    const bool layout = mode == DOTS_MODE_LAYOUT_ALL || mode == DOTS_MODE_LAYOUT_ONLY;
    if (!ctx || !text || dots_tokenizer_open(ctx, model_dir, &tok) != DOTS_OK ||
        dots_tok_encode(ctx, tok, text, len, &ids, &n) != DOTS_OK ||
        (layout && dots_token_mask_create(ctx, tok, dots_tokenizer_n_ids(tok), &mask) != DOTS_OK)) {
        rc = cli_fail(ctx);
        goto done;
    }
    const int32_t eos = dots_tokenizer_token_id(tok, "<|endofassistant|>");
    dots_lg_limits lim = {(int32_t)w, (int32_t)h, mode == DOTS_MODE_LAYOUT_ALL, {0}};
    dots_guided gd;
    if (dots_guided_init(&gd, ctx, tok, mask, &lim, true, &eos, 1, dots_tokenizer_n_ids(tok)) != DOTS_OK) {
        rc = cli_fail(ctx);
        goto done;
    }
    int64_t refused = -1;
    double t0 = cli_now();
    for (size_t i = 0; i <= n; i++) {
        int32_t t = i < n ? ids[i] : eos;
        if (mask) {
            const uint64_t *bits = dots_token_mask_get(mask, &gd.g);
            bool ok = t == eos ? dots_lg_complete(&gd.g) : bits && dots_mask_has(bits, t);
            if (!ok) {
                refused = (int64_t)i;
                break;
            }
        }
        dots_guided_accept(&gd, t, (int64_t)i);
    }
    double ms = 1e3 * (cli_now() - t0) / (double)(n + 1);
    bool complete = !mask || dots_lg_complete(&gd.g);
    printf("{\"tokens\": %zu, \"refused_at\": %lld, \"complete\": %s, \"guard_fired\": %d, \"guard_first_at\": %lld, "
           "\"mask_ms\": %.4f}\n",
           n, (long long)refused, complete ? "true" : "false", gd.fired, (long long)gd.first_at, ms);
    dots_guided_free(&gd);
    rc = refused < 0 && complete && gd.fired == 0 ? 0 : 1;
done:
    free(text);
    free(ids);
    dots_token_mask_free(mask);
    dots_tokenizer_free(tok);
    dots_ctx_free(ctx);
    return rc;
}

/* ------------------------------------------------------ lm-logits / tokenize-lines */

static const char help_lm_logits[] =
    "usage: dotsocr-debug lm-logits --model MODEL --ids 1,2,3 [--threads N] [--precision fp32|bf16]\n"
    "  The language model alone on the given token ids (no image: an <|imgpad|> id is\n"
    "  its plain embedding, as llama.cpp evaluates text), the logits of the last\n"
    "  position printed as one JSON array. For comparisons with other engines.\n";

static int cmd_lm_logits(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, NULL, 'm'}, {"ids", required_argument, NULL, 'i'},
                                         {"threads", required_argument, NULL, 't'}, {"precision", required_argument, NULL, 'p'},
                                         {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    const char *model_dir = NULL, *id_text = NULL;
    int64_t threads = 0;
    bool bf16 = false;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'i': id_text = optarg; break;
        case 't': if (cli_int("lm-logits", "--threads", optarg, 1, 256, &threads)) return DOTS_EXIT_USAGE; break;
        case 'p': if (!parse_precision(optarg, &bf16)) return cli_usage("lm-logits", "bad --precision '%s'", optarg); break;
        case 'h': fputs(help_lm_logits, stdout); return 0;
        default: return cli_bad_option("lm-logits", argc, argv, opts, "h");
        }
    }
    if (!model_dir || !id_text) return cli_usage("lm-logits", "%s", "--model and --ids are required");
    int32_t ids[4096];
    int64_t n = 0;
    for (const char *p = id_text; *p && n < 4096;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > INT32_MAX) return cli_usage("lm-logits", "bad --ids at '%.20s'", p);
        ids[n++] = (int32_t)v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return cli_usage("lm-logits", "bad --ids at '%.20s'", end);
    }
    dots_ctx *ctx = cli_make_ctx();
    dots_model *model = NULL;
    int rc = 1;
    if (!ctx || cli_open_model(ctx, model_dir, NULL, DOTS_PLACE_MAP, &model) != DOTS_OK) return cli_fail(ctx);
    const dots_config *cfg = dots_model_config(model);
    const int64_t H = cfg->text.hidden_size, V = cfg->text.vocab_size;
    for (int64_t i = 0; i < n; i++)
        if (ids[i] >= V) {
            dots_model_close(model);
            dots_ctx_free(ctx);
            return cli_usage("lm-logits", "id %d is past the %lld-row vocabulary", ids[i], (long long)V);
        }
    dots_pool *pool = dots_pool_create(threads ? (int)threads : dots_default_threads());
    dots_scratch scratch = {0}, worker_scratch[DOTS_MAX_THREADS] = {0};
    dots_kernels kern = {dots_cpu_isa(), pool, &scratch, bf16, worker_scratch, NULL};
    float *emb = malloc(sizeof(float) * (size_t)(n * H)), *logits = malloc(sizeof(float) * (size_t)V);
    dots_lm_state lm = {0};
    dots_lm_scratch lsc = {0};
    if (pool && emb && logits && dots_lm_state_init(ctx, cfg, n + 1, false, &lm) == DOTS_OK) {
        dots_lm_embed(cfg, dots_model_weights(model), ids, n, emb);
        if (dots_lm_forward(ctx, cfg, dots_model_weights(model), &kern, &lsc, &lm, emb, n, logits) == DOTS_OK) {
            putchar('[');
            for (int64_t i = 0; i < V; i++) printf("%s%.9g", i ? "," : "", logits[i]);
            puts("]");
            rc = 0;
        }
    }
    if (rc) rc = cli_fail(ctx);
    dots_lm_state_free(&lm);
    dots_lm_scratch_free(&lsc);
    free(emb);
    free(logits);
    dots_pool_free(pool);
    dots_scratch_free(&scratch);
    for (int i = 0; i < DOTS_MAX_THREADS; i++) dots_scratch_free(&worker_scratch[i]);
    dots_model_close(model);
    dots_ctx_free(ctx);
    return rc;
}

static const char help_tokenize_lines[] =
    "usage: dotsocr-debug tokenize-lines --model MODEL < strings.jsonl\n"
    "  Each input line is one JSON string; prints its ids as one JSON array a line.\n";

static int cmd_tokenize_lines(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, NULL, 'm'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    const char *model_dir = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'h': fputs(help_tokenize_lines, stdout); return 0;
        default: return cli_bad_option("tokenize-lines", argc, argv, opts, "h");
        }
    }
    if (!model_dir) return cli_usage("tokenize-lines", "%s", "--model is required");
    dots_ctx *ctx = cli_make_ctx();
    dots_tokenizer *tok = NULL;
    if (!ctx || dots_tokenizer_open(ctx, model_dir, &tok) != DOTS_OK) return cli_fail(ctx);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, stdin)) > 0) {
        json_error_t err;
        json_t *s = json_loadb(line, (size_t)len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        int32_t *ids = NULL;
        size_t n = 0;
        if (!json_is_string(s)) {
            fprintf(stderr, "dotsocr: error: not a JSON string: %.60s\n", line);
            rc = 1;
        } else if (dots_tok_encode(ctx, tok, json_string_value(s), json_string_length(s), &ids, &n) != DOTS_OK) {
            rc = cli_fail(ctx);
        } else {
            putchar('[');
            for (size_t i = 0; i < n; i++) printf("%s%d", i ? "," : "", ids[i]);
            puts("]");
        }
        dots_free(ids);
        json_decref(s);
    }
    free(line);
    dots_tokenizer_free(tok);
    dots_ctx_free(ctx);
    return rc;
}

int dots_cmd_bench(int argc, char **argv);

/* Added to the public commands; `run` replaces the public one here. */
static const char help_prompt[] =
    "usage: dotsocr-debug prompt --model MODEL < specs.jsonl\n"
    "  Each input line is a JSON object {\"mode\", \"n_image\", \"bbox\", \"prompt\",\n"
    "  \"system\", \"before_image\", \"width\", \"height\"} (all but mode optional); prints one JSON\n"
    "  object a line: the mode's raw prompt (\"raw\"), the user text and system message\n"
    "  the prompt is built from, and the prompt ids (\"ids\"), as a run builds them.\n";

static int cmd_prompt(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, NULL, 'm'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    const char *model_dir = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'h': fputs(help_prompt, stdout); return 0;
        default: return cli_bad_option("prompt", argc, argv, opts, "h");
        }
    }
    if (!model_dir) return cli_usage("prompt", "%s", "--model is required");
    dots_ctx *ctx = cli_make_ctx();
    dots_tokenizer *tok = NULL;
    if (!ctx || dots_tokenizer_open(ctx, model_dir, &tok) != DOTS_OK) return cli_fail(ctx);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, stdin)) > 0) {
        json_error_t err;
        json_t *o = json_loadb(line, (size_t)len, 0, &err), *bb = json_object_get(o, "bbox");
        dots_prompt_spec sp = {0};
        if (!o || cli_mode("prompt", json_string_value(json_object_get(o, "mode")) ? json_string_value(json_object_get(o, "mode")) : "",
                           &sp.mode)) {
            json_decref(o);
            rc = 2;
            break;
        }
        for (int i = 0; i < 4; i++) sp.bbox[i] = (int32_t)json_integer_value(json_array_get(bb, (size_t)i));
        sp.custom = json_string_value(json_object_get(o, "prompt"));
        sp.before_image = json_string_value(json_object_get(o, "before_image"));
        sp.system = json_string_value(json_object_get(o, "system"));
        sp.width = (int32_t)json_integer_value(json_object_get(o, "width"));
        sp.height = (int32_t)json_integer_value(json_object_get(o, "height"));
        int32_t *ids = NULL;
        int64_t n = 0;
        char *user = dots_prompt_user_text(&sp);
        const char *sys = dots_prompt_system_text(&sp);
        if (dots_prompt_build(ctx, tok, &sp, json_integer_value(json_object_get(o, "n_image")), &ids, &n) != DOTS_OK) {
            rc = cli_fail(ctx);
        } else {
            json_t *a = json_array();
            for (int64_t i = 0; i < n; i++) json_array_append_new(a, json_integer(ids[i]));
            json_t *res = json_pack("{s:s, s:s?, s:s?, s:o}", "raw", dots_prompt_text(sp.mode), "user", user, "system", sys, "ids", a);
            char *text = res ? json_dumps(res, JSON_COMPACT) : NULL;
            if (text) puts(text);
            free(text);
            json_decref(res);
        }
        free(user);
        free(ids);
        json_decref(o);
    }
    free(line);
    dots_tokenizer_free(tok);
    dots_ctx_free(ctx);
    return rc;
}

static const dots_cli_command commands[] = {
    {"run", cmd_run, "image/PDF page -> raw answer, as the reference sees it (--dump, --teacher-force)"},
    {"preprocess", cmd_preprocess, "image/PDF page -> resized image and vision pixel rows (--dump)"},
    {"vision", cmd_vision, "image/PDF page -> vision encoder embeddings (--dump)"},
    {"bench", dots_cmd_bench, "speed of every stage against this machine's measured limits"},
    {"lm-logits", cmd_lm_logits, "the language model alone on token ids: the last position's logits"},
    {"tokenize-lines", cmd_tokenize_lines, "JSON strings, one a line, to token ids"},
    {"grammar-check", cmd_grammar_check, "an answer on stdin through the layout constraint and the loop guard"},
    {"prompt", cmd_prompt, "prompt specs (JSON lines) to the mode's text, the user and system text, and the ids"},
};

int main(int argc, char **argv) {
    return dots_cli_main("dotsocr-debug", argc, argv, commands, sizeof commands / sizeof commands[0]);
}
