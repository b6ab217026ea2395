/*
 * threads.h - a persistent pool of worker threads for data-parallel loops.
 *
 * dots_pool_run(pool, n_tasks, fn, arg) calls fn(arg, task, worker) for
 * every task in [0, n_tasks) across the workers plus the calling thread,
 * and returns when all are done. Tasks are claimed with an atomic counter,
 * so uneven tasks balance themselves. A pool of 1 runs everything inline.
 */
#ifndef DOTS_THREADS_H
#define DOTS_THREADS_H

#include <stdint.h>

typedef struct dots_pool dots_pool;
typedef void (*dots_task_fn)(void *arg, int64_t task, int worker);

#define DOTS_MAX_THREADS 256

/* NULL on failure. n_threads counts the caller: 1 = no extra threads. */
dots_pool *dots_pool_create(int n_threads);
void dots_pool_free(dots_pool *pool);
int dots_pool_size(const dots_pool *pool);
void dots_pool_run(dots_pool *pool, int64_t n_tasks, dots_task_fn fn, void *arg);

/* Threads to use by default: the CPUs this process may run on. */
int dots_default_threads(void);

#endif
