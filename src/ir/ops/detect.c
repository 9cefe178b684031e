/* detect family: parse / infer / macs for NonMaxSuppression, and the selection routine shared by shape
 * inference (constant inputs) and the reference kernel. */
#include "ir/ops/detect.h"

#include "core/dtype.h"
#include "ir/infer_util.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

kiln_status kiln_detect_parse(kiln_graph *g, kiln_node *n) {
  if (n->op != KILN_OP_NonMaxSuppression)
    return kiln_error(KILN_ERR_INTERNAL, "op '%s' is not in the detect family", n->op_type);
  KILN_TRY(kiln_check_arity(n, 2, 5, 1, 1));
  kiln_nms_params *p = calloc(1, sizeof *p);
  KILN_CHECK_ALLOC(p);
  kiln_status st = kiln_node_get_int(n, "center_point_box", 0, &p->center_point_box);
  if (!st && p->center_point_box != 0 && p->center_point_box != 1)
    st = kiln_error(KILN_ERR_PARSE, "attribute 'center_point_box' = %" PRId64 " must be 0 or 1", p->center_point_box);
  if (st) {
    free(p);
    return st;
  }
  kiln_node_set_params(n, p, NULL);
  return NULL;
}

typedef struct nms_cand {
  float score;
  int64_t index;
} nms_cand;

/* Highest score first, ties by lower box index (ONNX Runtime's order); NaN scores last. A total order,
 * so qsort's instability does not matter. */
static int nms_cand_cmp(const void *pa, const void *pb) {
  const nms_cand *a = pa, *b = pb;
  bool na = isnan(a->score), nb = isnan(b->score);
  if (na != nb) return na ? 1 : -1;
  if (!na && a->score != b->score) return a->score > b->score ? -1 : 1;
  return (a->index > b->index) - (a->index < b->index);
}

/* Box i of batch b as (x_min, y_min, x_max, y_max) in float, as ONNX Runtime computes it. */
static void nms_box(const kiln_nms_params *p, const kiln_tensor *boxes, int64_t base, float out[4]) {
  float v[4];
  for (int k = 0; k < 4; k++) v[k] = (float)kiln_dtype_load_f64(boxes->dtype, boxes->data, base + k);
  if (p->center_point_box) {
    float hw = v[2] / 2.0f, hh = v[3] / 2.0f;
    out[0] = v[0] - hw, out[1] = v[1] - hh, out[2] = v[0] + hw, out[3] = v[1] + hh;
  } else { /* [y1, x1, y2, x2] with the corners in either order */
    out[0] = fminf(v[1], v[3]), out[2] = fmaxf(v[1], v[3]);
    out[1] = fminf(v[0], v[2]), out[3] = fmaxf(v[0], v[2]);
  }
}

static bool nms_suppress(const float a[4], const float b[4], float iou_threshold) {
  float ix0 = fmaxf(a[0], b[0]), ix1 = fminf(a[2], b[2]);
  float iy0 = fmaxf(a[1], b[1]), iy1 = fminf(a[3], b[3]);
  if (ix1 <= ix0 || iy1 <= iy0) return false;
  float inter = (ix1 - ix0) * (iy1 - iy0);
  float area_a = (a[2] - a[0]) * (a[3] - a[1]), area_b = (b[2] - b[0]) * (b[3] - b[1]);
  float uni = area_a + area_b - inter;
  if (area_a <= 0 || area_b <= 0 || uni <= 0) return false;
  return inter / uni > iou_threshold;
}

kiln_status kiln_nms_select(const kiln_nms_params *p, const kiln_tensor *boxes, const kiln_tensor *scores,
                            const kiln_tensor *max_out, const kiln_tensor *iou, const kiln_tensor *score_thr,
                            int64_t *sel, int64_t cap, int64_t *count) {
  *count = 0;
  if (!kiln_dtype_is_float(boxes->dtype) || !kiln_dtype_is_float(scores->dtype))
    return kiln_error(KILN_ERR_UNSUPPORTED, "boxes and scores must be float tensors");
  if (boxes->rank != 3 || boxes->dims[2] != 4)
    return kiln_error(KILN_ERR_SHAPE, "boxes must have shape [batch, boxes, 4]");
  if (scores->rank != 3 || scores->dims[0] != boxes->dims[0] || scores->dims[2] != boxes->dims[1])
    return kiln_error(KILN_ERR_SHAPE, "scores must have shape [batch, classes, boxes] matching boxes");
  int64_t B = boxes->dims[0], N = boxes->dims[1], C = scores->dims[1];
  int64_t max_per_class = 0;
  float iou_t = 0, score_t = 0;
  bool has_score_t = false;
  if (max_out && max_out->data) {
    if (kiln_tensor_numel(max_out) != 1) return kiln_error(KILN_ERR_SHAPE, "max_output_boxes_per_class must be a scalar");
    max_per_class = kiln_dtype_load_i64(max_out->dtype, max_out->data, 0);
  }
  if (iou && iou->data) {
    if (kiln_tensor_numel(iou) != 1) return kiln_error(KILN_ERR_SHAPE, "iou_threshold must be a scalar");
    iou_t = (float)kiln_dtype_load_f64(iou->dtype, iou->data, 0);
    if (!(iou_t >= 0 && iou_t <= 1)) return kiln_error(KILN_ERR_SHAPE, "iou_threshold %g is not in [0, 1]", iou_t);
  }
  if (score_thr && score_thr->data) {
    if (kiln_tensor_numel(score_thr) != 1) return kiln_error(KILN_ERR_SHAPE, "score_threshold must be a scalar");
    score_t = (float)kiln_dtype_load_f64(score_thr->dtype, score_thr->data, 0);
    has_score_t = true;
  }
  if (max_per_class <= 0 || N == 0) return NULL;
  if (max_per_class > N) max_per_class = N;
  nms_cand *cand = malloc(sizeof(nms_cand) * (size_t)N);
  float(*kept)[4] = malloc(sizeof(float[4]) * (size_t)max_per_class);
  if (!cand || !kept) {
    free(cand);
    free(kept);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  }
  int64_t total = 0;
  for (int64_t b = 0; b < B; b++)
    for (int64_t c = 0; c < C; c++) {
      int64_t nc = 0;
      for (int64_t i = 0; i < N; i++) {
        float s = (float)kiln_dtype_load_f64(scores->dtype, scores->data, (b * C + c) * N + i);
        if (!has_score_t || s > score_t) cand[nc].score = s, cand[nc++].index = i; /* strictly above */
      }
      qsort(cand, (size_t)nc, sizeof *cand, nms_cand_cmp);
      int64_t nk = 0;
      for (int64_t j = 0; j < nc && nk < max_per_class; j++) {
        float box[4];
        nms_box(p, boxes, (b * N + cand[j].index) * 4, box);
        bool drop = false;
        for (int64_t k = 0; k < nk && !drop; k++) drop = nms_suppress(kept[k], box, iou_t);
        if (drop) continue;
        memcpy(kept[nk++], box, sizeof box);
        if (sel && total < cap) sel[3 * total] = b, sel[3 * total + 1] = c, sel[3 * total + 2] = cand[j].index;
        total++;
      }
    }
  free(cand);
  free(kept);
  *count = total;
  return NULL;
}

kiln_status kiln_detect_infer(kiln_graph *g, kiln_node *n) {
  const kiln_nms_params *p = n->params;
  if (!p) return kiln_error(KILN_ERR_INTERNAL, "node was not parsed");
  const kiln_value *boxes, *scores;
  KILN_TRY(kiln_require_input(g, n, 0, &boxes));
  KILN_TRY(kiln_require_input(g, n, 1, &scores));
  if (!kiln_dtype_is_float(boxes->dtype) || !kiln_dtype_is_float(scores->dtype))
    return kiln_error(KILN_ERR_SHAPE, "boxes '%s' and scores '%s' must be float tensors", boxes->name, scores->name);
  if (boxes->shape.rank >= 0 && (boxes->shape.rank != 3 || (boxes->shape.dims[2] >= 0 && boxes->shape.dims[2] != 4)))
    return kiln_error(KILN_ERR_SHAPE, "boxes '%s' must have shape [batch, boxes, 4]", boxes->name);
  if (scores->shape.rank >= 0 && scores->shape.rank != 3)
    return kiln_error(KILN_ERR_SHAPE, "scores '%s' must have shape [batch, classes, boxes]", scores->name);
  if (boxes->shape.rank == 3 && scores->shape.rank == 3) {
    int64_t b0 = boxes->shape.dims[0], s0 = scores->shape.dims[0], b1 = boxes->shape.dims[1], s2 = scores->shape.dims[2];
    if ((b0 >= 0 && s0 >= 0 && b0 != s0) || (b1 >= 0 && s2 >= 0 && b1 != s2))
      return kiln_error(KILN_ERR_SHAPE, "boxes '%s' and scores '%s' disagree on batch or box count", boxes->name,
                        scores->name);
  }
  static const char *const names[3] = {"max_output_boxes_per_class", "iou_threshold", "score_threshold"};
  bool all_const = kiln_value_is_constant(boxes) && kiln_value_is_constant(scores);
  kiln_tensor opt[3];
  for (int i = 0; i < 3; i++) {
    memset(&opt[i], 0, sizeof opt[i]);
    const kiln_value *v = kiln_node_input(g, n, 2 + i);
    if (!v) continue;
    if (v->dtype != KILN_DTYPE_UNDEFINED && (i == 0 ? v->dtype != KILN_DTYPE_INT64 : !kiln_dtype_is_float(v->dtype)))
      return kiln_error(KILN_ERR_SHAPE, "%s '%s' has dtype %s", names[i], v->name, kiln_dtype_name(v->dtype));
    if (kiln_value_is_constant(v)) kiln_value_as_tensor(v, &opt[i]);
    else all_const = false;
  }
  kiln_shape out;
  int64_t dims[2] = {KILN_DIM_DYNAMIC, 3};
  if (all_const) { /* the count depends on the data: with every input known it can be computed now */
    kiln_tensor tb, ts;
    kiln_value_as_tensor(boxes, &tb);
    kiln_value_as_tensor(scores, &ts);
    KILN_TRY(kiln_nms_select(p, &tb, &ts, &opt[0], &opt[1], &opt[2], NULL, 0, &dims[0]));
  }
  kiln_shape_init(&out, 2, dims);
  return kiln_infer_set_output(g, n, 0, KILN_DTYPE_INT64, &out);
}

int64_t kiln_detect_macs(const kiln_graph *g, const kiln_node *n) { return 0; }
