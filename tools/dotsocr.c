/*
 * dotsocr.c - the command-line tool: one subcommand per job, each a thin
 * layer over the public API in dotsocr.h.
 *
 * Exit codes: 0 success, 1 the job failed (the message says why, on one
 * line), 2 bad command line.
 */
#include "dotsocr.h"
#include "io/npy.h"
#include "kernels/kernels.h"
#include "vision/vision.h"
#include "pipeline/run.h"
#include "cmd_parse.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#define EXIT_USAGE 2

static int g_verbosity = 0; /* CLI-only state: -v / -q */

static void log_to_stderr(dots_log_level level, const char *msg, void *user) {
    (void)user;
    static const char *const names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "dotsocr: %s: %s\n", names[level], msg);
}

static dots_ctx *make_ctx(void) {
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

static int fail(dots_ctx *ctx) {
    fprintf(stderr, "dotsocr: error: %s\n", dots_errmsg(ctx));
    return 1;
}

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "dotsocr %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'dotsocr help %s')\n", cmd);
    va_end(ap);
    return EXIT_USAGE;
}

static bool parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s || *s == '-') return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

/* "1,234,567" for counts people read. */
static const char *commas(int64_t v, char *buf, size_t cap) {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%lld", (long long)(v < 0 ? -v : v));
    size_t n = strlen(tmp), k = 0;
    if (v < 0 && k < cap - 1) buf[k++] = '-';
    for (size_t i = 0; i < n && k < cap - 1; i++) {
        if (i > 0 && (n - i) % 3 == 0 && k < cap - 1) buf[k++] = ',';
        buf[k++] = tmp[i];
    }
    buf[k] = '\0';
    return buf;
}

/* ------------------------------------------------------------------ info */

static const char help_info[] =
    "usage: dotsocr info [--json] [--mmproj FILE] [-v|-q] MODEL\n"
    "  Opens a dots.ocr checkpoint directory (config.json + safetensors, sharded or\n"
    "  not) or GGUF file, validates every file and tensor, and prints the config,\n"
    "  tensor and parameter counts per part, bytes per dtype, the files used, the\n"
    "  load time and peak RSS. --json prints one JSON object instead.\n"
    "  MODEL may be the LM file of llama.cpp's LM + mmproj pair; its mmproj file\n"
    "  is the one *mmproj*.gguf next to it, or --mmproj FILE (run, parse, vision,\n"
    "  preprocess and bench take --mmproj too).\n";

static void print_info_text(const dots_model *m, const dots_model_info *info, double load_ms, double rss_mb) {
    const dots_config *c = dots_model_config(m);
    const dots_text_config *t = &c->text;
    const dots_vision_config *v = &c->vision;
    char a[40], b[40], d[40];
    printf("model: %s\n", dots_model_dir(m));
    struct stat sb;
    if (info->config_from_metadata)
        printf("files (configs rebuilt from the metadata of llama.cpp's GGUF pair):\n  config.json\n");
    else if (stat(dots_model_dir(m), &sb) == 0 && !S_ISDIR(sb.st_mode))
        printf("files (inside the GGUF file):\n  config.json\n");
    else
        printf("files:\n  config.json\n");
    printf("  generation_config.json%s\n", c->has_generation_config ? "" : " (absent: official defaults)");
    printf("  preprocessor_config.json%s\n", c->has_preprocessor_config ? "" : " (absent: official defaults)");
    for (int32_t i = 0; i < info->n_files; i++) printf("  %s\n", dots_model_file_path(m, i));
    printf("language model (Qwen2):\n");
    printf("  hidden_size %d, layers %d, heads %d, kv_heads %d, head_dim %d, intermediate %d\n",
           t->hidden_size, t->num_hidden_layers, t->num_attention_heads, t->num_key_value_heads, t->head_dim,
           t->intermediate_size);
    printf("  vocab_size %d, max_position_embeddings %d, rope_theta %g, rms_norm_eps %g\n", t->vocab_size,
           t->max_position_embeddings, t->rope_theta, t->rms_norm_eps);
    printf("  hidden_act %s, attention_bias %s, tie_word_embeddings %s, torch_dtype %s\n", t->hidden_act,
           t->attention_bias ? "true" : "false", t->tie_word_embeddings ? "true" : "false", t->torch_dtype);
    printf("  image_token_id %d, video_token_id %d\n", t->image_token_id, t->video_token_id);
    printf("vision encoder (dots.vit):\n");
    printf("  embed_dim %d, layers %d, heads %d, head_dim %d, intermediate %d, hidden_size %d\n", v->embed_dim,
           v->num_hidden_layers, v->num_attention_heads, v->head_dim, v->intermediate_size, v->hidden_size);
    printf("  patch_size %d, spatial_merge_size %d, temporal_patch_size %d, rms_norm_eps %g, post_norm %s\n",
           v->patch_size, v->spatial_merge_size, v->temporal_patch_size, v->rms_norm_eps,
           v->post_norm ? "true" : "false");
    printf("generation: eos_token_id [");
    for (int i = 0; i < c->generation.n_eos_token_ids; i++)
        printf("%s%d", i ? ", " : "", c->generation.eos_token_ids[i]);
    printf("], max_length %d\n", c->generation.max_length);
    const dots_preprocessor_config *p = &c->preprocessor;
    printf("preprocessor: min_pixels %" PRId64 ", max_pixels %" PRId64 ", mean [%g, %g, %g], std [%g, %g, %g]\n",
           p->min_pixels, p->max_pixels, p->image_mean[0], p->image_mean[1], p->image_mean[2], p->image_std[0],
           p->image_std[1], p->image_std[2]);
    printf("tensors: %" PRId64 " (vision %" PRId64 ", lm %" PRId64 "), unused %" PRId64 "\n", info->n_tensors,
           info->n_tensors_vision, info->n_tensors_lm, info->n_tensors_unused);
    printf("parameters: %s (vision %s, lm %s)\n", commas(info->n_params, a, sizeof a),
           commas(info->n_params_vision, b, sizeof b), commas(info->n_params_lm, d, sizeof d));
    printf("bytes by dtype:");
    for (int k = 0; k < DOTS_DTYPE_COUNT; k++)
        if (info->bytes_by_dtype[k]) printf(" %s %s", dots_dtype_name((dots_dtype)k), commas(info->bytes_by_dtype[k], a, sizeof a));
    printf("\nmapped: %s bytes in %d file(s)\n", commas(info->mapped_bytes, a, sizeof a), info->n_files);
    if (info->n_reencoded) printf("re-encoded as Q8_0 at load: %" PRId64 " matrices (Q4_1/Q5_0/Q5_1/Q5_K/Q6_K in the file)\n", info->n_reencoded);
    printf("load: %.1f ms, peak RSS %.1f MB\n", load_ms, rss_mb);
}

static void print_info_json(const dots_model *m, const dots_model_info *info, double load_ms, double rss_mb) {
    const dots_config *c = dots_model_config(m);
    printf("{\"model\": \"");
    for (const char *s = dots_model_dir(m); *s; s++) {
        if (*s == '"' || *s == '\\') putchar('\\');
        if ((unsigned char)*s >= 0x20) putchar(*s);
    }
    printf("\", \"n_tensors\": %" PRId64 ", \"n_tensors_vision\": %" PRId64 ", \"n_tensors_lm\": %" PRId64
           ", \"n_tensors_unused\": %" PRId64 ", \"n_params\": %" PRId64 ", \"n_params_vision\": %" PRId64
           ", \"n_params_lm\": %" PRId64 ", \"bytes_by_dtype\": {",
           info->n_tensors, info->n_tensors_vision, info->n_tensors_lm, info->n_tensors_unused, info->n_params,
           info->n_params_vision, info->n_params_lm);
    for (int k = 0; k < DOTS_DTYPE_COUNT; k++)
        printf("%s\"%s\": %" PRId64, k ? ", " : "", dots_dtype_name((dots_dtype)k), info->bytes_by_dtype[k]);
    printf("}, \"n_files\": %d, \"mapped_bytes\": %" PRId64 ", \"load_ms\": %.3f, \"peak_rss_mb\": %.1f, "
           "\"config_from_metadata\": %s, \"n_reencoded\": %" PRId64 ", ",
           info->n_files, info->mapped_bytes, load_ms, rss_mb, info->config_from_metadata ? "true" : "false", info->n_reencoded);
    printf("\"text\": {\"hidden_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d, "
           "\"num_key_value_heads\": %d, \"intermediate_size\": %d, \"vocab_size\": %d}, ",
           c->text.hidden_size, c->text.num_hidden_layers, c->text.num_attention_heads,
           c->text.num_key_value_heads, c->text.intermediate_size, c->text.vocab_size);
    printf("\"vision\": {\"embed_dim\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d, "
           "\"intermediate_size\": %d, \"patch_size\": %d, \"spatial_merge_size\": %d}, ",
           c->vision.embed_dim, c->vision.num_hidden_layers, c->vision.num_attention_heads,
           c->vision.intermediate_size, c->vision.patch_size, c->vision.spatial_merge_size);
    printf("\"eos_token_id\": [");
    for (int i = 0; i < c->generation.n_eos_token_ids; i++)
        printf("%s%d", i ? ", " : "", c->generation.eos_token_ids[i]);
    printf("], \"min_pixels\": %" PRId64 ", \"max_pixels\": %" PRId64 "}\n", c->preprocessor.min_pixels,
           c->preprocessor.max_pixels);
}

/* --mmproj FILE: the vision file of an LM + mmproj pair, when it is not
 * the one next to the LM file (or the one the file names). */
static const char *g_mmproj;

static dots_status open_model(dots_ctx *ctx, const char *path, const char *mmproj, dots_model **model) {
    return mmproj ? dots_model_open_pair(ctx, path, mmproj, model) : dots_model_open(ctx, path, model);
}

static int cmd_info(int argc, char **argv) {
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"verbose", no_argument, NULL, 'v'}, {"mmproj", required_argument, NULL, 1002},
        {"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    bool json = false;
    const char *mmproj = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = true; break;
        case 1002: mmproj = optarg; break;
        case 'v': g_verbosity++; break;
        case 'q': g_verbosity = -1; break;
        case 'h': fputs(help_info, stdout); return 0;
        default: return usage_error("info", "bad option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return usage_error("info", "expected one MODEL_DIR, got %s", argc - optind ? "more" : "none");
    dots_ctx *ctx = make_ctx();
    if (!ctx) return 1;
    double t0 = dots_monotonic_s();
    dots_model *model = NULL;
    if (open_model(ctx, argv[optind], mmproj, &model) != DOTS_OK) {
        int rc = fail(ctx);
        dots_ctx_free(ctx);
        return rc;
    }
    double load_ms = 1e3 * (dots_monotonic_s() - t0);
    dots_model_info info;
    dots_model_get_info(model, &info);
    if (json)
        print_info_json(model, &info, load_ms, dots_peak_rss_mb());
    else
        print_info_text(model, &info, load_ms, dots_peak_rss_mb());
    dots_model_close(model);
    dots_ctx_free(ctx);
    return 0;
}

/* ------------------------------------------------------------ make-model */

static const char help_make_model[] =
    "usage: dotsocr make-model [--preset tiny|full] [--seed N] [--dtype bf16|f16|f32]\n"
    "                          [--shard-bytes N] [--sparse] [--tokenizer FILE] OUT_DIR\n"
    "  Writes a random-weight dots.ocr checkpoint in the official Hugging Face\n"
    "  layout (config.json, generation/preprocessor configs, sharded safetensors\n"
    "  + index). tiny: vision 2x64, LM 2x64, the real vocabulary (~40 MB).\n"
    "  full: the real config (~6.1 GB in bf16). The weights are random: such a\n"
    "  model does not read documents; it exercises the engine.\n"
    "  --sparse writes all-zero weights as file holes (instant, no disk used).\n";

static int cmd_make_model(int argc, char **argv) {
    static const struct option opts[] = {
        {"preset", required_argument, NULL, 'p'}, {"seed", required_argument, NULL, 's'},
        {"dtype", required_argument, NULL, 'd'}, {"shard-bytes", required_argument, NULL, 'b'},
        {"sparse", no_argument, NULL, 'z'}, {"tokenizer", required_argument, NULL, 't'},
        {"verbose", no_argument, NULL, 'v'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    dots_make_model_params p;
    dots_make_model_params_init(&p);
    int c;
    uint64_t u;
    while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (strcmp(optarg, "tiny") == 0) p.preset = DOTS_PRESET_TINY;
            else if (strcmp(optarg, "full") == 0) p.preset = DOTS_PRESET_FULL;
            else return usage_error("make-model", "unknown preset '%s' (tiny or full)", optarg);
            break;
        case 's':
            if (!parse_u64(optarg, &u)) return usage_error("make-model", "bad --seed '%s'", optarg);
            p.seed = u;
            break;
        case 'd':
            if (strcmp(optarg, "bf16") == 0) p.dtype = DOTS_DTYPE_BF16;
            else if (strcmp(optarg, "f16") == 0) p.dtype = DOTS_DTYPE_F16;
            else if (strcmp(optarg, "f32") == 0) p.dtype = DOTS_DTYPE_F32;
            else return usage_error("make-model", "unknown dtype '%s' (bf16, f16 or f32)", optarg);
            break;
        case 'b':
            if (!parse_u64(optarg, &u) || u == 0 || u > INT64_MAX)
                return usage_error("make-model", "bad --shard-bytes '%s'", optarg);
            p.max_shard_bytes = (int64_t)u;
            break;
        case 'z': p.sparse_zero = true; break;
        case 't': p.tokenizer_path = optarg; break;
        case 'v': g_verbosity++; break;
        case 'q': g_verbosity = -1; break;
        case 'h': fputs(help_make_model, stdout); return 0;
        default: return usage_error("make-model", "bad option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return usage_error("make-model", "expected one OUT_DIR, got %s", argc - optind ? "more" : "none");
    dots_ctx *ctx = make_ctx();
    if (!ctx) return 1;
    double t0 = dots_monotonic_s();
    int rc = 0;
    if (dots_make_model(ctx, argv[optind], &p) != DOTS_OK)
        rc = fail(ctx);
    else if (g_verbosity >= 0)
        fprintf(stderr, "dotsocr: wrote %s model to %s in %.1f s\n", p.preset == DOTS_PRESET_TINY ? "tiny" : "full",
                argv[optind], dots_monotonic_s() - t0);
    dots_ctx_free(ctx);
    return rc;
}

/* --------------------------------------------------------------- convert */

static const char help_convert[] =
    "usage: dotsocr convert [--type bf16|q8_0|q4_0|q4_k] [--vision-type TYPE] [--threads N]\n"
    "                       [--tokenizer FILE] [--mmproj VISION.gguf] MODEL OUT.gguf\n"
    "  Writes MODEL (a checkpoint directory or a GGUF file) as one self-contained\n"
    "  GGUF file: both towers with llama.cpp's tensor names and block layouts,\n"
    "  the config files and tokenizer.json. Every command accepts OUT.gguf in\n"
    "  place of the directory. --type sets the language model's matrices\n"
    "  (default bf16, a bit-exact copy of a bf16 checkpoint); --vision-type the\n"
    "  vision tower's (default: --type). Norms and biases stay F32; a matrix\n"
    "  whose rows are not whole blocks of the type falls back to q8_0 (the\n"
    "  vision fc2 under q4_k); the output projection stays q8_0 in 4-bit files.\n"
    "  --mmproj writes llama.cpp's pair instead: the language model with\n"
    "  llama.cpp's tokenizer metadata to OUT.gguf and the vision tower (arch\n"
    "  clip) to VISION.gguf; OUT.gguf names VISION.gguf, and every command\n"
    "  given OUT.gguf opens both.\n";

static bool parse_weight_type(const char *s, dots_dtype *t) {
    static const struct { const char *name; dots_dtype t; } types[] = {
        {"bf16", DOTS_DTYPE_BF16}, {"f16", DOTS_DTYPE_F16}, {"f32", DOTS_DTYPE_F32},
        {"q8_0", DOTS_DTYPE_Q8_0}, {"q4_0", DOTS_DTYPE_Q4_0}, {"q4_k", DOTS_DTYPE_Q4_K}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(s, types[i].name) == 0) {
            *t = types[i].t;
            return true;
        }
    return false;
}

static int cmd_convert(int argc, char **argv) {
    static const struct option opts[] = {
        {"type", required_argument, NULL, 'T'}, {"vision-type", required_argument, NULL, 'V'},
        {"threads", required_argument, NULL, 't'}, {"tokenizer", required_argument, NULL, 'k'},
        {"mmproj", required_argument, NULL, 'm'},
        {"verbose", no_argument, NULL, 'v'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    dots_convert_params p;
    dots_convert_params_init(&p);
    int c;
    uint64_t u;
    while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
        switch (c) {
        case 'T':
            if (!parse_weight_type(optarg, &p.type))
                return usage_error("convert", "unknown --type '%s' (bf16, q8_0, q4_0 or q4_k)", optarg);
            break;
        case 'V':
            if (!parse_weight_type(optarg, &p.vision_type))
                return usage_error("convert", "unknown --vision-type '%s' (bf16, q8_0, q4_0 or q4_k)", optarg);
            break;
        case 't':
            if (!parse_u64(optarg, &u) || u == 0 || u > DOTS_MAX_THREADS)
                return usage_error("convert", "bad --threads '%s'", optarg);
            p.threads = (int32_t)u;
            break;
        case 'k': p.tokenizer_path = optarg; break;
        case 'm': p.mmproj_path = optarg; break;
        case 'v': g_verbosity++; break;
        case 'q': g_verbosity = -1; break;
        case 'h': fputs(help_convert, stdout); return 0;
        default: return usage_error("convert", "bad option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2) return usage_error("convert", "expected MODEL and OUT.gguf");
    dots_ctx *ctx = make_ctx();
    if (!ctx) return 1;
    dots_model *model = NULL;
    double t0 = dots_monotonic_s();
    int rc = 0;
    if (dots_model_open(ctx, argv[optind], &model) != DOTS_OK || dots_convert_gguf(ctx, model, argv[optind + 1], &p) != DOTS_OK)
        rc = fail(ctx);
    else if (g_verbosity >= 0)
        fprintf(stderr, "dotsocr: wrote %s%s%s in %.1f s\n", argv[optind + 1], p.mmproj_path ? " and " : "",
                p.mmproj_path ? p.mmproj_path : "", dots_monotonic_s() - t0);
    dots_model_close(model);
    dots_ctx_free(ctx);
    return rc;
}

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
    double t0 = dots_monotonic_s();
    if (dots_tokenizer_open(ctx, model, tok) != DOTS_OK) return fail(ctx);
    *load_s = dots_monotonic_s() - t0;
    return 0;
}

static int cmd_tokenize(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, NULL, 'm'}, {"bench", required_argument, NULL, 'b'},
                                         {"verbose", no_argument, NULL, 'v'}, {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    const char *model = NULL;
    uint64_t bench = 0;
    int c;
    while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'b':
            if (!parse_u64(optarg, &bench) || bench == 0 || bench > 1000000) return usage_error("tokenize", "bad --bench '%s'", optarg);
            break;
        case 'v': g_verbosity++; break;
        case 'q': g_verbosity = -1; break;
        case 'h': fputs(help_tokenize, stdout); return 0;
        default: return usage_error("tokenize", "bad option '%s'", argv[optind - 1]);
        }
    }
    if (!model) return usage_error("tokenize", "%s", "--model DIR is required");
    if (optind != argc) return usage_error("tokenize", "unexpected argument '%s'", argv[optind]);
    dots_ctx *ctx = make_ctx();
    if (!ctx) return 1;
    dots_tokenizer *tok = NULL;
    double load_s = 0;
    size_t len = 0;
    char *text = NULL;
    int rc = open_tokenizer(ctx, model, &tok, &load_s);
    if (rc == 0 && !(text = read_stdin(&len))) rc = 1;
    int32_t *ids = NULL;
    size_t n = 0;
    double t0 = dots_monotonic_s();
    for (uint64_t r = 0; rc == 0 && r < (bench ? bench : 1); r++) {
        dots_free(ids);
        ids = NULL;
        if (dots_tok_encode(ctx, tok, text, len, &ids, &n) != DOTS_OK) rc = fail(ctx);
    }
    if (rc == 0 && bench) {
        double s = dots_monotonic_s() - t0;
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

static int cmd_detokenize(int argc, char **argv) {
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
        case 'v': g_verbosity++; break;
        case 'q': g_verbosity = -1; break;
        case 'h': fputs(help_detokenize, stdout); return 0;
        default: return usage_error("detokenize", "bad option '%s'", argv[optind - 1]);
        }
    }
    if (!model) return usage_error("detokenize", "%s", "--model DIR is required");
    if (optind != argc) return usage_error("detokenize", "unexpected argument '%s'", argv[optind]);
    dots_ctx *ctx = make_ctx();
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
            fprintf(stderr, "dotsocr: error: standard input: '%.20s' is not a token id\n", p);
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
    if (rc == 0 && dots_tok_decode(ctx, tok, ids, n, skip, &out, &out_len) != DOTS_OK) rc = fail(ctx);
    if (rc == 0) fwrite(out, 1, out_len, stdout);
    dots_free(out);
    free(ids);
    free(text);
    dots_tokenizer_free(tok);
    dots_ctx_free(ctx);
    return rc;
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

static bool parse_i64_opt(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    uint64_t u;
    if (!parse_u64(s, &u) || u > (uint64_t)hi || (int64_t)u < lo) return false;
    *out = (int64_t)u;
    return true;
}

/* mkdir -p */
static int ensure_dir(const char *dir) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        fprintf(stderr, "dotsocr: error: %s: path too long\n", dir);
        return 1;
    }
    for (char *p = path + 1;; p++) {
        bool end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST) {
                fprintf(stderr, "dotsocr: error: %s: %s\n", path, strerror(errno));
                return 1;
            }
            if (end) break;
            *p = '/';
        }
    }
    return 0;
}

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
            if (!parse_i64_opt(optarg, 1, 1000000, &page)) return usage_error("preprocess", "bad --page '%s' (1-based)", optarg);
            break;
        case 'd':
            if (!parse_i64_opt(optarg, 1, 2400, &dpi)) return usage_error("preprocess", "bad --dpi '%s' (1..2400)", optarg);
            break;
        case 'n':
            if (!parse_i64_opt(optarg, 1, INT32_MAX, &min_px)) return usage_error("preprocess", "bad --min-pixels '%s'", optarg);
            break;
        case 'x':
            if (!parse_i64_opt(optarg, 1, INT32_MAX, &max_px)) return usage_error("preprocess", "bad --max-pixels '%s'", optarg);
            break;
        case 'o': dump = optarg; break;
        case 'F': fitz = true; break;
        case 'v': g_verbosity++; break;
        case 'q': g_verbosity = -1; break;
        case 'h': fputs(help_preprocess, stdout); return 0;
        default: return usage_error("preprocess", "bad option '%s'", argv[optind - 1]);
        }
    }
    if (!model_dir) return usage_error("preprocess", "%s", "--model DIR is required");
    if (argc - optind != 1) return usage_error("preprocess", "expected one INPUT, got %s", argc - optind ? "more" : "none");
    const char *input = argv[optind];
    dots_ctx *ctx = make_ctx();
    if (!ctx) return 1;
    dots_model *model = NULL;
    dots_document *doc = NULL;
    dots_image page_img = {0}, resized = {0};
    dots_pixel_rows rows = {0};
    int rc = 0;
    int32_t dpi_used = 0;
    double t0 = dots_monotonic_s(), t_decode = 0, t_prep = 0;
    if (open_model(ctx, model_dir, g_mmproj, &model) != DOTS_OK || dots_document_open(ctx, input, &doc) != DOTS_OK ||
        dots_document_render_page(ctx, doc, (int32_t)(page - 1), (int32_t)dpi, &page_img, &dpi_used) != DOTS_OK) {
        rc = fail(ctx);
        goto done;
    }
    if (fitz && !dots_document_is_pdf(doc)) {
        dots_image r = {0};
        if (dots_image_fitz_render(ctx, &page_img, (int32_t)dpi, &r, &dpi_used) != DOTS_OK) {
            rc = fail(ctx);
            goto done;
        }
        dots_image_free(&page_img);
        page_img = r;
    }
    t_decode = dots_monotonic_s() - t0;
    t0 = dots_monotonic_s();
    if (dots_preprocess(ctx, dots_model_config(model), &page_img, min_px, max_px, &resized, &rows) != DOTS_OK) {
        rc = fail(ctx);
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
        if ((rc = ensure_dir(dump)) != 0) goto done;
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
                rc = fail(ctx);
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
static dots_status place_weights(dots_ctx *ctx, dots_model *model, int mmap_choice) {
    if (mmap_choice > 0) return DOTS_OK;
    if (mmap_choice == 0) {
        dots_model_info info;
        if (dots_model_get_info(model, &info) != DOTS_OK) return DOTS_OK;
        dots_dtype t = info.lm_matrix_dtype;
        if (t != DOTS_DTYPE_Q8_0 && t != DOTS_DTYPE_Q4_0 && t != DOTS_DTYPE_Q4_K) return DOTS_OK;
    }
    return dots_model_load_to_ram(ctx, model);
}

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

static bool parse_precision(const char *s, bool *bf16) {
    if (strcmp(s, "fp32") == 0) *bf16 = false;
    else if (strcmp(s, "bf16") == 0) *bf16 = true;
    else return false;
    return true;
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
        case 'p': if (!parse_i64_opt(optarg, 1, 1000000, &page)) return usage_error("vision", "bad --page '%s'", optarg); break;
        case 'd': if (!parse_i64_opt(optarg, 1, 2400, &dpi)) return usage_error("vision", "bad --dpi '%s'", optarg); break;
        case 'n': if (!parse_i64_opt(optarg, 1, INT32_MAX, &min_px)) return usage_error("vision", "bad --min-pixels '%s'", optarg); break;
        case 'x': if (!parse_i64_opt(optarg, 1, INT32_MAX, &max_px)) return usage_error("vision", "bad --max-pixels '%s'", optarg); break;
        case 't': if (!parse_i64_opt(optarg, 1, 256, &threads)) return usage_error("vision", "bad --threads '%s' (1..256)", optarg); break;
        case 'o': dump = optarg; break;
        case 'W': mmap_choice = -1; break;
        case 1001: mmap_choice = 1; break;
        case 'B': blocks = true; break;
        case 'P':
            if (!parse_precision(optarg, &bf16)) return usage_error("vision", "bad --precision '%s' (fp32 or bf16)", optarg);
            break;
        case 'v': g_verbosity++; break;
        case 'q': g_verbosity = -1; break;
        case 'h': fputs(help_vision, stdout); return 0;
        default: return usage_error("vision", "bad option '%s'", argv[optind - 1]);
        }
    }
    if (!model_dir) return usage_error("vision", "%s", "--model DIR is required");
    if (argc - optind != 1) return usage_error("vision", "expected one INPUT, got %s", argc - optind ? "more" : "none");
    if (blocks && !dump) return usage_error("vision", "%s", "--dump-blocks needs --dump OUT_DIR");
    dots_ctx *ctx = make_ctx();
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
    dots_kernels kern = {dots_cpu_isa(), pool, &scratch, bf16, worker_scratch};
    dump_ctx dc = {dump, ctx, 0};
    if (!pool) {
        fprintf(stderr, "dotsocr: error: cannot start threads\n");
        rc = 1;
        goto done;
    }
    if (open_model(ctx, model_dir, g_mmproj, &model) != DOTS_OK || (mmap_choice < 0 && dots_model_load_to_ram(ctx, model) != DOTS_OK) ||
        dots_document_open(ctx, argv[optind], &doc) != DOTS_OK ||
        dots_document_render_page(ctx, doc, (int32_t)(page - 1), (int32_t)dpi, &img, NULL) != DOTS_OK ||
        dots_preprocess(ctx, dots_model_config(model), &img, min_px, max_px, NULL, &rows) != DOTS_OK) {
        rc = fail(ctx);
        goto done;
    }
    if (dump && (rc = ensure_dir(dump)) != 0) goto done;
    double t0 = dots_monotonic_s();
    if (dots_vision_encode(ctx, dots_model_config(model), dots_model_weights(model), &kern, &rows, &emb, &n_emb,
                           blocks ? dump_block : NULL, &dc) != DOTS_OK) {
        rc = fail(ctx);
        goto done;
    }
    double secs = dots_monotonic_s() - t0, flops = dots_vision_flops(dots_model_config(model), rows.n_patches);
    printf("grid %d x %d: %lld patches -> %lld tokens\n", rows.grid_h, rows.grid_w, (long long)rows.n_patches,
           (long long)n_emb);
    printf("vision: %.3f s, %.1f GFLOP, %.1f GFLOP/s, %d threads, %s kernels, %s, peak RSS %.0f MB\n", secs, flops / 1e9,
           flops / 1e9 / secs, dots_pool_size(pool), dots_isa_name(kern.isa),
           bf16 && kern.isa >= DOTS_ISA_AVX512BF16 ? "bf16 products" : "fp32", dots_peak_rss_mb());
    if (dc.failed) {
        rc = fail(ctx);
        goto done;
    }
    if (dump) {
        char path[4096];
        snprintf(path, sizeof path, "%s/vision_embeds.npy", dump);
        const int64_t shape[2] = {n_emb, dots_model_config(model)->vision.hidden_size};
        if (dots_npy_write(ctx, path, "<f4", shape, 2, emb, 4) != DOTS_OK) rc = fail(ctx);
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
    "                   [--mmproj FILE]\n"
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
        {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    const char *model_dir = NULL, *dump = NULL, *forced_path = NULL;
    bool bf16 = false;
    int mmap_choice = 0;
    int64_t page = 1, dpi = 0, threads = 0, max_new = 0;
    uint64_t seed = 0;
    dots_run_params rp;
    dots_run_params_init(&rp);
    bool have_bbox = false;
    int c;
    while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 1002: g_mmproj = optarg; break;
        case 'W': mmap_choice = -1; break;
        case 1001: mmap_choice = 1; break;
        case 'M': if (!parse_mode(optarg, &rp.mode)) return usage_error("run", "unknown mode '%s'", optarg); break;
        case 'b': {
            int n = 0;
            if (sscanf(optarg, "%d,%d,%d,%d%n", &rp.bbox[0], &rp.bbox[1], &rp.bbox[2], &rp.bbox[3], &n) != 4 || optarg[n])
                return usage_error("run", "bad --bbox '%s' (x1,y1,x2,y2)", optarg);
            have_bbox = true;
            break;
        }
        case 'p': if (!parse_i64_opt(optarg, 1, 1000000, &page)) return usage_error("run", "bad --page '%s'", optarg); break;
        case 'd': if (!parse_i64_opt(optarg, 1, 2400, &dpi)) return usage_error("run", "bad --dpi '%s'", optarg); break;
        case 'n': if (!parse_i64_opt(optarg, 1, INT32_MAX, &rp.min_pixels)) return usage_error("run", "bad --min-pixels '%s'", optarg); break;
        case 'x': if (!parse_i64_opt(optarg, 1, INT32_MAX, &rp.max_pixels)) return usage_error("run", "bad --max-pixels '%s'", optarg); break;
        case 'N': if (!parse_i64_opt(optarg, 1, 131072, &max_new)) return usage_error("run", "bad --max-new-tokens '%s'", optarg); break;
        case 'T': if (!parse_float(optarg, 0, 100, &rp.temperature)) return usage_error("run", "bad --temperature '%s'", optarg); break;
        case 'P': if (!parse_float(optarg, 0, 1, &rp.top_p)) return usage_error("run", "bad --top-p '%s' (0..1)", optarg); break;
        case 's': if (!parse_u64(optarg, &seed)) return usage_error("run", "bad --seed '%s'", optarg); break;
        case 't': if (!parse_i64_opt(optarg, 1, 256, &threads)) return usage_error("run", "bad --threads '%s'", optarg); break;
        case 'o': dump = optarg; break;
        case 'F': forced_path = optarg; break;
        case 'R':
            if (!parse_precision(optarg, &bf16)) return usage_error("run", "bad --precision '%s' (fp32 or bf16)", optarg);
            break;
        case 'v': g_verbosity++; break;
        case 'q': g_verbosity = -1; break;
        case 'h': fputs(help_run, stdout); return 0;
        default: return usage_error("run", "bad option '%s'", argv[optind - 1]);
        }
    }
    if (!model_dir) return usage_error("run", "%s", "--model DIR is required");
    if (argc - optind != 1) return usage_error("run", "expected one INPUT, got %s", argc - optind ? "more" : "none");
    if ((rp.mode == DOTS_MODE_GROUNDING) != have_bbox)
        return usage_error("run", "%s", "--bbox goes with --mode grounding, and grounding needs it");
    if (forced_path && !dump) return usage_error("run", "%s", "--teacher-force needs --dump OUT_DIR");
    rp.max_new_tokens = (int32_t)max_new;
    rp.seed = seed;
    rp.on_token = stream_token;
    dots_ctx *ctx = make_ctx();
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
    if (open_model(ctx, model_dir, g_mmproj, &model) != DOTS_OK || place_weights(ctx, model, mmap_choice) != DOTS_OK ||
        dots_state_create(ctx, model, (int32_t)threads, &st) != DOTS_OK ||
        dots_state_set_precision(ctx, st, bf16 ? DOTS_PRECISION_BF16 : DOTS_PRECISION_FP32) != DOTS_OK ||
        dots_document_open(ctx, argv[optind], &doc) != DOTS_OK ||
        dots_document_render_page(ctx, doc, (int32_t)(page - 1), (int32_t)dpi, &img, NULL) != DOTS_OK) {
        rc = fail(ctx);
        goto done;
    }
    if (dump && (rc = ensure_dir(dump)) != 0) goto done;
    if (forced_path) {
        if (dots_npy_read_ids(ctx, forced_path, 131072, &forced, &n_forced) != DOTS_OK) {
            rc = fail(ctx);
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
        rc = fail(ctx);
        goto done;
    }
    printf("\n");
    static const char *const stops[] = {"eos", "max-new-tokens", "interrupted", "context full"};
    int64_t n_gen = res.n_tokens;
    if (g_verbosity >= 0)
        fprintf(stderr,
                "dotsocr: %s; image %d x %d -> %lld image tokens, prompt %lld tokens, generated %lld (%s)\n"
                "dotsocr: preprocess %.2f s, vision %.2f s, prefill %.2f s (%.1f tok/s), decode %.2f s (%.2f tok/s), peak RSS %.0f MB\n",
                dots_prompt_mode_name(rp.mode), res.resized_width_px, res.resized_height_px, (long long)res.n_image_tokens,
                (long long)res.n_prompt_tokens, (long long)n_gen, stops[res.stop], res.preprocess_s, res.vision_s,
                res.prefill_s, res.n_prompt_tokens / (res.prefill_s > 0 ? res.prefill_s : 1e-9), res.decode_s,
                n_gen > 1 ? (n_gen - 1) / (res.decode_s > 0 ? res.decode_s : 1e-9) : 0.0, dots_peak_rss_mb());
    if (dump) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tokens.npy", dump);
        if (dots_npy_write(ctx, path, "<i4", &n_gen, 1, res.tokens, 4) != DOTS_OK) rd.failed = 1;
        if (rd.teacher && !rd.failed) {
            const int64_t shape[2] = {n_forced, rd.vocab};
            snprintf(path, sizeof path, "%s/logits_teacher.npy", dump);
            if (dots_npy_write(ctx, path, "<f4", shape, 2, rd.teacher, 4) != DOTS_OK) rd.failed = 1;
        }
        if (rd.failed) rc = fail(ctx);
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

/* ----------------------------------------------------------------- parse */

static void more_verbose(void) {
    if (g_verbosity >= 0) g_verbosity++;
}

static int cmd_parse(int argc, char **argv) {
    const dots_cli cli = {make_ctx, fail, usage_error, parse_i64_opt, parse_u64, parse_float, parse_mode, ensure_dir, parse_precision,
                          place_weights, more_verbose};
    return dots_cmd_parse(argc, argv, &cli);
}

static int cmd_bench(int argc, char **argv) {
    const dots_cli cli = {make_ctx, fail, usage_error, parse_i64_opt, parse_u64, parse_float, parse_mode, ensure_dir, parse_precision,
                          place_weights, more_verbose};
    return dots_cmd_bench(argc, argv, &cli);
}

/* ------------------------------------------------------------------ main */

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
    const char *summary;
} command;

static const command commands[] = {
    {"info", cmd_info, help_info, "validate a checkpoint and print its config and sizes"},
    {"make-model", cmd_make_model, help_make_model, "write a random-weight checkpoint (tests, benchmarks)"},
    {"convert", cmd_convert, help_convert, "checkpoint -> one GGUF file (bf16, q8_0, q4_0, q4_k)"},
    {"preprocess", cmd_preprocess, help_preprocess, "image/PDF page -> resized image and vision pixel rows"},
    {"vision", cmd_vision, help_vision, "image/PDF page -> vision encoder embeddings"},
    {"run", cmd_run, help_run, "image/PDF page -> the model's raw answer (streamed)"},
    {"parse", cmd_parse, NULL, "documents -> layout JSON, Markdown and layout pictures per page"},
    {"bench", cmd_bench, NULL, "speed of every stage against this machine's measured limits"},
    {"tokenize", cmd_tokenize, help_tokenize, "text on stdin -> token ids"},
    {"detokenize", cmd_detokenize, help_detokenize, "token ids on stdin -> text"},
};

static void print_usage(FILE *f) {
    fprintf(f, "dotsocr %s - the dots.ocr document parser, on your own machine\n\n", DOTS_VERSION_STRING);
    fprintf(f, "usage: dotsocr COMMAND [options] ...\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-12s %s\n  %-12s %s\n", "help [CMD]", "show help", "version", "print the version");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "version") == 0 || strcmp(name, "--version") == 0) {
        printf("dotsocr %s\n", DOTS_VERSION_STRING);
        return 0;
    }
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        if (argc >= 3) {
            for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
                if (strcmp(argv[2], commands[i].name) == 0) {
                    if (commands[i].help) {
                        fputs(commands[i].help, stdout);
                        return 0;
                    }
                    char *args[] = {argv[2], (char *)"--help", NULL};
                    optind = 1;
                    return commands[i].run(2, args);
                }
            fprintf(stderr, "dotsocr: unknown command '%s'\n", argv[2]);
            return EXIT_USAGE;
        }
        print_usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0) {
            opterr = 0; /* we print our own one-line message */
            return commands[i].run(argc - 1, argv + 1);
        }
    fprintf(stderr, "dotsocr: unknown command '%s' (see 'dotsocr help')\n", name);
    return EXIT_USAGE;
}
