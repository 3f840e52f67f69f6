/* rng: our own deterministic random numbers for training (crop sampling,
 * shuffling, initialisation): xoshiro256** seeded through splitmix64. The
 * state is four 64-bit words, saved in checkpoints so --resume continues the
 * exact same sequence. Identical on every platform. */
#ifndef ALIGNSEG_RNG_H
#define ALIGNSEG_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} AsRng;

void as_rng_seed(AsRng *r, uint64_t seed);
/* Seed from two numbers (e.g. seed and epoch) for independent streams. */
void as_rng_seed2(AsRng *r, uint64_t seed, uint64_t stream);
uint64_t as_rng_u64(AsRng *r);
double as_rng_uniform(AsRng *r);                   /* [0, 1) with 53 bits */
double as_rng_uniform_range(AsRng *r, double lo, double hi);
int64_t as_rng_int(AsRng *r, int64_t lo, int64_t hi); /* uniform in [lo, hi] */
double as_rng_normal(AsRng *r);                    /* N(0, 1), Box-Muller */
/* N(0, std^2) restricted to [a, b] by resampling (a < 0 < b). */
double as_rng_trunc_normal(AsRng *r, double std, double a, double b);
/* Fisher-Yates shuffle of idx[0..n). */
void as_rng_shuffle(AsRng *r, int *idx, int n);

#endif
