// Persistent thread pool: workers spin briefly after each job, then sleep on a condition
// variable. Tasks are handed out by an atomic counter (dynamic scheduling, which copes with a
// noisy shared machine); determinism comes from task boundaries, not from who runs them.
#define _GNU_SOURCE
#include "ck_pool.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define CK_PAUSE() _mm_pause()
#else
#define CK_PAUSE() ((void)0)
#endif

#define CK_MAX_THREADS 256
#define CK_SPIN_ITERS 20000

void ck_blas_single_threaded(void);  // ck_gemm.c

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic uint64_t generation;   // bumped once per job
    _Atomic int64_t next_task;
    _Atomic int busy_workers;      // workers that have not finished the current job
    _Atomic int sleepers;
    ck_task_fn fn;
    void *ctx;
    int64_t ntasks;
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

typedef struct { ck_pool *pool; uint64_t generation; } worker_arg;

static void *worker_main(void *arg) {
    // The generation current when the worker was created (not when it got to run: a job may
    // have been posted in between, and the worker must take part in it).
    worker_arg a = *(worker_arg *)arg;
    free(arg);
    ck_pool *p = a.pool;
    t_in_task = 1;
    uint64_t seen = a.generation;
    for (;;) {
        int spins = 0;
        while (atomic_load(&p->generation) == seen) {
            if (++spins < CK_SPIN_ITERS) { CK_PAUSE(); continue; }
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->generation) == seen && !p->shutdown)
                pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            int stop = p->shutdown;
            pthread_mutex_unlock(&p->mu);
            if (stop) return NULL;
            spins = 0;
        }
        seen = atomic_load(&p->generation);
        if (p->shutdown) return NULL;
        atomic_fetch_add(&g_worker_tasks, run_tasks(p));
        atomic_fetch_sub(&p->busy_workers, 1);
    }
}

int ck_default_num_threads(void) {
    const char *env = getenv("DISTILL_NUM_THREADS");
    if (env && *env) {
        int n = atoi(env);
        if (n >= 1) return n > CK_MAX_THREADS ? CK_MAX_THREADS : n;
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n >= 1) return n > CK_MAX_THREADS ? CK_MAX_THREADS : n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > CK_MAX_THREADS ? CK_MAX_THREADS : (int)n);
}

static void start_workers(int n) {
    g_pool.shutdown = 0;
    g_pool.nthreads = n;
    for (int i = 0; i + 1 < n; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (a) *a = (worker_arg){&g_pool, atomic_load(&g_pool.generation)};
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
    atomic_fetch_add(&g_pool.generation, 1);
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
    atomic_store(&p->next_task, 0);
    atomic_store(&p->busy_workers, p->nthreads - 1);
    atomic_fetch_add(&p->generation, 1);          // seq_cst: pairs with the sleepers check
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    t_in_task = 1;
    run_tasks(p);
    t_in_task = 0;
    while (atomic_load(&p->busy_workers) > 0) CK_PAUSE();
    pthread_mutex_unlock(&g_use);
}
