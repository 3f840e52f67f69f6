/* testutil: scaffolding the test programs share, on top of check.h:
 *  - scratch directories: test_tmpdir_make / test_tmpdir_remove for a
 *    directory of one test function, test_tmpdir / test_tmp_path for one
 *    directory per program, removed at exit;
 *  - files: test_write_file (a failed write is a failed check),
 *    test_read_text into a buffer, test_slurp (check.h) into malloc'd memory;
 *  - the CLI: test_bin, test_run (check.h), test_run_capture for stdout;
 *  - data: test_json_number (a number out of JSON text), test_npy_load_f32
 *    and test_npy_max_abs (an .npy written by alignseg against a reference).
 * Scratch directories live under $TMPDIR (default /tmp). */
#ifndef ALIGNSEG_TESTUTIL_H
#define ALIGNSEG_TESTUTIL_H

#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "npy.h"

#define TEST_TMPDIR_MAX 512

/* Create a fresh directory $TMPDIR/alignseg_<tag>_XXXXXX into buf (cap >=
 * TEST_TMPDIR_MAX is plenty); buf, or NULL (with a message) on failure. */
static inline char *test_tmpdir_make(char *buf, size_t cap, const char *tag)
{
    const char *root = getenv("TMPDIR");
    if (!root || !*root)
        root = "/tmp";
    const int n = snprintf(buf, cap, "%s/alignseg_%s_XXXXXX", root, tag);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "scratch directory name too long under %s\n", root);
        return NULL;
    }
    if (!mkdtemp(buf)) {
        perror(buf);
        return NULL;
    }
    return buf;
}

static inline int test_rm_entry_(const char *path, const struct stat *st, int flag,
                                 struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return (flag == FTW_DP ? rmdir(path) : unlink(path)) ? -1 : 0;
}

/* Remove dir and everything in it (as rm -rf, without a shell); 0 or -1
 * (with a message). */
static inline int test_tmpdir_remove(const char *dir)
{
    if (!dir || !dir[0])
        return 0;
    if (nftw(dir, test_rm_entry_, 16, FTW_DEPTH | FTW_PHYS)) {
        fprintf(stderr, "could not remove %s\n", dir);
        return -1;
    }
    return 0;
}

static char test_tmpdir_[TEST_TMPDIR_MAX];

static inline void test_tmpdir_atexit_(void)
{
    test_tmpdir_remove(test_tmpdir_);
}

/* The program's scratch directory, created on first use and removed with its
 * contents when the program exits; NULL if it cannot be created. */
static inline const char *test_tmpdir(void)
{
    if (!test_tmpdir_[0]) {
        if (!test_tmpdir_make(test_tmpdir_, sizeof test_tmpdir_, "test")) {
            test_tmpdir_[0] = '\0';
            return NULL;
        }
        atexit(test_tmpdir_atexit_);
    }
    return test_tmpdir_;
}

/* tmpdir/name in one of 8 rotating buffers (as test_path). */
static inline const char *test_tmp_path(const char *name)
{
    static char buf[8][TEST_TMPDIR_MAX + 256];
    static int slot = 0;
    char *b = buf[slot++ & 7];
    const char *dir = test_tmpdir();
    snprintf(b, sizeof buf[0], "%s/%s", dir ? dir : "/nonexistent", name);
    return b;
}

/* Write len bytes to path; failures count as failed checks. */
static inline void test_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot create %s", path);
    if (!f)
        return;
    CHECK(len == 0 || fwrite(data, 1, len, f) == len, "write %s", path);
    fclose(f);
}

/* Read path into buf (NUL-terminated, at most cap - 1 bytes); 0, or -1 when
 * it cannot be opened. */
static inline int test_read_text(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
    return 0;
}

/* Run a shell command with its stdout in buf (NUL-terminated, truncated to
 * len - 1 bytes); its exit status, or -1 if it did not exit normally. */
static inline int test_run_capture(const char *cmd, char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = 0;
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The number after "key": in JSON text, or NAN when the key is absent. */
static inline double test_json_number(const char *text, const char *key)
{
    char pat[160];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = text ? strstr(text, pat) : NULL;
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

/* Read an .npy file converted to float32 into *a (zeroed on failure); 0, or
 * -1 after printing "path: problem". */
static inline int test_npy_load_f32(const char *path, AsNpy *a)
{
    AsError err = { 0 };
    memset(a, 0, sizeof *a);
    if (as_npy_read(path, a, &err) || as_npy_to_f32(a, &err)) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        as_npy_free(a);
        memset(a, 0, sizeof *a);
        return -1;
    }
    return 0;
}

/* max |a-b| of two arrays of the same dtype and shape, compared as float
 * (NaN counts as infinitely wrong); -1 on a shape/dtype mismatch or a read
 * error. ndiff (may be NULL) receives the number of entries that differ. */
static inline double test_npy_max_abs(const char *got_path, const char *ref_path, long *ndiff)
{
    AsNpy g, r;
    AsError e;
    if (ndiff)
        *ndiff = 0;
    if (as_npy_read(got_path, &g, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    if (as_npy_read(ref_path, &r, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        as_npy_free(&g);
        return -1;
    }
    double m = -1;
    if (g.ndim == r.ndim && g.numel == r.numel &&
        !memcmp(g.shape, r.shape, sizeof(int64_t) * (size_t)g.ndim) && g.dtype == r.dtype &&
        as_npy_to_f32(&g, &e) == 0 && as_npy_to_f32(&r, &e) == 0) {
        m = 0;
        for (int64_t i = 0; i < g.numel; i++) {
            double d = fabs((double)((float *)g.data)[i] - ((float *)r.data)[i]);
            if (d != 0 && ndiff)
                (*ndiff)++;
            if (!(d <= m))
                m = isnan(d) ? INFINITY : d;
        }
    } else {
        fprintf(stderr, "%s: dtype/shape differ from %s\n", got_path, ref_path);
    }
    as_npy_free(&g);
    as_npy_free(&r);
    return m;
}

#endif
