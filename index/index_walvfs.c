/* The writer's WAL, written in large pieces.
 *
 * SQLite appends a WAL frame as two writes, its 24-byte header and its page, so a batch
 * of 1,000 upserts (about 1,500 frames) is about 3,000 pwrite() calls before its one
 * fsync.  On a virtual machine each call costs the writer several microseconds of kernel
 * entry and inode locking, which is a tenth of the batch.  This VFS wraps the default
 * one and, for WAL files only, gathers writes that continue each other into a buffer
 * that goes to the file in one pwrite() when:
 *   - a write does not continue it, or it is full;
 *   - the file is synced, truncated, sized, closed, or asked anything else;
 *   - a read touches the bytes it holds.
 * Every other file (the database, its shared memory) is the default VFS's own.
 *
 * Why this is safe:
 *   - Writes reach the file in the order SQLite made them; only the number of calls
 *     changes.  A crash loses what a crash before the writes would have lost: frames
 *     not yet synced, which recovery ignores unless a synced commit frame covers them.
 *   - Other connections read the WAL through their own handles, but only the frames
 *     below the last commit published in the shared memory index, and SQLite publishes
 *     a commit after syncing the WAL when synchronous is FULL, which the store sets on
 *     the only connection that opens files with this VFS (rf__index_store_open).  So
 *     nothing another connection may read is ever still in the buffer.
 *   - Only that connection writes or truncates the WAL: the other connections that may
 *     write (the WAL thread's) checkpoint in PASSIVE mode, which leaves the WAL file as
 *     it is. */

#include "index/index_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WALVFS_NAME "rf-walbuf"
/* The default VFS on Unix takes at most 2^17 - 1 bytes a write (it masks the length to
 * 17 bits), so the buffer holds up to that: 31 frames of 4 KiB pages. */
#define WALVFS_BUF 0x1ffff

typedef struct walfile {
    sqlite3_file base;     /* pMethods = &wal_methods */
    sqlite3_file *real;    /* the default VFS's file, right after this struct */
    unsigned char *buf;    /* WALVFS_BUF bytes, allocated at the first write */
    sqlite3_int64 buf_off; /* file offset of buf[0] */
    int buf_len;           /* bytes held */
} walfile_t;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs wal_vfs;
static pthread_once_t wal_vfs_once = PTHREAD_ONCE_INIT;
static int wal_vfs_rc = SQLITE_ERROR;

/* Counters for tests and the benchmark: write() calls the WAL got, and the writes
 * SQLite made. */
static uint64_t stat_calls, stat_writes;

static int wal_flush(walfile_t *f)
{
    int rc;
    if (!f->buf_len)
        return SQLITE_OK;
    rc = f->real->pMethods->xWrite(f->real, f->buf, f->buf_len, f->buf_off);
    __atomic_add_fetch(&stat_calls, 1, __ATOMIC_RELAXED);
    f->buf_len = 0;
    return rc;
}

static int wal_close(sqlite3_file *pf)
{
    walfile_t *f = (walfile_t *)pf;
    int rc = wal_flush(f), rc2 = f->real->pMethods->xClose(f->real);
    free(f->buf);
    f->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int wal_read(sqlite3_file *pf, void *out, int n, sqlite3_int64 off)
{
    walfile_t *f = (walfile_t *)pf;
    if (f->buf_len && off < f->buf_off + f->buf_len && off + n > f->buf_off) {
        int rc = wal_flush(f);
        if (rc != SQLITE_OK)
            return rc;
    }
    return f->real->pMethods->xRead(f->real, out, n, off);
}

static int wal_write(sqlite3_file *pf, const void *in, int n, sqlite3_int64 off)
{
    walfile_t *f = (walfile_t *)pf;
    int rc;
    __atomic_add_fetch(&stat_writes, 1, __ATOMIC_RELAXED);
    if (f->buf_len && (off != f->buf_off + f->buf_len || f->buf_len + n > WALVFS_BUF)) {
        if ((rc = wal_flush(f)) != SQLITE_OK)
            return rc;
    }
    if (n > WALVFS_BUF) {
        __atomic_add_fetch(&stat_calls, 1, __ATOMIC_RELAXED);
        return f->real->pMethods->xWrite(f->real, in, n, off);
    }
    if (!f->buf && !(f->buf = malloc(WALVFS_BUF)))
        return SQLITE_IOERR_NOMEM;
    if (!f->buf_len)
        f->buf_off = off;
    memcpy(f->buf + f->buf_len, in, (size_t)n);
    f->buf_len += n;
    return SQLITE_OK;
}

static int wal_truncate(sqlite3_file *pf, sqlite3_int64 size)
{
    walfile_t *f = (walfile_t *)pf;
    int rc = wal_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int wal_sync(sqlite3_file *pf, int flags)
{
    walfile_t *f = (walfile_t *)pf;
    int rc = wal_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int wal_size(sqlite3_file *pf, sqlite3_int64 *size)
{
    walfile_t *f = (walfile_t *)pf;
    int rc = wal_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int wal_lock(sqlite3_file *pf, int lock)
{
    walfile_t *f = (walfile_t *)pf;
    return f->real->pMethods->xLock(f->real, lock);
}

static int wal_unlock(sqlite3_file *pf, int lock)
{
    walfile_t *f = (walfile_t *)pf;
    return f->real->pMethods->xUnlock(f->real, lock);
}

static int wal_reserved(sqlite3_file *pf, int *out)
{
    walfile_t *f = (walfile_t *)pf;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int wal_fcntl(sqlite3_file *pf, int op, void *arg)
{
    walfile_t *f = (walfile_t *)pf;
    int rc = wal_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int wal_sector(sqlite3_file *pf)
{
    walfile_t *f = (walfile_t *)pf;
    return f->real->pMethods->xSectorSize(f->real);
}

static int wal_devchar(sqlite3_file *pf)
{
    walfile_t *f = (walfile_t *)pf;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

/* Version 1: a WAL file is never memory-mapped nor has shared memory of its own. */
static const sqlite3_io_methods wal_methods = {
    .iVersion = 1,
    .xClose = wal_close,
    .xRead = wal_read,
    .xWrite = wal_write,
    .xTruncate = wal_truncate,
    .xSync = wal_sync,
    .xFileSize = wal_size,
    .xLock = wal_lock,
    .xUnlock = wal_unlock,
    .xCheckReservedLock = wal_reserved,
    .xFileControl = wal_fcntl,
    .xSectorSize = wal_sector,
    .xDeviceCharacteristics = wal_devchar,
};

static int vfs_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *pf, int flags,
                    int *out_flags)
{
    walfile_t *f = (walfile_t *)pf;
    int rc;
    (void)vfs;
    /* Any other file is the default VFS's, in place: this VFS's szOsFile is larger. */
    if (!(flags & SQLITE_OPEN_WAL))
        return real_vfs->xOpen(real_vfs, name, pf, flags, out_flags);
    memset(f, 0, sizeof(*f));
    f->real = (sqlite3_file *)(f + 1);
    rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
    if (rc == SQLITE_OK)
        f->base.pMethods = &wal_methods;
    /* On failure pMethods stays NULL: SQLite then does not call xClose. */
    return rc;
}

static int vfs_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int vfs_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int vfs_fullpath(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static void *vfs_dlopen(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return real_vfs->xDlOpen(real_vfs, name);
}

static void vfs_dlerror(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    real_vfs->xDlError(real_vfs, n, out);
}

static void (*vfs_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    (void)vfs;
    return real_vfs->xDlSym(real_vfs, h, sym);
}

static void vfs_dlclose(sqlite3_vfs *vfs, void *h)
{
    (void)vfs;
    real_vfs->xDlClose(real_vfs, h);
}

static int vfs_random(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xRandomness(real_vfs, n, out);
}

static int vfs_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return real_vfs->xSleep(real_vfs, us);
}

static int vfs_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return real_vfs->xCurrentTime(real_vfs, out);
}

static int vfs_lasterr(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xGetLastError(real_vfs, n, out);
}

static int vfs_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static void wal_vfs_init(void)
{
    if (!(real_vfs = sqlite3_vfs_find(NULL)) || real_vfs->iVersion < 2)
        return;
    wal_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(walfile_t) + real_vfs->szOsFile,
        .mxPathname = real_vfs->mxPathname,
        .zName = WALVFS_NAME,
        .xOpen = vfs_open,
        .xDelete = vfs_delete,
        .xAccess = vfs_access,
        .xFullPathname = vfs_fullpath,
        .xDlOpen = vfs_dlopen,
        .xDlError = vfs_dlerror,
        .xDlSym = vfs_dlsym,
        .xDlClose = vfs_dlclose,
        .xRandomness = vfs_random,
        .xSleep = vfs_sleep,
        .xCurrentTime = vfs_time,
        .xGetLastError = vfs_lasterr,
        .xCurrentTimeInt64 = vfs_time64,
    };
    wal_vfs_rc = sqlite3_vfs_register(&wal_vfs, 0);
}

const char *rf__index_walvfs(void)
{
    pthread_once(&wal_vfs_once, wal_vfs_init);
    return wal_vfs_rc == SQLITE_OK ? WALVFS_NAME : NULL;
}

void rf__index_walvfs_stats(uint64_t *calls, uint64_t *writes)
{
    *calls = __atomic_load_n(&stat_calls, __ATOMIC_RELAXED);
    *writes = __atomic_load_n(&stat_writes, __ATOMIC_RELAXED);
}
