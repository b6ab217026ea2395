/*
 * buffer.c - see buffer.h. Every block starts with a 64-byte header that
 * records how it was made, so one free function serves both kinds.
 */
#include "core/buffer.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_FROM ((size_t)1 << 20) /* smaller buffers: malloc */
#define HEADER 64

typedef struct buffer_header {
    void *base;    /* what to free or unmap */
    size_t length; /* the mapping's length; 0: malloc'd */
} buffer_header;

void *dots_buffer_alloc(size_t bytes) {
    if (bytes > SIZE_MAX - 2 * HUGE_PAGE) return NULL;
    if (bytes < HUGE_FROM) {
        uint8_t *raw = malloc(bytes + 2 * HEADER);
        if (!raw) return NULL;
        uint8_t *p = (uint8_t *)(((uintptr_t)raw + 2 * HEADER - 1) & ~(uintptr_t)(HEADER - 1));
        buffer_header *h = (buffer_header *)(void *)(p - HEADER);
        h->base = raw;
        h->length = 0;
        return p;
    }
    /* the data starts on a 2 MB boundary, the header in the page before it */
    size_t length = (bytes + HEADER + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE + HUGE_PAGE;
    uint8_t *raw = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    uint8_t *p = (uint8_t *)(((uintptr_t)raw + HEADER + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    /* the whole 2 MB tail too: a huge page needs all of its 2 MB in the advised
     * range, and a 1.6 MB buffer advised as 1.6 MB would get none.
     * Advisory: 4 kB pages if the kernel says no. */
#ifdef MADV_HUGEPAGE /* Linux's transparent huge pages; elsewhere the kernel decides */
    madvise(p, (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);
#endif
    buffer_header *h = (buffer_header *)(void *)(p - HEADER);
    h->base = raw;
    h->length = length;
    return p;
}

void dots_buffer_free(void *p) {
    if (!p) return;
    buffer_header *h = (buffer_header *)(void *)((uint8_t *)p - HEADER);
    if (h->length) munmap(h->base, h->length);
    else free(h->base);
}
