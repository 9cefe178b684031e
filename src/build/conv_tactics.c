#include "build/conv_tactics.h"

#ifdef KILN_HAVE_CUDA /* without nvcc there are no GPU engines to tune (lower_cuda.c refuses first) */

#include "backend/cuda/cuda_device.h"
#include "backend/cuda/cuda_layers.h"
#include "build/timing_cache.h"
#include "core/dtype.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One timing sample is a CUDA graph of `iters` back-to-back runs (as an engine replays its layers, so
 * launch gaps are what the engine sees); iters is chosen so a sample lasts about this long. */
#define SAMPLE_TARGET_MS 0.1
#define MAX_ITERS 64
#define MAX_SAMPLES 5
/* A candidate whose first sample is this much slower than the best so far is not sampled further. */
#define ABANDON_FACTOR 3.0
/* Layers slower than this (ms per run) get 3 samples instead of 5: they dominate the build time and
 * their relative noise is small. */
#define SLOW_LAYER_MS 0.5
#define KEY_MAX 640

typedef struct conv_item {
  int32_t layer;
  char *name;
  kiln_cuda_conv_desc d;
  unsigned al[3];
  char key[KEY_MAX];
} conv_item;

struct kiln_conv_tuner {
  const kiln_build_config *cfg;
  bool active; /* timing possible and wanted */
  kiln_cuda_device_info info;
  kiln_timing_cache *cache;
  conv_item *items;
  int n, cap;
  /* timing resources, alive during finish() only */
  void *stream, *ev[MAX_SAMPLES + 1];
  void *x, *r, *y, *ws, *blob;
  float *w_host;
  void *blob_host;
  int timed, from_cache;
};

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

kiln_status kiln_conv_tuner_create(const kiln_build_config *cfg, kiln_conv_tuner **out) {
  *out = NULL;
  kiln_conv_tuner *t = calloc(1, sizeof *t);
  KILN_CHECK_ALLOC(t);
  t->cfg = cfg;
  kiln_status st = kiln_timing_cache_create(&t->cache);
  if (!st && cfg->timing_cache_path) st = kiln_timing_cache_load(t->cache, cfg->timing_cache_path);
  if (st) {
    kiln_conv_tuner_destroy(t);
    return st;
  }
  /* Time only on the GPU the engine is for: a --cuda-arch build for another capability (or a build
   * machine without a GPU) keeps the heuristic, and its engine stays byte-identical to before. */
  if (!cfg->no_tactic_timing && cfg->cuda_device >= 0 && kiln_cuda_device_count() > cfg->cuda_device) {
    kiln_status q = kiln_cuda_device_query(cfg->cuda_device, &t->info);
    if (!q && (cfg->cuda_arch == 0 || cfg->cuda_arch == t->info.cc_major * 10 + t->info.cc_minor)) t->active = true;
    kiln_status_destroy(q);
  }
  *out = t;
  return NULL;
}

void kiln_conv_tuner_destroy(kiln_conv_tuner *t) {
  if (!t) return;
  for (int i = 0; i < t->n; i++) free(t->items[i].name);
  free(t->items);
  kiln_timing_cache_destroy(t->cache);
  free(t);
}

kiln_status kiln_conv_tuner_add(kiln_conv_tuner *t, int32_t layer, const char *name, const kiln_cuda_conv_desc *d,
                                const unsigned misalign[3]) {
  if (!t->active || kiln_cuda_conv_tactic_count(d) <= 1) return NULL; /* nothing to choose */
  if (t->n == t->cap) {
    int cap = t->cap ? t->cap * 2 : 64;
    conv_item *p = realloc(t->items, sizeof *p * (size_t)cap);
    KILN_CHECK_ALLOC(p);
    t->items = p;
    t->cap = cap;
  }
  conv_item *it = &t->items[t->n];
  memset(it, 0, sizeof *it);
  size_t len = strlen(name) + 1;
  it->name = malloc(len);
  KILN_CHECK_ALLOC(it->name);
  memcpy(it->name, name, len);
  it->layer = layer;
  it->d = *d;
  it->d.tactic = 0;
  memcpy(it->al, misalign, sizeof it->al);
  int k = kiln_timing_key_conv(&it->d, it->al, t->info.name, t->info.cc_major, t->info.cc_minor, it->key, sizeof it->key);
  if (k < 0 || (size_t)k >= sizeof it->key) {
    free(it->name);
    return kiln_error(KILN_ERR_INTERNAL, "conv '%s': timing cache key too long", name);
  }
  t->n++;
  return NULL;
}

/* ---- choosing from the cache ----------------------------------------------------------------------- */
static size_t ws_of(const kiln_cuda_conv_desc *d, int tactic) {
  kiln_cuda_conv_desc c = *d;
  c.tactic = tactic;
  return kiln_cuda_conv_workspace_size(&c);
}

static const char *name_of(const kiln_cuda_conv_desc *d, int tactic) {
  kiln_cuda_conv_desc c = *d;
  c.tactic = tactic;
  return kiln_cuda_conv_kernel_name(&c);
}

static bool allowed(const kiln_conv_tuner *t, const kiln_cuda_conv_desc *d, int tactic) {
  return !t->cfg->workspace_limit || ws_of(d, tactic) <= t->cfg->workspace_limit;
}

/* The tactic index that runs `kernel`: names, not indices, are what the cache keeps, so it survives
 * kernels being added. 1..count first (an explicit index pins the kernel even if the heuristic changes),
 * then 0 for a heuristic choice that no forced candidate reproduces; -1 if none (or it needs more
 * workspace than allowed): the layer is timed again. */
static int tactic_for_name(const kiln_conv_tuner *t, const kiln_cuda_conv_desc *d, const char *kernel) {
  int count = kiln_cuda_conv_tactic_count(d);
  for (int k = 1; k <= count; k++)
    if (!strcmp(name_of(d, k), kernel)) return allowed(t, d, k) ? k : -1;
  if (!strcmp(name_of(d, 0), kernel) && allowed(t, d, 0)) return 0;
  return -1;
}

/* ---- timing ----------------------------------------------------------------------------------------- */
static size_t elem(kiln_cuda_dtype dt) { return dt == KILN_CUDA_F16 ? 2 : 4; }

typedef struct sizes {
  size_t x, r, y, ws, blob, weights;
} sizes;

static void item_sizes(const kiln_conv_tuner *t, const conv_item *it, sizes *s) {
  const kiln_cuda_conv_desc *d = &it->d;
  size_t ips = (size_t)(d->in_pixel_stride ? d->in_pixel_stride : d->in_c);
  size_t ops = (size_t)(d->out_pixel_stride ? d->out_pixel_stride : d->out_c);
  size_t rps = (size_t)(d->residual_pixel_stride ? d->residual_pixel_stride : d->out_c);
  size_t in_px = (size_t)(d->batch * d->in_h * d->in_w), out_px = (size_t)(d->batch * d->out_h * d->out_w);
  s->x = in_px * ips * elem(d->compute) + 16;
  s->y = (out_px * ops + (size_t)d->out_c_offset) * elem(d->out_dtype) + 16;
  s->r = d->has_residual ? out_px * rps * elem(d->out_dtype) + 16 : 0;
  s->ws = 0;
  for (int k = 0, n = kiln_cuda_conv_tactic_count(d); k <= n; k++)
    if (allowed(t, d, k) && ws_of(d, k) > s->ws) s->ws = ws_of(d, k);
  s->blob = kiln_cuda_conv_packed_size(d);
  s->weights = (size_t)(d->out_c * (d->in_c / d->group) * d->kernel_h * d->kernel_w);
}

static void max_into(sizes *m, const sizes *s) {
  if (s->x > m->x) m->x = s->x;
  if (s->r > m->r) m->r = s->r;
  if (s->y > m->y) m->y = s->y;
  if (s->ws > m->ws) m->ws = s->ws;
  if (s->blob > m->blob) m->blob = s->blob;
  if (s->weights > m->weights) m->weights = s->weights;
}

static uint32_t lcg(uint32_t *state) {
  *state = *state * 1664525u + 1013904223u;
  return *state >> 8;
}

/* Random fp16 values in [-1, 1]. The same bytes read as fp32 (an fp32 output's residual) are finite
 * too: the high half of such a pair has an exponent field far below all-ones. Speed does not depend on
 * the values, but NaNs or denormal storms could. */
static kiln_status fill_random(void *dev, size_t nbytes) {
  enum { CHUNK = 1 << 20 };
  uint16_t *h = malloc(CHUNK);
  KILN_CHECK_ALLOC(h);
  uint32_t s = 12345;
  for (size_t i = 0; i < CHUNK / 2; i++) h[i] = kiln_f32_to_f16((float)lcg(&s) / (float)(1u << 23) - 1.0f);
  kiln_status st = NULL;
  for (size_t off = 0; !st && off < nbytes; off += CHUNK)
    st = kiln_cuda_copy_to_device((char *)dev + off, h, nbytes - off < CHUNK ? nbytes - off : CHUNK);
  free(h);
  return st;
}

static kiln_status alloc_resources(kiln_conv_tuner *t, const sizes *m) {
  KILN_TRY(kiln_cuda_stream_create(&t->stream));
  for (int i = 0; i <= MAX_SAMPLES; i++) KILN_TRY(kiln_cuda_event_create(&t->ev[i]));
  KILN_TRY(kiln_cuda_malloc(m->x, &t->x));
  KILN_TRY(kiln_cuda_malloc(m->y, &t->y));
  if (m->r) KILN_TRY(kiln_cuda_malloc(m->r, &t->r));
  if (m->ws) KILN_TRY(kiln_cuda_malloc(m->ws, &t->ws));
  KILN_TRY(kiln_cuda_malloc(m->blob, &t->blob));
  KILN_TRY(fill_random(t->x, m->x));
  if (m->r) KILN_TRY(fill_random(t->r, m->r));
  KILN_TRY(kiln_cuda_fill(t->y, 0, m->y));
  t->w_host = malloc(sizeof(float) * (m->weights ? m->weights : 1));
  t->blob_host = malloc(m->blob ? m->blob : 1);
  KILN_CHECK_ALLOC(t->w_host);
  KILN_CHECK_ALLOC(t->blob_host);
  uint32_t s = 777;
  for (size_t i = 0; i < m->weights; i++) t->w_host[i] = ((float)lcg(&s) / (float)(1u << 24) - 0.5f) * 0.2f;
  return NULL;
}

static void free_resources(kiln_conv_tuner *t) {
  if (t->stream) kiln_status_destroy(kiln_cuda_stream_sync(t->stream));
  kiln_cuda_free(t->x);
  kiln_cuda_free(t->r);
  kiln_cuda_free(t->y);
  kiln_cuda_free(t->ws);
  kiln_cuda_free(t->blob);
  for (int i = 0; i <= MAX_SAMPLES; i++) kiln_cuda_event_destroy(t->ev[i]);
  kiln_cuda_stream_destroy(t->stream);
  free(t->w_host);
  free(t->blob_host);
  t->x = t->r = t->y = t->ws = t->blob = t->stream = NULL;
  memset(t->ev, 0, sizeof t->ev);
  t->w_host = NULL;
  t->blob_host = NULL;
}

typedef struct run_args {
  const void *x, *r;
  void *y, *ws;
} run_args;

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* Milliseconds per run of `tactic`: the median of `samples` graph replays of `iters` runs each, after one
 * uncaptured run (first-launch setup, argument check) and one replay. *ms = INFINITY when the candidate
 * refuses to launch (its error is dropped: the other candidates still work). A candidate whose first
 * sample is far slower than `best` stops there. */
static kiln_status time_tactic(kiln_conv_tuner *t, const kiln_cuda_conv_desc *d0, int tactic, const run_args *a, int iters,
                               int samples, double best, double *ms) {
  *ms = INFINITY;
  kiln_cuda_conv_desc d = *d0;
  d.tactic = tactic;
  kiln_status st = kiln_cuda_conv_run(&d, t->blob, a->x, a->r, a->y, a->ws, t->stream);
  if (st) {
    if (t->cfg->verbose) fprintf(stderr, "kiln build:   tactic %d (%s) skipped: %s\n", tactic, kiln_cuda_conv_kernel_name(&d), kiln_status_message(st));
    kiln_status_destroy(st);
    return kiln_cuda_stream_sync(t->stream);
  }
  KILN_TRY(kiln_cuda_capture_begin(t->stream));
  for (int i = 0; !st && i < iters; i++) st = kiln_cuda_conv_run(&d, t->blob, a->x, a->r, a->y, a->ws, t->stream);
  kiln_cuda_graph *g = NULL;
  kiln_status end = kiln_cuda_capture_end(t->stream, &g); /* always ends the capture */
  if (st || end) {
    kiln_cuda_graph_destroy(g);
    if (!st) return end;
    kiln_status_destroy(end);
    return kiln_error_prefix(st, "timing %s: ", kiln_cuda_conv_kernel_name(&d));
  }
  float t_ms[MAX_SAMPLES];
  int n = 0;
  st = kiln_cuda_graph_launch(g, t->stream); /* warm: caches, clocks, graph upload */
  if (!st) st = kiln_cuda_event_record(t->ev[0], t->stream);
  if (!st) st = kiln_cuda_graph_launch(g, t->stream);
  if (!st) st = kiln_cuda_event_record(t->ev[1], t->stream);
  if (!st) st = kiln_cuda_event_elapsed(t->ev[0], t->ev[1], &t_ms[n++]);
  if (!st && !(t_ms[0] / iters > ABANDON_FACTOR * best)) {
    /* the rest back to back, one wait at the end */
    for (int s = 1; !st && s < samples; s++) {
      st = kiln_cuda_graph_launch(g, t->stream);
      if (!st) st = kiln_cuda_event_record(t->ev[s + 1], t->stream);
    }
    for (int s = 1; !st && s < samples; s++) st = kiln_cuda_event_elapsed(t->ev[s], t->ev[s + 1], &t_ms[n++]);
  }
  kiln_cuda_graph_destroy(g);
  KILN_TRY(st);
  qsort(t_ms, (size_t)n, sizeof *t_ms, cmp_float);
  *ms = (double)t_ms[n / 2] / iters;
  return NULL;
}

/* Time every allowed candidate of one layer; returns the winner's kernel name and times. */
static kiln_status time_layer(kiln_conv_tuner *t, conv_item *it, const char **winner, double *best_ms, double *heur_ms) {
  const kiln_cuda_conv_desc *d = &it->d;
  /* weights: random, packed by the real packer (the layout decides the memory traffic) */
  KILN_TRY(kiln_cuda_conv_pack(d, t->w_host, NULL, t->blob_host));
  KILN_TRY(kiln_cuda_copy_to_device(t->blob, t->blob_host, kiln_cuda_conv_packed_size(d)));
  run_args a = {(const char *)t->x + it->al[0], d->has_residual ? (const char *)t->r + it->al[1] : NULL,
                (char *)t->y + it->al[2], t->ws};
  int count = kiln_cuda_conv_tactic_count(d);
  /* the heuristic's pick is normally one of the forced candidates: time it once, under that index */
  const char *hname = name_of(d, 0);
  int h = 0;
  for (int k = 1; k <= count && !h; k++)
    if (!strcmp(name_of(d, k), hname)) h = k;
  /* estimate with one run per sample to size the graphs */
  double est;
  KILN_TRY(time_tactic(t, d, h, &a, 1, 3, INFINITY, &est));
  if (!isfinite(est)) KILN_TRY(time_tactic(t, d, 0, &a, 1, 3, INFINITY, &est));
  if (!isfinite(est) || est <= 0) est = SAMPLE_TARGET_MS;
  int iters = (int)ceil(SAMPLE_TARGET_MS / est);
  if (iters < 1) iters = 1;
  if (iters > MAX_ITERS) iters = MAX_ITERS;
  int samples = est > SLOW_LAYER_MS ? 3 : MAX_SAMPLES;
  double best = INFINITY, heur = -1;
  int win = -1;
  for (int k = 1; k <= count; k++) {
    if (!allowed(t, d, k)) continue;
    double ms;
    KILN_TRY(time_tactic(t, d, k, &a, iters, samples, best, &ms));
    if (k == h) heur = ms;
    if (ms < best) best = ms, win = k;
  }
  if (!h && allowed(t, d, 0)) { /* a heuristic choice outside the candidate list competes too */
    double ms;
    KILN_TRY(time_tactic(t, d, 0, &a, iters, samples, best, &ms));
    heur = ms;
    if (ms < best) best = ms, win = 0;
  }
  KILN_TRY(kiln_cuda_stream_sync(t->stream));
  if (win < 0) return kiln_error(KILN_ERR_DEVICE, "conv '%s': no candidate kernel ran (%d tried)", it->name, count);
  *winner = name_of(d, win);
  /* ns resolution: more would be noise, and short numbers keep the cache file readable */
  *best_ms = round(best * 1e6) / 1e6;
  *heur_ms = isfinite(heur) && heur >= 0 ? round(heur * 1e6) / 1e6 : -1;
  t->timed++;
  return NULL;
}

static kiln_status patch_layer(kiln_engine_writer *w, const conv_item *it, int tactic) {
  void *p;
  size_t size;
  KILN_TRY(kiln_ew_layer_params(w, it->layer, &p, &size));
  kiln_cuda_conv_params lp;
  if (size != sizeof lp) return kiln_error(KILN_ERR_INTERNAL, "conv '%s': layer %d is not a cuda.conv", it->name, it->layer);
  memcpy(&lp, p, sizeof lp);
  lp.desc.tactic = tactic;
  memcpy(p, &lp, sizeof lp);
  return kiln_ew_set_layer_workspace(w, it->layer, kiln_cuda_conv_workspace_size(&lp.desc));
}

static kiln_status choose_all(kiln_conv_tuner *t, kiln_engine_writer *w) {
  /* buffers for the largest layer that the cache does not answer */
  sizes m = {0};
  bool need = false;
  for (int i = 0; i < t->n; i++) {
    const kiln_timing_entry *e = kiln_timing_cache_find(t->cache, t->items[i].key);
    if (e && tactic_for_name(t, &t->items[i].d, e->kernel) >= 0) continue;
    sizes s;
    item_sizes(t, &t->items[i], &s);
    max_into(&m, &s);
    need = true;
  }
  if (need) KILN_TRY(alloc_resources(t, &m));
  for (int i = 0; i < t->n; i++) {
    conv_item *it = &t->items[i];
    const kiln_timing_entry *e = kiln_timing_cache_find(t->cache, it->key); /* this build's entries too */
    int tactic = e ? tactic_for_name(t, &it->d, e->kernel) : -1;
    const char *kernel = NULL;
    double ms = 0, heur = -1;
    bool cached = tactic >= 0;
    if (cached) {
      kernel = e->kernel, ms = e->ms, heur = e->heuristic_ms;
      t->from_cache++;
    } else {
      KILN_TRY(time_layer(t, it, &kernel, &ms, &heur));
      KILN_TRY(kiln_timing_cache_put(t->cache, it->key, kernel, ms, heur));
      tactic = tactic_for_name(t, &it->d, kernel);
      if (tactic < 0) return kiln_error(KILN_ERR_INTERNAL, "conv '%s': kernel %s has no tactic", it->name, kernel);
    }
    KILN_TRY(patch_layer(w, it, tactic));
    if (t->cfg->verbose) {
      char hbuf[32] = "?";
      if (heur >= 0) snprintf(hbuf, sizeof hbuf, "%.4f ms", heur);
      fprintf(stderr, "kiln build: tactic %-36s %-34s %.4f ms (heuristic %s %s)%s\n", it->name, kernel, ms, name_of(&it->d, 0),
              hbuf, cached ? " [cache]" : "");
    }
  }
  return NULL;
}

kiln_status kiln_conv_tuner_finish(kiln_conv_tuner *t, kiln_engine_writer *w) {
  if (!t->active || !t->n) return NULL;
  double t0 = now_ms();
  int prev = -1;
  KILN_TRY(kiln_cuda_current_device(&prev));
  kiln_status st = kiln_cuda_set_device(t->cfg->cuda_device);
  if (!st) st = choose_all(t, w);
  free_resources(t);
  if (prev != t->cfg->cuda_device) {
    kiln_status r = kiln_cuda_set_device(prev);
    if (!st) st = r;
    else kiln_status_destroy(r);
  }
  if (!st && t->cfg->timing_cache_path && kiln_timing_cache_dirty(t->cache))
    st = kiln_timing_cache_save(t->cache, t->cfg->timing_cache_path);
  if (!st && t->cfg->verbose)
    fprintf(stderr, "kiln build: tactic timing: %d conv layers, %d timed, %d from the timing cache, %.0f ms on %s\n", t->n,
            t->timed, t->from_cache, now_ms() - t0, t->info.name);
  return st;
}

#else
typedef int kiln_conv_tactics_unused; /* ISO C: a translation unit is not empty */
#endif /* KILN_HAVE_CUDA */
