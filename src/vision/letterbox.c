/* Letterbox preprocessing: the exact geometry and resampling Ultralytics uses (cv2.resize INTER_LINEAR
 * into a 114-grey canvas), so kiln's inputs match what YOLO models were trained and validated on. */
#include "kiln/vision.h"

#include "core/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void kiln_preprocess_options_init(kiln_preprocess_options *o, int width, int height) {
  memset(o, 0, sizeof *o);
  o->width = width;
  o->height = height;
  o->mode = KILN_LETTERBOX_CENTER;
  o->bgr = 0;
  o->pad_value = 114;
  o->scale = 1.0f / 255.0f;
}

kiln_status kiln_letterbox_compute(int src_w, int src_h, int dst_w, int dst_h, kiln_letterbox_mode mode,
                                   kiln_letterbox *lb) {
  if (src_w <= 0 || src_h <= 0 || dst_w <= 0 || dst_h <= 0 || dst_w > KILN_IMAGE_MAX_SIDE || dst_h > KILN_IMAGE_MAX_SIDE)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "letterbox: bad sizes %dx%d -> %dx%d", src_w, src_h, dst_w, dst_h);
  memset(lb, 0, sizeof *lb);
  lb->src_width = src_w;
  lb->src_height = src_h;
  lb->dst_width = dst_w;
  lb->dst_height = dst_h;
  if (mode == KILN_LETTERBOX_STRETCH) {
    lb->new_width = dst_w;
    lb->new_height = dst_h;
    lb->scale_x = (float)dst_w / (float)src_w;
    lb->scale_y = (float)dst_h / (float)src_h;
    return NULL;
  }
  /* Ultralytics LetterBox: r = min(ratios); new size = round(side * r) with Python's round (half to
   * even, which nearbyint gives in the default rounding mode); pad = round(d/2 -+ 0.1). */
  double r = fmin((double)dst_h / src_h, (double)dst_w / src_w);
  int nw = (int)nearbyint(src_w * r), nh = (int)nearbyint(src_h * r);
  if (nw < 1) nw = 1;
  if (nh < 1) nh = 1;
  if (nw > dst_w) nw = dst_w;
  if (nh > dst_h) nh = dst_h;
  lb->new_width = nw;
  lb->new_height = nh;
  lb->scale_x = lb->scale_y = (float)r;
  if (mode == KILN_LETTERBOX_CENTER) {
    lb->pad_left = (int)nearbyint((dst_w - nw) / 2.0 - 0.1);
    lb->pad_top = (int)nearbyint((dst_h - nh) / 2.0 - 0.1);
  }
  return NULL;
}

/* One axis of cv2's INTER_LINEAR: the source position of output pixel d is (d + 0.5) * src/dst - 0.5
 * (pixel centers aligned), clamped to the edge, with no antialiasing when shrinking. */
static void axis_taps(int src, int dst, int *i0, int *i1, float *w1) {
  double scale = (double)src / dst;
  for (int d = 0; d < dst; d++) {
    double f = (d + 0.5) * scale - 0.5;
    int s = (int)floor(f);
    double a = f - s;
    if (s < 0) {
      s = 0;
      a = 0;
    }
    if (s >= src - 1) {
      s = src - 1;
      a = 0;
    }
    i0[d] = s;
    i1[d] = s + 1 < src ? s + 1 : s;
    w1[d] = (float)a;
  }
}

kiln_status kiln_preprocess(const kiln_image *img, const kiln_preprocess_options *o, float *dst, size_t dst_len,
                            kiln_letterbox *lb_out) {
  if (!img || !img->data || !o || !dst)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "preprocess: missing image or output");
  kiln_letterbox lb;
  KILN_TRY(kiln_letterbox_compute(img->width, img->height, o->width, o->height, o->mode, &lb));
  size_t plane = (size_t)o->width * (size_t)o->height;
  if (dst_len < plane * 3)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "preprocess: output holds %zu floats, needs %zu", dst_len, plane * 3);
  const int nw = lb.new_width, nh = lb.new_height, sw = img->width;
  /* Tap tables: sized by this image's geometry, the only allocation of the step. */
  int *xi = malloc(sizeof(int) * 2 * (size_t)(nw + nh));
  float *xw = malloc(sizeof(float) * (size_t)(nw + nh));
  if (!xi || !xw) {
    free(xi);
    free(xw);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "preprocess: out of memory");
  }
  int *x0 = xi, *x1 = xi + nw, *y0 = xi + 2 * nw, *y1 = xi + 2 * nw + nh;
  float *ax = xw, *ay = xw + nw;
  axis_taps(img->width, nw, x0, x1, ax);
  axis_taps(img->height, nh, y0, y1, ay);

  /* A lookup of the 256 possible rounded values times scale keeps the inner loop to one multiply-add chain. */
  float lut[256];
  /* For the usual 1/255, divide in double as numpy's x / 255 does, so values are bit-identical to it. */
  const int div255 = o->scale == 1.0f / 255.0f;
  for (int v = 0; v < 256; v++) lut[v] = div255 ? (float)(v / 255.0) : (float)v * o->scale;
  /* Output plane for source channel c (R,G,B): reversed for BGR models. */
  const float pad = lut[o->pad_value];
  for (size_t i = 0; i < plane * 3; i++) dst[i] = pad;
  float *planes[3];
  for (int c = 0; c < 3; c++) planes[c] = dst + plane * (size_t)(o->bgr ? 2 - c : c);
  for (int dy = 0; dy < nh; dy++) {
    const uint8_t *r0 = img->data + (size_t)y0[dy] * sw * 3, *r1 = img->data + (size_t)y1[dy] * sw * 3;
    const float wy = ay[dy];
    size_t orow = (size_t)(dy + lb.pad_top) * o->width + lb.pad_left;
    for (int dx = 0; dx < nw; dx++) {
      const int a = x0[dx] * 3, b = x1[dx] * 3;
      const float wx = ax[dx];
      for (int c = 0; c < 3; c++) {
        float top = r0[a + c] + wx * (float)(r0[b + c] - r0[a + c]);
        float bot = r1[a + c] + wx * (float)(r1[b + c] - r1[a + c]);
        float v = top + wy * (bot - top);
        /* Round to 8 bits as cv2 does for uint8 images (training data went through that). */
        int q = (int)(v + 0.5f);
        if (q > 255) q = 255;
        if (q < 0) q = 0;
        planes[c][orow + (size_t)dx] = lut[q];
      }
    }
  }
  free(xi);
  free(xw);
  if (lb_out) *lb_out = lb;
  return NULL;
}
