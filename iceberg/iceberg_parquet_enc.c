/* iceberg_parquet_enc.c - the byte-level building blocks of the Parquet writer: the
 * Thrift compact protocol (page headers and the footer), the RLE/bit-packed hybrid
 * (levels and dictionary indices), UTF-8 checking and Iceberg bound truncation.
 * Serves INVARIANT(history-exported-once) by making data files any engine can read.
 */
#include "iceberg/iceberg_int.h"

#include <stdint.h>
#include <string.h>

/* ==== Thrift compact protocol ==== */

void rf__iceberg_tc_init(rf_iceberg_tc_t *tc, rf_buf_t *out)
{
    memset(tc, 0, sizeof(*tc));
    tc->out = out;
}

static void tc_put(rf_iceberg_tc_t *tc, const void *p, size_t n)
{
    if (tc->rc)
        return;
    if (rf_buf_append(tc->out, p, n))
        tc->rc = RF_ETOOBIG;
}

static void tc_byte(rf_iceberg_tc_t *tc, uint8_t b)
{
    tc_put(tc, &b, 1);
}

void rf__iceberg_tc_uvarint(rf_iceberg_tc_t *tc, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    tc_put(tc, tmp, n);
}

static uint64_t zigzag64(int64_t v)
{
    /* The shift is done on the unsigned value so that it is defined for negatives. */
    return ((uint64_t)v << 1) ^ (uint64_t)(v < 0 ? -1 : 0);
}

void rf__iceberg_tc_push(rf_iceberg_tc_t *tc)
{
    if (tc->rc)
        return;
    if (tc->depth >= RF_ICEBERG_TC_DEPTH) {
        tc->rc = RF_EINVAL;
        return;
    }
    tc->last[tc->depth++] = 0;
}

void rf__iceberg_tc_pop(rf_iceberg_tc_t *tc)
{
    if (tc->rc)
        return;
    if (tc->depth <= 0) {
        tc->rc = RF_EINVAL;
        return;
    }
    tc_byte(tc, 0);
    tc->depth--;
}

void rf__iceberg_tc_field(rf_iceberg_tc_t *tc, int type, int id)
{
    int16_t *last;
    if (tc->rc)
        return;
    if (tc->depth <= 0 || id <= 0 || id > INT16_MAX || type <= 0 || type > 15) {
        tc->rc = RF_EINVAL;
        return;
    }
    last = &tc->last[tc->depth - 1];
    if (id > *last && id - *last <= 15) {
        tc_byte(tc, (uint8_t)(((id - *last) << 4) | type));
    } else {
        /* Long form: the type alone, then the id as a zigzag i16. */
        tc_byte(tc, (uint8_t)type);
        rf__iceberg_tc_uvarint(tc, zigzag64(id));
    }
    *last = (int16_t)id;
}

void rf__iceberg_tc_i32(rf_iceberg_tc_t *tc, int id, int32_t v)
{
    rf__iceberg_tc_field(tc, RF_ICEBERG_TC_I32, id);
    rf__iceberg_tc_uvarint(tc, zigzag64(v));
}

void rf__iceberg_tc_i64(rf_iceberg_tc_t *tc, int id, int64_t v)
{
    rf__iceberg_tc_field(tc, RF_ICEBERG_TC_I64, id);
    rf__iceberg_tc_uvarint(tc, zigzag64(v));
}

void rf__iceberg_tc_bool(rf_iceberg_tc_t *tc, int id, int v)
{
    /* A boolean field carries its value in the type nibble. */
    rf__iceberg_tc_field(tc, v ? RF_ICEBERG_TC_TRUE : RF_ICEBERG_TC_FALSE, id);
}

void rf__iceberg_tc_binary(rf_iceberg_tc_t *tc, int id, const void *p, size_t n)
{
    rf__iceberg_tc_field(tc, RF_ICEBERG_TC_BINARY, id);
    rf__iceberg_tc_elem_binary(tc, p, n);
}

void rf__iceberg_tc_struct(rf_iceberg_tc_t *tc, int id)
{
    rf__iceberg_tc_field(tc, RF_ICEBERG_TC_STRUCT, id);
    rf__iceberg_tc_push(tc);
}

void rf__iceberg_tc_list(rf_iceberg_tc_t *tc, int id, int elem_type, size_t n)
{
    rf__iceberg_tc_field(tc, RF_ICEBERG_TC_LIST, id);
    if (tc->rc)
        return;
    if (n > INT32_MAX || elem_type <= 0 || elem_type > 15) {
        tc->rc = RF_EINVAL;
        return;
    }
    if (n < 15) {
        tc_byte(tc, (uint8_t)((n << 4) | (size_t)elem_type));
    } else {
        tc_byte(tc, (uint8_t)(0xF0 | elem_type));
        rf__iceberg_tc_uvarint(tc, n);
    }
}

void rf__iceberg_tc_elem_i32(rf_iceberg_tc_t *tc, int32_t v)
{
    rf__iceberg_tc_uvarint(tc, zigzag64(v));
}

void rf__iceberg_tc_elem_binary(rf_iceberg_tc_t *tc, const void *p, size_t n)
{
    if (tc->rc)
        return;
    if (n > INT32_MAX) {
        tc->rc = RF_ETOOBIG;
        return;
    }
    rf__iceberg_tc_uvarint(tc, n);
    tc_put(tc, p, n);
}

rf_rc rf__iceberg_tc_finish(rf_iceberg_tc_t *tc, rf_err_t *err)
{
    if (tc->rc == RF_ETOOBIG)
        return rf_err_set(err, RF_ETOOBIG, "thrift: output larger than %zu bytes", tc->out->max);
    if (tc->rc)
        return rf_err_set(err, tc->rc, "thrift: bad field id, type or nesting");
    if (tc->depth != 0)
        return rf_err_set(err, RF_EINVAL, "thrift: %d struct(s) left open", tc->depth);
    return RF_OK;
}

/* ==== RLE / bit-packed hybrid ==== */

int rf__iceberg_bit_width(uint32_t v)
{
    int n = 0;
    while (v) {
        n++;
        v >>= 1;
    }
    return n;
}

void rf__iceberg_rle_init(rf_iceberg_rle_t *rle, rf_buf_t *out, int bit_width)
{
    memset(rle, 0, sizeof(*rle));
    rle->out = out;
    rle->bit_width = bit_width;
    rle->indicator_at = SIZE_MAX;
    if (bit_width < 1 || bit_width > 32)
        rle->rc = RF_EINVAL;
}

static void rle_append(rf_iceberg_rle_t *rle, const void *p, size_t n)
{
    if (rle->rc)
        return;
    if (rf_buf_append(rle->out, p, n))
        rle->rc = RF_ETOOBIG;
}

static void rle_uvarint(rf_iceberg_rle_t *rle, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    rle_append(rle, tmp, n);
}

/* Writes the repeated run (header, then the value in ceil(bit_width / 8) bytes). */
static void rle_flush_repeated(rf_iceberg_rle_t *rle)
{
    uint8_t val[4];
    int nbytes = (rle->bit_width + 7) / 8;
    for (int i = 0; i < nbytes; i++)
        val[i] = (uint8_t)(rle->cur >> (8 * i));
    rle_uvarint(rle, (uint64_t)rle->repeat << 1);
    rle_append(rle, val, (size_t)nbytes);
    rle->repeat = 0;
}

/* Packs the 8 buffered values LSB first into bit_width bytes of the open bit-packed
 * run, opening it (a reserved header byte) when needed. */
static void rle_pack_group(rf_iceberg_rle_t *rle)
{
    uint8_t packed[32];
    uint64_t acc = 0;
    int nacc = 0, np = 0;
    if (rle->indicator_at == SIZE_MAX) {
        uint8_t zero = 0;
        rle->indicator_at = rle->out->len;
        rle_append(rle, &zero, 1);
    }
    for (int i = 0; i < 8; i++) {
        acc |= (uint64_t)rle->buffered[i] << nacc;
        nacc += rle->bit_width;
        while (nacc >= 8) {
            packed[np++] = (uint8_t)acc;
            acc >>= 8;
            nacc -= 8;
        }
    }
    rle_append(rle, packed, (size_t)np);
    rle->literal_groups++;
    rle->nbuffered = 0;
}

/* Closes the open bit-packed run by filling in its header byte. */
static void rle_close_literal(rf_iceberg_rle_t *rle)
{
    if (rle->indicator_at != SIZE_MAX && !rle->rc)
        rle->out->ptr[rle->indicator_at] = (char)(uint8_t)((rle->literal_groups << 1) | 1);
    rle->indicator_at = SIZE_MAX;
    rle->literal_groups = 0;
}

/* Called when 8 values are buffered: they either belong to a repeated run that has
 * reached 8 (then they are dropped, the run counts them) or join a bit-packed run. */
static void rle_flush_buffered(rf_iceberg_rle_t *rle)
{
    if (rle->repeat >= 8) {
        rle->nbuffered = 0;
        rle_close_literal(rle);
        return;
    }
    rle_pack_group(rle);
    /* One header byte holds at most 63 groups. */
    if (rle->literal_groups == 63)
        rle_close_literal(rle);
    rle->repeat = 0;
}

void rf__iceberg_rle_put(rf_iceberg_rle_t *rle, uint32_t v)
{
    if (rle->rc)
        return;
    if (rle->bit_width < 32 && (v >> rle->bit_width) != 0) {
        rle->rc = RF_EINVAL;
        return;
    }
    if (v == rle->cur) {
        rle->repeat++;
        if (rle->repeat > 8)
            return; /* the run already owns the earlier values; nothing to buffer */
    } else {
        if (rle->repeat >= 8)
            rle_flush_repeated(rle);
        rle->repeat = 1;
        rle->cur = v;
    }
    rle->buffered[rle->nbuffered++] = v;
    if (rle->nbuffered == 8)
        rle_flush_buffered(rle);
}

void rf__iceberg_rle_put_run(rf_iceberg_rle_t *rle, uint32_t v, size_t n)
{
    /* Values go one by one until a long repeated run of v is open; from then on the
     * run only counts (what put would do, without the calls). */
    while (n > 0 && !(v == rle->cur && rle->repeat >= 8 && rle->nbuffered == 0)) {
        rf__iceberg_rle_put(rle, v);
        n--;
        if (rle->rc)
            return;
    }
    if (n > UINT32_MAX - rle->repeat) {
        while (n-- > 0)
            rf__iceberg_rle_put(rle, v);
        return;
    }
    rle->repeat += (uint32_t)n;
}

rf_rc rf__iceberg_rle_finish(rf_iceberg_rle_t *rle)
{
    if (rle->rc)
        return rle->rc;
    if (rle->repeat >= 8) {
        /* A long repeated run is pending; its group was dropped, no literal is open. */
        rle_flush_repeated(rle);
    } else if (rle->nbuffered > 0 && (uint32_t)rle->nbuffered == rle->repeat) {
        /* The last values are all equal: a short repeated run is smaller than a
         * padded bit-packed group. */
        rle_close_literal(rle);
        rle->nbuffered = 0;
        rle_flush_repeated(rle);
    } else if (rle->nbuffered > 0) {
        /* Pad the last group with zeros; the reader stops at its value count. */
        for (int i = rle->nbuffered; i < 8; i++)
            rle->buffered[i] = 0;
        rle_pack_group(rle);
        rle_close_literal(rle);
    } else {
        rle_close_literal(rle);
    }
    rle->repeat = 0;
    return rle->rc;
}

/* ==== UTF-8 and Iceberg bounds ==== */

/* Decodes one code point at p[0..n); returns its length, or 0 when invalid. */
static size_t utf8_next(const uint8_t *p, size_t n, uint32_t *cp)
{
    uint32_t c = p[0];
    size_t len;
    uint32_t min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if ((c & 0xE0) == 0xC0) {
        len = 2, min = 0x80, c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, min = 0x800, c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, min = 0x10000, c &= 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

static size_t utf8_encode(uint32_t cp, uint8_t *out)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Byte length of the first `len` code points (or of all of p), and whether the value
 * had more.  Invalid UTF-8 makes the count stop (callers validate first). */
static size_t utf8_prefix(const uint8_t *p, size_t n, size_t len, int *truncated)
{
    size_t i = 0, count = 0;
    while (i < n && count < len) {
        uint32_t cp;
        size_t k = utf8_next(p + i, n - i, &cp);
        if (k == 0)
            k = 1;
        i += k;
        count++;
    }
    *truncated = i < n;
    return i;
}

int rf__iceberg_bound_lower(int is_string, const uint8_t *p, size_t n, size_t len, rf_buf_t *out)
{
    int truncated;
    size_t keep = is_string ? utf8_prefix(p, n, len, &truncated) : (n < len ? n : len);
    rf_buf_reset(out);
    return rf_buf_append(out, p, keep) == RF_OK;
}

int rf__iceberg_bound_upper(int is_string, const uint8_t *p, size_t n, size_t len, rf_buf_t *out)
{
    rf_buf_reset(out);
    if (!is_string) {
        size_t keep = n < len ? n : len;
        if (keep == n)
            return rf_buf_append(out, p, n) == RF_OK;
        /* Increment the last byte that is not 0xFF, dropping the 0xFF bytes after it. */
        while (keep > 0 && p[keep - 1] == 0xFF)
            keep--;
        if (keep == 0)
            return 0;
        if (rf_buf_append(out, p, keep))
            return 0;
        out->ptr[keep - 1] = (char)(uint8_t)(p[keep - 1] + 1);
        return 1;
    } else {
        int truncated;
        size_t keep = utf8_prefix(p, n, len, &truncated);
        size_t starts[64], *st = starts, nst = 0;
        size_t cap = sizeof(starts) / sizeof(starts[0]);
        int ok = 0;
        if (!truncated)
            return rf_buf_append(out, p, n) == RF_OK;
        if (len > cap)
            st = rf_xmalloc(len * sizeof(*st));
        for (size_t i = 0; i < keep;) {
            uint32_t cp;
            size_t k = utf8_next(p + i, keep - i, &cp);
            st[nst++] = i;
            i += k ? k : 1;
        }
        /* From the last code point backwards: the first one that can be incremented
         * gives the bound; those after it are dropped. */
        while (nst > 0 && !ok) {
            size_t at = st[--nst];
            uint32_t cp;
            uint8_t enc[4];
            size_t k;
            if (utf8_next(p + at, keep - at, &cp) == 0)
                continue;
            cp++;
            if (cp == 0xD800)
                cp = 0xE000; /* surrogates are not code points of valid UTF-8 */
            if (cp > 0x10FFFF)
                continue;
            k = utf8_encode(cp, enc);
            ok = rf_buf_append(out, p, at) == RF_OK && rf_buf_append(out, enc, k) == RF_OK;
        }
        if (st != starts)
            free(st);
        if (!ok)
            rf_buf_reset(out);
        return ok;
    }
}
