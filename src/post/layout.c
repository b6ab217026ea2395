/*
 * layout.c - parsing the model's layout answer (docs/model.md §11.4) like the official
 * parser (dots_ocr/utils/output_cleaner.py and parser.py):
 *
 *   1. json.loads(response) -> cells; bboxes rescaled to the original image
 *   2. on failure, the cleaner:
 *      a. '}' + whitespace + '{' not followed by '"' becomes '},{'
 *      b. > 50,000 chars or no final ']', and more than one {"bbox":
 *         -> cut at the last {"bbox":, strip a trailing comma
 *      c. drop exact duplicate {..."bbox": [...]...} dicts (first kept)
 *      d. make sure of a leading '[' and a trailing ']'
 *      e. json.loads again; else every dict that parses alone; else, if it
 *         starts with [{"bbox":, one cell from the first bbox, a category
 *         (default Text) and up to 10,000 chars of text
 *      g. (category, text) seen 5+ times: first kept; same bbox twice: first kept
 *   3. filtered: Markdown = texts joined by blank lines; no rescale
 *
 * Regexes are PCRE2 in UTF + UCP mode, matching Python's re on str.
 */
#include "post/layout.h"

#include "core/strbuf.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dots_layout_free(dots_layout *l) {
    if (!l) return;
    for (int64_t i = 0; i < l->n_cells; i++) {
        free(l->cells[i].category);
        free(l->cells[i].text);
    }
    free(l->cells);
    free(l->salvage_md);
    memset(l, 0, sizeof *l);
}

double dots_bbox_to_source_px(double v, int32_t model_px, int32_t source_px) {
    return trunc(v / ((double)model_px / (double)source_px));
}

double dots_bbox_to_model_px(double v, int32_t source_px, int32_t model_px) {
    return trunc(v / ((double)source_px / (double)model_px));
}

void dots_layout_rescale(dots_layout *l, int32_t model_w, int32_t model_h, int32_t src_w, int32_t src_h) {
    for (int64_t i = 0; i < l->n_cells; i++) {
        dots_cell *c = &l->cells[i];
        if (!c->has_bbox) continue;
        c->bbox[0] = dots_bbox_to_source_px(c->bbox[0], model_w, src_w);
        c->bbox[1] = dots_bbox_to_source_px(c->bbox[1], model_h, src_h);
        c->bbox[2] = dots_bbox_to_source_px(c->bbox[2], model_w, src_w);
        c->bbox[3] = dots_bbox_to_source_px(c->bbox[3], model_h, src_h);
    }
}

/* ------------------------------------------------------------- JSON values */

/* json.loads of the whole text; cells from a list of dicts. Returns false
 * if the text is not JSON or not a list (the parser then salvages). */
static bool cells_from_json(const char *text, size_t len, dots_layout *out, bool require_list_of_dicts) {
    /* json.loads: surrounding whitespace allowed, trailing text refused (no
     * JSON_DISABLE_EOF_CHECK), duplicate keys keep the last value, \u0000
     * allowed. Not accepted, unlike Python: NaN/Infinity literals and
     * numbers that overflow a double or int64; those answers take the
     * salvage path instead of producing non-finite boxes. */
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_ALLOW_NUL, &err);
    if (!root) return false;
    if (!json_is_array(root)) {
        json_decref(root);
        return false;
    }
    size_t n = json_array_size(root);
    dots_cell *cells = calloc(n ? n : 1, sizeof *cells);
    int64_t k = 0;
    bool ok = cells != NULL;
    size_t idx;
    json_t *it;
    json_array_foreach(root, idx, it) {
        if (!ok) break;
        if (!json_is_object(it)) {
            if (require_list_of_dicts) ok = false;
            continue;
        }
        dots_cell *c = &cells[k++];
        const json_t *bb = json_object_get(it, "bbox");
        if (json_is_array(bb) && json_array_size(bb) == 4) {
            c->has_bbox = true;
            for (size_t i = 0; i < 4; i++) {
                const json_t *v = json_array_get(bb, i);
                if (!json_is_number(v) || !isfinite(json_number_value(v))) c->has_bbox = false;
                else c->bbox[i] = json_number_value(v);
            }
        }
        const json_t *cat = json_object_get(it, "category");
        const json_t *txt = json_object_get(it, "text");
        if (json_is_string(cat) && !(c->category = strdup(json_string_value(cat)))) ok = false;
        if (json_is_string(txt) && !(c->text = strdup(json_string_value(txt)))) ok = false;
        if (txt && !json_is_string(txt) && !json_is_null(txt)) { /* str(value): close to Python's print of it */
            c->text = json_dumps(txt, JSON_COMPACT | JSON_ENCODE_ANY);
            if (!c->text) ok = false;
        }
    }
    json_decref(root);
    if (!ok) {
        for (int64_t i = 0; i < k; i++) {
            free(cells[i].category);
            free(cells[i].text);
        }
        free(cells);
        return false;
    }
    out->cells = cells;
    out->n_cells = k;
    return true;
}

/* ------------------------------------------------------------------ regex */

static pcre2_code *compile(const char *pattern) {
    int err;
    PCRE2_SIZE at;
    return pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_DOTALL, &err, &at, NULL);
}

/* The official dict pattern: {[^{}]*?"bbox"\s*:\s*\[[^\]]*?\][^{}]*?} */
#define DICT_PATTERN "\\{[^{}]*?\"bbox\"\\s*:\\s*\\[[^\\]]*?\\][^{}]*?\\}"

typedef struct span {
    size_t b, e;
} span;

/* All non-overlapping matches, left to right. */
static span *find_all(pcre2_code *re, const char *s, size_t n, int64_t *count) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    span *out = NULL;
    int64_t k = 0, cap = 0;
    size_t pos = 0;
    while (md && pos <= n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, 0, md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (k == cap) {
            cap = cap ? cap * 2 : 16;
            span *p = realloc(out, sizeof *p * (size_t)cap);
            if (!p) break;
            out = p;
        }
        out[k++] = (span){ov[0], ov[1]};
        pos = ov[1] > ov[0] ? ov[1] : ov[1] + 1;
    }
    pcre2_match_data_free(md);
    *count = k;
    return out;
}

/* ---------------------------------------------------------------- cleaner */

static char *fix_missing_delimiters(const char *s, size_t n, size_t *out_n) {
    /* re.sub(r'\}\s*\{(?!")', '},{', s) */
    pcre2_code *re = compile("\\}\\s*\\{(?!\")");
    dots_strbuf b = {0};
    int64_t k = 0;
    span *m = re ? find_all(re, s, n, &k) : NULL;
    size_t last = 0;
    for (int64_t i = 0; i < k; i++) {
        dots_strbuf_add(&b, s + last, m[i].b - last);
        dots_strbuf_str(&b, "},{");
        last = m[i].e;
    }
    dots_strbuf_add(&b, s + last, n - last);
    if (!b.p) dots_strbuf_add(&b, "", 0);
    free(m);
    pcre2_code_free(re);
    *out_n = b.n;
    return b.p;
}

static const char *find_last(const char *s, size_t n, const char *needle, int *count) {
    size_t nl = strlen(needle);
    const char *last = NULL;
    *count = 0;
    for (const char *p = s; p + nl <= s + n; p++)
        if (memcmp(p, needle, nl) == 0) {
            last = p;
            (*count)++;
        }
    return last;
}

static size_t utf8_chars(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

dots_status dots_layout_salvage(dots_ctx *ctx, const char *response, size_t len, dots_layout *out) {
    memset(out, 0, sizeof *out);
    size_t n = 0;
    char *s = fix_missing_delimiters(response, len, &n); /* a */
    if (!s) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    /* b: cut an incomplete tail */
    size_t tn = n;
    while (tn > 0 && (s[tn - 1] == ' ' || s[tn - 1] == '\n' || s[tn - 1] == '\r' || s[tn - 1] == '\t')) tn--;
    int count;
    const char *last = find_last(s, n, "{\"bbox\":", &count);
    if ((utf8_chars(s, n) > 50000 || tn == 0 || s[tn - 1] != ']') && count > 1) {
        n = (size_t)(last - s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\t')) n--;
        if (n > 0 && s[n - 1] == ',') n--;
        s[n] = '\0';
    }
    /* c: drop exact duplicate dicts (first kept), rebuilt as [d1, d2, ...] */
    pcre2_code *re = compile(DICT_PATTERN);
    int64_t k = 0;
    span *m = re ? find_all(re, s, n, &k) : NULL;
    bool dup = false;
    for (int64_t i = 0; i < k && !dup; i++)
        for (int64_t j = 0; j < i && !dup; j++)
            dup = m[i].e - m[i].b == m[j].e - m[j].b && memcmp(s + m[i].b, s + m[j].b, m[i].e - m[i].b) == 0;
    if (dup) {
        dots_strbuf b = {0};
        dots_strbuf_str(&b, "[");
        bool first = true;
        for (int64_t i = 0; i < k; i++) {
            bool seen = false;
            for (int64_t j = 0; j < i && !seen; j++)
                seen = m[i].e - m[i].b == m[j].e - m[j].b && memcmp(s + m[i].b, s + m[j].b, m[i].e - m[i].b) == 0;
            if (seen) continue;
            if (!first) dots_strbuf_str(&b, ", ");
            dots_strbuf_add(&b, s + m[i].b, m[i].e - m[i].b);
            first = false;
        }
        dots_strbuf_str(&b, "]");
        free(s);
        s = b.p;
        n = b.n;
        if (!s) {
            free(m);
            pcre2_code_free(re);
            return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
    /* d: brackets */
    size_t lead = 0;
    while (lead < n && (s[lead] == ' ' || s[lead] == '\n' || s[lead] == '\r' || s[lead] == '\t')) lead++;
    tn = n;
    while (tn > lead && (s[tn - 1] == ' ' || s[tn - 1] == '\n' || s[tn - 1] == '\r' || s[tn - 1] == '\t')) tn--;
    dots_strbuf b = {0};
    if (lead >= n || s[lead] != '[') dots_strbuf_str(&b, "[");
    dots_strbuf_add(&b, s + lead, tn - lead);
    if (tn == lead || s[tn - 1] != ']') dots_strbuf_str(&b, "]");
    free(s);
    s = b.p;
    n = b.n;
    /* e: parse, or salvage dicts one by one, or the last resort */
    dots_status st = DOTS_OK;
    if (!s) st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == DOTS_OK && !cells_from_json(s, n, out, false)) {
        free(m);
        m = re ? find_all(re, s, n, &k) : NULL;
        dots_cell *cells = calloc((size_t)(k ? k : 1), sizeof *cells);
        int64_t nc = 0;
        for (int64_t i = 0; cells && i < k; i++) {
            dots_layout one = {0};
            char *frag = malloc(m[i].e - m[i].b + 3);
            if (!frag) break;
            frag[0] = '[';
            memcpy(frag + 1, s + m[i].b, m[i].e - m[i].b);
            frag[m[i].e - m[i].b + 1] = ']';
            if (cells_from_json(frag, m[i].e - m[i].b + 2, &one, true) && one.n_cells == 1) cells[nc++] = one.cells[0];
            else dots_layout_free(&one);
            if (one.n_cells == 1) free(one.cells);
            free(frag);
        }
        out->cells = cells;
        out->n_cells = nc;
        if (nc == 0 && strncmp(response, "[{\"bbox\":", 9) == 0) {
            /* last resort: the first bbox, a category, up to 10,000 chars of text */
            pcre2_code *bre = compile("\"bbox\":\\s*\\[\\s*(-?[\\d.]+)\\s*,\\s*(-?[\\d.]+)\\s*,\\s*(-?[\\d.]+)\\s*,\\s*(-?[\\d.]+)");
            pcre2_code *cre = compile("\"category\":\\s*\"([^\"]*)\"");
            pcre2_code *tre = compile("\"text\":\\s*\"(.*)");
            pcre2_match_data *md = bre ? pcre2_match_data_create_from_pattern(bre, NULL) : NULL;
            if (md && cells && pcre2_match(bre, (PCRE2_SPTR)response, len, 0, 0, md, NULL) >= 5) {
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                dots_cell *c = &cells[0];
                c->has_bbox = true;
                for (int i = 0; i < 4; i++) c->bbox[i] = strtod(response + ov[2 + 2 * i], NULL);
                pcre2_match_data *m2 = pcre2_match_data_create_from_pattern(tre, NULL);
                c->category = strdup("Text");
                if (cre && m2 && pcre2_match(cre, (PCRE2_SPTR)response, len, 0, 0, m2, NULL) >= 2) {
                    PCRE2_SIZE *o2 = pcre2_get_ovector_pointer(m2);
                    free(c->category);
                    c->category = strndup(response + o2[2], o2[3] - o2[2]);
                }
                if (tre && m2 && pcre2_match(tre, (PCRE2_SPTR)response, len, 0, 0, m2, NULL) >= 2) {
                    PCRE2_SIZE *o2 = pcre2_get_ovector_pointer(m2);
                    size_t tl = o2[3] - o2[2], chars = 0, cut = 0;
                    while (cut < tl && chars < 10000) {
                        cut++;
                        while (cut < tl && ((unsigned char)response[o2[2] + cut] & 0xC0) == 0x80) cut++;
                        chars++;
                    }
                    c->text = strndup(response + o2[2], cut);
                }
                pcre2_match_data_free(m2);
                out->n_cells = 1;
            }
            pcre2_match_data_free(md);
            pcre2_code_free(bre);
            pcre2_code_free(cre);
            pcre2_code_free(tre);
        }
    }
    free(m);
    free(s);
    pcre2_code_free(re);
    if (st != DOTS_OK) return st;
    /* g: deduplicate (decided on the whole list first, then compacted) */
    bool *drop = calloc((size_t)(out->n_cells ? out->n_cells : 1), sizeof *drop);
    if (!drop) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t i = 0; i < out->n_cells; i++) {
        const dots_cell *c = &out->cells[i];
        int64_t same_pair = 0;
        bool earlier_pair = false;
        for (int64_t j = 0; j < out->n_cells; j++) {
            const dots_cell *d = &out->cells[j];
            bool cat_eq = (c->category && d->category) ? strcmp(c->category, d->category) == 0 : c->category == d->category;
            bool txt_eq = (c->text && d->text) ? strcmp(c->text, d->text) == 0 : c->text == d->text;
            if (cat_eq && txt_eq) {
                same_pair++;
                if (j < i) earlier_pair = true;
            }
            if (j < i && c->has_bbox && d->has_bbox && memcmp(c->bbox, d->bbox, sizeof c->bbox) == 0) drop[i] = true;
        }
        if (same_pair >= 5 && earlier_pair) drop[i] = true;
    }
    int64_t w = 0;
    for (int64_t i = 0; i < out->n_cells; i++) {
        if (drop[i]) {
            free(out->cells[i].category);
            free(out->cells[i].text);
        } else {
            out->cells[w++] = out->cells[i];
        }
    }
    out->n_cells = w;
    free(drop);
    return DOTS_OK;
}

dots_status dots_layout_parse(dots_ctx *ctx, const char *response, size_t len, dots_layout *out) {
    memset(out, 0, sizeof *out);
    if (cells_from_json(response, len, out, false)) return DOTS_OK;
    dots_layout salv;
    dots_status st = dots_layout_salvage(ctx, response, len, &salv);
    if (st != DOTS_OK) return st;
    dots_strbuf b = {0};
    bool first = true;
    for (int64_t i = 0; i < salv.n_cells; i++) {
        if (!salv.cells[i].text) continue;
        if (!first) dots_strbuf_str(&b, "\n\n");
        dots_strbuf_str(&b, salv.cells[i].text);
        first = false;
    }
    if (!b.p) dots_strbuf_add(&b, "", 0);
    if (b.oom || !b.p) {
        dots_layout_free(&salv);
        free(b.p);
        return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    }
    *out = salv;
    out->filtered = true;
    out->salvage_md = b.p;
    return DOTS_OK;
}

/* --------------------------------------------------------------- output */

static void put_json_string(dots_strbuf *b, const char *s) {
    dots_strbuf_str(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        switch (c) {
        case '"': dots_strbuf_str(b, "\\\""); break;
        case '\\': dots_strbuf_str(b, "\\\\"); break;
        case '\n': dots_strbuf_str(b, "\\n"); break;
        case '\r': dots_strbuf_str(b, "\\r"); break;
        case '\t': dots_strbuf_str(b, "\\t"); break;
        case '\b': dots_strbuf_str(b, "\\b"); break;
        case '\f': dots_strbuf_str(b, "\\f"); break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                dots_strbuf_str(b, esc);
            } else {
                dots_strbuf_add(b, s, 1);
            }
        }
    }
    dots_strbuf_str(b, "\"");
}

static void put_json_number(dots_strbuf *b, double v) {
    char num[64];
    if (!isfinite(v)) snprintf(num, sizeof num, "null"); /* never inf/nan: not JSON */
    else if (v == trunc(v) && fabs(v) < 1e15) snprintf(num, sizeof num, "%lld", (long long)v);
    else snprintf(num, sizeof num, "%.17g", v);
    dots_strbuf_str(b, num);
}

char *dots_json_quote(const char *s) {
    dots_strbuf b = {0};
    put_json_string(&b, s);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

char *dots_layout_to_json(const dots_layout *l) {
    dots_strbuf b = {0};
    dots_strbuf_str(&b, "[");
    for (int64_t i = 0; i < l->n_cells; i++) {
        const dots_cell *c = &l->cells[i];
        dots_strbuf_str(&b, i ? ", {" : "{");
        bool first = true;
        if (c->has_bbox) {
            dots_strbuf_str(&b, "\"bbox\": [");
            for (int k = 0; k < 4; k++) {
                if (k) dots_strbuf_str(&b, ", ");
                put_json_number(&b, c->bbox[k]);
            }
            dots_strbuf_str(&b, "]");
            first = false;
        }
        if (c->category) {
            dots_strbuf_str(&b, first ? "\"category\": " : ", \"category\": ");
            put_json_string(&b, c->category);
            first = false;
        }
        if (c->text) {
            dots_strbuf_str(&b, first ? "\"text\": " : ", \"text\": ");
            put_json_string(&b, c->text);
        }
        dots_strbuf_str(&b, "}");
    }
    dots_strbuf_str(&b, "]");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
