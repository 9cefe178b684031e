#include "engine_source.h"

#include "core/file.h"
#include "tool_util.h"

#include <stdlib.h>
#include <string.h>

int kiln_path_is_onnx(const char *path) {
  size_t n = strlen(path);
  return n >= 5 && !strcmp(path + n - 5, ".onnx");
}

kiln_status kiln_build_onnx_image(const char *path, const kiln_build_config *cfg, void **img, size_t *size,
                                  double *build_ms) {
  double t0 = kiln_now_ms();
  kiln_network *net;
  KILN_TRY(kiln_network_load_onnx(path, &net));
  kiln_status st = kiln_build(net, cfg, img, size);
  kiln_network_destroy(net);
  if (build_ms) *build_ms = kiln_now_ms() - t0;
  return st;
}

kiln_status kiln_engine_open_any(const char *path, const kiln_build_config *cfg, const char *save_path,
                                 kiln_engine **out, double *build_ms) {
  *out = NULL;
  if (build_ms) *build_ms = 0;
  if (!kiln_path_is_onnx(path)) return kiln_engine_load_file(path, out);
  void *img;
  size_t size;
  KILN_TRY(kiln_build_onnx_image(path, cfg, &img, &size, build_ms));
  kiln_status st = NULL;
  if (save_path) st = kiln_file_write_atomic(save_path, img, size);
  if (!st) st = kiln_engine_load_memory(img, size, out);
  free(img);
  return st;
}
