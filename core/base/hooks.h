/* hooks: how a long-running core call is told to stop and how it reports
 * progress. Every such call (encoder forward, segmentation, crop encoding,
 * a training run) takes a `const AsHooks *` that may be NULL; any field may
 * be NULL too.
 *
 * - cancel: a flag another thread sets to non-zero; the call checks it
 *   between units of work and returns AS_ERR_CANCELLED.
 * - progress: called from the calling thread (or, for calls that say so,
 *   from a worker thread) with a stage name ("encoder", "decoder", "train",
 *   ...) and done of total units; done == total ends the stage. */
#ifndef ALIGNSEG_HOOKS_H
#define ALIGNSEG_HOOKS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct AsHooks {
    const volatile int *cancel;
    void (*progress)(void *user, const char *stage, long done, long total);
    void *user; /* passed to progress */
} AsHooks;

static inline bool as_hooks_cancelled(const AsHooks *h)
{
    return h && h->cancel && *h->cancel;
}

static inline void as_hooks_progress(const AsHooks *h, const char *stage, long done, long total)
{
    if (h && h->progress)
        h->progress(h->user, stage, done, total);
}

#endif
