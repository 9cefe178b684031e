/* `kiln exec` reporting: trtexec-style statistics, summary lines, per-layer profile tables and the JSON
 * files (--exportTimes, --exportProfile, --exportOutput). Kept apart from the timing loop in cmd_exec.c so
 * the loop stays small and nothing here runs while it is timed. */
#ifndef KILN_TOOLS_EXEC_REPORT_H
#define KILN_TOOLS_EXEC_REPORT_H

#include "kiln/kiln.h"

#include <stdio.h>

#define KILN_EXEC_MAX_PERCENTILES 16

typedef struct kiln_exec_stats {
  double min, max, mean, median, sum;
  double pct[KILN_EXEC_MAX_PERCENTILES];
} kiln_exec_stats;

/* Statistics of n values as trtexec computes them (median: mean of the middle two for even n;
 * percentile p: the sorted value at index max(n - 1 - floor((1 - p/100) * n), 0)). scratch holds n doubles. */
void kiln_exec_stats_compute(const double *v, int n, const double *percentiles, int n_percentiles, double *scratch,
                             kiln_exec_stats *out);
/* "[I] <label>: min = .. ms, max = .., mean = .., median = .., percentile(90%) = .., ..." */
void kiln_exec_print_stats(FILE *f, const char *label, const kiln_exec_stats *s, const double *percentiles,
                           int n_percentiles);

/* One timed iteration, trtexec's record: ms relative to the start of the timed phase. Enqueue times are
 * host clock reads around the enqueue call; H2D/compute/D2H are CUDA events on the iteration's stream.
 * On the CPU the enqueue is synchronous: enqueue = compute = latency, H2D/D2H are empty intervals at the
 * edges of the compute. Latency = d2h_end - h2d_start. */
typedef struct kiln_exec_time {
  double enq_start, enq_end;
  double h2d_start, h2d_end;
  double compute_start, compute_end;
  double d2h_start, d2h_end;
} kiln_exec_time;

/* The "=== Performance summary ===" block: Throughput (qps over the host wall time, all streams), the
 * images/s line (qps x batch), then Latency, Enqueue Time, H2D Latency, GPU Compute Time, D2H Latency
 * (min/max/mean/median/percentiles), Total Host Walltime, Total GPU Compute Time. With verbose, the
 * per-avg_runs averages first. Fails only when out of memory. */
kiln_status kiln_exec_print_summary(FILE *f, const kiln_exec_time *t, int n, double wall_ms, int64_t batch,
                                    const double *percentiles, int n_percentiles, int avg_runs, int verbose);

/* trtexec's --exportTimes array of per-iteration records. */
kiln_status kiln_exec_export_times(const char *path, const kiln_exec_time *t, int n);

/* Per-layer profile over `iters` recorded iterations: times[it * n_layers + l] in ms (iters rows);
 * `count` is the number of iterations the totals cover (>= iters when only the first rows were kept). */
typedef struct kiln_exec_profile {
  int n_layers, iters, count;
  const double *times; /* iters x n_layers */
  const double *total; /* n_layers: sum over `count` iterations */
} kiln_exec_profile;

kiln_status kiln_exec_export_profile(const char *path, const kiln_engine *e, const kiln_exec_profile *p);
/* The per-layer table sorted by time, then a summary per op type (ms per iteration and %). */
void kiln_exec_dump_profile(FILE *f, const kiln_engine *e, const kiln_exec_profile *p);

/* --dumpOutput (print) and --exportOutput (JSON [{"name", "dimensions", "values"}]) of bound outputs. */
void kiln_exec_dump_outputs(FILE *f, const kiln_engine *e, void *const *bufs);
kiln_status kiln_exec_export_outputs(const char *path, const kiln_engine *e, void *const *bufs);

#endif
