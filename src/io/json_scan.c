/*
 * json_scan.c - the pull scanner of json_scan.h.
 */
#include "io/json_scan.h"

#include <stdlib.h>
#include <string.h>

void dots_json_scan_init(dots_json_scan *s, const char *text, size_t len) {
    memset(s, 0, sizeof *s);
    s->text = text;
    s->len = len;
    s->expect_value = true;
    s->first = true;
}

void dots_json_scan_free(dots_json_scan *s) {
    free(s->str);
    s->str = NULL;
}

static dots_json_tok fail(dots_json_scan *s, const char *msg) {
    s->error = msg;
    return DOTS_JSON_ERROR;
}

static void skip_ws(dots_json_scan *s) {
    while (s->pos < s->len) {
        char c = s->text[s->pos];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
        s->pos++;
    }
}

static bool str_push(dots_json_scan *s, const char *p, size_t n) {
    if (s->str_len + n + 1 > s->str_cap) {
        size_t cap = s->str_cap ? s->str_cap * 2 : 256;
        while (cap < s->str_len + n + 1) cap *= 2;
        char *b = realloc(s->str, cap);
        if (!b) return false;
        s->str = b;
        s->str_cap = cap;
    }
    memcpy(s->str + s->str_len, p, n);
    s->str_len += n;
    s->str[s->str_len] = '\0';
    return true;
}

static int hex4(const char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    return v;
}

/* Length of a valid UTF-8 sequence at p (at most avail bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t avail) {
    unsigned char b = p[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (b >= 0xC2 && b <= 0xDF) n = 2;
    else if (b == 0xE0) n = 3, lo = 0xA0;
    else if (b == 0xED) n = 3, hi = 0x9F;
    else if (b >= 0xE1 && b <= 0xEF) n = 3;
    else if (b == 0xF0) n = 4, lo = 0x90;
    else if (b == 0xF4) n = 4, hi = 0x8F;
    else if (b >= 0xF1 && b <= 0xF3) n = 4;
    else return 0;
    if (avail < n) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t k = 2; k < n; k++)
        if (p[k] < 0x80 || p[k] > 0xBF) return 0;
    return n;
}

static dots_json_tok scan_string(dots_json_scan *s) {
    s->pos++; /* opening quote */
    s->str_len = 0;
    if (!str_push(s, "", 0)) return fail(s, "out of memory");
    size_t run = s->pos;
    while (s->pos < s->len) {
        unsigned char c = (unsigned char)s->text[s->pos];
        if (c == '"') {
            if (!str_push(s, s->text + run, s->pos - run)) return fail(s, "out of memory");
            s->pos++;
            return DOTS_JSON_STRING;
        }
        if (c < 0x20) return fail(s, "control character in a string");
        if (c < 0x80 && c != '\\') {
            s->pos++;
            continue;
        }
        if (c >= 0x80) {
            size_t n = utf8_len((const unsigned char *)s->text + s->pos, s->len - s->pos);
            if (!n) return fail(s, "invalid UTF-8 in a string");
            s->pos += n;
            continue;
        }
        /* escape */
        if (!str_push(s, s->text + run, s->pos - run)) return fail(s, "out of memory");
        if (s->pos + 1 >= s->len) return fail(s, "unterminated escape");
        char e = s->text[s->pos + 1], out;
        s->pos += 2;
        switch (e) {
        case '"': out = '"'; break;
        case '\\': out = '\\'; break;
        case '/': out = '/'; break;
        case 'b': out = '\b'; break;
        case 'f': out = '\f'; break;
        case 'n': out = '\n'; break;
        case 'r': out = '\r'; break;
        case 't': out = '\t'; break;
        case 'u': {
            if (s->pos + 4 > s->len) return fail(s, "short \\u escape");
            int u = hex4(s->text + s->pos);
            if (u < 0) return fail(s, "bad \\u escape");
            s->pos += 4;
            uint32_t cp = (uint32_t)u;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                int lo = -1;
                if (s->pos + 6 <= s->len && s->text[s->pos] == '\\' && s->text[s->pos + 1] == 'u')
                    lo = hex4(s->text + s->pos + 2);
                if (lo < 0xDC00 || lo > 0xDFFF) return fail(s, "unpaired surrogate in a \\u escape");
                s->pos += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return fail(s, "unpaired surrogate in a \\u escape");
            }
            char buf[4];
            size_t n;
            if (cp < 0x80) buf[0] = (char)cp, n = 1;
            else if (cp < 0x800) buf[0] = (char)(0xC0 | (cp >> 6)), buf[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
            else if (cp < 0x10000)
                buf[0] = (char)(0xE0 | (cp >> 12)), buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F)),
                buf[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
            else
                buf[0] = (char)(0xF0 | (cp >> 18)), buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F)),
                buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), buf[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
            if (!str_push(s, buf, n)) return fail(s, "out of memory");
            run = s->pos;
            continue;
        }
        default: return fail(s, "bad escape in a string");
        }
        if (!str_push(s, &out, 1)) return fail(s, "out of memory");
        run = s->pos;
    }
    return fail(s, "unterminated string");
}

static dots_json_tok scan_number(dots_json_scan *s) {
    size_t p = s->pos, start = p;
    bool neg = false, is_int = true;
    if (p < s->len && s->text[p] == '-') neg = true, p++;
    if (p >= s->len || s->text[p] < '0' || s->text[p] > '9') return fail(s, "bad number");
    uint64_t v = 0;
    bool overflow = false;
    if (s->text[p] == '0') {
        p++;
    } else {
        while (p < s->len && s->text[p] >= '0' && s->text[p] <= '9') {
            if (v > (UINT64_MAX - 9) / 10) overflow = true;
            v = v * 10 + (uint64_t)(s->text[p] - '0');
            p++;
        }
    }
    if (p < s->len && s->text[p] == '.') {
        is_int = false;
        p++;
        if (p >= s->len || s->text[p] < '0' || s->text[p] > '9') return fail(s, "bad number");
        while (p < s->len && s->text[p] >= '0' && s->text[p] <= '9') p++;
    }
    if (p < s->len && (s->text[p] == 'e' || s->text[p] == 'E')) {
        is_int = false;
        p++;
        if (p < s->len && (s->text[p] == '+' || s->text[p] == '-')) p++;
        if (p >= s->len || s->text[p] < '0' || s->text[p] > '9') return fail(s, "bad number");
        while (p < s->len && s->text[p] >= '0' && s->text[p] <= '9') p++;
    }
    s->num_start = s->text + start;
    s->num_len = p - start;
    s->is_int = is_int && !overflow && v <= (uint64_t)INT64_MAX;
    s->ival = s->is_int ? (neg ? -(int64_t)v : (int64_t)v) : 0;
    s->pos = p;
    return DOTS_JSON_NUMBER;
}

static bool literal(dots_json_scan *s, const char *word) {
    size_t n = strlen(word);
    if (s->pos + n > s->len || memcmp(s->text + s->pos, word, n) != 0) return false;
    s->pos += n;
    return true;
}

/* After a complete value: the container now expects ',' or its end. */
static void value_done(dots_json_scan *s) {
    s->expect_value = false;
    s->after_key = false;
    if (s->depth == 0) s->done = true;
}

dots_json_tok dots_json_next(dots_json_scan *s) {
    if (s->error) return DOTS_JSON_ERROR;
    skip_ws(s);
    s->is_key = false;
    s->tok_start = s->pos;
    if (s->done) {
        if (s->pos < s->len) return fail(s, "text after the JSON value");
        return DOTS_JSON_EOF;
    }
    if (s->pos >= s->len) return fail(s, "unexpected end of text");
    char c = s->text[s->pos];
    char top = s->depth ? (char)s->stack[s->depth - 1] : 0;
    /* closing brackets, separators */
    if (!s->expect_value || s->first) {
        if ((c == '}' && top == 'o' && !s->after_key) || (c == ']' && top == 'a')) {
            if (s->expect_value && !s->first) return fail(s, "trailing comma");
            s->pos++;
            s->depth--;
            s->first = false;
            value_done(s);
            return c == '}' ? DOTS_JSON_END_OBJECT : DOTS_JSON_END_ARRAY;
        }
    }
    if (!s->expect_value) {
        if (c != ',') return fail(s, top == 'o' ? "expected ',' or '}'" : "expected ',' or ']'");
        s->pos++;
        s->expect_value = true;
        s->first = false;
        skip_ws(s);
        s->tok_start = s->pos;
        if (s->pos >= s->len) return fail(s, "unexpected end of text");
        c = s->text[s->pos];
    }
    /* inside an object, a key is due before each value */
    if (top == 'o' && !s->after_key) {
        if (c != '"') return fail(s, "expected a string key");
        dots_json_tok t = scan_string(s);
        if (t == DOTS_JSON_ERROR) return t;
        skip_ws(s);
        if (s->pos >= s->len || s->text[s->pos] != ':') return fail(s, "expected ':'");
        s->pos++;
        s->after_key = true;
        s->first = false;
        s->is_key = true;
        return DOTS_JSON_STRING;
    }
    s->first = false;
    switch (c) {
    case '{':
    case '[':
        if (s->depth == DOTS_JSON_MAX_DEPTH) return fail(s, "nested too deeply");
        s->stack[s->depth++] = c == '{' ? 'o' : 'a';
        s->pos++;
        s->expect_value = true;
        s->after_key = false;
        s->first = true;
        return c == '{' ? DOTS_JSON_BEGIN_OBJECT : DOTS_JSON_BEGIN_ARRAY;
    case '"': {
        dots_json_tok t = scan_string(s);
        if (t != DOTS_JSON_ERROR) value_done(s);
        return t;
    }
    case 't':
        if (!literal(s, "true")) return fail(s, "bad literal");
        value_done(s);
        return DOTS_JSON_TRUE;
    case 'f':
        if (!literal(s, "false")) return fail(s, "bad literal");
        value_done(s);
        return DOTS_JSON_FALSE;
    case 'n':
        if (!literal(s, "null")) return fail(s, "bad literal");
        value_done(s);
        return DOTS_JSON_NULL;
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            dots_json_tok t = scan_number(s);
            if (t != DOTS_JSON_ERROR) value_done(s);
            return t;
        }
        return fail(s, "unexpected character");
    }
}

bool dots_json_skip(dots_json_scan *s, dots_json_tok tok, size_t *start, size_t *end) {
    size_t b = s->tok_start;
    if (tok == DOTS_JSON_BEGIN_OBJECT || tok == DOTS_JSON_BEGIN_ARRAY) {
        int depth = s->depth;
        for (;;) {
            dots_json_tok t = dots_json_next(s);
            if (t == DOTS_JSON_ERROR || t == DOTS_JSON_EOF) return false;
            if ((t == DOTS_JSON_END_OBJECT || t == DOTS_JSON_END_ARRAY) && s->depth == depth - 1) break;
        }
    } else if (tok == DOTS_JSON_ERROR || tok == DOTS_JSON_EOF || tok == DOTS_JSON_END_OBJECT ||
               tok == DOTS_JSON_END_ARRAY) {
        return false;
    }
    if (start) *start = b;
    if (end) *end = s->pos;
    return true;
}
