/* iceberg_avro.c - Avro binary encoding, the object container file writer (magic, header
 * metadata, sync marker, null or deflate blocks) and a schema-driven container reader.
 * Iceberg readers locate manifest columns by the `field-id` attributes of the schema text
 * in the header and need header metadata entries, so the writer stores the caller's
 * schema text byte for byte.  Part of INVARIANT(history-exported-once): manifests and
 * manifest lists are how a commit names its files.
 */
#include "iceberg/iceberg_int.h"

#include <string.h>

#include <sodium.h>
#include <zlib.h>

/* ==== Encoder ==== */

void rf__iceberg_avro_enc_init(rf_iceberg_avro_enc_t *enc, size_t max)
{
    rf_buf_init(&enc->buf, max);
    enc->rc = RF_OK;
}

void rf__iceberg_avro_enc_fini(rf_iceberg_avro_enc_t *enc)
{
    rf_buf_fini(&enc->buf);
    enc->rc = RF_OK;
}

void rf__iceberg_avro_enc_reset(rf_iceberg_avro_enc_t *enc)
{
    rf_buf_reset(&enc->buf);
    enc->rc = RF_OK;
}

static void put_raw(rf_iceberg_avro_enc_t *enc, const void *p, size_t n)
{
    if (enc->rc == RF_OK && n > 0)
        enc->rc = rf_buf_append(&enc->buf, p, n);
}

size_t rf__iceberg_avro_zigzag_encode(int64_t v, uint8_t out[10])
{
    /* Zigzag maps sign to the low bit so small magnitudes of either sign stay short;
     * done on uint64_t so no shift touches a negative signed value. */
    uint64_t u = (uint64_t)v;
    uint64_t z = (u << 1) ^ ((uint64_t)0 - (u >> 63));
    size_t n = 0;
    while (z >= 0x80) {
        out[n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    out[n++] = (uint8_t)z;
    return n;
}

void rf__iceberg_avro_put_long(rf_iceberg_avro_enc_t *enc, int64_t v)
{
    uint8_t tmp[10];
    put_raw(enc, tmp, rf__iceberg_avro_zigzag_encode(v, tmp));
}

void rf__iceberg_avro_put_int(rf_iceberg_avro_enc_t *enc, int32_t v)
{
    rf__iceberg_avro_put_long(enc, v);
}

void rf__iceberg_avro_put_bool(rf_iceberg_avro_enc_t *enc, int v)
{
    uint8_t b = v ? 1 : 0;
    put_raw(enc, &b, 1);
}

void rf__iceberg_avro_put_float(rf_iceberg_avro_enc_t *enc, float v)
{
    uint32_t u;
    uint8_t b[4];
    memcpy(&u, &v, sizeof u);
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(u >> (8 * i));
    put_raw(enc, b, sizeof b);
}

void rf__iceberg_avro_put_double(rf_iceberg_avro_enc_t *enc, double v)
{
    uint64_t u;
    uint8_t b[8];
    memcpy(&u, &v, sizeof u);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(u >> (8 * i));
    put_raw(enc, b, sizeof b);
}

void rf__iceberg_avro_put_bytes(rf_iceberg_avro_enc_t *enc, const void *p, size_t n)
{
    rf__iceberg_avro_put_long(enc, (int64_t)n);
    put_raw(enc, p, n);
}

void rf__iceberg_avro_put_string(rf_iceberg_avro_enc_t *enc, const char *s)
{
    rf__iceberg_avro_put_bytes(enc, s, strlen(s));
}

void rf__iceberg_avro_put_fixed(rf_iceberg_avro_enc_t *enc, const void *p, size_t n)
{
    put_raw(enc, p, n);
}

void rf__iceberg_avro_put_union(rf_iceberg_avro_enc_t *enc, int branch)
{
    rf__iceberg_avro_put_long(enc, branch);
}

void rf__iceberg_avro_put_block(rf_iceberg_avro_enc_t *enc, int64_t count)
{
    /* A zero count would end the array early; empty arrays are just the end marker. */
    if (count > 0)
        rf__iceberg_avro_put_long(enc, count);
}

void rf__iceberg_avro_put_array_end(rf_iceberg_avro_enc_t *enc)
{
    rf__iceberg_avro_put_long(enc, 0);
}

/* ==== Decoding primitives ==== */

rf_rc rf__iceberg_avro_get_long(const uint8_t **p, const uint8_t *end, int64_t *out)
{
    uint64_t z = 0;
    const uint8_t *q = *p;
    for (int shift = 0; shift < 64; shift += 7) {
        if (q >= end)
            return RF_EPARSE;
        uint8_t b = *q++;
        /* The tenth byte may only carry the top bit of a 64-bit value. */
        if (shift == 63 && (b & 0x7e))
            return RF_EPARSE;
        z |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *p = q;
            *out = (int64_t)((z >> 1) ^ ((uint64_t)0 - (z & 1)));
            return RF_OK;
        }
    }
    return RF_EPARSE;
}

/* ==== Container writer ==== */

#define AVRO_MAGIC_LEN 4
#define AVRO_SYNC_LEN  16
/* Blocks are flushed once this much datum data is pending, as Java's writer does with
 * its 64 KiB default, so a reader never needs much memory per block. */
#define AVRO_BLOCK_BYTES ((size_t)64 * 1024)
/* Manifests and manifest lists are far smaller; this bounds a runaway caller. */
#define AVRO_FILE_MAX ((size_t)512 * 1024 * 1024)

static const uint8_t avro_magic[AVRO_MAGIC_LEN] = {'O', 'b', 'j', 1};

struct rf_iceberg_avro_writer {
    rf_iceberg_avro_codec codec;
    uint8_t sync[AVRO_SYNC_LEN];
    rf_iceberg_avro_enc_t file;  /* header and finished blocks */
    rf_iceberg_avro_enc_t block; /* datums of the block being filled */
    int64_t block_count;
    size_t datum_start; /* offset in block where the current datum began */
};

void rf__iceberg_random(void *buf, size_t n)
{
    /* sodium_init is idempotent and thread-safe; it seeds the CSPRNG on first use. */
    if (sodium_init() < 0)
        abort();
    randombytes_buf(buf, n);
}

static const char *codec_name(rf_iceberg_avro_codec codec)
{
    return codec == RF_ICEBERG_AVRO_DEFLATE ? "deflate" : "null";
}

rf_rc rf__iceberg_avro_writer_new(const char *schema_json, rf_iceberg_avro_codec codec,
                                  const rf_iceberg_kv_t *meta, size_t n_meta,
                                  rf_iceberg_avro_writer_t **out, rf_err_t *err)
{
    rf_iceberg_avro_writer_t *w = NULL;
    json_error_t jerr;
    json_t *probe = NULL;
    rf_rc rc = RF_OK;

    *out = NULL;
    if (!schema_json || (codec != RF_ICEBERG_AVRO_NULL && codec != RF_ICEBERG_AVRO_DEFLATE))
        return rf_err_set(err, RF_EINVAL, "avro writer: schema and a known codec are required");
    /* The schema text goes into the header verbatim; refuse text no reader could parse. */
    probe = json_loads(schema_json, 0, &jerr);
    if (!probe || !json_is_object(probe)) {
        rc = rf_err_set(err, RF_EINVAL, "avro writer: schema is not a JSON object: %s (line %d)",
                        probe ? "not an object" : jerr.text, jerr.line);
        goto out;
    }
    for (size_t i = 0; i < n_meta; i++) {
        if (!meta[i].key || !meta[i].value || strncmp(meta[i].key, "avro.", 5) == 0) {
            rc = rf_err_set(err, RF_EINVAL, "avro writer: metadata key %s is reserved or empty",
                            meta[i].key ? meta[i].key : "(null)");
            goto out;
        }
    }

    w = rf_xcalloc(1, sizeof *w);
    w->codec = codec;
    rf__iceberg_random(w->sync, sizeof w->sync);
    rf__iceberg_avro_enc_init(&w->file, AVRO_FILE_MAX);
    rf__iceberg_avro_enc_init(&w->block, AVRO_FILE_MAX);

    put_raw(&w->file, avro_magic, sizeof avro_magic);
    /* The metadata map is one block: every entry, then the zero end marker. */
    rf__iceberg_avro_put_block(&w->file, (int64_t)n_meta + 2);
    rf__iceberg_avro_put_string(&w->file, "avro.schema");
    rf__iceberg_avro_put_string(&w->file, schema_json);
    rf__iceberg_avro_put_string(&w->file, "avro.codec");
    rf__iceberg_avro_put_string(&w->file, codec_name(codec));
    for (size_t i = 0; i < n_meta; i++) {
        rf__iceberg_avro_put_string(&w->file, meta[i].key);
        rf__iceberg_avro_put_string(&w->file, meta[i].value);
    }
    rf__iceberg_avro_put_array_end(&w->file);
    put_raw(&w->file, w->sync, sizeof w->sync);
    if (w->file.rc) {
        rc =
            rf_err_set(err, w->file.rc, "avro writer: header larger than %zu bytes", AVRO_FILE_MAX);
        goto out;
    }
    *out = w;
    w = NULL;
out:
    rf__iceberg_avro_writer_free(w);
    json_decref(probe);
    return rc;
}

rf_iceberg_avro_enc_t *rf__iceberg_avro_writer_enc(rf_iceberg_avro_writer_t *w)
{
    return &w->block;
}

static rf_rc deflate_raw(const uint8_t *in, size_t in_len, uint8_t **zout, size_t *zlen,
                         rf_err_t *err)
{
    z_stream zs;
    uint8_t *buf = NULL;
    rf_rc rc = RF_OK;
    memset(&zs, 0, sizeof zs);
    /* Negative window bits: a raw deflate stream with no zlib header or trailer, which is
     * what the Avro specification's deflate codec (RFC 1951) means. */
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return rf_err_set(err, RF_ENOMEM, "avro writer: deflateInit2 failed");
    uLong bound = deflateBound(&zs, (uLong)in_len);
    buf = rf_xmalloc(bound);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)in_len;
    zs.next_out = buf;
    zs.avail_out = (uInt)bound;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
        rc = rf_err_set(err, RF_EIO, "avro writer: deflate did not finish");
        goto out;
    }
    *zout = buf;
    *zlen = zs.total_out;
    buf = NULL;
out:
    free(buf);
    deflateEnd(&zs);
    return rc;
}

static rf_rc flush_block(rf_iceberg_avro_writer_t *w, rf_err_t *err)
{
    uint8_t *z = NULL;
    rf_rc rc = RF_OK;
    const uint8_t *data = (const uint8_t *)w->block.buf.ptr;
    size_t len = w->block.buf.len;

    if (w->block_count == 0)
        return RF_OK;
    if (w->codec == RF_ICEBERG_AVRO_DEFLATE) {
        if ((rc = deflate_raw(data, len, &z, &len, err)) != RF_OK)
            goto out;
        data = z;
    }
    rf__iceberg_avro_put_long(&w->file, w->block_count);
    rf__iceberg_avro_put_long(&w->file, (int64_t)len);
    put_raw(&w->file, data, len);
    put_raw(&w->file, w->sync, sizeof w->sync);
    if (w->file.rc) {
        rc = rf_err_set(err, w->file.rc, "avro writer: file larger than %zu bytes", AVRO_FILE_MAX);
        goto out;
    }
    rf__iceberg_avro_enc_reset(&w->block);
    w->block_count = 0;
    w->datum_start = 0;
out:
    free(z);
    return rc;
}

rf_rc rf__iceberg_avro_writer_next(rf_iceberg_avro_writer_t *w, rf_err_t *err)
{
    if (w->block.rc) {
        rf_rc rc = w->block.rc;
        /* Drop the partial datum so the writer stays usable after a failed one. */
        w->block.buf.len = w->datum_start;
        if (w->block.buf.ptr)
            w->block.buf.ptr[w->datum_start] = '\0';
        w->block.rc = RF_OK;
        return rf_err_set(err, rc, "avro writer: datum does not fit in %zu bytes", AVRO_FILE_MAX);
    }
    w->block_count++;
    w->datum_start = w->block.buf.len;
    if (w->block.buf.len >= AVRO_BLOCK_BYTES)
        return flush_block(w, err);
    return RF_OK;
}

rf_rc rf__iceberg_avro_writer_finish(rf_iceberg_avro_writer_t *w, char **data, size_t *len,
                                     rf_err_t *err)
{
    rf_rc rc;
    *data = NULL;
    *len = 0;
    if (w->block.buf.len != w->datum_start)
        return rf_err_set(err, RF_EINVAL, "avro writer: a datum was started but not ended");
    if ((rc = flush_block(w, err)) != RF_OK)
        return rc;
    *data = rf_buf_take(&w->file.buf, len);
    return RF_OK;
}

void rf__iceberg_avro_writer_free(rf_iceberg_avro_writer_t *w)
{
    if (!w)
        return;
    rf__iceberg_avro_enc_fini(&w->file);
    rf__iceberg_avro_enc_fini(&w->block);
    free(w);
}

/* ==== Container reader ==== */

/* Bounds for input that comes from disk: nesting of schema types, items in one file, and
 * the decompressed size of one block. */
#define AVRO_MAX_DEPTH       64
#define AVRO_MAX_ITEMS       ((int64_t)10 * 1000 * 1000)
#define AVRO_MAX_BLOCK_BYTES ((size_t)256 * 1024 * 1024)

typedef struct reader {
    const uint8_t *p, *end;
    json_t *names; /* named types: full name and short name -> schema */
    int64_t items; /* values decoded so far, bounded by AVRO_MAX_ITEMS */
    rf_err_t *err;
} reader_t;

static rf_rc rd_fail(reader_t *rd, const char *what)
{
    return rf_err_set(rd->err, RF_EPARSE, "avro: %s", what);
}

static rf_rc rd_long(reader_t *rd, int64_t *v)
{
    if (rf__iceberg_avro_get_long(&rd->p, rd->end, v))
        return rd_fail(rd, "truncated or overlong varint");
    return RF_OK;
}

static rf_rc rd_bytes(reader_t *rd, const uint8_t **ptr, size_t *n)
{
    int64_t len;
    rf_rc rc = rd_long(rd, &len);
    if (rc)
        return rc;
    if (len < 0 || (uint64_t)len > (uint64_t)(rd->end - rd->p))
        return rd_fail(rd, "bytes length out of range");
    *ptr = rd->p;
    *n = (size_t)len;
    rd->p += len;
    return RF_OK;
}

static const char *type_name_of(const json_t *schema)
{
    if (json_is_string(schema))
        return json_string_value(schema);
    if (json_is_object(schema))
        return json_string_value(json_object_get(schema, "type"));
    return NULL;
}

/* Registers record/enum/fixed names so later references resolve. */
static void register_names(reader_t *rd, json_t *schema, const char *ns, int depth)
{
    if (depth > AVRO_MAX_DEPTH)
        return;
    if (json_is_array(schema)) {
        size_t i;
        json_t *b;
        json_array_foreach(schema, i, b) register_names(rd, b, ns, depth + 1);
        return;
    }
    if (!json_is_object(schema))
        return;
    const char *t = type_name_of(schema);
    if (!t)
        return;
    if (!strcmp(t, "record") || !strcmp(t, "error") || !strcmp(t, "enum") || !strcmp(t, "fixed")) {
        const char *name = json_string_value(json_object_get(schema, "name"));
        const char *sns = json_string_value(json_object_get(schema, "namespace"));
        if (sns)
            ns = sns;
        if (name) {
            json_object_set(rd->names, name, schema);
            if (ns && *ns && !strchr(name, '.')) {
                char *full = rf_xasprintf("%s.%s", ns, name);
                json_object_set(rd->names, full, schema);
                free(full);
            }
        }
    }
    if (!strcmp(t, "record") || !strcmp(t, "error")) {
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(schema, "fields"), i, f)
            register_names(rd, json_object_get(f, "type"), ns, depth + 1);
    } else if (!strcmp(t, "array")) {
        register_names(rd, json_object_get(schema, "items"), ns, depth + 1);
    } else if (!strcmp(t, "map")) {
        register_names(rd, json_object_get(schema, "values"), ns, depth + 1);
    } else {
        json_t *inner = json_object_get(schema, "type");
        if (json_is_object(inner) || json_is_array(inner))
            register_names(rd, inner, ns, depth + 1);
    }
}

static rf_rc decode(reader_t *rd, json_t *schema, int depth, json_t **out);

static rf_rc decode_blocks(reader_t *rd, json_t *item_schema, int is_map, int depth, json_t **out)
{
    json_t *coll = is_map ? json_object() : json_array();
    rf_rc rc = RF_OK;
    for (;;) {
        int64_t count;
        if ((rc = rd_long(rd, &count)))
            goto out;
        if (count == 0)
            break;
        if (count < 0) {
            /* A negative count is followed by the block's byte size, which we skip. */
            int64_t size;
            if (count == INT64_MIN) {
                rc = rd_fail(rd, "block count out of range");
                goto out;
            }
            count = -count;
            if ((rc = rd_long(rd, &size)))
                goto out;
        }
        if (count > AVRO_MAX_ITEMS - rd->items) {
            rc = rf_err_set(rd->err, RF_ETOOBIG, "avro: more than %lld items",
                            (long long)AVRO_MAX_ITEMS);
            goto out;
        }
        for (int64_t i = 0; i < count; i++) {
            json_t *v = NULL;
            rd->items++;
            if (is_map) {
                const uint8_t *k;
                size_t kn;
                if ((rc = rd_bytes(rd, &k, &kn)))
                    goto out;
                char *key = rf_xstrndup((const char *)k, kn);
                rc = decode(rd, item_schema, depth + 1, &v);
                /* jansson takes v even when it refuses the key (not UTF-8). */
                if (!rc && strlen(key) != kn) {
                    json_decref(v);
                    rc = rd_fail(rd, "map key contains a NUL byte");
                } else if (!rc && json_object_set_new(coll, key, v) != 0) {
                    rc = rd_fail(rd, "map key is not valid UTF-8");
                }
                free(key);
            } else {
                rc = decode(rd, item_schema, depth + 1, &v);
                if (!rc)
                    json_array_append_new(coll, v);
            }
            if (rc)
                goto out;
        }
    }
out:
    if (rc)
        json_decref(coll);
    else
        *out = coll;
    return rc;
}

static rf_rc decode(reader_t *rd, json_t *schema, int depth, json_t **out)
{
    rf_rc rc = RF_OK;
    const char *t;
    *out = NULL;
    if (depth > AVRO_MAX_DEPTH)
        return rf_err_set(rd->err, RF_ETOOBIG, "avro: schema nested deeper than %d",
                          AVRO_MAX_DEPTH);
    if (json_is_array(schema)) {
        int64_t branch;
        if ((rc = rd_long(rd, &branch)))
            return rc;
        if (branch < 0 || (size_t)branch >= json_array_size(schema))
            return rd_fail(rd, "union branch out of range");
        return decode(rd, json_array_get(schema, (size_t)branch), depth + 1, out);
    }
    t = type_name_of(schema);
    if (!t)
        return rd_fail(rd, "schema node without a type");
    if (json_is_object(schema)) {
        /* {"type": <another schema>} and {"type": "int", "logicalType": ...} wrap a type. */
        json_t *inner = json_object_get(schema, "type");
        if (json_is_object(inner) || json_is_array(inner))
            return decode(rd, inner, depth + 1, out);
    }
    if (!strcmp(t, "null")) {
        *out = json_null();
    } else if (!strcmp(t, "boolean")) {
        if (rd->p >= rd->end || *rd->p > 1)
            return rd_fail(rd, "bad boolean");
        *out = json_boolean(*rd->p++);
    } else if (!strcmp(t, "int") || !strcmp(t, "long")) {
        int64_t v;
        if ((rc = rd_long(rd, &v)))
            return rc;
        if (!strcmp(t, "int") && (v < INT32_MIN || v > INT32_MAX))
            return rd_fail(rd, "int out of range");
        *out = json_integer(v);
    } else if (!strcmp(t, "float") || !strcmp(t, "double")) {
        size_t n = t[0] == 'f' ? 4 : 8;
        uint64_t u = 0;
        if ((size_t)(rd->end - rd->p) < n)
            return rd_fail(rd, "truncated floating point value");
        for (size_t i = 0; i < n; i++)
            u |= (uint64_t)rd->p[i] << (8 * i);
        rd->p += n;
        if (n == 4) {
            uint32_t u32 = (uint32_t)u;
            float f;
            memcpy(&f, &u32, sizeof f);
            *out = json_real(f);
        } else {
            double d;
            memcpy(&d, &u, sizeof d);
            *out = json_real(d);
        }
    } else if (!strcmp(t, "string") || !strcmp(t, "bytes")) {
        const uint8_t *b;
        size_t n;
        if ((rc = rd_bytes(rd, &b, &n)))
            return rc;
        if (t[0] == 's') {
            *out = json_stringn((const char *)b, n);
            if (!*out)
                return rd_fail(rd, "string is not valid UTF-8");
        } else {
            *out = json_stringn_nocheck((const char *)b, n);
        }
    } else if (!strcmp(t, "fixed")) {
        json_int_t size = json_integer_value(json_object_get(schema, "size"));
        if (size < 0 || size > rd->end - rd->p)
            return rd_fail(rd, "truncated fixed value");
        *out = json_stringn_nocheck((const char *)rd->p, (size_t)size);
        rd->p += size;
    } else if (!strcmp(t, "enum")) {
        int64_t idx;
        json_t *syms = json_object_get(schema, "symbols");
        if ((rc = rd_long(rd, &idx)))
            return rc;
        if (idx < 0 || (size_t)idx >= json_array_size(syms))
            return rd_fail(rd, "enum index out of range");
        *out = json_copy(json_array_get(syms, (size_t)idx));
    } else if (!strcmp(t, "array")) {
        return decode_blocks(rd, json_object_get(schema, "items"), 0, depth, out);
    } else if (!strcmp(t, "map")) {
        return decode_blocks(rd, json_object_get(schema, "values"), 1, depth, out);
    } else if (!strcmp(t, "record") || !strcmp(t, "error")) {
        json_t *obj = json_object(), *f;
        size_t i;
        json_array_foreach(json_object_get(schema, "fields"), i, f)
        {
            json_t *v = NULL;
            const char *fname = json_string_value(json_object_get(f, "name"));
            if (!fname) {
                rc = rd_fail(rd, "record field without a name");
                break;
            }
            if ((rc = decode(rd, json_object_get(f, "type"), depth + 1, &v)))
                break;
            json_object_set_new(obj, fname, v);
        }
        if (rc) {
            json_decref(obj);
            return rc;
        }
        *out = obj;
    } else {
        json_t *named = json_object_get(rd->names, t);
        if (!named || named == schema)
            return rf_err_set(rd->err, RF_EPARSE, "avro: unknown type %.64s", t);
        return decode(rd, named, depth + 1, out);
    }
    return RF_OK;
}

static rf_rc inflate_raw(const uint8_t *in, size_t in_len, rf_buf_t *out, rf_err_t *err)
{
    z_stream zs;
    uint8_t chunk[16384];
    rf_rc rc = RF_OK;
    int zr = Z_OK;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -15) != Z_OK)
        return rf_err_set(err, RF_ENOMEM, "avro: inflateInit2 failed");
    rf_buf_reset(out);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)in_len;
    while (zr != Z_STREAM_END) {
        zs.next_out = chunk;
        zs.avail_out = sizeof chunk;
        zr = inflate(&zs, Z_NO_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END) {
            rc = rf_err_set(err, RF_EPARSE, "avro: corrupt deflate block (zlib %d)", zr);
            goto out;
        }
        if (rf_buf_append(out, chunk, sizeof chunk - zs.avail_out)) {
            rc = rf_err_set(err, RF_ETOOBIG, "avro: block inflates past %zu bytes", out->max);
            goto out;
        }
        if (zr == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
            rc = rf_err_set(err, RF_EPARSE, "avro: truncated deflate block");
            goto out;
        }
    }
out:
    inflateEnd(&zs);
    return rc;
}

rf_rc rf__iceberg_avro_read(const void *data, size_t len, json_t **meta_out, json_t **schema_out,
                            json_t **records_out, rf_err_t *err)
{
    reader_t rd = {(const uint8_t *)data, (const uint8_t *)data + len, json_object(), 0, err};
    json_t *meta = NULL, *schema = NULL, *records = json_array(), *bytes_schema = NULL;
    const uint8_t *sync;
    const char *codec = "null";
    rf_buf_t block;
    rf_rc rc = RF_OK;

    rf_buf_init(&block, AVRO_MAX_BLOCK_BYTES);
    if (meta_out)
        *meta_out = NULL;
    if (schema_out)
        *schema_out = NULL;
    *records_out = NULL;
    if (len < AVRO_MAGIC_LEN || memcmp(data, avro_magic, AVRO_MAGIC_LEN) != 0) {
        rc = rd_fail(&rd, "not an object container file (bad magic)");
        goto out;
    }
    rd.p += AVRO_MAGIC_LEN;
    /* The header metadata is an Avro map of bytes. */
    bytes_schema = json_string("bytes");
    if ((rc = decode_blocks(&rd, bytes_schema, 1, 0, &meta)))
        goto out;
    {
        json_error_t jerr;
        const char *text = json_string_value(json_object_get(meta, "avro.schema"));
        size_t tlen = json_string_length(json_object_get(meta, "avro.schema"));
        if (!text) {
            rc = rd_fail(&rd, "header has no avro.schema");
            goto out;
        }
        schema = json_loadb(text, tlen, JSON_DECODE_ANY, &jerr);
        if (!schema) {
            rc = rf_err_set(err, RF_EPARSE, "avro: header schema is not JSON: %s", jerr.text);
            goto out;
        }
        if (json_object_get(meta, "avro.codec"))
            codec = json_string_value(json_object_get(meta, "avro.codec"));
        if (strcmp(codec, "null") != 0 && strcmp(codec, "deflate") != 0) {
            rc = rf_err_set(err, RF_ENOTIMPL, "avro: codec %.32s is not supported", codec);
            goto out;
        }
    }
    register_names(&rd, schema, NULL, 0);
    if (rd.end - rd.p < AVRO_SYNC_LEN) {
        rc = rd_fail(&rd, "truncated header sync marker");
        goto out;
    }
    sync = rd.p;
    rd.p += AVRO_SYNC_LEN;

    while (rd.p < rd.end) {
        int64_t count, size;
        const uint8_t *bdata;
        reader_t brd;
        if ((rc = rd_long(&rd, &count)) || (rc = rd_long(&rd, &size)))
            goto out;
        if (count < 0 || size < 0 || size > rd.end - rd.p || rd.end - rd.p - size < AVRO_SYNC_LEN) {
            rc = rd_fail(&rd, "block header out of range");
            goto out;
        }
        if (count > AVRO_MAX_ITEMS - rd.items) {
            rc = rf_err_set(err, RF_ETOOBIG, "avro: more than %lld records",
                            (long long)AVRO_MAX_ITEMS);
            goto out;
        }
        bdata = rd.p;
        rd.p += size;
        if (memcmp(rd.p, sync, AVRO_SYNC_LEN) != 0) {
            rc = rd_fail(&rd, "block sync marker mismatch");
            goto out;
        }
        rd.p += AVRO_SYNC_LEN;
        brd = rd;
        brd.p = bdata;
        brd.end = bdata + size;
        if (!strcmp(codec, "deflate")) {
            if ((rc = inflate_raw(bdata, (size_t)size, &block, err)))
                goto out;
            brd.p = (const uint8_t *)block.ptr;
            brd.end = brd.p + block.len;
        }
        for (int64_t i = 0; i < count; i++) {
            json_t *v = NULL;
            brd.items++;
            if ((rc = decode(&brd, schema, 0, &v)))
                goto out;
            json_array_append_new(records, v);
        }
        if (brd.p != brd.end) {
            rc = rd_fail(&rd, "block has bytes after its last datum");
            goto out;
        }
        rd.items = brd.items;
    }
out:
    rf_buf_fini(&block);
    json_decref(bytes_schema);
    json_decref(rd.names);
    if (rc) {
        json_decref(meta);
        json_decref(schema);
        json_decref(records);
        return rc;
    }
    if (meta_out)
        *meta_out = meta;
    else
        json_decref(meta);
    if (schema_out)
        *schema_out = schema;
    else
        json_decref(schema);
    *records_out = records;
    return RF_OK;
}
