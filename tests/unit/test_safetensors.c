/*
 * test_safetensors.c - the safetensors reader against crafted files: every
 * validation rule has a case that breaks exactly that rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

typedef struct file_buf {
    uint8_t *data;
    uint64_t size;
} file_buf;

/* [8-byte length][header][data_bytes of 0xAB]; declared_len overrides N when >= 0. */
static file_buf make_file(const char *header, size_t data_bytes, int64_t declared_len) {
    size_t hl = strlen(header);
    file_buf f;
    f.size = 8 + hl + data_bytes;
    f.data = malloc(f.size ? f.size : 1);
    assert_non_null(f.data);
    uint64_t n = declared_len >= 0 ? (uint64_t)declared_len : hl;
    for (int i = 0; i < 8; i++) f.data[i] = (uint8_t)(n >> (8 * i));
    memcpy(f.data + 8, header, hl);
    memset(f.data + 8 + hl, 0xAB, data_bytes);
    return f;
}

static dots_status parse(const char *header, size_t data_bytes, dots_st_header *h, dots_ctx *ctx) {
    file_buf f = make_file(header, data_bytes, -1);
    dots_status st = dots_st_parse(ctx, "t.safetensors", f.data, f.size, h);
    free(f.data);
    return st;
}

static void expect_error(const char *header, size_t data_bytes, dots_status want, const char *needle) {
    dots_ctx *ctx = NULL;
    assert_int_equal(dots_ctx_create(&ctx), DOTS_OK);
    dots_st_header h = {0};
    dots_status st = parse(header, data_bytes, &h, ctx);
    if (st != want) fprintf(stderr, "header %s: got %d (%s)\n", header, st, dots_errmsg(ctx));
    assert_int_equal(st, want);
    assert_null(h.tensors); /* out untouched on failure */
    const char *msg = dots_errmsg(ctx);
    assert_non_null(strstr(msg, "t.safetensors"));
    assert_null(strchr(msg, '\n'));
    if (needle && !strstr(msg, needle)) fail_msg("message '%s' lacks '%s'", msg, needle);
    dots_ctx_free(ctx);
}

static void test_valid_two_tensors(void **state) {
    (void)state;
    dots_st_header h = {0};
    const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]},"
                      "\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]}}";
    assert_int_equal(parse(hdr, 20, &h, NULL), DOTS_OK);
    assert_int_equal(h.n_tensors, 2);
    assert_string_equal(h.tensors[0].name, "b");
    assert_int_equal(h.tensors[0].dtype, DOTS_ST_F32);
    assert_int_equal(h.tensors[1].n_dims, 2);
    assert_int_equal(h.tensors[1].shape[1], 3);
    assert_int_equal(h.tensors[1].n_elements, 6);
    assert_int_equal(h.data_offset, 8 + strlen(hdr));
    dots_st_header_free(&h);
}

static void test_empty_and_zero_sized(void **state) {
    (void)state;
    dots_st_header h = {0};
    assert_int_equal(parse("{}", 0, &h, NULL), DOTS_OK);
    assert_int_equal(h.n_tensors, 0);
    dots_st_header_free(&h);
    assert_int_equal(parse("{\"z\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[0,0]},"
                           "\"s\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[0,2]}}",
                           2, &h, NULL),
                     DOTS_OK);
    assert_int_equal(h.n_tensors, 2);
    dots_st_header_free(&h);
}

static void test_too_short(void **state) {
    (void)state;
    uint8_t b[7] = {0};
    dots_ctx *ctx = NULL;
    dots_ctx_create(&ctx);
    dots_st_header h = {0};
    assert_int_equal(dots_st_parse(ctx, "t.safetensors", b, sizeof b, &h), DOTS_ERR_FORMAT);
    assert_int_equal(dots_st_parse(ctx, "t.safetensors", NULL, 0, &h), DOTS_ERR_FORMAT);
    dots_ctx_free(ctx);
}

static void test_header_length_rules(void **state) {
    (void)state;
    dots_ctx *ctx = NULL;
    dots_ctx_create(&ctx);
    dots_st_header h = {0};
    file_buf f = make_file("{}", 0, 1000); /* past EOF */
    assert_int_equal(dots_st_parse(ctx, "t.safetensors", f.data, f.size, &h), DOTS_ERR_FORMAT);
    assert_non_null(strstr(dots_errmsg(ctx), "past the end"));
    free(f.data);
    dots_ctx_clear_error(ctx);
    f = make_file("{}", 0, (int64_t)100000001); /* over the limit */
    assert_int_equal(dots_st_parse(ctx, "t.safetensors", f.data, f.size, &h), DOTS_ERR_FORMAT);
    assert_non_null(strstr(dots_errmsg(ctx), "limit"));
    free(f.data);
    dots_ctx_clear_error(ctx);
    f = make_file("{}", 0, INT64_MAX); /* huge: must not wrap */
    assert_int_equal(dots_st_parse(ctx, "t.safetensors", f.data, f.size, &h), DOTS_ERR_FORMAT);
    free(f.data);
    dots_ctx_free(ctx);
}

static void test_bad_json(void **state) {
    (void)state;
    expect_error("{\"a\":", 0, DOTS_ERR_FORMAT, "not valid JSON");
    expect_error("[1,2]  ", 0, DOTS_ERR_FORMAT, "not a JSON object");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                 8, DOTS_ERR_FORMAT, "not valid JSON");
    expect_error("{\"\xff\xfe\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, DOTS_ERR_FORMAT,
                 "not valid JSON");
    expect_error("{\"__metadata__\":{\"k\":1}}", 0, DOTS_ERR_FORMAT, "__metadata__");
    expect_error("{\"a\":5}", 0, DOTS_ERR_FORMAT, "not a JSON object");
}

static void test_bad_fields(void **state) {
    (void)state;
    expect_error("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, DOTS_ERR_FORMAT, "unknown dtype");
    expect_error("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, DOTS_ERR_FORMAT, "dtype");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, DOTS_ERR_FORMAT, "shape[0]");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, DOTS_ERR_FORMAT, "shape[0]");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":7,\"data_offsets\":[0,4]}}", 4, DOTS_ERR_FORMAT, "shape");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, DOTS_ERR_FORMAT, "data_offsets");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, DOTS_ERR_FORMAT, "data_offsets");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, DOTS_ERR_FORMAT, "< begin");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
                 DOTS_ERR_LIMIT, "dimensions");
    expect_error("{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, DOTS_ERR_FORMAT, "name");
}

static void test_size_rules(void **state) {
    (void)state;
    /* dtype size mismatch: 3 F32 need 12 bytes */
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, DOTS_ERR_FORMAT, "needs 12");
    /* shape product overflow */
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
                 DOTS_ERR_FORMAT, "overflow");
    /* numel fits, bytes overflow */
    expect_error("{\"a\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,4]}}", 4,
                 DOTS_ERR_FORMAT, "overflow");
}

static void test_tiling_rules(void **state) {
    (void)state;
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                 12, DOTS_ERR_FORMAT, "overlaps");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                 12, DOTS_ERR_FORMAT, "hole");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, DOTS_ERR_FORMAT, "hole");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, DOTS_ERR_FORMAT,
                 "past the end");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 9, DOTS_ERR_FORMAT, "trailing");
    /* two copies of the same range */
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                 4, DOTS_ERR_FORMAT, "overlaps");
}

static void test_messages_stay_one_line(void **state) {
    (void)state;
    expect_error("{\"evil\\nname\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, DOTS_ERR_FORMAT,
                 "evil?name");
}

static void test_writer_round_trip(void **state) {
    (void)state;
    dots_st_entry e[3] = {
        {"x.weight", DOTS_ST_BF16, 2, {3, 5}},
        {"x.bias", DOTS_ST_F32, 1, {3}},
        {"odd", DOTS_ST_F16, 1, {1}},
    };
    char *hdr = NULL;
    size_t len = 0;
    uint64_t data = 0;
    assert_int_equal(dots_st_build_header(NULL, e, 3, &hdr, &len, &data), DOTS_OK);
    assert_int_equal(len % 8, 0);
    assert_int_equal(data, 30 + 12 + 2);
    uint8_t *file = calloc(1, len + data);
    memcpy(file, hdr, len);
    dots_st_header h = {0};
    assert_int_equal(dots_st_parse(NULL, "rt", file, len + data, &h), DOTS_OK);
    assert_int_equal(h.n_tensors, 3);
    assert_int_equal(h.data_offset % 8, 0);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(h.tensors[i].name, e[i].name);
        assert_int_equal(h.tensors[i].dtype, e[i].dtype);
        assert_int_equal(h.tensors[i].shape[0], e[i].shape[0]);
    }
    assert_int_equal(h.tensors[2].begin, 42);
    dots_st_header_free(&h);
    free(file);
    free(hdr);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_two_tensors),  cmocka_unit_test(test_empty_and_zero_sized),
        cmocka_unit_test(test_too_short),          cmocka_unit_test(test_header_length_rules),
        cmocka_unit_test(test_bad_json),           cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_size_rules),         cmocka_unit_test(test_tiling_rules),
        cmocka_unit_test(test_messages_stay_one_line), cmocka_unit_test(test_writer_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
