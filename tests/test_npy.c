/* test_npy: .npy files written by NumPy are read with the right dtype, shape
 * and values; our writer round-trips; hostile headers are refused. */
#include "check.h"
#include "npy.h"

#include <stdint.h>
#include <unistd.h>

static void test_numpy_files(void)
{
    AsError e;
    AsNpy a;
    CHECK(as_npy_read(test_path("npy/arange_f32_2x3.npy"), &a, &e) == 0, "%s", e.msg);
    CHECK(a.dtype == AS_DT_F32 && a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3, "shape");
    for (int i = 0; i < 6 && a.data; i++)
        CHECK(((float *)a.data)[i] == (float)i, "value %d", i);
    as_npy_free(&a);

    CHECK(as_npy_read(test_path("npy/arange_i64_5.npy"), &a, &e) == 0, "%s", e.msg);
    CHECK(a.dtype == AS_DT_I64 && a.ndim == 1 && a.shape[0] == 5, "i64 shape");
    CHECK(a.data && ((int64_t *)a.data)[4] == -12, "i64 value");
    CHECK(as_npy_to_f32(&a, &e) == 0 && ((float *)a.data)[3] == -9.0f, "to f32");
    as_npy_free(&a);

    CHECK(as_npy_read(test_path("npy/u8_3x1x2.npy"), &a, &e) == 0, "%s", e.msg);
    CHECK(a.dtype == AS_DT_U8 && a.ndim == 3 && a.numel == 6, "u8");
    CHECK(a.data && ((uint8_t *)a.data)[5] == 200, "u8 value");
    as_npy_free(&a);

    CHECK(as_npy_read(test_path("npy/f64_scalar.npy"), &a, &e) == 0, "%s", e.msg);
    CHECK(a.ndim == 0 && a.numel == 1 && a.data && ((double *)a.data)[0] == 2.5, "scalar");
    as_npy_free(&a);

    CHECK(as_npy_read(test_path("reference/infer_tiny/labels_full.npy"), &a, &e) == 0, "%s", e.msg);
    CHECK(a.dtype == AS_DT_I32 && a.shape[0] == 64 && a.shape[1] == 64, "reference labels");
    as_npy_free(&a);
}

static void test_roundtrip(void)
{
    AsError e;
    char path[] = "/tmp/alignseg_npy_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    int32_t v[12];
    for (int i = 0; i < 12; i++)
        v[i] = i * 1000 - 5000;
    int64_t shp[3] = { 2, 3, 2 };
    CHECK(as_npy_write(path, AS_DT_I32, 3, shp, v, &e) == 0, "%s", e.msg);
    AsNpy a;
    CHECK(as_npy_read(path, &a, &e) == 0, "%s", e.msg);
    CHECK(a.dtype == AS_DT_I32 && a.ndim == 3 && a.shape[2] == 2, "rt shape");
    CHECK(a.data && memcmp(a.data, v, sizeof v) == 0, "rt data");
    as_npy_free(&a);
    float one = 1.5f;
    int64_t s1[1] = { 1 };
    CHECK(as_npy_write(path, AS_DT_F32, 1, s1, &one, &e) == 0, "%s", e.msg);
    CHECK(as_npy_read(path, &a, &e) == 0 && a.ndim == 1 && a.shape[0] == 1, "1-d tuple");
    as_npy_free(&a);
    unlink(path);
}

static int read_str(const char *hdr, size_t extra, AsError *e)
{
    uint8_t buf[512] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0 };
    size_t hl = strlen(hdr);
    buf[8] = (uint8_t)hl;
    buf[9] = 0;
    memcpy(buf + 10, hdr, hl);
    AsNpy a;
    int rc = as_npy_read_mem(buf, 10 + hl + extra, "hostile.npy", &a, e);
    as_npy_free(&a);
    return rc;
}

static void test_hostile(void)
{
    AsError e;
    AsNpy a;
    CHECK(as_npy_read_mem((const uint8_t *)"", 0, "empty.npy", &a, &e) == AS_ERR_FORMAT, "empty");
    CHECK(strstr(e.msg, "empty.npy") != NULL, "names file: %s", e.msg);
    CHECK(read_str("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }", 8, &e)
              != 0, "huge shape refused");
    CHECK(strstr(e.msg, "truncated") || strstr(e.msg, "large"), "%s", e.msg);
    CHECK(read_str("{'descr': '<f4', 'fortran_order': False, 'shape': (-3, 2), }", 64, &e) != 0,
          "negative dim refused");
    CHECK(read_str("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 64, &e)
              == AS_ERR_UNSUPPORTED, "complex refused");
    CHECK(read_str("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 64, &e)
              == AS_ERR_UNSUPPORTED, "fortran refused");
    CHECK(read_str("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }",
                   64, &e) != 0, "overflowing dim refused");
    CHECK(read_str("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1,1), }", 64,
                   &e) != 0, "too many dims refused");
    CHECK(read_str("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 8, &e)
              == AS_ERR_FORMAT, "short data refused");
    CHECK(read_str("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8, &e) == 0,
          "exact data accepted: %s", e.msg);
    uint8_t bad[12] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0xff, 0xff, 0, 0 };
    CHECK(as_npy_read_mem(bad, sizeof bad, "len.npy", &a, &e) == AS_ERR_FORMAT, "header past end");
    CHECK(as_npy_read("/nonexistent/x.npy", &a, &e) == AS_ERR_IO, "missing file");
}

int main(void)
{
    test_numpy_files();
    test_roundtrip();
    test_hostile();
    return check_report("npy");
}
