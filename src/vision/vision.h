/*
 * vision.h - the dots.vit vision encoder forward pass (docs/model.md §5).
 */
#ifndef DOTS_VISION_H
#define DOTS_VISION_H

#include "kernels/kernels.h"
#include "model/weights.h"

/* Called with each intermediate ("patch_embed", "block_00", ...,
 * "post_norm"); data is [rows, cols] fp32, valid during the call only. */
typedef void (*dots_vision_dump_fn)(void *user, const char *name, const float *data, int64_t rows, int64_t cols);

/* pixel rows -> merged embeddings *out [n_patches / m^2, hidden] (malloc,
 * caller frees). Memory: O(n_patches x embed_dim), attention tiled. */
dots_status dots_vision_encode(dots_ctx *ctx, const dots_config *cfg, const dots_weights *w, const dots_kernels *k,
                               const dots_pixel_rows *rows, float **out, int64_t *n_out, dots_vision_dump_fn dump,
                               void *dump_user);

/* FLOPs of one encoder pass over n patches (docs/model.md §5.9): the linear layers,
 * attention (4 n^2 D per block) and the merger; for GFLOP/s figures. */
double dots_vision_flops(const dots_config *cfg, int64_t n_patches);

#endif
