/* index_segment.c - the segmented vector index: segments with sequential internal ids and
 * an iid -> vid array, live bitmaps as tombstones, immutable reference-counted snapshots
 * swapped under a tiny lock, the writer's append/tombstone/seal, and the maintenance
 * thread that rebuilds sealed segments as the configured FAISS index (and without their
 * dead vectors when they pass compact_ratio).
 *
 * Upholds INVARIANT(index-is-a-view): every change follows a committed store change, and
 * a rebuild is installed only with the tombstones that arrived while it ran.  Upholds
 * INVARIANT(one-record-per-key): an update or delete clears the old iid's live bit in the
 * same snapshot that adds the new one.  Threads: see index_int.h.
 */
#include "index/index.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include "index/index_int.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* ==== Dot products ==== */

static float dot_plain(const float *a, const float *b, int dim)
{
    /* Eight independent sums let the compiler keep the FP units busy without reassociation
     * flags. */
    float s[8] = {0};
    int i = 0;
    for (; i + 8 <= dim; i += 8) {
        for (int j = 0; j < 8; j++)
            s[j] += a[i + j] * b[i + j];
    }
    for (; i < dim; i++)
        s[0] += a[i] * b[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, int dim)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m128 lo, hi;
    float r;
    int i = 0;
    for (; i + 16 <= dim; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= dim; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s0 = _mm256_add_ps(s0, s1);
    lo = _mm256_castps256_ps128(s0);
    hi = _mm256_extractf128_ps(s0, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_hadd_ps(lo, lo);
    lo = _mm_hadd_ps(lo, lo);
    r = _mm_cvtss_f32(lo);
    for (; i < dim; i++)
        r += a[i] * b[i];
    return r;
}
#endif

int rf__index_avx2(void)
{
#if defined(__x86_64__)
    static int have = -1;
    int h = __atomic_load_n(&have, __ATOMIC_RELAXED);
    if (h < 0) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        __atomic_store_n(&have, h, __ATOMIC_RELAXED);
    }
    return h;
#else
    return 0;
#endif
}

float rf__index_dot(const float *a, const float *b, int dim)
{
#if defined(__x86_64__)
    /* Debian's libfaiss is built without AVX2; the flat segments are scanned here. */
    if (rf__index_avx2())
        return dot_avx2(a, b, dim);
#endif
    return dot_plain(a, b, dim);
}

/* ==== Reference-counted pieces ==== */

static void ref_inc(int *refs)
{
    __atomic_add_fetch(refs, 1, __ATOMIC_RELAXED);
}

/* 1 when this was the last reference. */
static int ref_dec(int *refs)
{
    return __atomic_sub_fetch(refs, 1, __ATOMIC_ACQ_REL) == 0;
}

static rf__index_rows_t *rows_new(size_t cap)
{
    rf__index_rows_t *rows = rf_xcalloc(1, sizeof(*rows));
    rows->refs = 1;
    rows->cap = cap;
    rows->vids = rf_xmalloc((cap ? cap : 1) * sizeof(*rows->vids));
    rows->attrs = rf_xcalloc(cap ? cap : 1, sizeof(*rows->attrs));
    rows->hkeys = rf_xcalloc(cap ? cap : 1, sizeof(*rows->hkeys));
    return rows;
}

void rf__index_rows_unref(rf__index_rows_t *rows)
{
    if (!rows || !ref_dec(&rows->refs))
        return;
    for (size_t i = 0; i < rows->filled; i++)
        free(rows->attrs[i]);
    free(rows->attrs);
    free(rows->vids);
    free(rows->hkeys);
    free(rows);
}

rf__index_seg_t *rf__index_seg_new_flat(int dim, uint32_t id, size_t cap)
{
    rf__index_seg_t *seg = rf_xcalloc(1, sizeof(*seg));
    seg->refs = 1;
    seg->id = id;
    seg->kind = RF__SEG_FLAT;
    seg->dim = dim;
    seg->cap = cap;
    seg->rows = rows_new(cap);
    seg->vecs = rf_xmalloc((cap ? cap : 1) * (size_t)dim * sizeof(float));
    rf__index_seg_sq_alloc(seg);
    return seg;
}

void rf__index_seg_sq_alloc(rf__index_seg_t *seg)
{
    seg->codes = rf_xmalloc((seg->cap ? seg->cap : 1) * (size_t)seg->dim);
    seg->sqm = rf_xmalloc((seg->cap ? seg->cap : 1) * sizeof(*seg->sqm));
}

void rf__index_seg_sq_fill(rf__index_seg_t *seg, size_t from, size_t to)
{
    size_t dim = (size_t)seg->dim;
    for (size_t i = from; i < to; i++)
        rf__index_sq_encode(seg->vecs + i * dim, seg->dim, seg->codes + i * dim, &seg->sqm[i]);
}

void rf__index_seg_ivf_codes(rf__index_seg_t *seg)
{
    size_t nlist, tot = 0, dim = (size_t)seg->dim;
    const float *cent, *vecs;
    const int64_t *ids;
    if (!seg->ann || seg->ivf_codes || rf__index_ivf_flat(seg->ann, &nlist, &cent) != 1)
        return;
    seg->ivf_off = rf_xmalloc((nlist + 1) * sizeof(*seg->ivf_off));
    for (size_t l = 0; l < nlist; l++) {
        seg->ivf_off[l] = tot;
        tot += rf__index_ivf_list(seg->ann, l, &vecs, &ids);
    }
    seg->ivf_off[nlist] = tot;
    seg->ivf_codes = rf_xmalloc((tot ? tot : 1) * dim);
    seg->ivf_sqm = rf_xmalloc((tot ? tot : 1) * sizeof(*seg->ivf_sqm));
    for (size_t l = 0; l < nlist; l++) {
        size_t n = rf__index_ivf_list(seg->ann, l, &vecs, &ids), off = seg->ivf_off[l];
        for (size_t j = 0; j < n; j++)
            rf__index_sq_encode(vecs + j * dim, seg->dim, seg->ivf_codes + (off + j) * dim,
                                &seg->ivf_sqm[off + j]);
    }
}

static void inv_free(rf__index_inv_t *inv)
{
    if (!inv)
        return;
    free(inv->keys);
    free(inv->off);
    free(inv->post);
    free(inv);
}

typedef struct kpair {
    uint64_t key;
    uint32_t iid;
} kpair_t;

static int kpair_cmp(const void *a, const void *b)
{
    const kpair_t *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->iid > y->iid) - (x->iid < y->iid);
}

void rf__index_seg_inv_build(rf__index_seg_t *seg)
{
    rf__index_inv_t *inv = rf_xcalloc(1, sizeof(*inv));
    kpair_t *pairs = NULL;
    size_t n = 0, cap = 0;
    uint64_t keys[64];
    for (size_t i = 0; i < seg->cap && i < seg->rows->filled; i++) {
        size_t k = rf__index_attrs_keys(seg->rows->attrs[i], keys, 64);
        if (n + k > cap) {
            cap = (n + k) * 2;
            pairs = rf_xrealloc(pairs, cap * sizeof(*pairs));
        }
        for (size_t j = 0; j < k; j++) {
            pairs[n].key = keys[j];
            pairs[n].iid = (uint32_t)i;
            n++;
        }
    }
    if (n)
        qsort(pairs, n, sizeof(*pairs), kpair_cmp);
    inv->keys = rf_xmalloc((n ? n : 1) * sizeof(*inv->keys));
    inv->off = rf_xmalloc((n + 1) * sizeof(*inv->off));
    inv->post = rf_xmalloc((n ? n : 1) * sizeof(*inv->post));
    for (size_t i = 0; i < n; i++) {
        /* A field repeated with one value (an array) gives one posting per iid. */
        if (i && pairs[i].key == pairs[i - 1].key && pairs[i].iid == pairs[i - 1].iid)
            continue;
        if (!inv->nkeys || inv->keys[inv->nkeys - 1] != pairs[i].key) {
            inv->keys[inv->nkeys] = pairs[i].key;
            inv->off[inv->nkeys] = (uint32_t)inv->npost;
            inv->nkeys++;
        }
        inv->post[inv->npost++] = pairs[i].iid;
    }
    inv->off[inv->nkeys] = (uint32_t)inv->npost;
    free(pairs);
    inv_free(seg->inv);
    seg->inv = inv;
}

size_t rf__index_inv_lookup(const rf__index_inv_t *inv, uint64_t key, const uint32_t **iids)
{
    size_t lo = 0, hi = inv->nkeys;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (inv->keys[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == inv->nkeys || inv->keys[lo] != key) {
        *iids = NULL;
        return 0;
    }
    *iids = inv->post + inv->off[lo];
    return inv->off[lo + 1] - inv->off[lo];
}

void rf__index_seg_unref(rf__index_seg_t *seg)
{
    if (!seg || !ref_dec(&seg->refs))
        return;
    inv_free(seg->inv);
    if (seg->ann)
        faiss_Index_free(seg->ann);
    free(seg->vecs);
    free(seg->codes);
    free(seg->sqm);
    free(seg->ivf_codes);
    free(seg->ivf_sqm);
    free(seg->ivf_off);
    rf__index_rows_unref(seg->rows);
    free(seg);
}

rf__index_bits_t *rf__index_bits_new(size_t nbits)
{
    size_t nbytes = (nbits + 7) / 8;
    rf__index_bits_t *bits = rf_xcalloc(1, sizeof(*bits) + (nbytes ? nbytes : 1));
    bits->refs = 1;
    bits->nbytes = nbytes;
    return bits;
}

void rf__index_bits_unref(rf__index_bits_t *bits)
{
    if (bits && ref_dec(&bits->refs))
        free(bits);
}

static void bit_set(rf__index_bits_t *bits, size_t i)
{
    bits->b[i >> 3] |= (uint8_t)(1u << (i & 7));
}

static void bit_clear(rf__index_bits_t *bits, size_t i)
{
    bits->b[i >> 3] &= (uint8_t) ~(1u << (i & 7));
}

static void snap_free(rf__index_snap_t *snap)
{
    for (size_t i = 0; i < snap->cnt; i++) {
        rf__index_seg_unref(snap->v[i].seg);
        rf__index_bits_unref(snap->v[i].live);
    }
    free(snap->v);
    rf_index_position_fini(&snap->pos);
    free(snap);
}

rf__index_snap_t *rf__index_snap_acquire(rf_index_t *ix)
{
    rf__index_snap_t *snap;
    /* The lock covers a pointer load and an increment: a search never waits for the
     * writer's work, only for another thread's increment. */
    pthread_mutex_lock(&ix->cur_mu);
    snap = ix->cur;
    if (snap)
        ref_inc(&snap->refs);
    pthread_mutex_unlock(&ix->cur_mu);
    return snap;
}

void rf__index_snap_release(rf__index_snap_t *snap)
{
    if (snap && ref_dec(&snap->refs))
        snap_free(snap);
}

void rf__index_snap_drop(rf_index_t *ix, rf__index_snap_t *snap)
{
    if (!snap || !ref_dec(&snap->refs))
        return;
    if (!__atomic_load_n(&ix->dead_started, __ATOMIC_ACQUIRE)) {
        snap_free(snap);
        return;
    }
    snap->dead_next = __atomic_load_n(&ix->dead, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(&ix->dead, &snap->dead_next, snap, 1, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED))
        ;
    sem_post(&ix->dead_sem);
}

static void reap(rf_index_t *ix)
{
    rf__index_snap_t *s = __atomic_exchange_n(&ix->dead, NULL, __ATOMIC_ACQUIRE), *next;
    for (; s; s = next) {
        next = s->dead_next;
        snap_free(s);
        __atomic_add_fetch(&ix->reaped, 1, __ATOMIC_RELEASE);
    }
}

pid_t rf__index_work_thread(rf_index_t *ix, const char *name, int background)
{
    rf_thread_name(name);
    if (background ? rf_thread_background() != 0 : ix->work_nice && rf_thread_nice(ix->work_nice))
        RF_LOG(RF_LOG_DEBUG, RF_MOD_INDEX, "%s keeps its priority", name);
    if (rf_thread_cpus(&ix->work_cpus))
        RF_LOG(RF_LOG_WARN, RF_MOD_INDEX, "%s keeps its CPUs: %s", name, strerror(errno));
    return (pid_t)syscall(SYS_gettid);
}

static void *reaper_main(void *arg)
{
    rf_index_t *ix = arg;
    __atomic_store_n(&ix->reaper_tid, rf__index_work_thread(ix, "rf-index-free", 0),
                     __ATOMIC_RELEASE);
    for (;;) {
        while (sem_wait(&ix->dead_sem) && errno == EINTR)
            ;
        reap(ix);
        if (__atomic_load_n(&ix->dead_stop, __ATOMIC_ACQUIRE))
            break;
    }
    return NULL;
}

rf_rc rf__index_reaper_start(rf_index_t *ix, rf_err_t *err)
{
    ix->dead = NULL;
    ix->dead_stop = 0;
    if (sem_init(&ix->dead_sem, 0, 0))
        return rf_err_sys(err, RF_EIO, "start the index's reaper");
    if (pthread_create(&ix->dead_thr, NULL, reaper_main, ix)) {
        sem_destroy(&ix->dead_sem);
        return rf_err_sys(err, RF_EIO, "start the index's reaper");
    }
    __atomic_store_n(&ix->dead_started, 1, __ATOMIC_RELEASE);
    return RF_OK;
}

void rf__index_reaper_stop(rf_index_t *ix)
{
    if (!ix->dead_started)
        return;
    __atomic_store_n(&ix->dead_stop, 1, __ATOMIC_RELEASE);
    sem_post(&ix->dead_sem);
    pthread_join(ix->dead_thr, NULL);
    __atomic_store_n(&ix->dead_started, 0, __ATOMIC_RELEASE);
    reap(ix);
    sem_destroy(&ix->dead_sem);
}

rf_rc rf__index_seg_vector(const rf__index_seg_t *seg, size_t iid, float *out, rf_err_t *err)
{
    if (seg->kind == RF__SEG_FLAT) {
        memcpy(out, seg->vecs + iid * (size_t)seg->dim, (size_t)seg->dim * sizeof(float));
        return RF_OK;
    }
    if (faiss_Index_reconstruct(seg->ann, (idx_t)iid, out)) {
        const char *m = faiss_get_last_error();
        return rf_err_set(err, RF_EINDEX, "faiss reconstruct: %s", m ? m : "unknown error");
    }
    return RF_OK;
}

/* ==== The writer's vid map ==== */

static size_t map_slot(const rf__index_locmap_t *m, int64_t vid)
{
    uint64_t h = (uint64_t)vid * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 17) & (m->cap - 1);
}

static void map_put(rf__index_locmap_t *m, int64_t vid, uint64_t val);

static void map_grow(rf__index_locmap_t *m)
{
    rf__index_locmap_t old = *m;
    m->cap = old.cap ? old.cap * 2 : 1024;
    m->keys = rf_xcalloc(m->cap, sizeof(*m->keys));
    m->vals = rf_xmalloc(m->cap * sizeof(*m->vals));
    m->cnt = 0;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.keys[i])
            map_put(m, old.keys[i], old.vals[i]);
    }
    free(old.keys);
    free(old.vals);
}

static void map_put(rf__index_locmap_t *m, int64_t vid, uint64_t val)
{
    size_t i;
    if ((m->cnt + 1) * 10 > m->cap * 7)
        map_grow(m);
    for (i = map_slot(m, vid); m->keys[i] && m->keys[i] != vid; i = (i + 1) & (m->cap - 1))
        ;
    if (!m->keys[i]) {
        m->keys[i] = vid;
        m->cnt++;
    }
    m->vals[i] = val;
}

static int map_get(const rf__index_locmap_t *m, int64_t vid, uint64_t *val)
{
    if (!m->cap)
        return 0;
    for (size_t i = map_slot(m, vid); m->keys[i]; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == vid) {
            *val = m->vals[i];
            return 1;
        }
    }
    return 0;
}

/* Linear probing removal by backward shift: no tombstone slots to accumulate. */
static void map_del(rf__index_locmap_t *m, int64_t vid)
{
    size_t i, j;
    if (!m->cap)
        return;
    for (i = map_slot(m, vid); m->keys[i] && m->keys[i] != vid; i = (i + 1) & (m->cap - 1))
        ;
    if (!m->keys[i])
        return;
    m->keys[i] = 0;
    m->cnt--;
    for (j = (i + 1) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
        size_t home = map_slot(m, m->keys[j]);
        /* Moves j back into the hole unless its home lies cyclically in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            m->keys[j] = 0;
            i = j;
        }
    }
}

static uint64_t loc_pack(uint32_t seg_id, size_t iid)
{
    return ((uint64_t)seg_id << 32) | (uint64_t)(uint32_t)iid;
}

/* Caller holds w_mu (which every change of either map holds too). */
static void map_bytes_update(rf_index_t *ix)
{
    __atomic_store_n(&ix->map_bytes,
                     ix->map.cap * (sizeof(int64_t) + sizeof(uint64_t)) +
                         rf__index_hmap_bytes(&ix->hmap),
                     __ATOMIC_RELAXED);
}

/* ==== Drafts: the next snapshot, built by whoever holds w_mu ==== */

typedef struct draft {
    rf__index_view_t *v;
    uint8_t *priv; /* per view: its live bitmap is a private copy already */
    size_t cnt, cap;
} draft_t;

static void draft_push(draft_t *d, const rf__index_view_t *view, int priv)
{
    if (d->cnt == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->v = rf_xrealloc(d->v, d->cap * sizeof(*d->v));
        d->priv = rf_xrealloc(d->priv, d->cap);
    }
    d->v[d->cnt] = *view;
    d->priv[d->cnt] = (uint8_t)priv;
    d->cnt++;
}

/* Starts from the current snapshot, with a reference on every piece. */
static void draft_begin(rf_index_t *ix, draft_t *d)
{
    const rf__index_snap_t *cur = ix->cur; /* stable: only w_mu holders replace it */
    memset(d, 0, sizeof(*d));
    for (size_t i = 0; cur && i < cur->cnt; i++) {
        ref_inc(&cur->v[i].seg->refs);
        ref_inc(&cur->v[i].live->refs);
        draft_push(d, &cur->v[i], 0);
    }
}

/* The live bitmap of view i, copied first if a published snapshot shares it. */
static rf__index_bits_t *draft_bits(draft_t *d, size_t i)
{
    rf__index_view_t *v = &d->v[i];
    if (!d->priv[i]) {
        rf__index_bits_t *copy = rf__index_bits_new(v->seg->cap);
        memcpy(copy->b, v->live->b,
               v->live->nbytes < copy->nbytes ? v->live->nbytes : copy->nbytes);
        rf__index_bits_unref(v->live);
        v->live = copy;
        d->priv[i] = 1;
    }
    return v->live;
}

static size_t draft_find(const draft_t *d, uint32_t seg_id)
{
    for (size_t i = d->cnt; i-- > 0;) {
        if (d->v[i].seg->id == seg_id)
            return i;
    }
    return (size_t)-1;
}

/* The position of store seq `seq`, from the stat_mu mirror. */
static void position_make(rf_index_t *ix, int64_t seq, rf_index_position_t *pos)
{
    memset(pos, 0, sizeof(*pos));
    pthread_mutex_lock(&ix->stat_mu);
    pos->seq = seq;
    pos->newest_event_time_ms = ix->newest_event_ms;
    pos->offset_cnt = ix->off_cnt;
    pos->offsets = rf_xmalloc((ix->off_cnt ? ix->off_cnt : 1) * sizeof(*pos->offsets));
    for (size_t i = 0; i < ix->off_cnt; i++) {
        pos->offsets[i].topic = rf_xstrdup(ix->offs[i].topic);
        pos->offsets[i].partition = ix->offs[i].partition;
        pos->offsets[i].next_offset = ix->offs[i].next_offset;
    }
    rf__index_lsn_position_locked(ix, pos);
    pthread_mutex_unlock(&ix->stat_mu);
}

/* Turns the draft into the current snapshot with position pos (taken over).  Caller
 * holds w_mu. */
static void draft_publish(rf_index_t *ix, draft_t *d, rf_index_position_t *pos)
{
    rf__index_snap_t *next = rf_xcalloc(1, sizeof(*next)), *old;
    next->refs = 1;
    next->cnt = d->cnt;
    next->v = d->v;
    next->pos = *pos;
    next->next_id = ix->next_seg_id;
    next->gen = ix->gen_active;
    next->dim = ix->dim;
    memset(pos, 0, sizeof(*pos));
    free(d->priv);
    memset(d, 0, sizeof(*d));
    pthread_mutex_lock(&ix->cur_mu);
    old = ix->cur;
    ix->cur = next;
    pthread_mutex_unlock(&ix->cur_mu);
    rf__index_pos_publish_locked(ix);
    rf__index_snap_release(old);
}

/* Removes vid's current vector, if it is indexed. */
static void draft_tombstone(rf_index_t *ix, draft_t *d, int64_t vid)
{
    uint64_t loc;
    size_t i, iid;
    if (!map_get(&ix->map, vid, &loc))
        return;
    i = draft_find(d, (uint32_t)(loc >> 32));
    iid = (size_t)(uint32_t)loc;
    assert(i != (size_t)-1 && iid < d->v[i].n);
    if (i != (size_t)-1 && rf__index_bit(d->v[i].live, iid)) {
        bit_clear(draft_bits(d, i), iid);
        d->v[i].live_n--;
        pthread_mutex_lock(&ix->hm_mu);
        rf__index_hmap_del(&ix->hmap, d->v[i].seg->rows->hkeys[iid], vid);
        pthread_mutex_unlock(&ix->hm_mu);
    }
    map_del(&ix->map, vid);
}

/* Seals the tail of the draft; 1 when there was one. */
static int draft_seal(draft_t *d)
{
    if (!d->cnt || d->v[d->cnt - 1].sealed)
        return 0;
    d->v[d->cnt - 1].sealed = 1;
    return 1;
}

static int factory_is_slow(const char *f);

/* The size at which the tail is sealed (RF__INDEX_TAIL_SLOW). */
static size_t tail_cap(const rf_index_t *ix)
{
    if (factory_is_slow(ix->factory) && ix->seg_size > RF__INDEX_TAIL_SLOW)
        return RF__INDEX_TAIL_SLOW;
    return ix->seg_size;
}

/* The fewest live vectors a merge into a factory segment takes: half a segment, or two
 * sealed tails if that is less (a store that never grows to half a segment still gets
 * its factory index). */
static size_t merge_min(const rf_index_t *ix)
{
    size_t half = ix->seg_size / 2, two = 2 * (size_t)RF__INDEX_TAIL_SLOW;
    return half < two ? half : two;
}

/* Appends one vector to the tail, opening a new tail when there is none or it is full.
 * Returns 1 when a tail was sealed on the way. */
static int draft_append(rf_index_t *ix, draft_t *d, const rf__index_add_t *a)
{
    rf__index_view_t *t = d->cnt ? &d->v[d->cnt - 1] : NULL;
    rf__index_bits_t *bits;
    size_t i;
    int sealed = 0;
    if (t && !t->sealed && t->n == t->seg->cap) {
        t->sealed = 1;
        sealed = 1;
    }
    if (!t || t->sealed) {
        rf__index_view_t nv = {0};
        size_t cap = tail_cap(ix);
        nv.seg = rf__index_seg_new_flat(ix->dim, ix->next_seg_id++, cap);
        nv.live = rf__index_bits_new(cap);
        draft_push(d, &nv, 1);
        t = &d->v[d->cnt - 1];
    }
    bits = draft_bits(d, d->cnt - 1);
    i = t->n;
    /* These slots lie beyond every published snapshot's n: no reader looks at them. */
    t->seg->rows->vids[i] = a->vid;
    t->seg->rows->attrs[i] = a->attrs;
    t->seg->rows->hkeys[i] = a->hkey;
    t->seg->rows->filled = i + 1;
    memcpy(t->seg->vecs + i * (size_t)ix->dim, a->vec, (size_t)ix->dim * sizeof(float));
    rf__index_seg_sq_fill(t->seg, i, i + 1);
    bit_set(bits, i);
    t->n++;
    t->live_n++;
    t->attr_bytes += rf__index_attrs_len(a->attrs);
    map_put(&ix->map, a->vid, loc_pack(t->seg->id, i));
    pthread_mutex_lock(&ix->hm_mu);
    rf__index_hmap_put(&ix->hmap, a->hkey, a->vid);
    pthread_mutex_unlock(&ix->hm_mu);
    return sealed;
}

/* 1 when a sealed view has work for the maintenance thread: a first build, or a
 * compaction; 2 when, with a slow factory, it waits to be merged with others into a
 * factory segment (done after every view's 1): an interim index, or a small segment
 * (under merge_min: a sealed remainder, a compacted one). */
static int view_needs_work(const rf_index_t *ix, const rf__index_view_t *v)
{
    if (!v->sealed)
        return 0;
    if (v->seg->kind == RF__SEG_FLAT && !v->seg->final)
        return 1;
    if (v->n && (double)(v->n - v->live_n) > ix->compact_ratio * (double)v->n)
        return 1;
    if (!factory_is_slow(ix->factory))
        return 0;
    return v->seg->interim || v->live_n < merge_min(ix) ? 2 : 0;
}

void rf__index_vec_update(rf_index_t *ix, const int64_t *rm, size_t rm_n,
                          const rf__index_add_t *adds, size_t add_n, int64_t seq)
{
    draft_t d;
    rf_index_position_t pos;
    int kick = 0;
    pthread_mutex_lock(&ix->w_mu);
    draft_begin(ix, &d);
    /* INVARIANT(one-record-per-key): the old vector of every touched vid dies in the same
     * snapshot that shows the new one. */
    for (size_t i = 0; i < rm_n; i++)
        draft_tombstone(ix, &d, rm[i]);
    for (size_t i = 0; i < add_n; i++) {
        draft_tombstone(ix, &d, adds[i].vid);
        kick |= draft_append(ix, &d, &adds[i]);
    }
    for (size_t i = 0; i < d.cnt && !kick; i++)
        kick = d.priv[i] && view_needs_work(ix, &d.v[i]);
    map_bytes_update(ix);
    position_make(ix, seq, &pos);
    draft_publish(ix, &d, &pos);
    pthread_mutex_unlock(&ix->w_mu);
    if (kick)
        rf__index_maint_kick(ix);
}

void rf__index_vec_seal(rf_index_t *ix)
{
    draft_t d;
    rf_index_position_t pos;
    int sealed;
    pthread_mutex_lock(&ix->w_mu);
    draft_begin(ix, &d);
    sealed = draft_seal(&d);
    rf__index_position_copy(&pos, &ix->cur->pos);
    draft_publish(ix, &d, &pos);
    pthread_mutex_unlock(&ix->w_mu);
    if (sealed)
        rf__index_maint_kick(ix);
}

void rf__index_vec_install(rf_index_t *ix, rf__index_view_t *views, size_t cnt,
                           uint32_t next_seg_id)
{
    draft_t d = {0};
    rf_index_position_t pos;
    pthread_mutex_lock(&ix->w_mu);
    free(ix->map.keys);
    free(ix->map.vals);
    memset(&ix->map, 0, sizeof(ix->map));
    pthread_mutex_lock(&ix->hm_mu);
    rf__index_hmap_free(&ix->hmap);
    for (size_t i = 0; i < cnt; i++) {
        const rf__index_view_t *v = &views[i];
        for (size_t j = 0; j < v->n; j++) {
            if (rf__index_bit(v->live, j)) {
                map_put(&ix->map, v->seg->rows->vids[j], loc_pack(v->seg->id, j));
                rf__index_hmap_put(&ix->hmap, v->seg->rows->hkeys[j], v->seg->rows->vids[j]);
            }
        }
        draft_push(&d, v, 0);
    }
    pthread_mutex_unlock(&ix->hm_mu);
    ix->next_seg_id = next_seg_id;
    map_bytes_update(ix);
    position_make(ix, ix->wseq, &pos);
    draft_publish(ix, &d, &pos);
    pthread_mutex_unlock(&ix->w_mu);
}

int rf__index_vec_set_hkey(rf_index_t *ix, int64_t vid, uint64_t hkey)
{
    uint64_t loc;
    int done = 0;
    pthread_mutex_lock(&ix->w_mu);
    if (map_get(&ix->map, vid, &loc)) {
        for (size_t i = 0; i < ix->cur->cnt && !done; i++) {
            rf__index_seg_t *seg = ix->cur->v[i].seg;
            size_t iid = (size_t)(uint32_t)loc;
            if (seg->id != (uint32_t)(loc >> 32) || iid >= ix->cur->v[i].n)
                continue;
            /* No reader yet (open), so the published rows may still change. */
            pthread_mutex_lock(&ix->hm_mu);
            rf__index_hmap_del(&ix->hmap, seg->rows->hkeys[iid], vid);
            seg->rows->hkeys[iid] = hkey;
            rf__index_hmap_put(&ix->hmap, hkey, vid);
            pthread_mutex_unlock(&ix->hm_mu);
            done = 1;
        }
    }
    map_bytes_update(ix);
    pthread_mutex_unlock(&ix->w_mu);
    return done;
}

/* ==== Replacing the whole vector index (a generation switch) ==== */

struct rf__index_repl {
    draft_t d;
    rf__index_locmap_t old_map;
    rf__index_hmap_t old_hmap;
    int old_dim;
    uint32_t old_next_id;
};

static rf_rc repl_add(void *opaque, const rf__index_scan_rec_t *rec, rf_err_t *err)
{
    rf_index_t *ix = ((void **)opaque)[0];
    rf__index_repl_t *r = ((void **)opaque)[1];
    rf__index_add_t a;
    (void)err;
    a.vid = rec->vid;
    a.vec = rec->vec;
    a.attrs = rf__index_attrs_encode(rec->source, rec->tenant, rec->label, rec->event_time_ms,
                                     rec->metadata, NULL);
    a.hkey = rec->hkey;
    draft_append(ix, &r->d, &a);
    return RF_OK;
}

static void draft_drop(draft_t *d)
{
    for (size_t i = 0; i < d->cnt; i++) {
        rf__index_seg_unref(d->v[i].seg);
        rf__index_bits_unref(d->v[i].live);
    }
    free(d->v);
    free(d->priv);
    memset(d, 0, sizeof(*d));
}

rf_rc rf__index_vec_replace_begin(rf_index_t *ix, int dim, rf__index_repl_t **out, rf_err_t *err)
{
    rf__index_repl_t *r = rf_xcalloc(1, sizeof(*r));
    void *ctx[2] = {ix, r};
    rf_rc rc;
    pthread_mutex_lock(&ix->w_mu);
    r->old_map = ix->map;
    r->old_dim = ix->dim;
    r->old_next_id = ix->next_seg_id;
    memset(&ix->map, 0, sizeof(ix->map));
    /* Lookups meanwhile see the new generation's keys as they are added (a miss costs an
     * embedding, never a wrong vector: each candidate is checked against the store). */
    pthread_mutex_lock(&ix->hm_mu);
    r->old_hmap = ix->hmap;
    memset(&ix->hmap, 0, sizeof(ix->hmap));
    pthread_mutex_unlock(&ix->hm_mu);
    /* Readers never use ix->dim (they take the snapshot's), and the maintenance and
     * checkpoint threads are stopped: the writer alone sees the new value until commit. */
    ix->dim = dim;
    if ((rc = rf__index_store_scan_records(ix, -1, repl_add, ctx, NULL, err))) {
        rf__index_vec_replace_abort(ix, r);
        return rc;
    }
    *out = r;
    return RF_OK;
}

void rf__index_vec_replace_commit(rf_index_t *ix, rf__index_repl_t *r, int64_t gen, int64_t seq)
{
    rf_index_position_t pos;
    free(r->old_map.keys);
    free(r->old_map.vals);
    rf__index_hmap_free(&r->old_hmap);
    pthread_mutex_lock(&ix->stat_mu);
    ix->gen_active = gen;
    pthread_mutex_unlock(&ix->stat_mu);
    map_bytes_update(ix);
    position_make(ix, seq, &pos);
    draft_publish(ix, &r->d, &pos);
    pthread_mutex_unlock(&ix->w_mu);
    free(r);
    rf__index_maint_kick(ix);
}

void rf__index_vec_replace_abort(rf_index_t *ix, rf__index_repl_t *r)
{
    draft_drop(&r->d);
    free(ix->map.keys);
    free(ix->map.vals);
    ix->map = r->old_map;
    pthread_mutex_lock(&ix->hm_mu);
    rf__index_hmap_free(&ix->hmap);
    ix->hmap = r->old_hmap;
    pthread_mutex_unlock(&ix->hm_mu);
    ix->dim = r->old_dim;
    ix->next_seg_id = r->old_next_id;
    pthread_mutex_unlock(&ix->w_mu);
    free(r);
}

/* ==== FAISS indexes of sealed segments ==== */

static rf_rc faiss_fail(rf_err_t *err, const char *what)
{
    const char *m = faiss_get_last_error();
    return rf_err_set(err, RF_EINDEX, "faiss %s: %s", what, m ? m : "unknown error");
}

void rf__index_ann_tune(rf_index_t *ix, FaissIndex *ann)
{
    FaissIndexIVF *ivf = faiss_IndexIVF_cast(ann);
    FaissParameterSpace *ps = NULL;
    if (ivf) {
        faiss_IndexIVF_set_nprobe(ivf, (size_t)ix->ivf_nprobe);
        return;
    }
    /* faiss 1.7.3 reads efSearch from the index, not from SearchParametersHNSW: it is set
     * here, before any search can see the index. */
    if (faiss_ParameterSpace_new(&ps) == 0) {
        faiss_ParameterSpace_set_index_parameter(ps, ann, "efSearch", (double)ix->ef_search);
        faiss_ParameterSpace_free(ps);
    }
}

/* Adds vecs[0..n) to a trained ann (ids 0..n-1), then its direct map (IVF) and search
 * parameters; frees ann on failure. */
static rf_rc ann_fill(rf_index_t *ix, FaissIndex *ann, const float *vecs, size_t n, const int *stop,
                      FaissIndex **out, rf_err_t *err)
{
    FaissIndexIVF *ivf;
    rf_rc rc = RF_OK;
    /* Small enough that a stop (close, a model switch) waits little even for a build at
     * the lowest priority on busy cores. */
    const size_t chunk = 256;
    for (size_t i = 0; i < n; i += chunk) {
        size_t m = n - i < chunk ? n - i : chunk;
        if (stop && __atomic_load_n(stop, __ATOMIC_RELAXED)) {
            rc = rf_err_set(err, RF_ESTOPPED, "segment build stopped");
            goto out;
        }
        /* Sequential ids: the iids of the flat segment this replaces. */
        if (faiss_Index_add(ann, (idx_t)m, vecs + i * (size_t)ix->dim)) {
            rc = faiss_fail(err, "add");
            goto out;
        }
    }
    ivf = faiss_IndexIVF_cast(ann);
    if (ivf && faiss_IndexIVF_make_direct_map(ivf, 1)) {
        rc = faiss_fail(err, "make_direct_map");
        goto out;
    }
    rf__index_ann_tune(ix, ann);
out:
    if (rc) {
        faiss_Index_free(ann);
        return rc;
    }
    *out = ann;
    return RF_OK;
}

uint64_t rf__index_ann_qhash(const FaissIndex *ann)
{
    size_t nlist;
    const float *cent;
    uint64_t h = 0;
    if (!ann || !rf__index_ivf_flat(ann, &nlist, &cent))
        return 0;
    crypto_generichash((unsigned char *)&h, sizeof(h), (const unsigned char *)cent,
                       nlist * (size_t)faiss_Index_d(ann) * sizeof(float), NULL, 0);
    return h ? h : 1;
}

rf_rc rf__index_ann_build(rf_index_t *ix, const char *factory, const float *vecs, size_t n,
                          size_t train_max, const int *stop, FaissIndex **out, rf_err_t *err)
{
    FaissIndex *ann = NULL;
    *out = NULL;
    if (faiss_index_factory(&ann, ix->dim, factory, METRIC_INNER_PRODUCT))
        return faiss_fail(err, "index_factory");
    if (rf__index_hnsw_simd(ann, 1) < 0) {
        faiss_Index_free(ann);
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    }
    if (!faiss_Index_is_trained(ann)) {
        /* An evenly spread sample of train_max vectors when there are more. */
        size_t nt = train_max && train_max < n ? train_max : n, dim = (size_t)ix->dim;
        float *sample = NULL;
        int bad;
        if (nt < n) {
            sample = rf_xmalloc(nt * dim * sizeof(float));
            for (size_t i = 0; i < nt; i++)
                memcpy(sample + i * dim, vecs + (i * n / nt) * dim, dim * sizeof(float));
        }
        bad = faiss_Index_train(ann, (idx_t)nt, sample ? sample : vecs) != 0;
        free(sample);
        if (bad) {
            rf_rc rc = faiss_fail(err, "train");
            faiss_Index_free(ann);
            return rc;
        }
    }
    return ann_fill(ix, ann, vecs, n, stop, out, err);
}

rf_rc rf__index_ann_write(FaissIndex *ann, FILE *fp, rf_err_t *err)
{
    if (faiss_write_index(ann, fp))
        return faiss_fail(err, "write_index");
    return RF_OK;
}

rf_rc rf__index_ann_load(const void *data, size_t len, int dim, FaissIndex **out, rf_err_t *err)
{
    FaissIndex *ann = NULL;
    rf_rc rc = RF_OK;
    FILE *fp;
    *out = NULL;
    if (!len)
        return rf_err_set(err, RF_ECORRUPT, "empty vector index");
    fp = fmemopen((void *)data, len, "rb");
    if (!fp)
        return rf_err_sys(err, RF_ENOMEM, "fmemopen");
    if (faiss_read_index(fp, 0, &ann)) {
        /* The bytes passed their hash, so FAISS rejecting them means a format we cannot
         * read: the checkpoint is unusable, like a corrupt one. */
        faiss_fail(err, "read_index");
        rc = RF_ECORRUPT;
        if (err)
            err->code = rc;
    }
    fclose(fp);
    if (rc)
        return rc;
    if (faiss_Index_d(ann) != dim)
        rc = rf_err_set(err, RF_ECORRUPT, "vector index has dim %d, expected %d",
                        faiss_Index_d(ann), dim);
    else if (faiss_Index_metric_type(ann) != METRIC_INNER_PRODUCT)
        rc = rf_err_set(err, RF_ECORRUPT, "vector index metric is not inner product");
    else if (rf__index_hnsw_simd(ann, 1) < 0)
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
    if (rc) {
        faiss_Index_free(ann);
        return rc;
    }
    *out = ann;
    return RF_OK;
}

/* ==== Maintenance: rebuilds and compactions ==== */

static int failed_has(rf_index_t *ix, uint32_t id)
{
    int found = 0;
    pthread_mutex_lock(&ix->mt_mu);
    for (size_t i = 0; i < ix->mt_failed_n && !found; i++)
        found = ix->mt_failed[i] == id;
    pthread_mutex_unlock(&ix->mt_mu);
    return found;
}

static void failed_add(rf_index_t *ix, uint32_t id)
{
    pthread_mutex_lock(&ix->mt_mu);
    ix->mt_failed = rf_xrealloc(ix->mt_failed, (ix->mt_failed_n + 1) * sizeof(*ix->mt_failed));
    ix->mt_failed[ix->mt_failed_n++] = id;
    pthread_mutex_unlock(&ix->mt_mu);
}

static int factory_is_flat(const char *f)
{
    return !strcasecmp(f, "Flat") || !strcasecmp(f, "IDMap,Flat");
}

/* The factories whose build takes minutes per 100k vectors here. */
static int factory_is_slow(const char *f)
{
    return strncasecmp(f, "HNSW", 4) == 0 || strstr(f, ",HNSW") != NULL;
}

/* Installs `fresh` in place of the views of segments old_ids[0..old_cnt-1] (at the place
 * of the first of them).  Row j of fresh was row live_old[j] of source src_of[j] (NULL:
 * source 0); live_old NULL: fresh keeps the iids of its one source.  fresh == NULL drops
 * the views.  Caller holds nothing. */
static void install(rf_index_t *ix, const uint32_t *old_ids, size_t old_cnt, rf__index_seg_t *fresh,
                    const uint32_t *src_of, const size_t *live_old, size_t m)
{
    draft_t d;
    rf_index_position_t pos;
    size_t *at = rf_xmalloc(old_cnt * sizeof(*at)), first = (size_t)-1;
    pthread_mutex_lock(&ix->w_mu);
    draft_begin(ix, &d);
    for (size_t s = 0; s < old_cnt; s++) {
        at[s] = draft_find(&d, old_ids[s]);
        /* Not reachable: only this thread removes sealed views. */
        assert(at[s] != (size_t)-1);
        if (at[s] == (size_t)-1) {
            rf__index_seg_unref(fresh);
            for (size_t j = 0; j < d.cnt; j++) {
                rf__index_seg_unref(d.v[j].seg);
                rf__index_bits_unref(d.v[j].live);
            }
            free(d.v);
            free(d.priv);
            pthread_mutex_unlock(&ix->w_mu);
            free(at);
            return;
        }
        if (first == (size_t)-1 || at[s] < first)
            first = at[s];
    }
    if (!fresh || live_old) {
        /* New iids: carry over the tombstones that arrived while the rebuild ran, and
         * point the vid map at the new places. */
        rf__index_view_t nv = {0};
        size_t live_n = 0, attr_bytes = 0, keep_n = 0;
        if (fresh) {
            nv.live = rf__index_bits_new(m);
            for (size_t j = 0; j < m; j++) {
                const rf__index_view_t *v = &d.v[at[src_of ? src_of[j] : 0]];
                attr_bytes += rf__index_attrs_len(fresh->rows->attrs[j]);
                if (!rf__index_bit(v->live, live_old[j]))
                    continue;
                bit_set(nv.live, j);
                live_n++;
                map_put(&ix->map, fresh->rows->vids[j], loc_pack(fresh->id, j));
            }
        }
        /* The sources leave the draft; the fresh view, when it has a live row, takes the
         * place of the first. */
        for (size_t j = 0; j < d.cnt; j++) {
            int src = 0;
            for (size_t s = 0; s < old_cnt && !src; s++)
                src = at[s] == j;
            if (src && j == first && fresh && live_n) {
                rf__index_seg_unref(d.v[j].seg);
                rf__index_bits_unref(d.v[j].live);
                nv.seg = fresh;
                nv.n = m;
                nv.live_n = live_n;
                nv.attr_bytes = attr_bytes;
                nv.sealed = 1;
                d.v[keep_n] = nv;
                d.priv[keep_n++] = 1;
            } else if (src) {
                rf__index_seg_unref(d.v[j].seg);
                rf__index_bits_unref(d.v[j].live);
            } else {
                d.v[keep_n] = d.v[j];
                d.priv[keep_n++] = d.priv[j];
            }
        }
        if (!fresh || !live_n) {
            rf__index_seg_unref(fresh);
            rf__index_bits_unref(nv.live);
        }
        d.cnt = keep_n;
    } else {
        /* Same iids: only the segment object changes; the live bitmap is kept as it is. */
        rf__index_seg_unref(d.v[at[0]].seg);
        d.v[at[0]].seg = fresh;
    }
    map_bytes_update(ix);
    rf__index_position_copy(&pos, &ix->cur->pos);
    draft_publish(ix, &d, &pos);
    __atomic_add_fetch(&ix->inst_gen, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&ix->w_mu);
    free(at);
}

/* One rebuild: the live vectors of one sealed view, or of several interim ones merged,
 * gathered into a fresh segment whose index is built either by the maintenance thread at
 * once or by the slow builder. */
typedef struct rf__index_slow {
    uint32_t *src_ids; /* the segments it replaces */
    size_t src_cnt;
    rf__index_seg_t *fresh; /* rows in place; ann filled by the build */
    float *vecs;            /* the live vectors (NULL once a flat segment took them) */
    uint32_t *src_of;       /* new iid j came from source src_of[j] (NULL: one source) */
    size_t *live_old;       /* ... where it was iid live_old[j] (NULL: same iids) */
    size_t m, dead;
    char factory[48]; /* what is built; "" for a flat segment */
    rf_rc rc;
    rf_err_t err;
    int64_t t0;
} slow_t;

static void job_free(slow_t *j)
{
    if (!j)
        return;
    rf__index_seg_unref(j->fresh);
    free(j->vecs);
    free(j->src_ids);
    free(j->src_of);
    free(j->live_old);
    free(j);
}

/* The lists of an interim IVF index of m vectors: those of the shared k-means for a sealed
 * tail (or two), sqrt(m) for bigger ones (a compaction of many), which train their own. */
static size_t interim_lists(size_t m)
{
    size_t l = m / 32;
    if (m > 2 * (size_t)RF__INDEX_TAIL_SLOW)
        return (size_t)sqrt((double)m);
    return l < RF__INDEX_IVFQ_LISTS ? l : RF__INDEX_IVFQ_LISTS;
}

/* The factory a rebuild of view v (needs_work `want`, m live vectors; with want 2, v is
 * the first of the views merged) builds, in buf: "" for a flat segment; *interim is set
 * for the quick IVF index that stands in for a slow factory: at a first build, and at a
 * compaction of an interim index (the factory's rebuild comes later, as a merge). */
static void build_factory(const rf_index_t *ix, const rf__index_view_t *v, int want, size_t m,
                          char *buf, size_t len, int *interim)
{
    *interim = 0;
    if (m < RF__INDEX_ANN_MIN || factory_is_flat(ix->factory)) {
        buf[0] = 0;
    } else if (want == 1 && factory_is_slow(ix->factory) && m >= RF__INDEX_INTERIM_MIN &&
               m <= RF__INDEX_INTERIM_MAX && (v->seg->kind == RF__SEG_FLAT || v->seg->interim)) {
        snprintf(buf, len, "IVF%zu,Flat", interim_lists(m));
        *interim = 1;
    } else {
        snprintf(buf, len, "%s", ix->factory);
    }
}

/* 1 when a rebuild of v goes to the slow builder. */
static int build_is_slow(const rf_index_t *ix, const rf__index_view_t *v, int want)
{
    char f[48];
    int interim;
    build_factory(ix, v, want, v->live_n, f, sizeof(f), &interim);
    return f[0] && !interim && factory_is_slow(f);
}

/* Gathers the live vectors of sealed views v[0..cnt-1] (from a snapshot the caller holds)
 * into a new job: without their dead vectors.  More than one view: interim ones, merged
 * into one factory index.  NULL when they have no live vector left (the views are dropped
 * at once) or their vectors cannot be read (not retried). */
static slow_t *job_begin(rf_index_t *ix, const rf__index_view_t *const *v, size_t cnt, int want)
{
    size_t m = 0, k = 0, n = 0, dim = (size_t)ix->dim;
    /* Nothing dead: same iids, same rows, same number.  An interim index is replaced under
     * a new number, as its file may be named by a manifest that says it is interim. */
    int keep = cnt == 1 && v[0]->live_n == v[0]->n && !v[0]->seg->interim, interim;
    slow_t *j = rf_xcalloc(1, sizeof(*j));
    rf__index_seg_t *fresh;
    rf_rc rc = RF_OK;
    j->src_ids = rf_xmalloc(cnt * sizeof(*j->src_ids));
    j->src_cnt = cnt;
    for (size_t s = 0; s < cnt; s++) {
        j->src_ids[s] = v[s]->seg->id;
        m += v[s]->live_n;
        n += v[s]->n;
    }
    if (!m) {
        install(ix, j->src_ids, cnt, NULL, NULL, NULL, 0);
        job_free(j);
        return NULL;
    }
    j->t0 = rf_mono_ms();
    j->m = m;
    j->dead = n - m;
    j->live_old = rf_xmalloc(m * sizeof(*j->live_old));
    if (cnt > 1)
        j->src_of = rf_xmalloc(m * sizeof(*j->src_of));
    j->vecs = rf_xmalloc(m * dim * sizeof(float));
    for (size_t s = 0; s < cnt && !rc; s++) {
        for (size_t i = 0; i < v[s]->n && k < m; i++) {
            if (!rf__index_bit(v[s]->live, i))
                continue;
            j->live_old[k] = i;
            if (j->src_of)
                j->src_of[k] = (uint32_t)s;
            if ((rc = rf__index_seg_vector(v[s]->seg, i, j->vecs + k * dim, &j->err)))
                break;
            k++;
        }
    }
    if (!rc && k != m)
        rc = rf_err_set(&j->err, RF_EINDEX, "segment %u: %zu live vectors, bitmaps say %zu",
                        j->src_ids[0], k, m);
    if (rc) {
        for (size_t s = 0; s < cnt; s++)
            failed_add(ix, j->src_ids[s]);
        RF_LOG(RF_LOG_WARN, RF_MOD_INDEX, "segment=%u rebuild failed, kept as it is: %s",
               j->src_ids[0], j->err.msg);
        job_free(j);
        return NULL;
    }
    fresh = j->fresh = rf_xcalloc(1, sizeof(*fresh));
    fresh->refs = 1;
    fresh->id = j->src_ids[0];
    if (!keep) {
        /* New iids, new number: the old segment's file stays valid for older manifests. */
        pthread_mutex_lock(&ix->w_mu);
        fresh->id = ix->next_seg_id++;
        pthread_mutex_unlock(&ix->w_mu);
    }
    fresh->dim = ix->dim;
    fresh->cap = keep ? v[0]->n : m;
    if (keep) {
        fresh->rows = v[0]->seg->rows;
        ref_inc(&v[0]->seg->rows->refs);
        free(j->live_old);
        j->live_old = NULL;
    } else {
        fresh->rows = rows_new(m);
        for (size_t i = 0; i < m; i++) {
            const rf__index_rows_t *rows = v[j->src_of ? j->src_of[i] : 0]->seg->rows;
            const uint8_t *a = rows->attrs[j->live_old[i]];
            size_t al = rf__index_attrs_len(a);
            fresh->rows->vids[i] = rows->vids[j->live_old[i]];
            fresh->rows->hkeys[i] = rows->hkeys[j->live_old[i]];
            fresh->rows->attrs[i] = a ? rf_xmalloc(al) : NULL;
            if (a)
                memcpy(fresh->rows->attrs[i], a, al);
        }
        fresh->rows->filled = m;
    }
    build_factory(ix, v[0], want, m, j->factory, sizeof(j->factory), &interim);
    fresh->interim = interim;
    if (!j->factory[0]) {
        fresh->kind = RF__SEG_FLAT;
        fresh->final = 1;
        fresh->vecs = j->vecs;
        j->vecs = NULL;
        rf__index_seg_sq_alloc(fresh);
        rf__index_seg_sq_fill(fresh, 0, m);
    } else {
        fresh->kind = RF__SEG_ANN;
    }
    return j;
}

/* An interim IVF index of the shared list count: on the shared centroids when there are
 * some to reuse (only the assignment of the vectors: a k-means is most of a build), else
 * trained here, its centroids then shared.  Maintenance thread. */
static rf_rc interim_build(rf_index_t *ix, slow_t *j, size_t nlist)
{
    FaissIndex *ann = NULL;
    size_t got;
    const float *cent;
    rf_rc rc;
    /* Shared centroids at least half as many as this segment would train serve it (the
     * live vectors of sealed tails differ a little in number). */
    if (ix->ivfq && ix->ivfq_dim == ix->dim && 2 * ix->ivfq_nlist >= nlist &&
        ix->ivfq_uses < RF__INDEX_IVFQ_USES) {
        if (rf__index_ivf_with_centroids(ix->dim, ix->ivfq_nlist, ix->ivfq, &ann))
            return rf_err_set(&j->err, RF_EINDEX, "faiss IVF on the shared centroids");
        if ((rc = ann_fill(ix, ann, j->vecs, j->m, &ix->mt_stop, &j->fresh->ann, &j->err)))
            return rc;
        ix->ivfq_uses++;
        return RF_OK;
    }
    /* 64 vectors per list at most (FAISS asks for 39 to 256): k-means on all of 50,000
     * vectors took 3.5x longer here. */
    if ((rc = rf__index_ann_build(ix, j->factory, j->vecs, j->m, 64 * nlist, &ix->mt_stop,
                                  &j->fresh->ann, &j->err)))
        return rc;
    if (rf__index_ivf_flat(j->fresh->ann, &got, &cent) && got == nlist) {
        free(ix->ivfq);
        ix->ivfq = rf_xmalloc(nlist * (size_t)ix->dim * sizeof(float));
        memcpy(ix->ivfq, cent, nlist * (size_t)ix->dim * sizeof(float));
        ix->ivfq_nlist = nlist;
        ix->ivfq_dim = ix->dim;
        ix->ivfq_uses = 1;
    }
    return RF_OK;
}

/* Builds the job's index (nothing for a flat segment); j->rc says how it went.  Interim
 * indexes are built by the maintenance thread only (never slow). */
static void job_build(rf_index_t *ix, slow_t *j)
{
    if (j->factory[0] && j->fresh->interim && j->m <= 2 * (size_t)RF__INDEX_TAIL_SLOW)
        j->rc = interim_build(ix, j, interim_lists(j->m));
    else if (j->factory[0])
        j->rc = rf__index_ann_build(ix, j->factory, j->vecs, j->m,
                                    j->fresh->interim ? 64 * interim_lists(j->m) : 0, &ix->mt_stop,
                                    &j->fresh->ann, &j->err);
    if (!j->rc && j->fresh->ann) {
        j->fresh->qhash = rf__index_ann_qhash(j->fresh->ann);
        rf__index_seg_ivf_codes(j->fresh);
    }
    free(j->vecs);
    j->vecs = NULL;
}

/* Writes the built segment's file and installs it in place of its source (maintenance
 * thread only: it alone removes sealed views, so the source is still there).  Frees j. */
static void job_finish(rf_index_t *ix, slow_t *j)
{
    rf__index_seg_t *fresh = j->fresh;
    int locked = 0;
    if (j->rc) {
        if (j->rc != RF_ESTOPPED) {
            /* The segment stays as it is (correct, only slower to search); not retried. */
            for (size_t s = 0; s < j->src_cnt; s++)
                failed_add(ix, j->src_ids[s]);
            RF_LOG(RF_LOG_WARN, RF_MOD_INDEX, "segment=%u rebuild failed, kept as it is: %s",
                   j->src_ids[0], j->err.msg);
        }
        job_free(j);
        return;
    }
    if (fresh->kind == RF__SEG_ANN) {
        rf_err_t e;
        /* INVARIANT(index-is-a-view): the segment is checkpointed once, as soon as it is
         * built; a failed write is retried by the next checkpoint.  ckpt_mu, held until the
         * segment is installed, keeps a checkpoint from pruning the file in between. */
        pthread_mutex_lock(&ix->ckpt_mu);
        locked = 1;
        if (rf__index_seg_write(ix, fresh, &e)) {
            RF_LOG(RF_LOG_WARN, RF_MOD_INDEX, "segment=%u not written, retried later: %s",
                   fresh->id, e.msg);
            fresh->ann_bytes = j->m * ((size_t)ix->dim * sizeof(float) + 64 * sizeof(int32_t));
        }
    }
    rf__index_seg_inv_build(fresh);
    RF_LOG(RF_LOG_INFO, RF_MOD_INDEX,
           "segment=%u merged=%zu vectors=%zu dead=%zu kind=%s ms=%lld segment rebuilt",
           j->src_ids[0], j->src_cnt, j->m, j->dead,
           fresh->kind != RF__SEG_ANN ? "flat"
           : fresh->interim           ? "IVF (interim)"
                                      : j->factory,
           (long long)(rf_mono_ms() - j->t0));
    j->fresh = NULL;
    install(ix, j->src_ids, j->src_cnt, fresh, j->src_of, j->live_old, j->m);
    if (locked)
        pthread_mutex_unlock(&ix->ckpt_mu);
    job_free(j);
}

int rf__index_test_keep_interim;

/* 1 when segment id is one a slow job replaces (maintenance thread only). */
static int busy_has(const rf_index_t *ix, uint32_t id)
{
    for (size_t i = 0; i < ix->sb_busy_n; i++) {
        if (ix->sb_busy[i] == id)
            return 1;
    }
    return 0;
}

/* Does one piece of work; 0 when there was none.  First builds and compactions first,
 * then the merges (view_needs_work 2): the views waiting, in snapshot order, up to
 * segment_size live vectors, once there are merge_min of them (each interim view rebuilt
 * alone would make a small factory segment, each searched apart). */
static int maint_step(rf_index_t *ix)
{
    rf__index_snap_t *snap;
    const rf__index_view_t **pick;
    size_t pick_n = 0, live = 0;
    slow_t *done, *j;
    int want = 0, slow = 0, builder_free;
    int last = __atomic_load_n(&rf__index_test_keep_interim, __ATOMIC_RELAXED) ? 1 : 2;
    pthread_mutex_lock(&ix->mt_mu);
    done = ix->sb_done;
    ix->sb_done = NULL;
    builder_free = !ix->sb_job && !done && !ix->sb_busy_n;
    pthread_mutex_unlock(&ix->mt_mu);
    if (done) {
        ix->sb_busy_n = 0;
        job_finish(ix, done);
        return 1;
    }
    snap = rf__index_snap_acquire(ix);
    pick = rf_xmalloc((snap->cnt ? snap->cnt : 1) * sizeof(*pick));
    for (want = 1; want <= last && !pick_n; want++) {
        for (size_t i = 0; i < snap->cnt; i++) {
            const rf__index_view_t *v = &snap->v[i];
            int s;
            if (view_needs_work(ix, v) != want || busy_has(ix, v->seg->id) ||
                failed_has(ix, v->seg->id))
                continue;
            if (want == 2) {
                if (!builder_free || (pick_n && live + v->live_n > ix->seg_size))
                    continue;
                pick[pick_n++] = v;
                live += v->live_n;
                continue;
            }
            /* A slow build waits until the builder is free. */
            if ((s = build_is_slow(ix, v, want)) && !builder_free)
                continue;
            pick[0] = v;
            pick_n = 1;
            slow = s;
            break;
        }
        /* A merge: of merge_min vectors at least, and of two views at least unless the one
         * is interim (a small view alone would be rebuilt as it is, again and again). */
        if (want == 2 && pick_n) {
            if (live < merge_min(ix) || (pick_n == 1 && !pick[0]->seg->interim))
                pick_n = 0;
            else
                slow = live >= RF__INDEX_ANN_MIN;
        }
    }
    want--;
    j = pick_n ? job_begin(ix, pick, pick_n, want) : NULL;
    rf__index_snap_release(snap);
    free(pick);
    if (j && slow) {
        ix->sb_busy = rf_xrealloc(ix->sb_busy, j->src_cnt * sizeof(*ix->sb_busy));
        memcpy(ix->sb_busy, j->src_ids, j->src_cnt * sizeof(*ix->sb_busy));
        ix->sb_busy_n = j->src_cnt;
        pthread_mutex_lock(&ix->mt_mu);
        ix->sb_job = j;
        pthread_cond_signal(&ix->sb_cond);
        pthread_mutex_unlock(&ix->mt_mu);
    } else if (j) {
        job_build(ix, j);
        job_finish(ix, j);
    }
    return pick_n != 0;
}

/* OpenBLAS (linked for FAISS) keeps a pool of threads of its own, apart from OpenMP's. */
void openblas_set_num_threads(int num_threads);

static void *maint_main(void *arg)
{
    rf_index_t *ix = arg;
    /* Ingest's work, like the writer's: searches keep their cores (ingest.nice).  Kept to
     * CPUs of its own (ingest.cpus), it runs at nice 19 instead, behind the writer: there
     * the two shared those CPUs evenly, and the writer, whose commits are what ingest
     * waits for, lost a quarter of its time to the quick builds.  At 10,000 upserts/s on a
     * 1M store (bench_index), the writer waited for a CPU 7-10 ms a batch of 1,000 instead
     * of 25-29, and a batch took 71-82 ms instead of 97-103 (three runs each, alternating);
     * the quick builds finish later, so searches bound more flat vectors through codes
     * (14,000-19,000 instead of 9,500-10,000) at a like p99. */
    pid_t tid = rf__index_work_thread(ix, "rf-index-maint", 0);
    if (ix->work_cpus.cnt > 0 && rf_thread_nice(19))
        RF_LOG(RF_LOG_DEBUG, RF_MOD_INDEX, "rf-index-maint keeps its priority");
    __atomic_store_n(&ix->maint_tid, tid, __ATOMIC_RELEASE);
    /* The quick builds run at normal priority on one core: FAISS's OpenMP workers would
     * take the other from the searches (and spin there after each parallel loop).  So
     * would OpenBLAS's own pool, which the IVF k-means' matrix products use; that setting
     * is the process's, and FAISS calls BLAS only to train and to search batches of 20
     * queries or more, which no search here is. */
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
    pthread_mutex_lock(&ix->mt_mu);
    for (;;) {
        while (!ix->mt_stop && !ix->mt_kick) {
            /* Idle only when the slow builder holds no job either. */
            ix->mt_idle = !ix->sb_busy_n;
            if (ix->mt_idle)
                pthread_cond_broadcast(&ix->mt_idle_cond);
            pthread_cond_wait(&ix->mt_cond, &ix->mt_mu);
        }
        if (ix->mt_stop)
            break;
        ix->mt_kick = 0;
        ix->mt_idle = 0;
        pthread_mutex_unlock(&ix->mt_mu);
        while (!__atomic_load_n(&ix->mt_stop, __ATOMIC_RELAXED) && maint_step(ix))
            ;
        pthread_mutex_lock(&ix->mt_mu);
    }
    ix->mt_idle = 1;
    pthread_cond_broadcast(&ix->mt_idle_cond);
    pthread_mutex_unlock(&ix->mt_mu);
    return NULL;
}

/* The slow builder: builds each job handed over, then wakes the maintenance thread to
 * install it. */
static void *slow_main(void *arg)
{
    rf_index_t *ix = arg;
    /* Background work, and the OpenMP workers a build starts inherit that: searches, the
     * writer and the quick builds keep the cores they need. */
    rf__index_work_thread(ix, "rf-index-build", 1);
#if defined(__SANITIZE_THREAD__)
    omp_set_num_threads(1);
#endif
    pthread_mutex_lock(&ix->mt_mu);
    for (;;) {
        while (!ix->mt_stop && (!ix->sb_job || ix->sb_hold))
            pthread_cond_wait(&ix->sb_cond, &ix->mt_mu);
        if (ix->mt_stop)
            break;
        slow_t *j = ix->sb_job;
        pthread_mutex_unlock(&ix->mt_mu);
        job_build(ix, j);
        pthread_mutex_lock(&ix->mt_mu);
        ix->sb_job = NULL;
        ix->sb_done = j;
        ix->mt_kick = 1;
        ix->mt_idle = 0;
        pthread_cond_signal(&ix->mt_cond);
    }
    pthread_mutex_unlock(&ix->mt_mu);
    return NULL;
}

rf_rc rf__index_maint_start(rf_index_t *ix, rf_err_t *err)
{
    ix->mt_kick = 1;
    ix->sb_job = ix->sb_done = NULL;
    ix->sb_busy_n = 0;
    __atomic_store_n(&ix->mt_stop, 0, __ATOMIC_RELAXED);
    if (pthread_create(&ix->sb_thr, NULL, slow_main, ix))
        return rf_err_sys(err, RF_EIO, "start the index's slow builder");
    ix->sb_started = 1;
    if (pthread_create(&ix->mt_thr, NULL, maint_main, ix)) {
        rf__index_maint_stop(ix);
        return rf_err_sys(err, RF_EIO, "start index maintenance thread");
    }
    ix->mt_started = 1;
    return RF_OK;
}

void rf__index_maint_stop(rf_index_t *ix)
{
    if (!ix->mt_started && !ix->sb_started)
        return;
    pthread_mutex_lock(&ix->mt_mu);
    __atomic_store_n(&ix->mt_stop, 1, __ATOMIC_RELAXED);
    pthread_cond_signal(&ix->mt_cond);
    pthread_cond_signal(&ix->sb_cond);
    pthread_mutex_unlock(&ix->mt_mu);
    if (ix->mt_started)
        pthread_join(ix->mt_thr, NULL);
    if (ix->sb_started)
        pthread_join(ix->sb_thr, NULL);
    /* A job handed over and not built, or built and not installed, is dropped: its
     * segment is picked again after a restart of the threads. */
    job_free(ix->sb_job);
    job_free(ix->sb_done);
    ix->sb_job = ix->sb_done = NULL;
    free(ix->sb_busy);
    ix->sb_busy = NULL;
    ix->sb_busy_n = 0;
    ix->mt_started = ix->sb_started = 0;
}

void rf__index_test_slow_hold(rf_index_t *ix, int hold)
{
    pthread_mutex_lock(&ix->mt_mu);
    ix->sb_hold = hold;
    pthread_cond_signal(&ix->sb_cond);
    pthread_mutex_unlock(&ix->mt_mu);
}

void rf__index_maint_kick(rf_index_t *ix)
{
    pthread_mutex_lock(&ix->mt_mu);
    ix->mt_kick = 1;
    ix->mt_idle = 0;
    pthread_cond_signal(&ix->mt_cond);
    pthread_mutex_unlock(&ix->mt_mu);
}

rf_rc rf__index_maint_wait(rf_index_t *ix, int64_t timeout_ms)
{
    struct timespec deadline;
    rf_rc rc = RF_OK;
    if (!ix->mt_started)
        return RF_OK;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(timeout_ms / 1000);
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ix->mt_mu);
    while (!(ix->mt_idle && !ix->mt_kick)) {
        if (pthread_cond_timedwait(&ix->mt_idle_cond, &ix->mt_mu, &deadline) == ETIMEDOUT &&
            !(ix->mt_idle && !ix->mt_kick)) {
            rc = RF_ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&ix->mt_mu);
    return rc;
}

/* ==== Introspection ==== */

static int id_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

rf_rc rf__index_vec_ids(rf_index_t *ix, int64_t **ids, size_t *n, int64_t *seq, rf_err_t *err)
{
    rf__index_snap_t *snap = rf__index_snap_acquire(ix);
    size_t cnt = 0, k = 0;
    int64_t *out;
    *ids = NULL;
    *n = 0;
    if (!snap)
        return rf_err_set(err, RF_EINDEX, "no vector index");
    for (size_t i = 0; i < snap->cnt; i++)
        cnt += snap->v[i].live_n;
    out = rf_xmalloc((cnt ? cnt : 1) * sizeof(*out));
    for (size_t i = 0; i < snap->cnt; i++) {
        const rf__index_view_t *v = &snap->v[i];
        for (size_t j = 0; j < v->n && k < cnt; j++) {
            if (rf__index_bit(v->live, j))
                out[k++] = v->seg->rows->vids[j];
        }
    }
    if (seq)
        *seq = snap->pos.seq;
    rf__index_snap_drop(ix, snap);
    qsort(out, k, sizeof(*out), id_cmp);
    *ids = out;
    *n = k;
    return RF_OK;
}

void rf__index_snap_stats(rf_index_t *ix, const rf__index_snap_t *snap, int64_t *mem, int64_t *live,
                          int64_t *dead, int64_t *pending)
{
    size_t m = __atomic_load_n(&ix->map_bytes, __ATOMIC_RELAXED), merge_live = 0;
    int64_t l = 0, d = 0, p = 0, merge_n = 0;
    int merge_interim = 0;
    for (size_t i = 0; snap && i < snap->cnt; i++) {
        const rf__index_view_t *v = &snap->v[i];
        const rf__index_seg_t *seg = v->seg;
        if (seg->kind == RF__SEG_FLAT)
            m += seg->cap * ((size_t)seg->dim * (sizeof(float) + (seg->codes ? 1 : 0)) +
                             (seg->sqm ? sizeof(*seg->sqm) : 0));
        else
            m += seg->ann_bytes;
        if (seg->ivf_codes) {
            size_t nlist, tot;
            const float *cent;
            rf__index_ivf_flat(seg->ann, &nlist, &cent);
            tot = seg->ivf_off[nlist];
            m += tot * ((size_t)seg->dim + sizeof(*seg->ivf_sqm)) + (nlist + 1) * sizeof(size_t);
        }
        /* iid -> vid, the blob pointers and their heap overhead, the blobs, the bitmap,
         * the inverted index of the attributes. */
        m += seg->cap * (sizeof(int64_t) + sizeof(uint8_t *)) + v->n * 16 + v->attr_bytes +
             v->live->nbytes;
        if (seg->inv)
            m += seg->inv->nkeys * (sizeof(uint64_t) + sizeof(uint32_t)) +
                 seg->inv->npost * sizeof(uint32_t);
        l += (int64_t)v->live_n;
        d += (int64_t)(v->n - v->live_n);
        switch (view_needs_work(ix, v)) {
        case 1:
            p++;
            break;
        case 2:
            merge_n++;
            merge_live += v->live_n;
            merge_interim |= seg->interim;
            break;
        }
    }
    /* Views waiting to be merged are pending once a merge of them is due (maint_step). */
    if (merge_live >= merge_min(ix) && (merge_n > 1 || merge_interim))
        p += merge_n;
    *mem = (int64_t)m;
    *live = l;
    *dead = d;
    *pending = p;
}
