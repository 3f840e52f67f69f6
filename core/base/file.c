/* file: see file.h */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISFIFO(m))
        return "a named pipe (FIFO)";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISSOCK(m))
        return "a socket";
    return "not a regular file";
}

static int refuse(const char *path, mode_t m, AsError *err)
{
    return as_error_set(err, AS_ERR_IO, "%s: is %s, not a regular file", path, kind_of(m));
}

int as_file_open_read(const char *path, int *fd, uint64_t *size, AsError *err)
{
    *fd = -1;
    *size = 0;
    if (!path || !*path)
        return as_error_set(err, AS_ERR_ARG, "no file name given");
    struct stat st, st2;
    if (stat(path, &st) != 0)
        return as_error_set(err, AS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return refuse(path, st.st_mode, err);
    /* O_NONBLOCK: if the path was swapped for a FIFO since stat, open must not block */
    int f = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (f < 0)
        return as_error_set(err, AS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(f, &st2) != 0) {
        int e = errno;
        close(f);
        return as_error_set(err, AS_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st2.st_mode)) {
        close(f);
        return refuse(path, st2.st_mode, err);
    }
    int fl = fcntl(f, F_GETFL);
    if (fl < 0 || fcntl(f, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(f);
        return as_error_set(err, AS_ERR_IO, "%s: cannot read: %s", path, strerror(e));
    }
    if (st2.st_size < 0) {
        close(f);
        return as_error_set(err, AS_ERR_IO, "%s: cannot determine the file size", path);
    }
    *fd = f;
    *size = (uint64_t)st2.st_size;
    return AS_OK;
}

int as_file_read_all(const char *path, uint64_t max_bytes, int allow_empty, uint8_t **buf,
                     size_t *len, AsError *err)
{
    *buf = NULL;
    *len = 0;
    int fd;
    uint64_t size;
    int rc = as_file_open_read(path, &fd, &size, err);
    if (rc)
        return rc;
    if (size == 0 && !allow_empty) {
        close(fd);
        return as_error_set(err, AS_ERR_FORMAT, "%s: empty file", path);
    }
    if (size > max_bytes || size > (uint64_t)SIZE_MAX / 2) {
        close(fd);
        return as_error_set(err, AS_ERR_UNSUPPORTED, "%s: file is %llu bytes, more than the %llu accepted",
                            path, (unsigned long long)size, (unsigned long long)max_bytes);
    }
    uint8_t *b = malloc((size_t)size + 1);
    if (!b) {
        close(fd);
        return as_error_set(err, AS_ERR_NOMEM, "%s: out of memory reading %llu bytes", path,
                            (unsigned long long)size);
    }
    size_t got = 0;
    while (got < (size_t)size) {
        ssize_t r = read(fd, b + got, (size_t)size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(b);
            close(fd);
            return as_error_set(err, AS_ERR_IO, "%s: read error: %s", path, strerror(e));
        }
        if (r == 0)
            break; /* shrank while reading: parse what is there */
        got += (size_t)r;
    }
    close(fd);
    b[got] = '\0';
    *buf = b;
    *len = got;
    return AS_OK;
}

int as_file_map(const char *path, uint8_t **base, size_t *len, AsError *err)
{
    *base = NULL;
    *len = 0;
    int fd;
    uint64_t size;
    int rc = as_file_open_read(path, &fd, &size, err);
    if (rc)
        return rc;
    if (size == 0) {
        close(fd);
        return as_error_set(err, AS_ERR_FORMAT, "%s: empty file", path);
    }
    if (size > (uint64_t)SIZE_MAX / 2) {
        close(fd);
        return as_error_set(err, AS_ERR_NOMEM, "%s: file too large", path);
    }
    void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return as_error_set(err, AS_ERR_IO, "%s: cannot map: %s", path, strerror(e));
    *base = p;
    *len = (size_t)size;
    return AS_OK;
}

void as_file_unmap(void *base, size_t len)
{
    if (base && len)
        munmap(base, len);
}
