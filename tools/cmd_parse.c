/*
 * cmd_parse.c - `dotsocr parse`: documents in, per page the official output
 * set out (spec 11.7): <stem>.json (cells, boxes in source pixels),
 * <stem>.md, <stem>_nohf.md, <stem>.jpg (the layout drawn), and per
 * document <name>.jsonl (one record per page, in page order) and, for PDFs,
 * <name>.md (all pages).
 *
 * Robustness: every file is written to a temporary name and renamed; a
 * page's record file is written last, so a page is complete exactly when
 * its record exists (--resume skips those); a failing page is reported and
 * the others still run; the exit code is 0 only if every page succeeded.
 */
#include "cmd_parse.h"

#include "io/atomic_file.h"
#include "io/npy.h"
#include "pipeline/run.h"
#include "post/layout.h"
#include "post/markdown.h"
#include "io/image_write.h"
#include "tokenizer/added_tokens.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop; /* Ctrl-C: finish nothing more */
static void on_sigint(int s) {
    (void)s;
    g_stop = 1;
}

static const char help_parse[] =
    "usage: dotsocr parse --model DIR INPUT... -o OUT_DIR [--mode layout-all|layout-only|ocr|grounding]\n"
    "                     [--bbox x1,y1,x2,y2] [--pages 1-5,9] [--dpi N] [--min-pixels N] [--max-pixels N]\n"
    "                     [--max-new-tokens N] [--temperature T] [--top-p P] [--seed N] [--threads N]\n"
    "                     [--images-dir DIR] [--resume] [--quiet] [--precision fp32|bf16] [--no-fitz-preprocess]\n"
    "                     [--replay-dir DIR] [--no-mmap|--mmap] [--mmproj FILE]\n"
    "  Parses images, PDFs and directories of them. Per page: <stem>.json, <stem>.md,\n"
    "  <stem>_nohf.md and <stem>.jpg (layout drawn), stem = <name> or <name>_page_<i>\n"
    "  (i from 0); per document <name>.jsonl and, for PDFs, <name>.md (all pages).\n"
    "  --pages is 1-based. --bbox (grounding) is in source-image pixels. --images-dir\n"
    "  writes Picture crops as files instead of embedding them. --resume skips pages\n"
    "  already complete. --replay-dir DIR feeds DIR/<stem>.txt as the model's answer\n"
    "  (teacher forcing; for tests of the post-processing). Images go through the\n"
    "  official fitz_preprocess (MuPDF renders them at --dpi from their own resolution,\n"
    "  96 dpi if unset) before the model; --no-fitz-preprocess feeds them as they are.\n"
    "  Boxes are always in the original image's pixels. Exit 0 only if every page\n"
    "  succeeded. Weights: a bf16 model is mapped from its files (zero-copy); a GGUF\n"
    "  with Q8_0/Q4_0/Q4_K matrices is copied into anonymous (huge-page) memory and\n"
    "  its language model repacked for decode (1.3-4x faster decode on VNNI CPUs).\n"
    "  --no-mmap copies any model (~1 s more; decode up to 1.4x faster where mapped\n"
    "  pages stream slowly); --mmap maps any model.\n";

/* ---------------------------------------------------------------- files */

static int write_file(const char *path, const char *data, size_t len) {
    dots_atomic_file a;
    if (!dots_atomic_open(&a, path)) return -1;
    if (len && fwrite(data, 1, len, a.f) != len) {
        dots_atomic_abort(&a);
        return -1;
    }
    return dots_atomic_commit(&a) ? 0 : -1;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long n = ftell(f);
    rewind(f);
    char *s = n >= 0 && n < (1L << 30) ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

static bool exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static char *json_escape(const char *s) {
    size_t n = strlen(s), k = 0;
    char *o = malloc(n * 6 + 3);
    if (!o) return NULL;
    o[k++] = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') o[k++] = '\\', o[k++] = (char)c;
        else if (c == '\n') o[k++] = '\\', o[k++] = 'n';
        else if (c == '\r') o[k++] = '\\', o[k++] = 'r';
        else if (c == '\t') o[k++] = '\\', o[k++] = 't';
        else if (c < 0x20) k += (size_t)sprintf(o + k, "\\u%04x", c);
        else o[k++] = (char)c;
    }
    o[k++] = '"';
    o[k] = '\0';
    return o;
}

/* "1-5,9" -> flags over pages [0, n) (1-based in the text). */
static bool parse_pages(const char *spec, int32_t n, bool *sel) {
    for (int32_t i = 0; i < n; i++) sel[i] = spec == NULL;
    if (!spec) return true;
    const char *p = spec;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b = a;
        if (end == p || a < 1) return false;
        p = end;
        if (*p == '-') {
            b = strtol(p + 1, &end, 10);
            if (end == p + 1 || b < a) return false;
            p = end;
        }
        for (long i = a; i <= b && i <= n; i++) sel[i - 1] = true;
        if (*p == ',') p++;
        else if (*p) return false;
    }
    return true;
}

static bool known_ext(const char *name) {
    static const char *const exts[] = {".pdf", ".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm"};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof exts / sizeof *exts; i++)
        if (strcasecmp(dot, exts[i]) == 0) return true;
    return false;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* ---------------------------------------------------------------- state */

typedef struct parse_opts {
    const char *out_dir, *images_dir, *replay_dir, *pages;
    dots_run_params rp;
    int64_t dpi;
    bool resume, quiet, have_bbox, no_fitz;
    int32_t src_bbox[4];
    const dots_config *cfg;
} parse_opts;

typedef struct progress {
    bool tty, quiet;
    const char *doc;
    int32_t page, n_pages;
    int64_t tokens;
    double t0;
    int32_t pages_left;   /* selected pages not yet finished, this one included */
    int32_t pages_timed;  /* pages finished in this run, for the ETA */
    double seconds_timed;
} progress;

static bool on_token(void *user, int32_t token, const char *text, size_t len) {
    (void)token, (void)text, (void)len;
    progress *p = user;
    p->tokens++;
    if (p->tty && !p->quiet && p->tokens % 8 == 0) {
        double s = dots_monotonic_s() - p->t0;
        fprintf(stderr, "\r\033[K%s page %d/%d: %lld tokens, %.1f tok/s", p->doc, p->page, p->n_pages, (long long)p->tokens,
                s > 0 ? p->tokens / s : 0.0);
        if (p->pages_timed > 0) { /* average page time x pages left, minus this page's time so far */
            double eta = p->seconds_timed / p->pages_timed * p->pages_left - s;
            fprintf(stderr, ", ETA %.0f s", eta > 0 ? eta : 0.0);
        }
    }
    return !g_stop;
}

/* --------------------------------------------------------------- a page */

static int process_page(dots_ctx *ctx, dots_state *st, dots_tokenizer *replay_tok, const parse_opts *o, const char *input,
                        dots_document *doc, int32_t page, const char *stem, progress *pr, char **md_out) {
    char path[4096], rec_path[4096];
    snprintf(rec_path, sizeof rec_path, "%s/.%s.record.json", o->out_dir, stem);
    dots_image img = {0}, drawn = {0}, fitz = {0};
    dots_run_result res = {0};
    dots_layout lay = {0};
    char *json = NULL, *md = NULL, *md_nohf = NULL, *resp = NULL;
    int32_t *forced = NULL;
    int rc = 1;
    if (dots_document_render_page(ctx, doc, page, (int32_t)o->dpi, &img, NULL) != DOTS_OK) goto fail;
    /* images: what the model sees is the official fitz_preprocess render;
     * img stays the original, which boxes, crops and drawings refer to */
    const bool use_fitz = !o->no_fitz && !dots_document_is_pdf(doc);
    if (use_fitz && dots_image_fitz_render(ctx, &img, (int32_t)o->dpi, &fitz, NULL) != DOTS_OK) goto fail;
    const dots_image *model_img = use_fitz ? &fitz : &img;
    dots_run_params rp = o->rp;
    if (rp.mode == DOTS_MODE_GROUNDING) { /* source pixels -> the model's resized image (11.3) */
        int32_t rh, rw;
        const dots_config *cfg = o->cfg;
        int64_t mn = rp.min_pixels ? rp.min_pixels : cfg->preprocessor.min_pixels;
        int64_t mx = rp.max_pixels ? rp.max_pixels : cfg->preprocessor.max_pixels;
        if (dots_smart_resize(ctx, model_img->height_px, model_img->width_px,
                              cfg->vision.patch_size * cfg->vision.spatial_merge_size, mn, mx, &rh, &rw) != DOTS_OK)
            goto fail;
        rp.bbox[0] = (int32_t)dots_bbox_to_model_px(o->src_bbox[0], img.width_px, rw);
        rp.bbox[1] = (int32_t)dots_bbox_to_model_px(o->src_bbox[1], img.height_px, rh);
        rp.bbox[2] = (int32_t)dots_bbox_to_model_px(o->src_bbox[2], img.width_px, rw);
        rp.bbox[3] = (int32_t)dots_bbox_to_model_px(o->src_bbox[3], img.height_px, rh);
    }
    rp.on_token = on_token;
    rp.user = pr;
    pr->tokens = 0;
    pr->t0 = dots_monotonic_s();
    dots_run_hooks hooks = {0};
    if (replay_tok) {
        snprintf(path, sizeof path, "%s/%s.txt", o->replay_dir, stem);
        char *text = read_text(path);
        size_t n = 0;
        if (!text) {
            fprintf(stderr, "dotsocr: error: %s: no replay answer\n", path);
            goto out;
        }
        dots_status s = dots_tok_encode(ctx, replay_tok, text, strlen(text), &forced, &n);
        free(text);
        if (s != DOTS_OK) goto fail;
        int32_t *f2 = realloc(forced, sizeof(int32_t) * (n + 1));
        if (!f2) goto fail;
        forced = f2;
        forced[n++] = DOTS_TOKEN_ENDOFASSISTANT;
        hooks.forced = forced;
        hooks.n_forced = (int64_t)n;
    }
    if (dots_run_image_ex(ctx, st, model_img, &rp, replay_tok ? &hooks : NULL, &res) != DOTS_OK) goto fail;
    if (res.stop == DOTS_STOP_CALLBACK) {
        fprintf(stderr, "%sdotsocr: error: %s page %d: interrupted\n", pr->tty ? "\n" : "", input, page + 1);
        goto out;
    }
    resp = res.text;
    res.text = NULL;
    const bool layout_mode = rp.mode != DOTS_MODE_OCR;
    if (layout_mode) {
        if (dots_layout_parse(ctx, resp, strlen(resp), &lay) != DOTS_OK) goto fail;
        if (!lay.filtered) {
            dots_layout_rescale(&lay, res.resized_width_px, res.resized_height_px, img.width_px, img.height_px);
            json = dots_layout_to_json(&lay);
            if (rp.mode != DOTS_MODE_LAYOUT_ONLY) {
                if (dots_layout_markdown(ctx, &lay, &img, false, o->images_dir, o->images_dir, stem, &md) != DOTS_OK ||
                    dots_layout_markdown(ctx, &lay, &img, true, o->images_dir, o->images_dir, stem, &md_nohf) != DOTS_OK)
                    goto fail;
            }
            if (dots_layout_draw(ctx, &lay, &img, &drawn) != DOTS_OK) goto fail;
        } else {
            json = json_escape(resp); /* the raw answer, as a JSON string */
            if (rp.mode != DOTS_MODE_LAYOUT_ONLY) {
                md = strdup(lay.salvage_md);
                md_nohf = strdup(lay.salvage_md);
            }
        }
        if (!json || (rp.mode != DOTS_MODE_LAYOUT_ONLY && (!md || !md_nohf))) goto oom;
    } else {
        md = strdup(resp);
        md_nohf = strdup(resp);
        if (!md || !md_nohf) goto oom;
    }
    /* outputs, then the record (last: it marks the page complete) */
    char rec[8192];
    int k = snprintf(rec, sizeof rec, "{\"page_no\": %d, \"input_height\": %d, \"input_width\": %d", page, img.height_px, img.width_px);
    if (json) {
        snprintf(path, sizeof path, "%s/%s.json", o->out_dir, stem);
        if (write_file(path, json, strlen(json)) != 0) goto io;
        k += snprintf(rec + k, sizeof rec - (size_t)k, ", \"layout_info_path\": \"%s\"", path);
    }
    if (layout_mode) {
        snprintf(path, sizeof path, "%s/%s.jpg", o->out_dir, stem);
        if (dots_jpeg_write(ctx, path, drawn.rgb ? &drawn : &img, 95) != DOTS_OK) goto fail;
        k += snprintf(rec + k, sizeof rec - (size_t)k, ", \"layout_image_path\": \"%s\"", path);
    }
    if (md) {
        snprintf(path, sizeof path, "%s/%s.md", o->out_dir, stem);
        if (write_file(path, md, strlen(md)) != 0) goto io;
        k += snprintf(rec + k, sizeof rec - (size_t)k, ", \"md_content_path\": \"%s\"", path);
        snprintf(path, sizeof path, "%s/%s_nohf.md", o->out_dir, stem);
        if (write_file(path, md_nohf, strlen(md_nohf)) != 0) goto io;
        k += snprintf(rec + k, sizeof rec - (size_t)k, ", \"md_content_nohf_path\": \"%s\"", path);
    }
    char *fp = json_escape(input);
    if (!fp) goto oom;
    k += snprintf(rec + k, sizeof rec - (size_t)k, "%s, \"file_path\": %s}", lay.filtered ? ", \"filtered\": true" : "", fp);
    free(fp);
    if (write_file(rec_path, rec, (size_t)k) != 0) goto io;
    if (!pr->quiet) {
        double s = dots_monotonic_s() - pr->t0;
        static const char *const stops[] = {"eos", "max-new-tokens", "interrupted", "context full"};
        fprintf(stderr, "%sdotsocr: %s page %d/%d: %lld tokens in %.1f s (%.1f tok/s, %s)%s\n", pr->tty ? "\r\033[K" : "", input,
                page + 1, pr->n_pages, (long long)res.n_tokens, s, s > 0 ? res.n_tokens / s : 0.0, stops[res.stop],
                lay.filtered ? ", answer not valid JSON: salvaged" : "");
    }
    if (md_out) {
        *md_out = md;
        md = NULL;
    }
    rc = 0;
    goto out;
oom:
    fprintf(stderr, "dotsocr: error: %s page %d: out of memory\n", input, page + 1);
    goto out;
io:
    fprintf(stderr, "dotsocr: error: %s: cannot write: %s\n", path, strerror(errno));
    goto out;
fail:
    fprintf(stderr, "%sdotsocr: error: %s page %d: %s\n", pr->tty ? "\n" : "", input, page + 1, dots_errmsg(ctx));
out:
    free(forced);
    free(json);
    free(md);
    free(md_nohf);
    free(resp);
    dots_layout_free(&lay);
    dots_run_result_free(&res);
    dots_image_free(&drawn);
    dots_image_free(&fitz);
    dots_image_free(&img);
    return rc;
}

/* ------------------------------------------------------------ a document */

static void doc_name(const char *path, char *name, size_t cap) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(name, cap, "%s", b);
    char *dot = strrchr(name, '.');
    if (dot && dot != name) *dot = '\0';
}

static int process_document(dots_ctx *ctx, dots_state *st, dots_tokenizer *replay_tok, const parse_opts *o, const char *input,
                            bool tty, int *n_ok, int *n_failed) {
    dots_document *doc = NULL;
    if (dots_document_open(ctx, input, &doc) != DOTS_OK) {
        fprintf(stderr, "dotsocr: error: %s\n", dots_errmsg(ctx));
        (*n_failed)++;
        return 1;
    }
    int32_t n = dots_document_n_pages(doc);
    bool pdf = dots_document_is_pdf(doc);
    bool *sel = calloc((size_t)n, sizeof *sel);
    char **mds = calloc((size_t)n, sizeof *mds);
    char name[512];
    doc_name(input, name, sizeof name);
    int failures = 0;
    if (!sel || !mds || !parse_pages(o->pages, n, sel)) {
        fprintf(stderr, "dotsocr: error: %s: bad --pages '%s'\n", input, o->pages ? o->pages : "");
        free(sel);
        free(mds);
        dots_document_close(doc);
        (*n_failed)++;
        return 1;
    }
    int32_t n_sel = 0;
    for (int32_t i = 0; i < n; i++) n_sel += sel[i];
    progress pr = {tty, o->quiet, input, 0, n, 0, 0, n_sel, 0, 0};
    for (int32_t i = 0; i < n && !g_stop; i++) {
        if (!sel[i]) continue;
        char stem[600], rec[4800];
        if (pdf) snprintf(stem, sizeof stem, "%s_page_%d", name, i);
        else snprintf(stem, sizeof stem, "%s", name);
        snprintf(rec, sizeof rec, "%s/.%s.record.json", o->out_dir, stem);
        pr.page = i + 1;
        if (o->resume && exists(rec)) {
            char mdp[4800];
            snprintf(mdp, sizeof mdp, "%s/%s.md", o->out_dir, stem);
            mds[i] = read_text(mdp);
            if (!o->quiet) fprintf(stderr, "dotsocr: %s page %d/%d: already done (--resume)\n", input, i + 1, n);
            (*n_ok)++;
            pr.pages_left--;
            continue;
        }
        double page_t0 = dots_monotonic_s();
        if (process_page(ctx, st, replay_tok, o, input, doc, i, stem, &pr, &mds[i]) == 0) {
            (*n_ok)++;
        } else {
            (*n_failed)++;
            failures++;
        }
        pr.pages_timed++;
        pr.seconds_timed += dots_monotonic_s() - page_t0;
        pr.pages_left--;
    }
    /* per document: the records in page order, and the combined Markdown */
    char *jsonl = NULL, *all_md = NULL;
    size_t jl = 0, ml = 0;
    FILE *jf = open_memstream(&jsonl, &jl), *mf = open_memstream(&all_md, &ml);
    bool first_md = true;
    for (int32_t i = 0; i < n && jf && mf; i++) {
        if (!sel[i]) continue;
        char stem[600], rec[4800];
        if (pdf) snprintf(stem, sizeof stem, "%s_page_%d", name, i);
        else snprintf(stem, sizeof stem, "%s", name);
        snprintf(rec, sizeof rec, "%s/.%s.record.json", o->out_dir, stem);
        char *r = read_text(rec);
        if (r) fprintf(jf, "%s\n", r);
        free(r);
        if (mds[i]) {
            fprintf(mf, "%s%s", first_md ? "" : "\n\n", mds[i]);
            first_md = false;
        }
    }
    if (jf) fclose(jf);
    if (mf) fclose(mf);
    char path[4800];
    snprintf(path, sizeof path, "%s/%s.jsonl", o->out_dir, name);
    if (!jsonl || write_file(path, jsonl, jl) != 0) {
        fprintf(stderr, "dotsocr: error: %s: cannot write\n", path);
        failures++;
    }
    if (pdf && all_md && !first_md) {
        snprintf(path, sizeof path, "%s/%s.md", o->out_dir, name);
        if (write_file(path, all_md, ml) != 0) {
            fprintf(stderr, "dotsocr: error: %s: cannot write\n", path);
            failures++;
        }
    }
    free(jsonl);
    free(all_md);
    for (int32_t i = 0; i < n; i++) free(mds[i]);
    free(mds);
    free(sel);
    dots_document_close(doc);
    (void)n_sel;
    return failures ? 1 : 0;
}

/* ------------------------------------------------------------------ cmd */

int dots_cmd_parse(int argc, char **argv, const dots_cli *cli) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'}, {"output", required_argument, NULL, 'o'},
        {"mode", required_argument, NULL, 'M'}, {"bbox", required_argument, NULL, 'b'},
        {"pages", required_argument, NULL, 'g'}, {"dpi", required_argument, NULL, 'd'},
        {"min-pixels", required_argument, NULL, 'n'}, {"max-pixels", required_argument, NULL, 'x'},
        {"max-new-tokens", required_argument, NULL, 'N'}, {"temperature", required_argument, NULL, 'T'},
        {"top-p", required_argument, NULL, 'P'}, {"seed", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'}, {"images-dir", required_argument, NULL, 'I'},
        {"resume", no_argument, NULL, 'r'}, {"quiet", no_argument, NULL, 'q'},
        {"replay-dir", required_argument, NULL, 'R'}, {"precision", required_argument, NULL, 'p'},
        {"no-fitz-preprocess", no_argument, NULL, 'F'}, {"no-mmap", no_argument, NULL, 'W'}, {"mmap", no_argument, NULL, 1001},
        {"mmproj", required_argument, NULL, 1002}, {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    parse_opts o = {0};
    dots_run_params_init(&o.rp);
    const char *model_dir = NULL, *mmproj = NULL;
    bool bf16 = false;
    int mmap_choice = 0;
    int64_t threads = 0, v64;
    uint64_t seed = 0;
    int c;
    while ((c = getopt_long(argc, argv, "o:vqh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 1002: mmproj = optarg; break;
        case 'W': mmap_choice = -1; break;
        case 1001: mmap_choice = 1; break;
        case 'o': o.out_dir = optarg; break;
        case 'M':
            if (!cli->parse_mode(optarg, &o.rp.mode)) return cli->usage("parse", "unknown mode '%s'", optarg);
            break;
        case 'b': {
            int k = 0;
            if (sscanf(optarg, "%d,%d,%d,%d%n", &o.src_bbox[0], &o.src_bbox[1], &o.src_bbox[2], &o.src_bbox[3], &k) != 4 || optarg[k])
                return cli->usage("parse", "bad --bbox '%s'", optarg);
            o.have_bbox = true;
            break;
        }
        case 'g': o.pages = optarg; break;
        case 'd': if (!cli->parse_i64(optarg, 1, 2400, &o.dpi)) return cli->usage("parse", "bad --dpi '%s'", optarg); break;
        case 'n': if (!cli->parse_i64(optarg, 1, INT32_MAX, &o.rp.min_pixels)) return cli->usage("parse", "bad --min-pixels '%s'", optarg); break;
        case 'x': if (!cli->parse_i64(optarg, 1, INT32_MAX, &o.rp.max_pixels)) return cli->usage("parse", "bad --max-pixels '%s'", optarg); break;
        case 'N':
            if (!cli->parse_i64(optarg, 1, 131072, &v64)) return cli->usage("parse", "bad --max-new-tokens '%s'", optarg);
            o.rp.max_new_tokens = (int32_t)v64;
            break;
        case 'T': if (!cli->parse_float(optarg, 0, 100, &o.rp.temperature)) return cli->usage("parse", "bad --temperature '%s'", optarg); break;
        case 'P': if (!cli->parse_float(optarg, 0, 1, &o.rp.top_p)) return cli->usage("parse", "bad --top-p '%s'", optarg); break;
        case 's': if (!cli->parse_u64(optarg, &seed)) return cli->usage("parse", "bad --seed '%s'", optarg); break;
        case 't': if (!cli->parse_i64(optarg, 1, 256, &threads)) return cli->usage("parse", "bad --threads '%s'", optarg); break;
        case 'I': o.images_dir = optarg; break;
        case 'r': o.resume = true; break;
        case 'q': o.quiet = true; break;
        case 'R': o.replay_dir = optarg; break;
        case 'F': o.no_fitz = true; break;
        case 'p':
            if (!cli->parse_precision(optarg, &bf16)) return cli->usage("parse", "bad --precision '%s' (fp32 or bf16)", optarg);
            break;
        case 'v': cli->more_verbose(); break;
        case 'h': fputs(help_parse, stdout); return 0;
        default: return cli->usage("parse", "bad option '%s'", argv[optind - 1]);
        }
    }
    o.rp.seed = seed;
    if (!model_dir) return cli->usage("parse", "%s", "--model DIR is required");
    if (!o.out_dir) return cli->usage("parse", "%s", "-o OUT_DIR is required");
    if (optind >= argc) return cli->usage("parse", "%s", "no INPUT given");
    if ((o.rp.mode == DOTS_MODE_GROUNDING) != o.have_bbox)
        return cli->usage("parse", "%s", "--bbox goes with --mode grounding, and grounding needs it");
    if (o.pages) {
        bool probe[1];
        if (!parse_pages(o.pages, 1, probe)) return cli->usage("parse", "bad --pages '%s' (e.g. 1-5,9)", o.pages);
    }
    if (cli->ensure_dir(o.out_dir) != 0 || (o.images_dir && cli->ensure_dir(o.images_dir) != 0)) return 1;
    /* inputs: files, and the documents inside directories (sorted) */
    char **inputs = NULL;
    size_t n_in = 0, cap = 0;
    for (int i = optind; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            while (d && (e = readdir(d))) {
                if (e->d_name[0] == '.' || !known_ext(e->d_name)) continue;
                if (n_in == cap) inputs = realloc(inputs, sizeof *inputs * (cap = cap ? cap * 2 : 16));
                size_t l = strlen(argv[i]) + strlen(e->d_name) + 2;
                inputs[n_in] = malloc(l);
                snprintf(inputs[n_in++], l, "%s/%s", argv[i], e->d_name);
            }
            if (d) closedir(d);
            continue;
        }
        if (n_in == cap) inputs = realloc(inputs, sizeof *inputs * (cap = cap ? cap * 2 : 16));
        inputs[n_in++] = strdup(argv[i]);
    }
    if (n_in > 1) qsort(inputs, n_in, sizeof *inputs, cmp_str);
    dots_ctx *ctx = cli->make_ctx();
    dots_model *model = NULL;
    dots_state *st = NULL;
    dots_tokenizer *replay_tok = NULL;
    int rc = 0, n_ok = 0, n_failed = 0;
    double t0 = dots_monotonic_s();
    if (!ctx || (mmproj ? dots_model_open_pair(ctx, model_dir, mmproj, &model) : dots_model_open(ctx, model_dir, &model)) != DOTS_OK || cli->place_weights(ctx, model, mmap_choice) != DOTS_OK ||
        dots_state_create(ctx, model, (int32_t)threads, &st) != DOTS_OK ||
        dots_state_set_precision(ctx, st, bf16 ? DOTS_PRECISION_BF16 : DOTS_PRECISION_FP32) != DOTS_OK ||
        (o.replay_dir && dots_tokenizer_open(ctx, model_dir, &replay_tok) != DOTS_OK)) {
        rc = ctx ? cli->fail(ctx) : 1;
        goto done;
    }
    o.cfg = dots_model_config(model);
    g_stop = 0;
    signal(SIGINT, on_sigint);
    bool tty = isatty(2);
    for (size_t i = 0; i < n_in && !g_stop; i++)
        if (process_document(ctx, st, replay_tok, &o, inputs[i], tty, &n_ok, &n_failed) != 0) rc = 1;
    signal(SIGINT, SIG_DFL);
    if (!o.quiet)
        fprintf(stderr, "dotsocr: %d page(s) done, %d failed, %zu document(s), %.1f s%s\n", n_ok, n_failed, n_in, dots_monotonic_s() - t0,
                g_stop ? " (interrupted)" : "");
    if (n_failed || g_stop) rc = 1;
done:
    for (size_t i = 0; i < n_in; i++) free(inputs[i]);
    free(inputs);
    dots_tokenizer_free(replay_tok);
    dots_state_free(st);
    dots_model_close(model);
    dots_ctx_free(ctx);
    return rc;
}
