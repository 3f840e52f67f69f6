/* test_hostile_ckpt: malformed and malicious checkpoints. Each bad file is
 * generated here (into a temporary directory or memory) and must give an
 * error with a message naming the problem: never a crash, a hang, a leak or
 * the execution of anything (run under ASan/UBSan to check the first three). */
#include <stdbool.h>
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

/* ---- table-driven cases: a pickle builder, the storage the zip holds, the
 * expected code and a fragment of the message ---- */

/* pickles of one tensor, {name: tensor(storage key, numel, offset, shape, stride)} */
#define TENSOR_CASE(fn, name, key, numel, offset, nd, ...)                                         \
    static void fn(Pb *p)                                                                          \
    {                                                                                              \
        const int64_t a[2][nd] = { __VA_ARGS__ };                                                  \
        pb_tensor_dict(p, name, key, numel, offset, nd, a[0], a[1]);                               \
    }
TENSOR_CASE(t_short, "blocks.0.attn.qkv.weight", "12", 100, 0, 2, { 144, 48 }, { 48, 1 })
TENSOR_CASE(t_offset, "w", "0", 100, 1, 2, { 10, 10 }, { 10, 1 })
TENSOR_CASE(t_missing, "w", "7", 100, 0, 2, { 10, 10 }, { 10, 1 })
TENSOR_CASE(t_huge1, "w", "0", 4, 0, 1, { (int64_t)1 << 62 }, { 1 })
TENSOR_CASE(t_huge2, "w", "0", 4, 0, 2, { (int64_t)1 << 31, (int64_t)1 << 31 }, { (int64_t)1 << 31, 1 })
TENSOR_CASE(t_stride, "w", "0", 4, 0, 2, { 3, 3 }, { (int64_t)1 << 62, 1 })
TENSOR_CASE(t_offbig, "w", "0", 4, INT64_MAX - 2, 2, { 3, 3 }, { 10, 1 })
TENSOR_CASE(t_expand, "w", "0", 1, 0, 1, { (int64_t)1 << 40 }, { 0 })
TENSOR_CASE(t_negsize, "w", "0", 8, 0, 2, { -1, 4 }, { 4, 1 })
TENSOR_CASE(t_negstride, "w", "0", 8, 0, 2, { 2, 4 }, { 4, -1 })
TENSOR_CASE(t_negoff, "w", "0", 8, -3, 2, { 2, 4 }, { 4, 1 })
TENSOR_CASE(t_ndim9, "w", "0", 1, 0, 9, { 1, 1, 1, 1, 1, 1, 1, 1, 1 }, { 1, 1, 1, 1, 1, 1, 1, 1, 1 })
TENSOR_CASE(t_dotdot, "w", "../version", 1, 0, 1, { 1 }, { 1 })

/* one half-precision storage viewed by 3000 tensors (memo copies): each
 * would be converted separately, so the total is bounded */
static void t_shared(Pb *p)
{
    pb_proto(p);
    pb_op(p, '}');
    pb_op(p, '(');
    pb_str(p, "k0");
    pb_global(p, "torch._utils", "_rebuild_tensor_v2");
    pb_op(p, '(');
    pb_op(p, '(');
    pb_str(p, "storage");
    pb_global(p, "torch", "HalfStorage");
    pb_str(p, "0");
    pb_str(p, "cpu");
    pb_int(p, 100000);
    pb_op(p, 't');
    pb_op(p, 'Q');
    pb_int(p, 0);
    pb_op(p, '(');
    pb_int(p, 100000);
    pb_op(p, 't');
    pb_op(p, '(');
    pb_int(p, 1);
    pb_op(p, 't');
    pb_op(p, 0x89);
    pb_op(p, 'N');
    pb_op(p, 't');
    pb_op(p, 'R');
    pb_op(p, 'q');
    pb_op(p, 1);
    for (int i = 1; i < 3000; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        pb_str(p, k);
        pb_op(p, 'h');
        pb_op(p, 1);
    }
    pb_op(p, 'u');
    pb_op(p, '.');
}

/* calling a global that must never run: GLOBAL or (protocol 4) STACK_GLOBAL */
static void call_global(Pb *p, const char *mod, const char *name, bool stack_global)
{
    pb_proto(p);
    if (!stack_global) {
        pb_global(p, mod, name);
    } else {
        pb_str(p, mod);
        pb_str(p, name);
        pb_op(p, 0x93);
    }
    pb_str(p, "touch /tmp/pwned");
    pb_op(p, 0x85);
    pb_op(p, 'R');
    pb_op(p, '.');
}
#define EVIL(fn, mod, name, sg)                                                                    \
    static void fn(Pb *p) { call_global(p, mod, name, sg); }
EVIL(g_os_system, "os", "system", false)
EVIL(g_posix_system, "posix", "system", true)
EVIL(g_eval, "builtins", "eval", false)
EVIL(g_exec, "builtins", "exec", true)
EVIL(g_builtin_eval, "__builtin__", "eval", false)
EVIL(g_popen, "subprocess", "Popen", true)
EVIL(g_torch_load, "torch", "load", false)
EVIL(g_nt_system, "nt", "system", true)
EVIL(g_namedtuple, "collections", "namedtuple", false)
EVIL(g_numpy_tensor, "torch._utils", "_rebuild_device_tensor_from_numpy", true)

static void raw(Pb *p, const char *bytes, size_t n) { pb_raw(p, bytes, n); }
#define RAW(fn, lit)                                                                               \
    static void fn(Pb *p) { raw(p, lit, sizeof lit - 1); }
/* object-building opcodes that name classes: INST, OBJ; the extension registry */
RAW(o_inst, "\x80\x02(ios\nsystem\nX\x02\x00\x00\x00ls.")
RAW(o_obj, "\x80\x02(N\x29o.")
RAW(o_ext, "\x80\x02\x82\x01.")
RAW(o_call_storage, "\x80\x02" "ctorch\nFloatStorage\n)R.")
RAW(o_persid_module, "\x80\x02X\x06\x00\x00\x00moduleQ.")
/* memo */
RAW(m_get5, "\x80\x02h\x05.")
RAW(m_lput, "\x80\x02Nr\xff\xff\xff\xff.")
RAW(m_lget, "\x80\x02Nq\x00j\xff\xff\xff\x7f.")
/* stack underflow in many opcodes */
RAW(u_stop, "\x80\x02.")
RAW(u_append, "\x80\x02" "a.")
RAW(u_reduce, "\x80\x02R.")
RAW(u_tuple, "\x80\x02Nt.")
RAW(u_setitem, "\x80\x02}Ns.")
RAW(u_tuple1, "\x80\x02\x85.")
RAW(u_pop, "\x80\x02" "0.")
RAW(u_tuple2, "\x80\x02(N\x86.")
RAW(u_setitems, "\x80\x02]N(u.")
RAW(u_build, "\x80\x02]b.")
RAW(u_binpersid, "\x80\x02Q.")
RAW(u_appends, "\x80\x02(e.")
RAW(u_two, "\x80\x02NN.")
/* truncated opcodes, no STOP, bad protocol, unknown opcode */
RAW(x_binint, "\x80\x02J\x01\x02")
RAW(x_string, "\x80\x02X\xff\xff\xff\x7f" "abc")
RAW(x_nostop, "\x80\x02N")
RAW(x_proto7, "\x80\x07N.")
RAW(x_opcode, "\x80\x02\xf0.")
RAW(x_long9, "\x80\x02\x8a\x09" "123456789.")
RAW(x_int_text, "\x80\x02I12x\n.")
RAW(x_global, "\x80\x02" "cos")
RAW(x_persid, "\x80\x02P1\n.")

static void v_marks(Pb *p) /* 100000 nested MARK / EMPTY_LIST */
{
    pb_proto(p);
    for (int i = 0; i < 100000; i++) {
        pb_op(p, '(');
        pb_op(p, ']');
    }
    pb_op(p, '.');
}
static void v_appends(Pb *p) /* lists nested 100000 deep by APPEND, without marks */
{
    pb_proto(p);
    for (int i = 0; i < 100000; i++)
        pb_op(p, ']');
    for (int i = 0; i < 99999; i++)
        pb_op(p, 'a');
    pb_op(p, '.');
}
static void v_tuple1(Pb *p) /* tuples nested by TUPLE1 */
{
    pb_proto(p);
    pb_op(p, 'N');
    for (int i = 0; i < 100000; i++)
        pb_op(p, 0x85);
    pb_op(p, '.');
}
static void v_memo_bomb(Pb *p) /* x = [x, x] thirty times */
{
    pb_proto(p);
    pb_op(p, ']');
    for (int i = 0; i < 30; i++) {
        static const uint8_t step[] = { 'q', 0, '0', 'h', 0, 'h', 0, 0x86 };
        pb_raw(p, step, sizeof step);
    }
    pb_op(p, '.');
}
static void v_string_bomb(Pb *p) /* a 1 MB string fetched 100 times */
{
    pb_proto(p);
    char *big = malloc(1 << 20);
    memset(big, 'x', 1 << 20);
    big[(1 << 20) - 1] = '\0';
    pb_str(p, big);
    free(big);
    pb_op(p, 'q');
    pb_op(p, 0);
    pb_op(p, ']');
    pb_op(p, '(');
    for (int i = 0; i < 100; i++) {
        pb_op(p, 'h');
        pb_op(p, 0);
    }
    pb_op(p, 'e');
    pb_op(p, '.');
}

typedef struct {
    const char *name;
    void (*build)(Pb *p);
    const char *storage; /* the data entry written (archive/data/<key>), NULL: none */
    size_t nbytes;       /* its size */
    int code;            /* expected status, 0: any error */
    const char *want;    /* fragment of the message, NULL: any message */
    bool pickle_level;   /* also refused by as_pickle_read alone */
} PthCase;

static const PthCase pth_cases[] = {
    /* tensors whose views do not fit their storages */
    { "storage too short", t_short, "12", 400, AS_ERR_FORMAT,
      "tensor 'blocks.0.attn.qkv.weight': storage '12' holds 100 values, shape (144, 48) at offset 0 needs 6912",
      false },
    { "offset past the storage", t_offset, "0", 400, AS_ERR_FORMAT, "at offset 1 needs 101", false },
    { "missing storage", t_missing, "0", 400, AS_ERR_FORMAT, "storage '7' is missing", false },
    { "2^62 elements", t_huge1, "0", 16, AS_ERR_FORMAT, "absurd size", true },
    { "2^31 x 2^31", t_huge2, "0", 16, AS_ERR_FORMAT, "absurd size", true },
    { "huge stride", t_stride, "0", 16, AS_ERR_FORMAT, "absurd", false },
    { "huge offset", t_offbig, "0", 16, AS_ERR_FORMAT, "storage '0' holds 4 values", false },
    { "expanded view", t_expand, "0", 4, AS_ERR_FORMAT, "implausibly large", false },
    { "negative size", t_negsize, "0", 32, AS_ERR_FORMAT, "negative size", true },
    { "negative stride", t_negstride, "0", 32, AS_ERR_FORMAT, "negative stride", true },
    { "negative offset", t_negoff, "0", 32, AS_ERR_FORMAT, "negative storage offset", true },
    { "9 dimensions", t_ndim9, "0", 4, AS_ERR_UNSUPPORTED, "dimensions", true },
    { "storage key with ..", t_dotdot, NULL, 0, AS_ERR_FORMAT, "storage key", true },
    { "3000 views of one storage", t_shared, "0", 200000, AS_ERR_FORMAT, "implausibly many values", false },
    /* globals that would execute something */
    { "os.system", g_os_system, NULL, 0, AS_ERR_FORMAT, "refuses to load global 'os.system'", true },
    { "posix.system", g_posix_system, NULL, 0, AS_ERR_FORMAT, "refuses to load global 'posix.system'", true },
    { "builtins.eval", g_eval, NULL, 0, AS_ERR_FORMAT, "refuses to load global 'builtins.eval'", true },
    { "builtins.exec", g_exec, NULL, 0, AS_ERR_FORMAT, "refuses to load global 'builtins.exec'", true },
    { "__builtin__.eval", g_builtin_eval, NULL, 0, AS_ERR_FORMAT, "refuses to load global '__builtin__.eval'",
      true },
    { "subprocess.Popen", g_popen, NULL, 0, AS_ERR_FORMAT, "refuses to load global 'subprocess.Popen'", true },
    { "torch.load", g_torch_load, NULL, 0, AS_ERR_FORMAT, "refuses to load global 'torch.load'", true },
    { "nt.system", g_nt_system, NULL, 0, AS_ERR_FORMAT, "refuses to load global 'nt.system'", true },
    { "collections.namedtuple", g_namedtuple, NULL, 0, AS_ERR_FORMAT,
      "refuses to load global 'collections.namedtuple'", true },
    { "numpy tensors", g_numpy_tensor, NULL, 0, AS_ERR_FORMAT,
      "refuses to load global 'torch._utils._rebuild_device_tensor_from_numpy'", true },
    { "INST", o_inst, NULL, 0, 0, "refuses", true },
    { "OBJ", o_obj, NULL, 0, 0, "refuses", true },
    { "EXT1", o_ext, NULL, 0, 0, "refuses", true },
    { "calling a storage class", o_call_storage, NULL, 0, 0, "refuses to call 'torch.FloatStorage'", true },
    { "bad persistent id", o_persid_module, NULL, 0, 0, "persistent id", true },
    /* the machine's limits */
    { "100000 x MARK EMPTY_LIST", v_marks, NULL, 0, 0, "nested", true },
    { "lists nested by APPEND", v_appends, NULL, 0, 0, "nested deeper", true },
    { "TUPLE1 chain", v_tuple1, NULL, 0, 0, "nested deeper", true },
    { "memo copy bomb", v_memo_bomb, NULL, 0, 0, "limit", true },
    { "string copy bomb", v_string_bomb, NULL, 0, 0, "limit", true },
    { "BINGET undefined", m_get5, NULL, 0, 0, "memo index 5 not defined", true },
    { "LONG_BINPUT 2^32-1", m_lput, NULL, 0, 0, "memo index", true },
    { "LONG_BINGET huge", m_lget, NULL, 0, 0, "not defined", true },
    { "STOP on an empty stack", u_stop, NULL, 0, 0, "STOP with 0 values", true },
    { "APPEND on an empty stack", u_append, NULL, 0, 0, "stack underflow", true },
    { "REDUCE on an empty stack", u_reduce, NULL, 0, 0, "stack underflow", true },
    { "TUPLE without MARK", u_tuple, NULL, 0, 0, "without MARK", true },
    { "SETITEM short", u_setitem, NULL, 0, 0, "stack underflow", true },
    { "TUPLE1 on an empty stack", u_tuple1, NULL, 0, 0, "stack underflow", true },
    { "POP on an empty stack", u_pop, NULL, 0, 0, "stack underflow", true },
    { "TUPLE2 across a mark", u_tuple2, NULL, 0, 0, "stack underflow", true },
    { "SETITEMS of nothing, then STOP", u_setitems, NULL, 0, 0, "STOP with 2 values", true },
    { "BUILD short", u_build, NULL, 0, 0, "stack underflow", true },
    { "BINPERSID on an empty stack", u_binpersid, NULL, 0, 0, "stack underflow", true },
    { "APPENDS without a list", u_appends, NULL, 0, 0, "stack underflow", true },
    { "STOP with two values", u_two, NULL, 0, 0, "STOP with 2 values", true },
    { "truncated BININT", x_binint, NULL, 0, 0, "truncated", true },
    { "string past the end", x_string, NULL, 0, 0, "runs past the end", true },
    { "no STOP", x_nostop, NULL, 0, 0, "no STOP", true },
    { "protocol 7", x_proto7, NULL, 0, AS_ERR_UNSUPPORTED, "protocol 7", true },
    { "unknown opcode", x_opcode, NULL, 0, AS_ERR_UNSUPPORTED, "opcode 0xf0", true },
    { "9-byte LONG1", x_long9, NULL, 0, AS_ERR_UNSUPPORTED, "integer of 9 bytes", true },
    { "bad text INT", x_int_text, NULL, 0, 0, "INT", true },
    { "truncated GLOBAL", x_global, NULL, 0, 0, "truncated", true },
    { "text PERSID", x_persid, NULL, 0, AS_ERR_UNSUPPORTED, "PERSID", true },
};

static void test_pth_cases(void)
{
    for (size_t i = 0; i < sizeof pth_cases / sizeof pth_cases[0]; i++) {
        const PthCase *c = &pth_cases[i];
        Pb p = { 0 };
        c->build(&p);
        if (c->pickle_level)
            expect_pickle_fail(c->name, &p, c->want);
        char file[32];
        snprintf(file, sizeof file, "case%zu.pth", i);
        make_pth(test_tmp_path(file), &p, c->storage, c->nbytes);
        expect_fail(c->name, test_tmp_path(file), c->code, c->want);
        free(p.b);
    }
    CHECK(access("/tmp/pwned", F_OK) != 0, "nothing was executed");
    /* the control: a sane tensor in the same layout loads */
    Pb p = { 0 };
    int64_t sh[2] = { 2, 4 }, st[2] = { 4, 1 };
    pb_tensor_dict(&p, "w", "0", 8, 0, 2, sh, st);
    make_pth(test_tmp_path("sane.pth"), &p, "0", 32);
    AsTensorMap m;
    AsError err;
    as_tmap_init(&m);
    int rc = as_checkpoint_load(test_tmp_path("sane.pth"), &m, &err);
    CHECK(rc == 0 && m.count == 1 && as_tmap_find(&m, "w")->numel == 8, "control loads: %s", rc ? err.msg : "");
    as_tmap_free(&m);
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
    if (!test_tmpdir()) {
        perror("mkdtemp");
        return 1;
    }
    test_not_checkpoints();
    test_truncation_and_corruption();
    test_pth_cases();
    test_zip_structure();
    test_zip64();
    test_safetensors();
    return check_report("hostile_ckpt");
}
