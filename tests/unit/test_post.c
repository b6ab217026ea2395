/*
 * test_post.c - post-processing rules of docs/model.md §11.3-11.6, one case per
 * branch, expectations written from docs/model.md's text: the salvage of
 * broken answers, deduplication, bbox mapping both ways, Markdown per
 * category, the Formula rules, clean_text, and the layout colours.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "post/layout.h"
#include "post/markdown.h"

static dots_layout salvage(const char *s) {
    dots_layout l;
    assert_int_equal(dots_layout_salvage(NULL, s, strlen(s), &l), DOTS_OK);
    return l;
}

static void assert_cell(const dots_layout *l, int i, const char *cat, const char *text, double x1) {
    assert_true(i < l->n_cells);
    if (cat) assert_string_equal(l->cells[i].category, cat);
    if (text) assert_string_equal(l->cells[i].text, text);
    if (x1 >= 0) assert_true(l->cells[i].bbox[0] == x1);
}

#define A "{\"bbox\": [1, 2, 3, 4], \"category\": \"Text\", \"text\": \"a\"}"
#define B "{\"bbox\": [5, 6, 7, 8], \"category\": \"Title\", \"text\": \"b\"}"

static void test_parse_valid_and_filtered(void **state) {
    (void)state;
    dots_layout l;
    const char *ok = "[" A ", " B "]";
    assert_int_equal(dots_layout_parse(NULL, ok, strlen(ok), &l), DOTS_OK);
    assert_false(l.filtered);
    assert_int_equal(l.n_cells, 2);
    assert_cell(&l, 1, "Title", "b", 5);
    dots_layout_free(&l);
    const char *bad = "[" A ", " B ",]";  /* not JSON (trailing comma): salvaged, filtered */
    assert_int_equal(dots_layout_parse(NULL, bad, strlen(bad), &l), DOTS_OK);
    assert_true(l.filtered);
    assert_string_equal(l.salvage_md, "a\n\nb");
    dots_layout_free(&l);
    const char *text = "plain OCR text, not JSON"; /* the grounding quirk: nothing salvaged */
    assert_int_equal(dots_layout_parse(NULL, text, strlen(text), &l), DOTS_OK);
    assert_true(l.filtered);
    assert_string_equal(l.salvage_md, "");
    dots_layout_free(&l);
}

static void test_salvage_steps(void **state) {
    (void)state;
    /* a: '}' + whitespace + '{' not followed by '"' becomes '},{' */
    dots_layout l = salvage("[{\"bbox\": [1, 2, 3, 4], \"text\": \"a\"} { \"bbox\": [5, 6, 7, 8], \"text\": \"b\"}]");
    assert_int_equal(l.n_cells, 2);
    dots_layout_free(&l);
    l = salvage("[" A " " B "]"); /* '{' followed by '"': not a's case; e extracts both */
    assert_int_equal(l.n_cells, 2);
    dots_layout_free(&l);
    l = salvage("[" A ", {\"bbox\": [5, 6, 7, 8], \"category\": \"Te"); /* b: incomplete tail cut */
    assert_int_equal(l.n_cells, 1);
    assert_cell(&l, 0, "Text", "a", 1);
    dots_layout_free(&l);
    l = salvage("[" A ", " A ", " B "]"); /* c: exact duplicate dicts dropped */
    assert_int_equal(l.n_cells, 2);
    assert_cell(&l, 1, "Title", "b", 5);
    dots_layout_free(&l);
    l = salvage(A); /* d: brackets added */
    assert_int_equal(l.n_cells, 1);
    dots_layout_free(&l);
    l = salvage("[" A ", garbage here, " B "]"); /* e: dicts extracted one by one */
    assert_int_equal(l.n_cells, 2);
    assert_cell(&l, 0, "Text", "a", 1);
    dots_layout_free(&l);
    /* e: last resort, one element cut mid-text */
    l = salvage("[{\"bbox\": [9, 8, 7, 6], \"category\": \"Caption\", \"text\": \"unterminated");
    assert_int_equal(l.n_cells, 1);
    assert_cell(&l, 0, "Caption", "unterminated", 9);
    dots_layout_free(&l);
    l = salvage("[{\"bbox\": [9, 8, 7, 6], \"text\": \"no category");
    assert_int_equal(l.n_cells, 1);
    assert_cell(&l, 0, "Text", NULL, 9); /* default category */
    dots_layout_free(&l);
    l = salvage("nothing like a layout");
    assert_int_equal(l.n_cells, 0);
    dots_layout_free(&l);
}

static void test_dedup(void **state) {
    (void)state;
    /* (category, text) 5 times -> first kept; bboxes all different */
    char s[4096] = "[";
    for (int i = 0; i < 5; i++) {
        char one[128];
        snprintf(one, sizeof one, "%s{\"bbox\": [%d, 0, 1, 1], \"category\": \"Text\", \"text\": \"x\"}", i ? ", " : "", i * 10);
        strcat(s, one);
    }
    strcat(s, ", " B "]");
    dots_layout l = salvage(s);
    assert_int_equal(l.n_cells, 2);
    assert_cell(&l, 0, "Text", "x", 0);
    dots_layout_free(&l);
    /* 4 times: all kept */
    strcpy(s, "[");
    for (int i = 0; i < 4; i++) {
        char one[128];
        snprintf(one, sizeof one, "%s{\"bbox\": [%d, 0, 1, 1], \"category\": \"Text\", \"text\": \"x\"}", i ? ", " : "", i * 10);
        strcat(s, one);
    }
    strcat(s, ", ]"); /* trailing comma: through the cleaner, nothing cut */
    l = salvage(s);
    assert_int_equal(l.n_cells, 4);
    dots_layout_free(&l);
    /* the same bbox twice -> first kept, even with other text */
    l = salvage("[{\"bbox\": [1, 2, 3, 4], \"category\": \"Text\", \"text\": \"p\"}, {\"bbox\": [1, 2, 3, 4], \"category\": \"Title\", \"text\": \"q\"}");
    assert_int_equal(l.n_cells, 1);
    assert_cell(&l, 0, "Text", "p", 1);
    dots_layout_free(&l);
}

static void test_bbox_mapping(void **state) {
    (void)state;
    /* model -> source: int(x / (W_model / W_source)), truncating */
    assert_true(dots_bbox_to_source_px(100, 1036, 1024) == 98);  /* 98.84 */
    assert_true(dots_bbox_to_source_px(1036, 1036, 1024) == 1024);
    assert_true(dots_bbox_to_source_px(100, 56, 70) == 125);     /* upscaled source */
    assert_true(dots_bbox_to_source_px(-3, 28, 10) == -1);        /* -1.07 truncates toward zero */
    /* source -> model (grounding) */
    assert_true(dots_bbox_to_model_px(100, 1024, 1036) == 101);  /* 101.17 */
    assert_true(dots_bbox_to_model_px(1700, 1700, 1708) == 1708);
    /* non-square scales: x and y independent */
    dots_layout l = salvage("[{\"bbox\": [100, 100, 200, 200], \"category\": \"Text\", \"text\": \"t\"}]");
    dots_layout_rescale(&l, 1036, 756, 1024, 768);
    assert_true(l.cells[0].bbox[0] == 98 && l.cells[0].bbox[1] == 101 && l.cells[0].bbox[2] == 197 && l.cells[0].bbox[3] == 203);
    char *j = dots_layout_to_json(&l);
    assert_string_equal(j, "[{\"bbox\": [98, 101, 197, 203], \"category\": \"Text\", \"text\": \"t\"}]");
    free(j);
    dots_layout_free(&l);
}

static void check_formula(const char *in, const char *want) {
    char *got = dots_formula_markdown(in);
    if (strcmp(got, want) != 0) fail_msg("formula %s -> '%s', want '%s'", in, got, want);
    free(got);
}

static void test_formula_rules(void **state) {
    (void)state;
    check_formula("  $$x^2$$ ", "$$\nx^2\n$$");                       /* 1: $$..$$, no inner $ */
    check_formula("$$a $b$ c$$", "$$a $b$ c$$");                      /* 1: inner $: unchanged */
    check_formula("\\[ y = 1 \\]", "$$\ny = 1\n$$");                  /* 2: \[..\] */
    check_formula("see \\[x\\] here", "see \\[x\\] here");            /* 3: \[..\] inside */
    check_formula("where $x$ is", "where $x$ is");                    /* 4: inline $..$ */
    check_formula("E = mc2", "E = mc2");                              /* 5: no LaTeX */
    check_formula("\\frac{a}{b}", "$$\n\\frac{a}{b}\n$$");            /* 6: wrapped */
    check_formula("x = \\alpha", "$$\nx = \\alpha\n$$");              /* 6: a bare command */
    check_formula("``\\alpha``", "$$\n\\alpha\n$$");                  /* 6: backticks stripped */
    check_formula("\\documentclass{article}\n\\usepackage{amsmath}\n\\begin{document}\nx = \\beta\n\\end{document}",
                  "$$\nx = \\beta\n$$");                                /* 6: preamble removed */
}

static void test_clean_text_and_markdown(void **state) {
    (void)state;
    char *t = dots_clean_text("  `$x$`  ");
    assert_string_equal(t, "$x$");
    free(t);
    t = dots_clean_text("\n hello \t");
    assert_string_equal(t, "hello");
    free(t);
    t = dots_clean_text("`code`");
    assert_string_equal(t, "`code`");
    free(t);
    dots_layout l;
    const char *ans = "[{\"bbox\": [0, 0, 4, 2], \"category\": \"Page-header\", \"text\": \"H\"}, "
                      "{\"bbox\": [0, 2, 4, 4], \"category\": \"Text\", \"text\": \" body \"}, "
                      "{\"bbox\": [1, 1, 3, 3], \"category\": \"Picture\"}, "
                      "{\"bbox\": [0, 0, 1, 1], \"category\": \"Formula\", \"text\": \"$$z$$\"}, "
                      "{\"bbox\": [0, 3, 4, 4], \"category\": \"Page-footer\", \"text\": \"F\"}]";
    assert_int_equal(dots_layout_parse(NULL, ans, strlen(ans), &l), DOTS_OK);
    uint8_t px[4 * 4 * 3];
    memset(px, 200, sizeof px);
    dots_image img = {4, 4, px};
    char *md = NULL;
    assert_int_equal(dots_layout_markdown(NULL, &l, &img, false, NULL, NULL, "p", &md), DOTS_OK);
    assert_true(strncmp(md, "H\n\nbody\n\n![](data:image/png;base64,iVBORw0KGgo", 46) == 0);
    assert_non_null(strstr(md, ")\n\n$$\nz\n$$\n\nF"));
    free(md);
    assert_int_equal(dots_layout_markdown(NULL, &l, &img, true, NULL, NULL, "p", &md), DOTS_OK);
    assert_true(strncmp(md, "body\n\n![](data:image/png;base64,", 32) == 0);
    assert_null(strstr(md, "\n\nF"));
    assert_true(md[strlen(md) - 1] == '$');
    free(md);
    dots_layout_free(&l);
}

static void test_colors(void **state) {
    (void)state;
    uint8_t c[3];
    dots_category_color("Title", c);
    assert_true(c[0] == 255 && c[1] == 0 && c[2] == 0);
    dots_category_color("Table", c);
    assert_true(c[0] == 255 && c[1] == 192 && c[2] == 203);
    dots_category_color("Page-footer", c);
    assert_true(c[0] == 128 && c[1] == 0 && c[2] == 128);
    dots_category_color("Unknown", c);
    assert_true(c[0] == 0 && c[1] == 128 && c[2] == 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid_and_filtered), cmocka_unit_test(test_salvage_steps),
        cmocka_unit_test(test_dedup),                    cmocka_unit_test(test_bbox_mapping),
        cmocka_unit_test(test_formula_rules),            cmocka_unit_test(test_clean_text_and_markdown),
        cmocka_unit_test(test_colors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
