#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_setf(char *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return code;
}

void err_prefix(char *err, const char *fmt, ...)
{
    if (!err)
        return;
    char head[ERR_LEN], old[ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    snprintf(old, sizeof old, "%s", err);
    snprintf(err, ERR_LEN, "%s: %s", head, old);
}

int err_exit_code(int code)
{
    if (code == 0)
        return 0;
    if (code == JB_ERR_USAGE || code == JB_ERR_FORMAT)
        return 2;
    return 1;
}

const char *jb_strerror(int status)
{
    switch (status) {
    case JB_OK:
        return "ok";
    case JB_ERR_USAGE:
        return "bad usage or input";
    case JB_ERR_IO:
        return "input/output error";
    case JB_ERR_NOMEM:
        return "out of memory or over a size limit";
    case JB_ERR_PERM:
        return "permission denied";
    case JB_ERR_NOTFOUND:
        return "not found";
    case JB_ERR_STATE:
        return "call out of order";
    case JB_ERR_NET:
        return "network or server error";
    case JB_ERR_INTERRUPTED:
        return "interrupted";
    case JB_ERR_FORMAT:
        return "malformed data";
    case JB_ERR_TIMEOUT:
        return "timed out";
    case JB_ERR_UNSUPPORTED:
        return "not supported here";
    }
    return "unknown error";
}
