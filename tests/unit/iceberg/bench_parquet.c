/* bench_parquet.c - write throughput of the Parquet writer for the Iceberg history
 * table's columns (seq, op, id, text ~200 chars, metadata JSON, model, dim, a 384-float
 * vector, times, Kafka coordinates), ZSTD, with and without the vector column, and the
 * file size against the raw data size.  RF_BENCH_ROWS sets the row count (default
 * 20000; the reported numbers use 100000).  Checks only that the files are complete.
 */
#include "iceberg/iceberg_int.h"
#include "rf_test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define DIM 384

typedef struct brow {
    char id[48], text[320], meta[160], pos[32];
    size_t id_len, text_len, meta_len, pos_len;
    int64_t seq, ts, offset;
    int32_t part;
    int del;
    float vec[DIM];
} brow_t;

static uint64_t rs = 88172645463325252ull;
static uint64_t next(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

static const char *words[] = {"stock", "blue",   "widget", "shipping", "order", "price",
                              "large", "cotton", "return", "warranty", "fast",  "delivery",
                              "red",   "steel",  "garden", "kitchen",  "new",   "customer"};

static void gen_row(brow_t *b, int64_t i)
{
    size_t n = 0;
    b->seq = i + 1;
    b->del = next() % 10 == 0;
    b->id_len = (size_t)snprintf(b->id, sizeof(b->id), "inventory.products:%lld",
                                 (long long)(next() % 50000));
    while (n < 200) {
        const char *w = words[next() % (sizeof(words) / sizeof(words[0]))];
        n += (size_t)snprintf(b->text + n, sizeof(b->text) - n, "%s ", w);
    }
    b->text_len = n;
    b->meta_len = (size_t)snprintf(
        b->meta, sizeof(b->meta), "{\"category\":\"%s\",\"price\":%llu.%02llu,\"stock\":%llu}",
        words[next() % 18], (unsigned long long)(next() % 500), (unsigned long long)(next() % 100),
        (unsigned long long)(next() % 1000));
    b->pos_len = (size_t)snprintf(b->pos, sizeof(b->pos), "lsn:%lld", (long long)(i * 37));
    b->ts = 1700000000000000LL + i * 1000;
    b->part = (int32_t)(next() % 6);
    b->offset = i / 6;
    for (int k = 0; k < DIM; k++)
        b->vec[k] = (float)((double)(next() % 20001) / 10000.0 - 1.0);
}

static const rf_iceberg_pq_column_t cols[] = {
    {"seq", 1, RF_ICEBERG_PQ_INT64, 0, 0, 0, 0},
    {"op", 2, RF_ICEBERG_PQ_STRING, 0, 0, 0, 0},
    {"id", 3, RF_ICEBERG_PQ_STRING, 0, 0, 0, 0},
    {"text", 4, RF_ICEBERG_PQ_STRING, 1, 0, 0, 0},
    {"metadata", 5, RF_ICEBERG_PQ_STRING, 1, 0, 0, 0},
    {"model", 6, RF_ICEBERG_PQ_STRING, 1, 0, 0, 0},
    {"dim", 7, RF_ICEBERG_PQ_INT32, 1, 0, 0, 0},
    {"event_time", 8, RF_ICEBERG_PQ_TIMESTAMPTZ, 1, 0, 0, 0},
    {"ingest_time", 9, RF_ICEBERG_PQ_TIMESTAMPTZ, 0, 0, 0, 0},
    {"kafka_topic", 10, RF_ICEBERG_PQ_STRING, 0, 0, 0, 0},
    {"kafka_partition", 11, RF_ICEBERG_PQ_INT32, 0, 0, 0, 0},
    {"kafka_offset", 12, RF_ICEBERG_PQ_INT64, 0, 0, 0, 0},
    {"source_position", 13, RF_ICEBERG_PQ_STRING, 1, 0, 0, 0},
    {"vector", 14, RF_ICEBERG_PQ_FLOAT, 1, 1, 15, 0},
};
#define NCOLS (sizeof(cols) / sizeof(cols[0]))

/* CPU seconds of this process: steadier than wall time on a shared machine. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void run(const brow_t *rows, int64_t n, int with_vec, const char *path)
{
    static const char model[] = "text-embedding-3-small", topic[] = "cdc.inventory.products";
    size_t ncols = with_vec ? NCOLS : NCOLS - 1;
    rf_iceberg_parquet_t *w = NULL;
    rf_iceberg_pq_result_t res;
    rf_iceberg_pq_opts_t o;
    rf_err_t err;
    double raw = 0, secs, cpu0 = cpu_now(), cpu;
    int64_t t0;
    struct stat st;
    rf__iceberg_parquet_opts_init(&o);
    remove(path);
    t0 = rf_mono_us();
    RF_REQUIRE(rf__iceberg_parquet_open(path, cols, ncols, &o, &w, &err) == RF_OK);
    for (int64_t i = 0; i < n; i++) {
        const brow_t *b = &rows[i];
        rf_iceberg_pq_value_t v[NCOLS];
        memset(v, 0, sizeof(v));
        v[0].v.i64 = b->seq;
        v[1].v.bytes = b->del ? rf_slice("delete", 6) : rf_slice("upsert", 6);
        v[2].v.bytes = rf_slice(b->id, b->id_len);
        v[3].v.bytes = rf_slice(b->text, b->text_len);
        v[4].v.bytes = rf_slice(b->meta, b->meta_len);
        v[5].v.bytes = rf_slice(model, sizeof(model) - 1);
        v[6].v.i32 = DIM;
        v[7].v.i64 = b->ts - 5000;
        v[8].v.i64 = b->ts;
        v[9].v.bytes = rf_slice(topic, sizeof(topic) - 1);
        v[10].v.i32 = b->part;
        v[11].v.i64 = b->offset;
        v[12].v.bytes = rf_slice(b->pos, b->pos_len);
        v[13].v.list.items = b->vec;
        v[13].v.list.count = DIM;
        RF_REQUIRE(rf__iceberg_parquet_write_row(w, v, &err) == RF_OK);
        raw += 8 + 6 + (double)b->id_len + (double)b->text_len + (double)b->meta_len +
               (sizeof(model) - 1) + 4 + 8 + 8 + (sizeof(topic) - 1) + 4 + 8 + (double)b->pos_len +
               (with_vec ? 4.0 * DIM : 0);
    }
    RF_REQUIRE(rf__iceberg_parquet_close(w, &res, &err) == RF_OK);
    secs = (double)(rf_mono_us() - t0) / 1e6;
    cpu = cpu_now() - cpu0;
    RF_CHECK_INT(res.row_count, n);
    RF_CHECK(stat(path, &st) == 0 && st.st_size == res.file_size);
    printf("parquet zstd %-15s rows=%lld  wall %.0f rows/s %.1f MB/s  cpu %.0f rows/s %.1f MB/s"
           "  file %.1f MB  raw %.1f MB  file/raw %.2f  row groups %zu\n",
           with_vec ? "with vectors" : "without vectors", (long long)n, (double)n / secs,
           raw / secs / 1e6, (double)n / cpu, raw / cpu / 1e6, (double)res.file_size / 1e6,
           raw / 1e6, (double)res.file_size / raw, res.nsplits);
    rf__iceberg_parquet_result_fini(&res);
    remove(path);
}

static void test_bench(void)
{
    const char *env = getenv("RF_BENCH_ROWS");
    int64_t n = env ? strtoll(env, NULL, 10) : 20000;
    char *dir = rf_test_tmpdir("parquet_bench");
    char *path = rf_xasprintf("%s/bench.parquet", dir);
    brow_t *rows;
    if (n <= 0 || n > 10000000)
        n = 20000;
    rows = rf_xmalloc((size_t)n * sizeof(*rows));
    for (int64_t i = 0; i < n; i++)
        gen_row(&rows[i], i);
    run(rows, n, 1, path);
    run(rows, n, 0, path);
    free(rows);
    free(path);
    rf_test_rmtree(dir);
    free(dir);
}

RF_TEST_MAIN(test_bench)
