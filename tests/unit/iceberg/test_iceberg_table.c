/* test_iceberg_table.c - table metadata, the SQLite catalog and appends, without Parquet:
 * every v2 required metadata field, versioned metadata files and their log, schema
 * evolution, snapshot summaries, the JDBC catalog schema, compare-and-swap between two
 * writers (one wins, the other sees RF_EBUSY), and reading other engines' files.
 * Covers INVARIANT(history-exported-once): a writer that read the table's position
 * (ragfeed.seq) before another commit cannot commit on top of it.
 */
#include "iceberg/iceberg_int.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "rf_test.h"

/* ==== Fixtures ==== */

static const rf_iceberg_field_t base_fields[] = {
    {1, "seq", 1, "long", 0, NULL, 0, "store sequence number"},
    {2, "op", 1, "string", 0, NULL, 0, NULL},
    {3, "id", 1, "string", 0, NULL, 0, NULL},
    {4, "ingest_time", 1, "timestamptz", 0, NULL, 0, NULL},
    {5, "vector", 0, "list", 6, "float", 0, NULL},
};
static const rf_iceberg_part_field_t day_spec[] = {
    {"ingest_time", "day", "ingest_time_day", 1000},
};

static rf_iceberg_meta_t *new_meta(const char *location)
{
    rf_iceberg_meta_t *m = NULL;
    rf_err_t err;
    const rf_iceberg_kv_t props[] = {{"write.format.default", "parquet"}};
    rf_rc rc = rf__iceberg_meta_create(location, base_fields, 5, day_spec, 1, props, 1, &m, &err);
    if (rc)
        fprintf(stderr, "meta_create: %s\n", err.msg);
    RF_REQUIRE(rc == RF_OK && m);
    return m;
}

/* A data file description with plausible statistics (the file itself need not exist
 * for the manifest writer). */
typedef struct fake_file {
    rf_iceberg_pq_colstats_t cols[6];
    uint8_t lo[8], hi[8];
    int64_t splits[2];
    rf_iceberg_pq_result_t pq;
    rf_iceberg_part_value_t part;
    rf_iceberg_data_file_t df;
    char path[512];
} fake_file_t;

static void fake_init(fake_file_t *f, const char *dir, int n, int64_t rows, int32_t day)
{
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s/data/f%d.parquet", dir, n);
    for (int i = 0; i < 6; i++) {
        f->cols[i].field_id = i + 1;
        f->cols[i].in_list = i == 5;
        f->cols[i].value_count = i == 5 ? rows * 2 : rows;
        f->cols[i].null_count = i == 4 ? 1 : 0;
        f->cols[i].nan_count = i == 5 ? 0 : -1;
        f->cols[i].column_size = 100 + i;
    }
    for (int i = 0; i < 8; i++) {
        f->lo[i] = (uint8_t)(i == 0 ? n : 0);
        f->hi[i] = (uint8_t)(i == 0 ? n + 10 : 0);
    }
    f->cols[0].has_lower = f->cols[0].has_upper = 1;
    f->cols[0].lower = f->lo;
    f->cols[0].upper = f->hi;
    f->cols[0].lower_len = f->cols[0].upper_len = 8;
    f->splits[0] = 4;
    f->splits[1] = 1000;
    f->pq.row_count = rows;
    f->pq.file_size = 5000 + n;
    f->pq.cols = f->cols;
    f->pq.ncols = 6;
    f->pq.split_offsets = f->splits;
    f->pq.nsplits = 2;
    f->part.value = day;
    f->df.path = f->path;
    f->df.pq = &f->pq;
    f->df.partition = &f->part;
    f->df.npartition = 1;
}

static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d)
        return 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name), s = strlen(suffix);
        if (l >= s && !strcmp(e->d_name + l - s, suffix))
            n++;
    }
    closedir(d);
    return n;
}

/* ==== Metadata ==== */

static void test_day_from_micros(void)
{
    RF_CHECK_INT(rf__iceberg_day_from_micros(0), 0);
    RF_CHECK_INT(rf__iceberg_day_from_micros(-1), -1);
    RF_CHECK_INT(rf__iceberg_day_from_micros(INT64_C(86400000000)), 1);
    RF_CHECK_INT(rf__iceberg_day_from_micros(INT64_C(86400000000) - 1), 0);
    RF_CHECK_INT(rf__iceberg_day_from_micros(-INT64_C(86400000000)), -1);
    RF_CHECK_INT(rf__iceberg_day_from_micros(-INT64_C(86400000000) - 1), -2);
    /* 2024-05-01T10:00:00Z */
    RF_CHECK_INT(rf__iceberg_day_from_micros(INT64_C(1714557600000000)), 19844);
}

static void test_meta_create_required_fields(void)
{
    static const char *required[] = {
        "format-version",
        "table-uuid",
        "location",
        "last-sequence-number",
        "last-updated-ms",
        "last-column-id",
        "schemas",
        "current-schema-id",
        "partition-specs",
        "default-spec-id",
        "last-partition-id",
        "sort-orders",
        "default-sort-order-id",
        "properties",
        "current-snapshot-id",
        "snapshots",
        "snapshot-log",
        "metadata-log",
        "refs",
    };
    rf_iceberg_meta_t *m = new_meta("/tmp/x/tbl/");
    const json_t *root = rf__iceberg_meta_json(m);
    const json_t *spec, *pf, *schema, *vec;
    const char *uuid;

    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        if (!json_object_get(root, required[i]))
            fprintf(stderr, "missing %s\n", required[i]);
        RF_CHECK(json_object_get(root, required[i]) != NULL);
    }
    RF_CHECK_INT(json_integer_value(json_object_get(root, "format-version")), 2);
    RF_CHECK_STR(rf__iceberg_meta_location(m), "/tmp/x/tbl");
    uuid = json_string_value(json_object_get(root, "table-uuid"));
    RF_REQUIRE(uuid && strlen(uuid) == 36);
    RF_CHECK(uuid[8] == '-' && uuid[13] == '-' && uuid[14] == '4' && uuid[18] == '-');
    RF_CHECK_INT(json_integer_value(json_object_get(root, "last-column-id")), 6);
    RF_CHECK_INT(json_integer_value(json_object_get(root, "last-sequence-number")), 0);
    RF_CHECK_INT(rf__iceberg_meta_current_snapshot_id(m), -1);
    RF_CHECK_INT(json_integer_value(json_object_get(root, "last-partition-id")), 1000);
    RF_CHECK_INT(rf__iceberg_meta_field_id(m, "ingest_time"), 4);
    RF_CHECK_INT(rf__iceberg_meta_field_id(m, "nope"), 0);

    schema = rf__iceberg_meta_schema(m);
    RF_REQUIRE(schema);
    RF_CHECK_STR(json_string_value(json_object_get(schema, "type")), "struct");
    vec = json_object_get(json_array_get(json_object_get(schema, "fields"), 4), "type");
    RF_CHECK_STR(json_string_value(json_object_get(vec, "type")), "list");
    RF_CHECK_INT(json_integer_value(json_object_get(vec, "element-id")), 6);
    RF_CHECK(json_is_false(json_object_get(vec, "element-required")));

    spec = rf__iceberg_meta_spec(m);
    RF_REQUIRE(spec);
    pf = json_array_get(json_object_get(spec, "fields"), 0);
    RF_CHECK_STR(json_string_value(json_object_get(pf, "name")), "ingest_time_day");
    RF_CHECK_STR(json_string_value(json_object_get(pf, "transform")), "day");
    RF_CHECK_INT(json_integer_value(json_object_get(pf, "source-id")), 4);
    RF_CHECK_INT(json_integer_value(json_object_get(pf, "field-id")), 1000);
    {
        const json_t *so = json_array_get(json_object_get(root, "sort-orders"), 0);
        RF_CHECK_INT(json_integer_value(json_object_get(so, "order-id")), 0);
        RF_CHECK_INT(json_array_size(json_object_get(so, "fields")), 0);
    }
    /* Two tables never share a uuid. */
    {
        rf_iceberg_meta_t *m2 = new_meta("/tmp/x/tbl");
        RF_CHECK(strcmp(uuid, json_string_value(
                                  json_object_get(rf__iceberg_meta_json(m2), "table-uuid"))) != 0);
        rf__iceberg_meta_free(m2);
    }
    rf__iceberg_meta_free(m);
}

static void test_meta_create_rejects(void)
{
    rf_iceberg_meta_t *m = NULL;
    rf_err_t err;
    const rf_iceberg_field_t dup[] = {{1, "a", 1, "long", 0, NULL, 0, NULL},
                                      {2, "a", 0, "string", 0, NULL, 0, NULL}};
    const rf_iceberg_field_t dup_id[] = {{1, "a", 1, "long", 0, NULL, 0, NULL},
                                         {1, "b", 0, "string", 0, NULL, 0, NULL}};
    const rf_iceberg_field_t badtype[] = {{1, "a", 1, "varchar", 0, NULL, 0, NULL}};
    const rf_iceberg_field_t ok[] = {{0, "a", 1, "string", 0, NULL, 0, NULL},
                                     {0, "t", 0, "timestamptz", 0, NULL, 0, NULL},
                                     {0, "d", 0, "decimal(10, 2)", 0, NULL, 0, NULL}};
    const rf_iceberg_part_field_t day_on_string[] = {{"a", "day", NULL, 0}};
    const rf_iceberg_part_field_t truncate[] = {{"a", "truncate[4]", NULL, 0}};
    const rf_iceberg_part_field_t missing[] = {{"zz", "day", NULL, 0}};
    const rf_iceberg_part_field_t hour_ok[] = {{"t", "hour", NULL, 0}};

    RF_CHECK_INT(rf__iceberg_meta_create("/t", dup, 2, NULL, 0, NULL, 0, &m, &err), RF_EINVAL);
    RF_CHECK_INT(rf__iceberg_meta_create("/t", dup_id, 2, NULL, 0, NULL, 0, &m, &err), RF_EINVAL);
    RF_CHECK_INT(rf__iceberg_meta_create("/t", badtype, 1, NULL, 0, NULL, 0, &m, &err), RF_EINVAL);
    RF_CHECK_INT(rf__iceberg_meta_create("rel/t", ok, 1, NULL, 0, NULL, 0, &m, &err), RF_EINVAL);
    RF_CHECK_INT(rf__iceberg_meta_create("s3://b/t", ok, 1, NULL, 0, NULL, 0, &m, &err), RF_EINVAL);
    RF_CHECK_INT(rf__iceberg_meta_create("/t", ok, 3, day_on_string, 1, NULL, 0, &m, &err),
                 RF_EINVAL);
    RF_CHECK_INT(rf__iceberg_meta_create("/t", ok, 3, truncate, 1, NULL, 0, &m, &err), RF_ENOTIMPL);
    RF_CHECK_INT(rf__iceberg_meta_create("/t", ok, 3, missing, 1, NULL, 0, &m, &err), RF_EINVAL);
    RF_CHECK(m == NULL);
    /* Ids given as 0 are assigned in order; default partition names and ids. */
    RF_REQUIRE(rf__iceberg_meta_create("file:///t", ok, 3, hour_ok, 1, NULL, 0, &m, &err) == RF_OK);
    RF_CHECK_INT(rf__iceberg_meta_field_id(m, "a"), 1);
    RF_CHECK_INT(rf__iceberg_meta_field_id(m, "d"), 3);
    {
        const json_t *pf = json_array_get(json_object_get(rf__iceberg_meta_spec(m), "fields"), 0);
        RF_CHECK_STR(json_string_value(json_object_get(pf, "name")), "t_hour");
        RF_CHECK_INT(json_integer_value(json_object_get(pf, "field-id")), 1000);
    }
    rf__iceberg_meta_free(m);
}

static void test_meta_write_and_log(void)
{
    char *dir = rf_test_tmpdir("iceberg-meta");
    char *mdir = rf_xasprintf("%s/metadata", dir);
    rf_iceberg_meta_t *m = new_meta(dir), *back = NULL;
    rf_err_t err;
    const char *f0 = NULL, *f1 = NULL;
    char *f0copy;
    const json_t *mlog;

    RF_REQUIRE(rf__iceberg_meta_write(m, &f0, &err) == RF_OK);
    RF_REQUIRE(f0 != NULL);
    RF_CHECK(strncmp(f0, dir, strlen(dir)) == 0);
    RF_CHECK(strstr(f0, "/metadata/00000-") != NULL);
    RF_CHECK(strlen(strrchr(f0, '/') + 1) == strlen("00000-") + 36 + strlen(".metadata.json"));
    RF_CHECK_INT(json_array_size(json_object_get(rf__iceberg_meta_json(m), "metadata-log")), 0);
    f0copy = rf_xstrdup(f0);

    /* The written file parses back to the same tree. */
    RF_REQUIRE(rf__iceberg_meta_load(f0copy, &back, &err) == RF_OK);
    RF_CHECK(json_equal((json_t *)rf__iceberg_meta_json(back), (json_t *)rf__iceberg_meta_json(m)));
    RF_CHECK_STR(rf__iceberg_meta_file(back), f0copy);

    rf__iceberg_meta_set_property(back, "owner", "ragfeed");
    RF_REQUIRE(rf__iceberg_meta_write(back, &f1, &err) == RF_OK);
    RF_CHECK(strstr(f1, "/metadata/00001-") != NULL);
    mlog = json_object_get(rf__iceberg_meta_json(back), "metadata-log");
    RF_REQUIRE(json_array_size(mlog) == 1);
    RF_CHECK_STR(json_string_value(json_object_get(json_array_get(mlog, 0), "metadata-file")),
                 f0copy);
    RF_CHECK(json_integer_value(json_object_get(json_array_get(mlog, 0), "timestamp-ms")) <=
             json_integer_value(json_object_get(rf__iceberg_meta_json(back), "last-updated-ms")));
    RF_CHECK_INT(count_files(mdir, ".metadata.json"), 2);
    RF_CHECK_INT(count_files(mdir, ".tmp"), 0);

    /* The log keeps at most write.metadata.previous-versions-max entries. */
    rf__iceberg_meta_set_property(back, "write.metadata.previous-versions-max", "2");
    for (int i = 0; i < 4; i++)
        RF_REQUIRE(rf__iceberg_meta_write(back, NULL, &err) == RF_OK);
    mlog = json_object_get(rf__iceberg_meta_json(back), "metadata-log");
    RF_CHECK_INT(json_array_size(mlog), 2);
    RF_CHECK(strstr(rf__iceberg_meta_file(back), "/metadata/00005-") != NULL);

    /* Parsing refuses what is not v2 metadata. */
    {
        rf_iceberg_meta_t *x = NULL;
        RF_CHECK_INT(rf__iceberg_meta_parse("{\"format-version\":1}", 20, NULL, &x, &err),
                     RF_ENOTIMPL);
        RF_CHECK_INT(rf__iceberg_meta_parse("{\"format-version\":2}", 20, NULL, &x, &err),
                     RF_EPARSE);
        RF_CHECK_INT(rf__iceberg_meta_parse("{\"a\":1,\"a\":2}", 13, NULL, &x, &err), RF_EPARSE);
        RF_CHECK(x == NULL);
    }
    rf__iceberg_meta_free(back);
    rf__iceberg_meta_free(m);
    free(f0copy);
    free(mdir);
    rf_test_rmtree(dir);
    free(dir);
}

static void test_meta_add_columns(void)
{
    rf_iceberg_meta_t *m = new_meta("/tmp/t");
    rf_err_t err;
    const rf_iceberg_field_t price[] = {{0, "price", 0, "double", 0, NULL, 0, NULL},
                                        {99, "tags", 0, "list", 0, "string", 1, NULL}};
    const rf_iceberg_field_t req[] = {{0, "r", 1, "int", 0, NULL, 0, NULL}};
    const rf_iceberg_field_t dup[] = {{0, "op", 0, "int", 0, NULL, 0, NULL}};
    const json_t *root = rf__iceberg_meta_json(m);

    RF_CHECK_INT(rf__iceberg_meta_add_columns(m, req, 1, &err), RF_EINVAL);
    RF_CHECK_INT(rf__iceberg_meta_add_columns(m, dup, 1, &err), RF_EEXIST);
    RF_CHECK_INT(rf__iceberg_meta_schema_id(m), 0);
    RF_REQUIRE(rf__iceberg_meta_add_columns(m, price, 2, &err) == RF_OK);
    root = rf__iceberg_meta_json(m);
    RF_CHECK_INT(rf__iceberg_meta_schema_id(m), 1);
    RF_CHECK_INT(json_array_size(json_object_get(root, "schemas")), 2);
    /* New ids come after last-column-id, whatever the caller asked. */
    RF_CHECK_INT(rf__iceberg_meta_field_id(m, "price"), 7);
    RF_CHECK_INT(rf__iceberg_meta_field_id(m, "tags"), 8);
    RF_CHECK_INT(json_integer_value(json_object_get(root, "last-column-id")), 9);
    /* Old columns keep their ids; the old schema is still there for old snapshots. */
    RF_CHECK_INT(rf__iceberg_meta_field_id(m, "seq"), 1);
    RF_CHECK_INT(json_array_size(json_object_get(
                     json_array_get(json_object_get(root, "schemas"), 0), "fields")),
                 5);
    rf__iceberg_meta_free(m);
}

static void test_meta_snapshot_summary(void)
{
    rf_iceberg_meta_t *m = new_meta("/tmp/t");
    rf_err_t err;
    rf_iceberg_append_stats_t a1 = {2, 100, 5000, 1}, a2 = {1, 7, 300, 1};
    const rf_iceberg_kv_t props[] = {{"ragfeed.seq", "100"}, {"ragfeed.offsets", "{\"t/0\":101}"}};
    const rf_iceberg_kv_t bad[] = {{"total-records", "1"}};
    int64_t s1 = rf__iceberg_meta_new_snapshot_id(m), s2;
    const json_t *snap, *root;

    RF_CHECK(s1 > 0);
    RF_CHECK_INT(
        rf__iceberg_meta_add_snapshot(m, s1, "/tmp/t/metadata/l1.avro", 1000, &a1, bad, 1, &err),
        RF_EINVAL);
    RF_CHECK_INT(rf__iceberg_meta_current_snapshot_id(m), -1);
    RF_REQUIRE(rf__iceberg_meta_add_snapshot(m, s1, "/tmp/t/metadata/l1.avro", 1000, &a1, props, 2,
                                             &err) == RF_OK);
    s2 = rf__iceberg_meta_new_snapshot_id(m);
    RF_CHECK(s2 != s1);
    RF_CHECK_INT(rf__iceberg_meta_add_snapshot(m, s1, "/x", 1001, &a2, NULL, 0, &err), RF_EINVAL);
    RF_REQUIRE(rf__iceberg_meta_add_snapshot(m, s2, "/tmp/t/metadata/l2.avro", 1001, &a2, NULL, 0,
                                             &err) == RF_OK);
    root = rf__iceberg_meta_json(m);
    RF_CHECK(rf__iceberg_meta_current_snapshot_id(m) == s2);
    RF_CHECK_INT(rf__iceberg_meta_last_seq(m), 2);
    RF_CHECK(json_integer_value(json_object_get(
                 json_object_get(json_object_get(root, "refs"), "main"), "snapshot-id")) == s2);
    RF_CHECK_INT(json_array_size(json_object_get(root, "snapshot-log")), 2);
    snap = rf__iceberg_meta_snapshot(m, -1);
    RF_REQUIRE(snap);
    RF_CHECK(json_integer_value(json_object_get(snap, "parent-snapshot-id")) == s1);
    RF_CHECK_INT(json_integer_value(json_object_get(snap, "sequence-number")), 2);
    RF_CHECK_INT(json_integer_value(json_object_get(snap, "schema-id")), 0);
    RF_CHECK(json_object_get(rf__iceberg_meta_snapshot(m, s1), "parent-snapshot-id") == NULL);
    RF_CHECK_STR(rf__iceberg_meta_summary(m, -1, "operation"), "append");
    RF_CHECK_STR(rf__iceberg_meta_summary(m, -1, "added-records"), "7");
    RF_CHECK_STR(rf__iceberg_meta_summary(m, -1, "total-records"), "107");
    RF_CHECK_STR(rf__iceberg_meta_summary(m, -1, "total-data-files"), "3");
    RF_CHECK_STR(rf__iceberg_meta_summary(m, -1, "total-files-size"), "5300");
    RF_CHECK_STR(rf__iceberg_meta_summary(m, -1, "total-delete-files"), "0");
    RF_CHECK_STR(rf__iceberg_meta_summary(m, -1, "total-position-deletes"), "0");
    RF_CHECK_STR(rf__iceberg_meta_summary(m, -1, "total-equality-deletes"), "0");
    RF_CHECK_STR(rf__iceberg_meta_summary(m, s1, "ragfeed.seq"), "100");
    RF_CHECK_STR(rf__iceberg_meta_summary(m, s1, "ragfeed.offsets"), "{\"t/0\":101}");
    RF_CHECK(rf__iceberg_meta_summary(m, s2, "ragfeed.seq") == NULL);
    RF_CHECK(json_integer_value(json_object_get(root, "last-updated-ms")) >= 1001);
    rf__iceberg_meta_free(m);
}

/* ==== Catalog ==== */

static void test_catalog_schema(void)
{
    char *dir = rf_test_tmpdir("iceberg-cat");
    char *db = rf_xasprintf("%s/catalog.db", dir);
    rf_iceberg_catalog_t *cat = NULL;
    rf_err_t err;
    char *loc = NULL, *prev = NULL;
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    rf_buf_t cols;

    RF_REQUIRE(rf__iceberg_catalog_open(db, "ragfeed", &cat, &err) == RF_OK);
    RF_CHECK_INT(rf__iceberg_catalog_table_create(cat, "ns", "t", "/m0.json", &err), RF_ENOTFOUND);
    RF_REQUIRE(rf__iceberg_catalog_namespace_create(cat, "ns", NULL, 0, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_catalog_namespace_create(cat, "ns", NULL, 0, &err) == RF_OK);
    RF_CHECK(rf__iceberg_catalog_namespace_exists(cat, "ns"));
    RF_CHECK(!rf__iceberg_catalog_namespace_exists(cat, "other"));
    RF_REQUIRE(rf__iceberg_catalog_table_create(cat, "ns", "t", "/m0.json", &err) == RF_OK);
    RF_CHECK_INT(rf__iceberg_catalog_table_create(cat, "ns", "t", "/m1.json", &err), RF_EEXIST);
    RF_REQUIRE(rf__iceberg_catalog_table_load(cat, "ns", "t", &loc, &prev, &err) == RF_OK);
    RF_CHECK_STR(loc, "/m0.json");
    RF_CHECK(prev == NULL);
    free(loc);
    RF_CHECK_INT(rf__iceberg_catalog_table_load(cat, "ns", "zz", &loc, NULL, &err), RF_ENOTFOUND);
    RF_CHECK(loc == NULL);
    rf__iceberg_catalog_close(cat);

    /* The columns Java's JdbcCatalog (V1) and pyiceberg's SqlCatalog use, in order. */
    RF_REQUIRE(sqlite3_open(db, &h) == SQLITE_OK);
    rf_buf_init(&cols, 0);
    RF_REQUIRE(sqlite3_prepare_v2(h, "SELECT name FROM pragma_table_info('iceberg_tables')", -1,
                                  &st, NULL) == SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW)
        rf_buf_printf(&cols, "%s,", sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    RF_CHECK_STR(cols.ptr, "catalog_name,table_namespace,table_name,metadata_location,"
                           "previous_metadata_location,iceberg_type,");
    rf_buf_reset(&cols);
    RF_REQUIRE(
        sqlite3_prepare_v2(h, "SELECT name FROM pragma_table_info('iceberg_namespace_properties')",
                           -1, &st, NULL) == SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW)
        rf_buf_printf(&cols, "%s,", sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    RF_CHECK_STR(cols.ptr, "catalog_name,namespace,property_key,property_value,");
    rf_buf_reset(&cols);
    RF_REQUIRE(sqlite3_prepare_v2(h,
                                  "SELECT catalog_name, namespace, property_key, property_value "
                                  "FROM iceberg_namespace_properties",
                                  -1, &st, NULL) == SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW)
        rf_buf_printf(&cols, "%s|%s|%s|%s;", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
                      sqlite3_column_text(st, 2), sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    RF_CHECK_STR(cols.ptr, "ragfeed|ns|exists|true;");
    rf_buf_reset(&cols);
    RF_REQUIRE(sqlite3_prepare_v2(h, "SELECT iceberg_type FROM iceberg_tables", -1, &st, NULL) ==
               SQLITE_OK);
    RF_CHECK(sqlite3_step(st) == SQLITE_ROW);
    RF_CHECK_STR((const char *)sqlite3_column_text(st, 0), "TABLE");
    sqlite3_finalize(st);
    rf_buf_fini(&cols);
    sqlite3_close(h);
    rf_test_rmtree(dir);
    free(db);
    free(dir);
}

static void test_catalog_cas_two_writers(void)
{
    char *dir = rf_test_tmpdir("iceberg-cas");
    char *db = rf_xasprintf("%s/catalog.db", dir);
    rf_iceberg_catalog_t *a = NULL, *b = NULL;
    rf_err_t err;
    char *la = NULL, *lb = NULL, *cur = NULL, *prev = NULL;

    RF_REQUIRE(rf__iceberg_catalog_open(db, "c", &a, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_catalog_open(db, "c", &b, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_catalog_namespace_create(a, "ns", NULL, 0, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_catalog_table_create(a, "ns", "t", "/v0", &err) == RF_OK);
    /* Both writers start from the same version. */
    RF_REQUIRE(rf__iceberg_catalog_table_load(a, "ns", "t", &la, NULL, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_catalog_table_load(b, "ns", "t", &lb, NULL, &err) == RF_OK);
    RF_CHECK_STR(la, lb);
    RF_CHECK_INT(rf__iceberg_catalog_table_commit(a, "ns", "t", la, "/v1-a", &err), RF_OK);
    RF_CHECK_INT(rf__iceberg_catalog_table_commit(b, "ns", "t", lb, "/v1-b", &err), RF_EBUSY);
    RF_CHECK(rf_rc_retriable(RF_EBUSY));
    RF_CHECK(strstr(err.msg, "/v1-a") != NULL);
    RF_REQUIRE(rf__iceberg_catalog_table_load(b, "ns", "t", &cur, &prev, &err) == RF_OK);
    RF_CHECK_STR(cur, "/v1-a");
    RF_CHECK_STR(prev, "/v0");
    /* The loser retries from the new version and wins. */
    RF_CHECK_INT(rf__iceberg_catalog_table_commit(b, "ns", "t", cur, "/v2-b", &err), RF_OK);
    RF_CHECK_INT(rf__iceberg_catalog_table_commit(a, "ns", "gone", "/v0", "/v9", &err),
                 RF_ENOTFOUND);
    /* Another catalog name does not see the table. */
    {
        rf_iceberg_catalog_t *c = NULL;
        char *x = NULL;
        RF_REQUIRE(rf__iceberg_catalog_open(db, "other", &c, &err) == RF_OK);
        RF_CHECK_INT(rf__iceberg_catalog_table_load(c, "ns", "t", &x, NULL, &err), RF_ENOTFOUND);
        rf__iceberg_catalog_close(c);
    }
    free(la);
    free(lb);
    free(cur);
    free(prev);
    rf__iceberg_catalog_close(a);
    rf__iceberg_catalog_close(b);
    rf_test_rmtree(dir);
    free(db);
    free(dir);
}

/* ==== Tables ==== */

static void test_table_append_and_conflict(void)
{
    char *dir = rf_test_tmpdir("iceberg-append");
    char *db = rf_xasprintf("%s/catalog.db", dir);
    char *loc = rf_xasprintf("%s/wh/ns/t", dir);
    char *mdir = rf_xasprintf("%s/metadata", loc);
    rf_iceberg_catalog_t *ca = NULL, *cb = NULL;
    rf_iceberg_table_t *ta = NULL, *tb = NULL;
    rf_err_t err;
    fake_file_t f1, f2, f3;
    rf_iceberg_data_file_t two[2];
    int64_t s1 = -1, s2 = -1, s3 = -1;
    const rf_iceberg_kv_t p1[] = {{"ragfeed.seq", "10"}};
    const rf_iceberg_kv_t p2[] = {{"ragfeed.seq", "20"}};
    rf_iceberg_manifest_file_t *mfs = NULL;
    size_t nmfs = 0;

    fake_init(&f1, loc, 1, 10, 19844);
    fake_init(&f2, loc, 2, 5, 19846);
    fake_init(&f3, loc, 3, 7, 19845);
    f2.part.is_null = 1;
    two[0] = f1.df;
    two[1] = f2.df;

    RF_REQUIRE(rf__iceberg_catalog_open(db, "c", &ca, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_catalog_open(db, "c", &cb, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_table_create(ca, "ns", "t", new_meta(loc), &ta, &err) == RF_OK);
    {
        rf_iceberg_table_t *again = NULL;
        rf_iceberg_meta_t *m = new_meta(loc);
        RF_CHECK_INT(rf__iceberg_table_create(cb, "ns", "t", m, &again, &err), RF_EEXIST);
        rf__iceberg_meta_free(m);
    }
    RF_REQUIRE(rf__iceberg_table_load(cb, "ns", "t", &tb, &err) == RF_OK);
    RF_CHECK_STR(rf__iceberg_meta_file(ta->meta), rf__iceberg_meta_file(tb->meta));

    /* A wins; B, which loaded the same version, loses and learns it. */
    RF_REQUIRE(rf__iceberg_table_append(ta, two, 2, p1, 1, &s1, &err) == RF_OK);
    RF_CHECK(s1 > 0);
    RF_CHECK_INT(rf__iceberg_table_append(tb, &f3.df, 1, p2, 1, &s2, &err), RF_EBUSY);
    RF_CHECK_INT(s2, -1);
    RF_CHECK_INT(rf__iceberg_meta_current_snapshot_id(tb->meta), -1);
    /* B refreshes, sees A's position, and appends on top. */
    RF_REQUIRE(rf__iceberg_table_refresh(tb, &err) == RF_OK);
    RF_CHECK_STR(rf__iceberg_meta_summary(tb->meta, -1, "ragfeed.seq"), "10");
    RF_REQUIRE(rf__iceberg_table_append(tb, &f3.df, 1, p2, 1, &s2, &err) == RF_OK);
    RF_CHECK_STR(rf__iceberg_meta_summary(tb->meta, -1, "total-records"), "22");
    RF_CHECK_STR(rf__iceberg_meta_summary(tb->meta, -1, "total-data-files"), "3");
    RF_CHECK_STR(rf__iceberg_meta_summary(tb->meta, s1, "changed-partition-count"), "2");
    RF_CHECK_INT(rf__iceberg_meta_last_seq(tb->meta), 2);

    /* The current list holds the new manifest first, then the older one. */
    {
        const char *ml = json_string_value(
            json_object_get(rf__iceberg_meta_snapshot(tb->meta, -1), "manifest-list"));
        RF_REQUIRE(rf__iceberg_manifest_list_read(ml, &mfs, &nmfs, &err) == RF_OK);
        RF_REQUIRE(nmfs == 2);
        RF_CHECK(mfs[0].added_snapshot_id == s2);
        RF_CHECK_INT(mfs[0].seq, 2);
        RF_CHECK_INT(mfs[0].added_rows, 7);
        RF_CHECK(mfs[1].added_snapshot_id == s1);
        RF_CHECK_INT(mfs[1].seq, 1);
        RF_CHECK_INT(mfs[1].min_seq, 1);
        RF_CHECK_INT(mfs[1].added_files, 2);
        RF_CHECK_INT(mfs[1].added_rows, 15);
        RF_REQUIRE(mfs[1].nparts == 1);
        RF_CHECK(mfs[1].parts[0].contains_null);
        RF_CHECK_INT(mfs[1].parts[0].contains_nan, 0);
        RF_REQUIRE(mfs[1].parts[0].lower && mfs[1].parts[0].lower_len == 4);
        /* 19844 = 0x4d84, little-endian */
        RF_CHECK(mfs[1].parts[0].lower[0] == 0x84 && mfs[1].parts[0].lower[1] == 0x4d);
        RF_CHECK(mfs[1].parts[0].upper[0] == 0x84);
        {
            struct stat stt;
            RF_REQUIRE(stat(mfs[0].path, &stt) == 0);
            RF_CHECK_INT(stt.st_size, mfs[0].length);
        }
        /* The manifest's own entries. */
        {
            json_t *meta = NULL, *entries = NULL, *e, *df;
            RF_REQUIRE(rf__iceberg_manifest_read(mfs[1].path, &meta, &entries, &err) == RF_OK);
            RF_REQUIRE(json_array_size(entries) == 2);
            RF_CHECK_STR(json_string_value(json_object_get(meta, "content")), "data");
            RF_CHECK_STR(json_string_value(json_object_get(meta, "format-version")), "2");
            RF_CHECK_STR(json_string_value(json_object_get(meta, "partition-spec-id")), "0");
            RF_CHECK_STR(json_string_value(json_object_get(meta, "schema-id")), "0");
            e = json_array_get(entries, 0);
            df = json_object_get(e, "data_file");
            RF_CHECK_INT(json_integer_value(json_object_get(e, "status")), 1);
            RF_CHECK(json_integer_value(json_object_get(e, "snapshot_id")) == s1);
            RF_CHECK(json_is_null(json_object_get(e, "sequence_number")));
            RF_CHECK_STR(json_string_value(json_object_get(df, "file_path")), f1.path);
            RF_CHECK_STR(json_string_value(json_object_get(df, "file_format")), "PARQUET");
            RF_CHECK_INT(json_integer_value(
                             json_object_get(json_object_get(df, "partition"), "ingest_time_day")),
                         19844);
            RF_CHECK_INT(json_integer_value(json_object_get(df, "record_count")), 10);
            RF_CHECK_INT(json_array_size(json_object_get(df, "column_sizes")), 6);
            /* Bounds only for the top-level column that has them, none for list values. */
            RF_CHECK_INT(json_array_size(json_object_get(df, "lower_bounds")), 1);
            RF_CHECK_INT(json_array_size(json_object_get(df, "nan_value_counts")), 1);
            RF_CHECK_INT(json_array_size(json_object_get(df, "split_offsets")), 2);
            /* The second file's partition value is null. */
            df = json_object_get(json_array_get(entries, 1), "data_file");
            RF_CHECK(
                json_is_null(json_object_get(json_object_get(df, "partition"), "ingest_time_day")));
            json_decref(meta);
            json_decref(entries);
        }
        rf__iceberg_manifest_files_free(mfs, nmfs);
    }
    /* A rejects the stale handle's commit too, and schema evolution commits alone. */
    {
        const rf_iceberg_field_t price[] = {{0, "price", 0, "double", 0, NULL, 0, NULL}};
        RF_CHECK_INT(rf__iceberg_table_add_columns(ta, price, 1, &err), RF_EBUSY);
        RF_REQUIRE(rf__iceberg_table_refresh(ta, &err) == RF_OK);
        RF_REQUIRE(rf__iceberg_table_add_columns(ta, price, 1, &err) == RF_OK);
        RF_CHECK_INT(rf__iceberg_meta_schema_id(ta->meta), 1);
        RF_CHECK(rf__iceberg_meta_current_snapshot_id(ta->meta) == s2);
    }
    /* An append with no files still records progress (a snapshot with no new manifest). */
    RF_REQUIRE(rf__iceberg_table_append(ta, NULL, 0, p2, 1, &s3, &err) == RF_OK);
    RF_CHECK_STR(rf__iceberg_meta_summary(ta->meta, -1, "total-records"), "22");
    RF_CHECK_INT(
        json_integer_value(json_object_get(rf__iceberg_meta_snapshot(ta->meta, -1), "schema-id")),
        1);
    /* create, 2 appends + 1 lost, 1 evolution + 1 lost, the empty append: the lost
     * commits leave their files behind, unreferenced. */
    RF_CHECK_INT(count_files(mdir, ".metadata.json"), 7);
    RF_CHECK_INT(count_files(mdir, "-m0.avro"), 3);

    rf__iceberg_table_free(ta);
    rf__iceberg_table_free(tb);
    rf__iceberg_catalog_close(ca);
    rf__iceberg_catalog_close(cb);
    rf_test_rmtree(dir);
    free(mdir);
    free(loc);
    free(db);
    free(dir);
}

/* ==== Other engines' files ==== */

static char *fixture(const char *rel)
{
    char *p = rf_test_shared_path(rel);
    struct stat st;
    if (!p || stat(p, &st) != 0) {
        fprintf(stderr, "fixture missing: %s (set RF_SHARED_DIR)\n", p ? p : rel);
        free(p);
        return NULL;
    }
    return p;
}

static void test_read_spark_files(void)
{
    char *meta_path = fixture("fixtures/iceberg/icebird/hyperparam-iceberg/spark/rename_column/"
                              "metadata/v3.metadata.json");
    char *list_path = fixture("fixtures/iceberg/icebird/hyperparam-iceberg/spark/rename_column/"
                              "metadata/snap-5276958600260276572-1-abf62b15-903b-40b6-9e6b-"
                              "26bcdceac9b3.avro");
    rf_iceberg_meta_t *m = NULL;
    rf_iceberg_manifest_file_t *mfs = NULL;
    size_t n = 0;
    rf_err_t err;

    RF_REQUIRE(meta_path && list_path);
    RF_REQUIRE(rf__iceberg_meta_load(meta_path, &m, &err) == RF_OK);
    RF_CHECK(rf__iceberg_meta_current_snapshot_id(m) == INT64_C(5276958600260276572));
    RF_CHECK_STR(rf__iceberg_meta_summary(m, -1, "total-records"), "4");
    RF_CHECK_INT(rf__iceberg_meta_field_id(m, "event_date"), 3);
    /* Spark names fields 504..506 added_data_files_count etc.: found by id. */
    RF_REQUIRE(rf__iceberg_manifest_list_read(list_path, &mfs, &n, &err) == RF_OK);
    RF_REQUIRE(n == 1);
    RF_CHECK_INT(mfs[0].added_files, 3);
    RF_CHECK_INT(mfs[0].added_rows, 4);
    RF_CHECK_INT(mfs[0].length, 7506);
    RF_REQUIRE(mfs[0].nparts == 2);
    RF_CHECK(mfs[0].parts[1].contains_null);
    RF_CHECK_INT(mfs[0].parts[1].lower_len, 4);
    rf__iceberg_manifest_files_free(mfs, n);
    rf__iceberg_meta_free(m);
    free(meta_path);
    free(list_path);
}

static void test_pyiceberg_catalog(void)
{
    char *src = fixture("fixtures/iceberg/duckdb-iceberg/data/persistent/case_sensitive_names/"
                        "pyiceberg_catalog.db");
    char *dir = rf_test_tmpdir("iceberg-pycat");
    char *db = rf_xasprintf("%s/catalog.db", dir);
    char *data = NULL, *loc = NULL, *prev = NULL;
    size_t len = 0;
    rf_iceberg_catalog_t *cat = NULL;
    rf_err_t err;

    RF_REQUIRE(src);
    RF_REQUIRE(rf_file_read(src, 1 << 20, &data, &len, &err) == RF_OK);
    RF_REQUIRE(rf_file_write_atomic(db, data, len, &err) == RF_OK);
    /* A SqlCatalog file has no iceberg_type column; it is used as it is. */
    RF_REQUIRE(rf__iceberg_catalog_open(db, "default", &cat, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_catalog_table_load(cat, "default", "case_sensitive_names", &loc, &prev,
                                              &err) == RF_OK);
    RF_CHECK(strstr(loc, "00001-") != NULL);
    RF_CHECK(strstr(prev, "00000-") != NULL);
    RF_CHECK_INT(
        rf__iceberg_catalog_table_commit(cat, "default", "case_sensitive_names", prev, "/x", &err),
        RF_EBUSY);
    RF_CHECK_INT(
        rf__iceberg_catalog_table_commit(cat, "default", "case_sensitive_names", loc, "/x", &err),
        RF_OK);
    RF_REQUIRE(rf__iceberg_catalog_namespace_create(cat, "ragfeed", NULL, 0, &err) == RF_OK);
    RF_CHECK_INT(rf__iceberg_catalog_table_create(cat, "ragfeed", "h", "/m", &err), RF_OK);
    rf__iceberg_catalog_close(cat);
    free(data);
    free(loc);
    free(prev);
    free(src);
    rf_test_rmtree(dir);
    free(db);
    free(dir);
}

RF_TEST_MAIN(test_day_from_micros, test_meta_create_required_fields, test_meta_create_rejects,
             test_meta_write_and_log, test_meta_add_columns, test_meta_snapshot_summary,
             test_catalog_schema, test_catalog_cas_two_writers, test_table_append_and_conflict,
             test_read_spark_files, test_pyiceberg_catalog)
