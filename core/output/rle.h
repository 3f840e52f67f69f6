/* rle: COCO run-length encoding of binary masks, as the COCO mask API defines
 * it (facts from its documentation and format): pixels are scanned in
 * column-major order (index x*h + y); counts alternate runs of 0s and 1s and
 * start with a (possibly empty) run of 0s. The compressed string stores each
 * count (minus the count two places earlier, from the fourth count on) as
 * little-endian groups of 5 bits, 0x20 = "more groups follow", sign taken from
 * bit 0x10 of the last group, each group + 48 as one ASCII character.
 * Decoding treats strings as hostile (bad characters, overlong numbers,
 * negative or overflowing runs are errors). */
#ifndef ALIGNSEG_RLE_H
#define ALIGNSEG_RLE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct {
    int h, w;
    size_t m;       /* number of counts */
    uint32_t *cnts; /* m counts, owned */
} AsRle;

/* Encode the mask (labels == value) of a row-major w x h label map. */
int as_rle_encode_labels(const int32_t *labels, int w, int h, int32_t value, AsRle *out,
                         AsError *err);
/* Encode a row-major w x h mask (non-zero = 1). */
int as_rle_encode_mask(const uint8_t *mask, int w, int h, AsRle *out, AsError *err);
/* The compressed string (malloc'd, NUL-terminated), or NULL if out of memory. */
char *as_rle_to_string(const AsRle *r);
/* Parse a compressed string for an h x w mask. The counts must be
 * non-negative and sum to at most h*w. */
int as_rle_from_string(const char *s, int h, int w, AsRle *out, AsError *err);
/* Decode to a row-major w x h mask of 0/1; the counts must sum to h*w. */
int as_rle_decode(const AsRle *r, uint8_t *mask, AsError *err);
/* Number of 1 pixels. */
uint64_t as_rle_area(const AsRle *r);
/* Bounding box [x, y, width, height] computed as the COCO API does: from the
 * first and last pixel of every run of 1s; when such a run continues into a
 * later column the box spans the full height. All zeros for an empty mask. */
void as_rle_bbox(const AsRle *r, double bbox[4]);
void as_rle_free(AsRle *r);

#endif
