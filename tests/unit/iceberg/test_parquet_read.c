/* test_parquet_read.c - the Parquet reader against the writer: hundreds of random files
 * (every type, nulls, empty and null lists, long strings, dictionary fallback, many pages
 * and row groups, ZSTD and uncompressed) read back value for value, bit for bit; field
 * ids and key/value metadata; and corrupted or truncated files, which must fail cleanly
 * (run under ASan).  Compaction rewrites what this reader returns, so
 * INVARIANT(history-exported-once) depends on it returning exactly what was written.
 */
#include "parquet_testlib.h"
#include "rf_test.h"

#include <stdlib.h>
#include <string.h>

static size_t esize(rf_iceberg_pq_type t)
{
    switch (t) {
    case RF_ICEBERG_PQ_BOOLEAN:
        return 1;
    case RF_ICEBERG_PQ_INT32:
    case RF_ICEBERG_PQ_DATE:
    case RF_ICEBERG_PQ_FLOAT:
        return 4;
    case RF_ICEBERG_PQ_INT64:
    case RF_ICEBERG_PQ_TIMESTAMPTZ:
    case RF_ICEBERG_PQ_DOUBLE:
        return 8;
    default:
        return sizeof(rf_slice_t);
    }
}

/* Compares one element (bitwise for numbers, so NaNs and -0.0 count). */
static int elem_eq(rf_iceberg_pq_type t, const void *a, const void *b)
{
    if (t == RF_ICEBERG_PQ_STRING || t == RF_ICEBERG_PQ_BINARY) {
        const rf_slice_t *x = a, *y = b;
        return x->len == y->len && (x->len == 0 || !memcmp(x->ptr, y->ptr, x->len));
    }
    if (t == RF_ICEBERG_PQ_BOOLEAN)
        return (*(const uint8_t *)a != 0) == (*(const uint8_t *)b != 0);
    return !memcmp(a, b, esize(t));
}

static int value_eq(const rf_iceberg_pq_column_t *c, const rf_iceberg_pq_value_t *want,
                    const rf_iceberg_pq_value_t *got)
{
    if (want->is_null || got->is_null)
        return want->is_null == got->is_null;
    if (!c->is_list) {
        if (c->type == RF_ICEBERG_PQ_BOOLEAN)
            return (want->v.b != 0) == (got->v.b != 0);
        if (c->type == RF_ICEBERG_PQ_STRING || c->type == RF_ICEBERG_PQ_BINARY)
            return elem_eq(c->type, &want->v.bytes, &got->v.bytes);
        return elem_eq(c->type, &want->v, &got->v);
    }
    if (want->v.list.count != got->v.list.count)
        return 0;
    for (size_t i = 0; i < want->v.list.count; i++) {
        int wn = want->v.list.nulls && want->v.list.nulls[i];
        int gn = got->v.list.nulls && got->v.list.nulls[i];
        if (wn != gn)
            return 0;
        if (!wn && !elem_eq(c->type, (const uint8_t *)want->v.list.items + i * esize(c->type),
                            (const uint8_t *)got->v.list.items + i * esize(c->type)))
            return 0;
    }
    return 1;
}

/* Reads f back and compares everything; returns the number of mismatches. */
static int check_file(const tl_file_t *f)
{
    rf_iceberg_pqr_t *r = NULL;
    rf_err_t err = {0};
    int bad = 0;
    int64_t row0 = 0;
    rf_rc rc = rf__iceberg_pqr_open(f->path, &r, &err);
    if (rc) {
        fprintf(stderr, "%s: %s\n", f->path, err.msg);
        return 1;
    }
    if (rf__iceberg_pqr_ncols(r) != f->ncols || rf__iceberg_pqr_rows(r) != (int64_t)f->nrows)
        bad++;
    for (size_t i = 0; i < f->ncols && !bad; i++) {
        const rf_iceberg_pqr_col_t *c = rf__iceberg_pqr_col(r, i);
        if (strcmp(c->name, f->cols[i].name) || c->field_id != f->cols[i].field_id ||
            c->type != f->cols[i].type || c->is_list != f->cols[i].is_list ||
            c->optional != f->cols[i].optional ||
            (c->is_list && (c->element_id != f->cols[i].element_id ||
                            c->element_optional != f->cols[i].element_optional)))
            bad++;
        if (rf__iceberg_pqr_find(r, f->cols[i].field_id) != (int)i)
            bad++;
    }
    for (size_t g = 0; g < rf__iceberg_pqr_row_groups(r) && !bad; g++) {
        int64_t n = 0;
        if ((rc = rf__iceberg_pqr_read_group(r, g, NULL, &n, &err))) {
            fprintf(stderr, "%s group %zu: %s\n", f->path, g, err.msg);
            bad++;
            break;
        }
        for (int64_t row = 0; row < n && !bad; row++) {
            for (size_t i = 0; i < f->ncols; i++) {
                rf_iceberg_pq_value_t got;
                const rf_iceberg_pq_value_t *want = &f->vals[(size_t)(row0 + row) * f->ncols + i];
                rf__iceberg_pqr_value(r, i, row, &got);
                if (!value_eq(&f->cols[i], want, &got)) {
                    fprintf(stderr, "%s: row %lld column %s differs\n", f->path,
                            (long long)(row0 + row), f->cols[i].name);
                    bad++;
                    break;
                }
            }
        }
        row0 += n;
    }
    if (!bad && row0 != (int64_t)f->nrows)
        bad++;
    rf__iceberg_pqr_close(r);
    return bad;
}

static void test_random_round_trip(void)
{
    char *dir = rf_test_tmpdir("pqread");
    int bad_files = 0;
    for (int k = 0; k < 300; k++) {
        tl_file_t f;
        tl_rng_t r;
        rf_err_t err;
        char *path = rf_xasprintf("%s/f%03d.parquet", dir, k);
        size_t nrows;
        tl_rng_seed(&r, (uint64_t)(k + 1) * 7919);
        tl_file_init(&f, path);
        free(path);
        tl_random_cols(&f, &r, 12);
        f.opts.codec = tl_rng_below(&r, 2) ? RF_ICEBERG_PQ_ZSTD : RF_ICEBERG_PQ_UNCOMPRESSED;
        f.opts.dictionary = tl_rng_below(&r, 4) != 0;
        f.opts.page_bytes = tl_rng_below(&r, 2) ? 64 + tl_rng_below(&r, 2000) : 1u << 20;
        f.opts.row_group_bytes =
            tl_rng_below(&r, 2) ? 200 + tl_rng_below(&r, 20000) : (size_t)64 << 20;
        f.opts.dict_max_bytes = tl_rng_below(&r, 2) ? 64 + tl_rng_below(&r, 1000) : 1u << 20;
        f.opts.fsync = 0;
        nrows = tl_rng_below(&r, 10) == 0 ? tl_rng_below(&r, 2000) : tl_rng_below(&r, 120);
        tl_gen_rows(&f, &r, nrows);
        if (tl_write(&f, &err) != RF_OK) {
            rf__test_fail(__FILE__, __LINE__, "file %d: %s", k, err.msg);
        } else if (check_file(&f)) {
            bad_files++;
        }
        tl_file_fini(&f);
    }
    RF_CHECK_INT(bad_files, 0);
    rf_test_rmtree(dir);
    free(dir);
}

/* The footer's key/value metadata and a selective read (want flags). */
static void test_kv_and_selected_columns(void)
{
    char *dir = rf_test_tmpdir("pqread_kv");
    char *path = rf_xasprintf("%s/kv.parquet", dir);
    tl_file_t f;
    tl_rng_t r;
    rf_err_t err;
    rf_iceberg_pqr_t *rd = NULL;
    uint8_t want[2] = {0, 1};
    int64_t n = 0;
    tl_colgen_t g = {0};
    tl_rng_seed(&r, 42);
    tl_file_init(&f, path);
    tl_add_col(&f, "a", RF_ICEBERG_PQ_INT64, 0, 0, 0, g);
    tl_add_col(&f, "b", RF_ICEBERG_PQ_STRING, 1, 0, 0, g);
    tl_gen_rows(&f, &r, 50);
    RF_REQUIRE(tl_write(&f, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_pqr_open(path, &rd, &err) == RF_OK);
    RF_CHECK(rf__iceberg_pqr_kv(rd, "iceberg.schema") != NULL);
    RF_CHECK(rf__iceberg_pqr_kv(rd, "no.such.key") == NULL);
    RF_CHECK_INT(rf__iceberg_pqr_find(rd, 999), -1);
    RF_REQUIRE(rf__iceberg_pqr_read_group(rd, 0, want, &n, &err) == RF_OK);
    RF_CHECK_INT(n, 50);
    {
        rf_iceberg_pq_value_t v;
        /* Column a was not read: the accessor says so. */
        RF_CHECK_INT(rf__iceberg_pqr_value(rd, 0, 0, &v), -1);
        RF_CHECK(v.is_null);
        RF_CHECK_INT(rf__iceberg_pqr_value(rd, 1, 0, &v), 0);
        RF_CHECK(value_eq(&f.cols[1], &f.vals[1], &v));
    }
    RF_CHECK(rf__iceberg_pqr_read_group(rd, 5, NULL, &n, &err) == RF_EINVAL);
    rf__iceberg_pqr_close(rd);
    RF_CHECK(rf__iceberg_pqr_open("/nonexistent/x.parquet", &rd, &err) == RF_ENOTFOUND);
    RF_CHECK(rd == NULL);
    tl_file_fini(&f);
    free(path);
    rf_test_rmtree(dir);
    free(dir);
}

/* Flipped bytes and truncations anywhere must give an error or values, never a crash,
 * an overflow or a hang (ASan and the timeout watch). */
static void test_corrupt_files(void)
{
    char *dir = rf_test_tmpdir("pqread_bad");
    char *path = rf_xasprintf("%s/src.parquet", dir);
    char *bad = rf_xasprintf("%s/bad.parquet", dir);
    tl_file_t f;
    tl_rng_t r;
    rf_err_t err;
    char *data;
    size_t len = 0;
    int opened = 0, failed = 0;
    tl_rng_seed(&r, 99);
    tl_file_init(&f, path);
    tl_random_cols(&f, &r, 8);
    {
        tl_colgen_t g = {0};
        g.max_list = 6;
        tl_add_col(&f, "vec", RF_ICEBERG_PQ_FLOAT, 1, 1, 0, g);
    }
    f.opts.page_bytes = 300;
    f.opts.row_group_bytes = 4000;
    tl_gen_rows(&f, &r, 400);
    RF_REQUIRE(tl_write(&f, &err) == RF_OK);
    data = rf_test_read_file(path, &len);
    RF_REQUIRE(data && len > 100);
    for (int it = 0; it < 3000; it++) {
        char *copy = rf_xmalloc(len);
        size_t n = len;
        FILE *fp;
        rf_iceberg_pqr_t *rd = NULL;
        memcpy(copy, data, len);
        if (it % 5 == 0) {
            n = (size_t)tl_rng_below(&r, len);
        } else {
            int flips = 1 + (int)tl_rng_below(&r, 4);
            for (int k = 0; k < flips; k++) {
                /* Half of the flips land in the footer, where the structure is. */
                size_t at = tl_rng_below(&r, 2) ? len - 1 - tl_rng_below(&r, len / 4 + 1)
                                                : (size_t)tl_rng_below(&r, len);
                copy[at] = (char)tl_rng_below(&r, 256);
            }
        }
        fp = fopen(bad, "wb");
        RF_REQUIRE(fp != NULL);
        fwrite(copy, 1, n, fp);
        fclose(fp);
        free(copy);
        if (rf__iceberg_pqr_open(bad, &rd, &err) != RF_OK) {
            RF_CHECK(rd == NULL);
            failed++;
            continue;
        }
        opened++;
        for (size_t g = 0; g < rf__iceberg_pqr_row_groups(rd); g++) {
            int64_t rows = 0;
            if (rf__iceberg_pqr_read_group(rd, g, NULL, &rows, &err) != RF_OK)
                break;
            for (int64_t row = 0; row < rows; row++)
                for (size_t c = 0; c < rf__iceberg_pqr_ncols(rd); c++) {
                    rf_iceberg_pq_value_t v;
                    rf__iceberg_pqr_value(rd, c, row, &v);
                }
        }
        rf__iceberg_pqr_close(rd);
    }
    /* Both outcomes happened: the test reached the decoders, not only the footer check. */
    RF_CHECK(opened > 100);
    RF_CHECK(failed > 100);
    free(data);
    tl_file_fini(&f);
    free(path);
    free(bad);
    rf_test_rmtree(dir);
    free(dir);
}

RF_TEST_MAIN(test_random_round_trip, test_kv_and_selected_columns, test_corrupt_files)
