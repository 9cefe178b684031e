/* `kiln exec` reporting (see exec_report.h). JSON goes through cJSON so names with quotes or control
 * characters are escaped correctly; large arrays are written one record at a time so a long run of a
 * tiny model (hundreds of thousands of iterations) does not build a huge tree in memory. */
#include "exec_report.h"

#include "core/dtype.h"
#include "core/file.h"
#include "core/status.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Same rule as trtexec's findPercentile, so "percentile(99%)" means the same thing in both tools. */
static double percentile_of(const double *sorted, int n, double p) {
  int exclude = (int)((1.0 - p / 100.0) * n);
  int idx = n - 1 - exclude;
  return sorted[idx < 0 ? 0 : idx];
}

void kiln_exec_stats_compute(const double *v, int n, const double *percentiles, int n_percentiles, double *scratch,
                             kiln_exec_stats *out) {
  memset(out, 0, sizeof *out);
  if (n <= 0) return;
  memcpy(scratch, v, sizeof(double) * (size_t)n);
  qsort(scratch, (size_t)n, sizeof(double), cmp_double);
  out->min = scratch[0];
  out->max = scratch[n - 1];
  for (int i = 0; i < n; i++) out->sum += scratch[i];
  out->mean = out->sum / n;
  out->median = n % 2 ? scratch[n / 2] : 0.5 * (scratch[n / 2 - 1] + scratch[n / 2]);
  for (int k = 0; k < n_percentiles && k < KILN_EXEC_MAX_PERCENTILES; k++)
    out->pct[k] = percentile_of(scratch, n, percentiles[k]);
}

void kiln_exec_print_stats(FILE *f, const char *label, const kiln_exec_stats *s, const double *percentiles,
                           int n_percentiles) {
  fprintf(f, "[I] %s: min = %g ms, max = %g ms, mean = %g ms, median = %g ms", label, s->min, s->max, s->mean,
          s->median);
  for (int k = 0; k < n_percentiles && k < KILN_EXEC_MAX_PERCENTILES; k++)
    fprintf(f, ", percentile(%g%%) = %g ms", percentiles[k], s->pct[k]);
  fprintf(f, "\n");
}

/* Print one cJSON item into f (unformatted); frees the item. */
static int emit(FILE *f, cJSON *item) {
  char *s = item ? cJSON_PrintUnformatted(item) : NULL;
  cJSON_Delete(item);
  if (!s) return -1;
  int rc = fputs(s, f) < 0 ? -1 : 0;
  cJSON_free(s);
  return rc;
}

static kiln_status open_out(const char *path, FILE **f) {
  *f = fopen(path, "w");
  if (!*f) return kiln_error(KILN_ERR_IO, "cannot write '%s'", path);
  return NULL;
}

static kiln_status close_out(const char *path, FILE *f, int failed) {
  if (fclose(f) != 0 || failed) return kiln_error(KILN_ERR_IO, "writing '%s' failed", path);
  return NULL;
}

/* The five per-iteration series of the summary, in trtexec's order. */
enum { SERIES_LATENCY, SERIES_ENQUEUE, SERIES_H2D, SERIES_COMPUTE, SERIES_D2H, N_SERIES };
static const char *const series_label[N_SERIES] = {"Latency", "Enqueue Time", "H2D Latency", "GPU Compute Time",
                                                   "D2H Latency"};

static double series_value(const kiln_exec_time *t, int which) {
  switch (which) {
  case SERIES_LATENCY: return t->d2h_end - t->h2d_start;
  case SERIES_ENQUEUE: return t->enq_end - t->enq_start;
  case SERIES_H2D: return t->h2d_end - t->h2d_start;
  case SERIES_COMPUTE: return t->compute_end - t->compute_start;
  default: return t->d2h_end - t->d2h_start;
  }
}

kiln_status kiln_exec_print_summary(FILE *f, const kiln_exec_time *t, int n, double wall_ms, int64_t batch,
                                    const double *percentiles, int n_percentiles, int avg_runs, int verbose) {
  size_t cnt = (size_t)(n > 0 ? n : 1);
  double *v = malloc(sizeof(double) * cnt), *scratch = malloc(sizeof(double) * cnt);
  if (!v || !scratch) {
    free(v), free(scratch);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory for the summary");
  }
  if (verbose && avg_runs > 0) {
    for (int i = 0; i < n; i += avg_runs) {
      int m = n - i < avg_runs ? n - i : avg_runs;
      double gpu = 0, host = 0, enq = 0;
      for (int k = 0; k < m; k++) {
        gpu += series_value(&t[i + k], SERIES_COMPUTE);
        host += series_value(&t[i + k], SERIES_LATENCY);
        enq += series_value(&t[i + k], SERIES_ENQUEUE);
      }
      fprintf(f, "[V] Average on %d runs - GPU latency: %g ms - Host latency: %g ms (enqueue %g ms)\n", m, gpu / m,
              host / m, enq / m);
    }
  }
  double qps = wall_ms > 0 ? n / (wall_ms / 1000.0) : 0.0, compute_sum = 0;
  fprintf(f, "[I] \n[I] === Performance summary ===\n");
  fprintf(f, "[I] Throughput: %g qps\n", qps);
  fprintf(f, "[I] Images/s: %g (batch %lld x %g qps)\n", qps * (double)batch, (long long)batch, qps);
  for (int w = 0; w < N_SERIES; w++) {
    for (int i = 0; i < n; i++) v[i] = series_value(&t[i], w);
    kiln_exec_stats s;
    kiln_exec_stats_compute(v, n, percentiles, n_percentiles, scratch, &s);
    kiln_exec_print_stats(f, series_label[w], &s, percentiles, n_percentiles);
    if (w == SERIES_COMPUTE) compute_sum = s.sum;
  }
  fprintf(f, "[I] Total Host Walltime: %g s\n", wall_ms / 1000.0);
  fprintf(f, "[I] Total GPU Compute Time: %g s\n", compute_sum / 1000.0);
  free(v);
  free(scratch);
  return NULL;
}

kiln_status kiln_exec_export_times(const char *path, const kiln_exec_time *t, int n) {
  FILE *f;
  KILN_TRY(open_out(path, &f));
  int bad = fputs("[", f) < 0;
  for (int i = 0; i < n && !bad; i++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "startEnqMs", t[i].enq_start);
    cJSON_AddNumberToObject(o, "endEnqMs", t[i].enq_end);
    cJSON_AddNumberToObject(o, "startH2dMs", t[i].h2d_start);
    cJSON_AddNumberToObject(o, "endH2dMs", t[i].h2d_end);
    cJSON_AddNumberToObject(o, "startComputeMs", t[i].compute_start);
    cJSON_AddNumberToObject(o, "endComputeMs", t[i].compute_end);
    cJSON_AddNumberToObject(o, "startD2hMs", t[i].d2h_start);
    cJSON_AddNumberToObject(o, "endD2hMs", t[i].d2h_end);
    cJSON_AddNumberToObject(o, "h2dMs", series_value(&t[i], SERIES_H2D));
    cJSON_AddNumberToObject(o, "computeMs", series_value(&t[i], SERIES_COMPUTE));
    cJSON_AddNumberToObject(o, "d2hMs", series_value(&t[i], SERIES_D2H));
    cJSON_AddNumberToObject(o, "latencyMs", series_value(&t[i], SERIES_LATENCY));
    bad = (i && fputs(",\n", f) < 0) || emit(f, o) != 0;
  }
  if (!bad) bad = fputs("]\n", f) < 0;
  return close_out(path, f, bad);
}

/* Median over the recorded iterations of one layer; scratch holds p->iters doubles. */
static double layer_median(const kiln_exec_profile *p, int l, double *scratch) {
  if (p->iters <= 0) return 0;
  for (int it = 0; it < p->iters; it++) scratch[it] = p->times[(size_t)it * (size_t)p->n_layers + (size_t)l];
  qsort(scratch, (size_t)p->iters, sizeof(double), cmp_double);
  int n = p->iters;
  return n % 2 ? scratch[n / 2] : 0.5 * (scratch[n / 2 - 1] + scratch[n / 2]);
}

static double profile_total(const kiln_exec_profile *p) {
  double s = 0;
  for (int l = 0; l < p->n_layers; l++) s += p->total[l];
  return s;
}

kiln_status kiln_exec_export_profile(const char *path, const kiln_engine *e, const kiln_exec_profile *p) {
  double *scratch = malloc(sizeof(double) * (size_t)(p->iters > 0 ? p->iters : 1));
  KILN_CHECK_ALLOC(scratch);
  FILE *f;
  kiln_status st = open_out(path, &f);
  if (st) {
    free(scratch);
    return st;
  }
  double total = profile_total(p);
  cJSON *head = cJSON_CreateObject();
  cJSON_AddNumberToObject(head, "count", p->count);
  int bad = fputs("[", f) < 0 || emit(f, head) != 0;
  for (int l = 0; l < p->n_layers && !bad; l++) {
    kiln_layer_info li;
    kiln_status s2 = kiln_engine_layer(e, l, &li);
    if (s2) {
      kiln_status_destroy(s2);
      li.name = "?";
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", li.name ? li.name : "");
    cJSON_AddNumberToObject(o, "timeMs", p->total[l]);
    cJSON_AddNumberToObject(o, "averageMs", p->count ? p->total[l] / p->count : 0.0);
    cJSON_AddNumberToObject(o, "medianMs", layer_median(p, l, scratch));
    cJSON_AddNumberToObject(o, "percentage", total > 0 ? 100.0 * p->total[l] / total : 0.0);
    bad = fputs(",\n", f) < 0 || emit(f, o) != 0;
  }
  if (!bad) bad = fputs("]\n", f) < 0;
  free(scratch);
  return close_out(path, f, bad);
}

typedef struct layer_row {
  int index;
  double total;
} layer_row;

static int cmp_row_desc(const void *a, const void *b) {
  double x = ((const layer_row *)a)->total, y = ((const layer_row *)b)->total;
  return x > y ? -1 : x < y;
}

typedef struct op_row {
  const char *op;
  double total;
  int layers;
} op_row;

static int cmp_op_desc(const void *a, const void *b) {
  double x = ((const op_row *)a)->total, y = ((const op_row *)b)->total;
  return x > y ? -1 : x < y;
}

void kiln_exec_dump_profile(FILE *f, const kiln_engine *e, const kiln_exec_profile *p) {
  int n = p->n_layers;
  layer_row *rows = malloc(sizeof(layer_row) * (size_t)(n ? n : 1));
  op_row *ops = calloc((size_t)(n ? n : 1), sizeof(op_row));
  double *scratch = malloc(sizeof(double) * (size_t)(p->iters > 0 ? p->iters : 1));
  if (!rows || !ops || !scratch) {
    fprintf(f, "[E] out of memory printing the profile\n");
    free(rows), free(ops), free(scratch);
    return;
  }
  double total = profile_total(p), cnt = p->count ? p->count : 1;
  for (int l = 0; l < n; l++) rows[l] = (layer_row){l, p->total[l]};
  qsort(rows, (size_t)n, sizeof *rows, cmp_row_desc);
  fprintf(f, "\n[I] === Profile (%d iterations ) ===\n", p->count);
  fprintf(f, "[I]    Time(ms)     Avg.(ms)   Median(ms)   Time(%%)   Layer (op, kernel[ variant][, FLOP/s])\n");
  int n_ops = 0;
  for (int r = 0; r < n; r++) {
    int l = rows[r].index;
    kiln_layer_info li = {0};
    kiln_status st = kiln_engine_layer(e, l, &li);
    if (st) kiln_status_destroy(st);
    const char *op = li.op ? li.op : "?";
    double avg = p->total[l] / cnt;
    char rate[48] = "";
    if (li.macs > 0 && avg > 0) {
      double gflops = 2.0 * (double)li.macs / (avg * 1e-3) / 1e9;
      if (gflops >= 1000) snprintf(rate, sizeof rate, ", %.1f TFLOP/s", gflops / 1000);
      else snprintf(rate, sizeof rate, ", %.1f GFLOP/s", gflops);
    }
    fprintf(f, "[I] %11.4f %12.4f %12.4f %9.1f   %s (%s, %s%s%s%s)\n", p->total[l], avg, layer_median(p, l, scratch),
            total > 0 ? 100.0 * p->total[l] / total : 0.0, li.name ? li.name : "?", op, li.kernel ? li.kernel : "?",
            li.variant ? " " : "", li.variant ? li.variant : "", rate);
    int k = 0;
    while (k < n_ops && strcmp(ops[k].op, op) != 0) k++;
    if (k == n_ops) ops[n_ops++] = (op_row){op, 0, 0};
    ops[k].total += p->total[l];
    ops[k].layers++;
  }
  fprintf(f, "[I] %11.4f %12.4f %12s %9.1f   Total\n", total, total / cnt, "", total > 0 ? 100.0 : 0.0);
  qsort(ops, (size_t)n_ops, sizeof *ops, cmp_op_desc);
  fprintf(f, "\n[I] === Profile by op type (ms per iteration) ===\n");
  fprintf(f, "[I]    Avg.(ms)   Time(%%)  Layers   Op\n");
  for (int k = 0; k < n_ops; k++)
    fprintf(f, "[I] %11.4f %9.1f %7d   %s\n", ops[k].total / cnt, total > 0 ? 100.0 * ops[k].total / total : 0.0,
            ops[k].layers, ops[k].op);
  free(rows);
  free(ops);
  free(scratch);
}

static int64_t binding_numel(const kiln_binding_info *b) {
  int64_t n = 1;
  for (int d = 0; d < b->rank; d++) n *= b->dims[d];
  return n;
}

static void format_dims(const kiln_binding_info *b, char *buf, size_t len) {
  size_t o = 0;
  buf[0] = 0;
  for (int d = 0; d < b->rank && o < len; d++)
    o += (size_t)snprintf(buf + o, len - o, "%s%lld", d ? "x" : "", (long long)b->dims[d]);
}

void kiln_exec_dump_outputs(FILE *f, const kiln_engine *e, void *const *bufs) {
  fprintf(f, "[I] Output Tensors:\n");
  int nb = kiln_engine_num_bindings(e);
  for (int b = 0; b < nb; b++) {
    kiln_binding_info bi;
    kiln_status st = kiln_engine_binding(e, b, &bi);
    if (st) {
      kiln_status_destroy(st);
      continue;
    }
    if (bi.is_input) continue;
    char dims[256];
    format_dims(&bi, dims, sizeof dims);
    fprintf(f, "[I] %s: (%s)\n", bi.name, dims);
    int64_t n = binding_numel(&bi);
    /* one line per innermost row keeps big outputs readable and grep-able */
    int64_t row = bi.rank > 0 && bi.dims[bi.rank - 1] > 0 ? bi.dims[bi.rank - 1] : 1;
    for (int64_t i = 0; i < n; i++) {
      if (kiln_dtype_is_float(bi.dtype)) fprintf(f, "%g", kiln_dtype_load_f64(bi.dtype, bufs[b], i));
      else fprintf(f, "%lld", (long long)kiln_dtype_load_i64(bi.dtype, bufs[b], i));
      fputc((i + 1) % row == 0 || i + 1 == n ? '\n' : ' ', f);
    }
  }
}

kiln_status kiln_exec_export_outputs(const char *path, const kiln_engine *e, void *const *bufs) {
  FILE *f;
  KILN_TRY(open_out(path, &f));
  int nb = kiln_engine_num_bindings(e), first = 1;
  int bad = fputs("[", f) < 0;
  for (int b = 0; b < nb && !bad; b++) {
    kiln_binding_info bi;
    kiln_status st = kiln_engine_binding(e, b, &bi);
    if (st) {
      kiln_status_destroy(st);
      continue;
    }
    if (bi.is_input) continue;
    char dims[256];
    format_dims(&bi, dims, sizeof dims);
    cJSON *o = cJSON_CreateObject(), *vals = cJSON_AddArrayToObject(o, "values");
    cJSON_AddStringToObject(o, "name", bi.name);
    cJSON_AddStringToObject(o, "dimensions", dims);
    int64_t n = binding_numel(&bi);
    for (int64_t i = 0; i < n && vals; i++) {
      double v = kiln_dtype_is_float(bi.dtype) ? kiln_dtype_load_f64(bi.dtype, bufs[b], i)
                                               : (double)kiln_dtype_load_i64(bi.dtype, bufs[b], i);
      /* JSON has no NaN/Inf: cJSON writes them as null, which JSON readers accept */
      cJSON_AddItemToArray(vals, cJSON_CreateNumber(v));
    }
    bad = (!first && fputs(",\n", f) < 0) || emit(f, o) != 0;
    first = 0;
  }
  if (!bad) bad = fputs("]\n", f) < 0;
  return close_out(path, f, bad);
}
