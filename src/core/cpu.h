/*
 * cpu.h - which instruction sets this CPU and OS support, checked at run
 * time, so one binary runs everywhere and uses the widest vectors it can:
 * on x86-64 CPUID for the CPU and XGETBV for the OS saving the wide
 * registers; on AArch64 the kernel's hardware capability bits (getauxval on
 * Linux, sysctl on macOS). DOTS_ISA in the environment caps the level, to
 * test every path: generic, avx2, avx512, avx512vnni on x86; generic, neon,
 * dotprod, i8mm, bf16 on ARM.
 */
#ifndef DOTS_CPU_H
#define DOTS_CPU_H

#include <stdbool.h>

/* Two ladders. The x86 levels count up from GENERIC and the kernels test
 * them with isa >= level; the ARM levels count down from it, so that no x86
 * test passes on ARM (and the reverse): test them with dots_isa_arm(). */
typedef enum dots_isa {
    DOTS_ISA_ARM_BF16 = -4, /* plus BF16 (BFDOT, BFMMLA) */
    DOTS_ISA_ARM_I8MM = -3, /* plus I8MM (SMMLA: int8 2x8 by 8x2 products) */
    DOTS_ISA_ARM_DOTPROD = -2, /* plus DotProd (SDOT: int8 dot products) */
    DOTS_ISA_NEON = -1,     /* AdvSIMD: every AArch64 CPU */
    DOTS_ISA_GENERIC = 0,   /* portable C */
    DOTS_ISA_AVX2,          /* AVX2 + FMA */
    DOTS_ISA_AVX512,        /* AVX-512 F/BW/VL + FMA */
    DOTS_ISA_AVX512VNNI,    /* plus AVX512_VNNI (vpdpbusd: int8 dot products) and _VBMI (vpermb) */
    DOTS_ISA_AVX512BF16,    /* plus AVX512_BF16 (vdpbf16ps) */
} dots_isa;

/* Whether isa is an ARM level at least as high as level (an ARM level). */
static inline bool dots_isa_arm(dots_isa isa, dots_isa level) { return isa < DOTS_ISA_GENERIC && isa <= level; }

/* Whether isa has native bf16 dot products (AVX512_BF16 or ARM's BF16):
 * the bf16 GEMM and decode kernels of precision "bf16". */
static inline bool dots_isa_bf16(dots_isa isa) {
    return isa >= DOTS_ISA_AVX512BF16 || dots_isa_arm(isa, DOTS_ISA_ARM_BF16);
}

/* The best level both CPU and OS support, capped by $DOTS_ISA. */
dots_isa dots_cpu_isa(void);
const char *dots_isa_name(dots_isa isa);

#endif
