/*
 * xsetcap v2|v3 FILE [ROOTID]: sets FILE's security.capability to
 * cap_net_bind_service,cap_net_raw=ep in the v2 or the v3 format (a v3 holds
 * the root uid of the user namespace it is valid in, 0 unless given). A test
 * helper: busybox has no setcap, and the images that run it have no libc,
 * so test_dockerfile_run_buildah.sh builds it with cc -static.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

int main(int argc, char **argv)
{
    unsigned char v[24] = {0};
    unsigned long root = argc == 4 ? strtoul(argv[3], NULL, 10) : 0;
    int v3;

    if (argc < 3 || argc > 4 || (strcmp(argv[1], "v2") && strcmp(argv[1], "v3"))) {
        fprintf(stderr, "usage: xsetcap v2|v3 FILE [ROOTID]\n");
        return 2;
    }
    v3 = argv[1][1] == '3';
    /*
     * Little-endian words: magic_etc (revision << 24 | effective), permitted
     * and inheritable of caps 0-31, the same of caps 32-63, then (v3) the
     * root uid. Caps 10 and 13 are bits 2 and 5 of permitted's second byte.
     */
    v[0] = 1;
    v[3] = v3 ? 3 : 2;
    v[5] = (1 << (10 - 8)) | (1 << (13 - 8));
    v[20] = root & 0xff;
    v[21] = (root >> 8) & 0xff;
    v[22] = (root >> 16) & 0xff;
    v[23] = (root >> 24) & 0xff;
    if (setxattr(argv[2], "security.capability", v, v3 ? 24 : 20, 0) != 0) {
        perror(argv[2]);
        return 1;
    }
    return 0;
}
