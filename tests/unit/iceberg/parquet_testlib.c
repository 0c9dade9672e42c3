/* parquet_testlib.c - random Parquet test data, independent statistics and exact
 * comparison with what DuckDB and hyparquet read back (see parquet_testlib.h). */
#include "parquet_testlib.h"
#include "rf_test.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ==== Random numbers ==== */

void tl_rng_seed(tl_rng_t *r, uint64_t seed)
{
    r->s = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    if (!r->s)
        r->s = 1;
}

uint64_t tl_rng_next(tl_rng_t *r)
{
    /* xorshift64* */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1Dull;
}

uint64_t tl_rng_below(tl_rng_t *r, uint64_t n)
{
    return n ? tl_rng_next(r) % n : 0;
}

/* ==== Files ==== */

static void *arena_alloc(tl_file_t *f, size_t n)
{
    void *p = rf_xmalloc(n ? n : 1);
    if (f->narena == f->cap_arena) {
        f->cap_arena = f->cap_arena ? f->cap_arena * 2 : 256;
        f->arena = rf_xrealloc(f->arena, f->cap_arena * sizeof(void *));
    }
    f->arena[f->narena++] = p;
    return p;
}

void tl_file_init(tl_file_t *f, const char *path)
{
    memset(f, 0, sizeof(*f));
    f->path = rf_xstrdup(path);
    rf__iceberg_parquet_opts_init(&f->opts);
    f->opts.fsync = 0; /* tests write many files; durability is not under test here */
}

void tl_file_fini(tl_file_t *f)
{
    for (size_t i = 0; i < f->narena; i++)
        free(f->arena[i]);
    free(f->arena);
    free(f->vals);
    free(f->schema_json);
    if (f->written)
        rf__iceberg_parquet_result_fini(&f->res);
    free(f->path);
    memset(f, 0, sizeof(*f));
}

size_t tl_add_col(tl_file_t *f, const char *name, rf_iceberg_pq_type type, int optional,
                  int is_list, int element_optional, tl_colgen_t gen)
{
    size_t i = f->ncols++;
    rf_iceberg_pq_column_t *c = &f->cols[i];
    int32_t next_id = 1;
    assert(i < 64);
    for (size_t k = 0; k < i; k++) {
        int32_t top = f->cols[k].is_list ? f->cols[k].element_id : f->cols[k].field_id;
        if (top >= next_id)
            next_id = top + 1;
    }
    snprintf(f->names[i], sizeof(f->names[i]), "%s", name);
    memset(c, 0, sizeof(*c));
    c->name = f->names[i];
    c->type = type;
    c->optional = optional;
    c->is_list = is_list;
    c->element_optional = element_optional;
    c->field_id = next_id;
    c->element_id = is_list ? next_id + 1 : 0;
    if (gen.max_list == 0)
        gen.max_list = 5;
    if (gen.max_str == 0)
        gen.max_str = 24;
    f->gen[i] = gen;
    return i;
}

static const char *type_name(rf_iceberg_pq_type t)
{
    static const char *names[] = {"boolean", "int",    "long",        "float", "double",
                                  "string",  "binary", "timestamptz", "date"};
    return names[t];
}

/* The iceberg.schema JSON of the file's columns. */
static char *schema_json(const tl_file_t *f)
{
    rf_buf_t b;
    rf_buf_init(&b, 0);
    rf_buf_puts(&b, "{\"type\":\"struct\",\"schema-id\":0,\"fields\":[");
    for (size_t i = 0; i < f->ncols; i++) {
        const rf_iceberg_pq_column_t *c = &f->cols[i];
        rf_buf_printf(&b, "%s{\"id\":%d,\"name\":\"%s\",\"required\":%s,\"type\":", i ? "," : "",
                      (int)c->field_id, c->name, c->optional ? "false" : "true");
        if (c->is_list)
            rf_buf_printf(&b,
                          "{\"type\":\"list\",\"element-id\":%d,\"element\":\"%s\","
                          "\"element-required\":%s}}",
                          (int)c->element_id, type_name(c->type),
                          c->element_optional ? "false" : "true");
        else
            rf_buf_printf(&b, "\"%s\"}", type_name(c->type));
    }
    rf_buf_puts(&b, "]}");
    return rf_buf_take(&b, NULL);
}

void tl_random_cols(tl_file_t *f, tl_rng_t *r, size_t max_cols)
{
    size_t n = 1 + tl_rng_below(r, max_cols);
    for (size_t i = 0; i < n; i++) {
        char name[32];
        rf_iceberg_pq_type t = (rf_iceberg_pq_type)tl_rng_below(r, RF_ICEBERG_PQ__TYPE_COUNT);
        int is_list = tl_rng_below(r, 4) == 0;
        int optional = tl_rng_below(r, 3) != 0;
        int eopt = is_list && tl_rng_below(r, 2);
        tl_colgen_t g = {0};
        uint64_t m = tl_rng_below(r, 10);
        g.mode = m < 5 ? TL_RANDOM : (tl_mode)(1 + tl_rng_below(r, TL__MODE_COUNT - 1));
        if (g.mode == TL_ALLNULL && !optional)
            g.mode = TL_RANDOM;
        if (g.mode == TL_LONG && tl_rng_below(r, 4))
            g.mode = TL_RANDOM; /* long strings are slow to compare: keep them rare */
        g.null_pct = optional ? (int)tl_rng_below(r, 60) : 0;
        g.elem_null_pct = eopt ? (int)tl_rng_below(r, 40) : 0;
        g.max_list = (int)tl_rng_below(r, 12);
        g.max_str = 1 + (int)tl_rng_below(r, 60);
        snprintf(name, sizeof(name), "c%zu_%s", i, type_name(t));
        tl_add_col(f, name, t, optional, is_list, eopt, g);
    }
}

/* ==== Values ==== */

static size_t put_utf8(uint8_t *out, uint32_t cp)
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

static rf_slice_t gen_string(tl_file_t *f, tl_rng_t *r, size_t ncp)
{
    uint8_t *p = arena_alloc(f, ncp * 4);
    size_t n = 0;
    for (size_t i = 0; i < ncp; i++) {
        uint64_t k = tl_rng_below(r, 20);
        uint32_t cp;
        if (k < 14)
            cp = 0x20 + (uint32_t)tl_rng_below(r, 0x5F); /* printable ASCII */
        else if (k < 15)
            cp = 1 + (uint32_t)tl_rng_below(r, 0x1F); /* control characters, not NUL */
        else if (k < 17)
            cp = 0x80 + (uint32_t)tl_rng_below(r, 0x780);
        else if (k < 19)
            cp = 0x800 + (uint32_t)tl_rng_below(r, 0xD000 - 0x800);
        else
            cp = 0x10000 + (uint32_t)tl_rng_below(r, 0x100000);
        n += put_utf8(p + n, cp);
    }
    return rf_slice(p, n);
}

static rf_slice_t gen_binary(tl_file_t *f, tl_rng_t *r, size_t n)
{
    uint8_t *p = arena_alloc(f, n);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)tl_rng_next(r);
    return rf_slice(p, n);
}

static int64_t gen_int(tl_rng_t *r, int bits)
{
    uint64_t k = tl_rng_below(r, 10);
    int64_t lo = bits == 32 ? INT32_MIN : INT64_MIN, hi = bits == 32 ? INT32_MAX : INT64_MAX;
    if (k == 0)
        return lo;
    if (k == 1)
        return hi;
    if (k < 5)
        return (int64_t)tl_rng_below(r, 200) - 100;
    return bits == 32 ? (int64_t)(int32_t)tl_rng_next(r) : (int64_t)tl_rng_next(r);
}

static double gen_double(tl_rng_t *r, int is_float)
{
    uint64_t k = tl_rng_below(r, 12);
    if (k == 0)
        return 0.0;
    if (k == 1)
        return -0.0;
    if (k == 2)
        return tl_rng_below(r, 2) ? INFINITY : -INFINITY;
    if (k < 7)
        return ((double)tl_rng_below(r, 20001) - 10000.0) / 64.0;
    if (is_float) {
        float v;
        uint32_t u = (uint32_t)tl_rng_next(r);
        memcpy(&v, &u, 4);
        return isnan(v) ? 1.5 : v;
    } else {
        double v;
        uint64_t u = tl_rng_next(r);
        memcpy(&v, &u, 8);
        return isnan(v) ? 2.5 : v;
    }
}

/* One non-null scalar of column ci (or its list element) into v. */
static void gen_scalar(tl_file_t *f, size_t ci, tl_rng_t *r, size_t row, rf_iceberg_pq_value_t *v)
{
    const rf_iceberg_pq_column_t *c = &f->cols[ci];
    const tl_colgen_t *g = &f->gen[ci];
    tl_rng_t sub;
    if (g->mode == TL_LOWCARD) {
        /* Five possible values per column, from a seed of their own. */
        tl_rng_seed(&sub, ci * 131 + tl_rng_below(r, 5));
        r = &sub;
    }
    memset(v, 0, sizeof(*v));
    switch (c->type) {
    case RF_ICEBERG_PQ_BOOLEAN:
        v->v.b = (int)(tl_rng_next(r) & 1);
        break;
    case RF_ICEBERG_PQ_INT32:
        v->v.i32 = (int32_t)gen_int(r, 32);
        break;
    case RF_ICEBERG_PQ_DATE:
        v->v.i32 = (int32_t)tl_rng_below(r, 2000001) - 1000000;
        break;
    case RF_ICEBERG_PQ_INT64:
        v->v.i64 = gen_int(r, 64);
        break;
    case RF_ICEBERG_PQ_TIMESTAMPTZ:
        v->v.i64 = (int64_t)(tl_rng_next(r) >> 8) - ((int64_t)1 << 55);
        break;
    case RF_ICEBERG_PQ_FLOAT:
    case RF_ICEBERG_PQ_DOUBLE: {
        int is_float = c->type == RF_ICEBERG_PQ_FLOAT;
        double d = gen_double(r, is_float);
        if (g->mode == TL_ALLNAN || (g->mode == TL_NAN && tl_rng_below(r, 2)))
            d = NAN;
        if (is_float)
            v->v.f32 = (float)d;
        else
            v->v.f64 = d;
        break;
    }
    case RF_ICEBERG_PQ_STRING:
    case RF_ICEBERG_PQ_BINARY: {
        int is_string = c->type == RF_ICEBERG_PQ_STRING;
        size_t n = tl_rng_below(r, (uint64_t)g->max_str + 1);
        if (g->mode == TL_LONG && tl_rng_below(r, 20) == 0)
            n = 65536 + tl_rng_below(r, 36 * 1024);
        if (g->mode == TL_UNIQUE) {
            char *p = arena_alloc(f, 64);
            int k = snprintf(p, 64, "unique-%zu-%llu", row,
                             (unsigned long long)tl_rng_below(r, 1000000));
            v->v.bytes = rf_slice(p, (size_t)k);
            break;
        }
        v->v.bytes = is_string ? gen_string(f, r, n) : gen_binary(f, r, n);
        break;
    }
    default:
        break;
    }
}

static void store_item(const rf_iceberg_pq_column_t *c, void *items, size_t j,
                       const rf_iceberg_pq_value_t *v)
{
    switch (c->type) {
    case RF_ICEBERG_PQ_BOOLEAN:
        ((uint8_t *)items)[j] = (uint8_t)v->v.b;
        break;
    case RF_ICEBERG_PQ_INT32:
    case RF_ICEBERG_PQ_DATE:
        ((int32_t *)items)[j] = v->v.i32;
        break;
    case RF_ICEBERG_PQ_INT64:
    case RF_ICEBERG_PQ_TIMESTAMPTZ:
        ((int64_t *)items)[j] = v->v.i64;
        break;
    case RF_ICEBERG_PQ_FLOAT:
        ((float *)items)[j] = v->v.f32;
        break;
    case RF_ICEBERG_PQ_DOUBLE:
        ((double *)items)[j] = v->v.f64;
        break;
    default:
        ((rf_slice_t *)items)[j] = v->v.bytes;
        break;
    }
}

static size_t item_size(rf_iceberg_pq_type t)
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

void tl_gen_rows(tl_file_t *f, tl_rng_t *r, size_t nrows)
{
    f->nrows = nrows;
    f->vals = rf_xcalloc(nrows * f->ncols + 1, sizeof(*f->vals));
    for (size_t row = 0; row < nrows; row++) {
        for (size_t ci = 0; ci < f->ncols; ci++) {
            const rf_iceberg_pq_column_t *c = &f->cols[ci];
            const tl_colgen_t *g = &f->gen[ci];
            rf_iceberg_pq_value_t *v = &f->vals[row * f->ncols + ci];
            if (c->optional && (g->mode == TL_ALLNULL || (int)tl_rng_below(r, 100) < g->null_pct)) {
                v->is_null = 1;
                continue;
            }
            if (!c->is_list) {
                gen_scalar(f, ci, r, row, v);
                continue;
            }
            {
                size_t n = tl_rng_below(r, (uint64_t)g->max_list + 1);
                void *items = arena_alloc(f, n * item_size(c->type));
                uint8_t *nulls = NULL;
                if (c->element_optional && g->elem_null_pct > 0)
                    nulls = arena_alloc(f, n);
                for (size_t j = 0; j < n; j++) {
                    rf_iceberg_pq_value_t e;
                    if (nulls) {
                        nulls[j] = (int)tl_rng_below(r, 100) < g->elem_null_pct;
                        if (nulls[j])
                            continue;
                    }
                    gen_scalar(f, ci, r, row, &e);
                    store_item(c, items, j, &e);
                }
                memset(v, 0, sizeof(*v));
                v->v.list.items = items;
                v->v.list.nulls = nulls;
                v->v.list.count = n;
            }
        }
    }
}

rf_rc tl_write(tl_file_t *f, rf_err_t *err)
{
    rf_iceberg_parquet_t *w = NULL;
    rf_rc rc;
    free(f->schema_json);
    f->schema_json = schema_json(f);
    f->kv[0].key = "iceberg.schema";
    f->kv[0].value = f->schema_json;
    f->kv[1].key = "ragfeed.test";
    f->kv[1].value = f->path;
    f->opts.kv = f->kv;
    f->opts.nkv = 2;
    unlink(f->path);
    if ((rc = rf__iceberg_parquet_open(f->path, f->cols, f->ncols, &f->opts, &w, err)))
        return rc;
    for (size_t row = 0; row < f->nrows; row++) {
        if ((rc = rf__iceberg_parquet_write_row(w, &f->vals[row * f->ncols], err))) {
            rf__iceberg_parquet_abort(w);
            return rc;
        }
    }
    if ((rc = rf__iceberg_parquet_close(w, &f->res, err)))
        return rc;
    f->written = 1;
    return RF_OK;
}

/* ==== Independent statistics ==== */

/* Statistics of one leaf column over a range of rows, as the Parquet and Iceberg specs
 * define them. */
typedef struct xstat {
    int64_t values, nulls, nans;
    int has;
    int64_t imin, imax;
    double dmin, dmax;
    rf_slice_t bmin, bmax;
} xstat_t;

static int slice_cmp(rf_slice_t a, rf_slice_t b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

static void xs_add(xstat_t *s, const rf_iceberg_pq_column_t *c, const rf_iceberg_pq_value_t *e)
{
    switch (c->type) {
    case RF_ICEBERG_PQ_FLOAT:
    case RF_ICEBERG_PQ_DOUBLE: {
        double d = c->type == RF_ICEBERG_PQ_FLOAT ? (double)e->v.f32 : e->v.f64;
        if (isnan(d)) {
            s->nans++;
            return;
        }
        if (!s->has || d < s->dmin)
            s->dmin = d;
        if (!s->has || d > s->dmax)
            s->dmax = d;
        break;
    }
    case RF_ICEBERG_PQ_STRING:
    case RF_ICEBERG_PQ_BINARY:
        if (!s->has || slice_cmp(e->v.bytes, s->bmin) < 0)
            s->bmin = e->v.bytes;
        if (!s->has || slice_cmp(e->v.bytes, s->bmax) > 0)
            s->bmax = e->v.bytes;
        break;
    default: {
        int64_t i = c->type == RF_ICEBERG_PQ_BOOLEAN                                  ? e->v.b != 0
                    : c->type == RF_ICEBERG_PQ_INT32 || c->type == RF_ICEBERG_PQ_DATE ? e->v.i32
                                                                                      : e->v.i64;
        if (!s->has || i < s->imin)
            s->imin = i;
        if (!s->has || i > s->imax)
            s->imax = i;
        break;
    }
    }
    s->has = 1;
}

static void load_item(const rf_iceberg_pq_column_t *c, const void *items, size_t j,
                      rf_iceberg_pq_value_t *e)
{
    memset(e, 0, sizeof(*e));
    switch (c->type) {
    case RF_ICEBERG_PQ_BOOLEAN:
        e->v.b = ((const uint8_t *)items)[j];
        break;
    case RF_ICEBERG_PQ_INT32:
    case RF_ICEBERG_PQ_DATE:
        e->v.i32 = ((const int32_t *)items)[j];
        break;
    case RF_ICEBERG_PQ_INT64:
    case RF_ICEBERG_PQ_TIMESTAMPTZ:
        e->v.i64 = ((const int64_t *)items)[j];
        break;
    case RF_ICEBERG_PQ_FLOAT:
        e->v.f32 = ((const float *)items)[j];
        break;
    case RF_ICEBERG_PQ_DOUBLE:
        e->v.f64 = ((const double *)items)[j];
        break;
    default:
        e->v.bytes = ((const rf_slice_t *)items)[j];
        break;
    }
}

static void xs_rows(const tl_file_t *f, size_t ci, size_t from, size_t to, xstat_t *s)
{
    const rf_iceberg_pq_column_t *c = &f->cols[ci];
    memset(s, 0, sizeof(*s));
    for (size_t row = from; row < to; row++) {
        const rf_iceberg_pq_value_t *v = &f->vals[row * f->ncols + ci];
        if (v->is_null) {
            s->values++;
            s->nulls++;
            continue;
        }
        if (!c->is_list) {
            s->values++;
            xs_add(s, c, v);
            continue;
        }
        if (v->v.list.count == 0) {
            s->values++;
            s->nulls++;
            continue;
        }
        for (size_t j = 0; j < v->v.list.count; j++) {
            rf_iceberg_pq_value_t e;
            s->values++;
            if (v->v.list.nulls && v->v.list.nulls[j]) {
                s->nulls++;
                continue;
            }
            load_item(c, v->v.list.items, j, &e);
            xs_add(s, c, &e);
        }
    }
}

/* Iceberg single-value serialisation of a bound. */
static int xs_bound(const rf_iceberg_pq_column_t *c, const xstat_t *s, int upper, rf_buf_t *out)
{
    uint8_t b[8];
    rf_buf_reset(out);
    if (!s->has)
        return 0;
    switch (c->type) {
    case RF_ICEBERG_PQ_BOOLEAN:
        b[0] = (uint8_t)(upper ? s->imax : s->imin);
        rf_buf_append(out, b, 1);
        return 1;
    case RF_ICEBERG_PQ_INT32:
    case RF_ICEBERG_PQ_DATE:
    case RF_ICEBERG_PQ_INT64:
    case RF_ICEBERG_PQ_TIMESTAMPTZ: {
        int n = c->type == RF_ICEBERG_PQ_INT64 || c->type == RF_ICEBERG_PQ_TIMESTAMPTZ ? 8 : 4;
        uint64_t u = (uint64_t)(upper ? s->imax : s->imin);
        for (int i = 0; i < n; i++)
            b[i] = (uint8_t)(u >> (8 * i));
        rf_buf_append(out, b, (size_t)n);
        return 1;
    }
    case RF_ICEBERG_PQ_FLOAT:
    case RF_ICEBERG_PQ_DOUBLE: {
        double d = upper ? s->dmax : s->dmin;
        /* Zero bounds cover both signs: -0.0 below, +0.0 above. */
        if (d == 0.0)
            d = upper ? 0.0 : -0.0;
        if (c->type == RF_ICEBERG_PQ_FLOAT) {
            float fl = (float)d;
            memcpy(b, &fl, 4);
            rf_buf_append(out, b, 4);
        } else {
            memcpy(b, &d, 8);
            rf_buf_append(out, b, 8);
        }
        return 1;
    }
    default: {
        rf_slice_t v = upper ? s->bmax : s->bmin;
        int is_string = c->type == RF_ICEBERG_PQ_STRING;
        return upper ? rf__iceberg_bound_upper(is_string, v.ptr, v.len, 16, out)
                     : rf__iceberg_bound_lower(is_string, v.ptr, v.len, 16, out);
    }
    }
}

static int failf(const tl_file_t *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int failf(const tl_file_t *f, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rf__test_fail(__FILE__, __LINE__, "%s: %s", f->path, msg);
    return 1;
}

int tl_check_result(const tl_file_t *f)
{
    int fails = 0;
    rf_buf_t want;
    if (!f->written)
        return failf(f, "file was not written");
    rf_buf_init(&want, 0);
    if (f->res.row_count != (int64_t)f->nrows)
        fails += failf(f, "row_count %lld, want %zu", (long long)f->res.row_count, f->nrows);
    if (f->res.ncols != f->ncols)
        fails += failf(f, "%zu result columns, want %zu", f->res.ncols, f->ncols);
    for (size_t ci = 0; ci < f->ncols && ci < f->res.ncols && fails < 10; ci++) {
        const rf_iceberg_pq_column_t *c = &f->cols[ci];
        const rf_iceberg_pq_colstats_t *s = &f->res.cols[ci];
        xstat_t x;
        int is_float = c->type == RF_ICEBERG_PQ_FLOAT || c->type == RF_ICEBERG_PQ_DOUBLE;
        int has;
        xs_rows(f, ci, 0, f->nrows, &x);
        if (s->field_id != (c->is_list ? c->element_id : c->field_id))
            fails += failf(f, "%s: field id %d", c->name, (int)s->field_id);
        if (s->in_list != c->is_list)
            fails += failf(f, "%s: in_list %d", c->name, s->in_list);
        if (s->value_count != x.values || s->null_count != x.nulls)
            fails += failf(f, "%s: values/nulls %lld/%lld, want %lld/%lld", c->name,
                           (long long)s->value_count, (long long)s->null_count, (long long)x.values,
                           (long long)x.nulls);
        if (s->nan_count != (is_float ? x.nans : -1))
            fails += failf(f, "%s: nan_count %lld, want %lld", c->name, (long long)s->nan_count,
                           (long long)(is_float ? x.nans : -1));
        if (f->nrows > 0 && s->column_size <= 0)
            fails += failf(f, "%s: column size %lld", c->name, (long long)s->column_size);
        for (int upper = 0; upper < 2; upper++) {
            const uint8_t *got = upper ? s->upper : s->lower;
            size_t got_len = upper ? s->upper_len : s->lower_len;
            int got_has = upper ? s->has_upper : s->has_lower;
            has = xs_bound(c, &x, upper, &want);
            if (has != got_has ||
                (has && (got_len != want.len || memcmp(got, want.ptr, want.len) != 0)))
                fails += failf(f, "%s: %s bound differs (has %d/%d, len %zu/%zu)", c->name,
                               upper ? "upper" : "lower", got_has, has, got_len, want.len);
        }
    }
    rf_buf_fini(&want);
    return fails;
}

/* ==== Reading back ==== */

json_t **tl_read(tl_file_t **files, size_t n, const char *flags)
{
    char *script = rf_test_src_path("tests/unit/iceberg/read_parquet.mjs");
    rf_buf_t cmd, line;
    json_t **out = rf_xcalloc(n + 1, sizeof(json_t *));
    FILE *p;
    size_t got = 0;
    int status;
    char chunk[65536];
    const char *shared = getenv("RF_SHARED_DIR");
    rf_buf_init(&cmd, 0);
    rf_buf_init(&line, (size_t)1 << 30);
    if (!shared || !*shared) {
        rf__test_fail(__FILE__, __LINE__,
                      "RF_SHARED_DIR is not set: the interop tests need "
                      "../shared/tools/iceberg-verify");
        goto fail;
    }
    rf_buf_printf(&cmd, "node '%s' %s", script, flags ? flags : "");
    for (size_t i = 0; i < n; i++)
        rf_buf_printf(&cmd, " '%s'", files[i]->path);
    p = popen(cmd.ptr, "r");
    if (!p) {
        rf__test_fail(__FILE__, __LINE__, "cannot run node");
        goto fail;
    }
    while (fgets(chunk, sizeof(chunk), p)) {
        size_t k = strlen(chunk);
        rf_buf_append(&line, chunk, k);
        if (k > 0 && chunk[k - 1] == '\n') {
            json_error_t jerr;
            /* Integers as reals: JS prints large doubles without an exponent. */
            json_t *j =
                json_loadb(line.ptr, line.len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr);
            if (!j)
                rf__test_fail(__FILE__, __LINE__, "reader output is not JSON: %s", jerr.text);
            else if (got < n)
                out[got++] = j;
            else
                json_decref(j);
            rf_buf_reset(&line);
        }
    }
    status = pclose(p);
    if (got != n) {
        rf__test_fail(__FILE__, __LINE__,
                      "read_parquet.mjs printed %zu of %zu files (exit status %d): is node "
                      "installed, and `npm ci` done in $RF_SHARED_DIR/tools/iceberg-verify?",
                      got, n, status);
        goto fail;
    }
    free(script);
    rf_buf_fini(&cmd);
    rf_buf_fini(&line);
    return out;
fail:
    for (size_t i = 0; i < got; i++)
        json_decref(out[i]);
    free(out);
    free(script);
    rf_buf_fini(&cmd);
    rf_buf_fini(&line);
    return NULL;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static int hex_eq(const char *hex, rf_slice_t s)
{
    size_t n = strlen(hex);
    if (n != s.len * 2)
        return 0;
    for (size_t i = 0; i < s.len; i++)
        if (hexval(hex[2 * i]) * 16 + hexval(hex[2 * i + 1]) != s.ptr[i])
            return 0;
    return 1;
}

static int float_eq(double want, int is_float, json_t *j)
{
    if (json_is_string(j)) {
        const char *s = json_string_value(j);
        if (isnan(want))
            return strcmp(s, "NaN") == 0;
        if (isinf(want))
            return strcmp(s, want > 0 ? "Infinity" : "-Infinity") == 0;
        if (want == 0.0 && signbit(want))
            return strcmp(s, "-0") == 0;
        return 0;
    }
    if (!json_is_number(j) || isnan(want) || isinf(want) || (want == 0.0 && signbit(want)))
        return 0;
    if (is_float)
        return (float)json_number_value(j) == (float)want && json_number_value(j) == want;
    return json_number_value(j) == want;
}

static int scalar_eq(const rf_iceberg_pq_column_t *c, const rf_iceberg_pq_value_t *v, json_t *j)
{
    char tmp[32];
    switch (c->type) {
    case RF_ICEBERG_PQ_BOOLEAN:
        return json_is_boolean(j) && json_is_true(j) == (v->v.b != 0);
    case RF_ICEBERG_PQ_INT32:
    case RF_ICEBERG_PQ_DATE:
        return json_is_number(j) && json_number_value(j) == (double)v->v.i32;
    case RF_ICEBERG_PQ_INT64:
    case RF_ICEBERG_PQ_TIMESTAMPTZ:
        snprintf(tmp, sizeof(tmp), "%lld", (long long)v->v.i64);
        return json_is_string(j) && strcmp(json_string_value(j), tmp) == 0;
    case RF_ICEBERG_PQ_FLOAT:
        return float_eq(v->v.f32, 1, j);
    case RF_ICEBERG_PQ_DOUBLE:
        return float_eq(v->v.f64, 0, j);
    case RF_ICEBERG_PQ_STRING:
        return json_is_string(j) && json_string_length(j) == v->v.bytes.len &&
               (v->v.bytes.len == 0 ||
                memcmp(json_string_value(j), v->v.bytes.ptr, v->v.bytes.len) == 0);
    case RF_ICEBERG_PQ_BINARY: {
        json_t *h = json_object_get(j, "hex");
        return json_is_string(h) && hex_eq(json_string_value(h), v->v.bytes);
    }
    default:
        return 0;
    }
}

static int value_eq(const rf_iceberg_pq_column_t *c, const rf_iceberg_pq_value_t *v, json_t *j)
{
    if (v->is_null)
        return json_is_null(j);
    if (!c->is_list)
        return scalar_eq(c, v, j);
    if (!json_is_array(j) || json_array_size(j) != v->v.list.count)
        return 0;
    for (size_t k = 0; k < v->v.list.count; k++) {
        rf_iceberg_pq_value_t e;
        json_t *ej = json_array_get(j, k);
        if (v->v.list.nulls && v->v.list.nulls[k]) {
            if (!json_is_null(ej))
                return 0;
            continue;
        }
        load_item(c, v->v.list.items, k, &e);
        if (!scalar_eq(c, &e, ej))
            return 0;
    }
    return 1;
}

static int check_rows(const tl_file_t *f, const char *reader, json_t *rows)
{
    int fails = 0;
    if (!json_is_array(rows) || json_array_size(rows) != f->nrows)
        return failf(f, "%s: %zu rows, want %zu", reader,
                     json_is_array(rows) ? json_array_size(rows) : 0, f->nrows);
    for (size_t row = 0; row < f->nrows && fails < 5; row++) {
        json_t *jr = json_array_get(rows, row);
        if (!json_is_array(jr) || json_array_size(jr) != f->ncols) {
            fails += failf(f, "%s: row %zu has the wrong shape", reader, row);
            continue;
        }
        for (size_t ci = 0; ci < f->ncols; ci++) {
            if (!value_eq(&f->cols[ci], &f->vals[row * f->ncols + ci], json_array_get(jr, ci))) {
                char *dump = json_dumps(json_array_get(jr, ci), JSON_ENCODE_ANY);
                fails += failf(f, "%s: row %zu column %s differs: got %.200s", reader, row,
                               f->cols[ci].name, dump ? dump : "?");
                free(dump);
            }
        }
    }
    return fails;
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static long long jll(json_t *o, const char *key)
{
    const char *s = jstr(o, key);
    json_t *v = json_object_get(o, key);
    if (s)
        return strtoll(s, NULL, 10);
    return json_is_number(v) ? (long long)json_number_value(v) : -1;
}

/* DuckDB prints BLOB statistics with \xHH escapes. */
static int duck_blob_eq(const char *s, rf_slice_t want)
{
    size_t i = 0;
    while (*s) {
        int b;
        if (s[0] == '\\' && s[1] == 'x' && hexval(s[2]) >= 0 && hexval(s[3]) >= 0) {
            b = hexval(s[2]) * 16 + hexval(s[3]);
            s += 4;
        } else {
            b = (uint8_t)*s++;
        }
        if (i >= want.len || want.ptr[i] != b)
            return 0;
        i++;
    }
    return i == want.len;
}

/* min/max as DuckDB's parquet_metadata() prints them, against the expected bound. */
static int duck_stat_eq(const rf_iceberg_pq_column_t *c, const xstat_t *x, int upper, const char *s)
{
    switch (c->type) {
    case RF_ICEBERG_PQ_BOOLEAN:
        return strcmp(s, (upper ? x->imax : x->imin) ? "true" : "false") == 0;
    case RF_ICEBERG_PQ_INT32:
    case RF_ICEBERG_PQ_INT64:
        return strtoll(s, NULL, 10) == (upper ? x->imax : x->imin);
    case RF_ICEBERG_PQ_FLOAT:
    case RF_ICEBERG_PQ_DOUBLE: {
        double want = upper ? x->dmax : x->dmin;
        double got = c->type == RF_ICEBERG_PQ_FLOAT ? (double)strtof(s, NULL) : strtod(s, NULL);
        if (want == 0.0)
            return got == 0.0 && (signbit(got) != 0) == !upper;
        return got == want;
    }
    case RF_ICEBERG_PQ_STRING: {
        rf_slice_t w = upper ? x->bmax : x->bmin;
        return strlen(s) == w.len && memcmp(s, w.ptr, w.len) == 0;
    }
    case RF_ICEBERG_PQ_BINARY:
        return duck_blob_eq(s, upper ? x->bmax : x->bmin);
    default:
        /* Timestamps and dates are printed as such; their INT64/INT32 statistics take
         * the same path as the integer columns checked above. */
        return *s != '\0';
    }
}

static const char *duck_type(rf_iceberg_pq_type t)
{
    static const char *names[] = {"BOOLEAN", "INTEGER", "BIGINT", "FLOAT",
                                  "DOUBLE",  "VARCHAR", "BLOB",   "TIMESTAMP WITH TIME ZONE",
                                  "DATE"};
    return names[t];
}

static int check_footer(const tl_file_t *f, json_t *got)
{
    int fails = 0;
    json_t *footer = json_object_get(got, "footer"), *schema, *kv;
    size_t at = 1;
    const char *cb;
    if (!footer)
        return 0; /* hyparquet was not asked */
    schema = json_object_get(footer, "schema");
    kv = json_object_get(footer, "kv");
    if (jll(footer, "num_rows") != (long long)f->nrows)
        fails += failf(f, "footer num_rows %lld", jll(footer, "num_rows"));
    cb = jstr(footer, "created_by");
    if (!cb || strncmp(cb, "ragfeed version ", 16) != 0)
        fails += failf(f, "created_by %s", cb ? cb : "(none)");
    if (!jstr(kv, "iceberg.schema") || strcmp(jstr(kv, "iceberg.schema"), f->schema_json) != 0)
        fails += failf(f, "iceberg.schema key/value differs");
    for (size_t ci = 0; ci < f->ncols; ci++) {
        const rf_iceberg_pq_column_t *c = &f->cols[ci];
        json_t *e = json_array_get(schema, at);
        if (!e || !jstr(e, "name") || strcmp(jstr(e, "name"), c->name) != 0 ||
            jll(e, "field_id") != c->field_id) {
            fails += failf(f, "schema element %zu: want %s with field id %d", at, c->name,
                           (int)c->field_id);
            break;
        }
        if (c->is_list) {
            json_t *l = json_array_get(schema, at + 1), *el = json_array_get(schema, at + 2);
            if (!jstr(e, "logical_type") || strcmp(jstr(e, "logical_type"), "LIST") != 0 || !l ||
                strcmp(jstr(l, "name") ? jstr(l, "name") : "", "list") != 0 ||
                strcmp(jstr(l, "repetition_type") ? jstr(l, "repetition_type") : "", "REPEATED") !=
                    0 ||
                !el || jll(el, "field_id") != c->element_id)
                fails += failf(f, "%s: not a 3-level list with element id %d", c->name,
                               (int)c->element_id);
            at += 3;
        } else {
            at += 1;
        }
    }
    return fails;
}

static int check_meta(const tl_file_t *f, json_t *got)
{
    int fails = 0;
    json_t *meta = json_object_get(got, "duck_meta"), *schema = json_object_get(got, "duck_schema");
    size_t nmeta, row = 0, nrg = 0;
    int64_t *colsize;
    if (!meta)
        return 0; /* not asked */
    /* parquet_schema(): DuckDB's type for each leaf. */
    {
        size_t ci = 0;
        for (size_t i = 0; i < json_array_size(schema) && ci < f->ncols; i++) {
            json_t *e = json_array_get(schema, i);
            const char *dt = jstr(e, "duckdb_type");
            if (!dt)
                continue;
            if (strcmp(dt, duck_type(f->cols[ci].type)) != 0)
                fails += failf(f, "parquet_schema: %s is %s, want %s", f->cols[ci].name, dt,
                               duck_type(f->cols[ci].type));
            if (jll(e, "field_id") !=
                (f->cols[ci].is_list ? f->cols[ci].element_id : f->cols[ci].field_id))
                fails += failf(f, "parquet_schema: %s field id %lld", f->cols[ci].name,
                               jll(e, "field_id"));
            ci++;
        }
        if (ci != f->ncols)
            fails += failf(f, "parquet_schema: %zu leaves, want %zu", ci, f->ncols);
    }
    nmeta = json_array_size(meta);
    if (f->nrows == 0)
        return fails + (nmeta ? failf(f, "row groups in an empty file") : 0);
    if (nmeta % f->ncols != 0)
        return fails + failf(f, "parquet_metadata: %zu rows for %zu columns", nmeta, f->ncols);
    colsize = rf_xcalloc(f->ncols, sizeof(*colsize));
    for (size_t i = 0; i < nmeta; i += f->ncols, nrg++) {
        json_t *first = json_array_get(meta, i);
        long long rg_rows = jll(first, "row_group_num_rows");
        long long start = jll(first, "dictionary_page_offset");
        if (start < 0)
            start = jll(first, "data_page_offset");
        if (nrg >= f->res.nsplits || f->res.split_offsets[nrg] != start)
            fails += failf(f, "row group %zu starts at %lld, split offset differs", nrg, start);
        for (size_t ci = 0; ci < f->ncols; ci++) {
            const rf_iceberg_pq_column_t *c = &f->cols[ci];
            json_t *m = json_array_get(meta, i + ci);
            xstat_t x;
            const char *mn = jstr(m, "stats_min_value"), *mx = jstr(m, "stats_max_value");
            const char *comp = jstr(m, "compression"), *enc = jstr(m, "encodings");
            int want_stats;
            xs_rows(f, ci, row, row + (size_t)rg_rows, &x);
            colsize[ci] += jll(m, "total_compressed_size");
            want_stats =
                x.has && !((c->type == RF_ICEBERG_PQ_STRING || c->type == RF_ICEBERG_PQ_BINARY) &&
                           (x.bmin.len > 4096 || x.bmax.len > 4096));
            if (jll(m, "num_values") != x.values || jll(m, "stats_null_count") != x.nulls)
                fails += failf(f, "rg %zu %s: num_values/nulls %lld/%lld, want %lld/%lld", nrg,
                               c->name, jll(m, "num_values"), jll(m, "stats_null_count"),
                               (long long)x.values, (long long)x.nulls);
            for (int upper = 0; upper < 2; upper++) {
                const char *got_s = upper ? mx : mn;
                int is_float = c->type == RF_ICEBERG_PQ_FLOAT || c->type == RF_ICEBERG_PQ_DOUBLE;
                /* DuckDB shows no bound that is infinite (the file has it). */
                int maybe_hidden = want_stats && is_float && isinf(upper ? x.dmax : x.dmin);
                if (!got_s && maybe_hidden)
                    continue;
                if (want_stats != (got_s != NULL))
                    fails += failf(f, "rg %zu %s: %s present %d, want %d", nrg, c->name,
                                   upper ? "max" : "min", got_s != NULL, want_stats);
                else if (want_stats && !duck_stat_eq(c, &x, upper, got_s))
                    fails += failf(f, "rg %zu %s: %s %.60s differs", nrg, c->name,
                                   upper ? "max" : "min", got_s);
            }
            if (!comp ||
                strcmp(comp, f->opts.codec == RF_ICEBERG_PQ_ZSTD ? "ZSTD" : "UNCOMPRESSED") != 0)
                fails += failf(f, "rg %zu %s: compression %s", nrg, c->name, comp ? comp : "?");
            if (!enc || (!f->opts.dictionary && strstr(enc, "DICTIONARY")))
                fails += failf(f, "rg %zu %s: encodings %s", nrg, c->name, enc ? enc : "?");
        }
        row += (size_t)rg_rows;
        if (fails >= 10) {
            free(colsize);
            return fails; /* enough said; the totals below would only repeat it */
        }
    }
    if (row != f->nrows)
        fails += failf(f, "row groups hold %zu rows, want %zu", row, f->nrows);
    if (nrg != f->res.nsplits)
        fails += failf(f, "%zu row groups, %zu split offsets", nrg, f->res.nsplits);
    for (size_t ci = 0; ci < f->ncols && ci < f->res.ncols; ci++)
        if (colsize[ci] != f->res.cols[ci].column_size)
            fails += failf(f, "%s: column size %lld, footer says %lld", f->cols[ci].name,
                           (long long)f->res.cols[ci].column_size, (long long)colsize[ci]);
    free(colsize);
    return fails;
}

int tl_check_read(const tl_file_t *f, json_t *got)
{
    int fails = 0;
    json_t *duck = json_object_get(got, "duckdb"), *hyp = json_object_get(got, "hyparquet");
    if (jstr(got, "error"))
        return failf(f, "reader error: %s", jstr(got, "error"));
    if (!duck)
        return failf(f, "no DuckDB rows");
    fails += check_rows(f, "duckdb", json_object_get(duck, "rows"));
    if (hyp)
        fails += check_rows(f, "hyparquet", json_object_get(hyp, "rows"));
    fails += check_footer(f, got);
    fails += check_meta(f, got);
    return fails;
}
