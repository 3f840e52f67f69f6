/* test_viewer_edit_ticks: the numbered colour bars' ticks (ui/detail.c,
 * detail_ticks): round numbers 1, 2 or 5 times a power of ten apart inside
 * [lo, hi]. The expected ticks are worked out by hand. No display needed. */
#include "check.h"

#include "detail.h"

static void expect(double lo, double hi, int max, int n_want, const double *want, int dec_want)
{
    double t[16];
    int dec = -1;
    int n = detail_ticks(lo, hi, max, t, &dec);
    CHECK(n == n_want, "[%g, %g] max %d: %d ticks, expected %d", lo, hi, max, n, n_want);
    for (int i = 0; i < n && i < n_want; i++)
        CHECK(fabs(t[i] - want[i]) < 1e-12, "[%g, %g] tick %d: %.17g, expected %g", lo, hi, i,
              t[i], want[i]);
    CHECK(dec == dec_want, "[%g, %g]: %d decimals, expected %d", lo, hi, dec, dec_want);
}

int main(void)
{
    /* (1 - 0) / 5 = 0.2 per gap: steps of 0.2 */
    expect(0, 1, 6, 6, (const double[]){ 0, 0.2, 0.4, 0.6, 0.8, 1.0 }, 1);
    /* 2 / 4 = 0.5: steps of 0.5 through 0 */
    expect(-1, 1, 5, 5, (const double[]){ -1, -0.5, 0, 0.5, 1 }, 1);
    /* 250 / 3 = 83.3: the next round step is 100 */
    expect(0, 250, 4, 3, (const double[]){ 0, 100, 200 }, 0);
    /* 0.0032 / 2 = 0.0016: steps of 0.002 from 0.124 */
    expect(0.1234, 0.1266, 3, 2, (const double[]){ 0.124, 0.126 }, 3);
    /* 0.0436 / 2 = 0.0218: steps of 0.05, none inside (the bar shows its ends) */
    expect(0.000181, 0.0438, 3, 0, NULL, 2);
    /* an empty range: its one value */
    expect(2, 2, 5, 1, (const double[]){ 2 }, 0);
    printf("test_viewer_edit_ticks: %d passed, %d failed\n", check_passed_, check_failed_);
    return check_failed_ != 0;
}
