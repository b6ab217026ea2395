/*
 * cmd_info.c - `dotsocr info`: validate a model and print its config, tensors and sizes.
 */
#include "cli.h"

#include <jansson.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------ info */

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


static const char help_info[] =
    "usage: dotsocr info [--json] [--mmproj FILE] [-v|-q] MODEL\n"
    "  Opens a dots.ocr checkpoint directory (config.json + safetensors, sharded or\n"
    "  not) or GGUF file, validates every file and tensor, and prints the config,\n"
    "  tensor and parameter counts per part, bytes per dtype, the files used, the\n"
    "  load time and peak RSS. --json prints one JSON object instead.\n"
    "  MODEL may be the LM file of llama.cpp's LM + mmproj pair; its mmproj file\n"
    "  is the one *mmproj*.gguf next to it, or --mmproj FILE (run, parse, vision,\n"
    "  preprocess and bench take --mmproj too).\n";

/* Which release the files say they are: dots.ocr and dots.mocr (first
 * published as dots.ocr-1.5) share the architecture and tensor names, so
 * only names can tell: config.json's _name_or_path, tokenizer_config.json's
 * name_or_path, or the directory's own name (DotsMOCR, as the official
 * download script names it). *why gets the evidence. */
static const char *model_family(const char *dir, char *why, size_t cap) {
    static const char *const files[][2] = {{"config.json", "_name_or_path"}, {"tokenizer_config.json", "name_or_path"}};
    snprintf(why, cap, "the files name neither");
    for (int i = 0; i < 2; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, files[i][0]);
        json_t *o = json_load_file(path, 0, NULL);
        const char *v = json_string_value(json_object_get(o, files[i][1]));
        const char *fam = NULL;
        if (v && (strcasestr(v, "mocr") || strcasestr(v, "ocr-1.5") || strcasestr(v, "ocr_1.5") || strcasestr(v, "ocr1.5")))
            fam = "dots.mocr";
        else if (v && strcasestr(v, "dots.ocr"))
            fam = "dots.ocr";
        if (fam) snprintf(why, cap, "%s %s \"%s\"", files[i][0], files[i][1], v);
        json_decref(o);
        if (fam) return fam;
    }
    const char *base = strrchr(dir, '/');
    base = base && base[1] ? base + 1 : dir;
    if (strcasestr(base, "mocr")) {
        snprintf(why, cap, "the directory's name");
        return "dots.mocr";
    }
    return "not stated";
}

static void print_info_text(const dots_model *m, const dots_model_info *info, double load_ms, double rss_mb) {
    const dots_config *c = dots_model_config(m);
    const dots_text_config *t = &c->text;
    const dots_vision_config *v = &c->vision;
    char a[40], b[40], d[40];
    printf("model: %s\n", dots_model_dir(m));
    char why[512];
    const char *family = model_family(dots_model_dir(m), why, sizeof why);
    printf("family: %s (%s); every mode works with either\n", family, why);
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
    char why[512];
    printf("\", \"family\": \"%s\", ", model_family(dots_model_dir(m), why, sizeof why));
    printf("\"n_tensors\": %" PRId64 ", \"n_tensors_vision\": %" PRId64 ", \"n_tensors_lm\": %" PRId64
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

int dots_cmd_info(int argc, char **argv) {
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
        case 'v': cli_more_verbose(); break;
        case 'q': cli_quiet(); break;
        case 'h': fputs(help_info, stdout); return 0;
        default: return cli_bad_option("info", argc, argv, opts, "vqh");
        }
    }
    if (argc - optind != 1) return cli_usage("info", "expected one MODEL_DIR, got %s", argc - optind ? "more" : "none");
    dots_ctx *ctx = cli_make_ctx();
    if (!ctx) return 1;
    double t0 = cli_now();
    dots_model *model = NULL;
    if (cli_open_model(ctx, argv[optind], mmproj, DOTS_PLACE_MAP, &model) != DOTS_OK) {
        int rc = cli_fail(ctx);
        dots_ctx_free(ctx);
        return rc;
    }
    double load_ms = 1e3 * (cli_now() - t0);
    dots_model_info info;
    dots_model_get_info(model, &info);
    if (json)
        print_info_json(model, &info, load_ms, cli_peak_rss_mb());
    else
        print_info_text(model, &info, load_ms, cli_peak_rss_mb());
    dots_model_close(model);
    dots_ctx_free(ctx);
    return 0;
}

