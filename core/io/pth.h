/* pth: PyTorch checkpoint files (torch.save zip format, PyTorch >= 1.6).
 * Reading: the zip's <archive>/data.pkl is parsed by pickle.h into a value
 * tree, then every tensor's storage (<archive>/data/<key>) is checked against
 * its offset/shape/stride and gathered into contiguous data: float16,
 * bfloat16 and float64 become float32 (AsPTensor.f32), integer and bool
 * storages become int64 (AsPTensor.i64). Legacy (pre-1.6) files are refused
 * with advice on how to re-save them.
 * Writing: a zip with stored entries and 64-byte aligned data, as torch.save
 * writes, that torch.load reads back. */
#ifndef ALIGNSEG_PTH_H
#define ALIGNSEG_PTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "pickle.h"

/* A loaded checkpoint: the value tree and (if borrowing) the file mapping
 * that the tree's borrowed tensors point into. */
typedef struct {
    AsPValue *root;
    void *map;      /* file mapping owned by this struct (may be NULL) */
    size_t map_len;
} AsPth;

enum {
    /* float32 tensors that are contiguous and 4-byte aligned in the buffer
     * point into it (AsPTensor.borrowed) instead of being copied. */
    AS_PTH_BORROW = 1u << 0
};

/* Read a .pth file (mmap'd). With AS_PTH_BORROW, f32 data may point into the
 * mapping, which lives until as_pth_free. */
int as_pth_read(const char *path, AsPth *out, unsigned flags, AsError *err);
/* Read from memory; name is used in messages. With AS_PTH_BORROW the buffer
 * must outlive the tree. out->map is left NULL. */
int as_pth_read_mem(const uint8_t *buf, size_t len, const char *name, AsPth *out,
                    unsigned flags, AsError *err);
void as_pth_free(AsPth *p);

/* True if buf looks like a legacy (pre-1.6, non-zip) torch file. */
bool as_pth_is_legacy(const uint8_t *buf, size_t len);

/* Write root (typically a dict) as a torch.save zip to path. archive_name is
 * the top folder inside the zip (torch uses the file's base name without
 * extension, e.g. "alignseg"); NULL derives it from path. Tensors must have
 * their data set (f32 or i64, contiguous). The file is written atomically
 * (atomic.h: temporary, fsync, rename), so a crash or a full disk never
 * leaves a half file and keeps the previous checkpoint. */
int as_pth_write(const char *path, const char *archive_name, const AsPValue *root,
                 AsError *err);
/* Same, into memory (*out malloc'd). */
int as_pth_write_mem(const char *archive_name, const AsPValue *root, uint8_t **out,
                     size_t *out_len, AsError *err);

/* Convert n elements of dtype dt at src (little-endian, possibly unaligned)
 * to float32 / int64. */
void as_pdtype_to_f32(AsPDtype dt, const uint8_t *src, size_t n, float *dst);
void as_pdtype_to_i64(AsPDtype dt, const uint8_t *src, size_t n, int64_t *dst);

#endif
