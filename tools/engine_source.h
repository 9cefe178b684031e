/* Load an engine from an engine file, or build one on the fly from an .onnx model (run, exec, detect). */
#ifndef KILN_TOOLS_ENGINE_SOURCE_H
#define KILN_TOOLS_ENGINE_SOURCE_H

#include "kiln/kiln.h"

int kiln_path_is_onnx(const char *path);
/* save_path: where to also write a built engine (NULL: do not save). */
kiln_status kiln_engine_open_any(const char *path, const kiln_build_config *cfg, const char *save_path,
                                 kiln_engine **out, double *build_ms);

#endif
