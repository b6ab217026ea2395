/*
 * layout_grammar.c - see layout_grammar.h. One function decides every
 * byte (feed), one produces the canonical way out of every state
 * (next_closing_byte); both walk the same positions:
 *
 *   START [ ARR_FIRST { OBJ_KEY "bbox" COLON BB_OPEN [ NUM_START NUM ... ] AFTER_BBOX ,
 *   OBJ_KEY "category" COLON CAT_OPEN " CAT " AFTER_CAT (, OBJ_KEY "text" COLON TEXT_OPEN
 *   " STR ... " AFTER_TEXT) } ARR_NEXT (, ARR_OBJ { ...) ] END
 */
#include "decode/layout_grammar.h"

#include <string.h>

enum {
    P_START = 0, P_ARR_FIRST, P_ARR_NEXT, P_ARR_OBJ, P_OBJ_KEY, P_LIT, P_COLON, P_BB_OPEN, P_NUM_START, P_NUM,
    P_NUM_AFTER, P_AFTER_BBOX, P_CAT_OPEN, P_CAT, P_AFTER_CAT, P_TEXT_OPEN, P_STR, P_STR_ESC, P_STR_U, P_U2_BS, P_U2_U,
    P_AFTER_TEXT, P_END
};

const char *const dots_lg_categories[DOTS_LG_N_CATEGORIES] = {
    "Caption", "Footnote", "Formula", "List-item", "Page-footer", "Page-header",
    "Picture", "Section-header", "Table", "Text", "Title"};
#define CAT_PICTURE 6
#define ALL_CATS ((uint16_t)((1u << DOTS_LG_N_CATEGORIES) - 1))

static const char *const keys[3] = {"\"bbox\"", "\"category\"", "\"text\""};

void dots_lg_init(dots_lg_state *s, const dots_lg_limits *lim) {
    memset(s, 0, sizeof *s);
    s->pos = P_START;
    s->lim = *lim;
}

bool dots_lg_complete(const dots_lg_state *s) { return s->pos == P_END; }
bool dots_lg_in_text(const dots_lg_state *s) { return s->pos >= P_STR && s->pos <= P_U2_U; }
bool dots_lg_between_objects(const dots_lg_state *s) { return s->pos == P_ARR_NEXT; }

static bool is_ws(uint8_t c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

static int hex_val(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* bbox number i's bounds: x1, y1 in [0, side]; x2 >= x1, y2 >= y1 */
static int64_t num_lo(const dots_lg_state *s) { return s->num >= 2 ? s->vals[s->num - 2] : 0; }
static int64_t num_hi(const dots_lg_state *s) { return s->num % 2 ? s->lim.height : s->lim.width; }

/* Whether digits can still be appended to val (nd digits) to land in [lo, hi]. */
static bool num_viable(int64_t val, int nd, int64_t lo, int64_t hi) {
    if (nd == 0) return lo <= hi;
    if (nd == 1 && val == 0) return lo <= 0; /* JSON: no digit after a leading 0 */
    for (int64_t scale = 1; scale <= 1000000000; scale *= 10) {
        int64_t base = val * scale;
        if (base > hi) return false;
        if (base + scale - 1 >= lo) return true;
    }
    return false;
}

/* A \u escape's digits so far can still make an allowed code unit: the
 * first of a pair never a low surrogate, the second always one. */
static bool u_viable(uint32_t val, int digits, bool low) {
    uint32_t span = 1u << (4 * (4 - digits));
    uint32_t a = val * span, b = a + span - 1;
    if (low) return b >= 0xDC00 && a <= 0xDFFF;
    return !(a >= 0xDC00 && b <= 0xDFFF);
}

/* The key that follows the current value: category after bbox, text after
 * category when the object carries text, else none (-1). */
static int next_key(const dots_lg_state *s) {
    if (s->key == 0) return 1;
    if (s->key == 1 && s->lim.with_text && !(s->cat_set & (1u << CAT_PICTURE))) return 2;
    return -1;
}

static bool ws_ok(dots_lg_state *s) {
    if (s->ws >= DOTS_LG_MAX_WS) return false;
    s->ws++;
    return true;
}

static void start_number(dots_lg_state *s, int num) {
    s->pos = P_NUM_START;
    s->num = (uint8_t)num;
    s->nd = 0;
    s->val = 0;
}

bool dots_lg_feed(dots_lg_state *s, uint8_t c) {
    dots_lg_state t = *s;
    const bool ws = is_ws(c);
    if (!ws) t.ws = 0;
    switch (t.pos) {
    case P_START:
        if (ws) { if (!ws_ok(&t)) return false; break; }
        if (c != '[') return false;
        t.pos = P_ARR_FIRST;
        break;
    case P_ARR_FIRST:
    case P_ARR_OBJ:
        if (ws) { if (!ws_ok(&t)) return false; break; }
        if (c == ']' && t.pos == P_ARR_FIRST) t.pos = P_END;
        else if (c == '{') t.pos = P_OBJ_KEY, t.key = 0;
        else return false;
        break;
    case P_ARR_NEXT:
        if (ws) { if (!ws_ok(&t)) return false; break; }
        if (c == ']') t.pos = P_END;
        else if (c == ',') t.pos = P_ARR_OBJ;
        else return false;
        break;
    case P_OBJ_KEY:
        if (ws) { if (!ws_ok(&t)) return false; break; }
        if (c != '"') return false;
        t.pos = P_LIT;
        t.lit_pos = 1;
        break;
    case P_LIT: {
        const char *k = keys[t.key];
        if (c != (uint8_t)k[t.lit_pos]) return false;
        if (!k[++t.lit_pos]) t.pos = P_COLON, t.lit_pos = 0;
        break;
    }
    case P_COLON:
        if (ws) { if (!ws_ok(&t)) return false; break; }
        if (c != ':') return false;
        t.pos = t.key == 0 ? P_BB_OPEN : t.key == 1 ? P_CAT_OPEN : P_TEXT_OPEN;
        break;
    case P_BB_OPEN:
        if (ws) { if (!ws_ok(&t)) return false; break; }
        if (c != '[') return false;
        start_number(&t, 0);
        break;
    case P_NUM_START:
        if (ws) { if (!ws_ok(&t)) return false; break; }
        __attribute__((fallthrough)); /* the first digit */
    case P_NUM:
        if (c >= '0' && c <= '9') {
            if (t.nd == 1 && t.val == 0) return false;
            int64_t v = (int64_t)t.val * 10 + (c - '0');
            if (t.nd >= 9 || !num_viable(v, t.nd + 1, num_lo(&t), num_hi(&t))) return false;
            t.val = (int32_t)v;
            t.nd++;
            t.pos = P_NUM;
            break;
        }
        if (t.pos == P_NUM_START) return false;
        if (t.val < num_lo(&t) || t.val > num_hi(&t)) return false;
        if (ws) {
            t.pos = P_NUM_AFTER;
            t.ws = 1;
            break;
        }
        __attribute__((fallthrough)); /* the separator right after the digits */
    case P_NUM_AFTER:
        if (ws && t.pos == P_NUM_AFTER) { if (!ws_ok(&t)) return false; break; }
        if (c == ',' && t.num < 3) {
            if (t.num < 2) t.vals[t.num] = t.val;
            start_number(&t, t.num + 1);
        } else if (c == ']' && t.num == 3) {
            t.pos = P_AFTER_BBOX;
            t.num = 0, t.nd = 0, t.val = 0, t.vals[0] = t.vals[1] = 0;
        } else {
            return false;
        }
        break;
    case P_AFTER_BBOX:
    case P_AFTER_CAT:
    case P_AFTER_TEXT: {
        if (ws) { if (!ws_ok(&t)) return false; break; }
        int nk = t.pos == P_AFTER_TEXT ? -1 : next_key(&t);
        if (c == ',' && nk >= 0) {
            t.pos = P_OBJ_KEY;
            t.key = (uint8_t)nk;
        } else if (c == '}' && nk < 0) {
            t.pos = P_ARR_NEXT;
            t.key = 0;
        } else {
            return false;
        }
        if (t.key != 2) t.cat_set = 0; /* the category has decided what follows */
        break;
    }
    case P_CAT_OPEN:
        if (ws) { if (!ws_ok(&t)) return false; break; }
        if (c != '"') return false;
        t.pos = P_CAT;
        t.cat_len = 0;
        t.cat_set = ALL_CATS;
        break;
    case P_CAT: {
        uint16_t keep = 0;
        for (int k = 0; k < DOTS_LG_N_CATEGORIES; k++) {
            if (!(t.cat_set & (1u << k))) continue;
            size_t n = strlen(dots_lg_categories[k]);
            if (c == '"' ? n == t.cat_len : n > t.cat_len && (uint8_t)dots_lg_categories[k][t.cat_len] == c) keep |= (uint16_t)(1u << k);
        }
        if (!keep) return false;
        t.cat_set = keep;
        if (c == '"') t.pos = P_AFTER_CAT, t.cat_len = 0;
        else t.cat_len++;
        break;
    }
    case P_TEXT_OPEN:
        if (ws) { if (!ws_ok(&t)) return false; break; }
        if (c != '"') return false;
        t.pos = P_STR;
        t.cat_set = 0;
        break;
    case P_STR:
        if (t.utf8_need) {
            if (c < t.utf8_lo || c > t.utf8_hi) return false;
            t.utf8_need--;
            t.utf8_lo = 0x80, t.utf8_hi = 0xBF;
            if (!t.utf8_need) t.utf8_lo = t.utf8_hi = 0;
            break;
        }
        t.ws = 0; /* whitespace inside a string is text */
        if (c == '"') t.pos = P_AFTER_TEXT;
        else if (c == '\\') t.pos = P_STR_ESC;
        else if (c < 0x20) return false;
        else if (c < 0x80) break;
        else if (c >= 0xC2 && c <= 0xDF) t.utf8_need = 1, t.utf8_lo = 0x80, t.utf8_hi = 0xBF;
        else if (c >= 0xE0 && c <= 0xEF)
            t.utf8_need = 2, t.utf8_lo = c == 0xE0 ? 0xA0 : 0x80, t.utf8_hi = c == 0xED ? 0x9F : 0xBF;
        else if (c >= 0xF0 && c <= 0xF4)
            t.utf8_need = 3, t.utf8_lo = c == 0xF0 ? 0x90 : 0x80, t.utf8_hi = c == 0xF4 ? 0x8F : 0xBF;
        else return false;
        break;
    case P_STR_ESC:
        if (c == 'u') {
            t.pos = P_STR_U;
            t.u_digits = 0;
            t.u_val = 0;
        } else if (strchr("\"\\/bfnrt", c) && c) {
            t.pos = P_STR;
        } else {
            return false;
        }
        break;
    case P_STR_U: {
        int h = hex_val(c);
        if (h < 0) return false;
        uint32_t v = (uint32_t)t.u_val * 16 + (uint32_t)h;
        if (!u_viable(v, t.u_digits + 1, t.u_low)) return false;
        t.u_val = (uint16_t)v;
        if (++t.u_digits < 4) break;
        bool high = !t.u_low && v >= 0xD800 && v <= 0xDBFF;
        t.pos = high ? P_U2_BS : P_STR;
        t.u_low = high;
        t.u_digits = 0;
        t.u_val = 0;
        break;
    }
    case P_U2_BS:
        if (c != '\\') return false;
        t.pos = P_U2_U;
        break;
    case P_U2_U:
        if (c != 'u') return false;
        t.pos = P_STR_U;
        break;
    case P_END: /* JSON allows whitespace after the value */
        if (ws && ws_ok(&t)) break;
        return false;
    default:
        return false;
    }
    *s = t;
    return true;
}

bool dots_lg_feed_bytes(dots_lg_state *s, const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!dots_lg_feed(s, b[i])) return false;
    return true;
}

/* The next byte of the canonical way out: always accepted by feed. */
static uint8_t next_closing_byte(const dots_lg_state *s) {
    switch (s->pos) {
    case P_START: return '[';
    case P_ARR_FIRST:
    case P_ARR_NEXT: return ']';
    case P_ARR_OBJ: return '{';
    case P_OBJ_KEY: return '"';
    case P_LIT: return (uint8_t)keys[s->key][s->lit_pos];
    case P_COLON: return ':';
    case P_BB_OPEN: return '[';
    case P_NUM_START:
    case P_NUM: {
        int64_t lo = num_lo(s), hi = num_hi(s);
        if (s->pos == P_NUM && s->val >= lo && s->val <= hi) return s->num < 3 ? ',' : ']';
        if (s->pos == P_NUM_START) { /* the first digit of lo */
            int64_t v = lo, p = 1;
            while (v / p >= 10) p *= 10;
            return (uint8_t)('0' + v / p);
        }
        /* the smallest completion in [lo, hi]: its next digit */
        for (int64_t scale = 10; scale <= 1000000000; scale *= 10) {
            int64_t base = (int64_t)s->val * scale, target = base > lo ? base : lo;
            if (target <= hi && target < base + scale) return (uint8_t)('0' + (target / (scale / 10)) % 10);
        }
        return '0'; /* unreachable: feed kept the prefix viable */
    }
    case P_NUM_AFTER: return s->num < 3 ? ',' : ']';
    case P_AFTER_BBOX:
    case P_AFTER_CAT: return next_key(s) >= 0 ? ',' : '}';
    case P_AFTER_TEXT: return '}';
    case P_CAT_OPEN:
    case P_TEXT_OPEN: return '"';
    case P_CAT:
        for (int k = 0; k < DOTS_LG_N_CATEGORIES; k++)
            if (s->cat_set & (1u << k)) {
                const char *name = dots_lg_categories[k];
                /* prefer "Text" when it is still possible: the least surprising filler */
                if ((s->cat_set & (1u << 9)) && k != 9) continue;
                return name[s->cat_len] ? (uint8_t)name[s->cat_len] : '"';
            }
        return '"';
    case P_STR: return s->utf8_need ? s->utf8_lo : '"';
    case P_STR_ESC: return 'n';
    case P_STR_U: {
        /* the smallest viable next hex digit */
        for (int h = 0; h < 16; h++)
            if (u_viable((uint32_t)s->u_val * 16 + (uint32_t)h, s->u_digits + 1, s->u_low)) return (uint8_t)"0123456789ABCDEF"[h];
        return '0';
    }
    case P_U2_BS: return '\\';
    case P_U2_U: return 'u';
    default: return 0;
    }
}

size_t dots_lg_closing(const dots_lg_state *s, bool until_object, uint8_t *out, size_t *n_utf8) {
    dots_lg_state t = *s;
    size_t n = 0;
    *n_utf8 = 0;
    while (t.pos != P_END && n < DOTS_LG_MAX_CLOSE) {
        if (until_object && t.pos == P_ARR_NEXT) break;
        uint8_t b = next_closing_byte(&t);
        if (t.pos == P_STR && t.utf8_need) (*n_utf8)++;
        if (!dots_lg_feed(&t, b)) break; /* cannot happen: every closing byte is valid */
        out[n++] = b;
    }
    return n;
}
