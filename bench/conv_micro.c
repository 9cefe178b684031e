/* Microbenchmark of kiln_cpu_conv_run over YOLOv8n's conv shapes (batch 1, SiLU, bias), 2 threads by
 * default: prints GFLOP/s per shape (2 flops per MAC) and the total time of all 64 convs.
 * Usage: conv_micro [threads] [isa: scalar|avx2|avx512] [reps] [shape index] */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/conv_fast.h"

typedef struct { int ic, ih, iw, oc, k, s, count; } layer;
/* From `kiln inspect yolov8n.onnx --layers`: distinct shapes and how often they occur (64 convs). */
static const layer L[] = {
    {3, 640, 640, 16, 3, 2, 1},   {16, 320, 320, 32, 3, 2, 1}, {32, 160, 160, 32, 1, 1, 1},
    {16, 160, 160, 16, 3, 1, 2},  {48, 160, 160, 32, 1, 1, 1}, {32, 160, 160, 64, 3, 2, 1},
    {64, 80, 80, 64, 1, 1, 2},    {32, 80, 80, 32, 3, 1, 6},   {128, 80, 80, 64, 1, 1, 1},
    {64, 80, 80, 128, 3, 2, 1},   {128, 40, 40, 128, 1, 1, 1}, {64, 40, 40, 64, 3, 1, 9},
    {256, 40, 40, 128, 1, 1, 1},  {128, 40, 40, 256, 3, 2, 1}, {256, 20, 20, 256, 1, 1, 1},
    {128, 20, 20, 128, 3, 1, 4},  {384, 20, 20, 256, 1, 1, 2}, {256, 20, 20, 128, 1, 1, 1},
    {512, 20, 20, 256, 1, 1, 1},  {384, 40, 40, 128, 1, 1, 1}, {192, 40, 40, 128, 1, 1, 3},
    {192, 80, 80, 64, 1, 1, 1},   {96, 80, 80, 64, 1, 1, 1},   {64, 80, 80, 64, 3, 2, 1},
    {64, 80, 80, 64, 3, 1, 2},    {64, 80, 80, 80, 3, 1, 1},   {80, 80, 80, 80, 3, 1, 1},
    {80, 80, 80, 80, 1, 1, 1},    {128, 40, 40, 128, 3, 2, 1}, {128, 40, 40, 64, 3, 1, 1},
    {128, 40, 40, 80, 3, 1, 1},   {80, 40, 40, 80, 3, 1, 1},   {64, 40, 40, 64, 1, 1, 1},
    {80, 40, 40, 80, 1, 1, 1},    {256, 20, 20, 64, 3, 1, 1},  {256, 20, 20, 80, 3, 1, 1},
    {64, 20, 20, 64, 3, 1, 1},    {80, 20, 20, 80, 3, 1, 1},   {64, 20, 20, 64, 1, 1, 1},
    {80, 20, 20, 80, 1, 1, 1},    {16, 4, 8400, 1, 1, 1, 1},
};

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  int nth = argc > 1 ? atoi(argv[1]) : 2;
  kiln_isa isa = kiln_cpu_isa();
  if (argc > 2) isa = !strcmp(argv[2], "scalar") ? KILN_ISA_SCALAR : !strcmp(argv[2], "avx2") ? KILN_ISA_AVX2 : KILN_ISA_AVX512;
  int reps = argc > 3 ? atoi(argv[3]) : 20;
  int only = argc > 4 ? atoi(argv[4]) : -1; /* run only the shape with this index (for profiling) */
  kiln_threadpool *tp = NULL;
  if (kiln_threadpool_create(nth, &tp)) return 1;
  double total_ms = 0, total_gf = 0, total_med = 0;
  int nconv = 0;
  printf("%-28s %-18s %9s %9s %8s %9s\n", "shape (ic,h,w -> oc, k, s)", "kernel", "ms", "GFLOP/s", "x count", "median");
  for (size_t i = 0; i < sizeof L / sizeof L[0]; i++) {
    const layer *l = &L[i];
    if (only >= 0 && (size_t)only != i) continue;
    kiln_cpu_conv_desc d = {0};
    d.batch = 1; d.in_c = l->ic; d.in_h = l->ih; d.in_w = l->iw; d.out_c = l->oc;
    d.kernel_h = d.kernel_w = l->k; d.stride_h = d.stride_w = l->s; d.dilation_h = d.dilation_w = 1;
    d.pad_top = d.pad_left = l->k / 2; d.group = 1;
    d.out_h = (l->ih + 2 * (l->k / 2) - l->k) / l->s + 1;
    d.out_w = (l->iw + 2 * (l->k / 2) - l->k) / l->s + 1;
    d.has_bias = 1; d.epilogue.act = l->oc == 1 ? KILN_ACT_NONE : KILN_ACT_SILU; d.isa = isa;
    size_t xs = (size_t)(d.in_c * d.in_h * d.in_w), ys = (size_t)(d.out_c * d.out_h * d.out_w);
    size_t ws = (size_t)(d.out_c * d.in_c * d.kernel_h * d.kernel_w);
    float *x = aligned_alloc(64, xs * 4 + 64), *y = aligned_alloc(64, ys * 4 + 64), *w = malloc(ws * 4), *b = malloc(d.out_c * 4);
    for (size_t j = 0; j < xs; j++) x[j] = (float)(j % 17) * 0.1f - 0.8f;
    for (size_t j = 0; j < ws; j++) w[j] = (float)(j % 13) * 0.01f - 0.06f;
    for (int j = 0; j < d.out_c; j++) b[j] = 0.1f;
    void *pk = aligned_alloc(64, kiln_cpu_conv_packed_size(&d));
    size_t wss = kiln_cpu_conv_workspace_size(&d, nth);
    void *wk = aligned_alloc(64, (wss + 63) / 64 * 64 + 64);
    if (kiln_cpu_conv_pack(&d, w, b, pk)) return 1;
    kiln_cpu_conv_run(&d, pk, x, NULL, y, wk, tp); /* warm up */
    double best = 1e9, ts[1000];
    if (reps > 1000) reps = 1000;
    for (int r = 0; r < reps; r++) {
      double t0 = now();
      kiln_cpu_conv_run(&d, pk, x, NULL, y, wk, tp);
      double t = now() - t0;
      if (t < best) best = t;
      ts[r] = t;
    }
    for (int a = 1; a < reps; a++) /* insertion sort for the median */
      for (int b2 = a; b2 > 0 && ts[b2 - 1] > ts[b2]; b2--) {
        double tmp = ts[b2]; ts[b2] = ts[b2 - 1]; ts[b2 - 1] = tmp;
      }
    double med = ts[reps / 2];
    total_med += med * 1e3 * l->count;
    double gf = 2.0 * d.out_c * d.out_h * d.out_w * d.in_c * d.kernel_h * d.kernel_w * 1e-9;
    char sh[64];
    snprintf(sh, sizeof sh, "%d,%d,%d -> %d k%d s%d", l->ic, l->ih, l->iw, l->oc, l->k, l->s);
    printf("%-28s %-18s %9.3f %9.1f %8d %9.3f\n", sh, kiln_cpu_conv_kernel_name(&d), best * 1e3, gf / best, l->count, med * 1e3);
    total_ms += best * 1e3 * l->count;
    total_gf += gf * l->count;
    nconv += l->count;
    free(x); free(y); free(w); free(b); free(pk); free(wk);
  }
  printf("total: %d convs, %.2f GFLOP, %.2f ms (best-of-%d per shape), %.1f GFLOP/s, %d threads; medians %.2f ms\n",
         nconv, total_gf, total_ms, reps, total_gf / total_ms * 1e3, nth, total_med);
  kiln_threadpool_destroy(tp);
  return 0;
}
