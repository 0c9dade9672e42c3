/* index_sq.c - 8-bit codes of the flat segments' vectors, and the exact scan that reads
 * them first.
 *
 * A flat segment is searched exactly, and scanning its floats costs a search as much as
 * the memory that delivers them (dim * 4 bytes a vector).  Each vector x also has codes
 * c (int8, one per dimension) with x ~ d * c, and three bounds kept beside them; the query
 * q is rounded to int16 with q ~ s * qq.  The integer dot product qq . c then gives
 *
 *     A = s * d * (qq . c)
 *
 * with |q . x - A| <= |q . (x - d c)| + d |(q - s qq) . c|
 *                  <= ||q|| * r  +  d * e * |c|_1
 *
 * (Cauchy-Schwarz for the first term, e = max |q_i - s qq_i| for the second)
 *
 * where r = ||x - d c||, measured when the codes are made.  rf__index_dot's float sum
 * adds its own rounding, at most (dim + 2) * 2^-23 * ||q|| * ||x||, plus what products
 * below the smallest float lose (2^-149 each, doubled); the bound includes both.
 * So [A - B, A + B] holds the score rf__index_dot gives, and a vector whose upper bound
 * is below the k-th best lower bound (or below the k-th best score already found) cannot
 * be in the top k: only the others are scored from their floats.  The result is exactly
 * the full scan's.
 *
 * Integer sums are exact, so the AVX2 and the plain code give the same sums; the query's
 * scale keeps every partial sum within int32 (qmax * 127 * dim < 2^31). */
#include "index/index.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "index/index_int.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* One dimension's code, with what it adds to |x - d c|^2 and |x|^2. */
static inline long sq_code(float x, double inv, float d, double *e2, double *x2)
{
    /* Any rounding will do (r measures the codes as they are); adding and taking away
     * 1.5 * 2^52 rounds |v| < 2^51 to an integer without a call. */
    double v = (double)x * inv, e;
    long c = (long)((v + 6755399441055744.0) - 6755399441055744.0);
    if (c > 127)
        c = 127;
    if (c < -127)
        c = -127;
    /* A float times a small integer is exact in double; so is the difference. */
    e = (double)x - (double)d * (double)c;
    *e2 += e * e;
    *x2 += (double)x * (double)x;
    return c;
}

void rf__index_sq_encode(const float *x, int dim, int8_t *codes, rf__index_sqm_t *m)
{
    float amax = 0.0f;
    double inv, r2[4] = {0}, x2[4] = {0};
    long c1 = 0;
    int i = 0;
    for (int j = 0; j < dim; j++) {
        float a = fabsf(x[j]);
        if (a > amax)
            amax = a;
    }
    inv = amax > 0.0f ? 127.0 / (double)amax : 0.0; /* finite even for subnormals */
    m->d = amax > 0.0f ? amax / 127.0f : 0.0f;
    /* Four sums at a time: the additions do not wait for each other. */
    for (; i + 4 <= dim; i += 4) {
        for (int k = 0; k < 4; k++) {
            long c = sq_code(x[i + k], inv, m->d, &r2[k], &x2[k]);
            codes[i + k] = (int8_t)c;
            c1 += c < 0 ? -c : c;
        }
    }
    for (; i < dim; i++) {
        long c = sq_code(x[i], inv, m->d, &r2[0], &x2[0]);
        codes[i] = (int8_t)c;
        c1 += c < 0 ? -c : c;
    }
    /* Rounded up, so that the bounds built from them stay bounds. */
    m->r = (float)(sqrt((r2[0] + r2[1]) + (r2[2] + r2[3])) * (1.0 + 1e-6));
    m->xn = (float)(sqrt((x2[0] + x2[1]) + (x2[2] + x2[3])) * (1.0 + 1e-6));
    m->c1 = (float)c1; /* <= 127 * 65536: exact */
}

void rf__index_sq_query_init(rf__index_sqq_t *qq, const float *q, int dim)
{
    double amax = 0.0, q2 = 0.0, e = 0.0;
    double lim = floor(2147483647.0 / (127.0 * (double)(dim > 0 ? dim : 1)));
    double qmax = lim < 32767.0 ? lim : 32767.0;
    qq->dim = dim;
    qq->q = rf_xcalloc(dim > 0 ? (size_t)dim : 1, sizeof(int16_t));
    qq->ok = 1;
    for (int i = 0; i < dim; i++)
        qq->ok &= isfinite(q[i]) != 0;
    if (!qq->ok)
        return;
    for (int i = 0; i < dim; i++) {
        double a = fabs((double)q[i]);
        if (a > amax)
            amax = a;
        q2 += (double)q[i] * (double)q[i];
    }
    qq->s = amax > 0.0 && qmax >= 1.0 ? amax / qmax : 0.0;
    for (int i = 0; i < dim; i++) {
        double v = qq->s > 0.0 ? nearbyint((double)q[i] / qq->s) : 0.0, d;
        if (v > qmax)
            v = qmax;
        if (v < -qmax)
            v = -qmax;
        qq->q[i] = (int16_t)v;
        d = fabs((double)q[i] - qq->s * v);
        if (d > e)
            e = d;
    }
    qq->qn = sqrt(q2) * (1.0 + 1e-9);
    qq->e = e * (1.0 + 1e-9);
    qq->gam = ((double)dim + 2.0) * ldexp(1.0, -23);
    qq->tiny = ((double)dim + 2.0) * ldexp(1.0, -148);
}

void rf__index_sq_query_fini(rf__index_sqq_t *qq)
{
    free(qq->q);
    qq->q = NULL;
}

int32_t rf__index_sq_dot_ref(const int16_t *q, const int8_t *c, int dim)
{
    int32_t s = 0;
    for (int i = 0; i < dim; i++)
        s += (int32_t)q[i] * (int32_t)c[i];
    return s;
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static int32_t sq_dot_avx2(const int16_t *q, const int8_t *c,
                                                           int dim)
{
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    __m128i lo;
    int32_t r;
    int i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m256i c0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(c + i)));
        __m256i c1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(c + i + 16)));
        s0 = _mm256_add_epi32(s0,
                              _mm256_madd_epi16(c0, _mm256_loadu_si256((const __m256i *)(q + i))));
        s1 = _mm256_add_epi32(
            s1, _mm256_madd_epi16(c1, _mm256_loadu_si256((const __m256i *)(q + i + 16))));
    }
    for (; i + 16 <= dim; i += 16) {
        __m256i c0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(c + i)));
        s0 = _mm256_add_epi32(s0,
                              _mm256_madd_epi16(c0, _mm256_loadu_si256((const __m256i *)(q + i))));
    }
    s0 = _mm256_add_epi32(s0, s1);
    lo = _mm_add_epi32(_mm256_castsi256_si128(s0), _mm256_extracti128_si256(s0, 1));
    lo = _mm_add_epi32(lo, _mm_shuffle_epi32(lo, 0x4e));
    lo = _mm_add_epi32(lo, _mm_shuffle_epi32(lo, 0xb1));
    r = _mm_cvtsi128_si32(lo);
    for (; i < dim; i++)
        r += (int32_t)q[i] * (int32_t)c[i];
    return r;
}
#endif

int32_t rf__index_sq_dot(const int16_t *q, const int8_t *c, int dim)
{
#if defined(__x86_64__)
    if (rf__index_avx2())
        return sq_dot_avx2(q, c, dim);
#endif
    return rf__index_sq_dot_ref(q, c, dim);
}

void rf__index_sq_bounds(const rf__index_sqq_t *qq, const int8_t *c, const rf__index_sqm_t *m,
                         double *lo, double *hi)
{
    double a = qq->s * (double)m->d * (double)rf__index_sq_dot(qq->q, c, qq->dim);
    double b = qq->qn * (double)m->r + (double)m->d * qq->e * (double)m->c1 +
               qq->gam * qq->qn * (double)m->xn + qq->tiny;
    /* The double arithmetic above rounds too (relative 1e-16 a step): widen by a hair. */
    b = b * (1.0 + 1e-12) + fabs(a) * 1e-12;
    *lo = a - b;
    *hi = a + b;
}
