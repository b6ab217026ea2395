/*
 * resize_tool.c - test helper: for each manifest line "IN W H OUT", decodes
 * IN, resizes it to W x H with dots_image_resize_bicubic and writes OUT as a
 * uint8 .npy. Lets the Pillow comparison cover arbitrary size pairs, not
 * only those smart_resize produces, in one process.
 */
#include "dotsocr.h"
#include "io/npy.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: resize_tool MANIFEST\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    dots_ctx *ctx = NULL;
    if (dots_ctx_create(&ctx) != DOTS_OK) return 1;
    char in[4096], out[4096];
    int w, h, rc = 0;
    while (fscanf(f, "%4095s %d %d %4095s", in, &w, &h, out) == 4) {
        dots_document *doc = NULL;
        dots_image img = {0}, rs = {0};
        if (dots_document_open(ctx, in, &doc) != DOTS_OK || dots_document_render_page(ctx, doc, 0, 0, &img, NULL) != DOTS_OK ||
            dots_image_resize_bicubic(ctx, &img, w, h, &rs) != DOTS_OK) {
            fprintf(stderr, "%s: %s\n", in, dots_errmsg(ctx));
            rc = 1;
        } else {
            const int64_t shape[3] = {h, w, 3};
            if (dots_npy_write(ctx, out, "|u1", shape, 3, rs.rgb, 1) != DOTS_OK) {
                fprintf(stderr, "%s\n", dots_errmsg(ctx));
                rc = 1;
            }
        }
        dots_image_free(&rs);
        dots_image_free(&img);
        dots_document_close(doc);
    }
    fclose(f);
    dots_ctx_free(ctx);
    return rc;
}
