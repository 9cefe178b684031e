#include "backend/cpu/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct kiln_threadpool {
  int n_threads; /* including the caller */
  pthread_t *threads;
  pthread_mutex_t mu;
  pthread_cond_t wake;
  /* the current job */
  kiln_parallel_fn fn;
  void *ctx;
  int64_t n, grain;
  atomic_int_fast64_t next;   /* next item to hand out */
  atomic_int generation;      /* bumped per job; workers wait for a new one */
  atomic_int open;            /* 1 while the current job's fields may be read */
  atomic_int busy;            /* workers that joined the current job and have not left it */
  atomic_int stop;
  int sleeping;               /* workers blocked on `wake` (under mu) */
};

/* Workers spin this long (ns) before sleeping: a model runs ~100 parallel kernels back to back, and
 * a condition-variable wake-up costs ~0.1 ms on bare metal and up to milliseconds in a busy VM
 * (the vCPU is halted and must be rescheduled by the host), during which the caller waits for the
 * sleeper. A pause count is no measure of time (PAUSE takes ~20-150 cycles depending on the core,
 * and hypervisors may trap pause loops), so the clock is read every SPIN_CHECK pauses. */
#define SPIN_NS 3000000
#define SPIN_CHECK 64

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

typedef struct worker_arg {
  kiln_threadpool *tp;
  int index;
} worker_arg;

static void drain(kiln_threadpool *tp, int index) {
  for (;;) {
    int64_t b = atomic_fetch_add(&tp->next, tp->grain);
    if (b >= tp->n) break;
    int64_t e = b + tp->grain < tp->n ? b + tp->grain : tp->n;
    tp->fn(tp->ctx, b, e, index);
  }
}

static void *worker_main(void *p) {
  worker_arg *a = p;
  kiln_threadpool *tp = a->tp;
  int index = a->index, seen = 0;
  free(a);
  for (;;) {
    int64_t t0 = now_ns();
    for (int spins = 1; atomic_load(&tp->generation) == seen && !atomic_load(&tp->stop); spins++) {
      cpu_relax();
      if (spins % SPIN_CHECK == 0 && now_ns() - t0 > SPIN_NS) break;
    }
    if (atomic_load(&tp->generation) == seen && !atomic_load(&tp->stop)) {
      pthread_mutex_lock(&tp->mu);
      tp->sleeping++;
      while (!atomic_load(&tp->stop) && atomic_load(&tp->generation) == seen) pthread_cond_wait(&tp->wake, &tp->mu);
      tp->sleeping--;
      pthread_mutex_unlock(&tp->mu);
    }
    if (atomic_load(&tp->stop)) break;
    seen = atomic_load(&tp->generation);
    /* Join, then look: the caller only rewrites the job while open == 0 and busy == 0, so a worker
     * that sees open == 1 after joining reads a complete job and is waited for. */
    atomic_fetch_add(&tp->busy, 1);
    if (atomic_load(&tp->open)) drain(tp, index);
    atomic_fetch_sub(&tp->busy, 1);
  }
  return NULL;
}

int kiln_cpu_physical_cores(void) {
  /* Count distinct (physical id, core id) pairs; fall back to online CPUs. */
  FILE *f = fopen("/proc/cpuinfo", "r");
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  if (!f) return online > 0 ? (int)online : 1;
  char line[256];
  int phys = -1, pairs[1024][2], n_pairs = 0;
  while (fgets(line, sizeof line, f)) {
    int v;
    if (sscanf(line, "physical id : %d", &v) == 1) phys = v;
    else if (sscanf(line, "core id : %d", &v) == 1) {
      int k = 0;
      while (k < n_pairs && !(pairs[k][0] == phys && pairs[k][1] == v)) k++;
      if (k == n_pairs && n_pairs < 1024) {
        pairs[n_pairs][0] = phys;
        pairs[n_pairs++][1] = v;
      }
    }
  }
  fclose(f);
  if (n_pairs <= 0) return online > 0 ? (int)online : 1;
  return n_pairs;
}

kiln_status kiln_threadpool_create(int n_threads, kiln_threadpool **out) {
  *out = NULL;
  if (n_threads <= 0) {
    const char *env = getenv("KILN_THREADS");
    n_threads = env && atoi(env) > 0 ? atoi(env) : kiln_cpu_physical_cores();
  }
  if (n_threads > 1024) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "too many threads (%d)", n_threads);
  kiln_threadpool *tp = calloc(1, sizeof *tp);
  KILN_CHECK_ALLOC(tp);
  tp->n_threads = n_threads;
  pthread_mutex_init(&tp->mu, NULL);
  pthread_cond_init(&tp->wake, NULL);
  if (n_threads > 1) {
    tp->threads = calloc((size_t)n_threads - 1, sizeof(pthread_t));
    if (!tp->threads) {
      kiln_threadpool_destroy(tp);
      return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory creating threads");
    }
    for (int i = 1; i < n_threads; i++) {
      worker_arg *a = malloc(sizeof *a);
      if (a) *a = (worker_arg){tp, i};
      if (!a || pthread_create(&tp->threads[i - 1], NULL, worker_main, a) != 0) {
        free(a);
        tp->n_threads = i; /* destroy joins only those started */
        kiln_threadpool_destroy(tp);
        return kiln_error(KILN_ERR_INTERNAL, "cannot start thread %d", i);
      }
    }
  }
  *out = tp;
  return NULL;
}

void kiln_threadpool_destroy(kiln_threadpool *tp) {
  if (!tp) return;
  pthread_mutex_lock(&tp->mu);
  atomic_store(&tp->stop, 1);
  pthread_cond_broadcast(&tp->wake);
  pthread_mutex_unlock(&tp->mu);
  for (int i = 1; i < tp->n_threads; i++)
    if (tp->threads) pthread_join(tp->threads[i - 1], NULL);
  free(tp->threads);
  pthread_mutex_destroy(&tp->mu);
  pthread_cond_destroy(&tp->wake);
  free(tp);
}

int kiln_threadpool_size(const kiln_threadpool *tp) { return tp ? tp->n_threads : 1; }

void kiln_threadpool_run(kiln_threadpool *tp, int64_t n, int64_t grain, kiln_parallel_fn fn, void *ctx) {
  if (n <= 0) return;
  int threads = tp ? tp->n_threads : 1;
  if (grain <= 0) grain = n / (4 * threads) > 0 ? n / (4 * threads) : 1;
  if (!tp || threads == 1 || n <= grain) {
    fn(ctx, 0, n, 0);
    return;
  }
  /*
   * The caller never waits for a worker that has not joined: on a loaded machine a worker may not be
   * scheduled for milliseconds, and waiting for it at every kernel made a run 6x slower. Workers that
   * joined are waited for (they hold claimed chunks); the rest find the job closed or help with the next.
   */
  while (atomic_load(&tp->busy) > 0) cpu_relax(); /* a late joiner of the last job is leaving */
  tp->fn = fn;
  tp->ctx = ctx;
  tp->n = n;
  tp->grain = grain;
  atomic_store(&tp->next, 0);
  atomic_store(&tp->open, 1);
  atomic_fetch_add(&tp->generation, 1); /* wakes the spinners (seq_cst after the fields) */
  pthread_mutex_lock(&tp->mu);
  if (tp->sleeping) pthread_cond_broadcast(&tp->wake);
  pthread_mutex_unlock(&tp->mu);
  drain(tp, 0);
  atomic_store(&tp->open, 0);
  while (atomic_load(&tp->busy) > 0) cpu_relax(); /* joined workers finish their last chunk */
}
