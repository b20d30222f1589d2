// Philox-4x32-10 and the uniform / normal fills built on it.
#include "ck_random.h"
#include "ck_internal.h"
#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void ck_philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

static void block_at(uint32_t out[4], uint64_t seed, uint64_t stream, uint64_t block) {
    uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    ck_philox4x32_10(out, ctr, key);
}

static inline float u24(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }

// Standard normal value of lane `lane` in a block.
static inline float normal_lane(const uint32_t w[4], int lane) {
    int pair = lane & 2;
    float u1 = (float)((w[pair] >> 8) + 1) * (1.0f / 16777216.0f);   // (0, 1]
    float u2 = u24(w[pair + 1]);
    float r = sqrtf(-2.0f * logf(u1)), a = 6.28318530717958648f * u2;
    return (lane & 1) ? r * sinf(a) : r * cosf(a);
}

// Standard normals at positions offset.. offset+n-1, on the calling thread (for fusing into
// other kernels; ck_internal.h).
void ck_random_normal_serial(float *x, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
    uint32_t w[4];
    uint64_t cached = UINT64_MAX;
    for (int64_t i = 0; i < n; i++) {
        uint64_t pos = offset + (uint64_t)i, blk = pos >> 2;
        if (blk != cached) { block_at(w, seed, stream, blk); cached = blk; }
        x[i] = normal_lane(w, (int)(pos & 3));
    }
}

typedef struct { float *x; int64_t n; uint64_t seed, stream, offset; float a, b; int normal; } rnd_job;

static void rnd_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const rnd_job *j = p;
    int64_t s = t * CK_BLOCK, e = ck_min64(s + CK_BLOCK, j->n);
    uint32_t w[4];
    uint64_t cached = UINT64_MAX;
    for (int64_t i = s; i < e; i++) {
        uint64_t pos = j->offset + (uint64_t)i, blk = pos >> 2;
        int lane = (int)(pos & 3);
        if (blk != cached) { block_at(w, j->seed, j->stream, blk); cached = blk; }
        j->x[i] = j->normal ? j->a + j->b * normal_lane(w, lane) : j->a + (j->b - j->a) * u24(w[lane]);
    }
}

void ck_random_uniform(float *x, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset,
                       float lo, float hi) {
    rnd_job j = {x, n, seed, stream, offset, lo, hi, 0};
    ck_parallel_for(rnd_task, &j, ck_ceil_div(n, CK_BLOCK));
}

void ck_random_normal(float *x, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset,
                      float mean, float std) {
    rnd_job j = {x, n, seed, stream, offset, mean, std, 1};
    ck_parallel_for(rnd_task, &j, ck_ceil_div(n, CK_BLOCK));
}
