/* app_reembed_cmd.c - `ragfeed reembed`: starts (or resumes) a migration to a new model
 * generation, estimates one (--dry-run), shows progress, switches, rolls back, cancels.
 *
 * When `ragfeed run` holds the state dir, every subcommand goes through that instance's
 * admin API (/v1/admin/reembed...), which does the work beside live ingest; otherwise
 * the migration runs here, in-process, against the store.  Progress is stored with the
 * vectors, so either way a stop or crash resumes.  INVARIANT(one-record-per-key): the
 * switch waits until every current record has a vector of the new generation.
 */
#include "app/app_reembed.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

typedef struct opts {
    const char *sub; /* "start", "status", "cutover", "rollback", "cancel" */
    const char *provider, *model, *url;
    int dim;
    int dry_run, no_cutover;
    int batch;
    const char *server; /* admin API base URL; default from serve.listen */
    const char *key;    /* admin API key; default $RAGFEED_API_KEY */
} opts_t;

/* ==== In-process ==== */

static void gen_print(const rf_index_gen_t *g, int64_t missing)
{
    printf("{\"generation\":%lld,\"state\":\"%s\",\"dim\":%d,\"embedder\":%s,"
           "\"cursor\":%lld,\"tokens\":%lld,\"created_at_ms\":%lld,\"activated_at_ms\":%lld",
           (long long)g->gen, rf_index_gen_state_name(g->state), g->dim, g->desc,
           (long long)g->cursor, (long long)g->tokens, (long long)g->created_at_ms,
           (long long)g->activated_at_ms);
    if (missing >= 0)
        printf(",\"missing\":%lld", (long long)missing);
    printf("}\n");
}

static int local_status(rf_index_t *ix)
{
    rf_index_gen_t *gens = NULL;
    size_t n = 0;
    rf_err_t err = {0};
    if (rf_index_gen_list(ix, &gens, &n, &err)) {
        fprintf(stderr, "ragfeed reembed: %s\n", err.msg);
        return RF_EXIT_FAILURE;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t missing = -1;
        if (gens[i].state != RF_INDEX_GEN_ACTIVE)
            rf_index_gen_missing(ix, gens[i].gen, &missing, NULL, NULL);
        gen_print(&gens[i], missing);
    }
    rf_index_gen_list_free(gens, n);
    return RF_EXIT_OK;
}

/* Embeds every pending record of g into the store, pass after pass, until none is left
 * or a pass makes no progress. */
static rf_rc local_build(rf_index_t *ix, rf__app_gen_t *g, const opts_t *o, rf_err_t *err)
{
    int64_t total = 0, missing = 0, done = 0, tokens = 0, t0 = rf_mono_ms(), last = 0;
    int64_t cursor = 0;
    int tty = isatty(STDERR_FILENO);
    rf_index_gen_t *gens = NULL;
    size_t ng = 0;
    rf_rc rc;
    if ((rc = rf_index_gen_missing(ix, g->gen, &missing, &total, err)) ||
        (rc = rf_index_gen_list(ix, &gens, &ng, err)))
        return rc;
    for (size_t i = 0; i < ng; i++)
        if (gens[i].gen == g->gen) {
            cursor = gens[i].cursor; /* resume where the last run stopped */
            tokens = gens[i].tokens;
        }
    rf_index_gen_list_free(gens, ng);
    done = total - missing;
    for (int pass = 0; pass < 3 && !rf__app_stop;) {
        rf__app_rebatch_t rb;
        rf_index_batch_t b;
        if ((rc = rf__app_rebatch_prepare(ix, g, &cursor, (size_t)o->batch, &rb, err))) {
            rf__app_rebatch_clear(&rb);
            return rc;
        }
        if (!rb.n) {
            rf__app_rebatch_clear(&rb);
            if ((rc = rf_index_gen_missing(ix, g->gen, &missing, &total, err)))
                return rc;
            if (!missing)
                break;
            cursor = 0; /* records changed behind the cursor: another pass */
            pass++;
            continue;
        }
        rf__app_rebatch_batch(&rb, g->gen, &b);
        rc = rf_index_apply(ix, &b, NULL, err);
        done += (int64_t)rb.ngv;
        tokens += rb.tokens;
        rf__app_rebatch_clear(&rb);
        if (rc)
            return rc;
        if (rf_mono_ms() - last >= (tty ? 200 : 2000)) {
            double secs = (double)(rf_mono_ms() - t0) / 1000.0;
            last = rf_mono_ms();
            rf__app_progress_print(stderr, tty, done, total, secs > 0 ? (double)done / secs : 0,
                                   tokens, 0);
        }
    }
    {
        double secs = (double)(rf_mono_ms() - t0) / 1000.0;
        rf__app_progress_print(stderr, tty, done, total, secs > 0 ? (double)done / secs : 0, tokens,
                               1);
    }
    if (rf__app_stop)
        return rf_err_set(err, RF_ESTOPPED, "stopped; `ragfeed reembed` resumes from here");
    if ((rc = rf_index_gen_missing(ix, g->gen, &missing, NULL, err)))
        return rc;
    if (missing)
        return rf_err_set(err, RF_EEMBED,
                          "%lld records could not be embedded with generation %lld (see the log); "
                          "run `ragfeed reembed` again to retry them",
                          (long long)missing, (long long)g->gen);
    return RF_OK;
}

static int local_run(rf_conf_t *cfg, rf_index_t *ix, const opts_t *o)
{
    rf_index_gen_t *gens = NULL;
    size_t ng = 0;
    rf_err_t err = {0};
    rf__app_gen_t *g = NULL;
    const rf_index_gen_t *act = NULL, *sec = NULL;
    char *want = NULL;
    int code = RF_EXIT_OK;
    rf_rc rc;

    if ((rc = rf_index_gen_list(ix, &gens, &ng, &err)))
        goto fail;
    for (size_t i = 0; i < ng; i++) {
        if (gens[i].state == RF_INDEX_GEN_ACTIVE)
            act = &gens[i];
        else
            sec = &gens[i];
    }
    if (!strcmp(o->sub, "status")) {
        code = local_status(ix);
        goto out;
    }
    if (!strcmp(o->sub, "cancel")) {
        if (!sec) {
            rc = rf_err_set(&err, RF_ENOTFOUND, "there is no second generation to drop");
            goto fail;
        }
        if ((rc = rf_index_gen_drop(ix, sec->gen, &err)))
            goto fail;
        printf("generation %lld (%s) dropped\n", (long long)sec->gen,
               rf_index_gen_state_name(sec->state));
        goto out;
    }
    if (!strcmp(o->sub, "rollback") || !strcmp(o->sub, "cutover")) {
        int back = !strcmp(o->sub, "rollback");
        int64_t missing = 0;
        if (!sec || (back != (sec->state == RF_INDEX_GEN_PREVIOUS))) {
            rc = rf_err_set(&err, RF_ENOTFOUND,
                            back ? "there is no previous generation to roll back to"
                                 : "there is no generation being built to switch to");
            goto fail;
        }
        if ((rc = rf_index_gen_activate(ix, sec->gen, &missing, &err)))
            goto fail;
        printf("generation %lld is active: %s\n", (long long)sec->gen, sec->desc);
        goto out;
    }
    /* start (or resume) */
    want = rf__app_gen_desc_make(cfg, o->provider, o->model, o->dim, o->url);
    if (sec && sec->state == RF_INDEX_GEN_BUILDING && !o->model && !o->provider && !o->dim)
        want = (free(want), rf_xstrdup(sec->desc));
    if (act && rf__app_gen_desc_same(act->desc, want)) {
        rc = rf_err_set(&err, RF_EINVAL,
                        "the active generation %lld already uses %s; name another --model, "
                        "--provider or --dim",
                        (long long)act->gen, want);
        goto fail;
    }
    if (sec && sec->state == RF_INDEX_GEN_BUILDING && !rf__app_gen_desc_same(sec->desc, want)) {
        rc = rf_err_set(&err, RF_EBUSY,
                        "generation %lld (%s) is being built; finish it or `ragfeed reembed "
                        "cancel` first",
                        (long long)sec->gen, sec->desc);
        goto fail;
    }
    {
        json_t *d = json_loads(want, 0, NULL);
        int dim = (int)json_integer_value(json_object_get(d, "dim"));
        int resume = sec && sec->state == RF_INDEX_GEN_BUILDING;
        int64_t gen = resume ? sec->gen : 0;
        json_decref(d);
        if ((rc = rf__app_gen_open(cfg, gen, dim, want, &g, &err)))
            goto fail;
        if (o->dry_run) {
            rf__app_estimate_t est;
            if ((rc =
                     rf__app_reembed_estimate(ix, g->model_id, dim, g->use_cache, gen, &est, &err)))
                goto fail;
            printf("{\"dry_run\":true,\"embedder\":%s,\"records\":%lld,\"cached\":%lld,"
                   "\"duplicates\":%lld,\"texts\":%lld,\"tokens_estimated\":%lld}\n",
                   want, (long long)est.records, (long long)est.cached, (long long)est.duplicates,
                   (long long)est.texts, (long long)est.tokens);
            goto out;
        }
        if (!resume) {
            if ((rc = rf_index_gen_create(ix, dim, want, &gen, &err)))
                goto fail;
            g->gen = gen;
            fprintf(stderr, "generation %lld created: %s\n", (long long)gen, want);
        } else {
            fprintf(stderr, "resuming generation %lld: %s\n", (long long)gen, want);
        }
        if ((rc = local_build(ix, g, o, &err)))
            goto fail;
        if (o->no_cutover) {
            printf("generation %lld is complete; switch with `ragfeed reembed cutover`\n",
                   (long long)gen);
            goto out;
        }
        if ((rc = rf_index_gen_activate(ix, gen, NULL, &err)))
            goto fail;
        printf("generation %lld is active: %s\n", (long long)gen, want);
        if (act)
            printf("generation %lld is kept for `ragfeed reembed rollback` until `ragfeed "
                   "reembed cancel`\n",
                   (long long)act->gen);
    }
    goto out;
fail:
    fprintf(stderr, "ragfeed reembed: %s\n", err.msg);
    code = rf__app_exit_for(rc);
out:
    rf__app_gen_free(g);
    free(want);
    rf_index_gen_list_free(gens, ng);
    return code;
}

/* ==== Through a running instance ==== */

static size_t curl_sink(char *ptr, size_t sz, size_t n, void *ud)
{
    rf_buf_t *b = ud;
    if (rf_buf_append(b, ptr, sz * n))
        return 0;
    return sz * n;
}

/* One admin API call; *status the HTTP status (0: no answer), *body the answer. */
static rf_rc api_call(const char *base, const char *key, const char *method, const char *path,
                      const char *body, long *status, char **out, rf_err_t *err)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    rf_buf_t b;
    char *url = rf_xasprintf("%s%s", base, path), *auth = NULL;
    CURLcode cc;
    rf_buf_init(&b, 0);
    *status = 0;
    *out = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    if (key && *key) {
        auth = rf_xasprintf("Authorization: Bearer %s", key);
        h = curl_slist_append(h, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 120000L);
    cc = curl_easy_perform(c);
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    free(url);
    free(auth);
    if (cc != CURLE_OK) {
        rf_buf_fini(&b);
        return rf_err_set(err, RF_EUNAVAIL, "admin API at %s: %s", base, curl_easy_strerror(cc));
    }
    *out = rf_buf_take(&b, NULL);
    return RF_OK;
}

/* The migration figures of a status answer. */
static int remote_progress(const char *js, int64_t *done, int64_t *total, double *rate,
                           int64_t *tokens, const char **state, json_t **keep)
{
    json_t *o = json_loads(js, 0, NULL), *m = json_object_get(o, "migration");
    if (!json_is_object(m)) {
        json_decref(o);
        return 0;
    }
    *done = json_integer_value(json_object_get(m, "done"));
    *total = json_integer_value(json_object_get(m, "total"));
    *rate = json_number_value(json_object_get(m, "rate"));
    *tokens = json_integer_value(json_object_get(m, "tokens"));
    *state = json_string_value(json_object_get(m, "state"));
    *keep = o;
    return 1;
}

static int remote_run(rf_conf_t *cfg, const opts_t *o)
{
    char *base = NULL, *body = NULL, *ans = NULL;
    const char *key = o->key ? o->key : getenv("RAGFEED_API_KEY");
    long status = 0;
    rf_err_t err = {0};
    int code = RF_EXIT_OK, tty = isatty(STDERR_FILENO);
    rf_rc rc;
    if (o->server) {
        base = rf_xstrdup(o->server);
    } else {
        const char *colon = strrchr(cfg->serve_listen, ':');
        base = rf_xasprintf("http://127.0.0.1:%s", colon ? colon + 1 : "8080");
    }
    if (!strcmp(o->sub, "status")) {
        rc = api_call(base, key, "GET", "/v1/admin/reembed", NULL, &status, &ans, &err);
    } else if (!strcmp(o->sub, "start")) {
        json_t *req = json_object();
        if (o->provider)
            json_object_set_new(req, "provider", json_string(o->provider));
        if (o->model)
            json_object_set_new(req, "model", json_string(o->model));
        if (o->dim)
            json_object_set_new(req, "dim", json_integer(o->dim));
        if (o->url)
            json_object_set_new(req, "url", json_string(o->url));
        json_object_set_new(req, "dry_run", json_boolean(o->dry_run));
        json_object_set_new(req, "cutover", json_string(o->no_cutover ? "manual" : "auto"));
        body = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        rc = api_call(base, key, "POST", "/v1/admin/reembed", body, &status, &ans, &err);
    } else {
        char *path = rf_xasprintf("/v1/admin/reembed/%s", o->sub);
        rc = api_call(base, key, "POST", path, "{}", &status, &ans, &err);
        free(path);
    }
    if (rc)
        goto fail;
    if (status < 200 || status >= 300) {
        fprintf(stderr, "ragfeed reembed: the instance answered %ld: %s\n", status, ans);
        code = status == 401 || status == 403 ? RF_EXIT_USAGE : RF_EXIT_FAILURE;
        goto out;
    }
    if (strcmp(o->sub, "start") || o->dry_run) {
        printf("%s\n", ans);
        goto out;
    }
    /* Follow the migration until it ends (or until interrupted: it goes on there). */
    for (;;) {
        int64_t done = 0, total = 0, tokens = 0;
        double rate = 0;
        const char *state = NULL;
        json_t *js = NULL;
        free(ans);
        ans = NULL;
        if ((rc = api_call(base, key, "GET", "/v1/admin/reembed", NULL, &status, &ans, &err)))
            goto fail;
        if (!remote_progress(ans, &done, &total, &rate, &tokens, &state, &js)) {
            printf("%s\n", ans);
            break;
        }
        if (state && strcmp(state, "running") != 0) {
            rf__app_progress_print(stderr, tty, done, total, rate, tokens, 1);
            printf("%s\n", ans);
            code = !strcmp(state, "failed") ? RF_EXIT_FAILURE : RF_EXIT_OK;
            json_decref(js);
            break;
        }
        rf__app_progress_print(stderr, tty, done, total, rate, tokens, 0);
        json_decref(js);
        if (rf__app_stop) {
            fprintf(stderr, "\nthe migration goes on in the instance; `ragfeed reembed status` "
                            "shows it\n");
            break;
        }
        rf_sleep_ms(tty ? 250 : 2000);
    }
    goto out;
fail:
    fprintf(stderr, "ragfeed reembed: %s\n", err.msg);
    code = rf__app_exit_for(rc);
out:
    free(base);
    free(body);
    free(ans);
    return code;
}

/* ==== The command ==== */

int rf__app_cmd_reembed(int argc, char **argv)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"set", required_argument, NULL, 's'},
                                             {"model", required_argument, NULL, 'm'},
                                             {"provider", required_argument, NULL, 'p'},
                                             {"dim", required_argument, NULL, 'd'},
                                             {"url", required_argument, NULL, 'u'},
                                             {"dry-run", no_argument, NULL, 'n'},
                                             {"no-cutover", no_argument, NULL, 'N'},
                                             {"batch", required_argument, NULL, 'b'},
                                             {"server", required_argument, NULL, 'S'},
                                             {"key", required_argument, NULL, 'k'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    rf_app_confargs_t ca = {0};
    opts_t o = {0};
    rf_conf_t *cfg = NULL;
    rf_index_t *ix = NULL;
    rf_index_opts_t io;
    rf_err_t err = {0};
    char *desc = NULL;
    int opt, code = RF_EXIT_OK;
    rf_rc rc;

    o.sub = "start";
    o.batch = 256;
    ca.sets = rf_xcalloc((size_t)argc + 1, sizeof(char *));
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        char *end = NULL;
        switch (opt) {
        case 'c':
            ca.file = optarg;
            break;
        case 's':
            ca.sets[ca.set_cnt++] = optarg;
            break;
        case 'm':
            o.model = optarg;
            break;
        case 'p':
            o.provider = optarg;
            break;
        case 'u':
            o.url = optarg;
            break;
        case 'd':
            o.dim = (int)strtol(optarg, &end, 10);
            if (!end || *end || o.dim < 8 || o.dim > 8192) {
                code = rf__app_usage_error("reembed", "--dim %s: expected 8..8192", optarg);
                goto out;
            }
            break;
        case 'b':
            o.batch = (int)strtol(optarg, &end, 10);
            if (!end || *end || o.batch < 1 || o.batch > 100000) {
                code = rf__app_usage_error("reembed", "--batch %s: expected 1..100000", optarg);
                goto out;
            }
            break;
        case 'n':
            o.dry_run = 1;
            break;
        case 'N':
            o.no_cutover = 1;
            break;
        case 'S':
            o.server = optarg;
            break;
        case 'k':
            o.key = optarg;
            break;
        case 'h':
            code = rf__app_cmd_help("reembed");
            goto out;
        default:
            code = rf__app_usage_error("reembed", "unknown or incomplete option \"%s\"",
                                       argv[optind - 1]);
            goto out;
        }
    }
    if (optind < argc) {
        static const char *const subs[] = {"start", "status", "cutover", "rollback", "cancel"};
        int ok = 0;
        for (size_t i = 0; i < 5; i++)
            if (!strcmp(argv[optind], subs[i]))
                o.sub = subs[i], ok = 1;
        if (!ok || optind + 1 < argc) {
            code = rf__app_usage_error("reembed", "unexpected argument \"%s\"", argv[optind]);
            goto out;
        }
    }
    if (o.provider && rf__app_provider_parse(o.provider) < 0) {
        code = rf__app_usage_error("reembed", "--provider %s: expected hash, openai, ollama or tei",
                                   o.provider);
        goto out;
    }
    if (!(cfg = rf__app_conf_load(&ca, 0, &code)))
        goto out;
    if (rf__app_log_setup(cfg, &code))
        goto out;
    rf__app_signals_install();
    desc = rf__app_gen_desc_make(cfg, NULL, NULL, 0, NULL);
    memset(&io, 0, sizeof(io));
    io.dir = cfg->state_dir;
    io.dim = (int)cfg->embed_dim;
    io.dim_from_store = 1;
    io.gen_desc = desc;
    io.segment_size = cfg->index_segment_size;
    io.factory = cfg->index_factory;
    io.compact_ratio = cfg->index_compact_ratio;
    io.ef_search = (int)cfg->index_hnsw_ef_search;
    io.ivf_nprobe = (int)cfg->index_ivf_nprobe;
    io.filter_exact_max = cfg->index_filter_exact_max;
    io.work_nice = (int)cfg->ingest_nice;
    io.work_cpus = cfg->ingest_cpu_set;
    rc = rf_index_open(&io, &ix, &err);
    if (rc == RF_EBUSY) {
        /* `ragfeed run` holds the state dir: it does the work, beside live ingest. */
        code = remote_run(cfg, &o);
        goto out;
    }
    if (rc) {
        fprintf(stderr, "ragfeed reembed: %s\n", err.msg);
        code = rf__app_exit_for(rc);
        goto out;
    }
    code = local_run(cfg, ix, &o);
out:
    rf_index_close(ix);
    rf_conf_free(cfg);
    free(desc);
    free(ca.sets);
    return code;
}
