/* check: a minimal test harness. Each CHECK counts; a test program returns
 * non-zero if any check failed. Data files are found under $ALIGNSEG_TESTDATA
 * (set by meson) via test_path(). */
#ifndef ALIGNSEG_CHECK_H
#define ALIGNSEG_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static int check_failed_ = 0, check_passed_ = 0;

#define CHECK(cond, ...)                                                           \
    do {                                                                           \
        if (cond) {                                                                \
            check_passed_++;                                                       \
        } else {                                                                   \
            check_failed_++;                                                       \
            fprintf(stderr, "%s:%d: FAILED: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                          \
            fputc('\n', stderr);                                                   \
        }                                                                          \
    } while (0)

#define CHECK_NEAR(a, b, tol, what)                                                \
    CHECK(fabs((double)(a) - (double)(b)) <= (tol), "%s: %g vs %g (tol %g)", what, \
          (double)(a), (double)(b), (double)(tol))

static inline const char *test_path(const char *rel)
{
    static char buf[8][4096];
    static int slot = 0;
    const char *root = getenv("ALIGNSEG_TESTDATA");
    char *b = buf[slot++ & 7];
    snprintf(b, 4096, "%s/%s", root ? root : "tests/data", rel);
    return b;
}

/* The alignseg program under test ($ALIGNSEG_BIN, set by meson). */
static inline const char *test_bin(void)
{
    const char *b = getenv("ALIGNSEG_BIN");
    return b ? b : "build/app/alignseg";
}

/* Run a shell command; its exit status, or -1 if it did not exit normally. */
static inline int test_run(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Whole file as a NUL-terminated string (malloc'd), or NULL. */
static inline char *test_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *s = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0)
        s = malloc((size_t)n + 1);
    if (s) {
        size_t got = fread(s, 1, (size_t)n, f);
        s[got] = '\0';
    }
    fclose(f);
    return s;
}

static inline int check_report(const char *name)
{
    printf("%s: %d checks passed, %d failed\n", name, check_passed_, check_failed_);
    if (check_passed_ == 0 && check_failed_ == 0) {
        printf("%s: no check ran\n", name);
        return 1;
    }
    return check_failed_ ? 1 : 0;
}

#endif
