/* npy: read and write NumPy .npy files (format 1.0/2.0/3.0, little-endian,
 * C order). Used for --dump output and for reference test data. Reading is
 * bounds-checked: a hostile header is an error, never a crash. */
#ifndef ALIGNSEG_NPY_H
#define ALIGNSEG_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum { AS_DT_F32, AS_DT_F64, AS_DT_I32, AS_DT_I64, AS_DT_U8, AS_DT_BOOL } AsDtype;

typedef struct {
    AsDtype dtype;
    int ndim;
    int64_t shape[8];
    int64_t numel;
    void *data; /* numel elements of dtype, owned */
} AsNpy;

size_t as_dtype_size(AsDtype dt);
int as_npy_read(const char *path, AsNpy *out, AsError *err);
int as_npy_read_mem(const uint8_t *buf, size_t len, const char *name, AsNpy *out, AsError *err);
/* Convert in place to float32 (from any numeric dtype). */
int as_npy_to_f32(AsNpy *a, AsError *err);
/* Written atomically (atomic.h): a failed write keeps the previous file. */
int as_npy_write(const char *path, AsDtype dtype, int ndim, const int64_t *shape,
                 const void *data, AsError *err);
/* The same file in memory (*out malloc'ed); name is for messages. */
int as_npy_encode(const char *name, AsDtype dtype, int ndim, const int64_t *shape,
                  const void *data, uint8_t **out, size_t *outlen, AsError *err);
void as_npy_free(AsNpy *a);

#endif
