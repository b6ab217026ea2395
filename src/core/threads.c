/*
 * threads.c - the worker pool of threads.h.
 *
 * A job is published by bumping an atomic generation counter; its tasks are
 * claimed with an atomic fetch-add. Between jobs a worker first spins for a
 * short while (decode hands the pool ~300 jobs of ~0.1 ms per token, and a
 * futex wake-up costs tens of microseconds on a VM), then sleeps on a
 * condition variable. The caller spins the same way before sleeping while
 * the last workers finish. Lost wake-ups are excluded by ordering: a
 * sleeper registers (n_sleepers) before re-checking the generation, and the
 * publisher reads n_sleepers after bumping it (both sequentially consistent).
 */
#include "core/threads.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPIN_ROUNDS 20000 /* ~0.1-0.5 ms of pause instructions */

struct dots_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    /* the current job: fields written before generation is bumped */
    dots_task_fn fn;
    void *arg;
    int64_t n_tasks;
    atomic_uint_fast64_t generation;
    atomic_int_fast64_t next_task;
    atomic_int busy_workers;
    atomic_int n_sleepers;    /* workers asleep (or about to be) on wake */
    atomic_int caller_asleep; /* the caller waits on done */
    atomic_int stopping;
};

typedef struct worker_arg {
    dots_pool *pool;
    int index;
} worker_arg;

static void run_tasks(dots_pool *p, dots_task_fn fn, void *arg, int64_t n, int worker) {
    for (;;) {
        int64_t t = atomic_fetch_add(&p->next_task, 1);
        if (t >= n) break;
        fn(arg, t, worker);
    }
}

static void *worker_main(void *v) {
    worker_arg *wa = v;
    dots_pool *p = wa->pool;
    int index = wa->index;
    free(wa);
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = atomic_load(&p->generation);
        for (int i = 0; g == seen && i < SPIN_ROUNDS && !atomic_load(&p->stopping); i++) {
            CPU_RELAX();
            g = atomic_load(&p->generation);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->n_sleepers, 1);
            while ((g = atomic_load(&p->generation)) == seen && !atomic_load(&p->stopping)) pthread_cond_wait(&p->wake, &p->mu);
            atomic_fetch_sub(&p->n_sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stopping)) break;
        seen = g;
        run_tasks(p, p->fn, p->arg, p->n_tasks, index);
        if (atomic_fetch_sub(&p->busy_workers, 1) == 1 && atomic_load(&p->caller_asleep)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

dots_pool *dots_pool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    if (n_threads > DOTS_MAX_THREADS) n_threads = DOTS_MAX_THREADS;
    dots_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->next_task, 0);
    atomic_init(&p->busy_workers, 0);
    atomic_init(&p->n_sleepers, 0);
    atomic_init(&p->caller_asleep, 0);
    atomic_init(&p->stopping, 0);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) {
            dots_pool_free(p);
            return NULL;
        }
        for (int i = 0; i < n_threads - 1; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (!wa) break;
            wa->pool = p;
            wa->index = i + 1;
            if (pthread_create(&p->threads[i], NULL, worker_main, wa) != 0) {
                free(wa);
                break;
            }
            p->n_threads++;
        }
    }
    return p;
}

void dots_pool_free(dots_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stopping, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads - 1; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p);
}

int dots_pool_size(const dots_pool *p) { return p ? p->n_threads : 1; }

void dots_pool_run(dots_pool *p, int64_t n_tasks, dots_task_fn fn, void *arg) {
    if (n_tasks <= 0) return;
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        for (int64_t t = 0; t < n_tasks; t++) fn(arg, t, 0);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    atomic_store(&p->next_task, 0);
    atomic_store(&p->busy_workers, p->n_threads - 1);
    atomic_fetch_add(&p->generation, 1); /* publishes the fields above */
    if (atomic_load(&p->n_sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    run_tasks(p, fn, arg, n_tasks, 0);
    for (int i = 0; i < SPIN_ROUNDS && atomic_load(&p->busy_workers) > 0; i++) CPU_RELAX();
    if (atomic_load(&p->busy_workers) > 0) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->caller_asleep, 1);
        while (atomic_load(&p->busy_workers) > 0) pthread_cond_wait(&p->done, &p->mu);
        atomic_store(&p->caller_asleep, 0);
        pthread_mutex_unlock(&p->mu);
    }
}

int dots_default_threads(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
