/*
 * vocab.c - loading a Qwen2 byte-level BPE tokenizer into the tables of
 * tokenizer_internal.h, from either form Hugging Face ships:
 *
 *   tokenizer.json   {"model": {"type": "BPE", "vocab": {tok: id}, "merges": ["a b" | ["a","b"]]},
 *                     "added_tokens": [{"id", "content", "special", ...}],
 *                     "normalizer": NFC, "pre_tokenizer": Sequence[Split(Regex), ByteLevel],
 *                     "decoder": ByteLevel}
 *   vocab.json + merges.txt (+ tokenizer_config.json "added_tokens_decoder")
 *
 * The 7 MB tokenizer.json is walked once with the pull scanner
 * (io/json_scan.h): the vocabulary and merges stream straight into the
 * tables, since a DOM of 300k strings costs more than the tables
 * themselves; the small rest (pipeline, added tokens) is read with jansson.
 * Anything the file asks for that we do not implement is an error, never a
 * silent approximation.
 */
#include "tokenizer/tokenizer_internal.h"
#include "io/gguf.h"
#include "io/json_scan.h"
#include "model/gguf_model.h"
#include "tokenizer/added_tokens.h"

#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The Qwen2 pre-tokenizer (transformers' PRETOKENIZE_REGEX), for the
 * vocab.json + merges.txt form that carries no pattern of its own. */
static const char qwen2_pattern[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

int dots_byte_to_unicode(int b) {
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return b;
    /* the other 68 bytes map, in order, to 256, 257, ... */
    int n = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) n++;
    return 256 + n;
}

int dots_unicode_to_byte(uint32_t cp) {
    if (cp < 256) {
        int b = (int)cp;
        return dots_byte_to_unicode(b) == b ? b : -1;
    }
    if (cp >= 256 + 68) return -1;
    for (int b = 0; b < 256; b++)
        if (dots_byte_to_unicode(b) == (int)cp) return b;
    return -1;
}

/* -------------------------------------------------------------- building */

typedef struct loader {
    dots_ctx *ctx;
    dots_tokenizer *tok;
    const char *label; /* file named in messages */
} loader;

static dots_status oom(loader *L) { return DOTS_FAIL(L->ctx, DOTS_ERR_OUT_OF_MEMORY, "%s: out of memory", L->label); }

/* The maps' keys and the added tokens point into the arena (the maps
 * borrow their keys); a move of the arena moves them along. */
static void rebase_map(dots_strmap *m, uintptr_t from, uintptr_t to) {
    for (size_t i = 0; m->slots && i < m->n_slots; i++)
        if (m->slots[i].key) m->slots[i].key = (const char *)(to + ((uintptr_t)m->slots[i].key - from));
}

static bool arena_add(dots_tokenizer *t, const char *s, size_t n, uint32_t *off) {
    if (t->arena_len + n + 1 > t->arena_cap) {
        size_t cap = t->arena_cap ? t->arena_cap * 2 : 1 << 20;
        while (cap < t->arena_len + n + 1) cap *= 2;
        if (cap > UINT32_MAX) return false;
        const uintptr_t from = (uintptr_t)t->arena;
        char *a = realloc(t->arena, cap);
        if (!a) return false;
        if (from && (uintptr_t)a != from) {
            rebase_map(&t->vocab, from, (uintptr_t)a);
            rebase_map(&t->added_map, from, (uintptr_t)a);
            for (int32_t i = 0; i < t->n_added; i++) t->added[i].content = (const char *)((uintptr_t)a + ((uintptr_t)t->added[i].content - from));
        }
        t->arena = a;
        t->arena_cap = cap;
    }
    memcpy(t->arena + t->arena_len, s, n);
    t->arena[t->arena_len + n] = '\0';
    *off = (uint32_t)t->arena_len;
    t->arena_len += n + 1;
    return true;
}

/* Makes ids [0, n_ids) addressable (growing the tables if needed). */
static dots_status alloc_ids(loader *L, int64_t n_ids) {
    dots_tokenizer *t = L->tok;
    if (n_ids <= t->n_ids) return DOTS_OK;
    if (n_ids > DOTS_TOK_MAX_IDS)
        return DOTS_FAIL(L->ctx, DOTS_ERR_LIMIT, "%s: %lld token ids (limit %d)", L->label, (long long)n_ids, DOTS_TOK_MAX_IDS);
    uint32_t *off = realloc(t->tok_off, (size_t)n_ids * sizeof *off);
    if (off) t->tok_off = off;
    uint32_t *len = realloc(t->tok_len, (size_t)n_ids * sizeof *len);
    if (len) t->tok_len = len;
    uint8_t *flags = realloc(t->tok_flags, (size_t)n_ids);
    if (flags) t->tok_flags = flags;
    if (!off || !len || !flags) return oom(L);
    for (int64_t i = t->n_ids; i < n_ids; i++) {
        t->tok_off[i] = UINT32_MAX;
        t->tok_len[i] = 0;
        t->tok_flags[i] = 0;
    }
    t->n_ids = (int32_t)n_ids;
    return DOTS_OK;
}

static dots_status add_added(loader *L, const char *s, int64_t id, bool special, bool lstrip, bool rstrip,
                             bool normalized, bool single_word) {
    dots_tokenizer *t = L->tok;
    size_t n = strlen(s);
    if (n == 0 || !dots_utf8_valid(s, n))
        return DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: added token %lld: content is empty or not UTF-8", L->label, (long long)id);
    if (lstrip || rstrip || single_word || normalized)
        return DOTS_FAIL(L->ctx, DOTS_ERR_UNSUPPORTED,
                         "%s: added token '%.60s': lstrip/rstrip/single_word/normalized=true are not supported", L->label, s);
    if (id < 0 || id >= DOTS_TOK_MAX_IDS) return DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: added token: bad id %lld", L->label, (long long)id);
    dots_status st = alloc_ids(L, id + 1);
    if (st != DOTS_OK) return st;
    if (t->tok_off[id] != UINT32_MAX) {
        bool same = (t->tok_flags[id] & DOTS_TOKF_VOCAB) && t->tok_len[id] == n && memcmp(t->arena + t->tok_off[id], s, n) == 0;
        if (!same)
            return DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: added token '%.60s': id %lld is already '%.60s'", L->label, s,
                             (long long)id, t->arena + t->tok_off[id]);
    } else {
        uint32_t off;
        if (!arena_add(t, s, n, &off)) return oom(L);
        t->tok_off[id] = off;
        t->tok_len[id] = (uint32_t)n;
    }
    int32_t prev;
    if (!dots_strmap_put(&t->added_map, t->arena + t->tok_off[id], n, (int32_t)id, &prev)) {
        if (t->added_map.n_items >= t->added_map.cap) return oom(L);
        return DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: added token '%.60s' appears twice", L->label, s);
    }
    t->tok_flags[id] |= DOTS_TOKF_ADDED | (special ? DOTS_TOKF_SPECIAL : 0);
    dots_added_token *a = &t->added[t->n_added++];
    a->content = t->arena + t->tok_off[id];
    a->len = (uint32_t)n;
    a->id = (int32_t)id;
    a->special = special;
    return DOTS_OK;
}

static dots_status add_merge(loader *L, int64_t rank, const char *a, size_t na, const char *b, size_t nb) {
    dots_tokenizer *t = L->tok;
    int32_t ia = dots_strmap_get(&t->vocab, a, na), ib = dots_strmap_get(&t->vocab, b, nb);
    if (ia < 0 || ib < 0)
        return DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: merges[%lld]: unknown token '%.*s'", L->label, (long long)rank,
                         (int)(ia < 0 ? (na > 60 ? 60 : na) : (nb > 60 ? 60 : nb)), ia < 0 ? a : b);
    char buf[1024];
    if (na + nb > sizeof buf)
        return DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: merges[%lld]: tokens too long", L->label, (long long)rank);
    memcpy(buf, a, na);
    memcpy(buf + na, b, nb);
    int32_t im = dots_strmap_get(&t->vocab, buf, na + nb);
    if (im < 0)
        return DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: merges[%lld]: merged token '%.*s' is not in the vocab", L->label,
                         (long long)rank, (int)(na + nb > 60 ? 60 : na + nb), buf);
    /* like the reference (a HashMap insert), a repeated pair keeps its last rank */
    if (!dots_u64map_set(&t->merges, ((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib, (int32_t)rank, im)) return oom(L);
    return DOTS_OK;
}

static int cmp_added(const void *x, const void *y) {
    const dots_added_token *a = x, *b = y;
    unsigned char fa = (unsigned char)a->content[0], fb = (unsigned char)b->content[0];
    if (fa != fb) return fa < fb ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1; /* longest first: leftmost-longest matching */
    return memcmp(a->content, b->content, a->len);
}

/* Tables every form needs once vocab, merges and added tokens are in. */
static dots_status finish(loader *L) {
    dots_tokenizer *t = L->tok;
    /* llama.cpp's arrays pad the vocabulary to the embedding's 151,936 rows
     * ("[PAD<i>]", type unused): ids past the last real token are not ids
     * (one could be sampled and then not decoded) */
    while (t->n_ids > 0 && t->tok_off[t->n_ids - 1] == UINT32_MAX) t->n_ids--;
    for (int b = 0; b < 256; b++) {
        char u[4];
        int cp = dots_byte_to_unicode(b), n;
        if (cp < 0x80) {
            u[0] = (char)cp;
            n = 1;
        } else {
            u[0] = (char)(0xC0 | (cp >> 6));
            u[1] = (char)(0x80 | (cp & 0x3F));
            n = 2;
        }
        t->byte_id[b] = dots_strmap_get(&t->vocab, u, (size_t)n);
        if (t->byte_id[b] < 0)
            return DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: vocab lacks the byte-level token of byte 0x%02x (not a byte-level BPE?)",
                             L->label, b);
    }
    qsort(t->added, (size_t)t->n_added, sizeof *t->added, cmp_added);
    int32_t i = 0;
    for (int b = 0; b < 256; b++) {
        t->added_first[b] = i;
        while (i < t->n_added && (unsigned char)t->added[i].content[0] == b) i++;
    }
    t->added_first[256] = t->n_added;
    t->cache = calloc(DOTS_BPE_CACHE_SLOTS, sizeof *t->cache);
    if (!t->cache) return oom(L);
    return DOTS_OK;
}

/* --------------------------------------------------------- tokenizer.json */

static const json_t *get(const json_t *o, const char *k) { return json_object_get(o, k); }

static bool is_type(const json_t *o, const char *type) {
    const json_t *t = get(o, "type");
    return json_is_string(t) && strcmp(json_string_value(t), type) == 0;
}

static bool flag(const json_t *o, const char *k) { return json_is_true(get(o, k)); }

static bool get_id(const json_t *v, int64_t *out) {
    if (!json_is_number(v)) return false;
    double d = json_number_value(v);
    if (!(d >= 0 && d < DOTS_TOK_MAX_IDS) || d != (double)(int64_t)d) return false;
    *out = (int64_t)d;
    return true;
}

static dots_status check_pipeline(loader *L, const json_t *root, const char **pattern) {
    const json_t *norm = get(root, "normalizer");
    if (!norm || json_is_null(norm)) {
        L->tok->nfc = false;
    } else if (is_type(norm, "NFC")) {
        L->tok->nfc = true;
    } else {
        return DOTS_FAIL(L->ctx, DOTS_ERR_UNSUPPORTED, "%s: normalizer: only NFC is supported", L->label);
    }
    const json_t *pre = get(root, "pre_tokenizer");
    const json_t *list = is_type(pre, "Sequence") ? get(pre, "pretokenizers") : NULL;
    const json_t *split = json_is_array(list) && json_array_size(list) == 2 ? json_array_get(list, 0) : NULL;
    const json_t *bl = split ? json_array_get(list, 1) : NULL;
    const json_t *pat = split ? get(get(split, "pattern"), "Regex") : NULL;
    const json_t *behavior = split ? get(split, "behavior") : NULL;
    if (!is_type(split, "Split") || !json_is_string(pat) || !json_is_string(behavior) ||
        strcmp(json_string_value(behavior), "Isolated") != 0 || flag(split, "invert") || !is_type(bl, "ByteLevel") ||
        flag(bl, "add_prefix_space") || flag(bl, "use_regex"))
        return DOTS_FAIL(L->ctx, DOTS_ERR_UNSUPPORTED,
                         "%s: pre_tokenizer: only Sequence[Split(Regex, Isolated), ByteLevel(no prefix space, no regex)] is supported",
                         L->label);
    *pattern = json_string_value(pat);
    const json_t *dec = get(root, "decoder");
    if (!is_type(dec, "ByteLevel"))
        return DOTS_FAIL(L->ctx, DOTS_ERR_UNSUPPORTED, "%s: decoder: only ByteLevel is supported", L->label);
    return DOTS_OK;
}

/* Streams a {"token": id, ...} object (text[0..len)) into the vocab. */
typedef struct vocab_entry {
    uint32_t off, len; /* in the arena */
    int64_t id;
} vocab_entry;

static dots_status scan_error(loader *L, const dots_json_scan *js, const char *what) {
    return DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: %s: %s (at byte %zu)", L->label, what, js->error ? js->error : "unexpected token",
                     js->tok_start);
}

/* Reads the {"token": id, ...} object that starts at the scanner's next
 * token: collected first, then tabled, so the map is sized exactly. The
 * scanner guarantees the strings are UTF-8. */
static dots_status load_vocab_object(loader *L, dots_json_scan *jsp) {
    dots_tokenizer *t = L->tok;
    dots_json_scan js = *jsp;
    vocab_entry *e = NULL;
    size_t n = 0, cap = 0;
    int64_t max_id = -1;
    dots_status st = DOTS_OK;
    dots_json_tok tok = dots_json_next(&js);
    if (tok != DOTS_JSON_BEGIN_OBJECT) {
        st = DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: vocab must be a JSON object", L->label);
        goto done;
    }
    while ((tok = dots_json_next(&js)) == DOTS_JSON_STRING) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            vocab_entry *b = realloc(e, cap * sizeof *e);
            if (!b) {
                st = oom(L);
                goto done;
            }
            e = b;
        }
        if (js.str_len == 0 || !arena_add(t, js.str, js.str_len, &e[n].off)) {
            st = js.str_len ? oom(L) : DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: vocab: empty token", L->label);
            goto done;
        }
        e[n].len = (uint32_t)js.str_len;
        tok = dots_json_next(&js);
        if (tok != DOTS_JSON_NUMBER || !js.is_int || js.ival < 0 || js.ival >= DOTS_TOK_MAX_IDS) {
            st = DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: vocab['%.60s']: id must be an integer in [0, %d)", L->label,
                           t->arena + e[n].off, DOTS_TOK_MAX_IDS);
            goto done;
        }
        e[n].id = js.ival;
        if (js.ival > max_id) max_id = js.ival;
        n++;
    }
    if (tok != DOTS_JSON_END_OBJECT) {
        st = scan_error(L, &js, "vocab");
        goto done;
    }
    st = alloc_ids(L, max_id + 1);
    if (st == DOTS_OK && !dots_strmap_init(&t->vocab, n + 1)) st = oom(L);
    for (size_t i = 0; i < n && st == DOTS_OK; i++) {
        const char *str = t->arena + e[i].off;
        int64_t id = e[i].id;
        if (t->tok_off[id] != UINT32_MAX)
            st = DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: vocab: id %lld is used by both '%.60s' and '%.60s'", L->label,
                           (long long)id, t->arena + t->tok_off[id], str);
        if (st != DOTS_OK) break;
        int32_t prev;
        if (!dots_strmap_put(&t->vocab, str, e[i].len, (int32_t)id, &prev)) {
            st = DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: vocab: token '%.60s' appears twice (ids %d and %lld)", L->label, str,
                           prev, (long long)id);
            break;
        }
        t->tok_off[id] = e[i].off;
        t->tok_len[id] = e[i].len;
        t->tok_flags[id] |= DOTS_TOKF_VOCAB;
    }
done:
    free(e);
    jsp->pos = js.pos; /* hand the position (and buffers) back */
    *jsp = js;
    return st;
}

/* Streams a merges list (["a b", ...] or [["a", "b"], ...]). */
static dots_status load_merges_array(loader *L, dots_json_scan *jsp) {
    dots_json_scan js = *jsp;
    dots_status st = DOTS_OK;
    char *left = NULL;
    size_t left_cap = 0;
    int64_t rank = 0;
    dots_json_tok tok = dots_json_next(&js);
    if (tok != DOTS_JSON_BEGIN_ARRAY) {
        st = DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: model.merges must be a list", L->label);
        goto done;
    }
    if (!dots_u64map_init(&L->tok->merges, (js.len - js.pos) / 4 + 16)) { /* a merge takes at least 4 bytes of text */
        st = oom(L);
        goto done;
    }
    while ((tok = dots_json_next(&js)) != DOTS_JSON_END_ARRAY && st == DOTS_OK) {
        if (tok == DOTS_JSON_STRING) {
            const char *str = js.str, *sp = memchr(str, ' ', js.str_len);
            if (!sp || sp == str || sp + 1 == str + js.str_len || memchr(sp + 1, ' ', (size_t)(str + js.str_len - sp - 1))) {
                st = DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: merges[%lld]: '%.60s' is not \"left right\"", L->label,
                               (long long)rank, str);
                break;
            }
            st = add_merge(L, rank, str, (size_t)(sp - str), sp + 1, (size_t)(str + js.str_len - sp - 1));
        } else if (tok == DOTS_JSON_BEGIN_ARRAY) {
            size_t na = 0;
            if (dots_json_next(&js) == DOTS_JSON_STRING) {
                if (js.str_len + 1 > left_cap) {
                    left_cap = js.str_len + 64;
                    char *b = realloc(left, left_cap);
                    if (!b) {
                        st = oom(L);
                        break;
                    }
                    left = b;
                }
                memcpy(left, js.str, js.str_len);
                na = js.str_len;
                if (dots_json_next(&js) == DOTS_JSON_STRING && (st = add_merge(L, rank, left, na, js.str, js.str_len)) == DOTS_OK &&
                    dots_json_next(&js) == DOTS_JSON_END_ARRAY) {
                    rank++;
                    continue;
                }
            }
            if (st == DOTS_OK)
                st = DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: merges[%lld]: must be \"a b\" or [\"a\", \"b\"]", L->label, (long long)rank);
        } else {
            if (tok == DOTS_JSON_ERROR) {
                st = scan_error(L, &js, "merges");
            } else {
                st = DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: merges[%lld]: must be \"a b\" or [\"a\", \"b\"]", L->label, (long long)rank);
            }
        }
        rank++;
    }
done:
    free(left);
    *jsp = js;
    return st;
}

/* Reads the value that starts with tok as a small jansson DOM. */
static json_t *capture(dots_json_scan *js, dots_json_tok tok) {
    size_t b, e;
    if (!dots_json_skip(js, tok, &b, &e)) return NULL;
    return json_loadb(js->text + b, e - b, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
}

/* Adds key: v to obj; a repeated key is malformed (the scanner saw both). */
static bool put_once(json_t *obj, const char *key, json_t *v) {
    if (!v || json_object_get(obj, key)) {
        json_decref(v);
        return false;
    }
    return json_object_set_new(obj, key, v) == 0;
}

/* text: tokenizer.json's bytes (len of them), owned and freed here. */
static dots_status load_tokenizer_text(loader *L, char *text, size_t len) {
    dots_status st = DOTS_OK;
    /* One pass over the file: the big vocab and merges are located (and
     * streamed below), everything else is small and read as a DOM. */
    json_t *small = json_object(), *model = json_object();
    size_t merges_b = 0, merges_e = 0;
    bool have_vocab = false, deferred = false;
    dots_json_scan js;
    dots_json_scan_init(&js, text, len);
    const char *pattern = NULL;
    if (!small || !model) {
        st = oom(L);
        goto done;
    }
    dots_json_tok tok = dots_json_next(&js);
    if (tok != DOTS_JSON_BEGIN_OBJECT) {
        st = tok == DOTS_JSON_ERROR ? scan_error(L, &js, "not valid JSON") : DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: not a JSON object", L->label);
        goto done;
    }
    while ((tok = dots_json_next(&js)) == DOTS_JSON_STRING) {
        char key[32];
        snprintf(key, sizeof key, "%s", js.str);
        bool is_model = strcmp(key, "model") == 0;
        tok = dots_json_next(&js);
        if (is_model && tok == DOTS_JSON_BEGIN_OBJECT) {
            while ((tok = dots_json_next(&js)) == DOTS_JSON_STRING) {
                char mkey[40];
                snprintf(mkey, sizeof mkey, "%s", js.str);
                if (strcmp(mkey, "vocab") == 0 && !have_vocab) {
                    st = load_vocab_object(L, &js);
                    if (st != DOTS_OK) goto done;
                    have_vocab = true;
                    continue;
                }
                if (strcmp(mkey, "merges") == 0 && have_vocab && !merges_e) {
                    st = load_merges_array(L, &js);
                    if (st != DOTS_OK) goto done;
                    merges_e = 1; /* done */
                    continue;
                }
                tok = dots_json_next(&js);
                size_t b, e;
                if (strcmp(mkey, "merges") == 0 && !merges_e) {
                    /* merges before vocab: read them once the vocab is in */
                    if (!dots_json_skip(&js, tok, &b, &e)) break;
                    merges_b = b;
                    merges_e = e;
                    deferred = true;
                } else {
                    if (!put_once(model, mkey, capture(&js, tok))) {
                        tok = DOTS_JSON_ERROR;
                        break;
                    }
                }
            }
            if (tok != DOTS_JSON_END_OBJECT) break;
        } else {
            if (!put_once(small, key, capture(&js, tok))) {
                tok = DOTS_JSON_ERROR;
                break;
            }
        }
    }
    if (tok != DOTS_JSON_END_OBJECT || dots_json_next(&js) != DOTS_JSON_EOF) {
        st = scan_error(L, &js, "not valid JSON");
        goto done;
    }
    if (!have_vocab || !merges_e) {
        st = DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: model.vocab and model.merges are required", L->label);
        goto done;
    }
    if (!is_type(model, "BPE")) {
        st = DOTS_FAIL(L->ctx, DOTS_ERR_UNSUPPORTED, "%s: model.type: only BPE is supported", L->label);
        goto done;
    }
    const json_t *pfx = get(model, "continuing_subword_prefix"), *sfx = get(model, "end_of_word_suffix");
    const json_t *dropout = get(model, "dropout");
    if (flag(model, "byte_fallback") || (json_is_string(pfx) && json_string_length(pfx)) ||
        (json_is_string(sfx) && json_string_length(sfx)) || (dropout && !json_is_null(dropout)) || flag(model, "ignore_merges")) {
        st = DOTS_FAIL(L->ctx, DOTS_ERR_UNSUPPORTED,
                       "%s: model: byte_fallback, dropout, ignore_merges and subword prefixes/suffixes are not supported", L->label);
        goto done;
    }
    const json_t *added = get(small, "added_tokens"), *it;
    size_t i_added;
    if (added && !json_is_null(added) && !json_is_array(added)) {
        st = DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: added_tokens must be a list", L->label);
        goto done;
    }
    st = check_pipeline(L, small, &pattern);
    if (st != DOTS_OK) goto done;
    size_t n_added = 0;
    json_array_foreach(added, i_added, it) {
        int64_t id;
        if (!get_id(get(it, "id"), &id) || !json_is_string(get(it, "content"))) {
            st = DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: added_tokens[%zu]: needs an integer id and a string content", L->label, n_added);
            goto done;
        }
        n_added++;
    }
    if (!dots_strmap_init(&L->tok->added_map, n_added + 1) || !(L->tok->added = calloc(n_added + 1, sizeof *L->tok->added))) {
        st = oom(L);
        goto done;
    }
    if (deferred) {
        dots_json_scan ms;
        dots_json_scan_init(&ms, text + merges_b, merges_e - merges_b);
        st = load_merges_array(L, &ms);
        dots_json_scan_free(&ms);
    }
    json_array_foreach(added, i_added, it) {
        if (st != DOTS_OK) break;
        int64_t id = 0;
        get_id(get(it, "id"), &id); /* checked above */
        st = add_added(L, json_string_value(get(it, "content")), id, flag(it, "special"),
                       flag(it, "lstrip"), flag(it, "rstrip"), flag(it, "normalized"), flag(it, "single_word"));
    }
    if (st == DOTS_OK) st = finish(L);
    if (st == DOTS_OK) st = dots_pretok_compile(L->ctx, L->tok, pattern);
done:
    dots_json_scan_free(&js);
    json_decref(small);
    json_decref(model);
    free(text);
    return st;
}

static dots_status load_tokenizer_json(loader *L, const char *path) {
    char *text = NULL;
    size_t len = 0;
    dots_status st = dots_read_small_file(L->ctx, path, DOTS_TOK_MAX_FILE_BYTES, &text, &len);
    return st == DOTS_OK ? load_tokenizer_text(L, text, len) : st;
}

static bool is_gguf_file(const char *path) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* never block on a FIFO */
    struct stat sb;
    char magic[4] = {0};
    bool yes = fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && read(fd, magic, 4) == 4 && memcmp(magic, "GGUF", 4) == 0;
    if (fd >= 0) close(fd);
    return yes;
}

/* llama.cpp's own files carry the vocabulary as arrays (docs/formats.md §5):
 * tokens (the byte-level strings of vocab.json), token_type (1 normal,
 * 3 control, 4 user-defined, 5 unused padding) and merges ("a b", rank =
 * index). NORMAL tokens are the BPE vocab, CONTROL and USER_DEFINED ones
 * the added tokens. The type cannot carry Hugging Face's `special` flag
 * (the fim tokens are CONTROL only because they look special), so for
 * dots.ocr's 45 added tokens it comes from their table (docs/model.md §8.2), and
 * otherwise CONTROL means special. */
static dots_status load_gguf_arrays(loader *L, const dots_gguf *g) {
    dots_tokenizer *t = L->tok;
    L->label = "tokenizer.ggml.*";
    const dots_gguf_kv *tokens = dots_gguf_find(g, "tokenizer.ggml.tokens"), *types = dots_gguf_find(g, "tokenizer.ggml.token_type");
    const dots_gguf_kv *merges = dots_gguf_find(g, "tokenizer.ggml.merges");
    if (!dots_gguf_is_string(g, "tokenizer.ggml.model", "gpt2"))
        return DOTS_FAIL(L->ctx, DOTS_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model must be \"gpt2\" (byte-level BPE)", L->label);
    /* the pre-tokenizer is Qwen2's; a file that names another one is another model */
    if (dots_gguf_find(g, "tokenizer.ggml.pre") && !dots_gguf_is_string(g, "tokenizer.ggml.pre", "qwen2"))
        return DOTS_FAIL(L->ctx, DOTS_ERR_UNSUPPORTED, "%s: tokenizer.ggml.pre must be \"qwen2\"", L->label);
    if (!tokens || tokens->type != DOTS_GGUF_ARRAY || tokens->elem_type != DOTS_GGUF_STRING || tokens->n == 0 || !types ||
        types->type != DOTS_GGUF_ARRAY || types->n != tokens->n || dots_gguf_array_i32(types, 0) == INT32_MIN || !merges ||
        merges->type != DOTS_GGUF_ARRAY || merges->elem_type != DOTS_GGUF_STRING)
        return DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT,
                         "%s: needs tokens (strings), token_type (integers, one per token) and merges (strings)", L->label);
    const int64_t n = (int64_t)tokens->n;
    dots_status st = alloc_ids(L, n);
    if (st != DOTS_OK) return st;
    int64_t n_added = 0;
    for (int64_t i = 0; i < n; i++) n_added += dots_gguf_array_i32(types, (uint64_t)i) == 3 || dots_gguf_array_i32(types, (uint64_t)i) == 4;
    if (!dots_strmap_init(&t->vocab, (size_t)n + 1) || !dots_strmap_init(&t->added_map, (size_t)n_added + 1) ||
        !(t->added = calloc((size_t)n_added + 1, sizeof *t->added)) || !dots_u64map_init(&t->merges, (size_t)merges->n + 1))
        return oom(L);
    const uint8_t *p = tokens->value;
    for (int64_t i = 0; i < n; i++) {
        const char *s;
        size_t len;
        p = dots_gguf_array_string(p, &s, &len);
        int32_t type = dots_gguf_array_i32(types, (uint64_t)i);
        if (type == 5 || type == 3 || type == 4) continue; /* padding; added tokens below */
        if (type != 1)
            return DOTS_FAIL(L->ctx, DOTS_ERR_UNSUPPORTED, "%s: token %lld has type %d (only 1, 3, 4 and 5 occur in a BPE vocab)",
                             L->label, (long long)i, type);
        uint32_t off;
        if (len == 0) return DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: token %lld is empty", L->label, (long long)i);
        if (!arena_add(t, s, len, &off)) return oom(L);
        t->tok_off[i] = off;
        t->tok_len[i] = (uint32_t)len;
        t->tok_flags[i] |= DOTS_TOKF_VOCAB;
    }
    /* the map keys point into the arena: only once it has stopped growing */
    for (int64_t i = 0; i < n; i++) {
        int32_t prev;
        if (!(t->tok_flags[i] & DOTS_TOKF_VOCAB)) continue;
        if (!dots_strmap_put(&t->vocab, t->arena + t->tok_off[i], t->tok_len[i], (int32_t)i, &prev))
            return DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: token '%.60s' appears twice (ids %d and %lld)", L->label,
                             t->arena + t->tok_off[i], prev, (long long)i);
    }
    p = merges->value;
    for (uint64_t r = 0; r < merges->n && st == DOTS_OK; r++) {
        const char *s;
        size_t len;
        p = dots_gguf_array_string(p, &s, &len);
        /* split at the first space past the first byte, as llama.cpp does */
        const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
        if (!sp || sp + 1 == s + len)
            return DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: merges[%llu] '%.*s' is not \"left right\"", L->label,
                             (unsigned long long)r, (int)(len > 60 ? 60 : len), s);
        st = add_merge(L, (int64_t)r, s, (size_t)(sp - s), sp + 1, (size_t)(s + len - sp - 1));
    }
    p = tokens->value;
    char buf[1024];
    for (int64_t i = 0; i < n && st == DOTS_OK; i++) {
        const char *s;
        size_t len;
        p = dots_gguf_array_string(p, &s, &len);
        int32_t type = dots_gguf_array_i32(types, (uint64_t)i);
        if (type != 3 && type != 4) continue;
        if (len == 0 || len >= sizeof buf || memchr(s, 0, len))
            return DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: added token %lld is empty, too long or has a NUL", L->label, (long long)i);
        memcpy(buf, s, len);
        buf[len] = 0;
        bool special = type == 3;
        for (int k = 0; k < DOTS_OCR_N_ADDED_TOKENS; k++)
            if (dots_ocr_added_tokens[k].id == i && strcmp(dots_ocr_added_tokens[k].content, buf) == 0)
                special = dots_ocr_added_tokens[k].special;
        st = add_added(L, buf, i, special, false, false, false, false);
    }
    t->nfc = true; /* Qwen2's tokenizer.json normalises to NFC; the arrays cannot say so */
    if (st == DOTS_OK) st = finish(L);
    if (st == DOTS_OK) st = dots_pretok_compile(L->ctx, t, qwen2_pattern);
    return st;
}

/* A dotsocr GGUF model file carries tokenizer.json verbatim; llama.cpp's
 * own files carry the tokenizer.ggml.* arrays. */
static dots_status load_gguf(loader *L, const char *path) {
    dots_gguf g;
    dots_status st = dots_gguf_open(L->ctx, path, &g);
    if (st != DOTS_OK) return st;
    const char *s;
    size_t n;
    char *text = NULL;
    if (!dots_gguf_get_string(&g, DOTS_GGUF_TOKENIZER_KEY, &s, &n)) {
        if (dots_gguf_find(&g, "tokenizer.ggml.tokens")) {
            st = load_gguf_arrays(L, &g);
            dots_gguf_close(&g);
            return st;
        }
        st = DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "%s: no %s and no tokenizer.ggml.tokens in this GGUF file", path,
                       DOTS_GGUF_TOKENIZER_KEY);
    } else if (n > DOTS_TOK_MAX_FILE_BYTES)
        st = DOTS_FAIL(L->ctx, DOTS_ERR_LIMIT, "%s: the embedded tokenizer.json is too big", path);
    else if (!(text = malloc(n + 1)))
        st = oom(L);
    if (text) {
        memcpy(text, s, n);
        text[n] = 0;
    }
    dots_gguf_close(&g);
    return st == DOTS_OK ? load_tokenizer_text(L, text, n) : st;
}

/* ------------------------------------------- vocab.json + merges.txt form */

static dots_status load_legacy(loader *L, const char *dir) {
    char *vocab_path = dots_path_join(dir, "vocab.json");
    char *merges_path = dots_path_join(dir, "merges.txt");
    char *config_path = dots_path_join(dir, "tokenizer_config.json");
    char *vocab = NULL, *merges = NULL, *config_text = NULL;
    size_t vocab_len = 0, merges_len = 0, config_len = 0;
    json_t *config = NULL;
    dots_status st = DOTS_OK;
    if (!vocab_path || !merges_path || !config_path) {
        st = oom(L);
        goto done;
    }
    struct stat sb;
    if (stat(config_path, &sb) == 0) {
        L->label = "tokenizer_config.json";
        st = dots_read_small_file(L->ctx, config_path, DOTS_TOK_MAX_FILE_BYTES, &config_text, &config_len);
        if (st != DOTS_OK) goto done;
        config = json_loadb(config_text, config_len, 0, NULL);
        if (!json_is_object(config)) {
            st = DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "tokenizer_config.json: not a valid JSON object");
            goto done;
        }
    }
    json_t *decoder = config ? (json_t *)get(config, "added_tokens_decoder") : NULL, *it;
    const char *id_text;
    size_t n_added = 0;
    if (decoder && !json_is_object(decoder)) {
        st = DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "tokenizer_config.json: added_tokens_decoder must be an object");
        goto done;
    }
    json_object_foreach(decoder, id_text, it) {
        char *end = NULL;
        errno = 0;
        long long id = strtoll(id_text, &end, 10);
        if (!id_text[0] || *end || errno || id < 0 || id >= DOTS_TOK_MAX_IDS || !json_is_string(get(it, "content"))) {
            st = DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "tokenizer_config.json: added_tokens_decoder['%.30s'] is malformed", id_text);
            goto done;
        }
        n_added++;
    }
    L->label = "vocab.json";
    st = dots_read_small_file(L->ctx, vocab_path, DOTS_TOK_MAX_FILE_BYTES, &vocab, &vocab_len);
    if (st != DOTS_OK) goto done;
    dots_json_scan vs;
    dots_json_scan_init(&vs, vocab, vocab_len);
    st = load_vocab_object(L, &vs);
    if (st == DOTS_OK && dots_json_next(&vs) != DOTS_JSON_EOF) st = scan_error(L, &vs, "not valid JSON");
    dots_json_scan_free(&vs);
    if (st != DOTS_OK) goto done;
    L->label = "merges.txt";
    st = dots_read_small_file(L->ctx, merges_path, DOTS_TOK_MAX_FILE_BYTES, &merges, &merges_len);
    if (st != DOTS_OK) goto done;
    size_t n_lines = 1;
    for (size_t i = 0; i < merges_len; i++) n_lines += merges[i] == '\n';
    if (!dots_u64map_init(&L->tok->merges, n_lines) || !dots_strmap_init(&L->tok->added_map, n_added + 1) ||
        !(L->tok->added = calloc(n_added + 1, sizeof *L->tok->added))) {
        st = oom(L);
        goto done;
    }
    int64_t rank = 0;
    for (char *line = merges, *end = merges + merges_len; st == DOTS_OK && line < end;) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
        if (n && line[n - 1] == '\r') n--;
        bool skip = n == 0 || (rank == 0 && n >= 8 && memcmp(line, "#version", 8) == 0);
        if (!skip) {
            char *sp = memchr(line, ' ', n);
            if (!sp || sp == line || sp + 1 == line + n || memchr(sp + 1, ' ', (size_t)(line + n - sp - 1))) {
                st = DOTS_FAIL(L->ctx, DOTS_ERR_FORMAT, "merges.txt: line '%.*s' is not \"left right\"", (int)(n > 60 ? 60 : n), line);
                break;
            }
            st = add_merge(L, rank, line, (size_t)(sp - line), sp + 1, (size_t)(line + n - sp - 1));
            rank++;
        }
        line = nl ? nl + 1 : end;
    }
    L->label = "tokenizer_config.json";
    json_object_foreach(decoder, id_text, it) {
        if (st != DOTS_OK) break;
        st = add_added(L, json_string_value(get(it, "content")), strtoll(id_text, NULL, 10), flag(it, "special"),
                       flag(it, "lstrip"), flag(it, "rstrip"), flag(it, "normalized"), flag(it, "single_word"));
    }
    L->tok->nfc = true; /* Qwen2Tokenizer normalises to NFC */
    if (st == DOTS_OK) st = finish(L);
    if (st == DOTS_OK) st = dots_pretok_compile(L->ctx, L->tok, qwen2_pattern);
done:
    json_decref(config);
    free(config_text);
    free(vocab);
    free(merges);
    free(vocab_path);
    free(merges_path);
    free(config_path);
    return st;
}

/* ------------------------------------------------------------------ open */

void dots_tokenizer_free(dots_tokenizer *t) {
    if (!t) return;
    dots_bpe_cache_free(t);
    free(t->cache);
    pcre2_code_free(t->re);
    dots_strmap_free(&t->vocab);
    dots_strmap_free(&t->added_map);
    dots_u64map_free(&t->merges);
    free(t->added);
    free(t->tok_off);
    free(t->tok_len);
    free(t->tok_flags);
    free(t->arena);
    free(t);
}

dots_status dots_tokenizer_open(dots_ctx *ctx, const char *path, dots_tokenizer **out) {
    dots_ctx_begin_call(ctx);
    if (!path || !out) return DOTS_FAIL(ctx, DOTS_ERR_INVALID_ARGUMENT, "dots_tokenizer_open: NULL argument");
    struct stat sb;
    if (stat(path, &sb) != 0) return DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: no such file or directory", path);
    dots_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
    loader L = {ctx, t, "tokenizer.json"};
    dots_status st;
    if (S_ISDIR(sb.st_mode)) {
        char *json = dots_path_join(path, "tokenizer.json");
        char *vocab = dots_path_join(path, "vocab.json");
        if (!json || !vocab)
            st = DOTS_FAIL(ctx, DOTS_ERR_OUT_OF_MEMORY, "out of memory");
        else if (stat(json, &sb) == 0)
            st = load_tokenizer_json(&L, json);
        else if (stat(vocab, &sb) == 0)
            st = load_legacy(&L, path);
        else
            st = DOTS_FAIL(ctx, DOTS_ERR_IO, "%s: no tokenizer.json or vocab.json + merges.txt", path);
        free(json);
        free(vocab);
    } else {
        st = is_gguf_file(path) ? load_gguf(&L, path) : load_tokenizer_json(&L, path);
    }
    if (st != DOTS_OK) {
        dots_tokenizer_free(t);
        return st;
    }
    *out = t;
    return DOTS_OK;
}

int32_t dots_tokenizer_n_ids(const dots_tokenizer *t) { return t ? t->n_ids : 0; }

bool dots_tokenizer_is_special(const dots_tokenizer *t, int32_t id) {
    return t && id >= 0 && id < t->n_ids && (t->tok_flags[id] & DOTS_TOKF_SPECIAL);
}

int32_t dots_tokenizer_token_id(const dots_tokenizer *t, const char *token) {
    if (!t || !token) return -1;
    size_t n = strlen(token);
    int32_t id = dots_strmap_get(&t->added_map, token, n);
    return id >= 0 ? id : dots_strmap_get(&t->vocab, token, n);
}
