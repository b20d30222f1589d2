// Data movement: a strided copy that materializes permutations, slices, concatenations and
// broadcasts, with an accumulating mode for their backward passes.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// For every index i over `shape` (ndim <= 8): y[sum i*ystride] (=|+=) x[sum i*xstride].
// Distinct indices must reach distinct y elements (true for permute, slice, concat).
void ck_strided_copy(float *y, const int64_t *ystride, const float *x, const int64_t *xstride,
                     const int64_t *shape, int ndim, int accumulate);

#ifdef __cplusplus
}
#endif
