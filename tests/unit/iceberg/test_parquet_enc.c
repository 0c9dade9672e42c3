/* test_parquet_enc.c - the Parquet writer's building blocks: Thrift compact protocol
 * bytes against the spec's rules, the RLE/bit-packed hybrid against Encodings.md's
 * examples and a decoder written here, UTF-8 checking and Iceberg bound truncation. */
#include "iceberg/iceberg_int.h"
#include "rf_test.h"

#include <stdlib.h>
#include <string.h>

static int bytes_eq(const rf_buf_t *b, const uint8_t *want, size_t n)
{
    if (b->len != n || memcmp(b->ptr, want, n) != 0) {
        fprintf(stderr, "got %zu bytes:", b->len);
        for (size_t i = 0; i < b->len; i++)
            fprintf(stderr, " %02x", (uint8_t)b->ptr[i]);
        fprintf(stderr, "\nwant %zu bytes:", n);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %02x", want[i]);
        fprintf(stderr, "\n");
        return 0;
    }
    return 1;
}

/* ==== Thrift compact protocol ==== */

static void test_thrift_varint(void)
{
    rf_buf_t b;
    rf_iceberg_tc_t tc;
    static const uint8_t want[] = {0xDF, 0x89, 0x03, 0x00, 0x7F, 0x80, 0x01};
    rf_buf_init(&b, 0);
    rf__iceberg_tc_init(&tc, &b);
    rf__iceberg_tc_uvarint(&tc, 50399); /* the spec's example */
    rf__iceberg_tc_uvarint(&tc, 0);
    rf__iceberg_tc_uvarint(&tc, 127);
    rf__iceberg_tc_uvarint(&tc, 128);
    RF_CHECK_INT(rf__iceberg_tc_finish(&tc, NULL), RF_OK);
    RF_CHECK(bytes_eq(&b, want, sizeof(want)));
    rf_buf_fini(&b);
}

static void test_thrift_struct(void)
{
    rf_buf_t b;
    rf_iceberg_tc_t tc;
    static const uint8_t want[] = {
        0x15, 0x02,                   /* 1: i32 1 (delta 1, zigzag 2) */
        0x16, 0x01,                   /* 2: i64 -1 (zigzag 1) */
        0x28, 0x02, 'a',  'b',        /* 4: binary "ab" (delta 2) */
        0x05, 0x28, 0xAC, 0x02,       /* 20: i32 150, long form: type, zigzag(20)=40 */
        0x11,                         /* 21: bool true */
        0x1C, 0x15, 0x00, 0x00,       /* 22: struct { 1: i32 0 } */
        0x19, 0x35, 0x02, 0x04, 0x06, /* 23: list<i32> [1, 2, 3] */
        0x12,                         /* 24: bool false */
        0x06, 0x06, 0x80, 0x04,       /* 3: i64 256, backwards: long form */
        0x00,                         /* stop */
    };
    rf_buf_init(&b, 0);
    rf__iceberg_tc_init(&tc, &b);
    rf__iceberg_tc_push(&tc);
    rf__iceberg_tc_i32(&tc, 1, 1);
    rf__iceberg_tc_i64(&tc, 2, -1);
    rf__iceberg_tc_binary(&tc, 4, "ab", 2);
    rf__iceberg_tc_i32(&tc, 20, 150);
    rf__iceberg_tc_bool(&tc, 21, 1);
    rf__iceberg_tc_struct(&tc, 22);
    rf__iceberg_tc_i32(&tc, 1, 0);
    rf__iceberg_tc_pop(&tc);
    rf__iceberg_tc_list(&tc, 23, RF_ICEBERG_TC_I32, 3);
    rf__iceberg_tc_elem_i32(&tc, 1);
    rf__iceberg_tc_elem_i32(&tc, 2);
    rf__iceberg_tc_elem_i32(&tc, 3);
    rf__iceberg_tc_bool(&tc, 24, 0);
    rf__iceberg_tc_i64(&tc, 3, 256);
    rf__iceberg_tc_pop(&tc);
    RF_CHECK_INT(rf__iceberg_tc_finish(&tc, NULL), RF_OK);
    RF_CHECK(bytes_eq(&b, want, sizeof(want)));
    rf_buf_fini(&b);
}

static void test_thrift_long_list(void)
{
    rf_buf_t b;
    rf_iceberg_tc_t tc;
    rf_buf_init(&b, 0);
    rf__iceberg_tc_init(&tc, &b);
    rf__iceberg_tc_push(&tc);
    rf__iceberg_tc_list(&tc, 1, RF_ICEBERG_TC_BINARY, 20);
    for (int i = 0; i < 20; i++)
        rf__iceberg_tc_elem_binary(&tc, "x", 1);
    rf__iceberg_tc_list(&tc, 2, RF_ICEBERG_TC_STRUCT, 14); /* the largest short form */
    for (int i = 0; i < 14; i++) {
        rf__iceberg_tc_push(&tc);
        rf__iceberg_tc_i64(&tc, 7, INT64_MIN);
        rf__iceberg_tc_pop(&tc);
    }
    rf__iceberg_tc_pop(&tc);
    RF_REQUIRE(rf__iceberg_tc_finish(&tc, NULL) == RF_OK);
    RF_CHECK_INT((uint8_t)b.ptr[0], 0x19);
    RF_CHECK_INT((uint8_t)b.ptr[1], 0xF8); /* long form: 1111 + BINARY */
    RF_CHECK_INT((uint8_t)b.ptr[2], 20);
    RF_CHECK_INT((uint8_t)b.ptr[3], 1);
    RF_CHECK_INT((uint8_t)b.ptr[4], 'x');
    {
        size_t at = 3 + 20 * 2;
        RF_CHECK_INT((uint8_t)b.ptr[at], 0x19);     /* field 2, delta 1 */
        RF_CHECK_INT((uint8_t)b.ptr[at + 1], 0xEC); /* 14 structs */
        RF_CHECK_INT((uint8_t)b.ptr[at + 2], 0x76); /* nested: field 7 from 0 */
        /* zigzag(INT64_MIN) = 2^64 - 1: ten bytes */
        for (int i = 0; i < 9; i++)
            RF_CHECK_INT((uint8_t)b.ptr[at + 3 + i], 0xFF);
        RF_CHECK_INT((uint8_t)b.ptr[at + 12], 0x01);
        RF_CHECK_INT((uint8_t)b.ptr[at + 13], 0x00);
    }
    RF_CHECK_INT((uint8_t)b.ptr[b.len - 1], 0x00);
    rf_buf_fini(&b);
}

static void test_thrift_errors(void)
{
    rf_buf_t b;
    rf_iceberg_tc_t tc;
    rf_err_t err;
    rf_buf_init(&b, 0);

    rf__iceberg_tc_init(&tc, &b);
    rf__iceberg_tc_pop(&tc); /* nothing open */
    RF_CHECK_INT(rf__iceberg_tc_finish(&tc, &err), RF_EINVAL);

    rf__iceberg_tc_init(&tc, &b);
    rf__iceberg_tc_push(&tc);
    rf__iceberg_tc_i32(&tc, 0, 1); /* field ids start at 1 */
    RF_CHECK_INT(rf__iceberg_tc_finish(&tc, &err), RF_EINVAL);

    rf__iceberg_tc_init(&tc, &b);
    rf__iceberg_tc_push(&tc);
    rf__iceberg_tc_i32(&tc, 1, 1);
    RF_CHECK_INT(rf__iceberg_tc_finish(&tc, &err), RF_EINVAL); /* left open */
    RF_CHECK(strstr(err.msg, "open") != NULL);

    rf__iceberg_tc_init(&tc, &b);
    for (int i = 0; i < RF_ICEBERG_TC_DEPTH + 1; i++)
        rf__iceberg_tc_push(&tc);
    RF_CHECK_INT(rf__iceberg_tc_finish(&tc, &err), RF_EINVAL);
    rf_buf_fini(&b);

    rf_buf_init(&b, 8); /* output limit */
    rf__iceberg_tc_init(&tc, &b);
    rf__iceberg_tc_push(&tc);
    rf__iceberg_tc_binary(&tc, 1, "0123456789", 10);
    rf__iceberg_tc_pop(&tc);
    RF_CHECK_INT(rf__iceberg_tc_finish(&tc, &err), RF_ETOOBIG);
    rf_buf_fini(&b);
}

/* ==== RLE / bit-packed hybrid ==== */

/* An independent decoder, written from Encodings.md: returns the number of values
 * decoded into out (at most max), or -1 on malformed input. */
static long rle_decode(const uint8_t *p, size_t n, int bw, uint32_t *out, size_t max)
{
    size_t i = 0, got = 0;
    int vbytes = (bw + 7) / 8;
    while (i < n && got < max) {
        uint64_t hdr = 0;
        int shift = 0;
        for (;;) {
            if (i >= n || shift > 35)
                return -1;
            hdr |= (uint64_t)(p[i] & 0x7F) << shift;
            shift += 7;
            if (!(p[i++] & 0x80))
                break;
        }
        if (hdr & 1) {
            size_t count = (size_t)(hdr >> 1) * 8;
            uint64_t acc = 0;
            int nacc = 0;
            /* This writer keeps every bit-packed header in one byte (<= 63 groups). */
            if (count == 0 || count > 63 * 8 || i + (size_t)bw * (count / 8) > n)
                return -1;
            for (size_t k = 0; k < count; k++) {
                uint32_t v;
                while (nacc < bw) {
                    acc |= (uint64_t)p[i++] << nacc;
                    nacc += 8;
                }
                v = (uint32_t)(acc & (bw == 32 ? 0xFFFFFFFFull : ((1ull << bw) - 1)));
                acc >>= bw;
                nacc -= bw;
                if (got < max)
                    out[got++] = v;
            }
        } else {
            size_t count = (size_t)(hdr >> 1);
            uint32_t v = 0;
            if (count == 0 || i + (size_t)vbytes > n)
                return -1;
            for (int k = 0; k < vbytes; k++)
                v |= (uint32_t)p[i++] << (8 * k);
            for (size_t k = 0; k < count && got < max; k++)
                out[got++] = v;
        }
    }
    return (long)got;
}

static void encode(const uint32_t *v, size_t n, int bw, rf_buf_t *out)
{
    rf_iceberg_rle_t rle;
    rf_buf_reset(out);
    rf__iceberg_rle_init(&rle, out, bw);
    for (size_t i = 0; i < n; i++)
        rf__iceberg_rle_put(&rle, v[i]);
    RF_CHECK_INT(rf__iceberg_rle_finish(&rle), RF_OK);
}

static void test_rle_known(void)
{
    rf_buf_t b;
    uint32_t v[200];
    rf_buf_init(&b, 0);
    {
        /* Encodings.md: 0..7 at bit width 3 packs to 10001000 11000110 11111010. */
        static const uint8_t want[] = {0x03, 0x88, 0xC6, 0xFA};
        for (uint32_t i = 0; i < 8; i++)
            v[i] = i;
        encode(v, 8, 3, &b);
        RF_CHECK(bytes_eq(&b, want, sizeof(want)));
    }
    {
        /* 100 fives: one repeated run, header varint(200), value in one byte. */
        static const uint8_t want[] = {0xC8, 0x01, 0x05};
        for (int i = 0; i < 100; i++)
            v[i] = 5;
        encode(v, 100, 3, &b);
        RF_CHECK(bytes_eq(&b, want, sizeof(want)));
    }
    {
        /* 10 ones then 0 1 0: a repeated run, then a padded bit-packed group. */
        static const uint8_t want[] = {0x14, 0x01, 0x03, 0x02};
        for (int i = 0; i < 10; i++)
            v[i] = 1;
        v[10] = 0, v[11] = 1, v[12] = 0;
        encode(v, 13, 1, &b);
        RF_CHECK(bytes_eq(&b, want, sizeof(want)));
    }
    {
        /* Three equal values: a short repeated run beats a padded group. */
        static const uint8_t want[] = {0x06, 0x01};
        v[0] = v[1] = v[2] = 1;
        encode(v, 3, 1, &b);
        RF_CHECK(bytes_eq(&b, want, sizeof(want)));
    }
    {
        /* Bit width 9: the repeated value takes two bytes, little-endian. */
        static const uint8_t want[] = {0x20, 0x2C, 0x01};
        for (int i = 0; i < 16; i++)
            v[i] = 300;
        encode(v, 16, 9, &b);
        RF_CHECK(bytes_eq(&b, want, sizeof(want)));
    }
    {
        /* An empty input encodes to nothing. */
        encode(v, 0, 1, &b);
        RF_CHECK_INT(b.len, 0);
    }
    {
        /* A value wider than the bit width is refused. */
        rf_iceberg_rle_t rle;
        rf__iceberg_rle_init(&rle, &b, 2);
        rf__iceberg_rle_put(&rle, 4);
        RF_CHECK_INT(rf__iceberg_rle_finish(&rle), RF_EINVAL);
    }
    RF_CHECK_INT(rf__iceberg_bit_width(0), 0);
    RF_CHECK_INT(rf__iceberg_bit_width(1), 1);
    RF_CHECK_INT(rf__iceberg_bit_width(255), 8);
    RF_CHECK_INT(rf__iceberg_bit_width(256), 9);
    RF_CHECK_INT(rf__iceberg_bit_width(UINT32_MAX), 32);
    rf_buf_fini(&b);
}

static uint64_t rng_state = 0x1234567887654321ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static void test_rle_roundtrip(void)
{
    rf_buf_t b;
    size_t cap = 5000;
    uint32_t *v = malloc(cap * sizeof(*v)), *back = malloc(cap * sizeof(*back));
    rf_buf_init(&b, 0);
    for (int iter = 0; iter < 3000; iter++) {
        int bw = 1 + (int)(rnd() % 32);
        uint32_t mask = bw == 32 ? UINT32_MAX : ((1u << bw) - 1);
        size_t n = rnd() % (iter < 100 ? 20 : cap);
        int style = (int)(rnd() % 4);
        long got;
        /* Mixtures of long runs, short runs and noise, which exercise every switch
         * between the two run kinds, and long literal stretches (> 63 groups). */
        for (size_t i = 0; i < n;) {
            size_t run = style == 0 ? 1 : 1 + rnd() % (style == 1 ? 4 : style == 2 ? 12 : 200);
            uint32_t x = rnd() & mask;
            if (style == 3 && rnd() % 2)
                x = 0;
            for (size_t k = 0; k < run && i < n; k++)
                v[i++] = x;
        }
        encode(v, n, bw, &b);
        got = rle_decode((const uint8_t *)b.ptr, b.len, bw, back, n);
        RF_CHECK_INT(got, (long)n);
        if (got == (long)n && memcmp(v, back, n * sizeof(*v)) != 0) {
            RF_CHECK(!"round trip differs");
            break;
        }
        {
            /* put_run writes exactly what the same values one by one write. */
            rf_buf_t b2;
            rf_iceberg_rle_t rle;
            rf_buf_init(&b2, 0);
            rf__iceberg_rle_init(&rle, &b2, bw);
            for (size_t i = 0; i < n;) {
                size_t j = i + 1;
                while (j < n && v[j] == v[i])
                    j++;
                rf__iceberg_rle_put_run(&rle, v[i], j - i);
                i = j;
            }
            RF_CHECK_INT(rf__iceberg_rle_finish(&rle), RF_OK);
            RF_CHECK(b2.len == b.len && (b.len == 0 || memcmp(b2.ptr, b.ptr, b.len) == 0));
            rf_buf_fini(&b2);
        }
        /* Never larger than bit-packing everything, plus headers. */
        RF_CHECK(b.len <= (n / 8 + 2) * ((size_t)bw + 2) + 16);
    }
    rf_buf_fini(&b);
    free(v);
    free(back);
}

/* ==== UTF-8 and Iceberg bounds ==== */

static void test_utf8(void)
{
    RF_CHECK(rf_utf8_valid((const uint8_t *)"", 0));
    RF_CHECK(rf_utf8_valid((const uint8_t *)"plain ascii text, long enough", 29));
    RF_CHECK(rf_utf8_valid((const uint8_t *)"caf\xC3\xA9 \xF0\x9F\x98\x80", 10));
    RF_CHECK(!rf_utf8_valid((const uint8_t *)"\xC0\x80", 2));         /* overlong */
    RF_CHECK(!rf_utf8_valid((const uint8_t *)"\xED\xA0\x80", 3));     /* surrogate */
    RF_CHECK(!rf_utf8_valid((const uint8_t *)"\xF4\x90\x80\x80", 4)); /* > 10FFFF */
    RF_CHECK(!rf_utf8_valid((const uint8_t *)"ab\xE2\x82", 4));       /* cut */
    RF_CHECK(!rf_utf8_valid((const uint8_t *)"abcdefgh\xFF", 9));
    RF_CHECK(!rf_utf8_valid((const uint8_t *)"\x80", 1));
}

static int bound(int upper, int is_string, const char *in, size_t n, rf_buf_t *out)
{
    return upper ? rf__iceberg_bound_upper(is_string, (const uint8_t *)in, n, 16, out)
                 : rf__iceberg_bound_lower(is_string, (const uint8_t *)in, n, 16, out);
}

static void test_bounds(void)
{
    rf_buf_t b;
    char s[256];
    size_t n = 0;
    rf_buf_init(&b, 0);

    /* Short values are their own bounds. */
    RF_CHECK(bound(0, 1, "abc", 3, &b) && b.len == 3 && memcmp(b.ptr, "abc", 3) == 0);
    RF_CHECK(bound(1, 1, "abc", 3, &b) && b.len == 3 && memcmp(b.ptr, "abc", 3) == 0);
    RF_CHECK(bound(1, 1, "0123456789abcdef", 16, &b) && b.len == 16);

    /* 20 ASCII characters: the first 16, and for the upper bound the 16th + 1. */
    RF_CHECK(bound(0, 1, "0123456789abcdefghij", 20, &b));
    RF_CHECK(b.len == 16 && memcmp(b.ptr, "0123456789abcdef", 16) == 0);
    RF_CHECK(bound(1, 1, "0123456789abcdefghij", 20, &b));
    RF_CHECK(b.len == 16 && memcmp(b.ptr, "0123456789abcdeg", 16) == 0);

    /* Code points, not bytes: 20 x U+00E9 keeps 16 of them (32 bytes). */
    for (int i = 0; i < 20; i++)
        n += (size_t)snprintf(s + n, sizeof(s) - n, "\xC3\xA9");
    RF_CHECK(bound(0, 1, s, n, &b) && b.len == 32 && memcmp(b.ptr, s, 32) == 0);
    RF_CHECK(bound(1, 1, s, n, &b) && b.len == 32 && memcmp(b.ptr, s, 30) == 0 &&
             memcmp(b.ptr + 30, "\xC3\xAA", 2) == 0);

    /* U+10FFFF cannot be incremented: the one before it is. */
    n = (size_t)snprintf(s, sizeof(s),
                         "aaaaaaaaaaaaaaa\xF4\x8F\xBF\xBF"
                         "b");
    RF_CHECK(bound(1, 1, s, n, &b) && b.len == 15 && memcmp(b.ptr, "aaaaaaaaaaaaaab", 15) == 0);
    n = 0;
    for (int i = 0; i < 17; i++)
        n += (size_t)snprintf(s + n, sizeof(s) - n, "\xF4\x8F\xBF\xBF");
    RF_CHECK(!bound(1, 1, s, n, &b)); /* no upper bound exists */
    RF_CHECK(bound(0, 1, s, n, &b) && b.len == 64);

    /* U+D7FF + 1 skips the surrogates to U+E000. */
    n = 0;
    for (int i = 0; i < 16; i++)
        n += (size_t)snprintf(s + n, sizeof(s) - n, "\xED\x9F\xBF");
    n += (size_t)snprintf(s + n, sizeof(s) - n, "x");
    RF_CHECK(bound(1, 1, s, n, &b) && b.len == 48 && memcmp(b.ptr + 45, "\xEE\x80\x80", 3) == 0);
    RF_CHECK(rf_utf8_valid((const uint8_t *)b.ptr, b.len));

    /* Binary: bytes; trailing 0xFF bytes roll over. */
    memset(s, 0x01, 20);
    RF_CHECK(bound(0, 0, s, 20, &b) && b.len == 16);
    RF_CHECK(bound(1, 0, s, 20, &b) && b.len == 16 && (uint8_t)b.ptr[15] == 0x02);
    s[0] = 0x01;
    memset(s + 1, 0xFF, 19);
    RF_CHECK(bound(1, 0, s, 20, &b) && b.len == 1 && (uint8_t)b.ptr[0] == 0x02);
    memset(s, 0xFF, 20);
    RF_CHECK(!bound(1, 0, s, 20, &b));
    RF_CHECK(bound(1, 0, s, 16, &b) && b.len == 16); /* not truncated: exact */

    /* Bounds are bounds: lower <= value <= upper for random strings. */
    for (int iter = 0; iter < 2000; iter++) {
        size_t len = rnd() % 40, m = 0;
        rf_buf_t lo;
        rf_buf_init(&lo, 0);
        for (size_t i = 0; i < len; i++) {
            uint32_t pick = rnd() % 6;
            static const char *parts[] = {
                "a", "~", "\xC3\xBF", "\xEF\xBF\xBF", "\xF4\x8F\xBF\xBF", "\x7F"};
            m += (size_t)snprintf(s + m, sizeof(s) - m, "%s", parts[pick]);
        }
        RF_CHECK(bound(0, 1, s, m, &lo));
        RF_CHECK(memcmp(lo.ptr, s, lo.len) == 0 && lo.len <= m);
        if (bound(1, 1, s, m, &b)) {
            size_t k = b.len < m ? b.len : m;
            int c = memcmp(s, b.ptr, k);
            RF_CHECK(c < 0 || (c == 0 && m <= b.len));
            RF_CHECK(rf_utf8_valid((const uint8_t *)b.ptr, b.len));
        }
        rf_buf_fini(&lo);
    }
    rf_buf_fini(&b);
}

RF_TEST_MAIN(test_thrift_varint, test_thrift_struct, test_thrift_long_list, test_thrift_errors,
             test_rle_known, test_rle_roundtrip, test_utf8, test_bounds)
