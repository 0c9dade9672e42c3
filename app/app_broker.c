/* app_broker.c - `ragfeed broker`: the development Kafka broker (librdkafka's mock
 * cluster) as a standalone process; runs until SIGTERM or SIGINT and exits 0. */
#include "app/app_int.h"
#include "ingest/ingest.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int rf__app_cmd_broker(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},  {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'}, {"partitions", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    rf_ingest_broker_opts_t bo = {0, 1, NULL, 0};
    long v;
    int opt, code;
    rf_err_t err = {0};
    rf_rc rc;

    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'p':
            if (parse_int(optarg, 0, 65535, &v))
                return rf__app_usage_error("broker", "--port %s: expected 0..65535", optarg);
            bo.port = (int)v;
            break;
        case 'b':
            if (parse_int(optarg, 1, 16, &v))
                return rf__app_usage_error("broker", "--brokers %s: expected 1..16", optarg);
            bo.brokers = (int)v;
            break;
        case 't':
            bo.topic = optarg;
            break;
        case 'n':
            if (parse_int(optarg, 1, 1000, &v))
                return rf__app_usage_error("broker", "--partitions %s: expected 1..1000", optarg);
            bo.partitions = (int)v;
            break;
        case 'h':
            return rf__app_cmd_help("broker");
        default:
            return rf__app_usage_error("broker", "unknown or incomplete option \"%s\"",
                                       argv[optind - 1]);
        }
    }
    if (optind < argc)
        return rf__app_usage_error("broker", "unexpected argument \"%s\"", argv[optind]);
    if (bo.partitions && !bo.topic)
        return rf__app_usage_error("broker", "--partitions needs --topic");
    if (!bo.partitions)
        bo.partitions = 4;
    rf__app_signals_install();
    rc = rf_ingest_broker_run(&bo, stdout, &rf__app_stop, &err);
    if (rc) {
        fprintf(stderr, "ragfeed broker: %s\n", err.msg);
        code = rf__app_exit_for(rc == RF_EKAFKA ? RF_EUNAVAIL : rc);
        return code;
    }
    return RF_EXIT_OK;
}
