/* serve_keys.c - API keys and per-key rate limits.  Keys live in their own small SQLite
 * file (<state.dir>/keys.db) as keyed BLAKE2b hashes (libsodium crypto_generichash) of
 * high-entropy random secrets; a presented key is hashed and compared in constant time
 * (sodium_memcmp).  The server keeps the keys in memory and re-reads the file at most
 * once a second when SQLite's data_version says another connection changed it, so a
 * revocation takes effect without a restart.  Rate limits are token buckets, one per key.
 */
#include "serve/serve.h"

#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "serve/serve_int.h"

#define KEY_PREFIX      "rf_"
#define ID_HEX          16     /* hex digits of a key id after its "k" */
#define SECRET_BYTES    32     /* random bytes of a key's secret */
#define HASH_BYTES      32     /* BLAKE2b-256 */
#define KEY_MAX_LEN     128    /* longest key text accepted */
#define TENANT_MAX      256    /* bytes of a tenant name */
#define KEYS_MAX        100000 /* keys loaded by the server */
#define RELOAD_EVERY_MS 1000
#define BUSY_MS         2000

struct rf_serve_keys {
    sqlite3 *db;
    uint8_t hash_key[crypto_generichash_KEYBYTES];
};

/* ==== The store ==== */

static rf_rc db_fail(sqlite3 *db, rf_err_t *err, const char *what)
{
    return rf_err_set(err, RF_ESTORE, "keys.db: %s: %s", what, db ? sqlite3_errmsg(db) : "");
}

static rf_rc db_exec(sqlite3 *db, const char *sql, rf_err_t *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        rf_rc rc = rf_err_set(err, RF_ESTORE, "keys.db: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return rc;
    }
    return RF_OK;
}

/* Creates the tables and the hashing key when missing, and reads the hashing key. */
static rf_rc store_init(sqlite3 *db, uint8_t *hash_key, rf_err_t *err)
{
    uint8_t fresh[crypto_generichash_KEYBYTES];
    sqlite3_stmt *st = NULL;
    rf_rc rc;

    rc = db_exec(db,
                 "BEGIN IMMEDIATE;"
                 "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);"
                 "CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, hash BLOB NOT NULL,"
                 " tenant TEXT, admin INTEGER NOT NULL, created_ms INTEGER NOT NULL,"
                 " revoked_ms INTEGER NOT NULL DEFAULT 0);",
                 err);
    if (rc)
        return rc;
    randombytes_buf(fresh, sizeof(fresh));
    if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO meta (key, value) VALUES ('hash_key', ?1)",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_blob(st, 1, fresh, sizeof(fresh), SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(db, err, "storing the hashing key");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'hash_key'", -1, &st, NULL) !=
            SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = db_fail(db, err, "reading the hashing key");
        goto out;
    }
    if (sqlite3_column_bytes(st, 0) != crypto_generichash_KEYBYTES) {
        rc = rf_err_set(err, RF_ECORRUPT, "keys.db: the hashing key has %d bytes, expected %d",
                        sqlite3_column_bytes(st, 0), crypto_generichash_KEYBYTES);
        goto out;
    }
    memcpy(hash_key, sqlite3_column_blob(st, 0), crypto_generichash_KEYBYTES);
    sqlite3_finalize(st);
    st = NULL;
    rc = db_exec(db, "COMMIT", err);
out:
    sqlite3_finalize(st);
    if (rc)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sodium_memzero(fresh, sizeof(fresh));
    return rc;
}

static rf_rc store_open(const char *path, sqlite3 **out, uint8_t *hash_key, rf_err_t *err)
{
    sqlite3 *db = NULL;
    struct stat sb;
    int existed = stat(path, &sb) == 0;
    rf_rc rc;

    *out = NULL;
    if (sodium_init() < 0)
        return rf_err_set(err, RF_EUNAVAIL, "libsodium could not be initialised");
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = rf_err_set(err, RF_ESTORE, "%s: cannot open: %s", path,
                        db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db, BUSY_MS);
    /* Only hashes are stored, but nobody else needs to read them. */
    if (!existed)
        chmod(path, 0600);
    if ((rc = store_init(db, hash_key, err))) {
        sqlite3_close(db);
        return rc;
    }
    *out = db;
    return RF_OK;
}

rf_rc rf_serve_keys_open(const char *path, rf_serve_keys_t **out, rf_err_t *err)
{
    rf_serve_keys_t *ks;
    rf_rc rc;

    *out = NULL;
    if (!path || !*path)
        return rf_err_set(err, RF_EINVAL, "rf_serve_keys_open: no path");
    ks = rf_xcalloc(1, sizeof(*ks));
    if ((rc = store_open(path, &ks->db, ks->hash_key, err))) {
        free(ks);
        return rc;
    }
    *out = ks;
    return RF_OK;
}

void rf_serve_keys_close(rf_serve_keys_t *ks)
{
    if (!ks)
        return;
    sqlite3_close(ks->db);
    sodium_memzero(ks->hash_key, sizeof(ks->hash_key));
    free(ks);
}

static void key_hash(const uint8_t *hash_key, const char *key, size_t len, uint8_t *out)
{
    crypto_generichash(out, HASH_BYTES, (const unsigned char *)key, len, hash_key,
                       crypto_generichash_KEYBYTES);
}

rf_rc rf_serve_keys_create(rf_serve_keys_t *ks, const char *tenant, int admin, char **key,
                           rf_serve_key_info_t *info, rf_err_t *err)
{
    uint8_t idb[ID_HEX / 2], secret[SECRET_BYTES], hash[HASH_BYTES];
    char id[32], hex[ID_HEX + 1],
        b64[sodium_base64_ENCODED_LEN(SECRET_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    sqlite3_stmt *st = NULL;
    char *text = NULL;
    int64_t now = rf_now_ms();
    rf_rc rc = RF_OK;

    *key = NULL;
    if (info)
        memset(info, 0, sizeof(*info));
    if (tenant && !*tenant)
        tenant = NULL;
    if (tenant) {
        if (strlen(tenant) > TENANT_MAX)
            return rf_err_set(err, RF_EINVAL, "tenant is longer than %d bytes", TENANT_MAX);
        for (const char *p = tenant; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                return rf_err_set(err, RF_EINVAL, "tenant must not hold control characters");
    }
    randombytes_buf(idb, sizeof(idb));
    randombytes_buf(secret, sizeof(secret));
    sodium_bin2hex(hex, sizeof(hex), idb, sizeof(idb));
    sodium_bin2base64(b64, sizeof(b64), secret, sizeof(secret),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(id, sizeof(id), "k%s", hex);
    text = rf_xasprintf(KEY_PREFIX "%s_%s", id, b64);
    key_hash(ks->hash_key, text, strlen(text), hash);

    if (sqlite3_prepare_v2(ks->db,
                           "INSERT INTO api_keys (id, hash, tenant, admin, created_ms)"
                           " VALUES (?1, ?2, ?3, ?4, ?5)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(ks->db, err, "preparing the insert");
        goto out;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 2, hash, sizeof(hash), SQLITE_TRANSIENT);
    if (tenant)
        sqlite3_bind_text(st, 3, tenant, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_int(st, 4, admin ? 1 : 0);
    sqlite3_bind_int64(st, 5, now);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(ks->db, err, "storing the key");
        goto out;
    }
    if (info) {
        snprintf(info->id, sizeof(info->id), "%s", id);
        snprintf(info->prefix, sizeof(info->prefix), KEY_PREFIX "%s_", id);
        info->tenant = tenant ? rf_xstrdup(tenant) : NULL;
        info->admin = admin ? 1 : 0;
        info->created_ms = now;
    }
    *key = text;
    text = NULL;
out:
    sqlite3_finalize(st);
    sodium_memzero(secret, sizeof(secret));
    sodium_memzero(b64, sizeof(b64));
    if (text) {
        sodium_memzero(text, strlen(text));
        free(text);
    }
    return rc;
}

void rf_serve_key_info_fini(rf_serve_key_info_t *info)
{
    if (!info)
        return;
    free(info->tenant);
    memset(info, 0, sizeof(*info));
}

void rf_serve_key_infos_free(rf_serve_key_info_t *infos, size_t cnt)
{
    if (!infos)
        return;
    for (size_t i = 0; i < cnt; i++)
        rf_serve_key_info_fini(&infos[i]);
    free(infos);
}

rf_rc rf_serve_keys_list(rf_serve_keys_t *ks, rf_serve_key_info_t **infos, size_t *cnt,
                         rf_err_t *err)
{
    rf_serve_key_info_t *v = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    rf_rc rc = RF_OK;
    int src;

    *infos = NULL;
    *cnt = 0;
    if (sqlite3_prepare_v2(ks->db,
                           "SELECT id, tenant, admin, created_ms, revoked_ms FROM api_keys"
                           " ORDER BY created_ms, rowid",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(ks->db, err, "listing keys");
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const char *tenant = (const char *)sqlite3_column_text(st, 1);
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = rf_xrealloc(v, cap * sizeof(*v));
        }
        memset(&v[n], 0, sizeof(v[n]));
        snprintf(v[n].id, sizeof(v[n].id), "%s", id ? id : "");
        snprintf(v[n].prefix, sizeof(v[n].prefix), KEY_PREFIX "%s_", v[n].id);
        v[n].tenant = tenant ? rf_xstrdup(tenant) : NULL;
        v[n].admin = sqlite3_column_int(st, 2) != 0;
        v[n].created_ms = sqlite3_column_int64(st, 3);
        v[n].revoked_ms = sqlite3_column_int64(st, 4);
        n++;
    }
    if (src != SQLITE_DONE) {
        rc = db_fail(ks->db, err, "listing keys");
        rf_serve_key_infos_free(v, n);
        goto out;
    }
    *infos = v;
    *cnt = n;
out:
    sqlite3_finalize(st);
    return rc;
}

rf_rc rf_serve_keys_revoke(rf_serve_keys_t *ks, const char *id, rf_err_t *err)
{
    char want[64];
    size_t n;
    sqlite3_stmt *st = NULL;
    rf_rc rc = RF_OK;

    /* Accept the id ("k0123...") or the printed prefix ("rf_k0123..._"). */
    if (!id || !*id)
        return rf_err_set(err, RF_EINVAL, "no key id given");
    if (!strncmp(id, KEY_PREFIX, strlen(KEY_PREFIX)))
        id += strlen(KEY_PREFIX);
    n = strcspn(id, "_");
    if (n == 0 || n >= sizeof(want))
        return rf_err_set(err, RF_ENOTFOUND, "no key with id \"%.64s\"", id);
    memcpy(want, id, n);
    want[n] = '\0';
    if (sqlite3_prepare_v2(ks->db,
                           "UPDATE api_keys SET revoked_ms = CASE WHEN revoked_ms = 0 THEN ?2"
                           " ELSE revoked_ms END WHERE id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(ks->db, err, "revoking");
    sqlite3_bind_text(st, 1, want, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, rf_now_ms());
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(ks->db, err, "revoking");
    else if (sqlite3_changes(ks->db) == 0)
        rc = rf_err_set(err, RF_ENOTFOUND, "no key with id \"%s\"", want);
    sqlite3_finalize(st);
    return rc;
}

/* ==== Checking keys in the server ==== */

typedef struct entry {
    char id[32];
    uint8_t hash[HASH_BYTES];
    char *tenant;
    int admin;
    int revoked;
} entry_t;

struct rf__serve_auth {
    pthread_mutex_t mu;
    rf_serve_keys_t *ks;
    int64_t checked_ms; /* monotonic time of the last data_version check */
    int64_t version;    /* data_version the entries were read at, -1 never */
    entry_t *keys;      /* sorted by id */
    size_t cnt;
};

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const entry_t *)a)->id, ((const entry_t *)b)->id);
}

static void entries_free(entry_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].tenant);
    free(v);
}

/* Reads every key.  Caller holds mu. */
static rf_rc load(rf__serve_auth_t *auth, rf_err_t *err)
{
    sqlite3 *db = auth->ks->db;
    sqlite3_stmt *st = NULL;
    entry_t *v = NULL;
    size_t n = 0, cap = 0;
    rf_rc rc = RF_OK;
    int src;

    if (sqlite3_prepare_v2(db, "SELECT id, hash, tenant, admin, revoked_ms FROM api_keys", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(db, err, "reading keys");
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const char *tenant = (const char *)sqlite3_column_text(st, 2);
        if (!id || strlen(id) >= sizeof(v->id) || sqlite3_column_bytes(st, 1) != HASH_BYTES)
            continue; /* not a row this code wrote; it can match nothing */
        if (n == KEYS_MAX) {
            RF_LOG(RF_LOG_WARN, RF_MOD_SERVE, "keys=%d more keys than the server loads", KEYS_MAX);
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = rf_xrealloc(v, cap * sizeof(*v));
        }
        memset(&v[n], 0, sizeof(v[n]));
        snprintf(v[n].id, sizeof(v[n].id), "%s", id);
        memcpy(v[n].hash, sqlite3_column_blob(st, 1), HASH_BYTES);
        v[n].tenant = tenant ? rf_xstrdup(tenant) : NULL;
        v[n].admin = sqlite3_column_int(st, 3) != 0;
        v[n].revoked = sqlite3_column_int64(st, 4) != 0;
        n++;
    }
    if (src != SQLITE_DONE && src != SQLITE_ROW) {
        rc = db_fail(db, err, "reading keys");
        entries_free(v, n);
        goto out;
    }
    if (n)
        qsort(v, n, sizeof(*v), entry_cmp);
    entries_free(auth->keys, auth->cnt);
    auth->keys = v;
    auth->cnt = n;
out:
    sqlite3_finalize(st);
    return rc;
}

static int64_t data_version(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Re-reads the keys when the file changed, at most once per RELOAD_EVERY_MS.  A failed
 * read keeps the keys already loaded.  Caller holds mu. */
static void maybe_reload(rf__serve_auth_t *auth)
{
    int64_t now = rf_mono_ms(), v;
    rf_err_t err;

    if (auth->version >= 0 && now - auth->checked_ms < RELOAD_EVERY_MS)
        return;
    auth->checked_ms = now;
    v = data_version(auth->ks->db);
    if (v >= 0 && v == auth->version)
        return;
    rf_err_clear(&err);
    if (load(auth, &err) != RF_OK) {
        RF_LOG(RF_LOG_WARN, RF_MOD_SERVE, "keeping the keys loaded before: %s", err.msg);
        return;
    }
    auth->version = v;
    RF_LOG(RF_LOG_DEBUG, RF_MOD_SERVE, "keys=%zu api keys loaded", auth->cnt);
}

rf_rc rf__serve_auth_open(const char *path, rf__serve_auth_t **out, rf_err_t *err)
{
    rf__serve_auth_t *auth = rf_xcalloc(1, sizeof(*auth));
    rf_rc rc;

    *out = NULL;
    if ((rc = rf_serve_keys_open(path, &auth->ks, err))) {
        free(auth);
        return rc;
    }
    pthread_mutex_init(&auth->mu, NULL);
    auth->version = -1;
    if ((rc = load(auth, err))) {
        rf__serve_auth_close(auth);
        return rc;
    }
    auth->version = data_version(auth->ks->db);
    auth->checked_ms = rf_mono_ms();
    if (!auth->cnt)
        RF_LOG(RF_LOG_WARN, RF_MOD_SERVE,
               "path=\"%s\" no API keys yet: every request but /healthz and /readyz gets 401 "
               "until `ragfeed keys create` makes one",
               path);
    *out = auth;
    return RF_OK;
}

void rf__serve_auth_close(rf__serve_auth_t *auth)
{
    if (!auth)
        return;
    entries_free(auth->keys, auth->cnt);
    rf_serve_keys_close(auth->ks);
    pthread_mutex_destroy(&auth->mu);
    free(auth);
}

void rf__serve_principal_fini(rf__serve_principal_t *who)
{
    if (!who)
        return;
    free(who->tenant);
    memset(who, 0, sizeof(*who));
}

rf_rc rf__serve_auth_check(rf__serve_auth_t *auth, const char *authorization,
                           rf__serve_principal_t *who, rf__serve_fail_t *f)
{
    uint8_t have[HASH_BYTES], want[HASH_BYTES];
    const char *key, *id;
    entry_t probe, *e;
    size_t key_len, id_len;
    int revoked = 0, found = 0;

    memset(who, 0, sizeof(*who));
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0) {
        rf__serve_fail(f, RF__SERVE_E_UNAUTHORIZED,
                       "an API key is required: send \"Authorization: Bearer <key>\"");
        return RF_EAUTH;
    }
    key = authorization + 7;
    while (*key == ' ')
        key++;
    key_len = strlen(key);
    while (key_len && key[key_len - 1] == ' ')
        key_len--;
    /* rf_<id>_<secret>: the id picks the row, the whole key is hashed and compared. */
    id = key + strlen(KEY_PREFIX);
    id_len = key_len > strlen(KEY_PREFIX) ? strcspn(id, "_ ") : 0;
    if (key_len > KEY_MAX_LEN || strncmp(key, KEY_PREFIX, strlen(KEY_PREFIX)) != 0 || !id_len ||
        id_len >= sizeof(probe.id) || id[id_len] != '_') {
        rf__serve_fail(f, RF__SERVE_E_UNAUTHORIZED, "the API key is not valid");
        return RF_EAUTH;
    }
    memcpy(probe.id, id, id_len);
    probe.id[id_len] = '\0';

    pthread_mutex_lock(&auth->mu);
    maybe_reload(auth);
    e = auth->cnt ? bsearch(&probe, auth->keys, auth->cnt, sizeof(*auth->keys), entry_cmp) : NULL;
    if (e) {
        found = 1;
        memcpy(want, e->hash, sizeof(want));
        revoked = e->revoked;
        snprintf(who->id, sizeof(who->id), "%s", e->id);
        who->tenant = e->tenant ? rf_xstrdup(e->tenant) : NULL;
        who->admin = e->admin;
    } else {
        memset(want, 0, sizeof(want));
    }
    key_hash(auth->ks->hash_key, key, key_len, have);
    pthread_mutex_unlock(&auth->mu);

    /* The hash is computed and compared whether or not the id exists, in constant time. */
    if (sodium_memcmp(have, want, sizeof(have)) != 0 || !found || revoked) {
        rf__serve_principal_fini(who);
        rf__serve_fail(f, RF__SERVE_E_UNAUTHORIZED, "the API key is not valid%s",
                       found && revoked ? " (revoked)" : "");
        return RF_EAUTH;
    }
    return RF_OK;
}

/* ==== Rate buckets ==== */

#define RATE_SLOTS    1024
#define RATE_MAX      65536 /* buckets kept; idle (full) ones are dropped beyond */
#define RATE_OVERFLOW "_overflow"

typedef struct bucket {
    struct bucket *next;
    double tokens;
    int64_t last_ms;
    char name[64];
} bucket_t;

struct rf__serve_rate {
    pthread_mutex_t mu;
    double per_ms;
    double burst;
    size_t cnt;
    bucket_t *slots[RATE_SLOTS];
};

rf__serve_rate_t *rf__serve_rate_new(double per_s, int burst)
{
    rf__serve_rate_t *rl;
    if (!(per_s > 0))
        return NULL;
    rl = rf_xcalloc(1, sizeof(*rl));
    pthread_mutex_init(&rl->mu, NULL);
    rl->per_ms = per_s / 1000.0;
    rl->burst = burst > 0 ? burst : ceil(per_s);
    if (rl->burst < 1)
        rl->burst = 1;
    return rl;
}

void rf__serve_rate_free(rf__serve_rate_t *rl)
{
    if (!rl)
        return;
    for (size_t i = 0; i < RATE_SLOTS; i++)
        while (rl->slots[i]) {
            bucket_t *b = rl->slots[i];
            rl->slots[i] = b->next;
            free(b);
        }
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

static size_t slot_of(const char *name)
{
    uint32_t h = 2166136261u;
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 16777619u;
    return h % RATE_SLOTS;
}

/* Brings b's tokens up to now. */
static void refill(const rf__serve_rate_t *rl, bucket_t *b, int64_t now_ms)
{
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * rl->per_ms;
        if (b->tokens > rl->burst)
            b->tokens = rl->burst;
        b->last_ms = now_ms;
    }
}

/* Drops buckets that are full again: they behave exactly like absent ones. */
static void sweep(rf__serve_rate_t *rl, int64_t now_ms)
{
    for (size_t i = 0; i < RATE_SLOTS; i++)
        for (bucket_t **pp = &rl->slots[i]; *pp;) {
            bucket_t *b = *pp;
            refill(rl, b, now_ms);
            if (b->tokens >= rl->burst) {
                *pp = b->next;
                free(b);
                rl->cnt--;
            } else {
                pp = &b->next;
            }
        }
}

int rf__serve_rate_take(rf__serve_rate_t *rl, const char *name, int64_t now_ms)
{
    bucket_t *b;
    size_t slot;
    int wait = 0;

    if (!rl)
        return 0;
    pthread_mutex_lock(&rl->mu);
    slot = slot_of(name);
    for (b = rl->slots[slot]; b && strncmp(b->name, name, sizeof(b->name) - 1) != 0; b = b->next)
        ;
    if (!b) {
        if (rl->cnt >= RATE_MAX)
            sweep(rl, now_ms);
        if (rl->cnt >= RATE_MAX && strcmp(name, RATE_OVERFLOW) != 0) {
            /* Too many clients at once: the newcomers share one bucket. */
            pthread_mutex_unlock(&rl->mu);
            return rf__serve_rate_take(rl, RATE_OVERFLOW, now_ms);
        }
        b = rf_xcalloc(1, sizeof(*b));
        snprintf(b->name, sizeof(b->name), "%s", name);
        b->tokens = rl->burst;
        b->last_ms = now_ms;
        b->next = rl->slots[slot];
        rl->slots[slot] = b;
        rl->cnt++;
    }
    refill(rl, b, now_ms);
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
    } else {
        double s = (1.0 - b->tokens) / rl->per_ms / 1000.0;
        wait = (int)ceil(s);
        if (wait < 1)
            wait = 1;
    }
    pthread_mutex_unlock(&rl->mu);
    return wait;
}
