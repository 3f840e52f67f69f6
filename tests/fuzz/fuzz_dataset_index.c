/* fuzz_dataset_index: libFuzzer harness for an export folder's index
 * (alignseg-export.json: as_dataset_peek, and what as_dataset_open and the
 * merge of export shards read of an existing dataset) and its
 * coco/annotations.json. See docs/FUZZING.md.
 *
 * An input is the index's bytes, optionally followed by SEP and the bytes of
 * coco/annotations.json. The formats and --shard the check runs with are
 * taken from the index itself when it parses (else all formats, no shard), so
 * the fuzzer gets past those checks to the classes, images and annotations. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dataset.h"
#include "export.h"
#include "json.h"

#define SEP "\n--coco/annotations.json--\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t ilen = size, sl = strlen(SEP);
    const uint8_t *coco = NULL;
    size_t clen = 0;
    for (size_t i = 0; i + sl <= size; i++)
        if (!memcmp(data + i, SEP, sl)) {
            ilen = i;
            coco = data + i + sl;
            clen = size - i - sl;
            break;
        }
    AsError err;
    AsClass tab[AS_DATASET_MAX_CLASS + 1];
    char **names = NULL;
    if (as_dataset_peek_mem(data, ilen, "fuzz/" AS_DATASET_INDEX, tab, &names, &err) == 0)
        as_dataset_free_names(names);

    AsExportOptions o;
    as_export_options_default(&o);
    o.formats = AS_EXPORT_ALL;
    AsJson *j = NULL;
    if (as_json_parse((const char *)data, ilen, "fuzz", &j, &err) == 0) {
        const AsJson *fm = as_json_get(j, "formats"), *sh = as_json_get(j, "shard");
        unsigned f = 0;
        for (size_t i = 0; fm && i < fm->count; i++) {
            unsigned one = 0;
            if (as_export_parse_formats(as_json_str(fm->items[i], ""), &one, &err) == 0)
                f |= one;
        }
        if (f)
            o.formats = f;
        double si = as_json_num(as_json_get(sh, "index"), 0),
               sc = as_json_num(as_json_get(sh, "count"), 0);
        if (si >= 0 && si <= 1e6 && sc >= 0 && sc <= 1e6) {
            o.shard_index = (int)si;
            o.shard_count = (int)sc;
        }
        as_json_free(j);
    }
    as_dataset_check_mem(&o, data, ilen, coco, clen, "fuzz/" AS_DATASET_INDEX, &err);
    return 0;
}
