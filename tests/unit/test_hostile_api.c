/*
 * test_hostile_api.c - the library's public calls given what a hostile or
 * careless caller passes (label hostile): every failing call states its own
 * error (the previous one is cleared on entry), arguments are checked, and
 * lying documents from memory are refused or bounded.
 *
 * Environment: DOTS_TEST_MODEL (a tiny model), DOTS_TEST_IMAGE (a page).
 */
#include "api_fixture.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Finding 12: a later failing call left the earlier message and code. */
static void test_errors_are_cleared_on_entry(void **state) {
    fixture *f = *state;
    dots_document *doc = NULL;
    assert_int_equal(dots_document_open_memory(f->ctx, "not an image", 12, "junk", &doc), DOTS_ERR_FORMAT);
    assert_null(doc);
    const char *first = dots_errmsg(f->ctx);
    assert_non_null(strstr(first, "junk"));
    int32_t h, w;
    assert_int_equal(dots_smart_resize(f->ctx, 0, 0, 28, 3136, 11289600, &h, &w), DOTS_ERR_INVALID_ARGUMENT);
    assert_null(strstr(dots_errmsg(f->ctx), "junk"));
    assert_non_null(strstr(dots_errmsg(f->ctx), "empty"));
    assert_int_equal(dots_errcode(f->ctx), DOTS_ERR_INVALID_ARGUMENT);
    dots_image small = {2, 2, (uint8_t[12]){0}}, big = {0};
    assert_int_not_equal(dots_image_resize_bicubic(f->ctx, &small, 100000, 100000, &big), DOTS_OK);
    assert_null(strstr(dots_errmsg(f->ctx), "empty"));
    assert_int_equal(dots_smart_resize(f->ctx, 100, 100, 28, 3136, 11289600, &h, &w), DOTS_OK);
    assert_string_equal(dots_errmsg(f->ctx), "");
    /* arguments are checked */
    dots_page_options o;
    dots_page_options_init(&o);
    dots_page_result r = {0};
    assert_int_equal(dots_page_parse(f->ctx, f->st, NULL, 0, &o, &r), DOTS_ERR_INVALID_ARGUMENT);
    assert_int_equal(dots_document_open_memory(f->ctx, "x", 0, NULL, &doc), DOTS_ERR_FORMAT);
    assert_int_equal(dots_document_open(f->ctx, env("DOTS_TEST_IMAGE"), &doc), DOTS_OK);
    o.dpi = 5000;
    assert_int_equal(dots_page_parse(f->ctx, f->st, doc, 0, &o, &r), DOTS_ERR_INVALID_ARGUMENT);
    o.dpi = 0;
    assert_int_equal(dots_page_parse(f->ctx, f->st, doc, 1, &o, &r), DOTS_ERR_INVALID_ARGUMENT);
    dots_document_close(doc);
    assert_int_equal(dots_model_place(f->ctx, NULL, DOTS_PLACE_AUTO), DOTS_ERR_INVALID_ARGUMENT);
    assert_int_equal(dots_write_file_atomic(f->ctx, NULL, "", 0), DOTS_ERR_INVALID_ARGUMENT);
}

/* Finding 3 through the API: a PDF whose page tree lies is bounded by what
 * the file holds, and the missing page says so. */
static void test_lying_pdf_from_memory(void **state) {
    fixture *f = *state;
    /* a minimal one-page PDF whose /Count claims two billion pages */
    const char *pdf =
        "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        "2 0 obj<</Type/Pages/Kids[3 0 R]/Count 2000000000>>endobj\n"
        "3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 100 100]>>endobj\n"
        "trailer<</Root 1 0 R>>\n%%EOF\n";
    dots_document *doc = NULL;
    assert_int_equal(dots_document_open_memory(f->ctx, pdf, strlen(pdf), "liar.pdf", &doc), DOTS_OK);
    int32_t n = dots_document_n_pages(doc);
    assert_true(n >= 1 && n <= 8);
    dots_image img = {0};
    assert_int_equal(dots_document_render_page(f->ctx, doc, 0, 72, &img, NULL), DOTS_OK);
    dots_image_free(&img);
    if (n > 1) {
        assert_int_equal(dots_document_render_page(f->ctx, doc, 1, 72, &img, NULL), DOTS_ERR_FORMAT);
        assert_true(dots_document_page_missing(doc, 1));
        assert_non_null(strstr(dots_errmsg(f->ctx), "missing"));
    }
    assert_false(dots_document_page_missing(doc, 0));
    dots_document_close(doc);
}

/* Truncated images from memory fail; they never decode to partial pixels. */
static void test_truncated_images_from_memory(void **state) {
    fixture *f = *state;
    FILE *fp = fopen(env("DOTS_TEST_IMAGE"), "rb");
    assert_non_null(fp);
    unsigned char *buf = malloc(1 << 22);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 1 << 22, fp);
    fclose(fp);
    assert_true(n > 1000);
    for (size_t cut = 8; cut < n; cut = cut * 3 + 1) {
        dots_document *doc = NULL;
        dots_status s = dots_document_open_memory(f->ctx, buf, cut, "cut.png", &doc);
        assert_int_not_equal(s, DOTS_OK);
        assert_null(doc);
        assert_true(strlen(dots_errmsg(f->ctx)) > 0 && strchr(dots_errmsg(f->ctx), '\n') == NULL);
    }
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_are_cleared_on_entry),
        cmocka_unit_test(test_lying_pdf_from_memory),
        cmocka_unit_test(test_truncated_images_from_memory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
