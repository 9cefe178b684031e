/* Internal status helpers. A kiln_status is NULL on success or an owned heap error object. */
#ifndef KILN_CORE_STATUS_H
#define KILN_CORE_STATUS_H

#include "kiln/kiln.h"
#include <stdarg.h>

#if defined(__GNUC__)
#define KILN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define KILN_PRINTF(a, b)
#endif

/* Make an error with a printf-style message. Never returns NULL (falls back to a static OOM error). */
kiln_status kiln_error(kiln_status_code code, const char *fmt, ...) KILN_PRINTF(2, 3);
kiln_status kiln_error_v(kiln_status_code code, const char *fmt, va_list ap);
/* Prefix context to an existing error ("node 'x' (Conv): " + old message). Passes NULL through. */
kiln_status kiln_error_prefix(kiln_status st, const char *fmt, ...) KILN_PRINTF(2, 3);

#define KILN_TRY(expr)                                                                               \
  do {                                                                                               \
    kiln_status kiln_try_st_ = (expr);                                                               \
    if (kiln_try_st_) return kiln_try_st_;                                                           \
  } while (0)

#define KILN_CHECK_ALLOC(ptr)                                                                        \
  do {                                                                                               \
    if (!(ptr)) return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory (%s:%d)", __FILE__, __LINE__); \
  } while (0)

#endif
