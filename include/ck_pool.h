// Persistent pthread pool with a parallel-for over a fixed number of tasks.
//
// Kernels cut their work into tasks whose boundaries depend only on the problem size, never
// on the thread count; each output element is produced by exactly one task, and every task
// runs the same code whichever thread picks it. Results are therefore bit-identical for any
// number of threads. The pool size comes from DISTILL_NUM_THREADS, else the CPUs this
// process may run on. The calling thread takes part in the work. A call made from inside a
// task, or while another thread is using the pool, runs serially on the caller.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// One unit of work: task index `task` of `ntasks`.
typedef void (*ck_task_fn)(void *ctx, int64_t task, int64_t ntasks);

// Runs fn(ctx, i, ntasks) for every i in [0, ntasks) and returns when all are done.
void ck_parallel_for(ck_task_fn fn, void *ctx, int64_t ntasks);

// Number of threads the pool uses (the caller included), at least 1.
int ck_get_num_threads(void);

// Resizes the pool (n >= 1; values below 1 mean "the default"). Not to be called from a task.
void ck_set_num_threads(int n);

// Thread count the pool would choose by itself: DISTILL_NUM_THREADS or the usable CPUs.
int ck_default_num_threads(void);

// Total tasks run so far by the pool's worker threads (not by callers): lets tests check
// that work was really shared.
int64_t ck_pool_worker_tasks(void);

#ifdef __cplusplus
}
#endif
