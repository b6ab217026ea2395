/*
 * strmap.c - the open-addressing maps of strmap.h (linear probing, load
 * factor at most 1/2, no deletion: the tables are built once and read).
 */
#include "core/strmap.h"

#include <stdlib.h>
#include <string.h>

uint64_t dots_hash_bytes(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, then a final mix for the low bits */
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 32);
}

static size_t slots_for(size_t capacity) {
    size_t n = 16;
    while (n < capacity * 2) n *= 2;
    return n;
}

bool dots_strmap_init(dots_strmap *m, size_t capacity) {
    memset(m, 0, sizeof *m);
    if (capacity > ((size_t)1 << 30)) return false;
    m->n_slots = slots_for(capacity);
    m->cap = capacity;
    m->slots = calloc(m->n_slots, sizeof *m->slots);
    return m->slots != NULL;
}

void dots_strmap_free(dots_strmap *m) {
    if (!m) return;
    free(m->slots);
    memset(m, 0, sizeof *m);
}

bool dots_strmap_put(dots_strmap *m, const char *key, size_t len, int32_t value, int32_t *existing) {
    if (m->n_items >= m->cap || len > UINT32_MAX) return false;
    size_t mask = m->n_slots - 1;
    for (size_t i = (size_t)dots_hash_bytes(key, len) & mask;; i = (i + 1) & mask) {
        dots_strmap_slot *s = &m->slots[i];
        if (!s->key) {
            s->key = key;
            s->len = (uint32_t)len;
            s->value = value;
            m->n_items++;
            return true;
        }
        if (s->len == len && memcmp(s->key, key, len) == 0) {
            if (existing) *existing = s->value;
            return false;
        }
    }
}

int32_t dots_strmap_get(const dots_strmap *m, const char *key, size_t len) {
    if (!m->slots) return -1;
    size_t mask = m->n_slots - 1;
    for (size_t i = (size_t)dots_hash_bytes(key, len) & mask;; i = (i + 1) & mask) {
        const dots_strmap_slot *s = &m->slots[i];
        if (!s->key) return -1;
        if (s->len == len && memcmp(s->key, key, len) == 0) return s->value;
    }
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

bool dots_u64map_init(dots_u64map *m, size_t capacity) {
    memset(m, 0, sizeof *m);
    if (capacity > ((size_t)1 << 30)) return false;
    m->n_slots = slots_for(capacity);
    m->cap = capacity;
    m->slots = malloc(m->n_slots * sizeof *m->slots);
    if (!m->slots) return false;
    for (size_t i = 0; i < m->n_slots; i++) m->slots[i].key = UINT64_MAX;
    return true;
}

void dots_u64map_free(dots_u64map *m) {
    if (!m) return;
    free(m->slots);
    memset(m, 0, sizeof *m);
}

bool dots_u64map_set(dots_u64map *m, uint64_t key, int32_t a, int32_t b) {
    size_t mask = m->n_slots - 1;
    for (size_t i = (size_t)mix64(key) & mask;; i = (i + 1) & mask) {
        dots_u64map_slot *s = &m->slots[i];
        if (s->key == key) {
            s->a = a;
            s->b = b;
            return true;
        }
        if (s->key == UINT64_MAX) {
            if (m->n_items >= m->cap) return false;
            s->key = key;
            s->a = a;
            s->b = b;
            m->n_items++;
            return true;
        }
    }
}

const dots_u64map_slot *dots_u64map_get(const dots_u64map *m, uint64_t key) {
    if (!m->slots) return NULL;
    size_t mask = m->n_slots - 1;
    for (size_t i = (size_t)mix64(key) & mask;; i = (i + 1) & mask) {
        const dots_u64map_slot *s = &m->slots[i];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
    }
}
