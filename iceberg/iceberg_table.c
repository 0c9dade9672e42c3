/* iceberg_table.c - table operations on top of the catalog: create (metadata version 0),
 * load and refresh, appends (manifest -> manifest list -> metadata -> compare-and-swap)
 * and schema evolution.  INVARIANT(history-exported-once): every operation writes new
 * files first and publishes them only through the catalog swap; a crash or a lost race
 * leaves unreferenced files, never a half-committed table.
 */
#include "iceberg/iceberg_int.h"

#include <inttypes.h>
#include <string.h>

static rf_iceberg_table_t *table_new(rf_iceberg_catalog_t *cat, const char *ns, const char *name,
                                     rf_iceberg_meta_t *meta)
{
    rf_iceberg_table_t *t = rf_xcalloc(1, sizeof *t);
    t->cat = cat;
    t->ns = rf_xstrdup(ns);
    t->name = rf_xstrdup(name);
    t->meta = meta;
    t->codec = RF_ICEBERG_AVRO_DEFLATE;
    return t;
}

void rf__iceberg_table_free(rf_iceberg_table_t *t)
{
    if (!t)
        return;
    rf__iceberg_meta_free(t->meta);
    free(t->ns);
    free(t->name);
    free(t);
}

rf_rc rf__iceberg_table_create(rf_iceberg_catalog_t *cat, const char *ns, const char *name,
                               rf_iceberg_meta_t *meta, rf_iceberg_table_t **out, rf_err_t *err)
{
    rf_iceberg_meta_t *m = NULL;
    char *existing = NULL;
    const char *file = NULL;
    rf_rc rc;

    *out = NULL;
    if (!cat || !ns || !name || !meta || rf__iceberg_meta_file(meta))
        return rf_err_set(err, RF_EINVAL, "iceberg table: create needs new metadata");
    rc = rf__iceberg_catalog_table_load(cat, ns, name, &existing, NULL, err);
    free(existing);
    if (rc == RF_OK)
        return rf_err_set(err, RF_EEXIST, "iceberg table: %s.%s exists already", ns, name);
    if (rc != RF_ENOTFOUND)
        return rc;
    rf_err_clear(err);
    if ((rc = rf__iceberg_catalog_namespace_create(cat, ns, NULL, 0, err)))
        return rc;
    /* Work on a copy so that meta stays the caller's, unchanged, when this fails. */
    m = rf__iceberg_meta_dup(meta);
    if ((rc = rf__iceberg_meta_write(m, &file, err)))
        goto out;
    if ((rc = rf__iceberg_catalog_table_create(cat, ns, name, file, err)))
        goto out;
    RF_LOG(RF_LOG_INFO, RF_MOD_ICEBERG, "table=%s.%s metadata=%s created", ns, name, file);
    rf__iceberg_meta_free(meta);
    *out = table_new(cat, ns, name, m);
    m = NULL;
out:
    rf__iceberg_meta_free(m);
    return rc;
}

rf_rc rf__iceberg_table_load(rf_iceberg_catalog_t *cat, const char *ns, const char *name,
                             rf_iceberg_table_t **out, rf_err_t *err)
{
    rf_iceberg_meta_t *m = NULL;
    char *loc = NULL;
    rf_rc rc;

    *out = NULL;
    if (!cat || !ns || !name)
        return rf_err_set(err, RF_EINVAL, "iceberg table: catalog, namespace and name needed");
    if ((rc = rf__iceberg_catalog_table_load(cat, ns, name, &loc, NULL, err)))
        return rc;
    rc = rf__iceberg_meta_load(loc, &m, err);
    free(loc);
    if (rc)
        return rc;
    *out = table_new(cat, ns, name, m);
    return RF_OK;
}

rf_rc rf__iceberg_table_refresh(rf_iceberg_table_t *t, rf_err_t *err)
{
    rf_iceberg_meta_t *m = NULL;
    char *loc = NULL;
    rf_rc rc;
    if ((rc = rf__iceberg_catalog_table_load(t->cat, t->ns, t->name, &loc, NULL, err)))
        return rc;
    /* Unchanged since the last load: keep what we have. */
    if (rf__iceberg_meta_file(t->meta) && !strcmp(loc, rf__iceberg_meta_file(t->meta))) {
        free(loc);
        return RF_OK;
    }
    rc = rf__iceberg_meta_load(loc, &m, err);
    free(loc);
    if (rc)
        return rc;
    rf__iceberg_meta_free(t->meta);
    t->meta = m;
    return RF_OK;
}

rf_rc rf__iceberg_table_commit(rf_iceberg_table_t *t, rf_iceberg_meta_t *next, rf_err_t *err)
{
    const char *expected = rf__iceberg_meta_file(t->meta);
    const char *file = NULL;
    rf_rc rc;

    if (!expected || !rf__iceberg_meta_file(next) ||
        strcmp(expected, rf__iceberg_meta_file(next)) != 0) {
        rc = rf_err_set(err, RF_EINVAL,
                        "iceberg table: commit of metadata not derived from the "
                        "table's current version");
        goto out;
    }
    if ((rc = rf__iceberg_meta_write(next, &file, err)))
        goto out;
    if ((rc = rf__iceberg_catalog_table_commit(t->cat, t->ns, t->name, expected, file, err))) {
        RF_LOG(RF_LOG_DEBUG, RF_MOD_ICEBERG, "table=%s.%s metadata=%s not committed: %s", t->ns,
               t->name, file, rf_rc_name(rc));
        goto out;
    }
    rf__iceberg_meta_free(t->meta);
    t->meta = next;
    next = NULL;
out:
    rf__iceberg_meta_free(next);
    return rc;
}

/* Partition tuples that differ, for changed-partition-count. */
static int64_t distinct_partitions(const rf_iceberg_data_file_t *files, size_t n)
{
    int64_t count = 0;
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++) {
            int same = files[j].npartition == files[i].npartition;
            for (size_t k = 0; same && k < files[i].npartition; k++) {
                const rf_iceberg_part_value_t *a = &files[i].partition[k];
                const rf_iceberg_part_value_t *b = &files[j].partition[k];
                same = a->is_null == b->is_null && (a->is_null || a->value == b->value);
            }
            seen = same;
        }
        if (!seen)
            count++;
    }
    return count;
}

rf_rc rf__iceberg_table_append(rf_iceberg_table_t *t, const rf_iceberg_data_file_t *files,
                               size_t nfiles, const rf_iceberg_kv_t *props, size_t nprops,
                               int64_t *snapshot_id, rf_err_t *err)
{
    rf_iceberg_meta_t *next = NULL;
    rf_iceberg_manifest_file_t *old = NULL, *all = NULL;
    size_t nold = 0, nall = 0;
    const char *loc;
    const json_t *cur;
    char uuid[37];
    char *manifest = NULL, *list = NULL;
    rf_iceberg_append_stats_t added = {0, 0, 0, 0};
    int64_t sid, seq, parent, now;
    size_t loclen;
    rf_rc rc = RF_OK;

    if (snapshot_id)
        *snapshot_id = -1;
    if (nfiles > 0 && !files)
        return rf_err_set(err, RF_EINVAL, "iceberg append: files missing");
    next = rf__iceberg_meta_dup(t->meta);
    loc = rf__iceberg_meta_location(next);
    loclen = strlen(loc);
    if (loclen > 1 && loc[loclen - 1] == '/')
        loclen--;
    sid = rf__iceberg_meta_new_snapshot_id(next);
    seq = rf__iceberg_meta_last_seq(next) + 1;
    parent = rf__iceberg_meta_current_snapshot_id(next);
    /* Never before the last change: snapshot-log and metadata-log stay ordered. */
    now = rf_now_ms();
    {
        const json_t *lu = json_object_get(rf__iceberg_meta_json(next), "last-updated-ms");
        if (json_is_integer(lu) && json_integer_value(lu) > now)
            now = json_integer_value(lu);
    }

    /* The manifests of the current snapshot stay live in the new one. */
    cur = rf__iceberg_meta_snapshot(next, -1);
    if (cur) {
        const char *ml = json_string_value(json_object_get(cur, "manifest-list"));
        if (!ml) {
            rc = rf_err_set(err, RF_ECORRUPT,
                            "iceberg append: snapshot %" PRId64 " has no manifest-list", parent);
            goto out;
        }
        if ((rc = rf__iceberg_manifest_list_read(ml, &old, &nold, err)))
            goto out;
    }
    all = rf_xcalloc(nold + 1, sizeof *all);
    rf__iceberg_uuid(uuid);
    if (nfiles > 0) {
        manifest = rf_xasprintf("%.*s/metadata/%s-m0.avro", (int)loclen, loc, uuid);
        if ((rc = rf__iceberg_manifest_write(manifest, next, sid, seq, t->codec, files, nfiles,
                                             &all[0], err)))
            goto out;
        nall = 1;
        for (size_t i = 0; i < nfiles; i++) {
            added.records += files[i].pq->row_count;
            added.files_size += files[i].pq->file_size;
        }
        added.data_files = (int64_t)nfiles;
        added.changed_partitions = distinct_partitions(files, nfiles);
    }
    /* New manifest first, as Java orders them; the old entries move over (the array
     * takes their allocations). */
    for (size_t i = 0; i < nold; i++)
        all[nall++] = old[i];
    free(old);
    old = NULL;
    nold = 0;

    list = rf_xasprintf("%.*s/metadata/snap-%" PRId64 "-1-%s.avro", (int)loclen, loc, sid, uuid);
    if ((rc = rf__iceberg_manifest_list_write(list, sid, parent, seq, t->codec, all, nall, err)))
        goto out;
    if ((rc = rf__iceberg_meta_add_snapshot(next, sid, list, now, &added, props, nprops, err)))
        goto out;
    rc = rf__iceberg_table_commit(t, next, err);
    next = NULL;
    if (rc)
        goto out;
    RF_LOG(RF_LOG_INFO, RF_MOD_ICEBERG,
           "table=%s.%s snapshot=%" PRId64 " seq=%" PRId64 " files=%zu records=%" PRId64
           " appended",
           t->ns, t->name, sid, seq, nfiles, added.records);
    if (snapshot_id)
        *snapshot_id = sid;
out:
    rf__iceberg_meta_free(next);
    rf__iceberg_manifest_files_free(old, nold);
    rf__iceberg_manifest_files_free(all, nall);
    free(manifest);
    free(list);
    return rc;
}

rf_rc rf__iceberg_table_add_columns(rf_iceberg_table_t *t, const rf_iceberg_field_t *fields,
                                    size_t n, rf_err_t *err)
{
    rf_iceberg_meta_t *next = rf__iceberg_meta_dup(t->meta);
    rf_rc rc = rf__iceberg_meta_add_columns(next, fields, n, err);
    if (rc) {
        rf__iceberg_meta_free(next);
        return rc;
    }
    return rf__iceberg_table_commit(t, next, err);
}
