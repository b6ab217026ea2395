/*
 * checkpoint.h - the weight files of a Hugging Face checkpoint directory:
 * model.safetensors, or model.safetensors.index.json + the shards it names,
 * each mapped and validated, with one name -> tensor lookup over all of them.
 */
#ifndef DOTS_CHECKPOINT_H
#define DOTS_CHECKPOINT_H

#include "io/mapped_file.h"
#include "io/safetensors.h"

#define DOTS_MAX_SHARDS 4096          /* the real checkpoint has 2 */
#define DOTS_MAX_INDEX_BYTES (64u << 20) /* the real index is ~60 kB */

typedef struct dots_store_entry {
    const dots_st_tensor *st; /* borrowed from headers[file] */
    int32_t file;
} dots_store_entry;

typedef struct dots_tensor_store {
    int32_t n_files;
    dots_mapped_file *files;   /* [n_files] */
    char **file_names;         /* [n_files], base names as in the index */
    dots_st_header *headers;   /* [n_files] */
    dots_store_entry *entries; /* [n_entries]: every tensor of every file */
    int64_t n_entries;
    int64_t *slots;            /* open-addressing hash of entry indices, -1 = empty */
    size_t n_slots;            /* power of two */
    bool sharded;              /* true when loaded through the index */
} dots_tensor_store;

/* Opens the weight files of dir. Errors name the file and, where there is
 * one, the tensor. On failure *out is left zeroed. */
dots_status dots_store_open(dots_ctx *ctx, const char *dir, dots_tensor_store *out);
void dots_store_close(dots_tensor_store *s);

/* Index into s->entries of the tensor called name, or -1. */
int64_t dots_store_find(const dots_tensor_store *s, const char *name);

/* Address of an entry's data inside its mapped file. */
const uint8_t *dots_store_data(const dots_tensor_store *s, int64_t entry);

#endif
