/* iceberg_manifest.c - format v2 data manifests and manifest lists as Avro container
 * files, with the spec's schemas (every field id, map key/value id and list element id)
 * written into each header, plus a reader for manifest lists that finds fields by id.
 * INVARIANT(history-exported-once): a snapshot's manifest list names every live data
 * file exactly once; a file joins the table only through a committed list.
 */
#include "iceberg/iceberg_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define MANIFEST_MAX_BYTES ((size_t)512 * 1024 * 1024)

/* ==== Schemas ==== */

/* manifest_entry (spec "Manifests"), in Java's field order.  The partition record r102
 * depends on the spec and is spliced in between the two halves. */
static const char entry_schema_head[] =
    "{\"type\":\"record\",\"name\":\"manifest_entry\",\"fields\":["
    "{\"name\":\"status\",\"type\":\"int\",\"field-id\":0},"
    "{\"name\":\"snapshot_id\",\"type\":[\"null\",\"long\"],\"default\":null,\"field-id\":1},"
    "{\"name\":\"sequence_number\",\"type\":[\"null\",\"long\"],\"default\":null,"
    "\"field-id\":3},"
    "{\"name\":\"file_sequence_number\",\"type\":[\"null\",\"long\"],\"default\":null,"
    "\"field-id\":4},"
    "{\"name\":\"data_file\",\"type\":{\"type\":\"record\",\"name\":\"r2\",\"fields\":["
    "{\"name\":\"content\",\"type\":\"int\",\"doc\":\"Contents of the file: 0=data, "
    "1=position deletes, 2=equality deletes\",\"field-id\":134},"
    "{\"name\":\"file_path\",\"type\":\"string\",\"doc\":\"Location URI with FS scheme\","
    "\"field-id\":100},"
    "{\"name\":\"file_format\",\"type\":\"string\",\"doc\":\"File format name: avro, orc, "
    "or parquet\",\"field-id\":101},"
    "{\"name\":\"partition\",\"type\":{\"type\":\"record\",\"name\":\"r102\",\"fields\":[";

/* The rest of data_file.  Iceberg maps with int keys are Avro arrays of key/value records
 * named k<key-id>_v<value-id> with logicalType "map" (spec, "Avro" appendix). */
static const char entry_schema_tail[] =
    "]},\"doc\":\"Partition data tuple, schema based on the partition spec\","
    "\"field-id\":102},"
    "{\"name\":\"record_count\",\"type\":\"long\",\"doc\":\"Number of records in "
    "the file\",\"field-id\":103},"
    "{\"name\":\"file_size_in_bytes\",\"type\":\"long\",\"doc\":\"Total file size "
    "in bytes\",\"field-id\":104},"
    "{\"name\":\"column_sizes\",\"type\":[\"null\",{\"type\":\"array\","
    "\"items\":{\"type\":\"record\",\"name\":\"k117_v118\",\"fields\":["
    "{\"name\":\"key\",\"type\":\"int\",\"field-id\":117},"
    "{\"name\":\"value\",\"type\":\"long\",\"field-id\":118}]},"
    "\"logicalType\":\"map\"}],\"doc\":\"Map of column id to total size on disk\","
    "\"default\":null,\"field-id\":108},"
    "{\"name\":\"value_counts\",\"type\":[\"null\",{\"type\":\"array\","
    "\"items\":{\"type\":\"record\",\"name\":\"k119_v120\",\"fields\":["
    "{\"name\":\"key\",\"type\":\"int\",\"field-id\":119},"
    "{\"name\":\"value\",\"type\":\"long\",\"field-id\":120}]},"
    "\"logicalType\":\"map\"}],\"doc\":\"Map of column id to total count, including null and NaN\","
    "\"default\":null,\"field-id\":109},"
    "{\"name\":\"null_value_counts\",\"type\":[\"null\",{\"type\":\"array\","
    "\"items\":{\"type\":\"record\",\"name\":\"k121_v122\",\"fields\":["
    "{\"name\":\"key\",\"type\":\"int\",\"field-id\":121},"
    "{\"name\":\"value\",\"type\":\"long\",\"field-id\":122}]},"
    "\"logicalType\":\"map\"}],\"doc\":\"Map of column id to null value count\","
    "\"default\":null,\"field-id\":110},"
    "{\"name\":\"nan_value_counts\",\"type\":[\"null\",{\"type\":\"array\","
    "\"items\":{\"type\":\"record\",\"name\":\"k138_v139\",\"fields\":["
    "{\"name\":\"key\",\"type\":\"int\",\"field-id\":138},"
    "{\"name\":\"value\",\"type\":\"long\",\"field-id\":139}]},"
    "\"logicalType\":\"map\"}],\"doc\":\"Map of column id to number of NaN values in the column\","
    "\"default\":null,\"field-id\":137},"
    "{\"name\":\"lower_bounds\",\"type\":[\"null\",{\"type\":\"array\","
    "\"items\":{\"type\":\"record\",\"name\":\"k126_v127\",\"fields\":["
    "{\"name\":\"key\",\"type\":\"int\",\"field-id\":126},"
    "{\"name\":\"value\",\"type\":\"bytes\",\"field-id\":127}]},"
    "\"logicalType\":\"map\"}],\"doc\":\"Map of column id to lower bound\","
    "\"default\":null,\"field-id\":125},"
    "{\"name\":\"upper_bounds\",\"type\":[\"null\",{\"type\":\"array\","
    "\"items\":{\"type\":\"record\",\"name\":\"k129_v130\",\"fields\":["
    "{\"name\":\"key\",\"type\":\"int\",\"field-id\":129},"
    "{\"name\":\"value\",\"type\":\"bytes\",\"field-id\":130}]},"
    "\"logicalType\":\"map\"}],\"doc\":\"Map of column id to upper bound\","
    "\"default\":null,\"field-id\":128},"
    "{\"name\":\"key_metadata\",\"type\":[\"null\",\"bytes\"],\"doc\":\"Encryption key "
    "metadata blob\",\"default\":null,\"field-id\":131},"
    "{\"name\":\"split_offsets\",\"type\":[\"null\",{\"type\":\"array\",\"items\":\"long\","
    "\"element-id\":133}],\"doc\":\"Splittable offsets\",\"default\":null,\"field-id\":132},"
    "{\"name\":\"equality_ids\",\"type\":[\"null\",{\"type\":\"array\",\"items\":\"int\","
    "\"element-id\":136}],\"doc\":\"Equality comparison field IDs\",\"default\":null,"
    "\"field-id\":135},"
    "{\"name\":\"sort_order_id\",\"type\":[\"null\",\"int\"],\"doc\":\"Sort order ID\","
    "\"default\":null,\"field-id\":140}"
    "]},\"field-id\":2}]}";

/* manifest_file (spec "Manifest Lists"), v2. */
static const char list_schema[] =
    "{\"type\":\"record\",\"name\":\"manifest_file\",\"fields\":["
    "{\"name\":\"manifest_path\",\"type\":\"string\",\"doc\":\"Location URI with FS scheme\","
    "\"field-id\":500},"
    "{\"name\":\"manifest_length\",\"type\":\"long\",\"doc\":\"Total file size in bytes\","
    "\"field-id\":501},"
    "{\"name\":\"partition_spec_id\",\"type\":\"int\",\"doc\":\"Spec ID used to write\","
    "\"field-id\":502},"
    "{\"name\":\"content\",\"type\":\"int\",\"doc\":\"Contents of the manifest: 0=data, "
    "1=deletes\",\"field-id\":517},"
    "{\"name\":\"sequence_number\",\"type\":\"long\",\"doc\":\"Sequence number when the "
    "manifest was added\",\"field-id\":515},"
    "{\"name\":\"min_sequence_number\",\"type\":\"long\",\"doc\":\"Lowest sequence number "
    "in the manifest\",\"field-id\":516},"
    "{\"name\":\"added_snapshot_id\",\"type\":\"long\",\"doc\":\"Snapshot ID that added the "
    "manifest\",\"field-id\":503},"
    "{\"name\":\"added_files_count\",\"type\":\"int\",\"doc\":\"Added entry count\","
    "\"field-id\":504},"
    "{\"name\":\"existing_files_count\",\"type\":\"int\",\"doc\":\"Existing entry count\","
    "\"field-id\":505},"
    "{\"name\":\"deleted_files_count\",\"type\":\"int\",\"doc\":\"Deleted entry count\","
    "\"field-id\":506},"
    "{\"name\":\"added_rows_count\",\"type\":\"long\",\"doc\":\"Added rows count\","
    "\"field-id\":512},"
    "{\"name\":\"existing_rows_count\",\"type\":\"long\",\"doc\":\"Existing rows count\","
    "\"field-id\":513},"
    "{\"name\":\"deleted_rows_count\",\"type\":\"long\",\"doc\":\"Deleted rows count\","
    "\"field-id\":514},"
    "{\"name\":\"partitions\",\"type\":[\"null\",{\"type\":\"array\",\"items\":{\"type\":"
    "\"record\",\"name\":\"r508\",\"fields\":["
    "{\"name\":\"contains_null\",\"type\":\"boolean\",\"doc\":\"True if any file has a null "
    "partition value\",\"field-id\":509},"
    "{\"name\":\"contains_nan\",\"type\":[\"null\",\"boolean\"],\"doc\":\"True if any file "
    "has a nan partition value\",\"default\":null,\"field-id\":518},"
    "{\"name\":\"lower_bound\",\"type\":[\"null\",\"bytes\"],\"doc\":\"Partition lower bound "
    "for all files\",\"default\":null,\"field-id\":510},"
    "{\"name\":\"upper_bound\",\"type\":[\"null\",\"bytes\"],\"doc\":\"Partition upper bound "
    "for all files\",\"default\":null,\"field-id\":511}"
    "]},\"element-id\":508}],\"doc\":\"Summary for each partition\",\"default\":null,"
    "\"field-id\":507},"
    "{\"name\":\"key_metadata\",\"type\":[\"null\",\"bytes\"],\"doc\":\"Implementation-"
    "specific key metadata for encryption\",\"default\":null,\"field-id\":519}"
    "]}";

/* ==== Helpers ==== */

const char *rf__iceberg_local_path(const char *location)
{
    if (!location)
        return NULL;
    if (!strncmp(location, "file:///", 8))
        return location + 7;
    if (!strncmp(location, "file:/", 6) && location[6] != '/')
        return location + 5;
    if (location[0] == '/')
        return location;
    return NULL;
}

void rf__iceberg_manifest_file_fini(rf_iceberg_manifest_file_t *mf)
{
    if (!mf)
        return;
    for (size_t i = 0; i < mf->nparts; i++) {
        free(mf->parts[i].lower);
        free(mf->parts[i].upper);
    }
    free(mf->parts);
    free(mf->path);
    memset(mf, 0, sizeof *mf);
}

void rf__iceberg_manifest_files_free(rf_iceberg_manifest_file_t *mfs, size_t n)
{
    if (!mfs)
        return;
    for (size_t i = 0; i < n; i++)
        rf__iceberg_manifest_file_fini(&mfs[i]);
    free(mfs);
}

/* Avro names are [A-Za-z_][A-Za-z0-9_]*; other characters become _xHH, as Java's
 * AvroSchemaUtil.makeCompatibleName does, so readers find the same names. */
static char *avro_name(const char *name)
{
    rf_buf_t b;
    rf_buf_init(&b, 0);
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
                 (p != (const unsigned char *)name && *p >= '0' && *p <= '9');
        if (ok)
            rf_buf_append(&b, p, 1);
        else if (p == (const unsigned char *)name && *p >= '0' && *p <= '9')
            rf_buf_printf(&b, "_%c", *p);
        else
            rf_buf_printf(&b, "_x%02X", *p);
    }
    return rf_buf_take(&b, NULL);
}

static void le32(int32_t v, uint8_t out[4])
{
    uint32_t u = (uint32_t)v;
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t)(u >> (8 * i));
}

static uint8_t *dup_bytes(const void *p, size_t n)
{
    uint8_t *d = rf_xmalloc(n ? n : 1);
    if (n)
        memcpy(d, p, n);
    return d;
}

static rf_rc write_file(const char *location, const char *data, size_t len, rf_err_t *err)
{
    const char *path = rf__iceberg_local_path(location);
    char *dir;
    char *slash;
    rf_rc rc;
    if (!path)
        return rf_err_set(err, RF_EINVAL, "iceberg: %s is not a local absolute path", location);
    dir = rf_xstrdup(path);
    slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if ((rc = rf_mkdirs(dir, err))) {
            free(dir);
            return rc;
        }
    }
    free(dir);
    return rf_file_write_atomic(path, data, len, err);
}

/* ==== Manifest writer ==== */

/* The partition record's fields: one nullable field per spec field, typed by its
 * transform's result (day -> date, the others int). */
static rf_rc partition_fields_json(const json_t *spec_fields, rf_buf_t *out, rf_err_t *err)
{
    size_t i;
    const json_t *pf;
    json_array_foreach(spec_fields, i, pf)
    {
        const char *name = json_string_value(json_object_get(pf, "name"));
        const char *tr = json_string_value(json_object_get(pf, "transform"));
        json_int_t fid = json_integer_value(json_object_get(pf, "field-id"));
        char *aname;
        if (!name || !tr || fid <= 0)
            return rf_err_set(err, RF_EINVAL,
                              "iceberg manifest: partition field %zu is "
                              "incomplete",
                              i);
        aname = avro_name(name);
        rf_buf_printf(out,
                      "%s{\"name\":\"%s\",\"type\":[\"null\",%s],\"default\":null,"
                      "\"field-id\":%lld}",
                      i ? "," : "", aname,
                      strcmp(tr, "day") == 0 ? "{\"type\":\"int\",\"logicalType\":\"date\"}"
                                             : "\"int\"",
                      (long long)fid);
        free(aname);
    }
    return RF_OK;
}

enum stat_kind { STAT_SIZE, STAT_VALUES, STAT_NULLS, STAT_NANS };

/* A column's count of the given kind; negative when unknown. */
static int64_t col_stat(const rf_iceberg_pq_colstats_t *c, enum stat_kind kind)
{
    switch (kind) {
    case STAT_SIZE:
        return c->column_size;
    case STAT_VALUES:
        return c->value_count;
    case STAT_NULLS:
        return c->null_count;
    case STAT_NANS:
        return c->nan_count;
    }
    return -1;
}

/* Writes a map<int, long> field: null when no column has the count. */
static void put_long_map(rf_iceberg_avro_enc_t *enc, const rf_iceberg_pq_result_t *pq,
                         enum stat_kind kind)
{
    int64_t n = 0;
    for (size_t i = 0; i < pq->ncols; i++)
        if (col_stat(&pq->cols[i], kind) >= 0)
            n++;
    if (n == 0) {
        rf__iceberg_avro_put_union(enc, 0);
        return;
    }
    rf__iceberg_avro_put_union(enc, 1);
    rf__iceberg_avro_put_block(enc, n);
    for (size_t i = 0; i < pq->ncols; i++) {
        int64_t v = col_stat(&pq->cols[i], kind);
        if (v < 0)
            continue;
        rf__iceberg_avro_put_int(enc, pq->cols[i].field_id);
        rf__iceberg_avro_put_long(enc, v);
    }
    rf__iceberg_avro_put_array_end(enc);
}

/* Bounds are kept for top-level columns only: the spec defines no bounds for values
 * inside lists. */
static void put_bound_map(rf_iceberg_avro_enc_t *enc, const rf_iceberg_pq_result_t *pq, int upper)
{
    int64_t n = 0;
    for (size_t i = 0; i < pq->ncols; i++)
        if (!pq->cols[i].in_list && (upper ? pq->cols[i].has_upper : pq->cols[i].has_lower))
            n++;
    if (n == 0) {
        rf__iceberg_avro_put_union(enc, 0);
        return;
    }
    rf__iceberg_avro_put_union(enc, 1);
    rf__iceberg_avro_put_block(enc, n);
    for (size_t i = 0; i < pq->ncols; i++) {
        const rf_iceberg_pq_colstats_t *c = &pq->cols[i];
        if (c->in_list || !(upper ? c->has_upper : c->has_lower))
            continue;
        rf__iceberg_avro_put_int(enc, c->field_id);
        if (upper)
            rf__iceberg_avro_put_bytes(enc, c->upper, c->upper_len);
        else
            rf__iceberg_avro_put_bytes(enc, c->lower, c->lower_len);
    }
    rf__iceberg_avro_put_array_end(enc);
}

static void put_entry(rf_iceberg_avro_enc_t *enc, int64_t snapshot_id,
                      const rf_iceberg_data_file_t *df)
{
    const rf_iceberg_pq_result_t *pq = df->pq;
    rf__iceberg_avro_put_int(enc, 1); /* status ADDED */
    rf__iceberg_avro_put_union(enc, 1);
    rf__iceberg_avro_put_long(enc, snapshot_id);
    /* Data and file sequence numbers are null: ADDED entries inherit the manifest's. */
    rf__iceberg_avro_put_union(enc, 0);
    rf__iceberg_avro_put_union(enc, 0);
    /* data_file */
    rf__iceberg_avro_put_int(enc, 0); /* content: data */
    rf__iceberg_avro_put_string(enc, df->path);
    rf__iceberg_avro_put_string(enc, "PARQUET");
    for (size_t i = 0; i < df->npartition; i++) {
        if (df->partition[i].is_null) {
            rf__iceberg_avro_put_union(enc, 0);
        } else {
            rf__iceberg_avro_put_union(enc, 1);
            rf__iceberg_avro_put_int(enc, df->partition[i].value);
        }
    }
    rf__iceberg_avro_put_long(enc, pq->row_count);
    rf__iceberg_avro_put_long(enc, pq->file_size);
    put_long_map(enc, pq, STAT_SIZE);
    put_long_map(enc, pq, STAT_VALUES);
    put_long_map(enc, pq, STAT_NULLS);
    put_long_map(enc, pq, STAT_NANS);
    put_bound_map(enc, pq, 0);
    put_bound_map(enc, pq, 1);
    rf__iceberg_avro_put_union(enc, 0); /* key_metadata */
    if (pq->nsplits == 0) {
        rf__iceberg_avro_put_union(enc, 0);
    } else {
        rf__iceberg_avro_put_union(enc, 1);
        rf__iceberg_avro_put_block(enc, (int64_t)pq->nsplits);
        for (size_t i = 0; i < pq->nsplits; i++)
            rf__iceberg_avro_put_long(enc, pq->split_offsets[i]);
        rf__iceberg_avro_put_array_end(enc);
    }
    rf__iceberg_avro_put_union(enc, 0); /* equality_ids */
    /* sort_order_id 0: the unsorted order, which every table has. */
    rf__iceberg_avro_put_union(enc, 1);
    rf__iceberg_avro_put_int(enc, 0);
}

static rf_rc check_file(const rf_iceberg_data_file_t *df, size_t nspec, rf_err_t *err)
{
    if (!df->path || !df->pq || !rf__iceberg_local_path(df->path))
        return rf_err_set(err, RF_EINVAL,
                          "iceberg manifest: data file without an absolute "
                          "path or statistics");
    if (df->npartition != nspec || (nspec && !df->partition))
        return rf_err_set(err, RF_EINVAL,
                          "iceberg manifest: %s has %zu partition values, the spec %zu fields",
                          df->path, df->npartition, nspec);
    if (df->pq->row_count < 0 || df->pq->file_size <= 0)
        return rf_err_set(err, RF_EINVAL, "iceberg manifest: %s has %lld rows and %lld bytes",
                          df->path, (long long)df->pq->row_count, (long long)df->pq->file_size);
    for (size_t i = 1; i < df->pq->nsplits; i++)
        if (df->pq->split_offsets[i] < df->pq->split_offsets[i - 1])
            return rf_err_set(err, RF_EINVAL, "iceberg manifest: %s split offsets not ascending",
                              df->path);
    return RF_OK;
}

/* Stores the int partition bounds lo/hi (for each k with has[k]) in the manifest file's
 * field summaries, in their single-value form. */
static void set_part_bounds(rf_iceberg_manifest_file_t *mf, size_t nspec, const int *has,
                            const int32_t *lo, const int32_t *hi)
{
    for (size_t k = 0; k < nspec; k++) {
        uint8_t b[4];
        if (!has[k])
            continue;
        le32(lo[k], b);
        mf->parts[k].lower = dup_bytes(b, 4);
        le32(hi[k], b);
        mf->parts[k].upper = dup_bytes(b, 4);
        mf->parts[k].lower_len = mf->parts[k].upper_len = 4;
    }
}

rf_rc rf__iceberg_manifest_write(const char *location, const rf_iceberg_meta_t *m,
                                 int64_t snapshot_id, int64_t seq, rf_iceberg_avro_codec codec,
                                 const rf_iceberg_data_file_t *files, size_t nfiles,
                                 rf_iceberg_manifest_file_t *out, rf_err_t *err)
{
    const json_t *spec = rf__iceberg_meta_spec(m);
    const json_t *sfields = json_object_get(spec, "fields");
    size_t nspec = json_array_size(sfields);
    rf_buf_t schema;
    rf_iceberg_avro_writer_t *w = NULL;
    rf_iceberg_manifest_file_t mf;
    char *schema_text = NULL, *spec_text = NULL, *data = NULL;
    char schema_id[16], spec_id[16];
    int32_t *lo = NULL, *hi = NULL;
    int *has = NULL;
    size_t len = 0;
    rf_rc rc = RF_OK;

    memset(&mf, 0, sizeof mf);
    memset(out, 0, sizeof *out);
    rf_buf_init(&schema, 0);
    if (!spec || !rf__iceberg_meta_schema(m)) {
        rc = rf_err_set(err, RF_EINVAL, "iceberg manifest: metadata lacks a schema or spec");
        goto out;
    }
    for (size_t i = 0; i < nfiles; i++)
        if ((rc = check_file(&files[i], nspec, err)))
            goto out;

    rf_buf_puts(&schema, entry_schema_head);
    if ((rc = partition_fields_json(sfields, &schema, err)))
        goto out;
    rf_buf_puts(&schema, entry_schema_tail);
    schema_text = json_dumps(rf__iceberg_meta_schema(m), JSON_COMPACT);
    spec_text = json_dumps(sfields, JSON_COMPACT);
    snprintf(schema_id, sizeof schema_id, "%d", (int)rf__iceberg_meta_schema_id(m));
    snprintf(spec_id, sizeof spec_id, "%d", (int)rf__iceberg_meta_spec_id(m));
    {
        /* The header keys the spec requires of a manifest ("Manifests", metadata). */
        const rf_iceberg_kv_t meta[] = {
            {"schema", schema_text},        {"schema-id", schema_id}, {"partition-spec", spec_text},
            {"partition-spec-id", spec_id}, {"format-version", "2"},  {"content", "data"},
        };
        if ((rc = rf__iceberg_avro_writer_new(schema.ptr, codec, meta, sizeof meta / sizeof meta[0],
                                              &w, err)))
            goto out;
    }

    mf.path = rf_xstrdup(location);
    mf.spec_id = rf__iceberg_meta_spec_id(m);
    mf.content = 0;
    mf.seq = mf.min_seq = seq;
    mf.added_snapshot_id = snapshot_id;
    mf.has_parts = 1;
    mf.nparts = nspec;
    mf.parts = rf_xcalloc(nspec ? nspec : 1, sizeof *mf.parts);
    lo = rf_xcalloc(nspec ? nspec : 1, sizeof *lo);
    hi = rf_xcalloc(nspec ? nspec : 1, sizeof *hi);
    has = rf_xcalloc(nspec ? nspec : 1, sizeof *has);
    for (size_t k = 0; k < nspec; k++)
        mf.parts[k].contains_nan = 0; /* int results are never NaN */

    for (size_t i = 0; i < nfiles; i++) {
        const rf_iceberg_data_file_t *df = &files[i];
        put_entry(rf__iceberg_avro_writer_enc(w), snapshot_id, df);
        if ((rc = rf__iceberg_avro_writer_next(w, err)))
            goto out;
        if (mf.added_files == INT32_MAX) {
            rc = rf_err_set(err, RF_ETOOBIG, "iceberg manifest: too many files");
            goto out;
        }
        mf.added_files++;
        mf.added_rows += df->pq->row_count;
        for (size_t k = 0; k < nspec; k++) {
            int32_t v = df->partition[k].value;
            if (df->partition[k].is_null) {
                mf.parts[k].contains_null = 1;
            } else if (!has[k]) {
                has[k] = 1;
                lo[k] = hi[k] = v;
            } else {
                lo[k] = v < lo[k] ? v : lo[k];
                hi[k] = v > hi[k] ? v : hi[k];
            }
        }
    }
    /* Bounds are compared as ints, then stored in their single-value form. */
    set_part_bounds(&mf, nspec, has, lo, hi);
    if ((rc = rf__iceberg_avro_writer_finish(w, &data, &len, err)))
        goto out;
    if ((rc = write_file(location, data, len, err)))
        goto out;
    mf.length = (int64_t)len;
    *out = mf;
    memset(&mf, 0, sizeof mf);
out:
    rf__iceberg_manifest_file_fini(&mf);
    rf__iceberg_avro_writer_free(w);
    rf_buf_fini(&schema);
    free(lo);
    free(hi);
    free(has);
    free(schema_text);
    free(spec_text);
    free(data);
    return rc;
}

/* ==== Manifest list ==== */

static void put_manifest_file(rf_iceberg_avro_enc_t *enc, const rf_iceberg_manifest_file_t *mf)
{
    rf__iceberg_avro_put_string(enc, mf->path);
    rf__iceberg_avro_put_long(enc, mf->length);
    rf__iceberg_avro_put_int(enc, mf->spec_id);
    rf__iceberg_avro_put_int(enc, mf->content);
    rf__iceberg_avro_put_long(enc, mf->seq);
    rf__iceberg_avro_put_long(enc, mf->min_seq);
    rf__iceberg_avro_put_long(enc, mf->added_snapshot_id);
    rf__iceberg_avro_put_int(enc, mf->added_files);
    rf__iceberg_avro_put_int(enc, mf->existing_files);
    rf__iceberg_avro_put_int(enc, mf->deleted_files);
    rf__iceberg_avro_put_long(enc, mf->added_rows);
    rf__iceberg_avro_put_long(enc, mf->existing_rows);
    rf__iceberg_avro_put_long(enc, mf->deleted_rows);
    if (!mf->has_parts) {
        rf__iceberg_avro_put_union(enc, 0);
    } else {
        rf__iceberg_avro_put_union(enc, 1);
        rf__iceberg_avro_put_block(enc, (int64_t)mf->nparts);
        for (size_t i = 0; i < mf->nparts; i++) {
            const rf_iceberg_field_summary_t *fs = &mf->parts[i];
            rf__iceberg_avro_put_bool(enc, fs->contains_null);
            if (fs->contains_nan < 0) {
                rf__iceberg_avro_put_union(enc, 0);
            } else {
                rf__iceberg_avro_put_union(enc, 1);
                rf__iceberg_avro_put_bool(enc, fs->contains_nan);
            }
            if (!fs->lower) {
                rf__iceberg_avro_put_union(enc, 0);
            } else {
                rf__iceberg_avro_put_union(enc, 1);
                rf__iceberg_avro_put_bytes(enc, fs->lower, fs->lower_len);
            }
            if (!fs->upper) {
                rf__iceberg_avro_put_union(enc, 0);
            } else {
                rf__iceberg_avro_put_union(enc, 1);
                rf__iceberg_avro_put_bytes(enc, fs->upper, fs->upper_len);
            }
        }
        rf__iceberg_avro_put_array_end(enc);
    }
    rf__iceberg_avro_put_union(enc, 0); /* key_metadata */
}

rf_rc rf__iceberg_manifest_list_write(const char *location, int64_t snapshot_id, int64_t parent_id,
                                      int64_t seq, rf_iceberg_avro_codec codec,
                                      const rf_iceberg_manifest_file_t *mfs, size_t n,
                                      rf_err_t *err)
{
    char sid[24], pid[24], sq[24];
    rf_iceberg_avro_writer_t *w = NULL;
    char *data = NULL;
    size_t len = 0;
    rf_rc rc;

    snprintf(sid, sizeof sid, "%" PRId64, snapshot_id);
    if (parent_id >= 0)
        snprintf(pid, sizeof pid, "%" PRId64, parent_id);
    else
        snprintf(pid, sizeof pid, "null");
    snprintf(sq, sizeof sq, "%" PRId64, seq);
    {
        const rf_iceberg_kv_t meta[] = {
            {"snapshot-id", sid},
            {"parent-snapshot-id", pid},
            {"sequence-number", sq},
            {"format-version", "2"},
        };
        if ((rc = rf__iceberg_avro_writer_new(list_schema, codec, meta,
                                              sizeof meta / sizeof meta[0], &w, err)))
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!mfs[i].path) {
            rc = rf_err_set(err, RF_EINVAL, "iceberg manifest list: entry %zu has no path", i);
            goto out;
        }
        put_manifest_file(rf__iceberg_avro_writer_enc(w), &mfs[i]);
        if ((rc = rf__iceberg_avro_writer_next(w, err)))
            goto out;
    }
    if ((rc = rf__iceberg_avro_writer_finish(w, &data, &len, err)))
        goto out;
    rc = write_file(location, data, len, err);
out:
    rf__iceberg_avro_writer_free(w);
    free(data);
    return rc;
}

/* Field name by field id in a record schema, or NULL. */
static const char *name_by_id(const json_t *record, int id)
{
    size_t i;
    const json_t *f;
    json_array_foreach(json_object_get(record, "fields"), i, f)
    {
        const json_t *fid = json_object_get(f, "field-id");
        if (json_is_integer(fid) && json_integer_value(fid) == id)
            return json_string_value(json_object_get(f, "name"));
    }
    return NULL;
}

/* The non-null branch of a ["null", T] union, or the type itself. */
static const json_t *non_null(const json_t *t)
{
    if (json_is_array(t)) {
        size_t i;
        const json_t *b;
        json_array_foreach(t, i, b)
        {
            if (!(json_is_string(b) && !strcmp(json_string_value(b), "null")))
                return b;
        }
    }
    return t;
}

static int get_int(const json_t *rec, const char *name, int64_t *v)
{
    const json_t *x = name ? json_object_get(rec, name) : NULL;
    if (!json_is_integer(x))
        return -1;
    *v = (int64_t)json_integer_value(x);
    return 0;
}

static rf_rc read_file(const char *location, size_t max, char **data, size_t *len, rf_err_t *err)
{
    const char *path = rf__iceberg_local_path(location);
    if (!path)
        return rf_err_set(err, RF_EINVAL, "iceberg: %s is not a local absolute path", location);
    return rf_file_read(path, max, data, len, err);
}

rf_rc rf__iceberg_manifest_list_read(const char *location, rf_iceberg_manifest_file_t **mfs,
                                     size_t *n, rf_err_t *err)
{
    static const int req_ids[] = {501, 502, 515, 516, 503, 504, 505, 506, 512, 513, 514};
    char *data = NULL;
    size_t len = 0, nrec = 0;
    json_t *schema = NULL, *records = NULL;
    rf_iceberg_manifest_file_t *arr = NULL;
    const char *names[520] = {0};
    const json_t *parts_rec = NULL;
    const char *ps_names[520] = {0};
    rf_rc rc;

    *mfs = NULL;
    *n = 0;
    if ((rc = read_file(location, MANIFEST_MAX_BYTES, &data, &len, err)))
        goto out;
    if ((rc = rf__iceberg_avro_read(data, len, NULL, &schema, &records, err)))
        goto out;
    for (int id = 500; id < 520; id++)
        names[id] = name_by_id(schema, id);
    if (!names[500]) {
        rc = rf_err_set(err, RF_EPARSE, "iceberg manifest list %s: no manifest_path (500)",
                        location);
        goto out;
    }
    for (size_t k = 0; k < sizeof req_ids / sizeof req_ids[0]; k++) {
        if (!names[req_ids[k]]) {
            rc = rf_err_set(err, RF_EPARSE, "iceberg manifest list %s: no field %d", location,
                            req_ids[k]);
            goto out;
        }
    }
    if (names[507]) {
        size_t i;
        const json_t *f;
        json_array_foreach(json_object_get(schema, "fields"), i, f)
        {
            const json_t *fid = json_object_get(f, "field-id");
            if (json_is_integer(fid) && json_integer_value(fid) == 507) {
                const json_t *arrt = non_null(json_object_get(f, "type"));
                parts_rec = non_null(json_object_get(arrt, "items"));
            }
        }
        for (int id = 509; id <= 518; id++)
            ps_names[id] = parts_rec ? name_by_id(parts_rec, id) : NULL;
    }

    nrec = json_array_size(records);
    arr = rf_xcalloc(nrec ? nrec : 1, sizeof *arr);
    for (size_t i = 0; i < nrec; i++) {
        const json_t *r = json_array_get(records, i);
        rf_iceberg_manifest_file_t *mf = &arr[i];
        const char *path = json_string_value(json_object_get(r, names[500]));
        int64_t v[11];
        const json_t *parts;
        for (size_t k = 0; k < 11; k++) {
            if (get_int(r, names[req_ids[k]], &v[k])) {
                rc = rf_err_set(err, RF_EPARSE, "iceberg manifest list %s: entry %zu lacks %d",
                                location, i, req_ids[k]);
                goto out;
            }
        }
        if (!path) {
            rc = rf_err_set(err, RF_EPARSE, "iceberg manifest list %s: entry %zu has no path",
                            location, i);
            goto out;
        }
        mf->path = rf_xstrdup(path);
        mf->length = v[0];
        mf->spec_id = (int32_t)v[1];
        mf->seq = v[2];
        mf->min_seq = v[3];
        mf->added_snapshot_id = v[4];
        mf->added_files = (int32_t)v[5];
        mf->existing_files = (int32_t)v[6];
        mf->deleted_files = (int32_t)v[7];
        mf->added_rows = v[8];
        mf->existing_rows = v[9];
        mf->deleted_rows = v[10];
        {
            int64_t c = 0;
            /* content (517) arrived with v2; a list without it holds only data. */
            mf->content = get_int(r, names[517], &c) ? 0 : (int32_t)c;
        }
        parts = names[507] ? json_object_get(r, names[507]) : NULL;
        if (json_is_array(parts)) {
            size_t k;
            const json_t *p;
            mf->has_parts = 1;
            mf->nparts = json_array_size(parts);
            mf->parts = rf_xcalloc(mf->nparts ? mf->nparts : 1, sizeof *mf->parts);
            json_array_foreach(parts, k, p)
            {
                rf_iceberg_field_summary_t *fs = &mf->parts[k];
                const json_t *cn = ps_names[518] ? json_object_get(p, ps_names[518]) : NULL;
                const json_t *lo = ps_names[510] ? json_object_get(p, ps_names[510]) : NULL;
                const json_t *hi = ps_names[511] ? json_object_get(p, ps_names[511]) : NULL;
                fs->contains_null =
                    ps_names[509] && json_is_true(json_object_get(p, ps_names[509]));
                fs->contains_nan = json_is_boolean(cn) ? json_is_true(cn) : -1;
                if (json_is_string(lo)) {
                    fs->lower_len = json_string_length(lo);
                    fs->lower = dup_bytes(json_string_value(lo), fs->lower_len);
                }
                if (json_is_string(hi)) {
                    fs->upper_len = json_string_length(hi);
                    fs->upper = dup_bytes(json_string_value(hi), fs->upper_len);
                }
            }
        }
    }
    *mfs = arr;
    *n = nrec;
    arr = NULL;
out:
    if (arr)
        rf__iceberg_manifest_files_free(arr, nrec);
    json_decref(schema);
    json_decref(records);
    free(data);
    return rc;
}

rf_rc rf__iceberg_manifest_read(const char *location, json_t **meta, json_t **entries,
                                rf_err_t *err)
{
    char *data = NULL;
    size_t len = 0;
    rf_rc rc;
    if (meta)
        *meta = NULL;
    *entries = NULL;
    if ((rc = read_file(location, MANIFEST_MAX_BYTES, &data, &len, err)))
        return rc;
    rc = rf__iceberg_avro_read(data, len, meta, NULL, entries, err);
    free(data);
    return rc;
}

/* ==== Arbitrary entries (compaction, expiry) ==== */

static rf_rc enc_bad(rf_err_t *err, const char *what)
{
    return rf_err_set(err, RF_EINVAL, "iceberg avro: datum does not fit the schema (%s)", what);
}

static int is_null_type(const json_t *t)
{
    return json_is_string(t) && !strcmp(json_string_value(t), "null");
}

rf_rc rf__iceberg_avro_encode_json(rf_iceberg_avro_enc_t *enc, const json_t *schema,
                                   const json_t *datum, rf_err_t *err)
{
    const char *t;
    rf_rc rc;
    if (json_is_array(schema)) {
        /* A union: null when the datum is null and a null branch exists, else the first
         * branch that is not null (the only unions manifests use are ["null", T]). */
        size_t i;
        const json_t *b;
        int pick = -1;
        json_array_foreach(schema, i, b)
        {
            if (is_null_type(b) ? (!datum || json_is_null(datum)) : (datum && !json_is_null(datum)))
                if (pick < 0)
                    pick = (int)i;
        }
        if (pick < 0)
            return enc_bad(err, "no union branch");
        rf__iceberg_avro_put_union(enc, pick);
        return rf__iceberg_avro_encode_json(enc, json_array_get(schema, (size_t)pick), datum, err);
    }
    if (json_is_object(schema)) {
        const json_t *inner = json_object_get(schema, "type");
        t = json_string_value(inner);
        if (!t)
            return rf__iceberg_avro_encode_json(enc, inner, datum, err);
        if (!strcmp(t, "record")) {
            size_t i;
            const json_t *f;
            if (!json_is_object(datum))
                return enc_bad(err, "record");
            json_array_foreach(json_object_get(schema, "fields"), i, f)
            {
                const char *name = json_string_value(json_object_get(f, "name"));
                if (!name)
                    return enc_bad(err, "field without a name");
                if ((rc = rf__iceberg_avro_encode_json(enc, json_object_get(f, "type"),
                                                       json_object_get(datum, name), err)))
                    return rc;
            }
            return enc->rc;
        }
        if (!strcmp(t, "array")) {
            size_t i;
            const json_t *item;
            if (!json_is_array(datum))
                return enc_bad(err, "array");
            if (json_array_size(datum) > 0) {
                rf__iceberg_avro_put_block(enc, (int64_t)json_array_size(datum));
                json_array_foreach(datum, i, item)
                {
                    if ((rc = rf__iceberg_avro_encode_json(enc, json_object_get(schema, "items"),
                                                           item, err)))
                        return rc;
                }
            }
            rf__iceberg_avro_put_array_end(enc);
            return enc->rc;
        }
        if (!strcmp(t, "map")) {
            const char *key;
            const json_t *val;
            if (!json_is_object(datum))
                return enc_bad(err, "map");
            if (json_object_size(datum) > 0) {
                rf__iceberg_avro_put_block(enc, (int64_t)json_object_size(datum));
                json_object_foreach((json_t *)datum, key, val)
                {
                    rf__iceberg_avro_put_string(enc, key);
                    if ((rc = rf__iceberg_avro_encode_json(enc, json_object_get(schema, "values"),
                                                           val, err)))
                        return rc;
                }
            }
            rf__iceberg_avro_put_array_end(enc);
            return enc->rc;
        }
        if (!strcmp(t, "fixed")) {
            json_int_t size = json_integer_value(json_object_get(schema, "size"));
            if (!json_is_string(datum) || (json_int_t)json_string_length(datum) != size)
                return enc_bad(err, "fixed");
            rf__iceberg_avro_put_fixed(enc, json_string_value(datum), json_string_length(datum));
            return enc->rc;
        }
        /* {"type": "int", "logicalType": ...} and the like wrap a primitive. */
        return rf__iceberg_avro_encode_json(enc, inner, datum, err);
    }
    t = json_string_value(schema);
    if (!t)
        return enc_bad(err, "schema");
    if (!strcmp(t, "null")) {
        if (datum && !json_is_null(datum))
            return enc_bad(err, "null");
    } else if (!strcmp(t, "boolean")) {
        if (!json_is_boolean(datum))
            return enc_bad(err, "boolean");
        rf__iceberg_avro_put_bool(enc, json_is_true(datum));
    } else if (!strcmp(t, "int") || !strcmp(t, "long")) {
        json_int_t v;
        if (!json_is_integer(datum))
            return enc_bad(err, t);
        v = json_integer_value(datum);
        if (t[0] == 'i' && (v < INT32_MIN || v > INT32_MAX))
            return enc_bad(err, "int out of range");
        rf__iceberg_avro_put_long(enc, (int64_t)v);
    } else if (!strcmp(t, "float") || !strcmp(t, "double")) {
        if (!json_is_number(datum))
            return enc_bad(err, t);
        if (t[0] == 'f')
            rf__iceberg_avro_put_float(enc, (float)json_number_value(datum));
        else
            rf__iceberg_avro_put_double(enc, json_number_value(datum));
    } else if (!strcmp(t, "bytes") || !strcmp(t, "string")) {
        if (!json_is_string(datum))
            return enc_bad(err, t);
        rf__iceberg_avro_put_bytes(enc, json_string_value(datum), json_string_length(datum));
    } else {
        return enc_bad(err, "named type reference");
    }
    return enc->rc;
}

static int64_t entry_int(const json_t *o, const char *key, int64_t dflt)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

rf_rc rf__iceberg_manifest_write_entries(const char *location, const rf_iceberg_meta_t *m,
                                         int64_t snapshot_id, int64_t seq,
                                         rf_iceberg_avro_codec codec, const json_t *entries,
                                         rf_iceberg_manifest_file_t *out, rf_err_t *err)
{
    const json_t *spec = rf__iceberg_meta_spec(m);
    const json_t *sfields = json_object_get(spec, "fields");
    size_t nspec = json_array_size(sfields);
    rf_buf_t schema;
    json_t *jschema = NULL;
    json_error_t jerr;
    rf_iceberg_avro_writer_t *w = NULL;
    rf_iceberg_manifest_file_t mf;
    char *schema_text = NULL, *spec_text = NULL, *data = NULL;
    char schema_id[16], spec_id[16];
    int32_t *lo = NULL, *hi = NULL;
    int *has = NULL;
    size_t len = 0, i;
    const json_t *e;
    int64_t min_seq = INT64_MAX;
    rf_rc rc = RF_OK;

    memset(&mf, 0, sizeof mf);
    memset(out, 0, sizeof *out);
    rf_buf_init(&schema, 0);
    if (!spec || !rf__iceberg_meta_schema(m) || !json_is_array(entries)) {
        rc = rf_err_set(err, RF_EINVAL, "iceberg manifest: metadata lacks a schema or spec");
        goto out;
    }
    rf_buf_puts(&schema, entry_schema_head);
    if ((rc = partition_fields_json(sfields, &schema, err)))
        goto out;
    rf_buf_puts(&schema, entry_schema_tail);
    jschema = json_loads(schema.ptr, 0, &jerr);
    if (!jschema) {
        rc = rf_err_set(err, RF_EINVAL, "iceberg manifest: entry schema: %s", jerr.text);
        goto out;
    }
    schema_text = json_dumps(rf__iceberg_meta_schema(m), JSON_COMPACT);
    spec_text = json_dumps(sfields, JSON_COMPACT);
    snprintf(schema_id, sizeof schema_id, "%d", (int)rf__iceberg_meta_schema_id(m));
    snprintf(spec_id, sizeof spec_id, "%d", (int)rf__iceberg_meta_spec_id(m));
    {
        const rf_iceberg_kv_t meta[] = {
            {"schema", schema_text},        {"schema-id", schema_id}, {"partition-spec", spec_text},
            {"partition-spec-id", spec_id}, {"format-version", "2"},  {"content", "data"},
        };
        if ((rc = rf__iceberg_avro_writer_new(schema.ptr, codec, meta, sizeof meta / sizeof meta[0],
                                              &w, err)))
            goto out;
    }
    mf.path = rf_xstrdup(location);
    mf.spec_id = rf__iceberg_meta_spec_id(m);
    mf.seq = seq;
    mf.added_snapshot_id = snapshot_id;
    mf.has_parts = 1;
    mf.nparts = nspec;
    mf.parts = rf_xcalloc(nspec ? nspec : 1, sizeof *mf.parts);
    lo = rf_xcalloc(nspec ? nspec : 1, sizeof *lo);
    hi = rf_xcalloc(nspec ? nspec : 1, sizeof *hi);
    has = rf_xcalloc(nspec ? nspec : 1, sizeof *has);

    json_array_foreach(entries, i, e)
    {
        const json_t *df = json_object_get(e, "data_file");
        const json_t *part = json_object_get(df, "partition");
        int64_t status = entry_int(e, "status", -1);
        int64_t rows = entry_int(df, "record_count", -1);
        int64_t dseq = entry_int(e, "sequence_number", status == 1 ? seq : -1);
        if (status < 0 || status > 2 || rows < 0 || !json_is_object(part) ||
            (status != 1 && dseq < 0)) {
            rc = rf_err_set(err, RF_EINVAL,
                            "iceberg manifest: entry %zu lacks a status, record count, partition "
                            "or sequence number",
                            i);
            goto out;
        }
        if ((rc = rf__iceberg_avro_encode_json(rf__iceberg_avro_writer_enc(w), jschema, e, err)))
            goto out;
        if ((rc = rf__iceberg_avro_writer_next(w, err)))
            goto out;
        if (status == 1) {
            mf.added_files++;
            mf.added_rows += rows;
        } else if (status == 0) {
            mf.existing_files++;
            mf.existing_rows += rows;
        } else {
            mf.deleted_files++;
            mf.deleted_rows += rows;
        }
        if (status != 2 && dseq < min_seq)
            min_seq = dseq;
        for (size_t k = 0; k < nspec; k++) {
            const char *pname =
                json_string_value(json_object_get(json_array_get(sfields, k), "name"));
            char *aname = pname ? avro_name(pname) : NULL;
            const json_t *pv = aname ? json_object_get(part, aname) : NULL;
            free(aname);
            if (!json_is_integer(pv)) {
                mf.parts[k].contains_null = 1;
                continue;
            }
            int32_t v = (int32_t)json_integer_value(pv);
            if (!has[k]) {
                has[k] = 1;
                lo[k] = hi[k] = v;
            } else {
                lo[k] = v < lo[k] ? v : lo[k];
                hi[k] = v > hi[k] ? v : hi[k];
            }
        }
    }
    mf.min_seq = min_seq == INT64_MAX ? seq : min_seq;
    set_part_bounds(&mf, nspec, has, lo, hi);
    if ((rc = rf__iceberg_avro_writer_finish(w, &data, &len, err)))
        goto out;
    if ((rc = write_file(location, data, len, err)))
        goto out;
    mf.length = (int64_t)len;
    *out = mf;
    memset(&mf, 0, sizeof mf);
out:
    rf__iceberg_manifest_file_fini(&mf);
    rf__iceberg_avro_writer_free(w);
    rf_buf_fini(&schema);
    json_decref(jschema);
    free(lo);
    free(hi);
    free(has);
    free(schema_text);
    free(spec_text);
    free(data);
    return rc;
}
