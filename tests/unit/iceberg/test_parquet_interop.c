/* test_parquet_interop.c - files from the Parquet writer read back by independent
 * readers (DuckDB and hyparquet, through read_parquet.mjs): every type, nulls, empty
 * lists, long strings, all-null and all-NaN columns, many row groups and pages, both
 * codecs, dictionary, PLAIN and the fallback between them, an empty file, and the
 * Iceberg history table's columns.  Values, field ids, key/value metadata, types and
 * per-row-group statistics must all agree.  Needs node and `npm ci` in
 * $RF_SHARED_DIR/tools/iceberg-verify; fails (does not skip) without them.
 */
#include "parquet_testlib.h"
#include "rf_test.h"

#include <stdlib.h>
#include <string.h>

static char *dir;

static char *tmp_path(const char *name)
{
    if (!dir)
        dir = rf_test_tmpdir("parquet_interop");
    return rf_xasprintf("%s/%s", dir, name);
}

/* Writes, checks the result, reads back with both readers and compares. */
static void roundtrip(tl_file_t **files, size_t n)
{
    json_t **got;
    for (size_t i = 0; i < n; i++) {
        rf_err_t err;
        rf_rc rc = tl_write(files[i], &err);
        if (rc) {
            rf__test_fail(__FILE__, __LINE__, "%s: %s", files[i]->path, err.msg);
            return;
        }
        RF_CHECK_INT(tl_check_result(files[i]), 0);
    }
    got = tl_read(files, n, "");
    RF_REQUIRE(got != NULL);
    for (size_t i = 0; i < n; i++) {
        RF_CHECK_INT(tl_check_read(files[i], got[i]), 0);
        json_decref(got[i]);
    }
    free(got);
}

/* Every type as a required column, an optional column and a list with optional
 * elements. */
static void add_all_types(tl_file_t *f, tl_colgen_t g)
{
    for (int t = 0; t < RF_ICEBERG_PQ__TYPE_COUNT; t++) {
        char name[32];
        snprintf(name, sizeof(name), "req_%d", t);
        tl_add_col(f, name, (rf_iceberg_pq_type)t, 0, 0, 0, g);
        snprintf(name, sizeof(name), "opt_%d", t);
        tl_add_col(f, name, (rf_iceberg_pq_type)t, 1, 0, 0, g);
        snprintf(name, sizeof(name), "list_%d", t);
        tl_add_col(f, name, (rf_iceberg_pq_type)t, 1, 1, 1, g);
    }
}

static void test_all_types_codecs(void)
{
    tl_file_t f[4];
    tl_file_t *fp[4];
    for (int i = 0; i < 4; i++) {
        tl_rng_t r;
        char name[64];
        tl_colgen_t g = {TL_RANDOM, 20, 20, 6, 30};
        char *path;
        snprintf(name, sizeof(name), "types_%d.parquet", i);
        path = tmp_path(name);
        tl_file_init(&f[i], path);
        free(path);
        add_all_types(&f[i], g);
        f[i].opts.codec = i % 2 ? RF_ICEBERG_PQ_UNCOMPRESSED : RF_ICEBERG_PQ_ZSTD;
        f[i].opts.dictionary = i < 2;
        tl_rng_seed(&r, 100 + (uint64_t)i);
        tl_gen_rows(&f[i], &r, 400);
        fp[i] = &f[i];
    }
    roundtrip(fp, 4);
    for (int i = 0; i < 4; i++)
        tl_file_fini(&f[i]);
}

static void test_nulls_and_empty_lists(void)
{
    tl_file_t f;
    tl_rng_t r;
    char *path = tmp_path("nulls.parquet");
    tl_file_t *fp = &f;
    tl_colgen_t allnull = {TL_ALLNULL, 0, 0, 3, 10};
    tl_colgen_t sparse = {TL_RANDOM, 80, 60, 1, 10}; /* lists of 0 or 1 items */
    tl_colgen_t empty = {TL_RANDOM, 0, 0, 0, 0};
    tl_file_init(&f, path);
    free(path);
    for (int t = 0; t < RF_ICEBERG_PQ__TYPE_COUNT; t++) {
        char name[32];
        snprintf(name, sizeof(name), "null_%d", t);
        tl_add_col(&f, name, (rf_iceberg_pq_type)t, 1, 0, 0, allnull);
        snprintf(name, sizeof(name), "nlist_%d", t);
        tl_add_col(&f, name, (rf_iceberg_pq_type)t, 1, 1, 1, allnull);
        snprintf(name, sizeof(name), "sparse_%d", t);
        tl_add_col(&f, name, (rf_iceberg_pq_type)t, 1, 1, 1, sparse);
    }
    /* Required lists that are always empty (max_list 0 means 5 in tl_add_col). */
    empty.max_list = 0;
    tl_add_col(&f, "empty_req", RF_ICEBERG_PQ_FLOAT, 0, 1, 0, empty);
    f.gen[f.ncols - 1].max_list = 0;
    tl_add_col(&f, "req_list_opt_elem", RF_ICEBERG_PQ_STRING, 0, 1, 1, sparse);
    tl_rng_seed(&r, 7);
    tl_gen_rows(&f, &r, 300);
    roundtrip(&fp, 1);
    tl_file_fini(&f);
}

static void test_long_strings(void)
{
    tl_file_t f[2];
    tl_file_t *fp[2] = {&f[0], &f[1]};
    for (int i = 0; i < 2; i++) {
        tl_rng_t r;
        char name[64];
        char *path;
        tl_colgen_t g = {TL_LONG, 10, 10, 3, 40};
        snprintf(name, sizeof(name), "long_%d.parquet", i);
        path = tmp_path(name);
        tl_file_init(&f[i], path);
        free(path);
        tl_add_col(&f[i], "s", RF_ICEBERG_PQ_STRING, 1, 0, 0, g);
        tl_add_col(&f[i], "b", RF_ICEBERG_PQ_BINARY, 0, 0, 0, g);
        tl_add_col(&f[i], "ls", RF_ICEBERG_PQ_STRING, 1, 1, 1, g);
        tl_add_col(&f[i], "n", RF_ICEBERG_PQ_INT64, 0, 0, 0, g);
        f[i].opts.codec = i ? RF_ICEBERG_PQ_UNCOMPRESSED : RF_ICEBERG_PQ_ZSTD;
        f[i].opts.page_bytes = 100000; /* long values span several pages' worth */
        tl_rng_seed(&r, 55 + (uint64_t)i);
        tl_gen_rows(&f[i], &r, 200);
        /* Make sure there are values over 64 KiB in each column: rows 0..2. */
        for (size_t row = 0; row < 3; row++) {
            tl_rng_t rr;
            size_t n = 65536 + 1000 * row + 7;
            char *p = rf_xmalloc(n);
            tl_rng_seed(&rr, row);
            for (size_t k = 0; k < n; k++)
                p[k] = (char)('a' + tl_rng_below(&rr, 26));
            if (f[i].narena == f[i].cap_arena) {
                f[i].cap_arena = f[i].cap_arena * 2 + 8;
                f[i].arena = rf_xrealloc(f[i].arena, f[i].cap_arena * sizeof(void *));
            }
            f[i].arena[f[i].narena++] = p;
            f[i].vals[row * f[i].ncols + 0].is_null = 0;
            f[i].vals[row * f[i].ncols + 0].v.bytes = rf_slice(p, n);
            f[i].vals[row * f[i].ncols + 1].v.bytes = rf_slice(p, n - 5);
        }
    }
    roundtrip(fp, 2);
    for (int i = 0; i < 2; i++)
        tl_file_fini(&f[i]);
}

static void test_many_row_groups_and_pages(void)
{
    tl_file_t f[2];
    tl_file_t *fp[2] = {&f[0], &f[1]};
    for (int i = 0; i < 2; i++) {
        tl_rng_t r;
        char name[64];
        char *path;
        tl_colgen_t g = {TL_RANDOM, 15, 15, 8, 20};
        tl_colgen_t lc = {TL_LOWCARD, 15, 15, 8, 20};
        snprintf(name, sizeof(name), "groups_%d.parquet", i);
        path = tmp_path(name);
        tl_file_init(&f[i], path);
        free(path);
        tl_add_col(&f[i], "seq", RF_ICEBERG_PQ_INT64, 0, 0, 0, g);
        tl_add_col(&f[i], "op", RF_ICEBERG_PQ_STRING, 0, 0, 0, lc);
        tl_add_col(&f[i], "text", RF_ICEBERG_PQ_STRING, 1, 0, 0, g);
        tl_add_col(&f[i], "flag", RF_ICEBERG_PQ_BOOLEAN, 1, 0, 0, g);
        tl_add_col(&f[i], "vec", RF_ICEBERG_PQ_FLOAT, 1, 1, 0, g);
        tl_add_col(&f[i], "tags", RF_ICEBERG_PQ_STRING, 1, 1, 1, lc);
        tl_add_col(&f[i], "ts", RF_ICEBERG_PQ_TIMESTAMPTZ, 1, 0, 0, g);
        f[i].opts.codec = i ? RF_ICEBERG_PQ_UNCOMPRESSED : RF_ICEBERG_PQ_ZSTD;
        f[i].opts.page_bytes = 300;
        f[i].opts.row_group_bytes = 6000;
        tl_rng_seed(&r, 900 + (uint64_t)i);
        tl_gen_rows(&f[i], &r, 3000);
    }
    roundtrip(fp, 2);
    RF_CHECK(f[0].res.nsplits > 10);
    RF_CHECK(f[1].res.nsplits > 10);
    for (int i = 0; i < 2; i++)
        tl_file_fini(&f[i]);
}

/* Counts row groups whose column `col` lists `enc` among its encodings. */
static int count_enc(json_t *got, size_t ncols, size_t col, const char *enc)
{
    json_t *meta = json_object_get(got, "duck_meta");
    int n = 0;
    for (size_t i = col; i < json_array_size(meta); i += ncols) {
        json_t *e = json_object_get(json_array_get(meta, i), "encodings");
        if (json_is_string(e) && strstr(json_string_value(e), enc))
            n++;
    }
    return n;
}

static void test_dictionary_fallback(void)
{
    tl_file_t f;
    tl_rng_t r;
    tl_file_t *fp = &f;
    json_t **got;
    rf_err_t err;
    char *path = tmp_path("dict.parquet");
    tl_colgen_t lc = {TL_LOWCARD, 10, 0, 4, 30};
    tl_colgen_t uniq = {TL_UNIQUE, 0, 0, 4, 30};
    tl_colgen_t rnd = {TL_RANDOM, 10, 10, 4, 30};
    tl_file_init(&f, path);
    free(path);
    tl_add_col(&f, "low", RF_ICEBERG_PQ_STRING, 1, 0, 0, lc);    /* dictionary throughout */
    tl_add_col(&f, "uniq", RF_ICEBERG_PQ_STRING, 0, 0, 0, uniq); /* first page: PLAIN */
    tl_add_col(&f, "grow", RF_ICEBERG_PQ_STRING, 1, 0, 0, rnd);  /* dictionary, then full */
    tl_add_col(&f, "bin", RF_ICEBERG_PQ_BINARY, 1, 0, 0, lc);
    tl_add_col(&f, "lowlist", RF_ICEBERG_PQ_STRING, 1, 1, 1, lc);
    f.opts.page_bytes = 256;
    f.opts.dict_max_bytes = 2048;
    f.opts.row_group_bytes = 64 * 1024;
    tl_rng_seed(&r, 31337);
    tl_gen_rows(&f, &r, 2500);
    /* "grow": repeat a few values first so that the dictionary pays off on the first
     * page, then random values fill it past dict_max_bytes. */
    for (size_t row = 0; row < 60; row++)
        f.vals[row * f.ncols + 2] = f.vals[(row % 3) * f.ncols + 0];
    RF_REQUIRE(tl_write(&f, &err) == RF_OK);
    RF_CHECK_INT(tl_check_result(&f), 0);
    got = tl_read(&fp, 1, "");
    RF_REQUIRE(got != NULL);
    RF_CHECK_INT(tl_check_read(&f, got[0]), 0);
    RF_CHECK(count_enc(got[0], f.ncols, 0, "RLE_DICTIONARY") > 0);
    RF_CHECK_INT(count_enc(got[0], f.ncols, 1, "RLE_DICTIONARY"), 0);
    RF_CHECK(count_enc(got[0], f.ncols, 2, "RLE_DICTIONARY") > 0);
    RF_CHECK(count_enc(got[0], f.ncols, 2, "PLAIN") > 0);
    RF_CHECK(count_enc(got[0], f.ncols, 4, "RLE_DICTIONARY") > 0);
    json_decref(got[0]);
    free(got);
    tl_file_fini(&f);
}

static void test_nan_and_special_floats(void)
{
    tl_file_t f;
    tl_rng_t r;
    tl_file_t *fp = &f;
    char *path = tmp_path("nan.parquet");
    tl_colgen_t nan = {TL_NAN, 10, 10, 4, 0};
    tl_colgen_t allnan = {TL_ALLNAN, 10, 10, 4, 0};
    tl_colgen_t rnd = {TL_RANDOM, 10, 10, 4, 0};
    tl_file_init(&f, path);
    free(path);
    tl_add_col(&f, "f_nan", RF_ICEBERG_PQ_FLOAT, 1, 0, 0, nan);
    tl_add_col(&f, "d_nan", RF_ICEBERG_PQ_DOUBLE, 1, 0, 0, nan);
    tl_add_col(&f, "f_allnan", RF_ICEBERG_PQ_FLOAT, 0, 0, 0, allnan);
    tl_add_col(&f, "d_allnan", RF_ICEBERG_PQ_DOUBLE, 1, 0, 0, allnan);
    tl_add_col(&f, "f_rand", RF_ICEBERG_PQ_FLOAT, 0, 0, 0, rnd);
    tl_add_col(&f, "d_rand", RF_ICEBERG_PQ_DOUBLE, 0, 0, 0, rnd);
    tl_add_col(&f, "lf_nan", RF_ICEBERG_PQ_FLOAT, 1, 1, 1, nan);
    tl_add_col(&f, "ld_allnan", RF_ICEBERG_PQ_DOUBLE, 1, 1, 0, allnan);
    f.opts.row_group_bytes = 4000;
    tl_rng_seed(&r, 4242);
    tl_gen_rows(&f, &r, 800);
    roundtrip(&fp, 1);
    tl_file_fini(&f);
}

static void test_empty_file(void)
{
    tl_file_t f;
    tl_file_t *fp = &f;
    tl_rng_t r;
    char *path = tmp_path("empty.parquet");
    tl_colgen_t g = {TL_RANDOM, 10, 10, 4, 10};
    tl_file_init(&f, path);
    free(path);
    add_all_types(&f, g);
    tl_rng_seed(&r, 1);
    tl_gen_rows(&f, &r, 0);
    roundtrip(&fp, 1);
    RF_CHECK_INT(f.res.nsplits, 0);
    tl_file_fini(&f);
}

/* The columns of the Iceberg history table, with 384-float vectors. */
static void test_history_schema(void)
{
    tl_file_t f;
    tl_rng_t r;
    tl_file_t *fp = &f;
    char *path = tmp_path("history.parquet");
    tl_colgen_t g = {TL_RANDOM, 0, 0, 384, 200};
    tl_colgen_t opt = {TL_RANDOM, 20, 0, 384, 60};
    tl_colgen_t lc = {TL_LOWCARD, 0, 0, 4, 20};
    tl_file_init(&f, path);
    free(path);
    tl_add_col(&f, "seq", RF_ICEBERG_PQ_INT64, 0, 0, 0, g);
    tl_add_col(&f, "op", RF_ICEBERG_PQ_STRING, 0, 0, 0, lc);
    tl_add_col(&f, "id", RF_ICEBERG_PQ_STRING, 0, 0, 0, (tl_colgen_t){TL_UNIQUE, 0, 0, 4, 30});
    tl_add_col(&f, "source", RF_ICEBERG_PQ_STRING, 1, 0, 0, lc);
    tl_add_col(&f, "tenant", RF_ICEBERG_PQ_STRING, 1, 0, 0, lc);
    tl_add_col(&f, "text", RF_ICEBERG_PQ_STRING, 1, 0, 0, g);
    tl_add_col(&f, "metadata", RF_ICEBERG_PQ_STRING, 1, 0, 0, opt);
    tl_add_col(&f, "label", RF_ICEBERG_PQ_STRING, 1, 0, 0, lc);
    tl_add_col(&f, "label_score", RF_ICEBERG_PQ_DOUBLE, 1, 0, 0, opt);
    tl_add_col(&f, "model", RF_ICEBERG_PQ_STRING, 1, 0, 0, lc);
    tl_add_col(&f, "dim", RF_ICEBERG_PQ_INT32, 1, 0, 0, lc);
    tl_add_col(&f, "content_hash", RF_ICEBERG_PQ_STRING, 1, 0, 0, opt);
    tl_add_col(&f, "vector", RF_ICEBERG_PQ_FLOAT, 1, 1, 0, opt);
    tl_add_col(&f, "event_time", RF_ICEBERG_PQ_TIMESTAMPTZ, 1, 0, 0, opt);
    tl_add_col(&f, "ingest_time", RF_ICEBERG_PQ_TIMESTAMPTZ, 0, 0, 0, g);
    tl_add_col(&f, "kafka_topic", RF_ICEBERG_PQ_STRING, 0, 0, 0, lc);
    tl_add_col(&f, "kafka_partition", RF_ICEBERG_PQ_INT32, 0, 0, 0, lc);
    tl_add_col(&f, "kafka_offset", RF_ICEBERG_PQ_INT64, 0, 0, 0, g);
    tl_add_col(&f, "source_position", RF_ICEBERG_PQ_STRING, 1, 0, 0, opt);
    tl_add_col(&f, "ingest_day", RF_ICEBERG_PQ_DATE, 0, 0, 0, g);
    f.opts.row_group_bytes = 512 * 1024;
    tl_rng_seed(&r, 2024);
    tl_gen_rows(&f, &r, 1500);
    roundtrip(&fp, 1);
    RF_CHECK(f.res.nsplits >= 2);
    tl_file_fini(&f);
}

static void test_cleanup(void)
{
    if (dir)
        rf_test_rmtree(dir);
    free(dir);
    dir = NULL;
}

RF_TEST_MAIN(test_all_types_codecs, test_nulls_and_empty_lists, test_long_strings,
             test_many_row_groups_and_pages, test_dictionary_fallback, test_nan_and_special_floats,
             test_empty_file, test_history_schema, test_cleanup)
