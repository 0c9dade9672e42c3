/* iceberg_history.c - the audit queries of `ragfeed history` over the table's own files:
 * the snapshot list with the exporter's position in each, every version of one record,
 * and a whole snapshot (by id or as of a time), as JSON lines.  Also the time and
 * duration syntax history options use.  Reads only; INVARIANT(history-exported-once) is
 * what makes the answers complete: each changelog row is in the table once.
 */
#include "iceberg/iceberg.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "iceberg/iceberg_int.h"

struct rf_iceberg_history {
    const rf_conf_t *cfg;
    rf_iceberg_hist_conf_t hc;
    rf_iceberg_catalog_t *cat;
    rf_iceberg_table_t *t;
};

rf_iceberg_table_t *rf__iceberg_history_table(rf_iceberg_history_t *h)
{
    return h->t;
}

const rf_conf_t *rf__iceberg_history_conf(rf_iceberg_history_t *h)
{
    return h->cfg;
}

/* ==== Times and durations ==== */

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (**p < '0' || **p > '9')
            return -1;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return 0;
}

/* Days since the epoch of a civil date (inverse of rf__iceberg_civil_from_days). */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t yy = y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

rf_rc rf_iceberg_time_parse(const char *s, int64_t *ms)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac_ms = 0;
    int64_t off_min = 0;
    if (!s || !*s)
        return RF_EINVAL;
    /* Milliseconds since the epoch. */
    {
        char *end = NULL;
        long long v = strtoll(s, &end, 10);
        if (end != s && *end == '\0' && strlen(s) > 4) {
            *ms = (int64_t)v;
            return RF_OK;
        }
    }
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31)
        return RF_EINVAL;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || h > 23 || mi > 59)
            return RF_EINVAL;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec) || sec > 60)
                return RF_EINVAL;
            if (*p == '.' || *p == ',') {
                int n = 0, scale = 100;
                p++;
                if (*p < '0' || *p > '9')
                    return RF_EINVAL;
                while (*p >= '0' && *p <= '9') {
                    if (n < 3)
                        frac_ms += (*p - '0') * scale;
                    scale /= 10;
                    n++;
                    p++;
                }
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1, oh, om = 0;
            p++;
            if (digits(&p, 2, &oh))
                return RF_EINVAL;
            if (*p == ':')
                p++;
            if (*p && digits(&p, 2, &om))
                return RF_EINVAL;
            if (oh > 23 || om > 59)
                return RF_EINVAL;
            off_min = sign * (oh * 60 + om);
        }
    }
    if (*p)
        return RF_EINVAL;
    *ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi - off_min) * 60000 + sec * 1000 + frac_ms;
    return RF_OK;
}

rf_rc rf_iceberg_duration_parse(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1},      {"s", 1000},     {"m", 60000},
                 {"h", 3600000}, {"d", 86400000}, {"w", 604800000}};
    char *end = NULL;
    double v;
    if (!s || !*s || *s == '-')
        return RF_EINVAL;
    v = strtod(s, &end);
    if (end == s || !(v >= 0) || v > 1e15)
        return RF_EINVAL;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (!strcmp(end, units[i].unit)) {
            double x = v * (double)units[i].ms;
            if (x > 9.0e18)
                return RF_EINVAL;
            *ms = (int64_t)x;
            return RF_OK;
        }
    }
    return RF_EINVAL;
}

/* ==== Open ==== */

rf_rc rf_iceberg_history_open(const rf_conf_t *cfg, rf_iceberg_history_t **out, rf_err_t *err)
{
    rf_iceberg_history_t *h = rf_xcalloc(1, sizeof(*h));
    rf_rc rc;
    *out = NULL;
    h->cfg = cfg;
    if ((rc = rf__iceberg_hist_conf_init(cfg, &h->hc, err)) ||
        (rc = rf__iceberg_hist_open(cfg, &h->hc, 0, &h->cat, &h->t, err))) {
        rf_iceberg_history_close(h);
        return rc;
    }
    *out = h;
    return RF_OK;
}

void rf_iceberg_history_close(rf_iceberg_history_t *h)
{
    if (!h)
        return;
    rf__iceberg_table_free(h->t);
    rf__iceberg_catalog_close(h->cat);
    rf__iceberg_hist_conf_fini(&h->hc);
    free(h);
}

static rf_rc emit(rf_iceberg_line_fn fn, void *opaque, json_t *o, rf_err_t *err)
{
    char *s = json_dumps(o, JSON_COMPACT);
    rf_rc rc;
    if (!s)
        return rf_err_set(err, RF_EINVAL, "history: a value could not be written as JSON");
    rc = fn(opaque, s, strlen(s));
    free(s);
    if (rc)
        rf_err_set(err, rc, "history: output failed");
    return rc;
}

/* ==== Snapshots ==== */

static json_t *summary_int(const json_t *sum, const char *key)
{
    const char *v = json_string_value(json_object_get(sum, key));
    char *end = NULL;
    long long x;
    if (!v)
        return json_null();
    x = strtoll(v, &end, 10);
    return end != v && !*end ? json_integer(x) : json_null();
}

static int snap_cmp(const void *a, const void *b)
{
    const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
    json_int_t sx = json_integer_value(json_object_get(x, "sequence-number"));
    json_int_t sy = json_integer_value(json_object_get(y, "sequence-number"));
    if (sx != sy)
        return sx < sy ? -1 : 1;
    sx = json_integer_value(json_object_get(x, "timestamp-ms"));
    sy = json_integer_value(json_object_get(y, "timestamp-ms"));
    return sx < sy ? -1 : sx > sy;
}

rf_rc rf_iceberg_history_snapshots(rf_iceberg_history_t *h, rf_iceberg_line_fn fn, void *opaque,
                                   rf_err_t *err)
{
    const json_t *snaps;
    const json_t **arr;
    size_t n, i;
    int64_t cur;
    rf_rc rc;
    if ((rc = rf__iceberg_table_refresh(h->t, err)))
        return rc;
    snaps = json_object_get(rf__iceberg_meta_json(h->t->meta), "snapshots");
    cur = rf__iceberg_meta_current_snapshot_id(h->t->meta);
    n = json_array_size(snaps);
    arr = rf_xcalloc(n ? n : 1, sizeof(*arr));
    for (i = 0; i < n; i++)
        arr[i] = json_array_get(snaps, i);
    qsort(arr, n, sizeof(*arr), snap_cmp);
    for (i = 0; i < n && !rc; i++) {
        const json_t *s = arr[i], *sum = json_object_get(s, "summary");
        int64_t sid = (int64_t)json_integer_value(json_object_get(s, "snapshot-id"));
        int64_t ts = (int64_t)json_integer_value(json_object_get(s, "timestamp-ms"));
        const json_t *parent = json_object_get(s, "parent-snapshot-id");
        const char *offs = json_string_value(json_object_get(sum, "ragfeed.offsets"));
        const char *cause;
        char tbuf[40];
        json_t *o = json_object(), *jo;
        rf__iceberg_fmt_time(ts, tbuf, sizeof tbuf);
        json_object_set_new(o, "snapshot_id", json_integer(sid));
        json_object_set_new(o, "timestamp_ms", json_integer(ts));
        json_object_set_new(o, "time", json_string(tbuf));
        json_object_set_new(o, "parent_id",
                            json_is_integer(parent) ? json_copy((json_t *)parent) : json_null());
        json_object_set_new(o, "operation", json_copy(json_object_get(sum, "operation")));
        cause = json_string_value(json_object_get(sum, "ragfeed.cause"));
        json_object_set_new(o, "cause", cause ? json_string(cause) : json_null());
        json_object_set_new(o, "embedding_generation",
                            summary_int(sum, "ragfeed.embedding-generation"));
        json_object_set_new(o, "added_records", summary_int(sum, "added-records"));
        json_object_set_new(o, "total_records", summary_int(sum, "total-records"));
        json_object_set_new(o, "added_files", summary_int(sum, "added-data-files"));
        json_object_set_new(o, "total_files", summary_int(sum, "total-data-files"));
        json_object_set_new(o, "seq", summary_int(sum, "ragfeed.seq"));
        jo = offs ? json_loads(offs, 0, NULL) : NULL;
        json_object_set_new(o, "offsets", jo ? jo : json_null());
        json_object_set_new(o, "current", json_boolean(sid == cur));
        rc = emit(fn, opaque, o, err);
        json_decref(o);
    }
    free(arr);
    return rc;
}

/* ==== Rows ==== */

/* A schema of the table by id (the current one when absent). */
static const json_t *schema_by_id(const rf_iceberg_meta_t *m, int64_t id)
{
    size_t i;
    const json_t *s;
    json_array_foreach(json_object_get(rf__iceberg_meta_json(m), "schemas"), i, s)
    {
        if (json_integer_value(json_object_get(s, "schema-id")) == id)
            return s;
    }
    return rf__iceberg_meta_schema(m);
}

static json_t *scalar_json(rf_iceberg_pq_type t, const void *p)
{
    char buf[40];
    int64_t i64;
    int32_t i32;
    float f;
    double d;
    rf_slice_t s;
    switch (t) {
    case RF_ICEBERG_PQ_BOOLEAN:
        return json_boolean(*(const uint8_t *)p);
    case RF_ICEBERG_PQ_INT32:
        memcpy(&i32, p, 4);
        return json_integer(i32);
    case RF_ICEBERG_PQ_INT64:
        memcpy(&i64, p, 8);
        return json_integer(i64);
    case RF_ICEBERG_PQ_FLOAT:
        memcpy(&f, p, 4);
        return isfinite(f) ? json_real(f) : json_null();
    case RF_ICEBERG_PQ_DOUBLE:
        memcpy(&d, p, 8);
        return isfinite(d) ? json_real(d) : json_null();
    case RF_ICEBERG_PQ_TIMESTAMPTZ: {
        memcpy(&i64, p, 8);
        int64_t ms = i64 / 1000 - (i64 % 1000 < 0);
        rf__iceberg_fmt_time(ms, buf, sizeof buf);
        if (i64 % 1000) {
            /* Microseconds: widen ".mmmZ" to ".mmmuuuZ". */
            int64_t us = ((i64 % 1000) + 1000) % 1000;
            size_t len = strlen(buf);
            snprintf(buf + len - 1, sizeof buf - len + 1, "%03dZ", (int)us);
        }
        return json_string(buf);
    }
    case RF_ICEBERG_PQ_DATE: {
        int y, m, dd;
        memcpy(&i32, p, 4);
        rf__iceberg_civil_from_days(i32, &y, &m, &dd);
        snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, dd);
        return json_string(buf);
    }
    case RF_ICEBERG_PQ_STRING:
        memcpy(&s, p, sizeof s);
        return json_stringn((const char *)s.ptr, s.len);
    case RF_ICEBERG_PQ_BINARY: {
        char *hex;
        json_t *j;
        memcpy(&s, p, sizeof s);
        hex = rf_xmalloc(2 * s.len + 1);
        rf__iceberg_hex(s.ptr, s.len, hex);
        j = json_string(hex);
        free(hex);
        return j;
    }
    default:
        return json_null();
    }
}

static json_t *value_json(const rf_iceberg_pqr_col_t *col, const rf_iceberg_pq_value_t *v)
{
    json_t *a;
    size_t esz;
    if (v->is_null)
        return json_null();
    if (!col->is_list) {
        const void *p = &v->v;
        /* The union's members sit at its start: the scalar's bytes are there. */
        if (col->type == RF_ICEBERG_PQ_BOOLEAN) {
            uint8_t b = (uint8_t)(v->v.b != 0);
            return scalar_json(col->type, &b);
        }
        return scalar_json(col->type, p);
    }
    switch (col->type) {
    case RF_ICEBERG_PQ_BOOLEAN:
        esz = 1;
        break;
    case RF_ICEBERG_PQ_INT32:
    case RF_ICEBERG_PQ_DATE:
    case RF_ICEBERG_PQ_FLOAT:
        esz = 4;
        break;
    case RF_ICEBERG_PQ_INT64:
    case RF_ICEBERG_PQ_TIMESTAMPTZ:
    case RF_ICEBERG_PQ_DOUBLE:
        esz = 8;
        break;
    default:
        esz = sizeof(rf_slice_t);
        break;
    }
    a = json_array();
    for (size_t i = 0; i < v->v.list.count; i++) {
        if (v->v.list.nulls && v->v.list.nulls[i])
            json_array_append_new(a, json_null());
        else
            json_array_append_new(
                a, scalar_json(col->type, (const uint8_t *)v->v.list.items + i * esz));
    }
    return a;
}

/* Called with each row of a scan as a JSON object (borrowed); returning non-zero stops. */
typedef rf_rc (*row_fn)(void *opaque, json_t *row, int64_t seq, rf_err_t *err);

/* Reads the rows of files[0..n) with the columns of schema (by field id; a column a file
 * lacks is null).  When id_filter is set, only rows with that id are built. */
static rf_rc scan_files(const rf_iceberg_live_file_t *files, size_t n, const json_t *schema,
                        int with_vectors, const char *id_filter, row_fn fn, void *opaque,
                        rf_err_t *err)
{
    const json_t *fields = json_object_get(schema, "fields");
    size_t nf = json_array_size(fields);
    int32_t *fids = rf_xcalloc(nf ? nf : 1, sizeof(*fids));
    const char **names = rf_xcalloc(nf ? nf : 1, sizeof(*names));
    int *fcol = rf_xcalloc(nf ? nf : 1, sizeof(*fcol));
    int32_t id_fid = 0, seq_fid = 0;
    rf_rc rc = RF_OK;

    for (size_t i = 0; i < nf; i++) {
        const json_t *f = json_array_get(fields, i);
        fids[i] = (int32_t)json_integer_value(json_object_get(f, "id"));
        names[i] = json_string_value(json_object_get(f, "name"));
        if (names[i] && !strcmp(names[i], "id"))
            id_fid = fids[i];
        if (names[i] && !strcmp(names[i], "seq"))
            seq_fid = fids[i];
    }
    for (size_t k = 0; k < n && !rc; k++) {
        const rf_iceberg_live_file_t *lf = &files[k];
        const char *path = rf__iceberg_local_path(lf->path);
        rf_iceberg_pqr_t *r = NULL;
        uint8_t *want = NULL, *want_id = NULL;
        int idcol, seqcol;
        size_t ncols;
        if (id_filter && lf->has_id_bounds) {
            size_t il = strlen(id_filter);
            int lo = memcmp(id_filter, lf->id_lo, il < lf->id_lo_len ? il : lf->id_lo_len);
            int hi = memcmp(id_filter, lf->id_hi, il < lf->id_hi_len ? il : lf->id_hi_len);
            if (lo < 0 || (lo == 0 && il < lf->id_lo_len) || hi > 0 ||
                (hi == 0 && il > lf->id_hi_len))
                continue;
        }
        if (!path) {
            rc = rf_err_set(err, RF_ENOTIMPL, "history: %s is not a local file", lf->path);
            break;
        }
        if ((rc = rf__iceberg_pqr_open(path, &r, err)))
            break;
        ncols = rf__iceberg_pqr_ncols(r);
        want = rf_xcalloc(ncols ? ncols : 1, 1);
        want_id = rf_xcalloc(ncols ? ncols : 1, 1);
        for (size_t i = 0; i < nf; i++) {
            fcol[i] = rf__iceberg_pqr_find(r, fids[i]);
            if (fcol[i] >= 0 && (with_vectors || !names[i] || strcmp(names[i], "vector")))
                want[fcol[i]] = 1;
            else if (fcol[i] >= 0)
                fcol[i] = -2; /* present but not asked for */
        }
        idcol = id_fid ? rf__iceberg_pqr_find(r, id_fid) : -1;
        seqcol = seq_fid ? rf__iceberg_pqr_find(r, seq_fid) : -1;
        if (idcol >= 0)
            want_id[idcol] = 1;
        for (size_t g = 0; g < rf__iceberg_pqr_row_groups(r) && !rc; g++) {
            int64_t nrows = 0;
            if (id_filter) {
                /* The id column alone first: most groups hold no version of the id. */
                int hit = 0;
                if (idcol < 0)
                    break;
                if ((rc = rf__iceberg_pqr_read_group(r, g, want_id, &nrows, err)))
                    break;
                for (int64_t row = 0; row < nrows && !hit; row++) {
                    rf_iceberg_pq_value_t v;
                    rf__iceberg_pqr_value(r, (size_t)idcol, row, &v);
                    hit = !v.is_null && v.v.bytes.len == strlen(id_filter) &&
                          !memcmp(v.v.bytes.ptr, id_filter, v.v.bytes.len);
                }
                if (!hit)
                    continue;
            }
            if ((rc = rf__iceberg_pqr_read_group(r, g, want, &nrows, err)))
                break;
            for (int64_t row = 0; row < nrows && !rc; row++) {
                json_t *o;
                int64_t seq = -1;
                rf_iceberg_pq_value_t v;
                if (id_filter) {
                    rf__iceberg_pqr_value(r, (size_t)idcol, row, &v);
                    if (v.is_null || v.v.bytes.len != strlen(id_filter) ||
                        memcmp(v.v.bytes.ptr, id_filter, v.v.bytes.len))
                        continue;
                }
                if (seqcol >= 0) {
                    rf__iceberg_pqr_value(r, (size_t)seqcol, row, &v);
                    if (!v.is_null)
                        seq = v.v.i64;
                }
                o = json_object();
                for (size_t i = 0; i < nf; i++) {
                    if (!names[i] || fcol[i] == -2)
                        continue;
                    if (fcol[i] < 0) {
                        json_object_set_new(o, names[i], json_null());
                        continue;
                    }
                    rf__iceberg_pqr_value(r, (size_t)fcol[i], row, &v);
                    json_object_set_new(o, names[i],
                                        value_json(rf__iceberg_pqr_col(r, (size_t)fcol[i]), &v));
                }
                rc = fn(opaque, o, seq, err);
                json_decref(o);
            }
        }
        free(want);
        free(want_id);
        rf__iceberg_pqr_close(r);
    }
    free(fids);
    free(names);
    free(fcol);
    return rc;
}

/* ==== Scan ==== */

typedef struct emit_ctx {
    rf_iceberg_line_fn fn;
    void *opaque;
} emit_ctx_t;

static rf_rc emit_row(void *opaque, json_t *row, int64_t seq, rf_err_t *err)
{
    emit_ctx_t *e = opaque;
    (void)seq;
    return emit(e->fn, e->opaque, row, err);
}

rf_rc rf_iceberg_history_scan(rf_iceberg_history_t *h, int64_t snapshot_id, int64_t as_of_ms,
                              int with_vectors, rf_iceberg_line_fn fn, void *opaque, rf_err_t *err)
{
    const rf_iceberg_meta_t *m;
    const json_t *snap;
    rf_iceberg_live_file_t *files = NULL;
    size_t n = 0;
    emit_ctx_t ctx = {fn, opaque};
    rf_rc rc;

    if ((rc = rf__iceberg_table_refresh(h->t, err)))
        return rc;
    m = h->t->meta;
    if (snapshot_id < 0 && as_of_ms >= 0) {
        /* The snapshot that was current at as_of: the last one committed by then. */
        size_t i;
        const json_t *s, *best = NULL;
        json_array_foreach(json_object_get(rf__iceberg_meta_json(m), "snapshots"), i, s)
        {
            json_int_t ts = json_integer_value(json_object_get(s, "timestamp-ms"));
            if (ts <= as_of_ms && (!best || snap_cmp(&s, &best) > 0))
                best = s;
        }
        if (!best) {
            char tbuf[40];
            rf__iceberg_fmt_time(as_of_ms, tbuf, sizeof tbuf);
            return rf_err_set(err, RF_ENOTFOUND, "history: no snapshot of %s.%s at or before %s",
                              h->hc.ns, h->hc.name, tbuf);
        }
        snapshot_id = (int64_t)json_integer_value(json_object_get(best, "snapshot-id"));
    }
    snap = rf__iceberg_meta_snapshot(m, snapshot_id);
    if (!snap) {
        if (snapshot_id < 0)
            return RF_OK; /* a table without snapshots has no rows */
        return rf_err_set(err, RF_ENOTFOUND, "history: %s.%s has no snapshot %" PRId64, h->hc.ns,
                          h->hc.name, snapshot_id);
    }
    if ((rc = rf__iceberg_snapshot_files(m, snapshot_id, &files, &n, err)))
        return rc;
    rc = scan_files(
        files, n, schema_by_id(m, (int64_t)json_integer_value(json_object_get(snap, "schema-id"))),
        with_vectors, NULL, emit_row, &ctx, err);
    rf__iceberg_live_files_free(files, n);
    return rc;
}

/* ==== One record ==== */

typedef struct version {
    int64_t seq;
    char *line;
} version_t;

typedef struct record_ctx {
    version_t *v;
    size_t n, cap;
} record_ctx_t;

static rf_rc keep_version(void *opaque, json_t *row, int64_t seq, rf_err_t *err)
{
    record_ctx_t *rc = opaque;
    json_t *k = json_object();
    char *s;
    (void)err;
    /* The Kafka position as one object; the flat columns stay in scan's output. */
    json_object_set(k, "topic", json_object_get(row, "kafka_topic"));
    json_object_set(k, "partition", json_object_get(row, "kafka_partition"));
    json_object_set(k, "offset", json_object_get(row, "kafka_offset"));
    json_object_del(row, "kafka_topic");
    json_object_del(row, "kafka_partition");
    json_object_del(row, "kafka_offset");
    json_object_set_new(row, "kafka", k);
    s = json_dumps(row, JSON_COMPACT);
    if (!s)
        abort();
    if (rc->n == rc->cap) {
        rc->cap = rc->cap ? rc->cap * 2 : 16;
        rc->v = rf_xrealloc(rc->v, rc->cap * sizeof(*rc->v));
    }
    rc->v[rc->n].seq = seq;
    rc->v[rc->n].line = s;
    rc->n++;
    return RF_OK;
}

static int version_cmp(const void *a, const void *b)
{
    const version_t *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

rf_rc rf_iceberg_history_record(rf_iceberg_history_t *h, const char *id, int with_vectors,
                                rf_iceberg_line_fn fn, void *opaque, rf_err_t *err)
{
    rf_iceberg_live_file_t *files = NULL;
    size_t n = 0;
    record_ctx_t ctx = {NULL, 0, 0};
    const json_t *snap;
    rf_rc rc;

    if (!id)
        return rf_err_set(err, RF_EINVAL, "history: record id missing");
    if ((rc = rf__iceberg_table_refresh(h->t, err)))
        return rc;
    snap = rf__iceberg_meta_snapshot(h->t->meta, -1);
    if (!snap)
        return rf_err_set(err, RF_ENOTFOUND, "history: %s.%s has no snapshot yet", h->hc.ns,
                          h->hc.name);
    if ((rc = rf__iceberg_snapshot_files(h->t->meta, -1, &files, &n, err)))
        return rc;
    rc = scan_files(files, n, rf__iceberg_meta_schema(h->t->meta), with_vectors, id, keep_version,
                    &ctx, err);
    rf__iceberg_live_files_free(files, n);
    if (!rc && ctx.n == 0)
        rc = rf_err_set(err, RF_ENOTFOUND, "history: no version of %s in %s.%s", id, h->hc.ns,
                        h->hc.name);
    if (!rc) {
        qsort(ctx.v, ctx.n, sizeof(*ctx.v), version_cmp);
        for (size_t i = 0; i < ctx.n && !rc; i++) {
            rc = fn(opaque, ctx.v[i].line, strlen(ctx.v[i].line));
            if (rc)
                rf_err_set(err, rc, "history: output failed");
        }
    }
    for (size_t i = 0; i < ctx.n; i++)
        free(ctx.v[i].line);
    free(ctx.v);
    return rc;
}
