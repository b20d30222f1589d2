// Size classes: multiples of 64 bytes up to 4 KiB, then 8 classes per power of two (at most
// 12.5% slack). Freed buffers go to a per-class free list (the link lives in the buffer),
// up to a cap on cached bytes; beyond it they go back to the system. DISTILL_ALLOC_CACHE=0
// turns the free lists off (read once, at the first free).
#include "ck_alloc.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SMALL_LIMIT 4096
#define SMALL_CLASSES (SMALL_LIMIT / 64)
#define SUB 8
#define NCLASSES (SMALL_CLASSES + 64 * SUB)
#define CACHE_CAP ((size_t)2 << 30)

typedef struct block { struct block *next; } block;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static block *g_free[NCLASSES];
static size_t g_cached, g_live, g_peak;

static pthread_once_t g_cache_once = PTHREAD_ONCE_INIT;
static int g_cache_on = 1;

static void read_cache_setting(void) {
    const char *v = getenv("DISTILL_ALLOC_CACHE");
    g_cache_on = !(v && strcmp(v, "0") == 0);
}

static size_t class_of(size_t bytes, size_t *class_bytes) {
    if (bytes == 0) bytes = 1;
    if (bytes <= SMALL_LIMIT) {
        size_t c = (bytes + 63) / 64;
        *class_bytes = c * 64;
        return c - 1;
    }
    int e = 63 - __builtin_clzll((unsigned long long)(bytes - 1));   // 2^e < bytes <= 2^(e+1)
    size_t base = (size_t)1 << e, step = base / SUB;
    size_t j = (bytes - base + step - 1) / step;                     // 1..SUB
    *class_bytes = base + j * step;
    return SMALL_CLASSES + (size_t)(e - 12) * SUB + (j - 1);
}

void *ck_alloc(size_t bytes) {
    size_t cb;
    size_t c = class_of(bytes, &cb);
    pthread_mutex_lock(&g_mu);
    block *b = c < NCLASSES ? g_free[c] : NULL;
    if (b) { g_free[c] = b->next; g_cached -= cb; }
    g_live += cb;
    if (g_live > g_peak) g_peak = g_live;
    pthread_mutex_unlock(&g_mu);
    if (b) return b;
    void *p = NULL;
    if (posix_memalign(&p, 64, cb) != 0) {
        pthread_mutex_lock(&g_mu);
        g_live -= cb;
        pthread_mutex_unlock(&g_mu);
        return NULL;
    }
    return p;
}

void *ck_alloc_zeroed(size_t bytes) {
    void *p = ck_alloc(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void ck_free(void *ptr, size_t bytes) {
    if (!ptr) return;
    size_t cb;
    size_t c = class_of(bytes, &cb);
    pthread_once(&g_cache_once, read_cache_setting);
    pthread_mutex_lock(&g_mu);
    g_live -= cb;
    if (g_cache_on && c < NCLASSES && g_cached + cb <= CACHE_CAP) {
        block *b = ptr;
        b->next = g_free[c];
        g_free[c] = b;
        g_cached += cb;
        ptr = NULL;
    }
    pthread_mutex_unlock(&g_mu);
    free(ptr);
}

void ck_alloc_trim(void) {
    pthread_mutex_lock(&g_mu);
    for (int c = 0; c < NCLASSES; c++) {
        block *b = g_free[c];
        while (b) { block *n = b->next; free(b); b = n; }
        g_free[c] = NULL;
    }
    g_cached = 0;
    pthread_mutex_unlock(&g_mu);
}

size_t ck_alloc_live_bytes(void) {
    pthread_mutex_lock(&g_mu); size_t v = g_live; pthread_mutex_unlock(&g_mu); return v;
}
size_t ck_alloc_peak_bytes(void) {
    pthread_mutex_lock(&g_mu); size_t v = g_peak; pthread_mutex_unlock(&g_mu); return v;
}
size_t ck_alloc_cached_bytes(void) {
    pthread_mutex_lock(&g_mu); size_t v = g_cached; pthread_mutex_unlock(&g_mu); return v;
}
void ck_alloc_reset_peak(void) {
    pthread_mutex_lock(&g_mu); g_peak = g_live; pthread_mutex_unlock(&g_mu);
}
