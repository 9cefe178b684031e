/* YOLO head decoding and NMS on the CPU. Boxes stay in network-input pixels until unletterbox. */
#include "kiln/vision.h"

#include "core/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kiln_nms_options_init(kiln_nms_options *o) {
  o->conf_threshold = 0.25f;
  o->iou_threshold = 0.45f;
  o->max_det = 300;
  o->agnostic = 0;
  o->max_candidates = 30000;
}

const char *kiln_yolo_format_name(kiln_yolo_format f) {
  switch (f) {
  case KILN_YOLO_AUTO: return "auto";
  case KILN_YOLO_V8: return "v8";
  case KILN_YOLO_V5: return "v5";
  case KILN_YOLO_END2END: return "end2end";
  }
  return "?";
}

kiln_status kiln_detections_reserve(kiln_detections *d, int capacity) {
  if (capacity <= d->capacity) return NULL;
  if (capacity < 64) capacity = 64;
  kiln_detection *it = realloc(d->items, sizeof *it * (size_t)capacity);
  KILN_CHECK_ALLOC(it);
  d->items = it;
  d->capacity = capacity;
  return NULL;
}

void kiln_detections_free(kiln_detections *d) {
  if (!d) return;
  free(d->items);
  memset(d, 0, sizeof *d);
}

static int64_t numel(const kiln_yolo_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->dims[i];
  return n;
}

/* End-to-end outputs are recognised by role: the [B,K,4] tensor holds boxes, [B,1] (or [B]) is the
 * count, and of the two [B,K] tensors the integer one (or the one named *class*) holds classes. */
static kiln_status detect_end2end(const kiln_yolo_tensor *outs, int n, kiln_yolo_layout *L) {
  L->num = L->boxes = L->scores = L->classes = -1;
  for (int i = 0; i < n; i++)
    if (outs[i].rank == 3 && outs[i].dims[2] == 4 && L->boxes < 0) L->boxes = i;
  if (L->boxes < 0) return kiln_error(KILN_ERR_UNSUPPORTED, "end-to-end outputs: no [B,K,4] boxes tensor");
  int64_t B = outs[L->boxes].dims[0], K = outs[L->boxes].dims[1];
  for (int i = 0; i < n; i++) {
    const kiln_yolo_tensor *t = &outs[i];
    if (i == L->boxes) continue;
    if ((t->rank == 2 && t->dims[0] == B && t->dims[1] == 1 && K != 1) || (t->rank == 1 && t->dims[0] == B)) {
      if (L->num < 0) L->num = i;
    } else if (t->rank == 2 && t->dims[0] == B && t->dims[1] == K) {
      int named_cls = t->name && strstr(t->name, "class");
      int is_int = t->dtype == KILN_DTYPE_INT32 || t->dtype == KILN_DTYPE_INT64;
      if ((named_cls || is_int) && L->classes < 0) L->classes = i;
      else if (L->scores < 0) L->scores = i;
      else if (L->classes < 0) L->classes = i;
    }
  }
  if (L->num < 0 || L->scores < 0 || L->classes < 0)
    return kiln_error(KILN_ERR_UNSUPPORTED, "end-to-end outputs: expected num [B,1], boxes [B,K,4], scores [B,K], classes [B,K]");
  L->format = KILN_YOLO_END2END;
  L->num_boxes = K;
  L->num_classes = 0;
  return NULL;
}

kiln_status kiln_yolo_layout_detect(const kiln_yolo_tensor *outs, int n_outs, kiln_yolo_format want,
                                    int expected_classes, kiln_yolo_layout *L) {
  memset(L, 0, sizeof *L);
  L->raw = L->num = L->boxes = L->scores = L->classes = -1;
  if (n_outs <= 0) return kiln_error(KILN_ERR_UNSUPPORTED, "the engine has no outputs");
  for (int i = 0; i < n_outs; i++)
    if (!outs[i].data || outs[i].rank < 1 || outs[i].rank > 8)
      return kiln_error(KILN_ERR_INVALID_ARGUMENT, "output %d is missing or has a bad rank", i);
  if (want == KILN_YOLO_END2END || (want == KILN_YOLO_AUTO && n_outs >= 4)) return detect_end2end(outs, n_outs, L);
  /* Raw head: the first rank-3 float output. */
  for (int i = 0; i < n_outs && L->raw < 0; i++)
    if (outs[i].rank == 3 && outs[i].dtype == KILN_DTYPE_FLOAT32) L->raw = i;
  if (L->raw < 0) {
    char shapes[256] = "";
    size_t off = 0;
    for (int i = 0; i < n_outs && off < sizeof shapes - 32; i++) {
      off += (size_t)snprintf(shapes + off, sizeof shapes - off, "%s[", i ? ", " : "");
      for (int d = 0; d < outs[i].rank && off < sizeof shapes - 24; d++)
        off += (size_t)snprintf(shapes + off, sizeof shapes - off, "%s%lld", d ? "," : "", (long long)outs[i].dims[d]);
      off += (size_t)snprintf(shapes + off, sizeof shapes - off, "]");
    }
    return kiln_error(KILN_ERR_UNSUPPORTED,
                      "cannot read the outputs %s as a YOLO head: expected float32 [B,4+nc,N] (v8/v11), [B,N,5+nc] (v5) "
                      "or num/boxes/scores/classes (end-to-end)", shapes);
  }
  const kiln_yolo_tensor *t = &outs[L->raw];
  int64_t d1 = t->dims[1], d2 = t->dims[2];
  kiln_yolo_format f = want;
  /* A known class count settles both the format and which axis holds the per-box values: Ultralytics
   * exports v8/v11 channels-first [B,4+nc,N] and v5 channels-last [B,N,5+nc]; either may be transposed. */
  int e = expected_classes;
  if (e > 0 && (f == KILN_YOLO_AUTO || f == KILN_YOLO_V8) && (d1 == 4 + e || d2 == 4 + e)) {
    f = KILN_YOLO_V8;
    L->channels_first = d1 == 4 + e;
  } else if (e > 0 && (f == KILN_YOLO_AUTO || f == KILN_YOLO_V5) && (d1 == 5 + e || d2 == 5 + e)) {
    f = KILN_YOLO_V5;
    L->channels_first = d2 != 5 + e;
  } else {
    /* Otherwise the per-box axis is the short one (84 or 85 values against thousands of anchors). */
    L->channels_first = d1 < d2;
    if (f == KILN_YOLO_AUTO) f = L->channels_first ? KILN_YOLO_V8 : KILN_YOLO_V5;
  }
  int64_t C = L->channels_first ? d1 : d2, N = L->channels_first ? d2 : d1;
  int64_t nc = C - (f == KILN_YOLO_V5 ? 5 : 4);
  if (nc < 1 || nc > 100000 || N < 1)
    return kiln_error(KILN_ERR_UNSUPPORTED, "YOLO %s head [%lld,%lld,%lld]: %lld values per box leave no classes",
                      kiln_yolo_format_name(f), (long long)t->dims[0], (long long)d1, (long long)d2, (long long)C);
  L->format = f;
  L->num_classes = (int)nc;
  L->num_boxes = N;
  return NULL;
}

static kiln_status push(kiln_detections *d, float cx, float cy, float w, float h, float score, int cls, int corners) {
  if (d->count == d->capacity) KILN_TRY(kiln_detections_reserve(d, d->capacity * 2));
  kiln_detection *o = &d->items[d->count++];
  if (corners) {
    o->x1 = cx, o->y1 = cy, o->x2 = w, o->y2 = h;
  } else {
    o->x1 = cx - w * 0.5f, o->y1 = cy - h * 0.5f, o->x2 = cx + w * 0.5f, o->y2 = cy + h * 0.5f;
  }
  o->score = score;
  o->cls = cls;
  return NULL;
}

static double read_num(const kiln_yolo_tensor *t, int64_t i) {
  switch (t->dtype) {
  case KILN_DTYPE_FLOAT32: return ((const float *)t->data)[i];
  case KILN_DTYPE_INT32: return ((const int32_t *)t->data)[i];
  case KILN_DTYPE_INT64: return (double)((const int64_t *)t->data)[i];
  case KILN_DTYPE_FLOAT64: return ((const double *)t->data)[i];
  default: return 0;
  }
}

static int numeric(kiln_dtype dt) {
  return dt == KILN_DTYPE_FLOAT32 || dt == KILN_DTYPE_INT32 || dt == KILN_DTYPE_INT64 || dt == KILN_DTYPE_FLOAT64;
}

kiln_status kiln_yolo_decode(const kiln_yolo_tensor *outs, const kiln_yolo_layout *L, int64_t b,
                             const kiln_nms_options *o, kiln_detections *d) {
  d->count = 0;
  if (L->format == KILN_YOLO_END2END) {
    const kiln_yolo_tensor *tn = &outs[L->num], *tb = &outs[L->boxes], *ts = &outs[L->scores], *tc = &outs[L->classes];
    if (!numeric(tn->dtype) || !numeric(tb->dtype) || !numeric(ts->dtype) || !numeric(tc->dtype))
      return kiln_error(KILN_ERR_UNSUPPORTED, "end-to-end outputs must be float32/int32/int64");
    int64_t B = tb->dims[0], K = L->num_boxes;
    if (b < 0 || b >= B) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "batch index %lld out of range", (long long)b);
    double nd = read_num(tn, b * (numel(tn) / B));
    int64_t n = nd < 0 || nd != nd ? 0 : nd > (double)K ? K : (int64_t)nd;
    KILN_TRY(kiln_detections_reserve(d, (int)(n > 0 ? n : 1)));
    for (int64_t k = 0; k < n; k++) {
      float s = (float)read_num(ts, b * K + k);
      if (!(s > o->conf_threshold)) continue;
      const int64_t bi = (b * K + k) * 4;
      KILN_TRY(push(d, (float)read_num(tb, bi), (float)read_num(tb, bi + 1), (float)read_num(tb, bi + 2),
                    (float)read_num(tb, bi + 3), s, (int)read_num(tc, b * K + k), 1));
    }
    return NULL;
  }
  const kiln_yolo_tensor *t = &outs[L->raw];
  if (t->dtype != KILN_DTYPE_FLOAT32) return kiln_error(KILN_ERR_UNSUPPORTED, "YOLO head must be float32");
  const int64_t B = t->dims[0], N = L->num_boxes, nc = L->num_classes;
  const int64_t C = nc + (L->format == KILN_YOLO_V5 ? 5 : 4);
  if (b < 0 || b >= B) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "batch index %lld out of range", (long long)b);
  const float *base = (const float *)t->data + b * C * N;
  /* Element (box n, channel c) in either layout. */
  const int64_t sn = L->channels_first ? 1 : C, sc = L->channels_first ? N : 1;
  if (d->capacity < 256) KILN_TRY(kiln_detections_reserve(d, 256));
  const int v5 = L->format == KILN_YOLO_V5, cls0 = v5 ? 5 : 4;
  for (int64_t n = 0; n < N; n++) {
    const float *p = base + n * sn;
    float obj = v5 ? p[4 * sc] : 1.0f;
    if (v5 && !(obj > o->conf_threshold)) continue; /* obj * cls <= obj: cannot pass */
    /* One label per box, its best class (Ultralytics' default, multi_label=False). */
    int best = 0;
    float bs = p[cls0 * sc];
    for (int64_t c = 1; c < nc; c++) {
      float v = p[(cls0 + c) * sc];
      if (v > bs) bs = v, best = (int)c;
    }
    float s = bs * obj;
    if (!(s > o->conf_threshold)) continue;
    KILN_TRY(push(d, p[0], p[sc], p[2 * sc], p[3 * sc], s, best, 0));
  }
  return NULL;
}

float kiln_box_iou(const kiln_detection *a, const kiln_detection *b) {
  float iw = fminf(a->x2, b->x2) - fmaxf(a->x1, b->x1);
  float ih = fminf(a->y2, b->y2) - fmaxf(a->y1, b->y1);
  if (iw <= 0 || ih <= 0) return 0;
  float inter = iw * ih;
  float ua = (a->x2 - a->x1) * (a->y2 - a->y1) + (b->x2 - b->x1) * (b->y2 - b->y1) - inter;
  return ua > 0 ? inter / ua : 0;
}

/* Total order (score, then geometry, then class) so the result never depends on qsort's tie handling. */
static int by_score_desc(const void *pa, const void *pb) {
  const kiln_detection *a = pa, *b = pb;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  if (a->cls != b->cls) return a->cls < b->cls ? -1 : 1;
  if (a->x1 != b->x1) return a->x1 < b->x1 ? -1 : 1;
  if (a->y1 != b->y1) return a->y1 < b->y1 ? -1 : 1;
  if (a->x2 != b->x2) return a->x2 < b->x2 ? -1 : 1;
  return a->y2 < b->y2 ? -1 : a->y2 > b->y2;
}

void kiln_nms(kiln_detections *d, const kiln_nms_options *o) {
  int n = d->count;
  if (n <= 0) return;
  qsort(d->items, (size_t)n, sizeof *d->items, by_score_desc);
  if (o->max_candidates > 0 && n > o->max_candidates) n = o->max_candidates;
  /* Greedy: a box survives if no higher-scoring survivor (of its class, unless agnostic) overlaps it by
   * more than the threshold. Survivors are compacted in place to the front (kept <= i), so the inner
   * loop visits only kept boxes and no extra memory is needed. */
  int kept = 0;
  const int max_det = o->max_det > 0 ? o->max_det : n;
  for (int i = 0; i < n && kept < max_det; i++) {
    const kiln_detection c = d->items[i];
    int ok = 1;
    for (int k = 0; k < kept && ok; k++) {
      const kiln_detection *q = &d->items[k];
      if (!o->agnostic && q->cls != c.cls) continue;
      if (kiln_box_iou(q, &c) > o->iou_threshold) ok = 0;
    }
    if (ok) d->items[kept++] = c;
  }
  d->count = kept;
}

void kiln_detections_unletterbox(kiln_detections *d, const kiln_letterbox *lb) {
  const float W = (float)lb->src_width, H = (float)lb->src_height;
  for (int i = 0; i < d->count; i++) {
    kiln_detection *b = &d->items[i];
    b->x1 = fminf(fmaxf((b->x1 - lb->pad_left) / lb->scale_x, 0), W);
    b->x2 = fminf(fmaxf((b->x2 - lb->pad_left) / lb->scale_x, 0), W);
    b->y1 = fminf(fmaxf((b->y1 - lb->pad_top) / lb->scale_y, 0), H);
    b->y2 = fminf(fmaxf((b->y2 - lb->pad_top) / lb->scale_y, 0), H);
  }
}
