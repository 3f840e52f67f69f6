/* fuzz_pth: libFuzzer harness for PyTorch checkpoints (zip + pickle + storages),
 * the path as_checkpoint_load takes for a .pth file. See docs/FUZZING.md. */
#include <stddef.h>
#include <stdint.h>

#include "pth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    AsPth p;
    AsError err;
    if (as_pth_read_mem(data, size, "fuzz.pth", &p, AS_PTH_BORROW, &err) == 0)
        as_pth_free(&p);
    return 0;
}
