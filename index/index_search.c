/* index_search.c - filtered top-k over a snapshot of the segments: flat segments are
 * scanned exactly, sealed FAISS segments are searched with a bitmap selector of their live
 * (and, with a filter, matching) iids, a restrictive filter is searched exactly over the
 * matching vectors, and the candidates are merged by score and read from the store.  Also
 * the positions searches report and wait for.
 *
 * Upholds INVARIANT(one-record-per-key): a tombstoned iid never leaves FAISS (selector),
 * and hits are re-read from the store, so a deleted or superseded version is never
 * returned.  Upholds INVARIANT(fresh-is-measurable): a result carries the position of the
 * snapshot it searched.  Threads: any; see index_int.h.
 */
#include "index/index.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/error_c.h>

#include "index/index_faiss_compat.h"
#include "index/index_int.h"

/* ==== Results and positions ==== */

void rf__index_hit_fini(rf_index_hit_t *h)
{
    free(h->id);
    free(h->text);
    free(h->metadata_json);
    free(h->label);
    free(h->tenant);
    free(h->topic);
    free(h->vec);
    memset(h, 0, sizeof(*h));
}

void rf_index_results_fini(rf_index_results_t *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->cnt; i++)
        rf__index_hit_fini(&res->hits[i]);
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
    for (size_t i = 0; i < pos->lsn_cnt; i++)
        free((char *)pos->lsns[i].source);
    free(pos->lsns);
    memset(pos, 0, sizeof(*pos));
}

void rf__index_position_copy(rf_index_position_t *dst, const rf_index_position_t *src)
{
    *dst = *src;
    dst->offsets = rf_xmalloc((src->offset_cnt ? src->offset_cnt : 1) * sizeof(*dst->offsets));
    for (size_t i = 0; i < src->offset_cnt; i++) {
        dst->offsets[i] = src->offsets[i];
        dst->offsets[i].topic = rf_xstrdup(src->offsets[i].topic);
    }
    dst->lsns = rf_xmalloc((src->lsn_cnt ? src->lsn_cnt : 1) * sizeof(*dst->lsns));
    for (size_t i = 0; i < src->lsn_cnt; i++) {
        dst->lsns[i] = src->lsns[i];
        dst->lsns[i].source = rf_xstrdup(src->lsns[i].source);
    }
}

void rf__index_pos_publish_locked(rf_index_t *ix)
{
    rf_index_position_t next;
    /* `cur` changes only under w_mu, which the caller holds. */
    rf__index_position_copy(&next, &ix->cur->pos);
    pthread_mutex_lock(&ix->pos_mu);
    rf_index_position_fini(&ix->pub);
    ix->pub = next;
    pthread_cond_broadcast(&ix->pos_cond);
    pthread_mutex_unlock(&ix->pos_mu);
}

void rf_index_position_get(rf_index_t *ix, rf_index_position_t *pos)
{
    pthread_mutex_lock(&ix->pos_mu);
    rf__index_position_copy(pos, &ix->pub);
    pthread_mutex_unlock(&ix->pos_mu);
}

/* The highest LSN applied for source in pub, or -1.  pub->lsns is sorted by source. */
static int64_t position_lsn(const rf_index_position_t *pub, const char *source)
{
    size_t lo = 0, hi = pub->lsn_cnt;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(pub->lsns[mid].source, source);
        if (c == 0)
            return pub->lsns[mid].lsn;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* 1 when pub satisfies the request.  Caller holds pos_mu. */
static int position_reached(const rf_index_position_t *pub, int64_t min_seq,
                            const rf_index_offset_t *want, size_t want_cnt,
                            const rf_index_lsn_t *lsns, size_t lsn_cnt)
{
    for (size_t i = 0; i < lsn_cnt; i++)
        if (position_lsn(pub, lsns[i].source) < lsns[i].lsn)
            return 0;
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
    return rf_index_position_wait_lsn(ix, min_seq, want, want_cnt, NULL, 0, timeout_ms);
}

rf_rc rf_index_position_wait_lsn(rf_index_t *ix, int64_t min_seq, const rf_index_offset_t *want,
                                 size_t want_cnt, const rf_index_lsn_t *lsns, size_t lsn_cnt,
                                 int64_t timeout_ms)
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
    while (!position_reached(&ix->pub, min_seq, want, want_cnt, lsns, lsn_cnt)) {
        if (pthread_cond_timedwait(&ix->pos_cond, &ix->pos_mu, &deadline) == ETIMEDOUT &&
            !position_reached(&ix->pub, min_seq, want, want_cnt, lsns, lsn_cnt)) {
            rc = RF_ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&ix->pos_mu);
    return rc;
}

/* ==== Top-k candidates ==== */

typedef struct cand {
    float score;
    int64_t vid;
} cand_t;

/* A min-heap of the best `cap` candidates seen. */
typedef struct topk {
    cand_t *h;
    size_t n, cap;
} topk_t;

static int cand_worse(const cand_t *a, const cand_t *b)
{
    /* Ties order by vid so that results are deterministic. */
    return a->score < b->score || (a->score == b->score && a->vid > b->vid);
}

static void topk_push(topk_t *t, float score, int64_t vid)
{
    cand_t c = {score, vid};
    size_t i;
    if (t->n == t->cap) {
        if (!cand_worse(&t->h[0], &c))
            return;
        /* Replace the root and sift down. */
        i = 0;
        for (;;) {
            size_t l = 2 * i + 1, r = l + 1, m = i;
            const cand_t *mv = &c;
            if (l < t->n && cand_worse(&t->h[l], mv)) {
                m = l;
                mv = &t->h[l];
            }
            if (r < t->n && cand_worse(&t->h[r], mv))
                m = r;
            if (m == i)
                break;
            t->h[i] = t->h[m];
            i = m;
        }
        t->h[i] = c;
        return;
    }
    i = t->n++;
    while (i > 0 && cand_worse(&c, &t->h[(i - 1) / 2])) {
        t->h[i] = t->h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    t->h[i] = c;
}

static int cand_cmp(const void *a, const void *b)
{
    const cand_t *x = a, *y = b;
    if (cand_worse(x, y))
        return 1;
    if (cand_worse(y, x))
        return -1;
    return 0;
}

/* What one view contributes: its selected iids as a bitmap (NULL: the live bitmap) and,
 * for a filter, as a list. */
typedef struct vsel {
    uint8_t *bits; /* owned; NULL when the selection is the view's live bitmap */
    size_t *iids;  /* owned, filter only */
    size_t cnt;
} vsel_t;

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Selection through the segment's inverted index: the candidates of the EQ/IN condition
 * with the fewest postings, each then matched in full.  0 when no condition has keys (a
 * range-only filter): the caller scans. */
static int inv_select(const rf__index_view_t *v, vsel_t *s, const rf__index_filter_t *flt)
{
    const rf__index_inv_t *inv = v->seg->inv;
    size_t best = (size_t)-1, best_cnt = 0, n = 0, nk;
    const uint64_t *keys;
    uint32_t *cand;
    for (size_t i = 0; i < rf__index_filter_cond_cnt(flt); i++) {
        size_t cnt = 0;
        nk = rf__index_filter_cond_keys(flt, i, &keys);
        if (!nk)
            continue;
        for (size_t j = 0; j < nk; j++) {
            const uint32_t *p;
            cnt += rf__index_inv_lookup(inv, keys[j], &p);
        }
        if (best == (size_t)-1 || cnt < best_cnt) {
            best = i;
            best_cnt = cnt;
        }
    }
    if (best == (size_t)-1)
        return 0;
    cand = rf_xmalloc((best_cnt ? best_cnt : 1) * sizeof(*cand));
    nk = rf__index_filter_cond_keys(flt, best, &keys);
    for (size_t j = 0; j < nk; j++) {
        const uint32_t *p;
        size_t c = rf__index_inv_lookup(inv, keys[j], &p);
        if (c)
            memcpy(cand + n, p, c * sizeof(*p));
        n += c;
    }
    /* Several values (IN): their postings interleave. */
    if (nk > 1)
        qsort(cand, n, sizeof(*cand), u32_cmp);
    for (size_t i = 0; i < n; i++) {
        size_t j = cand[i];
        if (i && cand[i] == cand[i - 1])
            continue;
        if (j >= v->n || !rf__index_bit(v->live, j) ||
            !rf__index_filter_match(flt, v->seg->rows->attrs[j]))
            continue;
        s->bits[j >> 3] |= (uint8_t)(1u << (j & 7));
        s->iids[s->cnt++] = j;
    }
    free(cand);
    return 1;
}

static void select_views(const rf__index_snap_t *snap, const rf__index_filter_t *flt, vsel_t *sel,
                         size_t *total)
{
    *total = 0;
    for (size_t i = 0; i < snap->cnt; i++) {
        const rf__index_view_t *v = &snap->v[i];
        vsel_t *s = &sel[i];
        memset(s, 0, sizeof(*s));
        if (!flt) {
            s->cnt = v->live_n;
            *total += s->cnt;
            continue;
        }
        s->bits = rf_xcalloc((v->n + 7) / 8 + 1, 1);
        s->iids = rf_xmalloc((v->live_n ? v->live_n : 1) * sizeof(*s->iids));
        if (v->seg->inv && inv_select(v, s, flt)) {
            *total += s->cnt;
            continue;
        }
        for (size_t j = 0; j < v->n; j++) {
            if (!rf__index_bit(v->live, j) || !rf__index_filter_match(flt, v->seg->rows->attrs[j]))
                continue;
            s->bits[j >> 3] |= (uint8_t)(1u << (j & 7));
            s->iids[s->cnt++] = j;
        }
        *total += s->cnt;
    }
}

static int sel_has(const rf__index_view_t *v, const vsel_t *s, size_t j)
{
    if (s->bits)
        return (s->bits[j >> 3] >> (j & 7)) & 1;
    return rf__index_bit(v->live, j);
}

int rf__index_test_sq_off;
int64_t rf__index_sq_scanned, rf__index_sq_rescored;

/* An exact top-k through 8-bit codes (index_sq.c): every vector added gets bounds on its
 * score; those whose upper bound reaches both the k-th best lower bound of the scan and
 * the k-th best score found so far are kept, and at the end scored from their floats,
 * best upper bound first, until the next cannot enter.  The others score below k vectors
 * that are scored, so the top k is exactly what scoring every vector's floats gives. */
typedef struct sqc {
    double hi;
    const float *vec;
    int64_t vid;
} sqc_t;

typedef struct sqscan {
    const rf__index_sqq_t *qq;
    topk_t *t;
    topk_t lows; /* the best lower bounds */
    double thr;  /* no vector whose upper bound is below it can enter */
    sqc_t *c;
    size_t nc, cap;
    int64_t bounded;
} sqscan_t;

static int sqc_cmp(const void *a, const void *b)
{
    const sqc_t *x = a, *y = b;
    if (x->hi != y->hi)
        return x->hi > y->hi ? -1 : 1;
    return (x->vid > y->vid) - (x->vid < y->vid);
}

static void sqscan_begin(sqscan_t *sc, rf__index_sqq_t *qq, topk_t *t)
{
    memset(sc, 0, sizeof(*sc));
    sc->qq = qq;
    sc->t = t;
    sc->lows.cap = t->cap;
    sc->lows.h = rf_xmalloc((t->cap ? t->cap : 1) * sizeof(cand_t));
    sc->thr = t->n == t->cap ? (double)t->h[0].score : -INFINITY;
    sc->cap = 256;
    sc->c = rf_xmalloc(sc->cap * sizeof(*sc->c));
}

static void sqscan_add(sqscan_t *sc, const int8_t *codes, const rf__index_sqm_t *m,
                       const float *vec, int64_t vid)
{
    double lo, hi;
    sc->bounded++;
    rf__index_sq_bounds(sc->qq, codes, m, &lo, &hi);
    if (hi < sc->thr)
        return;
    topk_push(&sc->lows, (float)lo, vid);
    if (sc->lows.n == sc->lows.cap && (double)sc->lows.h[0].score > sc->thr) {
        /* float(lo) may exceed lo by half an ulp: step below it. */
        double l = nextafterf(sc->lows.h[0].score, -INFINITY);
        if (l > sc->thr)
            sc->thr = l;
    }
    if (sc->nc == sc->cap) {
        sc->cap *= 2;
        sc->c = rf_xrealloc(sc->c, sc->cap * sizeof(*sc->c));
    }
    sc->c[sc->nc].hi = hi;
    sc->c[sc->nc].vec = vec;
    sc->c[sc->nc++].vid = vid;
}

static void sqscan_end(sqscan_t *sc, const float *q, int dim)
{
    topk_t *t = sc->t;
    int64_t scored = 0;
    qsort(sc->c, sc->nc, sizeof(*sc->c), sqc_cmp);
    for (size_t i = 0; i < sc->nc; i++) {
        if (sc->c[i].hi < sc->thr || (t->n == t->cap && sc->c[i].hi < (double)t->h[0].score))
            break;
        topk_push(t, rf__index_dot(q, sc->c[i].vec, dim), sc->c[i].vid);
        scored++;
    }
    __atomic_add_fetch(&rf__index_sq_scanned, sc->bounded, __ATOMIC_RELAXED);
    __atomic_add_fetch(&rf__index_sq_rescored, scored, __ATOMIC_RELAXED);
    free(sc->lows.h);
    free(sc->c);
}

/* 1 when a scan into t can go through codes for this query (rounded here, once a
 * search). */
static int sq_on(rf__index_sqq_t *qq, const float *q, int dim, const topk_t *t)
{
    if (!t->cap || __atomic_load_n(&rf__index_test_sq_off, __ATOMIC_RELAXED))
        return 0;
    if (!qq->q)
        rf__index_sq_query_init(qq, q, dim);
    return qq->ok;
}

/* A flat view's selected iids, exactly, through its codes. */
static void view_exact_sq(const rf__index_view_t *v, const vsel_t *s, const float *q,
                          rf__index_sqq_t *qq, topk_t *t)
{
    const rf__index_seg_t *seg = v->seg;
    size_t dim = (size_t)seg->dim, cnt = s->iids ? s->cnt : v->n;
    sqscan_t sc;
    sqscan_begin(&sc, qq, t);
    for (size_t k = 0; k < cnt; k++) {
        size_t j = s->iids ? s->iids[k] : k;
        if (!s->iids && !sel_has(v, s, j))
            continue;
        sqscan_add(&sc, seg->codes + j * dim, &seg->sqm[j], seg->vecs + j * dim,
                   seg->rows->vids[j]);
    }
    sqscan_end(&sc, q, seg->dim);
}

/* Exact scores of the selected iids of one view. */
static rf_rc view_exact(const rf__index_view_t *v, const vsel_t *s, const float *q, int dim,
                        rf__index_sqq_t *qq, topk_t *t, rf_err_t *err)
{
    const rf__index_seg_t *seg = v->seg;
    float *buf = NULL;
    rf_rc rc = RF_OK;
    if (seg->kind == RF__SEG_FLAT && seg->codes && sq_on(qq, q, dim, t)) {
        view_exact_sq(v, s, q, qq, t);
        return RF_OK;
    }
    if (seg->kind == RF__SEG_FLAT) {
        if (s->iids) {
            for (size_t k = 0; k < s->cnt; k++) {
                size_t j = s->iids[k];
                topk_push(t, rf__index_dot(q, seg->vecs + j * (size_t)dim, dim),
                          seg->rows->vids[j]);
            }
        } else {
            for (size_t j = 0; j < v->n; j++) {
                if (sel_has(v, s, j))
                    topk_push(t, rf__index_dot(q, seg->vecs + j * (size_t)dim, dim),
                              seg->rows->vids[j]);
            }
        }
        return RF_OK;
    }
    buf = rf_xmalloc((size_t)dim * sizeof(float));
    for (size_t k = 0, j = 0; !rc && (s->iids ? k < s->cnt : j < v->n); k++, j++) {
        size_t iid = s->iids ? s->iids[k] : j;
        if (!s->iids && !sel_has(v, s, iid))
            continue;
        if (!(rc = rf__index_seg_vector(seg, iid, buf, err)))
            topk_push(t, rf__index_dot(q, buf, dim), seg->rows->vids[iid]);
    }
    free(buf);
    return rc;
}

int rf__index_test_faiss_ivf;

/* The lists an IVF search probes, per distinct set of centroids: interim indexes share
 * theirs (rf__index_seg_t.qhash), so one query scores them once for all. */
#define PROBE_SETS 4

typedef struct probes {
    uint64_t qhash[PROBE_SETS];
    cand_t *lists[PROBE_SETS]; /* the nprobe best lists (vid: list number) */
    size_t n[PROBE_SETS], cnt;
    cand_t *own; /* for an index whose centroids are not cached */
} probes_t;

static void probes_fini(probes_t *p)
{
    for (size_t i = 0; i < p->cnt; i++)
        free(p->lists[i]);
    free(p->own);
    memset(p, 0, sizeof(*p));
}

/* The nprobe lists whose centroids score best for q (borrowed from p; *pn of them). */
static const cand_t *probes_get(rf_index_t *ix, probes_t *p, uint64_t qhash, size_t nlist,
                                const float *cent, int dim, const float *q, size_t *pn)
{
    size_t np = (size_t)ix->ivf_nprobe < nlist ? (size_t)ix->ivf_nprobe : nlist, slot;
    topk_t probe;
    for (size_t i = 0; qhash && i < p->cnt; i++) {
        if (p->qhash[i] == qhash) {
            *pn = p->n[i];
            return p->lists[i];
        }
    }
    probe.h = rf_xmalloc((np ? np : 1) * sizeof(cand_t));
    probe.n = 0;
    probe.cap = np;
    for (size_t l = 0; l < nlist; l++)
        topk_push(&probe, rf__index_dot(q, cent + l * (size_t)dim, dim), (int64_t)l);
    *pn = probe.n;
    if (!qhash || p->cnt == PROBE_SETS) {
        free(p->own);
        p->own = probe.h;
        return probe.h;
    }
    slot = p->cnt++;
    p->qhash[slot] = qhash;
    p->lists[slot] = probe.h;
    p->n[slot] = probe.n;
    return probe.h;
}

/* An IVF-Flat view searched here, as FAISS would: the nprobe lists whose centroids score
 * best, every selected vector in them scored (rf__index_dot); the exact scores of the
 * whole selection when those lists hold fewer than the kk it could give. */
static rf_rc view_ivf(rf_index_t *ix, const rf__index_view_t *v, const vsel_t *s, const float *q,
                      rf__index_sqq_t *qq, size_t kk, size_t nlist, const float *cent, probes_t *pr,
                      topk_t *t, rf_err_t *err)
{
    const rf__index_seg_t *seg = v->seg;
    int dim = seg->dim;
    size_t pn = 0, sel = 0;
    const cand_t *probe = probes_get(ix, pr, seg->qhash, nlist, cent, dim, q, &pn);
    const float *vecs;
    const int64_t *ids;
    for (size_t p = 0; p < pn; p++) {
        size_t n = rf__index_ivf_list(seg->ann, (size_t)probe[p].vid, &vecs, &ids);
        for (size_t j = 0; j < n && sel < kk; j++)
            sel += (size_t)ids[j] < v->n && sel_has(v, s, (size_t)ids[j]);
    }
    if (sel < kk)
        return view_exact(v, s, q, dim, qq, t, err);
    if (seg->ivf_codes && sq_on(qq, q, dim, t)) {
        sqscan_t sc;
        sqscan_begin(&sc, qq, t);
        for (size_t p = 0; p < pn; p++) {
            size_t l = (size_t)probe[p].vid, off = seg->ivf_off[l];
            size_t n = rf__index_ivf_list(seg->ann, l, &vecs, &ids);
            for (size_t j = 0; j < n; j++) {
                size_t iid = (size_t)ids[j];
                if (iid < v->n && sel_has(v, s, iid))
                    sqscan_add(&sc, seg->ivf_codes + (off + j) * (size_t)dim,
                               &seg->ivf_sqm[off + j], vecs + j * (size_t)dim,
                               seg->rows->vids[iid]);
            }
        }
        sqscan_end(&sc, q, dim);
        return RF_OK;
    }
    for (size_t p = 0; p < pn; p++) {
        size_t n = rf__index_ivf_list(seg->ann, (size_t)probe[p].vid, &vecs, &ids);
        for (size_t j = 0; j < n; j++) {
            size_t iid = (size_t)ids[j];
            /* INVARIANT(one-record-per-key): dead and unselected iids are skipped. */
            if (iid < v->n && sel_has(v, s, iid))
                topk_push(t, rf__index_dot(q, vecs + j * (size_t)dim, dim), seg->rows->vids[iid]);
        }
    }
    return RF_OK;
}

/* Approximate top-`want` of one sealed FAISS view, restricted to its selection; falls
 * back to the exact scores when FAISS finds fewer than it could. */
static rf_rc view_ann(rf_index_t *ix, const rf__index_view_t *v, const vsel_t *s, const float *q,
                      rf__index_sqq_t *qq, size_t want, probes_t *pr, topk_t *t, rf_err_t *err)
{
    const rf__index_seg_t *seg = v->seg;
    size_t kk = want < s->cnt ? want : s->cnt, got = 0;
    FaissIDSelectorBitmap *bsel = NULL;
    FaissSearchParameters *params = NULL;
    float *dist = NULL;
    idx_t *labels = NULL;
    rf_rc rc = RF_OK;
    int frc;
    size_t nlist;
    const float *cent;
    if (!kk)
        return RF_OK;
    if (!__atomic_load_n(&rf__index_test_faiss_ivf, __ATOMIC_RELAXED) &&
        rf__index_ivf_flat(seg->ann, &nlist, &cent))
        return view_ivf(ix, v, s, q, qq, kk, nlist, cent, pr, t, err);
    /* Nothing dead and no filter: no selector to consult. */
    if (s->bits || v->live_n != v->n) {
        const uint8_t *b = s->bits ? s->bits : v->live->b;
        if (faiss_IDSelectorBitmap_new(&bsel, (v->n + 7) / 8, b)) {
            const char *m = faiss_get_last_error();
            return rf_err_set(err, RF_EINDEX, "faiss IDSelectorBitmap: %s", m ? m : "unknown");
        }
    }
    if (faiss_IndexIVF_cast(seg->ann))
        frc =
            faiss_SearchParametersIVF_new_with((FaissSearchParametersIVF **)&params,
                                               (FaissIDSelector *)bsel, (size_t)ix->ivf_nprobe, 0);
    else
        frc = faiss_SearchParametersHNSW_new_with((FaissSearchParametersHNSW **)&params,
                                                  (FaissIDSelector *)bsel, ix->ef_search);
    if (frc) {
        const char *m = faiss_get_last_error();
        rc = rf_err_set(err, RF_EINDEX, "faiss SearchParameters: %s", m ? m : "unknown");
        goto out;
    }
    dist = rf_xmalloc(kk * sizeof(*dist));
    labels = rf_xmalloc(kk * sizeof(*labels));
    if (faiss_Index_search_with_params(seg->ann, 1, q, (idx_t)kk, params, dist, labels)) {
        const char *m = faiss_get_last_error();
        rc = rf_err_set(err, RF_EINDEX, "faiss search: %s", m ? m : "unknown error");
        goto out;
    }
    for (size_t i = 0; i < kk; i++) {
        size_t iid = (size_t)labels[i];
        /* INVARIANT(one-record-per-key): the selector kept dead iids out; the check
         * guards against an index that ignores selectors. */
        if (labels[i] < 0 || iid >= v->n || !sel_has(v, s, iid))
            continue;
        labels[got] = labels[i];
        dist[got] = dist[i];
        got++;
    }
    if (got < kk) {
        /* A graph walk cut short by the selection (a restrictive filter, many tombstones):
         * the exact scores keep `k` results whenever k records match. */
        rc = view_exact(v, s, q, v->seg->dim, qq, t, err);
    } else {
        for (size_t i = 0; i < got; i++)
            topk_push(t, dist[i], seg->rows->vids[labels[i]]);
    }
out:
    free(dist);
    free(labels);
    if (params)
        faiss_SearchParameters_free(params);
    if (bsel)
        faiss_IDSelectorBitmap_free(bsel);
    return rc;
}

/* The best `want` candidates of the snapshot, best first, in *out (caller frees). */
static rf_rc collect(rf_index_t *ix, const rf__index_snap_t *snap, const rf__index_filter_t *flt,
                     const float *q, size_t want, cand_t **out, size_t *n, rf_err_t *err)
{
    vsel_t *sel = rf_xcalloc(snap->cnt ? snap->cnt : 1, sizeof(*sel));
    probes_t pr = {0};
    rf__index_sqq_t qq = {0};
    topk_t t = {0};
    size_t total = 0;
    int exact;
    rf_rc rc = RF_OK;
    select_views(snap, flt, sel, &total);
    t.cap = want;
    t.h = rf_xmalloc((want ? want : 1) * sizeof(*t.h));
    /* A restrictive filter: its matches are scored exactly (recall 1). */
    exact = flt && (int64_t)total <= ix->exact_max;
    for (size_t i = 0; i < snap->cnt && !rc; i++) {
        const rf__index_view_t *v = &snap->v[i];
        if (!sel[i].cnt)
            continue;
        if (exact || v->seg->kind == RF__SEG_FLAT)
            rc = view_exact(v, &sel[i], q, v->seg->dim, &qq, &t, err);
        else
            rc = view_ann(ix, v, &sel[i], q, &qq, want, &pr, &t, err);
    }
    probes_fini(&pr);
    rf__index_sq_query_fini(&qq);
    for (size_t i = 0; i < snap->cnt; i++) {
        free(sel[i].bits);
        free(sel[i].iids);
    }
    free(sel);
    if (rc) {
        free(t.h);
        return rc;
    }
    qsort(t.h, t.n, sizeof(*t.h), cand_cmp);
    *out = t.h;
    *n = t.n;
    return RF_OK;
}

/* ==== Entry points ==== */

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

rf_rc rf_index_query(rf_index_t *ix, const rf_index_query_t *q, rf_index_results_t *res,
                     rf_err_t *err)
{
    rf__index_filter_t *flt = NULL;
    rf__index_snap_t *snap = NULL;
    rf_index_hit_t *hits = NULL;
    cand_t *cands = NULL;
    ranked_t *order = NULL;
    int64_t *vids = NULL;
    float *scores = NULL;
    size_t got = 0, want, ncand = 0, keep = 0;
    rf_rc rc = RF_OK;
    if (res)
        memset(res, 0, sizeof(*res));
    if (!ix || !q || !q->vec || !res)
        return rf_err_set(err, RF_EINVAL, "rf_index_query: NULL argument");
    if (q->k <= 0)
        return rf_err_set(err, RF_EINVAL, "k=%d: must be at least 1", q->k);
    if (q->k > RF__INDEX_K_MAX)
        return rf_err_set(err, RF_ETOOBIG, "k=%d: at most %d", q->k, RF__INDEX_K_MAX);
    if ((rc = rf__index_filter_compile(q->filter, &flt, err)))
        return rc;
    /* One OpenMP thread per search: FAISS would otherwise start a team for one query, and
     * the HTTP threads already use the cores (measured: 12 ms instead of 0.3 ms). */
    omp_set_num_threads(1);
    snap = rf__index_snap_acquire(ix);
    if (!snap) {
        rc = rf_err_set(err, RF_EINDEX, "vector index unavailable");
        goto out;
    }
    if (q->gen && q->gen != snap->gen) {
        rc = rf_err_set(err, RF_EAGAIN,
                        "the query was embedded for generation %lld; the index now serves "
                        "generation %lld",
                        (long long)q->gen, (long long)snap->gen);
        goto out;
    }
    /* A few more candidates than k: hits deleted between the snapshot and the store read
     * are dropped, and k results should still come back when k records exist.  When too
     * many were dropped, collect again with a larger margin. */
    want = (size_t)q->k + 8 + (size_t)q->k / 4;
    for (int attempt = 0;; attempt++) {
        free(cands);
        cands = NULL;
        if ((rc = collect(ix, snap, flt, q->vec, want, &cands, &ncand, err)))
            goto out;
        vids = rf_xrealloc(vids, (ncand ? ncand : 1) * sizeof(*vids));
        scores = rf_xrealloc(scores, (ncand ? ncand : 1) * sizeof(*scores));
        for (size_t i = 0; i < ncand; i++) {
            vids[i] = cands[i].vid;
            scores[i] = cands[i].score;
        }
        hits = rf_xcalloc(ncand ? ncand : 1, sizeof(*hits));
        if ((rc = rf__index_store_hits(ix, q->vec, vids, scores, ncand, (size_t)q->k, snap, flt,
                                       q->want_vec, hits, &got, err)))
            goto out;
        if (got >= (size_t)q->k || ncand < want || attempt == 3)
            break;
        for (size_t i = 0; i < got; i++)
            rf__index_hit_fini(&hits[i]);
        free(hits);
        hits = NULL;
        want = want * 2 + (ncand - got);
    }
    /* Rescored hits may have moved: order by score, candidate order among equals. */
    order = rf_xmalloc((got ? got : 1) * sizeof(*order));
    for (size_t i = 0; i < got; i++) {
        order[i].score = hits[i].score;
        order[i].pos = i;
    }
    qsort(order, got, sizeof(*order), ranked_cmp);
    for (size_t i = 0; i < got && keep < (size_t)q->k; i++) {
        if (!(hits[order[i].pos].score >= q->min_score))
            break;
        keep++;
    }
    res->cnt = keep;
    res->hits = rf_xcalloc(keep ? keep : 1, sizeof(*res->hits));
    for (size_t i = 0; i < got; i++) {
        if (i < keep)
            res->hits[i] = hits[order[i].pos];
        else
            rf__index_hit_fini(&hits[order[i].pos]);
    }
    got = 0;
    /* INVARIANT(fresh-is-measurable): the position of exactly the state searched. */
    rf__index_position_copy(&res->pos, &snap->pos);
    res->seq = snap->pos.seq;
    res->gen = snap->gen;
out:
    if (hits) {
        for (size_t i = 0; i < got; i++)
            rf__index_hit_fini(&hits[i]);
        free(hits);
    }
    rf__index_snap_drop(ix, snap);
    rf__index_filter_free(flt);
    free(order);
    free(cands);
    free(vids);
    free(scores);
    return rc;
}

rf_rc rf_index_search(rf_index_t *ix, const float *vec, int k, rf_index_results_t *res,
                      rf_err_t *err)
{
    rf_index_query_t q;
    if (res)
        memset(res, 0, sizeof(*res));
    if (!vec)
        return rf_err_set(err, RF_EINVAL, "rf_index_search: NULL argument");
    memset(&q, 0, sizeof(q));
    q.vec = vec;
    q.k = k;
    q.filter = NULL;
    q.min_score = -INFINITY;
    return rf_index_query(ix, &q, res, err);
}
