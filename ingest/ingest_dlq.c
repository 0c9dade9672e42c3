/* ingest_dlq.c - dead letters to a Kafka topic: the original key, value and headers
 * plus ragfeed.error.* headers, sent by an idempotent producer that waits for the
 * broker's acknowledgement.
 * INVARIANT(bad-input-dead-letters): a dead letter is either acknowledged by every
 * in-sync replica or reported as a retriable failure; it is never dropped quietly.
 */
#include "ingest/ingest.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest_int.h"

/* Longest wait for one dead letter's delivery report. */
#define DLQ_WAIT_MS 15000

struct rf__ingest_dlq {
    rd_kafka_t *rk;
    char *topic;
    uintptr_t seq; /* id of the dead letter being waited for */
    int done;
    rd_kafka_resp_err_t result;
};

/* Served by rd_kafka_poll() on the sending thread only. */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    rf__ingest_dlq_t *dlq = opaque;

    (void)rk;
    /* A report for a dead letter given up on earlier (a timeout) is only logged: the
     * caller was told it failed and will send it again. */
    if ((uintptr_t)rkm->_private != dlq->seq) {
        RF_LOG(RF_LOG_DEBUG, RF_MOD_INGEST, "topic=%s late dead-letter delivery report: %s",
               dlq->topic, rd_kafka_err2str(rkm->err));
        return;
    }
    dlq->done = 1;
    dlq->result = rkm->err;
}

rf_rc rf__ingest_dlq_new(const rf_conf_t *cfg, rf__ingest_dlq_t **out, rf_err_t *err)
{
    static const rf__ingest_kv_t defaults[] = {
        {"client.id", "ragfeed-dlq"},
        /* No duplicates from internal retries, and acknowledged by every in-sync
         * replica before a dead letter counts as sent. */
        {"enable.idempotence", "true"},
        {"acks", "all"},
        /* Each dead letter is waited for, so batching only adds latency. */
        {"linger.ms", "0"},
        {NULL, NULL},
    };
    rf__ingest_dlq_t *dlq = NULL;
    rd_kafka_conf_t *conf = NULL;
    char errstr[512];
    rf_rc rc;

    *out = NULL;
    rc = rf__ingest_kafka_conf(cfg, defaults, &conf, err);
    if (rc)
        goto out;
    dlq = rf_xcalloc(1, sizeof(*dlq));
    dlq->topic = rf_xstrdup(cfg->source_dlq_topic);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, dlq);
    dlq->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!dlq->rk) {
        rc = rf_err_set(err, RF_ECONFIG,
                        "source.dlq.topic=%s: librdkafka refused the producer configuration "
                        "(kafka.*): %s",
                        cfg->source_dlq_topic, errstr);
        goto out;
    }
    conf = NULL; /* owned by dlq->rk now */
out:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (rc)
        rf__ingest_dlq_free(dlq);
    else
        *out = dlq;
    return rc;
}

void rf__ingest_dlq_free(rf__ingest_dlq_t *dlq)
{
    if (!dlq)
        return;
    if (dlq->rk) {
        /* Every send waited for its report, so only given-up letters can be left. */
        rd_kafka_flush(dlq->rk, 1000);
        rd_kafka_destroy(dlq->rk);
    }
    free(dlq->topic);
    free(dlq);
}

static void header_add(rd_kafka_headers_t *hdrs, const char *name, const char *value)
{
    rd_kafka_header_add(hdrs, name, -1, value, strlen(value));
}

rf_rc rf_ingest_dlq_send(rf_ingest_consumer_t *c, const rf_ingest_msg_t *msg, const char *reason,
                         rf_err_t *err)
{
    rf__ingest_dlq_t *dlq;
    rd_kafka_headers_t *hdrs;
    rd_kafka_resp_err_t kerr;
    char num[32];
    int64_t deadline;

    if (!c || !msg || !msg->topic)
        return rf_err_set(err, RF_EINVAL, "rf_ingest_dlq_send: consumer and message required");
    dlq = rf__ingest_consumer_dlq(c);
    if (!dlq)
        return RF_OK;

    hdrs = rd_kafka_headers_new(msg->header_cnt + 4);
    for (size_t i = 0; i < msg->header_cnt; i++) {
        const rf_ingest_header_t *h = &msg->headers[i];
        /* A NULL header value stays NULL. */
        rd_kafka_header_add(hdrs, h->name, -1, h->value.ptr, h->value.ptr ? h->value.len : 0);
    }
    header_add(hdrs, "ragfeed.error.reason", reason ? reason : "");
    header_add(hdrs, "ragfeed.error.topic", msg->topic);
    snprintf(num, sizeof(num), "%" PRId32, msg->partition);
    header_add(hdrs, "ragfeed.error.partition", num);
    snprintf(num, sizeof(num), "%" PRId64, msg->offset);
    header_add(hdrs, "ragfeed.error.offset", num);

    dlq->seq++;
    dlq->done = 0;
    dlq->result = RD_KAFKA_RESP_ERR_NO_ERROR;
    /* A NULL key or value pointer produces a NULL key or value: a tombstone stays a
     * tombstone. */
    kerr = rd_kafka_producev(
        dlq->rk, RD_KAFKA_V_TOPIC(dlq->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY((void *)msg->key.ptr, msg->key.ptr ? msg->key.len : 0),
        RD_KAFKA_V_VALUE((void *)msg->value.ptr, msg->value.ptr ? msg->value.len : 0),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE((void *)dlq->seq), RD_KAFKA_V_END);
    if (kerr) {
        /* On failure the headers are still ours. */
        rd_kafka_headers_destroy(hdrs);
        return rf_err_set(
            err, RF_EKAFKA,
            "source.dlq.topic=%s: cannot queue the dead letter of %s/%" PRId32 "@%" PRId64 ": %s",
            dlq->topic, msg->topic, msg->partition, msg->offset, rd_kafka_err2str(kerr));
    }
    deadline = rf_mono_ms() + DLQ_WAIT_MS;
    while (!dlq->done) {
        int64_t left = deadline - rf_mono_ms();
        if (left <= 0)
            break;
        rd_kafka_poll(dlq->rk, left < 100 ? (int)left : 100);
    }
    if (!dlq->done) {
        /* Still queued (not yet sent) dead letters are withdrawn so that retries do not
         * pile up copies; one already in flight may still arrive, so a dead letter can
         * appear twice in the topic, never zero times. */
        rd_kafka_purge(dlq->rk, RD_KAFKA_PURGE_F_QUEUE);
        rd_kafka_poll(dlq->rk, 0);
        return rf_err_set(err, RF_EKAFKA,
                          "source.dlq.topic=%s: no delivery report for the dead letter of "
                          "%s/%" PRId32 "@%" PRId64 " within %d ms",
                          dlq->topic, msg->topic, msg->partition, msg->offset, DLQ_WAIT_MS);
    }
    if (dlq->result)
        return rf_err_set(
            err, RF_EKAFKA,
            "source.dlq.topic=%s: dead letter of %s/%" PRId32 "@%" PRId64 " not delivered: %s",
            dlq->topic, msg->topic, msg->partition, msg->offset, rd_kafka_err2str(dlq->result));
    RF_LOG(RF_LOG_DEBUG, RF_MOD_INGEST,
           "topic=%s partition=%" PRId32 " offset=%" PRId64 " dead letter sent to %s", msg->topic,
           msg->partition, msg->offset, dlq->topic);
    return RF_OK;
}
