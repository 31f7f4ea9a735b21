// CRC-32C (Castagnoli polynomial, reflected 0x82F63B78; init and final xor 0xFFFFFFFF), the
// checksum stored for every tensor of a nabla checkpoint. It detects every error burst up to
// 32 bits long (so every single-bit flip) and x86-64 computes it in hardware (SSE4.2 crc32
// instruction, ~8 bytes per cycle); elsewhere a table-driven loop takes 8 bytes per step.
// Check value: crc32c("123456789") = 0xE3069283.
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "io/safetensors_impl.h"

#define POLY 0x82F63B78u

static uint32_t table[8][256]; // table[k][b]: b followed by k zero bytes
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void make_table(void) {
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        table[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++)
        for (int k = 1; k < 8; k++)
            table[k][b] = (table[k - 1][b] >> 8) ^ table[0][table[k - 1][b] & 0xFF];
}

static uint32_t crc_soft(uint32_t c, const unsigned char *p, size_t n) {
    pthread_once(&table_once, make_table);
    while (n >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        c = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^
            table[4][lo >> 24] ^ table[3][p[4]] ^ table[2][p[5]] ^ table[1][p[6]] ^ table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xFF];
    return c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const unsigned char *p,
                                                         size_t n) {
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8); // x86 is little-endian: the bytes in file order
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
    while (n--)
        c = _mm_crc32_u8(c, *p++);
    return c;
}
static bool have_hw(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}
#else
static uint32_t crc_hw(uint32_t c, const unsigned char *p, size_t n) {
    return crc_soft(c, p, n);
}
static bool have_hw(void) {
    return false;
}
#endif

uint32_t nb__crc32c_update(uint32_t crc, const void *data, size_t n) {
    const unsigned char *p = data;
    uint32_t c = ~crc;
    c = have_hw() ? crc_hw(c, p, n) : crc_soft(c, p, n);
    return ~c;
}

uint32_t nb__crc32c_soft(uint32_t crc, const void *data, size_t n) {
    return ~crc_soft(~crc, data, n);
}
