/* index_changelog.c - a read-only view of the store's changelog for the Iceberg exporter
 * and other readers outside the writer: its own SQLite connection (WAL, so it never
 * blocks the writer nor sees half a batch), rows in seq order after a given seq.
 * Serves INVARIANT(history-exported-once): rows come back in seq order, each seq once,
 * so a reader that resumes after the seq it last published neither skips nor repeats.
 */
#include "index/index.h"

#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

/* Largest vector a changelog row may carry (floats); larger rows are corrupt. */
#define CL_DIM_MAX 65536

struct rf_index_changelog {
    sqlite3 *db;
    sqlite3_stmt *scan;
    sqlite3_stmt *max_seq;
    char *path;
    float *vec; /* aligned copy of the current row's vector */
    size_t vec_cap;
};

static rf_rc cl_fail(rf_index_changelog_t *cl, int src, rf_err_t *err, const char *what)
{
    rf_rc rc;
    switch (src & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        rc = RF_ECORRUPT;
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        rc = RF_EBUSY;
        break;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
        rc = RF_EIO;
        break;
    default:
        rc = RF_ESTORE;
        break;
    }
    return rf_err_set(err, rc, "changelog %s: %s: %s", cl->path, what,
                      cl->db ? sqlite3_errmsg(cl->db) : sqlite3_errstr(src));
}

void rf_index_changelog_close(rf_index_changelog_t *cl)
{
    if (!cl)
        return;
    sqlite3_finalize(cl->scan);
    sqlite3_finalize(cl->max_seq);
    sqlite3_close(cl->db);
    free(cl->vec);
    free(cl->path);
    free(cl);
}

rf_rc rf_index_changelog_open(const char *state_dir, rf_index_changelog_t **out, rf_err_t *err)
{
    rf_index_changelog_t *cl = NULL;
    struct stat sb;
    rf_rc rc = RF_OK;
    int src;

    *out = NULL;
    if (!state_dir || !*state_dir)
        return rf_err_set(err, RF_EINVAL, "changelog: state directory missing");
    cl = rf_xcalloc(1, sizeof(*cl));
    cl->path = rf_xasprintf("%s/store.db", state_dir);
    /* Opening read-only never creates a store: a missing one is the caller's news. */
    if (stat(cl->path, &sb) != 0) {
        rc = rf_err_sys(err, RF_ENOTFOUND, "changelog: store %s", cl->path);
        goto out;
    }
    src = sqlite3_open_v2(cl->path, &cl->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        rc = cl_fail(cl, src, err, "open");
        goto out;
    }
    sqlite3_extended_result_codes(cl->db, 1);
    sqlite3_busy_timeout(cl->db, 5000);
    src = sqlite3_prepare_v3(
        cl->db,
        "SELECT seq, op, id, vid, source, text, metadata, tenant, vector, model, content_hash,"
        " label, label_score, event_time_ms, source_pos, topic, \"partition\", \"offset\","
        " ingest_time_ms, gen, cause FROM changelog WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        -1, SQLITE_PREPARE_PERSISTENT, &cl->scan, NULL);
    if (src != SQLITE_OK) /* a store from before generations, not yet opened by run */
        src = sqlite3_prepare_v3(
            cl->db,
            "SELECT seq, op, id, vid, source, text, metadata, tenant, vector, model,"
            " content_hash, label, label_score, event_time_ms, source_pos, topic,"
            " \"partition\", \"offset\", ingest_time_ms, 1, NULL FROM changelog"
            " WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            -1, SQLITE_PREPARE_PERSISTENT, &cl->scan, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_prepare_v3(cl->db, "SELECT max(seq) FROM changelog", -1,
                                 SQLITE_PREPARE_PERSISTENT, &cl->max_seq, NULL);
    if (src != SQLITE_OK) {
        rc = cl_fail(cl, src, err, "prepare (is this a ragfeed store?)");
        goto out;
    }
out:
    if (rc) {
        rf_index_changelog_close(cl);
        return rc;
    }
    *out = cl;
    return RF_OK;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

/* Fills chg from the current row of cl->scan; pointers borrow SQLite's column memory
 * (and cl->vec), valid until the next step. */
static rf_rc row_fill(rf_index_changelog_t *cl, rf_index_change_t *chg, rf_err_t *err)
{
    sqlite3_stmt *st = cl->scan;
    const char *op = col_text(st, 1);
    const void *blob;
    int nbytes;

    memset(chg, 0, sizeof(*chg));
    chg->seq = sqlite3_column_int64(st, 0);
    if (!op || (strcmp(op, "upsert") != 0 && strcmp(op, "delete") != 0))
        return rf_err_set(err, RF_ECORRUPT, "changelog %s: seq %lld has op %s", cl->path,
                          (long long)chg->seq, op ? op : "NULL");
    chg->is_delete = op[0] == 'd';
    chg->id = col_text(st, 2);
    if (!chg->id)
        return rf_err_set(err, RF_ECORRUPT, "changelog %s: seq %lld has no id", cl->path,
                          (long long)chg->seq);
    chg->vid = sqlite3_column_int64(st, 3);
    chg->source = col_text(st, 4);
    chg->text = col_text(st, 5);
    chg->metadata_json = col_text(st, 6);
    chg->tenant = col_text(st, 7);
    blob = sqlite3_column_blob(st, 8);
    nbytes = sqlite3_column_bytes(st, 8);
    if (blob && nbytes > 0) {
        size_t dim = (size_t)nbytes / sizeof(float);
        if ((size_t)nbytes % sizeof(float) != 0 || dim > CL_DIM_MAX)
            return rf_err_set(err, RF_ECORRUPT, "changelog %s: seq %lld has a %d-byte vector",
                              cl->path, (long long)chg->seq, nbytes);
        if (dim > cl->vec_cap) {
            cl->vec = rf_xrealloc(cl->vec, dim * sizeof(float));
            cl->vec_cap = dim;
        }
        /* SQLite gives no alignment promise for blobs; vectors are float32 LE (see
         * index_int.h) and this copy makes them a float array. */
        memcpy(cl->vec, blob, (size_t)nbytes);
        chg->vec = cl->vec;
        chg->dim = (int)dim;
    }
    chg->model = col_text(st, 9);
    blob = sqlite3_column_blob(st, 10);
    if (blob && sqlite3_column_bytes(st, 10) == 32)
        chg->content_hash = blob;
    chg->label = col_text(st, 11);
    if (sqlite3_column_type(st, 12) != SQLITE_NULL) {
        chg->has_label_score = 1;
        chg->label_score = sqlite3_column_double(st, 12);
    }
    chg->event_time_ms = sqlite3_column_int64(st, 13);
    chg->source_pos = col_text(st, 14);
    chg->topic = col_text(st, 15);
    if (chg->topic && sqlite3_column_type(st, 16) != SQLITE_NULL &&
        sqlite3_column_type(st, 17) != SQLITE_NULL) {
        chg->has_kafka = 1;
        chg->partition = sqlite3_column_int(st, 16);
        chg->offset = sqlite3_column_int64(st, 17);
    }
    chg->ingest_time_ms = sqlite3_column_int64(st, 18);
    chg->gen = chg->vec ? sqlite3_column_int64(st, 19) : 0;
    chg->reembed = col_text(st, 20) && strcmp(col_text(st, 20), "reembed") == 0;
    return RF_OK;
}

rf_rc rf_index_changelog_scan(rf_index_changelog_t *cl, int64_t after_seq, size_t max,
                              rf_index_change_fn fn, void *opaque, size_t *n_out, rf_err_t *err)
{
    sqlite3_stmt *st;
    size_t n = 0;
    rf_rc rc = RF_OK;
    int src;

    if (n_out)
        *n_out = 0;
    if (!cl || !fn)
        return rf_err_set(err, RF_EINVAL, "changelog scan: handle and callback needed");
    if (max == 0)
        return RF_OK;
    st = cl->scan;
    sqlite3_bind_int64(st, 1, after_seq);
    sqlite3_bind_int64(st, 2, max > (size_t)INT64_MAX ? INT64_MAX : (int64_t)max);
    /* One statement is one read transaction: every row comes from the same snapshot of
     * the store, so a batch is seen whole or not at all. */
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        rf_index_change_t chg;
        if ((rc = row_fill(cl, &chg, err)))
            break;
        if ((rc = fn(opaque, &chg, err)))
            break;
        n++;
    }
    if (!rc && src != SQLITE_DONE)
        rc = cl_fail(cl, src, err, "read changelog");
    sqlite3_reset(st);
    if (n_out)
        *n_out = n;
    return rc;
}

rf_rc rf_index_changelog_max_seq(rf_index_changelog_t *cl, int64_t *seq, rf_err_t *err)
{
    int src;
    rf_rc rc = RF_OK;
    *seq = 0;
    src = sqlite3_step(cl->max_seq);
    if (src == SQLITE_ROW) {
        if (sqlite3_column_type(cl->max_seq, 0) != SQLITE_NULL)
            *seq = sqlite3_column_int64(cl->max_seq, 0);
    } else if (src != SQLITE_DONE) {
        rc = cl_fail(cl, src, err, "read max seq");
    }
    sqlite3_reset(cl->max_seq);
    return rc;
}
