/* fuzz_evalshard: libFuzzer harness for eval shard files
 * (alignseg-eval-shard.json, read by `alignseg merge`): the reader, then what
 * the merge does with a shard it accepted (every image's confusion added,
 * the scores of the shard's protocol). See docs/FUZZING.md. */
#include <stddef.h>
#include <stdint.h>

#include "eval.h"
#include "evalshard.h"

/* The scores' Hungarian matching is cubic in the cluster count (up to 4096
 * in a valid shard, slow by design, not a reader's fault): scored only below
 * this count so an input's time is the reader's. */
#define SCORE_MAX_CLUSTERS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    AsEvalShard s;
    AsError err;
    if (as_eval_shard_read_mem(data, size, "fuzz/alignseg-eval-shard.json", &s, &err) != 0)
        return 0;
    as_eval_shard_failed(&s);
    as_eval_shard_differs(&s, &s);
    AsEval e;
    if (as_eval_init(&e, s.clusters, s.ignore, &err) == 0) {
        int rc = 0;
        for (size_t k = 0; k < s.nimages && !rc; k++)
            if (!s.images[k].error)
                rc = as_eval_add_confusion(&e, &s.images[k].conf, &err);
        AsEvalReport r;
        if (!rc && s.clusters <= SCORE_MAX_CLUSTERS && as_eval_report(&e, s.protocol, &r, &err) == 0)
            as_eval_report_free(&r);
        as_eval_free(&e);
    }
    as_eval_shard_free(&s);
    return 0;
}
