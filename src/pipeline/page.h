/*
 * page.h - one document page end to end (dots_page_parse, public); the
 * state accessors it needs from run.c.
 */
#ifndef DOTS_PAGE_H
#define DOTS_PAGE_H

#include "pipeline/run.h"

/* A page between its render and its post-processing: what dots_page_parse
 * does in one call, and what a batch holds while the page's answer decodes
 * alongside others. */
typedef struct dots_page_job {
    dots_page_options o;     /* the caller's, with the strings below copied */
    char *stem, *images_dir, *images_ref, *answer, *prompt, *system;
    dots_image img;          /* the source pixels: boxes, crops and the drawing refer to them */
    dots_image fitz;         /* images: the fitz_preprocess render the model sees */
    const dots_image *model_img;
    int32_t rw, rh;          /* the model's resized size */
    dots_run_params rp;      /* the model run for this page */
    bool replay;             /* o.answer given: no model run */
    dots_page_result r;      /* filled so far */
} dots_page_job;

/* Checks the options, renders the page, and prepares rp (on failure j is freed). */
dots_status dots_page_job_begin(dots_ctx *ctx, dots_state *st, dots_document *doc, int32_t page,
                                const dots_page_options *opts, dots_page_job *j);
/* Post-processes run (NULL when replaying) into out; fails with
 * DOTS_ERR_CANCELLED for a cancelled run. */
dots_status dots_page_job_finish(dots_ctx *ctx, dots_page_job *j, dots_run_result *run, dots_page_result *out);
void dots_page_job_free(dots_page_job *j);

/* dots_batch_add with run.h's hooks (teacher forcing: the benchmark). */
dots_status dots_batch_add_ex(dots_ctx *ctx, dots_batch *b, const dots_image *img, const dots_run_params *params,
                              const dots_run_hooks *hooks, int64_t *id);

#endif
