/* fuzz_json: libFuzzer harness for the JSON parser. See docs/FUZZING.md. */
#include <stddef.h>
#include <stdint.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    AsJson *j = NULL;
    AsError err;
    if (as_json_parse((const char *)data, size, "fuzz.json", &j, &err) == 0)
        as_json_free(j);
    return 0;
}
