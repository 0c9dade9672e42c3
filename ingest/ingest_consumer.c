/* ingest_consumer.c - the Kafka consumer: librdkafka's configuration from kafka.*, the
 * partition assignment (every partition of source.topics, or a share of a consumer
 * group), and batches of borrowed message views.
 * INVARIANT(offsets-with-state): every partition starts where the offset callback (the
 * store) says; the group's committed offsets are written for lag tools and never read.
 */
#include "ingest/ingest.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "ingest/ingest_int.h"

/* source.assignment=all: how often metadata is re-read to pick up added partitions. */
#define META_REFRESH_MS 30000
/* ... and how long that re-read may hold up a poll when the brokers are slow. */
#define META_REFRESH_TIMEOUT_MS 1000
/* Startup: pause between two metadata requests while topics are missing. */
#define META_RETRY_MS 250
/* Most messages one poll may add; keeps b->cnt + max far from overflowing. */
#define POLL_MAX 1000000

/* What the consumer knows of one partition it has been given at some point. */
typedef struct part {
    char *topic; /* owned */
    int32_t partition;
    int assigned;
    uint64_t changed; /* c->gen right after it was last assigned or revoked */
} part_t;

struct rf_ingest_consumer {
    const rf_conf_t *cfg; /* borrowed */
    rd_kafka_t *rk;
    rf_ingest_offset_fn offset_fn;
    void *opaque;
    char **topics; /* source.topics, one allocation */
    size_t topic_cnt;
    int group;  /* source.assignment=group */
    int commit; /* kafka.group.id was set by the user: courtesy commits are made */
    int paused;
    uint64_t gen; /* bumped by every assignment change */
    part_t *parts;
    size_t part_cnt, part_cap;
    uint64_t *msg_gen; /* per batch slot during a poll: gen when the message arrived */
    size_t msg_gen_cap;
    int64_t next_meta_ms;
    rf__ingest_dlq_t *dlq;
};

/* ==== librdkafka configuration and logs ==== */

/* Kafka properties whose values never appear in messages (as in `config dump`). */
static int kafka_secret(const char *key)
{
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, "sasl.oauthbearer") ||
           strstr(key, "ssl.key");
}

void rf__ingest_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    rf_log_level lvl;

    /* librdkafka's "errors" (connection refused, broker down) are transient: it
     * retries them itself, so they are warnings here. */
    if (level <= LOG_WARNING)
        lvl = RF_LOG_WARN;
    else if (level == LOG_NOTICE)
        lvl = RF_LOG_INFO;
    else
        lvl = RF_LOG_DEBUG;
    /* The consumer and the dead-letter producer share kafka.*, so each is told about
     * the other's properties; that is expected, not worth a warning. */
    if (!strcmp(fac, "CONFWARN") && strstr(buf, "will be ignored by this"))
        lvl = RF_LOG_DEBUG;
    RF_LOG(lvl, RF_MOD_INGEST, "client=%s fac=%s %s", rd_kafka_name(rk), fac, buf);
}

static rf_rc kafka_set(rd_kafka_conf_t *conf, const char *key, const char *value, const char *where,
                       rf_err_t *err)
{
    char errstr[256];
    int secret = kafka_secret(key);

    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK)
        return RF_OK;
    /* librdkafka's reason may quote the value. */
    if (secret && *value && strstr(errstr, value))
        snprintf(errstr, sizeof(errstr), "invalid value (librdkafka's reason quotes it)");
    return rf_err_set(err, RF_ECONFIG, "%s%skafka.%s=%s: %s", where ? where : "", where ? ": " : "",
                      key, secret ? "[redacted]" : value, errstr);
}

rf_rc rf__ingest_kafka_conf(const rf_conf_t *cfg, const rf__ingest_kv_t *defaults,
                            rd_kafka_conf_t **out, rf_err_t *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rf_rc rc = RF_OK;

    *out = NULL;
    rd_kafka_conf_set_log_cb(conf, rf__ingest_rdkafka_log);
    for (size_t i = 0; defaults && defaults[i].key; i++) {
        if (rf_conf_kafka_get(cfg, defaults[i].key))
            continue;
        rc = kafka_set(conf, defaults[i].key, defaults[i].value, "default", err);
        if (rc)
            goto out;
    }
    for (size_t i = 0; i < cfg->kafka_cnt; i++) {
        rc = kafka_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, cfg->kafka[i].where, err);
        if (rc)
            goto out;
    }
out:
    if (rc)
        rd_kafka_conf_destroy(conf);
    else
        *out = conf;
    return rc;
}

/* ==== Partitions and assignment ==== */

static part_t *part_find(rf_ingest_consumer_t *c, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < c->part_cnt; i++)
        if (c->parts[i].partition == partition && !strcmp(c->parts[i].topic, topic))
            return &c->parts[i];
    return NULL;
}

static part_t *part_get(rf_ingest_consumer_t *c, const char *topic, int32_t partition)
{
    part_t *p = part_find(c, topic, partition);

    if (p)
        return p;
    if (c->part_cnt == c->part_cap) {
        c->part_cap = c->part_cap ? c->part_cap * 2 : 16;
        c->parts = rf_xrealloc(c->parts, c->part_cap * sizeof(*c->parts));
    }
    p = &c->parts[c->part_cnt++];
    p->topic = rf_xstrdup(topic);
    p->partition = partition;
    p->assigned = 0;
    p->changed = 0;
    return p;
}

/* Records an assignment change of every partition in list. */
static void parts_mark(rf_ingest_consumer_t *c, const rd_kafka_topic_partition_list_t *list,
                       int assigned)
{
    c->gen++;
    for (int i = 0; i < list->cnt; i++) {
        part_t *p = part_get(c, list->elems[i].topic, list->elems[i].partition);
        p->assigned = assigned;
        p->changed = c->gen;
    }
}

static void parts_unmark_all(rf_ingest_consumer_t *c)
{
    c->gen++;
    for (size_t i = 0; i < c->part_cnt; i++) {
        if (c->parts[i].assigned) {
            c->parts[i].assigned = 0;
            c->parts[i].changed = c->gen;
        }
    }
}

/* The offset a partition starts at.
 * INVARIANT(offsets-with-state): the store's next offset when it has one; only a
 * partition the store has never seen falls back to source.start. */
static int64_t start_offset(rf_ingest_consumer_t *c, const char *topic, int32_t partition)
{
    int64_t off = c->offset_fn(c->opaque, topic, partition);

    if (off >= 0)
        return off;
    return c->cfg->source_start == RF_SOURCE_START_LATEST ? RD_KAFKA_OFFSET_END
                                                          : RD_KAFKA_OFFSET_BEGINNING;
}

static void log_assigned(const rd_kafka_topic_partition_list_t *list, const char *how)
{
    for (int i = 0; i < list->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &list->elems[i];
        RF_LOG(RF_LOG_DEBUG, RF_MOD_INGEST, "topic=%s partition=%" PRId32 " offset=%" PRId64 " %s",
               tp->topic, tp->partition, tp->offset, how);
    }
}

static void pause_list(rf_ingest_consumer_t *c, rd_kafka_topic_partition_list_t *list)
{
    rd_kafka_resp_err_t kerr = rd_kafka_pause_partitions(c->rk, list);

    if (kerr)
        RF_LOG(RF_LOG_WARN, RF_MOD_INGEST, "cannot pause %d new partitions: %s", list->cnt,
               rd_kafka_err2str(kerr));
}

/* source.assignment=all: adds every partition of md's source.topics that is not yet
 * assigned, each at its start offset.  Incremental, so the fetch positions of the
 * partitions already assigned (which run ahead of the store) are left alone. */
static rf_rc assign_new(rf_ingest_consumer_t *c, const rd_kafka_metadata_t *md, rf_err_t *err)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
    rd_kafka_error_t *error = NULL;
    rf_rc rc = RF_OK;

    for (size_t t = 0; t < c->topic_cnt; t++) {
        for (int i = 0; i < md->topic_cnt; i++) {
            const rd_kafka_metadata_topic_t *mt = &md->topics[i];
            if (strcmp(mt->topic, c->topics[t]) != 0 || mt->err)
                continue;
            for (int j = 0; j < mt->partition_cnt; j++) {
                int32_t pid = mt->partitions[j].id;
                const part_t *p = part_find(c, mt->topic, pid);
                if (p && p->assigned)
                    continue;
                rd_kafka_topic_partition_list_add(list, mt->topic, pid)->offset =
                    start_offset(c, mt->topic, pid);
            }
        }
    }
    if (list->cnt == 0)
        goto out;
    error = rd_kafka_incremental_assign(c->rk, list);
    if (error) {
        rc = rf_err_set(err, RF_EKAFKA, "source.topics=%s: cannot assign %d partitions: %s",
                        c->cfg->source_topics, list->cnt, rd_kafka_error_string(error));
        goto out;
    }
    parts_mark(c, list, 1);
    if (c->paused)
        pause_list(c, list);
    log_assigned(list, "assigned");
    RF_LOG(RF_LOG_INFO, RF_MOD_INGEST, "partitions=%d source.assignment=all assigned", list->cnt);
out:
    if (error)
        rd_kafka_error_destroy(error);
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

/* Waits until the cluster's metadata lists every topic of source.topics without error;
 * *mdp (caller frees with rd_kafka_metadata_destroy) holds that metadata. */
static rf_rc wait_metadata(rf_ingest_consumer_t *c, int startup_ms, const rd_kafka_metadata_t **mdp,
                           rf_err_t *err)
{
    const char *bootstrap = rf_conf_kafka_get(c->cfg, "bootstrap.servers");
    int64_t deadline = rf_mono_ms() + startup_ms;
    rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR, terr = RD_KAFKA_RESP_ERR_NO_ERROR;
    const char *missing = NULL;

    *mdp = NULL;
    for (;;) {
        const rd_kafka_metadata_t *md = NULL;
        int64_t left = deadline - rf_mono_ms();
        int wait = left > 5000 ? 5000 : left < 100 ? 100 : (int)left;

        /* Every topic of the cluster: asking for a topic by name makes some brokers
         * (and librdkafka's mock cluster) create it, which would hide a typo. */
        kerr = rd_kafka_metadata(c->rk, 1, NULL, &md, wait);
        if (!kerr) {
            missing = NULL;
            for (size_t t = 0; t < c->topic_cnt && !missing; t++) {
                int found = 0;
                for (int i = 0; i < md->topic_cnt && !found; i++) {
                    if (strcmp(md->topics[i].topic, c->topics[t]) != 0)
                        continue;
                    found = 1;
                    terr = md->topics[i].err;
                    if (terr || md->topics[i].partition_cnt == 0)
                        missing = c->topics[t];
                }
                if (!found) {
                    terr = RD_KAFKA_RESP_ERR_NO_ERROR;
                    missing = c->topics[t];
                }
            }
            if (!missing) {
                *mdp = md;
                return RF_OK;
            }
            rd_kafka_metadata_destroy(md);
        }
        left = deadline - rf_mono_ms();
        if (left <= 0)
            break;
        rf_sleep_ms(left < META_RETRY_MS ? left : META_RETRY_MS);
    }
    if (kerr)
        return rf_err_set(err, RF_EUNAVAIL,
                          "kafka.bootstrap.servers=%s: no metadata from the brokers within "
                          "%d ms: %s",
                          bootstrap ? bootstrap : "(unset)", startup_ms, rd_kafka_err2str(kerr));
    return rf_err_set(err, RF_EUNAVAIL,
                      "source.topics: topic \"%s\" %s%s after %d ms (kafka.bootstrap.servers=%s); "
                      "create it or fix source.topics",
                      missing, terr ? "has a metadata error: " : "does not exist",
                      terr ? rd_kafka_err2str(terr) : "", startup_ms,
                      bootstrap ? bootstrap : "(unset)");
}

/* source.assignment=all: picks up partitions added since the last look.  Asks only
 * for the topics this client already knows, which keeps it cheap on big clusters. */
static void refresh_partitions(rf_ingest_consumer_t *c)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_resp_err_t kerr;
    rf_err_t e;

    c->next_meta_ms = rf_mono_ms() + META_REFRESH_MS;
    kerr = rd_kafka_metadata(c->rk, 0, NULL, &md, META_REFRESH_TIMEOUT_MS);
    if (kerr) {
        RF_LOG(RF_LOG_DEBUG, RF_MOD_INGEST, "partition check skipped: %s", rd_kafka_err2str(kerr));
        return;
    }
    if (assign_new(c, md, &e))
        RF_LOG(RF_LOG_WARN, RF_MOD_INGEST, "%s", e.msg);
    rd_kafka_metadata_destroy(md);
}

/* source.assignment=group: the group tells us which partitions are ours.  Runs inside
 * rd_kafka_consumer_poll() (and rd_kafka_consumer_close()), on the consumer's thread. */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t kerr,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    rf_ingest_consumer_t *c = opaque;
    /* cooperative-sticky is our default; a user who picks an eager strategy gets the
     * eager calls. */
    int coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (kerr == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++)
            parts->elems[i].offset =
                start_offset(c, parts->elems[i].topic, parts->elems[i].partition);
        if (coop)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, parts);
        if (!error && !aerr) {
            parts_mark(c, parts, 1);
            if (c->paused)
                pause_list(c, parts);
        }
        log_assigned(parts, "assigned");
        /* Cooperative rebalances often hand out nothing new. */
        if (parts->cnt)
            RF_LOG(RF_LOG_INFO, RF_MOD_INGEST, "partitions=%d group rebalance: assigned",
                   parts->cnt);
    } else if (kerr == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        /* Messages of these partitions that are already fetched are dropped by
         * rf_ingest_consumer_poll(); the new owner re-reads them from its store. */
        if (coop) {
            error = rd_kafka_incremental_unassign(rk, parts);
            parts_mark(c, parts, 0);
        } else {
            aerr = rd_kafka_assign(rk, NULL);
            parts_unmark_all(c);
        }
        RF_LOG(RF_LOG_INFO, RF_MOD_INGEST, "partitions=%d lost=%d group rebalance: revoked",
               parts->cnt, rd_kafka_assignment_lost(rk));
    } else {
        /* A failed rebalance: drop everything and let the group assign again. */
        RF_LOG(RF_LOG_WARN, RF_MOD_INGEST, "group rebalance failed: %s", rd_kafka_err2str(kerr));
        if (coop) {
            rd_kafka_topic_partition_list_t *cur = NULL;
            if (!rd_kafka_assignment(rk, &cur)) {
                error = rd_kafka_incremental_unassign(rk, cur);
                rd_kafka_topic_partition_list_destroy(cur);
            }
        } else {
            aerr = rd_kafka_assign(rk, NULL);
        }
        parts_unmark_all(c);
    }
    if (error) {
        RF_LOG(RF_LOG_ERROR, RF_MOD_INGEST, "group rebalance: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    if (aerr)
        RF_LOG(RF_LOG_ERROR, RF_MOD_INGEST, "group rebalance: %s", rd_kafka_err2str(aerr));
}

static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t kerr,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    (void)opaque;
    /* Commits are a courtesy for lag tools; a failed one only delays their view. */
    if (kerr && kerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
        RF_LOG(RF_LOG_DEBUG, RF_MOD_INGEST, "partitions=%d offset commit failed: %s",
               offsets ? offsets->cnt : 0, rd_kafka_err2str(kerr));
}

/* ==== Batches ==== */

void rf_ingest_batch_init(rf_ingest_batch_t *b)
{
    memset(b, 0, sizeof(*b));
}

void rf_ingest_batch_clear(rf_ingest_batch_t *b)
{
    for (size_t i = 0; i < b->cnt; i++)
        rd_kafka_message_destroy(b->rkmessages[i]);
    b->cnt = 0;
    b->hdr_cnt = 0;
}

void rf_ingest_batch_fini(rf_ingest_batch_t *b)
{
    if (!b)
        return;
    rf_ingest_batch_clear(b);
    free(b->msgs);
    free(b->rkmessages);
    free(b->hdrs);
    rf_ingest_batch_init(b);
}

static void batch_reserve(rf_ingest_consumer_t *c, rf_ingest_batch_t *b, size_t n)
{
    if (n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        if (cap < n)
            cap = n;
        b->rkmessages = rf_xrealloc(b->rkmessages, cap * sizeof(*b->rkmessages));
        b->msgs = rf_xrealloc(b->msgs, cap * sizeof(*b->msgs));
        b->cap = cap;
    }
    if (c->msg_gen_cap < b->cap) {
        c->msg_gen = rf_xrealloc(c->msg_gen, b->cap * sizeof(*c->msg_gen));
        c->msg_gen_cap = b->cap;
    }
}

static size_t header_cnt(const rd_kafka_message_t *rkm)
{
    rd_kafka_headers_t *hdrs = NULL;

    if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    return rd_kafka_header_cnt(hdrs);
}

/* Fills msgs[from..cnt) from their librdkafka messages.  b->hdrs holds the headers of
 * msgs[0..cnt) back to back, in message order. */
static void batch_views(rf_ingest_batch_t *b, size_t from)
{
    size_t need;

    if (from == 0)
        b->hdr_cnt = 0;
    need = b->hdr_cnt;
    for (size_t i = from; i < b->cnt; i++)
        need += header_cnt(b->rkmessages[i]);
    if (need > b->hdr_cap) {
        size_t cap = b->hdr_cap ? b->hdr_cap * 2 : 64, at = 0;
        if (cap < need)
            cap = need;
        b->hdrs = rf_xrealloc(b->hdrs, cap * sizeof(*b->hdrs));
        b->hdr_cap = cap;
        /* The headers moved: point the earlier messages at their new place. */
        for (size_t i = 0; i < from; i++) {
            b->msgs[i].headers = b->msgs[i].header_cnt ? b->hdrs + at : NULL;
            at += b->msgs[i].header_cnt;
        }
    }
    for (size_t i = from; i < b->cnt; i++) {
        const rd_kafka_message_t *rkm = b->rkmessages[i];
        rf_ingest_msg_t *m = &b->msgs[i];
        rd_kafka_headers_t *hdrs = NULL;

        m->topic = rd_kafka_topic_name(rkm->rkt);
        m->partition = rkm->partition;
        m->offset = rkm->offset;
        m->timestamp_ms = rd_kafka_message_timestamp(rkm, NULL);
        m->key = rkm->key ? rf_slice(rkm->key, rkm->key_len) : RF_SLICE_NULL;
        m->value = rkm->payload ? rf_slice(rkm->payload, rkm->len) : RF_SLICE_NULL;
        m->headers = NULL;
        m->header_cnt = 0;
        if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
            continue;
        m->headers = b->hdrs + b->hdr_cnt;
        for (size_t h = 0;; h++) {
            rf_ingest_header_t *out = &b->hdrs[b->hdr_cnt];
            const void *val = NULL;
            size_t len = 0;
            if (rd_kafka_header_get_all(hdrs, h, &out->name, &val, &len))
                break;
            out->value = val ? rf_slice(val, len) : RF_SLICE_NULL;
            b->hdr_cnt++;
            m->header_cnt++;
        }
        if (!m->header_cnt)
            m->headers = NULL;
    }
}

/* Drops the messages of partitions revoked (or revoked and re-assigned) after the
 * message arrived; returns 1 when something was dropped. */
static int drop_stale(rf_ingest_consumer_t *c, rf_ingest_batch_t *b)
{
    size_t w = 0;
    int dropped = 0;

    for (size_t r = 0; r < b->cnt; r++) {
        rd_kafka_message_t *rkm = b->rkmessages[r];
        const part_t *p = part_find(c, rd_kafka_topic_name(rkm->rkt), rkm->partition);
        if (!p || !p->assigned || p->changed > c->msg_gen[r]) {
            RF_LOG(RF_LOG_DEBUG, RF_MOD_INGEST,
                   "topic=%s partition=%" PRId32 " offset=%" PRId64
                   " dropped: partition revoked since it was fetched",
                   rd_kafka_topic_name(rkm->rkt), rkm->partition, rkm->offset);
            rd_kafka_message_destroy(rkm);
            dropped = 1;
            continue;
        }
        b->rkmessages[w] = rkm;
        c->msg_gen[w] = c->msg_gen[r];
        w++;
    }
    b->cnt = w;
    return dropped;
}

/* ==== Consumer ==== */

/* An error delivered in place of a message: RF_OK when it is only logged. */
static rf_rc message_error(rf_ingest_consumer_t *c, const rd_kafka_message_t *rkm, rf_err_t *err)
{
    char fatal[256];

    if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return RF_OK;
    if (rkm->err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(c->rk, fatal, sizeof(fatal));
        return rf_err_set(err, RF_EKAFKA, "kafka: fatal consumer error (%s): %s",
                          rd_kafka_err2name(ferr), fatal);
    }
    if (rkm->rkt)
        RF_LOG(RF_LOG_WARN, RF_MOD_INGEST, "topic=%s partition=%" PRId32 " kafka error: %s",
               rd_kafka_topic_name(rkm->rkt), rkm->partition, rd_kafka_message_errstr(rkm));
    else
        RF_LOG(RF_LOG_WARN, RF_MOD_INGEST, "kafka error: %s", rd_kafka_message_errstr(rkm));
    return RF_OK;
}

rf_rc rf_ingest_consumer_poll(rf_ingest_consumer_t *c, rf_ingest_batch_t *b, size_t max,
                              int timeout_ms, rf_err_t *err)
{
    size_t start, added = 0;
    uint64_t gen0;
    int64_t deadline;
    rf_rc rc = RF_OK;

    if (!c || !b || max > POLL_MAX)
        return rf_err_set(err, RF_EINVAL,
                          "rf_ingest_consumer_poll: consumer, batch and max <= %d required",
                          POLL_MAX);
    if (!c->group && rf_mono_ms() >= c->next_meta_ms)
        refresh_partitions(c);
    if (max == 0)
        return RF_OK;
    batch_reserve(c, b, b->cnt + max);
    start = b->cnt;
    gen0 = c->gen;
    for (size_t i = 0; i < start; i++)
        c->msg_gen[i] = gen0;
    deadline = rf_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    while (added < max) {
        rd_kafka_message_t *rkm;
        int wait = 0;

        /* The first message may take the whole timeout; after it, only what has
         * already arrived is taken. */
        if (added == 0) {
            int64_t left = deadline - rf_mono_ms();
            wait = left > 0 ? (int)left : 0;
        }
        rkm = rd_kafka_consumer_poll(c->rk, wait);
        if (!rkm) {
            if (added == 0 && rf_mono_ms() < deadline)
                continue;
            break;
        }
        if (rkm->err) {
            rc = message_error(c, rkm, err);
            rd_kafka_message_destroy(rkm);
            if (rc)
                break;
            continue;
        }
        b->rkmessages[b->cnt] = rkm;
        c->msg_gen[b->cnt] = c->gen;
        b->cnt++;
        added++;
    }
    if (c->gen != gen0 && drop_stale(c, b))
        start = 0;
    batch_views(b, start);
    return rc;
}

rf_rc rf__ingest_consumer_new_timeout(const rf_conf_t *cfg, rf_ingest_offset_fn offset_fn,
                                      void *opaque, int startup_ms, rf_ingest_consumer_t **out,
                                      rf_err_t *err)
{
    rf_ingest_consumer_t *c = NULL;
    rd_kafka_conf_t *conf = NULL;
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_partition_list_t *sub = NULL;
    rd_kafka_resp_err_t kerr;
    char errstr[512];
    rf_rc rc;

    if (!cfg || !offset_fn || !out)
        return rf_err_set(err, RF_EINVAL,
                          "rf_ingest_consumer_new: cfg, offset_fn and out are required");
    *out = NULL;
    c = rf_xcalloc(1, sizeof(*c));
    c->cfg = cfg;
    c->offset_fn = offset_fn;
    c->opaque = opaque;
    c->group = cfg->source_assignment == RF_SOURCE_ASSIGN_GROUP;
    c->commit = rf_conf_kafka_get(cfg, "group.id") != NULL;
    c->topic_cnt = rf_conf_list_split(cfg->source_topics, &c->topics);
    c->next_meta_ms = rf_mono_ms() + META_REFRESH_MS;
    if (c->topic_cnt == 0) {
        rc = rf_err_set(err, RF_ECONFIG, "source.topics: expected at least one topic");
        goto out;
    }
    if (c->group && !c->commit) {
        rc = rf_err_set(err, RF_ECONFIG,
                        "source.assignment=group: expected kafka.group.id to be set");
        goto out;
    }

    {
        const rf__ingest_kv_t defaults[] = {
            {"client.id", "ragfeed"},
            /* rd_kafka_consumer_poll() delivers nothing without a group.id, even to an
             * assign()-only consumer.  The group's committed offsets are never read
             * (they are only a courtesy for lag tools, and are written only when the
             * user names the group), so a shared default name does no harm. */
            {"group.id", "ragfeed"},
            /* Offsets live with the state: nothing is stored or committed behind the
             * store's back. */
            {"enable.auto.commit", "false"},
            {"enable.auto.offset.store", "false"},
            {"enable.partition.eof", "false"},
            /* Freshness: a fetch returns after at most 20 ms when there is nothing new
             * (librdkafka's 500 ms default would add half a second to produce-to-visible
             * at low rates).  kafka.fetch.wait.max.ms overrides it. */
            {"fetch.wait.max.ms", "20"},
            /* Used when a store offset is out of range (retention deleted it). */
            {"auto.offset.reset",
             cfg->source_start == RF_SOURCE_START_LATEST ? "latest" : "earliest"},
            /* Group mode: a rebalance moves only the partitions that change owner.
             * Static membership (kafka.group.instance.id) is the user's choice: it
             * lets a restarted member take its partitions back without waiting a
             * session timeout, but two members must never share an id. */
            {c->group ? "partition.assignment.strategy" : NULL, "cooperative-sticky"},
            {NULL, NULL},
        };
        rc = rf__ingest_kafka_conf(cfg, defaults, &conf, err);
        if (rc)
            goto out;
    }
    if (c->group)
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
    rd_kafka_conf_set_opaque(conf, c);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!c->rk) {
        rc = rf_err_set(err, RF_ECONFIG, "kafka.*: librdkafka refused the consumer: %s", errstr);
        goto out;
    }
    conf = NULL; /* owned by c->rk now */
    rd_kafka_poll_set_consumer(c->rk);

    if (cfg->source_dlq_topic && *cfg->source_dlq_topic) {
        rc = rf__ingest_dlq_new(cfg, &c->dlq, err);
        if (rc)
            goto out;
    }

    rc = wait_metadata(c, startup_ms, &md, err);
    if (rc)
        goto out;
    if (!c->group) {
        rc = assign_new(c, md, err);
        goto out;
    }
    sub = rd_kafka_topic_partition_list_new((int)c->topic_cnt);
    for (size_t i = 0; i < c->topic_cnt; i++)
        rd_kafka_topic_partition_list_add(sub, c->topics[i], RD_KAFKA_PARTITION_UA);
    kerr = rd_kafka_subscribe(c->rk, sub);
    if (kerr)
        rc = rf_err_set(err, RF_EKAFKA, "source.topics=%s: cannot subscribe: %s",
                        cfg->source_topics, rd_kafka_err2str(kerr));
    else
        RF_LOG(RF_LOG_INFO, RF_MOD_INGEST, "group=%s topics=%s source.assignment=group subscribed",
               rf_conf_kafka_get(cfg, "group.id"), cfg->source_topics);
out:
    if (sub)
        rd_kafka_topic_partition_list_destroy(sub);
    if (md)
        rd_kafka_metadata_destroy(md);
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (rc)
        rf_ingest_consumer_free(c);
    else
        *out = c;
    return rc;
}

rf_rc rf_ingest_consumer_new(const rf_conf_t *cfg, rf_ingest_offset_fn offset_fn, void *opaque,
                             rf_ingest_consumer_t **out, rf_err_t *err)
{
    return rf__ingest_consumer_new_timeout(cfg, offset_fn, opaque, RF__INGEST_STARTUP_MS, out, err);
}

void rf_ingest_consumer_free(rf_ingest_consumer_t *c)
{
    if (!c)
        return;
    if (c->rk) {
        /* Leaves the group (the rebalance callback sees the revocation) and stops
         * fetching; nothing is committed here. */
        rd_kafka_consumer_close(c->rk);
        rd_kafka_destroy(c->rk);
    }
    rf__ingest_dlq_free(c->dlq);
    for (size_t i = 0; i < c->part_cnt; i++)
        free(c->parts[i].topic);
    free(c->parts);
    free(c->msg_gen);
    free(c->topics);
    free(c);
}

rf__ingest_dlq_t *rf__ingest_consumer_dlq(rf_ingest_consumer_t *c)
{
    return c->dlq;
}

void rf_ingest_consumer_commit(rf_ingest_consumer_t *c, const char *const *topics,
                               const int32_t *partitions, const int64_t *next_offsets, size_t n)
{
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_resp_err_t kerr;

    /* Without a group named by the user there is nobody to show lag to, and the
     * default group name may be shared by unrelated instances. */
    if (!c || !c->commit || n == 0 || n > INT32_MAX)
        return;
    list = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(list, topics[i], partitions[i])->offset = next_offsets[i];
    kerr = rd_kafka_commit(c->rk, list, 1);
    if (kerr)
        RF_LOG(RF_LOG_DEBUG, RF_MOD_INGEST, "partitions=%zu offset commit not sent: %s", n,
               rd_kafka_err2str(kerr));
    rd_kafka_topic_partition_list_destroy(list);
}

void rf_ingest_consumer_pause(rf_ingest_consumer_t *c, int pause)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_resp_err_t kerr;

    if (!c)
        return;
    /* Remembered, so partitions assigned while paused start paused. */
    c->paused = pause != 0;
    kerr = rd_kafka_assignment(c->rk, &list);
    if (!kerr)
        kerr = pause ? rd_kafka_pause_partitions(c->rk, list)
                     : rd_kafka_resume_partitions(c->rk, list);
    if (kerr)
        RF_LOG(RF_LOG_WARN, RF_MOD_INGEST, "cannot %s partitions: %s", pause ? "pause" : "resume",
               rd_kafka_err2str(kerr));
    else
        RF_LOG(RF_LOG_DEBUG, RF_MOD_INGEST, "partitions=%d %s", list->cnt,
               pause ? "paused" : "resumed");
    if (list)
        rd_kafka_topic_partition_list_destroy(list);
}

size_t rf_ingest_consumer_watermarks(rf_ingest_consumer_t *c, rf_ingest_lag_t *out, size_t n)
{
    size_t k = 0;

    if (!c || !out)
        return 0;
    for (size_t i = 0; i < c->part_cnt && k < n; i++) {
        const part_t *p = &c->parts[i];
        int64_t lo = -1, hi = -1;
        if (!p->assigned)
            continue;
        /* Cached from fetch responses: no request is made. */
        if (rd_kafka_get_watermark_offsets(c->rk, p->topic, p->partition, &lo, &hi) || hi < 0)
            hi = -1;
        snprintf(out[k].topic, sizeof(out[k].topic), "%s", p->topic);
        out[k].partition = p->partition;
        out[k].high_watermark = hi;
        k++;
    }
    return k;
}
