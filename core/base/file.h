/* file: the one way alignseg opens a file for reading. Only regular files are
 * read: the path is stat'ed first, opened non-blocking (so a FIFO or a device
 * can never block open()), fstat'ed again (the same regular file), and only
 * then switched back to blocking reads. A FIFO, device, socket or directory is
 * refused at once with a message naming the file and what it is. Every reader
 * in core/io (checkpoints, images, .npy, JSON, resume states) goes through it. */
#ifndef ALIGNSEG_FILE_H
#define ALIGNSEG_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Open path read-only; *fd is a blocking descriptor of a regular file (close
 * it), *size its size in bytes. */
int as_file_open_read(const char *path, int *fd, uint64_t *size, AsError *err);

/* Read a whole regular file into a malloc'd buffer (NUL-terminated one byte
 * past *len, for text parsers). A file larger than max_bytes is refused
 * before anything is allocated; an empty file is refused unless allow_empty. */
int as_file_read_all(const char *path, uint64_t max_bytes, int allow_empty, uint8_t **buf,
                     size_t *len, AsError *err);

/* Map a whole regular file read-only into memory (copy-on-write private
 * mapping, so callers may even write to it without touching the file). An
 * empty file is an error. Release with as_file_unmap. */
int as_file_map(const char *path, uint8_t **base, size_t *len, AsError *err);
void as_file_unmap(void *base, size_t len);

#endif
