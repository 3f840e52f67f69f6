/* fuzz_pickle: libFuzzer harness for the pickle reader alone (fuzz_pth has to
 * get through a zip first). See docs/FUZZING.md. */
#include <stddef.h>
#include <stdint.h>

#include "pickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    AsPValue *v = NULL;
    AsError err;
    if (as_pickle_read(data, size, "fuzz.pkl", &v, &err) == 0)
        as_pv_free(v);
    return 0;
}
