/* fuzz_npy: libFuzzer harness for NumPy .npy files. See docs/FUZZING.md. */
#include <stddef.h>
#include <stdint.h>

#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    AsNpy a;
    AsError err;
    if (as_npy_read_mem(data, size, "fuzz.npy", &a, &err) == 0) {
        as_npy_to_f32(&a, &err);
        as_npy_free(&a);
    }
    return 0;
}
