/* iceberg_read.c - reads the Parquet files of the history table back (parquet.thrift,
 * Encodings.md): the Thrift compact footer, flat columns and 3-level lists, data pages
 * v1 and v2, PLAIN and dictionary encodings, RLE/bit-packed levels, ZSTD or no
 * compression.  Used by `ragfeed history` and by compaction, which rewrites rows it read
 * here; INVARIANT(history-exported-once): a compaction keeps every row exactly once, so
 * every value the writer can produce must come back unchanged.  Everything read from a
 * file is bounded before it is allocated.
 */
#include "iceberg/iceberg_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

/* ==== Limits and Parquet constants ==== */

#define PQR_MAX_FOOTER  ((uint32_t)64 << 20)
#define PQR_MAX_SCHEMA  100000
#define PQR_MAX_RGROUPS 1000000
#define PQR_MAX_KV      10000
#define PQR_MAX_PAGE    ((int64_t)1 << 30) /* uncompressed bytes of one page */
#define PQR_MAX_CHUNK   ((int64_t)1 << 31) /* bytes of one column chunk on disk */
#define PQR_MAX_VALUES  ((int64_t)1 << 26) /* level entries of one column chunk */
#define PQR_TC_DEPTH    32

enum { PT_BOOLEAN = 0, PT_INT32 = 1, PT_INT64 = 2, PT_INT96 = 3, PT_FLOAT = 4, PT_DOUBLE = 5 };
enum { PT_BYTES = 6, PT_FIXED = 7 };
enum { ENC_PLAIN = 0, ENC_PLAIN_DICTIONARY = 2, ENC_RLE = 3, ENC_RLE_DICTIONARY = 8 };
enum { PAGE_DATA = 0, PAGE_INDEX = 1, PAGE_DICTIONARY = 2, PAGE_DATA_V2 = 3 };
enum { CT_UTF8 = 0, CT_LIST = 3, CT_DATE = 6, CT_TIMESTAMP_MILLIS = 9, CT_TIMESTAMP_MICROS = 10 };
enum { REP_REQUIRED = 0, REP_OPTIONAL = 1, REP_REPEATED = 2 };
enum { CODEC_UNCOMPRESSED = 0, CODEC_ZSTD = 6 };

/* ==== Thrift compact protocol reader ==== */

/* Errors are sticky: the first one (truncation, bad type, nesting) is kept in rc and
 * every later read returns zeros, so parsers read plainly and check once. */
typedef struct tr {
    const uint8_t *p, *end;
    int16_t last[PQR_TC_DEPTH];
    int depth;
    int bool_val; /* value of the last boolean field header */
    rf_rc rc;
} tr_t;

static void tr_init(tr_t *t, const uint8_t *p, size_t n)
{
    memset(t, 0, sizeof(*t));
    t->p = p;
    t->end = p + n;
}

static void tr_fail(tr_t *t)
{
    if (!t->rc)
        t->rc = RF_EPARSE;
    t->p = t->end;
}

static uint8_t tr_byte(tr_t *t)
{
    if (t->p >= t->end) {
        tr_fail(t);
        return 0;
    }
    return *t->p++;
}

static uint64_t tr_uvarint(tr_t *t)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        uint8_t b = tr_byte(t);
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    tr_fail(t);
    return 0;
}

static int64_t tr_zigzag(tr_t *t)
{
    uint64_t u = tr_uvarint(t);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static int32_t tr_i32(tr_t *t)
{
    int64_t v = tr_zigzag(t);
    if (v < INT32_MIN || v > INT32_MAX) {
        tr_fail(t);
        return 0;
    }
    return (int32_t)v;
}

/* A binary/string: a borrowed view into the input. */
static rf_slice_t tr_binary(tr_t *t)
{
    uint64_t n = tr_uvarint(t);
    rf_slice_t s = RF_SLICE_NULL;
    if (t->rc || n > (uint64_t)(t->end - t->p)) {
        tr_fail(t);
        return s;
    }
    s.ptr = t->p;
    s.len = (size_t)n;
    t->p += n;
    return s;
}

static void tr_struct_begin(tr_t *t)
{
    if (t->depth >= PQR_TC_DEPTH) {
        tr_fail(t);
        return;
    }
    t->last[t->depth++] = 0;
}

static void tr_struct_end(tr_t *t)
{
    if (t->depth > 0)
        t->depth--;
}

/* Reads a field header: returns 0 at the stop byte (or on error), else 1 with *type
 * and *id set. */
static int tr_field(tr_t *t, int *type, int *id)
{
    uint8_t b;
    int delta;
    if (t->rc || t->depth == 0)
        return 0;
    b = tr_byte(t);
    if (t->rc || b == 0)
        return 0;
    *type = b & 0x0f;
    delta = b >> 4;
    if (delta)
        *id = t->last[t->depth - 1] + delta;
    else
        *id = (int16_t)tr_zigzag(t);
    t->last[t->depth - 1] = (int16_t)*id;
    if (*type == RF_ICEBERG_TC_TRUE || *type == RF_ICEBERG_TC_FALSE)
        t->bool_val = *type == RF_ICEBERG_TC_TRUE;
    return !t->rc;
}

/* A list header: element type and count (bounded by the caller). */
static size_t tr_list(tr_t *t, int *elem_type)
{
    uint8_t b = tr_byte(t);
    uint64_t n = b >> 4;
    *elem_type = b & 0x0f;
    if (n == 15)
        n = tr_uvarint(t);
    /* Every element takes at least one byte, which bounds any honest count. */
    if (t->rc || n > (uint64_t)(t->end - t->p)) {
        tr_fail(t);
        return 0;
    }
    return (size_t)n;
}

static void tr_skip(tr_t *t, int type);

static void tr_skip_struct(tr_t *t)
{
    int type, id;
    tr_struct_begin(t);
    while (tr_field(t, &type, &id))
        tr_skip(t, type);
    tr_struct_end(t);
}

static void tr_skip(tr_t *t, int type)
{
    switch (type) {
    case RF_ICEBERG_TC_TRUE:
    case RF_ICEBERG_TC_FALSE:
        break; /* the value was in the header */
    case RF_ICEBERG_TC_I8:
        tr_byte(t);
        break;
    case RF_ICEBERG_TC_I16:
    case RF_ICEBERG_TC_I32:
    case RF_ICEBERG_TC_I64:
        tr_uvarint(t);
        break;
    case RF_ICEBERG_TC_DOUBLE:
        if (t->end - t->p < 8)
            tr_fail(t);
        else
            t->p += 8;
        break;
    case RF_ICEBERG_TC_BINARY:
        tr_binary(t);
        break;
    case RF_ICEBERG_TC_LIST:
    case 10: /* set */ {
        int et;
        size_t n = tr_list(t, &et);
        for (size_t i = 0; i < n && !t->rc; i++) {
            if (et == RF_ICEBERG_TC_TRUE || et == RF_ICEBERG_TC_FALSE)
                tr_byte(t);
            else
                tr_skip(t, et);
        }
        break;
    }
    case 11: /* map */ {
        uint64_t n = tr_uvarint(t);
        uint8_t kv = n ? tr_byte(t) : 0;
        if (n > (uint64_t)(t->end - t->p)) {
            tr_fail(t);
            break;
        }
        for (uint64_t i = 0; i < n && !t->rc; i++) {
            tr_skip(t, kv >> 4);
            tr_skip(t, kv & 0x0f);
        }
        break;
    }
    case RF_ICEBERG_TC_STRUCT:
        if (t->depth >= PQR_TC_DEPTH)
            tr_fail(t);
        else
            tr_skip_struct(t);
        break;
    default:
        tr_fail(t);
        break;
    }
}

/* ==== Footer model ==== */

typedef struct schema_el {
    int type; /* physical type; -1 for groups */
    int rep;
    rf_slice_t name;
    int num_children;
    int converted; /* -1 none */
    int32_t field_id;
    int has_field_id;
    int logical; /* LogicalType union member id, 0 none */
    int ts_unit; /* TIMESTAMP: 1 millis, 2 micros, 3 nanos */
    int ts_utc;  /* TIMESTAMP isAdjustedToUTC */
} schema_el_t;

/* One leaf column chunk of a row group. */
typedef struct chunk_meta {
    int codec;
    int64_t num_values;
    int64_t total_compressed;
    int64_t data_off;
    int64_t dict_off; /* -1 none */
} chunk_meta_t;

typedef struct rgroup {
    int64_t num_rows;
    chunk_meta_t *chunks; /* one per leaf */
} rgroup_t;

/* A leaf (primitive) column and the top-level column it belongs to. */
typedef struct leaf {
    int ptype;
    int max_def, max_rep;
    int top; /* index into cols */
} leaf_t;

/* Decoded values of one top-level column for the row group being read. */
typedef struct colbuf {
    int64_t nrows;
    uint8_t *row_null;  /* per row */
    int64_t *row_off;   /* lists: nrows + 1 offsets into the element slots */
    int64_t nslots;     /* scalar: nrows; list: elements */
    uint8_t *slot_null; /* per slot */
    void *slots;        /* elem_size bytes per slot */
    int loaded;
} colbuf_t;

struct rf_iceberg_pqr {
    int fd;
    char *path;
    int64_t file_size;
    uint8_t *footer; /* the raw footer; schema names borrow from it */
    size_t footer_len;
    int64_t num_rows;
    rf_iceberg_pqr_col_t *cols;
    size_t ncols;
    leaf_t *leaves;
    size_t nleaves;
    rgroup_t *rgs;
    size_t nrgs;
    char **kv_keys, **kv_vals;
    size_t nkv;
    colbuf_t *bufs; /* per top-level column */
    /* Page buffers that slices of the current row group point into. */
    uint8_t **keep;
    size_t nkeep, cap_keep;
    ZSTD_DCtx *zd;
};

static size_t type_size(rf_iceberg_pq_type t)
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

static void colbuf_reset(colbuf_t *b)
{
    free(b->row_null);
    free(b->row_off);
    free(b->slot_null);
    free(b->slots);
    memset(b, 0, sizeof(*b));
}

static void keep_reset(rf_iceberg_pqr_t *r)
{
    for (size_t i = 0; i < r->nkeep; i++)
        free(r->keep[i]);
    r->nkeep = 0;
}

static void keep_add(rf_iceberg_pqr_t *r, uint8_t *p)
{
    if (r->nkeep == r->cap_keep) {
        r->cap_keep = r->cap_keep ? r->cap_keep * 2 : 16;
        r->keep = rf_xrealloc(r->keep, r->cap_keep * sizeof(*r->keep));
    }
    r->keep[r->nkeep++] = p;
}

void rf__iceberg_pqr_close(rf_iceberg_pqr_t *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    for (size_t i = 0; i < r->ncols; i++) {
        free(r->cols[i].name);
        if (r->bufs)
            colbuf_reset(&r->bufs[i]);
    }
    for (size_t i = 0; i < r->nrgs; i++)
        free(r->rgs[i].chunks);
    for (size_t i = 0; i < r->nkv; i++) {
        free(r->kv_keys[i]);
        free(r->kv_vals[i]);
    }
    keep_reset(r);
    free(r->keep);
    free(r->kv_keys);
    free(r->kv_vals);
    free(r->rgs);
    free(r->leaves);
    free(r->cols);
    free(r->bufs);
    free(r->footer);
    free(r->path);
    ZSTD_freeDCtx(r->zd);
    free(r);
}

/* ==== Footer parsing ==== */

static rf_rc pqr_fail(rf_iceberg_pqr_t *r, rf_err_t *err, rf_rc rc, const char *what)
{
    return rf_err_set(err, rc, "parquet %s: %s", r->path, what);
}

static void parse_logical(tr_t *t, schema_el_t *el)
{
    int type, id;
    tr_struct_begin(t);
    while (tr_field(t, &type, &id)) {
        if (type != RF_ICEBERG_TC_STRUCT) {
            tr_skip(t, type);
            continue;
        }
        el->logical = id;
        if (id != 8) { /* only TIMESTAMP has parameters this reader needs */
            tr_skip(t, type);
            continue;
        }
        tr_struct_begin(t);
        int ft, fid;
        while (tr_field(t, &ft, &fid)) {
            if (fid == 1 && (ft == RF_ICEBERG_TC_TRUE || ft == RF_ICEBERG_TC_FALSE)) {
                el->ts_utc = t->bool_val;
            } else if (fid == 2 && ft == RF_ICEBERG_TC_STRUCT) {
                /* TimeUnit union: 1 MILLIS, 2 MICROS, 3 NANOS */
                int ut, uid;
                tr_struct_begin(t);
                while (tr_field(t, &ut, &uid)) {
                    if (ut == RF_ICEBERG_TC_STRUCT)
                        el->ts_unit = uid;
                    tr_skip(t, ut);
                }
                tr_struct_end(t);
            } else {
                tr_skip(t, ft);
            }
        }
        tr_struct_end(t);
    }
    tr_struct_end(t);
}

static void parse_schema_el(tr_t *t, schema_el_t *el)
{
    int type, id;
    memset(el, 0, sizeof(*el));
    el->type = -1;
    el->rep = REP_REQUIRED;
    el->converted = -1;
    tr_struct_begin(t);
    while (tr_field(t, &type, &id)) {
        if (id == 1 && type == RF_ICEBERG_TC_I32)
            el->type = tr_i32(t);
        else if (id == 3 && type == RF_ICEBERG_TC_I32)
            el->rep = tr_i32(t);
        else if (id == 4 && type == RF_ICEBERG_TC_BINARY)
            el->name = tr_binary(t);
        else if (id == 5 && type == RF_ICEBERG_TC_I32)
            el->num_children = tr_i32(t);
        else if (id == 6 && type == RF_ICEBERG_TC_I32)
            el->converted = tr_i32(t);
        else if (id == 9 && type == RF_ICEBERG_TC_I32) {
            el->field_id = tr_i32(t);
            el->has_field_id = 1;
        } else if (id == 10 && type == RF_ICEBERG_TC_STRUCT)
            parse_logical(t, el);
        else
            tr_skip(t, type);
    }
    tr_struct_end(t);
}

static void parse_column_meta(tr_t *t, chunk_meta_t *cm)
{
    int type, id;
    tr_struct_begin(t);
    while (tr_field(t, &type, &id)) {
        if (id == 4 && type == RF_ICEBERG_TC_I32)
            cm->codec = tr_i32(t);
        else if (id == 5 && type == RF_ICEBERG_TC_I64)
            cm->num_values = tr_zigzag(t);
        else if (id == 7 && type == RF_ICEBERG_TC_I64)
            cm->total_compressed = tr_zigzag(t);
        else if (id == 9 && type == RF_ICEBERG_TC_I64)
            cm->data_off = tr_zigzag(t);
        else if (id == 11 && type == RF_ICEBERG_TC_I64)
            cm->dict_off = tr_zigzag(t);
        else
            tr_skip(t, type);
    }
    tr_struct_end(t);
}

static void parse_row_group(tr_t *t, rgroup_t *rg, size_t nleaves, int *bad_cols)
{
    int type, id;
    tr_struct_begin(t);
    while (tr_field(t, &type, &id)) {
        if (id == 1 && type == RF_ICEBERG_TC_LIST) {
            int et;
            size_t n = tr_list(t, &et);
            if (n != nleaves || et != RF_ICEBERG_TC_STRUCT || rg->chunks) {
                *bad_cols = 1;
                tr_fail(t);
                break;
            }
            rg->chunks = rf_xcalloc(n ? n : 1, sizeof(*rg->chunks));
            for (size_t i = 0; i < n && !t->rc; i++) {
                chunk_meta_t *cm = &rg->chunks[i];
                int ct, cid, has_meta = 0;
                cm->dict_off = -1;
                cm->codec = -1;
                tr_struct_begin(t);
                while (tr_field(t, &ct, &cid)) {
                    if (cid == 3 && ct == RF_ICEBERG_TC_STRUCT) {
                        parse_column_meta(t, cm);
                        has_meta = 1;
                    } else if (cid == 1 && ct == RF_ICEBERG_TC_BINARY) {
                        /* file_path: a chunk in another file is not supported */
                        *bad_cols = 2;
                        tr_skip(t, ct);
                    } else {
                        tr_skip(t, ct);
                    }
                }
                tr_struct_end(t);
                if (!has_meta)
                    *bad_cols = 1;
            }
        } else if (id == 3 && type == RF_ICEBERG_TC_I64) {
            rg->num_rows = tr_zigzag(t);
        } else {
            tr_skip(t, type);
        }
    }
    tr_struct_end(t);
}

static char *slice_dup(rf_slice_t s)
{
    return s.ptr ? rf_xstrndup((const char *)s.ptr, s.len) : rf_xstrdup("");
}

/* Maps a leaf's physical and logical types to ours; -1 when unsupported. */
static int leaf_type(const schema_el_t *el)
{
    switch (el->type) {
    case PT_BOOLEAN:
        return RF_ICEBERG_PQ_BOOLEAN;
    case PT_INT32:
        return (el->converted == CT_DATE || el->logical == 6) ? RF_ICEBERG_PQ_DATE
                                                              : RF_ICEBERG_PQ_INT32;
    case PT_INT64:
        if (el->logical == 8 && el->ts_unit == 2)
            return RF_ICEBERG_PQ_TIMESTAMPTZ;
        if (el->logical == 0 && el->converted == CT_TIMESTAMP_MICROS)
            return RF_ICEBERG_PQ_TIMESTAMPTZ;
        if (el->logical == 8 || el->converted == CT_TIMESTAMP_MILLIS)
            return -1; /* other units are not written by this project */
        return RF_ICEBERG_PQ_INT64;
    case PT_FLOAT:
        return RF_ICEBERG_PQ_FLOAT;
    case PT_DOUBLE:
        return RF_ICEBERG_PQ_DOUBLE;
    case PT_BYTES:
        return (el->converted == CT_UTF8 || el->logical == 1) ? RF_ICEBERG_PQ_STRING
                                                              : RF_ICEBERG_PQ_BINARY;
    default:
        return -1;
    }
}

/* Builds columns and leaves from the flattened schema (els[0] is the root). */
static rf_rc build_columns(rf_iceberg_pqr_t *r, const schema_el_t *els, size_t nels, rf_err_t *err)
{
    size_t i = 1;
    int nchild = els[0].num_children;
    if (nchild < 0 || (size_t)nchild >= nels)
        return pqr_fail(r, err, RF_EPARSE, "schema: bad root");
    r->cols = rf_xcalloc((size_t)nchild + 1, sizeof(*r->cols));
    r->leaves = rf_xcalloc(nels, sizeof(*r->leaves));
    for (int c = 0; c < nchild; c++) {
        const schema_el_t *el;
        rf_iceberg_pqr_col_t *col = &r->cols[r->ncols];
        leaf_t *lf = &r->leaves[r->nleaves];
        int def = 0, t;
        if (i >= nels)
            return pqr_fail(r, err, RF_EPARSE, "schema: truncated");
        el = &els[i++];
        if (el->rep == REP_REPEATED)
            return pqr_fail(r, err, RF_ENOTIMPL, "schema: repeated top-level fields");
        col->name = slice_dup(el->name);
        col->field_id = el->has_field_id ? el->field_id : 0;
        col->optional = el->rep == REP_OPTIONAL;
        r->ncols++;
        def = col->optional;
        if (el->type >= 0 && el->num_children == 0) {
            if ((t = leaf_type(el)) < 0)
                return rf_err_set(err, RF_ENOTIMPL, "parquet %s: column %s: unsupported type",
                                  r->path, col->name);
            col->type = (rf_iceberg_pq_type)t;
            lf->ptype = el->type;
            lf->max_def = def;
            lf->max_rep = 0;
            lf->top = (int)r->ncols - 1;
            r->nleaves++;
            continue;
        }
        /* A list: <name> (group) / list (repeated group, 1 child) / element (leaf). */
        const schema_el_t *mid, *elem;
        if (el->num_children != 1 || i >= nels)
            return rf_err_set(err, RF_ENOTIMPL,
                              "parquet %s: column %s: only lists of "
                              "primitives are supported",
                              r->path, col->name);
        mid = &els[i++];
        if (mid->rep != REP_REPEATED || mid->type >= 0 || mid->num_children != 1 || i >= nels)
            return rf_err_set(err, RF_ENOTIMPL,
                              "parquet %s: column %s: only 3-level lists are "
                              "supported",
                              r->path, col->name);
        elem = &els[i++];
        if (elem->type < 0 || elem->num_children != 0 || elem->rep == REP_REPEATED ||
            (t = leaf_type(elem)) < 0)
            return rf_err_set(err, RF_ENOTIMPL, "parquet %s: column %s: unsupported element",
                              r->path, col->name);
        col->is_list = 1;
        col->type = (rf_iceberg_pq_type)t;
        col->element_id = elem->has_field_id ? elem->field_id : 0;
        col->element_optional = elem->rep == REP_OPTIONAL;
        lf->ptype = elem->type;
        lf->max_def = def + 1 + col->element_optional;
        lf->max_rep = 1;
        lf->top = (int)r->ncols - 1;
        r->nleaves++;
    }
    if (i != nels)
        return pqr_fail(r, err, RF_EPARSE, "schema: elements left over");
    return RF_OK;
}

static rf_rc parse_footer(rf_iceberg_pqr_t *r, rf_err_t *err)
{
    tr_t t;
    int type, id, bad_cols = 0;
    schema_el_t *els = NULL;
    size_t nels = 0;
    rf_rc rc = RF_OK;

    tr_init(&t, r->footer, r->footer_len);
    tr_struct_begin(&t);
    while (tr_field(&t, &type, &id)) {
        if (id == 2 && type == RF_ICEBERG_TC_LIST && !els) {
            int et;
            size_t n = tr_list(&t, &et);
            if (et != RF_ICEBERG_TC_STRUCT || n == 0 || n > PQR_MAX_SCHEMA) {
                rc = pqr_fail(r, err, RF_EPARSE, "footer: bad schema list");
                goto out;
            }
            els = rf_xcalloc(n, sizeof(*els));
            for (size_t i = 0; i < n && !t.rc; i++)
                parse_schema_el(&t, &els[i]);
            nels = n;
        } else if (id == 3 && type == RF_ICEBERG_TC_I64) {
            r->num_rows = tr_zigzag(&t);
        } else if (id == 4 && type == RF_ICEBERG_TC_LIST && !r->rgs) {
            int et;
            size_t n = tr_list(&t, &et);
            if (!els) {
                rc = pqr_fail(r, err, RF_EPARSE, "footer: row groups before the schema");
                goto out;
            }
            if (!r->leaves && (rc = build_columns(r, els, nels, err)))
                goto out;
            if (et != RF_ICEBERG_TC_STRUCT || n > PQR_MAX_RGROUPS) {
                rc = pqr_fail(r, err, RF_EPARSE, "footer: bad row group list");
                goto out;
            }
            r->rgs = rf_xcalloc(n ? n : 1, sizeof(*r->rgs));
            r->nrgs = n;
            for (size_t i = 0; i < n && !t.rc; i++)
                parse_row_group(&t, &r->rgs[i], r->nleaves, &bad_cols);
        } else if (id == 5 && type == RF_ICEBERG_TC_LIST && !r->kv_keys) {
            int et;
            size_t n = tr_list(&t, &et);
            if (et != RF_ICEBERG_TC_STRUCT || n > PQR_MAX_KV) {
                rc = pqr_fail(r, err, RF_EPARSE, "footer: bad key/value list");
                goto out;
            }
            r->kv_keys = rf_xcalloc(n ? n : 1, sizeof(char *));
            r->kv_vals = rf_xcalloc(n ? n : 1, sizeof(char *));
            for (size_t i = 0; i < n && !t.rc; i++) {
                int kt, kid;
                rf_slice_t k = RF_SLICE_NULL, v = RF_SLICE_NULL;
                int hasv = 0;
                tr_struct_begin(&t);
                while (tr_field(&t, &kt, &kid)) {
                    if (kid == 1 && kt == RF_ICEBERG_TC_BINARY) {
                        k = tr_binary(&t);
                    } else if (kid == 2 && kt == RF_ICEBERG_TC_BINARY) {
                        v = tr_binary(&t);
                        hasv = 1;
                    } else {
                        tr_skip(&t, kt);
                    }
                }
                tr_struct_end(&t);
                r->kv_keys[r->nkv] = slice_dup(k);
                r->kv_vals[r->nkv] = hasv ? slice_dup(v) : NULL;
                r->nkv++;
            }
        } else {
            tr_skip(&t, type);
        }
    }
    tr_struct_end(&t);
    if (t.rc) {
        rc = pqr_fail(r, err, RF_EPARSE, "footer: malformed Thrift");
        goto out;
    }
    if (!els) {
        rc = pqr_fail(r, err, RF_EPARSE, "footer: no schema");
        goto out;
    }
    if (!r->leaves && (rc = build_columns(r, els, nels, err)))
        goto out;
    if (bad_cols == 2) {
        rc = pqr_fail(r, err, RF_ENOTIMPL, "column chunks in other files");
        goto out;
    }
    if (bad_cols) {
        rc = pqr_fail(r, err, RF_EPARSE, "row group: column chunks do not match the schema");
        goto out;
    }
    {
        int64_t total = 0;
        for (size_t i = 0; i < r->nrgs; i++) {
            if (r->rgs[i].num_rows < 0 || !r->rgs[i].chunks) {
                rc = pqr_fail(r, err, RF_EPARSE, "row group without rows or columns");
                goto out;
            }
            for (size_t j = 0; j < r->nleaves; j++) {
                const chunk_meta_t *cm = &r->rgs[i].chunks[j];
                int64_t start =
                    cm->dict_off >= 0 && cm->dict_off < cm->data_off ? cm->dict_off : cm->data_off;
                if (cm->total_compressed <= 0 || cm->total_compressed > PQR_MAX_CHUNK ||
                    start < 4 || start > r->file_size - 8 ||
                    cm->total_compressed > r->file_size - 8 - start || cm->num_values < 0 ||
                    cm->num_values > PQR_MAX_VALUES) {
                    rc = pqr_fail(r, err, RF_EPARSE, "column chunk outside the file");
                    goto out;
                }
                if (cm->codec != CODEC_UNCOMPRESSED && cm->codec != CODEC_ZSTD) {
                    rc = rf_err_set(err, RF_ENOTIMPL, "parquet %s: compression codec %d", r->path,
                                    cm->codec);
                    goto out;
                }
            }
            total += r->rgs[i].num_rows;
        }
        if (total != r->num_rows) {
            rc = pqr_fail(r, err, RF_EPARSE, "row groups do not add up to num_rows");
            goto out;
        }
    }
out:
    free(els);
    return rc;
}

static rf_rc pread_all(rf_iceberg_pqr_t *r, void *buf, size_t n, int64_t off, rf_err_t *err)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = pread(r->fd, (uint8_t *)buf + done, n - done, (off_t)(off + (int64_t)done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return rf_err_sys(err, RF_EIO, "parquet %s: read", r->path);
        if (k == 0)
            return pqr_fail(r, err, RF_EPARSE, "file shorter than its footer says");
        done += (size_t)k;
    }
    return RF_OK;
}

rf_rc rf__iceberg_pqr_open(const char *path, rf_iceberg_pqr_t **out, rf_err_t *err)
{
    rf_iceberg_pqr_t *r = rf_xcalloc(1, sizeof(*r));
    uint8_t tail[8];
    struct stat sb;
    uint32_t flen;
    rf_rc rc = RF_OK;

    *out = NULL;
    r->path = rf_xstrdup(path);
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        rc = rf_err_sys(err, errno == ENOENT ? RF_ENOTFOUND : RF_EIO, "parquet %s: open", path);
        goto out;
    }
    if (fstat(r->fd, &sb) != 0) {
        rc = rf_err_sys(err, RF_EIO, "parquet %s: stat", path);
        goto out;
    }
    r->file_size = (int64_t)sb.st_size;
    if (r->file_size < 12) {
        rc = pqr_fail(r, err, RF_EPARSE, "too short for a Parquet file");
        goto out;
    }
    if ((rc = pread_all(r, tail, 4, 0, err)))
        goto out;
    if (memcmp(tail, "PAR1", 4) != 0) {
        rc = pqr_fail(r, err, RF_EPARSE, "no PAR1 magic at the start");
        goto out;
    }
    if ((rc = pread_all(r, tail, 8, r->file_size - 8, err)))
        goto out;
    if (memcmp(tail + 4, "PAR1", 4) != 0) {
        rc = pqr_fail(r, err, RF_EPARSE, "no PAR1 magic at the end");
        goto out;
    }
    flen = (uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 |
           (uint32_t)tail[3] << 24;
    if (flen > PQR_MAX_FOOTER) {
        rc = rf_err_set(err, RF_ETOOBIG, "parquet %s: footer of %u bytes", path, flen);
        goto out;
    }
    if ((int64_t)flen > r->file_size - 12) {
        rc = pqr_fail(r, err, RF_EPARSE, "footer length past the start of the file");
        goto out;
    }
    r->footer = rf_xmalloc(flen ? flen : 1);
    r->footer_len = flen;
    if ((rc = pread_all(r, r->footer, flen, r->file_size - 8 - flen, err)))
        goto out;
    if ((rc = parse_footer(r, err)))
        goto out;
    r->bufs = rf_xcalloc(r->ncols ? r->ncols : 1, sizeof(*r->bufs));
    r->zd = ZSTD_createDCtx();
    if (!r->zd)
        abort();
out:
    if (rc) {
        rf__iceberg_pqr_close(r);
        return rc;
    }
    *out = r;
    return RF_OK;
}

/* ==== Accessors ==== */

size_t rf__iceberg_pqr_ncols(const rf_iceberg_pqr_t *r)
{
    return r->ncols;
}

const rf_iceberg_pqr_col_t *rf__iceberg_pqr_col(const rf_iceberg_pqr_t *r, size_t i)
{
    return i < r->ncols ? &r->cols[i] : NULL;
}

int rf__iceberg_pqr_find(const rf_iceberg_pqr_t *r, int32_t field_id)
{
    for (size_t i = 0; i < r->ncols; i++)
        if (r->cols[i].field_id == field_id && field_id != 0)
            return (int)i;
    return -1;
}

int64_t rf__iceberg_pqr_rows(const rf_iceberg_pqr_t *r)
{
    return r->num_rows;
}

size_t rf__iceberg_pqr_row_groups(const rf_iceberg_pqr_t *r)
{
    return r->nrgs;
}

const char *rf__iceberg_pqr_kv(const rf_iceberg_pqr_t *r, const char *key)
{
    for (size_t i = 0; i < r->nkv; i++)
        if (!strcmp(r->kv_keys[i], key))
            return r->kv_vals[i];
    return NULL;
}

/* ==== Pages ==== */

/* RLE / bit-packed hybrid decoder (no length prefix). */
typedef struct rle_dec {
    const uint8_t *p, *end;
    int bw;
    uint32_t run_val;
    int64_t run_left; /* values left in a repeated run */
    int64_t bp_left;  /* values left in a bit-packed run */
    uint64_t bits;    /* bit reservoir for bit-packed runs */
    int nbits;
} rle_dec_t;

static void rle_init(rle_dec_t *d, const uint8_t *p, size_t n, int bw)
{
    memset(d, 0, sizeof(*d));
    d->p = p;
    d->end = p + n;
    d->bw = bw;
}

static int rle_uvarint(rle_dec_t *d, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (d->p >= d->end)
            return -1;
        uint8_t b = *d->p++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* Next value into *v; -1 when the input ends or is malformed. */
static int rle_next(rle_dec_t *d, uint32_t *v)
{
    if (d->bw == 0) {
        *v = 0;
        return 0;
    }
    while (d->run_left == 0 && d->bp_left == 0) {
        uint64_t h;
        if (rle_uvarint(d, &h))
            return -1;
        if (h & 1) {
            uint64_t groups = h >> 1;
            if (groups == 0 || groups > ((uint64_t)1 << 28))
                return -1;
            d->bp_left = (int64_t)groups * 8;
            d->bits = 0;
            d->nbits = 0;
        } else {
            int nb = (d->bw + 7) / 8;
            uint32_t val = 0;
            if (d->end - d->p < nb)
                return -1;
            for (int i = 0; i < nb; i++)
                val |= (uint32_t)d->p[i] << (8 * i);
            d->p += nb;
            if (d->bw < 32 && val >> d->bw)
                return -1;
            d->run_val = val;
            d->run_left = (int64_t)(h >> 1);
        }
    }
    if (d->run_left > 0) {
        d->run_left--;
        *v = d->run_val;
        return 0;
    }
    while (d->nbits < d->bw) {
        if (d->p >= d->end) {
            /* The last group may be cut short when the writer padded its count:
             * values past the data are padding that nobody asks for. */
            return -1;
        }
        d->bits |= (uint64_t)*d->p++ << d->nbits;
        d->nbits += 8;
    }
    *v = (uint32_t)(d->bits & ((d->bw == 32) ? 0xffffffffu : ((1u << d->bw) - 1)));
    d->bits >>= d->bw;
    d->nbits -= d->bw;
    d->bp_left--;
    return 0;
}

typedef struct page_hdr {
    int type;
    int32_t uncomp, comp;
    int32_t num_values;
    int encoding;
    /* v2 */
    int32_t def_len, rep_len;
    int v2_compressed;
} page_hdr_t;

static void parse_page_header(tr_t *t, page_hdr_t *h)
{
    int type, id;
    memset(h, 0, sizeof(*h));
    h->type = -1;
    h->v2_compressed = 1;
    tr_struct_begin(t);
    while (tr_field(t, &type, &id)) {
        if (id == 1 && type == RF_ICEBERG_TC_I32) {
            h->type = tr_i32(t);
        } else if (id == 2 && type == RF_ICEBERG_TC_I32) {
            h->uncomp = tr_i32(t);
        } else if (id == 3 && type == RF_ICEBERG_TC_I32) {
            h->comp = tr_i32(t);
        } else if ((id == 5 || id == 7 || id == 8) && type == RF_ICEBERG_TC_STRUCT) {
            int ft, fid;
            tr_struct_begin(t);
            while (tr_field(t, &ft, &fid)) {
                if (fid == 1 && ft == RF_ICEBERG_TC_I32)
                    h->num_values = tr_i32(t);
                else if (id != 8 && fid == 2 && ft == RF_ICEBERG_TC_I32)
                    h->encoding = tr_i32(t);
                else if (id == 8 && fid == 4 && ft == RF_ICEBERG_TC_I32)
                    h->encoding = tr_i32(t);
                else if (id == 8 && fid == 5 && ft == RF_ICEBERG_TC_I32)
                    h->def_len = tr_i32(t);
                else if (id == 8 && fid == 6 && ft == RF_ICEBERG_TC_I32)
                    h->rep_len = tr_i32(t);
                else if (id == 8 && fid == 7 &&
                         (ft == RF_ICEBERG_TC_TRUE || ft == RF_ICEBERG_TC_FALSE))
                    h->v2_compressed = t->bool_val;
                else
                    tr_skip(t, ft);
            }
            tr_struct_end(t);
        } else {
            tr_skip(t, type);
        }
    }
    tr_struct_end(t);
}

/* The dictionary of the chunk being decoded. */
typedef struct dict {
    void *vals; /* elem_size per entry */
    size_t n;
} dict_t;

/* Decodes n PLAIN values of ptype from p[0..len) into out (type_size(ctype) each);
 * *used is the byte count consumed.  Byte arrays become slices into p. */
static int plain_decode(int ptype, rf_iceberg_pq_type ctype, const uint8_t *p, size_t len, size_t n,
                        void *out, size_t *used)
{
    size_t off = 0;
    switch (ptype) {
    case PT_BOOLEAN:
        if ((n + 7) / 8 > len)
            return -1;
        for (size_t i = 0; i < n; i++)
            ((uint8_t *)out)[i] = (p[i / 8] >> (i % 8)) & 1;
        off = (n + 7) / 8;
        break;
    case PT_INT32:
    case PT_FLOAT:
        if (n > len / 4)
            return -1;
        memcpy(out, p, n * 4); /* little-endian hosts only, like the writer */
        off = n * 4;
        break;
    case PT_INT64:
    case PT_DOUBLE:
        if (n > len / 8)
            return -1;
        memcpy(out, p, n * 8);
        off = n * 8;
        break;
    case PT_BYTES:
        for (size_t i = 0; i < n; i++) {
            uint32_t l;
            if (len - off < 4)
                return -1;
            l = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 | (uint32_t)p[off + 2] << 16 |
                (uint32_t)p[off + 3] << 24;
            off += 4;
            if (l > len - off)
                return -1;
            if (ctype == RF_ICEBERG_PQ_STRING && !rf_utf8_valid(p + off, l))
                return -2;
            ((rf_slice_t *)out)[i] = rf_slice(p + off, l);
            off += l;
        }
        break;
    default:
        return -1;
    }
    *used = off;
    return 0;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "iceberg_read.c decodes PLAIN numbers by copying; add byte swapping for this platform"
#endif

/* Levels being collected for one chunk. */
typedef struct levels {
    uint8_t *def, *rep;
    int64_t n, cap;
    /* values of entries at max_def, in order */
    void *vals;
    int64_t nvals, capvals; /* values, and bytes allocated for them */
} levels_t;

static void lv_reserve(levels_t *lv, int64_t extra, size_t esz)
{
    if (lv->n + extra > lv->cap) {
        int64_t cap = lv->cap ? lv->cap : 1024;
        while (cap < lv->n + extra)
            cap *= 2;
        lv->def = rf_xrealloc(lv->def, (size_t)cap);
        lv->rep = rf_xrealloc(lv->rep, (size_t)cap);
        lv->cap = cap;
    }
    /* capvals counts bytes: one levels_t serves columns of different value sizes. */
    if ((size_t)(lv->nvals + extra) * esz > (size_t)lv->capvals) {
        size_t cap = lv->capvals ? (size_t)lv->capvals : 1024 * esz;
        while (cap < (size_t)(lv->nvals + extra) * esz)
            cap *= 2;
        lv->vals = rf_xrealloc(lv->vals, cap);
        lv->capvals = (int64_t)cap;
    }
}

/* Decodes one data page body (uncompressed as far as levels go: v1 everything, v2
 * the values part after decompression). */
static rf_rc decode_levels(rf_iceberg_pqr_t *r, const uint8_t **pp, const uint8_t *end,
                           int32_t nvals, uint8_t *out, int max_level, int32_t v2_len,
                           rf_err_t *err)
{
    const uint8_t *p = *pp;
    size_t len;
    rle_dec_t d;
    if (max_level == 0) {
        memset(out, 0, (size_t)nvals);
        return RF_OK;
    }
    if (v2_len >= 0) {
        len = (size_t)v2_len;
        if (len > (size_t)(end - p))
            return pqr_fail(r, err, RF_EPARSE, "levels past the page");
    } else {
        if (end - p < 4)
            return pqr_fail(r, err, RF_EPARSE, "levels truncated");
        len = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
        p += 4;
        if (len > (size_t)(end - p))
            return pqr_fail(r, err, RF_EPARSE, "levels past the page");
    }
    rle_init(&d, p, len, rf__iceberg_bit_width((uint32_t)max_level));
    for (int32_t i = 0; i < nvals; i++) {
        uint32_t v;
        if (rle_next(&d, &v) || v > (uint32_t)max_level)
            return pqr_fail(r, err, RF_EPARSE, "bad level data");
        out[i] = (uint8_t)v;
    }
    *pp = p + len;
    return RF_OK;
}

static rf_rc decode_values(rf_iceberg_pqr_t *r, const leaf_t *lf, rf_iceberg_pq_type ctype,
                           const page_hdr_t *h, const uint8_t *p, const uint8_t *end, size_t n,
                           const dict_t *dict, void *out, rf_err_t *err)
{
    size_t esz = type_size(ctype);
    if (h->encoding == ENC_PLAIN) {
        size_t used;
        int k = plain_decode(lf->ptype, ctype, p, (size_t)(end - p), n, out, &used);
        if (k == -2)
            return pqr_fail(r, err, RF_EPARSE, "string value is not UTF-8");
        if (k)
            return pqr_fail(r, err, RF_EPARSE, "PLAIN values truncated");
        return RF_OK;
    }
    if (h->encoding == ENC_RLE_DICTIONARY || h->encoding == ENC_PLAIN_DICTIONARY) {
        rle_dec_t d;
        int bw;
        if (!dict)
            return pqr_fail(r, err, RF_EPARSE, "dictionary-encoded page without a dictionary");
        if (n == 0)
            return RF_OK;
        if (p >= end)
            return pqr_fail(r, err, RF_EPARSE, "dictionary indices truncated");
        bw = *p++;
        if (bw > 32)
            return pqr_fail(r, err, RF_EPARSE, "bad dictionary index width");
        rle_init(&d, p, (size_t)(end - p), bw);
        for (size_t i = 0; i < n; i++) {
            uint32_t k;
            if (rle_next(&d, &k) || k >= dict->n)
                return pqr_fail(r, err, RF_EPARSE, "bad dictionary index");
            memcpy((uint8_t *)out + i * esz, (const uint8_t *)dict->vals + (size_t)k * esz, esz);
        }
        return RF_OK;
    }
    if (h->encoding == ENC_RLE && lf->ptype == PT_BOOLEAN) {
        rle_dec_t d;
        const uint8_t *q = p;
        size_t len;
        if (end - q < 4)
            return pqr_fail(r, err, RF_EPARSE, "RLE booleans truncated");
        len = (size_t)q[0] | (size_t)q[1] << 8 | (size_t)q[2] << 16 | (size_t)q[3] << 24;
        q += 4;
        if (len > (size_t)(end - q))
            return pqr_fail(r, err, RF_EPARSE, "RLE booleans truncated");
        rle_init(&d, q, len, 1);
        for (size_t i = 0; i < n; i++) {
            uint32_t v;
            if (rle_next(&d, &v))
                return pqr_fail(r, err, RF_EPARSE, "bad RLE booleans");
            ((uint8_t *)out)[i] = (uint8_t)v;
        }
        return RF_OK;
    }
    return rf_err_set(err, RF_ENOTIMPL, "parquet %s: value encoding %d", r->path, h->encoding);
}

/* Returns the decompressed page body in *body (either src itself or a new buffer kept
 * in r->keep when slices may point into it, or freed by the caller through *tofree). */
static rf_rc decompress(rf_iceberg_pqr_t *r, int codec, const uint8_t *src, size_t srclen,
                        size_t uncomp, uint8_t **body, rf_err_t *err)
{
    size_t n;
    if (codec == CODEC_UNCOMPRESSED) {
        if (srclen != uncomp)
            return pqr_fail(r, err, RF_EPARSE, "uncompressed page size mismatch");
        *body = NULL;
        return RF_OK;
    }
    *body = rf_xmalloc(uncomp ? uncomp : 1);
    n = ZSTD_decompressDCtx(r->zd, *body, uncomp, src, srclen);
    if (ZSTD_isError(n) || n != uncomp) {
        free(*body);
        *body = NULL;
        return rf_err_set(err, RF_EPARSE, "parquet %s: zstd page: %s", r->path,
                          ZSTD_isError(n) ? ZSTD_getErrorName(n) : "size mismatch");
    }
    return RF_OK;
}

/* Reads and decodes one column chunk into lv. */
static rf_rc read_chunk(rf_iceberg_pqr_t *r, const leaf_t *lf, rf_iceberg_pq_type ctype,
                        const chunk_meta_t *cm, levels_t *lv, rf_err_t *err)
{
    int64_t start = cm->dict_off >= 0 && cm->dict_off < cm->data_off ? cm->dict_off : cm->data_off;
    size_t esz = type_size(ctype);
    uint8_t *raw = rf_xmalloc((size_t)cm->total_compressed);
    const uint8_t *p = raw, *end = raw + cm->total_compressed;
    dict_t dict = {NULL, 0};
    int have_dict = 0;
    int64_t seen = 0;
    rf_rc rc;

    /* raw is kept: uncompressed pages' slices point into it. */
    keep_add(r, raw);
    if ((rc = pread_all(r, raw, (size_t)cm->total_compressed, start, err)))
        goto out;
    while (seen < cm->num_values) {
        page_hdr_t h;
        tr_t t;
        uint8_t *body = NULL;
        const uint8_t *b, *bend;
        tr_init(&t, p, (size_t)(end - p));
        parse_page_header(&t, &h);
        if (t.rc || h.comp < 0 || h.uncomp < 0 || h.comp > end - t.p ||
            (int64_t)h.uncomp > PQR_MAX_PAGE) {
            rc = pqr_fail(r, err, RF_EPARSE, "bad page header");
            goto out;
        }
        p = t.p;
        if (h.type == PAGE_DICTIONARY) {
            size_t used;
            int k;
            if (have_dict || h.num_values < 0 ||
                (h.encoding != ENC_PLAIN && h.encoding != ENC_PLAIN_DICTIONARY)) {
                rc = pqr_fail(r, err, RF_EPARSE, "bad dictionary page");
                goto out;
            }
            if ((rc = decompress(r, cm->codec, p, (size_t)h.comp, (size_t)h.uncomp, &body, err)))
                goto out;
            if (body)
                keep_add(r, body);
            b = body ? body : p;
            /* A PLAIN value takes at least 4 bytes (a bit for booleans). */
            if ((size_t)h.num_values >
                (lf->ptype == PT_BOOLEAN ? (size_t)h.uncomp * 8 : (size_t)h.uncomp / 4)) {
                rc = pqr_fail(r, err, RF_EPARSE, "dictionary count larger than its page");
                goto out;
            }
            dict.vals = rf_xmalloc((size_t)(h.num_values ? h.num_values : 1) * esz);
            dict.n = (size_t)h.num_values;
            k = plain_decode(lf->ptype, ctype, b, (size_t)h.uncomp, dict.n, dict.vals, &used);
            if (k) {
                rc = pqr_fail(r, err, RF_EPARSE,
                              k == -2 ? "dictionary string is not UTF-8" : "dictionary truncated");
                goto out;
            }
            have_dict = 1;
            p += h.comp;
            continue;
        }
        if (h.type != PAGE_DATA && h.type != PAGE_DATA_V2) {
            p += h.comp; /* index pages and others: not needed */
            continue;
        }
        if (h.num_values < 0 || h.num_values > cm->num_values - seen) {
            rc = pqr_fail(r, err, RF_EPARSE, "page has more values than its chunk");
            goto out;
        }
        lv_reserve(lv, h.num_values, esz);
        if (h.type == PAGE_DATA) {
            if ((rc = decompress(r, cm->codec, p, (size_t)h.comp, (size_t)h.uncomp, &body, err)))
                goto out;
            if (body)
                keep_add(r, body);
            b = body ? body : p;
            bend = b + h.uncomp;
            if ((rc = decode_levels(r, &b, bend, h.num_values, lv->rep + lv->n, lf->max_rep, -1,
                                    err)) ||
                (rc = decode_levels(r, &b, bend, h.num_values, lv->def + lv->n, lf->max_def, -1,
                                    err)))
                goto out;
        } else {
            /* v2: levels first and never compressed, then the (maybe compressed) values. */
            const uint8_t *lp = p, *lend = p + h.comp;
            size_t lvl = (size_t)h.rep_len + (size_t)h.def_len;
            if (h.rep_len < 0 || h.def_len < 0 || lvl > (size_t)h.comp || lvl > (size_t)h.uncomp) {
                rc = pqr_fail(r, err, RF_EPARSE, "bad v2 level lengths");
                goto out;
            }
            if ((rc = decode_levels(r, &lp, lend, h.num_values, lv->rep + lv->n, lf->max_rep,
                                    h.rep_len, err)) ||
                (rc = decode_levels(r, &lp, lend, h.num_values, lv->def + lv->n, lf->max_def,
                                    h.def_len, err)))
                goto out;
            lp = p + lvl;
            if (h.v2_compressed && cm->codec != CODEC_UNCOMPRESSED) {
                if ((rc = decompress(r, cm->codec, lp, (size_t)h.comp - lvl, (size_t)h.uncomp - lvl,
                                     &body, err)))
                    goto out;
                keep_add(r, body);
                b = body;
                bend = body + ((size_t)h.uncomp - lvl);
            } else {
                b = lp;
                bend = p + h.comp;
            }
        }
        {
            size_t nv = 0;
            for (int32_t i = 0; i < h.num_values; i++)
                nv += lv->def[lv->n + i] == lf->max_def;
            if ((rc = decode_values(r, lf, ctype, &h, b, bend, nv, have_dict ? &dict : NULL,
                                    (uint8_t *)lv->vals + (size_t)lv->nvals * esz, err)))
                goto out;
            lv->nvals += (int64_t)nv;
        }
        lv->n += h.num_values;
        seen += h.num_values;
        p += h.comp;
    }
out:
    free(dict.vals);
    return rc;
}

/* Turns a chunk's levels and values into per-row values. */
static rf_rc assemble(rf_iceberg_pqr_t *r, const leaf_t *lf, const rf_iceberg_pqr_col_t *col,
                      levels_t *lv, int64_t nrows, colbuf_t *b, rf_err_t *err)
{
    size_t esz = type_size(col->type);
    int64_t vi = 0;
    b->nrows = nrows;
    b->row_null = rf_xcalloc((size_t)(nrows ? nrows : 1), 1);
    if (!col->is_list) {
        if (lv->n != nrows)
            return pqr_fail(r, err, RF_EPARSE, "column has another row count than its group");
        b->nslots = nrows;
        b->slot_null = rf_xcalloc((size_t)(nrows ? nrows : 1), 1);
        b->slots = rf_xcalloc((size_t)(nrows ? nrows : 1), esz);
        for (int64_t i = 0; i < nrows; i++) {
            if (lv->def[i] == lf->max_def) {
                memcpy((uint8_t *)b->slots + (size_t)i * esz,
                       (uint8_t *)lv->vals + (size_t)vi * esz, esz);
                vi++;
            } else {
                b->row_null[i] = b->slot_null[i] = 1;
            }
        }
        b->loaded = 1;
        return RF_OK;
    }
    {
        /* Definition levels of a list: below `present` the list is null, at `present` it
         * is empty, above it an element (null when one below max_def and the element is
         * optional). */
        int present = col->optional ? 1 : 0;
        int64_t row = -1, nslots = 0;
        b->row_off = rf_xcalloc((size_t)nrows + 1, sizeof(int64_t));
        for (int64_t i = 0; i < lv->n; i++)
            nslots += lv->def[i] > present;
        b->nslots = nslots;
        b->slot_null = rf_xcalloc((size_t)(nslots ? nslots : 1), 1);
        b->slots = rf_xcalloc((size_t)(nslots ? nslots : 1), esz);
        nslots = 0;
        for (int64_t i = 0; i < lv->n; i++) {
            if (lv->rep[i] == 0) {
                row++;
                if (row >= nrows)
                    return pqr_fail(r, err, RF_EPARSE, "list column has more rows than its group");
                b->row_off[row] = nslots;
                if (lv->def[i] < present) {
                    b->row_null[row] = 1;
                    continue;
                }
                if (lv->def[i] == present)
                    continue;
            } else if (row < 0 || lv->def[i] <= present) {
                return pqr_fail(r, err, RF_EPARSE, "bad repetition levels");
            }
            if (lv->def[i] == lf->max_def) {
                memcpy((uint8_t *)b->slots + (size_t)nslots * esz,
                       (uint8_t *)lv->vals + (size_t)vi * esz, esz);
                vi++;
            } else {
                b->slot_null[nslots] = 1;
            }
            nslots++;
        }
        if (row + 1 != nrows)
            return pqr_fail(r, err, RF_EPARSE, "list column has fewer rows than its group");
        b->row_off[nrows] = nslots;
    }
    b->loaded = 1;
    return RF_OK;
}

rf_rc rf__iceberg_pqr_read_group(rf_iceberg_pqr_t *r, size_t rg, const uint8_t *want,
                                 int64_t *nrows, rf_err_t *err)
{
    levels_t lv;
    rf_rc rc = RF_OK;

    *nrows = 0;
    for (size_t i = 0; i < r->ncols; i++)
        colbuf_reset(&r->bufs[i]);
    keep_reset(r);
    if (rg >= r->nrgs)
        return rf_err_set(err, RF_EINVAL, "parquet %s: no row group %zu", r->path, rg);
    memset(&lv, 0, sizeof(lv));
    for (size_t l = 0; l < r->nleaves && !rc; l++) {
        const leaf_t *lf = &r->leaves[l];
        const rf_iceberg_pqr_col_t *col = &r->cols[lf->top];
        if (want && !want[lf->top])
            continue;
        lv.n = lv.nvals = 0;
        if ((rc = read_chunk(r, lf, col->type, &r->rgs[rg].chunks[l], &lv, err)))
            break;
        if (lv.n != r->rgs[rg].chunks[l].num_values)
            rc = pqr_fail(r, err, RF_EPARSE, "column chunk has fewer values than it says");
        else
            rc = assemble(r, lf, col, &lv, r->rgs[rg].num_rows, &r->bufs[lf->top], err);
    }
    free(lv.def);
    free(lv.rep);
    free(lv.vals);
    if (rc) {
        for (size_t i = 0; i < r->ncols; i++)
            colbuf_reset(&r->bufs[i]);
        keep_reset(r);
        return rc;
    }
    *nrows = r->rgs[rg].num_rows;
    return RF_OK;
}

int rf__iceberg_pqr_value(const rf_iceberg_pqr_t *r, size_t col, int64_t row,
                          rf_iceberg_pq_value_t *v)
{
    const colbuf_t *b;
    size_t esz;
    memset(v, 0, sizeof(*v));
    v->is_null = 1;
    if (col >= r->ncols)
        return -1;
    b = &r->bufs[col];
    if (!b->loaded || row < 0 || row >= b->nrows)
        return -1;
    if (b->row_null[row])
        return 0;
    v->is_null = 0;
    esz = type_size(r->cols[col].type);
    if (r->cols[col].is_list) {
        int64_t a = b->row_off[row], z = b->row_off[row + 1];
        v->v.list.items = (const uint8_t *)b->slots + (size_t)a * esz;
        v->v.list.count = (size_t)(z - a);
        v->v.list.nulls = b->slot_null + a;
        return 0;
    }
    {
        const uint8_t *s = (const uint8_t *)b->slots + (size_t)row * esz;
        switch (r->cols[col].type) {
        case RF_ICEBERG_PQ_BOOLEAN:
            v->v.b = *s != 0;
            break;
        case RF_ICEBERG_PQ_INT32:
        case RF_ICEBERG_PQ_DATE:
            memcpy(&v->v.i32, s, 4);
            break;
        case RF_ICEBERG_PQ_INT64:
        case RF_ICEBERG_PQ_TIMESTAMPTZ:
            memcpy(&v->v.i64, s, 8);
            break;
        case RF_ICEBERG_PQ_FLOAT:
            memcpy(&v->v.f32, s, 4);
            break;
        case RF_ICEBERG_PQ_DOUBLE:
            memcpy(&v->v.f64, s, 8);
            break;
        default:
            memcpy(&v->v.bytes, s, sizeof(rf_slice_t));
            break;
        }
    }
    return 0;
}
