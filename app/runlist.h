/* runlist: the list of input images of segment/export/eval: the output name
 * each maps to (its file name without extension), refused duplicates (two
 * inputs that would write the same outputs), and sharding (--shard I/N,
 * --shard slurm) of the sorted list. */
#ifndef ALIGNSEG_RUNLIST_H
#define ALIGNSEG_RUNLIST_H

#include <stdbool.h>
#include <stddef.h>

/* Two inputs with the same output stem: prints one line naming both and the
 * output they would share (outfmt: e.g. "%s/%s.labels.png" with outdir, stem)
 * and returns -1; 0 when all stems differ. */
int runlist_check_unique(const char *cmd, const char *const *images, int n, const char *outdir,
                         const char *outfmt);

#endif
