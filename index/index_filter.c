/* index_filter.c - filterable attributes and filters: each indexed vector carries a small
 * blob of its record's source, tenant, label, event time and scalar metadata fields, and a
 * compiled rf_index_filter_t is matched against such blobs (in a snapshot's segments, and
 * against a record re-read from the store).  Upholds INVARIANT(one-record-per-key) for
 * filtered searches: a hit always satisfies the filter in the version returned.
 */
#include "index/index.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "index/index_int.h"

/* ==== Attribute blobs ==== */

/* Blob: u32 total length, then entries until the end:
 *   u8 namespace (column / metadata), u8 type, u16 name length, name bytes, value
 *   (NUM: 8-byte double; STR: u32 length + bytes; BOOL: 1 byte; NUL: nothing).
 * Multi-byte fields are native-endian and unaligned (read with memcpy). */
enum { NS_COL = 0, NS_META = 1 };
enum { T_NUM = 1, T_STR = 2, T_BOOL = 3, T_NUL = 4 };

typedef struct blob {
    uint8_t *p;
    size_t len, cap;
} blob_t;

static void blob_put(blob_t *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        while (b->len + n > b->cap)
            b->cap = b->cap ? b->cap * 2 : 64;
        b->p = rf_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void blob_head(blob_t *b, int ns, int type, const char *name, size_t name_len)
{
    uint8_t h[2] = {(uint8_t)ns, (uint8_t)type};
    uint16_t nl = (uint16_t)name_len;
    blob_put(b, h, 2);
    blob_put(b, &nl, 2);
    blob_put(b, name, name_len);
}

static void blob_str(blob_t *b, int ns, const char *name, size_t name_len, const char *s, size_t n)
{
    uint32_t l = (uint32_t)n;
    blob_head(b, ns, T_STR, name, name_len);
    blob_put(b, &l, 4);
    blob_put(b, s, n);
}

static void blob_num(blob_t *b, int ns, const char *name, size_t name_len, double v)
{
    blob_head(b, ns, T_NUM, name, name_len);
    blob_put(b, &v, 8);
}

/* One JSON scalar as an entry; anything else is left out. */
static void blob_json(blob_t *b, const char *name, size_t name_len, json_t *v)
{
    uint8_t t;
    switch (json_typeof(v)) {
    case JSON_STRING:
        if (json_string_length(v) <= UINT32_MAX)
            blob_str(b, NS_META, name, name_len, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        blob_num(b, NS_META, name, name_len, (double)json_integer_value(v));
        break;
    case JSON_REAL:
        blob_num(b, NS_META, name, name_len, json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        t = json_is_true(v) ? 1 : 0;
        blob_head(b, NS_META, T_BOOL, name, name_len);
        blob_put(b, &t, 1);
        break;
    case JSON_NULL:
        blob_head(b, NS_META, T_NUL, name, name_len);
        break;
    default:
        break;
    }
}

uint8_t *rf__index_attrs_encode(const char *source, const char *tenant, const char *label,
                                int64_t event_time_ms, const char *metadata_json, size_t *len)
{
    blob_t b = {0};
    uint32_t total = 0;
    blob_put(&b, &total, 4);
    if (source)
        blob_str(&b, NS_COL, "source", 6, source, strlen(source));
    if (tenant)
        blob_str(&b, NS_COL, "tenant", 6, tenant, strlen(tenant));
    if (label)
        blob_str(&b, NS_COL, "label", 5, label, strlen(label));
    if (event_time_ms)
        blob_num(&b, NS_COL, "event_time_ms", 13, (double)event_time_ms);
    if (metadata_json) {
        json_t *m = json_loads(metadata_json, 0, NULL);
        if (json_is_object(m)) {
            const char *key;
            json_t *v;
            json_object_foreach(m, key, v)
            {
                size_t kl = strlen(key);
                if (kl > UINT16_MAX)
                    continue;
                if (json_is_array(v)) {
                    size_t i;
                    json_t *e;
                    json_array_foreach(v, i, e) blob_json(&b, key, kl, e);
                } else {
                    blob_json(&b, key, kl, v);
                }
            }
        }
        json_decref(m);
    }
    total = (uint32_t)b.len;
    memcpy(b.p, &total, 4);
    if (len)
        *len = b.len;
    return b.p;
}

size_t rf__index_attrs_len(const uint8_t *attrs)
{
    uint32_t total;
    if (!attrs)
        return 0;
    memcpy(&total, attrs, 4);
    return total;
}

/* ==== Entry keys ==== */

/* FNV-1a, 64 bits: a key names (namespace, field, type, value).  Keys are only used to
 * find candidates, which are then matched in full, so a collision costs a little time and
 * never a wrong result. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t key_of(int ns, const char *name, size_t name_len, int type, double num,
                       const char *str, size_t len, int b)
{
    uint64_t h = 0xcbf29ce484222325ull;
    uint8_t t[2] = {(uint8_t)ns, (uint8_t)type};
    uint8_t bb = (uint8_t)(b != 0);
    h = fnv(h, t, 2);
    h = fnv(h, &name_len, sizeof(name_len));
    h = fnv(h, name, name_len);
    if (type == T_NUM) {
        if (num == 0)
            num = 0; /* -0 and 0 are equal */
        h = fnv(h, &num, sizeof(num));
    } else if (type == T_STR) {
        h = fnv(h, str, len);
    } else if (type == T_BOOL) {
        h = fnv(h, &bb, 1);
    }
    return h;
}

/* ==== Compiled filters ==== */

typedef struct fval {
    int type;
    double num;
    char *str;
    size_t len;
    int b;
} fval_t;

typedef struct fcond {
    int ns;
    char *name;
    size_t name_len;
    rf_index_cond_kind kind;
    fval_t *vals;
    size_t nv;
    fval_t lo, hi;
    int has_lo, has_hi, lo_excl, hi_excl;
    uint64_t *keys; /* EQ / IN: the key of each value (rf__index_attrs_keys) */
} fcond_t;

struct rf__index_filter {
    fcond_t *c;
    size_t n;
};

/* The record columns a condition may name; any other field is a metadata field. */
static int col_name(const char *f)
{
    return !strcmp(f, "source") || !strcmp(f, "tenant") || !strcmp(f, "label") ||
           !strcmp(f, "event_time_ms");
}

static rf_rc parse_val(const char *text, size_t ci, fval_t *out, rf_err_t *err)
{
    json_error_t je;
    json_t *v;
    rf_rc rc = RF_OK;
    memset(out, 0, sizeof(*out));
    if (!text)
        return rf_err_set(err, RF_EINVAL, "filter condition %zu: missing value", ci);
    v = json_loads(text, JSON_DECODE_ANY, &je);
    if (!v)
        return rf_err_set(err, RF_EINVAL, "filter condition %zu: value %.64s is not JSON: %s", ci,
                          text, je.text);
    switch (json_typeof(v)) {
    case JSON_STRING:
        out->type = T_STR;
        out->len = json_string_length(v);
        out->str = rf_xmalloc(out->len + 1);
        memcpy(out->str, json_string_value(v), out->len + 1);
        break;
    case JSON_INTEGER:
        out->type = T_NUM;
        out->num = (double)json_integer_value(v);
        break;
    case JSON_REAL:
        out->type = T_NUM;
        out->num = json_real_value(v);
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        out->type = T_BOOL;
        out->b = json_is_true(v);
        break;
    case JSON_NULL:
        out->type = T_NUL;
        break;
    default:
        rc = rf_err_set(err, RF_EINVAL, "filter condition %zu: value %.64s is not a scalar", ci,
                        text);
    }
    json_decref(v);
    return rc;
}

void rf__index_filter_free(rf__index_filter_t *flt)
{
    if (!flt)
        return;
    for (size_t i = 0; i < flt->n; i++) {
        fcond_t *c = &flt->c[i];
        for (size_t j = 0; j < c->nv; j++)
            free(c->vals[j].str);
        free(c->vals);
        free(c->keys);
        free(c->lo.str);
        free(c->hi.str);
        free(c->name);
    }
    free(flt->c);
    free(flt);
}

/* Bounds on what one filter may carry (RF_ETOOBIG beyond). */
#define FILTER_CONDS_MAX  64
#define FILTER_VALUES_MAX 4096

rf_rc rf__index_filter_compile(const rf_index_filter_t *f, rf__index_filter_t **out, rf_err_t *err)
{
    rf__index_filter_t *flt;
    rf_rc rc = RF_OK;
    size_t n;
    *out = NULL;
    if (!f || (!f->cond_cnt && !f->tenant))
        return RF_OK;
    if (f->cond_cnt && !f->conds)
        return rf_err_set(err, RF_EINVAL, "filter: cond_cnt set but conds is NULL");
    if (f->cond_cnt > FILTER_CONDS_MAX)
        return rf_err_set(err, RF_ETOOBIG, "filter: %zu conditions, at most %d", f->cond_cnt,
                          FILTER_CONDS_MAX);
    n = f->cond_cnt + (f->tenant ? 1 : 0);
    flt = rf_xcalloc(1, sizeof(*flt));
    flt->c = rf_xcalloc(n, sizeof(*flt->c));
    for (size_t i = 0; i < f->cond_cnt && !rc; i++) {
        const rf_index_cond_t *in = &f->conds[i];
        fcond_t *c = &flt->c[flt->n];
        if (!in->field || !*in->field) {
            rc = rf_err_set(err, RF_EINVAL, "filter condition %zu: no field", i);
            break;
        }
        if (strlen(in->field) > UINT16_MAX) {
            rc = rf_err_set(err, RF_ETOOBIG, "filter condition %zu: field name too long", i);
            break;
        }
        flt->n++;
        c->ns = col_name(in->field) ? NS_COL : NS_META;
        c->name = rf_xstrdup(in->field);
        c->name_len = strlen(in->field);
        c->kind = in->kind;
        switch (in->kind) {
        case RF_INDEX_COND_EQ:
        case RF_INDEX_COND_IN:
            if (in->value_cnt < 1 || !in->values ||
                (in->kind == RF_INDEX_COND_EQ && in->value_cnt != 1)) {
                rc = rf_err_set(err, RF_EINVAL, "filter condition %zu (%s): %s needs %s", i,
                                in->field, in->kind == RF_INDEX_COND_EQ ? "eq" : "in",
                                in->kind == RF_INDEX_COND_EQ ? "one value" : "values");
                break;
            }
            if (in->value_cnt > FILTER_VALUES_MAX) {
                rc =
                    rf_err_set(err, RF_ETOOBIG, "filter condition %zu (%s): %zu values, at most %d",
                               i, in->field, in->value_cnt, FILTER_VALUES_MAX);
                break;
            }
            c->vals = rf_xcalloc(in->value_cnt, sizeof(*c->vals));
            c->keys = rf_xcalloc(in->value_cnt, sizeof(*c->keys));
            for (size_t j = 0; j < in->value_cnt && !rc; j++) {
                rc = parse_val(in->values[j], i, &c->vals[j], err);
                if (!rc) {
                    const fval_t *v = &c->vals[j];
                    c->keys[j] =
                        key_of(c->ns, c->name, c->name_len, v->type, v->num, v->str, v->len, v->b);
                    c->nv++;
                }
            }
            break;
        case RF_INDEX_COND_RANGE:
            c->lo_excl = in->lo_excl;
            c->hi_excl = in->hi_excl;
            if (in->lo && !(rc = parse_val(in->lo, i, &c->lo, err)))
                c->has_lo = 1;
            if (!rc && in->hi && !(rc = parse_val(in->hi, i, &c->hi, err)))
                c->has_hi = 1;
            if (rc)
                break;
            if ((c->has_lo && c->lo.type != T_NUM && c->lo.type != T_STR) ||
                (c->has_hi && c->hi.type != T_NUM && c->hi.type != T_STR) ||
                (c->has_lo && c->has_hi && c->lo.type != c->hi.type))
                rc = rf_err_set(err, RF_EINVAL,
                                "filter condition %zu (%s): range bounds must be two numbers or "
                                "two strings",
                                i, in->field);
            break;
        default:
            rc = rf_err_set(err, RF_EINVAL, "filter condition %zu (%s): unknown kind %d", i,
                            in->field, (int)in->kind);
        }
    }
    if (!rc && f->tenant) {
        /* INVARIANT(one-record-per-key) aside, the tenant restriction is one more
         * conjunct, so no condition can widen it. */
        fcond_t *c = &flt->c[flt->n++];
        c->ns = NS_COL;
        c->name = rf_xstrdup("tenant");
        c->name_len = 6;
        c->kind = RF_INDEX_COND_EQ;
        c->vals = rf_xcalloc(1, sizeof(*c->vals));
        c->nv = 1;
        c->vals[0].type = T_STR;
        c->vals[0].len = strlen(f->tenant);
        c->vals[0].str = rf_xstrdup(f->tenant);
        c->keys = rf_xmalloc(sizeof(*c->keys));
        c->keys[0] = key_of(NS_COL, "tenant", 6, T_STR, 0, f->tenant, c->vals[0].len, 0);
    }
    if (rc) {
        rf__index_filter_free(flt);
        return rc;
    }
    *out = flt;
    return RF_OK;
}

/* ==== Matching ==== */

typedef struct entry {
    int ns, type;
    const char *name;
    size_t name_len;
    double num;
    const char *str;
    size_t len;
    int b;
} entry_t;

/* Decodes the entry at *off; returns 0 at the end. */
static int entry_next(const uint8_t *a, size_t total, size_t *off, entry_t *e)
{
    size_t o = *off;
    uint16_t nl;
    uint32_t sl;
    if (o + 4 > total)
        return 0;
    e->ns = a[o];
    e->type = a[o + 1];
    memcpy(&nl, a + o + 2, 2);
    o += 4;
    e->name = (const char *)a + o;
    e->name_len = nl;
    o += nl;
    switch (e->type) {
    case T_NUM:
        memcpy(&e->num, a + o, 8);
        o += 8;
        break;
    case T_STR:
        memcpy(&sl, a + o, 4);
        e->str = (const char *)a + o + 4;
        e->len = sl;
        o += 4 + (size_t)sl;
        break;
    case T_BOOL:
        e->b = a[o];
        o += 1;
        break;
    default:
        break;
    }
    *off = o;
    return 1;
}

static int str_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c)
        return c;
    return (al > bl) - (al < bl);
}

static int val_eq(const entry_t *e, const fval_t *v)
{
    if (e->type != v->type)
        return 0;
    switch (v->type) {
    case T_NUM:
        return e->num == v->num;
    case T_STR:
        return e->len == v->len && memcmp(e->str, v->str, v->len) == 0;
    case T_BOOL:
        return !e->b == !v->b;
    default:
        return 1;
    }
}

/* Compares e with a bound of the same type: <0, 0, >0. */
static int val_cmp(const entry_t *e, const fval_t *v)
{
    if (v->type == T_NUM)
        return (e->num > v->num) - (e->num < v->num);
    return str_cmp(e->str, e->len, v->str, v->len);
}

static int cond_match_entry(const fcond_t *c, const entry_t *e)
{
    if (c->kind != RF_INDEX_COND_RANGE) {
        for (size_t i = 0; i < c->nv; i++) {
            if (val_eq(e, &c->vals[i]))
                return 1;
        }
        return 0;
    }
    if (c->has_lo || c->has_hi) {
        int t = c->has_lo ? c->lo.type : c->hi.type;
        if (e->type != t)
            return 0;
    } else if (e->type != T_NUM && e->type != T_STR) {
        return 0;
    }
    if (c->has_lo) {
        int r = val_cmp(e, &c->lo);
        if (r < 0 || (r == 0 && c->lo_excl))
            return 0;
    }
    if (c->has_hi) {
        int r = val_cmp(e, &c->hi);
        if (r > 0 || (r == 0 && c->hi_excl))
            return 0;
    }
    return 1;
}

int rf__index_filter_match(const rf__index_filter_t *flt, const uint8_t *attrs)
{
    size_t total;
    if (!flt)
        return 1;
    if (!attrs)
        return 0;
    total = rf__index_attrs_len(attrs);
    for (size_t i = 0; i < flt->n; i++) {
        const fcond_t *c = &flt->c[i];
        size_t off = 4;
        entry_t e = {0};
        int ok = 0;
        while (!ok && entry_next(attrs, total, &off, &e)) {
            if (e.ns == c->ns && e.name_len == c->name_len &&
                memcmp(e.name, c->name, c->name_len) == 0)
                ok = cond_match_entry(c, &e);
        }
        if (!ok)
            return 0;
    }
    return 1;
}

/* ==== Keys for segment inverted indexes ==== */

size_t rf__index_attrs_keys(const uint8_t *attrs, uint64_t *out, size_t max)
{
    size_t total, off = 4, n = 0;
    entry_t e = {0};
    if (!attrs)
        return 0;
    total = rf__index_attrs_len(attrs);
    while (n < max && entry_next(attrs, total, &off, &e))
        out[n++] = key_of(e.ns, e.name, e.name_len, e.type, e.num, e.str, e.len, e.b);
    return n;
}

size_t rf__index_filter_cond_cnt(const rf__index_filter_t *flt)
{
    return flt ? flt->n : 0;
}

size_t rf__index_filter_cond_keys(const rf__index_filter_t *flt, size_t i, const uint64_t **keys)
{
    const fcond_t *c = &flt->c[i];
    *keys = c->keys;
    return c->keys ? c->nv : 0;
}
