/* app_cmd.c - the command table and everything generated from it: `ragfeed --help`,
 * `ragfeed help <cmd>`, `ragfeed <cmd> --help`, dispatch, and the exit-code table.
 * Help goes to stdout with exit 0; usage errors to stderr with exit 2. */
#include "app/app_int.h"

#include <signal.h>
#include <stdarg.h>
#include <string.h>

volatile int rf__app_stop;

static void on_signal(int sig)
{
    (void)sig;
    rf__app_stop = 1;
}

void rf__app_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

#define CONF_OPTS                                                                                  \
    "  -c, --config FILE     properties file (default configs/ragfeed.properties when it "         \
    "exists)\n"                                                                                    \
    "      --set KEY=VALUE   override one option (repeatable); RAGFEED_<KEY> variables "           \
    "also override the file\n"

const rf_app_cmd_t rf__app_cmds[] = {
    {"run", "ragfeed run [-c FILE] [--set KEY=VALUE]...",
     "consume change events, embed them, keep the index and serve HTTP, in one process",
     "Runs every stage in one process: the Kafka consumer (source.*), the embedder\n"
     "(embed.*), the store and vector index under state.dir (index.*), and the HTTP API on\n"
     "serve.listen. Each batch of events is applied in one store transaction together with\n"
     "the Kafka offsets it reaches, so a crash at any moment loses and repeats nothing.\n"
     "Stops cleanly on SIGTERM or SIGINT.\n\nOptions:\n" CONF_OPTS,
     rf__app_cmd_run},
    {"demo", "ragfeed demo [--events FILE --topic T] [--set KEY=VALUE]...",
     "broker + sample change events + run, all on 127.0.0.1",
     "Starts the development broker in-process, produces sample change events (a small\n"
     "shop catalogue as Debezium events, with updates and a delete) and runs the whole\n"
     "pipeline with the built-in embedder, serving HTTP on 127.0.0.1:8080. Prints example\n"
     "queries. Needs no network and no configuration. Ctrl-C stops it.\n\nOptions:\n"
     "      --events FILE     produce `key<TAB>value` lines from FILE instead of the sample\n"
     "      --topic T         topic to create and read (default demo.shop.products)\n"
     "      --set KEY=VALUE   override an option (e.g. serve.listen, source.text)\n",
     rf__app_cmd_demo},
    {"broker", "ragfeed broker [--port 0] [--brokers N] [--topic T --partitions N]",
     "a Kafka-protocol broker for development and tests (librdkafka's mock cluster)",
     "Runs librdkafka's mock cluster on 127.0.0.1 until SIGTERM or SIGINT. The first line on\n"
     "stdout is `bootstrap.servers=HOST:PORT[,...]`. It keeps everything in memory, at most\n"
     "5 MiB per partition; topics are auto-created with 4 partitions, so create yours with\n"
     "--topic/--partitions.\n\nOptions:\n"
     "      --port P          0 only: the mock cluster binds ports the kernel picks\n"
     "      --brokers N       number of brokers, 1..16 (default 1)\n"
     "      --topic T         create topic T at start\n"
     "      --partitions N    partitions of topic T, 1..1000 (default 4)\n",
     rf__app_cmd_broker},
    {"reembed",
     "ragfeed reembed [-c FILE] [--set KEY=VALUE]... [start] [--model NAME] [--provider P] "
     "[--dim N] [--url URL] [--dry-run] [--no-cutover] [--batch N] | status | cutover | "
     "rollback | cancel",
     "move every record to a new embedding model generation, without downtime",
     "Re-embeds every current record with another embedder (a new model generation) while\n"
     "search and ingest go on, then switches to it in one step. The new embedder is the\n"
     "configured one (embed.*) with --provider, --model, --dim and --url overriding it.\n"
     "Vectors are read from the store and written back in batches through the same client,\n"
     "cache and rate governor as ingest; live ingest writes both generations meanwhile.\n"
     "Progress is stored with the vectors: after a stop or a crash the same command resumes.\n"
     "When `ragfeed run` holds the state dir, the command asks that instance (admin API,\n"
     "serve.listen, --server URL; --key KEY or $RAGFEED_API_KEY with serve.auth=keys) to do\n"
     "the work and follows its progress; otherwise it works on the store itself.\n\n"
     "  start (default)  create the generation (or resume the one being built), re-embed,\n"
     "                   then switch unless --no-cutover. A progress bar on a terminal\n"
     "                   (records done/total, rate, ETA, tokens), key=value lines otherwise\n"
     "  --dry-run        only count the records, the texts the cache lacks and their tokens\n"
     "  status           every generation, and what the second one still lacks\n"
     "  cutover          switch to the generation being built (when it is complete)\n"
     "  rollback         switch back to the previous generation (kept until cancel)\n"
     "  cancel           drop the second generation: a build, or the rollback target\n",
     rf__app_cmd_reembed},
    {"history",
     "ragfeed history [-c FILE] [--set KEY=VALUE]... snapshots | record ID | scan [--as-of TIME "
     "| --snapshot ID] | expire --older-than DURATION|TIME | gc [--grace DURATION] | compact "
     "| export",
     "audit queries and maintenance of the Iceberg history table",
     "Reads the Iceberg table that `ragfeed run` fills with every change it applied\n"
     "(iceberg.table under iceberg.warehouse, catalog iceberg.catalog). Queries print JSON\n"
     "lines on stdout.\n\n"
     "  snapshots            every snapshot: id, time, parent, operation, cause (events or\n"
     "                       reembed, with the embedding generation), rows added and in\n"
     "                       total, ragfeed.seq and the Kafka offsets it corresponds to\n"
     "  record ID            every version of one record, oldest first: op, times, label,\n"
     "                       model, text, metadata and its Kafka position\n"
     "  scan                 every row of the current snapshot, or of the one given by\n"
     "                       --snapshot ID or current at --as-of TIME (ISO-8601 or epoch ms)\n"
     "  expire               remove snapshots older than --older-than (a duration such as 7d\n"
     "                       or a time), keeping the current one and --retain-last N (1),\n"
     "                       and delete the files only they used\n"
     "  gc                   delete files under the table's location that no snapshot uses\n"
     "                       and that are older than --grace (default 1d; files of a commit\n"
     "                       in flight are younger); --dry-run only counts them\n"
     "  compact              rewrite small data files of each day into files of up to\n"
     "                       --target-size (default iceberg.target.file.size) in one\n"
     "                       `replace` snapshot; rows are unchanged\n"
     "  export               export the store's changelog up to its current seq now, as\n"
     "                       `ragfeed run` does on its timer, then exit\n"
     "\nOptions:\n" CONF_OPTS "      --vectors         record, scan: include the vector column\n"
     "\nExit codes: 2 usage, 3 bad configuration, 4 no catalog or table (nothing exported\n"
     "yet), 1 other failures.\n",
     rf__app_cmd_history},
    {"keys", "ragfeed keys create [--tenant T] [--admin] | list | revoke ID",
     "API keys with tenant scopes for the HTTP API",
     "Manages the API keys that `serve.auth = keys` requires (clients send\n"
     "`Authorization: Bearer KEY`). Keys are stored hashed in <state.dir>/keys.db; a running\n"
     "server picks up changes within a second, so a revocation needs no restart.\n\n"
     "  create [--tenant T] [--admin]  make a key and print it alone on the first line of\n"
     "                                 stdout; it is never shown again. --tenant limits it to\n"
     "                                 tenant T's records; --admin also allows /v1/status and\n"
     "                                 /metrics\n"
     "  list                           print every key's id, prefix, tenant, rights, creation\n"
     "                                 and revocation times (never the keys)\n"
     "  revoke ID                      revoke a key by its id (or its printed prefix)\n"
     "\nOptions:\n" CONF_OPTS,
     rf__app_cmd_keys},
    {"config", "ragfeed config check [FILE] | dump [--effective] | doc [-o FILE]",
     "check, show or document the configuration",
     "  check [FILE]        validate FILE (or the -c/--set/environment configuration);\n"
     "                      exit 0 when valid, 3 with the key, value and expectation when not\n"
     "  dump [--effective]  print every option's effective value (secrets redacted);\n"
     "                      --effective adds where each value came from\n"
     "  doc [-o FILE]       print docs/CONFIGURATION.md generated from the option table\n"
     "\nOptions:\n" CONF_OPTS,
     rf__app_cmd_config},
    {"version", "ragfeed version", "print the version and the library versions",
     "Prints ragfeed's version and the versions of the libraries it was built with.\n",
     rf__app_cmd_version},
    {"help", "ragfeed help [COMMAND | exit-codes]", "show help for a command",
     "Shows the help of a command; `ragfeed help exit-codes` prints docs/EXIT-CODES.md.\n",
     rf__app_cmd_help_cmd},
};

const size_t rf__app_cmds_cnt = sizeof(rf__app_cmds) / sizeof(rf__app_cmds[0]);

static const struct {
    int code;
    const char *name;
    const char *desc;
} exit_codes[] = {
#define RF__EXIT_ROW(name, code, desc) {code, #name, desc},
    RF_EXIT_MAP(RF__EXIT_ROW)
#undef RF__EXIT_ROW
};

int rf__app_exit_for(rf_rc rc)
{
    switch (rc) {
    case RF_OK:
        return RF_EXIT_OK;
    case RF_ECONFIG:
        return RF_EXIT_CONFIG;
    case RF_EUSAGE:
    case RF_ENOTIMPL:
        return RF_EXIT_USAGE;
    case RF_EUNAVAIL:
        return RF_EXIT_UNAVAILABLE;
    case RF_ECORRUPT:
        return RF_EXIT_CORRUPT;
    default:
        return RF_EXIT_FAILURE;
    }
}

static const rf_app_cmd_t *cmd_find(const char *name)
{
    for (size_t i = 0; i < rf__app_cmds_cnt; i++)
        if (!strcmp(rf__app_cmds[i].name, name))
            return &rf__app_cmds[i];
    return NULL;
}

static void main_help(FILE *fp)
{
    fputs("ragfeed - real-time RAG context feeder: database change events in Kafka become\n"
          "fresh, searchable context for LLM applications, exactly once, with an Iceberg\n"
          "history of every enriched record.\n\n"
          "Usage: ragfeed <command> [options]\n\nCommands:\n",
          fp);
    for (size_t i = 0; i < rf__app_cmds_cnt; i++)
        fprintf(fp, "  %-9s %s\n", rf__app_cmds[i].name, rf__app_cmds[i].summary);
    fputs("\nRun `ragfeed help <command>` or `ragfeed <command> --help` for its options.\n\n"
          "Exit codes:\n",
          fp);
    for (size_t i = 0; i < sizeof(exit_codes) / sizeof(exit_codes[0]); i++)
        fprintf(fp, "  %d  %s\n", exit_codes[i].code, exit_codes[i].desc);
}

static void exit_codes_doc(FILE *fp)
{
    fputs("# Exit codes\n\n"
          "<!-- Generated by `ragfeed help exit-codes` from app/app_int.h; do not edit. -->\n\n"
          "Every `ragfeed` command exits with one of these codes. They are append-only: a\n"
          "code never changes meaning. A process killed by a signal leaves the shell's usual\n"
          "128+n.\n\n| code | name | meaning |\n| --- | --- | --- |\n",
          fp);
    for (size_t i = 0; i < sizeof(exit_codes) / sizeof(exit_codes[0]); i++)
        fprintf(fp, "| %d | `%s` | %s |\n", exit_codes[i].code, exit_codes[i].name,
                exit_codes[i].desc);
}

int rf__app_cmd_help(const char *name)
{
    const rf_app_cmd_t *cmd = cmd_find(name);
    if (!cmd)
        return rf__app_usage_error("help", "unknown command \"%s\"", name);
    printf("Usage: %s\n\n%s.\n\n%s", cmd->usage, cmd->summary, cmd->help);
    return RF_EXIT_OK;
}

int rf__app_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    const rf_app_cmd_t *c = cmd ? cmd_find(cmd) : NULL;
    fprintf(stderr, "ragfeed%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (c)
        fprintf(stderr, "Usage: %s\nRun `ragfeed %s --help` for more.\n", c->usage, c->name);
    else
        fputs("Usage: ragfeed <command> [options]\nRun `ragfeed --help` for the commands.\n",
              stderr);
    return RF_EXIT_USAGE;
}

int rf__app_cmd_help_cmd(int argc, char **argv)
{
    if (argc < 2) {
        main_help(stdout);
        return RF_EXIT_OK;
    }
    if (argc > 2)
        return rf__app_usage_error("help", "unexpected argument \"%s\"", argv[2]);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
        return rf__app_cmd_help("help");
    if (!strcmp(argv[1], "exit-codes")) {
        exit_codes_doc(stdout);
        return RF_EXIT_OK;
    }
    return rf__app_cmd_help(argv[1]);
}

int rf_app_main(int argc, char **argv)
{
    const rf_app_cmd_t *cmd;
    if (argc < 2) {
        main_help(stderr);
        return RF_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        main_help(stdout);
        return RF_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))
        return rf__app_cmd_version(1, argv + 1);
    cmd = cmd_find(argv[1]);
    if (!cmd)
        return rf__app_usage_error(NULL, "unknown command \"%s\"", argv[1]);
    return cmd->fn(argc - 1, argv + 1);
}
