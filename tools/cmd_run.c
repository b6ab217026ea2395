/*
 * cmd_run.c - `dotsocr run`: one page through the model, its raw answer
 * streamed to stdout as it is generated. The page goes through the same
 * library call as `parse` (dots_page_parse): the same rendering,
 * fitz_preprocess and grounding bbox in source pixels.
 */
#include "cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static const char help_run[] =
    "usage: dotsocr run --model MODEL INPUT [--mode MODE] [--bbox x1,y1,x2,y2] [--prompt TEXT] [--system TEXT]\n"
    "                   [--page K] [--dpi N] [--min-pixels N] [--max-pixels N] [--max-new-tokens N]\n"
    "                   [--temperature T] [--top-p P] [--seed N] [--threads N] [--precision auto|fp32|bf16]\n"
    "                   [--no-fitz-preprocess] [--no-json-constraint] [--no-loop-guard] [--no-mmap|--mmap]\n"
    "                   [--mmproj FILE]\n"
    "  Runs the model on one page (--page, 1-based) and prints its raw answer as it is\n"
    "  generated (stdout), then statistics (stderr). MODE: layout-all (default),\n"
    "  layout-only, ocr, grounding, and dots.mocr's web-parsing, scene-spotting,\n"
    "  image-to-svg, general. Defaults per mode: image-to-svg samples at temperature\n"
    "  0.9 with 32768 tokens, every other mode is greedy with 16384; --temperature,\n"
    "  --top-p and --max-new-tokens override them, --seed makes sampling repeatable.\n"
    "  --prompt replaces the mode's prompt (general: the question; default 'Please\n"
    "  describe the content of this image.'); --system sets the system message\n"
    "  (general sends 'You are a helpful assistant.', the others none; '' for none).\n"
    "  Stops at an EOS token, at the budget or on Ctrl-C (exit 130; what was printed\n"
    "  is what was produced). --bbox (grounding) is in source pixels, as for parse.\n"
    "  Weights and --precision: see 'dotsocr help parse'.\n";

static dots_state *volatile g_state; /* what SIGINT cancels */

static void on_sigint(int sig) {
    (void)sig;
    if (g_state) dots_state_cancel(g_state);
}

static bool stream_token(void *user, int32_t token, const char *text, size_t len) {
    (void)user, (void)token;
    if (len) {
        fwrite(text, 1, len, stdout);
        fflush(stdout);
    }
    return true;
}

int dots_cmd_run(int argc, char **argv) {
    static const struct option opts[] = {CLI_PAGE_OPTIONS,
                                         {"page", required_argument, NULL, 'p'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0, 0, 0, 0}};
    cli_page_args a;
    cli_page_args_init(&a);
    a.po.layout_image = false; /* run prints the answer only */
    int64_t page = 1;
    int c, rc;
    while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
        if ((rc = cli_page_option("run", c, optarg, &a)) >= 0) {
            if (rc) return rc;
            continue;
        }
        switch (c) {
        case 'p': if (cli_int("run", "--page", optarg, 1, INT32_MAX, &page)) return DOTS_EXIT_USAGE; break;
        case 'v': cli_more_verbose(); break;
        case 'q': cli_quiet(); break;
        case 'h': fputs(help_run, stdout); return 0;
        default: return cli_bad_option("run", argc, argv, opts, "vqh");
        }
    }
    if ((rc = cli_page_args_check("run", &a))) return rc;
    if (argc - optind != 1) return cli_usage("run", "expected one INPUT, got %s", argc - optind ? "more" : "none");
    dots_page_options po = a.po;
    po.on_token = stream_token;
    dots_ctx *ctx = cli_make_ctx();
    if (!ctx) return 1;
    dots_model *model = NULL;
    dots_state *st = NULL;
    dots_document *doc = NULL;
    dots_page_result res = {0};
    rc = 0;
    if (cli_open_model(ctx, a.model, a.mmproj, a.placement, &model) != DOTS_OK ||
        dots_state_create(ctx, model, (int32_t)a.threads, &st) != DOTS_OK ||
        dots_state_set_precision(ctx, st, a.precision) != DOTS_OK ||
        dots_document_open(ctx, argv[optind], &doc) != DOTS_OK) {
        rc = cli_fail(ctx);
        goto done;
    }
    g_state = st;
    signal(SIGINT, on_sigint);
    dots_status s = dots_page_parse(ctx, st, doc, (int32_t)(page - 1), &po, &res);
    signal(SIGINT, SIG_DFL);
    g_state = NULL;
    printf("\n");
    if (s == DOTS_ERR_CANCELLED) {
        fprintf(stderr, "dotsocr: interrupted\n");
        rc = 130;
        goto done;
    }
    if (s != DOTS_OK) {
        rc = cli_fail(ctx);
        goto done;
    }
    if (cli_verbosity() >= 0) {
        const int64_t n = res.n_tokens;
        fprintf(stderr,
                "dotsocr: %s; image %d x %d -> %lld image tokens, prompt %lld tokens, generated %lld (%s)\n"
                "dotsocr: render %.2f s, preprocess %.2f s, vision %.2f s, prefill %.2f s (%.1f tok/s), decode %.2f s "
                "(%.2f tok/s), %s products, peak RSS %.0f MB\n"
                "dotsocr: layout constraint %s; loop guard fired %d time(s), first at token %lld\n",
                dots_prompt_mode_name(po.mode), res.model_width_px, res.model_height_px, (long long)res.n_image_tokens,
                (long long)res.n_prompt_tokens, (long long)n, dots_stop_reason_name(res.stop), res.render_s, res.preprocess_s,
                res.vision_s, res.prefill_s, res.n_prompt_tokens / (res.prefill_s > 0 ? res.prefill_s : 1e-9), res.decode_s,
                n > 1 ? (n - 1) / (res.decode_s > 0 ? res.decode_s : 1e-9) : 0.0,
                dots_state_precision(st) == DOTS_PRECISION_BF16 ? "bf16" : "fp32", cli_peak_rss_mb(),
                (po.mode != DOTS_MODE_LAYOUT_ALL && po.mode != DOTS_MODE_LAYOUT_ONLY) || po.no_json_constraint ? "off"
                : res.constrained                                                                 ? "changed the answer"
                                                                                                  : "changed nothing",
                res.loop_guard_fired, (long long)res.loop_guard_first_at);
    }
done:
    dots_page_result_free(&res);
    dots_document_close(doc);
    dots_state_free(st);
    dots_model_close(model);
    dots_ctx_free(ctx);
    return rc;
}
