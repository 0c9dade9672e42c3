/* iceberg_export.c - the exporter: reads the store's changelog after the table's own
 * position, writes one Parquet file per day partition (rolled at the target size),
 * appends a snapshot whose summary records the position reached (ragfeed.seq) and the
 * Kafka offsets it corresponds to (ragfeed.offsets), on its own thread every commit
 * interval or row count; rows of a model generation switch get snapshots of their own,
 * marked in the summary (ragfeed.cause, ragfeed.embedding-generation).  Upholds
 * INVARIANT(history-exported-once): the start point is read from the table at every
 * cycle and the commit is a compare-and-swap, so a crash leaves orphan files at most and
 * a lost race is redone from the new position.
 */
#include "iceberg/iceberg.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "iceberg/iceberg_int.h"
#include "index/index.h"

#define EXP_CAS_ATTEMPTS   8
#define EXP_STOP_BUDGET_MS 30000
#define EXP_BACKOFF_MAX_MS 60000

static const double dur_le[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define EXP_BUCKETS (sizeof dur_le / sizeof dur_le[0])

/* How one column of the table's current schema is filled. */
typedef struct colmap {
    rf_iceberg_hcol src;
    const char *name; /* borrowed from the schema copy */
    rf_iceberg_pq_type type;
    int optional;
} colmap_t;

/* A Parquet file being written for one day partition. */
typedef struct day_file {
    int32_t day;
    rf_iceberg_parquet_t *w;
    char *path;
} day_file_t;

/* A closed data file waiting for the commit. */
typedef struct done_file {
    char *path;
    int32_t day;
    rf_iceberg_pq_result_t res;
} done_file_t;

/* One (topic, partition) -> next offset. */
typedef struct offmap {
    char *key; /* "topic/partition" */
    int64_t next;
} offmap_t;

/* State of one export cycle. */
typedef struct cycle {
    struct rf_iceberg_exporter *exp;
    json_t *schema; /* a copy of the schema the files are written with */
    char *schema_text;
    rf_iceberg_pq_column_t *cols;
    colmap_t *map;
    size_t ncols;
    rf_iceberg_pq_value_t *vals;
    char **scratch; /* strings made for one row */
    size_t nscratch, cap_scratch;
    day_file_t *open;
    size_t nopen;
    done_file_t *done;
    size_t ndone, cap_done;
    offmap_t *offs;
    size_t noffs;
    int64_t start_seq, last_seq, rows;
    int64_t gap_rows; /* seqs missing from the changelog (pruned before export) */
    /* What the rows of this snapshot come from: set by its first row.  A row of another
     * cause (or a re-embedding into another generation) ends the scan: it opens the next
     * snapshot. */
    int kind_set;
    int reembed;
    int64_t reembed_gen;
    int cut; /* the scan stopped at such a boundary */
    int64_t file_no;
    rf_iceberg_pq_opts_t opts;
    rf_iceberg_pq_kv_t kv[1];
    float *vecbuf;
} cycle_t;

struct rf_iceberg_exporter {
    const rf_conf_t *cfg;
    rf_iceberg_hist_conf_t hc;
    /* Owned by the exporter thread (or the one-shot caller). */
    rf_iceberg_catalog_t *cat;
    rf_iceberg_table_t *t;
    rf_index_changelog_t *cl;
    int64_t next_due_ms; /* monotonic time of the next interval commit */
    int64_t retry_at_ms; /* monotonic; backoff after a failure */
    int ahead_logged;    /* the table-ahead-of-store error was logged */
    int cut;             /* the last cycle stopped where the cause changed: more is due now */
    /* Thread control and status, under mu. */
    pthread_t thr;
    int thr_started;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* the exporter waits on it for work */
    pthread_cond_t done; /* flush waits on it for progress */
    int stop, kick;
    int64_t flush_seq; /* a flush waits for this seq: export without waiting the interval */
    int64_t snapshot_id, exported_seq, store_seq;
    int64_t rows, files, bytes, commits, failures, consecutive, gap_rows;
    int64_t last_commit_ms, last_commit_dur_ms;
    char last_error[256];
    uint64_t dur_bucket[EXP_BUCKETS + 1];
    double dur_sum;
};

/* ==== Row conversion ==== */

static const char *scratch_keep(cycle_t *c, char *s)
{
    if (c->nscratch == c->cap_scratch) {
        c->cap_scratch = c->cap_scratch ? c->cap_scratch * 2 : 16;
        c->scratch = rf_xrealloc(c->scratch, c->cap_scratch * sizeof(*c->scratch));
    }
    c->scratch[c->nscratch++] = s;
    return s;
}

static void scratch_clear(cycle_t *c)
{
    for (size_t i = 0; i < c->nscratch; i++)
        free(c->scratch[i]);
    c->nscratch = 0;
}

static void set_str(rf_iceberg_pq_value_t *v, const char *s)
{
    if (!s) {
        v->is_null = 1;
        return;
    }
    v->is_null = 0;
    v->v.bytes = rf_slice(s, strlen(s));
}

/* A promoted metadata field converted to its column's type; null when absent or when the
 * value does not fit (the metadata column keeps the original either way). */
static void promoted_value(cycle_t *c, const colmap_t *cm, const json_t *meta,
                           rf_iceberg_pq_value_t *v)
{
    const json_t *x = json_is_object(meta) ? json_object_get(meta, cm->name) : NULL;
    v->is_null = 1;
    if (!x || json_is_null(x))
        return;
    switch (cm->type) {
    case RF_ICEBERG_PQ_STRING:
        if (json_is_string(x)) {
            v->v.bytes = rf_slice(json_string_value(x), json_string_length(x));
        } else {
            char *t = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY);
            if (!t)
                return;
            scratch_keep(c, t);
            v->v.bytes = rf_slice(t, strlen(t));
        }
        v->is_null = 0;
        return;
    case RF_ICEBERG_PQ_INT32:
    case RF_ICEBERG_PQ_INT64: {
        double d;
        if (json_is_integer(x))
            d = (double)json_integer_value(x);
        else if (json_is_real(x) && json_real_value(x) == floor(json_real_value(x)))
            d = json_real_value(x);
        else
            return;
        if (cm->type == RF_ICEBERG_PQ_INT32) {
            if (d < INT32_MIN || d > INT32_MAX)
                return;
            v->v.i32 = json_is_integer(x) ? (int32_t)json_integer_value(x) : (int32_t)d;
        } else {
            if (d < -9.2e18 || d > 9.2e18)
                return;
            v->v.i64 = json_is_integer(x) ? (int64_t)json_integer_value(x) : (int64_t)d;
        }
        v->is_null = 0;
        return;
    }
    case RF_ICEBERG_PQ_FLOAT:
    case RF_ICEBERG_PQ_DOUBLE:
        if (!json_is_number(x))
            return;
        if (cm->type == RF_ICEBERG_PQ_FLOAT)
            v->v.f32 = (float)json_number_value(x);
        else
            v->v.f64 = json_number_value(x);
        v->is_null = 0;
        return;
    case RF_ICEBERG_PQ_BOOLEAN:
        if (!json_is_boolean(x))
            return;
        v->v.b = json_is_true(x);
        v->is_null = 0;
        return;
    case RF_ICEBERG_PQ_TIMESTAMPTZ: {
        int64_t ms;
        if (json_is_integer(x))
            ms = (int64_t)json_integer_value(x);
        else if (!json_is_string(x) || rf_iceberg_time_parse(json_string_value(x), &ms))
            return;
        if (ms > INT64_MAX / 1000 || ms < INT64_MIN / 1000)
            return;
        v->v.i64 = ms * 1000;
        v->is_null = 0;
        return;
    }
    default:
        return;
    }
}

/* Fills c->vals for one changelog row.  *meta is the parsed metadata when promoted
 * columns need it (caller decrefs). */
static void fill_row(cycle_t *c, const rf_index_change_t *chg, json_t **meta)
{
    char *hex;
    for (size_t i = 0; i < c->ncols; i++) {
        const colmap_t *cm = &c->map[i];
        rf_iceberg_pq_value_t *v = &c->vals[i];
        memset(v, 0, sizeof(*v));
        switch (cm->src) {
        case RF_ICEBERG_H_SEQ:
            v->v.i64 = chg->seq;
            break;
        case RF_ICEBERG_H_OP:
            set_str(v, chg->is_delete ? "delete" : "upsert");
            break;
        case RF_ICEBERG_H_ID:
            set_str(v, chg->id);
            break;
        case RF_ICEBERG_H_SOURCE:
            set_str(v, chg->source);
            break;
        case RF_ICEBERG_H_TENANT:
            set_str(v, chg->tenant);
            break;
        case RF_ICEBERG_H_TEXT:
            set_str(v, chg->text);
            break;
        case RF_ICEBERG_H_METADATA:
            set_str(v, chg->metadata_json);
            break;
        case RF_ICEBERG_H_LABEL:
            set_str(v, chg->label);
            break;
        case RF_ICEBERG_H_LABEL_SCORE:
            v->is_null = !chg->has_label_score;
            v->v.f64 = chg->label_score;
            break;
        case RF_ICEBERG_H_MODEL:
            set_str(v, chg->model);
            break;
        case RF_ICEBERG_H_DIM:
            v->is_null = !chg->vec;
            v->v.i32 = chg->dim;
            break;
        case RF_ICEBERG_H_CONTENT_HASH:
            if (!chg->content_hash) {
                v->is_null = 1;
                break;
            }
            hex = rf_xmalloc(65);
            rf__iceberg_hex(chg->content_hash, 32, hex);
            set_str(v, scratch_keep(c, hex));
            break;
        case RF_ICEBERG_H_VECTOR:
            if (!chg->vec || !c->exp->cfg->iceberg_include_vectors) {
                v->is_null = 1;
                break;
            }
            v->v.list.items = chg->vec;
            v->v.list.count = (size_t)chg->dim;
            break;
        case RF_ICEBERG_H_EVENT_TIME:
            v->is_null = chg->event_time_ms == 0;
            v->v.i64 = chg->event_time_ms * 1000;
            break;
        case RF_ICEBERG_H_INGEST_TIME:
            v->v.i64 = chg->ingest_time_ms * 1000;
            break;
        case RF_ICEBERG_H_KAFKA_TOPIC:
            set_str(v, chg->has_kafka ? chg->topic : NULL);
            break;
        case RF_ICEBERG_H_KAFKA_PARTITION:
            v->is_null = !chg->has_kafka;
            v->v.i32 = chg->partition;
            break;
        case RF_ICEBERG_H_KAFKA_OFFSET:
            v->is_null = !chg->has_kafka;
            v->v.i64 = chg->offset;
            break;
        case RF_ICEBERG_H_SOURCE_POSITION:
            set_str(v, chg->source_pos);
            break;
        case RF_ICEBERG_H_EMBEDDING_GENERATION:
            v->is_null = !chg->vec || chg->gen <= 0;
            v->v.i64 = chg->gen;
            break;
        case RF_ICEBERG_H_PROMOTED:
            if (!*meta && chg->metadata_json)
                *meta = json_loads(chg->metadata_json, JSON_DECODE_ANY, NULL);
            promoted_value(c, cm, *meta, v);
            break;
        default:
            v->is_null = 1;
            break;
        }
    }
}

/* Replaces invalid UTF-8 in string values with U+FFFD, so that a bad byte in the store
 * is kept visible rather than stopping the export. */
static void sanitize_strings(cycle_t *c)
{
    for (size_t i = 0; i < c->ncols; i++) {
        rf_iceberg_pq_value_t *v = &c->vals[i];
        rf_buf_t b;
        if (c->cols[i].type != RF_ICEBERG_PQ_STRING || c->cols[i].is_list || v->is_null ||
            rf_utf8_valid(v->v.bytes.ptr, v->v.bytes.len))
            continue;
        rf_buf_init(&b, 0);
        for (size_t j = 0; j < v->v.bytes.len;) {
            size_t k = 1;
            while (k <= 4 && j + k <= v->v.bytes.len && !rf_utf8_valid(v->v.bytes.ptr + j, k))
                k++;
            if (k <= 4 && j + k <= v->v.bytes.len) {
                rf_buf_append(&b, v->v.bytes.ptr + j, k);
                j += k;
            } else {
                rf_buf_append(&b, "\xef\xbf\xbd", 3);
                j++;
            }
        }
        {
            size_t len = 0;
            char *fixed = rf_buf_take(&b, &len);
            v->v.bytes = rf_slice(scratch_keep(c, fixed), len);
        }
    }
}

/* ==== Offsets ==== */

static void offs_note(cycle_t *c, const char *topic, int32_t partition, int64_t next)
{
    char key[512];
    snprintf(key, sizeof key, "%s/%d", topic, (int)partition);
    for (size_t i = 0; i < c->noffs; i++) {
        if (!strcmp(c->offs[i].key, key)) {
            if (next > c->offs[i].next)
                c->offs[i].next = next;
            return;
        }
    }
    c->offs = rf_xrealloc(c->offs, (c->noffs + 1) * sizeof(*c->offs));
    c->offs[c->noffs].key = rf_xstrdup(key);
    c->offs[c->noffs].next = next;
    c->noffs++;
}

/* Seeds the map with the previous snapshot's offsets (ignoring entries that are not
 * "key": integer). */
static void offs_load(cycle_t *c, const char *text)
{
    json_t *o = text ? json_loads(text, 0, NULL) : NULL;
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        if (!json_is_integer(v))
            continue;
        c->offs = rf_xrealloc(c->offs, (c->noffs + 1) * sizeof(*c->offs));
        c->offs[c->noffs].key = rf_xstrdup(key);
        c->offs[c->noffs].next = (int64_t)json_integer_value(v);
        c->noffs++;
    }
    json_decref(o);
}

static char *offs_json(const cycle_t *c)
{
    json_t *o = json_object();
    char *s;
    for (size_t i = 0; i < c->noffs; i++)
        json_object_set_new(o, c->offs[i].key, json_integer(c->offs[i].next));
    s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (!s)
        abort();
    return s;
}

/* ==== Files ==== */

static void cycle_fini(cycle_t *c, int delete_files)
{
    for (size_t i = 0; i < c->nopen; i++) {
        rf__iceberg_parquet_abort(c->open[i].w);
        free(c->open[i].path);
    }
    for (size_t i = 0; i < c->ndone; i++) {
        if (delete_files) {
            const char *p = rf__iceberg_local_path(c->done[i].path);
            if (p)
                unlink(p);
        }
        free(c->done[i].path);
        rf__iceberg_parquet_result_fini(&c->done[i].res);
    }
    for (size_t i = 0; i < c->noffs; i++)
        free(c->offs[i].key);
    scratch_clear(c);
    free(c->scratch);
    free(c->open);
    free(c->done);
    free(c->offs);
    free(c->vals);
    free(c->map);
    free(c->cols);
    free(c->schema_text);
    json_decref(c->schema);
    memset(c, 0, sizeof(*c));
}

static rf_rc close_file(cycle_t *c, size_t i, rf_err_t *err)
{
    day_file_t df = c->open[i];
    done_file_t *d;
    rf_rc rc;
    c->open[i] = c->open[--c->nopen];
    if (c->ndone == c->cap_done) {
        c->cap_done = c->cap_done ? c->cap_done * 2 : 8;
        c->done = rf_xrealloc(c->done, c->cap_done * sizeof(*c->done));
    }
    d = &c->done[c->ndone];
    memset(d, 0, sizeof(*d));
    rc = rf__iceberg_parquet_close(df.w, &d->res, err);
    if (rc) {
        free(df.path);
        return rc;
    }
    d->path = df.path;
    d->day = df.day;
    c->ndone++;
    return RF_OK;
}

static rf_rc open_file(cycle_t *c, int32_t day, int64_t first_seq, size_t *idx, rf_err_t *err)
{
    const char *loc = rf__iceberg_meta_location(c->exp->t->meta);
    const char *local = rf__iceberg_local_path(loc);
    char uuid[37];
    char *dir, *path;
    int y, m, d;
    rf_rc rc;
    rf_iceberg_parquet_t *w = NULL;

    if (!local)
        return rf_err_set(err, RF_EINVAL, "iceberg export: table location %s is not local", loc);
    rf__iceberg_civil_from_days(day, &y, &m, &d);
    dir = rf_xasprintf("%s/data/ingest_time_day=%04d-%02d-%02d", local, y, m, d);
    if ((rc = rf_mkdirs(dir, err))) {
        free(dir);
        return rc;
    }
    rf__iceberg_uuid(uuid);
    path = rf_xasprintf("%s/%020" PRId64 "-%s-%05" PRId64 ".parquet", dir, first_seq, uuid,
                        ++c->file_no);
    free(dir);
    rc = rf__iceberg_parquet_open(path, c->cols, c->ncols, &c->opts, &w, err);
    if (rc) {
        free(path);
        return rc;
    }
    c->open = rf_xrealloc(c->open, (c->nopen + 1) * sizeof(*c->open));
    c->open[c->nopen].day = day;
    c->open[c->nopen].w = w;
    c->open[c->nopen].path = path;
    *idx = c->nopen++;
    return RF_OK;
}

/* The changelog callback: one row into its day's file. */
static rf_rc write_change(void *opaque, const rf_index_change_t *chg, rf_err_t *err)
{
    cycle_t *c = opaque;
    int32_t day = rf__iceberg_day_from_micros(chg->ingest_time_ms * 1000);
    json_t *meta = NULL;
    size_t idx = SIZE_MAX;
    rf_rc rc;

    /* A re-embedding is visible in the history as snapshots of its own: rows of a
     * generation switch and rows of events never share one. */
    if (!c->kind_set) {
        c->kind_set = 1;
        c->reembed = chg->reembed;
        c->reembed_gen = chg->reembed ? chg->gen : 0;
    } else if (chg->reembed != c->reembed || (chg->reembed && chg->gen != c->reembed_gen)) {
        c->cut = 1;
        return RF_ESTOPPED; /* not an error: export_cycle commits what came before */
    }
    for (size_t i = 0; i < c->nopen; i++)
        if (c->open[i].day == day)
            idx = i;
    if (idx == SIZE_MAX && (rc = open_file(c, day, chg->seq, &idx, err)))
        return rc;
    fill_row(c, chg, &meta);
    rc = rf__iceberg_parquet_write_row(c->open[idx].w, c->vals, err);
    if (rc == RF_EINVAL) {
        /* A row the writer refuses is never skipped: bad UTF-8 is repaired; anything else
         * stops the cycle, loudly. */
        rf_err_clear(err);
        sanitize_strings(c);
        rc = rf__iceberg_parquet_write_row(c->open[idx].w, c->vals, err);
    }
    json_decref(meta);
    scratch_clear(c);
    if (rc)
        return rc;
    /* A switch's rows repeat each record's Kafka coordinates but consume nothing. */
    if (chg->has_kafka && chg->topic && !chg->reembed)
        offs_note(c, chg->topic, chg->partition, chg->offset + 1);
    /* The store's seqs are contiguous; a hole means rows left the changelog before they
     * were exported.  They cannot be exported any more: say so, loudly, once. */
    if (chg->seq > c->last_seq + 1) {
        RF_LOG(RF_LOG_ERROR, RF_MOD_ICEBERG,
               "seq=%" PRId64 " missing=%" PRId64 " changelog rows after seq %" PRId64
               " are gone from the store and cannot be exported",
               chg->seq, chg->seq - c->last_seq - 1, c->last_seq);
        c->gap_rows += chg->seq - c->last_seq - 1;
    }
    c->last_seq = chg->seq;
    c->rows++;
    if (rf__iceberg_parquet_size_estimate(c->open[idx].w) >= c->exp->cfg->iceberg_target_file_size)
        return close_file(c, idx, err);
    return RF_OK;
}

/* fsyncs the directories of the new files, so the names survive a power loss before the
 * snapshot that references them is committed. */
static void sync_dirs(const cycle_t *c)
{
    for (size_t i = 0; i < c->ndone; i++) {
        const char *p = rf__iceberg_local_path(c->done[i].path);
        char *dir = p ? rf_xstrdup(p) : NULL;
        char *slash = dir ? strrchr(dir, '/') : NULL;
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            seen |= c->done[j].day == c->done[i].day;
        if (slash && !seen) {
            int fd;
            *slash = '\0';
            fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (fd >= 0) {
                (void)fsync(fd);
                close(fd);
            }
        }
        free(dir);
    }
}

/* Sets up the column map for the table's current schema. */
static rf_rc cycle_init(cycle_t *c, struct rf_iceberg_exporter *exp, rf_err_t *err)
{
    const rf_iceberg_meta_t *m = exp->t->meta;
    rf_rc rc;
    memset(c, 0, sizeof(*c));
    c->exp = exp;
    c->schema = json_deep_copy(rf__iceberg_meta_schema(m));
    c->schema_text = json_dumps(c->schema, JSON_COMPACT);
    if ((rc = rf__iceberg_schema_pq_columns(c->schema, &c->cols, &c->ncols, err)))
        return rc;
    c->map = rf_xcalloc(c->ncols ? c->ncols : 1, sizeof(*c->map));
    c->vals = rf_xcalloc(c->ncols ? c->ncols : 1, sizeof(*c->vals));
    for (size_t i = 0; i < c->ncols; i++) {
        colmap_t *cm = &c->map[i];
        const char *want;
        cm->name = c->cols[i].name;
        cm->type = c->cols[i].type;
        cm->optional = c->cols[i].optional;
        cm->src = rf__iceberg_hcol_by_name(cm->name);
        want = rf__iceberg_hcol_type(cm->src);
        if (cm->src == RF_ICEBERG_H_VECTOR) {
            if (!c->cols[i].is_list || c->cols[i].type != RF_ICEBERG_PQ_FLOAT)
                cm->src = RF_ICEBERG_H_UNKNOWN;
        } else if (cm->src != RF_ICEBERG_H_PROMOTED) {
            static const struct {
                const char *name;
                rf_iceberg_pq_type type;
            } types[] = {{"long", RF_ICEBERG_PQ_INT64},
                         {"string", RF_ICEBERG_PQ_STRING},
                         {"double", RF_ICEBERG_PQ_DOUBLE},
                         {"int", RF_ICEBERG_PQ_INT32},
                         {"timestamptz", RF_ICEBERG_PQ_TIMESTAMPTZ}};
            int ok = 0;
            for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
                ok |= !strcmp(types[k].name, want) && types[k].type == cm->type;
            if (!ok || c->cols[i].is_list)
                cm->src = RF_ICEBERG_H_UNKNOWN;
        } else if (c->cols[i].is_list || cm->type == RF_ICEBERG_PQ_BINARY ||
                   cm->type == RF_ICEBERG_PQ_DATE) {
            cm->src = RF_ICEBERG_H_UNKNOWN;
        }
        if (cm->src == RF_ICEBERG_H_UNKNOWN && !cm->optional)
            return rf_err_set(err, RF_EINVAL,
                              "iceberg export: the table's required column %s is not one this "
                              "exporter can fill",
                              cm->name);
    }
    rf__iceberg_parquet_opts_init(&c->opts);
    c->opts.codec = exp->cfg->iceberg_codec == RF_ICEBERG_CODEC_UNCOMPRESSED
                        ? RF_ICEBERG_PQ_UNCOMPRESSED
                        : RF_ICEBERG_PQ_ZSTD;
    if ((int64_t)c->opts.row_group_bytes > exp->cfg->iceberg_target_file_size)
        c->opts.row_group_bytes = (size_t)exp->cfg->iceberg_target_file_size;
    c->kv[0].key = "iceberg.schema";
    c->kv[0].value = c->schema_text;
    c->opts.kv = c->kv;
    c->opts.nkv = 1;
    return RF_OK;
}

/* ==== One export cycle ==== */

static void status_error(struct rf_iceberg_exporter *exp, const char *msg)
{
    pthread_mutex_lock(&exp->mu);
    snprintf(exp->last_error, sizeof exp->last_error, "%s", msg);
    pthread_mutex_unlock(&exp->mu);
}

/* Exports at most iceberg.commit.rows rows after the table's position as one snapshot.
 * *added is the number of rows committed (0: nothing was waiting). */
static rf_rc export_cycle(struct rf_iceberg_exporter *exp, int64_t *added, rf_err_t *err)
{
    cycle_t c;
    int64_t t0 = rf_mono_ms(), sid = -1, start = 0;
    const char *prev_offsets = NULL;
    rf_rc rc = RF_OK;
    int attempt = 0, have_cycle = 0, maybe_committed = 0;

    *added = 0;
    exp->cut = 0;
    memset(&c, 0, sizeof c);
    for (;;) {
        if ((rc = rf__iceberg_table_refresh(exp->t, err)))
            goto out;
        /* INVARIANT(history-exported-once): where to start comes from the table, never
         * from this process's memory. */
        if ((rc = rf__iceberg_hist_position(exp->t->meta, -1, &start, &prev_offsets, err)))
            goto out;
        if (!have_cycle || c.start_seq != start ||
            !json_equal(c.schema, rf__iceberg_meta_schema(exp->t->meta))) {
            /* First try, or the table moved on: what was written no longer fits. */
            if (have_cycle) {
                RF_LOG(RF_LOG_INFO, RF_MOD_ICEBERG,
                       "seq=%" PRId64 " files=%zu another writer committed; redoing from the "
                       "table's new position",
                       start, c.ndone);
                cycle_fini(&c, 1);
                have_cycle = 0;
            }
            if ((rc = cycle_init(&c, exp, err)))
                goto out;
            have_cycle = 1;
            c.start_seq = start;
            c.last_seq = start;
            offs_load(&c, prev_offsets);
            rc = rf_index_changelog_scan(exp->cl, start, (size_t)exp->cfg->iceberg_commit_rows,
                                         write_change, &c, NULL, err);
            if (rc == RF_ESTOPPED && c.cut) {
                rf_err_clear(err);
                rc = RF_OK;
            }
            while (!rc && c.nopen > 0)
                rc = close_file(&c, 0, err);
            if (rc)
                goto out;
            if (c.rows == 0)
                goto out;
            sync_dirs(&c);
        }
        {
            rf_iceberg_data_file_t *dfs = rf_xcalloc(c.ndone, sizeof(*dfs));
            rf_iceberg_part_value_t *parts = rf_xcalloc(c.ndone, sizeof(*parts));
            char seqtxt[24], gentxt[24];
            char *offs = offs_json(&c);
            rf_iceberg_kv_t props[4];
            size_t nprops = 3;
            snprintf(seqtxt, sizeof seqtxt, "%" PRId64, c.last_seq);
            props[0].key = "ragfeed.seq";
            props[0].value = seqtxt;
            props[1].key = "ragfeed.offsets";
            props[1].value = offs;
            props[2].key = "ragfeed.cause";
            props[2].value = c.reembed ? "reembed" : "events";
            if (c.reembed) {
                snprintf(gentxt, sizeof gentxt, "%" PRId64, c.reembed_gen);
                props[3].key = "ragfeed.embedding-generation";
                props[3].value = gentxt;
                nprops = 4;
            }
            for (size_t i = 0; i < c.ndone; i++) {
                parts[i].value = c.done[i].day;
                dfs[i].path = c.done[i].path;
                dfs[i].pq = &c.done[i].res;
                dfs[i].partition = &parts[i];
                dfs[i].npartition = 1;
            }
            rc = rf__iceberg_table_append(exp->t, dfs, c.ndone, props, nprops, &sid, err);
            /* Only a lost compare-and-swap says for sure that nothing was committed. */
            maybe_committed = rc != RF_OK && rc != RF_EBUSY;
            free(dfs);
            free(parts);
            free(offs);
        }
        if (rc != RF_EBUSY || ++attempt >= EXP_CAS_ATTEMPTS)
            break;
        /* A lost compare-and-swap: another writer (compaction, a second exporter)
         * committed.  Refresh and re-read the position; the files are reused only if the
         * position and schema are unchanged. */
        RF_LOG(RF_LOG_DEBUG, RF_MOD_ICEBERG, "seq=%" PRId64 " attempt=%d commit conflict",
               c.last_seq, attempt);
        rf_err_clear(err);
    }
    if (rc)
        goto out;
    *added = c.rows;
    exp->cut = c.cut;
    {
        int64_t bytes = 0, dur = rf_mono_ms() - t0;
        double secs = (double)dur / 1000.0;
        size_t b = EXP_BUCKETS;
        for (size_t i = 0; i < c.ndone; i++)
            bytes += c.done[i].res.file_size;
        for (size_t i = 0; i < EXP_BUCKETS; i++)
            if (secs <= dur_le[i]) {
                b = i;
                break;
            }
        pthread_mutex_lock(&exp->mu);
        exp->snapshot_id = sid;
        exp->exported_seq = c.last_seq;
        exp->rows += c.rows;
        exp->gap_rows += c.gap_rows;
        exp->files += (int64_t)c.ndone;
        exp->bytes += bytes;
        exp->commits++;
        exp->consecutive = 0;
        exp->last_commit_ms = rf_now_ms();
        exp->last_commit_dur_ms = dur;
        exp->dur_bucket[b]++;
        exp->dur_sum += secs;
        pthread_mutex_unlock(&exp->mu);
        RF_LOG(RF_LOG_DEBUG, RF_MOD_ICEBERG,
               "snapshot=%" PRId64 " seq=%" PRId64 " rows=%" PRId64 " files=%zu bytes=%" PRId64
               " ms=%" PRId64 " cause=%s gen=%" PRId64 " exported",
               sid, c.last_seq, c.rows, c.ndone, bytes, dur, c.reembed ? "reembed" : "events",
               c.reembed_gen);
    }
    cycle_fini(&c, 0);
    return RF_OK;
out:
    if (!rc && have_cycle) {
        /* Nothing to export: the position is what the table says. */
        pthread_mutex_lock(&exp->mu);
        exp->exported_seq = start;
        exp->snapshot_id = rf__iceberg_meta_current_snapshot_id(exp->t->meta);
        pthread_mutex_unlock(&exp->mu);
    }
    /* Files of a failed cycle are deleted when their commit surely did not happen; when a
     * commit failed in a way that leaves its fate unknown they stay, for gc. */
    if (have_cycle)
        cycle_fini(&c, !maybe_committed);
    return rc;
}

/* Runs one cycle and books a failure. */
static rf_rc cycle_booked(struct rf_iceberg_exporter *exp, int64_t *added)
{
    rf_err_t err = {0};
    rf_rc rc = export_cycle(exp, added, &err);
    if (!rc) {
        exp->retry_at_ms = 0;
        return RF_OK;
    }
    {
        int64_t fails, backoff;
        pthread_mutex_lock(&exp->mu);
        exp->failures++;
        fails = ++exp->consecutive;
        snprintf(exp->last_error, sizeof exp->last_error, "%s", err.msg);
        pthread_mutex_unlock(&exp->mu);
        backoff = 500;
        for (int64_t i = 1; i < fails && backoff < EXP_BACKOFF_MAX_MS; i++)
            backoff *= 2;
        if (backoff > EXP_BACKOFF_MAX_MS)
            backoff = EXP_BACKOFF_MAX_MS;
        exp->retry_at_ms = rf_mono_ms() + backoff;
        RF_LOG(fails >= exp->cfg->iceberg_max_failures ? RF_LOG_ERROR : RF_LOG_WARN, RF_MOD_ICEBERG,
               "code=%s failures=%" PRId64 " retry_ms=%" PRId64 " export failed: %s",
               rf_rc_name(rc), fails, backoff, err.msg);
    }
    return rc;
}

/* ==== Set-up ==== */

static void exporter_free(struct rf_iceberg_exporter *exp)
{
    if (!exp)
        return;
    rf__iceberg_table_free(exp->t);
    rf__iceberg_catalog_close(exp->cat);
    rf_index_changelog_close(exp->cl);
    rf__iceberg_hist_conf_fini(&exp->hc);
    pthread_mutex_destroy(&exp->mu);
    pthread_cond_destroy(&exp->cond);
    pthread_cond_destroy(&exp->done);
    free(exp);
}

static rf_rc exporter_new(const rf_conf_t *cfg, struct rf_iceberg_exporter **out, rf_err_t *err)
{
    struct rf_iceberg_exporter *exp = rf_xcalloc(1, sizeof(*exp));
    rf_iceberg_promoted_t *pc = NULL;
    size_t npc = 0;
    rf_rc rc;

    *out = NULL;
    exp->cfg = cfg;
    exp->snapshot_id = -1;
    pthread_mutex_init(&exp->mu, NULL);
    pthread_cond_init(&exp->cond, NULL);
    pthread_cond_init(&exp->done, NULL);
    if ((rc = rf__iceberg_hist_conf_init(cfg, &exp->hc, err)))
        goto out;
    /* Configuration errors first, before anything is created. */
    if ((rc = rf__iceberg_promoted_parse(cfg->iceberg_columns, &pc, &npc, err)))
        goto out;
    if ((rc = rf_index_changelog_open(cfg->state_dir, &exp->cl, err)))
        goto out;
    rc = rf__iceberg_hist_open(cfg, &exp->hc, 1, &exp->cat, &exp->t, err);
    if (rc == RF_EIO || rc == RF_ESTORE || rc == RF_EBUSY) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err ? err->msg : rf_rc_msg(rc));
        rc = rf_err_set(err, RF_EUNAVAIL, "iceberg catalog %s: %s", exp->hc.catalog_path, msg);
    }
    if (rc)
        goto out;
    if ((rc = rf__iceberg_hist_evolve(exp->t, cfg, err)))
        goto out;
    if ((rc = rf__iceberg_hist_position(exp->t->meta, -1, &exp->exported_seq, NULL, err)))
        goto out;
    exp->snapshot_id = rf__iceberg_meta_current_snapshot_id(exp->t->meta);
    RF_LOG(RF_LOG_INFO, RF_MOD_ICEBERG, "table=%s.%s seq=%" PRId64 " location=%s exporter ready",
           exp->hc.ns, exp->hc.name, exp->exported_seq, exp->hc.location);
out:
    rf__iceberg_promoted_free(pc, npc);
    if (rc) {
        exporter_free(exp);
        return rc;
    }
    *out = exp;
    return RF_OK;
}

/* ==== The thread ==== */

static int64_t poll_ms(const rf_conf_t *cfg)
{
    int64_t p = cfg->iceberg_commit_interval_ms / 4;
    return p < 20 ? 20 : p > 500 ? 500 : p;
}

static void *exporter_main(void *arg)
{
    struct rf_iceberg_exporter *exp = arg;
    const rf_conf_t *cfg = exp->cfg;
    rf_thread_name("rf-iceberg");
    /* Background work: searches keep their cores (ingest.nice). */
    if (cfg->ingest_nice && rf_thread_nice((int)cfg->ingest_nice))
        RF_LOG(RF_LOG_DEBUG, RF_MOD_ICEBERG, "exporter keeps its priority");
    if (rf_thread_cpus(&cfg->ingest_cpu_set))
        RF_LOG(RF_LOG_WARN, RF_MOD_ICEBERG, "exporter keeps its CPUs: %s", strerror(errno));
    exp->next_due_ms = rf_mono_ms() + cfg->iceberg_commit_interval_ms;
    for (;;) {
        int64_t now = rf_mono_ms(), max_seq = 0, exported, pending, added = 0;
        int stopping, kicked, flushing, due;
        rf_err_t err = {0};

        pthread_mutex_lock(&exp->mu);
        stopping = exp->stop;
        kicked = exp->kick;
        exp->kick = 0;
        exported = exp->exported_seq;
        flushing = exported < exp->flush_seq;
        pthread_mutex_unlock(&exp->mu);
        if (stopping)
            break;
        if (rf_index_changelog_max_seq(exp->cl, &max_seq, &err)) {
            status_error(exp, err.msg);
            max_seq = exported;
        }
        pthread_mutex_lock(&exp->mu);
        exp->store_seq = max_seq;
        pthread_mutex_unlock(&exp->mu);
        if (max_seq < exported && !exp->ahead_logged) {
            /* A store that restarted from nothing under an old table: its rows up to the
             * table's position would never be exported. */
            RF_LOG(RF_LOG_ERROR, RF_MOD_ICEBERG,
                   "seq=%" PRId64 " table_seq=%" PRId64 " the Iceberg table is ahead of the "
                   "store (was state.dir reset?); rows up to the table's seq are not exported",
                   max_seq, exported);
            status_error(exp, "the Iceberg table is ahead of the store (state.dir reset?)");
            exp->ahead_logged = 1;
        }
        pending = max_seq - exported;
        due = pending > 0 &&
              (kicked || flushing || pending >= cfg->iceberg_commit_rows ||
               now >= exp->next_due_ms) &&
              (kicked || now >= exp->retry_at_ms);
        if (due) {
            /* The interval runs from the start of a cycle, so commits come every interval
             * (or back to back when a cycle takes longer). */
            exp->next_due_ms = now + cfg->iceberg_commit_interval_ms;
            (void)cycle_booked(exp, &added);
            pthread_mutex_lock(&exp->mu);
            pthread_cond_broadcast(&exp->done);
            pthread_mutex_unlock(&exp->mu);
            if (added > 0) {
                /* A commit cut where the cause changed is one commit in parts: the rest
                 * is due now, not an interval later. */
                if (exp->cut)
                    exp->next_due_ms = now;
                continue; /* more may be waiting: look again at once */
            }
        }
        pthread_mutex_lock(&exp->mu);
        if (!exp->stop && !exp->kick) {
            struct timespec ts;
            int64_t wait = poll_ms(cfg);
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&exp->cond, &exp->mu, &ts);
        }
        pthread_mutex_unlock(&exp->mu);
    }
    /* The final export: everything the store holds now, within a time budget. */
    {
        int64_t deadline = rf_mono_ms() + EXP_STOP_BUDGET_MS, target = 0, added = 1;
        rf_err_t err = {0};
        if (rf_index_changelog_max_seq(exp->cl, &target, &err) == RF_OK) {
            while (added > 0 && rf_mono_ms() < deadline) {
                int64_t exported;
                pthread_mutex_lock(&exp->mu);
                exported = exp->exported_seq;
                pthread_mutex_unlock(&exp->mu);
                if (exported >= target)
                    break;
                if (cycle_booked(exp, &added))
                    break;
            }
        }
        pthread_mutex_lock(&exp->mu);
        pthread_cond_broadcast(&exp->done);
        pthread_mutex_unlock(&exp->mu);
        RF_LOG(RF_LOG_INFO, RF_MOD_ICEBERG, "seq=%" PRId64 " exporter stopped", exp->exported_seq);
    }
    return NULL;
}

rf_rc rf_iceberg_exporter_start(const rf_conf_t *cfg, rf_iceberg_exporter_t **out, rf_err_t *err)
{
    struct rf_iceberg_exporter *exp = NULL;
    rf_rc rc;
    *out = NULL;
    if (!cfg)
        return rf_err_set(err, RF_EINVAL, "iceberg exporter: no configuration");
    if (!cfg->iceberg_enabled)
        return RF_OK;
    if ((rc = exporter_new(cfg, &exp, err)))
        return rc;
    if (pthread_create(&exp->thr, NULL, exporter_main, exp) != 0) {
        exporter_free(exp);
        return rf_err_set(err, RF_ENOMEM, "iceberg exporter: cannot start its thread");
    }
    exp->thr_started = 1;
    *out = exp;
    return RF_OK;
}

void rf_iceberg_exporter_stop(rf_iceberg_exporter_t *exp)
{
    if (!exp)
        return;
    if (exp->thr_started) {
        pthread_mutex_lock(&exp->mu);
        exp->stop = 1;
        pthread_cond_broadcast(&exp->cond);
        pthread_mutex_unlock(&exp->mu);
        pthread_join(exp->thr, NULL);
    }
    exporter_free(exp);
}

rf_rc rf_iceberg_exporter_flush(rf_iceberg_exporter_t *exp, int64_t min_seq, int64_t timeout_ms,
                                rf_err_t *err)
{
    int64_t deadline = rf_mono_ms() + timeout_ms;
    rf_rc rc = RF_OK;
    if (!exp)
        return rf_err_set(err, RF_ESTOPPED, "iceberg exporter: disabled");
    if (min_seq < 0) {
        rf_index_changelog_t *cl = NULL;
        if ((rc = rf_index_changelog_open(exp->cfg->state_dir, &cl, err)))
            return rc;
        rc = rf_index_changelog_max_seq(cl, &min_seq, err);
        rf_index_changelog_close(cl);
        if (rc)
            return rc;
    }
    pthread_mutex_lock(&exp->mu);
    exp->kick = 1;
    if (min_seq > exp->flush_seq)
        exp->flush_seq = min_seq;
    pthread_cond_broadcast(&exp->cond);
    while (exp->exported_seq < min_seq) {
        struct timespec ts;
        int64_t left = deadline - rf_mono_ms();
        if (exp->stop) {
            rc = rf_err_set(err, RF_ESTOPPED, "iceberg exporter: stopped");
            break;
        }
        if (left <= 0) {
            rc = rf_err_set(err, RF_ETIMEDOUT,
                            "iceberg exporter: seq %" PRId64 " not exported within %" PRId64
                            " ms (at %" PRId64 "%s%s)",
                            min_seq, timeout_ms, exp->exported_seq, exp->last_error[0] ? "; " : "",
                            exp->last_error);
            break;
        }
        if (left > 200)
            left = 200;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (long)(left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        /* No new kick here: after a success the exporter goes on by itself (flush_seq
         * keeps it going past iceberg.commit.rows), after a failure its backoff applies. */
        pthread_cond_timedwait(&exp->done, &exp->mu, &ts);
    }
    pthread_mutex_unlock(&exp->mu);
    return rc;
}

/* ==== Reporting ==== */

char *rf_iceberg_exporter_status_json(void *opaque)
{
    struct rf_iceberg_exporter *exp = opaque;
    json_t *o;
    char *s;
    if (!exp)
        return rf_xstrdup("{\"enabled\":false}");
    o = json_object();
    pthread_mutex_lock(&exp->mu);
    json_object_set_new(o, "enabled", json_true());
    {
        char *tname = rf_xasprintf("%s.%s", exp->hc.ns, exp->hc.name);
        json_object_set_new(o, "table", json_string(tname));
        free(tname);
    }
    json_object_set_new(o, "catalog", json_string(exp->hc.catalog_path));
    json_object_set_new(o, "snapshot_id",
                        exp->snapshot_id >= 0 ? json_integer(exp->snapshot_id) : json_null());
    json_object_set_new(o, "exported_seq", json_integer(exp->exported_seq));
    json_object_set_new(o, "store_seq", json_integer(exp->store_seq));
    json_object_set_new(
        o, "lag_seq",
        json_integer(exp->store_seq > exp->exported_seq ? exp->store_seq - exp->exported_seq : 0));
    json_object_set_new(o, "rows_exported", json_integer(exp->rows));
    json_object_set_new(o, "changelog_gap_rows", json_integer(exp->gap_rows));
    json_object_set_new(o, "files_written", json_integer(exp->files));
    json_object_set_new(o, "bytes_written", json_integer(exp->bytes));
    json_object_set_new(o, "commits", json_integer(exp->commits));
    json_object_set_new(o, "commit_failures", json_integer(exp->failures));
    json_object_set_new(o, "consecutive_failures", json_integer(exp->consecutive));
    json_object_set_new(o, "last_error",
                        exp->last_error[0] ? json_string(exp->last_error) : json_null());
    json_object_set_new(o, "last_commit_ms",
                        exp->last_commit_ms ? json_integer(exp->last_commit_ms) : json_null());
    json_object_set_new(o, "last_commit_duration_ms", json_integer(exp->last_commit_dur_ms));
    pthread_mutex_unlock(&exp->mu);
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        abort();
    return s;
}

void rf_iceberg_exporter_metrics(void *opaque, rf_buf_t *out)
{
    struct rf_iceberg_exporter *exp = opaque;
    static const struct {
        const char *name, *type, *help;
    } m[] = {
        {"ragfeed_iceberg_commits_total", "counter",
         "Iceberg snapshots committed by the exporter."},
        {"ragfeed_iceberg_rows_exported_total", "counter", "Changelog rows exported to Iceberg."},
        {"ragfeed_iceberg_files_written_total", "counter", "Parquet data files committed."},
        {"ragfeed_iceberg_bytes_written_total", "counter",
         "Bytes of Parquet data files committed."},
        {"ragfeed_iceberg_commit_failures_total", "counter", "Export cycles that failed."},
        {"ragfeed_iceberg_consecutive_failures", "gauge",
         "Export cycles that failed since the last success."},
        {"ragfeed_iceberg_exported_seq", "gauge",
         "Highest store seq in the table (its current ragfeed.seq)."},
        {"ragfeed_iceberg_lag_seq", "gauge", "Store seq minus exported seq."},
        {"ragfeed_iceberg_last_commit_timestamp_seconds", "gauge",
         "Wall-clock time of the last commit (0: none yet)."},
        {"ragfeed_iceberg_changelog_gap_rows_total", "counter",
         "Changelog seqs that were gone from the store before they could be exported."},
    };
    int64_t v[sizeof m / sizeof m[0]];
    uint64_t buckets[EXP_BUCKETS + 1];
    double sum;
    uint64_t cum = 0;
    if (!exp)
        return;
    pthread_mutex_lock(&exp->mu);
    v[0] = exp->commits;
    v[1] = exp->rows;
    v[2] = exp->files;
    v[3] = exp->bytes;
    v[4] = exp->failures;
    v[5] = exp->consecutive;
    v[6] = exp->exported_seq;
    v[7] = exp->store_seq > exp->exported_seq ? exp->store_seq - exp->exported_seq : 0;
    v[8] = exp->last_commit_ms / 1000;
    v[9] = exp->gap_rows;
    memcpy(buckets, exp->dur_bucket, sizeof buckets);
    sum = exp->dur_sum;
    pthread_mutex_unlock(&exp->mu);
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (rf_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRId64 "\n", m[i].name, m[i].help,
                          m[i].name, m[i].type, m[i].name, v[i]))
            return;
    if (rf_buf_puts(out, "# HELP ragfeed_iceberg_commit_duration_seconds Time of one export "
                         "cycle: reading the changelog, writing Parquet and committing.\n"
                         "# TYPE ragfeed_iceberg_commit_duration_seconds histogram\n"))
        return;
    for (size_t i = 0; i <= EXP_BUCKETS; i++) {
        cum += buckets[i];
        if (i < EXP_BUCKETS)
            rf_buf_printf(out,
                          "ragfeed_iceberg_commit_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                          dur_le[i], cum);
        else
            rf_buf_printf(
                out, "ragfeed_iceberg_commit_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n",
                cum);
    }
    rf_buf_printf(out,
                  "ragfeed_iceberg_commit_duration_seconds_sum %.6f\n"
                  "ragfeed_iceberg_commit_duration_seconds_count %" PRIu64 "\n",
                  sum, cum);
}

const char *rf_iceberg_exporter_unready(void *opaque, char *buf, size_t n)
{
    struct rf_iceberg_exporter *exp = opaque;
    const char *reason = NULL;
    if (!exp)
        return NULL;
    pthread_mutex_lock(&exp->mu);
    if (exp->consecutive >= exp->cfg->iceberg_max_failures) {
        snprintf(buf, n, "iceberg: %" PRId64 " commits failed in a row: %s", exp->consecutive,
                 exp->last_error);
        reason = buf;
    }
    pthread_mutex_unlock(&exp->mu);
    return reason;
}

/* ==== One-shot ==== */

rf_rc rf_iceberg_export_run(const rf_conf_t *cfg, int64_t *rows, int64_t *commits, rf_err_t *err)
{
    struct rf_iceberg_exporter *exp = NULL;
    int64_t target = 0, added = 0;
    rf_rc rc;
    if (rows)
        *rows = 0;
    if (commits)
        *commits = 0;
    if ((rc = exporter_new(cfg, &exp, err)))
        return rc;
    if ((rc = rf_index_changelog_max_seq(exp->cl, &target, err)))
        goto out;
    while (exp->exported_seq < target) {
        if ((rc = export_cycle(exp, &added, err)))
            goto out;
        if (added == 0)
            break; /* the table is at (or past) the store: another writer got there */
        if (rows)
            *rows += added;
        if (commits)
            (*commits)++;
    }
out:
    exporter_free(exp);
    return rc;
}
