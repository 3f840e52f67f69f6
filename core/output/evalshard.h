/* evalshard: one shard of a sharded evaluation (`alignseg eval --shard I/N
 * -o DIR`) and the exact merge of N of them (`alignseg merge`).
 *
 * A shard folder holds DIR/alignseg-eval-shard.json (written atomically,
 * atomic.h): what the run was (alignseg version, the model's source and a
 * fingerprint of its weights, the options that change the scores, the number
 * of clusters, the ignore value, the protocol asked for), which shard ({"index":
 * I, "count": N} of a list of "total_images"), and its block of the sorted
 * image list in order, each image with its confusion (eval.h: the (cluster,
 * class, pixels) cells, flattened as [pred, cls, count, ...]) or, for an
 * image that failed, the error. Only integers are stored: the merge adds the
 * confusions of shard 0, 1, ... N-1 in order with as_eval_add_confusion,
 * exactly the additions a single run makes, so every score (per-image
 * protocol and Hungarian matching over the whole set) is the same to the bit.
 *
 * The merge refuses, naming the folder: a folder without the file, a file
 * that is not a shard (every field is checked: it is hostile input, read
 * through base/file with the JSON reader's bounds), a foreign shard (other
 * alignseg, weights, options, cluster count, ignore value, shard count or
 * list size), two folders with the same shard, a missing shard, a shard
 * whose image count is not its block's, and image lists out of order across
 * shards (shards of different lists). */
#ifndef ALIGNSEG_EVALSHARD_H
#define ALIGNSEG_EVALSHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "eval.h"
#include "model.h"

#define AS_EVAL_SHARD_FILE "alignseg-eval-shard.json"
#define AS_EVAL_SHARD_FORMAT "alignseg-eval-shard"
#define AS_EVAL_SHARD_VERSION 1

typedef struct {
    char *name;          /* the image's file name */
    char *error;         /* NULL, or why it failed (then conf is empty) */
    AsEvalConfusion conf;
} AsEvalShardImage;

typedef struct {
    char *generator;   /* "alignseg VERSION" */
    char *model;       /* the model's source (file names; not compared) */
    char *fingerprint; /* as_eval_model_fingerprint */
    char *settings;    /* the options that change the scores, one canonical string */
    int clusters, ignore;
    AsEvalProtocol protocol;
    int shard_index, shard_count;
    int64_t total_images; /* the whole, unsharded list */
    AsEvalShardImage *images;
    size_t nimages, cap;
} AsEvalShard;

/* s zeroed; then fill the header fields with as_eval_shard_set. */
void as_eval_shard_init(AsEvalShard *s);
int as_eval_shard_set(AsEvalShard *s, const char *generator, const char *model,
                      const char *fingerprint, const char *settings, AsError *err);
/* Append an image (in list order): its confusion is taken over (c is left
 * empty), or error != NULL for an image that failed. */
int as_eval_shard_add(AsEvalShard *s, const char *name, AsEvalConfusion *c, const char *error,
                      AsError *err);
void as_eval_shard_free(AsEvalShard *s);
/* Images that failed. */
size_t as_eval_shard_failed(const AsEvalShard *s);

/* DIR/alignseg-eval-shard.json, atomically (DIR must exist). */
int as_eval_shard_write(const AsEvalShard *s, const char *dir, AsError *err);
/* Read and check DIR/alignseg-eval-shard.json into s (initialised here). */
int as_eval_shard_read(const char *dir, AsEvalShard *s, AsError *err);
/* The same check of a shard file's bytes already in memory (name: the file,
 * for messages); the file variant reads through base/file and calls it. */
int as_eval_shard_read_mem(const uint8_t *data, size_t len, const char *name, AsEvalShard *s,
                           AsError *err);
/* DIR holds a shard file (it may still be unreadable). */
bool as_eval_shard_exists(const char *dir);
/* What makes b a shard of another run than a: "alignseg version", "model
 * weights", "options", "cluster count", "ignore value", "shard count" or
 * "image count"; NULL when they are shards of the same run. */
const char *as_eval_shard_differs(const AsEvalShard *a, const AsEvalShard *b);

/* Read the n shard folders, check that they are the N shards of one run,
 * each once, and add every image's confusion to e (initialised here; free
 * with as_eval_free) in shard order. *head receives shard 0's header (its
 * images are dropped; free with as_eval_shard_free) and *failed the images
 * that failed in the shards. */
int as_eval_shards_merge(const char *const *dirs, int n, AsEval *e, AsEvalShard *head,
                         int64_t *failed, AsError *err);

/* 16 hex digits: a 64-bit hash of the model's tensors (names in byte order,
 * shapes, values), so the same weights give the same fingerprint whatever
 * file they were loaded from. Not cryptographic: it tells shards of other
 * weights apart, it does not defend against forgery. */
int as_eval_model_fingerprint(const AsModel *m, char out[17], AsError *err);

#endif
