/* core_err.c - status code names, messages and the retriable flag, all from the
 * one RF_ERR_MAP table, and the rf_err_t helpers that carry details beside a code. */
#include "core.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

static const struct {
    const char *name;
    int retriable;
    const char *msg;
} err_descs[] = {
#define RF__ERR_DESC(name, retriable, msg) {#name, retriable, msg},
    RF_ERR_MAP(RF__ERR_DESC)
#undef RF__ERR_DESC
};

const char *rf_rc_name(rf_rc rc)
{
    if ((unsigned)rc >= RF__ERR_COUNT)
        return "EUNKNOWN";
    return err_descs[rc].name;
}

const char *rf_rc_msg(rf_rc rc)
{
    if ((unsigned)rc >= RF__ERR_COUNT)
        return "unknown error";
    return err_descs[rc].msg;
}

int rf_rc_retriable(rf_rc rc)
{
    if ((unsigned)rc >= RF__ERR_COUNT)
        return 0;
    return err_descs[rc].retriable;
}

rf_rc rf_err_set(rf_err_t *err, rf_rc code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        err->sys_errno = 0;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

rf_rc rf_err_sys(rf_err_t *err, rf_rc code, const char *fmt, ...)
{
    int saved = errno;
    if (err) {
        va_list ap;
        size_t n;
        err->code = code;
        err->sys_errno = saved;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        n = strlen(err->msg);
        if (n < sizeof(err->msg))
            snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(saved));
    }
    errno = saved;
    return code;
}

void rf_err_clear(rf_err_t *err)
{
    if (err) {
        err->code = RF_OK;
        err->sys_errno = 0;
        err->msg[0] = '\0';
    }
}
