/*
 * peak.c - this machine's limits, measured on the spot so benchmark figures
 * can be stated as a fraction of them (the host is shared and noisy: a
 * ratio measured in the same run means more than an absolute number):
 *   - bf16 dot peak: every thread runs the vdpbf16ps loop of peak_avx512.c;
 *   - DRAM read bandwidth: every thread sums its share of a 1 GiB buffer.
 */
#include "kernels/kernels.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

double dots_peak_bf16_kernel(int64_t iters);

typedef struct peak_job {
    int64_t iters;
    double sink;
} peak_job;

static void peak_task(void *arg, int64_t t, int worker) {
    (void)t, (void)worker;
    peak_job *j = arg;
    double r = dots_peak_bf16_kernel(j->iters);
    __atomic_store_n((int64_t *)&j->sink, (int64_t)r, __ATOMIC_RELAXED);
}

double dots_measure_bf16_peak_gflops(const dots_kernels *k) {
    if (!k || k->isa < DOTS_ISA_AVX512BF16) return 0;
    int n = dots_pool_size(k->pool);
    peak_job j = {20000000, 0};
    dots_pool_run(k->pool, n, peak_task, &j); /* warm up the clocks */
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t = dots_monotonic_s();
        dots_pool_run(k->pool, n, peak_task, &j);
        double gflops = (double)n * (double)j.iters * 12.0 * 64.0 / (dots_monotonic_s() - t) / 1e9;
        if (gflops > best) best = gflops;
    }
    return best;
}

typedef struct bw_job {
    const uint64_t *buf;
    int64_t n_words, n_tasks;
    uint64_t sums[DOTS_MAX_THREADS];
} bw_job;

static void bw_task(void *arg, int64_t t, int worker) {
    bw_job *j = arg;
    int64_t per = j->n_words / j->n_tasks, b = t * per, e = t + 1 == j->n_tasks ? j->n_words : b + per;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t i = b; i + 4 <= e; i += 4) {
        s0 += j->buf[i];
        s1 += j->buf[i + 1];
        s2 += j->buf[i + 2];
        s3 += j->buf[i + 3];
    }
    j->sums[worker] += s0 + s1 + s2 + s3;
}

double dots_measure_dram_gbps(const dots_kernels *k, size_t bytes) {
    uint64_t *buf = malloc(bytes);
    if (!buf) return 0;
    memset(buf, 1, bytes); /* resident */
    int n = dots_pool_size(k ? k->pool : NULL);
    bw_job j;
    memset(&j, 0, sizeof j);
    j.buf = buf;
    j.n_words = (int64_t)(bytes / 8);
    j.n_tasks = n;
    double best = 0;
    for (int rep = 0; rep < 4; rep++) {
        double t = dots_monotonic_s();
        dots_pool_run(k ? k->pool : NULL, n, bw_task, &j);
        double gbps = (double)bytes / (dots_monotonic_s() - t) / 1e9;
        if (gbps > best) best = gbps;
    }
    free(buf);
    return best;
}
