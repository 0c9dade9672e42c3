/* ingest_produce.c - a small producer for the demo and for tools: `key<TAB>value` lines
 * to one topic, an empty value being a NULL value (a tombstone), the way kcat -K '\t' -Z
 * reads them.  Waits until every message is acknowledged. */
#include "ingest/ingest.h"

#include <librdkafka/rdkafka.h>
#include <string.h>

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    if (m->err)
        __atomic_add_fetch((int *)opaque, 1, __ATOMIC_RELAXED);
}

rf_rc rf_ingest_produce_tsv(const char *bootstrap, const char *topic, FILE *in, size_t *count,
                            rf_err_t *err)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    char *line = NULL;
    size_t cap = 0, n = 0;
    ssize_t len;
    int failed = 0;
    rf_rc rc = RF_OK;

    if (count)
        *count = 0;
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr))) {
        rd_kafka_conf_destroy(conf);
        return rf_err_set(err, RF_ECONFIG, "producer: %s", errstr);
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &failed);
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)))) {
        rd_kafka_conf_destroy(conf);
        return rf_err_set(err, RF_EUNAVAIL, "producer: %s", errstr);
    }
    while ((len = getline(&line, &cap, in)) >= 0) {
        char *tab;
        size_t klen, vlen;
        rd_kafka_resp_err_t e;
        if (len && line[len - 1] == '\n')
            line[--len] = '\0';
        if (!len)
            continue;
        tab = memchr(line, '\t', (size_t)len);
        klen = tab ? (size_t)(tab - line) : (size_t)len;
        vlen = tab ? (size_t)len - klen - 1 : 0;
        for (;;) {
            e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_KEY(klen ? line : NULL, klen),
                                  RD_KAFKA_V_VALUE(vlen ? tab + 1 : NULL, vlen), RD_KAFKA_V_END);
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                break;
            rd_kafka_poll(rk, 100); /* the local queue drains as deliveries complete */
        }
        if (e) {
            rc = rf_err_set(err, RF_EKAFKA, "produce to %s: %s", topic, rd_kafka_err2str(e));
            goto out;
        }
        n++;
        rd_kafka_poll(rk, 0);
    }
    if (rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = rf_err_set(err, RF_ETIMEDOUT, "produce to %s: not acknowledged within 60 s", topic);
        goto out;
    }
    if (failed) {
        rc = rf_err_set(err, RF_EKAFKA, "produce to %s: %d messages failed", topic, failed);
        goto out;
    }
    if (count)
        *count = n;
out:
    free(line);
    rd_kafka_destroy(rk);
    return rc;
}
