/* index_store.c - the SQLite store: schema, the one-transaction-per-batch apply, the
 * read-connection pool, record reads, status and the in-memory offsets mirror.
 *
 * Upholds INVARIANT(offsets-with-state) (record changes, changelog rows, dead letters and
 * next offsets commit in one transaction) and INVARIANT(one-record-per-key) (one row per
 * id; an update keeps the row and its vid).  Threads: rf_index_apply runs on the writer
 * thread with the writer connection; everything else here borrows a read connection.
 */
#include "index/index.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "index/index_int.h"

/* ==== SQLite plumbing ==== */

/* Maps an SQLite result code to ours: corruption is RF_ECORRUPT, I/O is RF_EIO. */
static rf_rc map_sqlite(int src)
{
    switch (src & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return RF_ECORRUPT;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_FULL:
        return RF_EIO;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return RF_EBUSY;
    case SQLITE_NOMEM:
        return RF_ENOMEM;
    default:
        return RF_ESTORE;
    }
}

static rf_rc db_fail(sqlite3 *db, int src, rf_err_t *err, const char *what)
{
    return rf_err_set(err, map_sqlite(src), "store: %s: %s", what,
                      db ? sqlite3_errmsg(db) : sqlite3_errstr(src));
}

static rf_rc db_exec(sqlite3 *db, const char *sql, rf_err_t *err)
{
    int src = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (src != SQLITE_OK)
        return db_fail(db, src, err, sql);
    return RF_OK;
}

static rf_rc db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out, rf_err_t *err)
{
    int src = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    if (src != SQLITE_OK)
        return db_fail(db, src, err, "prepare");
    return RF_OK;
}

/* Resets a statement and drops its bindings, which may point into the caller's batch. */
static void st_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Steps a statement that returns no rows, then resets it. */
static rf_rc st_run(sqlite3 *db, sqlite3_stmt *st, rf_err_t *err, const char *what)
{
    int src = sqlite3_step(st);
    st_done(st);
    if (src != SQLITE_DONE)
        return db_fail(db, src, err, what);
    return RF_OK;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_i64_or_null(sqlite3_stmt *st, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

/* A column as a new string, or NULL when the column is NULL. */
static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    if (!s)
        return NULL;
    return rf_xstrndup((const char *)s, (size_t)sqlite3_column_bytes(st, i));
}

/* A scalar integer query on db; *out keeps dflt when there is no row or it is NULL. */
static rf_rc db_scalar(sqlite3 *db, const char *sql, int64_t dflt, int64_t *out, rf_err_t *err)
{
    sqlite3_stmt *st = NULL;
    rf_rc rc;
    int src;
    *out = dflt;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, sqlite3_errcode(db), err, sql);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_NULL)
            *out = sqlite3_column_int64(st, 0);
        rc = RF_OK;
    } else if (src == SQLITE_DONE) {
        rc = RF_OK;
    } else {
        rc = db_fail(db, src, err, sql);
    }
    sqlite3_finalize(st);
    return rc;
}

/* SQLite counts every allocation under one process-wide mutex unless told otherwise
 * (SQLITE_CONFIG_MEMSTATUS): a search reading hits would wait on each allocation for the
 * writer's, and for as long as the writer, holding that mutex, waits for a core.  The
 * setting must come before SQLite initialises, hence at load time; nothing here reads
 * SQLite's memory statistics. */
__attribute__((constructor)) static void sqlite_no_memstatus(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* ==== Schema ==== */

/* "partition" and "offset" are SQL keywords, hence quoted everywhere. */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);"
    "CREATE TABLE IF NOT EXISTS records ("
    " vid INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, source TEXT,"
    " text TEXT NOT NULL, metadata TEXT, tenant TEXT, vector BLOB NOT NULL,"
    " dim INTEGER NOT NULL, model TEXT, content_hash BLOB, label TEXT, label_score REAL,"
    " event_time_ms INTEGER, source_pos TEXT, topic TEXT, \"partition\" INTEGER,"
    " \"offset\" INTEGER, seq INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL,"
    " gen INTEGER NOT NULL DEFAULT 1);"
    "CREATE INDEX IF NOT EXISTS records_source ON records(source);"
    "CREATE TABLE IF NOT EXISTS changelog ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " op TEXT NOT NULL CHECK (op IN ('upsert', 'delete')), id TEXT NOT NULL,"
    " vid INTEGER NOT NULL, source TEXT, text TEXT, metadata TEXT, tenant TEXT,"
    " vector BLOB, model TEXT, content_hash BLOB, label TEXT, label_score REAL,"
    " event_time_ms INTEGER, source_pos TEXT, topic TEXT, \"partition\" INTEGER,"
    " \"offset\" INTEGER, ingest_time_ms INTEGER NOT NULL, gen INTEGER, cause TEXT);"
    "CREATE TABLE IF NOT EXISTS offsets (topic TEXT NOT NULL, \"partition\" INTEGER NOT NULL,"
    " next_offset INTEGER NOT NULL, PRIMARY KEY (topic, \"partition\"));"
    "CREATE TABLE IF NOT EXISTS dead_letters (rowid INTEGER PRIMARY KEY, topic TEXT,"
    " \"partition\" INTEGER, \"offset\" INTEGER, key BLOB, value BLOB, reason TEXT NOT NULL,"
    " time_ms INTEGER NOT NULL);"
    /* Model generations (index_gen.c): the active one's vectors live in `records`; the
     * second one's in gen_vectors, each tagged with the record version it was made for. */
    "CREATE TABLE IF NOT EXISTS generations (gen INTEGER PRIMARY KEY, dim INTEGER NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('active', 'building', 'previous')),"
    " descr TEXT NOT NULL, model TEXT, cursor INTEGER NOT NULL DEFAULT 0,"
    " tokens INTEGER NOT NULL DEFAULT 0, created_at_ms INTEGER NOT NULL,"
    " activated_at_ms INTEGER);"
    "CREATE TABLE IF NOT EXISTS gen_vectors (gen INTEGER NOT NULL, vid INTEGER NOT NULL,"
    " rec_seq INTEGER NOT NULL, content_hash BLOB, vector BLOB NOT NULL,"
    " PRIMARY KEY (gen, vid)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS gen_vectors_hash ON gen_vectors(content_hash);"
    "CREATE INDEX IF NOT EXISTS gen_vectors_vid ON gen_vectors(vid);";

static const char *const wsql[RF__W_COUNT] = {
    [RF__W_BEGIN] = "BEGIN IMMEDIATE",
    [RF__W_COMMIT] = "COMMIT",
    [RF__W_ROLLBACK] = "ROLLBACK",
    [RF__W_REC_LOOKUP] = "SELECT vid, source, tenant FROM records WHERE id = ?1",
    [RF__W_REC_INSERT] =
        "INSERT INTO records (vid, id, source, text, metadata, tenant, vector, dim, model,"
        " content_hash, label, label_score, event_time_ms, source_pos, topic, \"partition\","
        " \"offset\", seq, updated_at_ms, gen)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
        " ?18, ?19, ?20)",
    /* Neither id (the key it was found by) nor source (RF__W_REC_SOURCE, when it changes):
     * SQLite rewrites the index entries of every column in the SET list, changed or not. */
    [RF__W_REC_UPDATE] =
        "UPDATE records SET text = ?4, metadata = ?5, tenant = ?6,"
        " vector = ?7, dim = ?8, model = ?9, content_hash = ?10, label = ?11,"
        " label_score = ?12, event_time_ms = ?13, source_pos = ?14, topic = ?15,"
        " \"partition\" = ?16, \"offset\" = ?17, seq = ?18, updated_at_ms = ?19, gen = ?20"
        " WHERE vid = ?1",
    [RF__W_REC_SOURCE] = "UPDATE records SET source = ?2 WHERE vid = ?1",
    [RF__W_REC_DELETE] = "DELETE FROM records WHERE vid = ?1",
    [RF__W_REC_TRUNCATE] = "DELETE FROM records WHERE source = ?1 RETURNING vid, id, tenant",
    [RF__W_LOG_INSERT] =
        "INSERT INTO changelog (seq, op, id, vid, source, text, metadata, tenant, vector,"
        " model, content_hash, label, label_score, event_time_ms, source_pos, topic,"
        " \"partition\", \"offset\", ingest_time_ms, gen)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
        " ?18, ?19, ?20)",
    [RF__W_DEAD_INSERT] = "INSERT INTO dead_letters (topic, \"partition\", \"offset\", key,"
                          " value, reason, time_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [RF__W_OFF_UPSERT] = "INSERT INTO offsets (topic, \"partition\", next_offset)"
                         " VALUES (?1, ?2, ?3) ON CONFLICT (topic, \"partition\")"
                         " DO UPDATE SET next_offset = excluded.next_offset",
    [RF__W_META_SET] = "INSERT INTO meta (key, value) VALUES (?1, ?2)"
                       " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [RF__W_GV_PUT] = "INSERT OR REPLACE INTO gen_vectors (gen, vid, rec_seq, content_hash, vector)"
                     " VALUES (?1, ?2, ?3, ?4, ?5)",
    [RF__W_GV_PUT_IF] = "INSERT OR REPLACE INTO gen_vectors (gen, vid, rec_seq, content_hash,"
                        " vector) SELECT ?1, vid, seq, ?4, ?5 FROM records"
                        " WHERE vid = ?2 AND seq = ?3",
    [RF__W_GV_DELETE] = "DELETE FROM gen_vectors WHERE vid = ?1",
    [RF__W_GEN_CURSOR] = "UPDATE generations SET cursor = max(cursor, ?2), tokens = tokens + ?3"
                         " WHERE gen = ?1",
};

/* Creates the tables on a new store; on an existing one checks the schema version
 * (upgrading versions 1 and 2) and the active generation's dim.  Version 3 has no index on
 * records.seq: every update paid a random page of it, and the two readers by seq (the
 * recovery scan, the recent records) find the same rows through the changelog, whose key
 * is the seq and which has a row for every version a record ever had. */
static rf_rc schema_init(rf_index_t *ix, rf_err_t *err)
{
    int64_t ver = -1;
    rf_rc rc;
    if ((rc = db_exec(ix->wdb, "BEGIN IMMEDIATE", err)))
        return rc;
    /* Every table is created when missing (an older store gets the new ones), then the
     * version says whether columns must be added. */
    if ((rc = db_exec(ix->wdb, schema_sql, err)) ||
        (rc = db_scalar(ix->wdb, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &ver,
                        err)))
        goto out;
    if (ver != -1 && (ver < 1 || ver > RF__INDEX_SCHEMA_VERSION)) {
        rc = rf_err_set(err, RF_ECORRUPT, "store %s: schema version %lld, this build reads %d",
                        ix->db_path, (long long)ver, RF__INDEX_SCHEMA_VERSION);
        goto out;
    }
    if (ver == 1 && (rc = db_exec(ix->wdb,
                                  "ALTER TABLE records ADD COLUMN gen INTEGER NOT NULL DEFAULT 1;"
                                  "ALTER TABLE changelog ADD COLUMN gen INTEGER;"
                                  "ALTER TABLE changelog ADD COLUMN cause TEXT;",
                                  err)))
        goto out;
    if (ver == -1) {
        char *sql = rf_xasprintf("INSERT INTO meta (key, value) VALUES ('schema_version', %d),"
                                 " ('created_at_ms', %lld)",
                                 RF__INDEX_SCHEMA_VERSION, (long long)rf_now_ms());
        rc = db_exec(ix->wdb, sql, err);
        free(sql);
    } else if (ver < RF__INDEX_SCHEMA_VERSION) {
        /* Version 3 drops the index on records.seq, version 4 the one on content_hash
         * (index_content.c keeps that map): each cost every update random page writes. */
        char *sql = rf_xasprintf("DROP INDEX IF EXISTS records_seq;"
                                 "DROP INDEX IF EXISTS records_hash;"
                                 "UPDATE meta SET value = %d WHERE key = 'schema_version'",
                                 RF__INDEX_SCHEMA_VERSION);
        rc = db_exec(ix->wdb, sql, err);
        free(sql);
    }
    if (rc || (rc = rf__index_gen_schema(ix, ver, ix->open_gen_desc, ix->open_dim_from_store, err)))
        goto out;
    rc = db_exec(ix->wdb, "COMMIT", err);
out:
    if (rc)
        sqlite3_exec(ix->wdb, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

rf_rc rf__index_db_fail(sqlite3 *db, int src, rf_err_t *err, const char *what)
{
    return db_fail(db, src, err, what);
}

rf_rc rf__index_db_exec(sqlite3 *db, const char *sql, rf_err_t *err)
{
    return db_exec(db, sql, err);
}

rf_rc rf__index_db_scalar(sqlite3 *db, const char *sql, int64_t dflt, int64_t *out, rf_err_t *err)
{
    return db_scalar(db, sql, dflt, out, err);
}

/* ==== In-memory mirrors (stat_mu) ==== */

/* Sets (topic, partition) -> next in the mirror.  Caller holds stat_mu. */
static void off_set_locked(rf_index_t *ix, const char *topic, int32_t partition, int64_t next)
{
    for (size_t i = 0; i < ix->off_cnt; i++) {
        if (ix->offs[i].partition == partition && strcmp(ix->offs[i].topic, topic) == 0) {
            ix->offs[i].next_offset = next;
            return;
        }
    }
    ix->offs = rf_xrealloc(ix->offs, (ix->off_cnt + 1) * sizeof(*ix->offs));
    ix->offs[ix->off_cnt].topic = rf_xstrdup(topic);
    ix->offs[ix->off_cnt].partition = partition;
    ix->offs[ix->off_cnt].next_offset = next;
    ix->off_cnt++;
}

static rf_rc load_state(rf_index_t *ix, rf_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int64_t seq, recs, dead, newest;
    rf_rc rc;
    int src;
    if ((rc = db_scalar(ix->wdb, "SELECT seq FROM sqlite_sequence WHERE name = 'changelog'", 0,
                        &seq, err)) ||
        (rc = db_scalar(ix->wdb, "SELECT COUNT(*) FROM records", 0, &recs, err)) ||
        (rc = db_scalar(ix->wdb, "SELECT COUNT(*) FROM dead_letters", 0, &dead, err)) ||
        (rc = db_scalar(ix->wdb, "SELECT value FROM meta WHERE key = 'newest_event_time_ms'", 0,
                        &newest, err)))
        return rc;
    if (sqlite3_prepare_v2(ix->wdb, "SELECT topic, \"partition\", next_offset FROM offsets", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(ix->wdb, sqlite3_errcode(ix->wdb), err, "read offsets");
    pthread_mutex_lock(&ix->stat_mu);
    ix->seq = seq;
    ix->record_cnt = recs;
    ix->dead_cnt = dead;
    ix->newest_event_ms = newest;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *topic = (const char *)sqlite3_column_text(st, 0);
        off_set_locked(ix, topic ? topic : "", (int32_t)sqlite3_column_int(st, 1),
                       sqlite3_column_int64(st, 2));
    }
    pthread_mutex_unlock(&ix->stat_mu);
    if (src != SQLITE_DONE)
        rc = db_fail(ix->wdb, src, err, "read offsets");
    sqlite3_finalize(st);
    ix->wseq = seq;
    return rc;
}

/* ==== Open and close ==== */

rf_rc rf__index_store_open(rf_index_t *ix, rf_err_t *err)
{
    rf_rc rc;
    int src;
    char *mode = NULL;
    sqlite3_stmt *st = NULL;

    src = sqlite3_open_v2(ix->db_path, &ix->wdb,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                          rf__index_walvfs());
    if (src != SQLITE_OK)
        return db_fail(ix->wdb, src, err, "open");
    sqlite3_extended_result_codes(ix->wdb, 1);
    sqlite3_busy_timeout(ix->wdb, 5000);
    /* WAL: readers never block the writer nor see a half-applied batch.  FULL syncs the
     * WAL at every commit, so an acknowledged batch survives power loss too (NORMAL
     * would survive a process crash only); the cost is one fsync per batch.  The VFS this
     * connection writes its WAL through (index_walvfs.c) relies on FULL as well: the sync
     * is what puts a commit's frames in the file before other connections may read them. */
    if (sqlite3_prepare_v2(ix->wdb, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = db_fail(ix->wdb, sqlite3_errcode(ix->wdb), err, "journal_mode=WAL");
        goto out;
    }
    mode = col_dup(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (!mode || strcmp(mode, "wal") != 0) {
        rc = rf_err_set(err, RF_ESTORE, "store %s: journal_mode is %s, WAL needed", ix->db_path,
                        mode ? mode : "unknown");
        goto out;
    }
    /* 32 MiB of cache: the pages the writer changes and those it reads back; the rest
     * comes from the kernel's page cache (there is no mapping, see below).  A
     * bigger one only costs page faults as it grows: with 128 MiB the first 30 s of 10,000
     * upserts/s took 10% more CPU and 6% more time per batch than with 16 MiB, with 1 GiB
     * twice the CPU. */
    if ((rc = db_exec(ix->wdb, "PRAGMA synchronous = FULL", err)) ||
        (rc = db_exec(ix->wdb, "PRAGMA foreign_keys = OFF", err)) ||
        (rc = db_exec(ix->wdb, "PRAGMA cache_size = -32768", err)))
        goto out;
    /* No memory mapping of the store: each page the writer first reads through a mapping
     * is a page fault, and on a virtual machine with shadow page tables the faults on
     * file pages of one thread stall the others of the process (measured here: a thread
     * reading memory saw its p99.9 go from 0.17 to 0.56 ms and its worst from 0.8 to 56
     * ms while another thread of the process took faults on a mapped file).  read()
     * copies the page instead; the writer's CPU per batch did not grow. */
    if ((rc = db_exec(ix->wdb, "PRAGMA mmap_size = 0", err)))
        goto out;
    /* A WAL that grew large (a model switch is one transaction) goes back to 64 MiB when
     * it starts over from the top. */
    if ((rc = db_exec(ix->wdb, "PRAGMA journal_size_limit = 67108864", err)))
        goto out;
    if ((rc = schema_init(ix, err)) || (rc = load_state(ix, err)) ||
        (rc = rf__index_lsn_load(ix, err)))
        goto out;
    for (int i = 0; i < RF__W_COUNT; i++) {
        if ((rc = db_prepare(ix->wdb, wsql[i], &ix->wst[i], err)))
            goto out;
    }
out:
    sqlite3_finalize(st);
    free(mode);
    return rc;
}

static void rconn_close(rf__index_rconn_t *c)
{
    if (!c)
        return;
    sqlite3_finalize(c->by_vid);
    sqlite3_finalize(c->by_id);
    sqlite3_finalize(c->begin);
    sqlite3_finalize(c->end);
    sqlite3_close(c->db);
    free(c);
}

void rf__index_store_close(rf_index_t *ix)
{
    rf__index_rconn_t *c;
    while ((c = ix->pool)) {
        ix->pool = c->next;
        rconn_close(c);
    }
    ix->pool_idle = 0;
    for (int i = 0; i < RF__W_COUNT; i++) {
        sqlite3_finalize(ix->wst[i]);
        ix->wst[i] = NULL;
    }
    if (ix->wdb) {
        /* Folds the WAL back into the database so the next open starts small. */
        sqlite3_wal_checkpoint_v2(ix->wdb, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        sqlite3_close(ix->wdb);
        ix->wdb = NULL;
    }
    for (size_t i = 0; i < ix->off_cnt; i++)
        free(ix->offs[i].topic);
    free(ix->offs);
    ix->offs = NULL;
    ix->off_cnt = 0;
    rf__index_lsn_free(ix);
}

/* ==== WAL checkpoints ====
 *
 * SQLite's own automatic checkpoint runs inside the commit that passes 1,000 WAL frames:
 * it copies them into the database and syncs it, and the writer waited 150-300 ms every
 * second or two under steady ingest.  A thread that checkpoints on its own connection
 * takes that copy off the writer, but alone it never lets the WAL start over: the writer
 * restarts the WAL only at the start of a transaction that finds every frame copied, and
 * a busy writer has always added frames since the thread's last pass (a long run grew
 * the WAL to gigabytes).  So the commit hook below does both: past wal_kick_frames it
 * wakes the thread; once the thread has copied all but a short tail (wal_tail_frames), the
 * commit copies that tail itself, which is quick, and the next transaction starts the WAL
 * over.  Past wal_max_frames the commit copies the rest itself (RESTART) when the thread
 * is idle; while the thread's pass runs, commits go on and the WAL grows, up to four times
 * wal_max_frames (256 MiB), where a commit waits for the pass and copies the rest, so the
 * WAL never grows much past that.  (Waiting at wal_max_frames, the writer slept 30-530 ms about
 * once a second at 10,000 upserts/s: the thread runs at background priority and its pass
 * finishes late when the cores are busy.  With twice it as the hard bound, commits still
 * waited 0-3 times per 10 s; with four times, none did in three runs, at 9,025-9,708
 * upserts/s against 8,472-9,787 in six.) */

int rf__index_wal_action(const rf_index_t *ix, int64_t frames, int64_t copied, int busy)
{
    if (frames < ix->wal_kick_frames)
        return RF__WAL_NONE;
    if (frames >= 4 * (int64_t)ix->wal_max_frames)
        return RF__WAL_ALL_WAIT;
    if (frames >= ix->wal_max_frames)
        return busy ? RF__WAL_NONE : RF__WAL_ALL;
    if (frames - copied <= ix->wal_tail_frames)
        return RF__WAL_TAIL;
    return busy ? RF__WAL_NONE : RF__WAL_KICK;
}

static void *wal_main(void *arg)
{
    rf_index_t *ix = arg;
    /* Background work: a starved pass only leaves more for the commits to copy, while a
     * pass that takes a core from a search shows in its latency.  So on any CPU it runs
     * SCHED_IDLE.  Kept to CPUs of its own (ingest.cpus), it runs at nice 19 instead: no
     * search waits for it there, and it gets the idle time of those CPUs before the HNSW
     * builder (SCHED_IDLE), with which it split it before.  At 10,000 upserts/s on a 1M
     * store, with searches on the other CPU: 9,573-10,000 upserts/s in six runs against
     * 8,303-10,000 in six alternating ones, search p99 alike (bench_index). */
    int own = ix->work_cpus.cnt > 0;
    rf__index_work_thread(ix, "rf-index-wal", !own);
    if (own && rf_thread_nice(19))
        RF_LOG(RF_LOG_DEBUG, RF_MOD_INDEX, "rf-index-wal keeps its priority");
    pthread_mutex_lock(&ix->wal_mu);
    for (;;) {
        while (!ix->wal_stop && !ix->wal_kick)
            pthread_cond_wait(&ix->wal_cond, &ix->wal_mu);
        if (ix->wal_stop)
            break;
        pthread_mutex_unlock(&ix->wal_mu);
        int log = 0, done = 0;
        /* PASSIVE: copies what no reader still needs; never waits for the writer. */
        int src =
            sqlite3_wal_checkpoint_v2(ix->wal_db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        pthread_mutex_lock(&ix->wal_mu);
        ix->wal_kick = 0;
        if (src == SQLITE_OK && log >= 0) {
            ix->wal_log = log;
            ix->wal_done = done;
            __atomic_add_fetch(&ix->wal_bg_runs, 1, __ATOMIC_RELAXED);
        }
        pthread_cond_broadcast(&ix->wal_cond); /* a commit may wait for this pass */
    }
    pthread_mutex_unlock(&ix->wal_mu);
    return NULL;
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    rf_index_t *ix = arg;
    int act, log = 0, done = 0;
    (void)name;
    if (frames < ix->wal_kick_frames)
        return SQLITE_OK;
    pthread_mutex_lock(&ix->wal_mu);
    int64_t copied = ix->wal_done;
    if (ix->wal_log > frames)
        copied = 0; /* the WAL started over since the thread's last pass */
    act = rf__index_wal_action(ix, frames, copied, ix->wal_kick);
    if (act == RF__WAL_KICK) {
        ix->wal_kick = 1;
        pthread_cond_broadcast(&ix->wal_cond);
    }
    pthread_mutex_unlock(&ix->wal_mu);
    if (act == RF__WAL_NONE || act == RF__WAL_KICK)
        return SQLITE_OK;
    int copy = act == RF__WAL_TAIL ? SQLITE_CHECKPOINT_PASSIVE : SQLITE_CHECKPOINT_RESTART;
    int64_t t0 = rf_mono_us();
    int src = sqlite3_wal_checkpoint_v2(db, NULL, copy, &log, &done);
    if (src == SQLITE_BUSY && act == RF__WAL_ALL_WAIT) {
        /* The thread's pass holds the checkpoint lock: wait for it (up to 5 s), then
         * RESTART, which waits (busy timeout) for readers of older frames, so that the next
         * transaction surely starts the WAL over. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 5;
        __atomic_add_fetch(&ix->wal_waits, 1, __ATOMIC_RELAXED);
        pthread_mutex_lock(&ix->wal_mu);
        while (ix->wal_kick && pthread_cond_timedwait(&ix->wal_cond, &ix->wal_mu, &ts) != ETIMEDOUT)
            ;
        pthread_mutex_unlock(&ix->wal_mu);
        src = sqlite3_wal_checkpoint_v2(db, NULL, copy, &log, &done);
    }
    if (src == SQLITE_OK) {
        __atomic_add_fetch(&ix->wal_inline_runs, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&ix->wal_inline_frames, done - copied, __ATOMIC_RELAXED);
        __atomic_add_fetch(&ix->wal_inline_us, rf_mono_us() - t0, __ATOMIC_RELAXED);
        pthread_mutex_lock(&ix->wal_mu);
        ix->wal_log = log;
        ix->wal_done = done;
        pthread_mutex_unlock(&ix->wal_mu);
    }
    return SQLITE_OK;
}

rf_rc rf__index_wal_start(rf_index_t *ix, rf_err_t *err)
{
    int src = sqlite3_open_v2(ix->db_path, &ix->wal_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                              NULL);
    if (src != SQLITE_OK)
        return db_fail(ix->wal_db, src, err, "open the checkpoint connection");
    sqlite3_busy_timeout(ix->wal_db, 1000);
    /* A connection is in WAL mode only once it has read the database: until then a
     * checkpoint on it does nothing and says -1. */
    if (sqlite3_exec(ix->wal_db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) !=
        SQLITE_OK)
        return db_fail(ix->wal_db, sqlite3_errcode(ix->wal_db), err, "read the store");
    ix->wal_kick_frames = 1000; /* SQLite's own default */
    ix->wal_tail_frames = 256;
    ix->wal_max_frames = 16384; /* 64 MiB of 4 KiB pages */
    ix->wal_log = ix->wal_done = 0;
    ix->wal_stop = ix->wal_kick = 0;
    pthread_mutex_init(&ix->wal_mu, NULL);
    pthread_cond_init(&ix->wal_cond, NULL);
    if (pthread_create(&ix->wal_thr, NULL, wal_main, ix)) {
        pthread_cond_destroy(&ix->wal_cond);
        pthread_mutex_destroy(&ix->wal_mu);
        return rf_err_sys(err, RF_EIO, "start the WAL checkpoint thread");
    }
    ix->wal_started = 1;
    /* Replaces SQLite's automatic checkpoint on the writer connection. */
    sqlite3_wal_hook(ix->wdb, wal_hook, ix);
    return RF_OK;
}

void rf__index_wal_stop(rf_index_t *ix)
{
    if (ix->wal_started) {
        sqlite3_wal_hook(ix->wdb, NULL, NULL);
        pthread_mutex_lock(&ix->wal_mu);
        ix->wal_stop = 1;
        pthread_cond_broadcast(&ix->wal_cond);
        pthread_mutex_unlock(&ix->wal_mu);
        pthread_join(ix->wal_thr, NULL);
        pthread_cond_destroy(&ix->wal_cond);
        pthread_mutex_destroy(&ix->wal_mu);
        ix->wal_started = 0;
    }
    if (ix->wal_db) {
        sqlite3_close(ix->wal_db);
        ix->wal_db = NULL;
    }
}

/* ==== Read connections ==== */

#define REC_COLS                                                                                   \
    "id, text, metadata, label, tenant, topic, \"partition\", \"offset\", event_time_ms,"          \
    " seq, vector, source, label_score, model, content_hash, source_pos, updated_at_ms, gen"

static rf_rc rconn_open(rf_index_t *ix, rf__index_rconn_t **out, rf_err_t *err)
{
    rf__index_rconn_t *c = rf_xcalloc(1, sizeof(*c));
    rf_rc rc;
    int src =
        sqlite3_open_v2(ix->db_path, &c->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        rc = db_fail(c->db, src, err, "open read connection");
        goto out;
    }
    sqlite3_busy_timeout(c->db, 5000);
    if ((rc = db_prepare(c->db, "SELECT " REC_COLS " FROM records WHERE vid = ?1", &c->by_vid,
                         err)) ||
        (rc =
             db_prepare(c->db, "SELECT " REC_COLS " FROM records WHERE id = ?1", &c->by_id, err)) ||
        (rc = db_prepare(c->db, "BEGIN", &c->begin, err)) ||
        (rc = db_prepare(c->db, "COMMIT", &c->end, err)))
        goto out;
out:
    if (rc) {
        rconn_close(c);
        return rc;
    }
    *out = c;
    return RF_OK;
}

rf_rc rf__index_rconn_get(rf_index_t *ix, rf__index_rconn_t **out, rf_err_t *err)
{
    rf__index_rconn_t *c;
    pthread_mutex_lock(&ix->pool_mu);
    c = ix->pool;
    if (c) {
        ix->pool = c->next;
        ix->pool_idle--;
    }
    pthread_mutex_unlock(&ix->pool_mu);
    if (c) {
        c->next = NULL;
        *out = c;
        return RF_OK;
    }
    return rconn_open(ix, out, err);
}

void rf__index_rconn_put(rf_index_t *ix, rf__index_rconn_t *c, int broken)
{
    if (!c)
        return;
    pthread_mutex_lock(&ix->pool_mu);
    if (!broken && ix->pool_idle < RF__INDEX_POOL_IDLE) {
        c->next = ix->pool;
        ix->pool = c;
        ix->pool_idle++;
        c = NULL;
    }
    pthread_mutex_unlock(&ix->pool_mu);
    rconn_close(c);
}

/* ==== Recovery reads ==== */

rf_rc rf__index_store_changed_vids(rf_index_t *ix, int64_t after, int64_t **vids, size_t *n,
                                   int64_t *rows, rf_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int64_t *v = NULL;
    size_t cnt = 0, cap = 0;
    rf_rc rc = RF_OK;
    int src;
    *vids = NULL;
    *n = 0;
    {
        char *sql =
            rf_xasprintf("SELECT COUNT(*) FROM changelog WHERE seq > %lld", (long long)after);
        rc = db_scalar(ix->wdb, sql, 0, rows, err);
        free(sql);
        if (rc)
            return rc;
    }
    if (sqlite3_prepare_v2(ix->wdb, "SELECT DISTINCT vid FROM changelog WHERE seq > ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(ix->wdb, sqlite3_errcode(ix->wdb), err, "read changelog");
    sqlite3_bind_int64(st, 1, after);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 256;
            v = rf_xrealloc(v, cap * sizeof(*v));
        }
        v[cnt++] = sqlite3_column_int64(st, 0);
    }
    if (src != SQLITE_DONE) {
        rc = db_fail(ix->wdb, src, err, "read changelog");
        free(v);
    } else {
        *vids = v;
        *n = cnt;
    }
    sqlite3_finalize(st);
    return rc;
}

rf_rc rf__index_store_scan_records(rf_index_t *ix, int64_t after, rf__index_scan_fn fn,
                                   void *opaque, int64_t *cnt_out, rf_err_t *err)
{
    sqlite3_stmt *st = NULL;
    size_t vbytes = (size_t)ix->dim * sizeof(float);
    float *vec = rf_xmalloc(vbytes);
    int64_t total = 0;
    rf_rc rc = RF_OK;
    int src;
    /* After a checkpoint, the records whose current version is newer: each has exactly
     * one changelog row with its seq (CROSS JOIN keeps the changelog outside). */
    if (sqlite3_prepare_v2(ix->wdb,
                           after < 0 ? "SELECT vid, vector, source, tenant, label, metadata,"
                                       " event_time_ms, content_hash FROM records"
                                     : "SELECT r.vid, r.vector, r.source, r.tenant, r.label,"
                                       " r.metadata, r.event_time_ms, r.content_hash"
                                       " FROM changelog c"
                                       " CROSS JOIN records r ON r.vid = c.vid AND r.seq = c.seq"
                                       " WHERE c.seq > ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(ix->wdb, sqlite3_errcode(ix->wdb), err, "read records");
        goto out;
    }
    sqlite3_bind_int64(st, 1, after);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        rf__index_scan_rec_t r;
        const void *blob = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        if (!blob || len != vbytes) {
            rc = rf_err_set(err, RF_ECORRUPT,
                            "store %s: record vid=%lld has a %zu-byte vector, expected %zu",
                            ix->db_path, (long long)sqlite3_column_int64(st, 0), len, vbytes);
            goto out;
        }
        /* Copied: the blob need not be aligned for floats. */
        memcpy(vec, blob, vbytes);
        r.vid = sqlite3_column_int64(st, 0);
        r.vec = vec;
        r.source = (const char *)sqlite3_column_text(st, 2);
        r.tenant = (const char *)sqlite3_column_text(st, 3);
        r.label = (const char *)sqlite3_column_text(st, 4);
        r.metadata = (const char *)sqlite3_column_text(st, 5);
        r.event_time_ms = sqlite3_column_int64(st, 6);
        r.hkey = sqlite3_column_bytes(st, 7) == 32 ? rf__index_hkey(sqlite3_column_blob(st, 7)) : 0;
        if ((rc = fn(opaque, &r, err)))
            goto out;
        total++;
    }
    if (src != SQLITE_DONE) {
        rc = db_fail(ix->wdb, src, err, "read records");
        goto out;
    }
    if (cnt_out)
        *cnt_out = total;
out:
    sqlite3_finalize(st);
    free(vec);
    return rc;
}

/* ==== Apply ==== */

/* One record touched by a batch: its final vector (NULL: gone) decides the FAISS add. */
typedef struct touch {
    int64_t vid;
    size_t order;
    const rf_index_op_t *op; /* the upsert that wrote the vector; NULL: gone */
} touch_t;

typedef struct apply_ctx {
    touch_t *touch;
    size_t touch_n, touch_cap;
    int64_t *rm; /* vids that were in FAISS before the batch */
    size_t rm_n, rm_cap;
    rf_index_lsn_t *lsn; /* sources whose highest LSN the batch raises (index_lsn.c) */
    size_t lsn_n;
} apply_ctx_t;

static void ctx_touch(apply_ctx_t *c, int64_t vid, const rf_index_op_t *op, int existed)
{
    if (c->touch_n == c->touch_cap) {
        c->touch_cap = c->touch_cap ? c->touch_cap * 2 : 64;
        c->touch = rf_xrealloc(c->touch, c->touch_cap * sizeof(*c->touch));
    }
    c->touch[c->touch_n].vid = vid;
    c->touch[c->touch_n].order = c->touch_n;
    c->touch[c->touch_n].op = op;
    c->touch_n++;
    if (existed) {
        if (c->rm_n == c->rm_cap) {
            c->rm_cap = c->rm_cap ? c->rm_cap * 2 : 64;
            c->rm = rf_xrealloc(c->rm, c->rm_cap * sizeof(*c->rm));
        }
        c->rm[c->rm_n++] = vid;
    }
}

static int touch_cmp(const void *a, const void *b)
{
    const touch_t *x = a, *y = b;
    if (x->vid != y->vid)
        return x->vid < y->vid ? -1 : 1;
    return x->order < y->order ? -1 : (x->order > y->order);
}

static rf_rc check_str(const char *s, size_t max, size_t i, const char *what, rf_err_t *err)
{
    size_t len = strlen(s);
    if (len > max)
        return rf_err_set(err, RF_ETOOBIG, "batch op %zu: %s of %zu bytes, at most %zu", i, what,
                          len, max);
    return RF_OK;
}

/* Rejects a malformed batch before the transaction starts, naming the bad element. */
static rf_rc validate_batch(const rf_index_t *ix, const rf_index_batch_t *b, rf_err_t *err)
{
    rf_rc rc;
    if ((b->op_cnt && !b->ops) || (b->dead_cnt && !b->dead) || (b->offset_cnt && !b->offsets))
        return rf_err_set(err, RF_EINVAL, "batch: a count is set but its array is NULL");
    for (size_t i = 0; i < b->op_cnt; i++) {
        const rf_index_op_t *op = &b->ops[i];
        switch (op->kind) {
        case RF_INDEX_UPSERT:
            if (!op->id || !*op->id || !op->text || !op->vec)
                return rf_err_set(err, RF_EINVAL, "batch op %zu: upsert needs id, text and vec", i);
            if ((rc = check_str(op->id, RF__INDEX_ID_MAX, i, "id", err)) ||
                (rc = check_str(op->text, RF__INDEX_TEXT_MAX, i, "text", err)) ||
                (op->metadata_json &&
                 (rc = check_str(op->metadata_json, RF__INDEX_TEXT_MAX, i, "metadata", err))))
                return rc;
            if (op->gen && op->gen != ix->gen_active && !(op->vec2 && op->gen2 == ix->gen_active))
                return rf_err_set(err, RF_EINVAL,
                                  "batch op %zu (%s): no vector of the active generation %lld", i,
                                  op->id, (long long)ix->gen_active);
            for (int d = 0; d < ix->dim; d++) {
                if (!isfinite(op->vec[d]))
                    return rf_err_set(err, RF_EINVAL, "batch op %zu (%s): vec[%d] is not finite", i,
                                      op->id, d);
            }
            break;
        case RF_INDEX_DELETE:
            if (!op->id || !*op->id)
                return rf_err_set(err, RF_EINVAL, "batch op %zu: delete needs an id", i);
            if ((rc = check_str(op->id, RF__INDEX_ID_MAX, i, "id", err)))
                return rc;
            break;
        case RF_INDEX_TRUNCATE:
            if (!op->source || !*op->source)
                return rf_err_set(err, RF_EINVAL, "batch op %zu: truncate needs a source", i);
            break;
        default:
            return rf_err_set(err, RF_EINVAL, "batch op %zu: unknown kind %d", i, (int)op->kind);
        }
    }
    for (size_t i = 0; i < b->dead_cnt; i++) {
        const rf_index_dead_t *d = &b->dead[i];
        if (!d->reason || (d->key.len && !d->key.ptr) || (d->value.len && !d->value.ptr))
            return rf_err_set(err, RF_EINVAL, "batch dead letter %zu: missing reason or bytes", i);
        if (d->key.len > RF__INDEX_DEAD_MAX || d->value.len > RF__INDEX_DEAD_MAX)
            return rf_err_set(err, RF_ETOOBIG, "batch dead letter %zu: key or value over %zu bytes",
                              i, RF__INDEX_DEAD_MAX);
    }
    for (size_t i = 0; i < b->offset_cnt; i++) {
        const rf_index_offset_t *o = &b->offsets[i];
        if (!o->topic || o->partition < 0 || o->next_offset < 0)
            return rf_err_set(err, RF_EINVAL, "batch offset %zu: bad topic/partition/offset", i);
    }
    if (b->gen && (b->gen != ix->gen_second || ix->gen_second_state != RF_INDEX_GEN_BUILDING))
        return rf_err_set(err, RF_EINVAL, "batch: generation %lld is not being built",
                          (long long)b->gen);
    if (b->genvec_cnt && (!b->genvecs || !b->gen))
        return rf_err_set(err, RF_EINVAL, "batch: generation vectors without their generation");
    for (size_t i = 0; i < b->genvec_cnt; i++) {
        if (!b->genvecs[i].vec)
            return rf_err_set(err, RF_EINVAL, "batch generation vector %zu: NULL vec", i);
        for (int d = 0; d < ix->gen_second_dim; d++) {
            if (!isfinite(b->genvecs[i].vec[d]))
                return rf_err_set(err, RF_EINVAL,
                                  "batch generation vector %zu: vec[%d] is not finite", i, d);
        }
    }
    return RF_OK;
}

/* Binds ?2..?19 of REC_INSERT / REC_UPDATE. */
static void bind_record(rf_index_t *ix, sqlite3_stmt *st, const rf_index_op_t *op, int64_t seq,
                        int64_t now)
{
    bind_text(st, 2, op->id);
    bind_text(st, 3, op->source);
    bind_text(st, 4, op->text);
    bind_text(st, 5, op->metadata_json);
    bind_text(st, 6, op->tenant);
    sqlite3_bind_blob(st, 7, op->vec, ix->dim * (int)sizeof(float), SQLITE_STATIC);
    sqlite3_bind_int(st, 8, ix->dim);
    bind_text(st, 9, op->model);
    if (op->content_hash)
        sqlite3_bind_blob(st, 10, op->content_hash, 32, SQLITE_STATIC);
    bind_text(st, 11, op->label);
    if (op->label)
        sqlite3_bind_double(st, 12, op->label_score);
    bind_i64_or_null(st, 13, op->event_time_ms);
    bind_text(st, 14, op->source_pos);
    bind_text(st, 15, op->topic);
    sqlite3_bind_int(st, 16, op->partition);
    sqlite3_bind_int64(st, 17, op->offset);
    sqlite3_bind_int64(st, 18, seq);
    sqlite3_bind_int64(st, 19, now);
    sqlite3_bind_int64(st, 20, ix->gen_active);
}

/* Writes one changelog row: the full image for an upsert, the key, the removed record's
 * source and tenant, and the event's coordinates for a delete. */
static rf_rc log_row(rf_index_t *ix, int64_t seq, const rf_index_op_t *op, int is_delete,
                     const char *id, int64_t vid, const char *source, const char *tenant,
                     int64_t now, rf_err_t *err)
{
    sqlite3_stmt *st = ix->wst[RF__W_LOG_INSERT];
    sqlite3_bind_int64(st, 1, seq);
    bind_text(st, 2, is_delete ? "delete" : "upsert");
    bind_text(st, 3, id);
    sqlite3_bind_int64(st, 4, vid);
    bind_text(st, 5, source);
    bind_text(st, 8, tenant);
    if (!is_delete) {
        bind_text(st, 6, op->text);
        bind_text(st, 7, op->metadata_json);
        sqlite3_bind_blob(st, 9, op->vec, ix->dim * (int)sizeof(float), SQLITE_STATIC);
        bind_text(st, 10, op->model);
        if (op->content_hash)
            sqlite3_bind_blob(st, 11, op->content_hash, 32, SQLITE_STATIC);
        bind_text(st, 12, op->label);
        if (op->label)
            sqlite3_bind_double(st, 13, op->label_score);
    }
    bind_i64_or_null(st, 14, op->event_time_ms);
    bind_text(st, 15, op->source_pos);
    bind_text(st, 16, op->topic);
    sqlite3_bind_int(st, 17, op->partition);
    sqlite3_bind_int64(st, 18, op->offset);
    sqlite3_bind_int64(st, 19, now);
    if (!is_delete)
        sqlite3_bind_int64(st, 20, ix->gen_active);
    return st_run(ix->wdb, st, err, "insert changelog");
}

/* Looks id up; *vid = -1 when absent.  *source / *tenant (may be NULL) get copies. */
static rf_rc rec_lookup(rf_index_t *ix, const char *id, int64_t *vid, char **source, char **tenant,
                        rf_err_t *err)
{
    sqlite3_stmt *st = ix->wst[RF__W_REC_LOOKUP];
    int src;
    *vid = -1;
    bind_text(st, 1, id);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *vid = sqlite3_column_int64(st, 0);
        if (source)
            *source = col_dup(st, 1);
        if (tenant)
            *tenant = col_dup(st, 2);
    }
    st_done(st);
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        return db_fail(ix->wdb, src, err, "look up record");
    return RF_OK;
}

static rf_rc apply_upsert(rf_index_t *ix, apply_ctx_t *c, const rf_index_op_t *op, int64_t *seq,
                          int64_t now, int64_t *rec_delta, rf_err_t *err)
{
    int64_t vid;
    sqlite3_stmt *st;
    rf_rc rc;
    int existed;
    char *source = NULL;
    if ((rc = rec_lookup(ix, op->id, &vid, &source, NULL, err)))
        return rc;
    existed = vid >= 0;
    /* The source may be NULL on either side. */
    if (existed && (!source != !op->source || (source && strcmp(source, op->source) != 0))) {
        st = ix->wst[RF__W_REC_SOURCE];
        sqlite3_bind_int64(st, 1, vid);
        bind_text(st, 2, op->source);
        rc = st_run(ix->wdb, st, err, "update record source");
    }
    free(source);
    if (rc)
        return rc;
    (*seq)++;
    /* INVARIANT(one-record-per-key): an update rewrites the one row of its id in place and
     * keeps its vid, so the old vector is replaced (removed from FAISS below), never kept
     * beside the new one. */
    st = ix->wst[existed ? RF__W_REC_UPDATE : RF__W_REC_INSERT];
    if (existed)
        sqlite3_bind_int64(st, 1, vid);
    else
        sqlite3_bind_null(st, 1);
    bind_record(ix, st, op, *seq, now);
    if ((rc = st_run(ix->wdb, st, err, existed ? "update record" : "insert record")))
        return rc;
    if (!existed) {
        vid = sqlite3_last_insert_rowid(ix->wdb);
        (*rec_delta)++;
    }
    if ((rc = log_row(ix, *seq, op, 0, op->id, vid, op->source, op->tenant, now, err)) ||
        (rc = rf__index_gen_apply_op(ix, op, vid, *seq, err)))
        return rc;
    ctx_touch(c, vid, op, existed);
    return RF_OK;
}

static rf_rc apply_delete(rf_index_t *ix, apply_ctx_t *c, const rf_index_op_t *op, int64_t *seq,
                          int64_t now, int64_t *rec_delta, rf_err_t *err)
{
    int64_t vid;
    char *source = NULL, *tenant = NULL;
    sqlite3_stmt *st = ix->wst[RF__W_REC_DELETE];
    rf_rc rc;
    if ((rc = rec_lookup(ix, op->id, &vid, &source, &tenant, err)))
        goto out;
    /* A delete of an absent id changes nothing and writes no changelog row. */
    if (vid < 0)
        goto out;
    sqlite3_bind_int64(st, 1, vid);
    if ((rc = st_run(ix->wdb, st, err, "delete record")))
        goto out;
    sqlite3_bind_int64(ix->wst[RF__W_GV_DELETE], 1, vid);
    if ((rc = st_run(ix->wdb, ix->wst[RF__W_GV_DELETE], err, "delete generation vectors")))
        goto out;
    (*seq)++;
    (*rec_delta)--;
    if ((rc =
             log_row(ix, *seq, op, 1, op->id, vid, source ? source : op->source, tenant, now, err)))
        goto out;
    ctx_touch(c, vid, NULL, 1);
out:
    free(source);
    free(tenant);
    return rc;
}

typedef struct gone {
    int64_t vid;
    char *id;
    char *tenant;
} gone_t;

static rf_rc apply_truncate(rf_index_t *ix, apply_ctx_t *c, const rf_index_op_t *op, int64_t *seq,
                            int64_t now, int64_t *rec_delta, rf_err_t *err)
{
    sqlite3_stmt *st = ix->wst[RF__W_REC_TRUNCATE];
    gone_t *g = NULL;
    size_t n = 0, cap = 0;
    rf_rc rc = RF_OK;
    int src;
    /* DELETE ... RETURNING makes every change in its first step and buffers the rows, so
     * the changelog inserts below never interleave with the delete itself. */
    bind_text(st, 1, op->source);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            g = rf_xrealloc(g, cap * sizeof(*g));
        }
        g[n].vid = sqlite3_column_int64(st, 0);
        g[n].id = col_dup(st, 1);
        g[n].tenant = col_dup(st, 2);
        n++;
    }
    st_done(st);
    if (src != SQLITE_DONE) {
        rc = db_fail(ix->wdb, src, err, "truncate records");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(ix->wst[RF__W_GV_DELETE], 1, g[i].vid);
        if ((rc = st_run(ix->wdb, ix->wst[RF__W_GV_DELETE], err, "delete generation vectors")))
            goto out;
        (*seq)++;
        (*rec_delta)--;
        if ((rc = log_row(ix, *seq, op, 1, g[i].id ? g[i].id : "", g[i].vid, op->source,
                          g[i].tenant, now, err)))
            goto out;
        ctx_touch(c, g[i].vid, NULL, 1);
    }
out:
    for (size_t i = 0; i < n; i++) {
        free(g[i].id);
        free(g[i].tenant);
    }
    free(g);
    return rc;
}

static rf_rc apply_txn(rf_index_t *ix, const rf_index_batch_t *b, apply_ctx_t *c, int64_t *seq,
                       int64_t *rec_delta, int64_t *newest, rf_err_t *err)
{
    int64_t now = rf_now_ms();
    int64_t newest_in = *newest;
    rf_rc rc;
    if ((rc = st_run(ix->wdb, ix->wst[RF__W_BEGIN], err, "begin")))
        return rc;
    for (size_t i = 0; i < b->op_cnt; i++) {
        const rf_index_op_t *op = &b->ops[i];
        if (op->kind == RF_INDEX_UPSERT)
            rc = apply_upsert(ix, c, op, seq, now, rec_delta, err);
        else if (op->kind == RF_INDEX_DELETE)
            rc = apply_delete(ix, c, op, seq, now, rec_delta, err);
        else
            rc = apply_truncate(ix, c, op, seq, now, rec_delta, err);
        if (rc)
            goto out;
        if (op->event_time_ms > *newest)
            *newest = op->event_time_ms;
    }
    for (size_t i = 0; i < b->dead_cnt; i++) {
        const rf_index_dead_t *d = &b->dead[i];
        sqlite3_stmt *st = ix->wst[RF__W_DEAD_INSERT];
        bind_text(st, 1, d->topic);
        sqlite3_bind_int(st, 2, d->partition);
        sqlite3_bind_int64(st, 3, d->offset);
        if (d->key.ptr)
            sqlite3_bind_blob64(st, 4, d->key.ptr, d->key.len, SQLITE_STATIC);
        if (d->value.ptr)
            sqlite3_bind_blob64(st, 5, d->value.ptr, d->value.len, SQLITE_STATIC);
        bind_text(st, 6, d->reason);
        sqlite3_bind_int64(st, 7, now);
        if ((rc = st_run(ix->wdb, st, err, "insert dead letter")))
            goto out;
    }
    /* INVARIANT(offsets-with-state): the next offsets are written in the same transaction
     * as the effects of the events before them, so after a crash consumption resumes
     * exactly where the committed state ends. */
    for (size_t i = 0; i < b->offset_cnt; i++) {
        sqlite3_stmt *st = ix->wst[RF__W_OFF_UPSERT];
        bind_text(st, 1, b->offsets[i].topic);
        sqlite3_bind_int(st, 2, b->offsets[i].partition);
        sqlite3_bind_int64(st, 3, b->offsets[i].next_offset);
        if ((rc = st_run(ix->wdb, st, err, "store offset")))
            goto out;
    }
    if ((rc = rf__index_gen_apply_batch(ix, b, err)))
        goto out;
    /* INVARIANT(fresh-is-measurable): the source positions commit with the batch. */
    if ((rc = rf__index_lsn_store(ix, c->lsn, c->lsn_n, err)))
        goto out;
    if (*newest > newest_in) {
        sqlite3_stmt *st = ix->wst[RF__W_META_SET];
        bind_text(st, 1, "newest_event_time_ms");
        sqlite3_bind_int64(st, 2, *newest);
        if ((rc = st_run(ix->wdb, st, err, "store newest event time")))
            goto out;
    }
    rc = st_run(ix->wdb, ix->wst[RF__W_COMMIT], err, "commit");
out:
    if (rc && !sqlite3_get_autocommit(ix->wdb))
        st_run(ix->wdb, ix->wst[RF__W_ROLLBACK], NULL, "rollback");
    return rc;
}

/* Turns the batch's touches into the vector index change: vids to remove (indexed before
 * the batch) and, per vid, the last vector written with its attributes (if the record
 * still exists). */
static void apply_vectors(rf_index_t *ix, apply_ctx_t *c, int64_t seq)
{
    rf__index_add_t *add = NULL;
    size_t add_n = 0;
    /* A batch without vector changes (dead letters, skipped events, deletes of absent
     * ids) still moves the position searches see, so it goes through the update too. */
    if (c->touch_n)
        qsort(c->touch, c->touch_n, sizeof(*c->touch), touch_cmp);
    add = rf_xmalloc((c->touch_n ? c->touch_n : 1) * sizeof(*add));
    for (size_t i = 0; i < c->touch_n; i++) {
        const rf_index_op_t *op = c->touch[i].op;
        /* The last touch of a vid (highest order) holds its final state. */
        if (i + 1 < c->touch_n && c->touch[i + 1].vid == c->touch[i].vid)
            continue;
        if (!op)
            continue;
        add[add_n].vid = c->touch[i].vid;
        add[add_n].vec = op->vec;
        add[add_n].attrs = rf__index_attrs_encode(op->source, op->tenant, op->label,
                                                  op->event_time_ms, op->metadata_json, NULL);
        add[add_n].hkey = rf__index_hkey(op->content_hash);
        add_n++;
    }
    rf__index_vec_update(ix, c->rm, c->rm_n, add, add_n, seq);
    free(add);
}

/* The batch with every upsert's vectors in place: vec (and model, content hash) of the
 * active generation, vec2 of the second one (dropped when no second generation takes
 * it).  *norm (caller frees) holds the ops when any had to change. */
static const rf_index_batch_t *batch_normalise(const rf_index_t *ix, const rf_index_batch_t *b,
                                               rf_index_batch_t *copy, rf_index_op_t **norm)
{
    int need = 0;
    *norm = NULL;
    for (size_t i = 0; i < b->op_cnt && !need; i++) {
        const rf_index_op_t *op = &b->ops[i];
        need = op->kind == RF_INDEX_UPSERT &&
               ((op->gen && op->gen != ix->gen_active) ||
                (op->vec2 && (!ix->gen_second || op->gen2 != ix->gen_second)));
    }
    if (!need)
        return b;
    *norm = rf_xmalloc(b->op_cnt * sizeof(**norm));
    for (size_t i = 0; i < b->op_cnt; i++) {
        rf_index_op_t *o = &(*norm)[i];
        *o = b->ops[i];
        if (o->kind != RF_INDEX_UPSERT)
            continue;
        if (o->gen && o->gen != ix->gen_active) {
            /* validate_batch made sure vec2 is the active generation's. */
            const float *v = o->vec;
            const uint8_t *h = o->content_hash;
            const char *m = o->model;
            int64_t g = o->gen;
            o->vec = o->vec2;
            o->content_hash = o->content_hash2;
            o->model = o->model2;
            o->gen = o->gen2;
            o->vec2 = v;
            o->content_hash2 = h;
            o->model2 = m;
            o->gen2 = g;
        }
        if (o->vec2 && (!ix->gen_second || o->gen2 != ix->gen_second))
            o->vec2 = NULL;
    }
    *copy = *b;
    copy->ops = *norm;
    return copy;
}

rf_rc rf_index_apply(rf_index_t *ix, const rf_index_batch_t *batch_in, int64_t *seq_out,
                     rf_err_t *err)
{
    rf_index_batch_t copy;
    rf_index_op_t *norm = NULL;
    const rf_index_batch_t *batch;
    apply_ctx_t c = {0};
    int64_t seq, rec_delta = 0, newest;
    rf_rc rc;
    if (!ix || !batch_in)
        return rf_err_set(err, RF_EINVAL, "rf_index_apply: NULL argument");
    if ((rc = validate_batch(ix, batch_in, err)))
        return rc;
    batch = batch_normalise(ix, batch_in, &copy, &norm);
    seq = ix->wseq;
    newest = ix->newest_event_ms; /* written only by this thread */
    c.lsn_n = rf__index_lsn_collect(ix, batch, &c.lsn);
    if ((rc = apply_txn(ix, batch, &c, &seq, &rec_delta, &newest, err)))
        goto out;
    ix->wseq = seq;
    pthread_mutex_lock(&ix->stat_mu);
    ix->seq = seq;
    ix->record_cnt += rec_delta;
    ix->dead_cnt += (int64_t)batch->dead_cnt;
    ix->newest_event_ms = newest;
    for (size_t i = 0; i < batch->offset_cnt; i++)
        off_set_locked(ix, batch->offsets[i].topic, batch->offsets[i].partition,
                       batch->offsets[i].next_offset);
    for (size_t i = 0; i < c.lsn_n; i++)
        rf__index_lsn_set_locked(ix, c.lsn[i].source, c.lsn[i].lsn);
    pthread_mutex_unlock(&ix->stat_mu);
    /* INVARIANT(index-is-a-view): the vector index follows the committed store, never
     * leads it; the in-memory change cannot fail once the batch is durable. */
    apply_vectors(ix, &c, seq);
    if (seq_out)
        *seq_out = seq;
out:
    free(c.touch);
    free(c.rm);
    free(c.lsn);
    free(norm);
    return rc;
}

/* ==== Reads ==== */

int64_t rf_index_offset_get(rf_index_t *ix, const char *topic, int32_t partition)
{
    int64_t next = -1;
    if (!ix || !topic)
        return -1;
    pthread_mutex_lock(&ix->stat_mu);
    for (size_t i = 0; i < ix->off_cnt; i++) {
        if (ix->offs[i].partition == partition && strcmp(ix->offs[i].topic, topic) == 0) {
            next = ix->offs[i].next_offset;
            break;
        }
    }
    pthread_mutex_unlock(&ix->stat_mu);
    return next;
}

static json_t *json_str_or_null(const unsigned char *s)
{
    return s ? json_string((const char *)s) : json_null();
}

/* The by_id / by_vid row (REC_COLS) as the documented record object. */
static json_t *record_json(sqlite3_stmt *st)
{
    json_t *o = json_object(), *kafka = json_object(), *meta = NULL;
    const unsigned char *mtext = sqlite3_column_text(st, 2);
    const uint8_t *hash = sqlite3_column_blob(st, 14);
    if (mtext) {
        meta = json_loads((const char *)mtext, JSON_DECODE_ANY, NULL);
        if (!meta)
            meta = json_string((const char *)mtext); /* kept as text rather than lost */
    }
    json_object_set_new(o, "id", json_str_or_null(sqlite3_column_text(st, 0)));
    json_object_set_new(o, "source", json_str_or_null(sqlite3_column_text(st, 11)));
    json_object_set_new(o, "text", json_str_or_null(sqlite3_column_text(st, 1)));
    json_object_set_new(o, "metadata", meta ? meta : json_null());
    json_object_set_new(o, "tenant", json_str_or_null(sqlite3_column_text(st, 4)));
    json_object_set_new(o, "label", json_str_or_null(sqlite3_column_text(st, 3)));
    if (sqlite3_column_type(st, 12) != SQLITE_NULL)
        json_object_set_new(o, "label_score", json_real(sqlite3_column_double(st, 12)));
    json_object_set_new(o, "model", json_str_or_null(sqlite3_column_text(st, 13)));
    if (hash && sqlite3_column_bytes(st, 14) == 32) {
        char hex[65];
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", hash[i]);
        json_object_set_new(o, "content_hash", json_string(hex));
    } else {
        json_object_set_new(o, "content_hash", json_null());
    }
    if (sqlite3_column_type(st, 8) != SQLITE_NULL)
        json_object_set_new(o, "event_time", json_integer(sqlite3_column_int64(st, 8)));
    else
        json_object_set_new(o, "event_time", json_null());
    json_object_set_new(o, "source_position", json_str_or_null(sqlite3_column_text(st, 15)));
    json_object_set_new(kafka, "topic", json_str_or_null(sqlite3_column_text(st, 5)));
    json_object_set_new(kafka, "partition", json_integer(sqlite3_column_int(st, 6)));
    json_object_set_new(kafka, "offset", json_integer(sqlite3_column_int64(st, 7)));
    json_object_set_new(o, "kafka", kafka);
    json_object_set_new(o, "seq", json_integer(sqlite3_column_int64(st, 9)));
    json_object_set_new(o, "updated_at", json_integer(sqlite3_column_int64(st, 16)));
    return o;
}

rf_rc rf_index_record_get(rf_index_t *ix, const char *id, char **json, rf_err_t *err)
{
    rf__index_rconn_t *c = NULL;
    json_t *o = NULL;
    rf_rc rc;
    int src, broken = 0;
    if (json)
        *json = NULL;
    if (!ix || !id || !json)
        return rf_err_set(err, RF_EINVAL, "rf_index_record_get: NULL argument");
    if ((rc = rf__index_rconn_get(ix, &c, err)))
        return rc;
    sqlite3_bind_text(c->by_id, 1, id, -1, SQLITE_STATIC);
    src = sqlite3_step(c->by_id);
    if (src == SQLITE_ROW) {
        o = record_json(c->by_id);
    } else if (src == SQLITE_DONE) {
        rc = rf_err_set(err, RF_ENOTFOUND, "record %s not found", id);
    } else {
        rc = db_fail(c->db, src, err, "read record");
        broken = 1;
    }
    st_done(c->by_id);
    rf__index_rconn_put(ix, c, broken);
    if (o) {
        *json = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!*json)
            rc = rf_err_set(err, RF_ENOMEM, "record %s: cannot serialise", id);
    }
    return rc;
}

rf_rc rf__index_store_hits(rf_index_t *ix, const float *q, const int64_t *vids, const float *scores,
                           size_t n, size_t need, const rf__index_snap_t *snap,
                           const rf__index_filter_t *flt, int want_vec, rf_index_hit_t *hits,
                           size_t *got, rf_err_t *err)
{
    int rescored = 0;
    rf__index_rconn_t *c = NULL;
    int64_t snap_seq = snap->pos.seq;
    size_t vbytes = (size_t)snap->dim * sizeof(float);
    size_t m = 0;
    rf_rc rc;
    int src, broken = 0;
    *got = 0;
    if ((rc = rf__index_rconn_get(ix, &c, err)))
        return rc;
    if ((src = sqlite3_step(c->begin)) != SQLITE_DONE) {
        rc = db_fail(c->db, src, err, "begin read");
        sqlite3_reset(c->begin);
        broken = 1;
        goto out;
    }
    sqlite3_reset(c->begin);
    /* Candidates come best first: once `need` hits are read and none was rescored, the
     * rest cannot rank above them. */
    for (size_t i = 0; i < n && (m < need || rescored); i++) {
        sqlite3_stmt *st = c->by_vid;
        rf_index_hit_t *h = &hits[m];
        int64_t row_seq;
        sqlite3_bind_int64(st, 1, vids[i]);
        src = sqlite3_step(st);
        if (src == SQLITE_DONE) {
            /* INVARIANT(one-record-per-key): deleted after the FAISS state: dropped. */
            sqlite3_reset(st);
            continue;
        }
        if (src != SQLITE_ROW) {
            rc = db_fail(c->db, src, err, "read hit");
            sqlite3_reset(st);
            broken = 1;
            break;
        }
        row_seq = sqlite3_column_int64(st, 9);
        h->score = scores[i];
        if (row_seq > snap_seq) {
            /* INVARIANT(one-record-per-key): the row was replaced after the snapshot
             * searched; return the current version, scored with its own vector, and only
             * if it still satisfies the filter. */
            const float *v = sqlite3_column_blob(st, 10);
            float s = 0.0f;
            int same_gen = sqlite3_column_int64(st, 17) == snap->gen;
            if (same_gen && (!v || (size_t)sqlite3_column_bytes(st, 10) != vbytes)) {
                sqlite3_reset(st);
                continue;
            }
            if (flt) {
                uint8_t *a = rf__index_attrs_encode((const char *)sqlite3_column_text(st, 11),
                                                    (const char *)sqlite3_column_text(st, 4),
                                                    (const char *)sqlite3_column_text(st, 3),
                                                    sqlite3_column_int64(st, 8),
                                                    (const char *)sqlite3_column_text(st, 2), NULL);
                int ok = rf__index_filter_match(flt, a);
                free(a);
                if (!ok) {
                    sqlite3_reset(st);
                    continue;
                }
            }
            /* A row re-embedded for another generation after the snapshot keeps the
             * score of the snapshot's vector: its text is the same. */
            if (same_gen) {
                for (int d = 0; d < snap->dim; d++) {
                    float x;
                    memcpy(&x, (const char *)v + (size_t)d * sizeof(float), sizeof(x));
                    s += x * q[d];
                }
                h->score = s;
                rescored = 1;
            }
        }
        h->id = col_dup(st, 0);
        h->text = col_dup(st, 1);
        h->metadata_json = col_dup(st, 2);
        h->label = col_dup(st, 3);
        h->tenant = col_dup(st, 4);
        h->topic = col_dup(st, 5);
        h->partition = (int32_t)sqlite3_column_int(st, 6);
        h->offset = sqlite3_column_int64(st, 7);
        h->event_time_ms = sqlite3_column_int64(st, 8);
        h->seq = row_seq;
        if (want_vec) {
            /* The stored vector of the version returned, of whatever generation. */
            const void *vb = sqlite3_column_blob(st, 10);
            size_t nb = (size_t)sqlite3_column_bytes(st, 10);
            if (vb && nb >= sizeof(float) && nb % sizeof(float) == 0) {
                h->vec = rf_xmalloc(nb);
                memcpy(h->vec, vb, nb);
                h->dim = (int)(nb / sizeof(float));
            }
        }
        if (!h->id)
            h->id = rf_xstrdup("");
        if (!h->text)
            h->text = rf_xstrdup("");
        m++;
        sqlite3_reset(st);
    }
    sqlite3_step(c->end);
    sqlite3_reset(c->end);
out:
    rf__index_rconn_put(ix, c, broken);
    *got = m;
    return rc;
}

int64_t rf_index_record_count(rf_index_t *ix)
{
    int64_t v;
    if (!ix)
        return 0;
    pthread_mutex_lock(&ix->stat_mu);
    v = ix->record_cnt;
    pthread_mutex_unlock(&ix->stat_mu);
    return v;
}

int64_t rf_index_seq(rf_index_t *ix)
{
    int64_t v;
    if (!ix)
        return 0;
    pthread_mutex_lock(&ix->stat_mu);
    v = ix->seq;
    pthread_mutex_unlock(&ix->stat_mu);
    return v;
}

int64_t rf_index_dead_count(rf_index_t *ix)
{
    int64_t v;
    if (!ix)
        return 0;
    pthread_mutex_lock(&ix->stat_mu);
    v = ix->dead_cnt;
    pthread_mutex_unlock(&ix->stat_mu);
    return v;
}

static void snap_index_stats(rf_index_t *ix, const rf__index_snap_t *snap, rf_index_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    rf__index_snap_stats(ix, snap, &out->memory_bytes, &out->vectors, &out->dead_vectors,
                         &out->segments_pending);
    out->segments = snap ? (int64_t)snap->cnt : 0;
    out->bytes_per_record = out->vectors ? out->memory_bytes / out->vectors : 0;
}

void rf_index_stats(rf_index_t *ix, rf_index_stats_t *out)
{
    rf__index_snap_t *snap;
    memset(out, 0, sizeof(*out));
    if (!ix)
        return;
    snap = rf__index_snap_acquire(ix);
    snap_index_stats(ix, snap, out);
    rf__index_snap_drop(ix, snap);
}

char *rf_index_status_json(rf_index_t *ix)
{
    json_t *o, *offs;
    char *s;
    rf__index_snap_t *snap;
    rf_index_stats_t st;
    int64_t snap_seq;
    if (!ix)
        return NULL;
    o = json_object();
    offs = json_object();
    /* One snapshot for its seq and its size. */
    snap = rf__index_snap_acquire(ix);
    snap_seq = snap ? snap->pos.seq : 0;
    snap_index_stats(ix, snap, &st);
    rf__index_snap_drop(ix, snap);
    json_object_set_new(o, "segments", json_integer(st.segments));
    pthread_mutex_lock(&ix->stat_mu);
    json_object_set_new(o, "records", json_integer(ix->record_cnt));
    json_object_set_new(o, "seq", json_integer(ix->seq));
    for (size_t i = 0; i < ix->off_cnt; i++) {
        char *key = rf_xasprintf("%s/%d", ix->offs[i].topic, (int)ix->offs[i].partition);
        json_object_set_new(offs, key, json_integer(ix->offs[i].next_offset));
        free(key);
    }
    json_object_set_new(o, "offsets", offs);
    json_object_set_new(o, "dead_letters", json_integer(ix->dead_cnt));
    json_object_set_new(o, "checkpoint_seq", json_integer(ix->ckpt_seq));
    json_object_set_new(o, "newest_event_time_ms", json_integer(ix->newest_event_ms));
    {
        json_t *lsn = json_object();
        for (size_t i = 0; i < ix->lsn_cnt; i++)
            json_object_set_new(lsn, ix->lsns[i].source, json_integer(ix->lsns[i].lsn));
        json_object_set_new(o, "lsn", lsn);
    }
    pthread_mutex_unlock(&ix->stat_mu);
    json_object_set_new(o, "index_seq", json_integer(snap_seq));
    json_object_set_new(o, "vectors", json_integer(st.vectors));
    json_object_set_new(o, "dead_vectors", json_integer(st.dead_vectors));
    json_object_set_new(o, "segments_pending", json_integer(st.segments_pending));
    json_object_set_new(o, "memory_bytes", json_integer(st.memory_bytes));
    json_object_set_new(o, "bytes_per_record", json_integer(st.bytes_per_record));
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}
