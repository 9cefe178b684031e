/* Whole-file reading and atomic writing (never leave a half-written file behind). */
#ifndef KILN_CORE_FILE_H
#define KILN_CORE_FILE_H

#include "core/status.h"
#include <stddef.h>

/* Read a whole regular file into a malloc'd buffer. Refuses directories and files > max_bytes. */
kiln_status kiln_file_read(const char *path, size_t max_bytes, void **out, size_t *len);
/* Write via a temp file in the same folder, fsync, then rename over `path`. */
kiln_status kiln_file_write_atomic(const char *path, const void *data, size_t len);
/* The directory part of path ("." if none), malloc'd. */
char *kiln_path_dirname(const char *path);

#endif
