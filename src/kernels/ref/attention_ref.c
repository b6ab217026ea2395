/*
 * attention_ref.c - reference attention: for each query, all scores in
 * double, the softmax in double, then the weighted sum of values. O(n_k)
 * scratch per query; written for clarity, not speed.
 */
#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>

void dots_attention_ref(float *o, int64_t ldo, const float *q, int64_t ldq, const float *kk, int64_t ldk, const float *v,
                        int64_t ldv, int64_t n_q, int64_t n_k, int64_t d, float scale, bool causal, int64_t q_pos0) {
    double *s = malloc((size_t)(n_k > 0 ? n_k : 1) * sizeof *s);
    if (!s) return;
    for (int64_t i = 0; i < n_q; i++) {
        int64_t last = causal ? (q_pos0 + i < n_k - 1 ? q_pos0 + i : n_k - 1) : n_k - 1;
        double mx = -INFINITY;
        for (int64_t j = 0; j <= last; j++) {
            double acc = 0;
            for (int64_t c = 0; c < d; c++) acc += (double)q[i * ldq + c] * kk[j * ldk + c];
            s[j] = acc * scale;
            if (s[j] > mx) mx = s[j];
        }
        double sum = 0;
        for (int64_t j = 0; j <= last; j++) sum += (s[j] = exp(s[j] - mx));
        for (int64_t c = 0; c < d; c++) {
            double acc = 0;
            for (int64_t j = 0; j <= last; j++) acc += s[j] * v[j * ldv + c];
            o[i * ldo + c] = (float)(acc / sum);
        }
    }
    free(s);
}
