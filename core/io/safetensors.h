/* safetensors: read .safetensors files (8-byte little-endian header length,
 * a JSON header naming each tensor's dtype, shape and byte range, then the
 * data). F32, F16, BF16 and F64 tensors become float32 tensors of the map
 * under the names of the file; other dtypes are skipped. Offsets, shapes and
 * sizes are all checked against the file. */
#ifndef ALIGNSEG_SAFETENSORS_H
#define ALIGNSEG_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "tensor.h"

/* True if buf starts like a safetensors file (plausible length + '{'). */
bool as_safetensors_sniff(const uint8_t *buf, size_t len);
/* Add the float tensors of buf[0..len) to out. With borrow, 4-byte aligned
 * F32 data points into buf (which must then outlive the map: register it
 * as a region). name is used in messages. */
int as_safetensors_read_mem(const uint8_t *buf, size_t len, const char *name, bool borrow,
                            AsTensorMap *out, AsError *err);
/* Read a file (mmap'd; the mapping is handed to the map when borrowed). */
int as_safetensors_read(const char *path, AsTensorMap *out, AsError *err);

#endif
