/*
 * json_scan.h - a pull scanner over JSON text, for files too big to build a
 * DOM of quickly (the 7 MB tokenizer.json: a DOM costs 0.1-0.25 s, mostly
 * malloc, before any table is built). The caller walks the structure token
 * by token and streams the big arrays and objects straight into its own
 * tables; small sub-values can be skipped and handed, as a byte span, to a
 * DOM parser.
 *
 * Strict RFC 8259: strings must be valid UTF-8 with no raw control
 * characters, \u escapes must pair surrogates, numbers follow the grammar,
 * nesting is limited.
 */
#ifndef DOTS_JSON_SCAN_H
#define DOTS_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DOTS_JSON_MAX_DEPTH 256

typedef enum dots_json_tok {
    DOTS_JSON_ERROR = 0,
    DOTS_JSON_EOF,
    DOTS_JSON_BEGIN_OBJECT, /* { */
    DOTS_JSON_END_OBJECT,   /* } */
    DOTS_JSON_BEGIN_ARRAY,  /* [ */
    DOTS_JSON_END_ARRAY,    /* ] */
    DOTS_JSON_STRING,       /* decoded into str/str_len (also for object keys) */
    DOTS_JSON_NUMBER,       /* text in num_start/num_len; is_int + ival when an integer */
    DOTS_JSON_TRUE,
    DOTS_JSON_FALSE,
    DOTS_JSON_NULL,
} dots_json_tok;

typedef struct dots_json_scan {
    const char *text;
    size_t len, pos;
    /* scanner state: what may come next */
    uint8_t stack[DOTS_JSON_MAX_DEPTH]; /* 'o' or 'a' per open container */
    int depth;
    bool expect_value;  /* a value (or a key, inside an object) is due */
    bool after_key;     /* inside an object, a key was read, ':' consumed */
    bool first;         /* first element of the current container */
    bool done;          /* the top-level value is complete */
    /* the current token */
    bool is_key;        /* the STRING just returned is an object key */
    char *str;          /* decoded string (owned buffer, reused) */
    size_t str_len, str_cap;
    const char *num_start;
    size_t num_len;
    bool is_int;
    int64_t ival;
    size_t tok_start;   /* byte offset where the current token starts */
    const char *error;  /* static message when DOTS_JSON_ERROR */
} dots_json_scan;

void dots_json_scan_init(dots_json_scan *s, const char *text, size_t len);
void dots_json_scan_free(dots_json_scan *s);
dots_json_tok dots_json_next(dots_json_scan *s);
/* Skips the value whose first token was just returned (tok); on success
 * start and end then span its text. */
bool dots_json_skip(dots_json_scan *s, dots_json_tok tok, size_t *start, size_t *end);

#endif
