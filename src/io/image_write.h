/*
 * image_write.h - encoding RGB images: PNG into memory (Picture crops in
 * Markdown) and JPEG files (the layout picture, as the official parser).
 */
#ifndef DOTS_IMAGE_WRITE_H
#define DOTS_IMAGE_WRITE_H

#include "core/internal.h"

/* PNG of img into *out (malloc'd). */
dots_status dots_png_encode(dots_ctx *ctx, const dots_image *img, uint8_t **out, size_t *len);
/* JPEG of img into *out (malloc'd). */
dots_status dots_jpeg_encode(dots_ctx *ctx, const dots_image *img, int quality, uint8_t **out, size_t *len);
/* Standard base64 of data (heap string). */
char *dots_base64(const uint8_t *data, size_t len);

#endif
