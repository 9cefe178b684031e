/*
 * kiln — an inference compiler and runtime for ONNX models (CPU and NVIDIA GPU).
 *
 * Public C API. Every fallible call returns a kiln_status: NULL means success; anything else is an
 * error object whose code and message the caller reads and then frees with kiln_status_destroy().
 *
 * The flow (the builder/engine/context half arrives with the engine work; see docs/ARCHITECTURE.md):
 *
 *   kiln_network *net;
 *   kiln_status st = kiln_network_load_onnx("yolov8n.onnx", &net);
 *   if (st) { fprintf(stderr, "%s\n", kiln_status_message(st)); kiln_status_destroy(st); return 2; }
 *   st = kiln_network_optimize(net);            // fold constants, clean up, fuse, sort
 *   ... inspect inputs/outputs ...
 *   kiln_network_destroy(net);
 */
#ifndef KILN_KILN_H
#define KILN_KILN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status -------------------------------------------------------------------------------------- */
typedef enum kiln_status_code {
  KILN_OK = 0,
  KILN_ERR_INVALID_ARGUMENT, /* a caller passed something unusable (bad flag, NULL, bad batch) */
  KILN_ERR_PARSE,            /* a file is malformed (bad protobuf, truncated data, bad engine) */
  KILN_ERR_UNSUPPORTED,      /* valid input that kiln does not handle (op, attribute, dtype) */
  KILN_ERR_SHAPE,            /* shapes or types that do not fit together */
  KILN_ERR_IO,               /* reading or writing a file failed */
  KILN_ERR_OUT_OF_MEMORY,
  KILN_ERR_DEVICE,           /* the target device is missing or does not match */
  KILN_ERR_INTERNAL          /* a bug in kiln */
} kiln_status_code;

typedef struct kiln_error *kiln_status; /* NULL == success */

kiln_status_code kiln_status_get_code(kiln_status st);
const char *kiln_status_message(kiln_status st); /* "" for success; valid until destroyed */
const char *kiln_status_code_name(kiln_status_code code);
void kiln_status_destroy(kiln_status st);

const char *kiln_version(void);

/* ---- dtypes (numbering follows ONNX TensorProto.DataType so files and tools agree) ---------------- */
typedef enum kiln_dtype {
  KILN_DTYPE_UNDEFINED = 0,
  KILN_DTYPE_FLOAT32 = 1,
  KILN_DTYPE_UINT8 = 2,
  KILN_DTYPE_INT8 = 3,
  KILN_DTYPE_UINT16 = 4,
  KILN_DTYPE_INT16 = 5,
  KILN_DTYPE_INT32 = 6,
  KILN_DTYPE_INT64 = 7,
  KILN_DTYPE_STRING = 8,
  KILN_DTYPE_BOOL = 9,
  KILN_DTYPE_FLOAT16 = 10,
  KILN_DTYPE_FLOAT64 = 11,
  KILN_DTYPE_UINT32 = 12,
  KILN_DTYPE_UINT64 = 13,
  KILN_DTYPE_BFLOAT16 = 16
} kiln_dtype;

const char *kiln_dtype_name(kiln_dtype dt); /* "float32", "int64", ... ("?" if unknown) */
size_t kiln_dtype_size(kiln_dtype dt);      /* bytes per element; 0 for undefined/string */

/* ---- network: an ONNX model imported into kiln's graph IR --------------------------------------- */
typedef struct kiln_network kiln_network;

kiln_status kiln_network_load_onnx(const char *path, kiln_network **out);
void kiln_network_destroy(kiln_network *net);

#ifdef __cplusplus
}
#endif
#endif /* KILN_KILN_H */
