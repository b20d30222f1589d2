// Philox-4x32-10 counter-based random numbers (Salmon, Moraes, Dror & Shaw, "Parallel random
// numbers: as easy as 1, 2, 3", SC 2011).
//
// The value at position p of the stream (seed, stream) comes from the Philox block with
// counter (p/4 low, p/4 high, stream low, stream high) and key (seed low, seed high), lane
// p%4. Filling n values from `offset` therefore gives the same numbers whatever the thread
// count and however a batch is split: values depend on (seed, stream, position) only.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// One Philox-4x32-10 block.
void ck_philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]);

// x[i] = lo + (hi - lo) * u, u uniform in [0, 1) with 24 random bits, position offset + i.
void ck_random_uniform(float *x, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset,
                       float lo, float hi);

// x[i] = mean + std * z, z standard normal by Box-Muller on the block's lane pairs (0,1) and
// (2,3): lane 0 gets r cos(2 pi u2), lane 1 r sin(2 pi u2), with u1 from the even lane in (0, 1].
void ck_random_normal(float *x, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset,
                      float mean, float std);

#ifdef __cplusplus
}
#endif
