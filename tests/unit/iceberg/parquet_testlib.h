/* parquet_testlib.h - shared by the Parquet writer tests: random column sets and values
 * (fixed seeds), writing them with the writer under test, the statistics an Iceberg
 * manifest should get (computed here independently), and reading files back with
 * DuckDB and hyparquet through read_parquet.mjs to compare everything exactly.
 */
#ifndef RF_PARQUET_TESTLIB_H
#define RF_PARQUET_TESTLIB_H

#include "iceberg/iceberg_int.h"

#include <jansson.h>

typedef struct tl_rng {
    uint64_t s;
} tl_rng_t;

void tl_rng_seed(tl_rng_t *r, uint64_t seed);
uint64_t tl_rng_next(tl_rng_t *r);
/* Uniform in [0, n). */
uint64_t tl_rng_below(tl_rng_t *r, uint64_t n);

/* How the values of one column are drawn. */
typedef enum tl_mode {
    TL_RANDOM = 0, /* any value of the type, nulls at null_pct */
    TL_LOWCARD,    /* a handful of distinct values (dictionary friendly) */
    TL_ALLNULL,    /* every value null (the column must be optional) */
    TL_LONG,       /* strings/binary of 64..100 KiB now and then */
    TL_NAN,        /* floats: NaN half the time */
    TL_ALLNAN,     /* floats: every value NaN */
    TL_UNIQUE,     /* strings: all distinct (dictionary fallback) */
    TL__MODE_COUNT
} tl_mode;

typedef struct tl_colgen {
    tl_mode mode;
    int null_pct;      /* rows that are null (optional columns) */
    int elem_null_pct; /* list elements that are null (optional elements) */
    int max_list;      /* list lengths in [0, max_list] */
    int max_str;       /* string lengths in [0, max_str] for TL_RANDOM */
} tl_colgen_t;

/* A file to write: columns, how to fill them, the rows, and what came out. */
typedef struct tl_file {
    char *path;
    rf_iceberg_pq_column_t cols[64];
    char names[64][32];
    tl_colgen_t gen[64];
    size_t ncols;
    size_t nrows;
    rf_iceberg_pq_value_t *vals; /* nrows * ncols */
    rf_iceberg_pq_opts_t opts;
    char *schema_json; /* the iceberg.schema value written to the footer */
    rf_iceberg_pq_kv_t kv[2];
    rf_iceberg_pq_result_t res;
    int written;
    void **arena;
    size_t narena, cap_arena;
} tl_file_t;

/* Sets up an empty file description at path with default options and no columns. */
void tl_file_init(tl_file_t *f, const char *path);
void tl_file_fini(tl_file_t *f);
/* Adds a column; returns its index.  Field ids are assigned in order from 1. */
size_t tl_add_col(tl_file_t *f, const char *name, rf_iceberg_pq_type type, int optional,
                  int is_list, int element_optional, tl_colgen_t gen);
/* A random column set: 1..max_cols columns of random types, modes and nullability. */
void tl_random_cols(tl_file_t *f, tl_rng_t *r, size_t max_cols);
/* Draws nrows rows. */
void tl_gen_rows(tl_file_t *f, tl_rng_t *r, size_t nrows);
/* Writes the file with the writer under test; returns its rc (0 on success). */
rf_rc tl_write(tl_file_t *f, rf_err_t *err);

/* Checks the close result against statistics computed here.  Returns failures. */
int tl_check_result(const tl_file_t *f);

/* Runs read_parquet.mjs on the files (flags: "--no-hyparquet --no-meta" etc., or "")
 * and returns one parsed JSON object per file (caller json_decref's each and frees the
 * array), or NULL when node could not run (a failure is recorded). */
json_t **tl_read(tl_file_t **files, size_t n, const char *flags);

/* Compares what the readers saw with what was written: rows from DuckDB (and hyparquet
 * when present), footer field ids, key/value metadata and created_by, DuckDB's
 * parquet_schema types and parquet_metadata statistics per row group, and the
 * result's split offsets and column sizes.  Returns the number of failures. */
int tl_check_read(const tl_file_t *f, json_t *got);

#endif
