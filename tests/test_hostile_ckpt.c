/* test_hostile_ckpt: malformed and malicious checkpoints. Each bad file is
 * generated here (into a temporary directory or memory) and must give an
 * error with a message naming the problem: never a crash, a hang, a leak or
 * the execution of anything (run under ASan/UBSan to check the first three). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"
#include "checkpoint.h"
#include "json.h"
#include "pickle.h"
#include "pth.h"
#include "safetensors.h"
#include "zip.h"

/* ---- a tiny pickle builder ---- */
typedef struct {
    uint8_t *b;
    size_t n, cap;
} Pb;

static void pb_raw(Pb *p, const void *d, size_t n)
{
    if (p->n + n > p->cap) {
        p->cap = (p->n + n) * 2 + 64;
        p->b = realloc(p->b, p->cap);
    }
    memcpy(p->b + p->n, d, n);
    p->n += n;
}
static void pb_op(Pb *p, uint8_t op) { pb_raw(p, &op, 1); }
static void pb_str(Pb *p, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    uint8_t h[5] = { 'X', (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24) };
    pb_raw(p, h, 5);
    pb_raw(p, s, n);
}
static void pb_int(Pb *p, int64_t v)
{
    uint8_t h[10] = { 0x8a, 8 };
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)((uint64_t)v >> (8 * i));
    pb_raw(p, h, 10);
}
static void pb_global(Pb *p, const char *mod, const char *name)
{
    pb_op(p, 'c');
    pb_raw(p, mod, strlen(mod));
    pb_op(p, '\n');
    pb_raw(p, name, strlen(name));
    pb_op(p, '\n');
}
static void pb_proto(Pb *p)
{
    pb_op(p, 0x80);
    pb_op(p, 2);
}

/* {name: tensor(storage key, numel, offset, shape, stride)} */
static void pb_tensor_dict(Pb *p, const char *name, const char *key, int64_t numel, int64_t offset, int nd,
                           const int64_t *shape, const int64_t *stride)
{
    pb_proto(p);
    pb_op(p, '}');
    pb_str(p, name);
    pb_global(p, "torch._utils", "_rebuild_tensor_v2");
    pb_op(p, '(');
    pb_op(p, '(');
    pb_str(p, "storage");
    pb_global(p, "torch", "FloatStorage");
    pb_str(p, key);
    pb_str(p, "cpu");
    pb_int(p, numel);
    pb_op(p, 't');
    pb_op(p, 'Q');
    pb_int(p, offset);
    pb_op(p, '(');
    for (int i = 0; i < nd; i++)
        pb_int(p, shape[i]);
    pb_op(p, 't');
    pb_op(p, '(');
    for (int i = 0; i < nd; i++)
        pb_int(p, stride[i]);
    pb_op(p, 't');
    pb_op(p, 0x89);
    pb_op(p, 'N');
    pb_op(p, 't');
    pb_op(p, 'R');
    pb_op(p, 's');
    pb_op(p, '.');
}

/* a torch-style zip: archive/data.pkl (+ archive/data/<key> of nbytes) */
static void make_pth(const char *path, const Pb *pkl, const char *key, size_t nbytes)
{
    AsZipWriter w;
    AsError err;
    as_zipw_init(&w);
    CHECK(as_zipw_add(&w, "archive/data.pkl", pkl->b, pkl->n, 64, &err) == 0, "%s", err.msg);
    if (key) {
        uint8_t *d = calloc(nbytes ? nbytes : 1, 1);
        char nm[128];
        snprintf(nm, sizeof nm, "archive/data/%s", key);
        CHECK(as_zipw_add(&w, nm, d, nbytes, 64, &err) == 0, "%s", err.msg);
        free(d);
    }
    CHECK(as_zipw_add(&w, "archive/version", "3\n", 2, 64, &err) == 0, "%s", err.msg);
    uint8_t *out;
    size_t len;
    CHECK(as_zipw_finish(&w, &out, &len, &err) == 0, "%s", err.msg);
    as_zipw_free(&w);
    test_write_file(path, out, len);
    free(out);
}

/* load must fail with code (0 = any error) and a message holding want */
static void expect_fail(const char *what, const char *path, int code, const char *want)
{
    AsTensorMap m;
    AsError err;
    as_tmap_init(&m);
    memset(&err, 0, sizeof err);
    int rc = as_checkpoint_load(path, &m, &err);
    CHECK(rc != 0, "%s: loaded", what);
    if (code)
        CHECK(rc == code, "%s: code %d (%s), expected %d: %s", what, rc, as_status_name(rc), code, err.msg);
    CHECK(err.msg[0] != '\0', "%s: empty message", what);
    if (want)
        CHECK(strstr(err.msg, want) != NULL, "%s: message lacks '%s': %s", what, want, err.msg);
    CHECK(m.count == 0, "%s: tensors left in the map", what);
    as_tmap_free(&m);
}

/* the same with the pickle alone */
static void expect_pickle_fail(const char *what, const Pb *p, const char *want)
{
    AsPValue *v = NULL;
    AsError err;
    memset(&err, 0, sizeof err);
    int rc = as_pickle_read(p->b, p->n, "t.pkl", &v, &err);
    CHECK(rc != 0 && v == NULL, "%s: accepted", what);
    CHECK(err.msg[0] != '\0', "%s: empty message", what);
    if (want)
        CHECK(strstr(err.msg, want) != NULL, "%s: message lacks '%s': %s", what, want, err.msg);
    as_pv_free(v);
}

static void test_not_checkpoints(void)
{
    test_write_file(test_tmp_path("empty.pth"), "", 0);
    expect_fail("empty file", test_tmp_path("empty.pth"), AS_ERR_FORMAT, "empty");
    uint8_t junk[4096];
    uint32_t s = 12345;
    for (size_t i = 0; i < sizeof junk; i++) {
        s = s * 1103515245u + 12345u;
        junk[i] = (uint8_t)(s >> 16);
    }
    test_write_file(test_tmp_path("junk.pth"), junk, sizeof junk);
    expect_fail("garbage", test_tmp_path("junk.pth"), AS_ERR_FORMAT, "not a checkpoint");
    test_write_file(test_tmp_path("pk.pth"), "PK\x03\x04garbage", 11);
    expect_fail("zip signature then garbage", test_tmp_path("pk.pth"), AS_ERR_FORMAT, "zip");
    expect_fail("a directory", test_tmpdir(), AS_ERR_IO, "not a regular file");
    /* legacy torch (< 1.6): pickled magic number first */
    static const uint8_t legacy[] = { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                      0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e };
    test_write_file(test_tmp_path("legacy.pth"), legacy, sizeof legacy);
    expect_fail("legacy format", test_tmp_path("legacy.pth"), AS_ERR_UNSUPPORTED, "torch.save(torch.load(f), f2)");
    /* a zip without data.pkl */
    AsZipWriter w;
    AsError err;
    uint8_t *out;
    size_t len;
    as_zipw_init(&w);
    as_zipw_add(&w, "x/readme.txt", "hi", 2, 1, &err);
    as_zipw_finish(&w, &out, &len, &err);
    as_zipw_free(&w);
    test_write_file(test_tmp_path("nopkl.pth"), out, len);
    free(out);
    expect_fail("zip without data.pkl", test_tmp_path("nopkl.pth"), AS_ERR_FORMAT, "data.pkl");
}

/* a small valid file, truncated at every cut point and corrupted byte by byte */
static void test_truncation_and_corruption(void)
{
    float w[24];
    for (int i = 0; i < 24; i++)
        w[i] = (float)i;
    int64_t sh[2] = { 4, 6 };
    AsError err;
    AsPValue *root = as_pv_dict(false);
    AsPValue *sd = as_pv_dict(true);
    as_pv_dict_set_str(sd, "backbone.w", as_pv_tensor_f32(2, sh, w, true), &err);
    as_pv_dict_set_str(sd, "b", as_pv_tensor_f32(1, sh, w, true), &err);
    as_pv_dict_set_str(root, "state_dict", sd, &err);
    as_pv_dict_set_str(root, "epoch", as_pv_int(3), &err);
    uint8_t *good;
    size_t len;
    int rc = as_pth_write_mem("archive", root, &good, &len, &err);
    as_pv_free(root);
    CHECK(rc == 0, "%s", err.msg);
    if (rc)
        return;
    AsPth p;
    rc = as_pth_read_mem(good, len, "good.pth", &p, AS_PTH_BORROW, &err);
    CHECK(rc == 0, "the uncut file loads: %s", err.msg);
    if (rc == 0)
        as_pth_free(&p);
    /* every cut: exact-size heap copies so that ASan sees any over-read */
    size_t failures = 0;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *b = malloc(cut ? cut : 1);
        memcpy(b, good, cut);
        memset(&err, 0, sizeof err);
        rc = as_pth_read_mem(b, cut, "cut.pth", &p, AS_PTH_BORROW, &err);
        if (rc == 0) {
            as_pth_free(&p);
        } else {
            failures++;
            if (err.msg[0] == '\0' || !strstr(err.msg, "cut.pth"))
                CHECK(0, "cut at %zu: message '%s'", cut, err.msg);
        }
        free(b);
    }
    CHECK(failures == len, "every truncated file is refused (%zu of %zu)", failures, len);
    /* a few cuts through the file API too */
    for (size_t cut = 1; cut < len; cut += len / 7) {
        test_write_file(test_tmp_path("cut.pth"), good, cut);
        expect_fail("truncated file", test_tmp_path("cut.pth"), 0, "cut.pth");
    }
    /* corrupt each byte in turn (three values): must never crash */
    static const uint8_t vals[] = { 0x00, 0xFF, 0x7F };
    size_t ok = 0, bad = 0;
    uint8_t *b = malloc(len);
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < sizeof vals; k++) {
            memcpy(b, good, len);
            if (b[i] == vals[k])
                continue;
            b[i] = vals[k];
            memset(&err, 0, sizeof err);
            rc = as_pth_read_mem(b, len, "bad.pth", &p, AS_PTH_BORROW, &err);
            if (rc == 0) {
                as_pth_free(&p);
                ok++;
            } else {
                bad++;
                if (err.msg[0] == '\0')
                    CHECK(0, "byte %zu = %02x: empty message", i, vals[k]);
            }
        }
    }
    CHECK(bad > 0 && ok > 0, "corruptions: %zu refused, %zu harmless (data bytes)", bad, ok);
    free(b);
    free(good);
}

static void test_globals(void)
{
    static const char *const evil[][2] = {
        { "os", "system" },        { "posix", "system" },     { "builtins", "eval" },
        { "builtins", "exec" },    { "__builtin__", "eval" }, { "subprocess", "Popen" },
        { "torch", "load" },       { "nt", "system" },        { "collections", "namedtuple" },
        { "torch._utils", "_rebuild_device_tensor_from_numpy" },
    };
    for (size_t i = 0; i < sizeof evil / sizeof evil[0]; i++) {
        Pb p = { 0 };
        char want[128], path[64];
        pb_proto(&p);
        if (i % 2 == 0) {
            pb_global(&p, evil[i][0], evil[i][1]);
        } else { /* protocol 4 STACK_GLOBAL */
            pb_str(&p, evil[i][0]);
            pb_str(&p, evil[i][1]);
            pb_op(&p, 0x93);
        }
        pb_str(&p, "touch /tmp/pwned");
        pb_op(&p, 0x85);
        pb_op(&p, 'R');
        pb_op(&p, '.');
        snprintf(want, sizeof want, "refuses to load global '%s.%s'", evil[i][0], evil[i][1]);
        expect_pickle_fail(want, &p, want);
        snprintf(path, sizeof path, "evil%zu.pth", i);
        make_pth(test_tmp_path(path), &p, NULL, 0);
        expect_fail(want, test_tmp_path(path), AS_ERR_FORMAT, want);
        free(p.b);
    }
    CHECK(access("/tmp/pwned", F_OK) != 0, "nothing was executed");
    /* object-building opcodes that name classes: INST, OBJ; the extension registry */
    static const char *const ops[] = { "\x80\x02(ios\nsystem\nX\x02\x00\x00\x00ls.", "\x80\x02(N\x29o.",
                                       "\x80\x02\x82\x01." };
    static const size_t opn[] = { 22, 7, 5 };
    for (size_t i = 0; i < 3; i++) {
        Pb p = { (uint8_t *)(uintptr_t)ops[i], opn[i], 0 };
        expect_pickle_fail("object opcode", &p, "refuses");
    }
    /* an allowed global that is not callable this way */
    Pb p = { 0 };
    pb_proto(&p);
    pb_global(&p, "torch", "FloatStorage");
    pb_op(&p, ')');
    pb_op(&p, 'R');
    pb_op(&p, '.');
    expect_pickle_fail("calling a storage class", &p, "refuses to call 'torch.FloatStorage'");
    free(p.b);
    /* a persistent id that is not a storage */
    memset(&p, 0, sizeof p);
    pb_proto(&p);
    pb_str(&p, "module");
    pb_op(&p, 'Q');
    pb_op(&p, '.');
    expect_pickle_fail("bad persistent id", &p, "persistent id");
    free(p.b);
}

static void test_bad_tensors(void)
{
    Pb p = { 0 };
    /* storage shorter than the shape: the message of checkpoint.h's example */
    int64_t sh[2] = { 144, 48 }, st[2] = { 48, 1 };
    pb_tensor_dict(&p, "blocks.0.attn.qkv.weight", "12", 100, 0, 2, sh, st);
    make_pth(test_tmp_path("short.pth"), &p, "12", 400);
    expect_fail("storage too short", test_tmp_path("short.pth"), AS_ERR_FORMAT,
                "tensor 'blocks.0.attn.qkv.weight': storage '12' holds 100 values, shape (144, 48) at offset 0 "
                "needs 6912");
    free(p.b);
    /* within the storage except for the offset */
    memset(&p, 0, sizeof p);
    int64_t sh2[2] = { 10, 10 }, st2[2] = { 10, 1 };
    pb_tensor_dict(&p, "w", "0", 100, 1, 2, sh2, st2);
    make_pth(test_tmp_path("offset.pth"), &p, "0", 400);
    expect_fail("offset past the storage", test_tmp_path("offset.pth"), AS_ERR_FORMAT, "at offset 1 needs 101");
    free(p.b);
    /* the storage entry is missing */
    memset(&p, 0, sizeof p);
    pb_tensor_dict(&p, "w", "7", 100, 0, 2, sh2, st2);
    make_pth(test_tmp_path("missing.pth"), &p, "0", 400);
    expect_fail("missing storage", test_tmp_path("missing.pth"), AS_ERR_FORMAT, "storage '7' is missing");
    free(p.b);
    /* absurd sizes: 2^62 elements, and 2^31 x 2^31 */
    memset(&p, 0, sizeof p);
    int64_t big[1] = { (int64_t)1 << 62 }, one[1] = { 1 };
    pb_tensor_dict(&p, "w", "0", 4, 0, 1, big, one);
    make_pth(test_tmp_path("huge1.pth"), &p, "0", 16);
    expect_fail("2^62 elements", test_tmp_path("huge1.pth"), AS_ERR_FORMAT, "absurd size");
    free(p.b);
    memset(&p, 0, sizeof p);
    int64_t big2[2] = { (int64_t)1 << 31, (int64_t)1 << 31 }, st3[2] = { (int64_t)1 << 31, 1 };
    pb_tensor_dict(&p, "w", "0", 4, 0, 2, big2, st3);
    make_pth(test_tmp_path("huge2.pth"), &p, "0", 16);
    expect_fail("2^31 x 2^31", test_tmp_path("huge2.pth"), AS_ERR_FORMAT, "absurd size");
    free(p.b);
    /* huge stride and offset overflow int64 arithmetic */
    memset(&p, 0, sizeof p);
    int64_t sh4[2] = { 3, 3 }, st4[2] = { (int64_t)1 << 62, 1 };
    pb_tensor_dict(&p, "w", "0", 4, 0, 2, sh4, st4);
    make_pth(test_tmp_path("stride.pth"), &p, "0", 16);
    expect_fail("huge stride", test_tmp_path("stride.pth"), AS_ERR_FORMAT, "absurd");
    free(p.b);
    memset(&p, 0, sizeof p);
    pb_tensor_dict(&p, "w", "0", 4, INT64_MAX - 2, 2, sh4, st2);
    make_pth(test_tmp_path("offbig.pth"), &p, "0", 16);
    expect_fail("huge offset", test_tmp_path("offbig.pth"), AS_ERR_FORMAT, "storage '0' holds 4 values");
    free(p.b);
    /* a stride-0 view expanding 1 value to 2^40 */
    memset(&p, 0, sizeof p);
    int64_t sh5[1] = { (int64_t)1 << 40 }, st5[1] = { 0 };
    pb_tensor_dict(&p, "w", "0", 1, 0, 1, sh5, st5);
    make_pth(test_tmp_path("expand.pth"), &p, "0", 4);
    expect_fail("expanded view", test_tmp_path("expand.pth"), AS_ERR_FORMAT, "implausibly large");
    free(p.b);
    /* negative sizes, strides and offsets */
    int64_t nsh[2] = { -1, 4 }, nst[2] = { 4, -1 }, okst[2] = { 4, 1 }, oksh[2] = { 2, 4 };
    memset(&p, 0, sizeof p);
    pb_tensor_dict(&p, "w", "0", 8, 0, 2, nsh, okst);
    make_pth(test_tmp_path("negsize.pth"), &p, "0", 32);
    expect_fail("negative size", test_tmp_path("negsize.pth"), AS_ERR_FORMAT, "negative size");
    free(p.b);
    memset(&p, 0, sizeof p);
    pb_tensor_dict(&p, "w", "0", 8, 0, 2, oksh, nst);
    make_pth(test_tmp_path("negstride.pth"), &p, "0", 32);
    expect_fail("negative stride", test_tmp_path("negstride.pth"), AS_ERR_FORMAT, "negative stride");
    free(p.b);
    memset(&p, 0, sizeof p);
    pb_tensor_dict(&p, "w", "0", 8, -3, 2, oksh, okst);
    make_pth(test_tmp_path("negoff.pth"), &p, "0", 32);
    expect_fail("negative offset", test_tmp_path("negoff.pth"), AS_ERR_FORMAT, "negative storage offset");
    free(p.b);
    /* 9 dimensions */
    int64_t sh9[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    memset(&p, 0, sizeof p);
    pb_tensor_dict(&p, "w", "0", 1, 0, 9, sh9, sh9);
    make_pth(test_tmp_path("ndim9.pth"), &p, "0", 4);
    expect_fail("9 dimensions", test_tmp_path("ndim9.pth"), AS_ERR_UNSUPPORTED, "dimensions");
    free(p.b);
    /* storage keys that try to leave the archive folder */
    memset(&p, 0, sizeof p);
    pb_tensor_dict(&p, "w", "../version", 1, 0, 1, one, one);
    make_pth(test_tmp_path("key.pth"), &p, NULL, 0);
    expect_fail("storage key with ..", test_tmp_path("key.pth"), AS_ERR_FORMAT, "storage key");
    free(p.b);
    /* one half-precision storage viewed by 3000 tensors (memo copies): each
     * would be converted separately, so the total is bounded */
    memset(&p, 0, sizeof p);
    pb_proto(&p);
    pb_op(&p, '}');
    pb_op(&p, '(');
    pb_str(&p, "k0");
    pb_global(&p, "torch._utils", "_rebuild_tensor_v2");
    pb_op(&p, '(');
    pb_op(&p, '(');
    pb_str(&p, "storage");
    pb_global(&p, "torch", "HalfStorage");
    pb_str(&p, "0");
    pb_str(&p, "cpu");
    pb_int(&p, 100000);
    pb_op(&p, 't');
    pb_op(&p, 'Q');
    pb_int(&p, 0);
    pb_op(&p, '(');
    pb_int(&p, 100000);
    pb_op(&p, 't');
    pb_op(&p, '(');
    pb_int(&p, 1);
    pb_op(&p, 't');
    pb_op(&p, 0x89);
    pb_op(&p, 'N');
    pb_op(&p, 't');
    pb_op(&p, 'R');
    pb_op(&p, 'q');
    pb_op(&p, 1);
    for (int i = 1; i < 3000; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        pb_str(&p, k);
        pb_op(&p, 'h');
        pb_op(&p, 1);
    }
    pb_op(&p, 'u');
    pb_op(&p, '.');
    make_pth(test_tmp_path("shared.pth"), &p, "0", 200000);
    expect_fail("3000 views of one storage", test_tmp_path("shared.pth"), AS_ERR_FORMAT, "implausibly many values");
    free(p.b);
    /* the control: a sane tensor in the same layout loads */
    memset(&p, 0, sizeof p);
    pb_tensor_dict(&p, "w", "0", 8, 0, 2, oksh, okst);
    make_pth(test_tmp_path("sane.pth"), &p, "0", 32);
    AsTensorMap m;
    AsError err;
    as_tmap_init(&m);
    int rc = as_checkpoint_load(test_tmp_path("sane.pth"), &m, &err);
    CHECK(rc == 0 && m.count == 1 && as_tmap_find(&m, "w")->numel == 8, "control loads: %s", rc ? err.msg : "");
    as_tmap_free(&m);
    free(p.b);
}

static void test_vm_limits(void)
{
    Pb p = { 0 };
    /* 100000 nested MARK / EMPTY_LIST */
    pb_proto(&p);
    for (int i = 0; i < 100000; i++) {
        pb_op(&p, '(');
        pb_op(&p, ']');
    }
    pb_op(&p, '.');
    expect_pickle_fail("100000 x MARK EMPTY_LIST", &p, "nested");
    free(p.b);
    /* lists nested 100000 deep without marks: 100000 EMPTY_LIST then APPENDs */
    memset(&p, 0, sizeof p);
    pb_proto(&p);
    for (int i = 0; i < 100000; i++)
        pb_op(&p, ']');
    for (int i = 0; i < 99999; i++)
        pb_op(&p, 'a');
    pb_op(&p, '.');
    expect_pickle_fail("lists nested by APPEND", &p, "nested deeper");
    free(p.b);
    /* tuples nested by TUPLE1 */
    memset(&p, 0, sizeof p);
    pb_proto(&p);
    pb_op(&p, 'N');
    for (int i = 0; i < 100000; i++)
        pb_op(&p, 0x85);
    pb_op(&p, '.');
    expect_pickle_fail("TUPLE1 chain", &p, "nested deeper");
    free(p.b);
    /* memo index out of range */
    static const uint8_t get5[] = { 0x80, 2, 'h', 5, '.' };
    Pb g = { (uint8_t *)(uintptr_t)get5, sizeof get5, 0 };
    expect_pickle_fail("BINGET undefined", &g, "memo index 5 not defined");
    static const uint8_t lput[] = { 0x80, 2, 'N', 'r', 0xff, 0xff, 0xff, 0xff, '.' };
    Pb lp = { (uint8_t *)(uintptr_t)lput, sizeof lput, 0 };
    expect_pickle_fail("LONG_BINPUT 2^32-1", &lp, "memo index");
    static const uint8_t lget[] = { 0x80, 2, 'N', 'q', 0, 'j', 0xff, 0xff, 0xff, 0x7f, '.' };
    Pb lg = { (uint8_t *)(uintptr_t)lget, sizeof lget, 0 };
    expect_pickle_fail("LONG_BINGET huge", &lg, "not defined");
    /* stack underflow in many opcodes */
    static const char *const under[] = { "\x80\x02.", "\x80\x02" "a.", "\x80\x02R.", "\x80\x02Nt.", "\x80\x02}Ns.",
                                         "\x80\x02\x85.", "\x80\x02" "0.", "\x80\x02(N\x86.", "\x80\x02]N(u.",
                                         "\x80\x02]b.", "\x80\x02Q.", "\x80\x02(e.", "\x80\x02NN." };
    for (size_t i = 0; i < sizeof under / sizeof under[0]; i++) {
        Pb u = { (uint8_t *)(uintptr_t)under[i], strlen(under[i]), 0 };
        expect_pickle_fail("stack underflow", &u, NULL);
    }
    Pb u = { (uint8_t *)(uintptr_t)"\x80\x02" "a.", 4, 0 };
    expect_pickle_fail("APPEND on empty stack", &u, "stack underflow");
    /* truncated opcodes, no STOP, bad protocol, unknown opcode */
    static const char *const trunc[] = { "\x80\x02J\x01\x02", "\x80\x02X\xff\xff\xff\x7f" "abc", "\x80\x02N",
                                         "\x80\x07N.", "\x80\x02\xf0.", "\x80\x02\x8a\x09" "123456789.",
                                         "\x80\x02I12x\n.", "\x80\x02" "cos", "\x80\x02P1\n." };
    for (size_t i = 0; i < sizeof trunc / sizeof trunc[0]; i++) {
        Pb t = { (uint8_t *)(uintptr_t)trunc[i], strlen(trunc[i]), 0 };
        expect_pickle_fail("truncated / unsupported", &t, NULL);
    }
    /* memo copy bomb: x = [x, x] thirty times */
    memset(&p, 0, sizeof p);
    pb_proto(&p);
    pb_op(&p, ']');
    for (int i = 0; i < 30; i++) {
        pb_op(&p, 'q');
        pb_op(&p, 0);
        pb_op(&p, '0');
        pb_op(&p, 'h');
        pb_op(&p, 0);
        pb_op(&p, 'h');
        pb_op(&p, 0);
        pb_op(&p, 0x86);
    }
    pb_op(&p, '.');
    expect_pickle_fail("memo copy bomb", &p, "limit");
    free(p.b);
    /* string copy bomb: a 1 MB string fetched 100 times */
    memset(&p, 0, sizeof p);
    pb_proto(&p);
    char *big = malloc(1 << 20);
    memset(big, 'x', 1 << 20);
    big[(1 << 20) - 1] = '\0';
    pb_str(&p, big);
    free(big);
    pb_op(&p, 'q');
    pb_op(&p, 0);
    pb_op(&p, ']');
    pb_op(&p, '(');
    for (int i = 0; i < 100; i++) {
        pb_op(&p, 'h');
        pb_op(&p, 0);
    }
    pb_op(&p, 'e');
    pb_op(&p, '.');
    expect_pickle_fail("string copy bomb", &p, "limit");
    free(p.b);
}

static void test_zip_structure(void)
{
    /* build a valid file, then break its zip records one at a time */
    Pb p = { 0 };
    int64_t sh[1] = { 4 }, st[1] = { 1 };
    pb_tensor_dict(&p, "w", "0", 4, 0, 1, sh, st);
    AsZipWriter w;
    AsError err;
    as_zipw_init(&w);
    as_zipw_add(&w, "a/data.pkl", p.b, p.n, 64, &err);
    float d[4] = { 1, 2, 3, 4 };
    as_zipw_add(&w, "a/data/0", d, 16, 64, &err);
    uint8_t *good;
    size_t len;
    as_zipw_finish(&w, &good, &len, &err);
    as_zipw_free(&w);
    free(p.b);
    size_t eocd = len - 22;
    uint32_t cd_off = good[eocd + 16] | good[eocd + 17] << 8 | good[eocd + 18] << 16 | (uint32_t)good[eocd + 19] << 24;
    struct {
        const char *what;
        size_t off;
        uint8_t bytes[4];
        int n;
        const char *want;
    } cases[] = {
        { "central directory offset past the end", eocd + 16, { 0x00, 0xff, 0xff, 0x7f }, 4, "outside the file" },
        { "entry count too large", eocd + 10, { 0xfe, 0xff }, 2, "entries" },
        { "zip64 marker without locator", eocd + 16, { 0xff, 0xff, 0xff, 0xff }, 4, "zip64" },
        { "local header offset out of range", cd_off + 42, { 0x00, 0x00, 0x00, 0x70 }, 4, "local header" },
        { "compressed size past the end", cd_off + 20, { 0x00, 0x00, 0x10, 0x00 }, 4, "outside the file" },
        { "name length overruns the directory", cd_off + 28, { 0xff, 0xff }, 2, "overruns" },
        { "unknown compression method", cd_off + 10, { 0x0e, 0x00 }, 2, "compression method" },
        { "encrypted entry", cd_off + 8, { 0x01, 0x00 }, 2, "encrypted" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *b = malloc(len);
        memcpy(b, good, len);
        memcpy(b + cases[i].off, cases[i].bytes, (size_t)cases[i].n);
        if (strcmp(cases[i].what, "unknown compression method") == 0)
            memcpy(b + cases[i].off + 10, "\x01\x00\x00\x00", 4); /* sizes differ: only allowed for non-stored */
        test_write_file(test_tmp_path("zip.pth"), b, len);
        expect_fail(cases[i].what, test_tmp_path("zip.pth"), 0, cases[i].want);
        free(b);
    }
    /* deflated data.pkl is read (bonus), a corrupt deflate stream is refused */
    Pb q = { 0 };
    pb_tensor_dict(&q, "w", "0", 4, 0, 1, sh, st);
    uint8_t comp[4096];
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = q.b;
    zs.avail_in = (uInt)q.n;
    zs.next_out = comp;
    zs.avail_out = sizeof comp;
    deflate(&zs, Z_FINISH);
    size_t clen = zs.total_out;
    deflateEnd(&zs);
    uint32_t crc = (uint32_t)crc32(0, q.b, (uInt)q.n);
    /* write a stored zip with the compressed bytes, then patch method and sizes */
    as_zipw_init(&w);
    as_zipw_add(&w, "a/data.pkl", comp, clen, 1, &err);
    as_zipw_add(&w, "a/data/0", d, 16, 64, &err);
    uint8_t *z;
    size_t zlen;
    as_zipw_finish(&w, &z, &zlen, &err);
    as_zipw_free(&w);
    size_t e2 = zlen - 22;
    uint32_t c2 = z[e2 + 16] | z[e2 + 17] << 8 | z[e2 + 18] << 16 | (uint32_t)z[e2 + 19] << 24;
    z[c2 + 10] = 8;
    for (int i = 0; i < 4; i++) {
        z[c2 + 16 + i] = (uint8_t)(crc >> (8 * i));
        z[c2 + 24 + i] = (uint8_t)(q.n >> (8 * i));
    }
    test_write_file(test_tmp_path("deflated.pth"), z, zlen);
    AsTensorMap m;
    as_tmap_init(&m);
    int rc = as_checkpoint_load(test_tmp_path("deflated.pth"), &m, &err);
    const AsTensor *t = rc ? NULL : as_tmap_find(&m, "w");
    CHECK(t && t->numel == 4 && t->data[3] == 4.0f, "deflated data.pkl: %s", rc ? err.msg : "ok");
    as_tmap_free(&m);
    z[c2 + 16] ^= 0x55; /* wrong CRC */
    test_write_file(test_tmp_path("deflated_crc.pth"), z, zlen);
    expect_fail("deflate CRC mismatch", test_tmp_path("deflated_crc.pth"), AS_ERR_FORMAT, "CRC");
    z[c2 + 16] ^= 0x55;
    for (int i = 0; i < 4; i++)
        z[c2 + 24 + i] = (uint8_t)(0x7fffffffu >> (8 * i)); /* claims 2 GB uncompressed */
    test_write_file(test_tmp_path("deflated_bomb.pth"), z, zlen);
    expect_fail("deflate size claim", test_tmp_path("deflated_bomb.pth"), AS_ERR_FORMAT, "implausib");
    free(z);
    free(q.b);
    free(good);
}

static void le_put(Pb *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        pb_op(p, (uint8_t)(v >> (8 * i)));
}

/* a zip using ZIP64 records throughout (sizes and offsets in extra fields,
 * zip64 end record and locator), built by hand from the format description */
static void test_zip64(void)
{
    Pb pk = { 0 };
    int64_t sh[1] = { 3 }, st[1] = { 1 };
    pb_tensor_dict(&pk, "w", "0", 3, 0, 1, sh, st);
    float d[3] = { 0.5f, -1.0f, 8.0f };
    const char *names[2] = { "z/data.pkl", "z/data/0" };
    const uint8_t *datas[2] = { pk.b, (const uint8_t *)d };
    size_t lens[2] = { pk.n, sizeof d };
    uint64_t offs[2];
    Pb z = { 0 };
    for (int e = 0; e < 2; e++) {
        offs[e] = z.n;
        le_put(&z, 0x04034b50u, 4);
        le_put(&z, 45, 2);
        le_put(&z, 0, 2);
        le_put(&z, 0, 2);
        le_put(&z, 0, 4); /* time, date */
        le_put(&z, crc32(0, datas[e], (uInt)lens[e]), 4);
        le_put(&z, 0xFFFFFFFFu, 4);
        le_put(&z, 0xFFFFFFFFu, 4);
        le_put(&z, strlen(names[e]), 2);
        le_put(&z, 20, 2);
        pb_raw(&z, names[e], strlen(names[e]));
        le_put(&z, 1, 2);
        le_put(&z, 16, 2);
        le_put(&z, lens[e], 8);
        le_put(&z, lens[e], 8);
        pb_raw(&z, datas[e], lens[e]);
    }
    uint64_t cd = z.n;
    for (int e = 0; e < 2; e++) {
        le_put(&z, 0x02014b50u, 4);
        le_put(&z, 45, 2);
        le_put(&z, 45, 2);
        le_put(&z, 0, 2);
        le_put(&z, 0, 2);
        le_put(&z, 0, 4);
        le_put(&z, crc32(0, datas[e], (uInt)lens[e]), 4);
        le_put(&z, 0xFFFFFFFFu, 4);
        le_put(&z, 0xFFFFFFFFu, 4);
        le_put(&z, strlen(names[e]), 2);
        le_put(&z, 28, 2);
        le_put(&z, 0, 2);
        le_put(&z, 0, 2);
        le_put(&z, 0, 2);
        le_put(&z, 0, 4);
        le_put(&z, 0xFFFFFFFFu, 4);
        pb_raw(&z, names[e], strlen(names[e]));
        le_put(&z, 1, 2);
        le_put(&z, 24, 2);
        le_put(&z, lens[e], 8);
        le_put(&z, lens[e], 8);
        le_put(&z, offs[e], 8);
    }
    uint64_t cd_size = z.n - cd, e64 = z.n;
    le_put(&z, 0x06064b50u, 4);
    le_put(&z, 44, 8);
    le_put(&z, 45, 2);
    le_put(&z, 45, 2);
    le_put(&z, 0, 4);
    le_put(&z, 0, 4);
    le_put(&z, 2, 8);
    le_put(&z, 2, 8);
    le_put(&z, cd_size, 8);
    le_put(&z, cd, 8);
    le_put(&z, 0x07064b50u, 4);
    le_put(&z, 0, 4);
    le_put(&z, e64, 8);
    le_put(&z, 1, 4);
    le_put(&z, 0x06054b50u, 4);
    le_put(&z, 0, 4);
    le_put(&z, 0xFFFF, 2);
    le_put(&z, 0xFFFF, 2);
    le_put(&z, 0xFFFFFFFFu, 4);
    le_put(&z, 0xFFFFFFFFu, 4);
    le_put(&z, 0, 2);
    test_write_file(test_tmp_path("zip64.pth"), z.b, z.n);
    AsTensorMap m;
    AsError err;
    as_tmap_init(&m);
    int rc = as_checkpoint_load(test_tmp_path("zip64.pth"), &m, &err);
    const AsTensor *t = rc ? NULL : as_tmap_find(&m, "w");
    CHECK(t && t->numel == 3 && t->data[0] == 0.5f && t->data[2] == 8.0f, "zip64 archive: %s", rc ? err.msg : "ok");
    as_tmap_free(&m);
    /* a zip64 extra field that is too short for what the entry needs */
    size_t xoff = (size_t)cd + 46 + strlen(names[0]);
    z.b[xoff + 2] = 8; /* claims 8 bytes: size only, but comp size and offset are needed too */
    test_write_file(test_tmp_path("zip64_short.pth"), z.b, z.n);
    expect_fail("short zip64 extra", test_tmp_path("zip64_short.pth"), AS_ERR_FORMAT, "zip64 extra");
    free(z.b);
    free(pk.b);
}

static void test_safetensors(void)
{
    struct {
        const char *what, *header;
        size_t data;
        const char *want;
    } cases[] = {
        { "not JSON", "{\"a\": [", 16, "invalid JSON" },
        { "offsets past the data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
          "data_offsets [0, 16]" },
        { "offsets disagree with the shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16,
          "12 bytes" },
        { "negative dimension", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", 16, "bad shape" },
        { "absurd shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,16]}}", 16,
          "bad shape" },
        { "reversed offsets", "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[8,4]}}", 16, "data_offsets" },
        { "missing fields", "{\"a\":{\"dtype\":\"F32\"}}", 16, "lacks" },
        { "header not an object", "[1,2,3]", 16, "not a checkpoint" },
        { "no float tensor", "{\"a\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16, "no float tensors" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t hl = strlen(cases[i].header);
        size_t len = 8 + hl + cases[i].data;
        uint8_t *b = calloc(len, 1);
        for (int k = 0; k < 8; k++)
            b[k] = (uint8_t)((uint64_t)hl >> (8 * k));
        memcpy(b + 8, cases[i].header, hl);
        test_write_file(test_tmp_path("bad.safetensors"), b, len);
        expect_fail(cases[i].what, test_tmp_path("bad.safetensors"), AS_ERR_FORMAT, cases[i].want);
        /* and truncated at every byte through the memory API */
        for (size_t cut = 0; cut < len; cut++) {
            AsTensorMap m;
            AsError err;
            as_tmap_init(&m);
            uint8_t *c = malloc(cut ? cut : 1);
            memcpy(c, b, cut);
            as_safetensors_read_mem(c, cut, "cut.safetensors", false, &m, &err);
            as_tmap_free(&m);
            free(c);
        }
        free(b);
    }
    /* header length larger than the file */
    uint8_t h[16] = { 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{', '}' };
    AsTensorMap m;
    AsError err;
    as_tmap_init(&m);
    int rc = as_safetensors_read_mem(h, sizeof h, "h.safetensors", false, &m, &err);
    CHECK(rc == AS_ERR_FORMAT && strstr(err.msg, "does not fit"), "header length: %s", err.msg);
    as_tmap_free(&m);
}

int main(void)
{
    if (!test_tmpdir())
        return 1;
    test_not_checkpoints();
    test_truncation_and_corruption();
    test_globals();
    test_bad_tensors();
    test_vm_limits();
    test_zip_structure();
    test_zip64();
    test_safetensors();
    return check_report("hostile_ckpt");
}
