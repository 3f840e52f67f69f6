/* shards: join the export folders of a sharded `alignseg export --shard I/N`
 * (dataset.h) into one dataset, identical byte for byte to what a single
 * export of the same inputs writes (image ids 1..n in shard order, then by
 * id within a shard; annotation ids derived from them).
 *
 * The shard format: each folder's alignseg-export.json has "shard": {"index":
 * I, "count": N}; the N folders must all be there once, and agree on the
 * generator, model, "settings" (the options that change labels), formats,
 * untrained flag and class table (same id, same name and colour), else the
 * merge is refused with a message naming the folder. Label maps are read
 * back from each shard's VOC PNGs (so shards must include the voc format);
 * labelme imagePath is recomputed relative to the merged folder. */
#ifndef ALIGNSEG_SHARDS_H
#define ALIGNSEG_SHARDS_H

#include "error.h"

/* out must not hold a dataset yet (it is created). */
int as_shards_merge(const char *out, const char *const *dirs, int n, AsError *err);

#endif
