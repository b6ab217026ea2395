/*
 * cmd_bench.c - `dotsocr bench`: one page through the whole model on a
 * synthetic image, with every figure stated against this machine's limits
 * measured in the same run (bf16 dot peak, DRAM read bandwidth), since the
 * host is shared and absolute numbers drift.
 */
#include "../cli.h"

#include "decode/guided.h"
#include "kernels/kernels.h"
#include "pipeline/page.h"
#include "vision/vision.h"

#include <getopt.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static const char help_bench[] =
    "usage: dotsocr-debug bench --model DIR|FILE.gguf [--image WxH] [--threads N] [--decode N] [--precision fp32|bf16|auto]\n"
    "                     [--json] [--lock] [--mmap] [--mmproj FILE]\n"
    "  Copies the weights into anonymous memory (huge pages where allowed; --mmap\n"
    "  reads them in place from the mapped files instead, as run and parse do by\n"
    "  default), measures this machine's bf16 dot peak and DRAM\n"
    "  read bandwidth, then runs one synthetic WxH page (default 448x448) through the\n"
    "  vision encoder, prefill and N decode steps (default 32, forced tokens, so the\n"
    "  count does not depend on EOS). Prints seconds, GFLOP/s, tokens/s, GB/s of\n"
    "  weights streamed, peak RSS, and each as a percentage of its limit. The\n"
    "  limits are measured before and after the run; each figure is held to the\n"
    "  higher reading (a shared machine's bandwidth drifts). --json\n"
    "  prints one object: vision_s vision_gflops vision_pct_peak prefill_tok_s\n"
    "  prefill_pct_peak decode_tok_s decode_gbps decode_pct_bw peak_rss_mb\n"
    "  peak_bf16_gflops dram_gbps threads weights (the LM matrices' type: bf16,\n"
    "  q8_0, ...). --lock also mlock()s the weights.\n"
    "  --batch N[,N...] then decodes N copies of the page at once (dots_batch: each\n"
    "  step reads the weights once for all N), for each N given, in this process:\n"
    "  aggregate and per-sequence tok/s, the speedup over one sequence, the KV\n"
    "  caches' size and the peak RSS so far; --json adds \"batch\" (a single N:\n"
    "  decode_tok_s is then the aggregate, decode_tok_s_per_seq per sequence) or\n"
    "  \"batches\" (a list: one object per N).\n";

/* One batch of n copies of img decoding n_decode forced tokens each. */
typedef struct batch_figures {
    int n;
    double tok_s, per_seq_tok_s, kv_mb, rss_mb, step_ms;
} batch_figures;

static int bench_batch(dots_ctx *ctx, dots_state *st, const dots_image *img, int n, const int32_t *forced, int64_t n_decode,
                       batch_figures *out) {
    dots_batch *b = NULL;
    if (dots_batch_create(ctx, st, n, &b) != DOTS_OK) return cli_fail(ctx);
    dots_run_params rp;
    dots_run_params_init(&rp);
    rp.mode = DOTS_MODE_OCR;
    dots_run_hooks hooks = {0};
    hooks.forced = forced;
    hooks.n_forced = n_decode;
    int rc = 0;
    int64_t id;
    for (int i = 0; i < n && rc == 0; i++)
        if (dots_batch_add_ex(ctx, b, img, &rp, &hooks, &id) != DOTS_OK) rc = cli_fail(ctx);
    const double t0 = cli_now();
    int64_t steps = 0;
    while (rc == 0 && dots_batch_running(b) > 0) {
        if (dots_batch_step(ctx, b) != DOTS_OK) rc = cli_fail(ctx);
        steps++;
    }
    const double secs = cli_now() - t0;
    out->n = n;
    out->kv_mb = dots_batch_kv_bytes(b) / 1e6;
    int64_t tokens = 0;
    for (int64_t fid; rc == 0 && (fid = dots_batch_finished_id(b)) >= 0;) {
        dots_run_result r = {0};
        if (dots_batch_take(ctx, b, fid, &r) != DOTS_OK) rc = cli_fail(ctx);
        tokens += r.n_tokens;
        dots_run_result_free(&r);
    }
    /* the first token of each sequence comes from its prefill: the steps made the others */
    out->tok_s = secs > 0 ? (double)(tokens - n) / secs : 0;
    out->per_seq_tok_s = out->tok_s / n;
    out->step_ms = steps > 1 ? 1e3 * secs / (double)(steps - 1) : 0;
    out->rss_mb = cli_peak_rss_mb();
    dots_batch_free(b);
    return rc;
}

static double prefill_flops(const dots_config *c, int64_t n) {
    const dots_text_config *t = &c->text;
    double H = t->hidden_size, Q = (double)t->num_attention_heads * t->head_dim;
    double KV = (double)t->num_key_value_heads * t->head_dim, F = t->intermediate_size;
    double per_layer = 2.0 * n * (H * Q + 2 * H * KV + Q * H + 3 * H * F) + 2.0 * (double)n * n * Q; /* causal: half of 4 n^2 Q */
    return t->num_hidden_layers * per_layer + 2.0 * H * t->vocab_size; /* lm_head on the last row */
}

/* The limits are measured in a child process: its 1 GiB bandwidth buffer
 * must not count in this process's peak RSS. */
static void measure_limits(int n_threads, double out[2]) {
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        dots_pool *pool = dots_pool_create(n_threads);
        dots_kernels k = {dots_cpu_isa(), pool, NULL, false, NULL, NULL};
        double r[2] = {dots_measure_bf16_peak_gflops(&k), dots_measure_dram_gbps(&k, (size_t)1 << 30)};
        ssize_t wr = write(fds[1], r, sizeof r);
        (void)wr;
        _exit(0);
    }
    close(fds[1]);
    if (pid > 0) {
        double r[2];
        if (read(fds[0], r, sizeof r) == (ssize_t)sizeof r) out[0] = r[0], out[1] = r[1];
        waitpid(pid, NULL, 0);
    }
    close(fds[0]);
}


/* The layout constraint's cost per decoded token: a realistic answer
 * (several cells of mixed text) picked token by token through the same
 * dots_guided_pick a constrained decode runs, with logits that favour the
 * answer's next token, so every step makes (or finds) its mask, masks the
 * vocabulary, picks and checks the closing budget. The first pass includes
 * the masks' first making; the figure is the mean of a second pass over a
 * fresh answer, as a long page sees it. Returns ms per token (< 0: error);
 * *build_s gets the trie's construction time. */
static double constraint_ms_per_token(dots_ctx *ctx, const dots_model *model, double *build_s) {
    dots_tokenizer *tok = NULL;
    dots_token_mask *mask = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    double ms = -1;
    const int32_t V = dots_model_config(model)->text.vocab_size;
    float *logits = calloc((size_t)V, sizeof *logits);
    const char *answer =
        "[{\"bbox\": [84, 112, 1620, 190], \"category\": \"Title\", \"text\": \"# Quarterly report on the results\"}, "
        "{\"bbox\": [84, 230, 1620, 640], \"category\": \"Text\", \"text\": \"Revenue grew by 12% year on year, driven by "
        "the services segment; operating costs rose 4%. The board proposes a dividend of 0.42 per share, payable in June.\"}, "
        "{\"bbox\": [84, 660, 1620, 1100], \"category\": \"Table\", \"text\": \"<table><tr><td>Q1</td><td>1,204</td></tr>"
        "<tr><td>Q2</td><td>1,310</td></tr><tr><td>Q3</td><td>1,356</td></tr></table>\"}, {\"bbox\": [84, 1120, 900, 1500], "
        "\"category\": \"Picture\"}, {\"bbox\": [84, 1520, 1620, 1580], \"category\": \"Formula\", \"text\": "
        "\"$$E = mc^2 + \\\\sum_{i=1}^{n} x_i$$\"}, {\"bbox\": [84, 2100, 1620, 2150], \"category\": \"Page-footer\", "
        "\"text\": \"3\"}]";
    double t0 = cli_now();
    if (!logits || dots_tokenizer_open(ctx, dots_model_dir(model), &tok) != DOTS_OK ||
        dots_token_mask_create(ctx, tok, dots_tokenizer_n_ids(tok) < V ? dots_tokenizer_n_ids(tok) : V, &mask) != DOTS_OK ||
        dots_tok_encode(ctx, tok, answer, strlen(answer), &ids, &n) != DOTS_OK)
        goto done;
    *build_s = cli_now() - t0;
    const int32_t n_valid = dots_tokenizer_n_ids(tok) < V ? dots_tokenizer_n_ids(tok) : V;
    const int32_t eos = dots_tokenizer_token_id(tok, "<|endofassistant|>");
    dots_lg_limits lim = {1708, 2240, 1, {0}};
    dots_sampler sampler;
    if (!dots_sampler_init(&sampler, 0, 0, 0, n_valid)) goto done;
    double total = 0;
    for (int pass = 0; pass < 2; pass++) {
        dots_guided gd;
        if (dots_guided_init(&gd, ctx, tok, mask, &lim, true, &eos, 1, n_valid) != DOTS_OK) break;
        double t = cli_now();
        for (size_t i = 0; i < n; i++) {
            logits[ids[i]] = 100.0f;
            int32_t got = dots_guided_pick(&gd, &sampler, logits, 16384 - (int64_t)i);
            logits[ids[i]] = 0.0f;
            dots_guided_accept(&gd, got, (int64_t)i);
        }
        total = cli_now() - t;
        dots_guided_free(&gd);
    }
    dots_sampler_free(&sampler);
    ms = 1e3 * total / (double)n;
done:
    free(logits);
    free(ids);
    dots_token_mask_free(mask);
    dots_tokenizer_free(tok);
    return ms;
}

int dots_cmd_bench(int argc, char **argv);

int dots_cmd_bench(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'}, {"image", required_argument, NULL, 'i'},
        {"threads", required_argument, NULL, 't'}, {"decode", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'}, {"lock", no_argument, NULL, 'l'}, {"precision", required_argument, NULL, 'p'},
        {"mmap", no_argument, NULL, 'M'}, {"mmproj", required_argument, NULL, 1002},
        {"batch", required_argument, NULL, 1003},
        {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    const char *model_dir = NULL, *mmproj = NULL;
    int w = 448, h = 448;
    int64_t threads = 0, n_decode = 32;
    bool json = false, lock = false, keep_mmap = false;
    int batches[16], n_batches = 0;
    dots_precision precision = DOTS_PRECISION_AUTO;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 1002: mmproj = optarg; break;
        case 1003: {
            char *spec = optarg, *end;
            n_batches = 0;
            while (*spec && n_batches < 16) {
                long v = strtol(spec, &end, 10);
                if (end == spec || v < 1 || v > 64 || (*end && *end != ',')) break;
                batches[n_batches++] = (int)v;
                spec = *end ? end + 1 : end;
            }
            if (*spec || n_batches == 0) return cli_usage("bench", "bad --batch '%s': sizes 1..64, comma-separated", optarg);
            break;
        }
        case 'i': {
            int k = 0;
            if (sscanf(optarg, "%dx%d%n", &w, &h, &k) != 2 || optarg[k] || w < 28 || h < 28 || w > 8192 || h > 8192)
                return cli_usage("bench", "bad --image '%s' (WxH, 28..8192)", optarg);
            break;
        }
        case 't': if (cli_int("bench", "--threads", optarg, 1, 256, &threads)) return DOTS_EXIT_USAGE; break;
        case 'd': if (cli_int("bench", "--decode", optarg, 1, 4096, &n_decode)) return DOTS_EXIT_USAGE; break;
        case 'j': json = true; break;
        case 'l': lock = true; break;
        case 'M': keep_mmap = true; break;
        case 'p':
            if (cli_precision("bench", optarg, &precision)) return DOTS_EXIT_USAGE;
            break;
        case 'h': fputs(help_bench, stdout); return 0;
        default: return cli_bad_option("bench", argc, argv, opts, "h");
        }
    }
    if (!model_dir) return cli_usage("bench", "%s", "--model DIR is required");
    if (optind != argc) return cli_usage("bench", "unexpected argument '%s'", argv[optind]);
    dots_ctx *ctx = cli_make_ctx();
    dots_model *model = NULL;
    dots_state *st = NULL;
    dots_image img = {0};
    dots_run_result res = {0};
    int32_t *forced = NULL;
    int rc = 0;
    int64_t resident = 0;
    if (!ctx || (mmproj ? dots_model_open_pair(ctx, model_dir, mmproj, &model) : dots_model_open(ctx, model_dir, &model)) != DOTS_OK ||
        (!keep_mmap && dots_model_load_to_ram(ctx, model) != DOTS_OK) ||
        dots_model_make_resident(ctx, model, lock, &resident) != DOTS_OK ||
        dots_state_create(ctx, model, (int32_t)threads, &st) != DOTS_OK ||
        dots_state_set_precision(ctx, st, precision) != DOTS_OK) {
        rc = ctx ? cli_fail(ctx) : 1;
        goto done;
    }
    int n_threads = threads ? (int)threads : dots_default_threads();
    double limits[2] = {0, 0}; /* bf16 peak, DRAM bandwidth */
    measure_limits(n_threads, limits);
    double peak = limits[0], dram = limits[1];
    /* a synthetic page: noise, deterministic */
    img.width_px = w;
    img.height_px = h;
    img.rgb = malloc((size_t)w * (size_t)h * 3);
    forced = malloc(sizeof(int32_t) * (size_t)n_decode);
    if (!img.rgb || !forced) {
        fprintf(stderr, "dotsocr: error: out of memory\n");
        rc = 1;
        goto done;
    }
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < (size_t)w * (size_t)h * 3; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        img.rgb[i] = (uint8_t)(x >> 56);
    }
    for (int64_t i = 0; i < n_decode; i++) forced[i] = 13; /* "." : never an EOS, any real token would do */
    dots_run_params rp;
    dots_run_params_init(&rp);
    rp.mode = DOTS_MODE_OCR;
    dots_run_hooks hooks = {0};
    hooks.forced = forced;
    hooks.n_forced = n_decode;
    if (dots_run_image_ex(ctx, st, &img, &rp, &hooks, &res) != DOTS_OK) {
        rc = cli_fail(ctx);
        goto done;
    }
    /* once more after the run: a shared machine's bandwidth drifts with its
     * neighbours' load, and the higher of the two readings is the limit the
     * run is held to (the conservative choice) */
    double after[2] = {0, 0};
    measure_limits(n_threads, after);
    if (after[0] > peak) peak = after[0];
    if (after[1] > dram) dram = after[1];
    const dots_config *cfg = dots_model_config(model);
    dots_model_info info;
    dots_model_get_info(model, &info);
    int64_t n_patches = res.n_image_tokens * cfg->vision.spatial_merge_size * cfg->vision.spatial_merge_size;
    double v_gflops = dots_vision_flops(cfg, n_patches) / 1e9 / res.vision_s;
    double p_tok_s = res.n_prompt_tokens / res.prefill_s;
    double p_gflops = prefill_flops(cfg, res.n_prompt_tokens) / 1e9 / res.prefill_s;
    double d_tok_s = res.n_tokens / res.decode_s;
    /* bytes streamed per token: every LM tensor as stored, but the embedding
     * table (one row is read); a tied output projection is the table itself */
    double lm_bytes = (double)info.bytes_lm - (double)info.bytes_lm_embed;
    if (cfg->text.tie_word_embeddings) lm_bytes += (double)info.bytes_lm_embed;
    double d_gbps = lm_bytes * d_tok_s / 1e9;
    double rss = cli_peak_rss_mb();
    batch_figures bf[16];
    for (int i = 0; i < n_batches; i++)
        if (bench_batch(ctx, st, &img, batches[i], forced, n_decode, &bf[i]) != 0) {
            rc = 1;
            goto done;
        }
    /* the speedup against one sequence: the list's own B = 1 when it has one (same code path) */
    double one = d_tok_s;
    for (int i = 0; i < n_batches; i++)
        if (bf[i].n == 1) one = bf[i].tok_s;
    double mask_build_s = 0, mask_ms = constraint_ms_per_token(ctx, model, &mask_build_s);
    double step_ms = d_tok_s > 0 ? 1e3 / d_tok_s : 0;
    char weights[16];
    snprintf(weights, sizeof weights, "%s", dots_dtype_name(info.lm_matrix_dtype));
    for (char *q = weights; *q; q++) *q = (char)tolower((unsigned char)*q);
    if (json) {
        printf("{\"vision_s\": %.4f, \"vision_gflops\": %.2f, \"vision_pct_peak\": %.2f, \"prefill_tok_s\": %.2f, "
               "\"prefill_pct_peak\": %.2f, \"decode_tok_s\": %.3f, \"decode_gbps\": %.2f, \"decode_pct_bw\": %.2f, "
               "\"peak_rss_mb\": %.1f, \"peak_bf16_gflops\": %.1f, \"dram_gbps\": %.2f, \"threads\": %d, \"weights\": \"%s\", "
               "\"constraint_ms_per_token\": %.4f, \"constraint_pct_of_decode\": %.2f, \"constraint_build_s\": %.3f",
               res.vision_s, v_gflops, peak > 0 ? 100 * v_gflops / peak : 0, p_tok_s, peak > 0 ? 100 * p_gflops / peak : 0,
               n_batches == 1 ? bf[0].tok_s : d_tok_s, d_gbps, dram > 0 ? 100 * d_gbps / dram : 0,
               n_batches ? bf[n_batches - 1].rss_mb : rss, peak, dram, n_threads, weights, mask_ms,
               step_ms > 0 ? 100 * mask_ms / step_ms : 0, mask_build_s);
        if (n_batches == 1)
            printf(", \"batch\": %d, \"decode_tok_s_per_seq\": %.3f, \"decode_tok_s_one\": %.3f, \"batch_speedup\": %.3f, "
                   "\"kv_mb\": %.3f",
                   bf[0].n, bf[0].per_seq_tok_s, d_tok_s, d_tok_s > 0 ? bf[0].tok_s / d_tok_s : 0, bf[0].kv_mb);
        else if (n_batches > 1) {
            printf(", \"batches\": [");
            for (int i = 0; i < n_batches; i++)
                printf("%s{\"batch\": %d, \"decode_tok_s\": %.3f, \"decode_tok_s_per_seq\": %.3f, \"speedup\": %.3f, "
                       "\"step_ms\": %.2f, \"kv_mb\": %.3f, \"peak_rss_mb\": %.1f}",
                       i ? ", " : "", bf[i].n, bf[i].tok_s, bf[i].per_seq_tok_s, one > 0 ? bf[i].tok_s / one : 0, bf[i].step_ms,
                       bf[i].kv_mb, bf[i].rss_mb);
            printf("]");
        }
        printf("}\n");
    } else {
        printf("machine: bf16 dot peak %.0f GFLOP/s, DRAM read %.1f GB/s (%d threads; the higher of two readings, before the run: "
               "%.0f GFLOP/s, %.1f GB/s, after: %.0f GFLOP/s, %.1f GB/s); %s products\n",
               peak, dram, n_threads, limits[0], limits[1], after[0], after[1], dots_state_precision(st) == DOTS_PRECISION_BF16 ? "bf16" : "fp32");
        printf("weights: %s (language model matrices), %.2f GB %s%s; %.2f GB streamed per decoded token\n", weights,
               resident / 1e9, keep_mmap ? "mapped and made resident" : "copied to anonymous (huge-page) memory",
               lock ? " and locked" : "", lm_bytes / 1e9);
        printf("vision:  %dx%d -> %lld patches: %.2f s, %.1f GFLOP/s (%.1f%% of peak)\n", w, h, (long long)n_patches, res.vision_s,
               v_gflops, peak > 0 ? 100 * v_gflops / peak : 0);
        printf("prefill: %lld tokens: %.2f s, %.1f tok/s, %.1f GFLOP/s (%.1f%% of peak)\n", (long long)res.n_prompt_tokens,
               res.prefill_s, p_tok_s, p_gflops, peak > 0 ? 100 * p_gflops / peak : 0);
        printf("decode:  %lld tokens: %.2f tok/s, %.1f GB/s of weights (%.1f%% of DRAM bandwidth)\n", (long long)res.n_tokens,
               d_tok_s, d_gbps, dram > 0 ? 100 * d_gbps / dram : 0);
        printf("layout constraint: %.3f ms per token (%.2f%% of a decode step), its vocabulary trie built in %.2f s\n", mask_ms,
               step_ms > 0 ? 100 * mask_ms / step_ms : 0, mask_build_s);
        printf("peak RSS: %.0f MB\n", rss);
        for (int i = 0; i < n_batches; i++)
            printf("batch %2d: %.2f tok/s in all (%.2fx one sequence), %.2f tok/s per sequence, %.1f ms per step; "
                   "KV caches %.0f MB, peak RSS %.0f MB\n",
                   bf[i].n, bf[i].tok_s, one > 0 ? bf[i].tok_s / one : 0, bf[i].per_seq_tok_s, bf[i].step_ms, bf[i].kv_mb,
                   bf[i].rss_mb);
    }
done:
    free(forced);
    dots_image_free(&img);
    dots_run_result_free(&res);
    dots_state_free(st);
    dots_model_close(model);
    dots_ctx_free(ctx);
    return rc;
}
