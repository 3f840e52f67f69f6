/* fuzz_jpeg: libFuzzer harness for JPEG images, through as_image_load_mem
 * (format detection, decoding, EXIF orientation). See docs/FUZZING.md. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "image.h"
#include "image_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    AsImage img;
    AsError err;
    if (as_image_load_mem(data, size, "fuzz.jpeg", &img, &err) == 0)
        as_image_free(&img);
    return 0;
}
