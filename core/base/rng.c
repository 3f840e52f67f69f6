/* rng: see rng.h. xoshiro256** (Blackman and Vigna) as published in their
 * paper; splitmix64 expands a seed into the state. */
#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void as_rng_seed(AsRng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1;
}

void as_rng_seed2(AsRng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = stream;
    as_rng_seed(r, seed ^ splitmix64(&x));
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t as_rng_u64(AsRng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double as_rng_uniform(AsRng *r)
{
    return (double)(as_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

double as_rng_uniform_range(AsRng *r, double lo, double hi)
{
    return lo + (hi - lo) * as_rng_uniform(r);
}

int64_t as_rng_int(AsRng *r, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    uint64_t range = (uint64_t)(hi - lo) + 1u;
    if (range == 0) /* full 64-bit range */
        return (int64_t)as_rng_u64(r);
    /* rejection sampling: no modulo bias */
    uint64_t limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t x;
    do
        x = as_rng_u64(r);
    while (x >= limit);
    return lo + (int64_t)(x % range);
}

double as_rng_normal(AsRng *r)
{
    double u1;
    do
        u1 = as_rng_uniform(r);
    while (u1 <= 0.0);
    double u2 = as_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double as_rng_trunc_normal(AsRng *r, double std, double a, double b)
{
    for (int i = 0; i < 1000; i++) {
        double x = std * as_rng_normal(r);
        if (x >= a && x <= b)
            return x;
    }
    return 0.0;
}

void as_rng_shuffle(AsRng *r, int *idx, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)as_rng_int(r, 0, i);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
