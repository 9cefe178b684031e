/* Class names: COCO's 80 by default (darknet's coco.names spelling, which the reference results and most
 * YOLO tooling print), or one name per line from a file. */
#include "kiln/vision.h"

#include "core/file.h"
#include "core/status.h"

#include <stdlib.h>
#include <string.h>

static const char *const coco_names[80] = {
    "person", "bicycle", "car", "motorbike", "aeroplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "sofa",
    "pottedplant", "bed", "diningtable", "toilet", "tvmonitor", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush"};

const char *const *kiln_coco_names(int *count) {
  if (count) *count = 80;
  return coco_names;
}

void kiln_names_free(kiln_names *n) {
  if (!n) return;
  for (int i = 0; i < n->count; i++) free(n->names[i]);
  free(n->names);
  n->names = NULL;
  n->count = 0;
}

kiln_status kiln_names_load(const char *path, kiln_names *out) {
  out->names = NULL;
  out->count = 0;
  char *buf;
  size_t len;
  KILN_TRY(kiln_file_read(path, (size_t)64 << 20, (void **)&buf, &len));
  size_t lines = 1;
  for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
  char **names = calloc(lines, sizeof *names);
  if (!names) {
    free(buf);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory reading '%s'", path);
  }
  int n = 0, last_nonempty = 0;
  size_t start = 0;
  kiln_status st = NULL;
  for (size_t i = 0; i <= len && !st; i++) {
    if (i < len && buf[i] != '\n') continue;
    size_t e = i;
    while (e > start && (buf[e - 1] == '\r' || buf[e - 1] == ' ' || buf[e - 1] == '\t')) e--;
    if (memchr(buf + start, 0, e - start)) st = kiln_error(KILN_ERR_PARSE, "'%s': names file contains NUL bytes", path);
    else if (!(names[n] = malloc(e - start + 1))) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
    else {
      memcpy(names[n], buf + start, e - start);
      names[n][e - start] = 0;
      if (e > start) last_nonempty = n + 1;
      n++;
    }
    start = i + 1;
  }
  free(buf);
  /* Trailing blank lines are not classes (files usually end with a newline). */
  for (int i = last_nonempty; i < n; i++) free(names[i]);
  out->names = names;
  out->count = last_nonempty;
  if (!st && out->count == 0) st = kiln_error(KILN_ERR_PARSE, "'%s' lists no class names", path);
  if (st) kiln_names_free(out);
  return st;
}
