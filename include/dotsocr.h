/*
 * dotsocr.h - the public API of dotsocr, a C engine for the dots.ocr
 * document-parsing model (1.26B NaViT vision encoder + 1.78B Qwen2 LM).
 *
 * Usage:
 *
 *     dots_ctx *ctx = NULL;
 *     dots_model *model = NULL;
 *     if (dots_ctx_create(&ctx) != DOTS_OK) return 1;       // only fails on OOM
 *     dots_ctx_set_log(ctx, my_log_fn, my_data);              // optional
 *     if (dots_model_open(ctx, "weights/DotsOCR", &model) != DOTS_OK) {
 *         fprintf(stderr, "%s\n", dots_errmsg(ctx));           // one line
 *     }
 *     const dots_config *cfg = dots_model_config(model);
 *     ...
 *     dots_model_close(model);
 *     dots_ctx_free(ctx);
 *
 * Conventions:
 *   - Functions return dots_status; DOTS_OK (0) is success. Results come back
 *     through out-parameters, which are left untouched on failure.
 *   - A failing call stores a one-line message in its dots_ctx, read back with
 *     dots_errmsg(). Each public call that takes a ctx clears the previous
 *     error on entry; within one call the first (innermost) message wins.
 *   - The library never prints and never exits: diagnostics go to the log
 *     callback set with dots_ctx_set_log(), and nowhere if none is set.
 *   - A dots_ctx is used by one thread at a time. A dots_model is read-only
 *     after dots_model_open() and may be shared by many threads.
 *   - dots_*_free(NULL) and dots_model_close(NULL) are no-ops.
 */
#ifndef DOTSOCR_H
#define DOTSOCR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DOTS_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------- status */

typedef enum dots_status {
    DOTS_OK = 0,
    DOTS_ERR_INVALID_ARGUMENT, /* a caller passed NULL, a bad value or an unknown option */
    DOTS_ERR_OUT_OF_MEMORY,    /* an allocation failed */
    DOTS_ERR_IO,               /* a file is missing, unreadable or unwritable */
    DOTS_ERR_FORMAT,           /* a file's bytes are malformed (safetensors, JSON) */
    DOTS_ERR_CONFIG,           /* a config value is invalid or inconsistent */
    DOTS_ERR_TENSOR,           /* a tensor is missing, mis-shaped or of an unusable dtype */
    DOTS_ERR_UNSUPPORTED,      /* valid, but a feature dotsocr does not implement */
    DOTS_ERR_LIMIT,            /* over a hard limit that protects memory or time */
    DOTS_ERR_INTERNAL,         /* a bug in dotsocr */
    DOTS_ERR_CANCELLED,        /* dots_state_cancel() stopped the call */
    DOTS_STATUS_COUNT
} dots_status;

/* A static, human-readable name for a status ("invalid argument", ...). */
const char *dots_strerror(dots_status status);

/* ------------------------------------------------------ context and logs */

typedef enum dots_log_level {
    DOTS_LOG_ERROR = 0,
    DOTS_LOG_WARN,
    DOTS_LOG_INFO,
    DOTS_LOG_DEBUG
} dots_log_level;

/* msg is one line without a trailing newline, valid only during the call. */
typedef void (*dots_log_fn)(dots_log_level level, const char *msg, void *user_data);

typedef struct dots_ctx dots_ctx;

/* Creates a context. Returns DOTS_ERR_INVALID_ARGUMENT if out is NULL and
 * DOTS_ERR_OUT_OF_MEMORY if the allocation fails. */
dots_status dots_ctx_create(dots_ctx **out);
void dots_ctx_free(dots_ctx *ctx);

/* Sets (or, with fn NULL, removes) the log callback. Messages above
 * max_level (e.g. DEBUG when max_level is INFO) are not formatted at all. */
void dots_ctx_set_log(dots_ctx *ctx, dots_log_fn fn, void *user_data, dots_log_level max_level);

/* The message of the last failing call on ctx: one line, never NULL ("" when
 * there is none). Valid until the next call on ctx. */
const char *dots_errmsg(const dots_ctx *ctx);
/* The status of the last failing call on ctx (DOTS_OK when none). */
dots_status dots_errcode(const dots_ctx *ctx);
void dots_ctx_clear_error(dots_ctx *ctx);

/* ---------------------------------------------------------------- config */

/* Element types a checkpoint tensor may have. */
typedef enum dots_dtype {
    DOTS_DTYPE_F32 = 0,
    DOTS_DTYPE_F16,
    DOTS_DTYPE_BF16,
    /* ggml block formats (GGUF files), bit-for-bit llama.cpp's layouts: */
    DOTS_DTYPE_Q8_0,  /* 32 weights: fp16 scale + 32 int8 (8.5 bits/weight) */
    DOTS_DTYPE_Q4_0,  /* 32 weights: fp16 scale + 32 nibbles (4.5 bits/weight) */
    DOTS_DTYPE_Q4_K,  /* 256 weights: 8 sub-blocks with 6-bit scales and mins (4.5 bits/weight) */
    DOTS_DTYPE_COUNT
} dots_dtype;

const char *dots_dtype_name(dots_dtype dtype); /* "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K" */

/* config.json top level: the Qwen2 language model (docs/model.md §2.1). */
typedef struct dots_text_config {
    int32_t hidden_size;             /* 1536 */
    int32_t num_hidden_layers;       /* 28 */
    int32_t num_attention_heads;     /* 12 */
    int32_t num_key_value_heads;     /* 2 */
    int32_t head_dim;                /* derived: hidden_size / num_attention_heads */
    int32_t intermediate_size;       /* 8960 */
    int32_t max_position_embeddings; /* 131072 */
    int32_t vocab_size;              /* 151936 (rows of embed_tokens and lm_head) */
    int32_t sliding_window;          /* 131072, unused */
    int32_t max_window_layers;       /* 28, unused */
    int32_t image_token_id;          /* 151665 <|imgpad|> */
    int32_t video_token_id;          /* 151656, unused by dots.ocr */
    double rms_norm_eps;             /* 1e-6 */
    double rope_theta;               /* 1e6 */
    double attention_dropout;        /* 0.0 */
    double initializer_range;        /* 0.02, training only */
    bool tie_word_embeddings;        /* false: lm_head.weight is on disk */
    bool attention_bias;             /* true: q/k/v have biases */
    bool use_sliding_window;         /* false (true is rejected) */
    bool use_cache;                  /* true */
    char hidden_act[16];             /* "silu" (anything else is rejected) */
    char torch_dtype[16];            /* "bfloat16" */
    char transformers_version[32];   /* informational */
} dots_text_config;

/* config.json "vision_config": the dots.vit encoder (docs/model.md §2.2). */
typedef struct dots_vision_config {
    int32_t embed_dim;           /* 1536, ViT width */
    int32_t hidden_size;         /* 1536, merger output width (= LM hidden) */
    int32_t intermediate_size;   /* 4224, SwiGLU width */
    int32_t num_hidden_layers;   /* 42 */
    int32_t num_attention_heads; /* 12 */
    int32_t head_dim;            /* derived: embed_dim / num_attention_heads */
    int32_t num_channels;        /* 3 */
    int32_t patch_size;          /* 14 */
    int32_t spatial_merge_size;  /* 2 */
    int32_t temporal_patch_size; /* 1 */
    double rms_norm_eps;         /* 1e-5 (not the merger LayerNorm, which is 1e-6) */
    double init_merger_std;      /* 0.02, training only */
    double initializer_range;    /* 0.02, training only */
    bool use_bias;               /* false (true is rejected) */
    bool post_norm;              /* true: post_trunk_norm exists */
    bool is_causal;              /* false (true is rejected) */
    char attn_implementation[32]; /* "flash_attention_2", informational */
} dots_vision_config;

#define DOTS_MAX_EOS_IDS 16

/* generation_config.json (docs/model.md §2.3); defaults when the file is absent. */
typedef struct dots_generation_config {
    int32_t eos_token_ids[DOTS_MAX_EOS_IDS]; /* {151643, 151673} */
    int32_t n_eos_token_ids;
    int32_t max_length;  /* 32768, prompt included */
    bool do_sample;      /* false */
    double temperature;  /* 1.0 (unused unless do_sample) */
    double top_p;        /* 1.0 */
    int32_t top_k;       /* 0 = off */
} dots_generation_config;

/* preprocessor_config.json (docs/model.md §2.4); defaults when the file is absent. */
typedef struct dots_preprocessor_config {
    int64_t min_pixels;        /* 3136 */
    int64_t max_pixels;        /* 11289600 */
    int32_t patch_size;        /* 14 */
    int32_t merge_size;        /* 2 */
    int32_t temporal_patch_size; /* 1 */
    float image_mean[3];       /* OpenAI CLIP mean */
    float image_std[3];        /* OpenAI CLIP std */
} dots_preprocessor_config;

typedef struct dots_config {
    dots_text_config text;
    dots_vision_config vision;
    dots_generation_config generation;
    dots_preprocessor_config preprocessor;
    bool has_generation_config;   /* false: defaults were used */
    bool has_preprocessor_config; /* false: defaults were used */
} dots_config;

/* Fills cfg with the official dots.ocr values of docs/model.md §2. */
dots_status dots_config_init_default(dots_config *cfg);

/* Parses a config.json text (len bytes, need not be NUL-terminated) into
 * cfg->text and cfg->vision, starting from the official defaults, and checks
 * the values. On failure the message names the offending key. */
dots_status dots_config_parse(dots_ctx *ctx, const char *json, size_t len, dots_config *cfg);

/* ----------------------------------------------------------------- model */

typedef struct dots_model dots_model;

/* Opens a Hugging Face checkpoint directory as downloaded: config.json, then
 * model.safetensors or model.safetensors.index.json + shards (memory-mapped,
 * not copied), generation_config.json and preprocessor_config.json where
 * present. Every file is validated and every tensor the config implies is
 * bound by name and shape. path may instead be a .gguf file (any regular
 * file is read as GGUF): one written by dots_convert_gguf, the LM file of
 * its LM + mmproj pair, or the LM file of the pair llama.cpp's own tools
 * write (config from the qwen2.* / clip.* metadata, tokenizer from
 * tokenizer.ggml.*), whose vision tower is the one dots.ocr mmproj file
 * (*mmproj*.gguf) in the same directory. */
dots_status dots_model_open(dots_ctx *ctx, const char *path, dots_model **out);
/* The same with the vision tower's mmproj file named explicitly. */
dots_status dots_model_open_pair(dots_ctx *ctx, const char *lm_path, const char *mmproj_path, dots_model **out);
void dots_model_close(dots_model *model);

/* Borrowed; valid until dots_model_close(). NULL if model is NULL. */
const dots_config *dots_model_config(const dots_model *model);

typedef struct dots_model_info {
    int64_t n_tensors;        /* tensors bound (643 for the real config) */
    int64_t n_tensors_vision; /* of which vision_tower.* */
    int64_t n_tensors_lm;
    int64_t n_tensors_unused; /* present in the files but not used */
    int64_t n_params;         /* elements of the bound tensors */
    int64_t n_params_vision;
    int64_t n_params_lm;
    int64_t bytes_by_dtype[DOTS_DTYPE_COUNT]; /* bound tensors' bytes per dtype */
    int64_t bytes_lm;         /* bytes of the language model's tensors */
    int64_t bytes_lm_embed;   /* of which the embedding table (one row is read per token) */
    dots_dtype lm_matrix_dtype; /* the type of the language model's layer matrices (q_proj of layer 0) */
    int64_t mapped_bytes;     /* total size of the mapped weight files */
    int32_t n_files;          /* weight files (shards) */
    bool config_from_metadata; /* llama.cpp's own GGUF pair: configs rebuilt from its qwen2.* / clip.* keys */
    int64_t n_reencoded;      /* matrices stored as Q4_1/Q5_0/Q5_1/Q5_K/Q6_K, re-encoded as Q8_0 at load */
} dots_model_info;

dots_status dots_model_get_info(const dots_model *model, dots_model_info *out);

/* Reads every page of the weight files so they are resident before timing
 * (mmap'd pages may otherwise be faulted in, or evicted, mid-run); with
 * lock, also mlock()s them (may fail without privileges: then a warning).
 * Returns the bytes touched in *bytes (may be NULL). */
dots_status dots_model_make_resident(dots_ctx *ctx, const dots_model *model, bool lock, int64_t *bytes);

/* Copies every weight into one anonymous allocation backed by huge pages
 * where the kernel allows (madvise), points the tensors at the copy and
 * drops the file mappings' pages (the files stay mapped, untouched). Costs
 * one copy of the weights at load (~1 s per 6 GB), saves no memory, and
 * streams faster: on this VM the matrix-vector kernel reads page-cache
 * pages at ~20 GB/s and the same bytes in anonymous memory at ~40 GB/s.
 * Call before the model is shared between threads. */
dots_status dots_model_load_to_ram(dots_ctx *ctx, dots_model *model);

/* Where the weights live while the model runs. */
typedef enum dots_placement {
    DOTS_PLACE_AUTO = 0, /* bf16/f16/f32 language model matrices: mapped from the files
                          * (zero-copy, opens in milliseconds); block formats (Q8_0,
                          * Q4_0, Q4_K): copied and repacked for the decode kernels */
    DOTS_PLACE_MAP,      /* mapped from the files, whatever the type */
    DOTS_PLACE_COPY      /* copied into anonymous memory (dots_model_load_to_ram) */
} dots_placement;

/* Places the weights as asked. Call once, after opening and before the model
 * is shared between threads. */
dots_status dots_model_place(dots_ctx *ctx, dots_model *model, dots_placement placement);

/* Path of weight file i (0 <= i < n_files), or NULL. Borrowed. */
const char *dots_model_file_path(const dots_model *model, int32_t i);
/* Path of the model directory. Borrowed. */
const char *dots_model_dir(const dots_model *model);

/* ------------------------------------------------------- images and PDFs */

/* An 8-bit RGB image, rows top to bottom, no padding: the pixel at (x, y)
 * is rgb[(y * width_px + x) * 3 + c]. */
typedef struct dots_image {
    int32_t width_px, height_px;
    uint8_t *rgb; /* owned; free with dots_image_free */
} dots_image;

void dots_image_free(dots_image *img); /* frees rgb and zeroes the struct */

/* Decoded pixels are capped to protect memory: a file declaring more than
 * this many pixels (Pillow's decompression-bomb threshold) is refused
 * before anything is allocated for it. */
#define DOTS_MAX_IMAGE_PIXELS 178956970LL
#define DOTS_DEFAULT_PDF_DPI 200

/* An input document: one image (PNG, JPEG, WebP, TIFF, PNM) or a PDF. */
typedef struct dots_document dots_document;

/* Opens path, recognising the format from its bytes, not its name. Images
 * are decoded here (alpha composited on white); PDFs and multi-frame TIFFs
 * are opened and rendered page by page. Only regular files are opened: a
 * FIFO, device or directory is refused before it is opened, so that it
 * cannot block. */
dots_status dots_document_open(dots_ctx *ctx, const char *path, dots_document **out);
/* The same from len bytes in memory (copied; the caller keeps data). label
 * names the document in error messages (NULL: "memory"). */
dots_status dots_document_open_memory(dots_ctx *ctx, const void *data, size_t len, const char *label,
                                      dots_document **out);
void dots_document_close(dots_document *doc);
/* Pages: 1 for most images, the frames of a TIFF, and for a PDF the page
 * tree's count, capped at the objects the file holds (a page tree that
 * claims two billion pages in a 1 kB file is not believed). A page the tree
 * claims but the file lacks fails to render with DOTS_ERR_FORMAT and a
 * message that says it is missing (dots_document_page_missing). */
int32_t dots_document_n_pages(const dots_document *doc);
/* Whether the last failed render of page on doc failed because the page is
 * not in the file (as opposed to a page that is there but broken). */
bool dots_document_page_missing(const dots_document *doc, int32_t page);
/* Whether page failed to render because it has no area (an empty page, which
 * the official dots.mocr parser skips). */
bool dots_document_page_empty(const dots_document *doc, int32_t page);
bool dots_document_is_pdf(const dots_document *doc);

/* The page as RGB (page is 0-based). PDF pages are rendered at dpi
 * (DOTS_DEFAULT_PDF_DPI if 0) and, like the official parser, again at 72 dpi
 * when a side would exceed 4,500 px; *dpi_used (may be NULL) tells which.
 * For images dpi is ignored and the decoded image is copied out. */
dots_status dots_document_render_page(dots_ctx *ctx, dots_document *doc, int32_t page, int32_t dpi,
                                      dots_image *out, int32_t *dpi_used);

/* The official parser's fitz_preprocess for images (its CLI default): the
 * image goes through MuPDF as a one-page document at its own resolution (96
 * dpi when it has none) and is rendered at dpi (0: 200), with the 72 dpi
 * fallback past 4,500 px. The model then sees this render; boxes are still
 * reported in the original image's pixels. */
dots_status dots_image_fitz_render(dots_ctx *ctx, const dots_image *src, int32_t dpi, dots_image *out, int32_t *dpi_used);

/* ---------------------------------------------------------- preprocessing */

/* The official smart_resize (docs/model.md §4.2): the size an image of height x
 * width is resized to, multiples of factor, within [min_pixels,
 * max_pixels] and the aspect ratio; computed in double with Python's
 * round-half-to-even. Aspect ratios over 200 are an error. */
dots_status dots_smart_resize(dots_ctx *ctx, int64_t height, int64_t width, int32_t factor, int64_t min_pixels,
                              int64_t max_pixels, int32_t *out_height, int32_t *out_width);

/* Resizes like Pillow's Image.resize((width, height), Image.BICUBIC) on an
 * RGB image, bit for bit. */
dots_status dots_image_resize_bicubic(dots_ctx *ctx, const dots_image *in, int32_t width, int32_t height,
                                      dots_image *out);

/* The vision encoder's input (docs/model.md §4.4-4.5, §5.2). */
typedef struct dots_pixel_rows {
    int32_t grid_h, grid_w;  /* patches per column / row */
    int64_t n_patches;       /* grid_h * grid_w */
    int32_t patch_dim;       /* 3 * patch^2 = 588 */
    float *pixels;           /* [n_patches, patch_dim], merge-block-major rows */
    int32_t *positions;      /* [n_patches, 2]: (row, column) of each patch */
} dots_pixel_rows;

void dots_pixel_rows_free(dots_pixel_rows *rows);

/* The official user overrides of the pixel budget are bounded like this. */
#define DOTS_MIN_PIXELS 3136
#define DOTS_MAX_PIXELS 11289600

/* smart_resize -> bicubic resize -> normalise with the checkpoint's mean and
 * std -> patch rows. min_pixels / max_pixels of 0 take the preprocessor
 * config's values; others must satisfy DOTS_MIN_PIXELS <= min <= max <=
 * DOTS_MAX_PIXELS. resized (may be NULL) receives the resized image. */
dots_status dots_preprocess(dots_ctx *ctx, const dots_config *cfg, const dots_image *img, int64_t min_pixels,
                            int64_t max_pixels, dots_image *resized, dots_pixel_rows *rows);

/* ------------------------------------------------------------- tokenizer */

/* Qwen2 byte-level BPE, identical to Hugging Face tokenizers (docs/model.md §8). */
typedef struct dots_tokenizer dots_tokenizer;

/* Loads a tokenizer from path: a tokenizer.json file, or a directory holding
 * tokenizer.json or else vocab.json + merges.txt (+ tokenizer_config.json
 * for the added tokens). Anything the file asks for that dotsocr does not
 * implement (another model type, normalizer, pre-tokenizer) is an error. */
dots_status dots_tokenizer_open(dots_ctx *ctx, const char *path, dots_tokenizer **out);
void dots_tokenizer_free(dots_tokenizer *tok);

/* One past the largest id (151688 for dots.ocr). */
int32_t dots_tokenizer_n_ids(const dots_tokenizer *tok);
/* Id of a token given as its exact string (vocab entry in byte-level form,
 * or added-token content), or -1. */
int32_t dots_tokenizer_token_id(const dots_tokenizer *tok, const char *token);
/* Whether id is an added token flagged special (skipped when decoding with
 * skip_special). */
bool dots_tokenizer_is_special(const dots_tokenizer *tok, int32_t id);

/* Encodes len bytes of UTF-8 text: added tokens matched literally first
 * (leftmost, longest), NFC on the text between them, the pre-tokenizer
 * regex, byte-level BPE. No BOS/EOS is added. *ids (free with dots_free)
 * gets *n_ids ids. Invalid UTF-8 is an error. Not thread-safe for one tok
 * (it keeps a word cache): use one tokenizer per thread. */
dots_status dots_tok_encode(dots_ctx *ctx, dots_tokenizer *tok, const char *text, size_t len,
                            int32_t **ids, size_t *n_ids);

/* Decodes ids to UTF-8 text (free with dots_free; NUL-terminated, *len
 * excludes the NUL). skip_special drops added tokens flagged special. Bytes
 * that are not valid UTF-8 become U+FFFD, exactly like Python's
 * errors="replace". Ids outside the vocabulary are an error. */
dots_status dots_tok_decode(dots_ctx *ctx, const dots_tokenizer *tok, const int32_t *ids, size_t n_ids,
                            bool skip_special, char **text, size_t *len);

/* Incremental decoding for streaming: text comes out as soon as it is whole
 * UTF-8, never half a character; the concatenation of every push and the
 * final flush equals dots_tok_decode of all the ids. */
typedef struct dots_tok_stream dots_tok_stream;
dots_status dots_tok_stream_create(dots_ctx *ctx, const dots_tokenizer *tok, bool skip_special,
                                   dots_tok_stream **out);
/* Adds one id; *text (borrowed until the next call on s) gets what became
 * complete, possibly nothing (*len == 0). */
dots_status dots_tok_stream_push(dots_ctx *ctx, dots_tok_stream *s, int32_t id, const char **text, size_t *len);
/* Ends the stream: pending incomplete bytes come out as U+FFFD. */
dots_status dots_tok_stream_flush(dots_ctx *ctx, dots_tok_stream *s, const char **text, size_t *len);
void dots_tok_stream_free(dots_tok_stream *s);

/* Frees memory the library handed to the caller. */
void dots_free(void *p);

/* ------------------------------------------------------------------- run */

/* The official prompt modes: dots.ocr's four (docs/model.md §10.1) and the
 * four dots.mocr added (docs/mocr.md). Every mode works with either model. */
typedef enum dots_prompt_mode {
    DOTS_MODE_LAYOUT_ALL = 0, /* prompt_layout_all_en: boxes, categories and text as JSON */
    DOTS_MODE_LAYOUT_ONLY,    /* prompt_layout_only_en: boxes and categories */
    DOTS_MODE_OCR,            /* prompt_ocr: the text */
    DOTS_MODE_GROUNDING,      /* prompt_grounding_ocr: the text inside a bbox */
    DOTS_MODE_WEB_PARSING,    /* prompt_web_parsing: a web page's layout as JSON */
    DOTS_MODE_SCENE_SPOTTING, /* prompt_scene_spotting: text lines as quadrilaterals + text */
    DOTS_MODE_IMAGE_TO_SVG,   /* prompt_image_to_svg: the image as SVG code */
    DOTS_MODE_GENERAL,        /* prompt_general: a free question (the prompt), with a system message */
    DOTS_MODE_COUNT
} dots_prompt_mode;

const char *dots_prompt_mode_name(dots_prompt_mode mode); /* "layout-all", ..., "image-to-svg", "general" */
/* The verbatim prompt of a mode as the official prompts.py holds it (image-to-svg
 * with its {width} {height} placeholders, general a single space). */
const char *dots_prompt_text(dots_prompt_mode mode);
/* A mode's generation defaults, used where the parameters say "default"
 * (temperature or top_p < 0, max_new_tokens 0): image-to-svg samples at
 * temperature 0.9, top_p 1 (greedy and low temperatures loop) with 32768
 * tokens; every other mode is greedy with 16384. */
void dots_prompt_mode_defaults(dots_prompt_mode mode, float *temperature, float *top_p, int32_t *max_new_tokens);

/* Called for every generated token with the text it completes (whole UTF-8
 * characters, special tokens skipped; may be empty). Return false to stop. */
typedef bool (*dots_token_fn)(void *user, int32_t token, const char *text, size_t len);

/* The stages of a page, for progress reports. */
typedef enum dots_stage {
    DOTS_STAGE_RENDER = 0, /* PDF page render / image decode, fitz_preprocess */
    DOTS_STAGE_PREPROCESS, /* smart_resize, bicubic resize, patch rows */
    DOTS_STAGE_VISION,     /* the vision encoder: done/total = blocks */
    DOTS_STAGE_PREFILL,    /* the prompt through the language model: done/total = tokens */
    DOTS_STAGE_DECODE,     /* generation: done = tokens so far, total = the limit */
    DOTS_STAGE_POSTPROCESS /* layout JSON, Markdown, the layout picture */
} dots_stage;

const char *dots_stage_name(dots_stage stage); /* "render", "preprocess", "vision", ... */

/* Called when a stage starts (done 0) and between its steps (vision blocks,
 * prefill chunks, every 64 decoded tokens). Runs on the calling thread. */
typedef void (*dots_progress_fn)(void *user, dots_stage stage, int64_t done, int64_t total);

typedef struct dots_run_params {
    dots_prompt_mode mode;
    int32_t bbox[4];           /* grounding: x1, y1, x2, y2 in resized-image pixels */
    const char *prompt;        /* NULL: the mode's prompt; else this text instead (general: the question) */
    const char *prompt_before_image; /* NULL or "": none (every official prompt puts the image
                                * first); else user text placed before the image */
    const char *system;        /* NULL: the mode's system message (general: "You are a helpful
                                * assistant.", others none); "": none; else this text */
    int32_t source_width_px, source_height_px; /* the original image, for image-to-svg's viewBox;
                                * 0: the image given */
    int32_t max_new_tokens;    /* 0: the mode's default (dots_prompt_mode_defaults) */
    float temperature;         /* < 0: the mode's default; 0: greedy */
    float top_p;               /* < 0: the mode's default; 0 or 1: off */
    uint64_t seed;             /* sampling seed */
    int64_t min_pixels, max_pixels; /* 0: the preprocessor config's */
    dots_token_fn on_token;    /* may be NULL */
    void *user;
    dots_progress_fn on_progress; /* may be NULL; gets user */
    bool no_json_constraint;   /* layout modes: do not constrain the answer to valid layout JSON */
    bool no_loop_guard;        /* do not watch for repetition loops */
} dots_run_params;

void dots_run_params_init(dots_run_params *p); /* layout-all, the mode's defaults */

typedef enum dots_stop_reason {
    DOTS_STOP_EOS = 0,     /* an EOS token of generation_config */
    DOTS_STOP_MAX_TOKENS,  /* max_new_tokens reached */
    DOTS_STOP_CALLBACK,    /* on_token returned false (e.g. Ctrl-C) */
    DOTS_STOP_CONTEXT,     /* max_position_embeddings reached */
    DOTS_STOP_CANCELLED,   /* dots_state_cancel() during generation */
    DOTS_STOP_LOOP_GUARD,  /* plain-text modes: the loop guard ended a repetition loop */
} dots_stop_reason;

/* "eos", "max-new-tokens", "callback", "context-full", "cancelled", "loop-guard". */
const char *dots_stop_reason_name(dots_stop_reason stop);

typedef struct dots_run_result {
    char *text;               /* the decoded answer, special tokens skipped (dots_free) */
    size_t text_len;
    int32_t *tokens;          /* generated ids, EOS included if reached (dots_free) */
    int64_t n_tokens;
    int64_t n_prompt_tokens;  /* whole prompt, image tokens included */
    int64_t n_image_tokens;
    int32_t resized_width_px, resized_height_px;
    double preprocess_s, vision_s, prefill_s, decode_s;
    dots_stop_reason stop;
    bool constrained;         /* the layout constraint refused the model's first choice at least once,
                               * or closed the answer to fit the budget */
    int32_t loop_guard_fired; /* times the loop guard acted */
    int64_t loop_guard_first_at; /* token index of the first, -1 if none */
    double constraint_s;      /* time spent on the constraint's masks (part of decode_s) */
} dots_run_result;

void dots_run_result_free(dots_run_result *r);

/* Per-request state: tokenizer, threads, scratch. Reusable across pages
 * without reloading weights; one thread at a time. n_threads 0 = all CPUs. */
typedef struct dots_state dots_state;
dots_status dots_state_create(dots_ctx *ctx, const dots_model *model, int32_t n_threads, dots_state **out);
void dots_state_free(dots_state *st);

/* Compute precision of the matrix products with bf16 weights:
 * AUTO (the default of a new state): BF16 where the CPU has native bf16 dot
 *   products (AVX512_BF16), FP32 elsewhere.
 * FP32: activations stay fp32; matches the fp32 reference to ~1e-5 (the
 *   exact path).
 * BF16: activations rounded to bf16 for those products (as the official bf16
 *   model computes), 2x the arithmetic rate where the CPU has AVX512_BF16;
 *   elsewhere it stays fp32. */
typedef enum dots_precision { DOTS_PRECISION_FP32 = 0, DOTS_PRECISION_BF16, DOTS_PRECISION_AUTO } dots_precision;
dots_status dots_state_set_precision(dots_ctx *ctx, dots_state *st, dots_precision precision);
/* The precision the state's products really use (FP32 or BF16). */
dots_precision dots_state_precision(const dots_state *st);

/* Asks the call running on st (from any thread, or a signal handler) to
 * stop at its next step: between vision blocks, prefill chunks and tokens.
 * dots_page_parse then fails with DOTS_ERR_CANCELLED; dots_run_image keeps
 * the text so far with stop DOTS_STOP_CANCELLED. The request stays until
 * dots_state_clear_cancel(): a call started while it is set stops at once. */
void dots_state_cancel(dots_state *st);
void dots_state_clear_cancel(dots_state *st);

/* One page: preprocess, vision encoder, prompt, prefill, generation. */
dots_status dots_run_image(dots_ctx *ctx, dots_state *st, const dots_image *img, const dots_run_params *params,
                           dots_run_result *out);


/* ------------------------------------------------------------------ pages */

/* One layout element of a page, in reading order. */
typedef struct dots_cell {
    double bbox[4];  /* x1, y1, x2, y2 in source pixels (page results) */
    bool has_bbox;
    char *category;  /* "Text", "Title", "Table", ...; NULL if the model gave none */
    char *text;      /* NULL if absent (Picture cells have none) */
    double quad[8];  /* scene-spotting: x1, y1, ..., x4, y4 in source pixels (bbox: their bounds) */
    bool has_quad;
} dots_cell;

typedef struct dots_page_options {
    dots_prompt_mode mode;        /* default layout-all */
    int32_t bbox[4];              /* grounding: x1, y1, x2, y2 in SOURCE pixels (the page as
                                   * rendered at dpi, or the original image), mapped to the
                                   * model's resized image as the official parser does */
    int32_t dpi;                  /* PDF render and fitz_preprocess resolution; 0: 200 */
    bool fitz_preprocess;         /* images go through MuPDF first, as the official parser's
                                   * default (true by default); boxes stay in the image's pixels */
    int64_t min_pixels, max_pixels; /* 0: the preprocessor config's */
    const char *prompt;           /* see dots_run_params */
    const char *system;
    int32_t max_new_tokens;       /* 0: the mode's default */
    float temperature;            /* < 0 (the default): the mode's; 0: greedy */
    float top_p;                  /* < 0 (the default): the mode's */
    uint64_t seed;
    const char *images_dir;       /* Picture crops written there as <stem>_<i>.png and linked
                                   * as images_ref/<file>; NULL: embedded as base64 */
    const char *images_ref;       /* NULL: images_dir */
    const char *stem;             /* names the crops; NULL: "page" */
    bool layout_image;            /* encode the layout picture (true by default) */
    int32_t jpeg_quality;         /* of the layout picture; 0: 95 */
    const char *answer;           /* NULL: run the model. Else post-process this text as the
                                   * model's answer (a saved raw answer re-processed; tests) */
    bool no_json_constraint;      /* see dots_run_params */
    bool no_loop_guard;
    dots_token_fn on_token;       /* may be NULL */
    dots_progress_fn on_progress; /* may be NULL */
    void *user;                   /* for both callbacks */
} dots_page_options;

/* layout-all, 200 dpi, fitz_preprocess on, layout picture on, greedy. */
void dots_page_options_init(dots_page_options *o);

typedef struct dots_page_result {
    int32_t page;                         /* 0-based */
    int32_t source_width_px, source_height_px; /* the pixels boxes refer to */
    int32_t model_width_px, model_height_px;   /* the resized image the encoder saw */
    int32_t render_dpi;                   /* PDF pages: the dpi used (72 past 4,500 px); 0 for images */
    dots_prompt_mode mode;
    dots_cell *cells;                     /* layout modes, when the answer was valid JSON */
    int64_t n_cells;
    bool filtered;                        /* the answer was not valid JSON: salvaged text only */
    char *json;                           /* layout modes: the cells as JSON (json.dumps format);
                                           * filtered: the raw answer as a JSON string. NULL for ocr */
    char *markdown;                       /* NULL for layout-only */
    char *markdown_nohf;                  /* the same without Page-header / Page-footer */
    uint8_t *layout_jpeg;                 /* the layout drawn on the source (layout modes) */
    size_t layout_jpeg_len;
    char *answer;                         /* the model's raw answer */
    char *svg;                            /* image-to-svg: the SVG taken from the answer (repaired
                                           * if cut short); NULL if the answer holds none */
    uint8_t *rendered_png;                /* image-to-svg: svg rendered at the source size, PNG */
    size_t rendered_png_len;
    char *render_error;                   /* image-to-svg: why svg did not render, or NULL */
    int64_t n_tokens, n_prompt_tokens, n_image_tokens;
    dots_stop_reason stop;
    bool constrained;                     /* see dots_run_result */
    int32_t loop_guard_fired;
    int64_t loop_guard_first_at;
    double render_s, preprocess_s, vision_s, prefill_s, decode_s, postprocess_s;
} dots_page_result;

/* Renders page (0-based) of doc, runs the model and post-processes the
 * answer like the official parser: boxes mapped to source pixels, the JSON
 * salvage for broken answers, Markdown with and without page headers and
 * footers, the layout picture. Everything the result holds is owned by it. */
dots_status dots_page_parse(dots_ctx *ctx, dots_state *st, dots_document *doc, int32_t page,
                            const dots_page_options *opts, dots_page_result *out);
void dots_page_result_free(dots_page_result *r);

/* ---------------------------------------------------------------- batches */

/* Several runs decoded together. A decode step reads every weight of the
 * language model once, whatever the number of sequences it advances, so
 * stepping B pages at once gives up to B times the tokens per second of one.
 * Each run keeps its own KV cache (sized from its own prompt and budget),
 * sampler, constraint and stop rules; its tokens are those it gets alone.
 *
 *   dots_batch_add / dots_batch_add_page: preprocess, vision and prefill on
 *     the caller's thread, then the run joins the decode steps;
 *   dots_batch_step: one token for every running sequence;
 *   dots_batch_finished_id + dots_batch_take / dots_batch_take_page: a run
 *     that ended (EOS, budget, loop guard, cancel) leaves, and its room is free
 *     for the next add, between any two steps (continuous batching).
 *
 * A batch uses its state's threads and kernels: one thread drives it, and the
 * state runs nothing else meanwhile. */
typedef struct dots_batch dots_batch;

/* max_runs: runs held at once (running or finished and not yet taken), 1..64. */
dots_status dots_batch_create(dots_ctx *ctx, dots_state *st, int32_t max_runs, dots_batch **out);
void dots_batch_free(dots_batch *b);

/* Adds a run of img; *id (>= 0, never reused by the batch) names it. The
 * image is not referenced after the call. DOTS_ERR_LIMIT when the batch holds
 * max_runs runs. The per-token and progress callbacks work as in
 * dots_run_image (the per-token one runs inside dots_batch_step). */
dots_status dots_batch_add(dots_ctx *ctx, dots_batch *b, const dots_image *img, const dots_run_params *params, int64_t *id);
/* Adds page of doc, as dots_page_parse would run it (the document is not
 * referenced after the call; the option strings are copied). A page with
 * opts->answer finishes at once. */
dots_status dots_batch_add_page(dots_ctx *ctx, dots_batch *b, dots_document *doc, int32_t page,
                                const dots_page_options *opts, int64_t *id);
/* One decode step of every running sequence. */
dots_status dots_batch_step(dots_ctx *ctx, dots_batch *b);
/* Sequences that still decode; runs finished and not yet taken. */
int32_t dots_batch_running(const dots_batch *b);
int32_t dots_batch_finished(const dots_batch *b);
/* The id of the run that finished first among those not yet taken, or -1. */
int64_t dots_batch_finished_id(const dots_batch *b);
/* Takes finished run id: its result, or the error that ended it (the run is
 * gone either way). dots_batch_take is for dots_batch_add's runs,
 * dots_batch_take_page for pages (post-processed as dots_page_parse does). */
dots_status dots_batch_take(dots_ctx *ctx, dots_batch *b, int64_t id, dots_run_result *out);
dots_status dots_batch_take_page(dots_ctx *ctx, dots_batch *b, int64_t id, dots_page_result *out);
/* Ends run id at the next step with stop "cancelled" (a page: its take fails
 * with DOTS_ERR_CANCELLED); call it from the thread that drives the batch.
 * dots_state_cancel (any thread) ends every run. */
dots_status dots_batch_cancel(dots_ctx *ctx, dots_batch *b, int64_t id);
/* Bytes of KV cache the batch's runs hold now. */
int64_t dots_batch_kv_bytes(const dots_batch *b);

/* Writes len bytes to path so that it appears whole or not at all, even if
 * the process is killed, atomically replacing any file there (a temporary
 * file in the same directory, renamed). */
dots_status dots_write_file_atomic(dots_ctx *ctx, const char *path, const void *data, size_t len);

/* ------------------------------------------------------------ conversion */

typedef struct dots_convert_params {
    dots_dtype type;            /* the language model's matrices: BF16, F16, F32, Q8_0, Q4_0 or Q4_K */
    dots_dtype vision_type;     /* the vision tower's; DOTS_DTYPE_COUNT (the default) = type */
    int32_t threads;            /* quantization threads; 0 = all CPUs */
    const char *tokenizer_path; /* tokenizer.json to embed; NULL = the model's own */
    const char *mmproj_path;    /* NULL: one file with both towers. Else llama.cpp's pair: the
                                 * language model (with tokenizer.ggml.* metadata) at out_path and
                                 * the vision tower ("mmproj", arch clip) here */
} dots_convert_params;

/* Fills p with the defaults: BF16 for both towers, all CPUs, own tokenizer. */
void dots_convert_params_init(dots_convert_params *p);

/* Writes model as one self-contained GGUF file: both towers under
 * llama.cpp's tensor names and block layouts (ggml's reference quantizers,
 * bit for bit), llama.cpp's qwen2/clip metadata, and the checkpoint's config
 * files and tokenizer.json verbatim. Norms and biases stay F32; a matrix
 * whose rows are not whole blocks of the type falls back to Q8_0; the output
 * projection stays Q8_0 in 4-bit files. An unchanged encoding (bf16 ->
 * bf16) is copied bit for bit. dots_model_open() accepts the result in place
 * of the directory. Written to a temporary file and renamed.
 * With params->mmproj_path the towers go to two files laid out as llama.cpp
 * loads them (docs/formats.md §6); the LM file names its mmproj file (key
 * dotsocr.mmproj, a path relative to the LM file's directory), and
 * dots_model_open() on the LM file opens both. */
dots_status dots_convert_gguf(dots_ctx *ctx, const dots_model *model, const char *out_path,
                              const dots_convert_params *params);

/* ------------------------------------------------------- model generator */

typedef enum dots_preset {
    DOTS_PRESET_TINY = 0, /* vision 2x64 (4 heads), LM 2x64 (4/2 heads), real vocab */
    DOTS_PRESET_FULL      /* the real dots.ocr config (~6.1 GB in bf16) */
} dots_preset;

typedef struct dots_make_model_params {
    dots_preset preset;
    uint64_t seed;                /* same seed, same weights */
    dots_dtype dtype;             /* of every tensor; BF16 like the official checkpoint */
    int64_t max_shard_bytes;      /* 0: preset default (tiny: 2 shards; full: 5 GB) */
    bool sparse_zero;             /* write all-zero weights as file holes (fast, no disk) */
    const char *tokenizer_path;   /* a Qwen2 tokenizer.json (e.g. Qwen2.5), written into the model
                                     with the 45 dots.ocr added tokens of docs/model.md §8.2; or NULL */
} dots_make_model_params;

/* Fills p with the defaults: tiny, seed 0, BF16, preset sharding. */
void dots_make_model_params_init(dots_make_model_params *p);

/* Writes a random-weight checkpoint in the official layout into out_dir
 * (created if absent): config.json, generation_config.json,
 * preprocessor_config.json, model-0000k-of-0000n.safetensors shards and
 * model.safetensors.index.json. Each file is written to a temporary name and
 * renamed, so a crash leaves no half-written file under a final name. */
dots_status dots_make_model(dots_ctx *ctx, const char *out_dir, const dots_make_model_params *params);

#ifdef __cplusplus
}
#endif
#endif /* DOTSOCR_H */
