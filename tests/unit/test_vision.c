/* Vision pipeline pieces: letterbox against the reference inputs, its geometry against detections.json,
 * YOLO decoding of the three output formats, NMS, box mapping, names files, image I/O and refusals. */
#include "testlib.h"

#include "kiln/vision.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IMAGES KILN_SHARED_DIR "/images/"
#define REF KILN_SHARED_DIR "/reference/yolov8n/"

/* Letterboxing dog/horses/person against ONNX Runtime's reference inputs. Those were decoded by
 * libjpeg(-turbo); kiln decodes with stb_image, whose IDCT/color conversion rounds differently: person.jpg
 * is not resized at all (640x424) and shows the same spread as the resized photos, so the residual is the
 * decoder's. Bound it: at most 3 levels anywhere, >= 90% of values exact, < 2% off by more than one. */
static void check_letterbox(const char *name) {
  char path[512];
  snprintf(path, sizeof path, IMAGES "%s.jpg", name);
  if (!test_file_exists(path)) skip();
  kiln_image img = {0};
  ASSERT_OK(kiln_image_load(path, &img));
  size_t n = 3 * 640 * 640, len;
  float *x = malloc(n * sizeof *x);
  assert_non_null(x);
  kiln_preprocess_options o;
  kiln_preprocess_options_init(&o, 640, 640);
  kiln_letterbox lb;
  ASSERT_OK(kiln_preprocess(&img, &o, x, n, &lb));
  snprintf(path, sizeof path, REF "%s.input.bin", name);
  float *ref = test_read_file(path, &len);
  assert_non_null(ref);
  assert_int_equal(len, n * sizeof(float));
  double maxd = 0;
  size_t off = 0, off2 = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)x[i] - ref[i]);
    if (d > maxd) maxd = d;
    off += d > 0.5 / 255;
    off2 += d > 1.5 / 255;
  }
  printf("letterbox %s: %dx%d -> %dx%d pad (%d,%d); max |diff| %.2f/255; %.2f%% of values differ, %.3f%% by > 1/255\n",
         name, img.width, img.height, lb.new_width, lb.new_height, lb.pad_left, lb.pad_top, maxd * 255,
         100.0 * off / n, 100.0 * off2 / n);
  assert_true(maxd <= 3.0 / 255 + 1e-6);
  assert_true(off < n / 10);
  assert_true(off2 < n / 50);
  /* The padding rows are exactly 114/255 in both. */
  for (int y = 0; y < lb.pad_top; y++) assert_true(x[(size_t)y * 640] == ref[(size_t)y * 640]);
  /* person is not resized: the letterboxed rows are the decoded pixels themselves. */
  if (lb.new_width == img.width && lb.new_height == img.height)
    for (int y = 0; y < img.height; y++)
      for (int xx = 0; xx < img.width; xx++)
        assert_true(lround(x[((size_t)(y + lb.pad_top)) * 640 + xx] * 255) == img.data[((size_t)y * img.width + xx) * 3]);
  free(ref);
  free(x);
  kiln_image_free(&img);
}

/* cv2.INTER_LINEAR semantics on a case worked by hand: halving averages pixel pairs (centers aligned,
 * no antialiasing), doubling interpolates at 1/4 and 3/4 and clamps at the edges; values round half up. */
static void test_bilinear_exact(void **s) {
  kiln_image img = {0};
  ASSERT_OK(kiln_image_resize_buffer(&img, 4, 1));
  const uint8_t v[4] = {0, 101, 200, 255};
  for (int i = 0; i < 4; i++) img.data[3 * i] = img.data[3 * i + 1] = img.data[3 * i + 2] = v[i];
  kiln_preprocess_options o;
  kiln_preprocess_options_init(&o, 2, 2);
  o.mode = KILN_LETTERBOX_TOP_LEFT;
  o.scale = 1;
  float x[3 * 8 * 4];
  kiln_letterbox lb;
  ASSERT_OK(kiln_preprocess(&img, &o, x, 3 * 2 * 2, &lb));
  assert_true(x[0] == 51 && x[1] == 228 && x[2] == 114 && x[3] == 114); /* (0+101)/2 = 50.5 -> 51 */
  kiln_preprocess_options_init(&o, 8, 4);
  o.mode = KILN_LETTERBOX_STRETCH;
  o.scale = 1;
  ASSERT_OK(kiln_preprocess(&img, &o, x, 3 * 8 * 4, &lb));
  const float want[8] = {0, 25, 76, 126, 175, 214, 241, 255}; /* 25.25, 75.75, 125.75, 175.25, 213.75, 241.25 */
  for (int i = 0; i < 8; i++) assert_true(x[i] == want[i] && x[3 * 8 + i] == want[i]);
  kiln_image_free(&img);
}

static void test_letterbox_dog(void **s) { check_letterbox("dog"); }
static void test_letterbox_horses(void **s) { check_letterbox("horses"); }
static void test_letterbox_person(void **s) { check_letterbox("person"); }

/* Pad and scale for every photo size in detections.json (center mode), and the top-left mode. */
static void test_letterbox_geometry(void **s) {
  static const struct { int w, h, top; } cases[] = {{512, 512, 0},   {451, 300, 107}, {600, 400, 106}, {768, 576, 80},
                                                    {773, 512, 108}, {500, 500, 0},   {1352, 900, 107}, {741, 500, 104},
                                                    {640, 424, 108}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    kiln_letterbox lb;
    ASSERT_OK(kiln_letterbox_compute(cases[i].w, cases[i].h, 640, 640, KILN_LETTERBOX_CENTER, &lb));
    assert_int_equal(lb.pad_left, 0);
    assert_int_equal(lb.pad_top, cases[i].top);
    assert_true(fabsf(lb.scale_x - 640.0f / cases[i].w) < 1e-6f);
  }
  kiln_letterbox lb;
  ASSERT_OK(kiln_letterbox_compute(300, 600, 640, 640, KILN_LETTERBOX_TOP_LEFT, &lb));
  assert_int_equal(lb.pad_left, 0);
  assert_int_equal(lb.pad_top, 0);
  assert_int_equal(lb.new_width, 320);
  assert_int_equal(lb.new_height, 640);
  ASSERT_OK(kiln_letterbox_compute(300, 600, 640, 640, KILN_LETTERBOX_CENTER, &lb));
  assert_int_equal(lb.pad_left, 160);
  expect_error(kiln_letterbox_compute(0, 10, 640, 640, KILN_LETTERBOX_CENTER, &lb), KILN_ERR_INVALID_ARGUMENT, "bad sizes");
}

/* A 1x1 image letterboxes to a 640x640 input with one grey band... or fills it (aspect 1). */
static void test_preprocess_tiny_and_bgr(void **s) {
  kiln_image img = {0};
  ASSERT_OK(kiln_image_resize_buffer(&img, 1, 1));
  img.data[0] = 10, img.data[1] = 20, img.data[2] = 30;
  float x[3 * 8 * 4];
  kiln_preprocess_options o;
  kiln_preprocess_options_init(&o, 8, 4);
  o.bgr = 1;
  o.scale = 1;
  kiln_letterbox lb;
  ASSERT_OK(kiln_preprocess(&img, &o, x, 3 * 8 * 4, &lb));
  assert_int_equal(lb.new_width, 4);
  assert_int_equal(lb.pad_left, 2);
  assert_true(x[0] == 114);                 /* padding, channel B */
  assert_true(x[2] == 30 && x[32 + 2] == 20 && x[64 + 2] == 10); /* B, G, R planes */
  expect_error(kiln_preprocess(&img, &o, x, 10, &lb), KILN_ERR_INVALID_ARGUMENT, "needs");
  kiln_image_free(&img);
}

static kiln_yolo_tensor tensor(const char *name, const void *data, kiln_dtype dt, int rank, int64_t d0, int64_t d1, int64_t d2) {
  kiln_yolo_tensor t = {name, data, dt, rank, {d0, d1, d2}};
  return t;
}

/* v8 head [1, 4+3, 5]: two overlapping boxes of class 1 (NMS keeps the stronger), one of class 2
 * overlapping them (kept per class, dropped when agnostic), one below the threshold. */
static void test_decode_v8_and_nms(void **s) {
  enum { C = 7, N = 5 };
  float h[C][N] = {{0}};
  const float boxes[N][4] = {{100, 100, 50, 50}, {102, 101, 50, 52}, {101, 100, 50, 50}, {300, 300, 20, 20}, {400, 400, 10, 10}};
  const int cls[N] = {1, 1, 2, 0, 0};
  const float score[N] = {0.9f, 0.8f, 0.7f, 0.2f, 0.5f};
  for (int n = 0; n < N; n++) {
    for (int k = 0; k < 4; k++) h[k][n] = boxes[n][k];
    h[4 + cls[n]][n] = score[n];
  }
  kiln_yolo_tensor t = tensor("output0", h, KILN_DTYPE_FLOAT32, 3, 1, C, N);
  kiln_yolo_layout L;
  ASSERT_OK(kiln_yolo_layout_detect(&t, 1, KILN_YOLO_AUTO, 3, &L));
  assert_int_equal(L.format, KILN_YOLO_V8);
  assert_int_equal(L.num_classes, 3);
  kiln_nms_options o;
  kiln_nms_options_init(&o);
  kiln_detections d = {0};
  ASSERT_OK(kiln_yolo_decode(&t, &L, 0, &o, &d));
  assert_int_equal(d.count, 4);
  kiln_nms(&d, &o);
  assert_int_equal(d.count, 3);
  assert_true(d.items[0].score == 0.9f && d.items[0].cls == 1);
  assert_true(d.items[1].score == 0.7f && d.items[1].cls == 2);
  assert_true(d.items[2].score == 0.5f);
  assert_true(fabsf(d.items[0].x1 - 75) < 1e-4f && fabsf(d.items[0].y2 - 125) < 1e-4f);
  ASSERT_OK(kiln_yolo_decode(&t, &L, 0, &o, &d));
  o.agnostic = 1;
  kiln_nms(&d, &o);
  assert_int_equal(d.count, 2);
  ASSERT_OK(kiln_yolo_decode(&t, &L, 0, &o, &d));
  o.max_det = 1;
  kiln_nms(&d, &o);
  assert_int_equal(d.count, 1);
  expect_error(kiln_yolo_decode(&t, &L, 1, &o, &d), KILN_ERR_INVALID_ARGUMENT, "batch");
  kiln_detections_free(&d);
}

/* v5 head [1, N, 5+nc]: score = objectness x class probability. */
static void test_decode_v5(void **s) {
  float h[2][7] = {{50, 60, 20, 10, 0.9f, 0.1f, 0.5f}, {10, 10, 4, 4, 0.2f, 0.9f, 0.9f}};
  kiln_yolo_tensor t = tensor("output", h, KILN_DTYPE_FLOAT32, 3, 1, 2, 7);
  kiln_yolo_layout L;
  ASSERT_OK(kiln_yolo_layout_detect(&t, 1, KILN_YOLO_AUTO, 2, &L));
  assert_int_equal(L.format, KILN_YOLO_V5);
  assert_int_equal(L.num_classes, 2);
  kiln_nms_options o;
  kiln_nms_options_init(&o);
  kiln_detections d = {0};
  ASSERT_OK(kiln_yolo_decode(&t, &L, 0, &o, &d));
  assert_int_equal(d.count, 1);
  assert_int_equal(d.items[0].cls, 1);
  assert_true(fabsf(d.items[0].score - 0.45f) < 1e-6f);
  assert_true(d.items[0].x1 == 40 && d.items[0].y1 == 55);
  /* The same tensor forced to v8 reads 3 classes and no objectness. */
  ASSERT_OK(kiln_yolo_layout_detect(&t, 1, KILN_YOLO_V8, 3, &L));
  assert_int_equal(L.num_classes, 3);
  kiln_detections_free(&d);
}

/* End-to-end (EfficientNMS-style) outputs: only the first `num` rows count. */
static void test_decode_end2end(void **s) {
  int32_t num[1] = {2};
  float boxes[3][4] = {{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 9, 9, 9}};
  float scores[3] = {0.9f, 0.1f, 0.8f};
  int32_t classes[3] = {7, 3, 1};
  kiln_yolo_tensor t[4] = {tensor("num_dets", num, KILN_DTYPE_INT32, 2, 1, 1, 0),
                           tensor("det_boxes", boxes, KILN_DTYPE_FLOAT32, 3, 1, 3, 4),
                           tensor("det_scores", scores, KILN_DTYPE_FLOAT32, 2, 1, 3, 0),
                           tensor("det_classes", classes, KILN_DTYPE_INT32, 2, 1, 3, 0)};
  kiln_yolo_layout L;
  ASSERT_OK(kiln_yolo_layout_detect(t, 4, KILN_YOLO_AUTO, 80, &L));
  assert_int_equal(L.format, KILN_YOLO_END2END);
  kiln_nms_options o;
  kiln_nms_options_init(&o);
  kiln_detections d = {0};
  ASSERT_OK(kiln_yolo_decode(t, &L, 0, &o, &d));
  assert_int_equal(d.count, 1);
  assert_int_equal(d.items[0].cls, 7);
  assert_true(d.items[0].x2 == 3 && d.items[0].y2 == 4);
  /* A rank-2 output alone is no YOLO head: the message names the shapes. */
  expect_error(kiln_yolo_layout_detect(&t[2], 1, KILN_YOLO_AUTO, 80, &L), KILN_ERR_UNSUPPORTED, "[1,3]");
  kiln_detections_free(&d);
}

static void test_unletterbox_clips(void **s) {
  kiln_letterbox lb;
  ASSERT_OK(kiln_letterbox_compute(768, 576, 640, 640, KILN_LETTERBOX_CENTER, &lb));
  kiln_detections d = {0};
  ASSERT_OK(kiln_detections_reserve(&d, 2));
  d.items[0] = (kiln_detection){-10, 70, 100, 700, 0.9f, 0};
  d.items[1] = (kiln_detection){320, 320, 400, 400, 0.9f, 0};
  d.count = 2;
  kiln_detections_unletterbox(&d, &lb);
  assert_true(d.items[0].x1 == 0 && d.items[0].y1 == 0 && d.items[0].y2 == 576);
  assert_true(fabsf(d.items[0].x2 - 120) < 1e-3f);
  assert_true(fabsf(d.items[1].x1 - 384) < 1e-3f && fabsf(d.items[1].y1 - 288) < 1e-3f);
  kiln_detections_free(&d);
}

static void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  if (n) assert_int_equal(fwrite(data, 1, n, f), n);
  fclose(f);
}

static void test_names_file(void **s) {
  int n;
  const char *const *coco = kiln_coco_names(&n);
  assert_int_equal(n, 80);
  assert_string_equal(coco[16], "dog");
  assert_string_equal(coco[3], "motorbike");
  assert_string_equal(coco[60], "diningtable");
  char path[] = "/tmp/kiln_names_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  write_file(path, "cat\r\nhot dog \n\nfish\n\n\n", 22);
  kiln_names names;
  ASSERT_OK(kiln_names_load(path, &names));
  assert_int_equal(names.count, 4);
  assert_string_equal(names.names[1], "hot dog");
  assert_string_equal(names.names[2], "");
  assert_string_equal(names.names[3], "fish");
  kiln_names_free(&names);
  write_file(path, "\n\n", 2);
  expect_error(kiln_names_load(path, &names), KILN_ERR_PARSE, "no class names");
  unlink(path);
}

/* Round trip through PNG (lossless) and JPEG, and the refusals: empty, text, truncated, huge header. */
static void test_image_io(void **s) {
  kiln_image img = {0}, back = {0};
  ASSERT_OK(kiln_image_resize_buffer(&img, 37, 21));
  for (size_t i = 0; i < 37 * 21 * 3; i++) img.data[i] = (uint8_t)(i * 7);
  char dir[] = "/tmp/kiln_vision_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char png[256], jpg[256], bad[256];
  snprintf(png, sizeof png, "%s/a.png", dir);
  snprintf(jpg, sizeof jpg, "%s/a.jpg", dir);
  snprintf(bad, sizeof bad, "%s/bad.jpg", dir);
  ASSERT_OK(kiln_image_write(&img, png, 90));
  ASSERT_OK(kiln_image_load(png, &back));
  assert_int_equal(back.width, 37);
  assert_int_equal(back.height, 21);
  assert_memory_equal(back.data, img.data, 37 * 21 * 3);
  ASSERT_OK(kiln_image_write(&img, jpg, 90));
  ASSERT_OK(kiln_image_load(jpg, &back));
  assert_int_equal(back.width, 37);

  size_t len;
  unsigned char *j = test_read_file(jpg, &len);
  assert_non_null(j);
  write_file(bad, j, len / 2);
  expect_error(kiln_image_load(bad, &back), KILN_ERR_PARSE, "truncated");
  free(j);
  write_file(bad, "", 0);
  expect_error(kiln_image_load(bad, &back), KILN_ERR_PARSE, "empty");
  write_file(bad, "hello, this is text\n", 20);
  expect_error(kiln_image_load(bad, &back), KILN_ERR_PARSE, "not a JPEG, PNG or BMP");
  /* A valid PNG signature + IHDR claiming 20000x20000: refused from the header alone. */
  static const unsigned char huge[] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                       0, 0, 0x4e, 0x20, 0, 0, 0x4e, 0x20, 8, 2, 0, 0, 0, 0, 0, 0, 0};
  write_file(bad, huge, sizeof huge);
  expect_error(kiln_image_load(bad, &back), KILN_ERR_PARSE, "20000x20000, larger than the limit");
  expect_error(kiln_image_load("/nonexistent/x.jpg", &back), KILN_ERR_IO, "cannot open");
  expect_error(kiln_image_write(&img, "/nonexistent/dir/x.png", 90), KILN_ERR_IO, "cannot write");
  unlink(png);
  unlink(jpg);
  unlink(bad);
  rmdir(dir);
  kiln_image_free(&img);
  kiln_image_free(&back);
}

/* Drawing paints the class color on the box edge and label pixels in the label area. */
static void test_draw(void **s) {
  kiln_font *font;
  kiln_status st = kiln_font_load(NULL, &font);
  if (st) {
    kiln_status_destroy(st);
    skip();
  }
  kiln_image img = {0};
  ASSERT_OK(kiln_image_resize_buffer(&img, 200, 160));
  memset(img.data, 0, 200 * 160 * 3);
  kiln_detections d = {0};
  ASSERT_OK(kiln_detections_reserve(&d, 1));
  d.items[0] = (kiln_detection){40, 60, 150, 150, 0.93f, 16};
  d.count = 1;
  int n;
  const char *const *names = kiln_coco_names(&n);
  ASSERT_OK(kiln_draw_detections(&img, &d, names, n, font));
  uint8_t c[3];
  kiln_class_color(16, c);
  const uint8_t *edge = img.data + ((size_t)100 * 200 + 40) * 3;
  assert_memory_equal(edge, c, 3);
  /* The label sits above the box: some pixels there differ from the fill (the text). */
  int text = 0;
  for (int y = 40; y < 60; y++)
    for (int x = 40; x < 120; x++) {
      const uint8_t *p = img.data + ((size_t)y * 200 + x) * 3;
      text += memcmp(p, c, 3) != 0 && (p[0] | p[1] | p[2]) != 0;
    }
  assert_true(text > 20);
  kiln_font_destroy(font);
  expect_error(kiln_font_load("/nonexistent.ttf", &font), KILN_ERR_IO, "font");
  assert_null(font);
  kiln_detections_free(&d);
  kiln_image_free(&img);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_letterbox_dog),      cmocka_unit_test(test_letterbox_horses),
      cmocka_unit_test(test_letterbox_person),   cmocka_unit_test(test_letterbox_geometry), cmocka_unit_test(test_bilinear_exact),
      cmocka_unit_test(test_preprocess_tiny_and_bgr), cmocka_unit_test(test_decode_v8_and_nms),
      cmocka_unit_test(test_decode_v5),          cmocka_unit_test(test_decode_end2end),
      cmocka_unit_test(test_unletterbox_clips),  cmocka_unit_test(test_names_file),
      cmocka_unit_test(test_image_io),           cmocka_unit_test(test_draw),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
