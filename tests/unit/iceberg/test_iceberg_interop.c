/* test_iceberg_interop.c - our Avro manifests and tables as independent readers see them:
 * avsc reads manifests and manifest lists (both codecs) and finds every spec field id,
 * map key/value id and list element id and the required header keys; then a table of
 * real Parquet files (written by DuckDB) with several snapshots and a schema change must
 * pass ../shared/tools/iceberg-verify (icebird, DuckDB, avsc, hyparquet) with no error.
 * Needs node and `npm ci` in that folder: their absence fails the test, loudly.
 */
#include "iceberg/iceberg_int.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "rf_test.h"

/* ==== Running node ==== */

/* Runs cmd with stderr to errfile; returns stdout (caller frees) and *status (exit). */
static char *run(const char *cmd, const char *errfile, int *status)
{
    char *full = rf_xasprintf("%s 2>'%s'", cmd, errfile);
    FILE *p = popen(full, "r");
    rf_buf_t out;
    char chunk[65536];
    size_t n;
    rf_buf_init(&out, 0);
    free(full);
    if (!p) {
        *status = -1;
        return rf_buf_take(&out, NULL);
    }
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        rf_buf_append(&out, chunk, n);
    *status = pclose(p);
    if (*status != -1 && WIFEXITED(*status))
        *status = WEXITSTATUS(*status);
    if (*status != 0) {
        char *e = rf_test_read_file(errfile, NULL);
        fprintf(stderr, "command failed (%d): %s\n%s\n", *status, cmd, e ? e : "");
        free(e);
    }
    return rf_buf_take(&out, NULL);
}

/* Fails the test with instructions when node or the verifier's modules are missing. */
static void require_node(const char *tmp)
{
    char *err = rf_xasprintf("%s/node.err", tmp);
    char *mods = rf_test_shared_path("tools/iceberg-verify/node_modules/avsc/package.json");
    struct stat st;
    int status = 0;
    free(run("node --version", err, &status));
    if (status != 0)
        fprintf(stderr, "node >= 20.11 is required for interop tests (Debian 12's nodejs is 18)\n");
    RF_REQUIRE(status == 0);
    if (!mods || stat(mods, &st) != 0)
        fprintf(stderr, "missing %s: run `npm ci` in ../shared/tools/iceberg-verify\n",
                mods ? mods : "(RF_SHARED_DIR unset)");
    RF_REQUIRE(mods && stat(mods, &st) == 0);
    free(mods);
    free(err);
}

/* avro_dump.mjs output: line 0 {"codec","meta"}, then records.  Returns an array. */
static json_t *avsc_dump(const char *tmp, const char *file)
{
    char *script = rf_test_src_path("tests/unit/iceberg/avro_dump.mjs");
    char *cmd = rf_xasprintf("node '%s' '%s'", script, file);
    char *err = rf_xasprintf("%s/dump.err", tmp);
    int status = 0;
    char *out = run(cmd, err, &status);
    json_t *lines = json_array();
    char *save = out;
    RF_CHECK_INT(status, 0);
    for (char *line = out; line && *line;) {
        char *nl = strchr(line, '\n');
        json_error_t jerr;
        json_t *j;
        if (nl)
            *nl = '\0';
        j = json_loads(line, 0, &jerr);
        RF_CHECK(j != NULL);
        if (j)
            json_array_append_new(lines, j);
        line = nl ? nl + 1 : NULL;
    }
    free(save);
    free(cmd);
    free(err);
    free(script);
    return lines;
}

/* ==== Schema walking ==== */

/* Collects every field-id / element-id / map key and value id of an Avro schema and
 * counts record fields that lack a field-id. */
static void collect_ids(const json_t *t, json_t *ids, int *missing)
{
    char key[16];
    if (json_is_array(t)) {
        size_t i;
        const json_t *b;
        json_array_foreach(t, i, b) collect_ids(b, ids, missing);
        return;
    }
    if (!json_is_object(t))
        return;
    const char *type = json_string_value(json_object_get(t, "type"));
    if (!type) {
        collect_ids(json_object_get(t, "type"), ids, missing);
        return;
    }
    if (!strcmp(type, "record")) {
        size_t i;
        const json_t *f;
        json_array_foreach(json_object_get(t, "fields"), i, f)
        {
            const json_t *id = json_object_get(f, "field-id");
            if (!json_is_integer(id)) {
                (*missing)++;
                fprintf(stderr, "field %s has no field-id\n",
                        json_string_value(json_object_get(f, "name")));
            } else {
                snprintf(key, sizeof key, "%lld", (long long)json_integer_value(id));
                json_object_set_new(ids, key, json_true());
            }
            collect_ids(json_object_get(f, "type"), ids, missing);
        }
    } else if (!strcmp(type, "array")) {
        const json_t *eid = json_object_get(t, "element-id");
        if (json_is_integer(eid)) {
            snprintf(key, sizeof key, "%lld", (long long)json_integer_value(eid));
            json_object_set_new(ids, key, json_true());
        }
        collect_ids(json_object_get(t, "items"), ids, missing);
    } else if (json_is_object(json_object_get(t, "type")) ||
               json_is_array(json_object_get(t, "type"))) {
        collect_ids(json_object_get(t, "type"), ids, missing);
    }
}

static void check_ids(const char *schema_text, const int *want, size_t nwant)
{
    json_t *schema = json_loads(schema_text, 0, NULL), *ids = json_object();
    int missing = 0;
    RF_REQUIRE(schema);
    collect_ids(schema, ids, &missing);
    RF_CHECK_INT(missing, 0);
    for (size_t i = 0; i < nwant; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", want[i]);
        if (!json_object_get(ids, key))
            fprintf(stderr, "id %d missing from the header schema\n", want[i]);
        RF_CHECK(json_object_get(ids, key) != NULL);
    }
    RF_CHECK_INT(json_object_size(ids), nwant);
    json_decref(ids);
    json_decref(schema);
}

/* A map field of data_file must be an array of k<K>_v<V> records with logicalType map. */
static void check_map_layout(const char *schema_text, const char *field, int kid, int vid)
{
    json_t *schema = json_loads(schema_text, 0, NULL);
    const json_t *df = NULL, *f, *arr = NULL;
    size_t i;
    char name[32];
    RF_REQUIRE(schema);
    json_array_foreach(json_object_get(schema, "fields"), i, f)
    {
        if (!strcmp(json_string_value(json_object_get(f, "name")), "data_file"))
            df = json_object_get(f, "type");
    }
    RF_REQUIRE(df);
    json_array_foreach(json_object_get(df, "fields"), i, f)
    {
        if (!strcmp(json_string_value(json_object_get(f, "name")), field))
            arr = json_array_get(json_object_get(f, "type"), 1);
    }
    RF_REQUIRE(arr);
    RF_CHECK_STR(json_string_value(json_object_get(arr, "type")), "array");
    RF_CHECK_STR(json_string_value(json_object_get(arr, "logicalType")), "map");
    snprintf(name, sizeof name, "k%d_v%d", kid, vid);
    RF_CHECK_STR(json_string_value(json_object_get(json_object_get(arr, "items"), "name")), name);
    json_decref(schema);
}

/* ==== Test 1: avsc reads our manifests ==== */

static const int entry_ids[] = {0,   1,   3,   4,   2,   134, 100, 101, 102, 1000, 103, 104,
                                108, 117, 118, 109, 119, 120, 110, 121, 122, 137,  138, 139,
                                125, 126, 127, 128, 129, 130, 131, 132, 133, 135,  136, 140};
static const int list_ids[] = {500, 501, 502, 517, 515, 516, 503, 504, 505, 506,
                               512, 513, 514, 507, 508, 509, 518, 510, 511, 519};

static void check_codec(rf_iceberg_avro_codec codec)
{
    char *dir = rf_test_tmpdir("iceberg-avsc");
    char *db = rf_xasprintf("%s/catalog.db", dir);
    char *loc = rf_xasprintf("%s/wh/t", dir);
    char *path = rf_xasprintf("%s/data/a.parquet", loc);
    const rf_iceberg_field_t fields[] = {
        {1, "seq", 1, "long", 0, NULL, 0, NULL},
        {2, "ingest_time", 1, "timestamptz", 0, NULL, 0, NULL},
        {3, "vector", 0, "list", 4, "float", 0, NULL},
    };
    const rf_iceberg_part_field_t spec[] = {{"ingest_time", "day", "ingest_time_day", 1000}};
    rf_iceberg_meta_t *m = NULL;
    rf_iceberg_catalog_t *cat = NULL;
    rf_iceberg_table_t *t = NULL;
    rf_err_t err;
    uint8_t lo[8] = {5}, hi[8] = {9};
    rf_iceberg_pq_colstats_t cols[3] = {
        {1, 0, 3, 0, -1, 40, 1, 1, lo, hi, 8, 8},
        {2, 0, 3, 0, -1, 50, 0, 0, NULL, NULL, 0, 0},
        {4, 1, 6, 1, 0, 60, 0, 0, NULL, NULL, 0, 0},
    };
    int64_t splits[] = {4};
    rf_iceberg_pq_result_t pq = {3, 777, cols, 3, splits, 1};
    rf_iceberg_part_value_t part = {0, 19844};
    rf_iceberg_data_file_t df = {path, &pq, &part, 1};
    const rf_iceberg_kv_t props[] = {{"ragfeed.seq", "3"}};
    int64_t sid = 0, sid2 = 0;
    json_t *list = NULL, *man = NULL, *hdr;
    const char *ml;
    struct stat st;

    require_node(dir);
    RF_REQUIRE(rf__iceberg_meta_create(loc, fields, 3, spec, 1, NULL, 0, &m, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_catalog_open(db, "c", &cat, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_table_create(cat, "ns", "t", m, &t, &err) == RF_OK);
    t->codec = codec;
    RF_REQUIRE(rf__iceberg_table_append(t, &df, 1, props, 1, &sid, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_table_append(t, &df, 1, props, 1, &sid2, &err) == RF_OK);

    ml =
        json_string_value(json_object_get(rf__iceberg_meta_snapshot(t->meta, -1), "manifest-list"));
    list = avsc_dump(dir, ml);
    RF_REQUIRE(json_array_size(list) == 3);
    hdr = json_array_get(list, 0);
    RF_CHECK_STR(json_string_value(json_object_get(hdr, "codec")),
                 codec == RF_ICEBERG_AVRO_DEFLATE ? "deflate" : "null");
    hdr = json_object_get(hdr, "meta");
    {
        char want[24];
        snprintf(want, sizeof want, "%lld", (long long)sid2);
        RF_CHECK_STR(json_string_value(json_object_get(hdr, "snapshot-id")), want);
        snprintf(want, sizeof want, "%lld", (long long)sid);
        RF_CHECK_STR(json_string_value(json_object_get(hdr, "parent-snapshot-id")), want);
    }
    RF_CHECK_STR(json_string_value(json_object_get(hdr, "sequence-number")), "2");
    RF_CHECK_STR(json_string_value(json_object_get(hdr, "format-version")), "2");
    check_ids(json_string_value(json_object_get(hdr, "avro.schema")), list_ids,
              sizeof list_ids / sizeof list_ids[0]);
    {
        const json_t *r = json_array_get(list, 1);
        const char *mpath = json_string_value(json_object_get(r, "manifest_path"));
        char want[24];
        const json_t *ps = json_array_get(json_object_get(r, "partitions"), 0);
        RF_REQUIRE(mpath && stat(mpath, &st) == 0);
        snprintf(want, sizeof want, "%lld", (long long)st.st_size);
        RF_CHECK_STR(json_string_value(json_object_get(r, "manifest_length")), want);
        snprintf(want, sizeof want, "%lld", (long long)sid2);
        RF_CHECK_STR(json_string_value(json_object_get(r, "added_snapshot_id")), want);
        RF_CHECK_STR(json_string_value(json_object_get(r, "sequence_number")), "2");
        RF_CHECK_INT(json_integer_value(json_object_get(r, "added_files_count")), 1);
        RF_CHECK_STR(json_string_value(json_object_get(r, "added_rows_count")), "3");
        RF_CHECK(json_is_false(json_object_get(ps, "contains_null")));
        RF_CHECK(json_is_false(json_object_get(ps, "contains_nan")));
        RF_CHECK_STR(json_string_value(json_object_get(ps, "lower_bound")), "844d0000");
        RF_CHECK_STR(json_string_value(json_object_get(r, "sequence_number")), "2");
        RF_CHECK_STR(json_string_value(json_object_get(json_array_get(list, 2), "sequence_number")),
                     "1");

        man = avsc_dump(dir, mpath);
    }
    RF_REQUIRE(json_array_size(man) == 2);
    hdr = json_object_get(json_array_get(man, 0), "meta");
    {
        /* The header keys the spec requires of a v2 manifest. */
        static const char *keys[] = {"schema",         "schema-id",
                                     "partition-spec", "partition-spec-id",
                                     "format-version", "content"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            RF_CHECK(json_string_value(json_object_get(hdr, keys[i])) != NULL);
        RF_CHECK_STR(json_string_value(json_object_get(hdr, "content")), "data");
        RF_CHECK_STR(json_string_value(json_object_get(hdr, "format-version")), "2");
        RF_CHECK_STR(json_string_value(json_object_get(hdr, "partition-spec")),
                     "[{\"name\":\"ingest_time_day\",\"transform\":\"day\",\"source-id\":2,"
                     "\"field-id\":1000}]");
    }
    {
        const char *s = json_string_value(json_object_get(hdr, "avro.schema"));
        json_t *e = json_array_get(man, 1), *d = json_object_get(e, "data_file");
        char want[24];
        check_ids(s, entry_ids, sizeof entry_ids / sizeof entry_ids[0]);
        check_map_layout(s, "column_sizes", 117, 118);
        check_map_layout(s, "value_counts", 119, 120);
        check_map_layout(s, "null_value_counts", 121, 122);
        check_map_layout(s, "nan_value_counts", 138, 139);
        check_map_layout(s, "lower_bounds", 126, 127);
        check_map_layout(s, "upper_bounds", 129, 130);
        RF_CHECK_INT(json_integer_value(json_object_get(e, "status")), 1);
        snprintf(want, sizeof want, "%lld", (long long)sid2);
        RF_CHECK_STR(json_string_value(json_object_get(e, "snapshot_id")), want);
        RF_CHECK(json_is_null(json_object_get(e, "sequence_number")));
        RF_CHECK(json_is_null(json_object_get(e, "file_sequence_number")));
        RF_CHECK_STR(json_string_value(json_object_get(d, "file_path")), path);
        RF_CHECK_INT(
            json_integer_value(json_object_get(json_object_get(d, "partition"), "ingest_time_day")),
            19844);
        RF_CHECK_STR(json_string_value(json_object_get(d, "record_count")), "3");
        RF_CHECK_STR(json_string_value(json_object_get(d, "file_size_in_bytes")), "777");
        RF_CHECK_INT(json_array_size(json_object_get(d, "column_sizes")), 3);
        RF_CHECK_STR(json_string_value(json_object_get(
                         json_array_get(json_object_get(d, "lower_bounds"), 0), "value")),
                     "0500000000000000");
        RF_CHECK_INT(json_array_size(json_object_get(d, "upper_bounds")), 1);
        RF_CHECK_INT(json_integer_value(json_object_get(
                         json_array_get(json_object_get(d, "nan_value_counts"), 0), "key")),
                     4);
        RF_CHECK_STR(json_string_value(json_array_get(json_object_get(d, "split_offsets"), 0)),
                     "4");
        RF_CHECK(json_is_null(json_object_get(d, "equality_ids")));
    }
    json_decref(list);
    json_decref(man);
    rf__iceberg_table_free(t);
    rf__iceberg_catalog_close(cat);
    rf_test_rmtree(dir);
    free(path);
    free(loc);
    free(db);
    free(dir);
}

static void test_avsc_reads_deflate_manifests(void)
{
    check_codec(RF_ICEBERG_AVRO_DEFLATE);
}

static void test_avsc_reads_uncompressed_manifests(void)
{
    check_codec(RF_ICEBERG_AVRO_NULL);
}

/* ==== Test 2: the verifier accepts a table of real Parquet files ==== */

typedef struct pq_file {
    rf_iceberg_pq_result_t pq;
    rf_iceberg_pq_colstats_t cols[8];
    int64_t splits[16];
    rf_iceberg_part_value_t part;
    rf_iceberg_data_file_t df;
    char *path;
} pq_file_t;

static uint8_t *unhex(const char *h, size_t *n)
{
    size_t len = strlen(h) / 2;
    uint8_t *b = rf_xmalloc(len ? len : 1);
    for (size_t i = 0; i < len; i++) {
        unsigned v = 0;
        sscanf(h + 2 * i, "%2x", &v);
        b[i] = (uint8_t)v;
    }
    *n = len;
    return b;
}

static void pq_file_fini(pq_file_t *f)
{
    for (size_t i = 0; i < f->pq.ncols; i++) {
        free(f->cols[i].lower);
        free(f->cols[i].upper);
    }
    free(f->path);
}

/* Writes one Parquet file with make_parquet.mjs and fills f from what it reports. */
static void make_file(const char *tmp, const char *loc, const rf_iceberg_meta_t *m, int n,
                      int64_t first, int64_t count, int32_t day, int with_price, pq_file_t *f)
{
    char *script = rf_test_src_path("tests/unit/iceberg/make_parquet.mjs");
    char *schema_file = rf_xasprintf("%s/schema.json", tmp);
    char *schema = json_dumps(rf__iceberg_meta_schema(m), JSON_COMPACT);
    char *errf = rf_xasprintf("%s/make.err", tmp);
    char *cmd;
    char *out;
    int status = 0;
    json_t *j, *c;
    size_t i;
    rf_err_t err;

    memset(f, 0, sizeof *f);
    f->path = rf_xasprintf("%s/data/ingest_time_day=%d/%05d-file.parquet", loc, (int)day, n);
    {
        char *d = rf_xstrdup(f->path);
        *strrchr(d, '/') = '\0';
        RF_REQUIRE(rf_mkdirs(d, &err) == RF_OK);
        free(d);
    }
    RF_REQUIRE(rf_file_write_atomic(schema_file, schema, strlen(schema), &err) == RF_OK);
    cmd = rf_xasprintf("node '%s' '%s' %lld %lld %d %d 2048 '%s'", script, f->path,
                       (long long)first, (long long)count, (int)day, with_price, schema_file);
    out = run(cmd, errf, &status);
    RF_REQUIRE(status == 0);
    j = json_loads(out, 0, NULL);
    RF_REQUIRE(j);
    f->pq.row_count = json_integer_value(json_object_get(j, "rows"));
    f->pq.file_size = json_integer_value(json_object_get(j, "file_size"));
    RF_CHECK_INT(f->pq.row_count, count);
    json_array_foreach(json_object_get(j, "cols"), i, c)
    {
        rf_iceberg_pq_colstats_t *cs = &f->cols[f->pq.ncols++];
        const char *lo = json_string_value(json_object_get(c, "lower"));
        const char *hi = json_string_value(json_object_get(c, "upper"));
        cs->field_id = (int32_t)json_integer_value(json_object_get(c, "id"));
        cs->in_list = (int)json_integer_value(json_object_get(c, "in_list"));
        cs->column_size = json_integer_value(json_object_get(c, "size"));
        cs->value_count = json_integer_value(json_object_get(c, "values"));
        cs->null_count = json_integer_value(json_object_get(c, "nulls"));
        cs->nan_count = json_integer_value(json_object_get(c, "nans"));
        if (lo && hi) {
            cs->has_lower = cs->has_upper = 1;
            cs->lower = unhex(lo, &cs->lower_len);
            cs->upper = unhex(hi, &cs->upper_len);
        }
    }
    json_array_foreach(json_object_get(j, "splits"), i, c)
    {
        if (f->pq.nsplits < 16)
            f->splits[f->pq.nsplits++] = json_integer_value(c);
    }
    f->pq.cols = f->cols;
    f->pq.split_offsets = f->splits;
    f->part.value = day;
    f->df.path = f->path;
    f->df.pq = &f->pq;
    f->df.partition = &f->part;
    f->df.npartition = 1;
    json_decref(j);
    free(out);
    free(cmd);
    free(errf);
    free(schema);
    free(schema_file);
    free(script);
}

static void append(rf_iceberg_table_t *t, pq_file_t *files, size_t n, int64_t seq)
{
    rf_iceberg_data_file_t dfs[4];
    char seqs[24], offs[64];
    rf_err_t err;
    rf_rc rc;
    snprintf(seqs, sizeof seqs, "%lld", (long long)seq);
    snprintf(offs, sizeof offs, "{\"inventory.products/0\":%lld}", (long long)seq + 1);
    const rf_iceberg_kv_t props[] = {{"ragfeed.seq", seqs}, {"ragfeed.offsets", offs}};
    for (size_t i = 0; i < n; i++)
        dfs[i] = files[i].df;
    rc = rf__iceberg_table_append(t, dfs, n, props, 2, NULL, &err);
    if (rc)
        fprintf(stderr, "append: %s\n", err.msg);
    RF_REQUIRE(rc == RF_OK);
}

static void test_verifier_accepts_table(void)
{
    char *dir = rf_test_tmpdir("iceberg-verify");
    char *db = rf_xasprintf("%s/catalog.db", dir);
    char *loc = rf_xasprintf("%s/warehouse/ragfeed/records_history", dir);
    char *verify = rf_test_shared_path("tools/iceberg-verify/verify.mjs");
    char *errf = rf_xasprintf("%s/verify.err", dir);
    const rf_iceberg_field_t fields[] = {
        {1, "seq", 0, "long", 0, NULL, 0, NULL},
        {2, "op", 0, "string", 0, NULL, 0, NULL},
        {3, "id", 0, "string", 0, NULL, 0, NULL},
        {4, "ingest_time", 0, "timestamptz", 0, NULL, 0, NULL},
        {5, "vector", 0, "list", 6, "float", 0, NULL},
    };
    const rf_iceberg_field_t price[] = {{0, "price", 0, "double", 0, NULL, 0, NULL}};
    const rf_iceberg_part_field_t spec[] = {{"ingest_time", "day", "ingest_time_day", 1000}};
    const rf_iceberg_kv_t props[] = {{"write.format.default", "parquet"},
                                     {"write.parquet.compression-codec", "zstd"}};
    static const int64_t expect_rows[] = {70, 5070, 5090, 5090};
    rf_iceberg_meta_t *m = NULL;
    rf_iceberg_catalog_t *cat = NULL;
    rf_iceberg_table_t *t = NULL;
    rf_err_t err;
    pq_file_t f[5];
    char *cmd, *out, *last;
    int status = 0;
    json_t *res, *e;
    size_t i;

    require_node(dir);
    RF_REQUIRE(rf__iceberg_meta_create(loc, fields, 5, spec, 1, props, 2, &m, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_catalog_open(db, "ragfeed", &cat, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_table_create(cat, "ragfeed", "records_history", m, &t, &err) == RF_OK);

    /* Snapshot 1: two files on two days.  Snapshot 2: one file with several row groups. */
    make_file(dir, loc, t->meta, 1, 1, 30, 19844, 0, &f[0]);
    make_file(dir, loc, t->meta, 2, 31, 40, 19845, 0, &f[1]);
    append(t, f, 2, 70);
    make_file(dir, loc, t->meta, 3, 71, 5000, 19845, 0, &f[2]);
    RF_CHECK(f[2].pq.nsplits >= 2);
    append(t, &f[2], 1, 5070);
    /* A new column, then a file that has it, in uncompressed manifests this time. */
    RF_REQUIRE(rf__iceberg_table_add_columns(t, price, 1, &err) == RF_OK);
    t->codec = RF_ICEBERG_AVRO_NULL;
    make_file(dir, loc, t->meta, 4, 5071, 20, 19846, 1, &f[3]);
    append(t, &f[3], 1, 5090);
    /* A commit that only moves the position forward. */
    append(t, NULL, 0, 5090);

    cmd =
        rf_xasprintf("node '%s' '%s' ragfeed.records_history --icebird-all --compact", verify, db);
    out = run(cmd, errf, &status);
    RF_CHECK_INT(status, 0);
    /* The summary is the last line. */
    {
        char *nl = out + strlen(out);
        while (nl > out && (nl[-1] == '\n'))
            *--nl = '\0';
        last = strrchr(out, '\n');
        last = last ? last + 1 : out;
    }
    res = json_loads(last, 0, NULL);
    /* The whole summary goes to the test log: it is the evidence of what was checked. */
    fprintf(stderr, "verifier summary: %s\n", last);
    RF_REQUIRE(res);
    json_array_foreach(json_object_get(res, "errors"), i, e)
    {
        char *s = json_dumps(e, JSON_COMPACT);
        fprintf(stderr, "verifier error: %s\n", s);
        free(s);
    }
    json_array_foreach(json_object_get(res, "warnings"), i, e)
    {
        char *s = json_dumps(e, JSON_COMPACT);
        fprintf(stderr, "verifier warning: %s\n", s);
        free(s);
    }
    RF_CHECK(json_is_true(json_object_get(res, "ok")));
    RF_CHECK_INT(json_array_size(json_object_get(res, "errors")), 0);
    RF_REQUIRE(json_array_size(json_object_get(res, "snapshots")) == 4);
    json_array_foreach(json_object_get(res, "snapshots"), i, e)
    {
        RF_CHECK_INT(json_integer_value(json_object_get(e, "rows_duckdb")), expect_rows[i]);
        RF_CHECK_INT(json_integer_value(json_object_get(e, "rows_icebird")), expect_rows[i]);
        RF_CHECK_INT(json_integer_value(json_object_get(e, "data_records")), expect_rows[i]);
    }
    e = json_array_get(json_object_get(res, "snapshots"), 3);
    RF_CHECK_STR(json_string_value(json_object_get(json_object_get(e, "summary"), "ragfeed.seq")),
                 "5090");
    RF_CHECK(json_is_true(json_object_get(e, "is_current")));

    json_decref(res);
    free(out);
    free(cmd);
    for (int k = 0; k < 4; k++)
        pq_file_fini(&f[k]);
    rf__iceberg_table_free(t);
    rf__iceberg_catalog_close(cat);
    rf_test_rmtree(dir);
    free(errf);
    free(verify);
    free(loc);
    free(db);
    free(dir);
}

/* ==== Test 3: the same with the project's own Parquet writer ==== */

/* Writes rows first..first+count-1 with rf__iceberg_parquet_*; price adds column 7. */
static void write_own(const char *path, const rf_iceberg_meta_t *m, int64_t first, int64_t count,
                      int32_t day, int price, rf_iceberg_pq_result_t *res)
{
    const rf_iceberg_pq_column_t cols[] = {
        {"seq", 1, RF_ICEBERG_PQ_INT64, 0, 0, 0, 0},
        {"op", 2, RF_ICEBERG_PQ_STRING, 0, 0, 0, 0},
        {"id", 3, RF_ICEBERG_PQ_STRING, 0, 0, 0, 0},
        {"ingest_time", 4, RF_ICEBERG_PQ_TIMESTAMPTZ, 0, 0, 0, 0},
        {"vector", 5, RF_ICEBERG_PQ_FLOAT, 1, 1, 6, 1},
        {"price", 7, RF_ICEBERG_PQ_DOUBLE, 1, 0, 0, 0},
    }; /* name, field id, type, optional, list, element id, element optional */
    char *schema = json_dumps(rf__iceberg_meta_schema(m), JSON_COMPACT);
    rf_iceberg_pq_kv_t kv[] = {{"iceberg.schema", schema}};
    rf_iceberg_pq_opts_t opts;
    rf_iceberg_parquet_t *w = NULL;
    rf_err_t err;
    rf_rc rc;

    rf__iceberg_parquet_opts_init(&opts);
    opts.kv = kv;
    opts.nkv = 1;
    opts.fsync = 0;
    rc = rf__iceberg_parquet_open(path, cols, price ? 6 : 5, &opts, &w, &err);
    if (rc)
        fprintf(stderr, "parquet open: %s\n", err.msg);
    RF_REQUIRE(rc == RF_OK);
    for (int64_t s = first; s < first + count; s++) {
        char id[32];
        float vec[2] = {(float)s * 0.5f, 1.0f};
        rf_iceberg_pq_value_t v[6];
        memset(v, 0, sizeof v);
        snprintf(id, sizeof id, "rec:%lld", (long long)(s % 7));
        v[0].v.i64 = s;
        v[1].v.bytes = s % 5 ? rf_slice("upsert", 6) : rf_slice("delete", 6);
        v[2].v.bytes = rf_slice(id, strlen(id));
        v[3].v.i64 = (int64_t)day * INT64_C(86400000000) + (s % 86400) * INT64_C(1000000);
        v[4].is_null = s % 3 == 0;
        v[4].v.list.items = vec;
        v[4].v.list.count = 2;
        v[5].is_null = s % 2 == 0;
        v[5].v.f64 = (double)s * 1.25;
        RF_REQUIRE(rf__iceberg_parquet_write_row(w, v, &err) == RF_OK);
    }
    rc = rf__iceberg_parquet_close(w, res, &err);
    if (rc)
        fprintf(stderr, "parquet close: %s\n", err.msg);
    RF_REQUIRE(rc == RF_OK);
    free(schema);
}

/* Runs the verifier on ns.table and checks ok, no errors, and rows per snapshot. */
static void verify_table(const char *dir, const char *db, const char *table, const int64_t *rows,
                         size_t nsnap)
{
    char *verify = rf_test_shared_path("tools/iceberg-verify/verify.mjs");
    char *errf = rf_xasprintf("%s/verify.err", dir);
    char *cmd = rf_xasprintf("node '%s' '%s' %s --icebird-all --compact", verify, db, table);
    int status = 0;
    char *out = run(cmd, errf, &status), *end, *last;
    json_t *res, *e;
    size_t i;

    RF_CHECK_INT(status, 0);
    end = out + strlen(out);
    while (end > out && end[-1] == '\n')
        *--end = '\0';
    last = strrchr(out, '\n');
    last = last ? last + 1 : out;
    fprintf(stderr, "verifier summary: %s\n", last);
    res = json_loads(last, 0, NULL);
    RF_REQUIRE(res);
    RF_CHECK(json_is_true(json_object_get(res, "ok")));
    RF_CHECK_INT(json_array_size(json_object_get(res, "errors")), 0);
    RF_CHECK_INT(json_array_size(json_object_get(res, "warnings")), 0);
    RF_REQUIRE(json_array_size(json_object_get(res, "snapshots")) == nsnap);
    json_array_foreach(json_object_get(res, "snapshots"), i, e)
    {
        RF_CHECK_INT(json_integer_value(json_object_get(e, "rows_duckdb")), rows[i]);
        RF_CHECK_INT(json_integer_value(json_object_get(e, "rows_icebird")), rows[i]);
    }
    json_decref(res);
    free(out);
    free(cmd);
    free(errf);
    free(verify);
}

static void test_verifier_accepts_own_parquet(void)
{
    char *dir = rf_test_tmpdir("iceberg-own");
    char *db = rf_xasprintf("%s/catalog.db", dir);
    char *loc = rf_xasprintf("%s/warehouse/ragfeed/records_history", dir);
    const rf_iceberg_field_t fields[] = {
        {1, "seq", 1, "long", 0, NULL, 0, NULL},
        {2, "op", 1, "string", 0, NULL, 0, NULL},
        {3, "id", 1, "string", 0, NULL, 0, NULL},
        {4, "ingest_time", 1, "timestamptz", 0, NULL, 0, NULL},
        {5, "vector", 0, "list", 6, "float", 0, NULL},
    };
    const rf_iceberg_field_t price[] = {{0, "price", 0, "double", 0, NULL, 0, NULL}};
    const rf_iceberg_part_field_t spec[] = {{"ingest_time", "day", "ingest_time_day", 1000}};
    static const int64_t expect_rows[] = {300, 3300, 3310};
    rf_iceberg_meta_t *m = NULL;
    rf_iceberg_catalog_t *cat = NULL;
    rf_iceberg_table_t *t = NULL;
    rf_iceberg_pq_result_t res[3];
    rf_iceberg_part_value_t part[3] = {{0, 19844}, {0, 19845}, {0, 19845}};
    rf_iceberg_data_file_t df[3];
    char *paths[3];
    rf_err_t err;
    rf_rc rc;

    require_node(dir);
    memset(res, 0, sizeof res);
    RF_REQUIRE(rf__iceberg_meta_create(loc, fields, 5, spec, 1, NULL, 0, &m, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_catalog_open(db, "ragfeed", &cat, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_table_create(cat, "ragfeed", "records_history", m, &t, &err) == RF_OK);
    RF_REQUIRE(rf_mkdirs(loc, &err) == RF_OK);
    for (int i = 0; i < 3; i++) {
        paths[i] = rf_xasprintf("%s/data/%05d-own.parquet", loc, i);
        df[i].path = paths[i];
        df[i].pq = &res[i];
        df[i].partition = &part[i];
        df[i].npartition = 1;
    }
    {
        char *d = rf_xasprintf("%s/data", loc);
        RF_REQUIRE(rf_mkdirs(d, &err) == RF_OK);
        free(d);
    }
    /* The writer's result goes into the manifest as it is. */
    write_own(paths[0], t->meta, 1, 300, 19844, 0, &res[0]);
    RF_REQUIRE(rf__iceberg_table_append(t, &df[0], 1, NULL, 0, NULL, &err) == RF_OK);
    write_own(paths[1], t->meta, 301, 3000, 19845, 0, &res[1]);
    RF_REQUIRE(rf__iceberg_table_append(t, &df[1], 1, NULL, 0, NULL, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_table_add_columns(t, price, 1, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_meta_field_id(t->meta, "price") == 7);
    write_own(paths[2], t->meta, 3301, 10, 19845, 1, &res[2]);
    rc = rf__iceberg_table_append(t, &df[2], 1, NULL, 0, NULL, &err);
    if (rc)
        fprintf(stderr, "append: %s\n", err.msg);
    RF_REQUIRE(rc == RF_OK);

    verify_table(dir, db, "ragfeed.records_history", expect_rows, 3);

    for (int i = 0; i < 3; i++) {
        rf__iceberg_parquet_result_fini(&res[i]);
        free(paths[i]);
    }
    rf__iceberg_table_free(t);
    rf__iceberg_catalog_close(cat);
    rf_test_rmtree(dir);
    free(loc);
    free(db);
    free(dir);
}

RF_TEST_MAIN(test_avsc_reads_deflate_manifests, test_avsc_reads_uncompressed_manifests,
             test_verifier_accepts_table, test_verifier_accepts_own_parquet)
