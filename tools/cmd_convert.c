/*
 * cmd_convert.c - `dotsocr convert`: a model as one GGUF file or llama.cpp's LM + mmproj pair.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

int dots_cmd_convert(int argc, char **argv) {
    static const struct option opts[] = {
        {"type", required_argument, NULL, 'T'}, {"vision-type", required_argument, NULL, 'V'},
        {"threads", required_argument, NULL, 't'}, {"tokenizer", required_argument, NULL, 'k'},
        {"mmproj", required_argument, NULL, 'm'},
        {"verbose", no_argument, NULL, 'v'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    dots_convert_params p;
    dots_convert_params_init(&p);
    int c;
    int64_t threads;
    while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
        switch (c) {
        case 'T':
            if (!parse_weight_type(optarg, &p.type))
                return cli_usage("convert", "unknown --type '%s' (bf16, q8_0, q4_0 or q4_k)", optarg);
            break;
        case 'V':
            if (!parse_weight_type(optarg, &p.vision_type))
                return cli_usage("convert", "unknown --vision-type '%s' (bf16, q8_0, q4_0 or q4_k)", optarg);
            break;
        case 't':
            if (cli_int("convert", "--threads", optarg, 1, 256, &threads)) return DOTS_EXIT_USAGE;
            p.threads = (int32_t)threads;
            break;
        case 'k': p.tokenizer_path = optarg; break;
        case 'm': p.mmproj_path = optarg; break;
        case 'v': cli_more_verbose(); break;
        case 'q': cli_quiet(); break;
        case 'h': fputs(help_convert, stdout); return 0;
        default: return cli_bad_option("convert", argc, argv, opts, "vqh");
        }
    }
    if (argc - optind != 2) return cli_usage("convert", "expected MODEL and OUT.gguf");
    dots_ctx *ctx = cli_make_ctx();
    if (!ctx) return 1;
    dots_model *model = NULL;
    double t0 = cli_now();
    int rc = 0;
    if (dots_model_open(ctx, argv[optind], &model) != DOTS_OK || dots_convert_gguf(ctx, model, argv[optind + 1], &p) != DOTS_OK)
        rc = cli_fail(ctx);
    else if (cli_verbosity() >= 0)
        fprintf(stderr, "dotsocr: wrote %s%s%s in %.1f s\n", argv[optind + 1], p.mmproj_path ? " and " : "",
                p.mmproj_path ? p.mmproj_path : "", cli_now() - t0);
    dots_model_close(model);
    dots_ctx_free(ctx);
    return rc;
}

