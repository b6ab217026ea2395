/*
 * cpu.c - run-time ISA detection (see cpu.h).
 */
#include "core/cpu.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long xgetbv0(void) {
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static dots_isa detect(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return DOTS_ISA_GENERIC;
    bool osxsave = c & (1u << 27), fma = c & (1u << 12), avx = c & (1u << 28);
    if (!osxsave || !avx || !fma) return DOTS_ISA_GENERIC;
    unsigned long long xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return DOTS_ISA_GENERIC; /* OS saves XMM and YMM */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return DOTS_ISA_GENERIC;
    bool avx2 = b & (1u << 5);
    if (!avx2) return DOTS_ISA_GENERIC;
    bool avx512 = (b & (1u << 16)) && (b & (1u << 30)) && (b & (1u << 31)); /* F, BW, VL */
    if (!avx512 || (xcr0 & 0xe6) != 0xe6) return DOTS_ISA_AVX2;     /* OS saves opmask and ZMM */
    if (!(c & (1u << 11)) || !(c & (1u << 1))) return DOTS_ISA_AVX512; /* AVX512_VNNI, AVX512_VBMI */
    unsigned int a1 = 0, b1, c1, d1;
    __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
    return (a1 & (1u << 5)) ? DOTS_ISA_AVX512BF16 : DOTS_ISA_AVX512VNNI;
}
#else
static dots_isa detect(void) { return DOTS_ISA_GENERIC; }
#endif

const char *dots_isa_name(dots_isa isa) {
    switch (isa) {
    case DOTS_ISA_AVX2: return "avx2";
    case DOTS_ISA_AVX512: return "avx512";
    case DOTS_ISA_AVX512VNNI: return "avx512vnni";
    case DOTS_ISA_AVX512BF16: return "avx512bf16";
    default: return "generic";
    }
}

dots_isa dots_cpu_isa(void) {
    dots_isa isa = detect();
    const char *cap = getenv("DOTS_ISA");
    if (cap) {
        for (int i = 0; i <= DOTS_ISA_AVX512BF16; i++)
            if (strcmp(cap, dots_isa_name((dots_isa)i)) == 0 && (dots_isa)i < isa) isa = (dots_isa)i;
    }
    return isa;
}
