/*
 * One command run isolated, for a Dockerfile's RUN: Linux namespaces, an
 * overlay root and pivot_root, with no daemon and no container runtime.
 *
 * The command runs in new mount, PID, UTS and IPC namespaces (and a network
 * namespace with only lo, up, for network_none; else the host's network, as
 * docker's default), as PID 1 of its PID namespace: when it exits, or is
 * killed on a timeout, the kernel kills everything it left behind. Every
 * mount is made in the command's own mount namespace, so none outlives it and
 * the host never sees one.
 *
 * Inside: a fresh /proc, /sys read-only (a fresh sysfs, else the host's bound
 * read-only, else none), a tmpfs /dev with null, zero, full, random, urandom
 * and tty bound from the host's /dev, /dev/pts (a new devpts instance, ptmx a
 * link to pts/ptmx), a tmpfs /dev/shm, and the links fd, stdin, stdout and
 * stderr; /etc/resolv.conf and /etc/hosts bound read-only from host files.
 * The command has docker's default capabilities (bounding set and, for uid
 * 0, effective and permitted; none for another uid), no ambient or
 * inheritable ones, and no_new_privs; stdin is /dev/null.
 *
 * Without rootless the caller must be root and no user namespace is made:
 * the command's root is the host's root with fewer capabilities, as under
 * docker, and overlayfs keeps its whiteouts and opaque marks in trusted.*
 * xattrs. With rootless, everything runs in a user namespace that maps 0 to
 * the caller and 1..N to the caller's range in /etc/subuid and /etc/subgid
 * (set by newuidmap and newgidmap), and the overlay is mounted with
 * userxattr: opaque directories are marked with user.overlay.opaque.
 *
 * With qemu, binfmt_misc is mounted in a user namespace of the build's own
 * (kernel >= 6.7) and the emulator registered there with the F flag, so the
 * host's binfmt_misc settings never change; as root, that user namespace is
 * entered after the root is set up and maps every id to itself, so inside
 * it mknod of devices fails, as it does rootless.
 */
#ifndef ENGINE_SANDBOX_H
#define ENGINE_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* At most this many lower directories, mounts and supplementary groups. */
#define ENGINE_SANDBOX_MAX_LOWER 128
#define ENGINE_SANDBOX_MAX_MOUNTS 64
#define ENGINE_SANDBOX_MAX_GROUPS 64
/* A path inside the root (cwd, a mount's target), NUL included. */
#define ENGINE_SANDBOX_PATH_MAX 1024

enum engine_sandbox_mount_kind {
    ENGINE_SANDBOX_SECRET,  /* a file, read-only, nosuid, nodev, noexec */
    ENGINE_SANDBOX_BIND_RO, /* a file or directory, read-only */
    ENGINE_SANDBOX_BIND_RW, /* a file or directory, writable (a cache mount) */
    ENGINE_SANDBOX_TMPFS,   /* an empty tmpfs (host unused), 1777, nosuid, nodev */
};

struct engine_sandbox_mount {
    enum engine_sandbox_mount_kind kind;
    const char *host;   /* the source on the host */
    const char *target; /* absolute, inside the root; created when missing */
};

struct engine_sandbox_spec {
    /*
     * The root: an overlay of lower (top first, as overlayfs's lowerdir=
     * lists them) with upper and work, directories the caller made on one
     * file system; or, when n_lower is 0, rootfs, one writable tree used as
     * it is (where overlayfs cannot be had).
     */
    const char *const *lower;
    size_t n_lower;
    const char *upper, *work;
    const char *rootfs;

    const char *const *argv; /* argv[0] without a '/' is looked up in envp's PATH in the root */
    const char *const *envp; /* NULL: an empty environment */
    const char *cwd;         /* NULL: "/"; made (owned by uid:gid) when missing, as BuildKit does */
    uint32_t uid, gid;
    const uint32_t *groups; /* supplementary groups */
    size_t n_groups;

    bool network_none;       /* a network namespace with only lo; else the host's network */
    const char *hostname;    /* NULL: "buildkitsandbox", BuildKit's */
    const char *resolv_conf; /* host file bound over /etc/resolv.conf, or NULL */
    const char *hosts;       /* host file bound over /etc/hosts, or NULL */
    const struct engine_sandbox_mount *mounts;
    size_t n_mounts;

    bool rootless;
    /*
     * A qemu-user-static binary for qemu_arch (an OCI architecture: arm64,
     * arm, riscv64, ppc64le, s390x, amd64; not the host's own), or NULL.
     */
    const char *qemu;
    const char *qemu_arch;

    /*
     * The command's stdout and stderr; -1: /dev/null. A pipe must be drained
     * by another thread while this runs, or a chatty command blocks on it.
     */
    int out_fd;
    uint64_t timeout_ms; /* 0: none; on expiry the whole PID namespace is killed */
};

struct engine_sandbox_result {
    int status;     /* the command's exit code, or 128 + the signal that ended it */
    bool timed_out; /* killed on the timeout (status is then 128 + SIGKILL) */
    /*
     * The paths (inside the root, parents first) the sandbox made as mount
     * points because the root lacked them: /proc, /dev, /etc/hosts, a
     * secret's target and its parents... They are in the upper directory (or
     * in rootfs), and the caller leaves them out of the layer it captures.
     * Owned: engine_sandbox_result_free.
     */
    char **created;
    size_t n_created;
};

/*
 * Runs s->argv in the sandbox and waits for it: blocking, on the caller's
 * thread (not an event loop's). Returns 0 with res filled when the command
 * ran, whatever its exit status; OCISYNC_ETIMEOUT (res filled, timed_out
 * set) when it was killed on the timeout; otherwise an error with a sentence
 * in err naming what failed ("sandbox: mount overlay (upper /x/upper, 2
 * lower dirs): Invalid argument", "sandbox: exec \"make\": not found in
 * PATH"): UV_E* from the system call that failed, or OCISYNC_EUSAGE for a
 * spec it refuses. Whatever happens, no mount is left on the host and no
 * process of the command survives.
 */
int engine_sandbox_run(const struct engine_sandbox_spec *s, struct engine_sandbox_result *res,
                       char *err, size_t errlen);

void engine_sandbox_result_free(struct engine_sandbox_result *res);

/*
 * For a caller that is not root: moves the calling process into a new user
 * namespace where it is root, mapping 0 to its own ids and 1..N to its
 * ranges in /etc/subuid and /etc/subgid (newuidmap and newgidmap, from a
 * helper outside), as `podman unshare` does. Then RUN works as it does for
 * root, the overlays with userxattr. The process must have one thread
 * (OCISYNC_EUSAGE otherwise). 0 when done or not needed (root, or in a user
 * namespace already); otherwise an error naming what is missing. After
 * some failures the process is in a user namespace without maps: it should
 * only report the error and exit.
 */
int engine_sandbox_enter_userns(char *err, size_t errlen);

/* Whether the caller is in a user namespace other than the initial one. */
bool engine_sandbox_in_userns(void);
/* Why engine_sandbox_enter_userns last failed, or "". */
const char *engine_sandbox_userns_error(void);

#endif
