/*
 * page.c - one page of a document, from its pixels to what a user keeps:
 *
 *   render (PDF at dpi, or the image) ─► fitz_preprocess (images) ─► the
 *   grounding bbox mapped source -> model pixels ─► dots_run_image ─►
 *   layout JSON (or the salvage) ─► boxes mapped model -> source pixels ─►
 *   page JSON, Markdown, Markdown without headers/footers, layout picture
 *
 * This is the official parser's per-page job (docs/model.md §11), owned by
 * the library so that the CLI, a server or an app embedding dotsocr all
 * produce the same bytes for the same page.
 */
#include "pipeline/page.h"

#include "io/atomic_file.h"
#include "io/image_write.h"
#include "post/layout.h"
#include "post/markdown.h"
#include "post/scene.h"
#include "post/svg.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void dots_page_options_init(dots_page_options *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->mode = DOTS_MODE_LAYOUT_ALL;
    o->temperature = -1; /* the mode's */
    o->top_p = -1;
    o->fitz_preprocess = true;
    o->layout_image = true;
}

void dots_page_result_free(dots_page_result *r) {
    if (!r) return;
    for (int64_t i = 0; i < r->n_cells; i++) {
        free(r->cells[i].category);
        free(r->cells[i].text);
    }
    free(r->cells);
    free(r->json);
    free(r->markdown);
    free(r->markdown_nohf);
    free(r->layout_jpeg);
    free(r->answer);
    free(r->svg);
    free(r->rendered_png);
    free(r->render_error);
    memset(r, 0, sizeof *r);
}

static dots_status check_options(dots_ctx *ctx, const dots_page_options *o) {
    if ((unsigned)o->mode >= DOTS_MODE_COUNT) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "page: unknown mode %d", (int)o->mode);
    if (o->dpi < 0 || o->dpi > 2400) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "page: dpi %d is outside 1..2400", o->dpi);
    if (o->min_pixels || o->max_pixels) {
        int64_t mn = o->min_pixels ? o->min_pixels : DOTS_MIN_PIXELS, mx = o->max_pixels ? o->max_pixels : DOTS_MAX_PIXELS;
        if (mn < DOTS_MIN_PIXELS || mx > DOTS_MAX_PIXELS || mn > mx)
            return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT,
                             "page: min_pixels %lld / max_pixels %lld: need %d <= min <= max <= %d", (long long)o->min_pixels,
                             (long long)o->max_pixels, DOTS_MIN_PIXELS, DOTS_MAX_PIXELS);
    }
    if (o->max_new_tokens < 0 || isnan(o->temperature) || o->temperature > 100 || isnan(o->top_p) || o->top_p > 1)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT,
                         "page: max_new_tokens >= 0, temperature in 0..100, top_p in 0..1 (negative: the mode's default)");
    if (o->jpeg_quality < 0 || o->jpeg_quality > 100)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "page: jpeg_quality %d is outside 1..100", o->jpeg_quality);
    return DOTS_OK;
}

/* The grounding box must lie on the page: the model cannot look outside it,
 * and a box in the billions would print as garbage in the prompt. */
static dots_status check_bbox(dots_ctx *ctx, const int32_t b[4], int32_t w, int32_t h) {
    if (b[0] < 0 || b[1] < 0 || b[0] >= b[2] || b[1] >= b[3] || b[2] > w || b[3] > h)
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT,
                         "grounding bbox [%d, %d, %d, %d] is not a box on the %d x %d page (need 0 <= x1 < x2 <= %d, "
                         "0 <= y1 < y2 <= %d, in source pixels)",
                         b[0], b[1], b[2], b[3], w, h, w, h);
    return DOTS_OK;
}

static void report(const dots_page_options *o, dots_stage stage) {
    if (o->on_progress) o->on_progress(o->user, stage, 0, 1);
}

void dots_page_job_free(dots_page_job *j) {
    if (!j) return;
    dots_page_result_free(&j->r);
    dots_image_free(&j->fitz);
    dots_image_free(&j->img);
    free(j->stem);
    free(j->images_dir);
    free(j->images_ref);
    free(j->answer);
    free(j->prompt);
    free(j->system);
    memset(j, 0, sizeof *j);
}

static bool dup_opt(const char *src, char **dst, const char **field) {
    *dst = NULL;
    if (!src) return true;
    *dst = strdup(src);
    *field = *dst;
    return *dst != NULL;
}

dots_status dots_page_job_begin(dots_ctx *ctx, dots_state *st, dots_document *doc, int32_t page, const dots_page_options *opts,
                                dots_page_job *j) {
    memset(j, 0, sizeof *j);
    if (!st || !doc || !opts) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_page_parse: NULL argument");
    dots_status s = check_options(ctx, opts);
    if (s != DOTS_OK) return s;
    if (page < 0 || page >= dots_document_n_pages(doc))
        return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "page %d does not exist (the document has %d)", page + 1,
                         dots_document_n_pages(doc));
    if (dots_state_cancelled(st)) return DOTS_FAIL(ctx, DOTS_ERR_CANCELLED, "cancelled");
    const dots_config *cfg = dots_model_config(dots_state_model(st));
    /* the job outlives the caller's option strings when a batch holds it */
    j->o = *opts;
    if (!dup_opt(opts->stem, &j->stem, &j->o.stem) || !dup_opt(opts->images_dir, &j->images_dir, &j->o.images_dir) ||
        !dup_opt(opts->images_ref, &j->images_ref, &j->o.images_ref) || !dup_opt(opts->answer, &j->answer, &j->o.answer) ||
        !dup_opt(opts->prompt, &j->prompt, &j->o.prompt) || !dup_opt(opts->system, &j->system, &j->o.system)) {
        dots_page_job_free(j);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    }
    const dots_page_options *o = &j->o;
    dots_page_result *r = &j->r;
    const int32_t dpi = o->dpi ? o->dpi : DOTS_DEFAULT_PDF_DPI;
    r->page = page;
    r->mode = o->mode;
    r->loop_guard_first_at = -1;

    double t = dots_monotonic_s();
    report(o, DOTS_STAGE_RENDER);
    s = dots_document_render_page(ctx, doc, page, dpi, &j->img, &r->render_dpi);
    /* images: the model sees the official fitz_preprocess render; img stays
     * the original, which boxes, crops and the drawing refer to */
    const bool use_fitz = o->fitz_preprocess && !dots_document_is_pdf(doc);
    if (s == DOTS_OK && use_fitz) s = dots_image_fitz_render(ctx, &j->img, dpi, &j->fitz, NULL);
    if (s != DOTS_OK) goto done;
    j->model_img = use_fitz ? &j->fitz : &j->img;
    r->source_width_px = j->img.width_px;
    r->source_height_px = j->img.height_px;
    r->render_s = dots_monotonic_s() - t;

    /* the model's resized size: the bbox maps into it, the boxes back from it */
    const int64_t mn = o->min_pixels ? o->min_pixels : cfg->preprocessor.min_pixels;
    const int64_t mx = o->max_pixels ? o->max_pixels : cfg->preprocessor.max_pixels;
    s = dots_smart_resize(ctx, j->model_img->height_px, j->model_img->width_px,
                          cfg->vision.patch_size * cfg->vision.spatial_merge_size, mn, mx, &j->rh, &j->rw);
    if (s != DOTS_OK) goto done;
    r->model_width_px = j->rw;
    r->model_height_px = j->rh;

    dots_run_params *rp = &j->rp;
    dots_run_params_init(rp);
    rp->mode = o->mode;
    if (o->mode == DOTS_MODE_GROUNDING) {
        s = check_bbox(ctx, o->bbox, j->img.width_px, j->img.height_px);
        if (s != DOTS_OK) goto done;
        for (int i = 0; i < 4; i++)
            rp->bbox[i] = (int32_t)dots_bbox_to_model_px(o->bbox[i], i % 2 ? j->img.height_px : j->img.width_px,
                                                         i % 2 ? j->rh : j->rw);
    }
    j->replay = o->answer != NULL;
    rp->prompt = o->prompt;
    rp->system = o->system;
    rp->source_width_px = j->img.width_px;
    rp->source_height_px = j->img.height_px;
    rp->max_new_tokens = o->max_new_tokens;
    rp->temperature = o->temperature;
    rp->top_p = o->top_p;
    rp->seed = o->seed;
    rp->min_pixels = o->min_pixels;
    rp->max_pixels = o->max_pixels;
    rp->on_token = o->on_token;
    rp->on_progress = o->on_progress;
    rp->user = o->user;
    rp->no_json_constraint = o->no_json_constraint;
    rp->no_loop_guard = o->no_loop_guard;
done:
    if (s != DOTS_OK) dots_page_job_free(j);
    return s;
}

/* Scene text: the quadrilaterals as cells (bbox = their bounds), the
 * official .json and Markdown, the quads drawn; none found: filtered, the
 * raw answer kept as {"raw": ...} and as the Markdown. */
static dots_status finish_scene(dots_ctx *ctx, const dots_page_options *o, dots_page_result *r, const dots_image *img,
                                int32_t rw, int32_t rh, dots_image *drawn) {
    dots_scene sc = {0};
    dots_status s = dots_scene_parse(ctx, r->answer, strlen(r->answer), &sc);
    if (s != DOTS_OK) return s;
    if (sc.n == 0) {
        r->filtered = true;
        r->json = dots_scene_raw_json(r->answer);
        r->markdown = strdup(r->answer);
    } else {
        /* mapped with the size of the image the model saw (the official parser uses the original's) */
        dots_scene_rescale(&sc, rw, rh, img->width_px, img->height_px);
        r->json = dots_scene_to_json(&sc);
        r->markdown = dots_scene_markdown(&sc);
        if (o->layout_image) s = dots_scene_draw(ctx, &sc, img, drawn); /* before the texts move to the cells */
        r->cells = calloc((size_t)sc.n, sizeof *r->cells);
        if (r->cells) {
            for (int64_t i = 0; i < sc.n; i++) {
                dots_cell *c = &r->cells[i];
                const double *p = sc.items[i].points;
                memcpy(c->quad, p, sizeof c->quad);
                c->has_quad = c->has_bbox = true;
                c->bbox[0] = c->bbox[2] = p[0], c->bbox[1] = c->bbox[3] = p[1];
                for (int k = 1; k < 4; k++) {
                    c->bbox[0] = fmin(c->bbox[0], p[2 * k]), c->bbox[2] = fmax(c->bbox[2], p[2 * k]);
                    c->bbox[1] = fmin(c->bbox[1], p[2 * k + 1]), c->bbox[3] = fmax(c->bbox[3], p[2 * k + 1]);
                }
                c->text = sc.items[i].text;
                sc.items[i].text = NULL;
            }
            r->n_cells = sc.n;
        }
    }
    if (s == DOTS_OK && (!r->json || !r->markdown || (sc.n && !r->cells)))
        s = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    dots_scene_free(&sc);
    return s;
}

/* Image to SVG: the SVG taken from the answer, rendered at the source's
 * size, the comparison picture; an SVG that does not render is reported in
 * render_error and the other outputs stay. */
static dots_status finish_svg(dots_ctx *ctx, const dots_page_options *o, dots_page_result *r, const dots_image *img,
                              dots_image *drawn) {
    dots_status s = dots_svg_extract(ctx, r->answer, &r->svg);
    if (s != DOTS_OK) return s;
    r->markdown = dots_svg_markdown(r->answer);
    if (!r->markdown) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    if (!r->svg) {
        r->render_error = strdup("the answer holds no <svg> element");
        return r->render_error ? DOTS_OK : DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    }
    dots_image render = {0};
    char why[256];
    s = dots_svg_render(ctx, r->svg, img->width_px, img->height_px, &render, why, sizeof why);
    if (s == DOTS_OK && !render.rgb) {
        r->render_error = strdup(why[0] ? why : "the SVG did not render");
        if (!r->render_error) s = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (s == DOTS_OK && render.rgb) s = dots_png_encode(ctx, &render, &r->rendered_png, &r->rendered_png_len);
    if (s == DOTS_OK && render.rgb && o->layout_image) s = dots_svg_comparison(ctx, img, &render, drawn);
    dots_image_free(&render);
    return s;
}

dots_status dots_page_job_finish(dots_ctx *ctx, dots_page_job *j, dots_run_result *run, dots_page_result *out) {
    const dots_page_options *o = &j->o;
    dots_page_result *r = &j->r;
    const dots_image *img = &j->img;
    dots_image drawn = {0};
    dots_layout lay = {0};
    dots_status s = DOTS_OK;
    const int32_t rw = j->rw, rh = j->rh;
    if (j->replay) {
        r->answer = strdup(o->answer);
        if (!r->answer) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        r->stop = DOTS_STOP_EOS;
    } else {
        if (run->stop == DOTS_STOP_CANCELLED || run->stop == DOTS_STOP_CALLBACK)
            return DOTS_FAIL(ctx, DOTS_ERR_CANCELLED, "cancelled after %lld tokens", (long long)run->n_tokens);
        if (run->resized_width_px != rw || run->resized_height_px != rh)
            return DOTS_FAIL(ctx, DOTS_ERR_INTERNAL, "page: resized %d x %d, expected %d x %d", run->resized_width_px,
                             run->resized_height_px, rw, rh);
        r->answer = run->text;
        run->text = NULL;
        r->n_tokens = run->n_tokens;
        r->n_prompt_tokens = run->n_prompt_tokens;
        r->n_image_tokens = run->n_image_tokens;
        r->stop = run->stop;
        r->constrained = run->constrained;
        r->loop_guard_fired = run->loop_guard_fired;
        r->loop_guard_first_at = run->loop_guard_first_at;
        r->preprocess_s = run->preprocess_s;
        r->vision_s = run->vision_s;
        r->prefill_s = run->prefill_s;
        r->decode_s = run->decode_s;
    }

    double t = dots_monotonic_s();
    report(o, DOTS_STAGE_POSTPROCESS);
    const char *stem = o->stem ? o->stem : "page";
    const char *ref = o->images_ref ? o->images_ref : o->images_dir;
    if (o->mode == DOTS_MODE_OCR || o->mode == DOTS_MODE_GENERAL) {
        r->markdown = strdup(r->answer);
        r->markdown_nohf = strdup(r->answer);
        if (!r->markdown || !r->markdown_nohf) s = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    } else if (o->mode == DOTS_MODE_SCENE_SPOTTING) {
        s = finish_scene(ctx, o, r, img, rw, rh, &drawn);
    } else if (o->mode == DOTS_MODE_IMAGE_TO_SVG) {
        s = finish_svg(ctx, o, r, img, &drawn);
    } else {
        s = dots_layout_parse(ctx, r->answer, strlen(r->answer), &lay);
        if (s != DOTS_OK) goto done;
        const bool want_md = o->mode != DOTS_MODE_LAYOUT_ONLY;
        r->filtered = lay.filtered;
        if (!lay.filtered) {
            dots_layout_rescale(&lay, rw, rh, img->width_px, img->height_px);
            r->json = dots_layout_to_json(&lay);
            if (!r->json) s = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
            if (s == DOTS_OK && want_md)
                s = dots_layout_markdown(ctx, &lay, img, false, o->images_dir, ref, stem, &r->markdown);
            if (s == DOTS_OK && want_md)
                s = dots_layout_markdown(ctx, &lay, img, true, o->images_dir, ref, stem, &r->markdown_nohf);
            if (s == DOTS_OK && o->layout_image) s = dots_layout_draw(ctx, &lay, img, &drawn);
        } else {
            r->json = dots_json_quote(r->answer);
            if (want_md) {
                r->markdown = strdup(lay.salvage_md);
                r->markdown_nohf = strdup(lay.salvage_md);
            }
            if (!r->json || (want_md && (!r->markdown || !r->markdown_nohf)))
                s = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        }
        if (s == DOTS_OK && !lay.filtered) { /* hand the cells over */
            r->cells = lay.cells;
            r->n_cells = lay.n_cells;
            lay.cells = NULL;
            lay.n_cells = 0;
        }
    }
    /* the picture: the layout, quads or comparison drawn, or the source itself
     * (the plain-text modes: the official parser keeps a copy of the page) */
    if (s == DOTS_OK && o->layout_image)
        s = dots_jpeg_encode(ctx, drawn.rgb ? &drawn : img, o->jpeg_quality ? o->jpeg_quality : 95, &r->layout_jpeg,
                             &r->layout_jpeg_len);
    r->postprocess_s = dots_monotonic_s() - t;
    if (s == DOTS_OK) {
        *out = *r;
        memset(r, 0, sizeof *r);
    }
done:
    dots_layout_free(&lay);
    dots_image_free(&drawn);
    return s;
}

dots_status dots_page_parse(dots_ctx *ctx, dots_state *st, dots_document *doc, int32_t page, const dots_page_options *opts,
                            dots_page_result *out) {
    dots_ctx_begin_call(ctx);
    if (!st || !doc || !opts || !out) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_page_parse: NULL argument");
    dots_page_job j;
    dots_run_result run = {0};
    dots_status s = dots_page_job_begin(ctx, st, doc, page, opts, &j);
    if (s != DOTS_OK) return s;
    if (!j.replay) s = dots_run_image_ex(ctx, st, j.model_img, &j.rp, NULL, &run);
    if (s == DOTS_OK) s = dots_page_job_finish(ctx, &j, &run, out);
    dots_run_result_free(&run);
    dots_page_job_free(&j);
    return s;
}

dots_status dots_write_file_atomic(dots_ctx *ctx, const char *path, const void *data, size_t len) {
    dots_ctx_begin_call(ctx);
    if (!path || (!data && len)) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_write_file_atomic: NULL argument");
    dots_atomic_file a;
    if (!dots_atomic_open(&a, path)) return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    if (len && fwrite(data, 1, len, a.f) != len) {
        int e = errno;
        dots_atomic_abort(&a);
        return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    }
    if (!dots_atomic_commit(&a)) return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    return DOTS_OK;
}
