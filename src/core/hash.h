/* 64-bit hashing for engine checksums and cache keys (not cryptographic). */
#ifndef KILN_CORE_HASH_H
#define KILN_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Hash `len` bytes, continuing from `seed` (use 0 to start). Four independent lanes over 32-byte
 * blocks keep it near memory speed, so checking a 13 MB engine costs a few milliseconds. */
uint64_t kiln_hash64(const void *data, size_t len, uint64_t seed);

#endif
