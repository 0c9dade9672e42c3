/* test_parquet_fuzz.c - hundreds of Parquet files with random column sets, values and
 * writer options (fixed seeds), each read back by DuckDB and hyparquet and compared
 * exactly: values, field ids, types, statistics per row group and the close result.
 * Files are read in batches so that the whole run stays well under a minute.  Needs
 * node and `npm ci` in $RF_SHARED_DIR/tools/iceberg-verify; fails without them.
 */
#include "parquet_testlib.h"
#include "rf_test.h"

#include <stdlib.h>
#include <string.h>

#define NFILES 300
#define BATCH  100

static void test_random_files(void)
{
    char *dir = rf_test_tmpdir("parquet_fuzz");
    tl_file_t *files = rf_xcalloc(BATCH, sizeof(*files));
    tl_file_t *ptrs[BATCH];
    int failed_files = 0;
    for (int base = 0; base < NFILES; base += BATCH) {
        json_t **got;
        size_t n = 0;
        for (int k = 0; k < BATCH; k++) {
            uint64_t seed = (uint64_t)(base + k + 1);
            tl_file_t *f = &files[n];
            tl_rng_t r;
            rf_err_t err;
            char *path = rf_xasprintf("%s/f%03d.parquet", dir, base + k);
            size_t nrows;
            tl_rng_seed(&r, seed * 104729);
            tl_file_init(f, path);
            free(path);
            tl_random_cols(f, &r, 10);
            f->opts.codec = tl_rng_below(&r, 2) ? RF_ICEBERG_PQ_ZSTD : RF_ICEBERG_PQ_UNCOMPRESSED;
            f->opts.zstd_level = 1 + (int)tl_rng_below(&r, 9);
            f->opts.dictionary = tl_rng_below(&r, 4) != 0;
            f->opts.page_bytes = tl_rng_below(&r, 2) ? 64 + tl_rng_below(&r, 2000) : 1u << 20;
            f->opts.row_group_bytes =
                tl_rng_below(&r, 2) ? 200 + tl_rng_below(&r, 20000) : (size_t)64 << 20;
            f->opts.dict_max_bytes = tl_rng_below(&r, 2) ? 64 + tl_rng_below(&r, 1000) : 1u << 20;
            nrows = tl_rng_below(&r, 10) == 0 ? tl_rng_below(&r, 600) : tl_rng_below(&r, 80);
            tl_gen_rows(f, &r, nrows);
            if (tl_write(f, &err) != RF_OK) {
                rf__test_fail(__FILE__, __LINE__, "seed %llu: %s", (unsigned long long)seed,
                              err.msg);
                tl_file_fini(f);
                continue;
            }
            if (tl_check_result(f))
                failed_files++;
            ptrs[n++] = f;
        }
        got = tl_read(ptrs, n, "");
        RF_REQUIRE(got != NULL);
        for (size_t i = 0; i < n; i++) {
            if (failed_files < 5 && tl_check_read(ptrs[i], got[i]))
                failed_files++;
            json_decref(got[i]);
            tl_file_fini(ptrs[i]);
        }
        free(got);
    }
    RF_CHECK_INT(failed_files, 0);
    free(files);
    rf_test_rmtree(dir);
    free(dir);
}

RF_TEST_MAIN(test_random_files)
