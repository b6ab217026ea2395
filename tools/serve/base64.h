/*
 * base64.h - RFC 4648 base64 for the server: decoding the images of data
 * URLs (standard or URL-safe alphabet, padding optional, line breaks and
 * spaces skipped as browsers and Python's decoder skip them) and encoding the
 * pictures /v1/parse returns.
 */
#ifndef DOTS_SERVE_BASE64_H
#define DOTS_SERVE_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes n characters of s into a malloc'd buffer (*len bytes). Returns
 * NULL for a character outside the alphabet, misplaced padding, a length
 * that cannot be base64, or out of memory (*oom says which). */
uint8_t *serve_base64_decode(const char *s, size_t n, size_t *len, bool *oom);
/* The NUL-terminated base64 text of data (malloc'd), or NULL on OOM. */
char *serve_base64_encode(const uint8_t *data, size_t n);

#endif
