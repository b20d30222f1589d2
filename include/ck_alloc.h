// 64-byte aligned buffers with a size-class cache, so a training loop that allocates the
// same activation sizes every step reuses memory instead of going back to the OS (large
// mallocs are mmaps, and every fresh page faults). Thread-safe.
//
// The environment variable DISTILL_ALLOC_CACHE=0 (read once, at the first ck_free) turns
// the cache off: every ck_free goes straight to free(), so AddressSanitizer sees a
// use-after-free or a double free of a tensor buffer instead of a recycled block.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// A buffer of at least `bytes` bytes, 64-byte aligned, or NULL when out of memory.
void *ck_alloc(size_t bytes);
// Same, filled with zeros.
void *ck_alloc_zeroed(size_t bytes);
// Returns a buffer from ck_alloc with the size it was asked for.
void ck_free(void *ptr, size_t bytes);
// Gives every cached buffer back to the system.
void ck_alloc_trim(void);

// Bytes in live buffers (size-class rounded), the peak of that since the last reset, and
// bytes kept in the cache.
size_t ck_alloc_live_bytes(void);
size_t ck_alloc_peak_bytes(void);
size_t ck_alloc_cached_bytes(void);
void ck_alloc_reset_peak(void);

#ifdef __cplusplus
}
#endif
