/* A byte scan that refuses deeply nested JSON before a parser recurses into it. */
#ifndef COMMON_JSON_DEPTH_H
#define COMMON_JSON_DEPTH_H

#include <stdbool.h>
#include <stddef.h>

/*
 * True if the JSON text nests arrays and objects deeper than max. Brackets
 * inside strings do not count; for invalid JSON the answer does not matter,
 * since the parser rejects it anyway.
 */
bool ocisync__json_too_deep(const void *text, size_t len, int max);

#endif
