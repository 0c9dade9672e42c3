/* test_iceberg_export.c - the exporter over a store written here (a `changelog` table as
 * index/ lays it out): day partitioning and file rolling, the start point read from the
 * table's summary (never from local state), compare-and-swap conflicts redone from the
 * new position or retried with the same files, schema evolution by promoted columns,
 * the exporter thread with its status, metrics and readiness, and the history queries
 * and maintenance on what it wrote.  Covers INVARIANT(history-exported-once).
 *
 * The exporter's own file is included so that the changelog scan can be interposed: a
 * competing commit lands exactly between the exporter's read and its commit.
 */
#define rf_index_changelog_scan interposed_scan
#include "../../../iceberg/iceberg_export.c"
#undef rf_index_changelog_scan
/* The real one (index.h's declaration was renamed by the macro above). */
rf_rc rf_index_changelog_scan(rf_index_changelog_t *cl, int64_t after_seq, size_t max,
                              rf_index_change_fn fn, void *opaque, size_t *n_out, rf_err_t *err);

#include <dirent.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <utime.h>

#include "rf_test.h"

/* ==== The interposed scan ==== */

typedef void (*hook_fn)(void);
static hook_fn scan_hook; /* runs once, after the next scan, then clears itself */

rf_rc interposed_scan(rf_index_changelog_t *cl, int64_t after_seq, size_t max,
                      rf_index_change_fn fn, void *opaque, size_t *n_out, rf_err_t *err)
{
    rf_rc rc = rf_index_changelog_scan(cl, after_seq, max, fn, opaque, n_out, err);
    hook_fn h = scan_hook;
    scan_hook = NULL;
    if (h)
        h();
    return rc;
}

/* ==== A store ==== */

static const char store_ddl[] =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE changelog (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " op TEXT NOT NULL CHECK (op IN ('upsert', 'delete')), id TEXT NOT NULL,"
    " vid INTEGER NOT NULL, source TEXT, text TEXT, metadata TEXT, tenant TEXT,"
    " vector BLOB, model TEXT, content_hash BLOB, label TEXT, label_score REAL,"
    " event_time_ms INTEGER, source_pos TEXT, topic TEXT, \"partition\" INTEGER,"
    " \"offset\" INTEGER, ingest_time_ms INTEGER NOT NULL);";

#define DAY_MS INT64_C(86400000)
#define DIM    16

typedef struct fixture {
    char *dir;
    char *state;
    sqlite3 *db;
    rf_conf_t *cfg;
    int64_t seq;
} fixture_t;

static fixture_t fx;

static void conf_set(const char *key, const char *value)
{
    rf_err_t err = {0};
    int rc = rf_conf_set(fx.cfg, key, value, RF_CONF_ORIGIN_CLI, "test", &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    RF_REQUIRE(rc == 0);
}

static void fx_init(const char *tag)
{
    rf_err_t err = {0};
    memset(&fx, 0, sizeof fx);
    fx.dir = rf_test_tmpdir(tag);
    fx.state = rf_xasprintf("%s/state", fx.dir);
    RF_REQUIRE(rf_mkdirs(fx.state, &err) == RF_OK);
    {
        char *db = rf_xasprintf("%s/store.db", fx.state);
        RF_REQUIRE(sqlite3_open(db, &fx.db) == SQLITE_OK);
        free(db);
    }
    RF_REQUIRE(sqlite3_exec(fx.db, store_ddl, NULL, NULL, NULL) == SQLITE_OK);
    fx.cfg = rf_conf_new();
    conf_set("state.dir", fx.state);
    conf_set("log.level", "warn");
    RF_REQUIRE(rf_conf_finalize(fx.cfg, 0, &err) == 0);
    rf_log_setup(RF_LOG_WARN, RF_LOG_FORMAT_TEXT, NULL, NULL);
}

static void fx_fini(void)
{
    sqlite3_close(fx.db);
    rf_conf_free(fx.cfg);
    rf_test_rmtree(fx.dir);
    free(fx.dir);
    free(fx.state);
    memset(&fx, 0, sizeof fx);
}

/* Appends one changelog row: op 'u' or 'd', record n, ingested at ingest_ms. */
static void add_row(char op, int n, int64_t ingest_ms, const char *metadata)
{
    sqlite3_stmt *st = NULL;
    float vec[DIM];
    uint8_t hash[32];
    char id[32], text[64];
    fx.seq++;
    snprintf(id, sizeof id, "t:%d", n);
    snprintf(text, sizeof text, "text of %d at %lld", n, (long long)fx.seq);
    for (int i = 0; i < DIM; i++)
        vec[i] = (float)(n * 0.001 + i);
    memset(hash, n & 0xff, sizeof hash);
    RF_REQUIRE(sqlite3_prepare_v2(fx.db,
                                  "INSERT INTO changelog VALUES (?1, ?2, ?3, ?4, 'src', ?5, ?6, "
                                  "NULL, ?7, 'm1', ?8, ?9, ?10, ?11, ?12, 'topic', ?13, ?14, ?15)",
                                  -1, &st, NULL) == SQLITE_OK);
    sqlite3_bind_int64(st, 1, fx.seq);
    sqlite3_bind_text(st, 2, op == 'd' ? "delete" : "upsert", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, n);
    if (op != 'd') {
        sqlite3_bind_text(st, 5, text, -1, SQLITE_TRANSIENT);
        if (metadata)
            sqlite3_bind_text(st, 6, metadata, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(st, 7, vec, sizeof vec, SQLITE_TRANSIENT);
        sqlite3_bind_blob(st, 8, hash, sizeof hash, SQLITE_TRANSIENT);
        if (n % 3 == 0) {
            sqlite3_bind_text(st, 9, "books", -1, SQLITE_STATIC);
            sqlite3_bind_double(st, 10, 0.5 + n * 0.01);
        }
    }
    sqlite3_bind_int64(st, 11, n % 5 ? ingest_ms - 1000 : 0);
    sqlite3_bind_text(st, 12, "lsn", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 13, n % 4);
    sqlite3_bind_int64(st, 14, fx.seq * 10);
    sqlite3_bind_int64(st, 15, ingest_ms);
    RF_REQUIRE(sqlite3_step(st) == SQLITE_DONE);
    sqlite3_finalize(st);
}

static int64_t today_ms(void)
{
    return rf_now_ms() / DAY_MS * DAY_MS + 3600000;
}

/* ==== Reading the table back ==== */

typedef struct lines {
    json_t *rows; /* array of parsed lines */
} lines_t;

static rf_rc collect(void *opaque, const char *line, size_t len)
{
    lines_t *l = opaque;
    json_t *j = json_loadb(line, len, 0, NULL);
    if (!j)
        return RF_EPARSE;
    json_array_append_new(l->rows, j);
    return RF_OK;
}

/* Every row of a snapshot (-1 current) as parsed JSON; caller decrefs. */
static json_t *scan_rows(int64_t snapshot_id)
{
    rf_iceberg_history_t *h = NULL;
    rf_err_t err = {0};
    lines_t l = {json_array()};
    rf_rc rc = rf_iceberg_history_open(fx.cfg, &h, &err);
    if (rc)
        fprintf(stderr, "history open: %s\n", err.msg);
    RF_REQUIRE(rc == RF_OK);
    rc = rf_iceberg_history_scan(h, snapshot_id, -1, 1, collect, &l, &err);
    if (rc)
        fprintf(stderr, "scan: %s\n", err.msg);
    RF_CHECK(rc == RF_OK);
    rf_iceberg_history_close(h);
    return l.rows;
}

/* Checks that the table holds seqs [lo, hi] exactly once each (plus `extra`, a second
 * range, when hi2 >= lo2); returns the number of rows. */
static size_t check_seqs(json_t *rows, int64_t lo, int64_t hi, int64_t lo2, int64_t hi2)
{
    size_t n = json_array_size(rows), i;
    int64_t span = (hi2 >= lo2 ? hi2 : hi) + 1;
    uint8_t *seen = rf_xcalloc((size_t)span + 1, 1);
    json_t *r;
    int dup = 0, out = 0;
    json_array_foreach(rows, i, r)
    {
        int64_t s = json_integer_value(json_object_get(r, "seq"));
        int in = (s >= lo && s <= hi) || (hi2 >= lo2 && s >= lo2 && s <= hi2);
        if (!in || s > span) {
            out++;
            continue;
        }
        dup += seen[s]++ > 0;
    }
    for (int64_t s = lo; s <= hi; s++)
        RF_CHECK(seen[s] == 1);
    for (int64_t s = lo2; s <= hi2; s++)
        RF_CHECK(seen[s] == 1);
    RF_CHECK_INT(dup, 0);
    RF_CHECK_INT(out, 0);
    free(seen);
    return n;
}

static int count_parquet(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    if (!d)
        return 0;
    while ((de = readdir(d))) {
        char *p;
        struct stat sb;
        if (de->d_name[0] == '.')
            continue;
        p = rf_xasprintf("%s/%s", dir, de->d_name);
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            n += count_parquet(p);
        else if (strstr(de->d_name, ".parquet"))
            n++;
        free(p);
    }
    closedir(d);
    return n;
}

static char *table_dir(void)
{
    return rf_xasprintf("%s/warehouse/ragfeed/records_history", fx.state);
}

static int64_t export_all(void)
{
    rf_err_t err = {0};
    int64_t rows = 0, commits = 0;
    rf_rc rc = rf_iceberg_export_run(fx.cfg, &rows, &commits, &err);
    if (rc)
        fprintf(stderr, "export: %s\n", err.msg);
    RF_REQUIRE(rc == RF_OK);
    return rows;
}

/* ==== Tests ==== */

static void test_day_partitions(void)
{
    int64_t today = today_ms();
    rf_iceberg_history_t *h = NULL;
    rf_iceberg_live_file_t *files = NULL;
    size_t n = 0;
    rf_err_t err = {0};
    json_t *rows;
    size_t i;
    json_t *r;
    fx_init("exp_days");
    /* Three days, interleaved the way a replay after an outage might deliver them. */
    for (int k = 1; k <= 300; k++)
        add_row(k % 7 == 0 ? 'd' : 'u', k % 50, today - (k % 3) * DAY_MS, NULL);
    RF_CHECK_INT(export_all(), 300);
    RF_REQUIRE(rf_iceberg_history_open(fx.cfg, &h, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_snapshot_files(rf__iceberg_history_table(h)->meta, -1, &files, &n,
                                          &err) == RF_OK);
    /* One file per day partition per commit. */
    RF_CHECK_INT(n, 3);
    for (size_t k = 0; k < n; k++) {
        rf_iceberg_pqr_t *rd = NULL;
        int y, m, d;
        char want[64];
        RF_CHECK(files[k].has_day);
        rf__iceberg_civil_from_days(files[k].day, &y, &m, &d);
        snprintf(want, sizeof want, "/ingest_time_day=%04d-%02d-%02d/", y, m, d);
        RF_CHECK(strstr(files[k].path, want) != NULL);
        RF_REQUIRE(rf__iceberg_pqr_open(files[k].path, &rd, &err) == RF_OK);
        RF_CHECK_INT(rf__iceberg_pqr_rows(rd), 100);
        for (size_t g = 0; g < rf__iceberg_pqr_row_groups(rd); g++) {
            int64_t nr = 0;
            int col = rf__iceberg_pqr_find(
                rd, rf__iceberg_meta_field_id(rf__iceberg_history_table(h)->meta, "ingest_time"));
            RF_REQUIRE(col >= 0);
            RF_REQUIRE(rf__iceberg_pqr_read_group(rd, g, NULL, &nr, &err) == RF_OK);
            for (int64_t row = 0; row < nr; row++) {
                rf_iceberg_pq_value_t v;
                rf__iceberg_pqr_value(rd, (size_t)col, row, &v);
                RF_CHECK(rf__iceberg_day_from_micros(v.v.i64) == files[k].day);
            }
        }
        rf__iceberg_pqr_close(rd);
    }
    rf__iceberg_live_files_free(files, n);
    rf_iceberg_history_close(h);

    /* The values of the columns: a delete has no text, vector or dim; an upsert has all. */
    rows = scan_rows(-1);
    RF_CHECK_INT(check_seqs(rows, 1, 300, 1, 0), 300);
    json_array_foreach(rows, i, r)
    {
        int64_t s = json_integer_value(json_object_get(r, "seq"));
        int del = s % 7 == 0;
        RF_CHECK_STR(json_string_value(json_object_get(r, "op")), del ? "delete" : "upsert");
        RF_CHECK(json_is_null(json_object_get(r, "text")) == del);
        RF_CHECK(json_is_null(json_object_get(r, "vector")) == del);
        RF_CHECK_INT(json_integer_value(json_object_get(r, "kafka_offset")), s * 10);
        if (!del) {
            RF_CHECK_INT(json_array_size(json_object_get(r, "vector")), DIM);
            RF_CHECK_INT(json_integer_value(json_object_get(r, "dim")), DIM);
            RF_CHECK_INT(strlen(json_string_value(json_object_get(r, "content_hash"))), 64);
        }
    }
    json_decref(rows);

    /* A small target size rolls files: many per day, rows unchanged. */
    for (int k = 301; k <= 3300; k++)
        add_row('u', k, today, NULL);
    conf_set("iceberg.target.file.size", "65536");
    RF_CHECK_INT(export_all(), 3000);
    rows = scan_rows(-1);
    RF_CHECK_INT(check_seqs(rows, 1, 3300, 1, 0), 3300);
    json_decref(rows);
    {
        char *td = table_dir();
        RF_CHECK(count_parquet(td) > 6);
        free(td);
    }
    fx_fini();
}

static void test_start_point_from_summary(void)
{
    int64_t today = today_ms();
    rf_iceberg_catalog_t *cat = NULL;
    rf_iceberg_table_t *t = NULL;
    rf_iceberg_hist_conf_t hc;
    rf_err_t err = {0};
    json_t *rows;
    fx_init("exp_start");
    for (int k = 1; k <= 100; k++)
        add_row('u', k, today, NULL);
    RF_CHECK_INT(export_all(), 100);
    /* Exporting again finds nothing: the table says 100. */
    RF_CHECK_INT(export_all(), 0);

    /* Another writer records position 150 (say it exported 101..150 elsewhere): the next
     * export must start after 150 whatever this process remembers. */
    RF_REQUIRE(rf__iceberg_hist_conf_init(fx.cfg, &hc, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_hist_open(fx.cfg, &hc, 0, &cat, &t, &err) == RF_OK);
    {
        rf_iceberg_kv_t props[] = {{"ragfeed.seq", "150"},
                                   {"ragfeed.offsets", "{\"topic/0\":9999}"}};
        RF_REQUIRE(rf__iceberg_table_append(t, NULL, 0, props, 2, NULL, &err) == RF_OK);
    }
    for (int k = 101; k <= 200; k++)
        add_row('u', k, today, NULL);
    RF_CHECK_INT(export_all(), 50);
    rows = scan_rows(-1);
    RF_CHECK_INT(check_seqs(rows, 1, 100, 151, 200), 150);
    json_decref(rows);
    /* The offsets combine the previous snapshot's with the rows': partition 0 keeps 9999,
     * the others reach their last row's offset + 1. */
    RF_REQUIRE(rf__iceberg_table_refresh(t, &err) == RF_OK);
    {
        const char *offs = rf__iceberg_meta_summary(t->meta, -1, "ragfeed.offsets");
        json_t *o = offs ? json_loads(offs, 0, NULL) : NULL;
        int64_t pos = 0;
        RF_REQUIRE(o != NULL);
        RF_CHECK_INT(json_integer_value(json_object_get(o, "topic/0")), 9999);
        RF_CHECK_INT(json_integer_value(json_object_get(o, "topic/3")), 199 * 10 + 1);
        RF_CHECK_INT(json_integer_value(json_object_get(o, "topic/2")), 198 * 10 + 1);
        json_decref(o);
        RF_CHECK(rf__iceberg_hist_position(t->meta, -1, &pos, NULL, &err) == RF_OK);
        RF_CHECK_INT(pos, 200);
    }
    /* A snapshot without ragfeed.seq (another engine's) defers to its ancestors. */
    RF_REQUIRE(rf__iceberg_table_append(t, NULL, 0, NULL, 0, NULL, &err) == RF_OK);
    {
        int64_t pos = 0;
        RF_CHECK(rf__iceberg_hist_position(t->meta, -1, &pos, NULL, &err) == RF_OK);
        RF_CHECK_INT(pos, 200);
    }
    RF_CHECK_INT(export_all(), 0);
    /* A malformed position is corruption, not a silent restart from 0. */
    {
        rf_iceberg_kv_t props[] = {{"ragfeed.seq", "12x"}};
        RF_REQUIRE(rf__iceberg_table_append(t, NULL, 0, props, 1, NULL, &err) == RF_OK);
        RF_CHECK(rf_iceberg_export_run(fx.cfg, NULL, NULL, &err) == RF_ECORRUPT);
    }
    rf__iceberg_table_free(t);
    rf__iceberg_catalog_close(cat);
    rf__iceberg_hist_conf_fini(&hc);
    fx_fini();
}

/* A competing exporter commits the same rows between our read and our commit. */
static void compete_export(void)
{
    rf_err_t err = {0};
    int64_t rows = 0;
    RF_CHECK(rf_iceberg_export_run(fx.cfg, &rows, NULL, &err) == RF_OK);
    RF_CHECK_INT(rows, 400);
}

/* A competing commit that moves neither the position nor the schema. */
static void compete_property(void)
{
    rf_iceberg_catalog_t *cat = NULL;
    rf_iceberg_table_t *t = NULL;
    rf_iceberg_hist_conf_t hc;
    rf_iceberg_meta_t *next;
    rf_err_t err = {0};
    RF_REQUIRE(rf__iceberg_hist_conf_init(fx.cfg, &hc, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_hist_open(fx.cfg, &hc, 0, &cat, &t, &err) == RF_OK);
    next = rf__iceberg_meta_dup(t->meta);
    rf__iceberg_meta_set_property(next, "owner", "someone else");
    RF_CHECK(rf__iceberg_table_commit(t, next, &err) == RF_OK);
    rf__iceberg_table_free(t);
    rf__iceberg_catalog_close(cat);
    rf__iceberg_hist_conf_fini(&hc);
}

static void test_cas_conflict_redo(void)
{
    int64_t today = today_ms();
    struct rf_iceberg_exporter *exp = NULL;
    rf_err_t err = {0};
    int64_t added = 0;
    json_t *rows;
    char *td;
    fx_init("exp_cas");
    for (int k = 1; k <= 400; k++)
        add_row('u', k, today - (k % 2) * DAY_MS, NULL);
    RF_REQUIRE(exporter_new(fx.cfg, &exp, &err) == RF_OK);
    /* Our cycle reads 1..400 and writes its files; then the other exporter commits 1..400
     * first.  Our commit must fail, and the redo from the table's new position finds
     * nothing left: no duplicates, and our files are gone. */
    scan_hook = compete_export;
    RF_CHECK(export_cycle(exp, &added, &err) == RF_OK);
    RF_CHECK_INT(added, 0);
    RF_CHECK(scan_hook == NULL);
    rows = scan_rows(-1);
    RF_CHECK_INT(check_seqs(rows, 1, 400, 1, 0), 400);
    json_decref(rows);
    td = table_dir();
    RF_CHECK_INT(count_parquet(td), 2); /* the winner's two day files only */

    /* More rows, and a competing commit that keeps the position: the same files are
     * committed on the retry. */
    for (int k = 401; k <= 500; k++)
        add_row('u', k, today, NULL);
    scan_hook = compete_property;
    RF_CHECK(export_cycle(exp, &added, &err) == RF_OK);
    RF_CHECK_INT(added, 100);
    rows = scan_rows(-1);
    RF_CHECK_INT(check_seqs(rows, 1, 500, 1, 0), 500);
    json_decref(rows);
    RF_CHECK_INT(count_parquet(td), 3);
    RF_CHECK_STR(json_string_value(json_object_get(
                     json_object_get(rf__iceberg_meta_json(exp->t->meta), "properties"), "owner")),
                 "someone else");
    free(td);
    exporter_free(exp);
    fx_fini();
}

/* Rows gone from the changelog before export (a pruned store) are counted and reported,
 * and the rest is exported. */
static void test_changelog_gap(void)
{
    int64_t today = today_ms();
    struct rf_iceberg_exporter *exp = NULL;
    rf_err_t err = {0};
    int64_t added = 0;
    char *status;
    fx_init("exp_gap");
    for (int k = 1; k <= 10; k++)
        add_row('u', k, today, NULL);
    fx.seq += 9; /* seqs 11..19 never reach the table */
    for (int k = 20; k <= 30; k++)
        add_row('u', k, today, NULL);
    RF_REQUIRE(exporter_new(fx.cfg, &exp, &err) == RF_OK);
    RF_CHECK(export_cycle(exp, &added, &err) == RF_OK);
    RF_CHECK_INT(added, 21);
    RF_CHECK_INT(exp->exported_seq, 30);
    status = rf_iceberg_exporter_status_json(exp);
    RF_CHECK(strstr(status, "\"changelog_gap_rows\":9") != NULL);
    free(status);
    exporter_free(exp);
    fx_fini();
}

static void test_promoted_columns(void)
{
    int64_t today = today_ms();
    rf_iceberg_history_t *h = NULL;
    rf_err_t err = {0};
    json_t *rows, *r;
    int32_t price_id, qty_id;
    size_t i;
    fx_init("exp_cols");
    conf_set("iceberg.columns", "price:double,sku:string,when:timestamptz");
    for (int k = 1; k <= 20; k++)
        add_row('u', k, today,
                k % 4 ? "{\"price\": 2.5, \"sku\": 17, \"when\": \"2024-05-01T00:00:01Z\"}"
                      : "{\"price\": \"n/a\"}");
    RF_CHECK_INT(export_all(), 20);
    RF_REQUIRE(rf_iceberg_history_open(fx.cfg, &h, &err) == RF_OK);
    price_id = rf__iceberg_meta_field_id(rf__iceberg_history_table(h)->meta, "price");
    RF_CHECK(price_id > 0);
    RF_CHECK_INT(rf__iceberg_meta_schema_id(rf__iceberg_history_table(h)->meta), 0);
    rf_iceberg_history_close(h);

    /* A column added later: a new schema, a new field id; old files read as null. */
    conf_set("iceberg.columns", "price:double,sku:string,when:timestamptz,qty:long");
    for (int k = 21; k <= 30; k++)
        add_row('u', k, today, "{\"price\": 1, \"qty\": 7}");
    RF_CHECK_INT(export_all(), 10);
    RF_REQUIRE(rf_iceberg_history_open(fx.cfg, &h, &err) == RF_OK);
    qty_id = rf__iceberg_meta_field_id(rf__iceberg_history_table(h)->meta, "qty");
    RF_CHECK(qty_id > price_id);
    RF_CHECK_INT(rf__iceberg_meta_field_id(rf__iceberg_history_table(h)->meta, "price"), price_id);
    RF_CHECK_INT(rf__iceberg_meta_schema_id(rf__iceberg_history_table(h)->meta), 1);
    rf_iceberg_history_close(h);
    rows = scan_rows(-1);
    RF_CHECK_INT(json_array_size(rows), 30);
    json_array_foreach(rows, i, r)
    {
        int64_t s = json_integer_value(json_object_get(r, "seq"));
        const json_t *price = json_object_get(r, "price");
        if (s <= 20 && s % 4) {
            RF_CHECK(json_real_value(price) == 2.5);
            RF_CHECK_STR(json_string_value(json_object_get(r, "sku")), "17");
            RF_CHECK_STR(json_string_value(json_object_get(r, "when")), "2024-05-01T00:00:01.000Z");
        } else if (s <= 20) {
            RF_CHECK(json_is_null(price)); /* "n/a" does not fit a double */
        } else {
            RF_CHECK(json_real_value(price) == 1.0);
        }
        if (s <= 20)
            RF_CHECK(json_is_null(json_object_get(r, "qty")));
        else
            RF_CHECK_INT(json_integer_value(json_object_get(r, "qty")), 7);
    }
    json_decref(rows);

    /* A type that contradicts the table, a built-in name, bad syntax: ECONFIG. */
    conf_set("iceberg.columns", "price:string");
    RF_CHECK(rf_iceberg_export_run(fx.cfg, NULL, NULL, &err) == RF_ECONFIG);
    conf_set("iceberg.columns", "label:string");
    RF_CHECK(rf_iceberg_export_run(fx.cfg, NULL, NULL, &err) == RF_ECONFIG);
    conf_set("iceberg.columns", "x:decimal");
    RF_CHECK(rf_iceberg_export_run(fx.cfg, NULL, NULL, &err) == RF_ECONFIG);
    fx_fini();
}

static int has_reason(rf_iceberg_exporter_t *exp)
{
    char buf[512];
    return rf_iceberg_exporter_unready(exp, buf, sizeof buf) != NULL;
}

static void test_exporter_thread(void)
{
    int64_t today = today_ms();
    rf_iceberg_exporter_t *exp = NULL;
    rf_err_t err = {0};
    rf_buf_t m;
    char *status, *data_dir, *moved;
    json_t *st, *rows;
    char buf[512];
    fx_init("exp_thread");
    conf_set("iceberg.commit.interval.ms", "100");
    conf_set("iceberg.max.failures", "2");
    for (int k = 1; k <= 50; k++)
        add_row('u', k, today, NULL);
    RF_REQUIRE(rf_iceberg_exporter_start(fx.cfg, &exp, &err) == RF_OK);
    RF_REQUIRE(exp != NULL);
    /* The interval commit happens by itself; flush waits for it. */
    RF_CHECK(rf_iceberg_exporter_flush(exp, 50, 20000, &err) == RF_OK);
    for (int k = 51; k <= 80; k++)
        add_row('d', k, today, NULL);
    RF_CHECK(rf_iceberg_exporter_flush(exp, -1, 20000, &err) == RF_OK);
    status = rf_iceberg_exporter_status_json(exp);
    st = json_loads(status, 0, NULL);
    RF_REQUIRE(st != NULL);
    RF_CHECK_INT(json_integer_value(json_object_get(st, "exported_seq")), 80);
    RF_CHECK_INT(json_integer_value(json_object_get(st, "rows_exported")), 80);
    RF_CHECK(json_integer_value(json_object_get(st, "commits")) >= 2);
    RF_CHECK(json_is_integer(json_object_get(st, "snapshot_id")));
    RF_CHECK(json_is_null(json_object_get(st, "last_error")));
    RF_CHECK(!has_reason(exp));
    json_decref(st);
    free(status);
    rf_buf_init(&m, 0);
    rf_iceberg_exporter_metrics(exp, &m);
    RF_CHECK(strstr(m.ptr, "\nragfeed_iceberg_rows_exported_total 80\n") != NULL);
    RF_CHECK(strstr(m.ptr, "\nragfeed_iceberg_exported_seq 80\n") != NULL);
    RF_CHECK(strstr(m.ptr, "# TYPE ragfeed_iceberg_commit_duration_seconds histogram") != NULL);
    RF_CHECK(strstr(m.ptr, "ragfeed_iceberg_commit_duration_seconds_bucket{le=\"+Inf\"}") != NULL);
    rf_buf_fini(&m);

    /* The data directory becomes a file: every cycle fails, and after max.failures the
     * exporter holds readiness back with the reason. */
    data_dir = rf_xasprintf("%s/warehouse/ragfeed/records_history/data", fx.state);
    moved = rf_xasprintf("%s.moved", data_dir);
    RF_REQUIRE(rename(data_dir, moved) == 0);
    {
        FILE *fp = fopen(data_dir, "w");
        RF_REQUIRE(fp != NULL);
        fclose(fp);
    }
    for (int k = 81; k <= 90; k++)
        add_row('u', k, today, NULL);
    {
        int64_t deadline = rf_mono_ms() + 20000;
        while (!has_reason(exp) && rf_mono_ms() < deadline)
            rf_iceberg_exporter_flush(exp, 90, 100, NULL);
    }
    RF_CHECK(rf_iceberg_exporter_unready(exp, buf, sizeof buf) != NULL);
    RF_CHECK(strstr(buf, "commits failed in a row") != NULL);
    status = rf_iceberg_exporter_status_json(exp);
    RF_CHECK(strstr(status, "\"consecutive_failures\":") != NULL);
    RF_CHECK(strstr(status, "\"last_error\":null") == NULL);
    free(status);
    /* Repaired: the next cycle succeeds and readiness comes back. */
    RF_REQUIRE(unlink(data_dir) == 0);
    RF_REQUIRE(rename(moved, data_dir) == 0);
    RF_CHECK(rf_iceberg_exporter_flush(exp, 90, 30000, &err) == RF_OK);
    RF_CHECK(!has_reason(exp));
    /* Rows added just before stop are exported by the final export. */
    for (int k = 91; k <= 95; k++)
        add_row('u', k, today, NULL);
    rf_iceberg_exporter_stop(exp);
    rows = scan_rows(-1);
    RF_CHECK_INT(check_seqs(rows, 1, 95, 1, 0), 95);
    json_decref(rows);
    free(data_dir);
    free(moved);

    /* Disabled: no exporter, and the callbacks say so. */
    conf_set("iceberg.enabled", "false");
    exp = (rf_iceberg_exporter_t *)1;
    RF_CHECK(rf_iceberg_exporter_start(fx.cfg, &exp, &err) == RF_OK);
    RF_CHECK(exp == NULL);
    status = rf_iceberg_exporter_status_json(NULL);
    RF_CHECK_STR(status, "{\"enabled\":false}");
    free(status);
    RF_CHECK(rf_iceberg_exporter_unready(NULL, buf, sizeof buf) == NULL);
    fx_fini();
}

static rf_rc count_lines(void *opaque, const char *line, size_t len)
{
    (void)line;
    (void)len;
    (*(int *)opaque)++;
    return RF_OK;
}

static void test_history_queries(void)
{
    int64_t today = today_ms();
    rf_iceberg_history_t *h = NULL;
    rf_err_t err = {0};
    lines_t l = {NULL};
    int n = 0;
    int64_t first_snap, t_first;
    json_t *snaps;
    fx_init("exp_hist");
    /* No catalog yet: history says not found (the command exits 4). */
    RF_CHECK(rf_iceberg_history_open(fx.cfg, &h, &err) == RF_ENOTFOUND);
    for (int k = 1; k <= 10; k++)
        add_row('u', k % 3, today, NULL);
    export_all();
    /* The two snapshots get different times (the clock moves on; this is no wait for
     * another thread). */
    {
        int64_t t0 = rf_now_ms();
        while (rf_now_ms() <= t0 + 1)
            ;
    }
    add_row('d', 1, today, NULL);
    add_row('u', 1, today, NULL);
    export_all();
    RF_REQUIRE(rf_iceberg_history_open(fx.cfg, &h, &err) == RF_OK);
    l.rows = json_array();
    RF_CHECK(rf_iceberg_history_snapshots(h, collect, &l, &err) == RF_OK);
    snaps = l.rows;
    RF_REQUIRE(json_array_size(snaps) == 2);
    first_snap = json_integer_value(json_object_get(json_array_get(snaps, 0), "snapshot_id"));
    t_first = json_integer_value(json_object_get(json_array_get(snaps, 0), "timestamp_ms"));
    RF_CHECK_INT(json_integer_value(json_object_get(json_array_get(snaps, 0), "seq")), 10);
    RF_CHECK_INT(json_integer_value(json_object_get(json_array_get(snaps, 1), "seq")), 12);
    RF_CHECK_INT(json_integer_value(json_object_get(json_array_get(snaps, 1), "parent_id")),
                 first_snap);
    RF_CHECK(json_is_true(json_object_get(json_array_get(snaps, 1), "current")));
    RF_CHECK_INT(json_integer_value(json_object_get(json_array_get(snaps, 1), "added_records")), 2);
    RF_CHECK(json_is_object(json_object_get(json_array_get(snaps, 1), "offsets")));

    /* Every version of t:1 in seq order: 1, 4, 7, 10, then the delete 11 and upsert 12. */
    l.rows = json_array();
    RF_CHECK(rf_iceberg_history_record(h, "t:1", 0, collect, &l, &err) == RF_OK);
    RF_REQUIRE(json_array_size(l.rows) == 6);
    {
        static const int64_t want[] = {1, 4, 7, 10, 11, 12};
        for (size_t i = 0; i < 6; i++) {
            json_t *r = json_array_get(l.rows, i);
            RF_CHECK_INT(json_integer_value(json_object_get(r, "seq")), want[i]);
            RF_CHECK(json_object_get(r, "vector") == NULL);
            RF_CHECK_STR(json_string_value(json_object_get(json_object_get(r, "kafka"), "topic")),
                         "topic");
        }
        RF_CHECK_STR(json_string_value(json_object_get(json_array_get(l.rows, 4), "op")), "delete");
    }
    json_decref(l.rows);
    RF_CHECK(rf_iceberg_history_record(h, "t:nope", 0, count_lines, &n, &err) == RF_ENOTFOUND);

    /* As of the first snapshot's time: its 10 rows; by id: the same. */
    n = 0;
    RF_CHECK(rf_iceberg_history_scan(h, -1, t_first, 0, count_lines, &n, &err) == RF_OK);
    RF_CHECK_INT(n, 10);
    n = 0;
    RF_CHECK(rf_iceberg_history_scan(h, first_snap, -1, 0, count_lines, &n, &err) == RF_OK);
    RF_CHECK_INT(n, 10);
    RF_CHECK(rf_iceberg_history_scan(h, -1, t_first - 100000, 0, count_lines, &n, &err) ==
             RF_ENOTFOUND);
    RF_CHECK(rf_iceberg_history_scan(h, 12345, -1, 0, count_lines, &n, &err) == RF_ENOTFOUND);
    json_decref(snaps);
    rf_iceberg_history_close(h);
    fx_fini();
}

static void test_maintenance(void)
{
    int64_t today = today_ms();
    rf_iceberg_history_t *h = NULL;
    rf_iceberg_maint_result_t res;
    rf_err_t err = {0};
    json_t *before, *after;
    char *td, *old_orphan, *young_orphan;
    int nfiles;
    fx_init("exp_maint");
    conf_set("iceberg.commit.rows", "50");
    for (int k = 1; k <= 400; k++)
        add_row(k % 9 ? 'u' : 'd', k % 60, today - (k % 2) * DAY_MS, "{\"a\":1}");
    RF_CHECK_INT(export_all(), 400);
    before = scan_rows(-1);
    td = table_dir();
    nfiles = count_parquet(td);
    RF_CHECK_INT(nfiles, 16); /* 8 commits x 2 days */
    RF_REQUIRE(rf_iceberg_history_open(fx.cfg, &h, &err) == RF_OK);

    /* Compaction: 2 files, same rows, same values, position kept. */
    RF_CHECK(rf_iceberg_history_compact(h, 0, &res, &err) == RF_OK);
    RF_CHECK_INT(res.files_rewritten, 16);
    RF_CHECK_INT(res.files_added, 2);
    RF_CHECK_INT(res.rows_rewritten, 400);
    after = scan_rows(-1);
    RF_CHECK_INT(check_seqs(after, 1, 400, 1, 0), 400);
    {
        /* Same rows with the same values (file order differs: compare by seq). */
        json_t *by_seq[401] = {NULL};
        size_t i;
        json_t *r;
        json_array_foreach(before, i, r)
        {
            int64_t s = json_integer_value(json_object_get(r, "seq"));
            if (s >= 1 && s <= 400)
                by_seq[s] = r;
        }
        json_array_foreach(after, i, r)
        {
            int64_t s = json_integer_value(json_object_get(r, "seq"));
            RF_CHECK(s >= 1 && s <= 400 && by_seq[s] && json_equal(r, by_seq[s]));
        }
    }
    json_decref(after);
    {
        int64_t pos = 0;
        RF_CHECK(rf__iceberg_hist_position(rf__iceberg_history_table(h)->meta, -1, &pos, NULL,
                                           &err) == RF_OK);
        RF_CHECK_INT(pos, 400);
    }
    /* Nothing small is left to compact. */
    RF_CHECK(rf_iceberg_history_compact(h, 0, &res, &err) == RF_OK);
    RF_CHECK_INT(res.files_rewritten, 0);
    /* The exporter goes on after a compaction without repeating anything. */
    for (int k = 401; k <= 420; k++)
        add_row('u', k, today, NULL);
    RF_CHECK_INT(export_all(), 20);

    /* Expire everything but the current snapshot: the 16 old files go. */
    RF_CHECK(rf_iceberg_history_expire(h, rf_now_ms() + 1000, 1, &res, &err) == RF_OK);
    RF_CHECK_INT(res.snapshots_expired, 9);
    RF_CHECK_INT(count_parquet(td), 3);
    after = scan_rows(-1);
    RF_CHECK_INT(check_seqs(after, 1, 420, 1, 0), 420);
    json_decref(after);

    /* gc: an old orphan goes, a young one (a commit in flight) stays, and so does every
     * referenced file. */
    old_orphan = rf_xasprintf("%s/data/old-orphan.parquet", td);
    young_orphan = rf_xasprintf("%s/data/young-orphan.parquet", td);
    {
        FILE *fp = fopen(old_orphan, "w");
        struct utimbuf ut;
        RF_REQUIRE(fp != NULL);
        fputs("PAR1", fp);
        fclose(fp);
        ut.actime = ut.modtime = time(NULL) - 7200;
        RF_REQUIRE(utime(old_orphan, &ut) == 0);
        fp = fopen(young_orphan, "w");
        RF_REQUIRE(fp != NULL);
        fclose(fp);
        ut.actime = ut.modtime = time(NULL) - 10;
        RF_REQUIRE(utime(young_orphan, &ut) == 0);
    }
    RF_CHECK(rf_iceberg_history_gc(h, 3600000, 1, &res, &err) == RF_OK);
    RF_CHECK(res.files_deleted >= 1);
    RF_CHECK(access(old_orphan, F_OK) == 0); /* dry run */
    RF_CHECK(rf_iceberg_history_gc(h, 3600000, 0, &res, &err) == RF_OK);
    RF_CHECK(access(old_orphan, F_OK) != 0);
    RF_CHECK(access(young_orphan, F_OK) == 0);
    after = scan_rows(-1);
    RF_CHECK_INT(check_seqs(after, 1, 420, 1, 0), 420);
    json_decref(after);
    RF_CHECK(rf_iceberg_history_gc(h, 0, 0, &res, &err) == RF_OK);
    RF_CHECK(access(young_orphan, F_OK) != 0);
    after = scan_rows(-1);
    RF_CHECK_INT(check_seqs(after, 1, 420, 1, 0), 420);
    json_decref(after);
    json_decref(before);
    free(old_orphan);
    free(young_orphan);
    free(td);
    rf_iceberg_history_close(h);
    fx_fini();
}

static void test_time_parsing(void)
{
    int64_t ms = 0;
    RF_CHECK(rf_iceberg_time_parse("1970-01-02", &ms) == RF_OK);
    RF_CHECK_INT(ms, 86400000);
    RF_CHECK(rf_iceberg_time_parse("2024-05-01T12:00:00Z", &ms) == RF_OK);
    RF_CHECK_INT(ms, INT64_C(1714564800000));
    RF_CHECK(rf_iceberg_time_parse("2024-05-01T14:00:00.250+02:00", &ms) == RF_OK);
    RF_CHECK_INT(ms, INT64_C(1714564800250));
    RF_CHECK(rf_iceberg_time_parse("1714564800000", &ms) == RF_OK);
    RF_CHECK_INT(ms, INT64_C(1714564800000));
    RF_CHECK(rf_iceberg_time_parse("2024-13-01", &ms) == RF_EINVAL);
    RF_CHECK(rf_iceberg_time_parse("yesterday", &ms) == RF_EINVAL);
    RF_CHECK(rf_iceberg_duration_parse("90m", &ms) == RF_OK);
    RF_CHECK_INT(ms, 5400000);
    RF_CHECK(rf_iceberg_duration_parse("7d", &ms) == RF_OK);
    RF_CHECK_INT(ms, 7 * DAY_MS);
    RF_CHECK(rf_iceberg_duration_parse("250ms", &ms) == RF_OK);
    RF_CHECK_INT(ms, 250);
    RF_CHECK(rf_iceberg_duration_parse("-1h", &ms) == RF_EINVAL);
    RF_CHECK(rf_iceberg_duration_parse("5 parsecs", &ms) == RF_EINVAL);
    {
        char buf[40];
        rf__iceberg_fmt_time(-1, buf, sizeof buf);
        RF_CHECK_STR(buf, "1969-12-31T23:59:59.999Z");
    }
}

RF_TEST_MAIN(test_day_partitions, test_start_point_from_summary, test_cas_conflict_redo,
             test_changelog_gap, test_promoted_columns, test_exporter_thread, test_history_queries,
             test_maintenance, test_time_parsing)
