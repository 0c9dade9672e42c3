/* index_vectors.c - the in-memory vector index (FAISS IndexIDMap2 over IndexFlatIP, ids =
 * the store's stable vids, through the FAISS C API only) and top-k search.
 *
 * Upholds INVARIANT(index-is-a-view): every mutation follows a committed store change,
 * and a failed mutation is repaired by rebuilding from the store.  Upholds
 * INVARIANT(one-record-per-key) in search: hits are re-read from the store, so a deleted
 * or superseded version is never returned.  Threads: see index_int.h (vec_lock).
 */
#include "index/index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/MetaIndexes_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/impl/AuxIndexStructures_c.h>
#include <faiss/c_api/index_io_c.h>

#include "index/index_int.h"

/* ==== FAISS primitives ==== */

static rf_rc faiss_fail(rf_err_t *err, const char *what)
{
    const char *m = faiss_get_last_error();
    return rf_err_set(err, RF_EINDEX, "faiss %s: %s", what, m ? m : "unknown error");
}

rf_rc rf__index_vec_new(int dim, FaissIndex **out, rf_err_t *err)
{
    FaissIndexFlatIP *flat = NULL;
    FaissIndexIDMap2 *map = NULL;
    *out = NULL;
    if (faiss_IndexFlatIP_new_with(&flat, dim))
        return faiss_fail(err, "IndexFlatIP");
    if (faiss_IndexIDMap2_new(&map, (FaissIndex *)flat)) {
        faiss_Index_free((FaissIndex *)flat);
        return faiss_fail(err, "IndexIDMap2");
    }
    /* The map owns the flat index from here on: freeing the map frees both. */
    faiss_IndexIDMap2_set_own_fields(map, 1);
    *out = (FaissIndex *)map;
    return RF_OK;
}

void rf__index_vec_free(FaissIndex *vec)
{
    if (vec)
        faiss_Index_free(vec);
}

rf_rc rf__index_vec_add(FaissIndex *vec, size_t n, const float *vecs, const int64_t *ids,
                        rf_err_t *err)
{
    if (n && faiss_Index_add_with_ids(vec, (idx_t)n, vecs, ids))
        return faiss_fail(err, "add_with_ids");
    return RF_OK;
}

rf_rc rf__index_vec_remove(FaissIndex *vec, size_t n, const int64_t *ids, rf_err_t *err)
{
    FaissIDSelectorBatch *sel = NULL;
    size_t removed = 0;
    rf_rc rc = RF_OK;
    if (!n)
        return RF_OK;
    if (faiss_IDSelectorBatch_new(&sel, n, ids))
        return faiss_fail(err, "IDSelectorBatch");
    if (faiss_Index_remove_ids(vec, (FaissIDSelector *)sel, &removed))
        rc = faiss_fail(err, "remove_ids");
    faiss_IDSelector_free((FaissIDSelector *)sel);
    return rc;
}

static rf_rc scan_add(void *opaque, size_t n, const float *vecs, const int64_t *ids, rf_err_t *err)
{
    return rf__index_vec_add(opaque, n, vecs, ids, err);
}

rf_rc rf__index_vec_rebuild(rf_index_t *ix, rf_err_t *err)
{
    FaissIndex *fresh = NULL, *old;
    int64_t cnt = 0;
    rf_rc rc;
    /* Built aside, from the store alone, then swapped in: searches keep using the old
     * index meanwhile. */
    if ((rc = rf__index_vec_new(ix->dim, &fresh, err)))
        return rc;
    if ((rc = rf__index_store_scan_records(ix, -1, 4096, scan_add, fresh, &cnt, err))) {
        rf__index_vec_free(fresh);
        return rc;
    }
    pthread_rwlock_wrlock(&ix->vec_lock);
    old = ix->vec;
    ix->vec = fresh;
    ix->vec_seq = ix->wseq;
    ix->vec_broken = 0;
    rf__index_pos_publish_locked(ix);
    pthread_rwlock_unlock(&ix->vec_lock);
    rf__index_vec_free(old);
    RF_LOG(RF_LOG_INFO, RF_MOD_INDEX, "seq=%lld records=%lld rebuilt vector index from store",
           (long long)ix->wseq, (long long)cnt);
    return RF_OK;
}

rf_rc rf__index_vec_update(rf_index_t *ix, const int64_t *rm, size_t rm_n, const float *add,
                           const int64_t *add_ids, size_t add_n, int64_t seq, rf_err_t *err)
{
    rf_rc rc = RF_OK;
    rf_err_t ferr;
    /* vec_broken is written only by this (writer) thread. */
    if (!ix->vec_broken) {
        /* INVARIANT(index-is-a-view): the exclusive lock covers only the in-memory FAISS
         * mutation; the store I/O of the batch is already done.  Searches see the index
         * either before or after the whole batch, with vec_seq to match. */
        pthread_rwlock_wrlock(&ix->vec_lock);
        rc = rf__index_vec_remove(ix->vec, rm_n, rm, &ferr);
        if (!rc)
            rc = rf__index_vec_add(ix->vec, add_n, add, add_ids, &ferr);
        if (!rc) {
            ix->vec_seq = seq;
            rf__index_pos_publish_locked(ix);
        }
        pthread_rwlock_unlock(&ix->vec_lock);
        if (!rc)
            return RF_OK;
        RF_LOG(RF_LOG_ERROR, RF_MOD_INDEX, "seq=%lld vector update failed, rebuilding: %s",
               (long long)seq, ferr.msg);
    }
    if ((rc = rf__index_vec_rebuild(ix, err))) {
        pthread_rwlock_wrlock(&ix->vec_lock);
        ix->vec_broken = 1;
        pthread_rwlock_unlock(&ix->vec_lock);
        RF_LOG(RF_LOG_ERROR, RF_MOD_INDEX,
               "seq=%lld vector index rebuild failed, searches fail until one succeeds",
               (long long)seq);
    }
    return rc;
}

/* ==== Serialisation ==== */

rf_rc rf__index_vec_save(rf_index_t *ix, size_t reserve, char **buf, size_t *len, int64_t *seq,
                         rf_err_t *err)
{
    char *mem = NULL;
    size_t cap, ntotal;
    rf_rc rc = RF_OK;
    *buf = NULL;
    *len = 0;
    pthread_rwlock_rdlock(&ix->vec_lock);
    ntotal = ix->vec ? (size_t)faiss_Index_ntotal(ix->vec) : 0;
    pthread_rwlock_unlock(&ix->vec_lock);
    /* The serialisation is the codes (dim floats per vector) plus the id map (8 bytes per
     * vector) plus small headers.  The buffer is sized and touched before the lock is
     * taken, and the unbuffered memory stream makes the copy one memcpy per FAISS
     * write: measured 0.02 s instead of 0.4-1 s (open_memstream) at 100k x 384, which
     * is time apply would wait.  If the index grew past the estimate meanwhile, the
     * write fails short and is retried with a bigger buffer. */
    cap = reserve + ntotal * ((size_t)ix->dim * sizeof(float) + 8);
    cap += cap / 8 + ((size_t)1 << 20);
    for (int attempt = 0;; attempt++) {
        FILE *fp;
        long pos;
        int64_t t0;
        int frc;
        mem = rf_xmalloc(cap);
        memset(mem, 0, cap);
        fp = fmemopen(mem + reserve, cap - reserve, "w");
        if (!fp) {
            rc = rf_err_sys(err, RF_ENOMEM, "fmemopen");
            break;
        }
        setvbuf(fp, NULL, _IONBF, 0);
        /* Shared lock: searches go on while the index is copied out; only apply waits. */
        pthread_rwlock_rdlock(&ix->vec_lock);
        t0 = rf_mono_us();
        if (ix->vec_broken) {
            pthread_rwlock_unlock(&ix->vec_lock);
            fclose(fp);
            rc = rf_err_set(err, RF_EINDEX, "vector index is broken, nothing to checkpoint");
            break;
        }
        frc = faiss_write_index(ix->vec, fp);
        *seq = ix->vec_seq;
        pthread_rwlock_unlock(&ix->vec_lock);
        RF_LOG(RF_LOG_DEBUG, RF_MOD_INDEX, "seq=%lld vectors=%zu locked_us=%lld serialised",
               (long long)*seq, ntotal, (long long)(rf_mono_us() - t0));
        pos = ftell(fp);
        fclose(fp);
        if (!frc && pos >= 0 && (size_t)pos < cap - reserve) {
            *buf = mem;
            *len = reserve + (size_t)pos;
            return RF_OK;
        }
        free(mem);
        mem = NULL;
        if (attempt == 2) {
            rc = faiss_fail(err, "write_index");
            break;
        }
        cap *= 2;
    }
    free(mem);
    return rc;
}

rf_rc rf__index_vec_load(const void *data, size_t len, int dim, FaissIndex **out, rf_err_t *err)
{
    FaissIndex *vec = NULL;
    rf_rc rc = RF_OK;
    FILE *fp;
    *out = NULL;
    if (!len)
        return rf_err_set(err, RF_ECORRUPT, "empty vector index");
    fp = fmemopen((void *)data, len, "rb");
    if (!fp)
        return rf_err_sys(err, RF_ENOMEM, "fmemopen");
    if (faiss_read_index(fp, 0, &vec)) {
        /* The bytes passed their hash, so FAISS rejecting them means a format we
         * cannot read: the checkpoint is unusable, like a corrupt one. */
        faiss_fail(err, "read_index");
        rc = RF_ECORRUPT;
        if (err)
            err->code = rc;
    }
    fclose(fp);
    if (rc)
        return rc;
    if (!faiss_IndexIDMap2_cast(vec))
        rc = rf_err_set(err, RF_ECORRUPT, "vector index is not an IndexIDMap2");
    else if (faiss_Index_d(vec) != dim)
        rc = rf_err_set(err, RF_ECORRUPT, "vector index has dim %d, expected %d",
                        faiss_Index_d(vec), dim);
    else if (faiss_Index_metric_type(vec) != METRIC_INNER_PRODUCT)
        rc = rf_err_set(err, RF_ECORRUPT, "vector index metric is not inner product");
    if (rc) {
        rf__index_vec_free(vec);
        return rc;
    }
    *out = vec;
    return RF_OK;
}

static int id_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

rf_rc rf__index_vec_ids(rf_index_t *ix, int64_t **ids, size_t *n, int64_t *seq, rf_err_t *err)
{
    idx_t *map = NULL;
    size_t cnt = 0;
    int64_t *out;
    FaissIndexIDMap2 *m;
    *ids = NULL;
    *n = 0;
    pthread_rwlock_rdlock(&ix->vec_lock);
    m = faiss_IndexIDMap2_cast(ix->vec);
    if (!m) {
        pthread_rwlock_unlock(&ix->vec_lock);
        return rf_err_set(err, RF_EINDEX, "vector index is not an IndexIDMap2");
    }
    faiss_IndexIDMap2_id_map(m, &map, &cnt);
    out = rf_xmalloc((cnt ? cnt : 1) * sizeof(*out));
    if (cnt)
        memcpy(out, map, cnt * sizeof(*out));
    if (seq)
        *seq = ix->vec_seq;
    pthread_rwlock_unlock(&ix->vec_lock);
    qsort(out, cnt, sizeof(*out), id_cmp);
    *ids = out;
    *n = cnt;
    return RF_OK;
}

/* ==== Search ==== */

typedef struct ranked {
    float score;
    size_t pos;
} ranked_t;

static int ranked_cmp(const void *a, const void *b)
{
    const ranked_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static void hit_fini(rf_index_hit_t *h)
{
    free(h->id);
    free(h->text);
    free(h->metadata_json);
    free(h->label);
    free(h->tenant);
    free(h->topic);
    memset(h, 0, sizeof(*h));
}

void rf_index_results_fini(rf_index_results_t *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->cnt; i++)
        hit_fini(&res->hits[i]);
    free(res->hits);
    res->hits = NULL;
    res->cnt = 0;
    rf_index_position_fini(&res->pos);
}

void rf_index_position_fini(rf_index_position_t *pos)
{
    if (!pos)
        return;
    for (size_t i = 0; i < pos->offset_cnt; i++)
        free((char *)pos->offsets[i].topic);
    free(pos->offsets);
    memset(pos, 0, sizeof(*pos));
}

/* Copies src (topics included) into an empty dst. */
static void position_copy(rf_index_position_t *dst, const rf_index_position_t *src)
{
    *dst = *src;
    dst->offsets = rf_xmalloc((src->offset_cnt ? src->offset_cnt : 1) * sizeof(*dst->offsets));
    for (size_t i = 0; i < src->offset_cnt; i++) {
        dst->offsets[i] = src->offsets[i];
        dst->offsets[i].topic = rf_xstrdup(src->offsets[i].topic);
    }
}

void rf__index_pos_publish_locked(rf_index_t *ix)
{
    rf_index_position_t next = {0};
    /* The committed offsets are those of the store state vec_seq reflects: the writer
     * updates the mirror before it mutates `vec`, and holds vec_lock now. */
    pthread_mutex_lock(&ix->stat_mu);
    next.seq = ix->vec_seq;
    next.newest_event_time_ms = ix->newest_event_ms;
    next.offset_cnt = ix->off_cnt;
    next.offsets = rf_xmalloc((ix->off_cnt ? ix->off_cnt : 1) * sizeof(*next.offsets));
    for (size_t i = 0; i < ix->off_cnt; i++) {
        next.offsets[i].topic = rf_xstrdup(ix->offs[i].topic);
        next.offsets[i].partition = ix->offs[i].partition;
        next.offsets[i].next_offset = ix->offs[i].next_offset;
    }
    pthread_mutex_unlock(&ix->stat_mu);
    pthread_mutex_lock(&ix->pos_mu);
    rf_index_position_fini(&ix->pub);
    ix->pub = next;
    pthread_cond_broadcast(&ix->pos_cond);
    pthread_mutex_unlock(&ix->pos_mu);
}

void rf_index_position_get(rf_index_t *ix, rf_index_position_t *pos)
{
    pthread_mutex_lock(&ix->pos_mu);
    position_copy(pos, &ix->pub);
    pthread_mutex_unlock(&ix->pos_mu);
}

/* 1 when pub satisfies the request.  Caller holds pos_mu. */
static int position_reached(const rf_index_position_t *pub, int64_t min_seq,
                            const rf_index_offset_t *want, size_t want_cnt)
{
    if (min_seq >= 0 && pub->seq < min_seq)
        return 0;
    for (size_t i = 0; i < want_cnt; i++) {
        int64_t have = -1;
        for (size_t j = 0; j < pub->offset_cnt; j++)
            if (pub->offsets[j].partition == want[i].partition &&
                !strcmp(pub->offsets[j].topic, want[i].topic))
                have = pub->offsets[j].next_offset;
        if (have < want[i].next_offset)
            return 0;
    }
    return 1;
}

rf_rc rf_index_position_wait(rf_index_t *ix, int64_t min_seq, const rf_index_offset_t *want,
                             size_t want_cnt, int64_t timeout_ms)
{
    struct timespec deadline;
    rf_rc rc = RF_OK;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)(timeout_ms / 1000);
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ix->pos_mu);
    while (!position_reached(&ix->pub, min_seq, want, want_cnt)) {
        if (pthread_cond_timedwait(&ix->pos_cond, &ix->pos_mu, &deadline) == ETIMEDOUT &&
            !position_reached(&ix->pub, min_seq, want, want_cnt)) {
            rc = RF_ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&ix->pos_mu);
    return rc;
}

rf_rc rf_index_search(rf_index_t *ix, const float *vec, int k, rf_index_results_t *res,
                      rf_err_t *err)
{
    float *dist = NULL;
    idx_t *labels = NULL;
    rf_index_hit_t *hits = NULL;
    ranked_t *order = NULL;
    size_t got = 0, want, kk = 0;
    int64_t seq = 0;
    rf_rc rc = RF_OK;
    if (res)
        memset(res, 0, sizeof(*res));
    if (!ix || !vec || !res)
        return rf_err_set(err, RF_EINVAL, "rf_index_search: NULL argument");
    if (k <= 0)
        return rf_err_set(err, RF_EINVAL, "k=%d: must be at least 1", k);
    if (k > RF__INDEX_K_MAX)
        return rf_err_set(err, RF_ETOOBIG, "k=%d: at most %d", k, RF__INDEX_K_MAX);
    /* Ask FAISS for a few more than k: hits deleted between the FAISS search and the
     * store read are dropped, and k results should still come back when k records exist.
     * When too many were dropped, search again with a larger margin. */
    want = (size_t)k + 8 + (size_t)k / 4;
    for (int attempt = 0;; attempt++) {
        size_t ntotal, valid = 0;
        int frc = 0;
        pthread_rwlock_rdlock(&ix->vec_lock);
        if (ix->vec_broken) {
            pthread_rwlock_unlock(&ix->vec_lock);
            rc = rf_err_set(err, RF_EINDEX, "vector index unavailable after a failed rebuild");
            goto out;
        }
        ntotal = (size_t)faiss_Index_ntotal(ix->vec);
        seq = ix->vec_seq;
        /* The position is taken with the FAISS state it describes: the writer publishes
         * only while it holds vec_lock exclusively. */
        rf_index_position_fini(&res->pos);
        rf_index_position_get(ix, &res->pos);
        kk = want < ntotal ? want : ntotal;
        if (kk) {
            dist = rf_xrealloc(dist, kk * sizeof(*dist));
            labels = rf_xrealloc(labels, kk * sizeof(*labels));
            frc = faiss_Index_search(ix->vec, 1, vec, (idx_t)kk, dist, labels);
        }
        pthread_rwlock_unlock(&ix->vec_lock);
        if (frc) {
            rc = faiss_fail(err, "search");
            goto out;
        }
        /* Flat search fills -1 past the end; keep the real hits in order. */
        for (size_t i = 0; i < kk; i++) {
            if (labels[i] >= 0) {
                labels[valid] = labels[i];
                dist[valid] = dist[i];
                valid++;
            }
        }
        hits = rf_xcalloc(valid ? valid : 1, sizeof(*hits));
        if ((rc = rf__index_store_hits(ix, vec, labels, dist, valid, seq, hits, &got, err)))
            goto out;
        if (got >= (size_t)k || kk >= ntotal || attempt == 3)
            break;
        for (size_t i = 0; i < got; i++)
            hit_fini(&hits[i]);
        free(hits);
        hits = NULL;
        want = want * 2 + (valid - got);
    }
    /* Rescored hits may have moved: order by score, FAISS order among equals. */
    order = rf_xmalloc((got ? got : 1) * sizeof(*order));
    for (size_t i = 0; i < got; i++) {
        order[i].score = hits[i].score;
        order[i].pos = i;
    }
    qsort(order, got, sizeof(*order), ranked_cmp);
    res->cnt = got < (size_t)k ? got : (size_t)k;
    res->hits = rf_xcalloc(res->cnt ? res->cnt : 1, sizeof(*res->hits));
    for (size_t i = 0; i < got; i++) {
        if (i < res->cnt)
            res->hits[i] = hits[order[i].pos];
        else
            hit_fini(&hits[order[i].pos]);
    }
    res->seq = seq;
    got = 0;
out:
    if (rc)
        rf_index_position_fini(&res->pos);
    if (hits) {
        for (size_t i = 0; i < got; i++)
            hit_fini(&hits[i]);
        free(hits);
    }
    free(order);
    free(dist);
    free(labels);
    return rc;
}
