// Shared by the text corpus files (text.c, text_vocab.c); library-private.
#ifndef NB_DATA_TEXT_IMPL_H
#define NB_DATA_TEXT_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nabla/data.h"

// Decodes one strict UTF-8 character at p[0..n) (n >= 1) into *cp: returns its length 1..4, or
// 0 for an invalid sequence (stray continuation, overlong, surrogate, > U+10FFFF, truncated).
int nb__utf8_next(const uint8_t *p, size_t n, uint32_t *cp);
// The id of sym in v (binary search), or -1.
int32_t nb__vocab_find(const nb_vocab *v, uint32_t sym);
// A symbol for messages: 'a' for printable ASCII, else U+00E9 (characters) or byte 0xE9.
void nb__symbol_str(bool bytes, uint32_t sym, char *out, size_t cap);

#endif
