/* iceberg_maint.c - table maintenance: expiring old snapshots (and the files only they
 * referenced), removing orphan files left by crashes and lost races, and compacting
 * small data files into larger ones in a `replace` snapshot.  Every change commits by
 * compare-and-swap and is redone from fresh metadata after a conflict.
 * INVARIANT(history-exported-once): a rewrite keeps every row exactly once and carries
 * the exporter's position (ragfeed.seq, ragfeed.offsets) over unchanged; nothing a live
 * snapshot references is ever deleted.
 */
#include "iceberg/iceberg.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iceberg/iceberg_int.h"

#define MAINT_CAS_ATTEMPTS 8

/* ==== A set of paths ==== */

typedef struct pathset {
    char **v;
    size_t n, cap;
    int sorted;
} pathset_t;

static void ps_add(pathset_t *s, const char *location)
{
    const char *p = rf__iceberg_local_path(location);
    if (!p)
        return;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->v = rf_xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = rf_xstrdup(p);
    s->sorted = 0;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void ps_sort(pathset_t *s)
{
    size_t k = 0;
    if (s->sorted)
        return;
    qsort(s->v, s->n, sizeof(*s->v), str_cmp);
    for (size_t i = 0; i < s->n; i++) {
        if (k > 0 && !strcmp(s->v[k - 1], s->v[i])) {
            free(s->v[i]);
            continue;
        }
        s->v[k++] = s->v[i];
    }
    s->n = k;
    s->sorted = 1;
}

static int ps_has(pathset_t *s, const char *path)
{
    ps_sort(s);
    return s->n && bsearch(&path, s->v, s->n, sizeof(*s->v), str_cmp) != NULL;
}

static void ps_fini(pathset_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* ==== What snapshots reference ==== */

/* Manifests read once each: path -> the data files it lists (all, or live ones only). */
typedef struct mcache {
    char **paths;
    json_t **entries;
    size_t n;
} mcache_t;

static void mc_fini(mcache_t *mc)
{
    for (size_t i = 0; i < mc->n; i++) {
        free(mc->paths[i]);
        json_decref(mc->entries[i]);
    }
    free(mc->paths);
    free(mc->entries);
    memset(mc, 0, sizeof(*mc));
}

static rf_rc mc_get(mcache_t *mc, const char *path, const json_t **entries, rf_err_t *err)
{
    json_t *e = NULL;
    rf_rc rc;
    for (size_t i = 0; i < mc->n; i++) {
        if (!strcmp(mc->paths[i], path)) {
            *entries = mc->entries[i];
            return RF_OK;
        }
    }
    if ((rc = rf__iceberg_manifest_read(path, NULL, &e, err)))
        return rc;
    mc->paths = rf_xrealloc(mc->paths, (mc->n + 1) * sizeof(*mc->paths));
    mc->entries = rf_xrealloc(mc->entries, (mc->n + 1) * sizeof(*mc->entries));
    mc->paths[mc->n] = rf_xstrdup(path);
    mc->entries[mc->n] = e;
    mc->n++;
    *entries = e;
    return RF_OK;
}

/* Adds what snapshot snap references to set: its manifest list, its manifests and the
 * data files they list (DELETED entries too when all_entries). */
static rf_rc snapshot_refs(const json_t *snap, mcache_t *mc, int all_entries, pathset_t *set,
                           rf_err_t *err)
{
    const char *ml = json_string_value(json_object_get(snap, "manifest-list"));
    rf_iceberg_manifest_file_t *mfs = NULL;
    size_t nmfs = 0;
    rf_rc rc;
    if (!ml)
        return rf_err_set(err, RF_ECORRUPT, "iceberg: a snapshot has no manifest-list");
    ps_add(set, ml);
    if ((rc = rf__iceberg_manifest_list_read(ml, &mfs, &nmfs, err)))
        return rc;
    for (size_t i = 0; i < nmfs && !rc; i++) {
        const json_t *entries, *e;
        size_t k;
        ps_add(set, mfs[i].path);
        if ((rc = mc_get(mc, mfs[i].path, &entries, err)))
            break;
        json_array_foreach(entries, k, e)
        {
            const json_t *df = json_object_get(e, "data_file");
            const char *p = json_string_value(json_object_get(df, "file_path"));
            if (!p)
                continue;
            if (all_entries || json_integer_value(json_object_get(e, "status")) != 2)
                ps_add(set, p);
        }
    }
    rf__iceberg_manifest_files_free(mfs, nmfs);
    return rc;
}

static rf_rc delete_file(const char *path, rf_iceberg_maint_result_t *res)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return RF_OK;
    if (unlink(path) == 0) {
        RF_LOG(RF_LOG_DEBUG, RF_MOD_ICEBERG, "file=%s deleted", path);
        res->files_deleted++;
        res->bytes_deleted += (int64_t)sb.st_size;
    } else {
        RF_LOG(RF_LOG_WARN, RF_MOD_ICEBERG, "file=%s cannot delete: %s", path, strerror(errno));
    }
    return RF_OK;
}

static void result_init(rf_iceberg_maint_result_t *res)
{
    memset(res, 0, sizeof(*res));
    res->snapshot_id = -1;
}

/* ==== Expire ==== */

static int ts_cmp_desc(const void *a, const void *b)
{
    const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
    json_int_t tx = json_integer_value(json_object_get(x, "timestamp-ms"));
    json_int_t ty = json_integer_value(json_object_get(y, "timestamp-ms"));
    if (tx != ty)
        return tx > ty ? -1 : 1;
    tx = json_integer_value(json_object_get(x, "sequence-number"));
    ty = json_integer_value(json_object_get(y, "sequence-number"));
    return tx > ty ? -1 : tx < ty;
}

rf_rc rf_iceberg_history_expire(rf_iceberg_history_t *h, int64_t older_than_ms, int retain_last,
                                rf_iceberg_maint_result_t *res, rf_err_t *err)
{
    rf_iceberg_table_t *t = rf__iceberg_history_table(h);
    rf_rc rc = RF_OK;
    result_init(res);
    if (retain_last < 1)
        retain_last = 1;
    for (int attempt = 0; attempt < MAINT_CAS_ATTEMPTS; attempt++) {
        const json_t *snaps;
        const json_t **arr = NULL;
        int64_t *ids = NULL, cur;
        size_t n, nexp = 0;
        pathset_t gone = {0}, live = {0};
        mcache_t mc = {0};
        rf_iceberg_meta_t *next = NULL;

        if ((rc = rf__iceberg_table_refresh(t, err)))
            return rc;
        snaps = json_object_get(rf__iceberg_meta_json(t->meta), "snapshots");
        cur = rf__iceberg_meta_current_snapshot_id(t->meta);
        n = json_array_size(snaps);
        arr = rf_xcalloc(n ? n : 1, sizeof(*arr));
        ids = rf_xcalloc(n ? n : 1, sizeof(*ids));
        for (size_t i = 0; i < n; i++)
            arr[i] = json_array_get(snaps, i);
        qsort(arr, n, sizeof(*arr), ts_cmp_desc);
        for (size_t i = 0; i < n; i++) {
            int64_t sid = (int64_t)json_integer_value(json_object_get(arr[i], "snapshot-id"));
            int64_t ts = (int64_t)json_integer_value(json_object_get(arr[i], "timestamp-ms"));
            if (sid == cur || i < (size_t)retain_last || ts >= older_than_ms)
                continue;
            ids[nexp++] = sid;
        }
        if (nexp == 0)
            goto next_free;
        /* What the expired snapshots reference, minus what the kept ones still need. */
        for (size_t i = 0; i < n && !rc; i++) {
            int64_t sid = (int64_t)json_integer_value(json_object_get(arr[i], "snapshot-id"));
            int expired = 0;
            for (size_t k = 0; k < nexp; k++)
                expired |= ids[k] == sid;
            rc = snapshot_refs(arr[i], &mc, 0, expired ? &gone : &live, err);
        }
        if (rc)
            goto next_free;
        next = rf__iceberg_meta_dup(t->meta);
        if ((rc = rf__iceberg_meta_remove_snapshots(next, ids, nexp, err))) {
            rf__iceberg_meta_free(next);
            goto next_free;
        }
        rc = rf__iceberg_table_commit(t, next, err);
        if (!rc) {
            res->snapshots_expired = (int64_t)nexp;
            ps_sort(&gone);
            for (size_t i = 0; i < gone.n; i++)
                if (!ps_has(&live, gone.v[i]))
                    delete_file(gone.v[i], res);
            RF_LOG(RF_LOG_INFO, RF_MOD_ICEBERG,
                   "table=%s.%s snapshots=%zu files=%" PRId64 " snapshots expired", t->ns, t->name,
                   nexp, res->files_deleted);
        }
    next_free:
        free(arr);
        free(ids);
        ps_fini(&gone);
        ps_fini(&live);
        mc_fini(&mc);
        if (rc != RF_EBUSY)
            return rc;
        rf_err_clear(err);
    }
    return rc;
}

/* ==== Orphan files ==== */

typedef struct walk {
    pathset_t *keep;
    int64_t cutoff_ms;
    int dry_run;
    rf_iceberg_maint_result_t *res;
    int depth;
} walk_t;

static void walk_dir(walk_t *w, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    if (!d)
        return;
    if (++w->depth > 64) {
        closedir(d);
        w->depth--;
        return;
    }
    while ((de = readdir(d))) {
        struct stat sb;
        char *p;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        p = rf_xasprintf("%s/%s", dir, de->d_name);
        if (lstat(p, &sb) == 0) {
            if (S_ISDIR(sb.st_mode)) {
                walk_dir(w, p);
            } else if (S_ISREG(sb.st_mode) && !ps_has(w->keep, p)) {
                int64_t mtime_ms =
                    (int64_t)sb.st_mtim.tv_sec * 1000 + (int64_t)sb.st_mtim.tv_nsec / 1000000;
                /* Young files may belong to a commit in flight: never touched. */
                if (mtime_ms < w->cutoff_ms) {
                    if (w->dry_run) {
                        w->res->files_deleted++;
                        w->res->bytes_deleted += (int64_t)sb.st_size;
                    } else {
                        delete_file(p, w->res);
                    }
                }
            }
        }
        free(p);
    }
    closedir(d);
    w->depth--;
}

rf_rc rf_iceberg_history_gc(rf_iceberg_history_t *h, int64_t grace_ms, int dry_run,
                            rf_iceberg_maint_result_t *res, rf_err_t *err)
{
    rf_iceberg_table_t *t = rf__iceberg_history_table(h);
    const json_t *root, *snap, *log_e;
    const char *loc;
    pathset_t keep = {0};
    mcache_t mc = {0};
    walk_t w;
    size_t i;
    rf_rc rc;

    result_init(res);
    if (grace_ms < 0)
        return rf_err_set(err, RF_EINVAL, "history gc: negative grace period");
    if ((rc = rf__iceberg_table_refresh(t, err)))
        return rc;
    root = rf__iceberg_meta_json(t->meta);
    loc = rf__iceberg_local_path(rf__iceberg_meta_location(t->meta));
    if (!loc)
        return rf_err_set(err, RF_ENOTIMPL, "history gc: table location is not local");
    ps_add(&keep, rf__iceberg_meta_file(t->meta));
    json_array_foreach(json_object_get(root, "metadata-log"), i, log_e)
        ps_add(&keep, json_string_value(json_object_get(log_e, "metadata-file")));
    json_array_foreach(json_object_get(root, "snapshots"), i, snap)
    {
        if ((rc = snapshot_refs(snap, &mc, 1, &keep, err)))
            goto out;
    }
    memset(&w, 0, sizeof w);
    w.keep = &keep;
    w.cutoff_ms = rf_now_ms() - grace_ms;
    w.dry_run = dry_run;
    w.res = res;
    walk_dir(&w, loc);
    RF_LOG(RF_LOG_INFO, RF_MOD_ICEBERG,
           "table=%s.%s files=%" PRId64 " bytes=%" PRId64 " dry_run=%d orphan files removed", t->ns,
           t->name, res->files_deleted, res->bytes_deleted, dry_run);
out:
    ps_fini(&keep);
    mc_fini(&mc);
    return rc;
}

/* ==== Compaction ==== */

/* Files written by one compaction attempt. */
typedef struct rewrite {
    rf_iceberg_pq_column_t *cols;
    size_t ncols;
    json_t *schema;
    char *schema_text;
    rf_iceberg_pq_opts_t opts;
    rf_iceberg_pq_kv_t kv[1];
    rf_iceberg_pq_value_t *vals;
    char **paths;
    int32_t *days;
    rf_iceberg_pq_result_t *res;
    size_t n, cap;
} rewrite_t;

static void rw_fini(rewrite_t *rw, int delete_files)
{
    for (size_t i = 0; i < rw->n; i++) {
        if (delete_files && rw->paths[i])
            unlink(rw->paths[i]);
        free(rw->paths[i]);
        rf__iceberg_parquet_result_fini(&rw->res[i]);
    }
    free(rw->paths);
    free(rw->days);
    free(rw->res);
    free(rw->cols);
    free(rw->vals);
    free(rw->schema_text);
    json_decref(rw->schema);
    memset(rw, 0, sizeof(*rw));
}

static rf_rc rw_close(rewrite_t *rw, rf_iceberg_parquet_t *w, const char *path, int32_t day,
                      rf_err_t *err)
{
    rf_iceberg_pq_result_t res;
    rf_rc rc = rf__iceberg_parquet_close(w, &res, err);
    if (rc)
        return rc;
    if (rw->n == rw->cap) {
        rw->cap = rw->cap ? rw->cap * 2 : 8;
        rw->paths = rf_xrealloc(rw->paths, rw->cap * sizeof(*rw->paths));
        rw->days = rf_xrealloc(rw->days, rw->cap * sizeof(*rw->days));
        rw->res = rf_xrealloc(rw->res, rw->cap * sizeof(*rw->res));
    }
    rw->paths[rw->n] = rf_xstrdup(path);
    rw->days[rw->n] = day;
    rw->res[rw->n] = res;
    rw->n++;
    return RF_OK;
}

/* Rewrites files[0..n) (one day partition, in seq order) into files of up to target
 * bytes under dir. */
static rf_rc rewrite_group(rewrite_t *rw, const rf_iceberg_live_file_t *files, size_t n,
                           const char *dir, int64_t target, int64_t *rows, rf_err_t *err)
{
    rf_iceberg_parquet_t *w = NULL;
    char *wpath = NULL;
    int *map = rf_xcalloc(rw->ncols ? rw->ncols : 1, sizeof(*map));
    rf_rc rc = RF_OK;

    for (size_t k = 0; k < n && !rc; k++) {
        const char *path = rf__iceberg_local_path(files[k].path);
        rf_iceberg_pqr_t *r = NULL;
        if (!path) {
            rc = rf_err_set(err, RF_ENOTIMPL, "compact: %s is not a local file", files[k].path);
            break;
        }
        if ((rc = rf__iceberg_pqr_open(path, &r, err)))
            break;
        for (size_t i = 0; i < rw->ncols; i++) {
            map[i] = rf__iceberg_pqr_find(r, rw->cols[i].field_id);
            if (map[i] >= 0) {
                const rf_iceberg_pqr_col_t *fc = rf__iceberg_pqr_col(r, (size_t)map[i]);
                if (fc->type != rw->cols[i].type || fc->is_list != rw->cols[i].is_list) {
                    rc = rf_err_set(err, RF_ENOTIMPL,
                                    "compact: %s: column %s has another type than the table's",
                                    path, rw->cols[i].name);
                    break;
                }
            } else if (!rw->cols[i].optional) {
                rc = rf_err_set(err, RF_ECORRUPT, "compact: %s lacks the required column %s", path,
                                rw->cols[i].name);
                break;
            }
        }
        for (size_t g = 0; g < rf__iceberg_pqr_row_groups(r) && !rc; g++) {
            int64_t nrows = 0;
            if ((rc = rf__iceberg_pqr_read_group(r, g, NULL, &nrows, err)))
                break;
            for (int64_t row = 0; row < nrows && !rc; row++) {
                for (size_t i = 0; i < rw->ncols; i++) {
                    if (map[i] >= 0) {
                        rf__iceberg_pqr_value(r, (size_t)map[i], row, &rw->vals[i]);
                    } else {
                        memset(&rw->vals[i], 0, sizeof(rw->vals[i]));
                        rw->vals[i].is_null = 1;
                    }
                }
                if (!w) {
                    char uuid[37];
                    rf__iceberg_uuid(uuid);
                    free(wpath);
                    wpath = rf_xasprintf("%s/compact-%s.parquet", dir, uuid);
                    if ((rc = rf__iceberg_parquet_open(wpath, rw->cols, rw->ncols, &rw->opts, &w,
                                                       err)))
                        break;
                }
                if ((rc = rf__iceberg_parquet_write_row(w, rw->vals, err)))
                    break;
                (*rows)++;
                if (rf__iceberg_parquet_size_estimate(w) >= target) {
                    rc = rw_close(rw, w, wpath, files[0].day, err);
                    w = NULL;
                }
            }
        }
        rf__iceberg_pqr_close(r);
    }
    if (!rc && w) {
        rc = rw_close(rw, w, wpath, files[0].day, err);
        w = NULL;
    }
    rf__iceberg_parquet_abort(w);
    free(wpath);
    free(map);
    return rc;
}

static int day_cmp(const void *a, const void *b)
{
    const rf_iceberg_live_file_t *x = a, *y = b;
    if (x->day != y->day)
        return x->day < y->day ? -1 : 1;
    if (x->seq_lo != y->seq_lo)
        return x->seq_lo < y->seq_lo ? -1 : 1;
    return strcmp(x->path, y->path);
}

/* One attempt: plan, rewrite, commit.  RF_EBUSY when another writer committed first. */
static rf_rc compact_once(rf_iceberg_table_t *t, const rf_conf_t *cfg, int64_t target,
                          rf_iceberg_maint_result_t *res, rf_err_t *err)
{
    rf_iceberg_live_file_t *files = NULL;
    size_t n = 0, nrep = 0;
    int *replace = NULL;
    rewrite_t rw;
    json_t *rest = NULL;
    rf_iceberg_manifest_file_t mfs[2];
    size_t nmfs = 0;
    rf_iceberg_meta_t *next = NULL;
    char *mpath_add = NULL, *mpath_rest = NULL, *list = NULL;
    const char *loc, *local, *offsets = NULL;
    int64_t sid, seq, parent, pos = 0, rows = 0;
    rf_iceberg_append_stats_t added = {0, 0, 0, 0};
    rf_iceberg_removed_stats_t removed = {0, 0, 0};
    char uuid[37], seqtxt[24];
    size_t loclen;
    int maybe_committed = 0;
    rf_rc rc;

    memset(&rw, 0, sizeof rw);
    memset(mfs, 0, sizeof mfs);
    if ((rc = rf__iceberg_table_refresh(t, err)))
        return rc;
    if ((rc = rf__iceberg_snapshot_files(t->meta, -1, &files, &n, err)))
        return rc;
    if (n < 2)
        goto out;
    qsort(files, n, sizeof(*files), day_cmp);
    replace = rf_xcalloc(n, sizeof(*replace));
    /* Small files of a day, when there are two or more of them. */
    for (size_t i = 0; i < n;) {
        size_t j = i, small = 0;
        while (j < n && files[j].has_day == files[i].has_day && files[j].day == files[i].day)
            j++;
        for (size_t k = i; k < j; k++)
            small += files[k].size < target;
        if (files[i].has_day && small >= 2)
            for (size_t k = i; k < j; k++)
                if (files[k].size < target) {
                    replace[k] = 1;
                    nrep++;
                }
        i = j;
    }
    if (nrep == 0)
        goto out;

    loc = rf__iceberg_meta_location(t->meta);
    local = rf__iceberg_local_path(loc);
    if (!local) {
        rc = rf_err_set(err, RF_ENOTIMPL, "compact: table location %s is not local", loc);
        goto out;
    }
    if ((rc = rf__iceberg_hist_position(t->meta, -1, &pos, &offsets, err)))
        goto out;
    rw.schema = json_deep_copy(rf__iceberg_meta_schema(t->meta));
    rw.schema_text = json_dumps(rw.schema, JSON_COMPACT);
    if ((rc = rf__iceberg_schema_pq_columns(rw.schema, &rw.cols, &rw.ncols, err)))
        goto out;
    rw.vals = rf_xcalloc(rw.ncols ? rw.ncols : 1, sizeof(*rw.vals));
    rf__iceberg_parquet_opts_init(&rw.opts);
    rw.opts.codec = cfg->iceberg_codec == RF_ICEBERG_CODEC_UNCOMPRESSED ? RF_ICEBERG_PQ_UNCOMPRESSED
                                                                        : RF_ICEBERG_PQ_ZSTD;
    if ((int64_t)rw.opts.row_group_bytes > target)
        rw.opts.row_group_bytes = (size_t)target;
    rw.kv[0].key = "iceberg.schema";
    rw.kv[0].value = rw.schema_text;
    rw.opts.kv = rw.kv;
    rw.opts.nkv = 1;

    for (size_t i = 0; i < n && !rc;) {
        size_t j = i;
        rf_iceberg_live_file_t *grp;
        size_t ng = 0;
        char *dir;
        int y, m, d;
        while (j < n && files[j].day == files[i].day)
            j++;
        grp = rf_xcalloc(j - i, sizeof(*grp));
        for (size_t k = i; k < j; k++)
            if (replace[k])
                grp[ng++] = files[k]; /* shallow: grp borrows files' strings */
        if (ng > 0) {
            rf__iceberg_civil_from_days(files[i].day, &y, &m, &d);
            dir = rf_xasprintf("%s/data/ingest_time_day=%04d-%02d-%02d", local, y, m, d);
            rc = rf_mkdirs(dir, err);
            if (!rc)
                rc = rewrite_group(&rw, grp, ng, dir, target, &rows, err);
            free(dir);
        }
        free(grp);
        i = j;
    }
    if (rc)
        goto out;

    /* The snapshot: manifest 1 adds the new files; manifest 2 keeps every other live file
     * as EXISTING and marks the rewritten ones DELETED (the old manifests are left out). */
    sid = rf__iceberg_meta_new_snapshot_id(t->meta);
    seq = rf__iceberg_meta_last_seq(t->meta) + 1;
    parent = rf__iceberg_meta_current_snapshot_id(t->meta);
    loclen = strlen(loc);
    if (loclen > 1 && loc[loclen - 1] == '/')
        loclen--;
    rf__iceberg_uuid(uuid);
    mpath_add = rf_xasprintf("%.*s/metadata/%s-m0.avro", (int)loclen, loc, uuid);
    mpath_rest = rf_xasprintf("%.*s/metadata/%s-m1.avro", (int)loclen, loc, uuid);
    list = rf_xasprintf("%.*s/metadata/snap-%" PRId64 "-1-%s.avro", (int)loclen, loc, sid, uuid);
    {
        rf_iceberg_data_file_t *dfs = rf_xcalloc(rw.n ? rw.n : 1, sizeof(*dfs));
        rf_iceberg_part_value_t *parts = rf_xcalloc(rw.n ? rw.n : 1, sizeof(*parts));
        for (size_t i = 0; i < rw.n; i++) {
            parts[i].value = rw.days[i];
            dfs[i].path = rw.paths[i];
            dfs[i].pq = &rw.res[i];
            dfs[i].partition = &parts[i];
            dfs[i].npartition = 1;
            added.records += rw.res[i].row_count;
            added.files_size += rw.res[i].file_size;
            int seen = 0;
            for (size_t k = 0; k < i; k++)
                seen |= rw.days[k] == rw.days[i];
            added.changed_partitions += !seen;
        }
        added.data_files = (int64_t)rw.n;
        rc = rf__iceberg_manifest_write(mpath_add, t->meta, sid, seq, t->codec, dfs, rw.n, &mfs[0],
                                        err);
        free(dfs);
        free(parts);
        if (rc)
            goto out;
        nmfs = 1;
    }
    rest = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_deep_copy(files[i].entry);
        if (replace[i]) {
            json_object_set_new(e, "status", json_integer(2));
            json_object_set_new(e, "snapshot_id", json_integer(sid));
            removed.data_files++;
            removed.records += files[i].records;
            removed.files_size += files[i].size;
        } else {
            json_object_set_new(e, "status", json_integer(0));
        }
        json_array_append_new(rest, e);
    }
    if ((rc = rf__iceberg_manifest_write_entries(mpath_rest, t->meta, sid, seq, t->codec, rest,
                                                 &mfs[1], err)))
        goto out;
    nmfs = 2;
    if (added.records != removed.records) {
        rc = rf_err_set(err, RF_ECORRUPT,
                        "compact: wrote %" PRId64 " rows for %" PRId64 " (the manifests disagree "
                        "with the files)",
                        added.records, removed.records);
        goto out;
    }
    if ((rc = rf__iceberg_manifest_list_write(list, sid, parent, seq, t->codec, mfs, nmfs, err)))
        goto out;
    next = rf__iceberg_meta_dup(t->meta);
    snprintf(seqtxt, sizeof seqtxt, "%" PRId64, pos);
    {
        /* The exporter reads its start from the current snapshot: carry it over. */
        rf_iceberg_kv_t props[2] = {{"ragfeed.seq", seqtxt}, {"ragfeed.offsets", offsets}};
        int64_t now = rf_now_ms();
        const json_t *lu = json_object_get(rf__iceberg_meta_json(next), "last-updated-ms");
        if (json_is_integer(lu) && json_integer_value(lu) > now)
            now = json_integer_value(lu);
        rc = rf__iceberg_meta_add_snapshot_op(next, sid, list, now, "replace", &added, &removed,
                                              props, offsets ? 2 : 1, err);
    }
    if (rc) {
        rf__iceberg_meta_free(next);
        goto out;
    }
    rc = rf__iceberg_table_commit(t, next, err);
    maybe_committed = rc != RF_OK && rc != RF_EBUSY;
    if (rc)
        goto out;
    res->snapshot_id = sid;
    res->files_rewritten = removed.data_files;
    res->files_added = added.data_files;
    res->rows_rewritten = rows;
    RF_LOG(RF_LOG_INFO, RF_MOD_ICEBERG,
           "table=%s.%s snapshot=%" PRId64 " files=%" PRId64 " new_files=%" PRId64 " rows=%" PRId64
           " compacted",
           t->ns, t->name, sid, removed.data_files, added.data_files, rows);
out:
    for (size_t i = 0; i < nmfs; i++)
        rf__iceberg_manifest_file_fini(&mfs[i]);
    json_decref(rest);
    rw_fini(&rw, rc != RF_OK && !maybe_committed);
    free(mpath_add);
    free(mpath_rest);
    free(list);
    free(replace);
    rf__iceberg_live_files_free(files, n);
    return rc;
}

rf_rc rf_iceberg_history_compact(rf_iceberg_history_t *h, int64_t target_bytes,
                                 rf_iceberg_maint_result_t *res, rf_err_t *err)
{
    rf_iceberg_table_t *t = rf__iceberg_history_table(h);
    const rf_conf_t *cfg = rf__iceberg_history_conf(h);
    rf_rc rc = RF_OK;
    result_init(res);
    if (target_bytes <= 0)
        target_bytes = cfg->iceberg_target_file_size;
    for (int attempt = 0; attempt < MAINT_CAS_ATTEMPTS; attempt++) {
        rc = compact_once(t, cfg, target_bytes, res, err);
        if (rc != RF_EBUSY)
            break;
        RF_LOG(RF_LOG_INFO, RF_MOD_ICEBERG, "attempt=%d compaction lost a commit race; again",
               attempt + 1);
        rf_err_clear(err);
    }
    return rc;
}
