/*
 * test_api.c - the page API through the public header alone (label api):
 * documents from memory and from a path give the same page; the CLI writes
 * the library's bytes; run --bbox and parse --bbox mean the same pixels;
 * cancellation from another thread. (Failed calls: test_hostile_api.c.)
 *
 * Environment: DOTS_TEST_MODEL (a tiny model), DOTS_TEST_CLI (the dotsocr
 * binary), DOTS_TEST_IMAGE (a page), DOTS_TEST_TMP (scratch).
 */
#include "api_fixture.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) b[n] = 0;
    *len = (size_t)n;
    return b;
}


static void same_result(const dots_page_result *a, const dots_page_result *b) {
    assert_string_equal(a->answer, b->answer);
    assert_int_equal(a->source_width_px, b->source_width_px);
    assert_int_equal(a->model_width_px, b->model_width_px);
    assert_int_equal(a->n_cells, b->n_cells);
    assert_true((a->json == NULL) == (b->json == NULL));
    if (a->json) assert_string_equal(a->json, b->json);
    assert_true((a->markdown == NULL) == (b->markdown == NULL));
    if (a->markdown) assert_string_equal(a->markdown, b->markdown);
    assert_int_equal(a->layout_jpeg_len, b->layout_jpeg_len);
    if (a->layout_jpeg_len) assert_memory_equal(a->layout_jpeg, b->layout_jpeg, a->layout_jpeg_len);
}

static void parse_file(fixture *f, bool from_memory, const dots_page_options *o, dots_page_result *r) {
    dots_document *doc = NULL;
    if (from_memory) {
        size_t len = 0;
        unsigned char *bytes = slurp(env("DOTS_TEST_IMAGE"), &len);
        assert_non_null(bytes);
        assert_int_equal(dots_document_open_memory(f->ctx, bytes, len, "page.png", &doc), DOTS_OK);
        memset(bytes, 0, len); /* the document keeps its own copy */
        free(bytes);
    } else {
        assert_int_equal(dots_document_open(f->ctx, env("DOTS_TEST_IMAGE"), &doc), DOTS_OK);
    }
    dots_status s = dots_page_parse(f->ctx, f->st, doc, 0, o, r);
    if (s != DOTS_OK) fail_msg("dots_page_parse: %s", dots_errmsg(f->ctx));
    dots_document_close(doc);
}

static void test_memory_and_path_agree(void **state) {
    fixture *f = *state;
    dots_page_options o;
    dots_page_options_init(&o);
    o.max_new_tokens = 24;
    dots_page_result a = {0}, b = {0};
    parse_file(f, true, &o, &a);
    parse_file(f, false, &o, &b);
    same_result(&a, &b);
    assert_non_null(a.layout_jpeg);
    assert_true(a.layout_jpeg_len > 2 && a.layout_jpeg[0] == 0xFF && a.layout_jpeg[1] == 0xD8);
    /* the layout constraint: a valid answer within the budget, never salvaged */
    assert_true(a.n_tokens >= 2 && a.n_tokens <= 24);
    assert_false(a.filtered);
    assert_non_null(a.json);
    assert_true(a.json[0] == '[');
    dots_page_result_free(&a);
    dots_page_result_free(&b);
}

/* The replayed answer path: a layout answer in the model's pixels comes back
 * in source pixels by the official truncating rule. */
static void test_answer_boxes_in_source_pixels(void **state) {
    fixture *f = *state;
    dots_page_options o;
    dots_page_options_init(&o);
    o.fitz_preprocess = false;
    o.answer = "[{\"bbox\": [14, 28, 140, 56], \"category\": \"Title\", \"text\": \"# T\"}, {\"bbox\": [1e999, 0, 1, 2], "
               "\"category\": \"Text\", \"text\": \"x\"}]";
    dots_page_result r = {0};
    parse_file(f, true, &o, &r);
    /* 1e999 is not a finite JSON number: the answer takes the salvage path */
    assert_true(r.filtered);
    dots_page_result_free(&r);
    o.answer = "[{\"bbox\": [14, 28, 140, 56], \"category\": \"Title\", \"text\": \"# T\"}]";
    parse_file(f, true, &o, &r);
    assert_false(r.filtered);
    assert_int_equal(r.n_cells, 1);
    const double sx = (double)r.model_width_px / r.source_width_px, sy = (double)r.model_height_px / r.source_height_px;
    assert_true(r.cells[0].bbox[0] == (double)(int64_t)(14 / sx));
    assert_true(r.cells[0].bbox[3] == (double)(int64_t)(56 / sy));
    assert_string_equal(r.cells[0].category, "Title");
    assert_string_equal(r.markdown, "# T");
    dots_page_result_free(&r);
}

/* Runs the CLI; returns its exit status. */
static int sh(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void file_equals(const char *path, const void *data, size_t len) {
    size_t n = 0;
    unsigned char *b = slurp(path, &n);
    if (!b) fail_msg("%s is missing", path);
    assert_int_equal(n, len);
    assert_memory_equal(b, data, len);
    free(b);
}

static void test_cli_writes_the_library_bytes(void **state) {
    fixture *f = *state;
    char out[4096], p[4200];
    snprintf(out, sizeof out, "%s/api_cli", env("DOTS_TEST_TMP"));
    assert_int_equal(sh("rm -rf '%s' && '%s' parse -q --threads 1 --model '%s' '%s' -o '%s' --max-new-tokens 24", out,
                        env("DOTS_TEST_CLI"), env("DOTS_TEST_MODEL"), env("DOTS_TEST_IMAGE"), out),
                     0);
    dots_page_options o;
    dots_page_options_init(&o);
    o.max_new_tokens = 24;
    o.stem = "page";
    dots_page_result r = {0};
    parse_file(f, false, &o, &r);
    snprintf(p, sizeof p, "%s/page.json", out);
    file_equals(p, r.json, strlen(r.json));
    snprintf(p, sizeof p, "%s/page.md", out);
    file_equals(p, r.markdown, strlen(r.markdown));
    snprintf(p, sizeof p, "%s/page_nohf.md", out);
    file_equals(p, r.markdown_nohf, strlen(r.markdown_nohf));
    snprintf(p, sizeof p, "%s/page.jpg", out);
    file_equals(p, r.layout_jpeg, r.layout_jpeg_len);
    dots_page_result_free(&r);
}

/* run --bbox and parse --bbox are both source pixels: run streams exactly
 * the answer the library (and so parse, test above) gets for that box. */
static void test_bbox_flags_agree(void **state) {
    fixture *f = *state;
    char out[4096];
    snprintf(out, sizeof out, "%s/api_run_bbox.txt", env("DOTS_TEST_TMP"));
    assert_int_equal(sh("'%s' run -q --threads 1 --model '%s' '%s' --mode grounding --bbox 100,50,500,300 "
                        "--max-new-tokens 12 > '%s'",
                        env("DOTS_TEST_CLI"), env("DOTS_TEST_MODEL"), env("DOTS_TEST_IMAGE"), out),
                     0);
    dots_page_options o;
    dots_page_options_init(&o);
    o.mode = DOTS_MODE_GROUNDING;
    o.max_new_tokens = 12;
    int32_t box[4] = {100, 50, 500, 300};
    memcpy(o.bbox, box, sizeof box);
    dots_page_result r = {0};
    parse_file(f, false, &o, &r);
    size_t n = 0;
    char *ran = (char *)slurp(out, &n);
    assert_non_null(ran);
    assert_true(n >= 1 && ran[n - 1] == '\n');
    ran[n - 1] = '\0';
    assert_string_equal(ran, r.answer);
    free(ran);
    /* a different box is a different prompt: the answers may differ, the
     * run must not fail; a box off the page is refused */
    int32_t off[4] = {0, 0, 100000, 10};
    memcpy(o.bbox, off, sizeof off);
    dots_page_result bad = {0};
    dots_document *doc = NULL;
    assert_int_equal(dots_document_open(f->ctx, env("DOTS_TEST_IMAGE"), &doc), DOTS_OK);
    assert_int_equal(dots_page_parse(f->ctx, f->st, doc, 0, &o, &bad), DOTS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(dots_errmsg(f->ctx), "not a box on the"));
    dots_document_close(doc);
    dots_page_result_free(&r);
}

typedef struct canceller {
    dots_state *st;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int tokens, cancelled;
} canceller;

static void *cancel_thread(void *arg) {
    canceller *c = arg;
    pthread_mutex_lock(&c->mu);
    while (c->tokens < 3) pthread_cond_wait(&c->cv, &c->mu);
    dots_state_cancel(c->st);
    c->cancelled = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static bool count_token(void *user, int32_t token, const char *text, size_t len) {
    (void)token, (void)text, (void)len;
    canceller *c = user;
    pthread_mutex_lock(&c->mu);
    c->tokens++;
    pthread_cond_broadcast(&c->cv);
    while (c->tokens >= 3 && !c->cancelled) pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    return true;
}

static void test_cancel_from_another_thread(void **state) {
    fixture *f = *state;
    canceller c = {f->st, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cancel_thread, &c), 0);
    dots_page_options o;
    dots_page_options_init(&o);
    o.mode = DOTS_MODE_OCR;
    o.max_new_tokens = 400;
    o.on_token = count_token;
    o.user = &c;
    dots_document *doc = NULL;
    assert_int_equal(dots_document_open(f->ctx, env("DOTS_TEST_IMAGE"), &doc), DOTS_OK);
    dots_page_result r = {0};
    assert_int_equal(dots_page_parse(f->ctx, f->st, doc, 0, &o, &r), DOTS_ERR_CANCELLED);
    pthread_join(t, NULL);
    assert_int_equal(c.tokens, 3);
    /* the request stays until cleared: the next call stops at once */
    assert_int_equal(dots_page_parse(f->ctx, f->st, doc, 0, &o, &r), DOTS_ERR_CANCELLED);
    dots_state_clear_cancel(f->st);
    o.on_token = NULL;
    o.max_new_tokens = 2;
    assert_int_equal(dots_page_parse(f->ctx, f->st, doc, 0, &o, &r), DOTS_OK);
    dots_page_result_free(&r);
    dots_document_close(doc);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_and_path_agree),
        cmocka_unit_test(test_answer_boxes_in_source_pixels),
        cmocka_unit_test(test_cli_writes_the_library_bytes),
        cmocka_unit_test(test_bbox_flags_agree),
        cmocka_unit_test(test_cancel_from_another_thread),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
