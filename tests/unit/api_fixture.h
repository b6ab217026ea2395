/*
 * api_fixture.h - what the public-API tests share: environment lookup and a
 * fixture holding a context, the tiny model and a one-thread state.
 */
#ifndef DOTS_API_FIXTURE_H
#define DOTS_API_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dotsocr.h"

#include <stdlib.h>

static inline const char *env(const char *k) {
    const char *v = getenv(k);
    if (!v) fail_msg("%s is not set", k);
    return v;
}

typedef struct fixture {
    dots_ctx *ctx;
    dots_model *model;
    dots_state *st;
} fixture;

/* DOTS_TEST_MODEL opened, its weights placed as the CLI places them. */
static inline int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(dots_ctx_create(&f->ctx), DOTS_OK);
    assert_int_equal(dots_model_open(f->ctx, env("DOTS_TEST_MODEL"), &f->model), DOTS_OK);
    assert_int_equal(dots_model_place(f->ctx, f->model, DOTS_PLACE_AUTO), DOTS_OK);
    assert_int_equal(dots_state_create(f->ctx, f->model, 1, &f->st), DOTS_OK);
    *state = f;
    return 0;
}

static inline int teardown(void **state) {
    fixture *f = *state;
    dots_state_free(f->st);
    dots_model_close(f->model);
    dots_ctx_free(f->ctx);
    free(f);
    return 0;
}

#endif
