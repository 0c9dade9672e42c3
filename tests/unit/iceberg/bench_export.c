/* bench_export.c - export throughput of the Iceberg exporter: a store with N changelog
 * rows (RF_BENCH_ROWS, default 1000000; unit vectors of RF_BENCH_DIM floats, default 384,
 * texts of 100-400 bytes, a JSON metadata object, 1 in 10 rows a delete) is exported by
 * rf_iceberg_export_run with and without vectors, and with ZSTD and without compression.
 * Prints rows/s (reading the changelog, writing Parquet, committing), commits, and the
 * size of the data files against the raw bytes of the rows.  Checks the row counts, so
 * a broken export cannot pass as a fast one.  Serves INVARIANT(history-exported-once)
 * only by counting; the correctness tests are elsewhere.
 */
#include "iceberg/iceberg.h"

#include <dirent.h>
#include <math.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>

#include "rf_test.h"

static uint64_t rng = 88172645463325252ULL;

static uint64_t next_u64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int64_t env_int(const char *name, int64_t dflt)
{
    const char *v = getenv(name);
    char *end = NULL;
    long long x;
    if (!v || !*v)
        return dflt;
    x = strtoll(v, &end, 10);
    return end != v && !*end && x > 0 ? (int64_t)x : dflt;
}

static int64_t dir_bytes(const char *dir, int64_t *files)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int64_t total = 0;
    if (!d)
        return 0;
    while ((de = readdir(d))) {
        struct stat sb;
        char *p;
        if (de->d_name[0] == '.')
            continue;
        p = rf_xasprintf("%s/%s", dir, de->d_name);
        if (stat(p, &sb) == 0) {
            if (S_ISDIR(sb.st_mode)) {
                total += dir_bytes(p, files);
            } else if (strstr(de->d_name, ".parquet")) {
                total += (int64_t)sb.st_size;
                (*files)++;
            }
        }
        free(p);
    }
    closedir(d);
    return total;
}

static const char *const words[] = {"stream", "vector", "record", "kafka",  "index",
                                    "search", "fresh",  "audit",  "table",  "change",
                                    "event",  "store",  "hammer", "ladder", "battery"};

/* Creates the store; returns the raw bytes of the rows (with and without vectors). */
static void make_store(const char *state, int64_t n, int dim, int64_t *raw, int64_t *raw_novec)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char *path = rf_xasprintf("%s/store.db", state);
    float *vec = rf_xmalloc((size_t)dim * sizeof(float));
    uint8_t hash[32];
    char text[512], meta[128], id[48];
    int64_t now = rf_now_ms();
    *raw = *raw_novec = 0;
    RF_REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    RF_REQUIRE(
        sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;"
                     "CREATE TABLE changelog (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                     " op TEXT NOT NULL, id TEXT NOT NULL, vid INTEGER NOT NULL, source TEXT,"
                     " text TEXT, metadata TEXT, tenant TEXT, vector BLOB, model TEXT,"
                     " content_hash BLOB, label TEXT, label_score REAL, event_time_ms "
                     "INTEGER, source_pos TEXT, topic TEXT, \"partition\" INTEGER,"
                     " \"offset\" INTEGER, ingest_time_ms INTEGER NOT NULL); BEGIN;",
                     NULL, NULL, NULL) == SQLITE_OK);
    RF_REQUIRE(sqlite3_prepare_v2(db,
                                  "INSERT INTO changelog VALUES (?1, ?2, ?3, ?4, 'shop.products', "
                                  "?5, ?6, NULL, ?7, 'hash-384', ?8, ?9, ?10, ?11, ?12, "
                                  "'shop.products', ?13, ?14, ?15)",
                                  -1, &st, NULL) == SQLITE_OK);
    for (int64_t s = 1; s <= n; s++) {
        int del = s % 10 == 0;
        int64_t key = (int64_t)(next_u64() % (uint64_t)(n / 3 + 1));
        size_t tl = 0, want = 100 + next_u64() % 300;
        int ml = 0;
        snprintf(id, sizeof id, "shop.products:%lld", (long long)key);
        while (tl < want) {
            const char *w = words[next_u64() % (sizeof words / sizeof words[0])];
            size_t wl = strlen(w);
            if (tl + wl + 1 >= sizeof text)
                break;
            memcpy(text + tl, w, wl);
            tl += wl;
            text[tl++] = ' ';
        }
        text[tl] = '\0';
        ml = snprintf(meta, sizeof meta, "{\"price\":%.2f,\"stock\":%d,\"category\":\"c%d\"}",
                      (double)(next_u64() % 100000) / 100, (int)(next_u64() % 500),
                      (int)(next_u64() % 40));
        {
            double norm = 0;
            for (int i = 0; i < dim; i++) {
                vec[i] = (float)((double)(next_u64() >> 11) / 9007199254740992.0 - 0.5);
                norm += (double)vec[i] * vec[i];
            }
            norm = sqrt(norm);
            for (int i = 0; i < dim; i++)
                vec[i] = (float)(vec[i] / norm);
        }
        for (int i = 0; i < 32; i++)
            hash[i] = (uint8_t)next_u64();
        sqlite3_bind_int64(st, 1, s);
        sqlite3_bind_text(st, 2, del ? "delete" : "upsert", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, key);
        if (!del) {
            sqlite3_bind_text(st, 5, text, (int)tl, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 6, meta, ml, SQLITE_TRANSIENT);
            sqlite3_bind_blob(st, 7, vec, dim * (int)sizeof(float), SQLITE_TRANSIENT);
            sqlite3_bind_blob(st, 8, hash, 32, SQLITE_TRANSIENT);
            if (s % 4 == 0) {
                sqlite3_bind_text(st, 9, "tools", -1, SQLITE_STATIC);
                sqlite3_bind_double(st, 10, 0.9);
            }
        } else {
            for (int i = 5; i <= 10; i++)
                sqlite3_bind_null(st, i);
        }
        sqlite3_bind_int64(st, 11, now - 2000);
        sqlite3_bind_text(st, 12, "lsn:0/16B3748", -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 13, (int)(s % 8));
        sqlite3_bind_int64(st, 14, s / 8);
        sqlite3_bind_int64(st, 15, now - (n - s));
        RF_REQUIRE(sqlite3_step(st) == SQLITE_DONE);
        sqlite3_reset(st);
        /* Raw: the values as bytes (strings, 8-byte numbers, 4-byte floats). */
        {
            int64_t r = 8 + 6 + (int64_t)strlen(id) + 13 + 13 + 8 + 8 + 4 + 8 + 8 + 13;
            if (!del)
                r += (int64_t)tl + ml + 8 + 64 + (s % 4 == 0 ? 13 : 0);
            *raw_novec += r;
            *raw += r + (del ? 0 : (int64_t)dim * 4);
        }
    }
    sqlite3_finalize(st);
    RF_REQUIRE(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    free(vec);
    free(path);
}

static void run_case(const char *state, const char *name, int vectors, const char *codec, int64_t n,
                     int64_t raw)
{
    rf_conf_t *cfg = rf_conf_new();
    rf_err_t err = {0};
    char *wh = rf_xasprintf("%s/wh-%s", state, name);
    char *cat = rf_xasprintf("%s/cat-%s.db", state, name);
    int64_t rows = 0, commits = 0, t0, ms, files = 0, bytes;
    rf_rc rc;
    RF_REQUIRE(rf_conf_set(cfg, "state.dir", state, RF_CONF_ORIGIN_CLI, "bench", &err) == 0);
    RF_REQUIRE(rf_conf_set(cfg, "iceberg.warehouse", wh, RF_CONF_ORIGIN_CLI, "bench", &err) == 0);
    RF_REQUIRE(rf_conf_set(cfg, "iceberg.catalog", cat, RF_CONF_ORIGIN_CLI, "bench", &err) == 0);
    RF_REQUIRE(rf_conf_set(cfg, "iceberg.include.vectors", vectors ? "true" : "false",
                           RF_CONF_ORIGIN_CLI, "bench", &err) == 0);
    RF_REQUIRE(rf_conf_set(cfg, "iceberg.codec", codec, RF_CONF_ORIGIN_CLI, "bench", &err) == 0);
    RF_REQUIRE(rf_conf_finalize(cfg, 0, &err) == 0);
    t0 = rf_mono_ms();
    rc = rf_iceberg_export_run(cfg, &rows, &commits, &err);
    ms = rf_mono_ms() - t0;
    if (rc)
        fprintf(stderr, "%s: %s\n", name, err.msg);
    RF_CHECK(rc == RF_OK);
    RF_CHECK_INT(rows, n);
    bytes = dir_bytes(wh, &files);
    printf("| %-22s | %9lld | %8.0f | %7lld | %5lld | %9.1f | %8.1f | %5.3f |\n", name,
           (long long)rows, ms > 0 ? (double)rows * 1000.0 / (double)ms : 0.0, (long long)ms,
           (long long)commits, (double)raw / 1048576.0, (double)bytes / 1048576.0,
           raw ? (double)bytes / (double)raw : 0.0);
    printf("|   files: %lld, %.1f MiB each on average\n", (long long)files,
           files ? (double)bytes / 1048576.0 / (double)files : 0.0);
    fflush(stdout);
    rf_conf_free(cfg);
    free(wh);
    free(cat);
}

static void test_bench(void)
{
    int64_t n = env_int("RF_BENCH_ROWS", 1000000);
    int dim = (int)env_int("RF_BENCH_DIM", 384);
    char *dir = rf_test_tmpdir("bench_export");
    int64_t raw = 0, raw_novec = 0, t0;
    rf_log_setup(RF_LOG_WARN, RF_LOG_FORMAT_TEXT, NULL, NULL);
    t0 = rf_mono_ms();
    make_store(dir, n, dim, &raw, &raw_novec);
    printf("store: %lld rows, dim %d, made in %lld ms\n\n", (long long)n, dim,
           (long long)(rf_mono_ms() - t0));
    printf("| %-22s | %9s | %8s | %7s | %5s | %9s | %8s | %5s |\n", "case", "rows", "rows/s", "ms",
           "snaps", "raw MiB", "data MiB", "ratio");
    printf("|------------------------|-----------|----------|---------|-------|-----------|------"
           "----|-------|\n");
    run_case(dir, "vectors-zstd", 1, "zstd", n, raw);
    run_case(dir, "no-vectors-zstd", 0, "zstd", n, raw_novec);
    run_case(dir, "vectors-uncompressed", 1, "uncompressed", n, raw);
    rf_test_rmtree(dir);
    free(dir);
}

RF_TEST_MAIN(test_bench)
