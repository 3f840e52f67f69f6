/* fuzz_png: libFuzzer harness for PNG images, through as_image_load_mem
 * (format detection, decoding, EXIF orientation) and the label-map
 * reader as_png_decode_u8. See docs/FUZZING.md. */
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
    if (as_image_load_mem(data, size, "fuzz.png", &img, &err) == 0)
        as_image_free(&img);
    uint8_t *u8 = NULL;
    int w, h;
    if (as_png_decode_u8(data, size, "fuzz.png", &u8, &w, &h, &err) == 0)
        free(u8);
    return 0;
}
