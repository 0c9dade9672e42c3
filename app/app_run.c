/* app_run.c - `ragfeed run`: wires the stages into one pipeline.
 *
 *   consumer (ingest/) -> decode + map (ingest/) -> embed (embed/) -> apply (index/)
 *                                                          \-> HTTP (serve/) reads index/
 *
 * INVARIANT(offsets-with-state): each polled batch becomes one rf_index_apply() that
 * carries the batch's record changes, its dead letters and the next offset of every
 * partition it touched; the consumer starts each partition at the store's offset.
 * INVARIANT(bad-input-dead-letters): an event that cannot be decoded or mapped becomes a
 * dead letter (Kafka DLQ topic and store table) and its offset still advances.
 */
#include "app/app_int.h"
#include "embed/embed.h"
#include "index/index.h"
#include "ingest/ingest.h"
#include "serve/serve.h"

#include <getopt.h>
#include <pthread.h>
#include <string.h>

typedef struct pipeline {
    rf_conf_t *cfg;
    rf_index_t *ix;
    rf_ingest_mapper_t *mapper;
    rf_ingest_consumer_t *consumer;
    rf_serve_t *srv;
    rf_serve_counters_t counters;
    pthread_mutex_t last_error_lock;
    int dim;
    /* Per-batch scratch, reused across batches. */
    rf_event_t *events;
    rf_index_op_t *ops;
    rf_index_dead_t *dead;
    char **reasons;
    float *vecs;
    uint8_t *hashes;
    rf_index_offset_t *offsets;
    size_t cap;
} pipeline_t;

static int64_t store_offset(void *opaque, const char *topic, int32_t partition)
{
    pipeline_t *p = opaque;
    return rf_index_offset_get(p->ix, topic, partition);
}

static rf_rc embed_query(void *opaque, const char *text, size_t len, float *out, rf_err_t *err)
{
    pipeline_t *p = opaque;
    (void)err;
    rf_embed_hash(text, len, p->dim, out);
    return RF_OK;
}

static void set_last_error(pipeline_t *p, const char *msg)
{
    pthread_mutex_lock(&p->last_error_lock);
    snprintf(p->counters.last_error, sizeof(p->counters.last_error), "%s", msg);
    pthread_mutex_unlock(&p->last_error_lock);
}

static void scratch_reserve(pipeline_t *p, size_t n)
{
    if (n <= p->cap)
        return;
    p->events = rf_xrealloc(p->events, n * sizeof(*p->events));
    p->ops = rf_xrealloc(p->ops, n * sizeof(*p->ops));
    p->dead = rf_xrealloc(p->dead, n * sizeof(*p->dead));
    p->reasons = rf_xrealloc(p->reasons, n * sizeof(*p->reasons));
    p->vecs = rf_xrealloc(p->vecs, n * (size_t)p->dim * sizeof(float));
    p->hashes = rf_xrealloc(p->hashes, n * 32);
    p->offsets = rf_xrealloc(p->offsets, n * sizeof(*p->offsets));
    p->cap = n;
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

/* Decodes, maps and embeds one polled batch, applies it in one store transaction,
 * then commits the offsets to the group as a courtesy. */
static rf_rc process_batch(pipeline_t *p, rf_ingest_batch_t *b, rf_err_t *err)
{
    size_t nops = 0, ndead = 0, noffs = 0, nev = 0, skipped = 0;
    rf_index_batch_t batch;
    rf_rc rc = RF_OK;
    int64_t seq = 0;

    scratch_reserve(p, b->cnt);
    for (size_t i = 0; i < b->cnt; i++) {
        const rf_ingest_msg_t *msg = &b->msgs[i];
        rf_event_t *ev = &p->events[nev];
        rf_err_t derr = {0};
        noffs = offsets_note(p->offsets, noffs, msg);
        if (rf_ingest_decode(p->mapper, msg, ev, &derr)) {
            rf_index_dead_t *d = &p->dead[ndead];
            RF_LOG(RF_LOG_WARN, RF_MOD_APP,
                   "topic=%s partition=%d offset=%lld code=%s dead letter: %s", msg->topic,
                   (int)msg->partition, (long long)msg->offset, rf_rc_name(derr.code),
                   derr.msg);
            p->reasons[ndead] = rf_xstrdup(derr.msg);
            d->topic = msg->topic;
            d->partition = msg->partition;
            d->offset = msg->offset;
            d->key = msg->key;
            d->value = msg->value;
            d->reason = p->reasons[ndead];
            ndead++;
            /* The Kafka dead-letter topic gets it before the store commits, so a crash
             * in between can repeat a DLQ message, never lose one. */
            rc = rf_ingest_dlq_send(p->consumer, msg, derr.msg, err);
            if (rc)
                goto out;
            continue;
        }
        nev++;
        if (ev->op == RF_EVENT_SKIP) {
            skipped++;
            continue;
        }
        rf_index_op_t *op = &p->ops[nops++];
        memset(op, 0, sizeof(*op));
        op->id = ev->id;
        op->source = ev->source;
        op->event_time_ms = ev->event_time_ms;
        op->source_pos = ev->source_pos;
        op->topic = msg->topic;
        op->partition = msg->partition;
        op->offset = msg->offset;
        op->model = p->cfg->embed_model;
        if (ev->op == RF_EVENT_UPSERT) {
            size_t tl = strlen(ev->text);
            float *vec = p->vecs + (nops - 1) * (size_t)p->dim;
            uint8_t *h = p->hashes + (nops - 1) * 32;
            op->kind = RF_INDEX_UPSERT;
            op->text = ev->text;
            op->metadata_json = ev->metadata_json;
            op->tenant = ev->tenant;
            rf_embed_hash(ev->text, tl, p->dim, vec);
            rf_embed_content_hash(p->cfg->embed_model, p->dim, ev->text, tl, h);
            op->vec = vec;
            op->content_hash = h;
        } else if (ev->op == RF_EVENT_DELETE) {
            op->kind = RF_INDEX_DELETE;
        } else {
            op->kind = RF_INDEX_TRUNCATE;
            op->id = NULL;
        }
    }

    batch.ops = p->ops;
    batch.op_cnt = nops;
    batch.dead = p->dead;
    batch.dead_cnt = ndead;
    batch.offsets = p->offsets;
    batch.offset_cnt = noffs;
    rc = rf_index_apply(p->ix, &batch, &seq, err);
    if (rc)
        goto out;

    __atomic_add_fetch(&p->counters.events_consumed, (int64_t)b->cnt, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->counters.events_applied, (int64_t)nops, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->counters.events_dead, (int64_t)ndead, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->counters.events_skipped, (int64_t)skipped, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->counters.batches_applied, 1, __ATOMIC_RELAXED);
    RF_LOG(RF_LOG_DEBUG, RF_MOD_APP, "seq=%lld events=%zu applied=%zu dead=%zu batch applied",
           (long long)seq, b->cnt, nops, ndead);

    {
        const char **topics = rf_xmalloc((noffs + 1) * sizeof(*topics));
        int32_t *parts = rf_xmalloc((noffs + 1) * sizeof(*parts));
        int64_t *nexts = rf_xmalloc((noffs + 1) * sizeof(*nexts));
        for (size_t i = 0; i < noffs; i++) {
            topics[i] = p->offsets[i].topic;
            parts[i] = p->offsets[i].partition;
            nexts[i] = p->offsets[i].next_offset;
        }
        rf_ingest_consumer_commit(p->consumer, topics, parts, nexts, noffs);
        free(topics);
        free(parts);
        free(nexts);
    }
out:
    for (size_t i = 0; i < nev; i++)
        rf_event_fini(&p->events[i]);
    for (size_t i = 0; i < ndead; i++)
        free(p->reasons[i]);
    return rc;
}

static void pipeline_fini(pipeline_t *p)
{
    rf_ingest_consumer_free(p->consumer);
    rf_serve_stop(p->srv);
    rf_index_close(p->ix);
    rf_ingest_mapper_free(p->mapper);
    free(p->events);
    free(p->ops);
    free(p->dead);
    free(p->reasons);
    free(p->vecs);
    free(p->hashes);
    free(p->offsets);
    pthread_mutex_destroy(&p->last_error_lock);
}

static int run_pipeline(rf_conf_t *cfg)
{
    pipeline_t p;
    rf_err_t err = {0};
    rf_index_opts_t io;
    rf_serve_opts_t so;
    rf_ingest_batch_t b;
    rf_rc rc;
    int code = RF_EXIT_OK;

    memset(&p, 0, sizeof(p));
    pthread_mutex_init(&p.last_error_lock, NULL);
    p.cfg = cfg;
    p.dim = (int)cfg->embed_dim;
    p.counters.last_error_lock = &p.last_error_lock;
    rf_ingest_batch_init(&b);

    memset(&io, 0, sizeof(io));
    io.dir = cfg->state_dir;
    io.dim = p.dim;
    io.checkpoint_interval_ms = cfg->index_checkpoint_interval_ms;
    if ((rc = rf_index_open(&io, &p.ix, &err)))
        goto fail;
    if ((rc = rf_ingest_mapper_new(cfg, &p.mapper, &err)))
        goto fail;

    memset(&so, 0, sizeof(so));
    so.listen = cfg->serve_listen;
    so.threads = (int)cfg->serve_threads;
    so.max_body = (size_t)cfg->serve_max_body;
    so.max_k = (int)cfg->serve_max_k;
    so.dim = p.dim;
    so.ix = p.ix;
    so.embed = embed_query;
    so.embed_opaque = &p;
    so.counters = &p.counters;
    if ((rc = rf_serve_start(&so, &p.srv, &err)))
        goto fail;
    RF_LOG(RF_LOG_INFO, RF_MOD_APP, "listen=127.0.0.1:%d serving HTTP", rf_serve_port(p.srv));

    if ((rc = rf_ingest_consumer_new(cfg, store_offset, &p, &p.consumer, &err)))
        goto fail;
    __atomic_store_n(&p.counters.ready, 1, __ATOMIC_RELEASE);
    RF_LOG(RF_LOG_INFO, RF_MOD_APP, "records=%lld seq=%lld ready",
           (long long)rf_index_record_count(p.ix), (long long)rf_index_seq(p.ix));

    while (!rf__app_stop) {
        rf_ingest_batch_clear(&b);
        rc = rf_ingest_consumer_poll(p.consumer, &b, (size_t)cfg->source_batch_max,
                                     (int)(cfg->source_batch_ms ? cfg->source_batch_ms : 100),
                                     &err);
        if (rc) {
            set_last_error(&p, err.msg);
            RF_LOG(RF_LOG_ERROR, RF_MOD_APP, "code=%s consumer failed: %s", rf_rc_name(rc),
                   err.msg);
            goto fail;
        }
        if (!b.cnt)
            continue;
        if ((rc = process_batch(&p, &b, &err))) {
            set_last_error(&p, err.msg);
            RF_LOG(RF_LOG_ERROR, RF_MOD_APP, "code=%s batch failed: %s", rf_rc_name(rc),
                   err.msg);
            goto fail;
        }
    }
    RF_LOG(RF_LOG_INFO, RF_MOD_APP, "seq=%lld stopping", (long long)rf_index_seq(p.ix));
    goto out;
fail:
    if (err.msg[0])
        fprintf(stderr, "ragfeed run: %s\n", err.msg);
    code = rf__app_exit_for(rc);
out:
    rf_ingest_batch_fini(&b);
    pipeline_fini(&p);
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
        code = run_pipeline(cfg);
    }
    rf_conf_free(cfg);
    return code;
}

int rf__app_cmd_demo(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
        return rf__app_cmd_help("demo");
    fprintf(stderr, "ragfeed demo: not available in this version; see README.md for running "
                    "`ragfeed broker` and `ragfeed run` by hand\n");
    return RF_EXIT_USAGE;
}
