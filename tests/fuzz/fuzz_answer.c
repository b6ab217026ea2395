/*
 * fuzz_answer.c - libFuzzer target: arbitrary bytes as the model's answer,
 * through every post-processing path that reads it: the layout JSON and its
 * salvage, dots.mocr's scene-text parser, and the SVG extraction, repair and
 * render. Each must return a result or an error, and its invariants hold.
 */
#include "post/layout.h"
#include "post/scene.h"
#include "post/svg.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dots_ctx *ctx = NULL;
    if (dots_ctx_create(&ctx) != DOTS_OK) return 0;
    char *text = malloc(size + 1);
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = '\0';
    const size_t len = strlen(text); /* the model's text never holds NUL */

    dots_layout lay = {0};
    if (dots_layout_parse(ctx, text, len, &lay) == DOTS_OK) {
        char *json = dots_layout_to_json(&lay);
        if (!json) abort();
        free(json);
    }
    dots_layout_free(&lay);

    dots_scene sc = {0};
    if (dots_scene_parse(ctx, text, len, &sc) == DOTS_OK) {
        for (int64_t i = 0; i < sc.n; i++) {
            const char *t = sc.items[i].text;
            if (!t[0] || isspace((unsigned char)t[0]) || isspace((unsigned char)t[strlen(t) - 1])) abort();
            for (int k = 0; k < 8; k++)
                if (sc.items[i].points[k] < 0) abort();
        }
        dots_scene_rescale(&sc, 280, 140, 560, 70);
        char *j = dots_scene_to_json(&sc), *md = dots_scene_markdown(&sc);
        if (!j || !md) abort();
        free(j);
        free(md);
    }
    dots_scene_free(&sc);

    char *svg = NULL;
    if (dots_svg_extract(ctx, text, &svg) == DOTS_OK && svg) {
        if (strncmp(svg, "<svg", 4) != 0) abort();
        dots_image img = {0};
        char why[256];
        if (dots_svg_render(ctx, svg, 16, 16, &img, why, sizeof why) == DOTS_OK && !img.rgb && !why[0]) abort();
        dots_image_free(&img);
    }
    free(svg);
    char *fixed = dots_svg_fix(text);
    free(fixed);
    free(text);
    dots_ctx_free(ctx);
    return 0;
}
