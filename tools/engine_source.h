/* Load an engine from an engine file, or build one on the fly from an .onnx model (run, exec, detect). */
#ifndef KILN_TOOLS_ENGINE_SOURCE_H
#define KILN_TOOLS_ENGINE_SOURCE_H

#include "kiln/kiln.h"

int kiln_path_is_onnx(const char *path);
/* Import an .onnx model and build its engine image in memory (malloc'd; free with kiln_free). */
kiln_status kiln_build_onnx_image(const char *path, const kiln_build_config *cfg, void **img, size_t *size,
                                  double *build_ms);
/* save_path: where to also write a built engine (NULL: do not save). */
kiln_status kiln_engine_open_any(const char *path, const kiln_build_config *cfg, const char *save_path,
                                 kiln_engine **out, double *build_ms);

#endif
