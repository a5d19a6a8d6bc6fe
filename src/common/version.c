/*
 * ocisync_version_info(): the library's version, the git revision it was
 * built from and the versions of what it runs with. The revision comes from a
 * header the build writes (cmake/revision.cmake) only when it changes, so
 * only this file is compiled again when HEAD moves.
 */
#include "ocisync.h"
#include "ocisync_revision.h"

#include <jansson.h>
#include <llhttp.h>
#include <openssl/crypto.h>
#include <uv.h>
#include <yaml.h>
#include <zlib.h>
#include <zstd.h>

#define STR_(x) #x
#define STR(x) STR_(x)

static struct ocisync_version_info info;
static uv_once_t once = UV_ONCE_INIT;

static void fill(void)
{
    info.version = OCISYNC_VERSION_STRING;
    info.revision = OCISYNC_REVISION;
    info.libuv = uv_version_string();
    info.openssl = OpenSSL_version(OPENSSL_VERSION_STRING);
    info.zlib = zlibVersion();
    info.zstd = ZSTD_versionString();
    info.llhttp =
        STR(LLHTTP_VERSION_MAJOR) "." STR(LLHTTP_VERSION_MINOR) "." STR(LLHTTP_VERSION_PATCH);
    info.jansson = jansson_version_str();
    info.libyaml = yaml_get_version_string();
}

const struct ocisync_version_info *ocisync_version_info(void)
{
    uv_once(&once, fill);
    return &info;
}
