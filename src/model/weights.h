/*
 * weights.h - every tensor of dots.ocr, bound by name to a typed struct.
 *
 * The names and shapes (docs/model.md §3.1) are derived from the config, so the tiny
 * test models and the real checkpoint go through the same code. Tensors point
 * into the mmap'd files; nothing is copied unless a tensor is misaligned.
 */
#ifndef DOTS_WEIGHTS_H
#define DOTS_WEIGHTS_H

#include "core/internal.h"

#define DOTS_TENSOR_MAX_DIMS 4

typedef struct dots_tensor {
    const char *name;        /* borrowed from the file's header */
    dots_dtype dtype;
    int32_t n_dims;
    int64_t shape[DOTS_TENSOR_MAX_DIMS]; /* row-major, PyTorch order: Linear is [out, in] */
    int64_t n_elements;
    const void *data;        /* n_elements values of dtype, aligned to the element size */
    int32_t file_index;      /* which weight file holds it */
} dots_tensor;

/* D = embed_dim, I = intermediate_size, p = patch_size, H = LM hidden. */
typedef struct dots_vit_block_weights {
    const dots_tensor *norm1; /* [D] RMSNorm */
    const dots_tensor *qkv;   /* [3D, D], rows q | k | v, no bias */
    const dots_tensor *proj;  /* [D, D], no bias */
    const dots_tensor *norm2; /* [D] RMSNorm */
    const dots_tensor *fc1;   /* [I, D] SwiGLU gate (through SiLU) */
    const dots_tensor *fc3;   /* [I, D] SwiGLU up */
    const dots_tensor *fc2;   /* [D, I] SwiGLU down */
} dots_vit_block_weights;

typedef struct dots_vision_weights {
    const dots_tensor *patch_proj_w;    /* [D, 3, p, p] conv (or pre-flattened [D, 3p^2]) */
    const dots_tensor *patch_proj_b;    /* [D] */
    const dots_tensor *patch_norm;      /* [D] RMSNorm */
    dots_vit_block_weights *blocks;     /* [n_blocks] */
    int32_t n_blocks;
    const dots_tensor *post_trunk_norm; /* [D], NULL unless vision_config.post_norm */
    const dots_tensor *merger_ln_w;     /* [D] LayerNorm eps 1e-6 */
    const dots_tensor *merger_ln_b;     /* [D] */
    const dots_tensor *merger_fc0_w;    /* [m^2 D, m^2 D], m = spatial_merge_size */
    const dots_tensor *merger_fc0_b;    /* [m^2 D] */
    const dots_tensor *merger_fc2_w;    /* [H, m^2 D] */
    const dots_tensor *merger_fc2_b;    /* [H] */
} dots_vision_weights;

/* H = hidden, F = intermediate, Q = heads * head_dim, K = kv_heads * head_dim. */
typedef struct dots_lm_layer_weights {
    const dots_tensor *input_norm; /* [H] RMSNorm */
    const dots_tensor *q_w;        /* [Q, H] */
    const dots_tensor *q_b;        /* [Q], NULL unless attention_bias */
    const dots_tensor *k_w;        /* [K, H] */
    const dots_tensor *k_b;        /* [K] */
    const dots_tensor *v_w;        /* [K, H] */
    const dots_tensor *v_b;        /* [K] */
    const dots_tensor *o_w;        /* [H, Q], no bias */
    const dots_tensor *post_norm;  /* [H] RMSNorm */
    const dots_tensor *gate;       /* [F, H] */
    const dots_tensor *up;         /* [F, H] */
    const dots_tensor *down;       /* [H, F] */
} dots_lm_layer_weights;

typedef struct dots_lm_weights {
    const dots_tensor *embed;       /* [V, H] */
    dots_lm_layer_weights *layers;  /* [n_layers] */
    int32_t n_layers;
    const dots_tensor *norm;        /* [H] */
    const dots_tensor *lm_head;     /* [V, H]; == embed when tie_word_embeddings */
} dots_lm_weights;

typedef struct dots_weights {
    dots_vision_weights vision;
    dots_lm_weights lm;
} dots_weights;

/* One tensor the config implies. */
typedef struct dots_expected_tensor {
    char name[96];
    int32_t n_dims;
    int64_t shape[DOTS_TENSOR_MAX_DIMS];
    int32_t alt_n_dims;                      /* 0, or an accepted alternative shape */
    int64_t alt_shape[DOTS_TENSOR_MAX_DIMS];
    const dots_tensor **slot;                /* where the bound tensor goes */
    bool is_vision;
    int init_kind;                           /* how the generator fills it: DOTS_INIT_* */
} dots_expected_tensor;

enum { DOTS_INIT_LINEAR = 0, DOTS_INIT_NORM, DOTS_INIT_BIAS, DOTS_INIT_EMBED, DOTS_INIT_LM_HEAD };

/* Allocates w's block/layer arrays and lists every expected tensor, in the
 * checkpoint's order (LM first, then vision), with slots pointing into w.
 * *out is freed with free(); w with dots_weights_free(). */
dots_status dots_weights_expect(dots_ctx *ctx, const dots_config *cfg, dots_weights *w,
                                dots_expected_tensor **out, int64_t *n_out);
void dots_weights_free(dots_weights *w);

/* The bound weights of an open model (internal: for the model stages). */
struct dots_model;
const dots_weights *dots_model_weights(const struct dots_model *model);

#endif
