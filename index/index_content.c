/* index_content.c - the content-hash map: which records hold the vector of a text, so that
 * an unchanged text is never embedded twice.  The map lives beside the vector index (each
 * slot of a segment keeps the key of its record's content hash, and checkpoints store
 * them), because an index on the store's content_hash column cost every update two random
 * page writes, as many as the record itself.
 *
 * A key is the first 8 bytes of the BLAKE2b-256 hash; every candidate a key gives is read
 * back from the store and its full hash compared, so a shared key (or a record changed
 * since) only costs a read.  Threads: see index_int.h.
 */
#include "index/index.h"

#include <stdlib.h>
#include <string.h>

#include "index/index_int.h"

uint64_t rf__index_hkey(const uint8_t *hash)
{
    uint64_t k = 0;
    if (!hash)
        return 0;
    for (int i = 0; i < 8; i++)
        k |= (uint64_t)hash[i] << (8 * i);
    return k ? k : 1;
}

/* ==== The multimap ==== */

/* The key is already uniformly distributed (a cryptographic hash): its low bits index. */
static size_t home(const rf__index_hmap_t *m, uint64_t key)
{
    return (size_t)key & (m->cap - 1);
}

static void grow(rf__index_hmap_t *m)
{
    rf__index_hmap_t n = {0};
    n.cap = m->cap ? m->cap * 2 : 1024;
    n.keys = rf_xcalloc(n.cap, sizeof(*n.keys));
    n.vids = rf_xmalloc(n.cap * sizeof(*n.vids));
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i])
            rf__index_hmap_put(&n, m->keys[i], m->vids[i]);
    }
    free(m->keys);
    free(m->vids);
    *m = n;
}

void rf__index_hmap_put(rf__index_hmap_t *m, uint64_t key, int64_t vid)
{
    size_t i;
    if (!key)
        return;
    /* At most 7/8 full: linear probing stays short at that load with random keys. */
    if ((m->cnt + 1) * 8 > m->cap * 7)
        grow(m);
    for (i = home(m, key); m->keys[i]; i = (i + 1) & (m->cap - 1))
        ;
    m->keys[i] = key;
    m->vids[i] = vid;
    m->cnt++;
}

void rf__index_hmap_del(rf__index_hmap_t *m, uint64_t key, int64_t vid)
{
    size_t i, j;
    if (!key || !m->cap)
        return;
    for (i = home(m, key); m->keys[i]; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key && m->vids[i] == vid)
            break;
    }
    if (!m->keys[i])
        return;
    /* Backward shift: every entry after the hole whose probe passed through it moves back,
     * so that no search stops early at the hole (no tombstones to clean up later). */
    m->keys[i] = 0;
    m->cnt--;
    for (j = (i + 1) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
        size_t h = home(m, m->keys[j]);
        /* Entry j may fill the hole at i when its home is not within (i, j]. */
        if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
            m->keys[i] = m->keys[j];
            m->vids[i] = m->vids[j];
            m->keys[j] = 0;
            i = j;
        }
    }
}

size_t rf__index_hmap_find(const rf__index_hmap_t *m, uint64_t key, int64_t *out, size_t max)
{
    size_t n = 0;
    if (!key || !m->cap)
        return 0;
    for (size_t i = home(m, key); m->keys[i] && n < max; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key)
            out[n++] = m->vids[i];
    }
    return n;
}

void rf__index_hmap_free(rf__index_hmap_t *m)
{
    free(m->keys);
    free(m->vids);
    memset(m, 0, sizeof(*m));
}

size_t rf__index_hmap_bytes(const rf__index_hmap_t *m)
{
    return m->cap * (sizeof(*m->keys) + sizeof(*m->vids));
}

/* ==== Lookups ==== */

/* Candidates read back per lookup: more records than this with one text are rare, and
 * any of them answers. */
#define CAND_MAX 8

/* The vector of the first candidate whose stored hash is `hash` and whose vector has dim
 * floats: RF_OK, RF_ENOTFOUND, or a store error. */
static rf_rc read_candidates(rf__index_rconn_t *c, const int64_t *vids, size_t n,
                             const uint8_t hash[32], int dim, float *out, int *broken,
                             rf_err_t *err)
{
    sqlite3_stmt *st = NULL;
    rf_rc rc = RF_ENOTFOUND;
    int src = sqlite3_prepare_v2(c->db, "SELECT content_hash, vector FROM records WHERE vid = ?1",
                                 -1, &st, NULL);
    if (src != SQLITE_OK) {
        *broken = 1;
        return rf__index_db_fail(c->db, src, err, "prepare the content-hash lookup");
    }
    for (size_t i = 0; i < n && rc == RF_ENOTFOUND; i++) {
        sqlite3_bind_int64(st, 1, vids[i]);
        src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            const void *h = sqlite3_column_blob(st, 0);
            const void *v = sqlite3_column_blob(st, 1);
            size_t vn = (size_t)sqlite3_column_bytes(st, 1);
            if (h && sqlite3_column_bytes(st, 0) == 32 && memcmp(h, hash, 32) == 0 && v &&
                vn == (size_t)dim * sizeof(float)) {
                memcpy(out, v, vn);
                rc = RF_OK;
            }
        } else if (src != SQLITE_DONE) {
            *broken = 1;
            rc = rf__index_db_fail(c->db, src, err, "look up vector by content hash");
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

rf_rc rf_index_vector_by_hash(rf_index_t *ix, const uint8_t hash[32], int dim, float *out,
                              rf_err_t *err)
{
    rf__index_rconn_t *c = NULL;
    sqlite3_stmt *st = NULL;
    int64_t vids[CAND_MAX];
    size_t n;
    rf_rc rc;
    int src, broken = 0;
    if (!ix || !hash || !out)
        return rf_err_set(err, RF_EINVAL, "rf_index_vector_by_hash: NULL argument");
    if (dim <= 0)
        return RF_ENOTFOUND;
    pthread_mutex_lock(&ix->hm_mu);
    n = rf__index_hmap_find(&ix->hmap, rf__index_hkey(hash), vids, CAND_MAX);
    pthread_mutex_unlock(&ix->hm_mu);
    /* A read connection, so that the lookup can run beside the writer's transaction. */
    if ((rc = rf__index_rconn_get(ix, &c, err)))
        return rc;
    rc = n ? read_candidates(c, vids, n, hash, dim, out, &broken, err) : RF_ENOTFOUND;
    if (rc != RF_ENOTFOUND)
        goto out;
    /* The second generation's vectors (a re-embedding) keep their index in the store: it
     * is written only while a migration runs. */
    src = sqlite3_prepare_v2(c->db,
                             "SELECT vector FROM gen_vectors WHERE content_hash = ?1"
                             " AND length(vector) = ?2 * 4 LIMIT 1",
                             -1, &st, NULL);
    if (src != SQLITE_OK) {
        rc = rf__index_db_fail(c->db, src, err, "prepare the content-hash lookup");
        broken = 1;
        goto out;
    }
    sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, dim);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        const void *blob = sqlite3_column_blob(st, 0);
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        if (blob && len == (size_t)dim * sizeof(float)) {
            memcpy(out, blob, len);
            rc = RF_OK;
        }
    } else if (src != SQLITE_DONE) {
        rc = rf__index_db_fail(c->db, src, err, "look up vector by content hash");
        broken = 1;
    }
out:
    sqlite3_finalize(st);
    rf__index_rconn_put(ix, c, broken);
    return rc;
}

/* ==== Keys of slots read from an older checkpoint ==== */

rf_rc rf__index_hkeys_fill(rf_index_t *ix, rf_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int64_t t0 = rf_mono_ms(), cnt = 0;
    rf_rc rc = RF_OK;
    int src;
    if (!ix->hkeys_fill)
        return RF_OK;
    if (sqlite3_prepare_v2(ix->wdb,
                           "SELECT vid, content_hash FROM records WHERE content_hash IS NOT NULL",
                           -1, &st, NULL) != SQLITE_OK)
        return rf__index_db_fail(ix->wdb, sqlite3_errcode(ix->wdb), err, "read content hashes");
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *h = sqlite3_column_blob(st, 1);
        if (h && sqlite3_column_bytes(st, 1) == 32 &&
            rf__index_vec_set_hkey(ix, sqlite3_column_int64(st, 0), rf__index_hkey(h)))
            cnt++;
    }
    if (src != SQLITE_DONE)
        rc = rf__index_db_fail(ix->wdb, src, err, "read content hashes");
    sqlite3_finalize(st);
    if (!rc) {
        ix->hkeys_fill = 0;
        ix->hkeys_filled = cnt;
        RF_LOG(RF_LOG_INFO, RF_MOD_INDEX,
               "records=%lld ms=%lld content-hash keys read from the store (checkpoint of an"
               " older format)",
               (long long)cnt, (long long)(rf_mono_ms() - t0));
    }
    return rc;
}
