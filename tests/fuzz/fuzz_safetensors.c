/* fuzz_safetensors: libFuzzer harness for .safetensors files (JSON header +
 * data). See docs/FUZZING.md. */
#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    AsTensorMap m;
    AsError err;
    as_tmap_init(&m);
    as_safetensors_read_mem(data, size, "fuzz.safetensors", false, &m, &err);
    as_tmap_free(&m);
    return 0;
}
