/* attention: multi-head scaled dot-product attention on already-projected
 * queries, keys and values, split over the thread pool (pool.h) by (head,
 * block of query rows). Three variants: as_mha keeps every probability
 * (training), as_mha_lowmem one head's block per thread, as_mha_packed
 * register tiles for 64-wide heads on AVX2+FMA CPUs (the encoder). */
#ifndef ALIGNSEG_ATTENTION_H
#define ALIGNSEG_ATTENTION_H

#include <stddef.h>

/* Multi-head scaled dot-product attention on already-projected q (nq, D),
 * k (nk, D), v (nk, D) with row strides ldq/ldk/ldv; out (nq, D).
 * probs (heads, nq, nk) is scratch and, on return, holds the probabilities. */
void as_mha(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
            int nq, int nk, int dim, int heads, float *probs, float *out);
/* As as_mha but with scratch for one head only: scratch (nq, nk). If row0 is
 * not NULL, the probabilities of query row 0 of every head are copied to
 * row0 (heads, nk) (the encoder's CLS attention). For large token counts. */
void as_mha_lowmem(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                   int nq, int nk, int dim, int heads, float *scratch, float *row0,
                   float *out);

/* As as_mha_lowmem, faster for 64-wide heads on AVX2+FMA CPUs: keys and
 * values are laid out per head in scratch, then each block of query rows
 * runs scores, softmax and values with register tiles (no sgemm calls).
 * scratch holds scratch_floats floats; the fast path needs
 * as_mha_packed_scratch(nq, nk, dim, heads, as_threads()) of them, otherwise
 * (or for other head widths / CPUs) this calls as_mha_lowmem, which needs
 * nq * nk: give max of the two. */
size_t as_mha_packed_scratch(int nq, int nk, int dim, int heads, int threads);
void as_mha_packed(const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                   int nq, int nk, int dim, int heads, float *scratch, size_t scratch_floats,
                   float *row0, float *out);

/* as_mha_packed on count images at once, their attention kept apart: image
 * i's rows are q + i nq ldq, k + i nk ldk, v + i nk ldv, out + i nq dim, its
 * row0 (if given) row0 + i heads nk. The (image, head) pairs and their
 * blocks of query rows are spread over the pool together; every row's
 * numbers are those of as_mha_packed on its image alone. The fast path
 * needs as_mha_packed_batch_scratch(count, ...) floats, otherwise the
 * images run one after the other through as_mha_lowmem (nq * nk). */
size_t as_mha_packed_batch_scratch(int count, int nq, int nk, int dim, int heads, int threads);
void as_mha_packed_batch(int count, const float *q, int ldq, const float *k, int ldk,
                         const float *v, int ldv, int nq, int nk, int dim, int heads,
                         float *scratch, size_t scratch_floats, float *row0, float *out);

#endif
