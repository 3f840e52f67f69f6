/* atomic: see atomic.h */
#include "atomic.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void (*as_atomic_test_hook)(void) = NULL;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long seq_counter = 0;
/* folders already cleaned by this process */
static char **cleaned = NULL;
static size_t ncleaned = 0, capcleaned = 0;

static unsigned long next_seq(void)
{
    pthread_mutex_lock(&lock);
    unsigned long s = ++seq_counter;
    pthread_mutex_unlock(&lock);
    return s;
}

/* dir part of path into buf ("." when none) */
static void dir_of(const char *path, char *buf, size_t len)
{
    const char *s = strrchr(path, '/');
    if (!s)
        snprintf(buf, len, ".");
    else if (s == path)
        snprintf(buf, len, "/");
    else
        snprintf(buf, len, "%.*s", (int)(s - path), path);
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    /* some file systems cannot fsync a folder; that is not a write failure */
    if (rc != 0 && (errno == EINVAL || errno == EROFS || errno == EBADF))
        rc = 0;
    close(fd);
    return rc;
}

/* start time (clock ticks after boot, /proc/PID/stat field 22) of a process,
 * 0 when unknown: with the pid it names a process even after pid reuse.
 * *zombie: the process has exited (killed, not yet reaped). */
static unsigned long long proc_start(long pid, bool *zombie)
{
    *zombie = false;
    char p[64], buf[1024];
    snprintf(p, sizeof p, "/proc/%ld/stat", pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    const char *c = strrchr(buf, ')'); /* the command name may hold spaces */
    if (c && c[1] == ' ' && (c[2] == 'Z' || c[2] == 'X'))
        *zombie = true;
    int field = 2;
    for (; c && *c && field < 22; c++)
        if (*c == ' ')
            field++;
    return c ? strtoull(c, NULL, 10) : 0;
}

static unsigned long long own_start;
static pthread_once_t own_once = PTHREAD_ONCE_INIT;

static void init_own_start(void)
{
    bool z;
    own_start = proc_start((long)getpid(), &z);
}

static unsigned long long my_start(void)
{
    pthread_once(&own_once, init_own_start);
    return own_start;
}

/* owner (pid, start time) of a temporary or journal name; pid -1 when the
 * name is not one of ours */
static long owner_pid(const char *name, unsigned long long *start)
{
    const char *m = strstr(name, AS_ATOMIC_TMP_MARK);
    if (m && name[0] == '.')
        m += strlen(AS_ATOMIC_TMP_MARK);
    else if (!strncmp(name, AS_ATOMIC_JOURNAL_PREFIX, strlen(AS_ATOMIC_JOURNAL_PREFIX)))
        m = name + strlen(AS_ATOMIC_JOURNAL_PREFIX);
    else
        return -1;
    char *end;
    errno = 0;
    long pid = strtol(m, &end, 10);
    if (errno || end == m || pid <= 0)
        return -1;
    *start = 0;
    if (*end == '-')
        *start = strtoull(end + 1, &end, 10);
    if (*end != '.' && *end != '\0')
        return -1;
    return pid;
}

static bool pid_alive(long pid, unsigned long long start)
{
    if (pid == (long)getpid() && (start == 0 || start == my_start()))
        return true;
    if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
        return false;
    bool zombie;
    unsigned long long now = proc_start(pid, &zombie);
    if (zombie) /* killed, waiting to be reaped */
        return false;
    return start == 0 || now == 0 || now == start; /* a reused pid is another process */
}

static bool mark_cleaned(const char *dir)
{
    bool first = true;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < ncleaned; i++)
        if (!strcmp(cleaned[i], dir))
            first = false;
    if (first) {
        if (ncleaned == capcleaned) {
            size_t nc = capcleaned ? 2 * capcleaned : 16;
            char **n = realloc(cleaned, nc * sizeof *n);
            if (n) {
                cleaned = n;
                capcleaned = nc;
            }
        }
        char *d = ncleaned < capcleaned ? strdup(dir) : NULL;
        if (d)
            cleaned[ncleaned++] = d;
    }
    pthread_mutex_unlock(&lock);
    return first;
}

int as_atomic_clean_dir(const char *dir, bool force)
{
    if (!mark_cleaned(dir) && !force)
        return 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.' || !strstr(e->d_name, AS_ATOMIC_TMP_MARK))
            continue;
        unsigned long long st0 = 0;
        long pid = owner_pid(e->d_name, &st0);
        if (pid < 0 || pid_alive(pid, st0))
            continue;
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p)
            continue;
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) && unlink(p) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

static char *make_tmp_name(const char *path)
{
    const char *base = strrchr(path, '/');
    size_t dlen = base ? (size_t)(base - path) + 1 : 0;
    base = base ? base + 1 : path;
    size_t n = strlen(path) + 96;
    char *t = malloc(n);
    if (t)
        snprintf(t, n, "%.*s.%s" AS_ATOMIC_TMP_MARK "%ld-%llu.%lu", (int)dlen, path, base,
                 (long)getpid(), my_start(), next_seq());
    return t;
}

int as_atomic_begin(AsAtomicFile *a, const char *path, AsError *err)
{
    memset(a, 0, sizeof *a);
    const char *base = path ? strrchr(path, '/') : NULL;
    base = base ? base + 1 : path;
    if (!path || !*base)
        return as_error_set(err, AS_ERR_ARG, "%s: not a file name", path ? path : "(null)");
    char dir[PATH_MAX];
    dir_of(path, dir, sizeof dir);
    as_atomic_clean_dir(dir, false);
    a->path = strdup(path);
    a->tmp = make_tmp_name(path);
    if (!a->path || !a->tmp) {
        as_atomic_abort(a);
        return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", path);
    }
    int fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        int e = errno;
        free(a->tmp);
        a->tmp = NULL;
        as_atomic_abort(a);
        return as_error_set(err, AS_ERR_IO, "%s: cannot create (in %s): %s", path, dir,
                            strerror(e));
    }
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        close(fd);
        as_atomic_abort(a);
        return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", path);
    }
    return 0;
}

void as_atomic_abort(AsAtomicFile *a)
{
    if (!a)
        return;
    if (a->f)
        fclose(a->f);
    if (a->tmp)
        unlink(a->tmp);
    free(a->tmp);
    free(a->path);
    memset(a, 0, sizeof *a);
}

/* flush, fsync (or, when !sync, only start the write-back: the caller makes
 * it durable later) and close a->f; on failure the temporary is removed */
static int finish_tmp_ex(AsAtomicFile *a, bool sync, AsError *err)
{
    if (!a->f)
        return as_error_set(err, AS_ERR_ARG, "%s: no file being written",
                            a->path ? a->path : "(null)");
    int e = 0;
    if (fflush(a->f) != 0 || ferror(a->f))
        e = errno ? errno : EIO;
    if (!e && sync && fsync(fileno(a->f)) != 0)
        e = errno;
    if (!e && !sync) /* a hint: errors show at the later sync */
        sync_file_range(fileno(a->f), 0, 0, SYNC_FILE_RANGE_WRITE);
    if (fclose(a->f) != 0 && !e)
        e = errno ? errno : EIO;
    a->f = NULL;
    if (e) {
        int rc = as_error_set(err, AS_ERR_IO, "%s: write failed (%s); the previous file is kept",
                              a->path, strerror(e));
        as_atomic_abort(a);
        return rc;
    }
    return 0;
}

static int finish_tmp(AsAtomicFile *a, AsError *err)
{
    return finish_tmp_ex(a, true, err);
}

int as_atomic_commit(AsAtomicFile *a, AsError *err)
{
    int rc = finish_tmp(a, err);
    if (rc)
        return rc;
    if (rename(a->tmp, a->path) != 0) {
        rc = as_error_set(err, AS_ERR_IO, "%s: cannot replace: %s", a->path, strerror(errno));
        as_atomic_abort(a);
        return rc;
    }
    char dir[PATH_MAX];
    dir_of(a->path, dir, sizeof dir);
    if (fsync_dir(dir) != 0)
        rc = as_error_set(err, AS_ERR_IO, "%s: cannot sync the folder %s: %s", a->path, dir,
                          strerror(errno));
    free(a->tmp);
    a->tmp = NULL; /* renamed: nothing to remove */
    as_atomic_abort(a);
    return rc;
}

int as_atomic_write_file(const char *path, const void *data, size_t len, AsError *err)
{
    AsAtomicFile a;
    int rc = as_atomic_begin(&a, path, err);
    if (rc)
        return rc;
    if (len && fwrite(data, 1, len, a.f) != len) {
        rc = as_error_set(err, AS_ERR_IO, "%s: write failed (%s); the previous file is kept",
                          path, strerror(errno));
        as_atomic_abort(&a);
        return rc;
    }
    return as_atomic_commit(&a, err);
}

/* ---- batches ---- */

typedef struct {
    char *rel;
    char *tmp; /* NULL: a removal */
} Change;

struct AsAtomicBatch {
    char *root;
    Change *ch;
    size_t n, cap;
};

/* rel is relative, without empty, "." or ".." components */
static bool rel_ok(const char *rel)
{
    if (!rel || !*rel || rel[0] == '/')
        return false;
    const char *p = rel;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += n;
        if (*p == '/')
            p++;
    }
    return rel[strlen(rel) - 1] != '/';
}

static int join(const char *root, const char *rel, char *buf, size_t len, AsError *err)
{
    if (snprintf(buf, len, "%s/%s", root, rel) >= (int)len)
        return as_error_set(err, AS_ERR_ARG, "%s/%s: path too long", root, rel);
    return 0;
}

/* journal lines: "R <len>:<tmp-rel> <len>:<rel>\n" or "D <len>:<rel>\n".
 * A journal is at most this long (replay reads it whole): a merge of COCO's
 * 118k images lists ~700k renames, ~100 MB. */
#define AS_ATOMIC_JOURNAL_MAX ((off_t)1 << 30)
static bool jr_field(const char **p, const char *end, char *out, size_t outlen)
{
    char *e;
    errno = 0;
    unsigned long n = strtoul(*p, &e, 10);
    if (errno || e == *p || e >= end || *e != ':' || n == 0 || n >= outlen ||
        n > (unsigned long)(end - e - 1))
        return false;
    memcpy(out, e + 1, n);
    out[n] = '\0';
    if (memchr(out, '\0', n))
        return false;
    *p = e + 1 + n;
    return true;
}

/* Finish what a journal lists. Hostile-safe: only relative paths inside root,
 * and only temporaries (by name) are renamed. */
static void replay_journal(const char *root, const char *jpath)
{
    int fd = open(jpath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > AS_ATOMIC_JOURNAL_MAX) {
        close(fd);
        return;
    }
    size_t len = (size_t)st.st_size;
    char *buf = malloc(len + 1);
    size_t got = 0;
    while (buf && got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!buf || got != len || len < 8 || memcmp(buf + len - 4, "END\n", 4)) {
        free(buf); /* incomplete journals are never renamed into place */
        return;
    }
    const char *p = buf, *end = buf + len - 4;
    char a[PATH_MAX], b[PATH_MAX], pa[PATH_MAX], pb[PATH_MAX];
    while (p < end) {
        char kind = *p;
        p += 2;
        if (p > end)
            break;
        if (kind == 'R' && jr_field(&p, end, a, sizeof a) && p < end && *p == ' ') {
            p++;
            if (!jr_field(&p, end, b, sizeof b))
                break;
            const char *tb = strrchr(a, '/');
            tb = tb ? tb + 1 : a;
            if (rel_ok(a) && rel_ok(b) && tb[0] == '.' && strstr(tb, AS_ATOMIC_TMP_MARK) &&
                join(root, a, pa, sizeof pa, NULL) == 0 && join(root, b, pb, sizeof pb, NULL) == 0)
                rename(pa, pb); /* a missing temporary was renamed already */
        } else if (kind == 'D' && jr_field(&p, end, a, sizeof a)) {
            if (rel_ok(a) && join(root, a, pa, sizeof pa, NULL) == 0)
                unlink(pa);
        } else {
            break;
        }
        if (p < end && *p == '\n')
            p++;
        else
            break;
    }
    free(buf);
    fsync_dir(root);
    unlink(jpath);
    fsync_dir(root);
}

static void recover(const char *root)
{
    DIR *d = opendir(root);
    if (!d)
        return;
    struct dirent *e;
    char **todo = NULL;
    size_t n = 0;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, AS_ATOMIC_JOURNAL_PREFIX, strlen(AS_ATOMIC_JOURNAL_PREFIX)))
            continue;
        unsigned long long st0 = 0;
        long pid = owner_pid(e->d_name, &st0);
        if (pid < 0 || pid_alive(pid, st0) || strstr(e->d_name, AS_ATOMIC_TMP_MARK))
            continue;
        char **t = realloc(todo, (n + 1) * sizeof *t);
        if (!t)
            break;
        todo = t;
        todo[n] = malloc(strlen(root) + strlen(e->d_name) + 2);
        if (todo[n])
            sprintf(todo[n++], "%s/%s", root, e->d_name);
    }
    closedir(d);
    for (size_t i = 0; i < n; i++) {
        replay_journal(root, todo[i]);
        free(todo[i]);
    }
    free(todo);
}

int as_atomic_batch_open(const char *root, AsAtomicBatch **out, AsError *err)
{
    *out = NULL;
    struct stat st;
    if (!root || stat(root, &st) != 0 || !S_ISDIR(st.st_mode))
        return as_error_set(err, AS_ERR_IO, "%s: not a folder", root ? root : "(null)");
    AsAtomicBatch *b = calloc(1, sizeof *b);
    if (!b || !(b->root = strdup(root))) {
        free(b);
        return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", root);
    }
    recover(root);
    as_atomic_clean_dir(root, false);
    *out = b;
    return 0;
}

static int add_change(AsAtomicBatch *b, const char *rel, char *tmp, AsError *err)
{
    char *r = strdup(rel);
    size_t nc = b->n == b->cap ? (b->cap ? 2 * b->cap : 16) : b->cap;
    Change *c = r ? realloc(b->ch, nc * sizeof *c) : NULL;
    if (!c) {
        free(r);
        return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", rel);
    }
    b->ch = c;
    b->cap = nc;
    /* a later change of the same file replaces the earlier one */
    for (size_t i = 0; i < b->n; i++)
        if (!strcmp(b->ch[i].rel, rel)) {
            if (b->ch[i].tmp)
                unlink(b->ch[i].tmp);
            free(b->ch[i].tmp);
            free(b->ch[i].rel);
            memmove(b->ch + i, b->ch + i + 1, (b->n - i - 1) * sizeof *c);
            b->n--;
            break;
        }
    b->ch[b->n].rel = r;
    b->ch[b->n].tmp = tmp;
    b->n++;
    return 0;
}

int as_atomic_batch_put(AsAtomicBatch *b, const char *rel, const void *data, size_t len,
                        AsError *err)
{
    if (!rel_ok(rel))
        return as_error_set(err, AS_ERR_ARG, "%s: bad output name '%s'", b->root,
                            rel ? rel : "");
    char path[PATH_MAX];
    int rc = join(b->root, rel, path, sizeof path, err);
    if (rc)
        return rc;
    AsAtomicFile a;
    if ((rc = as_atomic_begin(&a, path, err)))
        return rc;
    if (len && fwrite(data, 1, len, a.f) != len) {
        rc = as_error_set(err, AS_ERR_IO, "%s: write failed (%s); the previous file is kept",
                          path, strerror(errno));
        as_atomic_abort(&a);
        return rc;
    }
    if ((rc = finish_tmp_ex(&a, false, err))) /* made durable by the commit */
        return rc;
    char *tmp = a.tmp;
    a.tmp = NULL;
    as_atomic_abort(&a);
    rc = add_change(b, rel, tmp, err);
    if (rc) {
        unlink(tmp);
        free(tmp);
    }
    return rc;
}

int as_atomic_batch_remove(AsAtomicBatch *b, const char *rel, AsError *err)
{
    if (!rel_ok(rel))
        return as_error_set(err, AS_ERR_ARG, "%s: bad output name '%s'", b->root,
                            rel ? rel : "");
    return add_change(b, rel, NULL, err);
}

size_t as_atomic_batch_count(const AsAtomicBatch *b)
{
    return b ? b->n : 0;
}

static void drop_changes(AsAtomicBatch *b, bool unlink_tmp)
{
    for (size_t i = 0; i < b->n; i++) {
        if (unlink_tmp && b->ch[i].tmp)
            unlink(b->ch[i].tmp);
        free(b->ch[i].tmp);
        free(b->ch[i].rel);
    }
    b->n = 0;
}

static bool jr_append(char **buf, size_t *len, size_t *cap, const char *fmt, const char *a,
                      const char *c)
{
    size_t need = strlen(a) + (c ? strlen(c) : 0) + 64;
    if (*len + need > *cap) {
        size_t nc = *cap ? *cap : 4096;
        while (nc < *len + need)
            nc *= 2;
        char *nb = realloc(*buf, nc);
        if (!nb)
            return false;
        *buf = nb;
        *cap = nc;
    }
    int n = c ? snprintf(*buf + *len, *cap - *len, fmt, strlen(a), a, strlen(c), c)
              : snprintf(*buf + *len, *cap - *len, fmt, strlen(a), a);
    *len += (size_t)n;
    return true;
}

/* Make every staged temporary durable before the journal names it. Staging
 * wrote them without fsync (one fsync per file costs a journal commit of the
 * file system each: ~40 ms a file on a loaded disk, docs/SCALING.md). A few
 * files: reopen and fsync each. Many: one syncfs(2) of each file system that
 * the batch's folders lie on (usually only root's),
 * which writes back every dirty page and the metadata (the temporaries'
 * folder entries included) and, since Linux 5.8, reports a write-back error
 * of any file there. On failure nothing is renamed (the caller discards). */
#define AS_ATOMIC_SYNCFS_MIN 8
/* syncfs every file system that holds a folder of a change (root's, and any
 * other a subfolder of root is mounted from or links to); on failure *failed
 * names the folder and the return is the errno */
static int sync_filesystems(const AsAtomicBatch *b, char *failed, size_t flen)
{
    dev_t done[16];
    size_t ndone = 0;
    char path[PATH_MAX], dir[PATH_MAX];
    for (size_t i = 0; i <= b->n; i++) {
        if (i == b->n)
            snprintf(dir, sizeof dir, "%s", b->root);
        else if (join(b->root, b->ch[i].rel, path, sizeof path, NULL) == 0)
            dir_of(path, dir, sizeof dir);
        else
            continue;
        struct stat st;
        if (stat(dir, &st) != 0)
            continue; /* the rename or put named it: reported there */
        bool seen = false;
        for (size_t k = 0; k < ndone; k++)
            seen |= done[k] == st.st_dev;
        if (seen)
            continue;
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int e = fd < 0 || syncfs(fd) != 0 ? errno : 0;
        if (fd >= 0)
            close(fd);
        if (e) {
            snprintf(failed, flen, "%s", dir);
            return e;
        }
        if (ndone < sizeof done / sizeof done[0])
            done[ndone++] = st.st_dev;
    }
    return 0;
}

static int sync_staged(AsAtomicBatch *b, AsError *err)
{
    size_t ntmp = 0;
    for (size_t i = 0; i < b->n; i++)
        ntmp += b->ch[i].tmp != NULL;
    if (ntmp == 0)
        return 0;
    if (ntmp >= AS_ATOMIC_SYNCFS_MIN) {
        char failed[PATH_MAX];
        int e = sync_filesystems(b, failed, sizeof failed);
        if (e)
            return as_error_set(err, AS_ERR_IO,
                                "%s: write failed (%s); the previous files are kept", failed,
                                strerror(e));
        return 0;
    }
    for (size_t i = 0; i < b->n; i++) {
        if (!b->ch[i].tmp)
            continue;
        int fd = open(b->ch[i].tmp, O_RDONLY | O_CLOEXEC);
        int e = fd < 0 ? errno : 0;
        if (fd >= 0 && fsync(fd) != 0)
            e = errno;
        if (fd >= 0)
            close(fd);
        if (e)
            return as_error_set(err, AS_ERR_IO,
                                "%s/%s: write failed (%s); the previous file is kept", b->root,
                                b->ch[i].rel, strerror(e));
    }
    return 0;
}

int as_atomic_batch_commit(AsAtomicBatch *b, AsError *err)
{
    if (b->n == 0)
        return 0;
    int src = sync_staged(b, err);
    if (src) {
        drop_changes(b, true);
        return src;
    }
    size_t rl = strlen(b->root);
    char *j = NULL;
    size_t jlen = 0, jcap = 0;
    bool ok = true;
    for (size_t i = 0; i < b->n && ok; i++) {
        if (b->ch[i].tmp) /* temporaries were made as root + "/" + rel-dir + name */
            ok = jr_append(&j, &jlen, &jcap, "R %zu:%s %zu:%s\n", b->ch[i].tmp + rl + 1,
                           b->ch[i].rel);
        else
            ok = jr_append(&j, &jlen, &jcap, "D %zu:%s\n", b->ch[i].rel, NULL);
    }
    ok = ok && jr_append(&j, &jlen, &jcap, "%.0zu%sEND\n", "", NULL); /* the end mark */
    if (!ok) {
        free(j);
        return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", b->root);
    }
    if ((off_t)jlen > AS_ATOMIC_JOURNAL_MAX) { /* one that recovery would not read */
        free(j);
        drop_changes(b, true);
        return as_error_set(err, AS_ERR_ARG, "%s: too many files for one change (%zu)",
                            b->root, b->n);
    }
    char jpath[PATH_MAX];
    snprintf(jpath, sizeof jpath, "%s/" AS_ATOMIC_JOURNAL_PREFIX "%ld-%llu.%lu", b->root,
             (long)getpid(), my_start(), next_seq());
    int rc = as_atomic_write_file(jpath, j, jlen, err);
    free(j);
    if (rc) {
        drop_changes(b, true);
        return rc;
    }
    /* committed: from here on a kill is finished by the next batch on root */
    if (as_atomic_test_hook)
        as_atomic_test_hook();
    /* many changes: one syncfs after all of them rather than an fsync per
     * folder switch (an export's files alternate between folders) */
    bool many = b->n >= AS_ATOMIC_SYNCFS_MIN;
    char path[PATH_MAX], dir[PATH_MAX], pending[PATH_MAX] = "";
    for (size_t i = 0; i < b->n && rc == 0; i++) {
        rc = join(b->root, b->ch[i].rel, path, sizeof path, err);
        if (rc)
            break;
        if (b->ch[i].tmp) {
            if (rename(b->ch[i].tmp, path) != 0)
                rc = as_error_set(err, AS_ERR_IO, "%s: cannot replace: %s", path, strerror(errno));
            else {
                free(b->ch[i].tmp);
                b->ch[i].tmp = NULL;
                dir_of(path, dir, sizeof dir);
                if (!many && strcmp(dir, pending)) { /* sync each folder once its renames are done */
                    if (pending[0])
                        fsync_dir(pending);
                    snprintf(pending, sizeof pending, "%s", dir);
                }
            }
        } else if (unlink(path) != 0 && errno != ENOENT) {
            rc = as_error_set(err, AS_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
        }
    }
    if (pending[0])
        fsync_dir(pending);
    if (many) { /* the renames and removals are durable before the journal goes */
        char failed[PATH_MAX];
        if (sync_filesystems(b, failed, sizeof failed) != 0)
            for (size_t i = 0; i < b->n; i++) /* fall back: every folder touched */
                if (join(b->root, b->ch[i].rel, path, sizeof path, NULL) == 0) {
                    dir_of(path, dir, sizeof dir);
                    if (strcmp(dir, pending)) {
                        fsync_dir(dir);
                        snprintf(pending, sizeof pending, "%s", dir);
                    }
                }
    }
    if (rc == 0) {
        unlink(jpath);
        fsync_dir(b->root);
    }
    /* on a failed rename the journal stays: the next run finishes it */
    drop_changes(b, false);
    return rc;
}

void as_atomic_batch_discard(AsAtomicBatch *b)
{
    if (b)
        drop_changes(b, true);
}

void as_atomic_batch_free(AsAtomicBatch *b)
{
    if (!b)
        return;
    drop_changes(b, true);
    free(b->ch);
    free(b->root);
    free(b);
}
