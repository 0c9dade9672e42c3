/* bench_consume.c - the baseline for the ingest benchmark: how fast plain librdkafka
 * consumes the same messages (assign every partition from the beginning, poll until
 * the expected count), with the same client settings ragfeed's consumer uses.
 *
 * usage: bench_consume BOOTSTRAP TOPIC PARTITIONS COUNT
 * prints: consumed=N seconds=S rate=R */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    char errstr[512];
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts;
    long count, got = 0;
    int nparts;
    double t0, t1;

    if (argc != 5) {
        fprintf(stderr, "usage: bench_consume BOOTSTRAP TOPIC PARTITIONS COUNT\n");
        return 2;
    }
    nparts = (int)strtol(argv[3], NULL, 10);
    count = strtol(argv[4], NULL, 10);
    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "group.id", "bench-consume", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "false", errstr, sizeof(errstr))) {
        fprintf(stderr, "%s\n", errstr);
        return 1;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "%s\n", errstr);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    parts = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++)
        rd_kafka_topic_partition_list_add(parts, argv[2], p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    t0 = now_s();
    rd_kafka_assign(rk, parts);
    while (got < count) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (!m) {
            if (now_s() - t0 > 120) {
                fprintf(stderr, "timed out at %ld of %ld\n", got, count);
                return 1;
            }
            continue;
        }
        if (!m->err)
            got++;
        rd_kafka_message_destroy(m);
    }
    t1 = now_s();
    printf("consumed=%ld seconds=%.3f rate=%.0f\n", got, t1 - t0, (double)got / (t1 - t0));
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
}
