/*
 * buffer.h - working buffers of the forward passes (activations, packed
 * panels), backed by 2 MB pages where the kernel allows.
 *
 * On a VM each first touch of a 4 kB page can cost tens of microseconds
 * (a page fault is a trap to the hypervisor): the ~40 MB a 269-token prefill
 * touches for the first time took 0.3-0.6 s in faults, a third of the
 * prefill itself. With MADV_HUGEPAGE one fault maps 2 MB. Buffers under
 * 1 MB come from malloc as usual.
 */
#ifndef DOTS_BUFFER_H
#define DOTS_BUFFER_H

#include <stddef.h>

/* bytes of 64-byte aligned, uninitialised memory; NULL when out of memory. */
void *dots_buffer_alloc(size_t bytes);
/* Frees what dots_buffer_alloc returned (NULL is a no-op). */
void dots_buffer_free(void *p);

#endif
