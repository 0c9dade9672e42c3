/* iceberg_int.h - private to iceberg/: the Parquet data-file encoder and reader, the Avro
 * object-container writer used for manifests and manifest lists, table metadata, the
 * SQLite catalog, and what the exporter, the history queries and maintenance share (the
 * history table's columns, locations, position and live files).
 * INVARIANT(history-exported-once) is upheld by the exporter on top of these pieces.
 */
#ifndef RF_ICEBERG_INT_H
#define RF_ICEBERG_INT_H

#include "core/core.h"
#include "iceberg/iceberg.h"

/* ==== Parquet writer (iceberg_parquet.c) ==== */

/* A focused Parquet encoder for Iceberg data files: data pages v1, PLAIN values,
 * dictionary-encoded strings, RLE/bit-packed levels, ZSTD or no compression, column
 * statistics, a Thrift compact footer with a field id on every column.  One writer
 * belongs to one thread at a time; different writers are independent. */

/* Column types.  STRING is BYTE_ARRAY + STRING (UTF-8, checked on write), TIMESTAMPTZ
 * is INT64 micros since the epoch + TIMESTAMP(isAdjustedToUTC=true, MICROS), DATE is
 * INT32 days since the epoch + DATE. */
typedef enum rf_iceberg_pq_type {
    RF_ICEBERG_PQ_BOOLEAN = 0,
    RF_ICEBERG_PQ_INT32,
    RF_ICEBERG_PQ_INT64,
    RF_ICEBERG_PQ_FLOAT,
    RF_ICEBERG_PQ_DOUBLE,
    RF_ICEBERG_PQ_STRING,
    RF_ICEBERG_PQ_BINARY,
    RF_ICEBERG_PQ_TIMESTAMPTZ,
    RF_ICEBERG_PQ_DATE,
    RF_ICEBERG_PQ__TYPE_COUNT
} rf_iceberg_pq_type;

/* One top-level column.  A list column (is_list) is written with the standard
 * 3-level layout `<name>` (LIST, field_id) / `list` (repeated) / `element`
 * (element_id); `type` is then the element type. */
typedef struct rf_iceberg_pq_column {
    const char *name; /* borrowed; copied by open; 1..255 bytes */
    int32_t field_id; /* > 0, unique in the file (element ids included) */
    rf_iceberg_pq_type type;
    int optional; /* 1: the value (or the whole list) may be null */
    int is_list;
    int32_t element_id;   /* list only: the element's field id */
    int element_optional; /* list only: elements may be null */
} rf_iceberg_pq_column_t;

/* One value of one row, borrowed for the duration of write_row.  For a list,
 * `list.items` points at `list.count` elements of the element type: uint8_t
 * (BOOLEAN, 0 or 1), int32_t (INT32, DATE), int64_t (INT64, TIMESTAMPTZ), float,
 * double, or rf_slice_t (STRING, BINARY); `list.nulls` is NULL or count flags, 1 for
 * a null element. */
typedef struct rf_iceberg_pq_value {
    int is_null;
    union {
        int b;
        int32_t i32; /* INT32, DATE */
        int64_t i64; /* INT64, TIMESTAMPTZ */
        float f32;
        double f64;
        rf_slice_t bytes; /* STRING, BINARY */
        struct {
            const void *items;
            const uint8_t *nulls;
            size_t count;
        } list;
    } v;
} rf_iceberg_pq_value_t;

typedef struct rf_iceberg_pq_kv {
    const char *key;   /* borrowed; copied by open */
    const char *value; /* borrowed; copied by open; NULL allowed */
} rf_iceberg_pq_kv_t;

typedef enum rf_iceberg_pq_codec {
    RF_ICEBERG_PQ_UNCOMPRESSED = 0, /* the Parquet CompressionCodec numbers */
    RF_ICEBERG_PQ_ZSTD = 6,
} rf_iceberg_pq_codec;

typedef struct rf_iceberg_pq_opts {
    rf_iceberg_pq_codec codec;    /* default ZSTD */
    int zstd_level;               /* default 3 */
    size_t row_group_bytes;       /* buffered (compressed) bytes per row group; default 64 MiB */
    size_t page_bytes;            /* target page size before compression; default 1 MiB */
    int dictionary;               /* dictionary-encode STRING/BINARY columns; default 1 */
    size_t dict_max_bytes;        /* fall back to PLAIN past this dictionary size; 1 MiB */
    size_t max_value_bytes;       /* largest string/binary value or list (bytes); 64 MiB */
    size_t max_list_items;        /* longest list; default 1M */
    int bound_truncate;           /* Iceberg bounds: code points (strings) or bytes; 16 */
    int fsync;                    /* fsync the file on close; default 1 */
    const rf_iceberg_pq_kv_t *kv; /* footer key/value metadata (e.g. iceberg.schema) */
    size_t nkv;
} rf_iceberg_pq_opts_t;

/* Fills opts with the defaults above.  Start from it: a zero size field also means its
 * default, but a zeroed struct means no compression, no dictionary and no fsync. */
void rf__iceberg_parquet_opts_init(rf_iceberg_pq_opts_t *opts);

/* What an Iceberg manifest needs for one leaf column (list elements included). */
typedef struct rf_iceberg_pq_colstats {
    int32_t field_id;
    int in_list;         /* the column is a list element (Iceberg keeps no bounds) */
    int64_t value_count; /* entries, nulls and NaNs included (Parquet num_values) */
    int64_t null_count;  /* entries without a value: null, null list, empty list */
    int64_t nan_count;   /* FLOAT/DOUBLE only; -1 for other types */
    int64_t column_size; /* total compressed bytes of the column chunks */
    int has_lower, has_upper;
    /* Iceberg single-value serialisation (little-endian numbers, UTF-8 bytes), strings
     * and binary truncated to bound_truncate; owned by the result. */
    uint8_t *lower, *upper;
    size_t lower_len, upper_len;
} rf_iceberg_pq_colstats_t;

typedef struct rf_iceberg_pq_result {
    int64_t row_count;
    int64_t file_size;
    rf_iceberg_pq_colstats_t *cols; /* one per leaf column, in schema order */
    size_t ncols;
    int64_t *split_offsets; /* row group start offsets, ascending */
    size_t nsplits;
} rf_iceberg_pq_result_t;

/* Frees what the result owns; the struct itself is the caller's.  NULL is a no-op. */
void rf__iceberg_parquet_result_fini(rf_iceberg_pq_result_t *res);

typedef struct rf_iceberg_parquet rf_iceberg_parquet_t;

/* Creates path (which must not exist: RF_EEXIST) and returns a writer in *w.  columns
 * and opts (NULL: defaults) are borrowed and copied.  RF_EINVAL for a bad column set
 * (no columns, duplicate field ids or names, bad names or types), RF_ETOOBIG past the
 * limits (4096 columns, 16 MiB of key/value metadata), RF_EIO when the file cannot be
 * created.  *w is set only on success. */
rf_rc rf__iceberg_parquet_open(const char *path, const rf_iceberg_pq_column_t *columns,
                               size_t ncols, const rf_iceberg_pq_opts_t *opts,
                               rf_iceberg_parquet_t **w, rf_err_t *err);

/* Appends one row: values[i] belongs to column i; borrowed.  A row that fails
 * validation (null in a required column: RF_EINVAL, invalid UTF-8: RF_EINVAL, a value
 * past max_value_bytes or max_list_items: RF_ETOOBIG) is not written and the writer
 * stays usable.  A write failure (RF_EIO, RF_ENOMEM from the compressor) leaves the
 * writer failed: every later call returns that error; abort it. */
rf_rc rf__iceberg_parquet_write_row(rf_iceberg_parquet_t *w, const rf_iceberg_pq_value_t *values,
                                    rf_err_t *err);

/* Rows written so far, and an estimate of the file size if it were closed now (bytes
 * on disk + buffered pages), for rolling files at a target size. */
int64_t rf__iceberg_parquet_rows(const rf_iceberg_parquet_t *w);
int64_t rf__iceberg_parquet_size_estimate(const rf_iceberg_parquet_t *w);

/* Flushes the last row group, writes the footer, fsyncs (opts.fsync) and closes the
 * file.  On success fills *res (caller frees with rf__iceberg_parquet_result_fini; res
 * may be NULL).  The writer is freed in every case; on failure the partial file is
 * deleted. */
rf_rc rf__iceberg_parquet_close(rf_iceberg_parquet_t *w, rf_iceberg_pq_result_t *res,
                                rf_err_t *err);

/* Frees the writer and deletes its file.  NULL is a no-op. */
void rf__iceberg_parquet_abort(rf_iceberg_parquet_t *w);

/* -- Building blocks (iceberg_parquet_enc.c), exposed for the writer and its tests -- */

/* Thrift compact protocol writer.  Errors are sticky: the first one (buffer limit,
 * nesting too deep, bad field id) is kept in rc and later calls do nothing. */
#define RF_ICEBERG_TC_DEPTH 16
enum {
    RF_ICEBERG_TC_TRUE = 1,
    RF_ICEBERG_TC_FALSE = 2,
    RF_ICEBERG_TC_I8 = 3,
    RF_ICEBERG_TC_I16 = 4,
    RF_ICEBERG_TC_I32 = 5,
    RF_ICEBERG_TC_I64 = 6,
    RF_ICEBERG_TC_DOUBLE = 7,
    RF_ICEBERG_TC_BINARY = 8,
    RF_ICEBERG_TC_LIST = 9,
    RF_ICEBERG_TC_STRUCT = 12,
};
typedef struct rf_iceberg_tc {
    rf_buf_t *out; /* borrowed */
    int16_t last[RF_ICEBERG_TC_DEPTH];
    int depth; /* open structs; the outermost struct is opened with push */
    rf_rc rc;
} rf_iceberg_tc_t;

void rf__iceberg_tc_init(rf_iceberg_tc_t *tc, rf_buf_t *out);
/* Opens a struct that has no field header (the outermost one, or a list element). */
void rf__iceberg_tc_push(rf_iceberg_tc_t *tc);
/* Writes the stop byte and closes the innermost struct. */
void rf__iceberg_tc_pop(rf_iceberg_tc_t *tc);
/* Field header of `type` for field `id` (1..32767) in the innermost struct. */
void rf__iceberg_tc_field(rf_iceberg_tc_t *tc, int type, int id);
void rf__iceberg_tc_i32(rf_iceberg_tc_t *tc, int id, int32_t v);
void rf__iceberg_tc_i64(rf_iceberg_tc_t *tc, int id, int64_t v);
void rf__iceberg_tc_bool(rf_iceberg_tc_t *tc, int id, int v);
void rf__iceberg_tc_binary(rf_iceberg_tc_t *tc, int id, const void *p, size_t n);
/* Field header STRUCT + push. */
void rf__iceberg_tc_struct(rf_iceberg_tc_t *tc, int id);
/* Field header LIST + list header; then write n elements with the elem_* calls (or
 * push/pop for struct elements). */
void rf__iceberg_tc_list(rf_iceberg_tc_t *tc, int id, int elem_type, size_t n);
void rf__iceberg_tc_elem_i32(rf_iceberg_tc_t *tc, int32_t v);
void rf__iceberg_tc_elem_binary(rf_iceberg_tc_t *tc, const void *p, size_t n);
/* Unsigned LEB128 and zigzag varints, as the protocol writes them. */
void rf__iceberg_tc_uvarint(rf_iceberg_tc_t *tc, uint64_t v);
/* Returns tc->rc, or RF_EINVAL when a struct is still open; err names the failure. */
rf_rc rf__iceberg_tc_finish(rf_iceberg_tc_t *tc, rf_err_t *err);

/* RLE / bit-packed hybrid encoder (Parquet Encodings.md, without the length prefix).
 * Values must fit bit_width (1..32) bits.  Output errors (the buffer's max) are sticky
 * in rc. */
typedef struct rf_iceberg_rle {
    rf_buf_t *out; /* borrowed */
    int bit_width;
    uint32_t cur;    /* value of the current repeated run */
    uint32_t repeat; /* length of the current repeated run */
    uint32_t buffered[8];
    int nbuffered;
    uint32_t literal_groups; /* groups of 8 in the open bit-packed run */
    size_t indicator_at;     /* offset of the open run's header byte, or SIZE_MAX */
    rf_rc rc;
} rf_iceberg_rle_t;

void rf__iceberg_rle_init(rf_iceberg_rle_t *rle, rf_buf_t *out, int bit_width);
void rf__iceberg_rle_put(rf_iceberg_rle_t *rle, uint32_t v);
/* n times v; the same bytes as n calls of put, faster for long runs. */
void rf__iceberg_rle_put_run(rf_iceberg_rle_t *rle, uint32_t v, size_t n);
/* Flushes the pending values; the encoder can then be discarded.  Returns rle->rc. */
rf_rc rf__iceberg_rle_finish(rf_iceberg_rle_t *rle);
/* Bits needed for v (0 for 0). */
int rf__iceberg_bit_width(uint32_t v);

/* Iceberg bounds for STRING (truncated to `len` Unicode code points, valid UTF-8
 * required) and BINARY (truncated to `len` bytes).  lower: the prefix.  upper: the
 * prefix with its last code point (byte) incremented when the value was truncated,
 * skipping the surrogate range; returns 0 (no upper bound) when no prefix can be
 * incremented.  The bound is appended to out (reset first); returns 1 when written. */
int rf__iceberg_bound_lower(int is_string, const uint8_t *p, size_t n, size_t len, rf_buf_t *out);
int rf__iceberg_bound_upper(int is_string, const uint8_t *p, size_t n, size_t len, rf_buf_t *out);

/* ==== Avro writer (iceberg_avro.c) ==== */

/* Avro binary encoding and object container files, written by hand because Iceberg
 * readers need the schema text with its `field-id` attributes and header metadata
 * entries, which libavro 1.11 cannot write (DESIGN.md, Iceberg).  Also a small
 * schema-driven reader, for manifest lists of earlier snapshots and for tests. */

#include <jansson.h>

/* A borrowed pair of strings (header metadata, table properties, summary entries). */
typedef struct rf_iceberg_kv {
    const char *key;
    const char *value;
} rf_iceberg_kv_t;

/* Datum encoder.  Errors are sticky: the first failure (the buffer's max, RF_ETOOBIG)
 * is kept in rc and later puts do nothing, so a datum is encoded with plain calls and
 * checked once. */
typedef struct rf_iceberg_avro_enc {
    rf_buf_t buf;
    rf_rc rc;
} rf_iceberg_avro_enc_t;

void rf__iceberg_avro_enc_init(rf_iceberg_avro_enc_t *enc, size_t max);
void rf__iceberg_avro_enc_fini(rf_iceberg_avro_enc_t *enc);
void rf__iceberg_avro_enc_reset(rf_iceberg_avro_enc_t *enc);
/* Zigzag varint of v into out; returns the byte count (1..10). */
size_t rf__iceberg_avro_zigzag_encode(int64_t v, uint8_t out[10]);
/* int and long: zigzag varints.  float/double: IEEE 754 little-endian.  bytes and
 * string: long length then the bytes (strings must be UTF-8).  fixed: the bytes. */
void rf__iceberg_avro_put_long(rf_iceberg_avro_enc_t *enc, int64_t v);
void rf__iceberg_avro_put_int(rf_iceberg_avro_enc_t *enc, int32_t v);
void rf__iceberg_avro_put_bool(rf_iceberg_avro_enc_t *enc, int v);
void rf__iceberg_avro_put_float(rf_iceberg_avro_enc_t *enc, float v);
void rf__iceberg_avro_put_double(rf_iceberg_avro_enc_t *enc, double v);
void rf__iceberg_avro_put_bytes(rf_iceberg_avro_enc_t *enc, const void *p, size_t n);
void rf__iceberg_avro_put_string(rf_iceberg_avro_enc_t *enc, const char *s);
void rf__iceberg_avro_put_fixed(rf_iceberg_avro_enc_t *enc, const void *p, size_t n);
/* A union value is its 0-based branch index, then the value of that branch. */
void rf__iceberg_avro_put_union(rf_iceberg_avro_enc_t *enc, int branch);
/* Arrays and maps: put_block(count) then count items (map items: string key, value),
 * then put_array_end.  An empty array or map is put_block(0) + put_array_end. */
void rf__iceberg_avro_put_block(rf_iceberg_avro_enc_t *enc, int64_t count);
void rf__iceberg_avro_put_array_end(rf_iceberg_avro_enc_t *enc);
/* Decodes one zigzag varint at *p (advanced past it).  RF_EPARSE when truncated or
 * longer than 64 bits. */
rf_rc rf__iceberg_avro_get_long(const uint8_t **p, const uint8_t *end, int64_t *out);

typedef enum rf_iceberg_avro_codec {
    RF_ICEBERG_AVRO_NULL = 0,    /* "null": blocks stored as they are */
    RF_ICEBERG_AVRO_DEFLATE = 1, /* "deflate": raw RFC 1951 blocks (zlib, no header) */
} rf_iceberg_avro_codec;

typedef struct rf_iceberg_avro_writer rf_iceberg_avro_writer_t;

/* Starts a container file in memory.  schema_json (borrowed) is written into the header
 * byte for byte as `avro.schema` and must be a JSON object; meta (borrowed, copied) are
 * further header entries, whose keys must not start with "avro.".  RF_EINVAL otherwise.
 * The 16-byte sync marker comes from the CSPRNG. */
rf_rc rf__iceberg_avro_writer_new(const char *schema_json, rf_iceberg_avro_codec codec,
                                  const rf_iceberg_kv_t *meta, size_t n_meta,
                                  rf_iceberg_avro_writer_t **out, rf_err_t *err);
/* The encoder for the next datum; borrowed, valid until the writer is freed.  Encode one
 * datum with the put calls, then call rf__iceberg_avro_writer_next. */
rf_iceberg_avro_enc_t *rf__iceberg_avro_writer_enc(rf_iceberg_avro_writer_t *w);
/* Ends the datum just encoded; flushes a block once 64 KiB are pending.  When the
 * datum did not fit (RF_ETOOBIG) it is dropped and the writer stays usable. */
rf_rc rf__iceberg_avro_writer_next(rf_iceberg_avro_writer_t *w, rf_err_t *err);
/* Flushes the last block and hands over the whole file: *data, caller frees with free(). */
rf_rc rf__iceberg_avro_writer_finish(rf_iceberg_avro_writer_t *w, char **data, size_t *len,
                                     rf_err_t *err);
void rf__iceberg_avro_writer_free(rf_iceberg_avro_writer_t *w);

/* Reads a whole container file (codecs null and deflate; others RF_ENOTIMPL) by its own
 * writer schema.  *meta: header entries as an object of strings; *schema: the parsed
 * schema; *records: an array of datums (records as objects by field name, unions as the
 * branch's value, maps as objects, enums as strings).  bytes and fixed values are jansson
 * strings holding the raw bytes (json_string_length gives their size; they may not be
 * UTF-8, so never dump them).  meta and schema may be NULL when not wanted; all results
 * caller frees with json_decref.  RF_EPARSE on malformed input, RF_ETOOBIG past the
 * built-in bounds (256 MiB per inflated block, 10M values, nesting 64). */
rf_rc rf__iceberg_avro_read(const void *data, size_t len, json_t **meta, json_t **schema,
                            json_t **records, rf_err_t *err);

/* n bytes from the CSPRNG (libsodium). */
void rf__iceberg_random(void *buf, size_t n);

/* ==== Manifests and manifest lists (iceberg_manifest.c) ==== */

/* Format v2 manifests (content data) and manifest lists, schemas transcribed from the
 * Iceberg table spec with every field id, map key/value id and list element id. */

typedef struct rf_iceberg_meta rf_iceberg_meta_t;

/* One partition value of a data file.  Every supported transform yields an int
 * (day: days since 1970-01-01; month, year, hour: units since the epoch; bucket;
 * identity of an int or date column). */
typedef struct rf_iceberg_part_value {
    int is_null;
    int32_t value;
} rf_iceberg_part_value_t;

/* A data file to add to the table.  Everything is borrowed for the call. */
typedef struct rf_iceberg_data_file {
    const char *path;                         /* location as readers will open it (absolute) */
    const rf_iceberg_pq_result_t *pq;         /* record count, size, column stats, split offsets */
    const rf_iceberg_part_value_t *partition; /* one per field of the default spec */
    size_t npartition;
} rf_iceberg_data_file_t;

/* Per-partition-field summary of one manifest (manifest list field 507). */
typedef struct rf_iceberg_field_summary {
    int contains_null;
    int contains_nan;       /* 0/1, or -1 when unknown (written as null) */
    uint8_t *lower, *upper; /* owned; NULL when absent */
    size_t lower_len, upper_len;
} rf_iceberg_field_summary_t;

/* One manifest list entry.  Owns path and parts. */
typedef struct rf_iceberg_manifest_file {
    char *path;
    int64_t length;
    int32_t spec_id;
    int32_t content; /* 0 data, 1 deletes */
    int64_t seq, min_seq;
    int64_t added_snapshot_id;
    int32_t added_files, existing_files, deleted_files;
    int64_t added_rows, existing_rows, deleted_rows;
    int has_parts; /* 0: partitions written as null */
    rf_iceberg_field_summary_t *parts;
    size_t nparts;
} rf_iceberg_manifest_file_t;

void rf__iceberg_manifest_file_fini(rf_iceberg_manifest_file_t *mf);
/* Frees an array of n entries (from rf__iceberg_manifest_list_read).  NULL is a no-op. */
void rf__iceberg_manifest_files_free(rf_iceberg_manifest_file_t *mfs, size_t n);

/* The local file system path of a location: "/abs", "file:/abs" or "file:///abs".
 * Returns a pointer into location, or NULL for other schemes and relative paths. */
const char *rf__iceberg_local_path(const char *location);

/* Writes a data manifest at `location` (atomically; it must be new) listing files as
 * ADDED by snapshot_id, whose data and file sequence numbers are inherited from the
 * manifest list (null).  The header carries m's current schema and default spec (the
 * files must match them: one partition value per spec field).  Fills *out (caller
 * finishes with rf__iceberg_manifest_file_fini) with the list entry, sequence numbers
 * set to seq.  RF_EINVAL for inconsistent input, RF_EIO for write errors. */
rf_rc rf__iceberg_manifest_write(const char *location, const rf_iceberg_meta_t *m,
                                 int64_t snapshot_id, int64_t seq, rf_iceberg_avro_codec codec,
                                 const rf_iceberg_data_file_t *files, size_t nfiles,
                                 rf_iceberg_manifest_file_t *out, rf_err_t *err);

/* Writes a manifest list (atomically) with header snapshot-id, parent-snapshot-id
 * ("null" when parent_id < 0), sequence-number and format-version. */
rf_rc rf__iceberg_manifest_list_write(const char *location, int64_t snapshot_id, int64_t parent_id,
                                      int64_t seq, rf_iceberg_avro_codec codec,
                                      const rf_iceberg_manifest_file_t *mfs, size_t n,
                                      rf_err_t *err);

/* Reads a v2 manifest list (fields found by field id, so other writers' names work).
 * *mfs caller frees with rf__iceberg_manifest_files_free.  RF_EPARSE when a required
 * field is missing. */
rf_rc rf__iceberg_manifest_list_read(const char *location, rf_iceberg_manifest_file_t **mfs,
                                     size_t *n, rf_err_t *err);

/* Reads a manifest's entries as rf__iceberg_avro_read returns them (*entries caller
 * frees with json_decref; *meta may be NULL). */
rf_rc rf__iceberg_manifest_read(const char *location, json_t **meta, json_t **entries,
                                rf_err_t *err);

/* ==== Table metadata (iceberg_metadata.c) ==== */

/* Table metadata JSON, format v2, kept as a jansson tree so fields written by other
 * engines survive a rewrite.  Not thread-safe; one owner. */

/* A column.  Lists of primitives are type "list" with element_*. */
typedef struct rf_iceberg_field {
    int32_t id;       /* 0: the next free id (create) ; add_columns always assigns */
    const char *name; /* borrowed */
    int required;
    const char *type;   /* Iceberg primitive ("long", "string", "timestamptz", ...) or "list" */
    int32_t element_id; /* list: 0 assigns the next free id */
    const char *element_type; /* list: primitive element type */
    int element_required;
    const char *doc; /* NULL: none */
} rf_iceberg_field_t;

/* A partition field of the (single) spec given at create. */
typedef struct rf_iceberg_part_field {
    const char *source;    /* source column name (top level) */
    const char *transform; /* day, month, year, hour, bucket[N], identity (int/date) */
    const char *name;
    int32_t field_id; /* 0: 1000, 1001, ... */
} rf_iceberg_part_field_t;

/* What an append adds, for the snapshot summary. */
typedef struct rf_iceberg_append_stats {
    int64_t data_files;
    int64_t records;
    int64_t files_size;
    int64_t changed_partitions;
} rf_iceberg_append_stats_t;

/* A new table's metadata (not yet written): schema 0 from fields, spec 0 from part,
 * the unsorted order 0, properties (borrowed, copied), a fresh table-uuid.
 * location is the table root (absolute path or file: URI).  RF_EINVAL for unknown types,
 * duplicate names or ids, a partition source that is not a column, RF_ENOTIMPL for an
 * unsupported transform. */
rf_rc rf__iceberg_meta_create(const char *location, const rf_iceberg_field_t *fields,
                              size_t nfields, const rf_iceberg_part_field_t *part, size_t npart,
                              const rf_iceberg_kv_t *props, size_t nprops, rf_iceberg_meta_t **out,
                              rf_err_t *err);
/* Parses metadata JSON; file (borrowed, copied; may be NULL) is where it came from.
 * RF_EPARSE for invalid JSON or a missing required v2 field, RF_ENOTIMPL for another
 * format version. */
rf_rc rf__iceberg_meta_parse(const char *text, size_t len, const char *file,
                             rf_iceberg_meta_t **out, rf_err_t *err);
/* Reads and parses the metadata file at location (at most 64 MiB). */
rf_rc rf__iceberg_meta_load(const char *location, rf_iceberg_meta_t **out, rf_err_t *err);
/* A deep copy (caller frees with rf__iceberg_meta_free). */
rf_iceberg_meta_t *rf__iceberg_meta_dup(const rf_iceberg_meta_t *m);
void rf__iceberg_meta_free(rf_iceberg_meta_t *m);

/* The JSON tree, borrowed (valid until m changes or is freed); do not modify it. */
const json_t *rf__iceberg_meta_json(const rf_iceberg_meta_t *m);
/* The metadata file m was loaded from or last written to; NULL for a new table. */
const char *rf__iceberg_meta_file(const rf_iceberg_meta_t *m);
const char *rf__iceberg_meta_location(const rf_iceberg_meta_t *m);
int64_t rf__iceberg_meta_last_seq(const rf_iceberg_meta_t *m);
/* -1 when the table has no snapshot. */
int64_t rf__iceberg_meta_current_snapshot_id(const rf_iceberg_meta_t *m);
/* The snapshot with this id (-1: the current one), borrowed, or NULL. */
const json_t *rf__iceberg_meta_snapshot(const rf_iceberg_meta_t *m, int64_t snapshot_id);
/* A summary value of a snapshot (-1: current), borrowed, or NULL. */
const char *rf__iceberg_meta_summary(const rf_iceberg_meta_t *m, int64_t snapshot_id,
                                     const char *key);
/* The current schema / default spec objects, borrowed. */
const json_t *rf__iceberg_meta_schema(const rf_iceberg_meta_t *m);
const json_t *rf__iceberg_meta_spec(const rf_iceberg_meta_t *m);
int32_t rf__iceberg_meta_schema_id(const rf_iceberg_meta_t *m);
int32_t rf__iceberg_meta_spec_id(const rf_iceberg_meta_t *m);
/* The id of a top-level column of the current schema, 0 when there is none. */
int32_t rf__iceberg_meta_field_id(const rf_iceberg_meta_t *m, const char *name);

/* Schema evolution: a new schema (next schema-id) = the current one + fields, which must
 * be optional (old files lack them) and have new names; ids come after last-column-id.
 * It becomes current.  RF_EINVAL for a required field, RF_EEXIST for a taken name. */
rf_rc rf__iceberg_meta_add_columns(rf_iceberg_meta_t *m, const rf_iceberg_field_t *fields, size_t n,
                                   rf_err_t *err);
/* Sets a table property (value NULL removes it). */
void rf__iceberg_meta_set_property(rf_iceberg_meta_t *m, const char *key, const char *value);
/* A random positive snapshot id not used by m. */
int64_t rf__iceberg_meta_new_snapshot_id(const rf_iceberg_meta_t *m);
/* Adds an append snapshot and makes it current (refs.main, snapshot-log): sequence
 * number last-sequence-number + 1, parent = the current snapshot, the current
 * schema-id, summary = operation "append", the added-* and total-* counts (totals
 * carried from the parent's summary, as Java does, and left out when the parent lacks
 * one) and props (borrowed, copied; standard keys may not be overridden: RF_EINVAL). */
rf_rc rf__iceberg_meta_add_snapshot(rf_iceberg_meta_t *m, int64_t snapshot_id,
                                    const char *manifest_list, int64_t timestamp_ms,
                                    const rf_iceberg_append_stats_t *added,
                                    const rf_iceberg_kv_t *props, size_t nprops, rf_err_t *err);
/* Writes m as the next version <location>/metadata/NNNNN-<uuid>.metadata.json
 * (atomically), first appending the file m came from to metadata-log (at most 100
 * entries kept).  On success *file (optional; borrowed, valid until m changes) is the new
 * location and rf__iceberg_meta_file(m) returns it.  A commit that then fails leaves m
 * describing an uncommitted file: drop m and reload. */
rf_rc rf__iceberg_meta_write(rf_iceberg_meta_t *m, const char **file, rf_err_t *err);
/* The metadata as pretty JSON; caller frees with free(). */
char *rf__iceberg_meta_dump(const rf_iceberg_meta_t *m);
/* A random (v4) UUID in canonical form. */
void rf__iceberg_uuid(char out[37]);
/* Days since 1970-01-01 of a timestamp in microseconds (floor, also before 1970). */
int32_t rf__iceberg_day_from_micros(int64_t us);

/* ==== Catalog (iceberg_catalog.c) ==== */

/* A SQLite file with the Iceberg JDBC catalog schema (iceberg_tables,
 * iceberg_namespace_properties), as Java's JdbcCatalog and pyiceberg's SqlCatalog
 * create and read it.  A handle belongs to one thread; any number of handles (and
 * processes) may share the file: commits are compare-and-swap on metadata_location. */
typedef struct rf_iceberg_catalog rf_iceberg_catalog_t;

/* Opens (creating if needed) the catalog file at path; name is the catalog_name of
 * every row this handle reads or writes.  RF_EUNAVAIL when the file cannot be opened. */
rf_rc rf__iceberg_catalog_open(const char *path, const char *name, rf_iceberg_catalog_t **out,
                               rf_err_t *err);
void rf__iceberg_catalog_close(rf_iceberg_catalog_t *cat);
/* Creates a namespace ("a" or "a.b") with an exists=true row plus props; a namespace that
 * exists is left as it is (RF_OK). */
rf_rc rf__iceberg_catalog_namespace_create(rf_iceberg_catalog_t *cat, const char *ns,
                                           const rf_iceberg_kv_t *props, size_t nprops,
                                           rf_err_t *err);
/* 1 when the namespace has a properties row or a table. */
int rf__iceberg_catalog_namespace_exists(rf_iceberg_catalog_t *cat, const char *ns);
/* Registers a table at its first metadata file.  RF_EEXIST when it is there already,
 * RF_ENOTFOUND when the namespace does not exist. */
rf_rc rf__iceberg_catalog_table_create(rf_iceberg_catalog_t *cat, const char *ns, const char *name,
                                       const char *metadata_location, rf_err_t *err);
/* The table's metadata_location and previous_metadata_location (NULL when unset); both
 * caller frees with free(); previous may be NULL when not wanted.  RF_ENOTFOUND. */
rf_rc rf__iceberg_catalog_table_load(rf_iceberg_catalog_t *cat, const char *ns, const char *name,
                                     char **metadata_location, char **previous, rf_err_t *err);
/* Compare-and-swap: sets metadata_location = new_location and previous = expected only
 * if metadata_location is still expected.  RF_EBUSY (retriable) when another writer
 * committed first: reload, re-apply, retry.  RF_ENOTFOUND when the table is gone. */
rf_rc rf__iceberg_catalog_table_commit(rf_iceberg_catalog_t *cat, const char *ns, const char *name,
                                       const char *expected, const char *new_location,
                                       rf_err_t *err);

/* ==== Tables (iceberg_table.c) ==== */

/* A table handle: catalog identity + the last committed metadata.  Operations write
 * new files, then commit by compare-and-swap; on any failure meta is unchanged and the
 * new files are orphans (never referenced).  INVARIANT(history-exported-once): the
 * caller reads its position from meta (snapshot summary), and a commit succeeds only if
 * nobody committed since that read. */
typedef struct rf_iceberg_table {
    rf_iceberg_catalog_t *cat; /* borrowed */
    char *ns, *name;
    rf_iceberg_meta_t *meta;     /* the committed metadata this handle last saw */
    rf_iceberg_avro_codec codec; /* for manifests and manifest lists; default deflate */
} rf_iceberg_table_t;

/* Writes meta (takes ownership on success) as version 0, creates the namespace when
 * missing and registers the table.  RF_EEXIST when the table exists. */
rf_rc rf__iceberg_table_create(rf_iceberg_catalog_t *cat, const char *ns, const char *name,
                               rf_iceberg_meta_t *meta, rf_iceberg_table_t **out, rf_err_t *err);
/* Loads the table's current metadata.  RF_ENOTFOUND when not registered. */
rf_rc rf__iceberg_table_load(rf_iceberg_catalog_t *cat, const char *ns, const char *name,
                             rf_iceberg_table_t **out, rf_err_t *err);
/* Reloads meta from the catalog (after RF_EBUSY). */
rf_rc rf__iceberg_table_refresh(rf_iceberg_table_t *t, rf_err_t *err);
void rf__iceberg_table_free(rf_iceberg_table_t *t);
/* Commits next (a modified copy of t->meta; takes ownership in every case): writes it
 * as a new version and swaps it in.  RF_EBUSY when the table moved on since t->meta. */
rf_rc rf__iceberg_table_commit(rf_iceberg_table_t *t, rf_iceberg_meta_t *next, rf_err_t *err);
/* Appends data files as one snapshot: manifest -> manifest list (the new manifest,
 * then every manifest of the current snapshot) -> metadata -> compare-and-swap.  props
 * are extra summary entries (e.g. ragfeed.seq).  *snapshot_id (optional) is the new
 * snapshot.  RF_EBUSY on a lost race: refresh, re-check, retry. */
rf_rc rf__iceberg_table_append(rf_iceberg_table_t *t, const rf_iceberg_data_file_t *files,
                               size_t nfiles, const rf_iceberg_kv_t *props, size_t nprops,
                               int64_t *snapshot_id, rf_err_t *err);
/* Schema evolution as its own commit (see rf__iceberg_meta_add_columns). */
rf_rc rf__iceberg_table_add_columns(rf_iceberg_table_t *t, const rf_iceberg_field_t *fields,
                                    size_t n, rf_err_t *err);

/* ==== Parquet reader (iceberg_read.c) ==== */

/* Reads what the writer above produces (and the same subset from other writers): flat
 * columns and 3-level lists of primitives, data pages v1 and v2, PLAIN and dictionary
 * encodings, RLE/bit-packed levels, ZSTD or no compression.  One reader belongs to one
 * thread.  Every size read from a file is bounded before allocation (RF_ETOOBIG /
 * RF_EPARSE); unsupported features are RF_ENOTIMPL. */
typedef struct rf_iceberg_pqr rf_iceberg_pqr_t;

/* A top-level column as the file declares it. */
typedef struct rf_iceberg_pqr_col {
    char *name;
    int32_t field_id;        /* 0 when the file has none */
    rf_iceberg_pq_type type; /* the element type for lists */
    int optional;
    int is_list;
    int32_t element_id;
    int element_optional;
} rf_iceberg_pqr_col_t;

/* Opens path and parses its footer.  RF_ENOTFOUND, RF_EIO, RF_EPARSE (not Parquet or
 * malformed), RF_ENOTIMPL (types or codecs this reader lacks). */
rf_rc rf__iceberg_pqr_open(const char *path, rf_iceberg_pqr_t **out, rf_err_t *err);
void rf__iceberg_pqr_close(rf_iceberg_pqr_t *r);
size_t rf__iceberg_pqr_ncols(const rf_iceberg_pqr_t *r);
/* Column i (borrowed, valid until close), NULL past the end. */
const rf_iceberg_pqr_col_t *rf__iceberg_pqr_col(const rf_iceberg_pqr_t *r, size_t i);
/* The index of the column with this field id, or -1. */
int rf__iceberg_pqr_find(const rf_iceberg_pqr_t *r, int32_t field_id);
int64_t rf__iceberg_pqr_rows(const rf_iceberg_pqr_t *r);
size_t rf__iceberg_pqr_row_groups(const rf_iceberg_pqr_t *r);
/* A footer key/value entry (borrowed), NULL when absent. */
const char *rf__iceberg_pqr_kv(const rf_iceberg_pqr_t *r, const char *key);
/* Decodes row group rg: the columns whose want[i] is non-zero (want NULL: all).  *nrows
 * is its row count.  Values of the previous group are released. */
rf_rc rf__iceberg_pqr_read_group(rf_iceberg_pqr_t *r, size_t rg, const uint8_t *want,
                                 int64_t *nrows, rf_err_t *err);
/* The value of column col in row `row` of the group just read, in the writer's form
 * (strings as slices, lists as items + nulls); pointers borrowed until the next
 * read_group or close.  Returns -1 (and a null value) for a column not read. */
int rf__iceberg_pqr_value(const rf_iceberg_pqr_t *r, size_t col, int64_t row,
                          rf_iceberg_pq_value_t *v);

/* ==== Manifest entries (iceberg_manifest.c, continued) ==== */

/* Encodes datum (jansson, in the form rf__iceberg_avro_read returns) by an Avro schema
 * (parsed JSON): records by field name, ["null", T] unions by null-ness, bytes and
 * fixed as raw-byte strings.  Errors are the encoder's sticky rc, RF_EINVAL for a
 * datum that does not fit the schema. */
rf_rc rf__iceberg_avro_encode_json(rf_iceberg_avro_enc_t *enc, const json_t *schema,
                                   const json_t *datum, rf_err_t *err);

/* Writes a data manifest of arbitrary entries (objects with status, snapshot_id,
 * sequence_number, file_sequence_number and data_file, as rf__iceberg_manifest_read
 * returns them; ADDED entries may leave the numbers null to inherit seq).  Counts, row
 * counts, min sequence number and partition summaries come from the entries (DELETED
 * ones excluded from the live counts).  The header carries m's current schema and
 * default spec.  *out is the manifest list entry. */
rf_rc rf__iceberg_manifest_write_entries(const char *location, const rf_iceberg_meta_t *m,
                                         int64_t snapshot_id, int64_t seq,
                                         rf_iceberg_avro_codec codec, const json_t *entries,
                                         rf_iceberg_manifest_file_t *out, rf_err_t *err);

/* ==== Snapshots beyond appends (iceberg_metadata.c, continued) ==== */

/* What a snapshot removes, for the summary of replace/delete/overwrite operations. */
typedef struct rf_iceberg_removed_stats {
    int64_t data_files;
    int64_t records;
    int64_t files_size;
} rf_iceberg_removed_stats_t;

/* Like rf__iceberg_meta_add_snapshot with an operation ("append", "replace",
 * "overwrite", "delete") and removed counts (NULL: none): totals are the parent's plus
 * added minus removed. */
rf_rc rf__iceberg_meta_add_snapshot_op(rf_iceberg_meta_t *m, int64_t snapshot_id,
                                       const char *manifest_list, int64_t timestamp_ms,
                                       const char *operation,
                                       const rf_iceberg_append_stats_t *added,
                                       const rf_iceberg_removed_stats_t *removed,
                                       const rf_iceberg_kv_t *props, size_t nprops, rf_err_t *err);
/* Removes snapshots (and their snapshot-log entries) by id.  The current snapshot and
 * snapshots named by refs are refused (RF_EINVAL); unknown ids are ignored. */
rf_rc rf__iceberg_meta_remove_snapshots(rf_iceberg_meta_t *m, const int64_t *ids, size_t n,
                                        rf_err_t *err);

/* ==== The history table (iceberg_hist.c) ==== */

/* What the exporter, the queries and maintenance share: where the table is, its
 * columns, and the data files of a snapshot. */

/* The base columns, in order, with the names the exporter fills; field ids are assigned
 * once, when the table is created. */
typedef enum rf_iceberg_hcol {
    RF_ICEBERG_H_SEQ = 0,
    RF_ICEBERG_H_OP,
    RF_ICEBERG_H_ID,
    RF_ICEBERG_H_SOURCE,
    RF_ICEBERG_H_TENANT,
    RF_ICEBERG_H_TEXT,
    RF_ICEBERG_H_METADATA,
    RF_ICEBERG_H_LABEL,
    RF_ICEBERG_H_LABEL_SCORE,
    RF_ICEBERG_H_MODEL,
    RF_ICEBERG_H_DIM,
    RF_ICEBERG_H_CONTENT_HASH,
    RF_ICEBERG_H_VECTOR,
    RF_ICEBERG_H_EVENT_TIME,
    RF_ICEBERG_H_INGEST_TIME,
    RF_ICEBERG_H_KAFKA_TOPIC,
    RF_ICEBERG_H_KAFKA_PARTITION,
    RF_ICEBERG_H_KAFKA_OFFSET,
    RF_ICEBERG_H_SOURCE_POSITION,
    RF_ICEBERG_H_EMBEDDING_GENERATION, /* added after the first release: older tables get it
                                        * by schema evolution */
    RF_ICEBERG_H__COUNT,
    RF_ICEBERG_H_PROMOTED = 100, /* a metadata field promoted to a column */
    RF_ICEBERG_H_UNKNOWN = 101,  /* a column this build does not fill (left null) */
} rf_iceberg_hcol;

/* The base column named name, or RF_ICEBERG_H_PROMOTED for other names. */
rf_iceberg_hcol rf__iceberg_hcol_by_name(const char *name);
/* The Iceberg type of a base column ("long", "string", ..., "list" for vector). */
const char *rf__iceberg_hcol_type(rf_iceberg_hcol c);

/* Resolved locations of the history table. */
typedef struct rf_iceberg_hist_conf {
    char *catalog_path;
    const char *catalog_name; /* borrowed from cfg */
    char *ns, *name;
    char *location; /* absolute table root: <warehouse>/<ns path>/<name> */
} rf_iceberg_hist_conf_t;

/* RF_ECONFIG for a relative warehouse or a table name without a namespace. */
rf_rc rf__iceberg_hist_conf_init(const rf_conf_t *cfg, rf_iceberg_hist_conf_t *hc, rf_err_t *err);
void rf__iceberg_hist_conf_fini(rf_iceberg_hist_conf_t *hc);

/* A promoted column from iceberg.columns. */
typedef struct rf_iceberg_promoted {
    char *name;
    const char *type; /* static: "string", "int", "long", "float", "double", "boolean",
                       * "timestamptz" */
} rf_iceberg_promoted_t;

/* Parses iceberg.columns.  RF_ECONFIG names the bad item.  *out caller frees with
 * rf__iceberg_promoted_free. */
rf_rc rf__iceberg_promoted_parse(const char *list, rf_iceberg_promoted_t **out, size_t *n,
                                 rf_err_t *err);
void rf__iceberg_promoted_free(rf_iceberg_promoted_t *p, size_t n);

/* Opens the catalog and the table.  create: make the namespace and table when missing
 * (and the catalog file); otherwise RF_ENOTFOUND when either is missing.  *cat and *t
 * are the caller's (t borrows cat: free t first). */
rf_rc rf__iceberg_hist_open(const rf_conf_t *cfg, const rf_iceberg_hist_conf_t *hc, int create,
                            rf_iceberg_catalog_t **cat, rf_iceberg_table_t **t, rf_err_t *err);

/* Adds the columns cfg asks for (vector when iceberg.include.vectors, iceberg.columns)
 * and the base columns of later releases (embedding_generation) that the table lacks, in
 * one schema commit (retried on conflicts).  RF_ECONFIG when a promoted column exists
 * with another type or takes a base column's name. */
rf_rc rf__iceberg_hist_evolve(rf_iceberg_table_t *t, const rf_conf_t *cfg, rf_err_t *err);

/* The Parquet columns of an Iceberg schema (top-level primitives and lists of
 * primitives).  Names are borrowed from schema.  *cols caller frees with free(). */
rf_rc rf__iceberg_schema_pq_columns(const json_t *schema, rf_iceberg_pq_column_t **cols, size_t *n,
                                    rf_err_t *err);

/* The exporter's position in a snapshot (-1: current): its ragfeed.seq, or the nearest
 * ancestor's when it lacks one; 0 when none has one.  *offsets (may be NULL) gets the
 * matching ragfeed.offsets text (borrowed from m) or NULL.  RF_ECORRUPT for a value that
 * is not a non-negative integer. */
rf_rc rf__iceberg_hist_position(const rf_iceberg_meta_t *m, int64_t snapshot_id, int64_t *seq,
                                const char **offsets, rf_err_t *err);

/* A live data file of a snapshot, as its manifest describes it. */
typedef struct rf_iceberg_live_file {
    char *path;     /* the location in the manifest */
    char *manifest; /* the manifest it came from */
    int64_t records, size;
    int has_day;
    int32_t day; /* the ingest_time_day partition value */
    int64_t data_seq, file_seq, snapshot_id;
    int has_seq_bounds; /* bounds of the seq column from the manifest */
    int64_t seq_lo, seq_hi;
    int has_id_bounds;
    char *id_lo, *id_hi; /* truncated bounds of the id column (raw bytes, NUL added) */
    size_t id_lo_len, id_hi_len;
    json_t *entry; /* the manifest entry (status, snapshot_id, numbers, data_file) */
} rf_iceberg_live_file_t;

/* The live (ADDED or EXISTING) data files of a snapshot (-1: current), sorted by seq
 * lower bound.  Manifests are read through the snapshot's manifest list.  *files caller
 * frees with rf__iceberg_live_files_free.  No snapshot: RF_OK with none. */
rf_rc rf__iceberg_snapshot_files(const rf_iceberg_meta_t *m, int64_t snapshot_id,
                                 rf_iceberg_live_file_t **files, size_t *n, rf_err_t *err);
void rf__iceberg_live_files_free(rf_iceberg_live_file_t *files, size_t n);

/* Days since the epoch to a civil date, and ms since the epoch to ISO-8601 UTC text
 * ("2024-05-01T12:00:00.123Z"; 25 bytes with the NUL). */
void rf__iceberg_civil_from_days(int32_t days, int *y, int *m, int *d);
void rf__iceberg_fmt_time(int64_t ms, char *buf, size_t n);

/* Hex of n bytes into out (2n + 1 bytes). */
void rf__iceberg_hex(const uint8_t *p, size_t n, char *out);

/* ==== History handles (iceberg_history.c) ==== */

/* The table and configuration of a history handle, for maintenance (borrowed). */
rf_iceberg_table_t *rf__iceberg_history_table(rf_iceberg_history_t *h);
const rf_conf_t *rf__iceberg_history_conf(rf_iceberg_history_t *h);

#endif /* RF_ICEBERG_INT_H */
