/* index_checkpoint.c - opening and closing an index: the state-dir lock, recovery of the
 * vector index (newest valid checkpoint + changelog replay, or a full rebuild from the
 * store), checkpoint files and the background checkpoint thread.
 *
 * Upholds INVARIANT(index-is-a-view): a checkpoint is only a cache of the store, tagged
 * with the seq it reflects and verified by hash; a bad one costs time, never data, and
 * recovery never calls an embedding endpoint.  Threads: see index_int.h.
 */
/* fopencookie (glibc): a segment's FAISS serialisation streams into its file. */
#define _GNU_SOURCE
#include "index/index.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include "index/index_int.h"

/* ==== Checkpoint file format ==== */

/* Two kinds of file, each a 64-byte header then a payload:
 *   0  magic "RFIDX003" (manifest) or "RFSEG003" (segment)   8 bytes
 *   8  format version            u32 little-endian
 *  12  dim                       u32
 *  16  store seq (manifest) or segment id (segment)   i64
 *  24  payload length            u64
 *  32  BLAKE2b-256 over bytes 0..31 and the payload
 * The hash covers the header fields too: a flipped seq would otherwise make recovery
 * replay from the wrong point.
 *
 * A manifest, index-<seq>.ckpt, is the state of the vector index at store seq <seq>:
 *   u32 number of FAISS segments, u32 their ids (read alone when pruning)
 *   u32 views, u32 next segment id, then per view (oldest first):
 *   u32 segment id, u8 kind, u8 sealed, u8 final, u8 interim, u64 n, u64 cap,
 *   ceil(n/8) bytes of live bitmap, and for a flat segment its rows and vectors
 *   (n i64 vids, n attribute blobs as u32 length + bytes, n u64 content-hash keys,
 *   n*dim f32).
 * A FAISS segment is immutable once built, so it is written once, to seg-<id>.seg:
 *   u64 n, n i64 vids, n attribute blobs, n u64 content-hash keys, u64 index length, the
 *   FAISS serialisation.
 * Format 2 (magic ...002) had no content-hash keys: its files are still read, the keys
 * come from the store (rf__index_hkeys_fill), and the next checkpoint writes format 3. */
#define CKPT_MAGIC      "RFIDX003"
#define SEG_MAGIC       "RFSEG003"
#define CKPT_VERSION    3u
#define CKPT_VERSION_V2 2u
#define CKPT_HDR        64

int rf__index_test_ckpt_v2;

/* The format checkpoints are written in: format 2 only for the tests of its reading. */
static unsigned ckpt_version(void)
{
    return __atomic_load_n(&rf__index_test_ckpt_v2, __ATOMIC_RELAXED) ? CKPT_VERSION_V2
                                                                      : CKPT_VERSION;
}

/* The magic of a file kind ("RFIDX" or "RFSEG") in format version. */
static void magic_put(uint8_t *p, const char *magic, unsigned version)
{
    memcpy(p, magic, 5);
    memcpy(p + 5, version == CKPT_VERSION_V2 ? "002" : "003", 3);
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void ckpt_hash(const uint8_t *hdr, const uint8_t *payload, size_t len, uint8_t out[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, hdr, 32);
    crypto_generichash_update(&st, payload, len);
    crypto_generichash_final(&st, out, 32);
}

/* Fills the header of buf (len bytes, header included) and hashes it. */
static void hdr_seal(uint8_t *buf, size_t len, const char *magic, int dim, int64_t tag)
{
    magic_put(buf, magic, ckpt_version());
    put_le(buf + 8, ckpt_version(), 4);
    put_le(buf + 12, (uint64_t)dim, 4);
    put_le(buf + 16, (uint64_t)tag, 8);
    put_le(buf + 24, (uint64_t)(len - CKPT_HDR), 8);
    memset(buf + 32, 0, 32);
    ckpt_hash(buf, buf + CKPT_HDR, len - CKPT_HDR, buf + 32);
}

char *rf__index_ckpt_path(const char *dir, int64_t seq)
{
    return rf_xasprintf("%s/index-%lld.ckpt", dir, (long long)seq);
}

char *rf__index_seg_path(const char *dir, uint32_t id)
{
    return rf_xasprintf("%s/seg-%u.seg", dir, (unsigned)id);
}

/* Parses "<prefix><n><suffix>"; returns 1 and *n on a match. */
static int name_num(const char *name, const char *prefix, const char *suffix, int64_t *n)
{
    size_t pl = strlen(prefix);
    const char *p;
    char *end;
    long long v;
    if (strncmp(name, prefix, pl) != 0)
        return 0;
    p = name + pl;
    if (*p < '0' || *p > '9')
        return 0;
    errno = 0;
    v = strtoll(p, &end, 10);
    if (errno || strcmp(end, suffix) != 0)
        return 0;
    *n = v;
    return 1;
}

static int seq_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

/* The numbers of the files "<prefix>N<suffix>" in dir, highest first; caller frees.
 * Leftover temporary files of an interrupted write are removed on the way when `sweep`. */
static int64_t *file_list(const char *dir, const char *prefix, const char *suffix, size_t *n,
                          int sweep)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int64_t *v = NULL, num;
    size_t cnt = 0, cap = 0;
    char *tmpmark = rf_xasprintf("%s.tmp.", suffix);
    *n = 0;
    if (!d) {
        free(tmpmark);
        return NULL;
    }
    while ((de = readdir(d))) {
        if (name_num(de->d_name, prefix, suffix, &num)) {
            if (cnt == cap) {
                cap = cap ? cap * 2 : 8;
                v = rf_xrealloc(v, cap * sizeof(*v));
            }
            v[cnt++] = num;
        } else if (sweep && strncmp(de->d_name, prefix, strlen(prefix)) == 0 &&
                   strstr(de->d_name, tmpmark)) {
            char *p = rf_xasprintf("%s/%s", dir, de->d_name);
            unlink(p);
            free(p);
        }
    }
    closedir(d);
    free(tmpmark);
    if (cnt)
        qsort(v, cnt, sizeof(*v), seq_desc);
    *n = cnt;
    return v;
}

/* A mapped, verified file: its payload. */
typedef struct mapped {
    uint8_t *map;
    size_t size;
    const uint8_t *payload;
    size_t len;
    int64_t tag;
    unsigned version; /* CKPT_VERSION or CKPT_VERSION_V2 */
} mapped_t;

static void mapped_fini(mapped_t *m)
{
    if (m->map && m->map != MAP_FAILED)
        munmap(m->map, m->size);
    memset(m, 0, sizeof(*m));
}

/* Maps path and checks its header and (unless defer_hash) its hash.  name_tag is what the
 * header's tag must be. */
static rf_rc file_map(rf_index_t *ix, const char *path, const char *magic, int64_t name_tag,
                      int defer_hash, mapped_t *m, rf_err_t *err)
{
    struct stat sb;
    uint8_t hash[32];
    uint64_t len;
    rf_rc rc = RF_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    memset(m, 0, sizeof(*m));
    if (fd < 0)
        return rf_err_sys(err, RF_EIO, "open %s", path);
    if (fstat(fd, &sb)) {
        rc = rf_err_sys(err, RF_EIO, "stat %s", path);
        goto out;
    }
    m->size = (size_t)sb.st_size;
    if (m->size < CKPT_HDR) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: %zu bytes, shorter than the header", path, m->size);
        goto out;
    }
    m->map = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m->map == MAP_FAILED) {
        m->map = NULL;
        rc = rf_err_sys(err, RF_EIO, "mmap %s", path);
        goto out;
    }
    m->tag = (int64_t)get_le(m->map + 16, 8);
    len = get_le(m->map + 24, 8);
    m->version = (unsigned)get_le(m->map + 8, 4);
    if (memcmp(m->map, magic, 5) != 0) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: bad magic", path);
    } else if ((m->version != CKPT_VERSION && m->version != CKPT_VERSION_V2) ||
               memcmp(m->map + 5, m->version == CKPT_VERSION ? "003" : "002", 3) != 0) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: format version %u, this build reads %u and %u", path,
                        m->version, CKPT_VERSION_V2, CKPT_VERSION);
    } else if (get_le(m->map + 12, 4) != (uint64_t)ix->dim) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: dim %u, store dim %d", path,
                        (unsigned)get_le(m->map + 12, 4), ix->dim);
    } else if (len != m->size - CKPT_HDR) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: payload length %" PRIu64 ", file holds %zu", path,
                        len, m->size - CKPT_HDR);
    } else if (m->tag != name_tag) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: header %s %lld differs from its name", path,
                        magic[2] == 'I' ? "seq" : "segment id", (long long)m->tag);
    }
    if (rc)
        goto out;
    if (!defer_hash)
        ckpt_hash(m->map, m->map + CKPT_HDR, (size_t)len, hash);
    if (!defer_hash && sodium_memcmp(hash, m->map + 32, 32) != 0) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: hash mismatch", path);
        goto out;
    }
    m->payload = m->map + CKPT_HDR;
    m->len = (size_t)len;
out:
    close(fd);
    if (rc)
        mapped_fini(m);
    return rc;
}

/* ==== Payload reading and writing ==== */

typedef struct cur {
    const uint8_t *p;
    size_t len, off;
    int bad;
} cur_t;

static const uint8_t *cur_take(cur_t *c, size_t n)
{
    const uint8_t *r;
    if (c->bad || n > c->len - c->off) {
        c->bad = 1;
        return NULL;
    }
    r = c->p + c->off;
    c->off += n;
    return r;
}

static uint64_t cur_u(cur_t *c, int n)
{
    const uint8_t *p = cur_take(c, (size_t)n);
    return p ? get_le(p, n) : 0;
}

/* n vids, n attribute blobs and (format 3) n content-hash keys into fresh rows; keys
 * missing from a format-2 file are 0 and ix->hkeys_fill is set. */
static rf__index_rows_t *read_rows(rf_index_t *ix, cur_t *c, unsigned version, size_t n, size_t cap,
                                   size_t *attr_bytes)
{
    rf__index_rows_t *rows = rf_xcalloc(1, sizeof(*rows));
    rows->refs = 1;
    rows->cap = cap;
    rows->vids = rf_xmalloc((cap ? cap : 1) * sizeof(*rows->vids));
    rows->attrs = rf_xcalloc(cap ? cap : 1, sizeof(*rows->attrs));
    rows->hkeys = rf_xcalloc(cap ? cap : 1, sizeof(*rows->hkeys));
    *attr_bytes = 0;
    for (size_t i = 0; i < n && !c->bad; i++) {
        rows->vids[i] = (int64_t)cur_u(c, 8);
        if (rows->vids[i] <= 0)
            c->bad = 1;
    }
    for (size_t i = 0; i < n && !c->bad; i++) {
        size_t al = (size_t)cur_u(c, 4);
        const uint8_t *a = al ? cur_take(c, al) : NULL;
        if (al && (!a || al < 4 || get_le(a, 4) != al)) {
            c->bad = 1;
            break;
        }
        if (a) {
            rows->attrs[i] = rf_xmalloc(al);
            memcpy(rows->attrs[i], a, al);
            *attr_bytes += al;
        }
        rows->filled = i + 1;
    }
    if (version == CKPT_VERSION_V2) {
        ix->hkeys_fill |= n > 0;
        return rows;
    }
    for (size_t i = 0; i < n && !c->bad; i++)
        rows->hkeys[i] = cur_u(c, 8);
    return rows;
}

static rf_rc put(rf_buf_t *b, const void *p, size_t n, rf_err_t *err)
{
    rf_rc rc = rf_buf_append(b, p, n);
    if (rc)
        return rf_err_set(err, rc, "checkpoint buffer: %zu bytes", b->len + n);
    return RF_OK;
}

static rf_rc put_u(rf_buf_t *b, uint64_t v, int n, rf_err_t *err)
{
    uint8_t t[8];
    put_le(t, v, n);
    return put(b, t, (size_t)n, err);
}

static rf_rc put_rows(rf_buf_t *b, const rf__index_rows_t *rows, size_t n, rf_err_t *err)
{
    rf_rc rc = RF_OK;
    for (size_t i = 0; i < n && !rc; i++)
        rc = put_u(b, (uint64_t)rows->vids[i], 8, err);
    for (size_t i = 0; i < n && !rc; i++) {
        size_t al = rf__index_attrs_len(rows->attrs[i]);
        if (!(rc = put_u(b, al, 4, err)) && al)
            rc = put(b, rows->attrs[i], al, err);
    }
    for (size_t i = 0; i < n && !rc && ckpt_version() == CKPT_VERSION; i++)
        rc = put_u(b, rows->hkeys[i], 8, err);
    return rc;
}

/* ==== Segment files ==== */

/* Where a segment's FAISS serialisation goes: a stdio stream (FAISS writes to a FILE *)
 * whose bytes are counted, hashed and written at the file offset `off`, or only counted
 * (fd < 0).  Nothing is gathered in memory: a memory stream grows by doubling and
 * zeroing, which for an 8,192-vector segment was half of the maintenance thread's time
 * while ingesting (and 1.7 GB of fresh pages for a 1M segment). */
typedef struct sink {
    int fd;
    off_t off;
    crypto_generichash_state *hs;
    size_t n;
    int eno; /* the errno of a failed write */
} sink_t;

static ssize_t sink_write(void *cookie, const char *buf, size_t size)
{
    sink_t *s = cookie;
    if (s->hs)
        crypto_generichash_update(s->hs, (const uint8_t *)buf, size);
    if (s->fd >= 0 && rf_pwrite_all(s->fd, buf, size, s->off)) {
        s->eno = errno;
        return 0; /* fopencookie: 0 is the error */
    }
    s->off += (off_t)size;
    s->n += size;
    return (ssize_t)size;
}

/* Streams FAISS's serialisation of ann into s (s->n: its length). */
static rf_rc ann_stream(FaissIndex *ann, sink_t *s, rf_err_t *err)
{
    enum { VBUF = 64 * 1024 };
    cookie_io_functions_t io = {.write = sink_write};
    char *vbuf = rf_xmalloc(VBUF);
    FILE *fp = fopencookie(s, "w", io);
    rf_rc rc;
    if (!fp) {
        free(vbuf);
        return rf_err_sys(err, RF_ENOMEM, "fopencookie");
    }
    setvbuf(fp, vbuf, _IOFBF, VBUF);
    rc = rf__index_ann_write(ann, fp, err);
    if (fclose(fp) && !rc)
        rc = rf_err_set(err, RF_EIO, "write the vector index: %s", strerror(s->eno ? s->eno : EIO));
    if (!rc && s->eno)
        rc = rf_err_set(err, RF_EIO, "write the vector index: %s", strerror(s->eno));
    free(vbuf);
    return rc;
}

/* A segment file: header, rows, FAISS serialisation.  The serialisation is made twice,
 * once to learn its length (the header and the rows give it, and the hash covers them)
 * and once into the file, hashed on the way; a length that differs fails the write.
 * tmp + fsync + rename, then the directory is synced. */
rf_rc rf__index_seg_write(rf_index_t *ix, rf__index_seg_t *seg, rf_err_t *err)
{
    rf_buf_t rows;
    uint8_t hdr[CKPT_HDR] = {0};
    char *path = rf__index_seg_path(ix->dir, seg->id), *tmp = NULL;
    crypto_generichash_state hs;
    sink_t count = {.fd = -1}, out = {.fd = -1};
    size_t ann_len;
    rf_rc rc;
    rf_buf_init(&rows, SIZE_MAX);
    if ((rc = ann_stream(seg->ann, &count, err)))
        goto out;
    ann_len = count.n;
    if ((rc = put_u(&rows, seg->cap, 8, err)) || (rc = put_rows(&rows, seg->rows, seg->cap, err)) ||
        (rc = put_u(&rows, ann_len, 8, err)))
        goto out;
    magic_put(hdr, SEG_MAGIC, ckpt_version());
    put_le(hdr + 8, ckpt_version(), 4);
    put_le(hdr + 12, (uint64_t)ix->dim, 4);
    put_le(hdr + 16, seg->id, 8);
    put_le(hdr + 24, rows.len + ann_len, 8);
    crypto_generichash_init(&hs, NULL, 0, 32);
    crypto_generichash_update(&hs, hdr, 32);
    crypto_generichash_update(&hs, (const uint8_t *)rows.ptr, rows.len);
    if ((rc = rf_file_atomic_open(path, &tmp, &out.fd, err)))
        goto out;
    out.off = (off_t)(CKPT_HDR + rows.len);
    out.hs = &hs;
    if (rf_pwrite_all(out.fd, rows.ptr, rows.len, CKPT_HDR))
        rc = rf_err_sys(err, RF_EIO, "write %s", tmp);
    else if (!(rc = ann_stream(seg->ann, &out, err)) && out.n != ann_len)
        rc = rf_err_set(err, RF_EINDEX,
                        "segment=%u: the vector index serialised to %zu bytes, then %zu", seg->id,
                        ann_len, out.n);
    if (!rc) {
        crypto_generichash_final(&hs, hdr + 32, 32);
        if (rf_pwrite_all(out.fd, hdr, CKPT_HDR, 0))
            rc = rf_err_sys(err, RF_EIO, "write %s", tmp);
    }
    if ((rc = rf_file_atomic_commit(path, tmp, out.fd, rc, err)))
        goto out;
    seg->ann_bytes = ann_len;
    __atomic_store_n(&seg->persisted, 1, __ATOMIC_RELEASE);
out:
    free(path);
    rf_buf_fini(&rows);
    return rc;
}

/* Verifies a mapped file's hash on another thread while the caller parses it: at 1M x 384
 * a segment file is 1.7 GB, and hashing it alone takes seconds of the time to ready. */
typedef struct hashjob {
    const mapped_t *m;
    int ok, started;
    pthread_t thr;
} hashjob_t;

static void *hash_main(void *arg)
{
    hashjob_t *h = arg;
    uint8_t hash[32];
    rf_thread_name("rf-index-hash");
    ckpt_hash(h->m->map, h->m->map + CKPT_HDR, h->m->size - CKPT_HDR, hash);
    h->ok = sodium_memcmp(hash, h->m->map + 32, 32) == 0;
    return NULL;
}

static void hash_start(hashjob_t *h, const mapped_t *m)
{
    h->m = m;
    h->ok = 0;
    h->started = pthread_create(&h->thr, NULL, hash_main, h) == 0;
    if (!h->started)
        hash_main(h);
}

static int hash_join(hashjob_t *h)
{
    if (h->started)
        pthread_join(h->thr, NULL);
    h->started = 0;
    return h->ok;
}

static rf_rc seg_load(rf_index_t *ix, uint32_t id, rf__index_seg_t **out, rf_err_t *err)
{
    hashjob_t hj = {0};
    char *path = rf__index_seg_path(ix->dir, id);
    mapped_t m;
    cur_t c = {0};
    rf__index_seg_t *seg = NULL;
    size_t n, ann_len, attr_bytes;
    const uint8_t *ann;
    rf_rc rc;
    *out = NULL;
    int64_t t0 = rf_mono_ms(), t1, t2;
    if ((rc = file_map(ix, path, SEG_MAGIC, id, 1, &m, err))) {
        free(path);
        return rc;
    }
    hash_start(&hj, &m);
    t1 = rf_mono_ms();
    c.p = m.payload;
    c.len = m.len;
    n = (size_t)cur_u(&c, 8);
    if (n > m.len / 8) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: %zu vectors cannot fit", path, n);
        goto out;
    }
    seg = rf_xcalloc(1, sizeof(*seg));
    seg->refs = 1;
    seg->id = id;
    seg->kind = RF__SEG_ANN;
    seg->dim = ix->dim;
    seg->cap = n;
    /* A format-2 file is written again, in the current format, by the next checkpoint. */
    seg->persisted = m.version == CKPT_VERSION;
    seg->rows = read_rows(ix, &c, m.version, n, n, &attr_bytes);
    ann_len = (size_t)cur_u(&c, 8);
    ann = cur_take(&c, ann_len);
    if (c.bad || !ann || c.off != c.len) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: malformed payload", path);
        goto out;
    }
    if ((rc = rf__index_ann_load(ann, ann_len, ix->dim, &seg->ann, err)))
        goto out;
    if ((size_t)faiss_Index_ntotal(seg->ann) != n) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: index holds %lld vectors, rows %zu", path,
                        (long long)faiss_Index_ntotal(seg->ann), n);
        goto out;
    }
    seg->ann_bytes = ann_len;
    seg->qhash = rf__index_ann_qhash(seg->ann);
    rf__index_seg_ivf_codes(seg);
    rf__index_ann_tune(ix, seg->ann);
    t2 = rf_mono_ms();
    if (!hash_join(&hj)) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: hash mismatch", path);
        goto out;
    }
    rf__index_seg_inv_build(seg);
    RF_LOG(RF_LOG_DEBUG, RF_MOD_INDEX,
           "segment=%u vectors=%zu map_and_hash_ms=%lld read_ms=%lld keys_ms=%lld segment loaded",
           id, n, (long long)(t1 - t0), (long long)(t2 - t1), (long long)(rf_mono_ms() - t2));
out:
    /* A corrupt file fails its hash whatever the parse found: the hash decides. */
    if (hj.started && !hash_join(&hj) && rc != RF_ECORRUPT)
        rc = rf_err_set(err, RF_ECORRUPT, "%s: hash mismatch", path);
    mapped_fini(&m);
    free(path);
    if (rc) {
        rf__index_seg_unref(seg);
        return rc;
    }
    *out = seg;
    return RF_OK;
}

/* ==== Manifests ==== */

static void views_free(rf__index_view_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rf__index_seg_unref(v[i].seg);
        rf__index_bits_unref(v[i].live);
    }
    free(v);
}

/* Reads and verifies one manifest and the segment files it names. */
static rf_rc ckpt_load(rf_index_t *ix, int64_t name_seq, int64_t store_seq, rf__index_view_t **out,
                       size_t *out_n, uint32_t *next_id, rf_err_t *err)
{
    char *path = rf__index_ckpt_path(ix->dir, name_seq);
    mapped_t m;
    cur_t c = {0};
    rf__index_view_t *views = NULL;
    size_t cnt = 0, nviews = 0;
    rf_rc rc;
    *out = NULL;
    *out_n = 0;
    if ((rc = file_map(ix, path, CKPT_MAGIC, name_seq, 0, &m, err))) {
        free(path);
        return rc;
    }
    if (m.tag > store_seq) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: seq %lld is ahead of the store (seq %lld)", path,
                        (long long)m.tag, (long long)store_seq);
        goto out;
    }
    c.p = m.payload;
    c.len = m.len;
    cur_take(&c, 4 * (size_t)cur_u(&c, 4)); /* the FAISS segment list, for pruning */
    nviews = (size_t)cur_u(&c, 4);
    *next_id = (uint32_t)cur_u(&c, 4);
    if (nviews > m.len / 16) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: malformed payload", path);
        goto out;
    }
    views = rf_xcalloc(nviews ? nviews : 1, sizeof(*views));
    for (size_t i = 0; i < nviews && !rc; i++) {
        rf__index_view_t *v = &views[cnt];
        uint32_t id = (uint32_t)cur_u(&c, 4);
        int kind = (int)cur_u(&c, 1), sealed = (int)cur_u(&c, 1), final = (int)cur_u(&c, 1);
        int interim = (int)cur_u(&c, 1); /* 0 in checkpoints written before it existed */
        size_t n, cap, attr_bytes = 0;
        const uint8_t *bits;
        n = (size_t)cur_u(&c, 8);
        cap = (size_t)cur_u(&c, 8);
        if (c.bad || n > cap || cap > (size_t)RF__INDEX_SEG_SIZE_MAX ||
            (kind != RF__SEG_FLAT && kind != RF__SEG_ANN) || id >= *next_id) {
            rc = rf_err_set(err, RF_ECORRUPT, "%s: malformed segment %zu", path, i);
            break;
        }
        bits = cur_take(&c, (n + 7) / 8);
        if (kind == RF__SEG_ANN) {
            if ((rc = seg_load(ix, id, &v->seg, err)))
                break;
            v->seg->interim = interim != 0;
            attr_bytes = 0;
            for (size_t j = 0; j < v->seg->cap; j++)
                attr_bytes += rf__index_attrs_len(v->seg->rows->attrs[j]);
            if (v->seg->cap != n) {
                rc = rf_err_set(err, RF_ECORRUPT, "%s: segment %u has %zu vectors, file %zu", path,
                                id, n, v->seg->cap);
                break;
            }
        } else {
            const uint8_t *vecs;
            rf__index_seg_t *seg = rf_xcalloc(1, sizeof(*seg));
            seg->refs = 1;
            seg->id = id;
            seg->kind = RF__SEG_FLAT;
            seg->dim = ix->dim;
            seg->final = final;
            seg->cap = cap;
            v->seg = seg;
            seg->rows = read_rows(ix, &c, m.version, n, cap, &attr_bytes);
            vecs = cur_take(&c, n * (size_t)ix->dim * sizeof(float));
            if (c.bad || !vecs) {
                rc = rf_err_set(err, RF_ECORRUPT, "%s: malformed segment %zu", path, i);
                break;
            }
            seg->vecs = rf_xmalloc((cap ? cap : 1) * (size_t)ix->dim * sizeof(float));
            memcpy(seg->vecs, vecs, n * (size_t)ix->dim * sizeof(float));
            rf__index_seg_sq_alloc(seg);
            rf__index_seg_sq_fill(seg, 0, n);
        }
        if (!bits) {
            rc = rf_err_set(err, RF_ECORRUPT, "%s: malformed segment %zu", path, i);
            break;
        }
        v->live = rf__index_bits_new(v->seg->cap);
        for (size_t j = 0; j < n; j++) {
            if ((bits[j >> 3] >> (j & 7)) & 1) {
                v->live->b[j >> 3] |= (uint8_t)(1u << (j & 7));
                v->live_n++;
            }
        }
        v->n = n;
        v->sealed = sealed;
        v->attr_bytes = attr_bytes;
        if (v->seg->kind == RF__SEG_FLAT && sealed && final)
            rf__index_seg_inv_build(v->seg);
        cnt++;
    }
    if (!rc && (c.bad || c.off != c.len))
        rc = rf_err_set(err, RF_ECORRUPT, "%s: malformed payload", path);
out:
    mapped_fini(&m);
    free(path);
    if (rc) {
        /* A view whose loading failed half-way is freed with the rest. */
        if (views && cnt < nviews && (views[cnt].seg || views[cnt].live))
            cnt++;
        views_free(views, cnt);
        return rc;
    }
    *out = views;
    *out_n = cnt;
    return RF_OK;
}

/* The FAISS segment ids a manifest names (its first bytes, unverified: used only to
 * decide which segment files to keep).  -1 when unreadable. */
static int ckpt_seg_ids(const char *path, uint32_t **ids, size_t *n)
{
    uint8_t hdr[CKPT_HDR + 4];
    FILE *fp = fopen(path, "rb");
    size_t cnt;
    *ids = NULL;
    *n = 0;
    if (!fp)
        return -1;
    if (fread(hdr, 1, sizeof(hdr), fp) != sizeof(hdr)) {
        fclose(fp);
        return -1;
    }
    cnt = (size_t)get_le(hdr + CKPT_HDR, 4);
    if (cnt > 1u << 20) {
        fclose(fp);
        return -1;
    }
    *ids = rf_xmalloc((cnt ? cnt : 1) * sizeof(**ids));
    for (size_t i = 0; i < cnt; i++) {
        uint8_t t[4];
        if (fread(t, 1, 4, fp) != 4) {
            fclose(fp);
            free(*ids);
            *ids = NULL;
            return -1;
        }
        (*ids)[i] = (uint32_t)get_le(t, 4);
    }
    fclose(fp);
    *n = cnt;
    return 0;
}

/* Keeps the manifest just written and the newest older one, and the segment files they
 * name (and those of the current snapshot); removes the rest, including manifests with a
 * higher seq (left by another history of this store). */
static void ckpt_prune(rf_index_t *ix, int64_t keep_seq, const rf__index_snap_t *snap)
{
    size_t n, kept = 0, keep_n = 0, segs_n;
    int64_t *v = file_list(ix->dir, "index-", ".ckpt", &n, 0), *segs;
    uint32_t *keep = NULL;
    int keep_all = 0;
    for (size_t i = 0; i < n; i++) {
        char *p = rf__index_ckpt_path(ix->dir, v[i]);
        if (v[i] == keep_seq || (v[i] < keep_seq && kept + 1 < RF__INDEX_CKPT_KEEP)) {
            uint32_t *ids;
            size_t idn;
            if (v[i] != keep_seq)
                kept++;
            if (ckpt_seg_ids(p, &ids, &idn)) {
                keep_all = 1;
            } else {
                keep = rf_xrealloc(keep, (keep_n + idn + 1) * sizeof(*keep));
                memcpy(keep + keep_n, ids, idn * sizeof(*ids));
                keep_n += idn;
                free(ids);
            }
        } else if (unlink(p) == 0) {
            RF_LOG(RF_LOG_DEBUG, RF_MOD_INDEX, "path=%s removed old checkpoint", p);
        }
        free(p);
    }
    free(v);
    segs = file_list(ix->dir, "seg-", ".seg", &segs_n, 0);
    for (size_t i = 0; i < segs_n && !keep_all; i++) {
        int used = 0;
        for (size_t j = 0; j < keep_n && !used; j++)
            used = keep[j] == (uint32_t)segs[i];
        for (size_t j = 0; snap && j < snap->cnt && !used; j++)
            used = snap->v[j].seg->id == (uint32_t)segs[i];
        if (!used) {
            char *p = rf__index_seg_path(ix->dir, (uint32_t)segs[i]);
            if (unlink(p) == 0)
                RF_LOG(RF_LOG_DEBUG, RF_MOD_INDEX, "path=%s removed old segment", p);
            free(p);
        }
    }
    free(segs);
    free(keep);
}

static int64_t ckpt_seq_get(rf_index_t *ix)
{
    int64_t v;
    pthread_mutex_lock(&ix->stat_mu);
    v = ix->ckpt_seq;
    pthread_mutex_unlock(&ix->stat_mu);
    return v;
}

/* The manifest of snap, header space included. */
static rf_rc manifest_build(rf_index_t *ix, const rf__index_snap_t *snap, rf_buf_t *b,
                            rf_err_t *err)
{
    uint8_t zero[CKPT_HDR] = {0};
    size_t ann_n = 0;
    uint32_t next_id = snap->next_id;
    rf_rc rc;
    for (size_t i = 0; i < snap->cnt; i++) {
        ann_n += snap->v[i].seg->kind == RF__SEG_ANN;
        if (snap->v[i].seg->id >= next_id)
            next_id = snap->v[i].seg->id + 1;
    }
    if ((rc = put(b, zero, CKPT_HDR, err)) || (rc = put_u(b, ann_n, 4, err)))
        return rc;
    for (size_t i = 0; i < snap->cnt && !rc; i++) {
        if (snap->v[i].seg->kind == RF__SEG_ANN)
            rc = put_u(b, snap->v[i].seg->id, 4, err);
    }
    if (rc || (rc = put_u(b, snap->cnt, 4, err)) || (rc = put_u(b, next_id, 4, err)))
        return rc;
    for (size_t i = 0; i < snap->cnt && !rc; i++) {
        const rf__index_view_t *v = &snap->v[i];
        const rf__index_seg_t *seg = v->seg;
        uint8_t h[4] = {(uint8_t)seg->kind, (uint8_t)v->sealed, (uint8_t)seg->final,
                        (uint8_t)seg->interim};
        if ((rc = put_u(b, seg->id, 4, err)) || (rc = put(b, h, 4, err)) ||
            (rc = put_u(b, v->n, 8, err)) || (rc = put_u(b, seg->cap, 8, err)) ||
            (rc = put(b, v->live->b, (v->n + 7) / 8, err)))
            break;
        if (seg->kind == RF__SEG_FLAT && !(rc = put_rows(b, seg->rows, v->n, err)))
            rc = put(b, seg->vecs, v->n * (size_t)ix->dim * sizeof(float), err);
    }
    return rc;
}

/* Writes a checkpoint of the current snapshot.  Unless force, does nothing when nothing
 * changed since the last.  Any thread; ckpt_mu makes writers take turns; searches and the
 * writer never wait for it. */
static rf_rc ckpt_write(rf_index_t *ix, int force, rf_err_t *err)
{
    rf__index_snap_t *snap = NULL;
    rf_buf_t b;
    char *path = NULL;
    int64_t seq, t0 = rf_mono_ms(), gen;
    rf_rc rc = RF_OK;
    rf_buf_init(&b, SIZE_MAX);
    pthread_mutex_lock(&ix->ckpt_mu);
    gen = __atomic_load_n(&ix->inst_gen, __ATOMIC_ACQUIRE);
    snap = rf__index_snap_acquire(ix);
    if (!snap)
        goto out;
    seq = snap->pos.seq;
    if (!force && seq == ckpt_seq_get(ix) && gen == ix->ckpt_gen)
        goto out;
    /* Segment files first: the manifest names only files that are on disk. */
    for (size_t i = 0; i < snap->cnt; i++) {
        rf__index_seg_t *seg = snap->v[i].seg;
        if (seg->kind == RF__SEG_ANN && !__atomic_load_n(&seg->persisted, __ATOMIC_ACQUIRE) &&
            (rc = rf__index_seg_write(ix, seg, err)))
            goto out;
    }
    if ((rc = manifest_build(ix, snap, &b, err)))
        goto out;
    hdr_seal((uint8_t *)b.ptr, b.len, CKPT_MAGIC, ix->dim, seq);
    path = rf__index_ckpt_path(ix->dir, seq);
    /* INVARIANT(index-is-a-view): tmp + fsync + rename, so a crash leaves either the old
     * set of checkpoints or a complete new one, never a torn file under the real name. */
    if ((rc = rf_file_write_atomic(path, b.ptr, b.len, err)))
        goto out;
    ix->ckpt_gen = gen;
    ckpt_prune(ix, seq, snap);
    /* Published once the older files are gone: the status shows a finished checkpoint. */
    pthread_mutex_lock(&ix->stat_mu);
    ix->ckpt_seq = seq;
    pthread_mutex_unlock(&ix->stat_mu);
    RF_LOG(RF_LOG_DEBUG, RF_MOD_INDEX, "seq=%lld bytes=%zu ms=%lld checkpoint written",
           (long long)seq, b.len, (long long)(rf_mono_ms() - t0));
out:
    rf__index_snap_release(snap);
    pthread_mutex_unlock(&ix->ckpt_mu);
    free(path);
    rf_buf_fini(&b);
    return rc;
}

/* ==== Recovery ==== */

/* Appends scanned records in chunks (recovery replay and full rebuilds). */
typedef struct replay {
    rf_index_t *ix;
    rf__index_add_t *adds;
    float *vecs;
    size_t n;
} replay_t;

#define REPLAY_CHUNK 4096

static void replay_flush(replay_t *r)
{
    if (!r->n)
        return;
    rf__index_vec_update(r->ix, NULL, 0, r->adds, r->n, r->ix->wseq);
    r->n = 0;
}

static rf_rc replay_add(void *opaque, const rf__index_scan_rec_t *rec, rf_err_t *err)
{
    replay_t *r = opaque;
    size_t dim = (size_t)r->ix->dim;
    (void)err;
    r->adds[r->n].vid = rec->vid;
    r->adds[r->n].vec = r->vecs + r->n * dim;
    memcpy(r->vecs + r->n * dim, rec->vec, dim * sizeof(float));
    r->adds[r->n].attrs = rf__index_attrs_encode(rec->source, rec->tenant, rec->label,
                                                 rec->event_time_ms, rec->metadata, NULL);
    r->adds[r->n].hkey = rec->hkey;
    if (++r->n == REPLAY_CHUNK)
        replay_flush(r);
    return RF_OK;
}

/* Builds the vector index: the newest valid checkpoint plus the changelog after it, or
 * every record when no checkpoint can be used.  Runs in rf_index_open, before the
 * maintenance and checkpoint threads start. */
static rf_rc recover(rf_index_t *ix, rf_err_t *err)
{
    int64_t t0 = rf_mono_ms(), store_seq = ix->wseq, ckpt_seq = -1, rows = 0, added = 0;
    int64_t *seqs, *vids = NULL;
    size_t n, vid_n = 0, view_n = 0;
    rf__index_view_t *views = NULL;
    uint32_t next_id = 1;
    replay_t r = {0};
    int loaded = 0;
    rf_rc rc = RF_OK;

    seqs = file_list(ix->dir, "index-", ".ckpt", &n, 1);
    for (size_t i = 0; i < n && !loaded; i++) {
        rf_err_t e;
        if (ckpt_load(ix, seqs[i], store_seq, &views, &view_n, &next_id, &e) == RF_OK) {
            ckpt_seq = seqs[i];
            loaded = 1;
            break;
        }
        /* INVARIANT(index-is-a-view): a bad checkpoint is skipped, never fatal; the
         * older one or the store itself has everything. */
        RF_LOG(RF_LOG_WARN, RF_MOD_INDEX, "checkpoint skipped: %s", e.msg);
    }
    free(seqs);
    if (!loaded)
        ix->hkeys_fill = 0; /* set by a checkpoint that was then skipped */
    {
        size_t sn;
        free(file_list(ix->dir, "seg-", ".seg", &sn, 1)); /* sweeps interrupted writes */
    }
    if (loaded) {
        if ((rc = rf__index_store_changed_vids(ix, ckpt_seq, &vids, &vid_n, &rows, err)))
            goto out;
        if (rows != store_seq - ckpt_seq) {
            /* The changelog after the checkpoint is incomplete (pruned): replaying it
             * would miss changes, so the store's records are the only safe source. */
            RF_LOG(RF_LOG_WARN, RF_MOD_INDEX,
                   "checkpoint_seq=%lld seq=%lld rows=%lld changelog after the checkpoint is"
                   " incomplete, rebuilding from records",
                   (long long)ckpt_seq, (long long)store_seq, (long long)rows);
            views_free(views, view_n);
            views = NULL;
            view_n = 0;
            next_id = 1;
            loaded = 0;
            ckpt_seq = -1;
            ix->hkeys_fill = 0; /* the full rebuild reads every key */
        }
    }
    RF_LOG(RF_LOG_DEBUG, RF_MOD_INDEX, "checkpoint_seq=%lld ms=%lld checkpoint loaded",
           (long long)ckpt_seq, (long long)(rf_mono_ms() - t0));
    rf__index_vec_install(ix, views, view_n, next_id);
    free(views); /* the references moved into the snapshot */
    views = NULL;
    view_n = 0;
    r.ix = ix;
    r.adds = rf_xmalloc(REPLAY_CHUNK * sizeof(*r.adds));
    r.vecs = rf_xmalloc(REPLAY_CHUNK * (size_t)ix->dim * sizeof(float));
    if (loaded) {
        /* Replay is idempotent: every vid the changelog touched after the checkpoint is
         * removed, then every record whose current version came after it is re-added
         * from the vector stored with it (never re-embedded). */
        rf__index_vec_update(ix, vids, vid_n, NULL, 0, store_seq);
        rc = rf__index_store_scan_records(ix, ckpt_seq, replay_add, &r, &added, err);
    } else {
        rc = rf__index_store_scan_records(ix, -1, replay_add, &r, &added, err);
        rows = store_seq;
    }
    if (rc) {
        for (size_t i = 0; i < r.n; i++)
            free(r.adds[i].attrs);
        goto out;
    }
    replay_flush(&r);
    rf__index_vec_update(ix, NULL, 0, NULL, 0, store_seq); /* publishes the final position */
    if ((rc = rf__index_hkeys_fill(ix, err)))
        goto out;
    ix->ckpt_seq = ckpt_seq;
    {
        int64_t mem, live, dead, pending;
        rf__index_snap_stats(ix, ix->cur, &mem, &live, &dead, &pending);
        RF_LOG(RF_LOG_INFO, RF_MOD_INDEX,
               "seq=%lld checkpoint_seq=%lld replayed_rows=%lld readded=%lld vectors=%lld"
               " segments=%zu ms=%lld vector index recovered%s",
               (long long)store_seq, (long long)ckpt_seq, (long long)rows, (long long)added,
               (long long)live, ix->cur->cnt, (long long)(rf_mono_ms() - t0),
               ckpt_seq < 0 ? " (full rebuild from the store)" : "");
    }
out:
    free(r.adds);
    free(r.vecs);
    views_free(views, view_n);
    free(vids);
    return rc;
}

/* ==== Background checkpoints ==== */

static void *ckpt_main(void *arg)
{
    rf_index_t *ix = arg;
    rf__index_work_thread(ix, "rf-index-ckpt", 0);
    pthread_mutex_lock(&ix->thr_mu);
    while (!ix->thr_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(ix->ckpt_interval_ms / 1000);
        ts.tv_nsec += (long)(ix->ckpt_interval_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!ix->thr_stop && pthread_cond_timedwait(&ix->thr_cond, &ix->thr_mu, &ts) == 0)
            ;
        if (ix->thr_stop)
            break;
        pthread_mutex_unlock(&ix->thr_mu);
        {
            rf_err_t e;
            if (ckpt_write(ix, 0, &e))
                RF_LOG(RF_LOG_WARN, RF_MOD_INDEX,
                       "checkpoint failed, retrying at the next interval: %s", e.msg);
        }
        pthread_mutex_lock(&ix->thr_mu);
    }
    pthread_mutex_unlock(&ix->thr_mu);
    return NULL;
}

static void thread_stop(rf_index_t *ix)
{
    if (!ix->thr_started)
        return;
    pthread_mutex_lock(&ix->thr_mu);
    ix->thr_stop = 1;
    pthread_cond_signal(&ix->thr_cond);
    pthread_mutex_unlock(&ix->thr_mu);
    pthread_join(ix->thr, NULL);
    ix->thr_started = 0;
}

void rf__index_ckpt_thread_stop(rf_index_t *ix)
{
    thread_stop(ix);
}

rf_rc rf__index_ckpt_thread_start(rf_index_t *ix, rf_err_t *err)
{
    if (ix->ckpt_interval_ms <= 0 || ix->thr_started)
        return RF_OK;
    pthread_mutex_lock(&ix->thr_mu);
    ix->thr_stop = 0;
    pthread_mutex_unlock(&ix->thr_mu);
    if (pthread_create(&ix->thr, NULL, ckpt_main, ix))
        return rf_err_sys(err, RF_EIO, "start checkpoint thread");
    ix->thr_started = 1;
    return RF_OK;
}

/* ==== Open and close ==== */

static void teardown(rf_index_t *ix)
{
    thread_stop(ix);
    rf__index_maint_stop(ix);
    rf__index_reaper_stop(ix);
    rf__index_wal_stop(ix);
    rf__index_store_close(ix);
    rf__index_snap_release(ix->cur);
    ix->cur = NULL;
    free(ix->map.keys);
    free(ix->map.vals);
    rf__index_hmap_free(&ix->hmap);
    if (ix->lock_fd >= 0)
        close(ix->lock_fd); /* releases the flock */
    pthread_cond_destroy(&ix->thr_cond);
    pthread_mutex_destroy(&ix->thr_mu);
    rf_index_position_fini(&ix->pub);
    pthread_cond_destroy(&ix->pos_cond);
    pthread_mutex_destroy(&ix->pos_mu);
    pthread_cond_destroy(&ix->mt_cond);
    pthread_cond_destroy(&ix->sb_cond);
    pthread_cond_destroy(&ix->mt_idle_cond);
    pthread_mutex_destroy(&ix->mt_mu);
    pthread_mutex_destroy(&ix->ckpt_mu);
    pthread_mutex_destroy(&ix->cur_mu);
    pthread_mutex_destroy(&ix->w_mu);
    pthread_mutex_destroy(&ix->hm_mu);
    pthread_mutex_destroy(&ix->stat_mu);
    pthread_mutex_destroy(&ix->pool_mu);
    free(ix->mt_failed);
    free(ix->ivfq);
    free(ix->factory);
    free(ix->db_path);
    free(ix->dir);
    free(ix);
}

/* One process per state dir: a second open (in any process) is refused while the
 * first holds the lock; the kernel drops it when the holder exits, even on a crash. */
static rf_rc dir_lock(rf_index_t *ix, rf_err_t *err)
{
    char *path = rf_xasprintf("%s/LOCK", ix->dir);
    rf_rc rc = RF_OK;
    ix->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (ix->lock_fd < 0) {
        rc = rf_err_sys(err, RF_EIO, "open %s", path);
    } else if (flock(ix->lock_fd, LOCK_EX | LOCK_NB)) {
        if (errno == EWOULDBLOCK)
            rc = rf_err_set(err, RF_EBUSY,
                            "state dir %s is in use by another ragfeed process (%s is locked)",
                            ix->dir, path);
        else
            rc = rf_err_sys(err, RF_EIO, "flock %s", path);
    }
    free(path);
    return rc;
}

/* The options of the vector index, with defaults for fields left 0. */
static rf_rc opts_check(rf_index_t *ix, const rf_index_opts_t *o, rf_err_t *err)
{
    int64_t seg = o->segment_size ? o->segment_size : RF__INDEX_SEG_SIZE_DEF;
    const char *f = o->factory && *o->factory ? o->factory : RF__INDEX_FACTORY_DEF;
    if (seg < RF__INDEX_SEG_SIZE_MIN || seg > RF__INDEX_SEG_SIZE_MAX)
        return rf_err_set(err, RF_ECONFIG, "index segment size %lld: must be %d..%lld",
                          (long long)seg, RF__INDEX_SEG_SIZE_MIN,
                          (long long)RF__INDEX_SEG_SIZE_MAX);
    if (o->compact_ratio < 0 || o->ef_search < 0 || o->ivf_nprobe < 0 || o->filter_exact_max < 0)
        return rf_err_set(err, RF_ECONFIG,
                          "index compact ratio, efSearch, nprobe and exact max must be >= 0");
    if (o->work_nice < 0 || o->work_nice > 19)
        return rf_err_set(err, RF_ECONFIG, "index work nice %d: must be 0..19", o->work_nice);
    if (strlen(f) > 256)
        return rf_err_set(err, RF_ECONFIG, "index factory string longer than 256 bytes");
    if (strcasecmp(f, "Flat") != 0) {
        FaissIndex *probe = NULL;
        FaissParameterSpace *ps = NULL;
        int ok = 0;
        if (faiss_index_factory(&probe, ix->dim > 0 ? ix->dim : 64, f, METRIC_INNER_PRODUCT)) {
            const char *m = faiss_get_last_error();
            return rf_err_set(err, RF_ECONFIG, "index factory \"%s\": %s", f,
                              m ? m : "not understood by faiss");
        }
        /* Searches pass HNSW or IVF search parameters (with the tombstone selector); other
         * index kinds refuse them. */
        if (faiss_IndexIVF_cast(probe))
            ok = 1;
        else if (faiss_ParameterSpace_new(&ps) == 0) {
            ok = faiss_ParameterSpace_set_index_parameter(ps, probe, "efSearch", 16) == 0;
            faiss_ParameterSpace_free(ps);
        }
        faiss_Index_free(probe);
        if (!ok)
            return rf_err_set(err, RF_ECONFIG,
                              "index factory \"%s\": sealed segments must be HNSW or IVF indexes "
                              "(or \"Flat\")",
                              f);
    }
    ix->seg_size = (size_t)seg;
    ix->factory = rf_xstrdup(f);
    ix->compact_ratio = o->compact_ratio > 0 ? o->compact_ratio : RF__INDEX_COMPACT_DEF;
    ix->ef_search = o->ef_search ? o->ef_search : RF__INDEX_EF_DEF;
    ix->ivf_nprobe = o->ivf_nprobe ? o->ivf_nprobe : RF__INDEX_NPROBE_DEF;
    ix->exact_max = o->filter_exact_max ? o->filter_exact_max : RF__INDEX_EXACT_MAX_DEF;
    ix->work_nice = o->work_nice;
    ix->work_cpus = o->work_cpus;
    return RF_OK;
}

rf_rc rf_index_open(const rf_index_opts_t *opts, rf_index_t **out, rf_err_t *err)
{
    rf_index_t *ix;
    pthread_condattr_t ca;
    rf_rc rc;
    if (out)
        *out = NULL;
    if (!opts || !opts->dir || !*opts->dir || !out)
        return rf_err_set(err, RF_EINVAL, "rf_index_open: NULL argument");
    if ((opts->dim < 1 && !opts->dim_from_store) || opts->dim > RF__INDEX_DIM_MAX)
        return rf_err_set(err, RF_ECONFIG, "index dim=%d: must be 1..%d", opts->dim,
                          RF__INDEX_DIM_MAX);
    if (opts->checkpoint_interval_ms < 0)
        return rf_err_set(err, RF_ECONFIG, "checkpoint interval %lld ms: must be >= 0",
                          (long long)opts->checkpoint_interval_ms);
    if (sodium_init() < 0)
        return rf_err_set(err, RF_EUNAVAIL, "libsodium failed to initialise");
    ix = rf_xcalloc(1, sizeof(*ix));
    ix->dir = rf_xstrdup(opts->dir);
    ix->db_path = rf_xasprintf("%s/store.db", opts->dir);
    ix->dim = opts->dim;
    ix->open_gen_desc = opts->gen_desc;
    ix->open_dim_from_store = opts->dim_from_store;
    ix->ckpt_interval_ms = opts->checkpoint_interval_ms;
    ix->lock_fd = -1;
    ix->ckpt_seq = -1;
    pthread_mutex_init(&ix->pool_mu, NULL);
    pthread_mutex_init(&ix->stat_mu, NULL);
    pthread_mutex_init(&ix->w_mu, NULL);
    pthread_mutex_init(&ix->hm_mu, NULL);
    pthread_mutex_init(&ix->cur_mu, NULL);
    pthread_mutex_init(&ix->ckpt_mu, NULL);
    pthread_mutex_init(&ix->thr_mu, NULL);
    pthread_mutex_init(&ix->mt_mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ix->thr_cond, &ca);
    pthread_cond_init(&ix->mt_idle_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&ix->mt_cond, NULL);
    pthread_cond_init(&ix->sb_cond, NULL);
    pthread_mutex_init(&ix->pos_mu, NULL);
    pthread_cond_init(&ix->pos_cond, NULL); /* realtime clock: pthread_cond_timedwait */

    if ((rc = opts_check(ix, opts, err)) || (rc = rf_mkdirs(ix->dir, err)) ||
        (rc = dir_lock(ix, err)) || (rc = rf__index_reaper_start(ix, err)) ||
        (rc = rf__index_store_open(ix, err)) || (rc = rf__index_wal_start(ix, err)) ||
        (rc = recover(ix, err)) || (rc = rf__index_maint_start(ix, err)))
        goto out;
    rc = rf__index_ckpt_thread_start(ix, err);
out:
    if (rc) {
        teardown(ix);
        return rc;
    }
    *out = ix;
    return RF_OK;
}

rf_rc rf_index_checkpoint(rf_index_t *ix, rf_err_t *err)
{
    if (!ix)
        return rf_err_set(err, RF_EINVAL, "rf_index_checkpoint: NULL index");
    return ckpt_write(ix, 1, err);
}

void rf_index_close(rf_index_t *ix)
{
    rf_err_t e;
    if (!ix)
        return;
    thread_stop(ix);
    /* A rebuild in progress is dropped: its segment is checkpointed flat and rebuilt after
     * the next start. */
    rf__index_maint_stop(ix);
    if (ix->cur && ckpt_write(ix, 0, &e))
        RF_LOG(RF_LOG_WARN, RF_MOD_INDEX,
               "final checkpoint failed; the next open replays the changelog: %s", e.msg);
    teardown(ix);
}

void rf__index_abandon(rf_index_t *ix)
{
    if (ix)
        teardown(ix);
}
