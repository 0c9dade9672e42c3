/* iceberg.h - the public face of iceberg/: the exporter that turns the store's changelog
 * into snapshots of an Iceberg table (Parquet data files, Avro manifests, a SQLite
 * catalog with the JDBC schema), the audit queries of `ragfeed history`, and table
 * maintenance (snapshot expiry, orphan file removal, compaction).
 *
 * INVARIANT(history-exported-once): every changelog row reaches the table exactly once.
 * Each snapshot's summary carries `ragfeed.seq` (the highest exported store seq) and
 * `ragfeed.offsets` (the Kafka offsets it corresponds to); the exporter reads its start
 * from the table itself and commits by compare-and-swap, so a crash or a lost race
 * leaves unreferenced files at most, never duplicates or gaps.
 *
 * The store is read only through index/index.h's changelog reader.
 */
#ifndef RF_ICEBERG_H
#define RF_ICEBERG_H

#include "core/core.h"

/* ==== Exporter ==== */

typedef struct rf_iceberg_exporter rf_iceberg_exporter_t;

/* Starts the exporter on its own thread.  It resolves the table from cfg (iceberg.table
 * under iceberg.warehouse, default `<state.dir>/warehouse`; catalog iceberg.catalog,
 * default `<state.dir>/catalog.db`, rows named iceberg.catalog.name), creates the
 * namespace and table when missing, evolves the schema when iceberg.columns or
 * iceberg.include.vectors ask for columns the table lacks (and adds the base columns
 * that a table made by an older release lacks), and opens the store's changelog
 * (`<state.dir>/store.db`, which must exist: start it after rf_index_open).
 * Then, every iceberg.commit.interval.ms or as soon as iceberg.commit.rows rows are
 * waiting, it appends one snapshot.  Rows that a model generation switch wrote (a
 * re-embedding or a rollback) never share a snapshot with rows of events: a commit is
 * cut where the cause changes, the rest follows at once, and the summary says which
 * it is (ragfeed.cause = events | reembed; a reembed snapshot also carries
 * ragfeed.embedding-generation, the generation of its vectors).  Failures are retried
 * with backoff and counted; see rf_iceberg_exporter_unready.
 * cfg is borrowed and must outlive the exporter.  When iceberg.enabled is false, *out is
 * set to NULL and RF_OK returned (the callbacks below accept NULL).
 * Errors: RF_ECONFIG (bad iceberg.* values), RF_EUNAVAIL (catalog cannot be opened or
 * the table created), RF_ENOTFOUND (no store under state.dir), RF_ECORRUPT (the table's
 * metadata is unreadable).  Caller frees with rf_iceberg_exporter_stop().  Any thread. */
rf_rc rf_iceberg_exporter_start(const rf_conf_t *cfg, rf_iceberg_exporter_t **out, rf_err_t *err);

/* Asks the exporter for a final export of everything the store holds now (bounded to
 * 30 s; it stops between commits when the time is up or at the first failure), stops
 * the thread and frees.  NULL is a no-op.  Not from the exporter's own callbacks. */
void rf_iceberg_exporter_stop(rf_iceberg_exporter_t *exp);

/* Wakes the exporter to export now (whatever the interval) and waits until the table
 * holds every changelog row up to min_seq (< 0: the store's seq at the call), or
 * timeout_ms passes.  RF_OK, RF_ETIMEDOUT, or RF_ESTOPPED after stop.  For tests and
 * clean handovers.  Any thread. */
rf_rc rf_iceberg_exporter_flush(rf_iceberg_exporter_t *exp, int64_t min_seq, int64_t timeout_ms,
                                rf_err_t *err);

/* The three callbacks below take the exporter as `void *` so that they plug into
 * serve.h's rf_serve_section_t as they are; NULL means a disabled exporter.  They are
 * thread-safe and never wait for an export in progress. */

/* A JSON object text for /v1/status: enabled, table, catalog, snapshot_id (last committed
 * or null), exported_seq, store_seq, lag_seq, rows_exported, changelog_gap_rows (seqs
 * gone from the store before export), files_written, bytes_written, commits,
 * commit_failures, consecutive_failures, last_error (or null), last_commit_ms (or null),
 * last_commit_duration_ms.  Caller frees with free(). */
char *rf_iceberg_exporter_status_json(void *exp);

/* Appends Prometheus text lines (# HELP / # TYPE included): ragfeed_iceberg_commits_total,
 * ragfeed_iceberg_rows_exported_total, ragfeed_iceberg_files_written_total,
 * ragfeed_iceberg_bytes_written_total, ragfeed_iceberg_commit_failures_total,
 * ragfeed_iceberg_consecutive_failures, ragfeed_iceberg_exported_seq,
 * ragfeed_iceberg_lag_seq, ragfeed_iceberg_last_commit_timestamp_seconds,
 * ragfeed_iceberg_changelog_gap_rows_total and the
 * ragfeed_iceberg_commit_duration_seconds histogram.  Nothing for NULL. */
void rf_iceberg_exporter_metrics(void *exp, rf_buf_t *out);

/* NULL while fewer than iceberg.max.failures commits failed in a row; otherwise a
 * reason ("iceberg: 3 commits failed in a row: <last error>") written to buf. */
const char *rf_iceberg_exporter_unready(void *exp, char *buf, size_t n);

/* One-shot export without a thread (`ragfeed history export`): creates the table when
 * missing, then commits snapshots of at most iceberg.commit.rows rows until the table
 * holds every changelog row up to the store's seq at the call.  *rows and *commits (may
 * be NULL) count what this call added.  Errors as rf_iceberg_exporter_start, plus the
 * first failed commit's. */
rf_rc rf_iceberg_export_run(const rf_conf_t *cfg, int64_t *rows, int64_t *commits, rf_err_t *err);

/* ==== History queries and maintenance ==== */

typedef struct rf_iceberg_history rf_iceberg_history_t;

/* Receives one JSON text line (no newline) of output; borrowed for the call.  A return
 * other than RF_OK stops the query, which returns that code. */
typedef rf_rc (*rf_iceberg_line_fn)(void *opaque, const char *line, size_t len);

/* Opens the catalog and table named by cfg for reading and maintenance; never creates
 * either.  RF_ENOTFOUND (with the path or name in err) when the catalog file or the
 * table does not exist, RF_EUNAVAIL when the catalog cannot be opened, RF_ECORRUPT for
 * unreadable metadata.  Caller frees with rf_iceberg_history_close(). */
rf_rc rf_iceberg_history_open(const rf_conf_t *cfg, rf_iceberg_history_t **out, rf_err_t *err);
void rf_iceberg_history_close(rf_iceberg_history_t *h);

/* One line per snapshot, oldest first: {"snapshot_id","timestamp_ms","time","parent_id",
 * "operation","cause","embedding_generation","added_records","total_records",
 * "added_files","total_files","seq","offsets":{"topic/partition":next_offset},"current"}.
 * cause is "events" or "reembed" for the exporter's snapshots, null for others
 * (maintenance, older releases); embedding_generation is a reembed snapshot's
 * generation, else null. */
rf_rc rf_iceberg_history_snapshots(rf_iceberg_history_t *h, rf_iceberg_line_fn fn, void *opaque,
                                   rf_err_t *err);

/* Every version of record `id` in the current snapshot, in seq order: the row's columns
 * (vector only when with_vectors) with times as ISO-8601 UTC text and
 * "kafka":{"topic","partition","offset"}.  Files whose id bounds exclude id are skipped.
 * RF_ENOTFOUND when the table holds no version of id. */
rf_rc rf_iceberg_history_record(rf_iceberg_history_t *h, const char *id, int with_vectors,
                                rf_iceberg_line_fn fn, void *opaque, rf_err_t *err);

/* Every row of a snapshot: snapshot_id >= 0 picks it, else the last snapshot committed at
 * or before as_of_ms (< 0: the current one).  Rows of the snapshot's schema, files in
 * seq order.  RF_ENOTFOUND when there is no such snapshot. */
rf_rc rf_iceberg_history_scan(rf_iceberg_history_t *h, int64_t snapshot_id, int64_t as_of_ms,
                              int with_vectors, rf_iceberg_line_fn fn, void *opaque, rf_err_t *err);

/* What a maintenance operation did. */
typedef struct rf_iceberg_maint_result {
    int64_t snapshot_id;       /* the snapshot it committed, -1 when none */
    int64_t snapshots_expired; /* expire */
    int64_t files_deleted;     /* expire, gc */
    int64_t bytes_deleted;
    int64_t files_rewritten; /* compact: small files replaced */
    int64_t files_added;     /* compact: files written */
    int64_t rows_rewritten;
} rf_iceberg_maint_result_t;

/* Removes from the metadata every snapshot committed before older_than_ms, except the
 * current one and the newest retain_last (>= 1), then deletes the manifest lists,
 * manifests and data files that only expired snapshots referenced.  Retried on
 * compare-and-swap conflicts.  RF_OK with nothing done when nothing is old enough. */
rf_rc rf_iceberg_history_expire(rf_iceberg_history_t *h, int64_t older_than_ms, int retain_last,
                                rf_iceberg_maint_result_t *res, rf_err_t *err);

/* Deletes every file under the table's location that no snapshot of the current
 * metadata references (data files, manifests, manifest lists), that is not the current
 * metadata file or one in its metadata-log, and whose modification time is more than
 * grace_ms ago (files of a commit in flight are younger).  dry_run counts only. */
rf_rc rf_iceberg_history_gc(rf_iceberg_history_t *h, int64_t grace_ms, int dry_run,
                            rf_iceberg_maint_result_t *res, rf_err_t *err);

/* Rewrites the current snapshot's data files smaller than target_bytes (<= 0: the
 * configured iceberg.target.file.size), in every day partition holding two or more, into
 * files of up to target_bytes, rows in seq order, and commits them as a `replace`
 * snapshot that keeps ragfeed.seq and ragfeed.offsets.  Row counts and values are
 * unchanged; the old files stay for older snapshots until expire.  Retried on
 * compare-and-swap conflicts. */
rf_rc rf_iceberg_history_compact(rf_iceberg_history_t *h, int64_t target_bytes,
                                 rf_iceberg_maint_result_t *res, rf_err_t *err);

/* ==== Option values ==== */

/* A point in time as history options take it: ISO-8601 UTC or with an offset
 * ("2024-05-01", "2024-05-01T12:00:00Z", "2024-05-01T12:00:00.250+02:00"; a time without
 * a zone is UTC), or milliseconds since the epoch.  RF_EINVAL otherwise. */
rf_rc rf_iceberg_time_parse(const char *s, int64_t *ms);

/* A duration: a non-negative number with a unit, ms, s, m, h, d or w ("90m", "7d").
 * RF_EINVAL otherwise. */
rf_rc rf_iceberg_duration_parse(const char *s, int64_t *ms);

#endif /* RF_ICEBERG_H */
