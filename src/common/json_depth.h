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
/*
 * The number of values (objects, arrays, strings, numbers, literals) the JSON
 * text holds, counted up to max + 1: a parser builds a node for each, so a
 * small document of a million tiny values ("[{},{},...]") is refused by its
 * count before it costs hundreds of megabytes to parse. Cheap: one pass, no
 * allocation; for invalid JSON the answer does not matter.
 */
size_t ocisync__json_values(const void *text, size_t len, size_t max);

#endif
