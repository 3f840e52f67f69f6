/* test_error: the error type formats, prefixes and names statuses; a failing
 * call returns the status of what failed whether or not it is given an
 * AsError to fill. */
#include <limits.h>
#include <stdint.h>

#include "check.h"
#include "error.h"
#include "export.h"
#include "tensor.h"

static bool is_block(const char *name)
{
    return !strncmp(name, "blocks.", 7);
}

/* The status of a failure is the one of the check that failed, also when the
 * caller passes no AsError (it used to be guessed at the call site then). */
static void test_codes_without_err(void)
{
    /* a folder name longer than PATH_MAX: an argument error, not an I/O one */
    const size_t n = PATH_MAX + 16;
    char *dir = malloc(n + 1);
    CHECK(dir != NULL, "malloc");
    if (!dir)
        return;
    memset(dir, 'd', n);
    dir[n] = '\0';
    AsError e;
    int with = as_export_mkdirs(dir, &e);
    CHECK(with == AS_ERR_ARG, "long folder: status %d", with);
    int without = as_export_mkdirs(dir, NULL);
    CHECK(without == with, "long folder without an AsError: status %d, with one %d", without,
          with);
    free(dir);
}

int main(void)
{
    AsError e;
    as_error_clear(&e);
    CHECK(e.code == AS_OK && e.msg[0] == '\0', "cleared");
    int rc = as_error_set(&e, AS_ERR_FORMAT, "tensor '%s' is %d bytes short", "x", 12);
    CHECK(rc == AS_ERR_FORMAT, "returns code");
    CHECK(!strcmp(e.msg, "tensor 'x' is 12 bytes short"), "msg '%s'", e.msg);
    as_error_prefix(&e, "%s: ", "model.pth");
    CHECK(!strcmp(e.msg, "model.pth: tensor 'x' is 12 bytes short"), "prefixed '%s'", e.msg);
    CHECK(!strcmp(as_status_name(AS_ERR_SHAPE), "shape mismatch"), "name");
    CHECK(as_error_set(NULL, AS_ERR_IO, "x") == AS_ERR_IO, "NULL err ok");

    AsTensorMap m;
    as_tmap_init(&m);
    int64_t shp[2] = { 2, 3 };
    float *d = calloc(6, sizeof *d);
    CHECK(as_tmap_add(&m, "a", 2, shp, d, false, &e) == 0, "add");
    float *d2 = calloc(6, sizeof *d2);
    CHECK(as_tmap_add(&m, "a", 2, shp, d2, false, &e) == AS_ERR_FORMAT, "duplicate refused");
    AsTensor *t = as_tmap_find(&m, "a");
    CHECK(t && t->numel == 6, "find");
    char buf[64];
    CHECK(!strcmp(as_shape_str(2, shp, buf, sizeof buf), "(2, 3)"), "shape str %s", buf);
    int64_t bad[1] = { -4 };
    CHECK(as_tmap_add(&m, "b", 1, bad, NULL, true, &e) == AS_ERR_FORMAT, "negative size refused");
    CHECK(as_tmap_remove(&m, "a") && m.count == 0, "remove");
    as_tmap_free(&m);

    /* take: only accepted tensors move; a second take moves nothing twice */
    AsTensorMap src, dst;
    as_tmap_init(&src);
    as_tmap_init(&dst);
    as_tmap_add(&src, "blocks.0.w", 2, shp, calloc(6, sizeof(float)), false, &e);
    as_tmap_add(&src, "clsQueries.weight", 2, shp, calloc(6, sizeof(float)), false, &e);
    CHECK(as_tmap_take(&dst, &src, is_block, &e) == 0 && dst.count == 1, "take filtered");
    CHECK(as_tmap_find(&dst, "blocks.0.w") && !as_tmap_find(&dst, "clsQueries.weight"), "right one");
    CHECK(as_tmap_take(&dst, &src, NULL, &e) == 0 && dst.count == 2, "take the rest only");
    as_tmap_free(&src);
    as_tmap_free(&dst);
    test_codes_without_err();
    return check_report("error");
}
