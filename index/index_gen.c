/* index_gen.c - model generations: the store keeps the active generation's vectors in
 * `records` and at most one second generation (being built, or the previous one kept for
 * a rollback) in `gen_vectors`, each vector tagged with the record version it was made
 * for.  A switch is one store transaction plus one swap of the vector index.
 *
 * Upholds INVARIANT(one-record-per-key) across generations (a search reads one
 * generation; a record has at most one vector per generation) and
 * INVARIANT(index-is-a-view) (a switch writes a changelog row per record, so recovery
 * from an older checkpoint replays it).  Writer-thread functions use the writer
 * connection; the others borrow a read connection.
 */
#include "index/index.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "index/index_int.h"

const char *rf_index_gen_state_name(rf_index_gen_state st)
{
    switch (st) {
    case RF_INDEX_GEN_ACTIVE:
        return "active";
    case RF_INDEX_GEN_BUILDING:
        return "building";
    default:
        return "previous";
    }
}

static rf_index_gen_state state_parse(const char *s)
{
    if (s && strcmp(s, "active") == 0)
        return RF_INDEX_GEN_ACTIVE;
    if (s && strcmp(s, "building") == 0)
        return RF_INDEX_GEN_BUILDING;
    return RF_INDEX_GEN_PREVIOUS;
}

/* The "model_id" (else "model") member of a generation's description, or NULL. */
static char *desc_model(const char *desc)
{
    json_t *o = desc ? json_loads(desc, 0, NULL) : NULL;
    const char *m = NULL;
    char *r = NULL;
    if (o) {
        m = json_string_value(json_object_get(o, "model_id"));
        if (!m)
            m = json_string_value(json_object_get(o, "model"));
        if (m)
            r = rf_xstrdup(m);
        json_decref(o);
    }
    return r;
}

static rf_rc prep(sqlite3 *db, const char *sql, sqlite3_stmt **st, rf_err_t *err)
{
    int src = sqlite3_prepare_v2(db, sql, -1, st, NULL);
    if (src != SQLITE_OK)
        return rf__index_db_fail(db, src, err, sql);
    return RF_OK;
}

/* Steps a statement without rows and finalizes it. */
static rf_rc run_once(sqlite3 *db, sqlite3_stmt *st, rf_err_t *err, const char *what)
{
    int src = sqlite3_step(st);
    sqlite3_finalize(st);
    if (src != SQLITE_DONE)
        return rf__index_db_fail(db, src, err, what);
    return RF_OK;
}

/* Reads the active and second generations into ix (under stat_mu). */
static rf_rc gen_load(rf_index_t *ix, int *active_dim, char **active_desc, rf_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int64_t act = 0, sec = 0;
    int sec_dim = 0, act_dim = 0;
    rf_index_gen_state sec_state = RF_INDEX_GEN_BUILDING;
    rf_rc rc;
    int src;
    *active_desc = NULL;
    if ((rc = prep(ix->wdb, "SELECT gen, dim, state, descr FROM generations ORDER BY gen", &st,
                   err)))
        return rc;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        rf_index_gen_state s = state_parse((const char *)sqlite3_column_text(st, 2));
        if (s == RF_INDEX_GEN_ACTIVE) {
            act = sqlite3_column_int64(st, 0);
            act_dim = sqlite3_column_int(st, 1);
            free(*active_desc);
            *active_desc = rf_xstrdup((const char *)sqlite3_column_text(st, 3));
        } else {
            sec = sqlite3_column_int64(st, 0);
            sec_dim = sqlite3_column_int(st, 1);
            sec_state = s;
        }
    }
    sqlite3_finalize(st);
    if (src != SQLITE_DONE)
        return rf__index_db_fail(ix->wdb, src, err, "read generations");
    if (!act)
        return rf_err_set(err, RF_ECORRUPT, "store %s: no active generation", ix->db_path);
    pthread_mutex_lock(&ix->stat_mu);
    ix->gen_active = act;
    ix->gen_second = sec;
    ix->gen_second_dim = sec_dim;
    ix->gen_second_state = sec_state;
    pthread_mutex_unlock(&ix->stat_mu);
    *active_dim = act_dim;
    return RF_OK;
}

rf_rc rf__index_gen_schema(rf_index_t *ix, int64_t ver, const char *desc, int dim_from_store,
                           rf_err_t *err)
{
    int64_t n = 0, meta_dim = -1;
    int act_dim = 0;
    char *act_desc = NULL, *model = NULL;
    sqlite3_stmt *st = NULL;
    rf_rc rc;
    if ((rc = rf__index_db_scalar(ix->wdb, "SELECT COUNT(*) FROM generations", 0, &n, err)))
        return rc;
    if (n == 0) {
        /* A new store, or one from before generations: its vectors are generation 1. */
        int dim = ix->dim;
        if (ver != -1 &&
            (rc = rf__index_db_scalar(ix->wdb, "SELECT value FROM meta WHERE key = 'dim'", -1,
                                      &meta_dim, err)))
            return rc;
        if (meta_dim > 0)
            dim = (int)meta_dim;
        if (dim < 1)
            return rf_err_set(err, RF_ECONFIG, "store %s is new: its vector dim must be given",
                              ix->db_path);
        model = desc_model(desc);
        if ((rc = prep(ix->wdb,
                       "INSERT INTO generations (gen, dim, state, descr, model, created_at_ms,"
                       " activated_at_ms) VALUES (1, ?1, 'active', ?2, ?3, ?4, ?4)",
                       &st, err)))
            goto out;
        sqlite3_bind_int(st, 1, dim);
        sqlite3_bind_text(st, 2, desc ? desc : "{}", -1, SQLITE_STATIC);
        if (model)
            sqlite3_bind_text(st, 3, model, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, rf_now_ms());
        if ((rc = run_once(ix->wdb, st, err, "create generation 1")))
            goto out;
        st = NULL;
    }
    if ((rc = gen_load(ix, &act_dim, &act_desc, err)))
        goto out;
    if (desc && act_desc && strcmp(act_desc, "{}") == 0 && strcmp(desc, "{}") != 0) {
        /* A store made without a description (tools, older builds) learns it now. */
        free(model);
        model = desc_model(desc);
        if ((rc = prep(ix->wdb, "UPDATE generations SET descr = ?1, model = ?2 WHERE gen = ?3", &st,
                       err)))
            goto out;
        sqlite3_bind_text(st, 1, desc, -1, SQLITE_STATIC);
        if (model)
            sqlite3_bind_text(st, 2, model, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, ix->gen_active);
        if ((rc = run_once(ix->wdb, st, err, "describe generation")))
            goto out;
        st = NULL;
    }
    if (act_dim != ix->dim) {
        if (!dim_from_store && ix->dim > 0) {
            rc = rf_err_set(err, RF_ECONFIG,
                            "store %s holds %d-dimensional vectors, configured dim is %d",
                            ix->db_path, act_dim, ix->dim);
            goto out;
        }
        ix->dim = act_dim;
    }
    {
        char *sql = rf_xasprintf("INSERT INTO meta (key, value) VALUES ('dim', %d)"
                                 " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                 ix->dim);
        rc = rf__index_db_exec(ix->wdb, sql, err);
        free(sql);
    }
out:
    free(act_desc);
    free(model);
    return rc;
}

/* ==== Apply hooks (inside rf_index_apply's transaction) ==== */

rf_rc rf__index_gen_apply_op(rf_index_t *ix, const rf_index_op_t *op, int64_t vid, int64_t seq,
                             rf_err_t *err)
{
    sqlite3_stmt *st = ix->wst[RF__W_GV_PUT];
    int dim = ix->gen_second_dim;
    /* Normalised by rf_index_apply: vec is the active generation's, vec2 the second's. */
    if (!op->vec2 || !ix->gen_second || op->gen2 != ix->gen_second)
        return RF_OK;
    sqlite3_bind_int64(st, 1, ix->gen_second);
    sqlite3_bind_int64(st, 2, vid);
    sqlite3_bind_int64(st, 3, seq);
    if (op->content_hash2)
        sqlite3_bind_blob(st, 4, op->content_hash2, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, op->vec2, dim * (int)sizeof(float), SQLITE_STATIC);
    sqlite3_step(st);
    {
        int src = sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (src != SQLITE_OK)
            return rf__index_db_fail(ix->wdb, src, err, "store second-generation vector");
    }
    return RF_OK;
}

rf_rc rf__index_gen_apply_batch(rf_index_t *ix, const rf_index_batch_t *b, rf_err_t *err)
{
    int dim = ix->gen_second_dim;
    int src;
    if (!b->gen)
        return RF_OK;
    for (size_t i = 0; i < b->genvec_cnt; i++) {
        const rf_index_genvec_t *g = &b->genvecs[i];
        sqlite3_stmt *st = ix->wst[RF__W_GV_PUT_IF];
        sqlite3_bind_int64(st, 1, b->gen);
        sqlite3_bind_int64(st, 2, g->vid);
        sqlite3_bind_int64(st, 3, g->rec_seq);
        if (g->content_hash)
            sqlite3_bind_blob(st, 4, g->content_hash, 32, SQLITE_STATIC);
        sqlite3_bind_blob(st, 5, g->vec, dim * (int)sizeof(float), SQLITE_STATIC);
        sqlite3_step(st);
        src = sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (src != SQLITE_OK)
            return rf__index_db_fail(ix->wdb, src, err, "store re-embedded vector");
    }
    if (b->gen_cursor > 0 || b->gen_tokens > 0) {
        sqlite3_stmt *st = ix->wst[RF__W_GEN_CURSOR];
        sqlite3_bind_int64(st, 1, b->gen);
        sqlite3_bind_int64(st, 2, b->gen_cursor);
        sqlite3_bind_int64(st, 3, b->gen_tokens);
        sqlite3_step(st);
        src = sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (src != SQLITE_OK)
            return rf__index_db_fail(ix->wdb, src, err, "store re-embedding progress");
    }
    return RF_OK;
}

/* ==== Queries (any thread) ==== */

int64_t rf_index_gen_active(rf_index_t *ix, int *dim)
{
    /* The snapshot's: the generation and dim searches use right now. */
    rf__index_snap_t *s = rf__index_snap_acquire(ix);
    int64_t g = s ? s->gen : 0;
    if (dim)
        *dim = s ? s->dim : 0;
    rf__index_snap_drop(ix, s);
    return g;
}

int64_t rf_index_gen_second(rf_index_t *ix, int *dim, rf_index_gen_state *state)
{
    int64_t g;
    pthread_mutex_lock(&ix->stat_mu);
    g = ix->gen_second;
    if (dim)
        *dim = ix->gen_second_dim;
    if (state)
        *state = ix->gen_second_state;
    pthread_mutex_unlock(&ix->stat_mu);
    return g;
}

void rf_index_gen_list_free(rf_index_gen_t *gens, size_t n)
{
    for (size_t i = 0; gens && i < n; i++)
        free(gens[i].desc);
    free(gens);
}

rf_rc rf_index_gen_list(rf_index_t *ix, rf_index_gen_t **gens, size_t *n, rf_err_t *err)
{
    rf__index_rconn_t *c = NULL;
    sqlite3_stmt *st = NULL;
    rf_index_gen_t *g = NULL;
    size_t cnt = 0;
    rf_rc rc;
    int src, broken = 0;
    *gens = NULL;
    *n = 0;
    if ((rc = rf__index_rconn_get(ix, &c, err)))
        return rc;
    if ((rc = prep(c->db,
                   "SELECT gen, dim, state, descr, cursor, tokens, created_at_ms,"
                   " activated_at_ms FROM generations ORDER BY gen",
                   &st, err))) {
        broken = 1;
        goto out;
    }
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        g = rf_xrealloc(g, (cnt + 1) * sizeof(*g));
        g[cnt].gen = sqlite3_column_int64(st, 0);
        g[cnt].dim = sqlite3_column_int(st, 1);
        g[cnt].state = state_parse((const char *)sqlite3_column_text(st, 2));
        g[cnt].desc = rf_xstrdup(
            sqlite3_column_text(st, 3) ? (const char *)sqlite3_column_text(st, 3) : "{}");
        g[cnt].cursor = sqlite3_column_int64(st, 4);
        g[cnt].tokens = sqlite3_column_int64(st, 5);
        g[cnt].created_at_ms = sqlite3_column_int64(st, 6);
        g[cnt].activated_at_ms = sqlite3_column_int64(st, 7);
        cnt++;
    }
    if (src != SQLITE_DONE) {
        rc = rf__index_db_fail(c->db, src, err, "list generations");
        rf_index_gen_list_free(g, cnt);
        broken = 1;
        goto out;
    }
    *gens = g;
    *n = cnt;
out:
    sqlite3_finalize(st);
    rf__index_rconn_put(ix, c, broken);
    return rc;
}

/* Records without a vector of gen for their current version (the SQL shared by the
 * counts, the pending scan and the switch). */
#define MISSING_SQL                                                                                \
    "FROM records r WHERE NOT EXISTS (SELECT 1 FROM gen_vectors g WHERE g.gen = ?1 AND"            \
    " g.vid = r.vid AND g.rec_seq = r.seq)"

rf_rc rf_index_gen_missing(rf_index_t *ix, int64_t gen, int64_t *missing, int64_t *total,
                           rf_err_t *err)
{
    rf__index_rconn_t *c = NULL;
    sqlite3_stmt *st = NULL;
    rf_rc rc;
    int src, broken = 0;
    if ((rc = rf__index_rconn_get(ix, &c, err)))
        return rc;
    if ((rc =
             prep(c->db, "SELECT (SELECT COUNT(*) " MISSING_SQL "), (SELECT COUNT(*) FROM records)",
                  &st, err))) {
        broken = 1;
        goto out;
    }
    sqlite3_bind_int64(st, 1, gen);
    src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = rf__index_db_fail(c->db, src, err, "count missing vectors");
        broken = 1;
        goto out;
    }
    if (missing)
        *missing = sqlite3_column_int64(st, 0);
    if (total)
        *total = sqlite3_column_int64(st, 1);
out:
    sqlite3_finalize(st);
    rf__index_rconn_put(ix, c, broken);
    return rc;
}

void rf_index_gen_items_free(rf_index_gen_item_t *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++) {
        free(items[i].id);
        free(items[i].text);
    }
    free(items);
}

rf_rc rf_index_gen_pending(rf_index_t *ix, int64_t gen, int64_t after_vid, size_t max,
                           rf_index_gen_item_t **items, size_t *n, rf_err_t *err)
{
    rf__index_rconn_t *c = NULL;
    sqlite3_stmt *st = NULL;
    rf_index_gen_item_t *it = NULL;
    size_t cnt = 0;
    rf_rc rc;
    int src, broken = 0;
    *items = NULL;
    *n = 0;
    if ((rc = rf__index_rconn_get(ix, &c, err)))
        return rc;
    if ((rc = prep(c->db,
                   gen ? "SELECT r.vid, r.seq, r.id, r.text " MISSING_SQL
                         " AND r.vid > ?2 ORDER BY r.vid LIMIT ?3"
                       : "SELECT r.vid, r.seq, r.id, r.text FROM records r WHERE ?1 = 0 AND"
                         " r.vid > ?2 ORDER BY r.vid LIMIT ?3",
                   &st, err))) {
        broken = 1;
        goto out;
    }
    sqlite3_bind_int64(st, 1, gen);
    sqlite3_bind_int64(st, 2, after_vid);
    sqlite3_bind_int64(st, 3, (int64_t)max);
    it = rf_xmalloc((max ? max : 1) * sizeof(*it));
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *id = sqlite3_column_text(st, 2), *text = sqlite3_column_text(st, 3);
        it[cnt].vid = sqlite3_column_int64(st, 0);
        it[cnt].rec_seq = sqlite3_column_int64(st, 1);
        it[cnt].id = rf_xstrdup(id ? (const char *)id : "");
        it[cnt].text =
            rf_xstrndup(text ? (const char *)text : "", (size_t)sqlite3_column_bytes(st, 3));
        cnt++;
    }
    if (src != SQLITE_DONE) {
        rc = rf__index_db_fail(c->db, src, err, "read records to re-embed");
        rf_index_gen_items_free(it, cnt);
        broken = 1;
        goto out;
    }
    *items = it;
    *n = cnt;
out:
    sqlite3_finalize(st);
    rf__index_rconn_put(ix, c, broken);
    return rc;
}

/* ==== Changes (writer thread) ==== */

static void second_set(rf_index_t *ix, int64_t gen, int dim, rf_index_gen_state state)
{
    pthread_mutex_lock(&ix->stat_mu);
    ix->gen_second = gen;
    ix->gen_second_dim = dim;
    ix->gen_second_state = state;
    pthread_mutex_unlock(&ix->stat_mu);
}

/* Deletes generation gen and its vectors (inside the caller's transaction or alone). */
static rf_rc gen_delete(rf_index_t *ix, int64_t gen, rf_err_t *err)
{
    char *sql = rf_xasprintf("DELETE FROM gen_vectors WHERE gen = %lld;"
                             "DELETE FROM generations WHERE gen = %lld;",
                             (long long)gen, (long long)gen);
    rf_rc rc = rf__index_db_exec(ix->wdb, sql, err);
    free(sql);
    return rc;
}

rf_rc rf_index_gen_create(rf_index_t *ix, int dim, const char *desc, int64_t *gen, rf_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int64_t next = 0;
    char *model = NULL;
    json_t *probe;
    rf_rc rc;
    if (!ix || !desc || !gen)
        return rf_err_set(err, RF_EINVAL, "rf_index_gen_create: NULL argument");
    if (dim < 1 || dim > RF__INDEX_DIM_MAX)
        return rf_err_set(err, RF_EINVAL, "generation dim=%d: must be 1..%d", dim,
                          RF__INDEX_DIM_MAX);
    probe = json_loads(desc, 0, NULL);
    if (!json_is_object(probe)) {
        json_decref(probe);
        return rf_err_set(err, RF_EINVAL, "generation description: not a JSON object");
    }
    json_decref(probe);
    if (ix->gen_second && ix->gen_second_state == RF_INDEX_GEN_BUILDING)
        return rf_err_set(err, RF_EBUSY,
                          "generation %lld is being built; cancel it (drop) before starting "
                          "another",
                          (long long)ix->gen_second);
    if ((rc = rf__index_db_exec(ix->wdb, "BEGIN IMMEDIATE", err)))
        return rc;
    if (ix->gen_second) {
        RF_LOG(RF_LOG_INFO, RF_MOD_INDEX,
               "gen=%lld previous generation dropped: a new one replaces it as the second",
               (long long)ix->gen_second);
        if ((rc = gen_delete(ix, ix->gen_second, err)))
            goto out;
    }
    /* Numbers are never reused: the history keeps the generation of every vector. */
    if ((rc = rf__index_db_scalar(ix->wdb,
                                  "SELECT MAX(m) FROM (SELECT MAX(gen) AS m FROM generations"
                                  " UNION ALL SELECT CAST(value AS INTEGER) FROM meta"
                                  " WHERE key = 'gen_max')",
                                  0, &next, err)))
        goto out;
    next++;
    {
        char *sql = rf_xasprintf("INSERT INTO meta (key, value) VALUES ('gen_max', %lld)"
                                 " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                 (long long)next);
        rc = rf__index_db_exec(ix->wdb, sql, err);
        free(sql);
        if (rc)
            goto out;
    }
    model = desc_model(desc);
    if ((rc = prep(ix->wdb,
                   "INSERT INTO generations (gen, dim, state, descr, model, created_at_ms)"
                   " VALUES (?1, ?2, 'building', ?3, ?4, ?5)",
                   &st, err)))
        goto out;
    sqlite3_bind_int64(st, 1, next);
    sqlite3_bind_int(st, 2, dim);
    sqlite3_bind_text(st, 3, desc, -1, SQLITE_STATIC);
    if (model)
        sqlite3_bind_text(st, 4, model, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, rf_now_ms());
    if ((rc = run_once(ix->wdb, st, err, "create generation")))
        goto out;
    rc = rf__index_db_exec(ix->wdb, "COMMIT", err);
out:
    free(model);
    if (rc) {
        sqlite3_exec(ix->wdb, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    second_set(ix, next, dim, RF_INDEX_GEN_BUILDING);
    *gen = next;
    RF_LOG(RF_LOG_INFO, RF_MOD_INDEX, "gen=%lld dim=%d generation created", (long long)next, dim);
    return RF_OK;
}

rf_rc rf_index_gen_drop(rf_index_t *ix, int64_t gen, rf_err_t *err)
{
    rf_rc rc;
    if (!ix)
        return rf_err_set(err, RF_EINVAL, "rf_index_gen_drop: NULL index");
    if (gen == ix->gen_active)
        return rf_err_set(err, RF_EINVAL, "generation %lld is the active one", (long long)gen);
    if (!gen || gen != ix->gen_second)
        return rf_err_set(err, RF_ENOTFOUND, "no generation %lld to drop", (long long)gen);
    if ((rc = rf__index_db_exec(ix->wdb, "BEGIN IMMEDIATE", err)))
        return rc;
    if ((rc = gen_delete(ix, gen, err)) || (rc = rf__index_db_exec(ix->wdb, "COMMIT", err))) {
        sqlite3_exec(ix->wdb, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    second_set(ix, 0, 0, RF_INDEX_GEN_BUILDING);
    RF_LOG(RF_LOG_INFO, RF_MOD_INDEX, "gen=%lld generation dropped", (long long)gen);
    return RF_OK;
}

rf_rc rf_index_gen_progress(rf_index_t *ix, int64_t gen, int64_t cursor, int64_t tokens,
                            rf_err_t *err)
{
    rf_index_batch_t b;
    memset(&b, 0, sizeof(b));
    b.gen = gen;
    b.gen_cursor = cursor;
    b.gen_tokens = tokens;
    return rf_index_apply(ix, &b, NULL, err);
}

/* The switch's statements, in order; ?1 new generation, ?2 old, ?3 seq before, ?4 now,
 * ?5 new dim, ?6 the new generation's model. */
static const char *const switch_sql[] = {
    /* The old vectors become the second generation, for a rollback, tagged with the
     * version each record gets below (the changelog row numbered in vid order). */
    "INSERT OR REPLACE INTO gen_vectors (gen, vid, rec_seq, content_hash, vector)"
    " SELECT ?2, vid, ?3 + ROW_NUMBER() OVER (ORDER BY vid), content_hash, vector FROM records",
    /* A changelog row per record: the history shows the new vectors, and recovery from a
     * checkpoint taken before the switch replays every record. */
    "INSERT INTO changelog (seq, op, id, vid, source, text, metadata, tenant, vector, model,"
    " content_hash, label, label_score, event_time_ms, source_pos, topic, \"partition\","
    " \"offset\", ingest_time_ms, gen, cause)"
    " SELECT ?3 + ROW_NUMBER() OVER (ORDER BY r.vid), 'upsert', r.id, r.vid, r.source, r.text,"
    " r.metadata, r.tenant, g.vector, ?6, g.content_hash, r.label, r.label_score,"
    " r.event_time_ms, r.source_pos, r.topic, r.\"partition\", r.\"offset\", ?4, ?1, 'reembed'"
    " FROM records r JOIN gen_vectors g ON g.gen = ?1 AND g.vid = r.vid ORDER BY r.vid",
    "UPDATE records SET vector = c.vector, dim = ?5, model = c.model,"
    " content_hash = c.content_hash, gen = ?1, seq = c.seq, updated_at_ms = ?4"
    " FROM changelog c WHERE c.seq > ?3 AND c.vid = records.vid",
    "DELETE FROM gen_vectors WHERE gen = ?1",
    "UPDATE generations SET state = 'previous' WHERE gen = ?2",
    "UPDATE generations SET state = 'active', activated_at_ms = ?4 WHERE gen = ?1",
    "UPDATE meta SET value = ?5 WHERE key = 'dim'",
};

/* Runs one switch statement with the parameters it names; *changes its row count. */
static rf_rc switch_step(rf_index_t *ix, const char *sql, int64_t gen, int64_t old, int64_t seq0,
                         int64_t now, int dim, const char *model, int64_t *changes, rf_err_t *err)
{
    sqlite3_stmt *st = NULL;
    rf_rc rc;
    if ((rc = prep(ix->wdb, sql, &st, err)))
        return rc;
    /* Unused parameters are simply not present in a statement: binding them fails
     * harmlessly with SQLITE_RANGE. */
    sqlite3_bind_int64(st, 1, gen);
    sqlite3_bind_int64(st, 2, old);
    sqlite3_bind_int64(st, 3, seq0);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int(st, 5, dim);
    if (model)
        sqlite3_bind_text(st, 6, model, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    rc = run_once(ix->wdb, st, err, "switch generation");
    if (!rc && changes)
        *changes = sqlite3_changes64(ix->wdb);
    return rc;
}

rf_rc rf_index_gen_activate(rf_index_t *ix, int64_t gen, int64_t *missing, rf_err_t *err)
{
    int64_t old, seq0, now = rf_now_ms(), miss = 0, logged = 0, t0 = rf_mono_ms();
    int64_t t_stop = 0, t_sql = 0, t_build = 0;
    int new_dim, old_dim;
    char *model = NULL;
    rf__index_repl_t *repl = NULL;
    rf_rc rc, rc2;
    if (missing)
        *missing = 0;
    if (!ix)
        return rf_err_set(err, RF_EINVAL, "rf_index_gen_activate: NULL index");
    if (gen == ix->gen_active)
        return rf_err_set(err, RF_EINVAL, "generation %lld is active already", (long long)gen);
    if (!gen || gen != ix->gen_second)
        return rf_err_set(err, RF_ENOTFOUND, "no generation %lld to activate", (long long)gen);
    old = ix->gen_active;
    old_dim = ix->dim;
    new_dim = ix->gen_second_dim;
    seq0 = ix->wseq;
    /* The background threads read ix->dim and the segments: they stop for the switch
     * (searches do not). */
    rf__index_ckpt_thread_stop(ix);
    rf__index_maint_stop(ix);
    t_stop = rf_mono_ms() - t0;
    if ((rc = rf__index_db_exec(ix->wdb, "BEGIN IMMEDIATE", err)))
        goto restart;
    {
        sqlite3_stmt *st = NULL;
        if ((rc = prep(ix->wdb, "SELECT COUNT(*) " MISSING_SQL, &st, err)))
            goto rollback;
        sqlite3_bind_int64(st, 1, gen);
        if (sqlite3_step(st) == SQLITE_ROW)
            miss = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        st = NULL;
        if ((rc = prep(ix->wdb, "SELECT model FROM generations WHERE gen = ?1", &st, err)))
            goto rollback;
        sqlite3_bind_int64(st, 1, gen);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
            model = rf_xstrdup((const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    if (missing)
        *missing = miss;
    if (miss) {
        rc = rf_err_set(err, RF_EAGAIN,
                        "generation %lld lacks a vector for %lld current records; it cannot be "
                        "activated yet",
                        (long long)gen, (long long)miss);
        goto rollback;
    }
    for (size_t i = 0; i < sizeof(switch_sql) / sizeof(switch_sql[0]); i++) {
        int64_t ts = rf_mono_ms();
        if ((rc = switch_step(ix, switch_sql[i], gen, old, seq0, now, new_dim, model,
                              i == 1 ? &logged : NULL, err)))
            goto rollback;
        RF_LOG(RF_LOG_DEBUG, RF_MOD_INDEX, "step=%zu ms=%lld switch statement", i,
               (long long)(rf_mono_ms() - ts));
    }
    /* The new vector index is built from the switched records inside the transaction,
     * aside; searches keep the old one until the commit succeeded. */
    t_sql = rf_mono_ms() - t0;
    if ((rc = rf__index_vec_replace_begin(ix, new_dim, &repl, err)))
        goto rollback;
    t_build = rf_mono_ms() - t0;
    if ((rc = rf__index_db_exec(ix->wdb, "COMMIT", err))) {
        rf__index_vec_replace_abort(ix, repl);
        goto rollback;
    }
    ix->wseq = seq0 + logged;
    pthread_mutex_lock(&ix->stat_mu);
    ix->seq = ix->wseq;
    pthread_mutex_unlock(&ix->stat_mu);
    second_set(ix, old, old_dim, RF_INDEX_GEN_PREVIOUS);
    rf__index_vec_replace_commit(ix, repl, gen, ix->wseq);
    RF_LOG(RF_LOG_INFO, RF_MOD_INDEX,
           "gen=%lld previous=%lld dim=%d records=%lld seq=%lld ms=%lld threads_ms=%lld "
           "sql_ms=%lld build_ms=%lld generation activated",
           (long long)gen, (long long)old, new_dim, (long long)logged, (long long)ix->wseq,
           (long long)(rf_mono_ms() - t0), (long long)t_stop, (long long)t_sql, (long long)t_build);
    goto restart;
rollback:
    sqlite3_exec(ix->wdb, "ROLLBACK", NULL, NULL, NULL);
restart:
    free(model);
    {
        rf_err_t e;
        if ((rc2 = rf__index_maint_start(ix, &e)) || (rc2 = rf__index_ckpt_thread_start(ix, &e))) {
            RF_LOG(RF_LOG_ERROR, RF_MOD_INDEX, "restarting the index threads failed: %s", e.msg);
            if (!rc)
                rc = rf_err_set(err, rc2, "%s", e.msg);
        }
    }
    return rc;
}
