/*
 * parse_page.c - parse one page with libdotsocr, the public API only:
 *
 *     cc parse_page.c $(pkg-config --cflags --libs dotsocr) -o parse_page
 *     ./parse_page MODEL_DIR page.png [page-index]
 *
 * The file is read into memory and opened from there, as an app that gets
 * its pages over the network would. Prints the page's Markdown on stdout.
 */
#include <dotsocr.h>

#include <stdio.h>
#include <stdlib.h>

static void log_line(dots_log_level level, const char *msg, void *user) {
    (void)user;
    if (level <= DOTS_LOG_WARN) fprintf(stderr, "parse_page: %s\n", msg);
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n == cap) {
            unsigned char *p = realloc(buf, cap = cap ? cap * 2 : 1 << 16);
            if (!p) break;
            buf = p;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR IMAGE_OR_PDF [PAGE]\n", argv[0]);
        return 2;
    }
    size_t len = 0;
    unsigned char *bytes = slurp(argv[2], &len);
    if (!bytes) {
        perror(argv[2]);
        return 1;
    }
    dots_ctx *ctx = NULL;
    dots_model *model = NULL;
    dots_state *st = NULL;
    dots_document *doc = NULL;
    dots_page_result page = {0};
    int rc = 1;
    if (dots_ctx_create(&ctx) != DOTS_OK) return 1;
    dots_ctx_set_log(ctx, log_line, NULL, DOTS_LOG_WARN);
    dots_page_options opts;
    dots_page_options_init(&opts);
    opts.max_new_tokens = 64; /* a demo: keep it short */
    if (dots_model_open(ctx, argv[1], &model) != DOTS_OK || dots_model_place(ctx, model, DOTS_PLACE_AUTO) != DOTS_OK ||
        dots_state_create(ctx, model, 0, &st) != DOTS_OK ||
        dots_document_open_memory(ctx, bytes, len, argv[2], &doc) != DOTS_OK ||
        dots_page_parse(ctx, st, doc, argc > 3 ? atoi(argv[3]) : 0, &opts, &page) != DOTS_OK) {
        fprintf(stderr, "parse_page: %s\n", dots_errmsg(ctx));
        goto done;
    }
    printf("%s\n", page.markdown ? page.markdown : "");
    fprintf(stderr, "parse_page: %d x %d page, %lld cells, %lld tokens (%s), layout picture %zu bytes\n", page.source_width_px,
            page.source_height_px, (long long)page.n_cells, (long long)page.n_tokens, dots_stop_reason_name(page.stop),
            page.layout_jpeg_len);
    rc = 0;
done:
    dots_page_result_free(&page);
    dots_document_close(doc);
    dots_state_free(st);
    dots_model_close(model);
    dots_ctx_free(ctx);
    free(bytes);
    return rc;
}
