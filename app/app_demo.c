/* app_demo.c - `ragfeed demo`: the development broker in-process, sample change events
 * produced to it, and the whole pipeline on 127.0.0.1, with no network and no
 * configuration.  `--events FILE` feeds a larger corpus (`make demo` turns apt's package
 * descriptions into Debezium events, see scripts/apt_corpus.py). */
#include "app/app_int.h"
#include "ingest/ingest.h"

#include <getopt.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define DEMO_TOPIC "demo.shop.products"

/* The built-in sample: a small shop's catalogue as Debezium (PostgreSQL) change events:
 * creates, then updates, and a delete followed by its tombstone. */
static const struct {
    int id;
    const char *name, *category, *description;
} products[] = {
    {1, "trail running shoes", "footwear",
     "Lightweight shoes with a grippy sole for muddy forest trails and rocky paths."},
    {2, "waterproof hiking boots", "footwear",
     "Leather boots with a breathable membrane that keeps feet dry on long wet hikes."},
    {3, "ultralight tent", "camping",
     "Two-person tent weighing under a kilo, with aluminium poles and a rain fly."},
    {4, "down sleeping bag", "camping",
     "Warm sleeping bag filled with goose down, rated for nights just below freezing."},
    {5, "camping stove", "camping",
     "Compact gas stove that boils a litre of water in three minutes, wind shield included."},
    {6, "insulated water bottle", "kitchen",
     "Steel bottle that keeps drinks cold for a day and hot coffee warm for twelve hours."},
    {7, "espresso machine", "kitchen",
     "Pump espresso machine with a steam wand for milk foam and a removable water tank."},
    {8, "chef knife", "kitchen",
     "Twenty centimetre stainless steel knife, balanced for slicing vegetables and meat."},
    {9, "cast iron pan", "kitchen",
     "Heavy pan that holds heat for searing steak and baking cornbread in the oven."},
    {10, "mechanical keyboard", "computers",
     "Keyboard with tactile switches, aluminium frame and a detachable USB-C cable."},
    {11, "wireless mouse", "computers",
     "Ergonomic mouse with a silent click, Bluetooth pairing and a rechargeable battery."},
    {12, "noise cancelling headphones", "audio",
     "Over-ear headphones that block train and office noise, thirty hours of battery."},
    {13, "bluetooth speaker", "audio",
     "Small waterproof speaker for the beach or the shower, loud and clear bass."},
    {14, "e-book reader", "computers",
     "Paper-like screen for reading novels in sunlight, weeks of battery per charge."},
    {15, "yoga mat", "fitness",
     "Non-slip mat, six millimetres thick, that cushions knees during yoga and stretching."},
    {16, "adjustable dumbbells", "fitness",
     "Pair of dumbbells that change weight from two to twenty kilos with a turn of a dial."},
    {17, "road bike helmet", "cycling",
     "Ventilated helmet with a rear light and a magnetic buckle for road cycling."},
    {18, "bike repair kit", "cycling",
     "Multitool, tyre levers and patches to fix a flat tyre on the side of the road."},
};

static const struct {
    int id;
    const char *description;
} updates[] = {
    {7, "Pump espresso machine with a steam wand for milk foam, a removable water tank and "
        "a new built-in coffee grinder."},
    {12, "Over-ear headphones that block train and office noise, forty hours of battery and "
         "a foldable design."},
};

static const int deleted_id = 16;

/* Appends one Debezium event line (key<TAB>value) to fp. */
static void event_line(FILE *fp, int id, const char *op, const char *name, const char *category,
                       const char *description, int64_t lsn)
{
    fprintf(fp, "{\"id\":%d}\t{\"before\":null,\"after\":", id);
    if (name)
        fprintf(fp, "{\"id\":%d,\"name\":\"%s\",\"category\":\"%s\",\"description\":\"%s\"}", id,
                name, category, description);
    else
        fputs("null", fp);
    fprintf(fp,
            ",\"source\":{\"version\":\"2.5.0.Final\",\"connector\":\"postgresql\","
            "\"name\":\"demo\",\"ts_ms\":%lld,\"snapshot\":\"false\",\"db\":\"shop\","
            "\"schema\":\"shop\",\"table\":\"products\",\"lsn\":%lld},\"op\":\"%s\","
            "\"ts_ms\":%lld}\n",
            (long long)rf_now_ms(), (long long)lsn, op, (long long)rf_now_ms());
}

static FILE *sample_events(void)
{
    FILE *fp = tmpfile();
    int64_t lsn = 1000;
    if (!fp)
        return NULL;
    for (size_t i = 0; i < sizeof(products) / sizeof(products[0]); i++)
        event_line(fp, products[i].id, "c", products[i].name, products[i].category,
                   products[i].description, lsn++);
    for (size_t u = 0; u < sizeof(updates) / sizeof(updates[0]); u++)
        for (size_t i = 0; i < sizeof(products) / sizeof(products[0]); i++)
            if (products[i].id == updates[u].id)
                event_line(fp, products[i].id, "u", products[i].name, products[i].category,
                           updates[u].description, lsn++);
    event_line(fp, deleted_id, "d", NULL, NULL, NULL, lsn++);
    fprintf(fp, "{\"id\":%d}\t\n", deleted_id); /* the tombstone after the delete */
    rewind(fp);
    return fp;
}

typedef struct broker_thread {
    pthread_t thr;
    FILE *out;
    volatile int stop;
    rf_ingest_broker_opts_t opts;
    rf_err_t err;
    rf_rc rc;
} broker_thread_t;

static void *broker_main(void *arg)
{
    broker_thread_t *bt = arg;
    bt->rc = rf_ingest_broker_run(&bt->opts, bt->out, &bt->stop, &bt->err);
    fclose(bt->out);
    return NULL;
}

static void demo_ready(void *opaque, int port)
{
    const int *builtin = opaque;
    printf("\nragfeed is running. Status page: http://127.0.0.1:%d/\nTry:\n", port);
    if (*builtin) {
        printf("  curl -s 127.0.0.1:%d/v1/search -d '{\"query\":\"shoes for muddy trails\","
               "\"k\":3}'\n",
               port);
        printf("  curl -s 127.0.0.1:%d/v1/search -d '{\"query\":\"coffee grinder\",\"k\":2}'\n",
               port);
        printf("  curl -s 127.0.0.1:%d/v1/records/shop.products:7\n", port);
    } else {
        printf("  curl -s 127.0.0.1:%d/v1/search -d '{\"query\":\"postgresql database "
               "server\",\"k\":3}'\n",
               port);
        printf("  curl -s 127.0.0.1:%d/v1/search -d '{\"query\":\"vector graphics "
               "editor\",\"k\":3}'\n",
               port);
        printf("  curl -s 127.0.0.1:%d/v1/status\n", port);
    }
    printf("Ctrl-C stops the demo.\n");
    fflush(stdout);
}

int rf__app_cmd_demo(int argc, char **argv)
{
    static const struct option longopts[] = {{"events", required_argument, NULL, 'e'},
                                             {"topic", required_argument, NULL, 't'},
                                             {"set", required_argument, NULL, 's'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *events = NULL, *topic = DEMO_TOPIC, **sets;
    size_t set_cnt = 0, produced = 0;
    broker_thread_t bt;
    rf_conf_t *cfg = NULL;
    rf_err_t err = {0};
    char statedir[] = "/tmp/ragfeed-demo-XXXXXX", line[512];
    int fds[2] = {-1, -1}, opt, code = RF_EXIT_OK, builtin;
    FILE *in = NULL, *rd = NULL;
    char *boot = NULL;

    sets = rf_xcalloc((size_t)argc + 1, sizeof(*sets));
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'e':
            events = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        case 's':
            sets[set_cnt++] = optarg;
            break;
        case 'h':
            free(sets);
            return rf__app_cmd_help("demo");
        default:
            free(sets);
            return rf__app_usage_error("demo", "unknown or incomplete option \"%s\"",
                                       argv[optind - 1]);
        }
    }
    if (optind < argc) {
        free(sets);
        return rf__app_usage_error("demo", "unexpected argument \"%s\"", argv[optind]);
    }
    builtin = events == NULL;
    memset(&bt, 0, sizeof(bt));
    rf__app_signals_install();
    /* The broker's and the pipeline's routine lines would bury the instructions. */
    rf_log_setup(RF_LOG_WARN, RF_LOG_FORMAT_TEXT, NULL, NULL);

    /* The broker runs in a thread and reports its address through a pipe. */
    if (pipe(fds) || !(bt.out = fdopen(fds[1], "w")) || !(rd = fdopen(fds[0], "r"))) {
        fprintf(stderr, "ragfeed demo: pipe failed\n");
        code = RF_EXIT_FAILURE;
        goto out;
    }
    bt.opts.brokers = 1;
    bt.opts.topic = topic;
    bt.opts.partitions = 4;
    if (pthread_create(&bt.thr, NULL, broker_main, &bt)) {
        fclose(bt.out);
        fprintf(stderr, "ragfeed demo: cannot start the broker thread\n");
        code = RF_EXIT_FAILURE;
        goto out;
    }
    if (!fgets(line, sizeof(line), rd) || strncmp(line, "bootstrap.servers=", 18)) {
        pthread_join(bt.thr, NULL);
        fprintf(stderr, "ragfeed demo: the broker did not start: %s\n", bt.err.msg);
        code = RF_EXIT_UNAVAILABLE;
        goto out;
    }
    line[strcspn(line, "\n")] = '\0';
    boot = rf_xstrdup(line + 18);
    printf("broker: %s, topic %s\n", boot, topic);

    in = builtin ? sample_events() : fopen(events, "r");
    if (!in) {
        fprintf(stderr, "ragfeed demo: cannot read %s\n", builtin ? "the sample" : events);
        code = builtin ? RF_EXIT_FAILURE : RF_EXIT_USAGE;
        goto stop_broker;
    }
    if (rf_ingest_produce_tsv(boot, topic, in, &produced, &err)) {
        fprintf(stderr, "ragfeed demo: %s\n", err.msg);
        code = RF_EXIT_FAILURE;
        goto stop_broker;
    }
    printf("produced %zu change events\n", produced);

    if (!mkdtemp(statedir)) {
        fprintf(stderr, "ragfeed demo: cannot create a state directory\n");
        code = RF_EXIT_FAILURE;
        goto stop_broker;
    }
    cfg = rf_conf_new();
    {
        const char *defaults[][2] = {
            {"kafka.bootstrap.servers", boot},
            {"source.topics", topic},
            {"source.text", "{name}: {description}"},
            {"source.metadata.fields", "category,name"},
            {"state.dir", statedir},
            {"serve.listen", "127.0.0.1:8080"},
            {"log.level", "warn"},
        };
        for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
            rf_conf_set(cfg, defaults[i][0], defaults[i][1], RF_CONF_ORIGIN_FILE, "demo", NULL);
        for (size_t i = 0; i < set_cnt; i++) {
            const char *eq = strchr(sets[i], '=');
            char *key = eq ? rf_xstrndup(sets[i], (size_t)(eq - sets[i])) : NULL;
            int rc =
                key ? rf_conf_set(cfg, key, eq + 1, RF_CONF_ORIGIN_CLI, "--set", &err)
                    : (int)rf_err_set(&err, RF_ECONFIG, "--set %s: expected KEY=VALUE", sets[i]);
            free(key);
            if (rc) {
                fprintf(stderr, "ragfeed demo: configuration error: %s\n", err.msg);
                code = RF_EXIT_CONFIG;
                goto stop_broker;
            }
        }
        if (rf_conf_finalize(cfg, 1, &err) || rf__app_log_setup(cfg, &code)) {
            fprintf(stderr, "ragfeed demo: configuration error: %s\n", err.msg);
            code = RF_EXIT_CONFIG;
            goto stop_broker;
        }
    }
    code = rf__app_run_pipeline(cfg, demo_ready, &builtin);
    rf_rmtree(statedir);

stop_broker:
    bt.stop = 1;
    pthread_join(bt.thr, NULL);
out:
    if (in)
        fclose(in);
    if (rd)
        fclose(rd);
    else if (fds[0] >= 0)
        close(fds[0]);
    rf_conf_free(cfg);
    free(boot);
    free(sets);
    return code;
}
