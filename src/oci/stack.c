/*
 * The image stack: an index of a stage's filesystem built from the headers
 * of its layers, and the extraction of one subtree.
 *
 * The index is a tree of nodes (each directory's children in a doubly linked
 * list, for removing a subtree in time proportional to its size) and a hash
 * map from normalised path to node, keyed with SipHash and a random key so
 * that a hostile layer cannot pick colliding names. A layer is read whole
 * first (headers only, into a list of pending entries), its diff_id checked,
 * and only then applied: its whiteouts first, against what the layers below
 * left, then its entries in archive order. Every change to the index is
 * journalled while the layer is applied, and undone if an entry is refused,
 * so a failed add leaves the stack as it was; nodes a layer removes are
 * freed only when it is committed.
 *
 * Each node remembers the entry that made it (layer and ordinal), and a file
 * or a hardlink the entry whose content it has. Extraction therefore writes
 * only the final version of each path: directories and symbolic links come
 * from the index, and the layers that hold content are read again, bottom
 * first, each file written when its entry comes by. Nothing written is ever
 * removed again, and every path is created below a directory descriptor,
 * opened component by component with O_NOFOLLOW.
 */
#include "oci/stack.h"

#include "common/msg.h"
#include "common/sysio.h"
#include "oci/unpack.h"
#include "ocisync.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

/* Bytes read from a blob file or a plan's stream at a time. */
#define BUF (256 * 1024)
/* The layer of the root and of implied directories. */
#define NO_LAYER UINT32_MAX
/* Symbolic links one resolution follows at most, as Linux does. */
#define MAX_LINKS 40
/* How many characters of a name a message quotes. */
#define QUOTE_MAX 200
/* A layer as messages name it: "layer N (PATH)". */
#define WHAT_MAX (QUOTE_MAX + 64)
#define MSG_MAX 1024

/* What a directory entry over a directory changes: its attributes, not its contents. */
struct attrs {
    uint32_t mode, uid, gid;
    int64_t mtime;
    uint32_t layer, ord;
};

struct node {
    struct oci_stack_node pub;                 /* first: what oci_stack_lookup returns */
    struct node *parent, *child, *next, *prev; /* a directory's children, in no order */
    struct node *hnext;                        /* the next node in its hash bucket */
    uint64_t hash;
    uint32_t layer, ord;   /* the entry that made it; NO_LAYER for the root and implied dirs */
    uint32_t dlayer, dord; /* '0' and '1': the file entry whose content it has */
    uint64_t dsize;        /* and that entry's size */
    uint32_t plen;
    char path[]; /* normalised ("" for the root), then NUL, the linkname and NUL; owned */
};

enum { J_INSERT, J_DETACH, J_ATTRS };

/* One change to the index while a layer is applied, to undo it if the layer is refused. */
struct jent {
    int kind;
    struct node *n;
    struct node *parent; /* J_DETACH: where n was */
    struct attrs old;    /* J_ATTRS */
};

struct layer {
    char *path;                      /* a blob file; owned; NULL for a plan */
    const struct oci_tar_plan *plan; /* borrowed */
    struct oci_digest digest;        /* what its tar hashed to when it was added */
};

struct oci_stack {
    struct node **buckets; /* owned */
    size_t mask;           /* buckets - 1, a power of two minus one */
    size_t n_nodes;        /* in the index, the root included */
    uint64_t name_bytes;   /* paths and link targets of the nodes in the index */
    uint64_t k0, k1;       /* the SipHash key */
    struct node *root;
    struct layer layers[OCI_STACK_MAX_LAYERS];
    size_t n_layers;
    struct jent *j; /* the journal of the layer being applied; owned */
    size_t jn, jcap;
};

/* ---------------------------------------------------------------------------------------------
 * Paths and messages
 */

/*
 * The normal form of a path: no leading "/", no empty or "." components.
 * 0; UV_EINVAL for a ".." component; OCISYNC_ETOOBIG past OCI_TAR_PATH_MAX.
 */
static int normalise(const char *in, char *out, size_t *len)
{
    size_t n = 0;

    while (*in != '\0') {
        size_t c;

        while (*in == '/')
            in++;
        c = strcspn(in, "/");
        if (c == 0 || (c == 1 && in[0] == '.')) {
            in += c;
            continue;
        }
        if (c == 2 && in[0] == '.' && in[1] == '.')
            return UV_EINVAL;
        if (n + (n > 0) + c > OCI_TAR_PATH_MAX)
            return OCISYNC_ETOOBIG;
        if (n > 0)
            out[n++] = '/';
        memcpy(out + n, in, c);
        n += c;
        in += c;
    }
    out[n] = '\0';
    *len = n;
    return 0;
}

static const char *kind_of(char type)
{
    switch (type) {
    case '0':
        return "file";
    case '1':
        return "hardlink";
    case '2':
        return "symbolic link";
    case '3':
        return "character device";
    case '4':
        return "block device";
    case '5':
        return "directory";
    case '6':
        return "fifo";
    default:
        return "entry";
    }
}

static void layer_what(const struct layer *l, size_t i, char *out, size_t len)
{
    struct ocisync__clipped c;

    if (l->path != NULL)
        snprintf(out, len, "layer %zu (%s)", i + 1, ocisync__clip(l->path, QUOTE_MAX, &c));
    else
        snprintf(out, len, "layer %zu (a tar plan)", i + 1);
}

/*
 * Puts into err the message of a failure reading the layer what: msg (a
 * callback's own, else what err already says, else the code's), starting
 * with the layer's name.
 */
static void explain(char *err, size_t errlen, const char *what, const char *msg, int rc)
{
    char tmp[MSG_MAX];

    snprintf(tmp, sizeof(tmp), "%s",
             msg[0] != '\0'   ? msg
             : err[0] != '\0' ? err
                              : ocisync_strerror(rc));
    if (strncmp(tmp, what, strlen(what)) == 0)
        snprintf(err, errlen, "%s", tmp);
    else
        ocisync__errf(err, errlen, "%s: %s", what, tmp);
}

/* ---------------------------------------------------------------------------------------------
 * The hash map
 */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

/* SipHash-1-3 of p, as Redis hashes its dictionaries' keys. */
static uint64_t siphash(const struct oci_stack *s, const char *p, size_t n)
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ s->k0, v1 = 0x646f72616e646f6dULL ^ s->k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ s->k0, v3 = 0x7465646279746573ULL ^ s->k1;
    uint64_t b = (uint64_t)n << 56, m;
    const unsigned char *in = (const unsigned char *)p;
    size_t i, left = n & 7;

    for (i = 0; i + 8 <= n; i += 8) {
        m = 0;
        for (int k = 7; k >= 0; k--)
            m = (m << 8) | in[i + (size_t)k];
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t k = 0; k < left; k++)
        b |= (uint64_t)in[i + k] << (8 * k);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static struct node *find(const struct oci_stack *s, const char *path, size_t len)
{
    uint64_t h = siphash(s, path, len);

    for (struct node *n = s->buckets[h & s->mask]; n != NULL; n = n->hnext)
        if (n->hash == h && n->plen == len && memcmp(n->path, path, len) == 0)
            return n;
    return NULL;
}

static void hash_link(struct oci_stack *s, struct node *n)
{
    struct node **b = &s->buckets[n->hash & s->mask];

    n->hnext = *b;
    *b = n;
}

static void hash_unlink(struct oci_stack *s, struct node *n)
{
    struct node **p = &s->buckets[n->hash & s->mask];

    while (*p != n)
        p = &(*p)->hnext;
    *p = n->hnext;
    n->hnext = NULL;
}

/* Room for one more node at a load of at most one; buckets never shrink, so undoing needs none. */
static int reserve(struct oci_stack *s)
{
    size_t nb = s->mask + 1;
    struct node **old = s->buckets, **b;

    if (s->n_nodes + 1 <= nb)
        return 0;
    b = calloc(nb * 2, sizeof(*b));
    if (b == NULL)
        return UV_ENOMEM;
    s->buckets = b;
    s->mask = nb * 2 - 1;
    for (size_t i = 0; i < nb; i++) {
        for (struct node *n = old[i], *nx; n != NULL; n = nx) {
            nx = n->hnext;
            hash_link(s, n);
        }
    }
    free(old);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The tree
 */

static size_t name_bytes(const struct node *n)
{
    return n->plen + strlen(n->pub.linkname) + 2;
}

static struct node *new_node(const struct oci_stack *s, const char *path, size_t plen,
                             const char *link, char type, const struct attrs *a)
{
    size_t llen = strlen(link);
    struct node *n = malloc(sizeof(*n) + plen + llen + 2);

    if (n == NULL)
        return NULL;
    memset(n, 0, sizeof(*n));
    memcpy(n->path, path, plen);
    n->path[plen] = '\0';
    memcpy(n->path + plen + 1, link, llen + 1);
    n->plen = (uint32_t)plen;
    n->hash = siphash(s, path, plen);
    n->pub.type = type;
    n->pub.mode = a->mode & 07777;
    n->pub.uid = a->uid;
    n->pub.gid = a->gid;
    n->pub.mtime = a->mtime;
    n->pub.linkname = n->path + plen + 1;
    n->layer = a->layer;
    n->ord = a->ord;
    n->dlayer = NO_LAYER;
    return n;
}

static void tree_link(struct node *parent, struct node *n)
{
    n->parent = parent;
    n->prev = NULL;
    n->next = parent->child;
    if (parent->child != NULL)
        parent->child->prev = n;
    parent->child = n;
}

static void tree_unlink(struct node *n)
{
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        n->parent->child = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    n->next = n->prev = NULL;
}

/* The node after n in a pre-order walk of top's subtree, or NULL. */
static struct node *walk_next(const struct node *n, const struct node *top)
{
    if (n->child != NULL)
        return n->child;
    while (n != top) {
        if (n->next != NULL)
            return n->next;
        n = n->parent;
    }
    return NULL;
}

/* Frees top and everything below it (top already out of the tree and the map). */
static void free_subtree(struct node *top)
{
    struct node *n = top;

    for (;;) {
        struct node *p, *nx;

        while (n->child != NULL)
            n = n->child;
        if (n == top) {
            free(n);
            return;
        }
        /* n is the first child of its parent, and has none of its own. */
        p = n->parent;
        nx = n->next;
        free(n);
        p->child = nx;
        if (nx != NULL)
            nx->prev = NULL;
        n = nx != NULL ? nx : p;
    }
}

/* Adds or removes the nodes of top's subtree to or from the map and the counts. */
static void hash_subtree(struct oci_stack *s, struct node *top, bool add)
{
    for (struct node *n = top; n != NULL; n = walk_next(n, top)) {
        if (add) {
            hash_link(s, n);
            s->n_nodes++;
            s->name_bytes += name_bytes(n);
        } else {
            hash_unlink(s, n);
            s->n_nodes--;
            s->name_bytes -= name_bytes(n);
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Journalled changes
 */

static int journal(struct oci_stack *s, int kind, struct node *n)
{
    struct jent *e;

    if (s->jn == s->jcap) {
        size_t ncap = s->jcap ? s->jcap * 2 : 1024;
        struct jent *j = realloc(s->j, ncap * sizeof(*j));
        if (j == NULL)
            return UV_ENOMEM;
        s->j = j;
        s->jcap = ncap;
    }
    e = &s->j[s->jn++];
    e->kind = kind;
    e->n = n;
    e->parent = n->parent;
    e->old = (struct attrs){n->pub.mode, n->pub.uid, n->pub.gid, n->pub.mtime, n->layer, n->ord};
    return 0;
}

/* Puts n (new, owned by the caller until this succeeds) into the index below parent. */
static int insert(struct oci_stack *s, struct node *parent, struct node *n)
{
    int rc;

    if (s->n_nodes >= OCI_STACK_MAX_ENTRIES ||
        s->name_bytes + name_bytes(n) > OCI_STACK_MAX_NAME_BYTES)
        return OCISYNC_ETOOBIG;
    rc = reserve(s);
    if (rc == 0)
        rc = journal(s, J_INSERT, n);
    if (rc != 0)
        return rc;
    tree_link(parent, n);
    hash_link(s, n);
    s->n_nodes++;
    s->name_bytes += name_bytes(n);
    return 0;
}

/* Takes n and everything below it out of the index (freed when the layer is committed). */
static int detach(struct oci_stack *s, struct node *n)
{
    int rc = journal(s, J_DETACH, n);

    if (rc != 0)
        return rc;
    tree_unlink(n);
    hash_subtree(s, n, false);
    return 0;
}

static int set_attrs(struct oci_stack *s, struct node *n, const struct attrs *a)
{
    int rc = journal(s, J_ATTRS, n);

    if (rc != 0)
        return rc;
    n->pub.mode = a->mode & 07777;
    n->pub.uid = a->uid;
    n->pub.gid = a->gid;
    n->pub.mtime = a->mtime;
    n->layer = a->layer;
    n->ord = a->ord;
    return 0;
}

/* Undoes the journal, newest first: the index is again what it was before the layer. */
static void rollback(struct oci_stack *s)
{
    while (s->jn > 0) {
        struct jent *e = &s->j[--s->jn];
        struct node *n = e->n;

        switch (e->kind) {
        case J_INSERT:
            /* Whatever was put below n since has been undone already. */
            tree_unlink(n);
            hash_unlink(s, n);
            s->n_nodes--;
            s->name_bytes -= name_bytes(n);
            free(n);
            break;
        case J_DETACH:
            tree_link(e->parent, n);
            hash_subtree(s, n, true);
            break;
        case J_ATTRS:
            n->pub.mode = e->old.mode;
            n->pub.uid = e->old.uid;
            n->pub.gid = e->old.gid;
            n->pub.mtime = e->old.mtime;
            n->layer = e->old.layer;
            n->ord = e->old.ord;
            break;
        }
    }
}

static void commit(struct oci_stack *s)
{
    for (size_t i = 0; i < s->jn; i++)
        if (s->j[i].kind == J_DETACH)
            free_subtree(s->j[i].n);
    s->jn = 0;
}

/* ---------------------------------------------------------------------------------------------
 * The stack
 */

int oci_stack_new(struct oci_stack **out)
{
    struct oci_stack *s = calloc(1, sizeof(*s));
    struct attrs root = {0755, 0, 0, 0, NO_LAYER, 0};
    uint64_t key[2];

    *out = NULL;
    if (s == NULL)
        return UV_ENOMEM;
    if (getrandom(key, sizeof(key), GRND_NONBLOCK) != (ssize_t)sizeof(key)) {
        /* Without entropy the map still works; it is only easier to flood. */
        key[0] = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)s;
        key[1] = (uint64_t)clock() ^ ((uint64_t)getpid() << 32);
    }
    s->k0 = key[0];
    s->k1 = key[1];
    s->mask = 1023;
    s->buckets = calloc(s->mask + 1, sizeof(*s->buckets));
    s->root = new_node(s, "", 0, "", '5', &root);
    if (s->buckets == NULL || s->root == NULL) {
        free(s->buckets);
        free(s->root);
        free(s);
        return UV_ENOMEM;
    }
    hash_link(s, s->root);
    s->n_nodes = 1;
    s->name_bytes = name_bytes(s->root);
    *out = s;
    return 0;
}

void oci_stack_free(struct oci_stack *s)
{
    if (s == NULL)
        return;
    rollback(s);
    free_subtree(s->root);
    for (size_t i = 0; i < s->n_layers; i++)
        free(s->layers[i].path);
    free(s->buckets);
    free(s->j);
    free(s);
}

/* ---------------------------------------------------------------------------------------------
 * Reading a layer's tar
 */

static int to_reader(void *arg, const void *p, size_t n, char *err, size_t errlen)
{
    return oci_tar_reader_feed(arg, p, n, err, errlen);
}

static ssize_t read_some(int fd, void *buf, size_t len)
{
    ssize_t n;

    while ((n = read(fd, buf, len)) < 0 && errno == EINTR)
        ;
    return n;
}

/*
 * Reads the tar of layer l from its start into r: a blob file decompressed
 * (gzip, zstd or plain by its first bytes, within the cap; checked against
 * diff_id unless NULL), a plan streamed. *d receives what the tar hashes to.
 */
static int read_tar(const struct layer *l, const char *what, struct oci_tar_reader *r,
                    const struct oci_digest *diff_id, struct oci_digest *d, char *err,
                    size_t errlen)
{
    unsigned char *buf = malloc(BUF);
    int rc = 0;

    if (buf == NULL)
        return UV_ENOMEM;
    if (l->path != NULL) {
        unsigned char head[4] = {0};
        struct oci_unpack u;
        struct stat st;
        int fd = open(l->path, O_RDONLY | O_CLOEXEC);

        memset(&u, 0, sizeof(u));
        if (fd < 0 || fstat(fd, &st) != 0 || pread(fd, head, sizeof(head), 0) < 0) {
            rc = ocisync__sys_error();
            ocisync__errf(err, errlen, "%s: cannot read it: %s", what, uv_strerror(rc));
        } else {
            rc = oci_unpack_init(&u, oci_comp_of_head(head), (uint64_t)st.st_size, to_reader, r,
                                 what);
        }
        while (rc == 0) {
            ssize_t n = read_some(fd, buf, BUF);
            if (n == 0)
                break;
            if (n < 0) {
                rc = ocisync__sys_error();
                ocisync__errf(err, errlen, "%s: cannot read it: %s", what, uv_strerror(rc));
                break;
            }
            rc = oci_unpack_feed(&u, buf, (size_t)n, err, errlen);
        }
        if (rc == 0)
            rc = oci_unpack_finish(&u, diff_id, err, errlen);
        if (rc == 0)
            *d = u.digest;
        oci_unpack_dispose(&u);
        if (fd >= 0)
            close(fd);
    } else {
        struct oci_tar_stream ts;
        struct oci_hasher h;
        size_t n;

        memset(&h, 0, sizeof(h));
        rc = oci_tar_stream_init(&ts, l->plan);
        if (rc == 0)
            rc = oci_hasher_init(&h, OCI_DIGEST_SHA256);
        while (rc == 0) {
            rc = oci_tar_stream_read(&ts, buf, BUF, &n, err, errlen);
            if (rc != 0 || n == 0)
                break;
            oci_hasher_update(&h, buf, n);
            rc = oci_tar_reader_feed(r, buf, n, err, errlen);
        }
        if (rc == 0)
            rc = oci_hasher_final(&h, d);
        oci_hasher_dispose(&h);
        oci_tar_stream_dispose(&ts);
    }
    if (rc == 0)
        rc = oci_tar_reader_finish(r, err, errlen);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Adding a layer
 */

/* An entry of the layer being added, held until the whole layer has been read. */
struct pending {
    char type;    /* after whiteouts are told apart: '0'...'6' */
    char wh;      /* 'w' a whiteout of path, 'o' an opaque whiteout of the directory path, or 0 */
    uint32_t ord; /* its place in the archive, counting every entry from 0 */
    uint32_t mode, uid, gid;
    int64_t mtime;
    uint64_t size;
    size_t path, link; /* offsets into the names */
    size_t plen;
};

struct adding {
    struct oci_stack *s;
    struct pending *v; /* owned */
    size_t n, cap;
    char *names; /* paths and link targets, NUL-terminated; owned */
    size_t names_len, names_cap;
    uint32_t ord;      /* entries seen */
    char msg[MSG_MAX]; /* why on_add refused an entry */
};

static int add_name(struct adding *a, const char *p, size_t len, size_t *off)
{
    if (a->s->name_bytes + a->names_len + len + 1 > OCI_STACK_MAX_NAME_BYTES)
        return OCISYNC_ETOOBIG;
    if (a->names_len + len + 1 > a->names_cap) {
        size_t ncap = a->names_cap ? a->names_cap : 65536;
        char *nn;

        while (ncap < a->names_len + len + 1)
            ncap *= 2;
        nn = realloc(a->names, ncap);
        if (nn == NULL)
            return UV_ENOMEM;
        a->names = nn;
        a->names_cap = ncap;
    }
    memcpy(a->names + a->names_len, p, len);
    a->names[a->names_len + len] = '\0';
    *off = a->names_len;
    a->names_len += len + 1;
    return 0;
}

/* Why an entry is refused, naming it. */
static int refuse(struct adding *a, int rc, const char *path, const char *why)
{
    struct ocisync__clipped c;

    ocisync__errf(a->msg, sizeof(a->msg), "entry \"%s\" %s", ocisync__clip(path, QUOTE_MAX, &c),
                  why);
    return rc;
}

static int on_add(void *arg, const struct oci_tar_entry *e)
{
    struct adding *a = arg;
    char path[OCI_TAR_PATH_MAX + 1], link[OCI_TAR_PATH_MAX + 1];
    struct pending p;
    size_t plen, llen = 0;
    const char *base;
    int rc;

    memset(&p, 0, sizeof(p));
    p.ord = a->ord++;
    if (p.ord >= OCI_STACK_MAX_ENTRIES)
        return refuse(a, OCISYNC_ETOOBIG, e->path, "is one too many for a layer");
    rc = normalise(e->path, path, &plen);
    if (rc != 0)
        return refuse(a, rc, e->path,
                      rc == UV_EINVAL ? "has a \"..\" component" : "has too long a path");
    link[0] = '\0';
    base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    /*
     * A name that starts with ".wh." cannot exist, so nothing can be below
     * one; aufs kept its own files below ".wh..wh." directories, skipped.
     */
    for (const char *c = path; c < base; c += strcspn(c, "/") + 1) {
        if (strncmp(c, ".wh..wh.", 8) == 0)
            return 0;
        if (strncmp(c, ".wh.", 4) == 0)
            return refuse(a, UV_EINVAL, e->path, "is below a whiteout");
    }
    if (strncmp(base, ".wh.", 4) == 0) {
        size_t dlen = (size_t)(base - path);

        if (strcmp(base, ".wh..wh..opq") == 0) {
            p.wh = 'o';
            plen = dlen > 0 ? dlen - 1 : 0;
        } else if (strncmp(base, ".wh..wh.", 8) == 0) {
            return 0; /* aufs's own bookkeeping (.wh..wh.plnk and such): nothing in the image */
        } else if (base[4] == '\0' || strcmp(base + 4, ".") == 0 || strcmp(base + 4, "..") == 0) {
            return refuse(a, UV_EINVAL, e->path, "is a whiteout of nothing");
        } else {
            p.wh = 'w';
            memmove(path + dlen, base + 4, strlen(base + 4) + 1);
            plen -= 4;
        }
        path[plen] = '\0';
    } else {
        switch (e->type) {
        case '0':
        case '7':
            p.type = '0';
            p.size = e->size;
            break;
        case '1':
            rc = normalise(e->linkname, link, &llen);
            if (rc != 0 || llen == 0)
                return refuse(a, rc != 0 ? rc : UV_EINVAL, e->path,
                              rc == OCISYNC_ETOOBIG
                                  ? "links to too long a path"
                                  : "is a hardlink to a path out of the image, or to its root");
            p.type = '1';
            break;
        case '2':
            if (e->linkname[0] == '\0')
                return refuse(a, UV_EINVAL, e->path, "is a symbolic link to nothing");
            llen = strlen(e->linkname);
            memcpy(link, e->linkname, llen + 1);
            p.type = '2';
            break;
        case '3':
        case '4':
        case '5':
        case '6':
            p.type = e->type;
            break;
        default: {
            char why[64];

            snprintf(why, sizeof(why), "has tar type '%c', which no image layer holds", e->type);
            return refuse(a, UV_EINVAL, e->path, why);
        }
        }
        if (plen == 0 && p.type != '5')
            return refuse(a, UV_EINVAL, e->path, "is the root, as something else than a directory");
    }
    p.mode = e->mode & 07777;
    p.uid = e->uid;
    p.gid = e->gid;
    p.mtime = e->mtime;
    p.plen = plen;
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 1024;
        struct pending *v = realloc(a->v, ncap * sizeof(*v));
        if (v == NULL)
            return UV_ENOMEM;
        a->v = v;
        a->cap = ncap;
    }
    rc = add_name(a, path, plen, &p.path);
    if (rc == 0)
        rc = add_name(a, link, llen, &p.link);
    if (rc != 0)
        return refuse(a, rc, e->path,
                      rc == OCISYNC_ETOOBIG ? "takes the names of the image over their cap"
                                            : "cannot be held: out of memory");
    a->v[a->n++] = p;
    return 0;
}

/*
 * The directory that holds path (plen bytes): found, or made with the
 * missing ones above it; refused when what is there is not a directory.
 */
static int parent_dir(struct oci_stack *s, const char *path, size_t plen, struct node **out,
                      const char *what, char *err, size_t errlen)
{
    struct attrs implied = {0755, 0, 0, 0, NO_LAYER, 0};
    struct ocisync__clipped c, c2;
    size_t len = plen, have;
    struct node *d;
    int rc;

    while (len > 0 && path[len - 1] != '/')
        len--;
    if (len == 0) {
        *out = s->root;
        return 0;
    }
    len--; /* the parent, without its "/" */
    have = len;
    while ((d = find(s, path, have)) == NULL) {
        while (have > 0 && path[have - 1] != '/')
            have--;
        if (have == 0) {
            d = s->root;
            break;
        }
        have--;
    }
    if (d->pub.type != '5') {
        char parent[OCI_TAR_PATH_MAX + 1];

        memcpy(parent, path, have);
        parent[have] = '\0';
        ocisync__errf(err, errlen,
                      "%s: entry \"%s\" is below \"%s\", which is a %s, not a directory", what,
                      ocisync__clip(path, QUOTE_MAX, &c), ocisync__clip(parent, QUOTE_MAX, &c2),
                      kind_of(d->pub.type));
        return UV_EINVAL;
    }
    /* Layers may leave parent directories out: made as tar, docker and containerd make them. */
    while (have < len) {
        size_t start = have == 0 ? 0 : have + 1, end = start;
        struct node *n;

        while (end < len && path[end] != '/')
            end++;
        n = new_node(s, path, end, "", '5', &implied);
        rc = n != NULL ? insert(s, d, n) : UV_ENOMEM;
        if (rc != 0) {
            free(n);
            ocisync__errf(
                err, errlen, "%s: entry \"%s\": %s", what, ocisync__clip(path, QUOTE_MAX, &c),
                rc == OCISYNC_ETOOBIG ? "the image has too many paths" : ocisync_strerror(rc));
            return rc;
        }
        d = n;
        have = end;
    }
    *out = d;
    return 0;
}

/* Applies one entry (not a whiteout) of layer to the index. */
static int put(struct oci_stack *s, const struct pending *p, const char *path, const char *link,
               uint32_t layer, const char *what, char *err, size_t errlen)
{
    struct attrs a = {p->mode, p->uid, p->gid, p->mtime, layer, p->ord};
    struct ocisync__clipped c, c2;
    struct node *parent, *old, *n;
    const char *lk = "";
    char type = p->type;
    uint32_t dlayer = NO_LAYER, dord = 0;
    uint64_t dsize = 0;
    int rc;

    if (p->plen == 0)
        return set_attrs(s, s->root, &a);
    rc = parent_dir(s, path, p->plen, &parent, what, err, errlen);
    if (rc != 0)
        return rc;
    old = find(s, path, p->plen);
    if (old != NULL && old->pub.type == '5' && type == '5')
        return set_attrs(s, old, &a);
    if (type == '0') {
        dlayer = layer;
        dord = p->ord;
        dsize = p->size;
    } else if (type == '2') {
        lk = link;
    } else if (type == '1') {
        struct node *t = find(s, link, strlen(link));

        if (t == NULL || t == old || t->pub.type == '5') {
            ocisync__errf(err, errlen, "%s: entry \"%s\" is a hardlink to \"%s\", which %s", what,
                          ocisync__clip(path, QUOTE_MAX, &c), ocisync__clip(link, QUOTE_MAX, &c2),
                          t == NULL  ? "is not in the image"
                          : t == old ? "is the hardlink itself"
                                     : "is a directory");
            return UV_EINVAL;
        }
        if (t->pub.type == '0' || t->pub.type == '1') {
            lk = link;
            dlayer = t->dlayer;
            dord = t->dord;
            dsize = t->dsize;
        } else {
            /* A link to a symbolic link, device or fifo is one, as the file system shows it. */
            type = t->pub.type;
            lk = t->pub.linkname;
            a.mode = t->pub.mode;
            a.uid = t->pub.uid;
            a.gid = t->pub.gid;
            a.mtime = t->pub.mtime;
        }
    }
    n = new_node(s, path, p->plen, lk, type, &a);
    if (n == NULL)
        return UV_ENOMEM;
    n->pub.size = type == '0' ? p->size : 0;
    n->dlayer = dlayer;
    n->dord = dord;
    n->dsize = dsize;
    rc = old != NULL ? detach(s, old) : 0;
    if (rc == 0)
        rc = insert(s, parent, n);
    if (rc != 0) {
        free(n);
        ocisync__errf(err, errlen, "%s: entry \"%s\": %s", what, ocisync__clip(path, QUOTE_MAX, &c),
                      rc == OCISYNC_ETOOBIG ? "the image has too many paths, or too long names"
                                            : ocisync_strerror(rc));
    }
    return rc;
}

/* Applies the layer read into a: its whiteouts against the layers below, then its entries. */
static int apply(struct oci_stack *s, const struct adding *a, uint32_t layer, const char *what,
                 char *err, size_t errlen)
{
    int rc = 0;

    s->jn = 0;
    for (size_t i = 0; i < a->n && rc == 0; i++) {
        const struct pending *p = &a->v[i];
        struct node *n = p->wh ? find(s, a->names + p->path, p->plen) : NULL;

        if (n == NULL)
            continue;
        if (p->wh == 'w') {
            rc = detach(s, n);
        } else if (n->pub.type == '5') {
            while (rc == 0 && n->child != NULL)
                rc = detach(s, n->child);
        }
    }
    for (size_t i = 0; i < a->n && rc == 0; i++) {
        const struct pending *p = &a->v[i];

        if (p->wh == 0)
            rc = put(s, p, a->names + p->path, a->names + p->link, layer, what, err, errlen);
    }
    if (rc != 0) {
        if (err[0] == '\0')
            ocisync__errf(err, errlen, "%s: %s", what, ocisync_strerror(rc));
        rollback(s);
        return rc;
    }
    commit(s);
    return 0;
}

/* Reads the layer l, checks it and applies it; l becomes the stack's next layer. */
static int add_layer(struct oci_stack *s, struct layer *l, const struct oci_digest *diff_id,
                     char *err, size_t errlen)
{
    struct adding a;
    struct oci_tar_reader r;
    char what[WHAT_MAX], none[1];
    int rc;

    memset(&a, 0, sizeof(a));
    a.s = s;
    if (err == NULL || errlen == 0) {
        err = none;
        errlen = sizeof(none);
    }
    err[0] = '\0';
    layer_what(l, s->n_layers, what, sizeof(what));
    if (s->n_layers == OCI_STACK_MAX_LAYERS) {
        ocisync__errf(err, errlen, "%s: a stage has at most %d layers", what, OCI_STACK_MAX_LAYERS);
        return OCISYNC_ETOOBIG;
    }
    rc = oci_tar_reader_init(&r, on_add, NULL, &a);
    if (rc == 0) {
        char e2[MSG_MAX] = "";

        rc = read_tar(l, what, &r, diff_id, &l->digest, e2, sizeof(e2));
        if (rc != 0) {
            err[0] = '\0';
            explain(err, errlen, what, a.msg[0] != '\0' ? a.msg : e2, rc);
        }
    }
    oci_tar_reader_dispose(&r);
    if (rc == 0)
        rc = apply(s, &a, (uint32_t)s->n_layers, what, err, errlen);
    if (rc == 0)
        s->layers[s->n_layers++] = *l;
    free(a.v);
    free(a.names);
    return rc;
}

int oci_stack_add_blob(struct oci_stack *s, const char *path, const struct oci_digest *diff_id,
                       char *err, size_t errlen)
{
    struct layer l;
    int rc;

    memset(&l, 0, sizeof(l));
    l.path = strdup(path);
    if (l.path == NULL)
        return UV_ENOMEM;
    rc = add_layer(s, &l, diff_id, err, errlen);
    if (rc != 0)
        free(l.path);
    return rc;
}

int oci_stack_add_plan(struct oci_stack *s, const struct oci_tar_plan *plan, char *err,
                       size_t errlen)
{
    struct layer l;

    memset(&l, 0, sizeof(l));
    l.plan = plan;
    return add_layer(s, &l, NULL, err, errlen);
}

/* ---------------------------------------------------------------------------------------------
 * Looking up and resolving
 */

const struct oci_stack_node *oci_stack_lookup(const struct oci_stack *s, const char *path)
{
    char norm[OCI_TAR_PATH_MAX + 1];
    size_t len;
    const struct node *n;

    if (normalise(path, norm, &len) != 0)
        return NULL;
    n = find(s, norm, len);
    return n != NULL ? &n->pub : NULL;
}

int oci_stack_list(const struct oci_stack *s, const char *dir,
                   int (*cb)(void *arg, const char *name, const struct oci_stack_node *n),
                   void *arg)
{
    char norm[OCI_TAR_PATH_MAX + 1];
    size_t len;
    const struct node *d, *c;
    int rc;

    if (normalise(dir, norm, &len) != 0 || (d = find(s, norm, len)) == NULL || d->pub.type != '5')
        return UV_ENOENT;
    for (c = d->child; c != NULL; c = c->next) {
        const char *name = strrchr(c->path, '/');
        if ((rc = cb(arg, name != NULL ? name + 1 : c->path, &c->pub)) != 0)
            return rc;
    }
    return 0;
}

int oci_resolve_in_root(const char *path, bool follow_last, oci_link_of link_of, void *arg,
                        char *out, size_t outlen)
{
    size_t in = strlen(path), cap = in + MAX_LINKS * (OCI_TAR_PATH_MAX + 2) + 1;
    char *rest, *tmp, cur[OCI_TAR_PATH_MAX + 1];
    size_t pos = 0, clen = 0;
    int links = 0, rc = 0;

    if (in > OCI_TAR_PATH_MAX)
        return OCISYNC_ETOOBIG;
    rest = malloc(cap);
    tmp = malloc(cap);
    if (rest == NULL || tmp == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    memcpy(rest, path, in + 1);
    for (;;) {
        const char *comp;
        size_t n, next, nlen;
        const char *target;
        char tbuf[OCI_TAR_PATH_MAX + 1];
        bool last;

        while (rest[pos] == '/')
            pos++;
        if (rest[pos] == '\0')
            break;
        comp = rest + pos;
        n = strcspn(comp, "/");
        next = pos + n;
        if (n == 1 && comp[0] == '.') {
            pos = next;
            continue;
        }
        if (n == 2 && comp[0] == '.' && comp[1] == '.') {
            while (clen > 0 && cur[clen - 1] != '/')
                clen--;
            if (clen > 0)
                clen--;
            pos = next;
            continue;
        }
        nlen = clen + (clen > 0) + n;
        if (nlen > OCI_TAR_PATH_MAX) {
            rc = OCISYNC_ETOOBIG;
            goto out;
        }
        if (clen > 0)
            cur[clen] = '/';
        memcpy(cur + nlen - n, comp, n);
        /* A trailing "/" asks for a directory: the link is followed then too, as POSIX says. */
        last = rest[next] == '\0';
        target = !last || follow_last ? link_of(arg, cur, nlen, tbuf, sizeof(tbuf)) : NULL;
        if (target != NULL) {
            size_t tl = strlen(target), rl = strlen(rest + next);

            if (++links > MAX_LINKS) {
                rc = UV_ELOOP;
                goto out;
            }
            if (tl + rl + 1 >= cap) {
                rc = OCISYNC_ETOOBIG;
                goto out;
            }
            memcpy(tmp, target, tl);
            memcpy(tmp + tl, rest + next, rl + 1);
            {
                char *sw = rest;
                rest = tmp;
                tmp = sw;
            }
            pos = 0;
            if (target[0] == '/')
                clen = 0;
            continue;
        }
        clen = nlen;
        pos = next;
    }
    if (clen + 1 > outlen) {
        rc = OCISYNC_ETOOBIG;
        goto out;
    }
    memcpy(out, cur, clen);
    out[clen] = '\0';
out:
    free(rest);
    free(tmp);
    return rc;
}

/* The target of the link at the stack's path (len bytes), or NULL when it is not a link. */
static const char *stack_link_of(void *arg, const char *path, size_t len, char *buf, size_t buflen)
{
    const struct node *nd = find(arg, path, len);

    (void)buf;
    (void)buflen;
    return nd != NULL && nd->pub.type == '2' ? nd->pub.linkname : NULL;
}

int oci_stack_resolve(const struct oci_stack *s, const char *path, bool follow_last, char *out,
                      size_t outlen)
{
    return oci_resolve_in_root(path, follow_last, stack_link_of, (void *)s, out, outlen);
}

/* ---------------------------------------------------------------------------------------------
 * Extracting
 */

/* One path to write: a node of the index and where it goes, relative to dir. */
struct item {
    const struct node *n;
    const char *rel;
};

/* A file's content to write: which entry holds it, and the item that wants it. */
struct want {
    uint32_t dlayer, dord;
    uint64_t dsize;
    size_t item;
};

/* The last directory opened below dir, kept for the next path in it. */
struct dircache {
    int fd;
    size_t len;
    char path[OCI_TAR_PATH_MAX + 1];
};

/*
 * Opens the directory path (len bytes, relative to dfd, "" being dfd
 * itself: then a duplicate) one component at a time, never following a
 * link. A new descriptor, or a negative UV_E* code.
 */
static int open_dir(int dfd, const char *path, size_t len)
{
    char buf[OCI_TAR_PATH_MAX + 1];
    int cur = dfd;
    size_t i = 0;

    if (len == 0) {
        int fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
        return fd >= 0 ? fd : ocisync__sys_error();
    }
    memcpy(buf, path, len);
    buf[len] = '\0';
    while (i < len) {
        size_t c = strcspn(buf + i, "/");
        int fd;

        buf[i + c] = '\0';
        fd = openat(cur, buf + i, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cur != dfd)
            close(cur);
        if (fd < 0)
            return ocisync__sys_error();
        cur = fd;
        i += c + 1;
    }
    return cur;
}

/* The directory that holds rel (dfd itself, or one cached in c) and rel's last component. */
static int parent_fd(struct dircache *c, int dfd, const char *rel, const char **leaf)
{
    const char *slash = strrchr(rel, '/');
    size_t len = slash != NULL ? (size_t)(slash - rel) : 0;
    int fd;

    *leaf = slash != NULL ? slash + 1 : rel;
    if (len == 0)
        return dfd;
    if (c->fd >= 0 && c->len == len && memcmp(c->path, rel, len) == 0)
        return c->fd;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    fd = open_dir(dfd, rel, len);
    if (fd < 0)
        return fd;
    c->fd = fd;
    c->len = len;
    memcpy(c->path, rel, len);
    return fd;
}

static void times_of(int64_t mtime, struct timespec ts[2])
{
    ts[0].tv_sec = ts[1].tv_sec = (time_t)mtime;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
}

struct writing {
    int dfd;
    const struct item *items;
    const struct want *w; /* this layer's wants, sorted by ordinal */
    size_t nw, next;      /* how many, and the first not yet met */
    uint32_t ord;         /* entries seen */
    int fd;               /* the file being written, or -1 */
    uint64_t left;        /* its bytes still to come */
    uint32_t mode;
    int64_t mtime;
    size_t g0, g1;         /* the wants [g0, g1) it is for: the first written, the rest linked */
    struct dircache dc[2]; /* the first file's directory, and the links' */
    char msg[MSG_MAX];
};

static int write_failed(struct writing *x, const char *rel, const char *doing, int rc)
{
    struct ocisync__clipped c;

    ocisync__errf(x->msg, sizeof(x->msg), "cannot %s \"%s\" in the destination: %s", doing,
                  ocisync__clip(rel, QUOTE_MAX, &c), uv_strerror(rc));
    return rc;
}

/* The file is complete: its mode (setuid and all, now that nothing writes to it), mtime, links. */
static int finish_file(struct writing *x)
{
    struct timespec ts[2];
    const char *rel0 = x->items[x->w[x->g0].item].rel, *leaf0;
    int rc = 0, pfd0;

    times_of(x->mtime, ts);
    if (fchmod(x->fd, x->mode) != 0 || futimens(x->fd, ts) != 0)
        rc = ocisync__sys_error();
    if (close(x->fd) != 0 && rc == 0)
        rc = ocisync__sys_error();
    x->fd = -1;
    if (rc != 0)
        return write_failed(x, rel0, "write", rc);
    pfd0 = parent_fd(&x->dc[0], x->dfd, rel0, &leaf0);
    if (pfd0 < 0)
        return write_failed(x, rel0, "open the directory of", pfd0);
    for (size_t i = x->g0 + 1; i < x->g1; i++) {
        const char *rel = x->items[x->w[i].item].rel, *leaf;
        int pfd = parent_fd(&x->dc[1], x->dfd, rel, &leaf);

        if (pfd < 0)
            return write_failed(x, rel, "open the directory of", pfd);
        if (linkat(pfd0, leaf0, pfd, leaf, 0) != 0)
            return write_failed(x, rel, "link", ocisync__sys_error());
    }
    return 0;
}

static int on_write_entry(void *arg, const struct oci_tar_entry *e)
{
    struct writing *x = arg;
    uint32_t ord = x->ord++;
    const char *rel, *leaf;
    int pfd;

    if (x->next >= x->nw || x->w[x->next].dord != ord)
        return 0;
    x->g0 = x->next;
    x->g1 = x->g0;
    while (x->g1 < x->nw && x->w[x->g1].dord == ord)
        x->g1++;
    x->next = x->g1;
    if ((e->type != '0' && e->type != '7') || e->size != x->w[x->g0].dsize) {
        struct ocisync__clipped c;

        ocisync__errf(x->msg, sizeof(x->msg),
                      "entry \"%s\" is not the file it was when the layer was added: the layer "
                      "changed since",
                      ocisync__clip(e->path, QUOTE_MAX, &c));
        return OCISYNC_EDIGESTMISMATCH;
    }
    rel = x->items[x->w[x->g0].item].rel;
    pfd = parent_fd(&x->dc[0], x->dfd, rel, &leaf);
    if (pfd < 0)
        return write_failed(x, rel, "open the directory of", pfd);
    x->fd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (x->fd < 0)
        return write_failed(x, rel, "create", ocisync__sys_error());
    x->mode = e->mode & 07777;
    x->mtime = e->mtime;
    x->left = e->size;
    return x->left == 0 ? finish_file(x) : 0;
}

static int on_write_data(void *arg, const void *p, size_t n)
{
    struct writing *x = arg;
    int rc;

    if (x->fd < 0)
        return 0;
    rc = ocisync__write_full(x->fd, p, n);
    if (rc != 0)
        return write_failed(x, x->items[x->w[x->g0].item].rel, "write", rc);
    x->left -= n;
    return x->left == 0 ? finish_file(x) : 0;
}

/* Reads layer li again and writes the contents its wants ask for. */
static int write_layer(const struct oci_stack *s, size_t li, int dfd, const struct item *items,
                       const struct want *w, size_t nw, char *err, size_t errlen)
{
    const struct layer *l = &s->layers[li];
    struct oci_tar_reader r;
    struct writing x;
    struct oci_digest got;
    char what[WHAT_MAX], e2[MSG_MAX] = "";
    int rc;

    memset(&x, 0, sizeof(x));
    x.dfd = dfd;
    x.items = items;
    x.w = w;
    x.nw = nw;
    x.fd = x.dc[0].fd = x.dc[1].fd = -1;
    layer_what(l, li, what, sizeof(what));
    rc = oci_tar_reader_init(&r, on_write_entry, on_write_data, &x);
    if (rc == 0)
        rc = read_tar(l, what, &r, NULL, &got, e2, sizeof(e2));
    if (rc == 0 && !oci_digest_equal(&got, &l->digest)) {
        ocisync__errf(x.msg, sizeof(x.msg),
                      "changed since it was added: its tar hashes to %s, not %s", got.str,
                      l->digest.str);
        rc = OCISYNC_EDIGESTMISMATCH;
    }
    if (rc == 0 && x.next < nw) {
        ocisync__errf(x.msg, sizeof(x.msg),
                      "changed since it was added: it has no entry %u any more",
                      (unsigned)w[x.next].dord + 1);
        rc = OCISYNC_EDIGESTMISMATCH;
    }
    if (rc != 0) {
        err[0] = '\0';
        explain(err, errlen, what, x.msg[0] != '\0' ? x.msg : e2, rc);
    }
    if (x.fd >= 0)
        close(x.fd);
    for (int i = 0; i < 2; i++)
        if (x.dc[i].fd >= 0)
            close(x.dc[i].fd);
    oci_tar_reader_dispose(&r);
    return rc;
}

static int cmp_want(const void *pa, const void *pb)
{
    const struct want *a = pa, *b = pb;

    if (a->dlayer != b->dlayer)
        return a->dlayer < b->dlayer ? -1 : 1;
    if (a->dord != b->dord)
        return a->dord < b->dord ? -1 : 1;
    return a->item < b->item ? -1 : a->item > b->item;
}

/* 0 if the directory dfd holds nothing, else UV_ENOTEMPTY or the error reading it. */
static int check_empty(int dfd)
{
    int fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0), rc = 0;
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;

    if (d == NULL) {
        rc = ocisync__sys_error();
        if (fd >= 0)
            close(fd);
        return rc;
    }
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            rc = UV_ENOTEMPTY;
            break;
        }
    closedir(d);
    return rc;
}

/* The name a file given as src gets: src's own last component, as COPY names it. */
static void src_name(const char *src, const char *resolved, char *out, size_t len)
{
    size_t end = strlen(src), start;

    while (end > 0 && src[end - 1] == '/')
        end--;
    start = end;
    while (start > 0 && src[start - 1] != '/')
        start--;
    if ((end - start == 1 && src[start] == '.') ||
        (end - start == 2 && src[start] == '.' && src[start + 1] == '.') || end == start) {
        const char *b = strrchr(resolved, '/');
        snprintf(out, len, "%s", b != NULL ? b + 1 : resolved);
        return;
    }
    snprintf(out, len, "%.*s", (int)(end - start), src + start);
}

int oci_stack_extract(const struct oci_stack *s, const char *src, const char *dir, char *err,
                      size_t errlen)
{
    char resolved[OCI_TAR_PATH_MAX + 1], name[OCI_TAR_PATH_MAX + 1];
    struct ocisync__clipped c, c2;
    const struct node *top;
    struct item *items = NULL;
    struct want *wants = NULL;
    size_t n_items = 0, n_wants = 0, cap = 0;
    struct dircache dc = {.fd = -1};
    char none[1];
    int dfd = -1, rc;

    if (err == NULL || errlen == 0) {
        err = none;
        errlen = sizeof(none);
    }
    err[0] = '\0';
    rc = oci_stack_resolve(s, src, true, resolved, sizeof(resolved));
    if (rc != 0) {
        ocisync__errf(err, errlen, "cannot resolve \"%s\" in the image: %s",
                      ocisync__clip(src, QUOTE_MAX, &c),
                      rc == UV_ELOOP ? "too many levels of symbolic links" : ocisync_strerror(rc));
        return rc;
    }
    top = find(s, resolved, strlen(resolved));
    if (top == NULL) {
        ocisync__errf(err, errlen, "\"%s\" is not in the image", ocisync__clip(src, QUOTE_MAX, &c));
        return UV_ENOENT;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    rc = dfd < 0 ? ocisync__sys_error() : check_empty(dfd);
    if (rc != 0) {
        ocisync__errf(err, errlen, "cannot extract into %s: %s", ocisync__clip(dir, QUOTE_MAX, &c),
                      rc == UV_ENOTEMPTY ? "it is not empty" : uv_strerror(rc));
        goto out;
    }

    /* What to write: top's subtree below dir, or top alone as dir/NAME. */
    if (top->pub.type == '5') {
        size_t skip = top->plen > 0 ? top->plen + 1 : 0;

        for (const struct node *n = walk_next(top, top); n != NULL; n = walk_next(n, top)) {
            if (n_items == cap) {
                size_t ncap = cap ? cap * 2 : 1024;
                struct item *v = realloc(items, ncap * sizeof(*v));
                if (v == NULL) {
                    rc = UV_ENOMEM;
                    goto fail;
                }
                items = v;
                cap = ncap;
            }
            items[n_items++] = (struct item){n, n->path + skip};
        }
    } else {
        src_name(src, resolved, name, sizeof(name));
        items = malloc(sizeof(*items));
        if (items == NULL) {
            rc = UV_ENOMEM;
            goto fail;
        }
        items[n_items++] = (struct item){top, name};
    }
    wants = malloc((n_items > 0 ? n_items : 1) * sizeof(*wants));
    if (wants == NULL) {
        rc = UV_ENOMEM;
        goto fail;
    }

    /* Directories and symbolic links from the index, parents first; files wait for their layer. */
    for (size_t i = 0; i < n_items; i++) {
        const struct node *n = items[i].n;
        const char *rel = items[i].rel, *leaf;
        struct timespec ts[2];
        int pfd;

        if (n->pub.type == '0' || n->pub.type == '1') {
            wants[n_wants++] = (struct want){n->dlayer, n->dord, n->dsize, i};
            continue;
        }
        if (n->pub.type != '5' && n->pub.type != '2')
            continue; /* devices and fifos are left out */
        pfd = parent_fd(&dc, dfd, rel, &leaf);
        if (pfd < 0) {
            rc = pfd;
            ocisync__errf(err, errlen, "cannot open the directory of \"%s\" in %s: %s",
                          ocisync__clip(rel, QUOTE_MAX, &c), ocisync__clip(dir, QUOTE_MAX, &c2),
                          uv_strerror(rc));
            goto out;
        }
        if (n->pub.type == '5') {
            if (mkdirat(pfd, leaf, 0700) != 0) {
                rc = ocisync__sys_error();
                ocisync__errf(err, errlen, "cannot create the directory \"%s\" in %s: %s",
                              ocisync__clip(rel, QUOTE_MAX, &c), ocisync__clip(dir, QUOTE_MAX, &c2),
                              uv_strerror(rc));
                goto out;
            }
            continue;
        }
        times_of(n->pub.mtime, ts);
        if (symlinkat(n->pub.linkname, pfd, leaf) != 0 ||
            utimensat(pfd, leaf, ts, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = ocisync__sys_error();
            ocisync__errf(err, errlen, "cannot create the symbolic link \"%s\" in %s: %s",
                          ocisync__clip(rel, QUOTE_MAX, &c), ocisync__clip(dir, QUOTE_MAX, &c2),
                          uv_strerror(rc));
            goto out;
        }
    }
    if (dc.fd >= 0)
        close(dc.fd);
    dc.fd = -1;

    /* File contents, layer by layer, bottom first: each layer read once, if it has any. */
    qsort(wants, n_wants, sizeof(*wants), cmp_want);
    for (size_t i = 0; i < n_wants;) {
        size_t j = i;

        while (j < n_wants && wants[j].dlayer == wants[i].dlayer)
            j++;
        rc = write_layer(s, wants[i].dlayer, dfd, items, wants + i, j - i, err, errlen);
        if (rc != 0)
            goto out;
        i = j;
    }

    /* Directories' modes and mtimes last, deepest first: writing into them changed both. */
    for (size_t i = n_items; i-- > 0;) {
        const struct node *n = items[i].n;
        struct timespec ts[2];
        int fd;

        if (n->pub.type != '5')
            continue;
        times_of(n->pub.mtime, ts);
        fd = open_dir(dfd, items[i].rel, strlen(items[i].rel));
        rc = fd < 0 ? fd : 0;
        if (rc == 0 && (fchmod(fd, n->pub.mode) != 0 || futimens(fd, ts) != 0))
            rc = ocisync__sys_error();
        if (fd >= 0)
            close(fd);
        if (rc != 0) {
            ocisync__errf(err, errlen, "cannot set the mode and time of \"%s\" in %s: %s",
                          ocisync__clip(items[i].rel, QUOTE_MAX, &c),
                          ocisync__clip(dir, QUOTE_MAX, &c2), uv_strerror(rc));
            goto out;
        }
    }
    if (top->pub.type == '5') {
        struct timespec ts[2];

        times_of(top->pub.mtime, ts);
        if (fchmod(dfd, top->pub.mode) != 0 || futimens(dfd, ts) != 0) {
            rc = ocisync__sys_error();
            ocisync__errf(err, errlen, "cannot set the mode and time of %s: %s",
                          ocisync__clip(dir, QUOTE_MAX, &c), uv_strerror(rc));
            goto out;
        }
    }
    rc = 0;
    goto out;
fail:
    ocisync__errf(err, errlen, "cannot extract \"%s\": %s", ocisync__clip(src, QUOTE_MAX, &c),
                  ocisync_strerror(rc));
out:
    if (dc.fd >= 0)
        close(dc.fd);
    if (dfd >= 0)
        close(dfd);
    free(items);
    free(wants);
    return rc;
}
