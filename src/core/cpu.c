/*
 * cpu.c - run-time ISA detection (see cpu.h).
 */
#include "core/cpu.h"

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
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
/* the kernel's bit numbers (asm/hwcap.h), spelled out for older headers */
#define DOTS_HWCAP_ASIMD (1ul << 1)
#define DOTS_HWCAP_ASIMDDP (1ul << 20)
#define DOTS_HWCAP2_I8MM (1ul << 13)
#define DOTS_HWCAP2_BF16 (1ul << 14)

static dots_isa detect(void) {
    const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    if (!(hw & DOTS_HWCAP_ASIMD)) return DOTS_ISA_GENERIC;
    if (!(hw & DOTS_HWCAP_ASIMDDP)) return DOTS_ISA_NEON;
    if (!(hw2 & DOTS_HWCAP2_I8MM)) return DOTS_ISA_ARM_DOTPROD;
    return (hw2 & DOTS_HWCAP2_BF16) ? DOTS_ISA_ARM_BF16 : DOTS_ISA_ARM_I8MM;
}
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>

static bool has(const char *name) {
    int v = 0;
    size_t n = sizeof v;
    return sysctlbyname(name, &v, &n, NULL, 0) == 0 && v != 0;
}

static dots_isa detect(void) { /* every Apple CPU has AdvSIMD */
    if (!has("hw.optional.arm.FEAT_DotProd")) return DOTS_ISA_NEON;
    if (!has("hw.optional.arm.FEAT_I8MM")) return DOTS_ISA_ARM_DOTPROD;
    return has("hw.optional.arm.FEAT_BF16") ? DOTS_ISA_ARM_BF16 : DOTS_ISA_ARM_I8MM;
}
#elif defined(__aarch64__)
static dots_isa detect(void) { return DOTS_ISA_NEON; } /* AdvSIMD is part of AArch64 */
#else
static dots_isa detect(void) { return DOTS_ISA_GENERIC; }
#endif

const char *dots_isa_name(dots_isa isa) {
    switch (isa) {
    case DOTS_ISA_AVX2: return "avx2";
    case DOTS_ISA_AVX512: return "avx512";
    case DOTS_ISA_AVX512VNNI: return "avx512vnni";
    case DOTS_ISA_AVX512BF16: return "avx512bf16";
    case DOTS_ISA_NEON: return "neon";
    case DOTS_ISA_ARM_DOTPROD: return "dotprod";
    case DOTS_ISA_ARM_I8MM: return "i8mm";
    case DOTS_ISA_ARM_BF16: return "bf16";
    default: return "generic";
    }
}

dots_isa dots_cpu_isa(void) {
    dots_isa isa = detect();
    const char *cap = getenv("DOTS_ISA");
    if (!cap) return isa;
    if (strcmp(cap, "generic") == 0) return DOTS_ISA_GENERIC;
    /* a cap on the other ladder, or above what the CPU has, changes nothing */
    for (int i = DOTS_ISA_ARM_BF16; i <= DOTS_ISA_AVX512BF16; i++) {
        if (i == DOTS_ISA_GENERIC || strcmp(cap, dots_isa_name((dots_isa)i)) != 0) continue;
        const bool same_ladder = (i < 0) == ((int)isa < 0);
        if (same_ladder && (i < 0 ? i > (int)isa : i < (int)isa)) isa = (dots_isa)i;
    }
    return isa;
}
