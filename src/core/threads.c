/*
 * threads.c - the worker pool of threads.h: a job is published with a
 * generation counter and its tasks are claimed with an atomic fetch-add.
 *
 * Between jobs a worker first spins on the counter for a short while, then
 * sleeps on a condition variable; the caller likewise spins, then sleeps,
 * while the last workers finish. Decode hands a job to the pool ~300 times
 * per token, each ~0.1-0.3 ms of work; a futex wake-up per hand-off costs
 * tens of microseconds on a VM (pvm_irq_enable was ~10 % of decode's
 * profile), while a spin costs nothing when the next job comes within it.
 * The bound keeps an idle pool (or an oversubscribed machine) from burning
 * CPU: after SPIN_NS without work everyone sleeps as before.
 */
#include "core/threads.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define SPIN_NS 200000 /* 0.2 ms: longer than decode's gaps between jobs */

struct dots_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    /* the current job: fields written before generation is released */
    _Atomic uint64_t generation;
    dots_task_fn fn;
    void *arg;
    int64_t n_tasks;
    atomic_int_fast64_t next_task;
    atomic_int busy_workers;
    atomic_int stopping;
    /* under mu: who sleeps, so that a hand-off makes a system call only when needed */
    int sleeping_workers;
    int caller_sleeping;
};

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

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
        /* spin for the next job, checking the clock every 256 pauses */
        int64_t t0 = now_ns();
        for (int i = 1; atomic_load_explicit(&p->generation, memory_order_acquire) == seen && !atomic_load(&p->stopping); i++)
            if (i % 256 == 0 && now_ns() - t0 > SPIN_NS) break;
            else cpu_relax();
        if (atomic_load_explicit(&p->generation, memory_order_acquire) == seen && !atomic_load(&p->stopping)) {
            pthread_mutex_lock(&p->mu);
            p->sleeping_workers++;
            while (!atomic_load(&p->stopping) && atomic_load_explicit(&p->generation, memory_order_acquire) == seen)
                pthread_cond_wait(&p->wake, &p->mu);
            p->sleeping_workers--;
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stopping)) break;
        seen = atomic_load_explicit(&p->generation, memory_order_acquire);
        run_tasks(p, p->fn, p->arg, p->n_tasks, index);
        if (atomic_fetch_sub(&p->busy_workers, 1) == 1) {
            pthread_mutex_lock(&p->mu);
            if (p->caller_sleeping) pthread_cond_signal(&p->done);
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
    /* no worker is inside a job here (the previous call waited for all) */
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    atomic_store(&p->next_task, 0);
    atomic_store(&p->busy_workers, p->n_threads - 1);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_mutex_lock(&p->mu);
    if (p->sleeping_workers > 0) pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p, fn, arg, n_tasks, 0);
    int64_t t0 = now_ns();
    for (int i = 1; atomic_load(&p->busy_workers) > 0; i++)
        if (i % 256 == 0 && now_ns() - t0 > SPIN_NS) break;
        else cpu_relax();
    if (atomic_load(&p->busy_workers) > 0) {
        pthread_mutex_lock(&p->mu);
        p->caller_sleeping = 1;
        while (atomic_load(&p->busy_workers) > 0) pthread_cond_wait(&p->done, &p->mu);
        p->caller_sleeping = 0;
        pthread_mutex_unlock(&p->mu);
    }
}

int dots_default_threads(void) {
#ifdef __linux__ /* the CPUs this process may run on (taskset, cgroups), not all the machine's */
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
