/*
 * test_config.c - config.json, generation_config.json and
 * preprocessor_config.json parsing: the official files give docs/model.md's
 * values, missing keys take defaults, and every bad value is rejected with a
 * message that names its key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config.h"

/* config.json as published with the checkpoint (docs/model.md §2.1-2.2). */
static const char official_config[] =
    "{\"architectures\": [\"DotsOCRForCausalLM\"], \"model_type\": \"dots_ocr\","
    " \"auto_map\": {\"AutoConfig\": \"configuration_dots.DotsOCRConfig\","
    "   \"AutoModelForCausalLM\": \"modeling_dots_ocr.DotsOCRForCausalLM\"},"
    " \"attention_bias\": true, \"attention_dropout\": 0.0, \"hidden_act\": \"silu\","
    " \"hidden_size\": 1536, \"initializer_range\": 0.02, \"intermediate_size\": 8960,"
    " \"max_position_embeddings\": 131072, \"max_window_layers\": 28, \"num_attention_heads\": 12,"
    " \"num_hidden_layers\": 28, \"num_key_value_heads\": 2, \"rms_norm_eps\": 1e-06,"
    " \"rope_scaling\": null, \"rope_theta\": 1000000, \"sliding_window\": 131072,"
    " \"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\", \"transformers_version\": \"4.51.0\","
    " \"use_cache\": true, \"use_sliding_window\": false, \"vocab_size\": 151936,"
    " \"image_token_id\": 151665, \"video_token_id\": 151656,"
    " \"vision_config\": {\"embed_dim\": 1536, \"hidden_size\": 1536, \"intermediate_size\": 4224,"
    "   \"num_hidden_layers\": 42, \"num_attention_heads\": 12, \"num_channels\": 3, \"patch_size\": 14,"
    "   \"post_norm\": true, \"rms_norm_eps\": 1e-05, \"spatial_merge_size\": 2, \"temporal_patch_size\": 1,"
    "   \"use_bias\": false, \"attn_implementation\": \"flash_attention_2\", \"init_merger_std\": 0.02,"
    "   \"initializer_range\": 0.02, \"is_causal\": false}}";

static void test_official_values(void **state) {
    (void)state;
    dots_config c;
    assert_int_equal(dots_config_parse(NULL, official_config, strlen(official_config), &c), DOTS_OK);
    assert_int_equal(c.text.hidden_size, 1536);
    assert_int_equal(c.text.num_hidden_layers, 28);
    assert_int_equal(c.text.num_attention_heads, 12);
    assert_int_equal(c.text.num_key_value_heads, 2);
    assert_int_equal(c.text.head_dim, 128);
    assert_int_equal(c.text.intermediate_size, 8960);
    assert_int_equal(c.text.vocab_size, 151936);
    assert_int_equal(c.text.image_token_id, 151665);
    assert_true(c.text.rope_theta == 1e6);
    assert_true(c.text.rms_norm_eps == 1e-6);
    assert_true(c.text.attention_bias);
    assert_false(c.text.tie_word_embeddings);
    assert_string_equal(c.text.hidden_act, "silu");
    assert_int_equal(c.vision.embed_dim, 1536);
    assert_int_equal(c.vision.num_hidden_layers, 42);
    assert_int_equal(c.vision.intermediate_size, 4224);
    assert_int_equal(c.vision.head_dim, 128);
    assert_int_equal(c.vision.patch_size, 14);
    assert_int_equal(c.vision.spatial_merge_size, 2);
    assert_true(c.vision.rms_norm_eps == 1e-5);
    assert_true(c.vision.post_norm);
    assert_string_equal(c.vision.attn_implementation, "flash_attention_2");
    /* the other parts keep their defaults */
    assert_int_equal(c.generation.n_eos_token_ids, 2);
    assert_int_equal(c.generation.eos_token_ids[0], 151643);
    assert_int_equal(c.generation.eos_token_ids[1], 151673);
    assert_int_equal(c.preprocessor.min_pixels, 3136);
    assert_int_equal(c.preprocessor.max_pixels, 11289600);
}

static void test_minimal_config_takes_defaults(void **state) {
    (void)state;
    dots_config c, d;
    const char *j = "{\"model_type\": \"dots_ocr\", \"hidden_size\": null}";
    assert_int_equal(dots_config_parse(NULL, j, strlen(j), &c), DOTS_OK);
    dots_config_init_default(&d);
    assert_memory_equal(&c.text, &d.text, sizeof c.text);
    assert_memory_equal(&c.vision, &d.vision, sizeof c.vision);
}

/* Replaces the first occurrence of from with to in the official config. */
static void expect_bad(const char *from, const char *to, dots_status want, const char *needle) {
    char buf[8192];
    const char *p = strstr(official_config, from);
    assert_non_null(p);
    size_t pre = (size_t)(p - official_config);
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)pre, official_config, to, p + strlen(from));
    dots_ctx *ctx = NULL;
    dots_ctx_create(&ctx);
    dots_config c;
    memset(&c, 0x5a, sizeof c);
    dots_config before = c;
    dots_status st = dots_config_parse(ctx, buf, strlen(buf), &c);
    if (st != want) fprintf(stderr, "%s -> %s: got %d '%s'\n", from, to, st, dots_errmsg(ctx));
    assert_int_equal(st, want);
    assert_memory_equal(&c, &before, sizeof c); /* untouched on failure */
    if (!strstr(dots_errmsg(ctx), needle)) fail_msg("message '%s' lacks '%s'", dots_errmsg(ctx), needle);
    dots_ctx_free(ctx);
}

static void test_bad_values_name_their_key(void **state) {
    (void)state;
    expect_bad("\"model_type\": \"dots_ocr\"", "\"model_type\": \"qwen2\"", DOTS_ERR_CONFIG, "model_type");
    expect_bad("\"model_type\": \"dots_ocr\",", "", DOTS_ERR_CONFIG, "model_type: missing");
    expect_bad("\"hidden_size\": 1536, \"initializer", "\"hidden_size\": 1537, \"initializer", DOTS_ERR_CONFIG,
               "num_attention_heads");
    expect_bad("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 5", DOTS_ERR_CONFIG, "num_key_value_heads");
    expect_bad("\"num_hidden_layers\": 28", "\"num_hidden_layers\": \"28\"", DOTS_ERR_CONFIG,
               "num_hidden_layers: must be an integer");
    expect_bad("\"num_hidden_layers\": 28", "\"num_hidden_layers\": 28.0", DOTS_ERR_CONFIG, "num_hidden_layers");
    expect_bad("\"num_hidden_layers\": 28", "\"num_hidden_layers\": -1", DOTS_ERR_CONFIG, "num_hidden_layers");
    expect_bad("\"vocab_size\": 151936", "\"vocab_size\": 99999999999", DOTS_ERR_CONFIG, "vocab_size");
    expect_bad("\"vocab_size\": 151936", "\"vocab_size\": 1000", DOTS_ERR_CONFIG, "image_token_id");
    expect_bad("\"rms_norm_eps\": 1e-06", "\"rms_norm_eps\": 0", DOTS_ERR_CONFIG, "rms_norm_eps");
    expect_bad("\"rope_theta\": 1000000", "\"rope_theta\": -5", DOTS_ERR_CONFIG, "rope_theta");
    expect_bad("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"", DOTS_ERR_UNSUPPORTED, "hidden_act");
    expect_bad("\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"mrope\"}", DOTS_ERR_UNSUPPORTED,
               "rope_scaling");
    expect_bad("\"use_sliding_window\": false", "\"use_sliding_window\": true", DOTS_ERR_UNSUPPORTED,
               "use_sliding_window");
    expect_bad("\"tie_word_embeddings\": false", "\"tie_word_embeddings\": 0", DOTS_ERR_CONFIG,
               "tie_word_embeddings");
    expect_bad("\"embed_dim\": 1536", "\"embed_dim\": 1540", DOTS_ERR_CONFIG, "vision_config.num_attention_heads");
    expect_bad("\"embed_dim\": 1536", "\"embed_dim\": 1560", DOTS_ERR_CONFIG, "multiple of 4");
    expect_bad("\"hidden_size\": 1536, \"intermediate_size\": 4224", "\"hidden_size\": 1024, \"intermediate_size\": 4224",
               DOTS_ERR_CONFIG, "vision_config.hidden_size");
    expect_bad("\"patch_size\": 14", "\"patch_size\": 0", DOTS_ERR_CONFIG, "vision_config.patch_size");
    expect_bad("\"temporal_patch_size\": 1", "\"temporal_patch_size\": 2", DOTS_ERR_UNSUPPORTED, "temporal_patch_size");
    expect_bad("\"num_channels\": 3", "\"num_channels\": 4", DOTS_ERR_UNSUPPORTED, "num_channels");
    expect_bad("\"use_bias\": false", "\"use_bias\": true", DOTS_ERR_UNSUPPORTED, "use_bias");
    expect_bad("\"is_causal\": false", "\"is_causal\": true", DOTS_ERR_UNSUPPORTED, "is_causal");
    expect_bad("\"vision_config\": {", "\"vision_config\": 5, \"x\": {", DOTS_ERR_CONFIG, "vision_config");
    expect_bad("\"torch_dtype\": \"bfloat16\"", "\"torch_dtype\": \"bfloat16bfloat16bfloat16\"", DOTS_ERR_CONFIG,
               "torch_dtype");
    expect_bad("{\"architectures\"", "{\"architectures\": 1, \"x\"", DOTS_ERR_CONFIG, "architectures");
    expect_bad("\"model_type\": \"dots_ocr\",", "\"model_type\": \"dots_ocr\", \"model_type\": \"dots_ocr\",",
               DOTS_ERR_FORMAT, "duplicate");
}

static void test_not_json(void **state) {
    (void)state;
    dots_ctx *ctx = NULL;
    dots_ctx_create(&ctx);
    dots_config c;
    assert_int_equal(dots_config_parse(ctx, "{\"model_type\": ", 15, &c), DOTS_ERR_FORMAT);
    assert_non_null(strstr(dots_errmsg(ctx), "config.json"));
    assert_int_equal(dots_config_parse(ctx, "[]", 2, &c), DOTS_ERR_FORMAT);
    assert_int_equal(dots_config_parse(ctx, NULL, 2, &c), DOTS_ERR_INVALID_ARGUMENT);
    dots_ctx_free(ctx);
}

static void test_generation_config(void **state) {
    (void)state;
    dots_config c;
    dots_config_init_default(&c);
    const char *j = "{\"eos_token_id\": [151643, 151673], \"max_length\": 32768}";
    assert_int_equal(dots_generation_config_parse(NULL, j, strlen(j), &c), DOTS_OK);
    assert_true(c.has_generation_config);
    assert_int_equal(c.generation.n_eos_token_ids, 2);
    const char *one = "{\"eos_token_id\": 7, \"temperature\": 0.1, \"top_p\": 0.9}";
    assert_int_equal(dots_generation_config_parse(NULL, one, strlen(one), &c), DOTS_OK);
    assert_int_equal(c.generation.n_eos_token_ids, 1);
    assert_int_equal(c.generation.eos_token_ids[0], 7);
    assert_true(c.generation.top_p == 0.9);
    dots_ctx *ctx = NULL;
    dots_ctx_create(&ctx);
    const char *bad[] = {"{\"eos_token_id\": []}", "{\"eos_token_id\": [\"x\"]}", "{\"eos_token_id\": -1}",
                         "{\"max_length\": 0}", "{\"top_p\": 2}", "{\"eos_token_id\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(dots_generation_config_parse(ctx, bad[i], strlen(bad[i]), &c), DOTS_ERR_CONFIG);
        assert_non_null(strstr(dots_errmsg(ctx), "generation_config.json"));
        dots_ctx_clear_error(ctx);
    }
    dots_config_init_default(&c);
    c.generation.eos_token_ids[0] = 200000;
    assert_int_equal(dots_config_check_consistency(ctx, &c), DOTS_ERR_CONFIG);
    dots_ctx_free(ctx);
}

static void test_preprocessor_config(void **state) {
    (void)state;
    dots_config c;
    dots_config_init_default(&c);
    const char *j = "{\"min_pixels\": 3136, \"max_pixels\": 11289600, \"patch_size\": 14, \"merge_size\": 2,"
                    " \"image_mean\": [0.5, 0.5, 0.5], \"image_std\": [0.25, 0.25, 0.25]}";
    assert_int_equal(dots_preprocessor_config_parse(NULL, j, strlen(j), &c), DOTS_OK);
    assert_true(c.preprocessor.image_mean[1] == 0.5f);
    assert_true(c.preprocessor.image_std[2] == 0.25f);
    assert_int_equal(dots_config_check_consistency(NULL, &c), DOTS_OK);
    const char *sz = "{\"size\": {\"shortest_edge\": 1000, \"longest_edge\": 2000000}}";
    assert_int_equal(dots_preprocessor_config_parse(NULL, sz, strlen(sz), &c), DOTS_OK);
    assert_int_equal(c.preprocessor.min_pixels, 1000);
    assert_int_equal(c.preprocessor.max_pixels, 2000000);
    dots_ctx *ctx = NULL;
    dots_ctx_create(&ctx);
    const char *bad[] = {"{\"min_pixels\": 5000, \"max_pixels\": 4000}", "{\"image_std\": [0.2, 0, 0.2]}",
                         "{\"image_mean\": [0.2, 0.2]}", "{\"max_pixels\": 1e20}", "{\"patch_size\": -14}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(dots_preprocessor_config_parse(ctx, bad[i], strlen(bad[i]), &c), DOTS_ERR_CONFIG);
        dots_ctx_clear_error(ctx);
    }
    const char *mismatch = "{\"patch_size\": 16}";
    assert_int_equal(dots_preprocessor_config_parse(ctx, mismatch, strlen(mismatch), &c), DOTS_OK);
    assert_int_equal(dots_config_check_consistency(ctx, &c), DOTS_ERR_CONFIG);
    assert_non_null(strstr(dots_errmsg(ctx), "patch_size"));
    dots_ctx_free(ctx);
}

static void test_json_round_trip(void **state) {
    (void)state;
    dots_config c, back;
    dots_config_init_default(&c);
    c.text.hidden_size = 64;
    c.text.num_attention_heads = 4;
    c.vision.embed_dim = 64;
    c.vision.hidden_size = 64;
    c.vision.num_attention_heads = 4;
    char *a, *b, *p;
    assert_int_equal(dots_config_to_json(NULL, &c, &a, &b, &p), DOTS_OK);
    assert_int_equal(dots_config_parse(NULL, a, strlen(a), &back), DOTS_OK);
    assert_int_equal(dots_generation_config_parse(NULL, b, strlen(b), &back), DOTS_OK);
    assert_int_equal(dots_preprocessor_config_parse(NULL, p, strlen(p), &back), DOTS_OK);
    c.text.head_dim = 16;
    c.vision.head_dim = 16;
    assert_memory_equal(&c.text, &back.text, sizeof c.text);
    assert_memory_equal(&c.vision, &back.vision, sizeof c.vision);
    assert_memory_equal(&c.generation, &back.generation, sizeof c.generation);
    assert_memory_equal(&c.preprocessor, &back.preprocessor, sizeof c.preprocessor);
    free(a);
    free(b);
    free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_official_values),     cmocka_unit_test(test_minimal_config_takes_defaults),
        cmocka_unit_test(test_bad_values_name_their_key), cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_generation_config),   cmocka_unit_test(test_preprocessor_config),
        cmocka_unit_test(test_json_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
