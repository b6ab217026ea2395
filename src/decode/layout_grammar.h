/*
 * layout_grammar.h - the layout answer's grammar as a byte-level state
 * machine (docs/model.md §10.2): a JSON array of objects whose keys come in
 * the model's order,
 *
 *   [ {"bbox": [x1, y1, x2, y2], "category": "<one of 11>", "text": "..."}, ... ]
 *
 * with 0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height of the image the
 * model saw, no "text" for Picture (and none at all in layout-only), JSON
 * whitespace where JSON allows it. A byte is accepted only if the answer
 * stays a prefix of a valid answer, so a decoder that only ever picks
 * accepted bytes cannot produce anything else. Strings are checked as UTF-8
 * and JSON escapes (surrogate pairs included) byte by byte, so a token may
 * end in the middle of a character or an escape.
 */
#ifndef DOTS_LAYOUT_GRAMMAR_H
#define DOTS_LAYOUT_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DOTS_LG_MAX_WS 32        /* whitespace bytes in a row (a model that only indents is looping) */
#define DOTS_LG_MAX_CLOSE 96     /* bytes of the longest closing sequence */

typedef struct dots_lg_limits {
    int32_t width, height; /* the resized image: bbox bounds */
    uint8_t with_text;     /* layout-all: objects other than Picture carry "text" */
    uint8_t zero_[3];      /* explicit padding: states are compared byte for byte */
} dots_lg_limits;

/* Everything that decides what may follow, and nothing else: two states
 * that are equal byte for byte accept the same continuations, so the state
 * is a cache key (fields that no longer matter are zeroed). */
typedef struct dots_lg_state {
    uint8_t pos;        /* where in the grammar (layout_grammar.c) */
    uint8_t key;        /* the object's key being read or next: 0 bbox, 1 category, 2 text */
    uint8_t lit_pos;    /* bytes of the key literal matched */
    uint8_t ws;         /* whitespace bytes in a row */
    uint8_t num;        /* bbox number 0..3 */
    uint8_t nd;         /* its digits so far */
    uint8_t cat_len;    /* category bytes matched */
    uint8_t utf8_need;  /* continuation bytes still due */
    uint8_t utf8_lo, utf8_hi; /* bounds of the next continuation byte */
    uint8_t u_digits;   /* \u escape: hex digits so far */
    uint8_t u_low;      /* 1: this \u must be a low surrogate */
    uint16_t cat_set;   /* categories consistent with the bytes so far */
    uint16_t u_val;
    int32_t val;        /* the number so far */
    int32_t vals[2];    /* x1, y1 (the lower bounds of x2, y2) */
    dots_lg_limits lim;
} dots_lg_state;

void dots_lg_init(dots_lg_state *s, const dots_lg_limits *lim);
/* Feeds one byte; false (s unchanged) if it cannot continue a valid answer. */
bool dots_lg_feed(dots_lg_state *s, uint8_t byte);
/* Feeds n bytes; false if any is refused (s is then undefined). */
bool dots_lg_feed_bytes(dots_lg_state *s, const uint8_t *bytes, size_t n);
/* The answer is complete: the closing ']' was read. */
bool dots_lg_complete(const dots_lg_state *s);
/* Inside a "text" string (the loop guard closes the cell from here). */
bool dots_lg_in_text(const dots_lg_state *s);
/* Between objects (after a complete object, before ',' or ']'). */
bool dots_lg_between_objects(const dots_lg_state *s);

/* The shortest canonical bytes that complete the answer from s (until_object:
 * only the current object), written to out (at least DOTS_LG_MAX_CLOSE
 * bytes). *n_utf8 counts the leading bytes that finish a split UTF-8
 * character (not ASCII); the rest is ASCII. Returns the length. */
size_t dots_lg_closing(const dots_lg_state *s, bool until_object, uint8_t *out, size_t *n_utf8);

/* The category names, in the official order. */
extern const char *const dots_lg_categories[];
#define DOTS_LG_N_CATEGORIES 11

#endif
