/* test_consumer.c - the Kafka consumer, dead letters and configuration errors against
 * an in-process librdkafka mock cluster on a random port.
 * Covers INVARIANT(offsets-with-state): every partition starts at the store's offset
 * (never the group's committed one), in both assignment modes and across a restart;
 * and INVARIANT(bad-input-dead-letters): a dead letter keeps key, value and headers.
 */
#include "ingest/ingest.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "ingest/ingest_int.h"
#include "rf_test.h"

#define TOPIC "t1"
#define NPART 4
#define NMSG  10 /* fixture messages per partition */

/* ==== The fixture: a mock cluster and deterministic messages ==== */

typedef struct mock {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    const char *bootstraps;
} mock_t;

/* Message i of partition p: its key, value and headers.  i==2 has a NULL key, i==3 an
 * empty key, i==5 a NULL value (tombstone), i==6 an empty value, i==4 no headers; the
 * values hold a NUL and a 0xff byte. */
typedef struct fixmsg {
    char key[32];
    const char *keyp;
    size_t keylen;
    char val[64];
    const char *valp;
    size_t vallen;
    char h1[32];
    int has_headers;
} fixmsg_t;

static void fixture(int p, int64_t i, fixmsg_t *f)
{
    int n;

    memset(f, 0, sizeof(*f));
    snprintf(f->key, sizeof(f->key), "k%d-%" PRId64, p, i);
    f->keyp = i == 2 ? NULL : f->key;
    f->keylen = i == 2 || i == 3 ? 0 : strlen(f->key);
    n = snprintf(f->val, sizeof(f->val), "{\"p\":%d,\"i\":%" PRId64 "}", p, i);
    f->val[n] = '\0';
    f->val[n + 1] = (char)0xff;
    f->valp = i == 5 ? NULL : f->val;
    f->vallen = i == 5 || i == 6 ? 0 : (size_t)n + 2;
    snprintf(f->h1, sizeof(f->h1), "x%d-%" PRId64, p, i);
    f->has_headers = i != 4;
}

static void mock_start(mock_t *m)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    memset(m, 0, sizeof(*m));
    RF_REQUIRE(rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) == 0);
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    RF_REQUIRE(m->rk);
    m->mc = rd_kafka_mock_cluster_new(m->rk, 1);
    RF_REQUIRE(m->mc);
    m->bootstraps = rd_kafka_mock_cluster_bootstraps(m->mc);
    RF_REQUIRE(strncmp(m->bootstraps, "127.0.0.1:", 10) == 0);
    RF_REQUIRE(rd_kafka_mock_topic_create(m->mc, TOPIC, NPART, 1) == 0);
}

static void mock_stop(mock_t *m)
{
    if (m->mc)
        rd_kafka_mock_cluster_destroy(m->mc);
    if (m->rk)
        rd_kafka_destroy(m->rk);
    memset(m, 0, sizeof(*m));
}

static int dr_errors;

static void test_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (rkm->err)
        dr_errors++;
}

static rd_kafka_t *producer_new(const mock_t *m)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    RF_REQUIRE(
        rd_kafka_conf_set(conf, "bootstrap.servers", m->bootstraps, errstr, sizeof(errstr)) == 0);
    rd_kafka_conf_set_dr_msg_cb(conf, test_dr_cb);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    RF_REQUIRE(rk);
    return rk;
}

/* Produces fixture messages [from, to) of partition p and waits for them. */
static void produce_range(const mock_t *m, int p, int64_t from, int64_t to)
{
    rd_kafka_t *rk = producer_new(m);

    dr_errors = 0;
    for (int64_t i = from; i < to; i++) {
        fixmsg_t f;
        rd_kafka_headers_t *hdrs = NULL;
        fixture(p, i, &f);
        if (f.has_headers) {
            hdrs = rd_kafka_headers_new(3);
            rd_kafka_header_add(hdrs, "h1", -1, f.h1, strlen(f.h1));
            rd_kafka_header_add(hdrs, "hnull", -1, NULL, 0);
            rd_kafka_header_add(hdrs, "bin", -1, "\0\x01", 2);
        }
        RF_REQUIRE(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(p),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                     RD_KAFKA_V_KEY((void *)f.keyp, f.keylen),
                                     RD_KAFKA_V_VALUE((void *)f.valp, f.vallen),
                                     RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END) == 0);
    }
    RF_REQUIRE(rd_kafka_flush(rk, 10000) == 0);
    RF_CHECK_INT(dr_errors, 0);
    rd_kafka_destroy(rk);
}

static void produce_fixture(const mock_t *m)
{
    for (int p = 0; p < NPART; p++)
        produce_range(m, p, 0, NMSG);
}

static int slice_eq(rf_slice_t s, const void *p, size_t n)
{
    if (!p)
        return s.ptr == NULL && s.len == 0;
    return s.ptr != NULL && s.len == n && (n == 0 || memcmp(s.ptr, p, n) == 0);
}

/* Checks one consumed message byte for byte against the fixture. */
static void check_msg(const rf_ingest_msg_t *msg)
{
    fixmsg_t f;

    RF_CHECK_STR(msg->topic, TOPIC);
    RF_REQUIRE(msg->partition >= 0 && msg->partition < NPART);
    fixture(msg->partition, msg->offset, &f);
    RF_CHECK(slice_eq(msg->key, f.keyp, f.keylen));
    RF_CHECK(slice_eq(msg->value, f.valp, f.vallen));
    RF_CHECK(msg->timestamp_ms > 0);
    if (!f.has_headers) {
        RF_CHECK_INT(msg->header_cnt, 0);
        return;
    }
    RF_REQUIRE(msg->header_cnt == 3);
    RF_CHECK_STR(msg->headers[0].name, "h1");
    RF_CHECK(slice_eq(msg->headers[0].value, f.h1, strlen(f.h1)));
    RF_CHECK_STR(msg->headers[1].name, "hnull");
    RF_CHECK(msg->headers[1].value.ptr == NULL);
    RF_CHECK_STR(msg->headers[2].name, "bin");
    RF_CHECK(slice_eq(msg->headers[2].value, "\0\x01", 2));
}

/* ==== A fake store: the offsets the consumer must start from ==== */

typedef struct store {
    int64_t next[NPART];
    int calls[NPART];
    int bad_calls;
} store_t;

static int64_t store_offset(void *opaque, const char *topic, int32_t partition)
{
    store_t *st = opaque;

    if (strcmp(topic, TOPIC) != 0 || partition < 0 || partition >= NPART) {
        st->bad_calls++;
        return -1;
    }
    st->calls[partition]++;
    return st->next[partition];
}

static rf_conf_t *conf_new(const mock_t *m, const char *const *kv)
{
    rf_conf_t *cfg = rf_conf_new();
    rf_err_t err = {0};

    RF_REQUIRE(cfg);
    RF_REQUIRE(rf_conf_set(cfg, "source.topics", TOPIC, RF_CONF_ORIGIN_CLI, "--set", &err) == 0);
    if (m)
        RF_REQUIRE(rf_conf_set(cfg, "kafka.bootstrap.servers", m->bootstraps, RF_CONF_ORIGIN_CLI,
                               "--set", &err) == 0);
    for (size_t i = 0; kv && kv[i]; i += 2) {
        if (rf_conf_set(cfg, kv[i], kv[i + 1], RF_CONF_ORIGIN_CLI, "--set", &err)) {
            fprintf(stderr, "%s\n", err.msg);
            RF_REQUIRE(0);
        }
    }
    if (rf_conf_finalize(cfg, 0, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        RF_REQUIRE(0);
    }
    return cfg;
}

/* Polls until `want` messages arrived or deadline_ms passed; checks each message and
 * that every partition delivers next[p], next[p]+1, ... exactly once, in order.  With
 * `keep` every poll appends to one batch, which is checked again as a whole at the
 * end (the views of earlier messages must survive the arrays growing). */
static size_t collect2(rf_ingest_consumer_t *c, int64_t *next, size_t want, int deadline_ms,
                       int64_t *first_ms, int keep)
{
    rf_ingest_batch_t b;
    size_t got = 0, max = 7;
    int64_t start = rf_mono_ms(), deadline = start + deadline_ms;
    rf_err_t err = {0};

    rf_ingest_batch_init(&b);
    while (got < want && rf_mono_ms() < deadline) {
        size_t before = b.cnt;
        /* Small batches exercise the drain path and the header array growing. */
        RF_REQUIRE(rf_ingest_consumer_poll(c, &b, max, 200, &err) == RF_OK);
        RF_CHECK(b.cnt - before <= max);
        if (b.cnt > before && first_ms && *first_ms < 0)
            *first_ms = rf_mono_ms();
        for (size_t i = before; i < b.cnt; i++) {
            const rf_ingest_msg_t *msg = &b.msgs[i];
            check_msg(msg);
            RF_CHECK_INT(msg->offset, next[msg->partition]);
            next[msg->partition] = msg->offset + 1;
            got++;
        }
        if (!keep)
            rf_ingest_batch_clear(&b);
    }
    if (keep) {
        RF_CHECK_INT(b.cnt, got);
        for (size_t i = 0; i < b.cnt; i++)
            check_msg(&b.msgs[i]);
    }
    rf_ingest_batch_fini(&b);
    return got;
}

static size_t collect(rf_ingest_consumer_t *c, int64_t *next, size_t want, int deadline_ms,
                      int64_t *first_ms)
{
    return collect2(c, next, want, deadline_ms, first_ms, 0);
}

/* Polls for ms milliseconds and returns how many messages came (expected: none). */
static size_t drain_for(rf_ingest_consumer_t *c, int ms)
{
    rf_ingest_batch_t b;
    size_t got = 0;
    int64_t deadline = rf_mono_ms() + ms;
    rf_err_t err = {0};

    rf_ingest_batch_init(&b);
    while (rf_mono_ms() < deadline) {
        RF_CHECK(rf_ingest_consumer_poll(c, &b, 100, 100, &err) == RF_OK);
        for (size_t i = 0; i < b.cnt; i++)
            fprintf(stderr, "unexpected message %s/%" PRId32 "@%" PRId64 "\n", b.msgs[i].topic,
                    b.msgs[i].partition, b.msgs[i].offset);
        got += b.cnt;
        rf_ingest_batch_clear(&b);
    }
    rf_ingest_batch_fini(&b);
    return got;
}

/* A plain consumer reading one partition of topic from the beginning. */
static rd_kafka_t *plain_consumer(const mock_t *m, const char *group)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    RF_REQUIRE(
        rd_kafka_conf_set(conf, "bootstrap.servers", m->bootstraps, errstr, sizeof(errstr)) == 0);
    RF_REQUIRE(rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) == 0);
    RF_REQUIRE(rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) == 0);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    RF_REQUIRE(rk);
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

/* ==== Tests ==== */

/* (a) source.assignment=all: each partition starts at the store's offset, or at the
 * beginning when the store has none; every message once, byte for byte. */
static void test_assign_all_store_offsets(void)
{
    mock_t m;
    store_t st = {{3, -1, NMSG, 7}, {0}, 0};
    int64_t next[NPART] = {3, 0, NMSG, 7};
    rf_conf_t *cfg;
    rf_ingest_consumer_t *c = NULL;
    rf_ingest_lag_t lag[8];
    rf_err_t err = {0};
    size_t n;
    int64_t deadline;

    mock_start(&m);
    produce_fixture(&m);
    cfg = conf_new(&m, NULL);
    if (rf_ingest_consumer_new(cfg, store_offset, &st, &c, &err))
        fprintf(stderr, "%s\n", err.msg);
    RF_REQUIRE(c);
    for (int p = 0; p < NPART; p++)
        RF_CHECK_INT(st.calls[p], 1);
    RF_CHECK_INT(st.bad_calls, 0);

    RF_CHECK_INT(collect(c, next, 7 + 10 + 0 + 3, 15000, NULL), 20);
    RF_CHECK_INT(drain_for(c, 500), 0);
    for (int p = 0; p < NPART; p++)
        RF_CHECK_INT(next[p], NMSG);

    /* High watermarks come from the fetch responses. */
    deadline = rf_mono_ms() + 10000;
    do {
        n = rf_ingest_consumer_watermarks(c, lag, 8);
        RF_REQUIRE(n == NPART);
        int known = 0;
        for (size_t i = 0; i < n; i++)
            known += lag[i].high_watermark == NMSG;
        if (known == NPART)
            break;
        drain_for(c, 100);
    } while (rf_mono_ms() < deadline);
    for (size_t i = 0; i < n; i++) {
        RF_CHECK_STR(lag[i].topic, TOPIC);
        RF_CHECK_INT(lag[i].high_watermark, NMSG);
    }
    RF_CHECK_INT(rf_ingest_consumer_watermarks(c, lag, 2), 2);

    /* No source.dlq.topic: sending a dead letter does nothing and succeeds. */
    {
        rf_ingest_msg_t msg = {TOPIC, 0, 1, -1, RF_SLICE_NULL, RF_SLICE_NULL, NULL, 0};
        RF_CHECK_INT(rf_ingest_dlq_send(c, &msg, "nothing", &err), RF_OK);
    }
    RF_CHECK_INT(st.bad_calls, 0);
    rf_ingest_consumer_free(c);
    rf_conf_free(cfg);
    mock_stop(&m);
}

/* (b) A restart resumes exactly at the store's new offsets within milliseconds,
 * whatever the group's committed offsets say. */
static void test_restart_resumes_at_store(void)
{
    static const char *const kv[] = {"kafka.group.id", "g-restart", NULL};
    mock_t m;
    store_t st = {{-1, -1, -1, -1}, {0}, 0};
    int64_t next[NPART] = {0, 0, 0, 0};
    rf_conf_t *cfg;
    rf_ingest_consumer_t *c = NULL;
    rf_err_t err = {0};
    int64_t t0, first = -1;
    const char *topics[NPART] = {TOPIC, TOPIC, TOPIC, TOPIC};
    const int32_t parts[NPART] = {0, 1, 2, 3};
    const int64_t committed[NPART] = {1, 2, 3, 4};

    mock_start(&m);
    produce_fixture(&m);
    cfg = conf_new(&m, kv);
    RF_REQUIRE(rf_ingest_consumer_new(cfg, store_offset, &st, &c, &err) == RF_OK);
    RF_CHECK_INT(collect2(c, next, NPART * NMSG, 15000, NULL, 1), NPART * NMSG);

    /* The courtesy commit reaches the group... */
    rf_ingest_consumer_commit(c, topics, parts, committed, NPART);
    {
        rd_kafka_t *rk = plain_consumer(&m, "g-restart");
        int64_t deadline = rf_mono_ms() + 10000;
        int ok = 0;
        while (!ok && rf_mono_ms() < deadline) {
            rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(NPART);
            for (int p = 0; p < NPART; p++)
                rd_kafka_topic_partition_list_add(list, TOPIC, p);
            ok = rd_kafka_committed(rk, list, 2000) == 0;
            for (int p = 0; ok && p < NPART; p++)
                ok = list->elems[p].offset == committed[p];
            rd_kafka_topic_partition_list_destroy(list);
            if (!ok)
                drain_for(c, 100);
        }
        RF_CHECK(ok);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    rf_ingest_consumer_free(c);
    c = NULL;

    /* ...but the restarted consumer starts where the store says. */
    st.next[0] = 8;
    st.next[1] = NMSG;
    st.next[2] = NMSG;
    st.next[3] = 9;
    next[0] = 8;
    next[3] = 9;
    t0 = rf_mono_ms();
    RF_REQUIRE(rf_ingest_consumer_new(cfg, store_offset, &st, &c, &err) == RF_OK);
    RF_CHECK_INT(collect(c, next, 3, 15000, &first), 3);
    RF_CHECK_INT(drain_for(c, 500), 0);
    RF_REQUIRE(first > 0);
    fprintf(stderr, "restart: first message %" PRId64 " ms after rf_ingest_consumer_new\n",
            first - t0);
    /* No group join (which takes 3 s or more on this broker) stands in the way. */
    RF_CHECK(first - t0 < 2500);
    for (int p = 0; p < NPART; p++)
        RF_CHECK_INT(st.calls[p], 2);
    rf_ingest_consumer_free(c);
    rf_conf_free(cfg);
    mock_stop(&m);
}

static const char *hdr_find(const rd_kafka_message_t *rkm, const char *name, size_t *len)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *val = NULL;

    if (rd_kafka_message_headers(rkm, &hdrs) || rd_kafka_header_get_last(hdrs, name, &val, len))
        return NULL;
    return val ? val : "";
}

/* (c) Dead letters keep the original key, value (NULL stays NULL) and headers, and
 * say why and where from. */
static void test_dead_letters(void)
{
    static const char *const kv[] = {"source.dlq.topic", "dlq", NULL};
    mock_t m;
    store_t st = {{0, 5, NMSG, NMSG}, {0}, 0};
    int64_t next[NPART];
    rf_conf_t *cfg;
    rf_ingest_consumer_t *c = NULL;
    rf_ingest_batch_t b;
    rf_err_t err = {0};
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *list;
    int64_t sent_offsets[3] = {-1, -1, -1};
    int sent = 0, got = 0;
    int64_t deadline;

    mock_start(&m);
    RF_REQUIRE(rd_kafka_mock_topic_create(m.mc, "dlq", 1, 1) == 0);
    produce_fixture(&m);
    cfg = conf_new(&m, kv);
    RF_REQUIRE(rf_ingest_consumer_new(cfg, store_offset, &st, &c, &err) == RF_OK);

    /* Dead-letter messages 0 (headers), 2 (NULL key) and 5 (tombstone) of p0/p1. */
    rf_ingest_batch_init(&b);
    deadline = rf_mono_ms() + 15000;
    while (sent < 3 && rf_mono_ms() < deadline) {
        RF_REQUIRE(rf_ingest_consumer_poll(c, &b, 100, 200, &err) == RF_OK);
        for (size_t i = 0; i < b.cnt; i++) {
            const rf_ingest_msg_t *msg = &b.msgs[i];
            int pick = (msg->partition == 0 && (msg->offset == 0 || msg->offset == 2)) ||
                       (msg->partition == 1 && msg->offset == 5);
            check_msg(msg);
            if (!pick)
                continue;
            if (rf_ingest_dlq_send(c, msg, "bad \"json\" at byte 3", &err))
                fprintf(stderr, "%s\n", err.msg);
            else
                sent_offsets[sent++] = msg->partition * 100 + msg->offset;
        }
        rf_ingest_batch_clear(&b);
    }
    rf_ingest_batch_fini(&b);
    RF_REQUIRE(sent == 3);
    (void)next;

    rk = plain_consumer(&m, "g-dlq-reader");
    list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, "dlq", 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    RF_REQUIRE(rd_kafka_assign(rk, list) == 0);
    rd_kafka_topic_partition_list_destroy(list);
    deadline = rf_mono_ms() + 15000;
    while (got < 3 && rf_mono_ms() < deadline) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 200);
        fixmsg_t f;
        size_t len = 0;
        const char *v;
        char want[32];
        int p, i;
        if (!rkm)
            continue;
        if (rkm->err) {
            rd_kafka_message_destroy(rkm);
            continue;
        }
        RF_REQUIRE(got < 3);
        p = (int)(sent_offsets[got] / 100);
        i = (int)(sent_offsets[got] % 100);
        got++;
        fixture(p, i, &f);
        RF_CHECK(rkm->key ? (f.keyp && rkm->key_len == f.keylen &&
                             memcmp(rkm->key, f.keyp, f.keylen) == 0)
                          : f.keyp == NULL);
        RF_CHECK(rkm->payload ? (f.valp && rkm->len == f.vallen &&
                                 memcmp(rkm->payload, f.valp, f.vallen) == 0)
                              : f.valp == NULL);
        v = hdr_find(rkm, "h1", &len);
        RF_CHECK(v && len == strlen(f.h1) && memcmp(v, f.h1, len) == 0);
        RF_CHECK(hdr_find(rkm, "hnull", &len) && len == 0);
        v = hdr_find(rkm, "bin", &len);
        RF_CHECK(v && len == 2 && memcmp(v, "\0\x01", 2) == 0);
        v = hdr_find(rkm, "ragfeed.error.reason", &len);
        RF_CHECK(v && len == strlen("bad \"json\" at byte 3") &&
                 memcmp(v, "bad \"json\" at byte 3", len) == 0);
        v = hdr_find(rkm, "ragfeed.error.topic", &len);
        RF_CHECK(v && len == strlen(TOPIC) && memcmp(v, TOPIC, len) == 0);
        snprintf(want, sizeof(want), "%d", p);
        v = hdr_find(rkm, "ragfeed.error.partition", &len);
        RF_CHECK(v && len == strlen(want) && memcmp(v, want, len) == 0);
        snprintf(want, sizeof(want), "%d", i);
        v = hdr_find(rkm, "ragfeed.error.offset", &len);
        RF_CHECK(v && len == strlen(want) && memcmp(v, want, len) == 0);
        rd_kafka_message_destroy(rkm);
    }
    RF_CHECK_INT(got, 3);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    rf_ingest_consumer_free(c);
    rf_conf_free(cfg);
    mock_stop(&m);
}

/* (d) source.assignment=group: a lone member gets every partition at the store's
 * offsets, not at the group's committed ones. */
static void test_group_store_offsets(void)
{
    static const char *const kv[] = {"source.assignment",
                                     "group",
                                     "kafka.group.id",
                                     "g-d",
                                     "kafka.session.timeout.ms",
                                     "6000",
                                     "kafka.heartbeat.interval.ms",
                                     "500",
                                     NULL};
    mock_t m;
    store_t st = {{3, -1, NMSG, 7}, {0}, 0};
    int64_t next[NPART] = {3, 0, NMSG, 7};
    rf_conf_t *cfg;
    rf_ingest_consumer_t *c = NULL;
    rf_ingest_lag_t lag[8];
    rf_err_t err = {0};
    int64_t t0, first = -1;

    mock_start(&m);
    produce_fixture(&m);
    /* The group has committed offsets that must be ignored. */
    {
        rd_kafka_t *rk = plain_consumer(&m, "g-d");
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(NPART);
        for (int p = 0; p < NPART; p++)
            rd_kafka_topic_partition_list_add(list, TOPIC, p)->offset = 5;
        RF_CHECK(rd_kafka_commit(rk, list, 0) == 0);
        rd_kafka_topic_partition_list_destroy(list);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    cfg = conf_new(&m, kv);
    t0 = rf_mono_ms();
    RF_REQUIRE(rf_ingest_consumer_new(cfg, store_offset, &st, &c, &err) == RF_OK);
    RF_CHECK_INT(collect(c, next, 7 + 10 + 0 + 3, 30000, &first), 20);
    RF_CHECK_INT(drain_for(c, 500), 0);
    fprintf(stderr, "group: first message %" PRId64 " ms after rf_ingest_consumer_new\n",
            first - t0);
    for (int p = 0; p < NPART; p++) {
        RF_CHECK_INT(st.calls[p], 1);
        RF_CHECK_INT(next[p], NMSG);
    }
    RF_CHECK_INT(rf_ingest_consumer_watermarks(c, lag, 8), NPART);
    RF_CHECK_INT(st.bad_calls, 0);
    rf_ingest_consumer_free(c);
    rf_conf_free(cfg);
    mock_stop(&m);
}

/* Which partitions a consumer holds now, as a bit mask. */
static unsigned owned(rf_ingest_consumer_t *c)
{
    rf_ingest_lag_t lag[NPART * 2];
    size_t n = rf_ingest_consumer_watermarks(c, lag, NPART * 2);
    unsigned mask = 0;

    for (size_t i = 0; i < n; i++)
        mask |= 1u << lag[i].partition;
    return mask;
}

static unsigned popcount(unsigned v)
{
    unsigned n = 0;
    for (; v; v >>= 1)
        n += v & 1;
    return n;
}

/* Checks a batch: every message valid, of a partition in `mask`, and `want` of them. */
static void check_batch(const rf_ingest_batch_t *b, unsigned mask, size_t want)
{
    RF_CHECK_INT(b->cnt, want);
    for (size_t i = 0; i < b->cnt; i++) {
        check_msg(&b->msgs[i]);
        RF_CHECK(mask & (1u << b->msgs[i].partition));
    }
}

/* A second member takes half the partitions from the first (cooperative rebalance).
 * Messages the first had fetched for those partitions leave its batch (the second
 * re-reads them from the store's offsets); new messages are then delivered once, by
 * the member that owns their partition. */
static void test_group_two_members(void)
{
    static const char *const kv[] = {"source.assignment",
                                     "group",
                                     "kafka.group.id",
                                     "g-two",
                                     "kafka.session.timeout.ms",
                                     "6000",
                                     "kafka.heartbeat.interval.ms",
                                     "500",
                                     NULL};
    const unsigned all = (1u << NPART) - 1;
    mock_t m;
    store_t st = {{0, 0, 0, 0}, {0}, 0};
    rf_conf_t *cfg;
    rf_ingest_consumer_t *c[2] = {NULL, NULL};
    rf_ingest_batch_t b[2];
    rf_err_t err = {0};
    int64_t next[NPART] = {NMSG, NMSG, NMSG, NMSG}, deadline;
    unsigned m0 = 0, m1 = 0;
    size_t got = 0;

    mock_start(&m);
    produce_fixture(&m);
    cfg = conf_new(&m, kv);
    rf_ingest_batch_init(&b[0]);
    rf_ingest_batch_init(&b[1]);
    /* The first member takes everything and holds all of it in one batch... */
    RF_REQUIRE(rf_ingest_consumer_new(cfg, store_offset, &st, &c[0], &err) == RF_OK);
    deadline = rf_mono_ms() + 30000;
    while (b[0].cnt < NPART * NMSG && rf_mono_ms() < deadline)
        RF_REQUIRE(rf_ingest_consumer_poll(c[0], &b[0], 100, 100, &err) == RF_OK);
    RF_REQUIRE(owned(c[0]) == all);
    check_batch(&b[0], all, NPART * NMSG);

    /* ...and gives half of it up, incrementally, when the second joins. */
    RF_REQUIRE(rf_ingest_consumer_new(cfg, store_offset, &st, &c[1], &err) == RF_OK);
    deadline = rf_mono_ms() + 45000;
    while (rf_mono_ms() < deadline) {
        for (int k = 0; k < 2; k++)
            RF_REQUIRE(rf_ingest_consumer_poll(c[k], &b[k], 100, 100, &err) == RF_OK);
        m0 = owned(c[0]);
        m1 = owned(c[1]);
        if (m0 && m1 && (m0 | m1) == all && !(m0 & m1) && b[1].cnt >= popcount(m1) * NMSG)
            break;
    }
    fprintf(stderr, "two members: partitions 0x%x and 0x%x\n", m0, m1);
    RF_REQUIRE(m0 && m1 && (m0 | m1) == all && !(m0 & m1));
    check_batch(&b[0], m0, popcount(m0) * NMSG);
    check_batch(&b[1], m1, popcount(m1) * NMSG);
    for (int p = 0; p < NPART; p++)
        RF_CHECK_INT(st.calls[p], (m1 >> p) & 1 ? 2 : 1);
    rf_ingest_batch_clear(&b[0]);
    rf_ingest_batch_clear(&b[1]);

    for (int p = 0; p < NPART; p++)
        produce_range(&m, p, NMSG, NMSG + 2);
    deadline = rf_mono_ms() + 15000;
    while (got < 2 * NPART && rf_mono_ms() < deadline) {
        for (int k = 0; k < 2; k++) {
            RF_REQUIRE(rf_ingest_consumer_poll(c[k], &b[k], 100, 100, &err) == RF_OK);
            for (size_t i = 0; i < b[k].cnt; i++) {
                const rf_ingest_msg_t *msg = &b[k].msgs[i];
                check_msg(msg);
                RF_CHECK(owned(c[k]) & (1u << msg->partition));
                RF_CHECK_INT(msg->offset, next[msg->partition]);
                next[msg->partition] = msg->offset + 1;
                got++;
            }
            rf_ingest_batch_clear(&b[k]);
        }
    }
    RF_CHECK_INT(got, 2 * NPART);
    rf_ingest_batch_fini(&b[0]);
    rf_ingest_batch_fini(&b[1]);
    RF_CHECK_INT(st.bad_calls, 0);
    rf_ingest_consumer_free(c[0]);
    rf_ingest_consumer_free(c[1]);
    rf_conf_free(cfg);
    mock_stop(&m);
}

/* (e) A kafka.<prop> librdkafka refuses is a configuration error that names it. */
static void test_bad_kafka_property(void)
{
    static const char *const unknown[] = {"kafka.no.such.property", "1", NULL};
    static const char *const badval[] = {"kafka.session.timeout.ms", "soon", NULL};
    static const char *const secret[] = {"kafka.sasl.oauthbearer.method", "hunter2", NULL};
    static const char *const dlq_acks[] = {"source.dlq.topic", "dlq", "kafka.acks", "1", NULL};
    store_t st = {{-1, -1, -1, -1}, {0}, 0};
    rf_ingest_consumer_t *c = NULL;
    rf_err_t err = {0};
    rf_conf_t *cfg;

    cfg = conf_new(NULL, unknown);
    RF_CHECK_INT(rf_ingest_consumer_new(cfg, store_offset, &st, &c, &err), RF_ECONFIG);
    RF_CHECK(c == NULL);
    RF_CHECK(strstr(err.msg, "kafka.no.such.property=1") != NULL);
    RF_CHECK(strstr(err.msg, "No such configuration property") != NULL);
    fprintf(stderr, "message: %s\n", err.msg);
    rf_conf_free(cfg);

    cfg = conf_new(NULL, badval);
    RF_CHECK_INT(rf_ingest_consumer_new(cfg, store_offset, &st, &c, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "kafka.session.timeout.ms=soon") != NULL);
    RF_CHECK(strstr(err.msg, "--set") != NULL);
    fprintf(stderr, "message: %s\n", err.msg);
    rf_conf_free(cfg);

    /* The value of a secret property is never repeated, not even in librdkafka's
     * reason (which quotes it). */
    cfg = conf_new(NULL, secret);
    RF_CHECK_INT(rf_ingest_consumer_new(cfg, store_offset, &st, &c, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "kafka.sasl.oauthbearer.method=[redacted]") != NULL);
    RF_CHECK(strstr(err.msg, "hunter2") == NULL);
    fprintf(stderr, "message: %s\n", err.msg);
    rf_conf_free(cfg);

    /* Properties librdkafka accepts one by one but not together (the dead-letter
     * producer is idempotent, which needs acks=all). */
    cfg = conf_new(NULL, dlq_acks);
    RF_CHECK_INT(rf_ingest_consumer_new(cfg, store_offset, &st, &c, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "source.dlq.topic=dlq") != NULL);
    RF_CHECK(strstr(err.msg, "acks") != NULL);
    fprintf(stderr, "message: %s\n", err.msg);
    rf_conf_free(cfg);
    RF_CHECK_INT(st.calls[0], 0);
}

/* A topic that does not exist, or brokers that cannot be reached, are reported as
 * unavailable after the startup timeout; the missing topic is not created. */
static void test_unavailable(void)
{
    static const char *const kv[] = {"source.topics", "t1,nosuchtopic", NULL};
    static const char *const down[] = {"kafka.bootstrap.servers", "127.0.0.1:1", NULL};
    mock_t m;
    store_t st = {{-1, -1, -1, -1}, {0}, 0};
    rf_ingest_consumer_t *c = NULL;
    rf_err_t err = {0};
    rf_conf_t *cfg;
    const rd_kafka_metadata_t *md = NULL;
    int64_t t0;

    mock_start(&m);
    cfg = conf_new(&m, kv);
    t0 = rf_mono_ms();
    RF_CHECK_INT(rf__ingest_consumer_new_timeout(cfg, store_offset, &st, 1500, &c, &err),
                 RF_EUNAVAIL);
    RF_CHECK(rf_mono_ms() - t0 >= 1500);
    RF_CHECK(c == NULL);
    RF_CHECK(strstr(err.msg, "\"nosuchtopic\" does not exist") != NULL);
    fprintf(stderr, "message: %s\n", err.msg);
    RF_CHECK_INT(st.calls[0], 0);
    rf_conf_free(cfg);
    {
        rd_kafka_t *rk = producer_new(&m);
        RF_REQUIRE(rd_kafka_metadata(rk, 1, NULL, &md, 5000) == 0);
        for (int i = 0; i < md->topic_cnt; i++)
            RF_CHECK(strcmp(md->topics[i].topic, "nosuchtopic") != 0);
        rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
    }

    cfg = conf_new(NULL, down);
    RF_CHECK_INT(rf__ingest_consumer_new_timeout(cfg, store_offset, &st, 1000, &c, &err),
                 RF_EUNAVAIL);
    RF_CHECK(strstr(err.msg, "kafka.bootstrap.servers=127.0.0.1:1") != NULL);
    fprintf(stderr, "message: %s\n", err.msg);
    rf_conf_free(cfg);
    mock_stop(&m);
}

/* (f) Pause stops delivery; resume continues with the next offset, nothing lost or
 * repeated. */
static void test_pause_resume(void)
{
    mock_t m;
    store_t st = {{NMSG, NMSG, NMSG, NMSG}, {0}, 0};
    int64_t next[NPART] = {NMSG, NMSG, NMSG, NMSG};
    rf_conf_t *cfg;
    rf_ingest_consumer_t *c = NULL;
    rf_err_t err = {0};

    mock_start(&m);
    produce_fixture(&m);
    cfg = conf_new(&m, NULL);
    RF_REQUIRE(rf_ingest_consumer_new(cfg, store_offset, &st, &c, &err) == RF_OK);
    produce_range(&m, 0, NMSG, NMSG + 3);
    RF_CHECK_INT(collect(c, next, 3, 15000, NULL), 3);
    RF_CHECK_INT(next[0], NMSG + 3);

    rf_ingest_consumer_pause(c, 1);
    produce_range(&m, 0, NMSG + 3, NMSG + 6);
    produce_range(&m, 2, NMSG, NMSG + 2);
    RF_CHECK_INT(drain_for(c, 1500), 0);

    rf_ingest_consumer_pause(c, 0);
    RF_CHECK_INT(collect(c, next, 5, 15000, NULL), 5);
    RF_CHECK_INT(next[0], NMSG + 6);
    RF_CHECK_INT(next[2], NMSG + 2);
    RF_CHECK_INT(drain_for(c, 300), 0);
    rf_ingest_consumer_free(c);
    rf_conf_free(cfg);
    mock_stop(&m);
}

/* The development broker refuses a port it cannot honour and stops when asked. */
static void test_broker_opts(void)
{
    rf_ingest_broker_opts_t bo = {9092, 1, NULL, 0};
    volatile int stop = 1;
    rf_err_t err = {0};
    char *buf = NULL;
    size_t len = 0;
    FILE *out;

    RF_CHECK_INT(rf_ingest_broker_run(&bo, stdout, &stop, &err), RF_ENOTIMPL);
    RF_CHECK(strstr(err.msg, "port=9092") != NULL);
    bo.port = 0;
    bo.brokers = 0;
    RF_CHECK_INT(rf_ingest_broker_run(&bo, stdout, &stop, &err), RF_EINVAL);

    /* With stop already set it prints the bootstrap line and returns at once. */
    bo.brokers = 2;
    bo.topic = "pre";
    bo.partitions = 3;
    out = open_memstream(&buf, &len);
    RF_REQUIRE(out);
    RF_CHECK_INT(rf_ingest_broker_run(&bo, out, &stop, &err), RF_OK);
    fclose(out);
    RF_REQUIRE(buf);
    RF_CHECK(strncmp(buf, "bootstrap.servers=127.0.0.1:", 28) == 0);
    RF_CHECK(strchr(buf, ',') != NULL);
    RF_CHECK(len > 0 && buf[len - 1] == '\n');
    free(buf);
}

RF_TEST_MAIN(test_assign_all_store_offsets, test_restart_resumes_at_store, test_dead_letters,
             test_group_store_offsets, test_group_two_members, test_bad_kafka_property,
             test_unavailable, test_pause_resume, test_broker_opts)
