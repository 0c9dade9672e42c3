/* test_serve_auth.c - API keys and limits: the key store (hashed, listed without secrets,
 * revoked), serve.auth = keys over HTTP (401 without a valid key except the probes, 403
 * for status and metrics without admin rights, tenant isolation in search, context and
 * records whatever the filter says, revocation picked up without a restart), per-key
 * rate limits (429 with Retry-After) and the connection limit.
 */
#include "serve_testlib.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rf_test.h"
#include "serve/serve_int.h"

/* 1 when needle[0..n) occurs in hay[0..len). */
static int contains(const char *hay, size_t len, const char *needle, size_t n)
{
    for (size_t i = 0; i + n <= len; i++)
        if (!memcmp(hay + i, needle, n))
            return 1;
    return 0;
}

/* ==== The key store ==== */

static void test_store(void)
{
    char *dir = rf_test_tmpdir("keys"), *path, *k1 = NULL, *k2 = NULL, *k3 = NULL, *file;
    rf_serve_keys_t *ks = NULL;
    rf_serve_key_info_t info, *infos = NULL;
    size_t cnt = 0, flen = 0;
    rf_err_t err;

    RF_REQUIRE(dir);
    path = rf_xasprintf("%s/keys.db", dir);
    RF_REQUIRE(rf_serve_keys_open(path, &ks, &err) == RF_OK);
    RF_REQUIRE(rf_serve_keys_create(ks, "acme", 0, &k1, &info, &err) == RF_OK);
    RF_CHECK(!strncmp(k1, "rf_k", 4));
    RF_CHECK(strlen(k1) > 50);
    RF_CHECK(!strncmp(k1, info.prefix, strlen(info.prefix)));
    RF_CHECK_STR(info.tenant, "acme");
    RF_CHECK_INT(info.admin, 0);
    RF_CHECK(info.created_ms > 0);
    rf_serve_key_info_fini(&info);
    RF_REQUIRE(rf_serve_keys_create(ks, "", 1, &k2, NULL, &err) == RF_OK);
    RF_CHECK(strcmp(k1, k2) != 0);
    RF_CHECK_INT(rf_serve_keys_create(ks, "bad\ttenant", 0, &k3, NULL, &err), RF_EINVAL);
    RF_CHECK(k3 == NULL);

    RF_REQUIRE(rf_serve_keys_list(ks, &infos, &cnt, &err) == RF_OK);
    RF_REQUIRE(cnt == 2);
    RF_CHECK_STR(infos[0].tenant, "acme");
    RF_CHECK(infos[1].tenant == NULL);
    RF_CHECK_INT(infos[1].admin, 1);
    RF_CHECK_INT(infos[0].revoked_ms, 0);

    /* Revoke by id, then by printed prefix (idempotent); unknown ids are not found. */
    RF_CHECK_INT(rf_serve_keys_revoke(ks, infos[0].id, &err), RF_OK);
    RF_CHECK_INT(rf_serve_keys_revoke(ks, infos[0].prefix, &err), RF_OK);
    RF_CHECK_INT(rf_serve_keys_revoke(ks, "k0000000000000000", &err), RF_ENOTFOUND);
    RF_CHECK_INT(rf_serve_keys_revoke(ks, "", &err), RF_EINVAL);
    rf_serve_key_infos_free(infos, cnt);
    RF_REQUIRE(rf_serve_keys_list(ks, &infos, &cnt, &err) == RF_OK);
    RF_CHECK(infos[0].revoked_ms > 0);
    RF_CHECK_INT(infos[1].revoked_ms, 0);
    rf_serve_key_infos_free(infos, cnt);
    rf_serve_keys_close(ks);
    rf_serve_keys_close(NULL);

    /* The file holds hashes, never the keys. */
    file = rf_test_read_file(path, &flen);
    RF_REQUIRE(file);
    RF_CHECK(!contains(file, flen, k1 + 20, 20));
    RF_CHECK(!contains(file, flen, k2 + 20, 20));
    free(file);
    /* Reopening keeps the keys and the hashing key. */
    RF_REQUIRE(rf_serve_keys_open(path, &ks, &err) == RF_OK);
    RF_REQUIRE(rf_serve_keys_list(ks, &infos, &cnt, &err) == RF_OK);
    RF_CHECK_INT(cnt, 2);
    rf_serve_key_infos_free(infos, cnt);
    rf_serve_keys_close(ks);
    RF_CHECK(rf_serve_keys_open("/nonexistent-dir/x/keys.db", &ks, &err) != RF_OK);
    RF_CHECK(ks == NULL);

    free(k1);
    free(k2);
    free(path);
    rf_test_rmtree(dir);
    free(dir);
}

/* ==== Over HTTP ==== */

typedef struct akx {
    fx_t fx;
    char *keys_path;
    char *admin, *acme, *globex, *all;
    char *acme_id;
} akx_t;

static char *make_key(const char *path, const char *tenant, int admin, char **id)
{
    rf_serve_keys_t *ks = NULL;
    rf_serve_key_info_t info;
    rf_err_t err;
    char *key = NULL;
    RF_REQUIRE(rf_serve_keys_open(path, &ks, &err) == RF_OK);
    RF_REQUIRE(rf_serve_keys_create(ks, tenant, admin, &key, &info, &err) == RF_OK);
    if (id)
        *id = rf_xstrdup(info.id);
    rf_serve_key_info_fini(&info);
    rf_serve_keys_close(ks);
    return key;
}

static void akx_start(akx_t *a, double rate, int burst)
{
    static const float v[DIM] = {0.6f, 0.8f, 0, 0};
    rf_serve_opts_t o;

    memset(a, 0, sizeof(*a));
    fx_open(&a->fx);
    /* t.docs:1 belongs to acme already; t.docs:5 to globex. */
    fx_upsert(&a->fx, "t.docs:5", "avocado", v, "globex", NULL, NULL, rf_now_ms(), "t", 0, 4);
    a->keys_path = rf_xasprintf("%s/keys.db", a->fx.dir);
    a->admin = make_key(a->keys_path, NULL, 1, NULL);
    a->acme = make_key(a->keys_path, "acme", 0, &a->acme_id);
    a->globex = make_key(a->keys_path, "globex", 0, NULL);
    a->all = make_key(a->keys_path, NULL, 0, NULL);
    o = fx_opts(&a->fx, 2);
    o.auth = RF_SERVE_AUTH_KEYS;
    o.keys_path = a->keys_path;
    o.rate_per_key = rate;
    o.rate_burst = burst;
    fx_serve(&a->fx, &o);
}

static void akx_stop(akx_t *a)
{
    fx_stop(&a->fx);
    free(a->keys_path);
    free(a->admin);
    free(a->acme);
    free(a->globex);
    free(a->all);
    free(a->acme_id);
}

static void test_auth_required(void)
{
    static const struct {
        const char *method, *path, *body;
    } reqs[] = {
        {"POST", "/v1/search", "{\"query\":\"a\"}"},
        {"POST", "/v1/context", "{\"query\":\"a\"}"},
        {"GET", "/v1/records/t.docs%3A1", NULL},
        {"GET", "/v1/status", NULL},
        {"GET", "/metrics", NULL},
        {"GET", "/", NULL},
        {"POST", "/v1/search", "not even json"},
        {"GET", "/no/such/path", NULL},
        {"DELETE", "/v1/records/x", NULL},
    };
    static const char *bad_keys[] = {
        "", "rf_", "rf_k0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "nonsense",
        "rf_kx"};
    akx_t a;
    resp_t r;
    char *forged;

    akx_start(&a, 0, 0);
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        a.fx.key = NULL;
        http(&a.fx, reqs[i].method, reqs[i].path, reqs[i].body, &r);
        if (r.status != 401 || strcmp(err_code(&r), "unauthorized") != 0 ||
            !has_header(&r, "WWW-Authenticate: Bearer"))
            rf__test_fail(__FILE__, __LINE__, "%s %s without a key: %ld %s", reqs[i].method,
                          reqs[i].path, r.status, err_code(&r));
        resp_fini(&r);
        for (size_t k = 0; k < sizeof(bad_keys) / sizeof(bad_keys[0]); k++) {
            a.fx.key = bad_keys[k];
            http(&a.fx, reqs[i].method, reqs[i].path, reqs[i].body, &r);
            if (r.status != 401)
                rf__test_fail(__FILE__, __LINE__, "%s %s with key \"%s\": %ld", reqs[i].method,
                              reqs[i].path, bad_keys[k], r.status);
            resp_fini(&r);
        }
    }
    /* A real key's id with a forged secret. */
    forged = rf_xstrdup(a.acme);
    forged[strlen(forged) - 1] = forged[strlen(forged) - 1] == 'A' ? 'B' : 'A';
    a.fx.key = forged;
    http(&a.fx, "POST", "/v1/search", "{\"query\":\"a\"}", &r);
    RF_CHECK_INT(r.status, 401);
    resp_fini(&r);
    free(forged);

    /* The probes stay open for orchestrators. */
    a.fx.key = NULL;
    http(&a.fx, "GET", "/healthz", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    resp_fini(&r);
    http(&a.fx, "GET", "/readyz", NULL, &r);
    RF_CHECK(r.status == 200 || r.status == 503);
    resp_fini(&r);

    /* Read-only keys get search and records, not status or metrics. */
    a.fx.key = a.all;
    http(&a.fx, "POST", "/v1/search", "{\"query\":\"a\"}", &r);
    RF_CHECK_INT(r.status, 200);
    resp_fini(&r);
    http(&a.fx, "GET", "/v1/status", NULL, &r);
    RF_CHECK_INT(r.status, 403);
    RF_CHECK_STR(err_code(&r), "forbidden");
    resp_fini(&r);
    http(&a.fx, "GET", "/metrics", NULL, &r);
    RF_CHECK_INT(r.status, 403);
    resp_fini(&r);
    a.fx.key = a.admin;
    http(&a.fx, "GET", "/v1/status", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    resp_fini(&r);
    http(&a.fx, "GET", "/metrics", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK(r.body.ptr && strstr(r.body.ptr, "path=\"/v1/search\",code=\"401\""));
    resp_fini(&r);
    /* The status page needs a key like everything else but the probes. */
    a.fx.key = a.all;
    http(&a.fx, "GET", "/", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    resp_fini(&r);
    akx_stop(&a);
}

static void test_tenants(void)
{
    akx_t a;
    resp_t r;

    akx_start(&a, 0, 0);
    /* acme sees its record only, whatever the filter asks for. */
    a.fx.key = a.acme;
    http(&a.fx, "POST", "/v1/search", "{\"query\":\"a\",\"k\":50}", &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK_INT(result_cnt(&r), 1);
    RF_CHECK_STR(result_id(&r, 0), "t.docs:1");
    resp_fini(&r);
    http(&a.fx, "POST", "/v1/search", "{\"query\":\"a\",\"filter\":{\"tenant\":\"globex\"}}", &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK_INT(result_cnt(&r), 0);
    resp_fini(&r);
    http(&a.fx, "POST", "/v1/search",
         "{\"query\":\"a\",\"filter\":{\"tenant\":{\"in\":[\"globex\",\"acme\"]}}}", &r);
    RF_CHECK_INT(result_cnt(&r), 1);
    RF_CHECK_STR(result_id(&r, 0), "t.docs:1");
    resp_fini(&r);
    http(&a.fx, "POST", "/v1/context", "{\"query\":\"a\"}", &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK_STR(json_string_value(json_object_get(r.json, "context")), "[1] apple");
    resp_fini(&r);
    /* Another tenant's record is "not found", exactly like a missing one. */
    http(&a.fx, "GET", "/v1/records/t.docs%3A5", NULL, &r);
    RF_CHECK_INT(r.status, 404);
    RF_CHECK_STR(err_code(&r), "not_found");
    resp_fini(&r);
    http(&a.fx, "GET", "/v1/records/t.docs%3A2", NULL, &r);
    RF_CHECK_INT(r.status, 404);
    resp_fini(&r);
    http(&a.fx, "GET", "/v1/records/t.docs%3A1", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    resp_fini(&r);

    a.fx.key = a.globex;
    http(&a.fx, "POST", "/v1/search", "{\"query\":\"a\",\"k\":50}", &r);
    RF_CHECK_INT(result_cnt(&r), 1);
    RF_CHECK_STR(result_id(&r, 0), "t.docs:5");
    resp_fini(&r);
    http(&a.fx, "GET", "/v1/records/t.docs%3A1", NULL, &r);
    RF_CHECK_INT(r.status, 404);
    resp_fini(&r);

    /* A key for every tenant sees everything. */
    a.fx.key = a.all;
    http(&a.fx, "POST", "/v1/search", "{\"query\":\"a\",\"k\":50}", &r);
    RF_CHECK_INT(result_cnt(&r), 5);
    resp_fini(&r);
    akx_stop(&a);
}

static void test_revoke_reload(void)
{
    akx_t a;
    resp_t r;
    rf_serve_keys_t *ks = NULL;
    rf_err_t err;
    char *late;
    int64_t deadline;
    long status = 0;

    akx_start(&a, 0, 0);
    a.fx.key = a.acme;
    http(&a.fx, "POST", "/v1/search", "{\"query\":\"a\"}", &r);
    RF_CHECK_INT(r.status, 200);
    resp_fini(&r);

    /* Revoked in the file by another handle (as `ragfeed keys revoke` does): refused
     * within about a second, without a restart. */
    RF_REQUIRE(rf_serve_keys_open(a.keys_path, &ks, &err) == RF_OK);
    RF_REQUIRE(rf_serve_keys_revoke(ks, a.acme_id, &err) == RF_OK);
    rf_serve_keys_close(ks);
    deadline = rf_mono_ms() + 5000;
    while (rf_mono_ms() < deadline) {
        http(&a.fx, "POST", "/v1/search", "{\"query\":\"a\"}", &r);
        status = r.status;
        if (status == 401)
            RF_CHECK(strstr(err_msg(&r), "revoked") != NULL);
        resp_fini(&r);
        if (status == 401)
            break;
        rf_sleep_ms(20);
    }
    RF_CHECK_INT(status, 401);

    /* A key made after the start works as soon as the file is re-read. */
    late = make_key(a.keys_path, "acme", 0, NULL);
    a.fx.key = late;
    deadline = rf_mono_ms() + 5000;
    while (rf_mono_ms() < deadline) {
        http(&a.fx, "POST", "/v1/search", "{\"query\":\"a\"}", &r);
        status = r.status;
        resp_fini(&r);
        if (status == 200)
            break;
        rf_sleep_ms(20);
    }
    RF_CHECK_INT(status, 200);
    free(late);
    akx_stop(&a);
}

static void test_rate(void)
{
    akx_t a;
    resp_t r;
    int ok = 0, limited = 0;

    /* 1 request per second, bursts of 3: the fourth in a row is refused. */
    akx_start(&a, 1, 3);
    a.fx.key = a.acme;
    for (int i = 0; i < 4; i++) {
        http(&a.fx, "POST", "/v1/search", "{\"query\":\"a\"}", &r);
        if (r.status == 200)
            ok++;
        if (r.status == 429) {
            limited++;
            RF_CHECK_STR(err_code(&r), "rate_limited");
            RF_CHECK(has_header(&r, "Retry-After: 1"));
        }
        resp_fini(&r);
    }
    RF_CHECK_INT(ok, 3);
    RF_CHECK_INT(limited, 1);
    /* Buckets are per key: another key is not affected; the probes never are. */
    a.fx.key = a.globex;
    http(&a.fx, "POST", "/v1/search", "{\"query\":\"a\"}", &r);
    RF_CHECK_INT(r.status, 200);
    resp_fini(&r);
    a.fx.key = NULL;
    for (int i = 0; i < 5; i++) {
        http(&a.fx, "GET", "/healthz", NULL, &r);
        RF_CHECK_INT(r.status, 200);
        resp_fini(&r);
    }
    akx_stop(&a);
}

static void test_rate_unit(void)
{
    rf__serve_rate_t *rl = rf__serve_rate_new(2, 0);
    char name[32];

    RF_REQUIRE(rl);
    /* Burst 0 means one second's worth: 2. */
    RF_CHECK_INT(rf__serve_rate_take(rl, "k", 1000), 0);
    RF_CHECK_INT(rf__serve_rate_take(rl, "k", 1000), 0);
    RF_CHECK_INT(rf__serve_rate_take(rl, "k", 1000), 1);
    /* Half a second later one token is back. */
    RF_CHECK_INT(rf__serve_rate_take(rl, "k", 1500), 0);
    RF_CHECK_INT(rf__serve_rate_take(rl, "k", 1500), 1);
    RF_CHECK_INT(rf__serve_rate_take(rl, "other", 1500), 0);
    /* Many clients: memory stays bounded, idle buckets are dropped. */
    for (int i = 0; i < 70000; i++) {
        snprintf(name, sizeof(name), "addr:%d", i);
        rf__serve_rate_take(rl, name, 2000 + i);
    }
    rf__serve_rate_free(rl);
    rl = rf__serve_rate_new(0.5, 1);
    RF_CHECK_INT(rf__serve_rate_take(rl, "k", 0), 0);
    RF_CHECK_INT(rf__serve_rate_take(rl, "k", 0), 2);
    rf__serve_rate_free(rl);
    RF_CHECK(rf__serve_rate_new(0, 5) == NULL);
    RF_CHECK_INT(rf__serve_rate_take(NULL, "k", 0), 0);
    rf__serve_rate_free(NULL);
}

static void test_rate_by_address(void)
{
    fx_t fx;
    rf_serve_opts_t o;
    resp_t r;
    long last = 0;

    /* Without keys, buckets are per client address. */
    fx_open(&fx);
    o = fx_opts(&fx, 1);
    o.rate_per_key = 0.001;
    o.rate_burst = 2;
    fx_serve(&fx, &o);
    for (int i = 0; i < 3; i++) {
        http(&fx, "GET", "/v1/records/t.docs%3A1", NULL, &r);
        last = r.status;
        resp_fini(&r);
    }
    RF_CHECK_INT(last, 429);
    fx_stop(&fx);
}

/* Opens a TCP connection to port; -1 on failure. */
static int tcp_connect(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void test_connection_limit(void)
{
    fx_t fx;
    rf_serve_opts_t o;
    resp_t r;
    int fds[2];
    CURL *c;
    CURLcode cc;
    char url[64];
    long status = 0;

    fx_open(&fx);
    o = fx_opts(&fx, 1);
    o.max_connections = 2;
    fx_serve(&fx, &o);
    for (int i = 0; i < 2; i++) {
        fds[i] = tcp_connect(fx.port);
        RF_REQUIRE(fds[i] >= 0);
    }
    /* A third connection is not taken while both are open: it waits in the listen queue
     * (here until the client gives up). */
    c = curl_easy_init();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", fx.port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 300L);
    cc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    RF_CHECK_INT(cc, CURLE_OPERATION_TIMEDOUT);
    close(fds[0]);
    close(fds[1]);
    /* With the idle ones gone, requests are served again. */
    {
        int64_t deadline = rf_mono_ms() + 5000;
        while (rf_mono_ms() < deadline) {
            c = curl_easy_init();
            snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", fx.port);
            curl_easy_setopt(c, CURLOPT_URL, url);
            curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
            curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
            cc = curl_easy_perform(c);
            if (cc == CURLE_OK)
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
            curl_easy_cleanup(c);
            if (status == 200)
                break;
            rf_sleep_ms(10);
        }
    }
    RF_CHECK_INT(status, 200);
    http(&fx, "GET", "/healthz", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    resp_fini(&r);
    fx_stop(&fx);
}

static void test_bad_opts(void)
{
    fx_t fx;
    rf_serve_opts_t o;
    rf_serve_t *srv = NULL;
    rf_err_t err;

    fx_open(&fx);
    o = fx_opts(&fx, 1);
    o.auth = RF_SERVE_AUTH_KEYS;
    RF_CHECK_INT(rf_serve_start(&o, &srv, &err), RF_EINVAL);
    o.keys_path = "/nonexistent-dir/keys.db";
    RF_CHECK(rf_serve_start(&o, &srv, &err) != RF_OK);
    RF_CHECK(srv == NULL);
    o = fx_opts(&fx, 1);
    o.rate_per_key = -1;
    RF_CHECK_INT(rf_serve_start(&o, &srv, &err), RF_EINVAL);
    o = fx_opts(&fx, 1);
    o.auth = 7;
    RF_CHECK_INT(rf_serve_start(&o, &srv, &err), RF_EINVAL);
    fx_stop(&fx);
}

RF_TEST_MAIN(test_store, test_auth_required, test_tenants, test_revoke_reload, test_rate,
             test_rate_unit, test_rate_by_address, test_connection_limit, test_bad_opts)
