/*
 * cmd_make_model.c - `dotsocr make-model`: a random-weight checkpoint in the official layout.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

int dots_cmd_make_model(int argc, char **argv) {
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
            else return cli_usage("make-model", "unknown preset '%s' (tiny or full)", optarg);
            break;
        case 's':
            if (cli_u64("make-model", "--seed", optarg, &u)) return DOTS_EXIT_USAGE;
            p.seed = u;
            break;
        case 'd':
            if (strcmp(optarg, "bf16") == 0) p.dtype = DOTS_DTYPE_BF16;
            else if (strcmp(optarg, "f16") == 0) p.dtype = DOTS_DTYPE_F16;
            else if (strcmp(optarg, "f32") == 0) p.dtype = DOTS_DTYPE_F32;
            else return cli_usage("make-model", "unknown dtype '%s' (bf16, f16 or f32)", optarg);
            break;
        case 'b':
            {
            int64_t v;
            if (cli_int("make-model", "--shard-bytes", optarg, 1, INT64_MAX, &v)) return DOTS_EXIT_USAGE;
            p.max_shard_bytes = v;
        }
            break;
        case 'z': p.sparse_zero = true; break;
        case 't': p.tokenizer_path = optarg; break;
        case 'v': cli_more_verbose(); break;
        case 'q': cli_quiet(); break;
        case 'h': fputs(help_make_model, stdout); return 0;
        default: return cli_bad_option("make-model", argc, argv, opts, "vqh");
        }
    }
    if (argc - optind != 1) return cli_usage("make-model", "expected one OUT_DIR, got %s", argc - optind ? "more" : "none");
    dots_ctx *ctx = cli_make_ctx();
    if (!ctx) return 1;
    double t0 = cli_now();
    int rc = 0;
    if (dots_make_model(ctx, argv[optind], &p) != DOTS_OK)
        rc = cli_fail(ctx);
    else if (cli_verbosity() >= 0)
        fprintf(stderr, "dotsocr: wrote %s model to %s in %.1f s\n", p.preset == DOTS_PRESET_TINY ? "tiny" : "full",
                argv[optind], cli_now() - t0);
    dots_ctx_free(ctx);
    return rc;
}

