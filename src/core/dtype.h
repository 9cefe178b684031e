/* dtype helpers beyond the public kiln_dtype_name/kiln_dtype_size, plus fp16/bf16 conversion. */
#ifndef KILN_CORE_DTYPE_H
#define KILN_CORE_DTYPE_H

#include "kiln/kiln.h"
#include <stdbool.h>
#include <stdint.h>

bool kiln_dtype_is_valid(int dt);   /* a dtype kiln can hold in a tensor (not string/undefined) */
bool kiln_dtype_is_float(kiln_dtype dt); /* f16, bf16, f32, f64 */
bool kiln_dtype_is_int(kiln_dtype dt);   /* signed or unsigned integers (not bool) */
bool kiln_dtype_is_signed(kiln_dtype dt);

float kiln_f16_to_f32(uint16_t h);
uint16_t kiln_f32_to_f16(float f);   /* round to nearest even, handles inf/nan/subnormals */
float kiln_bf16_to_f32(uint16_t b);
uint16_t kiln_f32_to_bf16(float f);  /* round to nearest even */

/* Read element i of a buffer of dtype dt as double / int64 (for shape arithmetic and folding). */
double kiln_dtype_load_f64(kiln_dtype dt, const void *data, int64_t i);
int64_t kiln_dtype_load_i64(kiln_dtype dt, const void *data, int64_t i);
/* Store a double into element i, converting as a C cast would (floats round, bool = != 0). */
void kiln_dtype_store_f64(kiln_dtype dt, void *data, int64_t i, double v);
void kiln_dtype_store_i64(kiln_dtype dt, void *data, int64_t i, int64_t v);

#endif
