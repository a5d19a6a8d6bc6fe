/*
 * engine_sandbox_run for real: each test builds a small root in a temp dir
 * (Debian's static busybox as /bin/busybox, with links for the applets),
 * runs shell commands in it and checks what they print and what they leave
 * on the host. Needs root (the sandbox's own requirement without rootless);
 * the rootless test runs the sandbox as nobody, with /etc/subuid and
 * /etc/subgid entries made in a private mount namespace of the test's (the
 * host's files never change); the qemu tests run a tiny aarch64 program
 * (written here, byte by byte) with Debian's qemu-aarch64-static.
 */
#define _GNU_SOURCE
#include "test.h"

#include "engine/sandbox.h"
#include "ocisync.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define BUSYBOX "/bin/busybox"
#define QEMU_AARCH64 "/usr/bin/qemu-aarch64-static"
#define NOBODY 65534
#define DOCKER_CAPS 0xa80425fbULL

static const char *const applets[] = {
    "sh", "ls",    "cat",   "echo", "id",    "hostname", "touch", "mkdir", "grep", "sleep",
    "rm", "mount", "wc",    "head", "pwd",   "stat",     "test",  "kill",  "true", "false",
    "tr", "sed",   "chown", "ps",   "uname", "readlink", "sort",  "cut"};

struct tree {
    char base[128];
    char lower[160], upper[160], work[160], rootfs[160], out[160];
};

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p) == 0 || errno == ENOENT ? 0 : -1;
}

static void rm_rf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static bool write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return false;
    bool ok = write(fd, data, len) == (ssize_t)len;
    close(fd);
    return ok && chmod(path, mode) == 0;
}

/* The whole file (up to cap - 1 bytes), NUL-terminated; "" when unreadable. */
static const char *read_file(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return buf;
    size_t got = 0;
    for (ssize_t n; got + 1 < cap && (n = read(fd, buf + got, cap - 1 - got)) > 0;)
        got += (size_t)n;
    buf[got] = '\0';
    close(fd);
    return buf;
}

static bool copy_file(const char *from, const char *to, mode_t mode)
{
    static char data[8 << 20];
    int fd = open(from, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t got = 0;
    for (ssize_t n; got < sizeof(data) && (n = read(fd, data + got, sizeof(data) - got)) > 0;)
        got += (size_t)n;
    close(fd);
    return got < sizeof(data) && write_file(to, data, got, mode);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Fills dir with a tiny system: busybox and its links, /etc, /tmp, /proc, /sys, /dev. */
static bool populate(const char *dir)
{
    char p[512];
    static const char *const dirs[] = {"bin", "etc", "tmp", "proc", "sys", "dev"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, dirs[i]);
        if (mkdir(p, 0755) != 0)
            return false;
    }
    snprintf(p, sizeof(p), "%s/tmp", dir);
    chmod(p, 01777);
    snprintf(p, sizeof(p), "%s/bin/busybox", dir);
    if (!copy_file(BUSYBOX, p, 0755))
        return false;
    for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++) {
        snprintf(p, sizeof(p), "%s/bin/%s", dir, applets[i]);
        if (symlink("busybox", p) != 0)
            return false;
    }
    snprintf(p, sizeof(p), "%s/etc/passwd", dir);
    return write_file(p, "root:x:0:0:root:/root:/bin/sh\n", 30, 0644);
}

/* busybox-static is installed (scripts/bootstrap.sh) and this runs as root. */
static const char *unmet(void)
{
    if (geteuid() != 0)
        return "needs root (the sandbox without rootless does)";
    if (access(BUSYBOX, X_OK) != 0)
        return "no " BUSYBOX " (Debian package busybox-static)";
    return NULL;
}

static bool tree_make(struct tree *t)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->base, sizeof(t->base), "/tmp/ocisync-sandbox-XXXXXX");
    if (mkdtemp(t->base) == NULL || chmod(t->base, 0755) != 0)
        return false;
    snprintf(t->lower, sizeof(t->lower), "%s/lower", t->base);
    snprintf(t->upper, sizeof(t->upper), "%s/upper", t->base);
    snprintf(t->work, sizeof(t->work), "%s/work", t->base);
    snprintf(t->rootfs, sizeof(t->rootfs), "%s/rootfs", t->base);
    snprintf(t->out, sizeof(t->out), "%s/out", t->base);
    return mkdir(t->lower, 0755) == 0 && mkdir(t->upper, 0755) == 0 && mkdir(t->work, 0755) == 0 &&
           populate(t->lower);
}

static void tree_free(struct tree *t)
{
    if (t->base[0] != '\0')
        rm_rf(t->base);
}

/* A spec running `sh -c script` on the overlay of t, output to t->out. */
struct job {
    struct engine_sandbox_spec s;
    const char *lower[1];
    const char *argv[4];
    const char *envp[3];
    struct engine_sandbox_result res;
    char err[1024];
    char out[16384];
    int rc;
};

static void job_init(struct job *j, const struct tree *t, const char *script)
{
    memset(j, 0, sizeof(*j));
    j->lower[0] = t->lower;
    j->argv[0] = "/bin/sh";
    j->argv[1] = "-c";
    j->argv[2] = script;
    j->envp[0] = "PATH=/bin";
    j->envp[1] = "HOME=/root";
    j->s.lower = j->lower;
    j->s.n_lower = 1;
    j->s.upper = t->upper;
    j->s.work = t->work;
    j->s.argv = j->argv;
    j->s.envp = j->envp;
    j->s.timeout_ms = 60000;
}

static int job_run(struct job *j, const struct tree *t)
{
    int fd = open(t->out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    j->s.out_fd = fd;
    j->rc = engine_sandbox_run(&j->s, &j->res, j->err, sizeof(j->err));
    close(fd);
    read_file(t->out, j->out, sizeof(j->out));
    if (j->rc != 0 && j->rc != OCISYNC_ETIMEOUT)
        fprintf(stderr, "  engine_sandbox_run: %d %s\n", j->rc, j->err);
    return j->rc;
}

static bool created(const struct engine_sandbox_result *r, const char *path)
{
    for (size_t i = 0; i < r->n_created; i++)
        if (strcmp(r->created[i], path) == 0)
            return true;
    return false;
}

/* The value of "Key:\t<hex>" in a /proc/PID/status text, or ~0. */
static unsigned long long status_hex(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p != NULL ? strtoull(p + strlen(key) + 1, NULL, 16) : ~0ULL;
}

/* Counts the processes whose command line is exactly argv0 arg1 (e.g. "sleep" "3031"). */
static int count_procs(const char *a0, const char *a1)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    char want[64], p[300], buf[64];
    size_t wl = (size_t)snprintf(want, sizeof(want), "%s%c%s", a0, 0, a1) + 1;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(p, sizeof(p), "/proc/%s/cmdline", e->d_name);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t got = read(fd, buf, sizeof(buf));
        close(fd);
        if (got == (ssize_t)wl && memcmp(buf, want, wl) == 0)
            n++;
    }
    if (d != NULL)
        closedir(d);
    return n;
}

static int count_lines(const char *path)
{
    static char buf[1 << 20];
    int n = 0;
    read_file(path, buf, sizeof(buf));
    for (const char *p = buf; *p != '\0'; p++)
        n += *p == '\n';
    return n;
}

#define SETUP(t)                                                                                   \
    do {                                                                                           \
        const char *why_ = unmet();                                                                \
        if (why_ != NULL)                                                                          \
            SKIP(why_);                                                                            \
        if (!tree_make(t)) {                                                                       \
            CHECK(!"cannot make the test tree");                                                   \
            tree_free(t);                                                                          \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------------------------------------ */

TEST(exit_code_and_output)
{
    struct tree t;
    struct job j;
    SETUP(&t);
    job_init(&j, &t, "echo out; echo err >&2; exit 7");
    CHECK_INT(job_run(&j, &t), 0);
    CHECK_INT(j.res.status, 7);
    CHECK(!j.res.timed_out);
    CHECK_STR(j.out, "out\nerr\n");
    engine_sandbox_result_free(&j.res);
    tree_free(&t);
}

TEST(writes_land_in_upper)
{
    struct tree t;
    struct job j;
    char p[512], buf[64];
    struct stat st;
    SETUP(&t);
    job_init(&j, &t, "echo data > /newfile && rm /bin/cat && mkdir -p /a/b");
    CHECK_INT(job_run(&j, &t), 0);
    CHECK_INT(j.res.status, 0);
    snprintf(p, sizeof(p), "%s/newfile", t.upper);
    CHECK_STR(read_file(p, buf, sizeof(buf)), "data\n");
    snprintf(p, sizeof(p), "%s/newfile", t.lower);
    CHECK(!exists(p));
    /* The removal is an overlayfs whiteout in upper; lower keeps the file. */
    snprintf(p, sizeof(p), "%s/bin/cat", t.lower);
    CHECK(exists(p));
    snprintf(p, sizeof(p), "%s/bin/cat", t.upper);
    CHECK(lstat(p, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == 0);
    snprintf(p, sizeof(p), "%s/a/b", t.upper);
    CHECK(exists(p));
    /* The lower dir had /proc, /sys, /dev and /etc: no mount point was made. */
    CHECK_INT(j.res.n_created, 0);
    engine_sandbox_result_free(&j.res);
    tree_free(&t);
}

TEST(pid_namespace)
{
    struct tree t;
    struct job j;
    SETUP(&t);
    job_init(&j, &t, "echo $$; ls /proc | grep -c '^[0-9]'; ps -o pid,comm");
    CHECK_INT(job_run(&j, &t), 0);
    CHECK_INT(j.res.status, 0);
    /* sh is PID 1; ls and grep run beside it, and nothing of the host is there. */
    CHECK(strncmp(j.out, "1\n", 2) == 0);
    const char *nl = strchr(j.out, '\n');
    int n = nl != NULL ? atoi(nl + 1) : -1;
    CHECK(n >= 1 && n <= 4);
    if (n < 1 || n > 4)
        fprintf(stderr, "  output: %s\n", j.out);
    engine_sandbox_result_free(&j.res);
    tree_free(&t);
}

TEST(cannot_write_outside_root)
{
    struct tree t;
    struct job j;
    char script[512], host[128], p[512];
    SETUP(&t);
    snprintf(host, sizeof(host), "ocisync-escape-%d", (int)getpid());
    snprintf(script, sizeof(script),
             "echo x > /%s; echo y > /../../../tmp/%s; cd /; cd ../..; echo z > %s.2; "
             "echo w > /proc/1/root/%s.3; echo v > /proc/sys/kernel/hostname && echo PROCSYS",
             host, host, host, host);
    job_init(&j, &t, script);
    CHECK_INT(job_run(&j, &t), 0);
    snprintf(p, sizeof(p), "/%s", host);
    CHECK(!exists(p));
    snprintf(p, sizeof(p), "/tmp/%s", host);
    CHECK(!exists(p));
    snprintf(p, sizeof(p), "/%s.2", host);
    CHECK(!exists(p));
    snprintf(p, sizeof(p), "/%s.3", host);
    CHECK(!exists(p));
    /* All of them landed in the sandbox's own root. */
    snprintf(p, sizeof(p), "%s/%s", t.upper, host);
    CHECK(exists(p));
    snprintf(p, sizeof(p), "%s/tmp/%s", t.upper, host);
    CHECK(exists(p));
    snprintf(p, sizeof(p), "%s/%s.2", t.upper, host);
    CHECK(exists(p));
    /* /proc/sys is read-only, as docker has it. */
    CHECK(strstr(j.out, "PROCSYS") == NULL);
    engine_sandbox_result_free(&j.res);
    tree_free(&t);
}

TEST(network)
{
    struct tree t;
    struct job j;
    char host_dev[8192];
    SETUP(&t);
    job_init(&j, &t, "cat /proc/net/dev; cat /sys/class/net/lo/flags");
    j.s.network_none = true;
    CHECK_INT(job_run(&j, &t), 0);
    /* Two header lines, then lo alone, up (IFF_UP | IFF_LOOPBACK | IFF_RUNNING...). */
    const char *lo = strstr(j.out, "lo:");
    CHECK(lo != NULL);
    int ifaces = 0;
    for (const char *p = j.out; (p = strchr(p, ':')) != NULL; p++)
        ifaces++;
    CHECK_INT(ifaces, 1);
    const char *flags = strstr(j.out, "0x");
    CHECK(flags != NULL && (strtoul(flags, NULL, 16) & 1) == 1);
    engine_sandbox_result_free(&j.res);

    /* Without network_none, the host's interfaces are all there. */
    read_file("/proc/net/dev", host_dev, sizeof(host_dev));
    int host_ifaces = 0;
    for (const char *p = host_dev; (p = strchr(p, ':')) != NULL; p++)
        host_ifaces++;
    job_init(&j, &t, "cat /proc/net/dev");
    CHECK_INT(job_run(&j, &t), 0);
    ifaces = 0;
    for (const char *p = j.out; (p = strchr(p, ':')) != NULL; p++)
        ifaces++;
    CHECK_INT(ifaces, host_ifaces);
    engine_sandbox_result_free(&j.res);
    tree_free(&t);
}

TEST(hostname)
{
    struct tree t;
    struct job j;
    char before[256], after[256];
    SETUP(&t);
    gethostname(before, sizeof(before));
    job_init(&j, &t, "hostname; hostname other; hostname");
    j.s.hostname = "box1";
    CHECK_INT(job_run(&j, &t), 0);
    /* Changing it needs CAP_SYS_ADMIN, which the command does not have. */
    CHECK(strncmp(j.out, "box1\n", 5) == 0);
    CHECK(strstr(j.out + 5, "box1\n") != NULL);
    gethostname(after, sizeof(after));
    CHECK_STR(after, before);
    engine_sandbox_result_free(&j.res);
    job_init(&j, &t, "hostname");
    CHECK_INT(job_run(&j, &t), 0);
    CHECK_STR(j.out, "buildkitsandbox\n");
    engine_sandbox_result_free(&j.res);
    tree_free(&t);
}

TEST(user_and_cwd)
{
    struct tree t;
    struct job j;
    char p[512];
    struct stat st;
    static const uint32_t groups[] = {1002, 1003};
    SETUP(&t);
    job_init(&j, &t, "id -u; id -g; id -G; pwd; touch f");
    j.s.uid = 1000;
    j.s.gid = 1001;
    j.s.groups = groups;
    j.s.n_groups = 2;
    j.s.cwd = "/home/u/src";
    CHECK_INT(job_run(&j, &t), 0);
    CHECK_INT(j.res.status, 0);
    CHECK(strncmp(j.out, "1000\n1001\n", 10) == 0);
    CHECK(strstr(j.out, "1002") != NULL && strstr(j.out, "1003") != NULL);
    CHECK(strstr(j.out, "/home/u/src\n") != NULL);
    /* The missing working directory was made for the user, and the file is the user's. */
    snprintf(p, sizeof(p), "%s/home/u/src", t.upper);
    CHECK(stat(p, &st) == 0 && st.st_uid == 1000 && st.st_gid == 1001);
    snprintf(p, sizeof(p), "%s/home/u/src/f", t.upper);
    CHECK(stat(p, &st) == 0 && st.st_uid == 1000 && st.st_gid == 1001);
    if (j.res.status != 0)
        fprintf(stderr, "  output: %s\n", j.out);
    engine_sandbox_result_free(&j.res);
    tree_free(&t);
}

/* Docker's default capabilities, less those the test itself lacks. */
static unsigned long long expected_caps(void)
{
    char self[8192];
    read_file("/proc/self/status", self, sizeof(self));
    return DOCKER_CAPS & status_hex(self, "CapBnd:");
}

TEST(capabilities_and_no_new_privs)
{
    struct tree t;
    struct job j;
    SETUP(&t);
    unsigned long long want = expected_caps();
    job_init(&j, &t, "cat /proc/self/status; mount -t tmpfs none /tmp && echo MOUNTED");
    CHECK_INT(job_run(&j, &t), 0);
    CHECK(status_hex(j.out, "CapEff:") == want);
    CHECK(status_hex(j.out, "CapPrm:") == want);
    CHECK(status_hex(j.out, "CapBnd:") == want);
    CHECK(status_hex(j.out, "CapInh:") == 0);
    CHECK(status_hex(j.out, "CapAmb:") == 0);
    CHECK(strstr(j.out, "NoNewPrivs:\t1\n") != NULL);
    CHECK(strstr(j.out, "MOUNTED") == NULL);
    engine_sandbox_result_free(&j.res);

    /* Another uid has none, and the same bounding set. */
    job_init(&j, &t, "cat /proc/self/status");
    j.s.uid = j.s.gid = 1000;
    CHECK_INT(job_run(&j, &t), 0);
    CHECK(status_hex(j.out, "CapEff:") == 0);
    CHECK(status_hex(j.out, "CapPrm:") == 0);
    CHECK(status_hex(j.out, "CapBnd:") == want);
    CHECK(strstr(j.out, "NoNewPrivs:\t1\n") != NULL);
    engine_sandbox_result_free(&j.res);
    tree_free(&t);
}

TEST(dev)
{
    struct tree t;
    struct job j;
    SETUP(&t);
    job_init(&j, &t,
             "ls /dev | tr '\\n' ' '; echo; echo x > /dev/null && head -c 5 /dev/zero | wc -c; "
             "readlink /dev/ptmx; readlink /dev/fd; grep -E ' /dev/(pts|shm) ' /proc/self/mounts | "
             "cut -d' ' "
             "-f3 | tr '\\n' ' '; echo; grep ' /sys ' /proc/self/mounts | cut -d' ' -f4");
    CHECK_INT(job_run(&j, &t), 0);
    CHECK_INT(j.res.status, 0);
    static const char *const want[] = {"null ",  "zero ",   "full ",  "random ", "urandom ",
                                       "tty ",   "pts ",    "shm ",   "ptmx ",   "fd ",
                                       "stdin ", "stdout ", "stderr "};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        CHECK(strstr(j.out, want[i]) != NULL);
    CHECK(strstr(j.out, "\n5\npts/ptmx\n/proc/self/fd\ndevpts tmpfs \nro,") != NULL);
    if (strstr(j.out, "\n5\npts/ptmx\n/proc/self/fd\ndevpts tmpfs \nro,") == NULL)
        fprintf(stderr, "  output: %s\n", j.out);
    engine_sandbox_result_free(&j.res);
    tree_free(&t);
}

TEST(secret_binds_resolv_hosts)
{
    struct tree t;
    struct job j;
    char secret[256], cache[256], ro[256], resolv[256], hosts[256], p[512], buf[256];
    struct stat st;
    SETUP(&t);
    snprintf(secret, sizeof(secret), "%s/secret", t.base);
    snprintf(cache, sizeof(cache), "%s/cache", t.base);
    snprintf(ro, sizeof(ro), "%s/ro", t.base);
    snprintf(resolv, sizeof(resolv), "%s/resolv.conf", t.base);
    snprintf(hosts, sizeof(hosts), "%s/hosts", t.base);
    CHECK(write_file(secret, "s3cr3t\n", 7, 0600));
    CHECK(write_file(resolv, "nameserver 192.0.2.53\n", 22, 0644));
    CHECK(write_file(hosts, "192.0.2.1 registry\n", 19, 0644));
    CHECK(mkdir(cache, 0755) == 0 && mkdir(ro, 0755) == 0);
    snprintf(p, sizeof(p), "%s/given", ro);
    CHECK(write_file(p, "ro\n", 3, 0644));
    const struct engine_sandbox_mount mounts[] = {
        {ENGINE_SANDBOX_SECRET, secret, "/run/secrets/token"},
        {ENGINE_SANDBOX_BIND_RW, cache, "/var/cache/x"},
        {ENGINE_SANDBOX_BIND_RO, ro, "/etc/ro"},
    };
    job_init(&j, &t,
             "cat /run/secrets/token; echo no > /run/secrets/token && echo SECRET-WRITTEN; "
             "echo c > /var/cache/x/f; cat /etc/ro/given; echo no > /etc/ro/f && echo RO-WRITTEN; "
             "cat /etc/resolv.conf /etc/hosts; echo no > /etc/hosts && echo HOSTS-WRITTEN");
    j.s.mounts = mounts;
    j.s.n_mounts = 3;
    j.s.resolv_conf = resolv;
    j.s.hosts = hosts;
    CHECK_INT(job_run(&j, &t), 0);
    CHECK(strncmp(j.out, "s3cr3t\n", 7) == 0);
    CHECK(strstr(j.out, "\nro\n") != NULL);
    CHECK(strstr(j.out, "\nnameserver 192.0.2.53\n192.0.2.1 registry\n") != NULL);
    CHECK(strstr(j.out, "WRITTEN") == NULL);
    if (strstr(j.out, "\nnameserver") == NULL || strstr(j.out, "WRITTEN") != NULL)
        fprintf(stderr, "  output: %s\n", j.out);
    /* The host's secret is unchanged; the cache mount wrote to the host's directory. */
    CHECK_STR(read_file(secret, buf, sizeof(buf)), "s3cr3t\n");
    snprintf(p, sizeof(p), "%s/f", cache);
    CHECK_STR(read_file(p, buf, sizeof(buf)), "c\n");
    /* In upper, only empty mount points, every one of them reported. */
    snprintf(p, sizeof(p), "%s/run/secrets/token", t.upper);
    CHECK(stat(p, &st) == 0 && st.st_size == 0);
    snprintf(p, sizeof(p), "%s/var/cache/x/f", t.upper);
    CHECK(!exists(p));
    snprintf(p, sizeof(p), "%s/etc/resolv.conf", t.upper);
    CHECK(stat(p, &st) == 0 && st.st_size == 0);
    static const char *const made[] = {"/run",    "/run/secrets",     "/run/secrets/token",
                                       "/var",    "/var/cache",       "/var/cache/x",
                                       "/etc/ro", "/etc/resolv.conf", "/etc/hosts"};
    for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
        CHECK(created(&j.res, made[i]));
        snprintf(p, sizeof(p), "%s%s", t.upper, made[i]);
        CHECK(exists(p));
    }
    CHECK_INT(j.res.n_created, sizeof(made) / sizeof(made[0]));
    engine_sandbox_result_free(&j.res);
    tree_free(&t);
}

TEST(missing_mount_points_are_reported)
{
    struct tree t;
    struct job j;
    char p[512];
    SETUP(&t);
    static const char *const gone[] = {"proc", "sys", "dev"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", t.lower, gone[i]);
        CHECK(rmdir(p) == 0);
    }
    job_init(&j, &t, "ls /proc/self/fd >/dev/null && echo ok");
    CHECK_INT(job_run(&j, &t), 0);
    CHECK_STR(j.out, "ok\n");
    CHECK(created(&j.res, "/proc") && created(&j.res, "/sys") && created(&j.res, "/dev"));
    CHECK_INT(j.res.n_created, 3);
    engine_sandbox_result_free(&j.res);
    tree_free(&t);
}

TEST(rootfs_without_overlay)
{
    struct tree t;
    struct job j;
    char p[512], buf[64];
    SETUP(&t);
    CHECK(mkdir(t.rootfs, 0755) == 0 && populate(t.rootfs));
    job_init(&j, &t, "echo r > /inroot; cat /proc/self/status | grep NoNewPrivs");
    j.s.n_lower = 0;
    j.s.lower = NULL;
    j.s.upper = j.s.work = NULL;
    j.s.rootfs = t.rootfs;
    CHECK_INT(job_run(&j, &t), 0);
    CHECK_INT(j.res.status, 0);
    snprintf(p, sizeof(p), "%s/inroot", t.rootfs);
    CHECK_STR(read_file(p, buf, sizeof(buf)), "r\n");
    CHECK_STR(j.out, "NoNewPrivs:\t1\n");
    engine_sandbox_result_free(&j.res);
    tree_free(&t);
}

TEST(errors_name_what_was_given)
{
    struct tree t;
    struct job j;
    SETUP(&t);
    job_init(&j, &t, "true");
    j.argv[0] = "nosuchcmd";
    j.argv[1] = NULL;
    CHECK(job_run(&j, &t) != 0);
    CHECK(strstr(j.err, "\"nosuchcmd\": not found in PATH") != NULL);

    job_init(&j, &t, "true");
    j.lower[0] = "/nonexistent/ocisync-lower";
    CHECK_INT(job_run(&j, &t), UV_ENOENT);
    CHECK(strstr(j.err, "/nonexistent/ocisync-lower") != NULL);

    /* An overlay the kernel refuses: upper and work on different file systems. */
    job_init(&j, &t, "true");
    j.s.work = "/dev/shm";
    CHECK(job_run(&j, &t) != 0);
    CHECK(strstr(j.err, "sandbox: mount overlay (upper ") != NULL);

    job_init(&j, &t, "true");
    const struct engine_sandbox_mount m = {ENGINE_SANDBOX_SECRET, "/nonexistent/secret", "/s"};
    j.s.mounts = &m;
    j.s.n_mounts = 1;
    CHECK_INT(job_run(&j, &t), UV_ENOENT);
    CHECK(strstr(j.err, "/nonexistent/secret") != NULL);
    tree_free(&t);
}

TEST(timeout_kills_everything)
{
    struct tree t;
    struct job j;
    struct timespec a, b;
    SETUP(&t);
    job_init(&j, &t, "sleep 3031 & sleep 3031");
    j.s.timeout_ms = 300;
    clock_gettime(CLOCK_MONOTONIC, &a);
    CHECK_INT(job_run(&j, &t), OCISYNC_ETIMEOUT);
    clock_gettime(CLOCK_MONOTONIC, &b);
    CHECK(j.res.timed_out);
    CHECK_INT(j.res.status, 128 + SIGKILL);
    CHECK(b.tv_sec - a.tv_sec < 10);
    CHECK(strstr(j.err, "timed out") != NULL);
    CHECK_INT(count_procs("sleep", "3031"), 0);
    engine_sandbox_result_free(&j.res);
    tree_free(&t);
}

TEST(nothing_left_behind)
{
    struct tree t;
    struct job j;
    SETUP(&t);
    int mounts = count_lines("/proc/self/mountinfo");
    /* A background process outlives its shell only as long as PID 1 does. */
    job_init(&j, &t, "sleep 3032 & echo started");
    CHECK_INT(job_run(&j, &t), 0);
    CHECK_STR(j.out, "started\n");
    CHECK_INT(count_procs("sleep", "3032"), 0);
    CHECK_INT(count_lines("/proc/self/mountinfo"), mounts);
    engine_sandbox_result_free(&j.res);
    /* Nor after a failure half-way through the setup. */
    job_init(&j, &t, "true");
    j.argv[0] = "/bin/nosuchcmd";
    CHECK(job_run(&j, &t) != 0);
    CHECK_INT(count_lines("/proc/self/mountinfo"), mounts);
    tree_free(&t);
}

/* ------------------------------------------------------------------------------------------ */
/* Rootless, as nobody */

struct child_result {
    int rc, status;
    char err[512];
    char out[2048];
};

/*
 * Runs j as nobody in a child process with rootless set, after giving
 * /etc/subuid and /etc/subgid the content subid: an overlay over /etc in a
 * mount namespace of the child's own. Returns false (with why) when the
 * setup cannot be done here.
 */
static bool run_as_nobody(struct job *j, struct tree *t, const char *subid, struct child_result *cr,
                          const char **why)
{
    char etc_up[256], etc_work[256], opts[600];
    int p[2];
    snprintf(etc_up, sizeof(etc_up), "%s/etc-up", t->base);
    snprintf(etc_work, sizeof(etc_work), "%s/etc-work", t->base);
    if (mkdir(etc_up, 0755) != 0 || mkdir(etc_work, 0755) != 0 ||
        chown(t->upper, NOBODY, NOBODY) != 0 || chown(t->work, NOBODY, NOBODY) != 0 ||
        pipe2(p, O_CLOEXEC) != 0) {
        *why = "cannot prepare the rootless test";
        return false;
    }
    snprintf(opts, sizeof(opts), "lowerdir=/etc,upperdir=%s,workdir=%s", etc_up, etc_work);
    memset(cr, 0, sizeof(*cr));
    pid_t pid = fork();
    if (pid == 0) {
        int out = open(t->out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("overlay", "/etc", "overlay", 0, opts) != 0 ||
            !write_file("/etc/subuid", subid, strlen(subid), 0644) ||
            !write_file("/etc/subgid", subid, strlen(subid), 0644) ||
            fchown(out, NOBODY, NOBODY) != 0 || setgroups(0, NULL) != 0 ||
            setresgid(NOBODY, NOBODY, NOBODY) != 0 || setresuid(NOBODY, NOBODY, NOBODY) != 0) {
            cr->rc = -errno;
            snprintf(cr->err, sizeof(cr->err), "setup: %s", strerror(errno));
        } else {
            struct engine_sandbox_result res;
            j->s.rootless = true;
            j->s.out_fd = out;
            cr->rc = engine_sandbox_run(&j->s, &res, cr->err, sizeof(cr->err));
            cr->status = res.status;
            engine_sandbox_result_free(&res);
        }
        (void)!write(p[1], cr, sizeof(*cr));
        _exit(0);
    }
    close(p[1]);
    bool ok = read(p[0], cr, sizeof(*cr)) == (ssize_t)sizeof(*cr);
    close(p[0]);
    waitpid(pid, NULL, 0);
    read_file(t->out, cr->out, sizeof(cr->out));
    if (!ok) {
        *why = "the rootless test's child died";
        return false;
    }
    return true;
}

static const char *rootless_unmet(void)
{
    if (access("/usr/bin/newuidmap", X_OK) != 0 || access("/usr/bin/newgidmap", X_OK) != 0)
        return "no newuidmap/newgidmap (Debian package uidmap)";
    if (getpwnam("nobody") == NULL)
        return "no user nobody";
    return NULL;
}

TEST(rootless_as_nobody)
{
    struct tree t;
    struct job j;
    struct child_result cr;
    const char *why = rootless_unmet();
    char p[512];
    struct stat st;
    if (why != NULL)
        SKIP(why);
    SETUP(&t);
    job_init(&j, &t,
             "id -u; cat /proc/self/uid_map | tr -s ' ' | tr '\\n' ';'; echo; echo $$; "
             "echo x > /rootless; cat /proc/net/dev | grep -c :; grep CapBnd /proc/self/status");
    j.s.network_none = true;
    char before[4096], after[4096];
    read_file("/etc/subuid", before, sizeof(before));
    if (!run_as_nobody(&j, &t, "nobody:200000:65536\n", &cr, &why)) {
        tree_free(&t);
        SKIP(why);
    }
    if (cr.rc != 0)
        fprintf(stderr, "  rootless: %d %s\n", cr.rc, cr.err);
    CHECK_INT(cr.rc, 0);
    CHECK_INT(cr.status, 0);
    /* Root inside is nobody outside; 1.. are the subordinate range. */
    CHECK(strncmp(cr.out, "0\n", 2) == 0);
    CHECK(strstr(cr.out, " 0 65534 1; 1 200000 65536;") != NULL);
    CHECK(strstr(cr.out, "\n1\n1\n") != NULL);
    char bnd[32];
    snprintf(bnd, sizeof(bnd), "CapBnd:\t%016llx", expected_caps());
    CHECK(strstr(cr.out, bnd) != NULL);
    if (cr.rc == 0 && strstr(cr.out, bnd) == NULL)
        fprintf(stderr, "  output: %s\n", cr.out);
    snprintf(p, sizeof(p), "%s/rootless", t.upper);
    CHECK(stat(p, &st) == 0 && st.st_uid == NOBODY);
    /* The host's /etc/subuid is what it was. */
    CHECK_STR(read_file("/etc/subuid", after, sizeof(after)), before);
    tree_free(&t);
}

TEST(rootless_missing_subuid)
{
    struct tree t;
    struct job j;
    struct child_result cr;
    const char *why = rootless_unmet();
    if (why != NULL)
        SKIP(why);
    SETUP(&t);
    job_init(&j, &t, "true");
    if (!run_as_nobody(&j, &t, "someone:200000:65536\n", &cr, &why)) {
        tree_free(&t);
        SKIP(why);
    }
    CHECK_INT(cr.rc, OCISYNC_ENOTFOUND);
    CHECK_STR(cr.err, "sandbox: rootless needs a range for user nobody (uid 65534) in /etc/subuid: "
                      "none there");
    tree_free(&t);
}

/* ------------------------------------------------------------------------------------------ */
/* qemu */

/*
 * A static aarch64 executable: write(1, "hello from aarch64\n", 19);
 * exit(42). Loaded at 0x400000, code right after the one program header.
 */
static bool write_aarch64_hello(const char *path)
{
    static const uint32_t code[] = {
        0xd2800020, /* movz x0, #1 */
        0x100000e1, /* adr x1, msg (+28) */
        0xd2800262, /* movz x2, #19 */
        0xd2800808, /* movz x8, #64 (write) */
        0xd4000001, /* svc #0 */
        0xd2800540, /* movz x0, #42 */
        0xd2800ba8, /* movz x8, #93 (exit) */
        0xd4000001, /* svc #0 */
    };
    static const char msg[] = "hello from aarch64\n";
    unsigned char buf[512];
    Elf64_Ehdr eh;
    Elf64_Phdr ph;
    size_t off = sizeof(eh) + sizeof(ph), total = off + sizeof(code) + sizeof(msg) - 1;
    memset(&eh, 0, sizeof(eh));
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_AARCH64;
    eh.e_version = EV_CURRENT;
    eh.e_entry = 0x400000 + off;
    eh.e_phoff = sizeof(eh);
    eh.e_ehsize = sizeof(eh);
    eh.e_phentsize = sizeof(ph);
    eh.e_phnum = 1;
    memset(&ph, 0, sizeof(ph));
    ph.p_type = PT_LOAD;
    ph.p_flags = PF_R | PF_X;
    ph.p_vaddr = ph.p_paddr = 0x400000;
    ph.p_filesz = ph.p_memsz = total;
    ph.p_align = 0x1000;
    memcpy(buf, &eh, sizeof(eh));
    memcpy(buf + sizeof(eh), &ph, sizeof(ph));
    memcpy(buf + off, code, sizeof(code));
    memcpy(buf + off + sizeof(code), msg, sizeof(msg) - 1);
    return write_file(path, buf, total, 0755);
}

static const char *qemu_unmet(void)
{
    if (access(QEMU_AARCH64, X_OK) != 0)
        return "no " QEMU_AARCH64 " (Debian package qemu-user-static)";
    return NULL;
}

/* Whether the host itself runs aarch64 programs (its own binfmt_misc entry, or the CPU). */
static bool host_runs_aarch64(void)
{
#if defined(__aarch64__)
    return true;
#else
    return access("/proc/sys/fs/binfmt_misc/qemu-aarch64", F_OK) == 0;
#endif
}

TEST(qemu_aarch64)
{
    struct tree t;
    struct job j;
    char p[512];
    const char *why = qemu_unmet();
    if (why != NULL)
        SKIP(why);
    SETUP(&t);
    snprintf(p, sizeof(p), "%s/bin/hello-arm64", t.lower);
    CHECK(write_aarch64_hello(p));
    bool host_had = host_runs_aarch64();

    job_init(&j, &t, "/bin/hello-arm64; echo status $?; id -u");
    j.s.qemu = QEMU_AARCH64;
    j.s.qemu_arch = "arm64";
    CHECK_INT(job_run(&j, &t), 0);
    CHECK_STR(j.out, "hello from aarch64\nstatus 42\n0\n");
    engine_sandbox_result_free(&j.res);

    /* The registration was the sandbox's own: the host's binfmt_misc has no new entry... */
    CHECK(host_runs_aarch64() == host_had);
    /* ...and without qemu, the same program does not run (unless the host runs it anyway). */
    if (!host_had) {
        job_init(&j, &t, "true");
        j.argv[0] = "/bin/hello-arm64";
        j.argv[1] = NULL;
        CHECK_INT(job_run(&j, &t), -ENOEXEC);
        CHECK(strstr(j.err, "/bin/hello-arm64") != NULL);
    }
    job_init(&j, &t, "true");
    j.s.qemu = QEMU_AARCH64;
    j.s.qemu_arch = "mips";
    CHECK_INT(job_run(&j, &t), OCISYNC_EUSAGE);
    CHECK(strstr(j.err, "mips") != NULL);
    tree_free(&t);
}

TEST(qemu_aarch64_rootless)
{
    struct tree t;
    struct job j;
    struct child_result cr;
    char p[512];
    const char *why = qemu_unmet();
    if (why == NULL)
        why = rootless_unmet();
    if (why != NULL)
        SKIP(why);
    SETUP(&t);
    snprintf(p, sizeof(p), "%s/bin/hello-arm64", t.lower);
    CHECK(write_aarch64_hello(p));
    job_init(&j, &t, "/bin/hello-arm64; echo status $?");
    j.s.qemu = QEMU_AARCH64;
    j.s.qemu_arch = "arm64";
    if (!run_as_nobody(&j, &t, "nobody:200000:65536\n", &cr, &why)) {
        tree_free(&t);
        SKIP(why);
    }
    if (cr.rc != 0)
        fprintf(stderr, "  rootless qemu: %d %s\n", cr.rc, cr.err);
    CHECK_INT(cr.rc, 0);
    CHECK_STR(cr.out, "hello from aarch64\nstatus 42\n");
    tree_free(&t);
}

TEST_MAIN(T(exit_code_and_output), T(writes_land_in_upper), T(pid_namespace),
          T(cannot_write_outside_root), T(network), T(hostname), T(user_and_cwd),
          T(capabilities_and_no_new_privs), T(dev), T(secret_binds_resolv_hosts),
          T(missing_mount_points_are_reported), T(rootfs_without_overlay),
          T(errors_name_what_was_given), T(timeout_kills_everything), T(nothing_left_behind),
          T(rootless_as_nobody), T(rootless_missing_subuid), T(qemu_aarch64),
          T(qemu_aarch64_rootless))
