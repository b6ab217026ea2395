/*
 * test_model.c - generated checkpoints open and bind: counts and parameter
 * numbers computed here from docs/model.md's formulas (not from the loader's
 * tables), every layout the generator can write (sharded, single file, each
 * dtype), reproducibility, and the API's argument checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fp.h"
#include "model/weights.h"

static char g_tmp[4200];

static const char *tmp_dir(const char *name) {
    static char buf[4096];
    const char *base = getenv("DOTS_TEST_TMP");
    snprintf(buf, sizeof buf, "%s/model_%s", base ? base : "/tmp", name);
    return buf;
}

static dots_model *make_and_open(const char *name, const dots_make_model_params *p) {
    snprintf(g_tmp, sizeof g_tmp, "%s", tmp_dir(name));
    dots_ctx *ctx = NULL;
    assert_int_equal(dots_ctx_create(&ctx), DOTS_OK);
    dots_status st = dots_make_model(ctx, g_tmp, p);
    if (st != DOTS_OK) fail_msg("make_model: %s", dots_errmsg(ctx));
    dots_model *m = NULL;
    st = dots_model_open(ctx, g_tmp, &m);
    if (st != DOTS_OK) fail_msg("open: %s", dots_errmsg(ctx));
    dots_ctx_free(ctx);
    return m;
}

/* Parameter counts of docs/model.md §1/§3 for a config, from the formulas. */
static void expected_counts(const dots_config *c, int64_t *vision, int64_t *lm, int64_t *n_tensors) {
    const dots_text_config *t = &c->text;
    const dots_vision_config *v = &c->vision;
    int64_t H = t->hidden_size, hd = H / t->num_attention_heads, K = t->num_key_value_heads * hd;
    int64_t layer = H + (H * H + H) + 2 * (K * H + K) + H * H + H + 3 * H * t->intermediate_size;
    *lm = 2 * (int64_t)t->vocab_size * H + t->num_hidden_layers * layer + H;
    int64_t D = v->embed_dim, M = 4 * D;
    int64_t block = 2 * D + 3 * D * D + D * D + 3 * D * v->intermediate_size;
    *vision = (D * 3 * 14 * 14 + D + D) + v->num_hidden_layers * block + D + (2 * D + M * M + M + v->hidden_size * M + v->hidden_size);
    *n_tensors = (1 + 12 * t->num_hidden_layers + 2) + (3 + 7 * v->num_hidden_layers + 1 + 6);
}

static void test_tiny_sharded(void **state) {
    (void)state;
    dots_make_model_params p;
    dots_make_model_params_init(&p);
    dots_model *m = make_and_open("tiny", &p);
    dots_model_info info;
    assert_int_equal(dots_model_get_info(m, &info), DOTS_OK);
    int64_t vision, lm, nt;
    expected_counts(dots_model_config(m), &vision, &lm, &nt);
    assert_int_equal(info.n_tensors, nt);
    assert_int_equal(info.n_tensors, 51);
    assert_int_equal(info.n_params_vision, vision);
    assert_int_equal(info.n_params_lm, lm);
    assert_int_equal(info.n_params, vision + lm);
    assert_int_equal(info.n_tensors_unused, 0);
    assert_int_equal(info.n_files, 2);
    assert_int_equal(info.bytes_by_dtype[DOTS_DTYPE_BF16], 2 * info.n_params);
    assert_int_equal(dots_model_config(m)->text.vocab_size, 151936);
    assert_true(dots_model_config(m)->has_generation_config);
    assert_true(dots_model_config(m)->has_preprocessor_config);
    char idx[8300];
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", g_tmp);
    assert_int_equal(access(idx, R_OK), 0);

    const dots_weights *w = dots_model_weights(m);
    assert_int_equal(w->lm.n_layers, 2);
    assert_string_equal(w->lm.layers[1].k_b->name, "model.layers.1.self_attn.k_proj.bias");
    assert_int_equal(w->lm.layers[1].k_w->shape[0], 32); /* 2 kv heads x 16 */
    assert_int_equal(w->vision.blocks[1].qkv->shape[0], 192);
    assert_int_equal(w->vision.patch_proj_w->n_dims, 4);
    assert_int_equal(w->vision.merger_fc0_w->shape[0], 256);
    assert_non_null(w->vision.post_trunk_norm);
    assert_ptr_not_equal(w->lm.lm_head, w->lm.embed);
    /* norm weights are 1 +- 0.1, linear weights within +-sqrt(3/fan_in) */
    const uint16_t *norm = w->lm.norm->data;
    for (int i = 0; i < 64; i++) {
        float x = dots_bf16_to_f32(norm[i]);
        assert_true(x > 0.89f && x < 1.11f);
    }
    const uint16_t *q = w->lm.layers[0].q_w->data;
    float mx = 0;
    for (int i = 0; i < 64 * 64; i++) {
        float x = dots_bf16_to_f32(q[i]);
        mx = x > mx ? x : mx;
        assert_true(x > -0.22f && x < 0.22f);
    }
    assert_true(mx > 0.15f); /* not all zeros */
    dots_model_close(m);
}

static void test_single_file_and_dtypes(void **state) {
    (void)state;
    const dots_dtype dts[3] = {DOTS_DTYPE_F32, DOTS_DTYPE_F16, DOTS_DTYPE_BF16};
    for (int k = 0; k < 3; k++) {
        dots_make_model_params p;
        dots_make_model_params_init(&p);
        p.dtype = dts[k];
        p.max_shard_bytes = (int64_t)1 << 40;
        dots_model *m = make_and_open("single", &p);
        dots_model_info info;
        dots_model_get_info(m, &info);
        assert_int_equal(info.n_files, 1);
        assert_non_null(strstr(dots_model_file_path(m, 0), "/model.safetensors"));
        assert_int_equal(info.bytes_by_dtype[dts[k]], (dts[k] == DOTS_DTYPE_F32 ? 4 : 2) * info.n_params);
        const dots_weights *w = dots_model_weights(m);
        assert_int_equal(w->lm.embed->dtype, dts[k]);
        dots_model_close(m);
    }
}

static void test_many_shards_and_reproducible(void **state) {
    (void)state;
    dots_make_model_params p;
    dots_make_model_params_init(&p);
    p.seed = 7;
    p.max_shard_bytes = 1 << 20; /* every big tensor in its own shard */
    dots_model *a = make_and_open("shards", &p);
    dots_model_info info;
    dots_model_get_info(a, &info);
    assert_true(info.n_files > 3);
    /* Same seed with another split: same values. Other seed: other values. */
    dots_make_model_params q = p;
    q.max_shard_bytes = 0;
    dots_model *b = make_and_open("shards2", &q);
    const dots_weights *wa = dots_model_weights(a), *wb = dots_model_weights(b);
    assert_memory_equal(wa->vision.blocks[0].fc2->data, wb->vision.blocks[0].fc2->data, 64 * 128 * 2);
    assert_memory_equal(wa->lm.embed->data, wb->lm.embed->data, 151936 * 64 * 2);
    q.seed = 8;
    dots_model *c = make_and_open("shards3", &q);
    const dots_weights *wc = dots_model_weights(c);
    assert_memory_not_equal(wa->vision.blocks[0].fc2->data, wc->vision.blocks[0].fc2->data, 64 * 128 * 2);
    dots_model_close(a);
    dots_model_close(b);
    dots_model_close(c);
}

static void test_argument_checks(void **state) {
    (void)state;
    dots_ctx *ctx = NULL;
    assert_int_equal(dots_ctx_create(NULL), DOTS_ERR_INVALID_ARGUMENT);
    assert_int_equal(dots_ctx_create(&ctx), DOTS_OK);
    dots_model *m = (dots_model *)0x1;
    assert_int_equal(dots_model_open(ctx, NULL, &m), DOTS_ERR_INVALID_ARGUMENT);
    assert_int_equal(dots_model_open(ctx, "/nonexistent/dir", &m), DOTS_ERR_IO);
    assert_ptr_equal(m, (dots_model *)0x1);
    assert_non_null(strstr(dots_errmsg(ctx), "/nonexistent/dir"));
    assert_int_equal(dots_errcode(ctx), DOTS_ERR_IO);
    /* a file is read as GGUF: a text file is not one */
    assert_int_equal(dots_model_open(ctx, "/etc/hostname", &m), DOTS_ERR_FORMAT);
    assert_non_null(strstr(dots_errmsg(ctx), "not a GGUF file"));
    assert_int_equal(dots_model_open(ctx, "x.gguf", &m), DOTS_ERR_IO);
    assert_int_equal(dots_model_open(ctx, "/tmp", &m), DOTS_ERR_IO); /* no config.json */
    assert_non_null(strstr(dots_errmsg(ctx), "config.json"));
    assert_int_equal(dots_make_model(ctx, NULL, NULL), DOTS_ERR_INVALID_ARGUMENT);
    dots_make_model_params p;
    dots_make_model_params_init(&p);
    p.preset = (dots_preset)9;
    assert_int_equal(dots_make_model(ctx, tmp_dir("bad"), &p), DOTS_ERR_INVALID_ARGUMENT);
    p.preset = DOTS_PRESET_TINY;
    assert_int_equal(dots_make_model(ctx, "/nonexistent/a/b", &p), DOTS_ERR_IO);
    dots_model_info info;
    assert_int_equal(dots_model_get_info(NULL, &info), DOTS_ERR_INVALID_ARGUMENT);
    assert_null(dots_model_config(NULL));
    assert_null(dots_model_file_path(NULL, 0));
    dots_model_close(NULL);
    dots_ctx_free(NULL);
    assert_string_equal(dots_strerror(DOTS_ERR_TENSOR), "bad tensor");
    assert_string_equal(dots_strerror((dots_status)999), "unknown status");
    dots_ctx_free(ctx);
}

static void log_count(dots_log_level level, const char *msg, void *user) {
    (void)msg;
    if (level == DOTS_LOG_WARN) (*(int *)user)++;
}

static void test_log_callback_and_levels(void **state) {
    (void)state;
    dots_ctx *ctx = NULL;
    dots_ctx_create(&ctx);
    int warnings = 0;
    dots_ctx_set_log(ctx, log_count, &warnings, DOTS_LOG_DEBUG);
    dots_make_model_params p;
    dots_make_model_params_init(&p);
    assert_int_equal(dots_make_model(ctx, tmp_dir("log"), &p), DOTS_OK);
    /* a clean generated model opens without a single warning */
    dots_model *m = NULL;
    assert_int_equal(dots_model_open(ctx, tmp_dir("log"), &m), DOTS_OK);
    assert_int_equal(warnings, 0);
    dots_model_close(m);
    dots_ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_sharded),
        cmocka_unit_test(test_single_file_and_dtypes),
        cmocka_unit_test(test_many_shards_and_reproducible),
        cmocka_unit_test(test_argument_checks),
        cmocka_unit_test(test_log_callback_and_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
