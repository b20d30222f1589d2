// Persistent thread pool: workers spin briefly after each job, then sleep on a condition
// variable. Tasks are handed out by an atomic counter (dynamic scheduling, which copes with a
// noisy shared machine); determinism comes from task boundaries, not from who runs them.
//
// A worker must *join* a job before touching it, which it can only do while the job is
// open. The caller runs tasks too; once every task is claimed it closes the job and waits
// only for the workers that joined (they are running tasks, so the wait is short). A worker
// that is asleep or descheduled when the job is posted is never waited for: on an
// oversubscribed machine the caller simply does the work itself.
#define _GNU_SOURCE   // sched_getaffinity and CPU_COUNT on Linux; the rest is POSIX
#include "ck_pool.h"
#include "ck_cpu.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define CK_PAUSE() _mm_pause()
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define CK_PAUSE() __asm__ __volatile__("yield")
#else
#define CK_PAUSE() ((void)0)
#endif

#define CK_MAX_THREADS 256
#define CK_SPIN_ITERS 20000

// The job word: [generation: 32 bits][open: 1 bit][workers inside the job: 31 bits].
#define OPEN_BIT ((uint64_t)1 << 31)
#define GEN(s) ((s) >> 32)
#define ACTIVE(s) ((s) & (OPEN_BIT - 1))

void ck_blas_single_threaded(void);  // ck_gemm.c

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic uint64_t slot;
    _Atomic int64_t next_task;
    _Atomic int sleepers;
    ck_task_fn fn;
    void *ctx;
    int64_t ntasks;
    int simd;                      // the caller's ck_cpu_simd_enabled(), applied on the workers
    int level;                     // the caller's ck_simd_level(), applied on the workers
    int nthreads;                  // caller included
    int shutdown;
    pthread_t workers[CK_MAX_THREADS];
} ck_pool;

static ck_pool g_pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
static pthread_mutex_t g_use = PTHREAD_MUTEX_INITIALIZER;   // one job at a time
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static _Thread_local int t_in_task = 0;
static _Atomic int64_t g_worker_tasks = 0;   // tasks run by pool workers (not callers)

static int64_t run_tasks(ck_pool *p) {
    int64_t done = 0;
    for (;;) {
        int64_t i = atomic_fetch_add(&p->next_task, 1);
        if (i >= p->ntasks) break;
        p->fn(p->ctx, i, p->ntasks);
        done++;
    }
    return done;
}

// Joins job `gen` if it is still open; returns 1 when joined.
static int try_join(ck_pool *p, uint64_t gen) {
    uint64_t s = atomic_load(&p->slot);
    while (GEN(s) == gen && (s & OPEN_BIT)) {
        if (atomic_compare_exchange_weak(&p->slot, &s, s + 1)) return 1;
    }
    return 0;
}

typedef struct { ck_pool *pool; uint64_t generation; } worker_arg;

static void *worker_main(void *arg) {
    // The generation current when the worker was created (passed in, not read on start).
    worker_arg a = *(worker_arg *)arg;
    free(arg);
    ck_pool *p = a.pool;
    t_in_task = 1;
    uint64_t seen = a.generation;
    for (;;) {
        int spins = 0;
        while (GEN(atomic_load(&p->slot)) == seen) {
            if (++spins < CK_SPIN_ITERS) { CK_PAUSE(); continue; }
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (GEN(atomic_load(&p->slot)) == seen && !p->shutdown) pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            int stop = p->shutdown;
            pthread_mutex_unlock(&p->mu);
            if (stop) return NULL;
            spins = 0;
        }
        seen = GEN(atomic_load(&p->slot));
        if (p->shutdown) return NULL;
        if (try_join(p, seen)) {
            int own = ck_cpu_set_thread_simd_enabled(p->simd), own_level = ck_simd_set_thread_level(p->level);
            atomic_fetch_add(&g_worker_tasks, run_tasks(p));
            ck_cpu_set_thread_simd_enabled(own);
            ck_simd_set_thread_level(own_level);
            atomic_fetch_sub(&p->slot, 1);
        }
    }
}

int ck_default_num_threads(void) {
    const char *env = getenv("DISTILL_NUM_THREADS");
    if (env && *env) {
        int n = atoi(env);
        if (n >= 1) return n > CK_MAX_THREADS ? CK_MAX_THREADS : n;
    }
#if defined(__linux__)   // the CPUs this process may run on (Linux only)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n >= 1) return n > CK_MAX_THREADS ? CK_MAX_THREADS : n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);   // elsewhere (macOS, BSDs), the online CPUs
    return n < 1 ? 1 : (n > CK_MAX_THREADS ? CK_MAX_THREADS : (int)n);
}

static void start_workers(int n) {
    g_pool.shutdown = 0;
    g_pool.nthreads = n;
    for (int i = 0; i + 1 < n; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (a) *a = (worker_arg){&g_pool, GEN(atomic_load(&g_pool.slot))};
        if (!a || pthread_create(&g_pool.workers[i], NULL, worker_main, a) != 0) {
            free(a);
            g_pool.nthreads = i + 1;   // run with the threads we could get
            break;
        }
    }
}

static void stop_workers(void) {
    pthread_mutex_lock(&g_pool.mu);
    g_pool.shutdown = 1;
    atomic_store(&g_pool.slot, (GEN(atomic_load(&g_pool.slot)) + 1) << 32);   // a new, closed generation
    pthread_cond_broadcast(&g_pool.cv);
    pthread_mutex_unlock(&g_pool.mu);
    for (int i = 0; i + 1 < g_pool.nthreads; i++) pthread_join(g_pool.workers[i], NULL);
    g_pool.nthreads = 1;
}

static void pool_init(void) {
    ck_blas_single_threaded();
    start_workers(ck_default_num_threads());
}

int64_t ck_pool_worker_tasks(void) { return atomic_load(&g_worker_tasks); }

int ck_get_num_threads(void) {
    pthread_once(&g_once, pool_init);
    return g_pool.nthreads;
}

void ck_set_num_threads(int n) {
    pthread_once(&g_once, pool_init);
    if (n < 1) n = ck_default_num_threads();
    if (n > CK_MAX_THREADS) n = CK_MAX_THREADS;
    pthread_mutex_lock(&g_use);
    if (n != g_pool.nthreads) {
        stop_workers();
        start_workers(n);
    }
    pthread_mutex_unlock(&g_use);
}

void ck_parallel_for(ck_task_fn fn, void *ctx, int64_t ntasks) {
    if (ntasks <= 0) return;
    pthread_once(&g_once, pool_init);
    if (ntasks == 1 || t_in_task || g_pool.nthreads == 1 || pthread_mutex_trylock(&g_use) != 0) {
        for (int64_t i = 0; i < ntasks; i++) fn(ctx, i, ntasks);
        return;
    }
    ck_pool *p = &g_pool;
    p->fn = fn;
    p->ctx = ctx;
    p->ntasks = ntasks;
    p->simd = ck_cpu_simd_enabled();
    p->level = ck_simd_level();
    atomic_store(&p->next_task, 0);
    // Open a new generation with nobody inside (seq_cst: pairs with the sleepers check).
    atomic_store(&p->slot, ((GEN(atomic_load(&p->slot)) + 1) << 32) | OPEN_BIT);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    t_in_task = 1;
    run_tasks(p);
    t_in_task = 0;
    // Every task is claimed: close the job, then wait for the workers inside it.
    atomic_fetch_and(&p->slot, ~OPEN_BIT);
    for (int spins = 0; ACTIVE(atomic_load(&p->slot)) != 0; spins++) {
        if (spins < 2000) CK_PAUSE(); else sched_yield();
    }
    pthread_mutex_unlock(&g_use);
}
