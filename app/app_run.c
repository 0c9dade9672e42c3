/* app_run.c - `ragfeed run`: wires the stages into one pipeline on two threads.
 *
 *   main:   consumer (ingest/) -> decode + map (ingest/) -> cache + embed (embed/)
 *   apply:  one store transaction per batch, then the vector index (index/)
 *   HTTP threads (serve/) read index/ concurrently.
 *
 * Prepared batches pass from the main thread to the apply thread through a ring of
 * RING slots, in order, so a batch is embedded while the one before it is written.
 *
 * INVARIANT(offsets-with-state): each polled batch becomes one rf_index_apply() that
 * carries the batch's record changes, its dead letters and the next offset of every
 * partition it touched; the consumer starts each partition at the store's offset.
 * INVARIANT(bad-input-dead-letters): an event that cannot be decoded or mapped becomes a
 * dead letter (Kafka DLQ topic and store table) and its offset still advances.
 */
#include "app/app_int.h"
#include "app/app_reembed.h"
#include "embed/embed.h"
#include "iceberg/iceberg.h"
#include "index/index.h"
#include "ingest/ingest.h"
#include "serve/serve.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <string.h>

#include <jansson.h>

#define RING 3

/* One polled batch on its way through: the messages (kept alive until applied) and
 * every per-message array, reused from batch to batch; index i follows message i. */
typedef struct stage {
    rf_ingest_batch_t b;
    int ready; /* prepared, waiting for the apply thread (ring_mu) */
    rf_event_t *events;
    int *ev_ok;     /* 1: events[i] holds a decoded event */
    char **reasons; /* dead-letter reason of message i, or NULL */
    float *vecs;
    uint8_t *hashes;
    rf_embed_item_t *items;
    size_t *item_msg; /* message index of items[j] */
    rf_embed_label_t *labels_out;
    rf_index_op_t *ops;
    rf_index_dead_t *dead;
    rf_index_offset_t *offsets;
    size_t cap, nops, ndead, noffs, skipped;
    /* Dual-write while a second generation exists: its vectors, hashes and items. */
    float *vecs2;
    uint8_t *hashes2;
    rf_embed_item_t *items2;
    size_t cap2;
    int dim2;
    /* A re-embedding batch instead of polled messages (is_gen). */
    int is_gen;
    rf__app_rebatch_t rb;
    int64_t rb_gen;
} stage_t;

/* A request of the admin API, carried out by the main thread between batches. */
typedef enum ctl_kind { CTL_START = 1, CTL_CUTOVER, CTL_ROLLBACK, CTL_CANCEL } ctl_kind;

typedef struct ctl_req {
    ctl_kind kind;
    char *desc; /* START: the new generation's description */
    int dim;
    int dry_run, manual;
    int done;
    int status;   /* HTTP status of the answer */
    char *answer; /* JSON text */
} ctl_req_t;

typedef struct pipeline {
    rf_conf_t *cfg;
    rf_index_t *ix;
    /* The embedders of the active and the second generation.  The main thread alone
     * replaces them, under gen_lock (write); HTTP threads embed queries under it (read).
     * emb, dim, model and use_cache mirror `act` for the main thread. */
    rf__app_gen_t *act, *sec;
    pthread_rwlock_t gen_lock;
    rf_embed_t *emb;
    rf_ingest_mapper_t *mapper;
    rf_ingest_consumer_t *consumer;
    rf_serve_t *srv;
    rf_iceberg_exporter_t *exporter; /* NULL when iceberg.enabled = false */
    rf_serve_counters_t counters;
    pthread_mutex_t last_error_lock;
    int dim;
    int use_cache;     /* the content-hash cache pays off only for remote providers */
    const char *model; /* rf_embed_model_id(), recorded with every vector */
    const char *const *labels;
    size_t label_cnt;
    /* Cache and classification counters, read by HTTP threads (relaxed atomics). */
    int64_t cache_hits, cache_misses, classify_failed;
    /* Consumer lag: high watermarks copied from the consumer by the pipeline thread
     * (the consumer is not thread-safe), read by HTTP threads under lag_lock. */
    pthread_mutex_t lag_lock;
    rf_ingest_lag_t lag[256];
    size_t lag_cnt;
    int64_t lag_at_ms;
    rf_serve_section_t sections[4]; /* what /v1/status, /metrics and /readyz ask */
    /* The ring: the main thread fills slot `fill`, the apply thread applies slot
     * `drain`, each in turn; `ring_mu` guards every slot's `ready` flag, `draining`
     * and `apply_rc`. */
    stage_t ring[RING];
    size_t fill, drain;
    pthread_mutex_t ring_mu;
    pthread_cond_t ring_cond;
    int draining;   /* the main thread stops: apply what is ready, then exit */
    rf_rc apply_rc; /* the apply thread's failure, RF_OK while it runs */
    rf_err_t apply_err;
    pthread_t apply_thr;
    int apply_started;
    /* Re-embedding (main thread; the figures HTTP threads show are under ctl_mu). */
    pthread_mutex_t ctl_mu;
    pthread_cond_t ctl_cond;
    ctl_req_t *ctl; /* pending admin request */
    int stopping;
    int mig_running, mig_manual, mig_passes;
    int64_t mig_cursor, mig_done, mig_tokens, mig_t0, mig_retry_at, mig_gen;
    char mig_state[16]; /* "idle", "running", "ready", "done", "failed", "cancelled" */
    char mig_error[256];
} pipeline_t;

static int64_t store_offset(void *opaque, const char *topic, int32_t partition)
{
    pipeline_t *p = opaque;
    return rf_index_offset_get(p->ix, topic, partition);
}

/* Embeds a query for generation gen (the one the index serves); RF_EAGAIN when that
 * generation's embedder is gone (the caller asks the index again). */
static rf_rc embed_query(void *opaque, int64_t gen, const char *text, size_t len, float *out,
                         int dim, rf_err_t *err)
{
    pipeline_t *p = opaque;
    rf__app_gen_t *g;
    rf_rc rc;
    pthread_rwlock_rdlock(&p->gen_lock);
    g = p->act && p->act->gen == gen ? p->act : p->sec && p->sec->gen == gen ? p->sec : NULL;
    if (!g || g->dim != dim)
        rc = rf_err_set(err, RF_EAGAIN, "generation %lld has no embedder here", (long long)gen);
    else
        rc = rf_embed_query(g->emb, text, len, out, p->cfg->embed_timeout_ms, err);
    pthread_rwlock_unlock(&p->gen_lock);
    return rc;
}

static void set_last_error(pipeline_t *p, const char *msg)
{
    pthread_mutex_lock(&p->last_error_lock);
    snprintf(p->counters.last_error, sizeof(p->counters.last_error), "%s", msg);
    pthread_mutex_unlock(&p->last_error_lock);
}

static void stage_reserve(stage_t *st, size_t n, int dim)
{
    if (n <= st->cap)
        return;
    st->events = rf_xrealloc(st->events, n * sizeof(*st->events));
    st->ev_ok = rf_xrealloc(st->ev_ok, n * sizeof(*st->ev_ok));
    st->reasons = rf_xrealloc(st->reasons, n * sizeof(*st->reasons));
    st->vecs = rf_xrealloc(st->vecs, n * (size_t)dim * sizeof(float));
    st->hashes = rf_xrealloc(st->hashes, n * 32);
    st->items = rf_xrealloc(st->items, n * sizeof(*st->items));
    st->item_msg = rf_xrealloc(st->item_msg, n * sizeof(*st->item_msg));
    st->labels_out = rf_xrealloc(st->labels_out, n * sizeof(*st->labels_out));
    st->ops = rf_xrealloc(st->ops, n * sizeof(*st->ops));
    st->dead = rf_xrealloc(st->dead, n * sizeof(*st->dead));
    st->offsets = rf_xrealloc(st->offsets, n * sizeof(*st->offsets));
    st->cap = n;
}

/* Frees what one batch's events own and releases its messages. */
static void stage_clear(stage_t *st)
{
    for (size_t i = 0; i < st->b.cnt; i++) {
        if (st->ev_ok[i])
            rf_event_fini(&st->events[i]);
        free(st->reasons[i]);
    }
    rf_ingest_batch_clear(&st->b);
    st->nops = st->ndead = st->noffs = st->skipped = 0;
    if (st->is_gen)
        rf__app_rebatch_clear(&st->rb);
    st->is_gen = 0;
}

static void stage_fini(stage_t *st)
{
    if (st->cap)
        stage_clear(st);
    rf_ingest_batch_fini(&st->b);
    free(st->events);
    free(st->ev_ok);
    free(st->reasons);
    free(st->vecs);
    free(st->hashes);
    free(st->items);
    free(st->item_msg);
    free(st->labels_out);
    free(st->ops);
    free(st->dead);
    free(st->offsets);
    free(st->vecs2);
    free(st->hashes2);
    free(st->items2);
    rf__app_rebatch_clear(&st->rb);
}

/* Records the next offset of msg's partition; batches keep partition order, so the
 * last message of a partition sets its next offset. */
static size_t offsets_note(rf_index_offset_t *offs, size_t n, const rf_ingest_msg_t *msg)
{
    for (size_t i = 0; i < n; i++)
        if (offs[i].partition == msg->partition && !strcmp(offs[i].topic, msg->topic)) {
            if (msg->offset + 1 > offs[i].next_offset)
                offs[i].next_offset = msg->offset + 1;
            return n;
        }
    offs[n].topic = msg->topic;
    offs[n].partition = msg->partition;
    offs[n].next_offset = msg->offset + 1;
    return n + 1;
}

/* Runs fn until the provider answers.  While it is down or throttling for longer than
 * one wait, the consumer's partitions are paused (no unbounded buffering) and resumed
 * once it answers again; a transient failure never becomes a dead letter.  Returns
 * RF_ESTOPPED when asked to stop meanwhile (the batch is then not applied, and is
 * consumed again from the store's offsets at the next start). */
typedef rf_rc (*provider_call_fn)(pipeline_t *p, stage_t *st, size_t n, rf_err_t *err);

static rf_rc call_embed(pipeline_t *p, stage_t *st, size_t n, rf_err_t *err)
{
    return rf_embed_run(p->emb, st->items, n, 5000, err);
}

static rf_rc call_embed2(pipeline_t *p, stage_t *st, size_t n, rf_err_t *err)
{
    return rf_embed_run(p->sec->emb, st->items2, n, 5000, err);
}

static rf_rc call_classify(pipeline_t *p, stage_t *st, size_t n, rf_err_t *err)
{
    return rf_embed_classify(p->emb, st->items, n, st->labels_out, 5000, err);
}

static rf_rc with_backpressure(pipeline_t *p, provider_call_fn fn, stage_t *st, size_t n,
                               rf_err_t *err)
{
    int paused = 0;
    int64_t wait_ms = 1000;
    rf_rc rc;
    while ((rc = fn(p, st, n, err)) != RF_OK) {
        if (rc != RF_EUNAVAIL && rc != RF_EAUTH && rc != RF_ECONFIG)
            break;
        set_last_error(p, err->msg);
        if (!paused) {
            rf_ingest_consumer_pause(p->consumer, 1);
            paused = 1;
            RF_LOG(RF_LOG_WARN, RF_MOD_APP,
                   "code=%s embedding provider unavailable, "
                   "partitions paused: %s",
                   rf_rc_name(rc), err->msg);
        }
        /* A refused key or a refused request will not heal by itself as quickly as a
         * throttled endpoint: retry those slowly, so the log and the bill stay quiet. */
        if (rc != RF_EUNAVAIL) {
            for (int64_t waited = 0; waited < wait_ms && !rf__app_stop; waited += 100)
                rf_sleep_ms(100);
            wait_ms = wait_ms * 2 > 30000 ? 30000 : wait_ms * 2;
        }
        if (rf__app_stop) {
            rc = rf_err_set(err, RF_ESTOPPED, "stopped while the provider was unavailable");
            break;
        }
    }
    if (paused) {
        rf_ingest_consumer_pause(p->consumer, 0);
        if (rc == RF_OK)
            RF_LOG(RF_LOG_INFO, RF_MOD_APP,
                   "embedding provider answers again, partitions "
                   "resumed");
    }
    return rc;
}

static void dead_letter(stage_t *st, size_t i, const rf_ingest_msg_t *msg, const char *why)
{
    RF_LOG(RF_LOG_WARN, RF_MOD_APP, "topic=%s partition=%d offset=%lld dead letter: %s", msg->topic,
           (int)msg->partition, (long long)msg->offset, why);
    free(st->reasons[i]);
    st->reasons[i] = rf_xstrdup(why);
}

/* Main thread: decodes, maps, embeds (cache first) and classifies the polled batch in st,
 * sends its dead letters to the DLQ topic, and leaves st's ops, dead letters and offsets
 * ready for one store transaction. */
static rf_rc prepare_batch(pipeline_t *p, stage_t *st, rf_err_t *err)
{
    rf_ingest_batch_t *b = &st->b;
    size_t nops = 0, ndead = 0, noffs = 0, nitems = 0, skipped = 0;
    rf_rc rc = RF_OK;

    int64_t t_consumed = rf_now_ms(), t_embedded;

    stage_reserve(st, b->cnt, p->dim);
    if (p->sec && (b->cnt > st->cap2 || st->dim2 != p->sec->dim)) {
        st->vecs2 = rf_xrealloc(st->vecs2, b->cnt * (size_t)p->sec->dim * sizeof(float));
        st->hashes2 = rf_xrealloc(st->hashes2, b->cnt * 32);
        st->items2 = rf_xrealloc(st->items2, b->cnt * sizeof(*st->items2));
        st->cap2 = b->cnt;
        st->dim2 = p->sec->dim;
    }
    memset(st->ev_ok, 0, b->cnt * sizeof(*st->ev_ok));
    memset(st->reasons, 0, b->cnt * sizeof(*st->reasons));

    /* Decode and map; find each upsert's vector in the cache or queue it for the
     * provider. */
    for (size_t i = 0; i < b->cnt; i++) {
        const rf_ingest_msg_t *msg = &b->msgs[i];
        rf_event_t *ev = &st->events[i];
        rf_err_t derr = {0};
        noffs = offsets_note(st->offsets, noffs, msg);
        if (rf_ingest_decode(p->mapper, msg, ev, &derr)) {
            dead_letter(st, i, msg, derr.msg);
            continue;
        }
        st->ev_ok[i] = 1;
        if (ev->event_time_ms > 0)
            rf_serve_freshness_observe(p->srv, RF_SERVE_STAGE_CONSUMED,
                                       t_consumed - ev->event_time_ms);
        if (ev->op == RF_EVENT_UPSERT) {
            size_t tl = strlen(ev->text);
            float *vec = st->vecs + i * (size_t)p->dim;
            uint8_t *h = st->hashes + i * 32;
            rf_embed_item_t *it = &st->items[nitems];
            rf_embed_content_hash(p->model, p->dim, ev->text, tl, h);
            memset(it, 0, sizeof(*it));
            it->text = ev->text;
            it->len = tl;
            it->out = vec;
            /* INVARIANT: an unchanged text (same hash, same model) is never embedded
             * twice; the store's current records are the cache. */
            if (p->use_cache) {
                if (rf_index_vector_by_hash(p->ix, h, p->dim, vec, NULL) == RF_OK) {
                    it->done = 1;
                    p->cache_hits++;
                } else {
                    p->cache_misses++;
                }
            }
            if (p->sec) {
                /* Live ingest writes the second generation too, so a migration never
                 * has to come back for a record that changed while it ran. */
                rf__app_gen_t *g = p->sec;
                rf_embed_item_t *it2 = &st->items2[nitems];
                float *v2 = st->vecs2 + i * (size_t)g->dim;
                uint8_t *h2 = st->hashes2 + i * 32;
                rf_embed_content_hash(g->model_id, g->dim, ev->text, tl, h2);
                memset(it2, 0, sizeof(*it2));
                it2->text = ev->text;
                it2->len = tl;
                it2->out = v2;
                if (g->use_cache && rf_index_vector_by_hash(p->ix, h2, g->dim, v2, NULL) == RF_OK)
                    it2->done = 1;
            }
            st->item_msg[nitems++] = i;
        }
    }

    if (nitems && (rc = with_backpressure(p, call_embed, st, nitems, err)))
        goto out;
    if (nitems && p->sec) {
        /* The second generation never holds ingest back: when its embedder fails, the
         * records go without its vector and stay pending for the migration (a rollback
         * target then refuses the switch until they are filled). */
        rf_err_t e2 = {0};
        if (call_embed2(p, st, nitems, &e2))
            RF_LOG(RF_LOG_WARN, RF_MOD_APP,
                   "gen=%lld the second generation's embedder failed; its vectors of this "
                   "batch are left to the migration: %s",
                   (long long)p->sec->gen, e2.msg);
    }
    if (p->label_cnt && nitems) {
        if ((rc = with_backpressure(p, call_classify, st, nitems, err)))
            goto out;
    }

    t_embedded = rf_now_ms();
    for (size_t j = 0; j < nitems; j++) {
        const rf_embed_item_t *it = &st->items[j];
        const rf_event_t *ev = &st->events[st->item_msg[j]];
        if (it->rc == RF_OK && ev->event_time_ms > 0)
            rf_serve_freshness_observe(p->srv, RF_SERVE_STAGE_EMBEDDED,
                                       t_embedded - ev->event_time_ms);
        if (it->rc != RF_OK)
            dead_letter(st, st->item_msg[j], &b->msgs[st->item_msg[j]], it->reason);
    }

    for (size_t i = 0, j = 0; i < b->cnt; i++) {
        const rf_ingest_msg_t *msg = &b->msgs[i];
        rf_event_t *ev = &st->events[i];
        rf_index_op_t *op;
        const rf_embed_label_t *lab = NULL;
        if (st->ev_ok[i] && ev->op == RF_EVENT_UPSERT) {
            lab = p->label_cnt ? &st->labels_out[j] : NULL;
            j++;
        }
        if (st->reasons[i]) {
            rf_index_dead_t *d = &st->dead[ndead++];
            d->topic = msg->topic;
            d->partition = msg->partition;
            d->offset = msg->offset;
            d->key = msg->key;
            d->value = msg->value;
            d->reason = st->reasons[i];
            /* The Kafka dead-letter topic gets it before the store commits, so a crash
             * in between can repeat a DLQ message, never lose one. */
            if ((rc = rf_ingest_dlq_send(p->consumer, msg, st->reasons[i], err)))
                goto out;
            continue;
        }
        if (ev->op == RF_EVENT_SKIP) {
            skipped++;
            continue;
        }
        op = &st->ops[nops++];
        memset(op, 0, sizeof(*op));
        op->id = ev->id;
        op->source = ev->source;
        op->event_time_ms = ev->event_time_ms;
        op->source_pos = ev->source_pos;
        op->topic = msg->topic;
        op->partition = msg->partition;
        op->offset = msg->offset;
        op->model = p->model;
        if (ev->op == RF_EVENT_UPSERT) {
            op->kind = RF_INDEX_UPSERT;
            op->text = ev->text;
            op->metadata_json = ev->metadata_json;
            op->tenant = ev->tenant;
            op->vec = st->vecs + i * (size_t)p->dim;
            op->content_hash = st->hashes + i * 32;
            op->gen = p->act->gen;
            if (p->sec && st->items2[j - 1].done && st->items2[j - 1].rc == RF_OK) {
                /* A text the second embedder refused leaves the record pending there. */
                op->vec2 = st->vecs2 + i * (size_t)p->sec->dim;
                op->content_hash2 = st->hashes2 + i * 32;
                op->gen2 = p->sec->gen;
                op->model2 = p->sec->model_id;
            }
            if (lab && lab->ok) {
                op->label = p->labels[lab->label];
                op->label_score = lab->score;
            } else if (lab && lab->reason[0]) {
                /* A failed classification costs the record its label, never the record. */
                __atomic_add_fetch(&p->classify_failed, 1, __ATOMIC_RELAXED);
                RF_LOG(RF_LOG_WARN, RF_MOD_APP, "id=%s classification failed: %s", ev->id,
                       lab->reason);
            }
        } else if (ev->op == RF_EVENT_DELETE) {
            op->kind = RF_INDEX_DELETE;
        } else {
            op->kind = RF_INDEX_TRUNCATE;
            op->id = NULL;
        }
    }

    st->nops = nops;
    st->ndead = ndead;
    st->noffs = noffs;
    st->skipped = skipped;
out:
    return rc;
}

/* Apply thread: one store transaction for the prepared batch, the counters, and the
 * offsets committed to the group as a courtesy. */
static rf_rc apply_stage(pipeline_t *p, stage_t *st, rf_err_t *err)
{
    rf_index_batch_t batch;
    int64_t seq = 0;
    rf_rc rc;

    if (st->is_gen) {
        rf__app_rebatch_batch(&st->rb, st->rb_gen, &batch);
        return rf_index_apply(p->ix, &batch, NULL, err);
    }
    memset(&batch, 0, sizeof(batch));
    batch.ops = st->ops;
    batch.op_cnt = st->nops;
    batch.dead = st->dead;
    batch.dead_cnt = st->ndead;
    batch.offsets = st->offsets;
    batch.offset_cnt = st->noffs;
    if ((rc = rf_index_apply(p->ix, &batch, &seq, err)))
        return rc;

    {
        int64_t now = rf_now_ms();
        for (size_t i = 0; i < st->nops; i++)
            if (st->ops[i].event_time_ms > 0)
                rf_serve_freshness_observe(p->srv, RF_SERVE_STAGE_APPLIED,
                                           now - st->ops[i].event_time_ms);
        for (size_t i = 0; i < st->b.cnt; i++)
            rf_serve_events_count(p->srv, st->b.msgs[i].topic, RF_SERVE_EVENTS_CONSUMED, 1);
        for (size_t i = 0; i < st->nops; i++)
            rf_serve_events_count(p->srv, st->ops[i].topic, RF_SERVE_EVENTS_APPLIED, 1);
        for (size_t i = 0; i < st->ndead; i++)
            rf_serve_events_count(p->srv, st->dead[i].topic, RF_SERVE_EVENTS_DEAD, 1);
    }
    __atomic_add_fetch(&p->counters.events_consumed, (int64_t)st->b.cnt, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->counters.events_applied, (int64_t)st->nops, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->counters.events_dead, (int64_t)st->ndead, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->counters.events_skipped, (int64_t)st->skipped, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->counters.batches_applied, 1, __ATOMIC_RELAXED);
    RF_LOG(RF_LOG_DEBUG, RF_MOD_APP, "seq=%lld events=%zu applied=%zu dead=%zu batch applied",
           (long long)seq, st->b.cnt, st->nops, st->ndead);

    {
        const char **topics = rf_xmalloc((st->noffs + 1) * sizeof(*topics));
        int32_t *parts = rf_xmalloc((st->noffs + 1) * sizeof(*parts));
        int64_t *nexts = rf_xmalloc((st->noffs + 1) * sizeof(*nexts));
        for (size_t i = 0; i < st->noffs; i++) {
            topics[i] = st->offsets[i].topic;
            parts[i] = st->offsets[i].partition;
            nexts[i] = st->offsets[i].next_offset;
        }
        rf_ingest_consumer_commit(p->consumer, topics, parts, nexts, st->noffs);
        free(topics);
        free(parts);
        free(nexts);
    }
    return RF_OK;
}

/* The apply thread: applies ready slots in ring order until told to drain and nothing
 * is left, or until a batch fails (the main thread then stops). */
static void *apply_main(void *arg)
{
    pipeline_t *p = arg;
    rf_thread_name("rf-apply");
    for (;;) {
        stage_t *st = &p->ring[p->drain];
        rf_rc rc;
        pthread_mutex_lock(&p->ring_mu);
        while (!st->ready && !p->draining)
            pthread_cond_wait(&p->ring_cond, &p->ring_mu);
        if (!st->ready) {
            pthread_mutex_unlock(&p->ring_mu);
            break;
        }
        pthread_mutex_unlock(&p->ring_mu);
        rc = apply_stage(p, st, &p->apply_err);
        stage_clear(st);
        pthread_mutex_lock(&p->ring_mu);
        st->ready = 0;
        if (rc)
            p->apply_rc = rc;
        pthread_cond_broadcast(&p->ring_cond);
        pthread_mutex_unlock(&p->ring_mu);
        if (rc)
            break;
        p->drain = (p->drain + 1) % RING;
    }
    return NULL;
}

/* ==== What the pipeline reports through the HTTP API ==== */

static char *embed_status(void *opaque)
{
    pipeline_t *p = opaque;
    rf_embed_stats_t st;
    const char *model;
    int dim;
    char *r;
    pthread_rwlock_rdlock(&p->gen_lock);
    rf_embed_stats_get(p->act->emb, &st);
    model = p->act->model_id;
    dim = p->act->dim;
    r = rf_xasprintf(
        "{\"model\":\"%s\",\"dim\":%d,\"concurrency\":%d,\"concurrency_max\":%d,"
        "\"in_flight\":%d,\"backing_off\":%s,\"requests\":%llu,\"retries\":%llu,"
        "\"throttled\":%llu,\"timeouts\":%llu,\"errors\":%llu,\"texts\":%llu,\"deduped\":%llu,"
        "\"failed\":%llu,\"tokens\":%llu,\"cache_hits\":%lld,\"cache_misses\":%lld,"
        "\"classify_failed\":%lld}",
        model, dim, st.concurrency, st.concurrency_max, st.in_flight,
        st.backoff_until_ms > rf_mono_ms() ? "true" : "false", (unsigned long long)st.requests,
        (unsigned long long)st.retries, (unsigned long long)st.throttled,
        (unsigned long long)st.timeouts, (unsigned long long)st.errors,
        (unsigned long long)st.texts, (unsigned long long)st.deduped, (unsigned long long)st.failed,
        (unsigned long long)st.tokens, (long long)__atomic_load_n(&p->cache_hits, __ATOMIC_RELAXED),
        (long long)__atomic_load_n(&p->cache_misses, __ATOMIC_RELAXED),
        (long long)__atomic_load_n(&p->classify_failed, __ATOMIC_RELAXED));
    pthread_rwlock_unlock(&p->gen_lock);
    return r;
}

static void metric(rf_buf_t *out, const char *name, const char *type, const char *help,
                   unsigned long long v)
{
    rf_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name, v);
}

static void embed_metrics(void *opaque, rf_buf_t *out)
{
    pipeline_t *p = opaque;
    rf_embed_stats_t st;
    pthread_rwlock_rdlock(&p->gen_lock);
    rf_embed_stats_get(p->act->emb, &st);
    pthread_rwlock_unlock(&p->gen_lock);
    metric(out, "ragfeed_embed_requests_total", "counter", "HTTP requests to the provider.",
           st.requests);
    metric(out, "ragfeed_embed_retries_total", "counter",
           "Requests repeated after a transient failure.", st.retries);
    metric(out, "ragfeed_embed_throttled_total", "counter", "429 and 503 answers.", st.throttled);
    metric(out, "ragfeed_embed_timeouts_total", "counter", "Requests that timed out.", st.timeouts);
    metric(out, "ragfeed_embed_errors_total", "counter",
           "Other transient failures (5xx, connection, malformed body).", st.errors);
    metric(out, "ragfeed_embed_texts_total", "counter", "Texts sent to the provider.", st.texts);
    metric(out, "ragfeed_embed_failed_total", "counter",
           "Texts the provider refused for good (dead letters).", st.failed);
    metric(out, "ragfeed_embed_tokens_total", "counter",
           "Tokens reported by the provider, or estimated.", st.tokens);
    metric(out, "ragfeed_embed_concurrency", "gauge", "Requests the rate governor allows at once.",
           (unsigned long long)st.concurrency);
    metric(out, "ragfeed_embed_in_flight", "gauge", "Requests in flight.",
           (unsigned long long)st.in_flight);
    metric(out, "ragfeed_embed_backing_off", "gauge",
           "1 while the governor holds requests back after throttling.",
           st.backoff_until_ms > rf_mono_ms());
    metric(out, "ragfeed_embed_cache_hits_total", "counter",
           "Vectors reused from the store for an unchanged text.",
           (unsigned long long)__atomic_load_n(&p->cache_hits, __ATOMIC_RELAXED));
    metric(out, "ragfeed_embed_cache_misses_total", "counter", "Texts that had to be embedded.",
           (unsigned long long)__atomic_load_n(&p->cache_misses, __ATOMIC_RELAXED));
    metric(out, "ragfeed_classify_failed_total", "counter",
           "Records stored without a label because classification failed.",
           (unsigned long long)__atomic_load_n(&p->classify_failed, __ATOMIC_RELAXED));
}

/* Copies the consumer's high watermarks; pipeline thread, at most once a second. */
static void lag_refresh(pipeline_t *p)
{
    rf_ingest_lag_t tmp[256];
    size_t n;
    if (rf_mono_ms() - p->lag_at_ms < 1000)
        return;
    p->lag_at_ms = rf_mono_ms();
    n = rf_ingest_consumer_watermarks(p->consumer, tmp, 256);
    pthread_mutex_lock(&p->lag_lock);
    memcpy(p->lag, tmp, n * sizeof(*tmp));
    p->lag_cnt = n;
    pthread_mutex_unlock(&p->lag_lock);
}

/* Lag of one partition: messages after the store's next offset; -1 while unknown. */
static int64_t lag_of(pipeline_t *p, const rf_ingest_lag_t *l)
{
    int64_t next = rf_index_offset_get(p->ix, l->topic, l->partition);
    if (l->high_watermark < 0)
        return -1;
    return next < 0 ? l->high_watermark : (l->high_watermark > next ? l->high_watermark - next : 0);
}

static char *consumer_status(void *opaque)
{
    pipeline_t *p = opaque;
    rf_buf_t b;
    rf_buf_init(&b, 0);
    rf_buf_puts(&b, "{\"lag\":{");
    pthread_mutex_lock(&p->lag_lock);
    for (size_t i = 0; i < p->lag_cnt; i++)
        rf_buf_printf(&b, "%s\"%s/%d\":%lld", i ? "," : "", p->lag[i].topic,
                      (int)p->lag[i].partition, (long long)lag_of(p, &p->lag[i]));
    pthread_mutex_unlock(&p->lag_lock);
    rf_buf_puts(&b, "}}");
    return rf_buf_take(&b, NULL);
}

static void consumer_metrics(void *opaque, rf_buf_t *out)
{
    pipeline_t *p = opaque;
    rf_buf_puts(out, "# HELP ragfeed_consumer_lag Messages in the partition after the store's "
                     "next offset.\n# TYPE ragfeed_consumer_lag gauge\n");
    pthread_mutex_lock(&p->lag_lock);
    for (size_t i = 0; i < p->lag_cnt; i++)
        rf_buf_printf(out, "ragfeed_consumer_lag{topic=\"%s\",partition=\"%d\"} %lld\n",
                      p->lag[i].topic, (int)p->lag[i].partition, (long long)lag_of(p, &p->lag[i]));
    pthread_mutex_unlock(&p->lag_lock);
}

/* Lets the apply thread finish what is ready and waits for it. */
static void apply_stop(pipeline_t *p)
{
    if (!p->apply_started)
        return;
    pthread_mutex_lock(&p->ring_mu);
    p->draining = 1;
    pthread_cond_broadcast(&p->ring_cond);
    pthread_mutex_unlock(&p->ring_mu);
    pthread_join(p->apply_thr, NULL);
    p->apply_started = 0;
}

static void pipeline_fini(pipeline_t *p)
{
    apply_stop(p);
    for (size_t i = 0; i < RING; i++)
        stage_fini(&p->ring[i]);
    rf_ingest_consumer_free(p->consumer);
    /* Admin requests waiting for the main thread get their answer now. */
    pthread_mutex_lock(&p->ctl_mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->ctl_cond);
    pthread_mutex_unlock(&p->ctl_mu);
    rf_serve_stop(p->srv);
    /* After the last batch and after HTTP (whose threads call the exporter's status
     * callbacks): its final export sees everything applied. */
    rf_iceberg_exporter_stop(p->exporter);
    rf_index_close(p->ix);
    rf_ingest_mapper_free(p->mapper);
    rf__app_gen_free(p->act);
    rf__app_gen_free(p->sec);
    pthread_rwlock_destroy(&p->gen_lock);
    pthread_mutex_destroy(&p->ctl_mu);
    pthread_cond_destroy(&p->ctl_cond);
    pthread_mutex_destroy(&p->last_error_lock);
    pthread_mutex_destroy(&p->lag_lock);
    pthread_mutex_destroy(&p->ring_mu);
    pthread_cond_destroy(&p->ring_cond);
}

/* Main thread: waits until slot st is free again; returns the apply thread's failure. */
static rf_rc slot_wait(pipeline_t *p, stage_t *st, rf_err_t *err)
{
    rf_rc rc;
    pthread_mutex_lock(&p->ring_mu);
    while (st->ready && !p->apply_rc)
        pthread_cond_wait(&p->ring_cond, &p->ring_mu);
    rc = p->apply_rc;
    if (rc)
        *err = p->apply_err;
    pthread_mutex_unlock(&p->ring_mu);
    return rc;
}

static void slot_publish(pipeline_t *p, stage_t *st)
{
    pthread_mutex_lock(&p->ring_mu);
    st->ready = 1;
    pthread_cond_broadcast(&p->ring_cond);
    pthread_mutex_unlock(&p->ring_mu);
    p->fill = (p->fill + 1) % RING;
}

/* ==== Model generations: re-embedding beside live ingest ==== */

/* Waits until the apply thread has applied every prepared batch; the main thread may
 * then make the index's writer calls itself (the apply thread waits for the next slot). */
static rf_rc ring_drain(pipeline_t *p, rf_err_t *err)
{
    rf_rc rc;
    pthread_mutex_lock(&p->ring_mu);
    for (;;) {
        int busy = 0;
        for (size_t i = 0; i < RING; i++)
            busy |= p->ring[i].ready;
        if (!busy || p->apply_rc)
            break;
        pthread_cond_wait(&p->ring_cond, &p->ring_mu);
    }
    rc = p->apply_rc;
    if (rc)
        *err = p->apply_err;
    pthread_mutex_unlock(&p->ring_mu);
    return rc;
}

static void mig_state(pipeline_t *p, const char *state, const char *error)
{
    pthread_mutex_lock(&p->ctl_mu);
    snprintf(p->mig_state, sizeof(p->mig_state), "%s", state);
    if (error)
        snprintf(p->mig_error, sizeof(p->mig_error), "%s", error);
    pthread_mutex_unlock(&p->ctl_mu);
}

/* Mirrors the active generation's embedder into the fields the pipeline reads. */
static void act_mirror(pipeline_t *p)
{
    p->emb = p->act->emb;
    p->dim = p->act->dim;
    p->model = p->act->model_id;
    p->use_cache = p->act->use_cache;
}

/* A switch (cut-over or rollback) to the second generation; the embedders trade places
 * once the store and the index have switched. */
static rf_rc gen_switch(pipeline_t *p, int64_t *missing, rf_err_t *err)
{
    rf_rc rc;
    rf__app_gen_t *t;
    if ((rc = ring_drain(p, err)))
        return rc;
    if ((rc = rf_index_gen_activate(p->ix, p->sec->gen, missing, err)))
        return rc;
    pthread_rwlock_wrlock(&p->gen_lock);
    t = p->act;
    p->act = p->sec;
    p->sec = t;
    act_mirror(p);
    pthread_rwlock_unlock(&p->gen_lock);
    RF_LOG(RF_LOG_INFO, RF_MOD_APP, "gen=%lld model=%s dim=%d active; gen=%lld kept for rollback",
           (long long)p->act->gen, p->act->model_id, p->act->dim, (long long)p->sec->gen);
    return RF_OK;
}

/* One step of a running migration: fills st with a re-embedding batch (returns 1), or
 * ends a pass over the records (and switches when nothing is missing). */
static int mig_step(pipeline_t *p, stage_t *st)
{
    rf_err_t e = {0};
    int64_t missing = 0;
    rf_rc rc;
    if (rf_mono_ms() < p->mig_retry_at)
        return 0;
    rc = rf__app_rebatch_prepare(p->ix, p->sec, &p->mig_cursor, 256, &st->rb, &e);
    if (rc) {
        rf__app_rebatch_clear(&st->rb);
        /* The records stay pending: a provider that is down is tried again shortly,
         * while ingest goes on. */
        RF_LOG(RF_LOG_WARN, RF_MOD_APP, "gen=%lld re-embedding batch failed, retrying: %s",
               (long long)p->sec->gen, e.msg);
        mig_state(p, "running", e.msg);
        p->mig_retry_at = rf_mono_ms() + 1000;
        return 0;
    }
    if (st->rb.n) {
        st->is_gen = 1;
        st->rb_gen = p->sec->gen;
        pthread_mutex_lock(&p->ctl_mu);
        p->mig_done += (int64_t)st->rb.ngv;
        p->mig_tokens += st->rb.tokens;
        pthread_mutex_unlock(&p->ctl_mu);
        return 1;
    }
    rf__app_rebatch_clear(&st->rb);
    /* The end of a pass: what is still missing changed behind the cursor (or failed). */
    if ((rc = ring_drain(p, &e)) ||
        (rc = rf_index_gen_missing(p->ix, p->sec->gen, &missing, NULL, &e))) {
        mig_state(p, "failed", e.msg);
        p->mig_running = 0;
        return 0;
    }
    if (missing) {
        p->mig_cursor = 0;
        if (++p->mig_passes >= 3) {
            char msg[160];
            snprintf(msg, sizeof(msg),
                     "%lld records could not be embedded with generation %lld (see the log)",
                     (long long)missing, (long long)p->sec->gen);
            mig_state(p, "failed", msg);
            p->mig_running = 0;
        }
        return 0;
    }
    p->mig_running = 0;
    if (p->mig_manual) {
        mig_state(p, "ready", NULL);
        RF_LOG(RF_LOG_INFO, RF_MOD_APP, "gen=%lld complete, waiting for the cut-over",
               (long long)p->sec->gen);
        return 0;
    }
    if ((rc = gen_switch(p, NULL, &e)))
        mig_state(p, "failed", e.msg);
    else
        mig_state(p, "done", "");
    return 0;
}

static void mig_begin(pipeline_t *p, int64_t gen, int manual)
{
    pthread_mutex_lock(&p->ctl_mu);
    p->mig_running = 1;
    p->mig_manual = manual;
    p->mig_passes = 0;
    p->mig_cursor = 0;
    p->mig_done = 0;
    p->mig_tokens = 0;
    p->mig_t0 = rf_mono_ms();
    p->mig_retry_at = 0;
    p->mig_gen = gen;
    snprintf(p->mig_state, sizeof(p->mig_state), "running");
    p->mig_error[0] = '\0';
    pthread_mutex_unlock(&p->ctl_mu);
}

static char *json_err(const char *code, const char *msg)
{
    json_t *o = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* Main thread: carries out one admin request. */
static void ctl_handle(pipeline_t *p, ctl_req_t *r)
{
    rf_err_t e = {0};
    rf_rc rc = RF_OK;
    int64_t missing = 0;
    r->status = 200;
    if (r->kind == CTL_START) {
        rf__app_gen_t *g = NULL;
        rf_index_gen_state st = RF_INDEX_GEN_PREVIOUS;
        int building =
            p->sec && rf_index_gen_second(p->ix, NULL, &st) && st == RF_INDEX_GEN_BUILDING;
        int resume = building && rf__app_gen_desc_same(p->sec->desc, r->desc);
        if (rf__app_gen_desc_same(p->act->desc, r->desc)) {
            r->status = 400;
            r->answer = json_err("bad_request", "the active generation already uses that embedder");
            return;
        }
        if (building && !resume) {
            char msg[200];
            snprintf(msg, sizeof(msg), "generation %lld is being built; cancel it first",
                     (long long)p->sec->gen);
            r->status = 409;
            r->answer = json_err("conflict", msg);
            return;
        }
        if (r->dry_run) {
            rf__app_estimate_t est;
            if ((rc = rf__app_gen_open(p->cfg, 0, r->dim, r->desc, &g, &e)) ||
                (rc = rf__app_reembed_estimate(p->ix, g->model_id, g->dim, g->use_cache,
                                               building ? p->sec->gen : 0, &est, &e))) {
                rf__app_gen_free(g);
                goto fail;
            }
            r->answer = rf_xasprintf("{\"dry_run\":true,\"embedder\":%s,\"records\":%lld,"
                                     "\"cached\":%lld,\"duplicates\":%lld,\"texts\":%lld,"
                                     "\"tokens_estimated\":%lld}",
                                     r->desc, (long long)est.records, (long long)est.cached,
                                     (long long)est.duplicates, (long long)est.texts,
                                     (long long)est.tokens);
            rf__app_gen_free(g);
            return;
        }
        if (building) { /* resume a build that stopped */
            if (!p->mig_running)
                mig_begin(p, p->sec->gen, r->manual);
            r->status = 202;
            r->answer =
                rf_xasprintf("{\"generation\":%lld,\"state\":\"running\"}", (long long)p->sec->gen);
            return;
        }
        if ((rc = rf__app_gen_open(p->cfg, 0, r->dim, r->desc, &g, &e)))
            goto fail;
        if ((rc = ring_drain(p, &e)) ||
            (rc = rf_index_gen_create(p->ix, r->dim, r->desc, &g->gen, &e))) {
            rf__app_gen_free(g);
            goto fail;
        }
        pthread_rwlock_wrlock(&p->gen_lock);
        rf__app_gen_free(p->sec); /* a previous generation: dropped by the new one */
        p->sec = g;
        pthread_rwlock_unlock(&p->gen_lock);
        mig_begin(p, g->gen, r->manual);
        r->status = 202;
        r->answer = rf_xasprintf("{\"generation\":%lld,\"state\":\"running\",\"embedder\":%s}",
                                 (long long)g->gen, r->desc);
        return;
    }
    if (r->kind == CTL_CANCEL) {
        if (!p->sec) {
            r->status = 404;
            r->answer = json_err("not_found", "there is no second generation");
            return;
        }
        if ((rc = ring_drain(p, &e)) || (rc = rf_index_gen_drop(p->ix, p->sec->gen, &e)))
            goto fail;
        r->answer = rf_xasprintf("{\"dropped\":%lld}", (long long)p->sec->gen);
        pthread_rwlock_wrlock(&p->gen_lock);
        rf__app_gen_free(p->sec);
        p->sec = NULL;
        pthread_rwlock_unlock(&p->gen_lock);
        if (p->mig_running) {
            p->mig_running = 0;
            mig_state(p, "cancelled", "");
        }
        return;
    }
    /* CUTOVER, ROLLBACK */
    {
        rf_index_gen_state st = RF_INDEX_GEN_BUILDING;
        int want_prev = r->kind == CTL_ROLLBACK;
        if (!p->sec || !rf_index_gen_second(p->ix, NULL, &st) ||
            (st == RF_INDEX_GEN_PREVIOUS) != want_prev) {
            r->status = 404;
            r->answer = json_err("not_found", want_prev ? "there is no previous generation"
                                                        : "there is no generation being built");
            return;
        }
        if ((rc = gen_switch(p, &missing, &e)))
            goto fail;
        p->mig_running = 0;
        mig_state(p, want_prev ? "rolled_back" : "done", "");
        r->answer =
            rf_xasprintf("{\"active\":%lld,\"embedder\":%s}", (long long)p->act->gen, p->act->desc);
        return;
    }
fail:
    r->status = rc == RF_EAGAIN                       ? 409
                : rc == RF_ECONFIG || rc == RF_EINVAL ? 400
                : rc == RF_EBUSY                      ? 409
                                                      : 500;
    r->answer = json_err(r->status == 500   ? "internal"
                         : r->status == 400 ? "bad_request"
                                            : "conflict",
                         e.msg[0] ? e.msg : rf_rc_msg(rc));
}

static void ctl_poll(pipeline_t *p)
{
    ctl_req_t *r;
    pthread_mutex_lock(&p->ctl_mu);
    r = p->ctl;
    pthread_mutex_unlock(&p->ctl_mu);
    if (!r)
        return;
    ctl_handle(p, r);
    pthread_mutex_lock(&p->ctl_mu);
    r->done = 1;
    p->ctl = NULL;
    pthread_cond_broadcast(&p->ctl_cond);
    pthread_mutex_unlock(&p->ctl_mu);
}

/* The generations and the migration, for the admin API and /v1/status. HTTP threads. */
static char *reembed_status(void *opaque)
{
    pipeline_t *p = opaque;
    rf_index_gen_t *gens = NULL;
    size_t n = 0;
    int64_t second, missing = 0, total = 0;
    rf_index_gen_state st = RF_INDEX_GEN_BUILDING;
    json_t *o = json_object(), *arr = json_array(), *m;
    char *s;
    if (rf_index_gen_list(p->ix, &gens, &n, NULL) == RF_OK) {
        for (size_t i = 0; i < n; i++) {
            json_t *g = json_object();
            json_object_set_new(g, "generation", json_integer(gens[i].gen));
            json_object_set_new(g, "state", json_string(rf_index_gen_state_name(gens[i].state)));
            json_object_set_new(g, "dim", json_integer(gens[i].dim));
            json_object_set_new(g, "embedder", json_loads(gens[i].desc, 0, NULL));
            json_object_set_new(g, "tokens", json_integer(gens[i].tokens));
            json_object_set_new(g, "created_at_ms", json_integer(gens[i].created_at_ms));
            json_object_set_new(g, "activated_at_ms", json_integer(gens[i].activated_at_ms));
            json_array_append_new(arr, g);
        }
        rf_index_gen_list_free(gens, n);
    }
    json_object_set_new(o, "generations", arr);
    second = rf_index_gen_second(p->ix, NULL, &st);
    if (second)
        rf_index_gen_missing(p->ix, second, &missing, &total, NULL);
    else
        total = rf_index_record_count(p->ix);
    pthread_mutex_lock(&p->ctl_mu);
    if (p->mig_gen) {
        double secs = (double)(rf_mono_ms() - p->mig_t0) / 1000.0;
        m = json_object();
        json_object_set_new(m, "generation", json_integer(p->mig_gen));
        json_object_set_new(m, "state", json_string(p->mig_state));
        json_object_set_new(m, "total", json_integer(total));
        json_object_set_new(m, "done",
                            json_integer(second == p->mig_gen ? total - missing : total));
        json_object_set_new(m, "missing", json_integer(second == p->mig_gen ? missing : 0));
        json_object_set_new(m, "embedded", json_integer(p->mig_done));
        json_object_set_new(m, "rate", json_real(secs > 0 ? (double)p->mig_done / secs : 0));
        json_object_set_new(m, "tokens", json_integer(p->mig_tokens));
        json_object_set_new(m, "passes", json_integer(p->mig_passes));
        json_object_set_new(m, "error", json_string(p->mig_error));
        json_object_set_new(o, "migration", m);
    }
    pthread_mutex_unlock(&p->ctl_mu);
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* The admin API (serve checks the key's admin rights first).  HTTP threads: requests
 * that change generations are handed to the main thread, which answers between batches. */
static int admin_api(void *opaque, const char *method, const char *path, const char *body,
                     size_t len, char **out)
{
    pipeline_t *p = opaque;
    ctl_req_t r;
    memset(&r, 0, sizeof(r));
    if (!strcmp(path, "/v1/admin/reembed") && !strcmp(method, "GET")) {
        *out = reembed_status(p);
        return 200;
    }
    if (strcmp(method, "POST") != 0) {
        *out = json_err("method_not_allowed", "POST or GET /v1/admin/reembed");
        return 405;
    }
    if (!strcmp(path, "/v1/admin/reembed")) {
        json_error_t je;
        json_t *o = len ? json_loadb(body, len, 0, &je) : json_object();
        const char *prov = NULL, *model = NULL, *url = NULL, *cut = NULL;
        json_int_t dim = 0;
        if (!json_is_object(o) || json_unpack_ex(o, &je, 0, "{s?s,s?s,s?I,s?s,s?b,s?s}", "provider",
                                                 &prov, "model", &model, "dim", &dim, "url", &url,
                                                 "dry_run", &r.dry_run, "cutover", &cut)) {
            char msg[300];
            snprintf(msg, sizeof(msg), "body: %s", o ? je.text : "not a JSON object");
            json_decref(o);
            *out = json_err("bad_request", msg);
            return 400;
        }
        if ((prov && rf__app_provider_parse(prov) < 0) || (dim && (dim < 8 || dim > 8192)) ||
            (cut && strcmp(cut, "auto") && strcmp(cut, "manual"))) {
            json_decref(o);
            *out = json_err("bad_request", "provider must be hash, openai, ollama or tei; dim "
                                           "8..8192; cutover auto or manual");
            return 400;
        }
        r.kind = CTL_START;
        r.manual = cut && !strcmp(cut, "manual");
        r.desc = rf__app_gen_desc_make(p->cfg, prov, model, (int)dim, url);
        {
            json_t *d = json_loads(r.desc, 0, NULL);
            r.dim = (int)json_integer_value(json_object_get(d, "dim"));
            json_decref(d);
        }
        json_decref(o);
    } else if (!strcmp(path, "/v1/admin/reembed/cutover")) {
        r.kind = CTL_CUTOVER;
    } else if (!strcmp(path, "/v1/admin/reembed/rollback")) {
        r.kind = CTL_ROLLBACK;
    } else if (!strcmp(path, "/v1/admin/reembed/cancel")) {
        r.kind = CTL_CANCEL;
    } else {
        *out = json_err("not_found", "no such admin resource");
        return 404;
    }
    pthread_mutex_lock(&p->ctl_mu);
    if (p->ctl) {
        pthread_mutex_unlock(&p->ctl_mu);
        free(r.desc);
        *out = json_err("conflict", "another admin request is being carried out");
        return 409;
    }
    p->ctl = &r;
    while (!r.done && !p->stopping)
        pthread_cond_wait(&p->ctl_cond, &p->ctl_mu);
    if (!r.done)
        p->ctl = NULL;
    pthread_mutex_unlock(&p->ctl_mu);
    free(r.desc);
    if (!r.done) {
        *out = json_err("unavailable", "the instance is stopping");
        return 503;
    }
    *out = r.answer;
    return r.status;
}

/* The embedders of the store's generations.  The store's active generation is the one
 * searches and records use, whatever the configuration says now: a configuration that
 * names another embedder is reported, and `ragfeed reembed` moves the store to it. */
static rf_rc gens_open(pipeline_t *p, const char *cfg_desc, rf_err_t *err)
{
    rf_index_gen_t *gens = NULL;
    size_t n = 0;
    rf_rc rc;
    if ((rc = rf_index_gen_list(p->ix, &gens, &n, err)))
        return rc;
    for (size_t i = 0; i < n && !rc; i++) {
        rf__app_gen_t *g = NULL;
        if (gens[i].state == RF_INDEX_GEN_ACTIVE) {
            if (!rf__app_gen_desc_same(gens[i].desc, cfg_desc))
                RF_LOG(RF_LOG_WARN, RF_MOD_APP,
                       "gen=%lld the store's active generation uses %s, not the configured %s; "
                       "serving with the store's (run `ragfeed reembed` to move to the "
                       "configured one)",
                       (long long)gens[i].gen, gens[i].desc, cfg_desc);
            rc = rf__app_gen_open(p->cfg, gens[i].gen, gens[i].dim, gens[i].desc, &p->act, err);
            continue;
        }
        if (rf__app_gen_open(p->cfg, gens[i].gen, gens[i].dim, gens[i].desc, &g, err)) {
            /* Without its embedder the second generation is not written: the build
             * waits, a rollback target goes stale (the switch then refuses). */
            RF_LOG(RF_LOG_ERROR, RF_MOD_APP, "gen=%lld no embedder for the second generation: %s",
                   (long long)gens[i].gen, err->msg);
            continue;
        }
        p->sec = g;
        if (gens[i].state == RF_INDEX_GEN_BUILDING) {
            /* A migration stopped by a stop or a crash resumes where the store says. */
            mig_begin(p, g->gen, 0);
            p->mig_cursor = 0;
            RF_LOG(RF_LOG_INFO, RF_MOD_APP, "gen=%lld resuming the re-embedding",
                   (long long)g->gen);
        }
    }
    rf_index_gen_list_free(gens, n);
    if (!rc && !p->act)
        rc = rf_err_set(err, RF_ECORRUPT, "the store has no active generation");
    return rc;
}

int rf__app_run_pipeline(rf_conf_t *cfg, void (*on_ready)(void *, int), void *opaque)
{
    pipeline_t p;
    rf_err_t err = {0};
    rf_index_opts_t io;
    rf_cpus_t cpus_all;
    rf_serve_opts_t so;
    char *gen_desc = NULL;
    char *keys_path = rf_xasprintf("%s/keys.db", cfg->state_dir);
    rf_rc rc;
    int code = RF_EXIT_OK;

    memset(&p, 0, sizeof(p));
    pthread_mutex_init(&p.last_error_lock, NULL);
    pthread_mutex_init(&p.lag_lock, NULL);
    pthread_mutex_init(&p.ring_mu, NULL);
    pthread_cond_init(&p.ring_cond, NULL);
    pthread_mutex_init(&p.ctl_mu, NULL);
    pthread_cond_init(&p.ctl_cond, NULL);
    pthread_rwlock_init(&p.gen_lock, NULL);
    snprintf(p.mig_state, sizeof(p.mig_state), "idle");
    for (size_t i = 0; i < RING; i++)
        rf_ingest_batch_init(&p.ring[i].b);
    p.cfg = cfg;
    p.dim = (int)cfg->embed_dim;
    p.counters.last_error_lock = &p.last_error_lock;

    memset(&io, 0, sizeof(io));
    io.dir = cfg->state_dir;
    io.dim = p.dim;
    gen_desc = rf__app_gen_desc_make(cfg, NULL, NULL, 0, NULL);
    io.gen_desc = gen_desc;
    io.dim_from_store = 1;
    io.checkpoint_interval_ms = cfg->index_checkpoint_interval_ms;
    io.segment_size = cfg->index_segment_size;
    io.factory = cfg->index_factory;
    io.compact_ratio = cfg->index_compact_ratio;
    io.ef_search = (int)cfg->index_hnsw_ef_search;
    io.ivf_nprobe = (int)cfg->index_ivf_nprobe;
    io.filter_exact_max = cfg->index_filter_exact_max;
    io.work_nice = (int)cfg->ingest_nice;
    io.work_cpus = cfg->ingest_cpu_set;
    if ((rc = rf_index_open(&io, &p.ix, &err)))
        goto fail;
    if ((rc = rf_iceberg_exporter_start(cfg, &p.exporter, &err)))
        goto fail;
    if ((rc = rf_ingest_mapper_new(cfg, &p.mapper, &err)))
        goto fail;
    if ((rc = gens_open(&p, gen_desc, &err)))
        goto fail;
    act_mirror(&p);
    p.label_cnt = rf_embed_labels(p.emb, &p.labels);

    memset(&so, 0, sizeof(so));
    so.listen = cfg->serve_listen;
    so.threads = (int)cfg->serve_threads;
    so.max_body = (size_t)cfg->serve_max_body;
    so.max_k = (int)cfg->serve_max_k;
    so.dim = p.dim;
    so.ix = p.ix;
    so.embed = embed_query;
    so.embed_opaque = &p;
    so.admin = admin_api;
    so.admin_opaque = &p;
    so.counters = &p.counters;
    so.auth = cfg->serve_auth;
    so.keys_path = keys_path;
    so.max_wait_ms = cfg->serve_max_wait_ms;
    so.max_connections = (int)cfg->serve_max_connections;
    so.rate_per_key = cfg->serve_rate_per_key;
    so.rate_burst = (int)cfg->serve_rate_burst;
    p.sections[0] = (rf_serve_section_t){"embed", &p, embed_status, embed_metrics, NULL};
    p.sections[1] = (rf_serve_section_t){"consumer", &p, consumer_status, consumer_metrics, NULL};
    p.sections[2] = (rf_serve_section_t){"iceberg", p.exporter, rf_iceberg_exporter_status_json,
                                         rf_iceberg_exporter_metrics, rf_iceberg_exporter_unready};
    p.sections[3] = (rf_serve_section_t){"reembed", &p, reembed_status, NULL, NULL};
    so.sections = p.sections;
    so.section_cnt = 4;
    /* The HTTP threads inherit this thread's CPUs (serve.cpus); then it takes ingest's. */
    rf_cpus_current(&cpus_all);
    if (rf_thread_cpus(&cfg->serve_cpu_set))
        RF_LOG(RF_LOG_WARN, RF_MOD_APP, "serve.cpus=%s not applied: %s", cfg->serve_cpus,
               strerror(errno));
    rc = rf_serve_start(&so, &p.srv, &err);
    if (rf_thread_cpus(&cpus_all))
        RF_LOG(RF_LOG_WARN, RF_MOD_APP, "the process's CPUs not restored: %s", strerror(errno));
    if (rc)
        goto fail;
    RF_LOG(RF_LOG_INFO, RF_MOD_APP, "listen=127.0.0.1:%d serving HTTP", rf_serve_port(p.srv));

    /* From here on this thread is ingest's (consume, embed), and so are the threads it
     * starts: the consumer's, the apply thread, re-embedding.  The HTTP threads, started
     * above, keep the process's priority (ingest.nice). */
    if (cfg->ingest_nice && rf_thread_nice((int)cfg->ingest_nice))
        RF_LOG(RF_LOG_WARN, RF_MOD_APP, "ingest.nice=%lld not applied: %s",
               (long long)cfg->ingest_nice, strerror(errno));
    if (rf_thread_cpus(&io.work_cpus))
        RF_LOG(RF_LOG_WARN, RF_MOD_APP, "ingest.cpus=%s not applied: %s", cfg->ingest_cpus,
               strerror(errno));
    if ((rc = rf_ingest_consumer_new(cfg, store_offset, &p, &p.consumer, &err)))
        goto fail;
    __atomic_store_n(&p.counters.ready, 1, __ATOMIC_RELEASE);
    RF_LOG(RF_LOG_INFO, RF_MOD_APP, "records=%lld seq=%lld ready",
           (long long)rf_index_record_count(p.ix), (long long)rf_index_seq(p.ix));
    if (on_ready)
        on_ready(opaque, rf_serve_port(p.srv));

    if (pthread_create(&p.apply_thr, NULL, apply_main, &p)) {
        rc = rf_err_sys(&err, RF_EIO, "start the apply thread");
        goto fail;
    }
    p.apply_started = 1;

    while (!rf__app_stop) {
        stage_t *st = &p.ring[p.fill];
        ctl_poll(&p);
        if ((rc = slot_wait(&p, st, &err))) {
            RF_LOG(RF_LOG_ERROR, RF_MOD_APP, "code=%s batch failed: %s", rf_rc_name(rc), err.msg);
            goto fail;
        }
        /* While a migration runs, a short poll lets its batches flow between events. */
        rc = rf_ingest_consumer_poll(
            p.consumer, &st->b, (size_t)cfg->source_batch_max,
            p.mig_running ? 5 : (int)(cfg->source_batch_ms ? cfg->source_batch_ms : 100), &err);
        if (rc) {
            RF_LOG(RF_LOG_ERROR, RF_MOD_APP, "code=%s consumer failed: %s", rf_rc_name(rc),
                   err.msg);
            goto fail;
        }
        lag_refresh(&p);
        if (st->b.cnt) {
            if ((rc = prepare_batch(&p, st, &err))) {
                stage_clear(st);
                if (rc == RF_ESTOPPED)
                    break;
                RF_LOG(RF_LOG_ERROR, RF_MOD_APP, "code=%s batch failed: %s", rf_rc_name(rc),
                       err.msg);
                goto fail;
            }
            slot_publish(&p, st);
        }
        /* Re-embedding shares the ring with ingest, one batch after each polled one:
         * neither starves the other, and the apply thread stays the only writer. */
        if (p.mig_running) {
            st = &p.ring[p.fill];
            if ((rc = slot_wait(&p, st, &err))) {
                RF_LOG(RF_LOG_ERROR, RF_MOD_APP, "code=%s batch failed: %s", rf_rc_name(rc),
                       err.msg);
                goto fail;
            }
            if (mig_step(&p, st))
                slot_publish(&p, st);
        }
    }
    /* What is prepared is applied before the stop: it is complete, and applying it saves
     * consuming it again at the next start. */
    apply_stop(&p);
    if ((rc = p.apply_rc)) {
        err = p.apply_err;
        goto fail;
    }
    RF_LOG(RF_LOG_INFO, RF_MOD_APP, "seq=%lld stopping", (long long)rf_index_seq(p.ix));
    goto out;
fail:
    if (err.msg[0]) {
        set_last_error(&p, err.msg);
        fprintf(stderr, "ragfeed run: %s\n", err.msg);
    }
    code = rf__app_exit_for(rc);
out:
    pipeline_fini(&p);
    free(keys_path);
    free(gen_desc);
    return code;
}

int rf__app_cmd_run(int argc, char **argv)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"set", required_argument, NULL, 's'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    rf_app_confargs_t ca = {0};
    rf_conf_t *cfg;
    int opt, code = RF_EXIT_OK;

    ca.sets = rf_xcalloc((size_t)argc, sizeof(char *));
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            ca.file = optarg;
            break;
        case 's':
            ca.sets[ca.set_cnt++] = optarg;
            break;
        case 'h':
            free(ca.sets);
            return rf__app_cmd_help("run");
        default:
            free(ca.sets);
            return rf__app_usage_error("run", "unknown or incomplete option \"%s\"",
                                       argv[optind - 1]);
        }
    }
    if (optind < argc) {
        code = rf__app_usage_error("run", "unexpected argument \"%s\"", argv[optind]);
        free(ca.sets);
        return code;
    }
    cfg = rf__app_conf_load(&ca, 1, &code);
    free(ca.sets);
    if (!cfg)
        return code;
    if (rf__app_log_setup(cfg, &code) == 0) {
        rf__app_signals_install();
        code = rf__app_run_pipeline(cfg, NULL, NULL);
    }
    rf_conf_free(cfg);
    return code;
}
