/*
 * strbuf.h - a growable NUL-terminated string for building text output
 * (JSON, Markdown). Allocation failure is sticky: appends become no-ops and
 * the caller checks oom once at the end.
 */
#ifndef DOTS_STRBUF_H
#define DOTS_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct dots_strbuf {
    char *p;   /* NULL until the first append */
    size_t n, cap;
    bool oom;
} dots_strbuf;

void dots_strbuf_add(dots_strbuf *b, const char *s, size_t n);
void dots_strbuf_str(dots_strbuf *b, const char *s);

#endif
