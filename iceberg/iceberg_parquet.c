/* iceberg_parquet.c - writes Iceberg data files as Parquet (parquet.thrift, Encodings.md):
 * one row group is buffered in memory as compressed pages, then written column chunk by
 * column chunk; the footer carries a field id on every column, the caller's key/value
 * metadata (iceberg.schema) and statistics.  The close result holds what a manifest
 * needs.  Serves INVARIANT(history-exported-once): a file is complete only once closed;
 * an aborted or failed writer deletes its partial file, so a crash leaves orphans at
 * most.
 */
#include "iceberg/iceberg_int.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

/* ==== Limits and Parquet constants ==== */

#define PQ_MAX_COLUMNS  4096
#define PQ_MAX_NAME     255
#define PQ_MAX_KV_BYTES ((size_t)16 << 20)
#define PQ_MAX_BUFFER   ((size_t)1 << 28) /* caps page, dictionary and value sizes */
#define PQ_MAX_RGROUP   ((size_t)1 << 30)
#define PQ_STATS_MAX    4096               /* longer string min/max are left out of Parquet stats */
#define PQ_MAX_ENTRIES  ((int64_t)1 << 28) /* level entries per page */
#define PQ_DICT_MAX_N   ((size_t)1 << 24)

enum { PT_BOOLEAN = 0, PT_INT32 = 1, PT_INT64 = 2, PT_FLOAT = 4, PT_DOUBLE = 5, PT_BYTES = 6 };
enum { ENC_PLAIN = 0, ENC_RLE = 3, ENC_RLE_DICTIONARY = 8 };
enum { PAGE_DATA = 0, PAGE_DICTIONARY = 2 };
enum { CT_UTF8 = 0, CT_LIST = 3, CT_DATE = 6, CT_TIMESTAMP_MICROS = 10 };
enum { REP_REQUIRED = 0, REP_OPTIONAL = 1, REP_REPEATED = 2 };

static const int pq_physical[RF_ICEBERG_PQ__TYPE_COUNT] = {
    [RF_ICEBERG_PQ_BOOLEAN] = PT_BOOLEAN, [RF_ICEBERG_PQ_INT32] = PT_INT32,
    [RF_ICEBERG_PQ_INT64] = PT_INT64,     [RF_ICEBERG_PQ_FLOAT] = PT_FLOAT,
    [RF_ICEBERG_PQ_DOUBLE] = PT_DOUBLE,   [RF_ICEBERG_PQ_STRING] = PT_BYTES,
    [RF_ICEBERG_PQ_BINARY] = PT_BYTES,    [RF_ICEBERG_PQ_TIMESTAMPTZ] = PT_INT64,
    [RF_ICEBERG_PQ_DATE] = PT_INT32,
};

/* ==== Little-endian helpers ==== */

static void le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static uint64_t f64_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define PQ_LITTLE_ENDIAN 1
#else
#define PQ_LITTLE_ENDIAN 0
#endif

/* ==== Min/max tracking ==== */

/* Running bounds of one column: integers (and booleans) in i*, floats in d* (NaN never
 * enters), byte strings in b* compared unsigned bytewise. */
typedef struct minmax {
    int has;
    int64_t imin, imax;
    double dmin, dmax;
    rf_buf_t bmin, bmax;
} minmax_t;

static void mm_init(minmax_t *mm)
{
    memset(mm, 0, sizeof(*mm));
    rf_buf_init(&mm->bmin, PQ_MAX_BUFFER);
    rf_buf_init(&mm->bmax, PQ_MAX_BUFFER);
}

static void mm_fini(minmax_t *mm)
{
    rf_buf_fini(&mm->bmin);
    rf_buf_fini(&mm->bmax);
}

static void mm_reset(minmax_t *mm)
{
    mm->has = 0;
    rf_buf_reset(&mm->bmin);
    rf_buf_reset(&mm->bmax);
}

static inline void mm_int(minmax_t *mm, int64_t v)
{
    if (!mm->has) {
        mm->imin = mm->imax = v;
        mm->has = 1;
    } else if (v < mm->imin) {
        mm->imin = v;
    } else if (v > mm->imax) {
        mm->imax = v;
    }
}

static inline void mm_dbl(minmax_t *mm, double v)
{
    if (!mm->has) {
        mm->dmin = mm->dmax = v;
        mm->has = 1;
    } else if (v < mm->dmin) {
        mm->dmin = v;
    } else if (v > mm->dmax) {
        mm->dmax = v;
    }
}

static int bytes_cmp(const void *a, size_t an, const void *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return c;
    return an < bn ? -1 : an > bn;
}

static void buf_set(rf_buf_t *b, const void *p, size_t n)
{
    rf_buf_reset(b);
    /* Values are bounded by max_value_bytes <= PQ_MAX_BUFFER, so this cannot fail. */
    (void)rf_buf_append(b, p, n);
}

static void mm_bytes(minmax_t *mm, const void *p, size_t n)
{
    if (!mm->has) {
        buf_set(&mm->bmin, p, n);
        buf_set(&mm->bmax, p, n);
        mm->has = 1;
        return;
    }
    if (bytes_cmp(p, n, mm->bmin.ptr, mm->bmin.len) < 0)
        buf_set(&mm->bmin, p, n);
    else if (bytes_cmp(p, n, mm->bmax.ptr, mm->bmax.len) > 0)
        buf_set(&mm->bmax, p, n);
}

/* Folds the bounds of src into dst. */
static void mm_merge(minmax_t *dst, const minmax_t *src, int ptype)
{
    if (!src->has)
        return;
    switch (ptype) {
    case PT_FLOAT:
    case PT_DOUBLE:
        mm_dbl(dst, src->dmin);
        mm_dbl(dst, src->dmax);
        break;
    case PT_BYTES:
        mm_bytes(dst, src->bmin.ptr, src->bmin.len);
        mm_bytes(dst, src->bmax.ptr, src->bmax.len);
        break;
    default:
        mm_int(dst, src->imin);
        mm_int(dst, src->imax);
        break;
    }
}

/* PLAIN bytes of a bound (no length prefix for byte arrays) into out.  A zero float
 * bound is written as -0.0 (min) or +0.0 (max), as parquet.thrift's ColumnOrder asks,
 * so that both signs are covered. */
static void mm_plain(const minmax_t *mm, int ptype, int is_max, rf_buf_t *out)
{
    uint8_t tmp[8];
    rf_buf_reset(out);
    switch (ptype) {
    case PT_BOOLEAN:
        tmp[0] = (uint8_t)(is_max ? mm->imax : mm->imin);
        (void)rf_buf_append(out, tmp, 1);
        break;
    case PT_INT32:
        le32(tmp, (uint32_t)(int32_t)(is_max ? mm->imax : mm->imin));
        (void)rf_buf_append(out, tmp, 4);
        break;
    case PT_INT64:
        le64(tmp, (uint64_t)(is_max ? mm->imax : mm->imin));
        (void)rf_buf_append(out, tmp, 8);
        break;
    case PT_FLOAT:
    case PT_DOUBLE: {
        double d = is_max ? mm->dmax : mm->dmin;
        if (d == 0.0)
            d = is_max ? 0.0 : -0.0;
        if (ptype == PT_FLOAT) {
            le32(tmp, f32_bits((float)d));
            (void)rf_buf_append(out, tmp, 4);
        } else {
            le64(tmp, f64_bits(d));
            (void)rf_buf_append(out, tmp, 8);
        }
        break;
    }
    default: {
        const rf_buf_t *b = is_max ? &mm->bmax : &mm->bmin;
        (void)rf_buf_append(out, b->ptr, b->len);
        break;
    }
    }
}

/* ==== Dictionary ==== */

/* Distinct byte strings of one column chunk.  `plain` is the dictionary page body
 * (PLAIN: 4-byte length + bytes per entry); entries point into it. */
typedef struct dict {
    rf_buf_t plain;
    size_t *off; /* entry i's bytes start at plain.ptr + off[i] */
    uint32_t *len;
    uint32_t *hash;
    size_t n, cap;
    uint32_t *slots; /* open addressing: entry index + 1, 0 when empty */
    size_t nslots;
} dict_t;

static uint32_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    uint64_t w;
    while (n >= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    return (uint32_t)h;
}

static void dict_init(dict_t *d)
{
    memset(d, 0, sizeof(*d));
    rf_buf_init(&d->plain, PQ_MAX_BUFFER * 2);
}

static void dict_fini(dict_t *d)
{
    rf_buf_fini(&d->plain);
    free(d->off);
    free(d->len);
    free(d->hash);
    free(d->slots);
    memset(d, 0, sizeof(*d));
}

static void dict_reset(dict_t *d)
{
    rf_buf_reset(&d->plain);
    d->n = 0;
    if (d->slots)
        memset(d->slots, 0, d->nslots * sizeof(*d->slots));
}

static void dict_rehash(dict_t *d, size_t nslots)
{
    free(d->slots);
    d->slots = rf_xcalloc(nslots, sizeof(*d->slots));
    d->nslots = nslots;
    for (size_t i = 0; i < d->n; i++) {
        size_t s = d->hash[i] & (nslots - 1);
        while (d->slots[s])
            s = (s + 1) & (nslots - 1);
        d->slots[s] = (uint32_t)(i + 1);
    }
}

/* Returns the index of p[0..n), adding it when new.  Fails (-1) only when the plain
 * buffer is full, which the caller's limits prevent. */
static int64_t dict_add(dict_t *d, const uint8_t *p, size_t n)
{
    uint32_t h = hash_bytes(p, n);
    uint8_t lenb[4];
    size_t s;
    if (d->nslots == 0 || (d->n + 1) * 2 > d->nslots)
        dict_rehash(d, d->nslots ? d->nslots * 2 : 1024);
    s = h & (d->nslots - 1);
    while (d->slots[s]) {
        size_t i = d->slots[s] - 1;
        if (d->hash[i] == h && d->len[i] == n && memcmp(d->plain.ptr + d->off[i], p, n) == 0)
            return (int64_t)i;
        s = (s + 1) & (d->nslots - 1);
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 256;
        d->off = rf_xrealloc(d->off, d->cap * sizeof(*d->off));
        d->len = rf_xrealloc(d->len, d->cap * sizeof(*d->len));
        d->hash = rf_xrealloc(d->hash, d->cap * sizeof(*d->hash));
    }
    le32(lenb, (uint32_t)n);
    if (rf_buf_append(&d->plain, lenb, 4) || rf_buf_append(&d->plain, p, n))
        return -1;
    d->off[d->n] = d->plain.len - n;
    d->len[d->n] = (uint32_t)n;
    d->hash[d->n] = h;
    d->slots[s] = (uint32_t)(d->n + 1);
    return (int64_t)d->n++;
}

/* ==== Columns ==== */

typedef struct pq_col {
    char *name;
    int32_t field_id, element_id;
    rf_iceberg_pq_type type;
    int optional, is_list, element_optional;
    int ptype, is_bytes, is_float;
    int max_def, max_rep;

    /* The page being filled. */
    uint8_t *def, *rep;
    size_t nlev, cap_lev;
    rf_buf_t vals;     /* PLAIN values */
    int64_t bool_bits; /* booleans in vals */
    uint32_t *idx;     /* dictionary indices */
    size_t nidx, cap_idx;
    int64_t page_entries;
    int64_t page_plain_bytes; /* PLAIN size of the page's dictionary-encoded values */
    int overflow;             /* a value could not be buffered */

    /* The column chunk of the current row group. */
    int dict_mode;  /* values go through the dictionary */
    int dict_full;  /* the dictionary passed its limit: fall back at the row's end */
    int dict_pages; /* data pages written with dictionary indices */
    int plain_pages;
    dict_t dict;
    rf_buf_t chunk; /* data page headers and (compressed) bodies */
    int64_t chunk_uncomp;
    int64_t chunk_values, chunk_nulls, chunk_nans;
    minmax_t cmm;
    int64_t m_dict_off, m_data_off, m_comp, m_uncomp; /* set when the chunk is written */

    /* The whole file. */
    int64_t f_values, f_nulls, f_nans, f_size;
    minmax_t fmm;
} pq_col_t;

struct rf_iceberg_parquet {
    char *path;
    int fd;
    rf_rc failed; /* sticky: a write or encoding failure */
    rf_err_t fail_err;
    rf_iceberg_pq_opts_t opts;
    char **kv_keys, **kv_vals;
    size_t nkv;
    pq_col_t *cols;
    size_t ncols;
    int64_t offset; /* bytes in the file */
    int64_t rows, rg_rows;
    size_t rg_bytes;    /* estimate of the buffered row group */
    rf_buf_t rowgroups; /* Thrift RowGroup structs, one after the other */
    size_t nrowgroups;
    int64_t *splits;
    size_t nsplits, cap_splits;
    ZSTD_CCtx *zc;
    rf_buf_t body, zbody, hdr;
};

static void col_fini(pq_col_t *c)
{
    free(c->name);
    free(c->def);
    free(c->rep);
    free(c->idx);
    rf_buf_fini(&c->vals);
    rf_buf_fini(&c->chunk);
    dict_fini(&c->dict);
    mm_fini(&c->cmm);
    mm_fini(&c->fmm);
}

static void col_put(pq_col_t *c, const void *p, size_t n)
{
    if (rf_buf_append(&c->vals, p, n))
        c->overflow = 1;
}

static void col_reserve_levels(pq_col_t *c, size_t extra)
{
    if (c->nlev + extra <= c->cap_lev)
        return;
    while (c->nlev + extra > c->cap_lev)
        c->cap_lev = c->cap_lev ? c->cap_lev * 2 : 1024;
    if (c->max_def > 0)
        c->def = rf_xrealloc(c->def, c->cap_lev);
    if (c->max_rep > 0)
        c->rep = rf_xrealloc(c->rep, c->cap_lev);
}

static void col_level(pq_col_t *c, int rep, int def)
{
    if (c->nlev == c->cap_lev) {
        c->cap_lev = c->cap_lev ? c->cap_lev * 2 : 1024;
        if (c->max_def > 0)
            c->def = rf_xrealloc(c->def, c->cap_lev);
        if (c->max_rep > 0)
            c->rep = rf_xrealloc(c->rep, c->cap_lev);
    }
    if (c->max_def > 0)
        c->def[c->nlev] = (uint8_t)def;
    if (c->max_rep > 0)
        c->rep[c->nlev] = (uint8_t)rep;
    c->nlev++;
    c->page_entries++;
    c->chunk_values++;
    if (def < c->max_def)
        c->chunk_nulls++;
}

static void col_bool(pq_col_t *c, int v)
{
    if (c->bool_bits % 8 == 0) {
        uint8_t zero = 0;
        col_put(c, &zero, 1);
        if (c->overflow)
            return;
    }
    if (v)
        c->vals.ptr[c->vals.len - 1] |= (char)(1u << (c->bool_bits % 8));
    c->bool_bits++;
    mm_int(&c->cmm, v ? 1 : 0);
}

static void col_i32(pq_col_t *c, int32_t v)
{
    uint8_t b[4];
    le32(b, (uint32_t)v);
    col_put(c, b, 4);
    mm_int(&c->cmm, v);
}

static void col_i64(pq_col_t *c, int64_t v)
{
    uint8_t b[8];
    le64(b, (uint64_t)v);
    col_put(c, b, 8);
    mm_int(&c->cmm, v);
}

static void col_f32(pq_col_t *c, float v)
{
    uint8_t b[4];
    le32(b, f32_bits(v));
    col_put(c, b, 4);
    if (isnan(v))
        c->chunk_nans++;
    else
        mm_dbl(&c->cmm, v);
}

static void col_f64(pq_col_t *c, double v)
{
    uint8_t b[8];
    le64(b, f64_bits(v));
    col_put(c, b, 8);
    if (isnan(v))
        c->chunk_nans++;
    else
        mm_dbl(&c->cmm, v);
}

static void col_bytes(pq_col_t *c, const uint8_t *p, size_t n)
{
    mm_bytes(&c->cmm, p, n);
    if (c->dict_mode) {
        int64_t i = dict_add(&c->dict, p, n);
        if (i < 0) {
            c->overflow = 1;
            return;
        }
        if (c->nidx == c->cap_idx) {
            c->cap_idx = c->cap_idx ? c->cap_idx * 2 : 1024;
            c->idx = rf_xrealloc(c->idx, c->cap_idx * sizeof(*c->idx));
        }
        c->idx[c->nidx++] = (uint32_t)i;
        c->page_plain_bytes += 4 + (int64_t)n;
        if (c->dict.n >= PQ_DICT_MAX_N)
            c->dict_full = 1;
        return;
    }
    {
        uint8_t lenb[4];
        le32(lenb, (uint32_t)n);
        col_put(c, lenb, 4);
        col_put(c, p, n);
    }
}

/* The page's size as it will be encoded, roughly. */
static size_t col_page_estimate(const pq_col_t *c)
{
    return c->vals.len + c->nidx + c->nlev / 4;
}

/* ==== File output ==== */

static rf_rc pq_fail(rf_iceberg_parquet_t *w, rf_rc rc, rf_err_t *err)
{
    /* The first failure wins; later calls repeat it. */
    if (!w->failed) {
        w->failed = rc;
        if (err)
            w->fail_err = *err;
        else
            rf_err_set(&w->fail_err, rc, "parquet: %s", rf_rc_msg(rc));
    }
    return rc;
}

static rf_rc pq_write(rf_iceberg_parquet_t *w, const void *p, size_t n, rf_err_t *err)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t k = write(w->fd, b, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return rf_err_sys(err, RF_EIO, "parquet: write %s", w->path);
        }
        b += k;
        n -= (size_t)k;
        w->offset += k;
    }
    return RF_OK;
}

/* Compresses w->body into w->zbody (or leaves it as is); *out points at the bytes to
 * write. */
static rf_rc pq_compress(rf_iceberg_parquet_t *w, const rf_buf_t **out, rf_err_t *err)
{
    size_t bound, n;
    if (w->opts.codec != RF_ICEBERG_PQ_ZSTD) {
        *out = &w->body;
        return RF_OK;
    }
    bound = ZSTD_compressBound(w->body.len);
    rf_buf_reset(&w->zbody);
    if (w->zbody.cap < bound + 1) {
        w->zbody.ptr = rf_xrealloc(w->zbody.ptr, bound + 1);
        w->zbody.cap = bound + 1;
    }
    n = ZSTD_compressCCtx(w->zc, w->zbody.ptr, bound, w->body.ptr, w->body.len, w->opts.zstd_level);
    if (ZSTD_isError(n))
        return rf_err_set(err, RF_ENOMEM, "parquet: zstd: %s", ZSTD_getErrorName(n));
    w->zbody.len = n;
    *out = &w->zbody;
    return RF_OK;
}

/* Encodes levels[0..n) with the hybrid encoding, 4-byte length first (data page v1). */
static rf_rc pq_levels(rf_buf_t *out, const uint8_t *levels, size_t n, int max_level)
{
    rf_iceberg_rle_t rle;
    size_t at = out->len;
    uint8_t len[4] = {0};
    if (rf_buf_append(out, len, 4))
        return RF_ETOOBIG;
    rf__iceberg_rle_init(&rle, out, rf__iceberg_bit_width((uint32_t)max_level));
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && levels[j] == levels[i])
            j++;
        rf__iceberg_rle_put_run(&rle, levels[i], j - i);
        i = j;
    }
    if (rf__iceberg_rle_finish(&rle))
        return rle.rc;
    le32((uint8_t *)out->ptr + at, (uint32_t)(out->len - at - 4));
    return RF_OK;
}

static int dict_bit_width(const dict_t *d)
{
    int bw = d->n > 1 ? rf__iceberg_bit_width((uint32_t)(d->n - 1)) : 1;
    return bw;
}

/* The first dictionary page of a chunk decides: when the dictionary and its indices
 * are not smaller than the PLAIN values, the page is re-encoded PLAIN and the chunk
 * drops its dictionary (as parquet-mr does for near-unique columns). */
static void col_dict_check(pq_col_t *c)
{
    int64_t encoded;
    if (!c->dict_mode || c->dict_pages > 0 || c->nidx == 0)
        return;
    encoded = (int64_t)c->dict.plain.len + ((int64_t)c->nidx * dict_bit_width(&c->dict) + 7) / 8;
    if (encoded < c->page_plain_bytes)
        return;
    for (size_t i = 0; i < c->nidx && !c->overflow; i++) {
        uint32_t k = c->idx[i];
        col_put(c, c->dict.plain.ptr + c->dict.off[k] - 4, 4 + (size_t)c->dict.len[k]);
    }
    c->nidx = 0;
    c->page_plain_bytes = 0;
    dict_reset(&c->dict);
    c->dict_mode = 0;
    c->dict_full = 0;
}

static void pq_page_header(rf_iceberg_parquet_t *w, int type, size_t uncomp, size_t comp,
                           int64_t nvalues, int encoding)
{
    rf_iceberg_tc_t tc;
    rf_buf_reset(&w->hdr);
    rf__iceberg_tc_init(&tc, &w->hdr);
    rf__iceberg_tc_push(&tc);
    rf__iceberg_tc_i32(&tc, 1, type);
    rf__iceberg_tc_i32(&tc, 2, (int32_t)uncomp);
    rf__iceberg_tc_i32(&tc, 3, (int32_t)comp);
    if (type == PAGE_DATA) {
        rf__iceberg_tc_struct(&tc, 5); /* DataPageHeader */
        rf__iceberg_tc_i32(&tc, 1, (int32_t)nvalues);
        rf__iceberg_tc_i32(&tc, 2, encoding);
        rf__iceberg_tc_i32(&tc, 3, ENC_RLE);
        rf__iceberg_tc_i32(&tc, 4, ENC_RLE);
        rf__iceberg_tc_pop(&tc);
    } else {
        rf__iceberg_tc_struct(&tc, 7); /* DictionaryPageHeader */
        rf__iceberg_tc_i32(&tc, 1, (int32_t)nvalues);
        rf__iceberg_tc_i32(&tc, 2, ENC_PLAIN);
        rf__iceberg_tc_pop(&tc);
    }
    rf__iceberg_tc_pop(&tc);
    /* A page header is a few dozen bytes; the default buffer limit cannot be hit. */
}

/* Encodes, compresses and appends the page being filled to the chunk buffer. */
static rf_rc col_flush_page(rf_iceberg_parquet_t *w, pq_col_t *c, rf_err_t *err)
{
    const rf_buf_t *data;
    int encoding;
    rf_rc rc;
    if (c->page_entries == 0)
        return RF_OK;
    col_dict_check(c);
    if (c->overflow)
        return rf_err_set(err, RF_ETOOBIG, "parquet: column %s: page buffer full", c->name);
    rf_buf_reset(&w->body);
    if (c->max_rep > 0 && (rc = pq_levels(&w->body, c->rep, c->nlev, c->max_rep)))
        return rf_err_set(err, rc, "parquet: column %s: repetition levels", c->name);
    if (c->max_def > 0 && (rc = pq_levels(&w->body, c->def, c->nlev, c->max_def)))
        return rf_err_set(err, rc, "parquet: column %s: definition levels", c->name);
    if (c->dict_mode && c->nidx > 0) {
        rf_iceberg_rle_t rle;
        uint8_t bw = (uint8_t)dict_bit_width(&c->dict);
        encoding = ENC_RLE_DICTIONARY;
        if (rf_buf_append(&w->body, &bw, 1))
            return rf_err_set(err, RF_ETOOBIG, "parquet: column %s: page too large", c->name);
        rf__iceberg_rle_init(&rle, &w->body, bw);
        for (size_t i = 0; i < c->nidx; i++)
            rf__iceberg_rle_put(&rle, c->idx[i]);
        if ((rc = rf__iceberg_rle_finish(&rle)))
            return rf_err_set(err, rc, "parquet: column %s: dictionary indices", c->name);
        c->dict_pages++;
    } else {
        encoding = ENC_PLAIN;
        if (rf_buf_append(&w->body, c->vals.ptr, c->vals.len))
            return rf_err_set(err, RF_ETOOBIG, "parquet: column %s: page too large", c->name);
        c->plain_pages++;
    }
    if (w->body.len > INT32_MAX)
        return rf_err_set(err, RF_ETOOBIG, "parquet: column %s: page of %zu bytes", c->name,
                          w->body.len);
    if ((rc = pq_compress(w, &data, err)))
        return rc;
    if (data->len > INT32_MAX)
        return rf_err_set(err, RF_ETOOBIG, "parquet: column %s: page too large", c->name);
    pq_page_header(w, PAGE_DATA, w->body.len, data->len, c->page_entries, encoding);
    if (rf_buf_append(&c->chunk, w->hdr.ptr, w->hdr.len) ||
        rf_buf_append(&c->chunk, data->ptr, data->len))
        return rf_err_set(err, RF_ETOOBIG, "parquet: column %s: row group too large", c->name);
    c->chunk_uncomp += (int64_t)(w->hdr.len + w->body.len);

    c->nlev = 0;
    c->nidx = 0;
    c->page_entries = 0;
    c->page_plain_bytes = 0;
    c->bool_bits = 0;
    rf_buf_reset(&c->vals);
    if (c->dict_full)
        c->dict_mode = 0; /* later pages of this chunk are PLAIN */
    return RF_OK;
}

/* ==== Footer ==== */

static void tc_stats(rf_iceberg_tc_t *tc, rf_iceberg_parquet_t *w, pq_col_t *c)
{
    rf__iceberg_tc_struct(tc, 12); /* Statistics */
    rf__iceberg_tc_i64(tc, 3, c->chunk_nulls);
    if (c->cmm.has && (c->ptype != PT_BYTES ||
                       (c->cmm.bmin.len <= PQ_STATS_MAX && c->cmm.bmax.len <= PQ_STATS_MAX))) {
        mm_plain(&c->cmm, c->ptype, 1, &w->hdr);
        rf__iceberg_tc_binary(tc, 5, w->hdr.ptr, w->hdr.len);
        mm_plain(&c->cmm, c->ptype, 0, &w->hdr);
        rf__iceberg_tc_binary(tc, 6, w->hdr.ptr, w->hdr.len);
    }
    if (c->is_float)
        rf__iceberg_tc_i64(tc, 9, c->chunk_nans);
    rf__iceberg_tc_pop(tc);
}

static void tc_column_chunk(rf_iceberg_tc_t *tc, rf_iceberg_parquet_t *w, pq_col_t *c)
{
    int encs[3], nencs = 0, nstats = 0;
    rf__iceberg_tc_push(tc); /* ColumnChunk */
    rf__iceberg_tc_i64(tc, 2, 0);
    rf__iceberg_tc_struct(tc, 3); /* ColumnMetaData */
    rf__iceberg_tc_i32(tc, 1, c->ptype);
    if (c->plain_pages > 0 || c->dict_pages > 0)
        encs[nencs++] = ENC_PLAIN; /* the dictionary page is PLAIN */
    if (c->max_def > 0 || c->max_rep > 0)
        encs[nencs++] = ENC_RLE;
    if (c->dict_pages > 0)
        encs[nencs++] = ENC_RLE_DICTIONARY;
    rf__iceberg_tc_list(tc, 2, RF_ICEBERG_TC_I32, (size_t)nencs);
    for (int i = 0; i < nencs; i++)
        rf__iceberg_tc_elem_i32(tc, encs[i]);
    if (c->is_list) {
        rf__iceberg_tc_list(tc, 3, RF_ICEBERG_TC_BINARY, 3);
        rf__iceberg_tc_elem_binary(tc, c->name, strlen(c->name));
        rf__iceberg_tc_elem_binary(tc, "list", 4);
        rf__iceberg_tc_elem_binary(tc, "element", 7);
    } else {
        rf__iceberg_tc_list(tc, 3, RF_ICEBERG_TC_BINARY, 1);
        rf__iceberg_tc_elem_binary(tc, c->name, strlen(c->name));
    }
    rf__iceberg_tc_i32(tc, 4, (int32_t)w->opts.codec);
    rf__iceberg_tc_i64(tc, 5, c->chunk_values);
    rf__iceberg_tc_i64(tc, 6, c->m_uncomp);
    rf__iceberg_tc_i64(tc, 7, c->m_comp);
    rf__iceberg_tc_i64(tc, 9, c->m_data_off);
    if (c->m_dict_off >= 0)
        rf__iceberg_tc_i64(tc, 11, c->m_dict_off);
    tc_stats(tc, w, c);
    /* encoding_stats: which pages use which encoding. */
    nstats = (c->dict_pages > 0 ? 2 : 0) + (c->plain_pages > 0 ? 1 : 0);
    rf__iceberg_tc_list(tc, 13, RF_ICEBERG_TC_STRUCT, (size_t)nstats);
    if (c->dict_pages > 0) {
        rf__iceberg_tc_push(tc);
        rf__iceberg_tc_i32(tc, 1, PAGE_DICTIONARY);
        rf__iceberg_tc_i32(tc, 2, ENC_PLAIN);
        rf__iceberg_tc_i32(tc, 3, 1);
        rf__iceberg_tc_pop(tc);
        rf__iceberg_tc_push(tc);
        rf__iceberg_tc_i32(tc, 1, PAGE_DATA);
        rf__iceberg_tc_i32(tc, 2, ENC_RLE_DICTIONARY);
        rf__iceberg_tc_i32(tc, 3, c->dict_pages);
        rf__iceberg_tc_pop(tc);
    }
    if (c->plain_pages > 0) {
        rf__iceberg_tc_push(tc);
        rf__iceberg_tc_i32(tc, 1, PAGE_DATA);
        rf__iceberg_tc_i32(tc, 2, ENC_PLAIN);
        rf__iceberg_tc_i32(tc, 3, c->plain_pages);
        rf__iceberg_tc_pop(tc);
    }
    rf__iceberg_tc_pop(tc); /* ColumnMetaData */
    rf__iceberg_tc_pop(tc); /* ColumnChunk */
}

static void tc_schema_leaf(rf_iceberg_tc_t *tc, const pq_col_t *c, const char *name, int rep,
                           int32_t field_id)
{
    rf__iceberg_tc_push(tc);
    rf__iceberg_tc_i32(tc, 1, c->ptype);
    rf__iceberg_tc_i32(tc, 3, rep);
    rf__iceberg_tc_binary(tc, 4, name, strlen(name));
    switch (c->type) {
    case RF_ICEBERG_PQ_STRING:
        rf__iceberg_tc_i32(tc, 6, CT_UTF8);
        rf__iceberg_tc_i32(tc, 9, field_id);
        rf__iceberg_tc_struct(tc, 10); /* LogicalType */
        rf__iceberg_tc_struct(tc, 1);  /* STRING */
        rf__iceberg_tc_pop(tc);
        rf__iceberg_tc_pop(tc);
        break;
    case RF_ICEBERG_PQ_DATE:
        rf__iceberg_tc_i32(tc, 6, CT_DATE);
        rf__iceberg_tc_i32(tc, 9, field_id);
        rf__iceberg_tc_struct(tc, 10);
        rf__iceberg_tc_struct(tc, 6); /* DATE */
        rf__iceberg_tc_pop(tc);
        rf__iceberg_tc_pop(tc);
        break;
    case RF_ICEBERG_PQ_TIMESTAMPTZ:
        rf__iceberg_tc_i32(tc, 6, CT_TIMESTAMP_MICROS);
        rf__iceberg_tc_i32(tc, 9, field_id);
        rf__iceberg_tc_struct(tc, 10);
        rf__iceberg_tc_struct(tc, 8);  /* TIMESTAMP */
        rf__iceberg_tc_bool(tc, 1, 1); /* isAdjustedToUTC */
        rf__iceberg_tc_struct(tc, 2);  /* unit */
        rf__iceberg_tc_struct(tc, 2);  /* MICROS */
        rf__iceberg_tc_pop(tc);
        rf__iceberg_tc_pop(tc);
        rf__iceberg_tc_pop(tc);
        rf__iceberg_tc_pop(tc);
        break;
    default:
        rf__iceberg_tc_i32(tc, 9, field_id);
        break;
    }
    rf__iceberg_tc_pop(tc);
}

static rf_rc pq_footer(rf_iceberg_parquet_t *w, rf_buf_t *out, rf_err_t *err)
{
    rf_iceberg_tc_t tc;
    size_t nschema = 1;
    for (size_t i = 0; i < w->ncols; i++)
        nschema += w->cols[i].is_list ? 3 : 1;
    rf__iceberg_tc_init(&tc, out);
    rf__iceberg_tc_push(&tc);
    rf__iceberg_tc_i32(&tc, 1, 1); /* version */
    rf__iceberg_tc_list(&tc, 2, RF_ICEBERG_TC_STRUCT, nschema);
    rf__iceberg_tc_push(&tc); /* root */
    rf__iceberg_tc_binary(&tc, 4, "table", 5);
    rf__iceberg_tc_i32(&tc, 5, (int32_t)w->ncols);
    rf__iceberg_tc_pop(&tc);
    for (size_t i = 0; i < w->ncols; i++) {
        const pq_col_t *c = &w->cols[i];
        int rep = c->optional ? REP_OPTIONAL : REP_REQUIRED;
        if (!c->is_list) {
            tc_schema_leaf(&tc, c, c->name, rep, c->field_id);
            continue;
        }
        rf__iceberg_tc_push(&tc); /* <name> (LIST) */
        rf__iceberg_tc_i32(&tc, 3, rep);
        rf__iceberg_tc_binary(&tc, 4, c->name, strlen(c->name));
        rf__iceberg_tc_i32(&tc, 5, 1);
        rf__iceberg_tc_i32(&tc, 6, CT_LIST);
        rf__iceberg_tc_i32(&tc, 9, c->field_id);
        rf__iceberg_tc_struct(&tc, 10);
        rf__iceberg_tc_struct(&tc, 3); /* LIST */
        rf__iceberg_tc_pop(&tc);
        rf__iceberg_tc_pop(&tc);
        rf__iceberg_tc_pop(&tc);
        rf__iceberg_tc_push(&tc); /* list (repeated) */
        rf__iceberg_tc_i32(&tc, 3, REP_REPEATED);
        rf__iceberg_tc_binary(&tc, 4, "list", 4);
        rf__iceberg_tc_i32(&tc, 5, 1);
        rf__iceberg_tc_pop(&tc);
        tc_schema_leaf(&tc, c, "element", c->element_optional ? REP_OPTIONAL : REP_REQUIRED,
                       c->element_id);
    }
    rf__iceberg_tc_i64(&tc, 3, w->rows);
    rf__iceberg_tc_list(&tc, 4, RF_ICEBERG_TC_STRUCT, w->nrowgroups);
    /* The RowGroup structs were encoded as each row group was written. */
    if (!tc.rc && rf_buf_append(out, w->rowgroups.ptr, w->rowgroups.len))
        tc.rc = RF_ETOOBIG;
    if (w->nkv > 0) {
        rf__iceberg_tc_list(&tc, 5, RF_ICEBERG_TC_STRUCT, w->nkv);
        for (size_t i = 0; i < w->nkv; i++) {
            rf__iceberg_tc_push(&tc);
            rf__iceberg_tc_binary(&tc, 1, w->kv_keys[i], strlen(w->kv_keys[i]));
            if (w->kv_vals[i])
                rf__iceberg_tc_binary(&tc, 2, w->kv_vals[i], strlen(w->kv_vals[i]));
            rf__iceberg_tc_pop(&tc);
        }
    }
    rf__iceberg_tc_binary(&tc, 6, "ragfeed version " RF_VERSION,
                          strlen("ragfeed version " RF_VERSION));
    /* column_orders: TYPE_ORDER for every leaf, which defines min_value/max_value. */
    rf__iceberg_tc_list(&tc, 7, RF_ICEBERG_TC_STRUCT, w->ncols);
    for (size_t i = 0; i < w->ncols; i++) {
        rf__iceberg_tc_push(&tc);
        rf__iceberg_tc_struct(&tc, 1);
        rf__iceberg_tc_pop(&tc);
        rf__iceberg_tc_pop(&tc);
    }
    rf__iceberg_tc_pop(&tc);
    return rf__iceberg_tc_finish(&tc, err);
}

/* ==== Row groups ==== */

/* Writes the dictionary page (if any) and the data pages of one column chunk. */
static rf_rc col_write_chunk(rf_iceberg_parquet_t *w, pq_col_t *c, rf_err_t *err)
{
    rf_rc rc;
    int64_t start = w->offset;
    c->m_dict_off = -1;
    c->m_uncomp = c->chunk_uncomp;
    if (c->dict_pages > 0) {
        const rf_buf_t *data;
        rf_buf_reset(&w->body);
        if (rf_buf_append(&w->body, c->dict.plain.ptr, c->dict.plain.len))
            return rf_err_set(err, RF_ETOOBIG, "parquet: column %s: dictionary", c->name);
        if ((rc = pq_compress(w, &data, err)))
            return rc;
        if (w->body.len > INT32_MAX || data->len > INT32_MAX)
            return rf_err_set(err, RF_ETOOBIG, "parquet: column %s: dictionary too large", c->name);
        pq_page_header(w, PAGE_DICTIONARY, w->body.len, data->len, (int64_t)c->dict.n, 0);
        c->m_dict_off = start;
        c->m_uncomp += (int64_t)(w->hdr.len + w->body.len);
        if ((rc = pq_write(w, w->hdr.ptr, w->hdr.len, err)) ||
            (rc = pq_write(w, data->ptr, data->len, err)))
            return rc;
    }
    c->m_data_off = w->offset;
    if ((rc = pq_write(w, c->chunk.ptr, c->chunk.len, err)))
        return rc;
    c->m_comp = w->offset - start;
    return RF_OK;
}

static void col_reset_chunk(rf_iceberg_parquet_t *w, pq_col_t *c)
{
    c->f_values += c->chunk_values;
    c->f_nulls += c->chunk_nulls;
    c->f_nans += c->chunk_nans;
    c->f_size += c->m_comp;
    mm_merge(&c->fmm, &c->cmm, c->ptype);
    mm_reset(&c->cmm);
    c->chunk_values = c->chunk_nulls = c->chunk_nans = 0;
    c->chunk_uncomp = 0;
    c->dict_pages = c->plain_pages = 0;
    c->dict_full = 0;
    dict_reset(&c->dict);
    c->dict_mode = c->is_bytes && w->opts.dictionary;
    rf_buf_reset(&c->chunk);
}

static rf_rc pq_flush_row_group(rf_iceberg_parquet_t *w, rf_err_t *err)
{
    rf_iceberg_tc_t tc;
    int64_t start = w->offset, uncomp = 0;
    rf_rc rc;
    if (w->rg_rows == 0)
        return RF_OK;
    for (size_t i = 0; i < w->ncols; i++) {
        if ((rc = col_flush_page(w, &w->cols[i], err)))
            return rc;
    }
    for (size_t i = 0; i < w->ncols; i++) {
        if ((rc = col_write_chunk(w, &w->cols[i], err)))
            return rc;
        uncomp += w->cols[i].m_uncomp;
    }
    rf__iceberg_tc_init(&tc, &w->rowgroups);
    rf__iceberg_tc_push(&tc); /* RowGroup */
    rf__iceberg_tc_list(&tc, 1, RF_ICEBERG_TC_STRUCT, w->ncols);
    for (size_t i = 0; i < w->ncols; i++)
        tc_column_chunk(&tc, w, &w->cols[i]);
    rf__iceberg_tc_i64(&tc, 2, uncomp);
    rf__iceberg_tc_i64(&tc, 3, w->rg_rows);
    rf__iceberg_tc_i64(&tc, 5, start);
    rf__iceberg_tc_i64(&tc, 6, w->offset - start);
    if (w->nrowgroups <= INT16_MAX) {
        rf__iceberg_tc_field(&tc, RF_ICEBERG_TC_I16, 7);
        rf__iceberg_tc_uvarint(&tc, (uint64_t)w->nrowgroups << 1);
    }
    rf__iceberg_tc_pop(&tc);
    if ((rc = rf__iceberg_tc_finish(&tc, err)))
        return rc;
    w->nrowgroups++;
    if (w->nsplits == w->cap_splits) {
        w->cap_splits = w->cap_splits ? w->cap_splits * 2 : 16;
        w->splits = rf_xrealloc(w->splits, w->cap_splits * sizeof(*w->splits));
    }
    w->splits[w->nsplits++] = start;
    for (size_t i = 0; i < w->ncols; i++)
        col_reset_chunk(w, &w->cols[i]);
    w->rg_rows = 0;
    w->rg_bytes = 0;
    return RF_OK;
}

/* ==== Rows ==== */

static size_t elem_size(rf_iceberg_pq_type t)
{
    switch (t) {
    case RF_ICEBERG_PQ_BOOLEAN:
        return 1;
    case RF_ICEBERG_PQ_INT32:
    case RF_ICEBERG_PQ_DATE:
    case RF_ICEBERG_PQ_FLOAT:
        return 4;
    case RF_ICEBERG_PQ_INT64:
    case RF_ICEBERG_PQ_TIMESTAMPTZ:
    case RF_ICEBERG_PQ_DOUBLE:
        return 8;
    default:
        return sizeof(rf_slice_t);
    }
}

static rf_rc check_bytes(const rf_iceberg_parquet_t *w, const pq_col_t *c, rf_slice_t s,
                         size_t *total, rf_err_t *err)
{
    if (!s.ptr && s.len)
        return rf_err_set(err, RF_EINVAL, "parquet: column %s: NULL bytes of length %zu", c->name,
                          s.len);
    if (s.len > w->opts.max_value_bytes || *total + s.len > w->opts.max_value_bytes)
        return rf_err_set(err, RF_ETOOBIG, "parquet: column %s: value larger than %zu bytes",
                          c->name, w->opts.max_value_bytes);
    *total += s.len;
    if (c->type == RF_ICEBERG_PQ_STRING && !rf_utf8_valid(s.ptr, s.len))
        return rf_err_set(err, RF_EINVAL, "parquet: column %s: string is not valid UTF-8", c->name);
    return RF_OK;
}

/* Everything that can reject a row is checked before any column changes. */
static rf_rc row_check(const rf_iceberg_parquet_t *w, const rf_iceberg_pq_value_t *values,
                       rf_err_t *err)
{
    rf_rc rc;
    for (size_t i = 0; i < w->ncols; i++) {
        const pq_col_t *c = &w->cols[i];
        const rf_iceberg_pq_value_t *v = &values[i];
        size_t total = 0;
        if (v->is_null) {
            if (!c->optional)
                return rf_err_set(err, RF_EINVAL, "parquet: column %s (field %d) is required",
                                  c->name, (int)c->field_id);
            continue;
        }
        if (!c->is_list) {
            if (c->is_bytes && (rc = check_bytes(w, c, v->v.bytes, &total, err)))
                return rc;
            continue;
        }
        if (v->v.list.count > w->opts.max_list_items)
            return rf_err_set(err, RF_ETOOBIG, "parquet: column %s: list of %zu items (max %zu)",
                              c->name, v->v.list.count, w->opts.max_list_items);
        if (v->v.list.count > 0 && !v->v.list.items)
            return rf_err_set(err, RF_EINVAL, "parquet: column %s: list items missing", c->name);
        if (!c->is_bytes && v->v.list.count * elem_size(c->type) > w->opts.max_value_bytes)
            return rf_err_set(err, RF_ETOOBIG, "parquet: column %s: list larger than %zu bytes",
                              c->name, w->opts.max_value_bytes);
        for (size_t j = 0; j < v->v.list.count; j++) {
            if (v->v.list.nulls && v->v.list.nulls[j]) {
                if (!c->element_optional)
                    return rf_err_set(err, RF_EINVAL,
                                      "parquet: column %s: null element in a list of required "
                                      "elements",
                                      c->name);
                continue;
            }
            if (c->is_bytes) {
                const rf_slice_t *items = v->v.list.items;
                if ((rc = check_bytes(w, c, items[j], &total, err)))
                    return rc;
            }
        }
    }
    return RF_OK;
}

static void col_scalar(pq_col_t *c, rf_iceberg_pq_type t, const rf_iceberg_pq_value_t *v)
{
    switch (t) {
    case RF_ICEBERG_PQ_BOOLEAN:
        col_bool(c, v->v.b != 0);
        break;
    case RF_ICEBERG_PQ_INT32:
    case RF_ICEBERG_PQ_DATE:
        col_i32(c, v->v.i32);
        break;
    case RF_ICEBERG_PQ_INT64:
    case RF_ICEBERG_PQ_TIMESTAMPTZ:
        col_i64(c, v->v.i64);
        break;
    case RF_ICEBERG_PQ_FLOAT:
        col_f32(c, v->v.f32);
        break;
    case RF_ICEBERG_PQ_DOUBLE:
        col_f64(c, v->v.f64);
        break;
    default:
        col_bytes(c, v->v.bytes.ptr, v->v.bytes.len);
        break;
    }
}

static void col_element(pq_col_t *c, const void *items, size_t j)
{
    switch (c->type) {
    case RF_ICEBERG_PQ_BOOLEAN:
        col_bool(c, ((const uint8_t *)items)[j] != 0);
        break;
    case RF_ICEBERG_PQ_INT32:
    case RF_ICEBERG_PQ_DATE:
        col_i32(c, ((const int32_t *)items)[j]);
        break;
    case RF_ICEBERG_PQ_INT64:
    case RF_ICEBERG_PQ_TIMESTAMPTZ:
        col_i64(c, ((const int64_t *)items)[j]);
        break;
    case RF_ICEBERG_PQ_FLOAT:
        col_f32(c, ((const float *)items)[j]);
        break;
    case RF_ICEBERG_PQ_DOUBLE:
        col_f64(c, ((const double *)items)[j]);
        break;
    default: {
        const rf_slice_t *s = &((const rf_slice_t *)items)[j];
        col_bytes(c, s->ptr, s->len);
        break;
    }
    }
}

/* A list of required floats (embedding vectors): levels, one copy of the values, and
 * the statistics in one pass. */
static void col_float_list(pq_col_t *c, const float *items, size_t n)
{
    /* Every element is present: levels (rep 0 then 1s, def at its maximum) in bulk. */
    col_reserve_levels(c, n);
    memset(c->def + c->nlev, c->max_def, n);
    c->rep[c->nlev] = 0;
    memset(c->rep + c->nlev + 1, 1, n - 1);
    c->nlev += n;
    c->page_entries += (int64_t)n;
    c->chunk_values += (int64_t)n;
    for (size_t j = 0; j < n; j++) {
        if (!PQ_LITTLE_ENDIAN)
            col_f32(c, items[j]);
        else if (isnan(items[j]))
            c->chunk_nans++;
        else
            mm_dbl(&c->cmm, items[j]);
    }
    if (PQ_LITTLE_ENDIAN)
        col_put(c, items, n * sizeof(float));
}

static void col_value(pq_col_t *c, const rf_iceberg_pq_value_t *v)
{
    int base; /* definition level of a present but empty list */
    if (!c->is_list) {
        if (c->max_def > 0) {
            col_level(c, 0, v->is_null ? 0 : 1);
        } else {
            c->page_entries++;
            c->chunk_values++;
        }
        if (!v->is_null)
            col_scalar(c, c->type, v);
        return;
    }
    base = c->optional ? 1 : 0;
    if (v->is_null) {
        col_level(c, 0, 0);
        return;
    }
    if (v->v.list.count == 0) {
        col_level(c, 0, base);
        return;
    }
    if (c->type == RF_ICEBERG_PQ_FLOAT && !v->v.list.nulls) {
        col_float_list(c, v->v.list.items, v->v.list.count);
        return;
    }
    for (size_t j = 0; j < v->v.list.count; j++) {
        int rep = j == 0 ? 0 : 1;
        if (v->v.list.nulls && v->v.list.nulls[j]) {
            col_level(c, rep, c->max_def - 1);
            continue;
        }
        col_level(c, rep, c->max_def);
        col_element(c, v->v.list.items, j);
    }
}

rf_rc rf__iceberg_parquet_write_row(rf_iceberg_parquet_t *w, const rf_iceberg_pq_value_t *values,
                                    rf_err_t *err)
{
    rf_rc rc;
    size_t est = 0;
    if (!w || !values)
        return rf_err_set(err, RF_EINVAL, "parquet: write_row: NULL argument");
    if (w->failed) {
        if (err)
            *err = w->fail_err;
        return w->failed;
    }
    if ((rc = row_check(w, values, err)))
        return rc;
    for (size_t i = 0; i < w->ncols; i++)
        col_value(&w->cols[i], &values[i]);
    w->rows++;
    w->rg_rows++;
    /* Pages end on row boundaries, so a reader never sees a row split across pages. */
    for (size_t i = 0; i < w->ncols; i++) {
        pq_col_t *c = &w->cols[i];
        if (c->overflow)
            return pq_fail(
                w, rf_err_set(err, RF_ETOOBIG, "parquet: column %s: buffer full", c->name), err);
        if ((c->dict_mode && c->dict_full) || col_page_estimate(c) >= w->opts.page_bytes ||
            c->page_entries >= PQ_MAX_ENTRIES) {
            if ((rc = col_flush_page(w, c, err)))
                return pq_fail(w, rc, err);
        } else if (c->dict_mode && c->dict.plain.len > w->opts.dict_max_bytes) {
            c->dict_full = 1;
            if ((rc = col_flush_page(w, c, err)))
                return pq_fail(w, rc, err);
        }
        est += c->chunk.len + col_page_estimate(c) + c->dict.plain.len;
    }
    w->rg_bytes = est;
    if (est >= w->opts.row_group_bytes) {
        if ((rc = pq_flush_row_group(w, err)))
            return pq_fail(w, rc, err);
    }
    return RF_OK;
}

int64_t rf__iceberg_parquet_rows(const rf_iceberg_parquet_t *w)
{
    return w ? w->rows : 0;
}

int64_t rf__iceberg_parquet_size_estimate(const rf_iceberg_parquet_t *w)
{
    /* Footer: a few hundred bytes per column and row group, plus key/value metadata. */
    int64_t footer = 1024 + (int64_t)w->ncols * 64 * (int64_t)(w->nrowgroups + 2);
    for (size_t i = 0; i < w->nkv; i++)
        footer += (int64_t)strlen(w->kv_keys[i]) + (w->kv_vals[i] ? strlen(w->kv_vals[i]) : 0);
    return w->offset + (int64_t)w->rg_bytes + footer;
}

/* ==== Open, close, abort ==== */

void rf__iceberg_parquet_opts_init(rf_iceberg_pq_opts_t *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->codec = RF_ICEBERG_PQ_ZSTD;
    opts->zstd_level = 3;
    opts->row_group_bytes = (size_t)64 << 20;
    opts->page_bytes = (size_t)1 << 20;
    opts->dictionary = 1;
    opts->dict_max_bytes = (size_t)1 << 20;
    opts->max_value_bytes = (size_t)64 << 20;
    opts->max_list_items = (size_t)1 << 20;
    opts->bound_truncate = 16;
    opts->fsync = 1;
}

static void pq_free(rf_iceberg_parquet_t *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->ncols; i++)
        col_fini(&w->cols[i]);
    free(w->cols);
    for (size_t i = 0; i < w->nkv; i++) {
        free(w->kv_keys[i]);
        free(w->kv_vals[i]);
    }
    free(w->kv_keys);
    free(w->kv_vals);
    free(w->splits);
    rf_buf_fini(&w->rowgroups);
    rf_buf_fini(&w->body);
    rf_buf_fini(&w->zbody);
    rf_buf_fini(&w->hdr);
    ZSTD_freeCCtx(w->zc);
    if (w->fd >= 0)
        close(w->fd);
    free(w->path);
    free(w);
}

static rf_rc check_columns(const rf_iceberg_pq_column_t *columns, size_t ncols, rf_err_t *err)
{
    if (!columns || ncols == 0)
        return rf_err_set(err, RF_EINVAL, "parquet: no columns");
    if (ncols > PQ_MAX_COLUMNS)
        return rf_err_set(err, RF_ETOOBIG, "parquet: %zu columns (max %d)", ncols, PQ_MAX_COLUMNS);
    for (size_t i = 0; i < ncols; i++) {
        const rf_iceberg_pq_column_t *c = &columns[i];
        size_t n = c->name ? strlen(c->name) : 0;
        if (n == 0 || n > PQ_MAX_NAME || !rf_utf8_valid((const uint8_t *)c->name, n))
            return rf_err_set(err, RF_EINVAL,
                              "parquet: column %zu: name must be 1..%d bytes "
                              "of UTF-8",
                              i, PQ_MAX_NAME);
        if ((unsigned)c->type >= RF_ICEBERG_PQ__TYPE_COUNT)
            return rf_err_set(err, RF_EINVAL, "parquet: column %s: unknown type %d", c->name,
                              (int)c->type);
        if (c->field_id <= 0 || (c->is_list && c->element_id <= 0))
            return rf_err_set(err, RF_EINVAL, "parquet: column %s: field ids must be > 0", c->name);
        if (c->is_list && c->element_id == c->field_id)
            return rf_err_set(err, RF_EINVAL, "parquet: column %s: duplicate field id %d", c->name,
                              (int)c->field_id);
        for (size_t j = 0; j < i; j++) {
            const rf_iceberg_pq_column_t *o = &columns[j];
            int32_t a[2] = {c->field_id, c->is_list ? c->element_id : -1};
            int32_t b[2] = {o->field_id, o->is_list ? o->element_id : -1};
            if (strcmp(c->name, o->name) == 0)
                return rf_err_set(err, RF_EINVAL, "parquet: duplicate column name %s", c->name);
            for (int x = 0; x < 2; x++)
                for (int y = 0; y < 2; y++)
                    if (a[x] > 0 && a[x] == b[y])
                        return rf_err_set(err, RF_EINVAL,
                                          "parquet: columns %s and %s share field id %d", o->name,
                                          c->name, (int)a[x]);
        }
    }
    return RF_OK;
}

static size_t clamp(size_t v, size_t lo, size_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

rf_rc rf__iceberg_parquet_open(const char *path, const rf_iceberg_pq_column_t *columns,
                               size_t ncols, const rf_iceberg_pq_opts_t *opts,
                               rf_iceberg_parquet_t **out, rf_err_t *err)
{
    rf_iceberg_parquet_t *w = NULL;
    rf_rc rc;
    size_t kvbytes = 0;
    if (!path || !out)
        return rf_err_set(err, RF_EINVAL, "parquet: open: NULL argument");
    if ((rc = check_columns(columns, ncols, err)))
        return rc;
    w = rf_xcalloc(1, sizeof(*w));
    w->fd = -1;
    if (opts)
        w->opts = *opts;
    else
        rf__iceberg_parquet_opts_init(&w->opts);
    if (w->opts.codec != RF_ICEBERG_PQ_ZSTD && w->opts.codec != RF_ICEBERG_PQ_UNCOMPRESSED) {
        rc = rf_err_set(err, RF_EINVAL, "parquet: unsupported codec %d", (int)w->opts.codec);
        goto out;
    }
    if (w->opts.nkv > 0 && !w->opts.kv) {
        rc = rf_err_set(err, RF_EINVAL, "parquet: %zu key/value pairs but no array", w->opts.nkv);
        goto out;
    }
    for (size_t i = 0; i < w->opts.nkv; i++) {
        if (!w->opts.kv[i].key) {
            rc = rf_err_set(err, RF_EINVAL, "parquet: key/value pair %zu has no key", i);
            goto out;
        }
        kvbytes += strlen(w->opts.kv[i].key);
        if (w->opts.kv[i].value)
            kvbytes += strlen(w->opts.kv[i].value);
        if (kvbytes > PQ_MAX_KV_BYTES) {
            rc = rf_err_set(err, RF_ETOOBIG, "parquet: key/value metadata over %zu bytes",
                            PQ_MAX_KV_BYTES);
            goto out;
        }
    }
    /* Out-of-range sizes are clamped so that every page fits Parquet's i32 sizes. */
    w->opts.zstd_level = w->opts.zstd_level ? w->opts.zstd_level : 3;
    w->opts.page_bytes =
        clamp(w->opts.page_bytes ? w->opts.page_bytes : (1u << 20), 64, PQ_MAX_BUFFER);
    w->opts.row_group_bytes = clamp(
        w->opts.row_group_bytes ? w->opts.row_group_bytes : ((size_t)64 << 20), 1, PQ_MAX_RGROUP);
    w->opts.dict_max_bytes =
        clamp(w->opts.dict_max_bytes ? w->opts.dict_max_bytes : (1u << 20), 64, PQ_MAX_BUFFER);
    w->opts.max_value_bytes = clamp(
        w->opts.max_value_bytes ? w->opts.max_value_bytes : ((size_t)64 << 20), 1, PQ_MAX_BUFFER);
    w->opts.max_list_items =
        clamp(w->opts.max_list_items ? w->opts.max_list_items : (1u << 20), 1, PQ_MAX_BUFFER);
    if (w->opts.bound_truncate <= 0)
        w->opts.bound_truncate = 16;
    w->nkv = w->opts.nkv;
    w->kv_keys = rf_xcalloc(w->nkv + 1, sizeof(char *));
    w->kv_vals = rf_xcalloc(w->nkv + 1, sizeof(char *));
    for (size_t i = 0; i < w->nkv; i++) {
        w->kv_keys[i] = rf_xstrdup(w->opts.kv[i].key);
        w->kv_vals[i] = w->opts.kv[i].value ? rf_xstrdup(w->opts.kv[i].value) : NULL;
    }
    w->opts.kv = NULL; /* the copies above are used from now on */
    w->cols = rf_xcalloc(ncols, sizeof(*w->cols));
    w->ncols = ncols;
    for (size_t i = 0; i < ncols; i++) {
        pq_col_t *c = &w->cols[i];
        const rf_iceberg_pq_column_t *d = &columns[i];
        c->name = rf_xstrdup(d->name);
        c->field_id = d->field_id;
        c->element_id = d->is_list ? d->element_id : 0;
        c->type = d->type;
        c->optional = d->optional != 0;
        c->is_list = d->is_list != 0;
        c->element_optional = d->is_list && d->element_optional;
        c->ptype = pq_physical[d->type];
        c->is_bytes = c->ptype == PT_BYTES;
        c->is_float = c->ptype == PT_FLOAT || c->ptype == PT_DOUBLE;
        if (c->is_list) {
            c->max_rep = 1;
            c->max_def = c->optional + 1 + c->element_optional;
        } else {
            c->max_def = c->optional;
        }
        rf_buf_init(&c->vals, PQ_MAX_BUFFER * 2);
        rf_buf_init(&c->chunk, PQ_MAX_RGROUP * 2);
        dict_init(&c->dict);
        mm_init(&c->cmm);
        mm_init(&c->fmm);
        c->dict_mode = c->is_bytes && w->opts.dictionary;
    }
    rf_buf_init(&w->rowgroups, PQ_MAX_RGROUP);
    rf_buf_init(&w->body, PQ_MAX_BUFFER * 4);
    rf_buf_init(&w->zbody, PQ_MAX_BUFFER * 8);
    rf_buf_init(&w->hdr, PQ_MAX_BUFFER * 2);
    if (w->opts.codec == RF_ICEBERG_PQ_ZSTD) {
        w->zc = ZSTD_createCCtx();
        if (!w->zc) {
            rc = rf_err_set(err, RF_ENOMEM, "parquet: cannot create a zstd context");
            goto out;
        }
    }
    w->path = rf_xstrdup(path);
    w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        rc = rf_err_sys(err, errno == EEXIST ? RF_EEXIST : RF_EIO, "parquet: create %s", path);
        goto out;
    }
    if ((rc = pq_write(w, "PAR1", 4, err))) {
        unlink(path);
        goto out;
    }
    *out = w;
    w = NULL;
    rc = RF_OK;
out:
    pq_free(w);
    return rc;
}

/* Iceberg single-value serialisation of a file-level bound. */
static int col_bound(const rf_iceberg_parquet_t *w, const pq_col_t *c, int upper, uint8_t **p,
                     size_t *n)
{
    rf_buf_t raw, out;
    int ok = 1;
    if (!c->fmm.has)
        return 0;
    rf_buf_init(&raw, 0);
    rf_buf_init(&out, 0);
    mm_plain(&c->fmm, c->ptype, upper, &raw);
    if (c->is_bytes) {
        int is_string = c->type == RF_ICEBERG_PQ_STRING;
        size_t len = (size_t)w->opts.bound_truncate;
        ok = upper
                 ? rf__iceberg_bound_upper(is_string, (const uint8_t *)raw.ptr, raw.len, len, &out)
                 : rf__iceberg_bound_lower(is_string, (const uint8_t *)raw.ptr, raw.len, len, &out);
    } else {
        (void)rf_buf_append(&out, raw.ptr, raw.len);
    }
    rf_buf_fini(&raw);
    if (!ok) {
        rf_buf_fini(&out);
        return 0;
    }
    *p = (uint8_t *)rf_buf_take(&out, n);
    return 1;
}

rf_rc rf__iceberg_parquet_close(rf_iceberg_parquet_t *w, rf_iceberg_pq_result_t *res, rf_err_t *err)
{
    rf_buf_t footer;
    uint8_t tail[8];
    rf_rc rc;
    if (!w)
        return rf_err_set(err, RF_EINVAL, "parquet: close: NULL writer");
    rf_buf_init(&footer, (size_t)UINT32_MAX);
    if (w->failed) {
        if (err)
            *err = w->fail_err;
        rc = w->failed;
        goto out;
    }
    if ((rc = pq_flush_row_group(w, err)) || (rc = pq_footer(w, &footer, err)))
        goto out;
    le32(tail, (uint32_t)footer.len);
    memcpy(tail + 4, "PAR1", 4);
    if ((rc = pq_write(w, footer.ptr, footer.len, err)) || (rc = pq_write(w, tail, 8, err)))
        goto out;
    if (w->opts.fsync && fsync(w->fd) != 0) {
        rc = rf_err_sys(err, RF_EIO, "parquet: fsync %s", w->path);
        goto out;
    }
    if (close(w->fd) != 0) {
        w->fd = -1;
        rc = rf_err_sys(err, RF_EIO, "parquet: close %s", w->path);
        goto out;
    }
    w->fd = -1;
    if (res) {
        memset(res, 0, sizeof(*res));
        res->row_count = w->rows;
        res->file_size = w->offset;
        res->ncols = w->ncols;
        res->cols = rf_xcalloc(w->ncols, sizeof(*res->cols));
        for (size_t i = 0; i < w->ncols; i++) {
            const pq_col_t *c = &w->cols[i];
            rf_iceberg_pq_colstats_t *s = &res->cols[i];
            s->field_id = c->is_list ? c->element_id : c->field_id;
            s->in_list = c->is_list;
            s->value_count = c->f_values;
            s->null_count = c->f_nulls;
            s->nan_count = c->is_float ? c->f_nans : -1;
            s->column_size = c->f_size;
            s->has_lower = col_bound(w, c, 0, &s->lower, &s->lower_len);
            s->has_upper = col_bound(w, c, 1, &s->upper, &s->upper_len);
        }
        res->nsplits = w->nsplits;
        res->split_offsets = rf_xcalloc(w->nsplits + 1, sizeof(int64_t));
        if (w->nsplits)
            memcpy(res->split_offsets, w->splits, w->nsplits * sizeof(int64_t));
    }
    rc = RF_OK;
out:
    rf_buf_fini(&footer);
    if (rc && w->path)
        unlink(w->path);
    pq_free(w);
    return rc;
}

void rf__iceberg_parquet_abort(rf_iceberg_parquet_t *w)
{
    if (!w)
        return;
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    unlink(w->path);
    pq_free(w);
}

void rf__iceberg_parquet_result_fini(rf_iceberg_pq_result_t *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->ncols; i++) {
        free(res->cols[i].lower);
        free(res->cols[i].upper);
    }
    free(res->cols);
    free(res->split_offsets);
    memset(res, 0, sizeof(*res));
}
