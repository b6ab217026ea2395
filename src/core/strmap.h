/*
 * strmap.h - open-addressing hash maps for the tokenizer's tables:
 * byte string -> int32 (keys borrowed, not copied) and u64 -> two int32s.
 * Sized once for a known number of keys; never rehash during lookups.
 */
#ifndef DOTS_STRMAP_H
#define DOTS_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dots_strmap_slot {
    const char *key; /* NULL = empty */
    uint32_t len;
    int32_t value;
} dots_strmap_slot;

typedef struct dots_strmap {
    dots_strmap_slot *slots;
    size_t n_slots; /* power of two, at least twice the capacity */
    size_t n_items, cap;
} dots_strmap;

/* false on OOM or absurd capacity. */
bool dots_strmap_init(dots_strmap *m, size_t capacity);
void dots_strmap_free(dots_strmap *m);
/* Inserts key -> value. Returns false if the key is already present (then
 * *existing gets its value) or the map is full. The key must outlive m. */
bool dots_strmap_put(dots_strmap *m, const char *key, size_t len, int32_t value, int32_t *existing);
/* Value of key, or -1. */
int32_t dots_strmap_get(const dots_strmap *m, const char *key, size_t len);

typedef struct dots_u64map_slot {
    uint64_t key; /* UINT64_MAX = empty */
    int32_t a, b;
} dots_u64map_slot;

typedef struct dots_u64map {
    dots_u64map_slot *slots;
    size_t n_slots, n_items, cap;
} dots_u64map;

bool dots_u64map_init(dots_u64map *m, size_t capacity);
void dots_u64map_free(dots_u64map *m);
/* Inserts or overwrites. false when full. key must not be UINT64_MAX. */
bool dots_u64map_set(dots_u64map *m, uint64_t key, int32_t a, int32_t b);
/* The slot of key, or NULL. */
const dots_u64map_slot *dots_u64map_get(const dots_u64map *m, uint64_t key);

uint64_t dots_hash_bytes(const void *p, size_t n);

#endif
