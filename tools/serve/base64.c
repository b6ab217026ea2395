/*
 * base64.c - see base64.h.
 */
#include "base64.h"

#include <stdlib.h>

static int digit(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

uint8_t *serve_base64_decode(const char *s, size_t n, size_t *len, bool *oom) {
    *oom = false;
    *len = 0;
    uint8_t *out = malloc(n / 4 * 3 + 3);
    if (!out) {
        *oom = true;
        return NULL;
    }
    uint32_t acc = 0;
    int have = 0, pad = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (c == '=') {
            pad++;
            continue;
        }
        const int d = digit(c);
        if (d < 0 || pad) goto bad; /* data after padding */
        acc = acc << 6 | (uint32_t)d;
        if (++have == 4) {
            out[k++] = (uint8_t)(acc >> 16);
            out[k++] = (uint8_t)(acc >> 8);
            out[k++] = (uint8_t)acc;
            acc = 0;
            have = 0;
        }
    }
    /* a final group of 2 or 3 digits carries 1 or 2 bytes; 1 digit is no byte */
    if (have == 1 || pad > 2 || (pad && have + pad != 4)) goto bad;
    if (have == 2) out[k++] = (uint8_t)(acc >> 4);
    if (have == 3) {
        out[k++] = (uint8_t)(acc >> 10);
        out[k++] = (uint8_t)(acc >> 2);
    }
    *len = k;
    return out;
bad:
    free(out);
    return NULL;
}

char *serve_base64_encode(const uint8_t *d, size_t n) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out) return NULL;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        const uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        *o++ = abc[v >> 18];
        *o++ = abc[v >> 12 & 63];
        *o++ = abc[v >> 6 & 63];
        *o++ = abc[v & 63];
    }
    if (i < n) {
        const uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
        *o++ = abc[v >> 18];
        *o++ = abc[v >> 12 & 63];
        *o++ = i + 1 < n ? abc[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}
