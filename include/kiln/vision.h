/*
 * kiln vision: the pieces around a detector engine that turn photos into labelled boxes.
 *
 *   image file --load--> RGB8 image --letterbox--> NCHW fp32 tensor --engine--> raw outputs
 *              --decode--> candidates --NMS--> detections --unletterbox--> boxes in photo pixels --draw/JSON
 *
 * Typical use (error handling elided; every fallible call returns a kiln_status, NULL = success):
 *
 *   kiln_image img = {0};                       // buffers are reused across loads
 *   kiln_image_load("dog.jpg", &img);
 *   kiln_preprocess_options pp;  kiln_preprocess_options_init(&pp, 640, 640);
 *   kiln_letterbox lb;
 *   kiln_preprocess(&img, &pp, input, 3 * 640 * 640, &lb);     // input: the engine's bound input buffer
 *   ... kiln_context_enqueue ...
 *   kiln_detections dets = {0};
 *   kiln_yolo_outputs out = {...};             // pointers + shapes of the engine's outputs
 *   kiln_nms_options nms;  kiln_nms_options_init(&nms);
 *   kiln_yolo_detect(&out, &nms, &lb, &dets);  // decode + NMS + map back to img pixels
 *   kiln_draw_detections(&img, &dets, names, font);
 *   kiln_image_write(&img, "out.jpg", 90);
 *   kiln_detections_free(&dets); kiln_image_free(&img);
 */
#ifndef KILN_VISION_H
#define KILN_VISION_H

#include "kiln/kiln.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- images ------------------------------------------------------------------------------------- */

/* Limits checked from the header before any pixel is decoded, so a forged 20000x20000 header costs
 * nothing: at most this many pixels per side and in total (2^28 pixels = 768 MiB of RGB8). */
#define KILN_IMAGE_MAX_SIDE 16384
#define KILN_IMAGE_MAX_PIXELS ((int64_t)1 << 28)

/* An 8-bit RGB image, rows packed (stride = width * 3). The struct owns `data`; loading into an image
 * that already holds pixels reuses its buffer when it is large enough. Zero-initialize before first use. */
typedef struct kiln_image {
  int width, height;
  uint8_t *data;
  size_t capacity; /* bytes allocated in data */
} kiln_image;

/* Decode a JPEG, PNG or BMP (anything stb_image reads) into RGB8. Refuses oversized headers, empty and
 * truncated files with a message naming the file; KILN_ERR_PARSE for bad data, KILN_ERR_IO for I/O. */
kiln_status kiln_image_load(const char *path, kiln_image *img);
kiln_status kiln_image_load_memory(const void *data, size_t size, const char *name, kiln_image *img);
/* Make img a width x height image (contents undefined), reusing its buffer when possible. */
kiln_status kiln_image_resize_buffer(kiln_image *img, int width, int height);
/* Write by extension: .png, .bmp, else JPEG at `quality` (1..100). Written atomically (temp + rename). */
kiln_status kiln_image_write(const kiln_image *img, const char *path, int quality);
void kiln_image_free(kiln_image *img);

/* ---- letterbox preprocessing -------------------------------------------------------------------- */
typedef enum kiln_letterbox_mode {
  KILN_LETTERBOX_CENTER = 0,   /* Ultralytics: padding split evenly on both sides */
  KILN_LETTERBOX_TOP_LEFT = 1, /* image at (0,0), padding right and bottom */
  KILN_LETTERBOX_STRETCH = 2   /* no padding, aspect ratio not kept */
} kiln_letterbox_mode;

/* How an image was placed into the network input: input = image * scale + pad. */
typedef struct kiln_letterbox {
  int src_width, src_height;  /* the original image */
  int dst_width, dst_height;  /* the network input */
  int new_width, new_height;  /* the resized image inside it */
  int pad_left, pad_top;
  float scale_x, scale_y;     /* the gain used to map boxes back (equal unless STRETCH) */
} kiln_letterbox;

typedef struct kiln_preprocess_options {
  int width, height;          /* network input size */
  kiln_letterbox_mode mode;
  int bgr;                    /* 1: channel order B,G,R (models trained on cv2 images without a swap) */
  uint8_t pad_value;          /* 114 as in Ultralytics */
  float scale;                /* multiplier after rounding to 8 bits: 1/255 maps to [0,1] */
} kiln_preprocess_options;

void kiln_preprocess_options_init(kiln_preprocess_options *o, int width, int height);
/* Geometry only (no pixels): where an src_w x src_h image lands in the input. */
kiln_status kiln_letterbox_compute(int src_w, int src_h, int dst_w, int dst_h, kiln_letterbox_mode mode,
                                   kiln_letterbox *out);
/* Letterbox img into a 1x3xHxW fp32 NCHW tensor (dst, dst_len floats). Bilinear with pixel-center
 * alignment and no antialiasing (as cv2.INTER_LINEAR), each value rounded to 8 bits, then * scale. */
kiln_status kiln_preprocess(const kiln_image *img, const kiln_preprocess_options *o, float *dst, size_t dst_len,
                            kiln_letterbox *lb);

/* ---- detections --------------------------------------------------------------------------------- */
typedef struct kiln_detection {
  float x1, y1, x2, y2; /* corners; in input pixels after decoding, in image pixels after unletterbox */
  float score;
  int cls;
} kiln_detection;

/* A growable list; `kiln_detections_reserve` keeps capacity across images. Zero-initialize first. */
typedef struct kiln_detections {
  kiln_detection *items;
  int count, capacity;
} kiln_detections;

kiln_status kiln_detections_reserve(kiln_detections *d, int capacity);
void kiln_detections_free(kiln_detections *d);

/* ---- YOLO output decoding ----------------------------------------------------------------------- */
typedef enum kiln_yolo_format {
  KILN_YOLO_AUTO = 0,   /* pick from the output shapes */
  KILN_YOLO_V8 = 1,     /* [B, 4+nc, N]: cx, cy, w, h, class scores (v8, v11); also [B, N, 4+nc] */
  KILN_YOLO_V5 = 2,     /* [B, N, 5+nc]: cx, cy, w, h, objectness, class scores (score = obj * cls) */
  KILN_YOLO_END2END = 3 /* num [B,1], boxes [B,K,4] x1y1x2y2, scores [B,K], classes [B,K] (EfficientNMS) */
} kiln_yolo_format;

const char *kiln_yolo_format_name(kiln_yolo_format f);

/* One engine output as the decoder sees it (host memory). */
typedef struct kiln_yolo_tensor {
  const char *name;
  const void *data;
  kiln_dtype dtype;   /* float32 for raw heads; float32/int32/int64 for end-to-end outputs */
  int rank;
  int64_t dims[8];
} kiln_yolo_tensor;

typedef struct kiln_yolo_layout {
  kiln_yolo_format format;
  int num_classes;
  int64_t num_boxes;   /* N (raw) or K (end-to-end) */
  int channels_first;  /* raw heads: 1 = [B, C, N], 0 = [B, N, C] */
  int raw, num, boxes, scores, classes; /* indices into the tensor array; -1 unused */
} kiln_yolo_layout;

/* Work out the format from the outputs. `expected_classes` (0: unknown) settles [B,N,84] vs [B,N,85]. */
kiln_status kiln_yolo_layout_detect(const kiln_yolo_tensor *outs, int n_outs, kiln_yolo_format want,
                                    int expected_classes, kiln_yolo_layout *layout);

typedef struct kiln_nms_options {
  float conf_threshold; /* keep candidates with score > this (0.25) */
  float iou_threshold;  /* suppress overlaps with IoU > this (0.45) */
  int max_det;          /* keep at most this many per image (300) */
  int agnostic;         /* 1: one NMS over all classes; 0: per class */
  int max_candidates;   /* cap on boxes entering NMS, the highest-scoring kept (30000) */
} kiln_nms_options;

void kiln_nms_options_init(kiln_nms_options *o);

/* Decode batch item `batch` of the outputs into candidates above the threshold (input pixels). */
kiln_status kiln_yolo_decode(const kiln_yolo_tensor *outs, const kiln_yolo_layout *layout, int64_t batch,
                             const kiln_nms_options *o, kiln_detections *dets);
/* Greedy NMS in place: sort by score, drop boxes overlapping a kept one (same class unless agnostic). */
void kiln_nms(kiln_detections *dets, const kiln_nms_options *o);
/* Map boxes from input pixels back to image pixels (undo pad and scale) and clip them to the image. */
void kiln_detections_unletterbox(kiln_detections *dets, const kiln_letterbox *lb);
float kiln_box_iou(const kiln_detection *a, const kiln_detection *b);

/* ---- class names -------------------------------------------------------------------------------- */
/* The 80 COCO classes in darknet's coco.names spelling ("motorbike", "sofa", "diningtable", ...). */
const char *const *kiln_coco_names(int *count);

typedef struct kiln_names {
  char **names;
  int count;
} kiln_names;
/* One name per line; blank lines at the end and trailing whitespace/CR ignored. */
kiln_status kiln_names_load(const char *path, kiln_names *out);
void kiln_names_free(kiln_names *n);

/* ---- drawing ------------------------------------------------------------------------------------ */
typedef struct kiln_font kiln_font;

/* Load a TrueType font (NULL: DejaVuSans from fonts-dejavu-core). */
kiln_status kiln_font_load(const char *path, kiln_font **out);
void kiln_font_destroy(kiln_font *f);

void kiln_class_color(int cls, uint8_t rgb[3]);
/* Draw each detection's box outline in its class color and a filled label "name 0.93" above it.
 * Line width and text size scale with the image. names[cls] (NULL or short array: "class N"). */
kiln_status kiln_draw_detections(kiln_image *img, const kiln_detections *dets, const char *const *names,
                                 int n_names, kiln_font *font);

#ifdef __cplusplus
}
#endif
#endif /* KILN_VISION_H */
