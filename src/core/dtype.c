#include "core/dtype.h"

#include <math.h>
#include <string.h>

const char *kiln_dtype_name(kiln_dtype dt) {
  switch (dt) {
  case KILN_DTYPE_FLOAT32: return "float32";
  case KILN_DTYPE_UINT8: return "uint8";
  case KILN_DTYPE_INT8: return "int8";
  case KILN_DTYPE_UINT16: return "uint16";
  case KILN_DTYPE_INT16: return "int16";
  case KILN_DTYPE_INT32: return "int32";
  case KILN_DTYPE_INT64: return "int64";
  case KILN_DTYPE_STRING: return "string";
  case KILN_DTYPE_BOOL: return "bool";
  case KILN_DTYPE_FLOAT16: return "float16";
  case KILN_DTYPE_FLOAT64: return "float64";
  case KILN_DTYPE_UINT32: return "uint32";
  case KILN_DTYPE_UINT64: return "uint64";
  case KILN_DTYPE_BFLOAT16: return "bfloat16";
  case KILN_DTYPE_UNDEFINED: return "undefined";
  }
  return "?";
}

size_t kiln_dtype_size(kiln_dtype dt) {
  switch (dt) {
  case KILN_DTYPE_FLOAT32: case KILN_DTYPE_INT32: case KILN_DTYPE_UINT32: return 4;
  case KILN_DTYPE_UINT8: case KILN_DTYPE_INT8: case KILN_DTYPE_BOOL: return 1;
  case KILN_DTYPE_UINT16: case KILN_DTYPE_INT16: case KILN_DTYPE_FLOAT16: case KILN_DTYPE_BFLOAT16: return 2;
  case KILN_DTYPE_INT64: case KILN_DTYPE_FLOAT64: case KILN_DTYPE_UINT64: return 8;
  case KILN_DTYPE_STRING: case KILN_DTYPE_UNDEFINED: return 0;
  }
  return 0;
}

bool kiln_dtype_is_valid(int dt) {
  return dt != KILN_DTYPE_STRING && kiln_dtype_size((kiln_dtype)dt) != 0;
}

bool kiln_dtype_is_float(kiln_dtype dt) {
  return dt == KILN_DTYPE_FLOAT32 || dt == KILN_DTYPE_FLOAT16 || dt == KILN_DTYPE_BFLOAT16 ||
         dt == KILN_DTYPE_FLOAT64;
}

bool kiln_dtype_is_int(kiln_dtype dt) {
  switch (dt) {
  case KILN_DTYPE_UINT8: case KILN_DTYPE_INT8: case KILN_DTYPE_UINT16: case KILN_DTYPE_INT16:
  case KILN_DTYPE_INT32: case KILN_DTYPE_INT64: case KILN_DTYPE_UINT32: case KILN_DTYPE_UINT64: return true;
  default: return false;
  }
}

bool kiln_dtype_is_signed(kiln_dtype dt) {
  return dt == KILN_DTYPE_INT8 || dt == KILN_DTYPE_INT16 || dt == KILN_DTYPE_INT32 || dt == KILN_DTYPE_INT64 ||
         kiln_dtype_is_float(dt);
}

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float kiln_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0) {
    if (mant == 0) return bits_f32(sign);
    /* subnormal: value = mant * 2^-24 */
    float v = (float)mant * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  if (exp == 31) return bits_f32(sign | 0x7f800000u | (mant << 13));
  return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t kiln_f32_to_f16(float f) {
  uint32_t u = f32_bits(f);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
  uint32_t abs = u & 0x7fffffffu;
  if (abs >= 0x7f800000u) return sign | (abs > 0x7f800000u ? 0x7e00 : 0x7c00); /* nan / inf */
  if (abs >= 0x477ff000u) return sign | 0x7c00;  /* rounds to >= 65520: inf */
  if (abs < 0x38800000u) {                       /* below 2^-14: subnormal or zero */
    float a = bits_f32(abs);
    /* scale so the subnormal step (2^-24) is 1, then round to nearest even */
    float scaled = a * 16777216.0f;
    uint32_t m = (uint32_t)nearbyintf(scaled);
    return sign | (uint16_t)m;
  }
  uint32_t mant = abs & 0x7fffff, exp = (abs >> 23) - 112;
  uint32_t half = (exp << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
  return sign | (uint16_t)half;
}

float kiln_bf16_to_f32(uint16_t b) { return bits_f32((uint32_t)b << 16); }

uint16_t kiln_f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fff + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}

double kiln_dtype_load_f64(kiln_dtype dt, const void *data, int64_t i) {
  switch (dt) {
  case KILN_DTYPE_FLOAT32: return ((const float *)data)[i];
  case KILN_DTYPE_FLOAT64: return ((const double *)data)[i];
  case KILN_DTYPE_FLOAT16: return kiln_f16_to_f32(((const uint16_t *)data)[i]);
  case KILN_DTYPE_BFLOAT16: return kiln_bf16_to_f32(((const uint16_t *)data)[i]);
  case KILN_DTYPE_UINT8: return ((const uint8_t *)data)[i];
  case KILN_DTYPE_INT8: return ((const int8_t *)data)[i];
  case KILN_DTYPE_UINT16: return ((const uint16_t *)data)[i];
  case KILN_DTYPE_INT16: return ((const int16_t *)data)[i];
  case KILN_DTYPE_INT32: return ((const int32_t *)data)[i];
  case KILN_DTYPE_INT64: return (double)((const int64_t *)data)[i];
  case KILN_DTYPE_UINT32: return ((const uint32_t *)data)[i];
  case KILN_DTYPE_UINT64: return (double)((const uint64_t *)data)[i];
  case KILN_DTYPE_BOOL: return ((const uint8_t *)data)[i] != 0;
  default: return 0;
  }
}

int64_t kiln_dtype_load_i64(kiln_dtype dt, const void *data, int64_t i) {
  switch (dt) {
  case KILN_DTYPE_INT64: return ((const int64_t *)data)[i];
  case KILN_DTYPE_INT32: return ((const int32_t *)data)[i];
  case KILN_DTYPE_UINT64: return (int64_t)((const uint64_t *)data)[i];
  case KILN_DTYPE_UINT32: return ((const uint32_t *)data)[i];
  case KILN_DTYPE_INT16: return ((const int16_t *)data)[i];
  case KILN_DTYPE_UINT16: return ((const uint16_t *)data)[i];
  case KILN_DTYPE_INT8: return ((const int8_t *)data)[i];
  case KILN_DTYPE_UINT8: return ((const uint8_t *)data)[i];
  case KILN_DTYPE_BOOL: return ((const uint8_t *)data)[i] != 0;
  default: {
    double v = kiln_dtype_load_f64(dt, data, i);
    if (!(v == v)) return 0;
    if (v >= 9.2e18) return INT64_MAX;
    if (v <= -9.2e18) return INT64_MIN;
    return (int64_t)v;
  }
  }
}

void kiln_dtype_store_f64(kiln_dtype dt, void *data, int64_t i, double v) {
  switch (dt) {
  case KILN_DTYPE_FLOAT32: ((float *)data)[i] = (float)v; return;
  case KILN_DTYPE_FLOAT64: ((double *)data)[i] = v; return;
  case KILN_DTYPE_FLOAT16: ((uint16_t *)data)[i] = kiln_f32_to_f16((float)v); return;
  case KILN_DTYPE_BFLOAT16: ((uint16_t *)data)[i] = kiln_f32_to_bf16((float)v); return;
  case KILN_DTYPE_BOOL: ((uint8_t *)data)[i] = v != 0; return;
  default: break;
  }
  int64_t iv;
  if (!(v == v)) iv = 0;
  else if (v >= 9.2e18) iv = INT64_MAX;
  else if (v <= -9.2e18) iv = INT64_MIN;
  else iv = (int64_t)v;
  kiln_dtype_store_i64(dt, data, i, iv);
}

void kiln_dtype_store_i64(kiln_dtype dt, void *data, int64_t i, int64_t v) {
  switch (dt) {
  case KILN_DTYPE_INT64: ((int64_t *)data)[i] = v; return;
  case KILN_DTYPE_INT32: ((int32_t *)data)[i] = (int32_t)v; return;
  case KILN_DTYPE_UINT64: ((uint64_t *)data)[i] = (uint64_t)v; return;
  case KILN_DTYPE_UINT32: ((uint32_t *)data)[i] = (uint32_t)v; return;
  case KILN_DTYPE_INT16: ((int16_t *)data)[i] = (int16_t)v; return;
  case KILN_DTYPE_UINT16: ((uint16_t *)data)[i] = (uint16_t)v; return;
  case KILN_DTYPE_INT8: ((int8_t *)data)[i] = (int8_t)v; return;
  case KILN_DTYPE_UINT8: ((uint8_t *)data)[i] = (uint8_t)v; return;
  case KILN_DTYPE_BOOL: ((uint8_t *)data)[i] = v != 0; return;
  default: kiln_dtype_store_f64(dt, data, i, (double)v); return;
  }
}
