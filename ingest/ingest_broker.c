/* ingest_broker.c - the development broker: librdkafka's mock cluster on 127.0.0.1,
 * for `ragfeed broker`, the demo and the tests.  It keeps everything in memory:
 * stopping it loses every topic and offset.  No invariant lives here; it only has to
 * speak the Kafka protocol well enough for the consumer and kcat.
 */
#include "ingest/ingest.h"

#include <errno.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h> /* needs rdkafka.h first */

#include "ingest/ingest_int.h"

/* How often *stop is looked at. */
#define STOP_POLL_MS   100
#define BROKERS_MAX    64
#define PARTITIONS_MAX 100000

rf_rc rf_ingest_broker_run(const rf_ingest_broker_opts_t *opts, FILE *out, volatile int *stop,
                           rf_err_t *err)
{
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mc = NULL;
    rd_kafka_resp_err_t kerr;
    char errstr[512], num[16];
    rf_rc rc = RF_OK;

    if (!opts || !out || !stop)
        return rf_err_set(err, RF_EINVAL, "rf_ingest_broker_run: opts, out and stop required");
    if (opts->brokers < 1 || opts->brokers > BROKERS_MAX)
        return rf_err_set(err, RF_EINVAL, "brokers=%d: expected 1..%d", opts->brokers, BROKERS_MAX);
    if (opts->topic && (!*opts->topic || opts->partitions < 1 || opts->partitions > PARTITIONS_MAX))
        return rf_err_set(err, RF_EINVAL,
                          "topic=%s partitions=%d: expected a name and 1..%d partitions",
                          opts->topic, opts->partitions, PARTITIONS_MAX);
    /* librdkafka's mock cluster binds every broker to 127.0.0.1:0 and offers no way to
     * choose the port; a forwarding port would only cover the bootstrap connection,
     * since clients then connect to the ports the metadata advertises. */
    if (opts->port != 0)
        return rf_err_set(err, RF_ENOTIMPL,
                          "port=%d: librdkafka %s's mock cluster always listens on ports the "
                          "kernel picks; use port 0 and read bootstrap.servers from the first "
                          "line of output",
                          opts->port, rd_kafka_version_str());

    /* The mock cluster lives in a client handle (this producer never sends); asking
     * for it through the configuration also points the handle's bootstrap at it. */
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, rf__ingest_rdkafka_log);
    snprintf(num, sizeof(num), "%d", opts->brokers);
    if (rd_kafka_conf_set(conf, "client.id", "ragfeed-broker", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "test.mock.num.brokers", num, errstr, sizeof(errstr))) {
        rc = rf_err_set(err, RF_EUNAVAIL, "mock cluster: %s", errstr);
        goto out;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        rc = rf_err_set(err, RF_EUNAVAIL, "mock cluster: cannot start %d brokers on 127.0.0.1: %s",
                        opts->brokers, errstr);
        goto out;
    }
    conf = NULL;                           /* owned by rk now */
    mc = rd_kafka_handle_mock_cluster(rk); /* owned by rk */
    if (!mc) {
        rc = rf_err_set(err, RF_EUNAVAIL, "mock cluster: librdkafka %s started none",
                        rd_kafka_version_str());
        goto out;
    }
    if (opts->topic) {
        /* Replicated like the mock's auto-created topics: up to 3 copies. */
        kerr = rd_kafka_mock_topic_create(mc, opts->topic, opts->partitions,
                                          opts->brokers < 3 ? opts->brokers : 3);
        if (kerr) {
            rc = rf_err_set(err, RF_EUNAVAIL, "mock cluster: cannot create topic %s: %s",
                            opts->topic, rd_kafka_err2str(kerr));
            goto out;
        }
    }
    errno = 0;
    if (fprintf(out, "bootstrap.servers=%s\n", rd_kafka_mock_cluster_bootstraps(mc)) < 0 ||
        fflush(out) != 0) {
        rc = rf_err_sys(err, RF_EIO, "cannot write bootstrap.servers");
        goto out;
    }
    RF_LOG(RF_LOG_INFO, RF_MOD_INGEST,
           "bootstrap.servers=%s brokers=%d topic=%s partitions=%d broker running",
           rd_kafka_mock_cluster_bootstraps(mc), opts->brokers, opts->topic ? opts->topic : "-",
           opts->topic ? opts->partitions : 0);
    while (!*stop)
        rf_sleep_ms(STOP_POLL_MS);
    RF_LOG(RF_LOG_INFO, RF_MOD_INGEST, "broker stopping");
out:
    if (rk)
        rd_kafka_destroy(rk);
    if (conf)
        rd_kafka_conf_destroy(conf);
    return rc;
}
