/* test_parquet_write.c - the Parquet writer without external readers: the statistics
 * that go into an Iceberg manifest (counts, NaN, bounds with truncation), rejected rows and
 * bad column sets, file framing and a footer that parses as Thrift, and random inputs
 * (garbage names, ids, options, values) that must never crash, especially under ASan.
 */
#include "parquet_testlib.h"
#include "rf_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir;

static char *tmp_path(const char *name)
{
    if (!dir)
        dir = rf_test_tmpdir("parquet_write");
    return rf_xasprintf("%s/%s", dir, name);
}

/* ==== A Thrift compact skipper, to check that footers parse ==== */

typedef struct treader {
    const uint8_t *p;
    size_t n, i;
    int64_t num_rows; /* FileMetaData field 3 */
    long schema_len, row_groups;
} treader_t;

static int t_varint(treader_t *t, uint64_t *v)
{
    int shift = 0;
    *v = 0;
    for (;;) {
        if (t->i >= t->n || shift > 63)
            return 0;
        *v |= (uint64_t)(t->p[t->i] & 0x7F) << shift;
        shift += 7;
        if (!(t->p[t->i++] & 0x80))
            return 1;
    }
}

static int t_struct(treader_t *t, int depth);

static int t_value(treader_t *t, int type, int depth, int64_t *ival, long *lsize)
{
    uint64_t v;
    switch (type) {
    case 1:
    case 2:
        return 1; /* booleans live in the field header */
    case 3:
        return t->i++ < t->n;
    case 4:
    case 5:
    case 6:
        if (!t_varint(t, &v))
            return 0;
        if (ival)
            *ival = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
        return 1;
    case 7:
        t->i += 8;
        return t->i <= t->n;
    case 8:
        if (!t_varint(t, &v) || v > t->n - t->i)
            return 0;
        t->i += v;
        return 1;
    case 9:
    case 10: {
        uint8_t h;
        uint64_t size;
        int et;
        if (t->i >= t->n)
            return 0;
        h = t->p[t->i++];
        et = h & 0x0F;
        size = h >> 4;
        if (size == 15 && !t_varint(t, &size))
            return 0;
        if (lsize)
            *lsize = (long)size;
        for (uint64_t k = 0; k < size; k++) {
            if (et == 1 || et == 2) {
                if (t->i++ >= t->n)
                    return 0;
            } else if (!t_value(t, et, depth + 1, NULL, NULL)) {
                return 0;
            }
        }
        return 1;
    }
    case 12:
        return depth < 32 && t_struct(t, depth + 1);
    default:
        return 0; /* maps and unknown types do not occur in our footers */
    }
}

static int t_struct(treader_t *t, int depth)
{
    int last = 0;
    for (;;) {
        uint8_t b;
        int type, id;
        int64_t ival = 0;
        long lsize = -1;
        if (t->i >= t->n)
            return 0;
        b = t->p[t->i++];
        if (b == 0)
            return 1;
        type = b & 0x0F;
        if (b >> 4) {
            id = last + (b >> 4);
        } else {
            uint64_t z;
            if (!t_varint(t, &z))
                return 0;
            id = (int)((int64_t)(z >> 1) ^ -(int64_t)(z & 1));
        }
        last = id;
        if (!t_value(t, type, depth, &ival, &lsize))
            return 0;
        if (depth == 0 && id == 3)
            t->num_rows = ival;
        if (depth == 0 && id == 2)
            t->schema_len = lsize;
        if (depth == 0 && id == 4)
            t->row_groups = lsize;
    }
}

/* Checks the PAR1 framing and parses the footer; returns 1 when sound. */
static int file_sound(const char *path, treader_t *t)
{
    size_t len = 0;
    char *data = rf_test_read_file(path, &len);
    uint32_t flen;
    int ok = 0;
    memset(t, 0, sizeof(*t));
    if (!data || len < 12 || memcmp(data, "PAR1", 4) || memcmp(data + len - 4, "PAR1", 4))
        goto out;
    flen = (uint32_t)(uint8_t)data[len - 8] | (uint32_t)(uint8_t)data[len - 7] << 8 |
           (uint32_t)(uint8_t)data[len - 6] << 16 | (uint32_t)(uint8_t)data[len - 5] << 24;
    if (flen > len - 12)
        goto out;
    t->p = (const uint8_t *)data + len - 8 - flen;
    t->n = flen;
    ok = t_struct(t, 0) && t->i == t->n;
out:
    free(data);
    t->p = NULL;
    return ok;
}

/* ==== Statistics ==== */

static rf_iceberg_pq_value_t ival(int64_t v)
{
    rf_iceberg_pq_value_t x;
    memset(&x, 0, sizeof(x));
    x.v.i64 = v;
    return x;
}

static void test_stats_exact(void)
{
    /* Columns: long, float (NaN, zeros), double all NaN, string (truncated bounds),
     * int all null, list<double> with null and empty lists. */
    rf_iceberg_pq_column_t cols[] = {
        {"l", 1, RF_ICEBERG_PQ_INT64, 0, 0, 0, 0},   {"f", 2, RF_ICEBERG_PQ_FLOAT, 1, 0, 0, 0},
        {"dn", 3, RF_ICEBERG_PQ_DOUBLE, 0, 0, 0, 0}, {"s", 4, RF_ICEBERG_PQ_STRING, 1, 0, 0, 0},
        {"n", 5, RF_ICEBERG_PQ_INT32, 1, 0, 0, 0},   {"v", 6, RF_ICEBERG_PQ_DOUBLE, 1, 1, 7, 1},
    };
    static const char *strs[] = {"zebra-0123456789abcdef-long", "apple-0123456789abcdef", "mango"};
    double items[3] = {2.5, -7.25, NAN};
    uint8_t nulls[3] = {0, 0, 1};
    char *path = tmp_path("stats.parquet");
    rf_iceberg_parquet_t *w = NULL;
    rf_iceberg_pq_result_t res;
    rf_err_t err;
    rf_iceberg_pq_opts_t o;
    rf__iceberg_parquet_opts_init(&o);
    o.fsync = 0;
    RF_REQUIRE(rf__iceberg_parquet_open(path, cols, 6, &o, &w, &err) == RF_OK);
    for (int r = 0; r < 6; r++) {
        rf_iceberg_pq_value_t v[6];
        v[0] = ival(r == 3 ? -5 : r * 10);
        memset(&v[1], 0, sizeof(v[1]));
        v[1].v.f32 = r == 0 ? NAN : r == 1 ? -0.0f : r == 2 ? 0.0f : (float)r;
        v[1].is_null = r == 5;
        memset(&v[2], 0, sizeof(v[2]));
        v[2].v.f64 = NAN;
        memset(&v[3], 0, sizeof(v[3]));
        v[3].is_null = r >= 3;
        if (r < 3)
            v[3].v.bytes = rf_slice(strs[r], strlen(strs[r]));
        memset(&v[4], 0, sizeof(v[4]));
        v[4].is_null = 1;
        memset(&v[5], 0, sizeof(v[5]));
        v[5].is_null = r == 1;
        v[5].v.list.items = items;
        v[5].v.list.nulls = nulls;
        v[5].v.list.count = r == 2 ? 0 : 3;
        RF_REQUIRE(rf__iceberg_parquet_write_row(w, v, &err) == RF_OK);
    }
    RF_CHECK_INT(rf__iceberg_parquet_rows(w), 6);
    RF_CHECK(rf__iceberg_parquet_size_estimate(w) > 4);
    RF_REQUIRE(rf__iceberg_parquet_close(w, &res, &err) == RF_OK);
    RF_CHECK_INT(res.row_count, 6);
    RF_REQUIRE(res.ncols == 6);
    {
        const rf_iceberg_pq_colstats_t *l = &res.cols[0];
        int64_t lo, hi;
        RF_CHECK_INT(l->value_count, 6);
        RF_CHECK_INT(l->null_count, 0);
        RF_CHECK_INT(l->nan_count, -1);
        RF_REQUIRE(l->has_lower && l->has_upper && l->lower_len == 8 && l->upper_len == 8);
        memcpy(&lo, l->lower, 8);
        memcpy(&hi, l->upper, 8);
        RF_CHECK_INT(lo, -5); /* signed order */
        RF_CHECK_INT(hi, 50);
    }
    {
        const rf_iceberg_pq_colstats_t *f = &res.cols[1];
        float lo, hi;
        RF_CHECK_INT(f->value_count, 6);
        RF_CHECK_INT(f->null_count, 1);
        RF_CHECK_INT(f->nan_count, 1);
        RF_REQUIRE(f->has_lower && f->lower_len == 4 && f->has_upper);
        memcpy(&lo, f->lower, 4);
        memcpy(&hi, f->upper, 4);
        RF_CHECK(lo == 0.0f && signbit(lo)); /* a zero lower bound is -0.0 */
        RF_CHECK(hi == 4.0f);
    }
    {
        const rf_iceberg_pq_colstats_t *d = &res.cols[2];
        RF_CHECK_INT(d->nan_count, 6);
        RF_CHECK(!d->has_lower && !d->has_upper); /* all NaN: no bounds */
    }
    {
        const rf_iceberg_pq_colstats_t *s = &res.cols[3];
        RF_CHECK_INT(s->null_count, 3);
        RF_REQUIRE(s->has_lower && s->has_upper);
        RF_CHECK(s->lower_len == 16 && memcmp(s->lower, "apple-0123456789", 16) == 0);
        RF_CHECK(s->upper_len == 16 && memcmp(s->upper, "zebra-012345678:", 16) == 0);
    }
    {
        const rf_iceberg_pq_colstats_t *n = &res.cols[4];
        RF_CHECK_INT(n->null_count, 6);
        RF_CHECK(!n->has_lower && !n->has_upper);
    }
    {
        /* 4 lists of 3 entries, one null list, one empty list: 14 entries; nulls are
         * the null list, the empty list and the 4 null elements. */
        const rf_iceberg_pq_colstats_t *v = &res.cols[5];
        double lo, hi;
        RF_CHECK_INT(v->field_id, 7);
        RF_CHECK(v->in_list);
        RF_CHECK_INT(v->value_count, 14);
        RF_CHECK_INT(v->null_count, 6);
        RF_CHECK_INT(v->nan_count, 0);
        RF_REQUIRE(v->has_lower && v->has_upper);
        memcpy(&lo, v->lower, 8);
        memcpy(&hi, v->upper, 8);
        RF_CHECK(lo == -7.25 && hi == 2.5);
    }
    RF_CHECK_INT(res.nsplits, 1);
    RF_CHECK_INT(res.split_offsets[0], 4);
    {
        treader_t t;
        struct stat st;
        RF_CHECK(file_sound(path, &t));
        RF_CHECK_INT(t.num_rows, 6);
        RF_CHECK_INT(t.schema_len, 1 + 5 + 3);
        RF_CHECK_INT(t.row_groups, 1);
        RF_CHECK(stat(path, &st) == 0 && st.st_size == res.file_size);
    }
    rf__iceberg_parquet_result_fini(&res);
    rf__iceberg_parquet_result_fini(NULL);
    free(path);
}

static void test_stats_random(void)
{
    /* Random column sets and values: the result equals statistics computed by the test
     * library, for both codecs, with and without dictionaries, many row groups. */
    for (uint64_t seed = 1; seed <= 150; seed++) {
        tl_file_t f;
        tl_rng_t r;
        rf_err_t err;
        char *path = tmp_path("random.parquet");
        treader_t t;
        tl_rng_seed(&r, seed);
        tl_file_init(&f, path);
        tl_random_cols(&f, &r, 8);
        f.opts.codec = seed % 2 ? RF_ICEBERG_PQ_ZSTD : RF_ICEBERG_PQ_UNCOMPRESSED;
        f.opts.dictionary = seed % 3 != 0;
        f.opts.page_bytes = 64 + tl_rng_below(&r, 4096);
        f.opts.row_group_bytes = 256 + tl_rng_below(&r, 20000);
        f.opts.dict_max_bytes = 64 + tl_rng_below(&r, 2048);
        tl_gen_rows(&f, &r, tl_rng_below(&r, 300));
        if (tl_write(&f, &err) != RF_OK) {
            rf__test_fail(__FILE__, __LINE__, "seed %llu: %s", (unsigned long long)seed, err.msg);
        } else {
            RF_CHECK_INT(tl_check_result(&f), 0);
            RF_CHECK(file_sound(path, &t));
            RF_CHECK_INT(t.num_rows, (int64_t)f.nrows);
            RF_CHECK_INT(t.row_groups, (long)f.res.nsplits);
        }
        tl_file_fini(&f);
        free(path);
    }
}

/* ==== Errors ==== */

static void test_rejected_rows(void)
{
    rf_iceberg_pq_column_t cols[] = {
        {"id", 1, RF_ICEBERG_PQ_STRING, 0, 0, 0, 0},
        {"tags", 2, RF_ICEBERG_PQ_STRING, 1, 1, 3, 0},
        {"b", 4, RF_ICEBERG_PQ_BINARY, 1, 0, 0, 0},
    };
    char *path = tmp_path("rejected.parquet");
    rf_iceberg_parquet_t *w = NULL;
    rf_iceberg_pq_result_t res;
    rf_iceberg_pq_opts_t o;
    rf_iceberg_pq_value_t v[3];
    rf_slice_t tags[3] = {rf_slice("a", 1), rf_slice("b", 1), rf_slice("c", 1)};
    uint8_t nulls[3] = {0, 1, 0};
    rf_err_t err;
    rf__iceberg_parquet_opts_init(&o);
    o.fsync = 0;
    o.max_value_bytes = 100;
    o.max_list_items = 2;
    RF_REQUIRE(rf__iceberg_parquet_open(path, cols, 3, &o, &w, &err) == RF_OK);
    memset(v, 0, sizeof(v));
    v[0].v.bytes = rf_slice("good", 4);
    v[1].is_null = 1;
    v[2].is_null = 1;
    RF_CHECK_INT(rf__iceberg_parquet_write_row(w, v, &err), RF_OK);

    v[0].is_null = 1; /* required */
    RF_CHECK_INT(rf__iceberg_parquet_write_row(w, v, &err), RF_EINVAL);
    RF_CHECK(strstr(err.msg, "id") != NULL);
    v[0].is_null = 0;
    v[0].v.bytes = rf_slice("bad \xC3\x28", 6); /* invalid UTF-8 */
    RF_CHECK_INT(rf__iceberg_parquet_write_row(w, v, &err), RF_EINVAL);
    RF_CHECK(strstr(err.msg, "UTF-8") != NULL);
    v[0].v.bytes = rf_slice("good", 4);
    v[2].is_null = 0;
    v[2].v.bytes = rf_slice(NULL, 101); /* too large (and NULL) */
    RF_CHECK(rf__iceberg_parquet_write_row(w, v, &err) != RF_OK);
    {
        static char big[101];
        v[2].v.bytes = rf_slice(big, sizeof(big));
        RF_CHECK_INT(rf__iceberg_parquet_write_row(w, v, &err), RF_ETOOBIG);
    }
    v[2].is_null = 1;
    v[1].is_null = 0;
    v[1].v.list.items = tags;
    v[1].v.list.count = 3; /* more than max_list_items */
    RF_CHECK_INT(rf__iceberg_parquet_write_row(w, v, &err), RF_ETOOBIG);
    v[1].v.list.count = 2;
    v[1].v.list.nulls = nulls; /* a null element in a list of required elements */
    RF_CHECK_INT(rf__iceberg_parquet_write_row(w, v, &err), RF_EINVAL);
    v[1].v.list.nulls = NULL;
    v[1].v.list.items = NULL; /* items missing */
    RF_CHECK_INT(rf__iceberg_parquet_write_row(w, v, &err), RF_EINVAL);
    v[1].v.list.items = tags;
    RF_CHECK_INT(rf__iceberg_parquet_write_row(w, v, &err), RF_OK);
    RF_CHECK_INT(rf__iceberg_parquet_write_row(NULL, v, &err), RF_EINVAL);
    RF_CHECK_INT(rf__iceberg_parquet_write_row(w, NULL, &err), RF_EINVAL);

    /* Rejected rows left nothing behind: 2 rows, 3 tag entries. */
    RF_REQUIRE(rf__iceberg_parquet_close(w, &res, &err) == RF_OK);
    RF_CHECK_INT(res.row_count, 2);
    RF_CHECK_INT(res.cols[0].value_count, 2);
    RF_CHECK_INT(res.cols[1].value_count, 3);
    RF_CHECK_INT(res.cols[1].null_count, 1);
    rf__iceberg_parquet_result_fini(&res);

    /* The file exists now: a second writer must not replace it. */
    RF_CHECK_INT(rf__iceberg_parquet_open(path, cols, 3, &o, &w, &err), RF_EEXIST);
    RF_CHECK(access(path, F_OK) == 0);
    free(path);
}

static void test_bad_columns(void)
{
    char *path = tmp_path("bad.parquet");
    rf_iceberg_parquet_t *w = NULL;
    rf_err_t err;
    rf_iceberg_pq_column_t dup_id[] = {{"a", 1, RF_ICEBERG_PQ_INT32, 0, 0, 0, 0},
                                       {"b", 2, RF_ICEBERG_PQ_INT32, 0, 1, 1, 0}};
    rf_iceberg_pq_column_t dup_name[] = {{"a", 1, RF_ICEBERG_PQ_INT32, 0, 0, 0, 0},
                                         {"a", 2, RF_ICEBERG_PQ_INT32, 0, 0, 0, 0}};
    rf_iceberg_pq_column_t bad_type[] = {{"a", 1, (rf_iceberg_pq_type)99, 0, 0, 0, 0}};
    rf_iceberg_pq_column_t bad_id[] = {{"a", 0, RF_ICEBERG_PQ_INT32, 0, 0, 0, 0}};
    rf_iceberg_pq_column_t no_name[] = {{"", 1, RF_ICEBERG_PQ_INT32, 0, 0, 0, 0}};
    rf_iceberg_pq_column_t same_elem[] = {{"a", 1, RF_ICEBERG_PQ_INT32, 0, 1, 1, 0}};
    RF_CHECK_INT(rf__iceberg_parquet_open(path, dup_id, 2, NULL, &w, &err), RF_EINVAL);
    RF_CHECK(strstr(err.msg, "field id 1") != NULL);
    RF_CHECK_INT(rf__iceberg_parquet_open(path, dup_name, 2, NULL, &w, &err), RF_EINVAL);
    RF_CHECK_INT(rf__iceberg_parquet_open(path, bad_type, 1, NULL, &w, &err), RF_EINVAL);
    RF_CHECK_INT(rf__iceberg_parquet_open(path, bad_id, 1, NULL, &w, &err), RF_EINVAL);
    RF_CHECK_INT(rf__iceberg_parquet_open(path, no_name, 1, NULL, &w, &err), RF_EINVAL);
    RF_CHECK_INT(rf__iceberg_parquet_open(path, same_elem, 1, NULL, &w, &err), RF_EINVAL);
    RF_CHECK_INT(rf__iceberg_parquet_open(path, dup_id, 0, NULL, &w, &err), RF_EINVAL);
    RF_CHECK(w == NULL);
    RF_CHECK(access(path, F_OK) != 0); /* nothing created */
    {
        rf_iceberg_pq_opts_t o;
        rf_iceberg_pq_kv_t kv = {NULL, "x"};
        rf__iceberg_parquet_opts_init(&o);
        o.kv = &kv;
        o.nkv = 1;
        RF_CHECK_INT(rf__iceberg_parquet_open(path, bad_id + 0, 0, &o, &w, &err), RF_EINVAL);
        RF_CHECK_INT(rf__iceberg_parquet_open(path, dup_name, 1, &o, &w, &err), RF_EINVAL);
        o.codec = (rf_iceberg_pq_codec)1; /* SNAPPY is not supported */
        o.nkv = 0;
        RF_CHECK_INT(rf__iceberg_parquet_open(path, dup_name, 1, &o, &w, &err), RF_EINVAL);
    }
    {
        /* Abort deletes the partial file. */
        RF_REQUIRE(rf__iceberg_parquet_open(path, dup_name, 1, NULL, &w, &err) == RF_OK);
        RF_CHECK(access(path, F_OK) == 0);
        rf__iceberg_parquet_abort(w);
        RF_CHECK(access(path, F_OK) != 0);
        rf__iceberg_parquet_abort(NULL);
    }
    {
        char *missing = tmp_path("no/such/dir/x.parquet");
        RF_CHECK_INT(rf__iceberg_parquet_open(missing, dup_name, 1, NULL, &w, &err), RF_EIO);
        free(missing);
    }
    free(path);
}

/* ==== Random inputs ==== */

static void test_random_inputs(void)
{
    /* Garbage in every argument of the writer: it returns errors or writes a file whose
     * framing and footer are sound; it never crashes (ASan/UBSan builds check the rest). */
    int opened = 0, closed = 0;
    for (uint64_t seed = 1; seed <= 2000; seed++) {
        tl_rng_t r;
        rf_iceberg_pq_column_t cols[12];
        char names[12][40];
        rf_iceberg_pq_kv_t kv[3];
        char *kvbuf[3] = {NULL, NULL, NULL};
        rf_iceberg_pq_opts_t o;
        rf_iceberg_parquet_t *w = NULL;
        rf_err_t err;
        size_t ncols;
        char *path = tmp_path("fuzz.parquet");
        tl_rng_seed(&r, seed * 7919);
        ncols = tl_rng_below(&r, 13);
        for (size_t i = 0; i < ncols; i++) {
            size_t nl = tl_rng_below(&r, 8);
            for (size_t k = 0; k < nl; k++)
                names[i][k] = (char)(1 + tl_rng_below(&r, 255));
            names[i][nl] = 0;
            if (tl_rng_below(&r, 3))
                snprintf(names[i], sizeof(names[i]), "col%zu", i);
            cols[i].name = tl_rng_below(&r, 50) ? names[i] : NULL;
            cols[i].field_id = (int32_t)tl_rng_below(&r, 30) - 2;
            cols[i].type = (rf_iceberg_pq_type)tl_rng_below(&r, RF_ICEBERG_PQ__TYPE_COUNT + 1);
            if (cols[i].type == RF_ICEBERG_PQ__TYPE_COUNT && tl_rng_below(&r, 4))
                cols[i].type = RF_ICEBERG_PQ_STRING;
            cols[i].optional = (int)tl_rng_below(&r, 2);
            cols[i].is_list = tl_rng_below(&r, 3) == 0;
            cols[i].element_id = (int32_t)tl_rng_below(&r, 60) - 2;
            cols[i].element_optional = (int)tl_rng_below(&r, 2);
            if (tl_rng_below(&r, 8)) {
                /* Mostly sound ids, so that the writing paths get garbage too. */
                cols[i].field_id = (int32_t)(2 * i + 1);
                cols[i].element_id = (int32_t)(2 * i + 2);
            }
        }
        rf__iceberg_parquet_opts_init(&o);
        o.fsync = 0;
        o.codec = tl_rng_below(&r, 2) ? RF_ICEBERG_PQ_ZSTD : RF_ICEBERG_PQ_UNCOMPRESSED;
        o.zstd_level = (int)tl_rng_below(&r, 25) - 5;
        o.page_bytes = tl_rng_below(&r, 3) ? tl_rng_below(&r, 5000) : tl_rng_next(&r);
        o.row_group_bytes = tl_rng_below(&r, 3) ? tl_rng_below(&r, 9000) : tl_rng_next(&r);
        o.dict_max_bytes = tl_rng_below(&r, 3000);
        o.dictionary = (int)tl_rng_below(&r, 2);
        o.max_value_bytes = tl_rng_below(&r, 200);
        o.max_list_items = tl_rng_below(&r, 20);
        o.bound_truncate = (int)tl_rng_below(&r, 20) - 2;
        o.nkv = tl_rng_below(&r, 4);
        for (size_t i = 0; i < o.nkv; i++) {
            size_t n = tl_rng_below(&r, 3) ? tl_rng_below(&r, 100) : tl_rng_below(&r, 70000);
            kvbuf[i] = rf_xmalloc(n + 1);
            for (size_t k = 0; k < n; k++)
                kvbuf[i][k] = (char)(1 + tl_rng_below(&r, 255));
            kvbuf[i][n] = 0;
            kv[i].key = tl_rng_below(&r, 20) ? kvbuf[i] : NULL;
            kv[i].value = tl_rng_below(&r, 4) ? kvbuf[i] : NULL;
        }
        o.kv = kv;
        unlink(path);
        if (rf__iceberg_parquet_open(path, cols, ncols, &o, &w, &err) == RF_OK) {
            size_t nrows = tl_rng_below(&r, 40);
            tl_file_t f; /* borrows the value generator */
            opened++;
            tl_file_init(&f, path);
            for (size_t i = 0; i < ncols; i++) {
                tl_colgen_t g = {(tl_mode)tl_rng_below(&r, TL__MODE_COUNT), 30, 30, 6, 80};
                tl_add_col(&f, "x", cols[i].type, 1, cols[i].is_list, 1, g);
                f.cols[i] = cols[i];
            }
            tl_gen_rows(&f, &r, nrows);
            for (size_t row = 0; row < nrows; row++) {
                rf_iceberg_pq_value_t *v = &f.vals[row * ncols];
                /* Sometimes a null where it may not be. */
                if (ncols && tl_rng_below(&r, 10) == 0)
                    v[tl_rng_below(&r, ncols)].is_null = 1;
                (void)rf__iceberg_parquet_write_row(w, v, &err);
            }
            if (tl_rng_below(&r, 8) == 0) {
                rf__iceberg_parquet_abort(w);
                RF_CHECK(access(path, F_OK) != 0);
            } else {
                rf_iceberg_pq_result_t res;
                if (rf__iceberg_parquet_close(w, &res, &err) == RF_OK) {
                    treader_t t;
                    closed++;
                    RF_CHECK(file_sound(path, &t));
                    RF_CHECK_INT(t.num_rows, res.row_count);
                    rf__iceberg_parquet_result_fini(&res);
                } else {
                    RF_CHECK(access(path, F_OK) != 0);
                }
            }
            tl_file_fini(&f);
        } else {
            RF_CHECK(w == NULL);
        }
        for (size_t i = 0; i < 3; i++)
            free(kvbuf[i]);
        free(path);
    }
    /* The generator must reach the writing paths, not only the argument checks. */
    RF_CHECK(opened > 200);
    RF_CHECK(closed > 150);
}

static void test_cleanup(void)
{
    if (dir)
        rf_test_rmtree(dir);
    free(dir);
    dir = NULL;
}

RF_TEST_MAIN(test_stats_exact, test_stats_random, test_rejected_rows, test_bad_columns,
             test_random_inputs, test_cleanup)
