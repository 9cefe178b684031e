/*
 * A persistent thread pool for the CPU backend. Threads are created once (per execution context) and
 * sleep between runs; kiln_threadpool_run splits [0, n) into chunks that the caller and the workers take
 * from a shared counter, and returns when all are done. Nothing is allocated per run.
 */
#ifndef KILN_BACKEND_CPU_THREADPOOL_H
#define KILN_BACKEND_CPU_THREADPOOL_H

#include "core/status.h"
#include <stdint.h>

typedef struct kiln_threadpool kiln_threadpool;

/* fn(ctx, begin, end, thread_index): process items [begin, end). thread_index < kiln_threadpool_size(). */
typedef void (*kiln_parallel_fn)(void *ctx, int64_t begin, int64_t end, int thread_index);

/* n_threads <= 0: the number of physical cores (KILN_THREADS overrides). 1 = run on the caller only. */
kiln_status kiln_threadpool_create(int n_threads, kiln_threadpool **out);
void kiln_threadpool_destroy(kiln_threadpool *tp);
int kiln_threadpool_size(const kiln_threadpool *tp); /* threads including the caller; 1 for NULL */
/* Run fn over [0, n) in chunks of `grain` items (grain <= 0: n / (4 * threads), at least 1). tp may be
 * NULL (runs inline). Not reentrant: do not call from inside fn. */
void kiln_threadpool_run(kiln_threadpool *tp, int64_t n, int64_t grain, kiln_parallel_fn fn, void *ctx);
/* Physical cores of this machine (not hyperthreads), at least 1. */
int kiln_cpu_physical_cores(void);

#endif
