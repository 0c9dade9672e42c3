/* iceberg_catalog.c - the SQL catalog in a SQLite file, with the tables and columns of
 * the Iceberg JDBC catalog (Java JdbcCatalog, pyiceberg SqlCatalog), so either engine can
 * open what this one commits.  INVARIANT(history-exported-once): a commit is a
 * compare-and-swap on metadata_location, so of two writers that started from the same
 * version exactly one wins and the other learns it lost.
 */
#include "iceberg/iceberg_int.h"

#include <string.h>

#include <sqlite3.h>

struct rf_iceberg_catalog {
    sqlite3 *db;
    char *name;
    char *path;
    int has_type; /* iceberg_tables has the iceberg_type column (JdbcCatalog schema V1) */
};

/* Java's V0 DDL plus the iceberg_type column that its V1 schema adds; pyiceberg's
 * SqlCatalog has the same columns without iceberg_type and ignores it.  Property columns
 * are NOT NULL as pyiceberg declares them; Java never writes NULL there. */
static const char ddl[] = "CREATE TABLE IF NOT EXISTS iceberg_tables ("
                          "catalog_name VARCHAR(255) NOT NULL, "
                          "table_namespace VARCHAR(255) NOT NULL, "
                          "table_name VARCHAR(255) NOT NULL, "
                          "metadata_location VARCHAR(1000), "
                          "previous_metadata_location VARCHAR(1000), "
                          "iceberg_type VARCHAR(5), "
                          "PRIMARY KEY (catalog_name, table_namespace, table_name));"
                          "CREATE TABLE IF NOT EXISTS iceberg_namespace_properties ("
                          "catalog_name VARCHAR(255) NOT NULL, "
                          "namespace VARCHAR(255) NOT NULL, "
                          "property_key VARCHAR(255) NOT NULL, "
                          "property_value VARCHAR(1000) NOT NULL, "
                          "PRIMARY KEY (catalog_name, namespace, property_key));";

/* Statements wait this long for another connection's write lock. */
#define CATALOG_BUSY_MS 10000

static rf_rc db_fail(rf_iceberg_catalog_t *cat, rf_err_t *err, const char *what)
{
    int code = sqlite3_errcode(cat->db);
    rf_rc rc = (code == SQLITE_BUSY || code == SQLITE_LOCKED) ? RF_EBUSY : RF_EUNAVAIL;
    return rf_err_set(err, rc, "iceberg catalog %s: %s: %s", cat->path, what,
                      sqlite3_errmsg(cat->db));
}

static rf_rc prepare(rf_iceberg_catalog_t *cat, const char *sql, sqlite3_stmt **st, rf_err_t *err)
{
    if (sqlite3_prepare_v2(cat->db, sql, -1, st, NULL) != SQLITE_OK)
        return db_fail(cat, err, "prepare");
    return RF_OK;
}

static int column_exists(sqlite3 *db, const char *table, const char *column)
{
    sqlite3_stmt *st = NULL;
    int found = 0;
    char *sql = rf_xasprintf("PRAGMA table_info(%s)", table);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *c = (const char *)sqlite3_column_text(st, 1);
            if (c && !strcmp(c, column))
                found = 1;
        }
    }
    sqlite3_finalize(st);
    free(sql);
    return found;
}

rf_rc rf__iceberg_catalog_open(const char *path, const char *name, rf_iceberg_catalog_t **out,
                               rf_err_t *err)
{
    rf_iceberg_catalog_t *cat = NULL;
    rf_rc rc = RF_OK;

    *out = NULL;
    if (!path || !*path || !name || !*name)
        return rf_err_set(err, RF_EINVAL, "iceberg catalog: a path and a name are required");
    cat = rf_xcalloc(1, sizeof *cat);
    cat->name = rf_xstrdup(name);
    cat->path = rf_xstrdup(path);
    if (sqlite3_open_v2(path, &cat->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        rc = rf_err_set(err, RF_EUNAVAIL, "iceberg catalog %s: open: %s", path,
                        cat->db ? sqlite3_errmsg(cat->db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(cat->db, CATALOG_BUSY_MS);
    /* The default rollback journal, not WAL: readers such as sql.js load the main file
     * alone and would not see commits still in a WAL file. */
    if (sqlite3_exec(cat->db, ddl, NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(cat, err, "create tables");
        goto out;
    }
    cat->has_type = column_exists(cat->db, "iceberg_tables", "iceberg_type");
    *out = cat;
    cat = NULL;
out:
    rf__iceberg_catalog_close(cat);
    return rc;
}

void rf__iceberg_catalog_close(rf_iceberg_catalog_t *cat)
{
    if (!cat)
        return;
    sqlite3_close(cat->db);
    free(cat->name);
    free(cat->path);
    free(cat);
}

static rf_rc check_ident(const char *what, const char *s, rf_err_t *err)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 255)
        return rf_err_set(err, RF_EINVAL, "iceberg catalog: %s must be 1..255 bytes", what);
    return RF_OK;
}

int rf__iceberg_catalog_namespace_exists(rf_iceberg_catalog_t *cat, const char *ns)
{
    static const char sql[] =
        "SELECT 1 FROM iceberg_namespace_properties WHERE catalog_name = ? AND namespace = ? "
        "UNION ALL SELECT 1 FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? "
        "LIMIT 1";
    sqlite3_stmt *st = NULL;
    int found = 0;
    if (sqlite3_prepare_v2(cat->db, sql, -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, cat->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, cat->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, ns, -1, SQLITE_STATIC);
    found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

rf_rc rf__iceberg_catalog_namespace_create(rf_iceberg_catalog_t *cat, const char *ns,
                                           const rf_iceberg_kv_t *props, size_t nprops,
                                           rf_err_t *err)
{
    static const char sql[] = "INSERT OR IGNORE INTO iceberg_namespace_properties "
                              "(catalog_name, namespace, property_key, property_value) "
                              "VALUES (?, ?, ?, ?)";
    sqlite3_stmt *st = NULL;
    rf_rc rc;

    if ((rc = check_ident("namespace", ns, err)))
        return rc;
    if (sqlite3_exec(cat->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(cat, err, "begin");
    if ((rc = prepare(cat, sql, &st, err)))
        goto out;
    /* exists=true is the marker row both Java and pyiceberg write for a namespace. */
    for (size_t i = 0; i <= nprops; i++) {
        const char *k = i == 0 ? "exists" : props[i - 1].key;
        const char *v = i == 0 ? "true" : props[i - 1].value;
        if (!k || !v) {
            rc = rf_err_set(err, RF_EINVAL,
                            "iceberg catalog: namespace property without a "
                            "key or value");
            goto out;
        }
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, cat->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, k, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, v, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_fail(cat, err, "insert namespace");
            goto out;
        }
    }
    if (sqlite3_exec(cat->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(cat, err, "commit");
out:
    sqlite3_finalize(st);
    if (rc)
        sqlite3_exec(cat->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

rf_rc rf__iceberg_catalog_table_create(rf_iceberg_catalog_t *cat, const char *ns, const char *name,
                                       const char *metadata_location, rf_err_t *err)
{
    const char *sql =
        cat->has_type ? "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, "
                        "metadata_location, previous_metadata_location, iceberg_type) "
                        "VALUES (?, ?, ?, ?, NULL, 'TABLE')"
                      : "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, "
                        "metadata_location, previous_metadata_location) "
                        "VALUES (?, ?, ?, ?, NULL)";
    sqlite3_stmt *st = NULL;
    rf_rc rc;
    int step;

    if ((rc = check_ident("namespace", ns, err)) || (rc = check_ident("table name", name, err)))
        return rc;
    if (!metadata_location || strlen(metadata_location) > 1000)
        return rf_err_set(err, RF_EINVAL,
                          "iceberg catalog: metadata location must be 1..1000 "
                          "bytes");
    if (!rf__iceberg_catalog_namespace_exists(cat, ns))
        return rf_err_set(err, RF_ENOTFOUND, "iceberg catalog: namespace %s does not exist", ns);
    if ((rc = prepare(cat, sql, &st, err)))
        return rc;
    sqlite3_bind_text(st, 1, cat->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, metadata_location, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step == SQLITE_CONSTRAINT)
        rc = rf_err_set(err, RF_EEXIST, "iceberg catalog: table %s.%s exists already", ns, name);
    else if (step != SQLITE_DONE)
        rc = db_fail(cat, err, "insert table");
    sqlite3_finalize(st);
    return rc;
}

rf_rc rf__iceberg_catalog_table_load(rf_iceberg_catalog_t *cat, const char *ns, const char *name,
                                     char **metadata_location, char **previous, rf_err_t *err)
{
    const char *sql =
        cat->has_type
            ? "SELECT metadata_location, previous_metadata_location FROM iceberg_tables WHERE "
              "catalog_name = ? AND table_namespace = ? AND table_name = ? AND "
              "(iceberg_type = 'TABLE' OR iceberg_type IS NULL)"
            : "SELECT metadata_location, previous_metadata_location FROM iceberg_tables WHERE "
              "catalog_name = ? AND table_namespace = ? AND table_name = ?";
    sqlite3_stmt *st = NULL;
    rf_rc rc;
    int step;

    *metadata_location = NULL;
    if (previous)
        *previous = NULL;
    if ((rc = prepare(cat, sql, &st, err)))
        return rc;
    sqlite3_bind_text(st, 1, cat->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW && sqlite3_column_text(st, 0)) {
        *metadata_location = rf_xstrdup((const char *)sqlite3_column_text(st, 0));
        if (previous && sqlite3_column_text(st, 1))
            *previous = rf_xstrdup((const char *)sqlite3_column_text(st, 1));
    } else if (step == SQLITE_ROW || step == SQLITE_DONE) {
        rc = rf_err_set(err, RF_ENOTFOUND, "iceberg catalog: no table %s.%s in catalog %s", ns,
                        name, cat->name);
    } else {
        rc = db_fail(cat, err, "load table");
    }
    sqlite3_finalize(st);
    return rc;
}

rf_rc rf__iceberg_catalog_table_commit(rf_iceberg_catalog_t *cat, const char *ns, const char *name,
                                       const char *expected, const char *new_location,
                                       rf_err_t *err)
{
    /* INVARIANT(history-exported-once): JdbcUtil's commit statement; the WHERE clause on
     * the old location is the compare, the row count tells whether the swap happened, so
     * a writer whose view of the table is stale can never publish a snapshot. */
    const char *sql =
        cat->has_type
            ? "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? "
              "WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? AND "
              "metadata_location = ? AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)"
            : "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? "
              "WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? AND "
              "metadata_location = ?";
    sqlite3_stmt *st = NULL;
    char *cur = NULL;
    rf_rc rc;

    if (!expected || !new_location || strlen(new_location) > 1000)
        return rf_err_set(err, RF_EINVAL,
                          "iceberg catalog: commit needs the expected and a new "
                          "location (at most 1000 bytes)");
    if ((rc = prepare(cat, sql, &st, err)))
        return rc;
    sqlite3_bind_text(st, 1, new_location, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, expected, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, cat->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, expected, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(cat, err, "commit");
        goto out;
    }
    if (sqlite3_changes(cat->db) == 1) {
        RF_LOG(RF_LOG_DEBUG, RF_MOD_ICEBERG, "table=%s.%s metadata=%s committed", ns, name,
               new_location);
        goto out;
    }
    /* Nothing changed: either someone else committed first or the table is gone. */
    rc = rf__iceberg_catalog_table_load(cat, ns, name, &cur, NULL, err);
    if (rc == RF_OK)
        rc = rf_err_set(err, RF_EBUSY,
                        "iceberg catalog: commit conflict on %s.%s: metadata is now %s, not %s", ns,
                        name, cur, expected);
out:
    free(cur);
    sqlite3_finalize(st);
    return rc;
}
