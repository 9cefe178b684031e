/* logic family: comparisons, boolean logic, IsNaN/IsInf, Where. Only IsInf has parameters. */
#ifndef KILN_IR_OPS_LOGIC_H
#define KILN_IR_OPS_LOGIC_H

#include <stdbool.h>

typedef struct kiln_logic_params {
  bool detect_positive, detect_negative; /* IsInf: which infinities count (both by default) */
} kiln_logic_params;

#endif
