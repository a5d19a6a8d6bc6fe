#include "ocisync.h"

#include <uv.h>

const char *ocisync_strerror(int err)
{
    switch (err) {
#define XX(name, value, msg)                                                                       \
    case OCISYNC_##name:                                                                           \
        return msg;
        OCISYNC_ERRNO_MAP(XX)
#undef XX
    default:
        return uv_strerror(err);
    }
}

const char *ocisync_err_name(int err)
{
    switch (err) {
#define XX(name, value, msg)                                                                       \
    case OCISYNC_##name:                                                                           \
        return "OCISYNC_" #name;
        OCISYNC_ERRNO_MAP(XX)
#undef XX
    default:
        return uv_err_name(err);
    }
}
