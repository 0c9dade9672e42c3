/* test_serve_docs.c - docs/API.md and docs/openapi.json stay in sync with the server:
 * every route the router knows (with its method), every error code it can answer with
 * (with its status), every metric /metrics renders and every serve.* option appear in
 * both documents or in API.md, and the OpenAPI file is a JSON OpenAPI 3 document.
 */
#include "serve/serve_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "rf_test.h"

static const struct {
    const char *method, *path;
} routes[] = {
#define ROUTE_ROW(name, method, path) {method, path},
    RF__SERVE_ROUTE_MAP(ROUTE_ROW)
#undef ROUTE_ROW
};

static const struct {
    const char *code;
    unsigned status;
} codes[] = {
#define CODE_ROW(name, str, status) {str, status},
    RF__SERVE_CODE_MAP(CODE_ROW)
#undef CODE_ROW
};

static char *read_doc(const char *rel)
{
    char *path = rf_test_src_path(rel), *text;
    RF_REQUIRE(path);
    text = rf_test_read_file(path, NULL);
    if (!text)
        rf__test_fail(__FILE__, __LINE__, "cannot read %s", path);
    free(path);
    RF_REQUIRE(text);
    return text;
}

static json_t *load_openapi(void)
{
    char *text = read_doc("docs/openapi.json");
    json_error_t jerr;
    json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        rf__test_fail(__FILE__, __LINE__, "docs/openapi.json: line %d: %s", jerr.line, jerr.text);
    free(text);
    RF_REQUIRE(doc);
    return doc;
}

static void lower(char *dst, const char *src, size_t n)
{
    size_t i = 0;
    for (; src[i] && i + 1 < n; i++)
        dst[i] = (char)(src[i] >= 'A' && src[i] <= 'Z' ? src[i] + 32 : src[i]);
    dst[i] = '\0';
}

static void test_routes(void)
{
    char *md = read_doc("docs/API.md");
    json_t *doc = load_openapi(), *paths = json_object_get(doc, "paths");
    char row[256], m[16];

    RF_CHECK(!strncmp(json_string_value(json_object_get(doc, "openapi")), "3.", 2));
    RF_REQUIRE(json_is_object(paths));
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        snprintf(row, sizeof(row), "| `%s` | `%s` |", routes[i].method, routes[i].path);
        if (!strstr(md, row))
            rf__test_fail(__FILE__, __LINE__, "docs/API.md has no route row \"%s\"", row);
        snprintf(row, sizeof(row), "## %s %s", routes[i].method, routes[i].path);
        if (!strstr(md, row))
            rf__test_fail(__FILE__, __LINE__, "docs/API.md has no section \"%s\"", row);
        lower(m, routes[i].method, sizeof(m));
        if (!json_object_get(json_object_get(paths, routes[i].path), m))
            rf__test_fail(__FILE__, __LINE__, "docs/openapi.json has no %s %s", m, routes[i].path);
    }
    /* And nothing the server does not serve. */
    {
        const char *p;
        json_t *ops;
        json_object_foreach(paths, p, ops)
        {
            int known = 0;
            for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
                size_t n = strlen(routes[i].path);
                /* The admin route also serves its actions, one path level below. */
                known |= !strcmp(p, routes[i].path) ||
                         (!strcmp(routes[i].method, "POST") && !strncmp(p, routes[i].path, n) &&
                          !strncmp(p + n, "/{", 2) && !strncmp(routes[i].path, "/v1/admin/", 10));
            }
            if (!known)
                rf__test_fail(__FILE__, __LINE__,
                              "docs/openapi.json documents %s, which the "
                              "server does not route",
                              p);
        }
    }
    json_decref(doc);
    free(md);
}

static void test_codes(void)
{
    char *md = read_doc("docs/API.md");
    json_t *doc = load_openapi();
    json_t *en = json_object_get(
        json_object_get(
            json_object_get(
                json_object_get(
                    json_object_get(
                        json_object_get(
                            json_object_get(json_object_get(doc, "components"), "schemas"),
                            "Error"),
                        "properties"),
                    "error"),
                "properties"),
            "code"),
        "enum");
    char row[128];

    RF_REQUIRE(json_is_array(en));
    RF_CHECK_INT(json_array_size(en), sizeof(codes) / sizeof(codes[0]));
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        int found = 0;
        size_t j;
        json_t *v;
        snprintf(row, sizeof(row), "| %u | `%s` |", codes[i].status, codes[i].code);
        if (!strstr(md, row))
            rf__test_fail(__FILE__, __LINE__, "docs/API.md has no error row \"%s\"", row);
        json_array_foreach(en, j, v) found |= !strcmp(json_string_value(v), codes[i].code);
        if (!found)
            rf__test_fail(__FILE__, __LINE__, "docs/openapi.json's Error.code lacks %s",
                          codes[i].code);
    }
    json_decref(doc);
    free(md);
}

static void test_metrics_and_options(void)
{
    char *md = read_doc("docs/API.md"), *dir = rf_test_tmpdir("servedocs");
    rf__serve_metrics_t m;
    rf__serve_metrics_src_t src;
    rf_index_opts_t io;
    rf_index_t *ix = NULL;
    rf_buf_t out;
    rf_err_t err;
    int n = 0;

    RF_REQUIRE(dir);
    memset(&io, 0, sizeof(io));
    io.dir = dir;
    io.dim = 4;
    RF_REQUIRE(rf_index_open(&io, &ix, &err) == RF_OK);
    rf__serve_metrics_init(&m);
    memset(&src, 0, sizeof(src));
    src.ix = ix;
    src.connections = 1;
    rf_buf_init(&out, 0);
    RF_REQUIRE(rf__serve_metrics_render(&m, &src, &out) == RF_OK);
    for (const char *p = out.ptr; (p = strstr(p, "# TYPE ")) != NULL; p++) {
        char name[128], want[160];
        size_t len = strcspn(p + 7, " ");
        snprintf(name, sizeof(name), "%.*s", (int)len, p + 7);
        snprintf(want, sizeof(want), "`%s", name);
        n++;
        if (!strstr(md, want))
            rf__test_fail(__FILE__, __LINE__, "docs/API.md does not document metric %s", name);
    }
    RF_CHECK(n >= 15);
    for (size_t i = 0; i < rf_conf_opts_cnt; i++) {
        char want[96];
        if (strncmp(rf_conf_opts[i].name, "serve.", 6) != 0)
            continue;
        snprintf(want, sizeof(want), "`%s`", rf_conf_opts[i].name);
        if (!strstr(md, want))
            rf__test_fail(__FILE__, __LINE__, "docs/API.md does not mention %s",
                          rf_conf_opts[i].name);
    }
    rf_buf_fini(&out);
    rf__serve_metrics_fini(&m);
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
    free(md);
}

RF_TEST_MAIN(test_routes, test_codes, test_metrics_and_options)
