/* api: what the modules of core/api share behind the opaque types of the
 * public headers (include/alignseg/): a model is an AsModel, a result is an
 * AsResult with its photo and its current labels. Not installed. */
#ifndef ALIGNSEG_API_H
#define ALIGNSEG_API_H

#include <stdint.h>

#include <alignseg/alignseg.h>

#include "image.h"
#include "model.h"
#include "segment.h"

struct AlignsegModel {
    AsModel *m;
};

struct AlignsegResult {
    AsResult r;
    AsImage img;      /* the photo (for overlays), owned */
    int32_t *labels;  /* img.w * img.h, the current labels */
    int32_t *groups;  /* r.q, prototype -> group */
    int ngroups;
    int background;   /* labels may hold ALIGNSEG_LABEL_BACKGROUND */
};

#endif
