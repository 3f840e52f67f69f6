/* test_atomic: atomic file writing (core/base/atomic.h). A write that fails
 * (a full disk: a 64 KiB tmpfs, root only, else that part is skipped; a file
 * size limit with SIGXFSZ ignored) keeps the previous file and leaves no
 * temporary; a batch killed after its journal is finished by the next run; a
 * batch killed before it changes nothing; temporaries of dead processes are
 * removed, those of live ones kept; hostile journals cannot reach outside
 * their folder. */
#include <dirent.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomic.h"
#include "check.h"
#include "image.h"
#include "jsonw.h"
#include "npy.h"

/* entries of dir whose name contains s */
static int count_named(const char *dir, const char *s)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += strstr(e->d_name, s) != NULL;
    if (d)
        closedir(d);
    return n;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static bool same(const char *path, const char *text)
{
    char *s = test_slurp(path);
    bool ok = s && !strcmp(s, text);
    free(s);
    return ok;
}

static void test_basic(const char *dir)
{
    char p[600];
    AsError err;
    snprintf(p, sizeof p, "%s/a.txt", dir);
    CHECK(as_atomic_write_file(p, "one", 3, &err) == 0, "%s", err.msg);
    CHECK(same(p, "one"), "written");
    CHECK(as_atomic_write_file(p, "two!", 4, &err) == 0, "%s", err.msg);
    CHECK(same(p, "two!"), "replaced");
    CHECK(count_named(dir, AS_ATOMIC_TMP_MARK) == 0, "no temporary left");
    /* a folder that does not exist: error naming the file, nothing created */
    snprintf(p, sizeof p, "%s/nope/a.txt", dir);
    CHECK(as_atomic_write_file(p, "x", 1, &err) == AS_ERR_IO && strstr(err.msg, "nope/a.txt"),
          "missing folder: %s", err.msg);
    /* abort leaves the previous file */
    snprintf(p, sizeof p, "%s/a.txt", dir);
    AsAtomicFile a;
    CHECK(as_atomic_begin(&a, p, &err) == 0, "%s", err.msg);
    fputs("half", a.f);
    CHECK(count_named(dir, AS_ATOMIC_TMP_MARK) == 1, "temporary while writing");
    as_atomic_abort(&a);
    CHECK(same(p, "two!") && count_named(dir, AS_ATOMIC_TMP_MARK) == 0, "abort");
}

/* a file size limit: the write fails, the previous file stays */
static void test_fsize(const char *dir)
{
    char p[600];
    snprintf(p, sizeof p, "%s/big.json", dir);
    put(p, "{\"old\": true}\n");
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = { 4096, 4096 };
        setrlimit(RLIMIT_FSIZE, &rl);
        AsJsonW w;
        as_jw_init(&w, 2);
        as_jw_array_begin(&w);
        for (int i = 0; i < 10000; i++)
            as_jw_int(&w, i);
        as_jw_array_end(&w);
        AsError err;
        int rc = as_jw_write_file(&w, p, &err);
        as_jw_free(&w);
        _exit(rc != 0 && strstr(err.msg, "big.json") ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "write over the size limit fails naming the file");
    CHECK(same(p, "{\"old\": true}\n"), "previous JSON intact");
    CHECK(count_named(dir, AS_ATOMIC_TMP_MARK) == 0, "temporary removed");
}

/* a full disk: a tiny tmpfs (needs root; skipped otherwise) */
static void test_full_disk(const char *dir)
{
    char mnt[600], p[700];
    snprintf(mnt, sizeof mnt, "%s/small", dir);
    mkdir(mnt, 0777);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k") != 0) {
        printf("full-disk case skipped: cannot mount a tmpfs (needs root)\n");
        return;
    }
    AsError err;
    /* a valid overlay PNG, then a re-run that does not fit */
    snprintf(p, sizeof p, "%s/x.overlay.png", mnt);
    uint8_t small[16 * 16 * 3];
    for (int i = 0; i < (int)sizeof small; i++)
        small[i] = (uint8_t)(i * 7);
    CHECK(as_png_write_rgb(p, small, 16, 16, &err) == 0, "%s", err.msg);
    struct stat st0, st1;
    stat(p, &st0);
    int w = 200, h = 200;
    uint8_t *noise = malloc((size_t)w * h * 3);
    uint32_t s = 1;
    for (int i = 0; i < w * h * 3; i++) {
        s = s * 1664525u + 1013904223u;
        noise[i] = (uint8_t)(s >> 24);
    }
    CHECK(as_png_write_rgb(p, noise, w, h, &err) == AS_ERR_IO && strstr(err.msg, "x.overlay.png"),
          "full disk is an error naming the file: %s", err.msg);
    uint8_t *back = NULL;
    int bw = 0, bh = 0;
    CHECK(stat(p, &st1) == 0 && st1.st_size == st0.st_size && st1.st_ino == st0.st_ino,
          "previous overlay intact");
    AsImage img;
    CHECK(as_image_load(p, &img, &err) == 0 && img.w == 16 &&
              memcmp(img.rgb, small, sizeof small) == 0,
          "previous overlay still decodes to its pixels");
    as_image_free(&img);
    free(back);
    (void)bw;
    (void)bh;
    /* the same for npy and JSON */
    snprintf(p, sizeof p, "%s/a.npy", mnt);
    int64_t shape1[1] = { 4 };
    float four[4] = { 1, 2, 3, 4 };
    CHECK(as_npy_write(p, AS_DT_F32, 1, shape1, four, &err) == 0, "%s", err.msg);
    int64_t shape2[1] = { 100000 };
    float *many = calloc(100000, sizeof *many);
    CHECK(as_npy_write(p, AS_DT_F32, 1, shape2, many, &err) == AS_ERR_IO, "npy on a full disk");
    AsNpy a;
    CHECK(as_npy_read(p, &a, &err) == 0 && a.numel == 4, "previous npy intact");
    as_npy_free(&a);
    free(many);
    free(noise);
    CHECK(count_named(mnt, AS_ATOMIC_TMP_MARK) == 0, "no temporaries left on the full disk");
    umount(mnt);
}

static void hook_kill(void)
{
    raise(SIGKILL);
}

/* a batch killed after the journal is finished by the next batch on the folder;
 * one killed while staging changes nothing */
static void test_batch(const char *dir)
{
    char root[600], p[700];
    snprintf(root, sizeof root, "%s/ds", dir);
    mkdir(root, 0777);
    snprintf(p, sizeof p, "%s/sub", root);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/index.json", root);
    put(p, "old index");
    snprintf(p, sizeof p, "%s/sub/gone.txt", root);
    put(p, "to be removed");
    for (int stage = 0; stage < 2; stage++) {
        pid_t pid = fork();
        if (pid == 0) {
            AsAtomicBatch *b = NULL;
            AsError err;
            if (as_atomic_batch_open(root, &b, &err))
                _exit(3);
            as_atomic_batch_put(b, "sub/new.txt", "new", 3, &err);
            as_atomic_batch_remove(b, "sub/gone.txt", &err);
            as_atomic_batch_put(b, "index.json", "new index", 9, &err);
            if (stage == 0)
                raise(SIGKILL); /* before the journal */
            as_atomic_test_hook = hook_kill;
            as_atomic_batch_commit(b, &err);
            _exit(4);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(WIFSIGNALED(st), "stage %d: killed", stage);
        snprintf(p, sizeof p, "%s/index.json", root);
        CHECK(same(p, "old index"), "stage %d: nothing visible before recovery", stage);
        AsAtomicBatch *b = NULL;
        AsError err;
        CHECK(as_atomic_batch_open(root, &b, &err) == 0, "%s", err.msg);
        as_atomic_batch_free(b);
        snprintf(p, sizeof p, "%s/sub", root);
        as_atomic_clean_dir(p, true);
        snprintf(p, sizeof p, "%s/index.json", root);
        if (stage == 0) {
            CHECK(same(p, "old index"), "killed before the journal: old dataset");
            snprintf(p, sizeof p, "%s/sub/new.txt", root);
            CHECK(access(p, F_OK) != 0, "no new file");
            snprintf(p, sizeof p, "%s/sub/gone.txt", root);
            CHECK(same(p, "to be removed"), "removal not done");
        } else {
            CHECK(same(p, "new index"), "killed after the journal: rolled forward");
            snprintf(p, sizeof p, "%s/sub/new.txt", root);
            CHECK(same(p, "new"), "new file in place");
            snprintf(p, sizeof p, "%s/sub/gone.txt", root);
            CHECK(access(p, F_OK) != 0, "removal done");
        }
        snprintf(p, sizeof p, "%s/sub", root);
        CHECK(count_named(root, AS_ATOMIC_TMP_MARK) == 0 && count_named(p, AS_ATOMIC_TMP_MARK) == 0 &&
                  count_named(root, AS_ATOMIC_JOURNAL_PREFIX) == 0,
              "stage %d: no temporaries or journals left", stage);
    }
}

/* the same with enough files in enough folders that the commit syncs the
 * file system once (syncfs) instead of each file and folder: killed while
 * staging, the old files; killed after the journal, every new file after
 * recovery; not killed, every new file at once, nothing left behind */
#define MANY 12
static void test_batch_many(const char *dir)
{
    char root[600], p[700], want[64];
    snprintf(root, sizeof root, "%s/many", dir);
    mkdir(root, 0777);
    bool mounted = false;
    for (int k = 0; k < MANY; k++) {
        snprintf(p, sizeof p, "%s/d%d", root, k);
        mkdir(p, 0777);
        if (k == 1) /* one folder on another file system: that one is synced too */
            mounted = mount("tmpfs", p, "tmpfs", 0, "size=1m") == 0;
        snprintf(p, sizeof p, "%s/d%d/f.txt", root, k);
        put(p, "old");
    }
    for (int stage = 0; stage < 3; stage++) {
        pid_t pid = fork();
        if (pid == 0) {
            AsAtomicBatch *b = NULL;
            AsError err;
            char rel[64], text[64];
            if (as_atomic_batch_open(root, &b, &err))
                _exit(3);
            for (int k = 0; k < MANY; k++) {
                snprintf(rel, sizeof rel, "d%d/f.txt", k);
                snprintf(text, sizeof text, "new %d %d", stage, k);
                if (as_atomic_batch_put(b, rel, text, strlen(text), &err))
                    _exit(5);
                snprintf(rel, sizeof rel, "d%d/g.txt", k);
                if (as_atomic_batch_put(b, rel, text, strlen(text), &err))
                    _exit(5);
            }
            if (stage == 0)
                raise(SIGKILL); /* before the journal */
            if (stage == 1)
                as_atomic_test_hook = hook_kill;
            int rc = as_atomic_batch_commit(b, &err);
            as_atomic_batch_free(b);
            _exit(rc ? 6 : 0);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        if (stage < 2)
            CHECK(WIFSIGNALED(st), "many, stage %d: killed", stage);
        else
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "many: committed (status %d)", st);
        AsAtomicBatch *b = NULL;
        AsError err;
        CHECK(as_atomic_batch_open(root, &b, &err) == 0, "%s", err.msg);
        as_atomic_batch_free(b);
        int good = 0;
        for (int k = 0; k < MANY; k++) {
            snprintf(p, sizeof p, "%s/d%d", root, k);
            as_atomic_clean_dir(p, true);
            CHECK(count_named(p, AS_ATOMIC_TMP_MARK) == 0, "many, stage %d: d%d no temporaries",
                  stage, k);
            snprintf(p, sizeof p, "%s/d%d/f.txt", root, k);
            if (stage == 0) {
                good += same(p, "old");
                snprintf(p, sizeof p, "%s/d%d/g.txt", root, k);
                good += access(p, F_OK) != 0;
            } else {
                snprintf(want, sizeof want, "new %d %d", stage, k);
                good += same(p, want);
                snprintf(p, sizeof p, "%s/d%d/g.txt", root, k);
                good += same(p, want);
            }
        }
        CHECK(good == 2 * MANY, "many, stage %d: %d of %d files as expected (%s)", stage, good,
              2 * MANY, stage == 0 ? "old" : "new");
        CHECK(count_named(root, AS_ATOMIC_JOURNAL_PREFIX) == 0 &&
                  count_named(root, AS_ATOMIC_TMP_MARK) == 0,
              "many, stage %d: no journal left", stage);
    }
    snprintf(p, sizeof p, "%s/d1", root);
    if (mounted)
        umount(p);
    else
        printf("many: the case of a subfolder on another file system skipped: cannot mount a "
               "tmpfs (needs root)\n");
}

/* stale temporaries: a dead pid's are removed, a live one's kept; a hostile
 * journal cannot rename or remove outside its folder */
static void test_stale(const char *dir)
{
    char root[600], p[800];
    snprintf(root, sizeof root, "%s/stale", dir);
    mkdir(root, 0777);
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    snprintf(p, sizeof p, "%s/.x.png" AS_ATOMIC_TMP_MARK "%ld.1", root, (long)dead);
    put(p, "partial");
    snprintf(p, sizeof p, "%s/.y.png" AS_ATOMIC_TMP_MARK "%ld.1", root, (long)getppid());
    put(p, "live");
    snprintf(p, sizeof p, "%s/x.alignseg-tmp.notours", root);
    put(p, "user file");
    snprintf(p, sizeof p, "%s/victim.txt", dir);
    put(p, "outside");
    snprintf(p, sizeof p, "%s/" AS_ATOMIC_JOURNAL_PREFIX "%ld.1", root, (long)dead);
    put(p, "D 14:../victim.txt\nR 6:../etc 3:abc\nEND\n");
    AsAtomicBatch *b = NULL;
    AsError err;
    CHECK(as_atomic_batch_open(root, &b, &err) == 0, "%s", err.msg);
    as_atomic_batch_free(b);
    CHECK(count_named(root, ".x.png" AS_ATOMIC_TMP_MARK) == 0, "dead process's temporary removed");
    CHECK(count_named(root, ".y.png" AS_ATOMIC_TMP_MARK) == 1, "live process's temporary kept");
    CHECK(count_named(root, "notours") == 1, "a user's file is not touched");
    snprintf(p, sizeof p, "%s/victim.txt", dir);
    CHECK(same(p, "outside"), "hostile journal did not reach outside");
    CHECK(count_named(root, AS_ATOMIC_JOURNAL_PREFIX) == 0, "hostile journal removed");
}

int main(void)
{
    char dir[] = "/tmp/alignseg_atomic_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return check_report("atomic");
    }
    test_basic(dir);
    test_fsize(dir);
    test_full_disk(dir);
    test_batch(dir);
    test_batch_many(dir);
    test_stale(dir);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(test_run(cmd) == 0, "cleanup");
    return check_report("atomic");
}
