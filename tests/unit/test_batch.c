/*
 * test_batch.c - batched decoding (label batch) on the tiny model: every
 * sequence of a batch gets the tokens, and logits, it gets alone; runs join
 * and leave between steps; a cancelled run leaves the others untouched; a
 * page through the batch is byte-identical to dots_page_parse; bad calls fail
 * cleanly.
 */
#include "api_fixture.h"

#include "pipeline/page.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Logits of every step of one run, as the hooks see them. */
typedef struct logit_log {
    float *v;   /* [steps][vocab] */
    int64_t steps, cap, vocab;
} logit_log;

static void on_logits(void *user, int64_t step, const float *logits, int64_t vocab) {
    logit_log *l = user;
    (void)step;
    if (l->steps == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = realloc(l->v, sizeof(float) * (size_t)(l->cap * vocab));
        assert_non_null(l->v);
    }
    l->vocab = vocab;
    memcpy(l->v + l->steps * vocab, logits, sizeof(float) * (size_t)vocab);
    l->steps++;
}

/* A synthetic page: stripes and noise, deterministic per seed. */
static dots_image make_image(int w, int h, uint32_t seed) {
    dots_image img = {0};
    img.width_px = w;
    img.height_px = h;
    img.rgb = malloc((size_t)w * (size_t)h * 3);
    assert_non_null(img.rgb);
    uint32_t x = seed * 2654435761u + 1;
    for (int y = 0; y < h; y++)
        for (int i = 0; i < w * 3; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            img.rgb[(size_t)y * (size_t)w * 3 + (size_t)i] = (uint8_t)(((y / 9) % 2 ? 220 : 40) + (x & 31));
        }
    return img;
}

/* Eight different jobs: sizes, modes and budgets. */
static const struct job {
    int w, h;
    dots_prompt_mode mode;
    int32_t max_new;
} jobs[8] = {
    {120, 90, DOTS_MODE_OCR, 23},          {200, 140, DOTS_MODE_LAYOUT_ALL, 40}, {84, 84, DOTS_MODE_LAYOUT_ONLY, 17},
    {150, 300, DOTS_MODE_GROUNDING, 31},   {64, 180, DOTS_MODE_OCR, 9},          {260, 100, DOTS_MODE_LAYOUT_ALL, 36},
    {100, 100, DOTS_MODE_OCR, 28},         {180, 180, DOTS_MODE_LAYOUT_ONLY, 12},
};

static dots_run_params job_params(int i) {
    dots_run_params p;
    dots_run_params_init(&p);
    p.mode = jobs[i].mode;
    p.max_new_tokens = jobs[i].max_new;
    if (p.mode == DOTS_MODE_GROUNDING) p.bbox[0] = 4, p.bbox[1] = 8, p.bbox[2] = 60, p.bbox[3] = 90;
    return p;
}

typedef struct alone {
    dots_run_result r;
    logit_log logits;
} alone;

static void run_alone(fixture *f, int i, alone *out) {
    dots_image img = make_image(jobs[i].w, jobs[i].h, (uint32_t)i);
    dots_run_params p = job_params(i);
    dots_run_hooks hooks = {0};
    hooks.user = &out->logits;
    hooks.on_logits = on_logits;
    memset(out, 0, sizeof *out);
    hooks.user = &out->logits;
    assert_int_equal(dots_run_image_ex(f->ctx, f->st, &img, &p, &hooks, &out->r), DOTS_OK);
    dots_image_free(&img);
}

static double max_diff(const logit_log *a, const logit_log *b) {
    assert_int_equal(a->steps, b->steps);
    double m = 0;
    for (int64_t i = 0; i < a->steps * a->vocab; i++) {
        double d = fabs((double)a->v[i] - (double)b->v[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
    }
    return m;
}

static void check_same(int i, const alone *want, const dots_run_result *got, const logit_log *got_logits) {
    if (got->n_tokens != want->r.n_tokens || memcmp(got->tokens, want->r.tokens, sizeof(int32_t) * (size_t)got->n_tokens) != 0)
        fail_msg("job %d: %lld tokens in the batch, %lld alone, or different ids", i, (long long)got->n_tokens,
                 (long long)want->r.n_tokens);
    assert_int_equal(got->stop, want->r.stop);
    assert_string_equal(got->text, want->r.text);
    assert_int_equal(got->n_prompt_tokens, want->r.n_prompt_tokens);
    double d = max_diff(&want->logits, got_logits);
    if (!(d <= 1e-5)) fail_msg("job %d: logits differ from the run alone by %g", i, d);
}

static int setup_fp32(void **state) {
    setup(state);
    fixture *f = *state;
    dots_state_free(f->st);
    assert_int_equal(dots_state_create(f->ctx, f->model, 2, &f->st), DOTS_OK);
    assert_int_equal(dots_state_set_precision(f->ctx, f->st, DOTS_PRECISION_FP32), DOTS_OK);
    return 0;
}

/* B = 1..8 mixed jobs started together: tokens identical, logits within 1e-5. */
static void test_batch_matches_alone(void **state) {
    fixture *f = *state;
    alone want[8];
    for (int i = 0; i < 8; i++) run_alone(f, i, &want[i]);
    for (int B = 1; B <= 8; B++) {
        dots_batch *b = NULL;
        assert_int_equal(dots_batch_create(f->ctx, f->st, B, &b), DOTS_OK);
        int64_t ids[8];
        logit_log logs[8] = {{0}};
        for (int i = 0; i < B; i++) {
            dots_image img = make_image(jobs[i].w, jobs[i].h, (uint32_t)i);
            dots_run_params p = job_params(i);
            dots_run_hooks hooks = {0};
            hooks.user = &logs[i];
            hooks.on_logits = on_logits;
            assert_int_equal(dots_batch_add_ex(f->ctx, b, &img, &p, &hooks, &ids[i]), DOTS_OK);
            dots_image_free(&img);
        }
        assert_int_equal(dots_batch_running(b), B);
        int steps = 0;
        while (dots_batch_running(b) > 0) {
            assert_int_equal(dots_batch_step(f->ctx, b), DOTS_OK);
            assert_true(++steps <= 64);
        }
        assert_int_equal(dots_batch_finished(b), B);
        for (int i = 0; i < B; i++) {
            dots_run_result r = {0};
            assert_int_equal(dots_batch_take(f->ctx, b, ids[i], &r), DOTS_OK);
            check_same(i, &want[i], &r, &logs[i]);
            dots_run_result_free(&r);
            free(logs[i].v);
        }
        assert_int_equal(dots_batch_finished(b), 0);
        assert_int_equal(dots_batch_finished_id(b), -1);
        dots_batch_free(b);
    }
    for (int i = 0; i < 8; i++) {
        dots_run_result_free(&want[i].r);
        free(want[i].logits.v);
    }
}

/* Continuous batching: at most 3 at once, 8 runs; each finished run is taken
 * and the next job joins between steps, so runs join a batch that is already
 * decoding and leave while others go on. */
static void test_batch_join_leave(void **state) {
    fixture *f = *state;
    alone want[8];
    for (int i = 0; i < 8; i++) run_alone(f, i, &want[i]);
    dots_batch *b = NULL;
    assert_int_equal(dots_batch_create(f->ctx, f->st, 3, &b), DOTS_OK);
    int64_t ids[8];
    logit_log logs[8] = {{0}};
    int next = 0, done = 0, joined_late = 0;
    while (done < 8) {
        while (next < 8 && dots_batch_running(b) + dots_batch_finished(b) < 3) {
            dots_image img = make_image(jobs[next].w, jobs[next].h, (uint32_t)next);
            dots_run_params p = job_params(next);
            dots_run_hooks hooks = {0};
            hooks.user = &logs[next];
            hooks.on_logits = on_logits;
            if (dots_batch_running(b) > 0) joined_late++;
            assert_int_equal(dots_batch_add_ex(f->ctx, b, &img, &p, &hooks, &ids[next]), DOTS_OK);
            dots_image_free(&img);
            next++;
        }
        if (next < 8) { /* full: a fourth add is refused */
            int64_t id = -1;
            dots_image img = make_image(50, 50, 99);
            dots_run_params p = job_params(0);
            assert_int_equal(dots_batch_add(f->ctx, b, &img, &p, &id), DOTS_ERR_LIMIT);
            dots_image_free(&img);
        }
        assert_int_equal(dots_batch_step(f->ctx, b), DOTS_OK);
        for (int64_t id; (id = dots_batch_finished_id(b)) >= 0; done++) {
            int i = 0;
            while (ids[i] != id) i++;
            dots_run_result r = {0};
            assert_int_equal(dots_batch_take(f->ctx, b, id, &r), DOTS_OK);
            check_same(i, &want[i], &r, &logs[i]);
            dots_run_result_free(&r);
            free(logs[i].v);
        }
    }
    assert_true(joined_late >= 3);
    dots_batch_free(b);
    for (int i = 0; i < 8; i++) {
        dots_run_result_free(&want[i].r);
        free(want[i].logits.v);
    }
}

/* A run cancelled mid-decode stops there; the others keep their tokens. */
static void test_batch_cancel_one(void **state) {
    fixture *f = *state;
    alone want[3];
    for (int i = 0; i < 3; i++) run_alone(f, i, &want[i]);
    dots_batch *b = NULL;
    assert_int_equal(dots_batch_create(f->ctx, f->st, 3, &b), DOTS_OK);
    int64_t ids[3];
    for (int i = 0; i < 3; i++) {
        dots_image img = make_image(jobs[i].w, jobs[i].h, (uint32_t)i);
        dots_run_params p = job_params(i);
        assert_int_equal(dots_batch_add(f->ctx, b, &img, &p, &ids[i]), DOTS_OK);
        dots_image_free(&img);
    }
    for (int s = 0; s < 5; s++) assert_int_equal(dots_batch_step(f->ctx, b), DOTS_OK);
    assert_int_equal(dots_batch_cancel(f->ctx, b, ids[1]), DOTS_OK);
    assert_int_equal(dots_batch_cancel(f->ctx, b, 12345), DOTS_ERR_INVALID_ARGUMENT);
    while (dots_batch_running(b) > 0) assert_int_equal(dots_batch_step(f->ctx, b), DOTS_OK);
    for (int i = 0; i < 3; i++) {
        dots_run_result r = {0};
        assert_int_equal(dots_batch_take(f->ctx, b, ids[i], &r), DOTS_OK);
        if (i == 1) {
            assert_int_equal(r.stop, DOTS_STOP_CANCELLED);
            assert_int_equal(r.n_tokens, 5);
            assert_memory_equal(r.tokens, want[1].r.tokens, 5 * sizeof(int32_t));
        } else {
            assert_int_equal(r.n_tokens, want[i].r.n_tokens);
            assert_memory_equal(r.tokens, want[i].r.tokens, sizeof(int32_t) * (size_t)r.n_tokens);
        }
        dots_run_result_free(&r);
    }
    dots_batch_free(b);
    for (int i = 0; i < 3; i++) {
        dots_run_result_free(&want[i].r);
        free(want[i].logits.v);
    }
}

/* Pages through the batch: the same bytes as dots_page_parse, replayed
 * answers included; a cancelled page's take fails with CANCELLED. */
static void test_batch_pages(void **state) {
    fixture *f = *state;
    dots_document *doc = NULL;
    assert_int_equal(dots_document_open(f->ctx, env("DOTS_TEST_IMAGE"), &doc), DOTS_OK);
    const dots_prompt_mode modes[4] = {DOTS_MODE_LAYOUT_ALL, DOTS_MODE_OCR, DOTS_MODE_LAYOUT_ONLY, DOTS_MODE_LAYOUT_ALL};
    dots_page_result want[4];
    dots_page_options o[4];
    for (int i = 0; i < 4; i++) {
        dots_page_options_init(&o[i]);
        o[i].mode = modes[i];
        o[i].max_new_tokens = 20 + 7 * i;
        o[i].dpi = 40;
        if (i == 3) o[i].answer = "[{\"bbox\": [1, 2, 30, 40], \"category\": \"Title\", \"text\": \"# Hi\"}]";
        assert_int_equal(dots_page_parse(f->ctx, f->st, doc, 0, &o[i], &want[i]), DOTS_OK);
    }
    dots_batch *b = NULL;
    assert_int_equal(dots_batch_create(f->ctx, f->st, 5, &b), DOTS_OK);
    int64_t ids[5];
    for (int i = 0; i < 4; i++) assert_int_equal(dots_batch_add_page(f->ctx, b, doc, 0, &o[i], &ids[i]), DOTS_OK);
    assert_int_equal(dots_batch_add_page(f->ctx, b, doc, 0, &o[0], &ids[4]), DOTS_OK);
    assert_int_equal(dots_batch_finished(b), 1); /* the replayed answer */
    assert_int_equal(dots_batch_finished_id(b), ids[3]);
    dots_run_result wrong = {0};
    assert_int_equal(dots_batch_take(f->ctx, b, ids[3], &wrong), DOTS_ERR_INVALID_ARGUMENT); /* a page, not a run */
    assert_int_equal(dots_batch_take_page(f->ctx, b, ids[0], &want[0]), DOTS_ERR_INVALID_ARGUMENT); /* still running */
    assert_int_equal(dots_batch_step(f->ctx, b), DOTS_OK);
    assert_int_equal(dots_batch_cancel(f->ctx, b, ids[4]), DOTS_OK);
    while (dots_batch_running(b) > 0) assert_int_equal(dots_batch_step(f->ctx, b), DOTS_OK);
    for (int i = 0; i < 4; i++) {
        dots_page_result r = {0};
        assert_int_equal(dots_batch_take_page(f->ctx, b, ids[i], &r), DOTS_OK);
        assert_string_equal(r.answer, want[i].answer);
        assert_int_equal(r.n_tokens, want[i].n_tokens);
        if (want[i].json) assert_string_equal(r.json, want[i].json);
        if (want[i].markdown) assert_string_equal(r.markdown, want[i].markdown);
        assert_int_equal(r.layout_jpeg_len, want[i].layout_jpeg_len);
        if (r.layout_jpeg_len) assert_memory_equal(r.layout_jpeg, want[i].layout_jpeg, r.layout_jpeg_len);
        assert_int_equal(r.n_cells, want[i].n_cells);
        dots_page_result_free(&r);
        dots_page_result_free(&want[i]);
    }
    dots_page_result r = {0};
    assert_int_equal(dots_batch_take_page(f->ctx, b, ids[4], &r), DOTS_ERR_CANCELLED);
    assert_int_equal(dots_batch_take_page(f->ctx, b, ids[4], &r), DOTS_ERR_INVALID_ARGUMENT); /* gone */
    assert_int_equal(dots_batch_finished(b) + dots_batch_running(b), 0);
    assert_int_equal(dots_batch_kv_bytes(b), 0);
    dots_batch_free(b);
    dots_document_close(doc);
}

/* Bad calls: clear errors, nothing held. */
static void test_batch_bad_calls(void **state) {
    fixture *f = *state;
    dots_batch *b = NULL;
    assert_int_equal(dots_batch_create(f->ctx, f->st, 0, &b), DOTS_ERR_INVALID_ARGUMENT);
    assert_int_equal(dots_batch_create(f->ctx, f->st, 65, &b), DOTS_ERR_INVALID_ARGUMENT);
    assert_int_equal(dots_batch_create(f->ctx, NULL, 4, &b), DOTS_ERR_INVALID_ARGUMENT);
    assert_int_equal(dots_batch_create(f->ctx, f->st, 2, &b), DOTS_OK);
    int64_t id = -1;
    dots_run_params p = job_params(0);
    assert_int_equal(dots_batch_add(f->ctx, b, NULL, &p, &id), DOTS_ERR_INVALID_ARGUMENT);
    dots_image img = make_image(60, 60, 7);
    p.mode = DOTS_MODE_COUNT;
    assert_int_equal(dots_batch_add(f->ctx, b, &img, &p, &id), DOTS_ERR_INVALID_ARGUMENT);
    assert_int_equal(dots_batch_running(b), 0);
    dots_run_result r = {0};
    assert_int_equal(dots_batch_take(f->ctx, b, 0, &r), DOTS_ERR_INVALID_ARGUMENT);
    assert_int_equal(dots_batch_step(f->ctx, b), DOTS_OK); /* nothing to do */
    p = job_params(4);
    assert_int_equal(dots_batch_add(f->ctx, b, &img, &p, &id), DOTS_OK);
    assert_true(dots_batch_kv_bytes(b) > 0);
    dots_document *doc = NULL;
    assert_int_equal(dots_document_open(f->ctx, env("DOTS_TEST_IMAGE"), &doc), DOTS_OK);
    dots_page_options o;
    dots_page_options_init(&o);
    o.dpi = 40;
    int64_t pid = -1;
    assert_int_equal(dots_batch_add_page(f->ctx, b, doc, 3, &o, &pid), DOTS_ERR_INVALID_ARGUMENT); /* no page 4 */
    o.mode = DOTS_MODE_GROUNDING;                                                               /* bbox all zero */
    assert_int_equal(dots_batch_add_page(f->ctx, b, doc, 0, &o, &pid), DOTS_ERR_INVALID_ARGUMENT);
    assert_int_equal(dots_batch_running(b), 1);
    dots_document_close(doc);
    dots_image_free(&img);
    dots_batch_free(b); /* with a run still in it */
    assert_int_equal(dots_batch_step(f->ctx, NULL), DOTS_ERR_INVALID_ARGUMENT);
    assert_int_equal(dots_batch_running(NULL), 0);
    assert_int_equal(dots_batch_finished_id(NULL), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_matches_alone, setup_fp32, teardown),
        cmocka_unit_test_setup_teardown(test_batch_join_leave, setup_fp32, teardown),
        cmocka_unit_test_setup_teardown(test_batch_cancel_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_bad_calls, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
