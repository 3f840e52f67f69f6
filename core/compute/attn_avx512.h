/* attn_avx512: the AVX-512 register tiles of the attention for 64-wide
 * heads (as_mha_packed in attention.h, whose layout they read: keys as panels
 * of 16 keys, transposed and pre-scaled, (nkp/16, 64, 16); values as column
 * chunks of 16, (4, nk, 16)). Only when as_cpu_path() is AS_CPU_AVX512. */
#ifndef ALIGNSEG_ATTN_AVX512_H
#define ALIGNSEG_ATTN_AVX512_H

/* For rows (1..6) query rows q (64 values each, row stride ldq): scores s
 * (rows, nkp) = q kp^T, softmax over the first nk, o (rows, 64; row stride
 * ldo) = probabilities times the values. With row0, also the probabilities
 * of the first row (nk values). s is scratch of 6 * nkp floats. */
void attn_tile_avx512(const float *q, int ldq, const float *kp, int nkp, const float *vp, int nk,
                      float *s, float *o, int ldo, int rows, float *row0);

#endif
