/* index_recent.c - the records written most recently, newest first, with a snippet of
 * their text: what the status page lists to show that changes arrive.  It reads the
 * store through a read connection (records by seq, which is indexed) and so never waits
 * for the writer.  Upholds INVARIANT(fresh-is-measurable): the list shows what the store
 * has applied, with each record's store sequence and update time.
 */
#include "index/index.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "index/index_int.h"

#define RECENT_MAX  100
#define SNIPPET_MAX 1000

/* A column as a JSON string, or null (NULL, or text that is not UTF-8). */
static json_t *col_str(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    json_t *j = s ? json_stringn(s, (size_t)sqlite3_column_bytes(st, i)) : NULL;
    return j ? j : json_null();
}

rf_rc rf_index_recent_json(rf_index_t *ix, size_t n, size_t snippet_chars, char **json,
                           rf_err_t *err)
{
    rf__index_rconn_t *c = NULL;
    sqlite3_stmt *st = NULL;
    json_t *arr = NULL;
    rf_rc rc;
    int src, broken = 0;
    if (json)
        *json = NULL;
    if (!ix || !json)
        return rf_err_set(err, RF_EINVAL, "rf_index_recent_json: NULL argument");
    if (n < 1 || n > RECENT_MAX)
        return rf_err_set(err, RF_EINVAL, "recent records: n=%zu must be 1..%d", n, RECENT_MAX);
    if (snippet_chars < 1 || snippet_chars > SNIPPET_MAX)
        return rf_err_set(err, RF_EINVAL, "recent records: snippet of %zu characters, 1..%d",
                          snippet_chars, SNIPPET_MAX);
    /* The newest changelog rows that are some record's current version: with no record
     * left, that would read the whole history to find none. */
    if (rf_index_record_count(ix) == 0) {
        *json = rf_xstrdup("[]");
        return RF_OK;
    }
    if ((rc = rf__index_rconn_get(ix, &c, err)))
        return rc;
    /* substr and length count characters on text, so a snippet never splits one. */
    src = sqlite3_prepare_v2(c->db,
                             "SELECT r.id, r.source, r.tenant, r.updated_at_ms, r.seq,"
                             " substr(r.text, 1, ?2), length(r.text) > ?2 FROM changelog c"
                             " CROSS JOIN records r ON r.vid = c.vid AND r.seq = c.seq"
                             " ORDER BY c.seq DESC LIMIT ?1",
                             -1, &st, NULL);
    if (src != SQLITE_OK) {
        rc = rf__index_db_fail(c->db, src, err, "prepare the recent records");
        broken = 1;
        goto out;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)n);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)snippet_chars);
    arr = json_array();
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_object();
        json_object_set_new(o, "id", col_str(st, 0));
        json_object_set_new(o, "source", col_str(st, 1));
        json_object_set_new(o, "tenant", col_str(st, 2));
        json_object_set_new(o, "updated_at_ms", json_integer(sqlite3_column_int64(st, 3)));
        json_object_set_new(o, "seq", json_integer(sqlite3_column_int64(st, 4)));
        json_object_set_new(o, "snippet", col_str(st, 5));
        json_object_set_new(o, "truncated", json_boolean(sqlite3_column_int(st, 6)));
        json_array_append_new(arr, o);
    }
    if (src != SQLITE_DONE) {
        rc = rf__index_db_fail(c->db, src, err, "read the recent records");
        broken = 1;
        goto out;
    }
    *json = json_dumps(arr, JSON_COMPACT);
    if (!*json)
        rc = rf_err_set(err, RF_ENOMEM, "recent records: cannot serialise");
out:
    json_decref(arr);
    sqlite3_finalize(st);
    rf__index_rconn_put(ix, c, broken);
    return rc;
}
