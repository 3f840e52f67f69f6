/* fuzz_evalshard: libFuzzer harness for eval shard files
 * (alignseg-eval-shard.json, read by `alignseg merge`). See docs/FUZZING.md. */
#include <stddef.h>
#include <stdint.h>

#include "evalshard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    AsEvalShard s;
    AsError err;
    if (as_eval_shard_read_mem(data, size, "fuzz/alignseg-eval-shard.json", &s, &err) == 0) {
        as_eval_shard_failed(&s);
        as_eval_shard_differs(&s, &s);
        as_eval_shard_free(&s);
    }
    return 0;
}
