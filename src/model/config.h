/*
 * config.h - the checkpoint's JSON configuration files, typed and checked
 * (docs/model.md §2): config.json (text + vision), generation_config.json and
 * preprocessor_config.json.
 */
#ifndef DOTS_CONFIG_H
#define DOTS_CONFIG_H

#include "core/internal.h"

/* generation_config.json text -> cfg->generation (starting from defaults). */
dots_status dots_generation_config_parse(dots_ctx *ctx, const char *json, size_t len, dots_config *cfg);

/* preprocessor_config.json text -> cfg->preprocessor (starting from defaults). */
dots_status dots_preprocessor_config_parse(dots_ctx *ctx, const char *json, size_t len,
                                           dots_config *cfg);

/* Checks the relations between the parts (the preprocessor's patch and merge
 * sizes against the vision config, EOS ids against the vocabulary). */
dots_status dots_config_check_consistency(dots_ctx *ctx, const dots_config *cfg);

/* Serialises cfg as the three official JSON files (heap strings, free()). */
dots_status dots_config_to_json(dots_ctx *ctx, const dots_config *cfg, char **config_json,
                                char **generation_json, char **preprocessor_json);

#endif
