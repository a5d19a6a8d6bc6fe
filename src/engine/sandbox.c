/*
 * The RUN sandbox (engine_sandbox_run): one child made with clone(2) in new
 * namespaces, which sets up its root and becomes the command with execve.
 *
 * The parent (the caller's thread) prepares everything that needs memory
 * before the clone: the binfmt_misc line, the id ranges. The
 * child is made with the raw clone system call from a process that may have
 * other threads, so it calls nothing that takes a lock or allocates: system
 * calls, and string copies into its own buffers. Even setresuid and
 * setgroups go through syscall(2), because glibc's wrappers would signal the
 * parent's threads, which do not exist in the child.
 *
 * Parent and child talk over a SOCK_SEQPACKET socket pair, one message a
 * packet: the child asks for its id maps (MSG_MAP; the parent writes them
 * and answers with one byte), reports each mount point it had to create
 * (MSG_CREATED) and, when a step fails, what failed and errno (MSG_ERROR),
 * then exits. Its end is close-on-exec, so a successful execve shows up as
 * end-of-file; the parent then waits for the command on a pidfd, with the
 * timeout.
 *
 * The child's steps, in order (child_main):
 *   1. rootless: wait for the maps (the clone made the user namespace);
 *   2. make every mount private; hostname; lo up for network_none;
 *   3. open what it needs from the host as detached mounts (open_tree):
 *      the user's mounts, the device nodes, resolv.conf, hosts, /sys;
 *   4. mount the root (overlay, or a bind of rootfs) on /tmp, which only
 *      this mount namespace sees, and pivot_root(".", ".") into it;
 *   5. /proc and /sys while the old root is still there (a user namespace
 *      may mount proc only where a full proc is visible), then detach the
 *      old root;
 *   6. /dev, docker's read-only and masked /proc paths, /etc/resolv.conf,
 *      /etc/hosts and the user's mounts, moved to their targets; every
 *      path is resolved inside the new root, so an image's symlink cannot
 *      point a mount or a created file at the host;
 *   7. qemu: binfmt_misc in a user namespace of the build's own;
 *   8. the working directory, stdio, capabilities, user, no_new_privs,
 *      execve.
 */
#define _GNU_SOURCE
#include "engine/sandbox.h"

#include "common/sysio.h"
#include "ocisync.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <net/if.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

extern char **environ;

/* The new mount API (Linux >= 5.12), for C libraries whose headers lack it. */
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_T_SYMLINKS
#define MOVE_MOUNT_T_SYMLINKS 0x00000010
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
#define MOUNT_ATTR_NOEXEC 0x00000008
struct mount_attr {
    uint64_t attr_set, attr_clr, propagation, userns_fd;
};
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Where the root is mounted before pivot_root: only the child's mount namespace sees it. */
#define STAGE "/tmp"
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define DEFAULT_HOSTNAME "buildkitsandbox"
/* Room for the overlay's options: mount(2) takes one page. */
#define OPTS_MAX 4096
/* At most this many created mount points are reported (a few per mount, and the fixed ones). */
#define MAX_CREATED (3 * ENGINE_SANDBOX_MAX_MOUNTS + 32)

/* Docker's default capabilities (moby's oci/caps/defaults.go). */
#define DOCKER_CAPS                                                                                \
    ((1ULL << CAP_CHOWN) | (1ULL << CAP_DAC_OVERRIDE) | (1ULL << CAP_FSETID) |                     \
     (1ULL << CAP_FOWNER) | (1ULL << CAP_MKNOD) | (1ULL << CAP_NET_RAW) | (1ULL << CAP_SETGID) |   \
     (1ULL << CAP_SETUID) | (1ULL << CAP_SETFCAP) | (1ULL << CAP_SETPCAP) |                        \
     (1ULL << CAP_NET_BIND_SERVICE) | (1ULL << CAP_SYS_CHROOT) | (1ULL << CAP_KILL) |              \
     (1ULL << CAP_AUDIT_WRITE))

/* The device nodes bound from the host's /dev. */
static const char *const devices[] = {"null", "zero", "full", "random", "urandom", "tty"};
#define N_DEVICES (sizeof(devices) / sizeof(devices[0]))

/* Docker's read-only and masked paths (moby's oci/defaults.go), those that matter here. */
static const char *const ro_paths[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                       "/proc/sysrq-trigger"};
static const char *const masked_files[] = {"/proc/kcore", "/proc/keys", "/proc/timer_list",
                                           "/proc/sched_debug", "/proc/latency_stats"};
static const char *const masked_dirs[] = {"/proc/acpi", "/proc/scsi", "/sys/firmware"};

/*
 * ELF magic and mask of each architecture's executables, as Debian's
 * qemu-user-static registers them (/usr/lib/binfmt.d/qemu-*.conf), written
 * in binfmt_misc's \x escapes.
 */
struct binfmt_arch {
    const char *oci;  /* OCI architecture */
    const char *name; /* qemu's */
    const char *magic, *mask;
};

#define ELF64LE "\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00"
#define MASK_EXEC_DYN                                                                              \
    "\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\" \
    "xff\\xff"

static const struct binfmt_arch binfmt_arches[] = {
    {"arm64", "aarch64", ELF64LE "\\x02\\x00\\xb7\\x00", MASK_EXEC_DYN},
    {"amd64", "x86_64", ELF64LE "\\x02\\x00\\x3e\\x00", MASK_EXEC_DYN},
    {"riscv64", "riscv64", ELF64LE "\\x02\\x00\\xf3\\x00", MASK_EXEC_DYN},
    {"arm", "arm",
     "\\x7f\\x45\\x4c\\x46\\x01\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00"
     "\\x28\\x00",
     MASK_EXEC_DYN},
    {"ppc64le", "ppc64le", ELF64LE "\\x02\\x00\\x15\\x00",
     "\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfc\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff"
     "\\xff\\x00"},
    {"s390x", "s390x",
     "\\x7f\\x45\\x4c\\x46\\x02\\x02\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02"
     "\\x00\\x16",
     "\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfc\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe"
     "\\xff\\xff"},
};

#if defined(__x86_64__)
#define HOST_ARCH "amd64"
#elif defined(__aarch64__)
#define HOST_ARCH "arm64"
#elif defined(__riscv) && __riscv_xlen == 64
#define HOST_ARCH "riscv64"
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_ARCH "ppc64le"
#elif defined(__s390x__)
#define HOST_ARCH "s390x"
#elif defined(__arm__)
#define HOST_ARCH "arm"
#else
#define HOST_ARCH "unknown"
#endif

enum msg_kind { MSG_ERROR = 1, MSG_MAP, MSG_CREATED };

/* One packet from the child. */
struct msg {
    int kind;
    int err; /* MSG_ERROR: errno, or 0 when text says it all */
    char text[ENGINE_SANDBOX_PATH_MAX + 256];
};

/* What the parent prepared for the child; the child has its own copy (fork semantics). */
struct child {
    const struct engine_sandbox_spec *s;
    int sock;                 /* the child's end of the socket pair */
    bool userns;              /* in a user namespace from the clone (rootless) */
    bool nested;              /* the caller is in one already (engine_sandbox_enter_userns) */
    char root_opts[OPTS_MAX]; /* overlay options, or the rootfs source: made by the child */
    char binfmt[512];         /* the register line, or "" */
    char qemu_arch[16];
    /* Detached mounts the child opens on the host before pivot_root; -1 when absent. */
    int mount_fd[ENGINE_SANDBOX_MAX_MOUNTS];
    int dev_fd[N_DEVICES];
    int resolv_fd, hosts_fd, sys_fd;
};

/* ------------------------------------------------------------------------------------------ */
/* The child: system calls and string copies only */

/* Appends src to dst (cap bytes, NUL included), cutting what does not fit. */
static void cat(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(dst);
    while (*src != '\0' && n + 1 < cap)
        dst[n++] = *src++;
    dst[n] = '\0';
}

static void say(struct child *c, int kind, int err, const char *a, const char *b, const char *d)
{
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.kind = kind;
    m.err = err;
    cat(m.text, sizeof(m.text), a);
    cat(m.text, sizeof(m.text), b != NULL ? b : "");
    cat(m.text, sizeof(m.text), d != NULL ? d : "");
    while (send(c->sock, &m, sizeof(m), MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
}

/* Reports "a b d: strerror(errno)" to the parent and exits. */
__attribute__((noreturn)) static void die(struct child *c, const char *a, const char *b,
                                          const char *d)
{
    say(c, MSG_ERROR, errno != 0 ? errno : EIO, a, b, d);
    _exit(127);
}

/* Asks the parent for the id maps of the user namespace just made, and waits for them. */
static void wait_maps(struct child *c)
{
    char b;
    ssize_t n;
    say(c, MSG_MAP, 0, "", NULL, NULL);
    do
        n = recv(c->sock, &b, 1, 0);
    while (n < 0 && errno == EINTR);
    if (n != 1) {
        errno = n == 0 ? EPIPE : errno;
        die(c, "wait for the user namespace's id maps", NULL, NULL);
    }
}

/*
 * Makes the directories of path that are missing (the last one too when
 * dir), reporting each as created when report; chowns them to uid:gid when
 * chown_them. Runs inside the new root. 0, or -1 with errno.
 */
static int mkdirs(struct child *c, const char *path, bool dir, bool report, bool chown_them,
                  uint32_t uid, uint32_t gid)
{
    char p[ENGINE_SANDBOX_PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof(p)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        if (p[i] == '\0' && !dir)
            break;
        char save = p[i];
        p[i] = '\0';
        if (mkdir(p, 0755) == 0) {
            if (chown_them && chown(p, uid, gid) != 0)
                return -1;
            if (report)
                say(c, MSG_CREATED, 0, p, NULL, NULL);
        } else if (errno != EEXIST) {
            return -1;
        }
        p[i] = save;
    }
    return 0;
}

/*
 * Makes the mount point path (a directory, or an empty file) when missing,
 * reported as created when it is in the root (report), not on a tmpfs.
 */
static void mount_point(struct child *c, const char *path, bool dir, bool report)
{
    struct stat st;
    if (lstat(path, &st) == 0)
        return;
    if (errno != ENOENT || mkdirs(c, path, dir, report, false, 0, 0) != 0)
        die(c, "create mount point ", path, NULL);
    if (!dir) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
            die(c, "create mount point ", path, NULL);
        close(fd);
        if (report)
            say(c, MSG_CREATED, 0, path, NULL, NULL);
    }
}

/* A detached copy of the host's path (recursive), with attrs set on it; -1 with errno. */
static int clone_tree(const char *path, uint64_t attrs)
{
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, path,
                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (fd < 0 || attrs == 0)
        return fd;
    struct mount_attr a = {.attr_set = attrs};
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof(a)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Moves the detached mount fd onto target (inside the new root), made when missing. */
static void place(struct child *c, int fd, const char *target, const char *what, bool report)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        die(c, "stat ", what, NULL);
    mount_point(c, target, S_ISDIR(st.st_mode), report);
    if (syscall(SYS_move_mount, fd, "", AT_FDCWD, target,
                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS) != 0)
        die(c, "mount ", what, NULL);
    close(fd);
}

static void lo_up(struct child *c)
{
    struct ifreq ifr;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die(c, "socket for lo", NULL, NULL);
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, "lo", 3);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0)
        die(c, "get the flags of lo", NULL, NULL);
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)
        die(c, "bring lo up", NULL, NULL);
    close(fd);
}

/* Step 3: every host source, cloned before the host's tree goes away. */
static void open_sources(struct child *c)
{
    const struct engine_sandbox_spec *s = c->s;
    for (size_t i = 0; i < s->n_mounts; i++) {
        const struct engine_sandbox_mount *m = &s->mounts[i];
        if (m->kind == ENGINE_SANDBOX_TMPFS) {
            c->mount_fd[i] = -1; /* made in place, after pivot_root */
            continue;
        }
        uint64_t attrs = m->kind == ENGINE_SANDBOX_SECRET ? MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                                                MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC
                         : m->kind == ENGINE_SANDBOX_BIND_RO ? MOUNT_ATTR_RDONLY
                                                             : 0;
        c->mount_fd[i] = clone_tree(m->host, attrs);
        if (c->mount_fd[i] < 0)
            die(c, "bind ", m->host, NULL);
    }
    for (size_t i = 0; i < N_DEVICES; i++) {
        char p[32] = "/dev/";
        cat(p, sizeof(p), devices[i]);
        c->dev_fd[i] = clone_tree(p, 0);
        if (c->dev_fd[i] < 0)
            die(c, "bind the host's ", p, NULL);
    }
    if (s->resolv_conf != NULL &&
        (c->resolv_fd = clone_tree(s->resolv_conf, MOUNT_ATTR_RDONLY)) < 0)
        die(c, "bind ", s->resolv_conf, NULL);
    if (s->hosts != NULL && (c->hosts_fd = clone_tree(s->hosts, MOUNT_ATTR_RDONLY)) < 0)
        die(c, "bind ", s->hosts, NULL);
    /* Only needed where a fresh sysfs cannot be mounted; /sys is optional. */
    c->sys_fd = clone_tree("/sys", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                       MOUNT_ATTR_NOEXEC);
}

/* v in decimal, in buf; returns where the digits start. */
static const char *utoa(unsigned long v, char buf[24])
{
    char *p = buf + 23;
    *p = '\0';
    do
        *--p = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    return p;
}

/*
 * Appends sep and "/proc/self/fd/N" for the directory path to root_opts.
 * The descriptor is opened here, in the child's mount namespace: overlayfs
 * and bind mounts refuse paths whose mounts belong to another namespace.
 */
static void add_dir(struct child *c, const char *sep, const char *path, const char *what)
{
    char num[24];
    int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        die(c, what, path, NULL);
    cat(c->root_opts, sizeof(c->root_opts), sep);
    cat(c->root_opts, sizeof(c->root_opts), "/proc/self/fd/");
    cat(c->root_opts, sizeof(c->root_opts), utoa((unsigned long)fd, num));
}

/* Step 4: the root on STAGE, pivot_root into it. Returns the old root's descriptor. */
static int enter_root(struct child *c)
{
    const struct engine_sandbox_spec *s = c->s;
    char num[24], what[64] = ", ";
    c->root_opts[0] = '\0';
    if (s->n_lower > 0) {
        /* At most ENGINE_SANDBOX_MAX_LOWER entries of 20 bytes: OPTS_MAX holds them all. */
        for (size_t i = 0; i < s->n_lower; i++)
            add_dir(c, i == 0 ? "lowerdir=" : ":", s->lower[i], "lower dir ");
        add_dir(c, ",upperdir=", s->upper, "upper dir ");
        add_dir(c, ",workdir=", s->work, "work dir ");
        if (c->userns || c->nested)
            cat(c->root_opts, sizeof(c->root_opts), ",userxattr");
        cat(what, sizeof(what), utoa(s->n_lower, num));
        cat(what, sizeof(what), s->n_lower == 1 ? " lower dir)" : " lower dirs)");
        if (mount("overlay", STAGE, "overlay", 0, c->root_opts) != 0)
            die(c, "mount overlay (upper ", s->upper, what);
    } else {
        add_dir(c, "", s->rootfs, "rootfs ");
        if (mount(c->root_opts, STAGE, NULL, MS_BIND, NULL) != 0)
            die(c, "bind the root ", s->rootfs, NULL);
    }
    int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    int newroot = open(STAGE, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (oldroot < 0 || newroot < 0 || fchdir(newroot) != 0)
        die(c, "open the new root", NULL, NULL);
    /* The old root ends up stacked on the new one, until detached (step 5). */
    if (syscall(SYS_pivot_root, ".", ".") != 0)
        die(c, "pivot_root", NULL, NULL);
    close(newroot);
    return oldroot;
}

/* Step 5. */
static void proc_sys(struct child *c, int oldroot)
{
    mount_point(c, "/proc", true, true);
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
        die(c, "mount /proc", NULL, NULL);
    mount_point(c, "/sys", true, true);
    if (mount("sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0) {
        if (c->sys_fd >= 0)
            close(c->sys_fd);
    } else if (c->sys_fd >= 0) {
        place(c, c->sys_fd, "/sys", "the host's /sys", true);
    }
    c->sys_fd = -1;
    /* Detach the old root, as runc does: from inside it, lazily. */
    if (fchdir(oldroot) != 0 || umount2(".", MNT_DETACH) != 0 || chdir("/") != 0)
        die(c, "detach the old root", NULL, NULL);
    close(oldroot);
}

/* Step 6: /dev. */
static void dev(struct child *c)
{
    mount_point(c, "/dev", true, true);
    if (mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k") != 0)
        die(c, "mount a tmpfs on /dev", NULL, NULL);
    for (size_t i = 0; i < N_DEVICES; i++) {
        char p[32] = "/dev/";
        cat(p, sizeof(p), devices[i]);
        place(c, c->dev_fd[i], p, p, false);
        c->dev_fd[i] = -1;
    }
    if (mkdir("/dev/pts", 0755) != 0 || mkdir("/dev/shm", 01777) != 0)
        die(c, "populate /dev", NULL, NULL);
    unsigned long fl = MS_NOSUID | MS_NOEXEC;
    if (mount("devpts", "/dev/pts", "devpts", fl, "newinstance,ptmxmode=0666,mode=0620,gid=5") !=
            0 &&
        mount("devpts", "/dev/pts", "devpts", fl, "newinstance,ptmxmode=0666,mode=0620") != 0)
        die(c, "mount devpts on /dev/pts", NULL, NULL);
    if (mount("shm", "/dev/shm", "tmpfs", fl | MS_NODEV, "mode=1777,size=65536k") != 0)
        die(c, "mount a tmpfs on /dev/shm", NULL, NULL);
    if (symlink("pts/ptmx", "/dev/ptmx") != 0 || symlink("/proc/self/fd", "/dev/fd") != 0 ||
        symlink("/proc/self/fd/0", "/dev/stdin") != 0 ||
        symlink("/proc/self/fd/1", "/dev/stdout") != 0 ||
        symlink("/proc/self/fd/2", "/dev/stderr") != 0)
        die(c, "populate /dev", NULL, NULL);
}

/* Step 6: docker's read-only and masked paths, where the kernel has them. */
static void restrict_proc(struct child *c)
{
    for (size_t i = 0; i < sizeof(ro_paths) / sizeof(ro_paths[0]); i++) {
        int fd = clone_tree(ro_paths[i], MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                             MOUNT_ATTR_NOEXEC);
        if (fd < 0 && errno == ENOENT)
            continue;
        if (fd < 0 ||
            syscall(SYS_move_mount, fd, "", AT_FDCWD, ro_paths[i], MOVE_MOUNT_F_EMPTY_PATH) != 0)
            die(c, "make ", ro_paths[i], " read-only");
        close(fd);
    }
    for (size_t i = 0; i < sizeof(masked_files) / sizeof(masked_files[0]); i++) {
        if (access(masked_files[i], F_OK) != 0)
            continue;
        int fd = clone_tree("/dev/null", 0);
        if (fd < 0 || syscall(SYS_move_mount, fd, "", AT_FDCWD, masked_files[i],
                              MOVE_MOUNT_F_EMPTY_PATH) != 0)
            die(c, "mask ", masked_files[i], NULL);
        close(fd);
    }
    for (size_t i = 0; i < sizeof(masked_dirs) / sizeof(masked_dirs[0]); i++) {
        if (access(masked_dirs[i], F_OK) != 0)
            continue;
        if (mount("tmpfs", masked_dirs[i], "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  NULL) != 0)
            die(c, "mask ", masked_dirs[i], NULL);
    }
}

/* Step 7: binfmt_misc of a user namespace of our own, the emulator registered with F. */
static void qemu(struct child *c)
{
    if (!c->userns) {
        if (unshare(CLONE_NEWUSER) != 0)
            die(c, "make a user namespace for qemu", NULL, NULL);
        wait_maps(c);
        if (unshare(CLONE_NEWNS) != 0)
            die(c, "make a mount namespace for qemu", NULL, NULL);
    }
    const char *dir = "/proc/sys/fs/binfmt_misc";
    if (mount("binfmt_misc", dir, "binfmt_misc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
        die(c, "mount binfmt_misc in the build's user namespace (needs Linux >= 6.7)", NULL, NULL);
    int fd = open("/proc/sys/fs/binfmt_misc/register", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        die(c, "open binfmt_misc's register", NULL, NULL);
    size_t n = strlen(c->binfmt);
    if (write(fd, c->binfmt, n) != (ssize_t)n)
        die(c, "register qemu for ", c->qemu_arch, " in binfmt_misc");
    close(fd);
    /* The command, root or not, cannot register anything else (nor remount: no CAP_SYS_ADMIN). */
    if (mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
              NULL) != 0)
        die(c, "make binfmt_misc read-only", NULL, NULL);
}

static int set_caps(uint64_t caps)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    d[0].effective = d[0].permitted = (uint32_t)caps;
    d[1].effective = d[1].permitted = (uint32_t)(caps >> 32);
    return (int)syscall(SYS_capset, &h, d);
}

/* Step 8: capabilities and user. */
static void drop_privileges(struct child *c)
{
    const struct engine_sandbox_spec *s = c->s;
    for (int cap = 0; cap < 64; cap++) {
        if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0)
            break; /* past the kernel's last capability */
        if (!(DOCKER_CAPS & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0)
            die(c, "drop capabilities from the bounding set", NULL, NULL);
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        die(c, "clear ambient capabilities", NULL, NULL);
    gid_t groups[ENGINE_SANDBOX_MAX_GROUPS];
    for (size_t i = 0; i < s->n_groups; i++)
        groups[i] = s->groups[i];
    if (syscall(SYS_setgroups, s->n_groups, groups) != 0)
        die(c, "setgroups", NULL, NULL);
    if (syscall(SYS_setresgid, s->gid, s->gid, s->gid) != 0)
        die(c, "setgid", NULL, NULL);
    if (syscall(SYS_setresuid, s->uid, s->uid, s->uid) != 0)
        die(c, "setuid", NULL, NULL);
    /* setresuid away from 0 cleared them; uid 0 keeps docker's set, none inheritable. */
    if (set_caps(s->uid == 0 ? DOCKER_CAPS : 0) != 0)
        die(c, "set capabilities", NULL, NULL);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        die(c, "set no_new_privs", NULL, NULL);
}

/* The value of NAME in envp, or NULL. */
static const char *env_get(const char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
            return envp[i] + n + 1;
    return NULL;
}

/* Step 8: execve, argv[0] looked up in PATH as execvp does. Returns only on failure. */
static void exec_command(struct child *c)
{
    const struct engine_sandbox_spec *s = c->s;
    static const char *const no_env[] = {NULL};
    char *const *argv = (char *const *)s->argv;
    char *const *envp = (char *const *)(s->envp != NULL ? s->envp : no_env);
    const char *name = s->argv[0];
    if (strchr(name, '/') != NULL) {
        execve(name, argv, envp);
        die(c, "exec \"", name, "\"");
    }
    const char *path = env_get(s->envp, "PATH");
    if (path == NULL)
        path = DEFAULT_PATH;
    bool denied = false;
    for (const char *p = path;;) {
        const char *end = strchrnul(p, ':');
        /* An empty entry is the working directory. */
        const char *dir = end == p ? "." : p;
        size_t dl = end == p ? 1 : (size_t)(end - p);
        char full[ENGINE_SANDBOX_PATH_MAX + 256];
        if (dl + 1 + strlen(name) < sizeof(full)) {
            memcpy(full, dir, dl);
            full[dl] = '/';
            memcpy(full + dl + 1, name, strlen(name) + 1);
            execve(full, argv, envp);
            if (errno == EACCES)
                denied = true;
            else if (errno != ENOENT && errno != ENOTDIR)
                die(c, "exec \"", full, "\"");
        }
        if (*end == '\0')
            break;
        p = end + 1;
    }
    if (denied) {
        errno = EACCES;
        die(c, "exec \"", name, "\"");
    }
    say(c, MSG_ERROR, 0, "exec \"", name, "\": not found in PATH");
    _exit(127);
}

__attribute__((noreturn)) static void child_main(struct child *c)
{
    const struct engine_sandbox_spec *s = c->s;

    /* The parent is blocked in engine_sandbox_run until this exits: if it dies, so do we. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (c->userns)
        wait_maps(c);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        die(c, "make mounts private", NULL, NULL);
    const char *hn = s->hostname != NULL ? s->hostname : DEFAULT_HOSTNAME;
    if (sethostname(hn, strlen(hn)) != 0)
        die(c, "set the hostname ", hn, NULL);
    if (s->network_none)
        lo_up(c);

    open_sources(c);
    int oldroot = enter_root(c);
    proc_sys(c, oldroot);
    dev(c);
    restrict_proc(c);
    if (s->resolv_conf != NULL)
        place(c, c->resolv_fd, "/etc/resolv.conf", s->resolv_conf, true);
    if (s->hosts != NULL)
        place(c, c->hosts_fd, "/etc/hosts", s->hosts, true);
    for (size_t i = 0; i < s->n_mounts; i++) {
        if (s->mounts[i].kind != ENGINE_SANDBOX_TMPFS) {
            place(c, c->mount_fd[i], s->mounts[i].target, s->mounts[i].host, true);
            continue;
        }
        mount_point(c, s->mounts[i].target, true, true);
        if (mount("tmpfs", s->mounts[i].target, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0)
            die(c, "mount a tmpfs on ", s->mounts[i].target, NULL);
    }
    if (c->binfmt[0] != '\0')
        qemu(c);

    const char *cwd = s->cwd != NULL ? s->cwd : "/";
    if (mkdirs(c, cwd, true, false, true, s->uid, s->gid) != 0)
        die(c, "create the working directory ", cwd, NULL);
    int out = s->out_fd >= 0 ? s->out_fd : open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (out < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
        die(c, "redirect the output", NULL, NULL);
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in < 0 || dup2(in, 0) < 0)
        die(c, "open /dev/null", NULL, NULL);
    drop_privileges(c);
    if (chdir(cwd) != 0)
        die(c, "chdir to ", cwd, NULL);
    /* Nothing of the caller's reaches the command: only this socket stays, until execve. */
    syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    exec_command(c);
    _exit(127);
}

/* ------------------------------------------------------------------------------------------ */
/* The parent */

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, int code,
                                                      const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(err, errlen, "sandbox: ");
    if (n >= 0 && (size_t)n < errlen) {
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The first range of user name or uid in /etc/subuid or /etc/subgid ("name:start:count"). */
static int subid_range(const char *file, const char *name, uint32_t id, unsigned long *start,
                       unsigned long *count, char *err, size_t errlen)
{
    char *data = NULL, idstr[16];
    size_t len;
    int rc = ocisync__read_small(file, 1 << 20, false, &data, &len);
    if (rc != 0)
        return fail(err, errlen, rc, "rootless needs %s (a range for user %s): %s", file, name,
                    ocisync_strerror(rc));
    snprintf(idstr, sizeof(idstr), "%u", id);
    rc = fail(err, errlen, OCISYNC_ENOTFOUND,
              "rootless needs a range for user %s (uid %u) in %s: none there", name, id, file);
    for (char *line = data, *next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
        if (c2 == NULL)
            continue;
        *c1 = '\0';
        if (strcmp(line, name) != 0 && strcmp(line, idstr) != 0)
            continue;
        char *e1, *e2;
        errno = 0;
        *start = strtoul(c1 + 1, &e1, 10);
        *count = strtoul(c2 + 1, &e2, 10);
        if (errno == 0 && e1 == c2 && *e2 == '\0' && *count > 0 && *count < UINT32_MAX) {
            rc = 0;
            err[0] = '\0';
            break;
        }
    }
    free(data);
    return rc;
}

/* Runs newuidmap or newgidmap PID 0 ID 1 1 START COUNT, its stderr into err on failure. */
static int run_idmap(const char *tool, pid_t pid, uint32_t id, unsigned long start,
                     unsigned long count, char *err, size_t errlen)
{
    char a[5][24];
    snprintf(a[0], sizeof(a[0]), "%d", (int)pid);
    snprintf(a[1], sizeof(a[1]), "%u", id);
    snprintf(a[2], sizeof(a[2]), "%lu", start);
    snprintf(a[3], sizeof(a[3]), "%lu", count);
    char *argv[] = {(char *)tool, a[0], "0", a[1], "1", "1", a[2], a[3], NULL};
    int p[2], rc, st;
    posix_spawn_file_actions_t fa;
    pid_t tp;
    char out[512] = "";
    size_t got = 0;

    if (pipe2(p, O_CLOEXEC) != 0)
        return fail(err, errlen, ocisync__sys_error(), "pipe: %s", strerror(errno));
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    rc = posix_spawnp(&tp, tool, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        return fail(err, errlen, -rc, "rootless needs %s (Debian package uidmap): %s", tool,
                    strerror(rc));
    }
    for (ssize_t n; got + 1 < sizeof(out); got += (size_t)n) {
        n = read(p[0], out + got, sizeof(out) - 1 - got);
        if (n < 0 && errno == EINTR) {
            n = 0;
            continue;
        }
        if (n <= 0)
            break;
    }
    out[got] = '\0';
    close(p[0]);
    while (waitpid(tp, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    out[strcspn(out, "\n")] = '\0';
    return fail(err, errlen, UV_EPERM, "%s %s 0 %s 1 1 %s %s failed (status %d): %s", tool, a[0],
                a[1], a[2], a[3], WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), out);
}

/*
 * How many ids from 0 up the caller's user namespace maps (its FILE,
 * "uid_map" or "gid_map"): 4294967295 in the initial one.
 */
static unsigned long id_extent(const char *file)
{
    char path[64], line[256];
    unsigned long inside, outside, count, end = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/self/%s", file);
    /* procfs gives no size: read it line by line. */
    if ((f = fopen(path, "re")) == NULL)
        return 4294967295UL;
    /* Ranges from 0 on, one after the other, as engine_sandbox_enter_userns makes them; an
     * empty map (never written) is 0. */
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "%lu %lu %lu", &inside, &outside, &count) == 3 && inside == end)
            end += count;
    fclose(f);
    return end;
}

bool engine_sandbox_in_userns(void)
{
    return id_extent("uid_map") != 4294967295UL;
}

/* Writes "0 0 N" (every id the caller has, to itself) to /proc/PID/FILE: as root, for qemu. */
static int write_identity_map(pid_t pid, const char *file, char *err, size_t errlen)
{
    char path[64], map[64];
    snprintf(map, sizeof(map), "0 0 %lu\n", id_extent(file));
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    int rc = fd < 0 ? ocisync__sys_error() : ocisync__write_full(fd, map, strlen(map));
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        return fail(err, errlen, rc, "write %s: %s", path, ocisync_strerror(rc));
    return 0;
}

struct run {
    const struct engine_sandbox_spec *s;
    pid_t pid;
    bool reaped;
    /* rootless: the caller's ids and ranges */
    uid_t uid;
    gid_t gid;
    char user[256];
    unsigned long ustart, ucount, gstart, gcount;
};

static int write_maps(struct run *r, char *err, size_t errlen)
{
    int rc;
    if (!r->s->rootless) {
        rc = write_identity_map(r->pid, "uid_map", err, errlen);
        return rc != 0 ? rc : write_identity_map(r->pid, "gid_map", err, errlen);
    }
    rc = run_idmap("newuidmap", r->pid, r->uid, r->ustart, r->ucount, err, errlen);
    return rc != 0 ? rc : run_idmap("newgidmap", r->pid, r->gid, r->gstart, r->gcount, err, errlen);
}

static int rootless_ids(struct run *r, char *err, size_t errlen)
{
    struct passwd pw, *pp = NULL;
    char buf[4096];
    r->uid = geteuid();
    r->gid = getegid();
    if (getpwuid_r(r->uid, &pw, buf, sizeof(buf), &pp) == 0 && pp != NULL)
        snprintf(r->user, sizeof(r->user), "%s", pw.pw_name);
    else
        snprintf(r->user, sizeof(r->user), "%u", (unsigned)r->uid);
    int rc = subid_range("/etc/subuid", r->user, r->uid, &r->ustart, &r->ucount, err, errlen);
    return rc != 0
               ? rc
               : subid_range("/etc/subgid", r->user, r->uid, &r->gstart, &r->gcount, err, errlen);
}

static bool abs_path_ok(const char *p)
{
    return p != NULL && p[0] == '/' && strlen(p) < ENGINE_SANDBOX_PATH_MAX;
}

static int check_spec(const struct engine_sandbox_spec *s, char *err, size_t errlen)
{
    if (s->argv == NULL || s->argv[0] == NULL || s->argv[0][0] == '\0')
        return fail(err, errlen, OCISYNC_EUSAGE, "no command to run");
    if (s->n_lower == 0 && s->rootfs == NULL)
        return fail(err, errlen, OCISYNC_EUSAGE, "no root: neither lower dirs nor a rootfs");
    if (s->n_lower > 0 && (s->upper == NULL || s->work == NULL))
        return fail(err, errlen, OCISYNC_EUSAGE, "an overlay root needs upper and work dirs");
    if (s->n_lower > ENGINE_SANDBOX_MAX_LOWER || s->n_mounts > ENGINE_SANDBOX_MAX_MOUNTS ||
        s->n_groups > ENGINE_SANDBOX_MAX_GROUPS)
        return fail(err, errlen, OCISYNC_ETOOBIG,
                    "%zu lower dirs, %zu mounts, %zu groups: at most %d, %d, %d", s->n_lower,
                    s->n_mounts, s->n_groups, ENGINE_SANDBOX_MAX_LOWER, ENGINE_SANDBOX_MAX_MOUNTS,
                    ENGINE_SANDBOX_MAX_GROUPS);
    if (s->cwd != NULL && !abs_path_ok(s->cwd))
        return fail(err, errlen, OCISYNC_EUSAGE, "working directory %s: not an absolute path",
                    s->cwd);
    for (size_t i = 0; i < s->n_mounts; i++)
        if (s->mounts[i].host == NULL || !abs_path_ok(s->mounts[i].target))
            return fail(err, errlen, OCISYNC_EUSAGE, "mount target %s: not an absolute path",
                        s->mounts[i].target ? s->mounts[i].target : "(none)");
    if (s->qemu != NULL && strcmp(s->qemu_arch ? s->qemu_arch : "", HOST_ARCH) == 0)
        return fail(err, errlen, OCISYNC_EUSAGE, "qemu for %s on a %s host: not needed",
                    s->qemu_arch, HOST_ARCH);
    return 0;
}

/*
 * Opens the emulator (the child inherits the descriptor, which stays valid
 * after pivot_root) and writes the binfmt_misc line that names it.
 */
static int prepare_qemu(const struct engine_sandbox_spec *s, struct child *c, int *fd, char *err,
                        size_t errlen)
{
    const struct binfmt_arch *a = NULL;
    for (size_t i = 0; i < sizeof(binfmt_arches) / sizeof(binfmt_arches[0]); i++)
        if (s->qemu_arch != NULL && strcmp(s->qemu_arch, binfmt_arches[i].oci) == 0)
            a = &binfmt_arches[i];
    if (a == NULL)
        return fail(err, errlen, OCISYNC_EUSAGE, "qemu for architecture %s: not supported",
                    s->qemu_arch ? s->qemu_arch : "(none)");
    *fd = open(s->qemu, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return fail(err, errlen, ocisync__sys_error(), "qemu %s: %s", s->qemu, strerror(errno));
    size_t n =
        (size_t)snprintf(c->binfmt, sizeof(c->binfmt), ":qemu-%s:M::%s:%s:/proc/self/fd/%d:F",
                         a->name, a->magic, a->mask, *fd);
    if (n >= sizeof(c->binfmt))
        return fail(err, errlen, OCISYNC_ETOOBIG, "binfmt_misc line: too long");
    snprintf(c->qemu_arch, sizeof(c->qemu_arch), "%s", s->qemu_arch);
    return 0;
}

static int add_created(struct engine_sandbox_result *res, const char *path)
{
    if (res->n_created == MAX_CREATED)
        return OCISYNC_ETOOBIG;
    char **v = realloc(res->created, (res->n_created + 1) * sizeof(*v));
    if (v == NULL)
        return UV_ENOMEM;
    res->created = v;
    if ((v[res->n_created] = strdup(path)) == NULL)
        return UV_ENOMEM;
    res->n_created++;
    return 0;
}

/*
 * Serves the child until it is gone: its messages, then its exit, the
 * timeout killing it. Returns the first error (in err), or 0.
 */
static int supervise(struct run *r, int sock, int pidfd, struct engine_sandbox_result *res,
                     char *err, size_t errlen)
{
    const struct engine_sandbox_spec *s = r->s;
    uint64_t deadline = s->timeout_ms > 0 ? now_ms() + s->timeout_ms : 0;
    bool sock_open = true;
    int rc = 0, st = 0;

    while (sock_open || !r->reaped) {
        struct pollfd p[2] = {{.fd = sock_open ? sock : -1, .events = POLLIN},
                              {.fd = r->reaped ? -1 : pidfd, .events = POLLIN}};
        int wait = -1;
        if (deadline != 0 && !res->timed_out) {
            uint64_t t = now_ms();
            wait = t >= deadline ? 0 : (int)(deadline - t < INT_MAX ? deadline - t : INT_MAX);
        }
        int n = poll(p, 2, wait);
        if (n < 0 && errno != EINTR)
            return fail(err, errlen, ocisync__sys_error(), "poll: %s", strerror(errno));
        if (n == 0 && deadline != 0 && !res->timed_out && now_ms() >= deadline) {
            res->timed_out = true;
            kill(r->pid, SIGKILL); /* PID 1 of its namespace: everything in it dies */
            continue;
        }
        if (n <= 0)
            continue;
        if (p[0].revents != 0) {
            struct msg m;
            ssize_t got = recv(sock, &m, sizeof(m), 0);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                sock_open = false;
                continue;
            }
            if ((size_t)got != sizeof(m))
                continue;
            m.text[sizeof(m.text) - 1] = '\0';
            int mrc = 0;
            if (m.kind == MSG_ERROR && rc == 0) {
                rc = m.err != 0 ? -m.err : OCISYNC_EUSAGE;
                if (m.err != 0)
                    fail(err, errlen, rc, "%s: %s", m.text, strerror(m.err));
                else
                    fail(err, errlen, rc, "%s", m.text);
            } else if (m.kind == MSG_MAP) {
                char b = 1;
                mrc = write_maps(r, err, errlen);
                if (mrc == 0 && send(sock, &b, 1, MSG_NOSIGNAL) != 1)
                    mrc = fail(err, errlen, ocisync__sys_error(), "answer the child: %s",
                               strerror(errno));
            } else if (m.kind == MSG_CREATED && (mrc = add_created(res, m.text)) != 0) {
                fail(err, errlen, mrc, "too many mount points created (at most %d)", MAX_CREATED);
            }
            if (mrc != 0 && rc == 0) {
                rc = mrc;
                kill(r->pid, SIGKILL);
            }
        }
        if (p[1].revents != 0) {
            if (waitpid(r->pid, &st, WNOHANG) == r->pid)
                r->reaped = true;
        }
    }
    res->status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255;
    if (rc == 0 && res->timed_out)
        rc = fail(err, errlen, OCISYNC_ETIMEOUT, "\"%s\" timed out after %llu ms: killed",
                  s->argv[0], (unsigned long long)s->timeout_ms);
    return rc;
}

int engine_sandbox_run(const struct engine_sandbox_spec *s, struct engine_sandbox_result *res,
                       char *err, size_t errlen)
{
    struct child *c = NULL;
    struct run r;
    int sp[2] = {-1, -1}, pidfd = -1, qemu_fd = -1, rc;

    memset(res, 0, sizeof(*res));
    memset(&r, 0, sizeof(r));
    r.s = s;
    r.pid = -1;
    if (errlen > 0)
        err[0] = '\0';
    if ((rc = check_spec(s, err, errlen)) != 0)
        goto out;
    if (s->rootless && (rc = rootless_ids(&r, err, errlen)) != 0)
        goto out;
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        rc = fail(err, errlen, UV_ENOMEM, "out of memory");
        goto out;
    }
    c->s = s;
    c->userns = s->rootless;
    c->nested = !s->rootless && engine_sandbox_in_userns();
    c->resolv_fd = c->hosts_fd = c->sys_fd = -1;
    if (s->qemu != NULL && (rc = prepare_qemu(s, c, &qemu_fd, err, errlen)) != 0)
        goto out;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
        rc = fail(err, errlen, ocisync__sys_error(), "socketpair: %s", strerror(errno));
        goto out;
    }
    c->sock = sp[1];

    unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD;
    if (s->network_none)
        flags |= CLONE_NEWNET;
    if (s->rootless)
        flags |= CLONE_NEWUSER;
    /* The raw system call: fork's semantics (no new stack), with the namespaces. */
    r.pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
    if (r.pid == 0)
        child_main(c);
    if (r.pid < 0) {
        rc = fail(err, errlen, ocisync__sys_error(),
                  "clone with new namespaces: %s (needs root, or rootless with user namespaces)",
                  strerror(errno));
        goto out;
    }
    close(sp[1]);
    sp[1] = -1;
    pidfd = (int)syscall(SYS_pidfd_open, r.pid, 0);
    if (pidfd < 0) {
        rc = fail(err, errlen, ocisync__sys_error(), "pidfd_open: %s", strerror(errno));
        goto out;
    }
    rc = supervise(&r, sp[0], pidfd, res, err, errlen);
out:
    if (r.pid > 0 && !r.reaped) {
        kill(r.pid, SIGKILL);
        while (waitpid(r.pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (pidfd >= 0)
        close(pidfd);
    for (int i = 0; i < 2; i++)
        if (sp[i] >= 0)
            close(sp[i]);
    if (qemu_fd >= 0)
        close(qemu_fd);
    free(c);
    if (rc != 0 && rc != OCISYNC_ETIMEOUT)
        engine_sandbox_result_free(res);
    return rc;
}

void engine_sandbox_result_free(struct engine_sandbox_result *res)
{
    for (size_t i = 0; i < res->n_created; i++)
        free(res->created[i]);
    free(res->created);
    res->created = NULL;
    res->n_created = 0;
}

/* Why the last engine_sandbox_enter_userns failed, for RUN's error; "" when it did not. */
static char userns_why[512];

const char *engine_sandbox_userns_error(void)
{
    return userns_why;
}

static int enter_userns(char *err, size_t errlen);

int engine_sandbox_enter_userns(char *err, size_t errlen)
{
    int rc = enter_userns(err, errlen);
    snprintf(userns_why, sizeof(userns_why), "%s", rc != 0 ? err : "");
    return rc;
}

static int enter_userns(char *err, size_t errlen)
{
    struct run r;
    int go[2] = {-1, -1}, back[2] = {-1, -1}, rc = 0, st;
    char msg[512] = "", b = 1;
    pid_t helper = -1, self = getpid();
    DIR *tasks;
    size_t n_tasks = 0;
    ssize_t got;

    if (geteuid() == 0 || engine_sandbox_in_userns())
        return 0;
    /* unshare(CLONE_NEWUSER) is refused to a process with more than one thread. */
    if ((tasks = opendir("/proc/self/task")) != NULL) {
        for (struct dirent *de; (de = readdir(tasks)) != NULL;)
            n_tasks += de->d_name[0] != '.';
        closedir(tasks);
    }
    if (n_tasks > 1)
        return fail(err, errlen, OCISYNC_EUSAGE,
                    "a user namespace must be entered before any thread starts");
    memset(&r, 0, sizeof(r));
    if ((rc = rootless_ids(&r, err, errlen)) != 0)
        return rc;
    if (pipe2(go, O_CLOEXEC) != 0 || pipe2(back, O_CLOEXEC) != 0) {
        rc = fail(err, errlen, ocisync__sys_error(), "pipe: %s", strerror(errno));
        goto out;
    }
    /* A helper outside the namespace writes its maps with newuidmap and newgidmap. */
    helper = fork();
    if (helper < 0) {
        rc = fail(err, errlen, ocisync__sys_error(), "fork: %s", strerror(errno));
        goto out;
    }
    if (helper == 0) {
        char e[512] = "";
        int hrc = -1;
        close(go[1]);
        close(back[0]);
        if (read(go[0], &b, 1) == 1) {
            hrc = run_idmap("newuidmap", self, r.uid, r.ustart, r.ucount, e, sizeof(e));
            if (hrc == 0)
                hrc = run_idmap("newgidmap", self, r.gid, r.gstart, r.gcount, e, sizeof(e));
        }
        if (hrc != 0 && write(back[1], e, strlen(e)) < 0)
            _exit(2);
        _exit(hrc == 0 ? 0 : 1);
    }
    close(go[0]);
    close(back[1]);
    go[0] = back[1] = -1;
    if (unshare(CLONE_NEWUSER) != 0) {
        rc = fail(err, errlen, ocisync__sys_error(),
                  "make a user namespace: %s (are unprivileged user namespaces allowed?)",
                  strerror(errno));
        goto out;
    }
    if (write(go[1], &b, 1) != 1) {
        rc =
            fail(err, errlen, ocisync__sys_error(), "start the id map helper: %s", strerror(errno));
        goto out;
    }
    got = read(back[0], msg, sizeof(msg) - 1);
    msg[got > 0 ? got : 0] = '\0';
    while (waitpid(helper, &st, 0) < 0 && errno == EINTR)
        ;
    helper = -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        rc = fail(err, errlen, UV_EPERM, "%s", msg[0] ? msg : "newuidmap failed");
        goto out;
    }
    /* Root of the namespace now; no supplementary groups (they map to nobody). */
    if (syscall(SYS_setresgid, 0, 0, 0) != 0 || syscall(SYS_setresuid, 0, 0, 0) != 0 ||
        syscall(SYS_setgroups, 0, NULL) != 0)
        rc = fail(err, errlen, ocisync__sys_error(), "become root of the user namespace: %s",
                  strerror(errno));
out:
    if (helper > 0) {
        kill(helper, SIGKILL);
        while (waitpid(helper, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    for (int i = 0; i < 2; i++) {
        if (go[i] >= 0)
            close(go[i]);
        if (back[i] >= 0)
            close(back[i]);
    }
    return rc;
}
