/* fuzz_run_state: libFuzzer harness for the run state of a training
 * checkpoint (`alignseg train --resume`): the checks of
 * as_train_state_restore on what the pickle reader makes of the checkpoint's
 * data.pkl (the zip and storages around it are fuzz_pth's). See
 * docs/FUZZING.md. */
#include <stddef.h>
#include <stdint.h>

#include "pickle.h"
#include "run_state.h"
#include "train_options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    AsPValue *root = NULL;
    AsError err;
    if (as_pickle_read(data, size, "fuzz.pth", &root, &err) != 0)
        return 0;
    /* the image count of the run the state was saved in (a resume over
     * another count is the other path through the checks) */
    double n = 0;
    const AsPValue *st = as_pv_get(root, AS_TRAIN_STATE_KEY);
    if (!as_pv_number(as_pv_get(st, "images"), &n) || !(n >= 0 && n <= 1e6))
        n = 4;
    int counts[2] = { (int)n, (int)n + 1 };
    for (int i = 0; i < 2; i++) {
        AsTrainOptions o;
        AsTrainState rs;
        char warn[512];
        as_train_options_default(&o);
        as_train_state_restore(&o, &rs, root, counts[i], "fuzz.pth", warn, sizeof warn, &err);
    }
    as_pv_free(root);
    return 0;
}
