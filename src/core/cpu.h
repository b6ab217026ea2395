/*
 * cpu.h - which instruction sets this CPU and OS support, checked at run
 * time (CPUID for the CPU, XGETBV for the OS saving the wide registers), so
 * one binary runs everywhere and uses AVX-512 where it can. DOTS_ISA=generic
 * (or avx2, avx512, avx512vnni) in the environment caps the level, to test every path.
 */
#ifndef DOTS_CPU_H
#define DOTS_CPU_H

typedef enum dots_isa {
    DOTS_ISA_GENERIC = 0, /* portable C */
    DOTS_ISA_AVX2,        /* AVX2 + FMA */
    DOTS_ISA_AVX512,      /* AVX-512 F/BW/VL + FMA */
    DOTS_ISA_AVX512VNNI,  /* plus AVX512_VNNI (vpdpbusd: int8 dot products) and _VBMI (vpermb) */
    DOTS_ISA_AVX512BF16,  /* plus AVX512_BF16 (vdpbf16ps) */
} dots_isa;

/* The best level both CPU and OS support, capped by $DOTS_ISA. */
dots_isa dots_cpu_isa(void);
const char *dots_isa_name(dots_isa isa);

#endif
