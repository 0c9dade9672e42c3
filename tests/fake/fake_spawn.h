/* fake_spawn.h - starts tests/fake/fake_provider as a child process and talks to its
 * control endpoints; shared by the embed tests and the embedding benchmark.
 * Header-only (static inline functions) so each program compiles in what it uses.
 */
#ifndef RF_FAKE_SPAWN_H
#define RF_FAKE_SPAWN_H

#include "core/core.h"

#include <curl/curl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct fake {
    pid_t pid;
    int in_fd; /* the child's stdin: closing it stops the child (--watch-stdin) */
    int port;
    char base[64]; /* http://127.0.0.1:PORT */
} fake_t;

/* Starts argv (argv[0] is looked up in PATH) and waits up to deadline_ms for its
 * `listening=HOST:PORT` line.  The child's stdin is a pipe that fake_stop closes.
 * Returns 0 on success. */
static inline int fake_spawn(fake_t *f, const char *const *argv, int64_t deadline_ms)
{
    int out[2], in[2];
    char line[128];
    size_t got = 0;
    int64_t end = rf_mono_ms() + deadline_ms;
    const char *colon;
    memset(f, 0, sizeof(*f));
    f->pid = -1;
    if (pipe(out))
        return -1;
    if (pipe(in)) {
        close(out[0]);
        close(out[1]);
        return -1;
    }
    f->pid = fork();
    if (f->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    f->in_fd = in[1];
    while (got < sizeof(line) - 1) {
        struct pollfd p = {out[0], POLLIN, 0};
        int64_t left = end - rf_mono_ms();
        ssize_t n;
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        n = read(out[0], line + got, 1);
        if (n <= 0)
            break;
        if (line[got] == '\n')
            break;
        got++;
    }
    line[got] = '\0';
    close(out[0]);
    colon = strrchr(line, ':');
    if (strncmp(line, "listening=", 10) || !colon)
        return -1;
    f->port = (int)strtol(colon + 1, NULL, 10);
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", f->port);
    return 0;
}

/* Starts the fake provider bin with extra args (NULL-terminated, may be NULL). */
static inline int fake_start(fake_t *f, const char *bin, const char *const *args,
                             int64_t deadline_ms)
{
    const char *argv[16];
    int argc = 0;
    argv[argc++] = bin;
    argv[argc++] = "--watch-stdin";
    for (int i = 0; args && args[i] && argc < 15; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    return fake_spawn(f, argv, deadline_ms);
}

static inline void fake_stop(fake_t *f)
{
    int status;
    if (f->pid <= 0)
        return;
    close(f->in_fd);
    kill(f->pid, SIGTERM);
    waitpid(f->pid, &status, 0);
    f->pid = -1;
}

static inline size_t fake__write(char *p, size_t s, size_t n, void *ud)
{
    rf_buf_append(ud, p, s * n);
    return s * n;
}

/* One request to the fake; returns the HTTP status (0 on failure); *resp caller frees. */
static inline long fake_http(const fake_t *f, const char *path, const char *body, char **resp)
{
    CURL *c = curl_easy_init();
    rf_buf_t b;
    char url[256];
    long st = 0;
    rf_buf_init(&b, 0);
    snprintf(url, sizeof(url), "%s%s", f->base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fake__write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    curl_easy_cleanup(c);
    if (resp)
        *resp = rf_buf_take(&b, NULL);
    rf_buf_fini(&b);
    return st;
}

/* POST /_control with a JSON object; returns 1 on success. */
static inline int fake_control(const fake_t *f, const char *json)
{
    return fake_http(f, "/_control", json, NULL) == 200;
}

/* One counter of GET /_stats, -1 on failure. */
static inline long fake_stat(const fake_t *f, const char *name)
{
    char *resp = NULL;
    long v = -1;
    if (fake_http(f, "/_stats", NULL, &resp) == 200) {
        json_t *j = json_loads(resp, 0, NULL);
        if (json_is_integer(json_object_get(j, name)))
            v = (long)json_integer_value(json_object_get(j, name));
        json_decref(j);
    }
    free(resp);
    return v;
}

#endif /* RF_FAKE_SPAWN_H */
