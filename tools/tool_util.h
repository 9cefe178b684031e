/* Small helpers shared by the subcommands: flag parsing, error reporting, timing, raw file I/O. */
#ifndef KILN_TOOLS_TOOL_UTIL_H
#define KILN_TOOLS_TOOL_UTIL_H

#include "kiln/kiln.h"

#include <stddef.h>

/* Matches "--name VALUE" and "--name=VALUE" at argv[*i]; advances *i; *value NULL if it is missing. */
int kiln_flag_value(int argc, char **argv, int *i, const char *name, const char **value);
int kiln_parse_int(const char *s, int lo, int hi, int *out); /* 0 on success */
int kiln_parse_device(const char *s, kiln_device_kind *out);
/* Print "kiln <cmd>: <message>" and return the exit status for the error (2 bad input, 1 otherwise). */
int kiln_report(const char *cmd, kiln_status st);
int kiln_usage_error(const char *cmd, const char *msg);
double kiln_now_ms(void);

#endif
