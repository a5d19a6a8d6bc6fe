#include "common/json_depth.h"

bool ocisync__json_too_deep(const void *text, size_t len, int max)
{
    const unsigned char *p = text;
    bool in_string = false;
    int depth = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped character cannot end the string */
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                return true;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return false;
}

size_t ocisync__json_values(const void *text, size_t len, size_t max)
{
    const unsigned char *p = text;
    bool in_string = false, in_scalar = false;
    size_t n = 0;

    for (size_t i = 0; i < len && n <= max; i++) {
        unsigned char c = p[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        switch (c) {
        case '"':
            in_string = true;
            in_scalar = false;
            n++;
            break;
        case '[':
        case '{':
            in_scalar = false;
            n++;
            break;
        case ']':
        case '}':
        case ',':
        case ':':
        case ' ':
        case '\t':
        case '\n':
        case '\r':
            in_scalar = false;
            break;
        default:
            /* A number or a literal: counted at its first byte. */
            if (!in_scalar)
                n++;
            in_scalar = true;
            break;
        }
    }
    return n;
}
