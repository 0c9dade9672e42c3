/* test_iceberg_avro.c - the Avro encoder and container writer/reader: zigzag varint
 * vectors from the Avro specification, IEEE little-endian floats, container round trips
 * with both codecs and many blocks, the header kept byte for byte, and malformed input
 * (every truncation, flipped bytes) rejected without crashing.
 */
#include "iceberg/iceberg_int.h"

#include <string.h>

#include "rf_test.h"

typedef struct vec {
    int64_t v;
    const char *hex;
} vec_t;

static void hex_of(const uint8_t *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static void test_zigzag_vectors(void)
{
    /* The first rows are the Avro specification's own examples. */
    static const vec_t vecs[] = {
        {0, "00"},
        {-1, "01"},
        {1, "02"},
        {-2, "03"},
        {2, "04"},
        {-64, "7f"},
        {64, "8001"},
        {63, "7e"},
        {-65, "8101"},
        {8191, "fe7f"},
        {8192, "808001"},
        {INT32_MAX, "feffffff0f"},
        {INT32_MIN, "ffffffff0f"},
        {INT64_MAX, "feffffffffffffffff01"},
        {INT64_MIN, "ffffffffffffffffff01"},
    };
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) {
        uint8_t b[10];
        char hex[21];
        size_t n = rf__iceberg_avro_zigzag_encode(vecs[i].v, b);
        hex_of(b, n, hex);
        RF_CHECK_STR(hex, vecs[i].hex);
        const uint8_t *p = b;
        int64_t back = 0;
        RF_CHECK_INT(rf__iceberg_avro_get_long(&p, b + n, &back), RF_OK);
        RF_CHECK(back == vecs[i].v);
        RF_CHECK(p == b + n);
        /* Every strict prefix is truncated. */
        for (size_t k = 0; k < n; k++) {
            p = b;
            RF_CHECK_INT(rf__iceberg_avro_get_long(&p, b + k, &back), RF_EPARSE);
        }
    }
    /* Eleven continuation bytes and a tenth byte with more than one bit are overlong. */
    {
        static const uint8_t over[11] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                         0x80, 0x80, 0x80, 0x80, 0x01};
        static const uint8_t big10[10] = {0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0x02};
        const uint8_t *p = over;
        int64_t v;
        RF_CHECK_INT(rf__iceberg_avro_get_long(&p, over + sizeof over, &v), RF_EPARSE);
        p = big10;
        RF_CHECK_INT(rf__iceberg_avro_get_long(&p, big10 + sizeof big10, &v), RF_EPARSE);
    }
}

static void test_primitive_encoding(void)
{
    rf_iceberg_avro_enc_t enc;
    char hex[128];
    rf__iceberg_avro_enc_init(&enc, 0);
    rf__iceberg_avro_put_float(&enc, 1.0f);
    rf__iceberg_avro_put_double(&enc, -2.5);
    rf__iceberg_avro_put_string(&enc, "foo");
    rf__iceberg_avro_put_bool(&enc, 1);
    rf__iceberg_avro_put_bool(&enc, 0);
    rf__iceberg_avro_put_union(&enc, 1);
    rf__iceberg_avro_put_int(&enc, -3);
    /* An array of two longs in one block, then the end marker. */
    rf__iceberg_avro_put_block(&enc, 2);
    rf__iceberg_avro_put_long(&enc, 3);
    rf__iceberg_avro_put_long(&enc, 27);
    rf__iceberg_avro_put_array_end(&enc);
    /* An empty array is just the end marker. */
    rf__iceberg_avro_put_block(&enc, 0);
    rf__iceberg_avro_put_array_end(&enc);
    RF_REQUIRE(enc.rc == RF_OK);
    hex_of((const uint8_t *)enc.buf.ptr, enc.buf.len, hex);
    RF_CHECK_STR(hex, "0000803f00000000000004c006666f6f0100020504063600"
                      "00");
    rf__iceberg_avro_enc_fini(&enc);

    /* The error is sticky: once max is hit nothing more is written. */
    rf__iceberg_avro_enc_init(&enc, 4);
    rf__iceberg_avro_put_string(&enc, "hello");
    rf__iceberg_avro_put_long(&enc, 1);
    RF_CHECK_INT(enc.rc, RF_ETOOBIG);
    RF_CHECK(enc.buf.len <= 4);
    rf__iceberg_avro_enc_fini(&enc);
}

static const char rec_schema[] =
    "{\"type\":\"record\",\"name\":\"r\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"long\",\"field-id\":1},"
    "{\"name\":\"name\",\"type\":[\"null\",\"string\"],\"default\":null,\"field-id\":2},"
    "{\"name\":\"blob\",\"type\":\"bytes\",\"field-id\":3},"
    "{\"name\":\"xs\",\"type\":{\"type\":\"array\",\"items\":\"int\",\"element-id\":5},"
    "\"field-id\":4},"
    "{\"name\":\"f\",\"type\":\"float\"},{\"name\":\"d\",\"type\":\"double\"},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"long\"}},"
    "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"f2\",\"size\":2}},"
    "{\"name\":\"again\",\"type\":\"f2\"}]}";

static void put_rec(rf_iceberg_avro_enc_t *enc, int64_t i)
{
    char name[32];
    uint8_t blob[3] = {0, (uint8_t)i, 0xff};
    rf__iceberg_avro_put_long(enc, i * 1000003 - 500);
    if (i % 3 == 0) {
        rf__iceberg_avro_put_union(enc, 0);
    } else {
        snprintf(name, sizeof name, "n%lld", (long long)i);
        rf__iceberg_avro_put_union(enc, 1);
        rf__iceberg_avro_put_string(enc, name);
    }
    rf__iceberg_avro_put_bytes(enc, blob, sizeof blob);
    rf__iceberg_avro_put_block(enc, i % 4);
    for (int64_t k = 0; k < i % 4; k++)
        rf__iceberg_avro_put_int(enc, (int32_t)(k - i));
    rf__iceberg_avro_put_array_end(enc);
    rf__iceberg_avro_put_float(enc, 0.5f);
    rf__iceberg_avro_put_double(enc, (double)i / 4);
    rf__iceberg_avro_put_block(enc, 1);
    rf__iceberg_avro_put_string(enc, "k");
    rf__iceberg_avro_put_long(enc, -i);
    rf__iceberg_avro_put_array_end(enc);
    rf__iceberg_avro_put_fixed(enc, "ab", 2);
    rf__iceberg_avro_put_fixed(enc, "cd", 2);
}

static char *write_file(rf_iceberg_avro_codec codec, int64_t n, size_t *len)
{
    rf_iceberg_avro_writer_t *w = NULL;
    rf_err_t err;
    char *data = NULL;
    const rf_iceberg_kv_t meta[] = {{"format-version", "2"}, {"content", "data"}};
    RF_REQUIRE(rf__iceberg_avro_writer_new(rec_schema, codec, meta, 2, &w, &err) == RF_OK);
    for (int64_t i = 0; i < n; i++) {
        put_rec(rf__iceberg_avro_writer_enc(w), i);
        RF_REQUIRE(rf__iceberg_avro_writer_next(w, &err) == RF_OK);
    }
    RF_REQUIRE(rf__iceberg_avro_writer_finish(w, &data, len, &err) == RF_OK);
    rf__iceberg_avro_writer_free(w);
    return data;
}

static void check_round_trip(rf_iceberg_avro_codec codec, int64_t n)
{
    size_t len = 0;
    char *data = write_file(codec, n, &len);
    json_t *meta = NULL, *schema = NULL, *recs = NULL;
    rf_err_t err;

    RF_REQUIRE(len > 4 && memcmp(data, "Obj\x01", 4) == 0);
    RF_REQUIRE(rf__iceberg_avro_read(data, len, &meta, &schema, &recs, &err) == RF_OK);
    /* The schema text is stored exactly as given. */
    RF_CHECK_STR(json_string_value(json_object_get(meta, "avro.schema")), rec_schema);
    RF_CHECK_STR(json_string_value(json_object_get(meta, "avro.codec")),
                 codec == RF_ICEBERG_AVRO_DEFLATE ? "deflate" : "null");
    RF_CHECK_STR(json_string_value(json_object_get(meta, "format-version")), "2");
    RF_CHECK_STR(json_string_value(json_object_get(meta, "content")), "data");
    RF_CHECK_INT(json_array_size(recs), n);
    for (int64_t i = 0; i < n && i < (int64_t)json_array_size(recs); i++) {
        json_t *r = json_array_get(recs, (size_t)i);
        json_t *xs = json_object_get(r, "xs");
        RF_CHECK(json_integer_value(json_object_get(r, "id")) == i * 1000003 - 500);
        if (i % 3 == 0) {
            RF_CHECK(json_is_null(json_object_get(r, "name")));
        } else {
            char name[32];
            snprintf(name, sizeof name, "n%lld", (long long)i);
            RF_CHECK_STR(json_string_value(json_object_get(r, "name")), name);
        }
        RF_CHECK_INT(json_string_length(json_object_get(r, "blob")), 3);
        RF_CHECK_INT((uint8_t)json_string_value(json_object_get(r, "blob"))[1], (uint8_t)i);
        RF_CHECK_INT(json_array_size(xs), i % 4);
        if (i % 4 == 3)
            RF_CHECK_INT(json_integer_value(json_array_get(xs, 2)), 2 - i);
        RF_CHECK(json_real_value(json_object_get(r, "f")) == 0.5);
        RF_CHECK(json_real_value(json_object_get(r, "d")) == (double)i / 4);
        RF_CHECK_INT(json_integer_value(json_object_get(json_object_get(r, "m"), "k")), -i);
        RF_CHECK_STR(json_string_value(json_object_get(r, "fx")), "ab");
        RF_CHECK_STR(json_string_value(json_object_get(r, "again")), "cd");
    }
    json_decref(meta);
    json_decref(schema);
    json_decref(recs);
    free(data);
}

static void test_round_trip_null_codec(void)
{
    check_round_trip(RF_ICEBERG_AVRO_NULL, 0);
    check_round_trip(RF_ICEBERG_AVRO_NULL, 1);
    /* Enough records for several 64 KiB blocks. */
    check_round_trip(RF_ICEBERG_AVRO_NULL, 5000);
}

static void test_round_trip_deflate(void)
{
    size_t len_null = 0, len_deflate = 0;
    char *a, *b;
    check_round_trip(RF_ICEBERG_AVRO_DEFLATE, 1);
    check_round_trip(RF_ICEBERG_AVRO_DEFLATE, 5000);
    a = write_file(RF_ICEBERG_AVRO_NULL, 3000, &len_null);
    b = write_file(RF_ICEBERG_AVRO_DEFLATE, 3000, &len_deflate);
    RF_CHECK(len_deflate < len_null / 2);
    free(a);
    free(b);
}

static void test_writer_rejects(void)
{
    rf_iceberg_avro_writer_t *w = NULL;
    rf_err_t err;
    const rf_iceberg_kv_t reserved[] = {{"avro.codec", "x"}};
    RF_CHECK_INT(rf__iceberg_avro_writer_new("{not json", RF_ICEBERG_AVRO_NULL, NULL, 0, &w, &err),
                 RF_EINVAL);
    RF_CHECK(w == NULL);
    RF_CHECK_INT(rf__iceberg_avro_writer_new("[1]", RF_ICEBERG_AVRO_NULL, NULL, 0, &w, &err),
                 RF_EINVAL);
    RF_CHECK_INT(
        rf__iceberg_avro_writer_new(rec_schema, RF_ICEBERG_AVRO_NULL, reserved, 1, &w, &err),
        RF_EINVAL);
    RF_CHECK(strstr(err.msg, "avro.codec") != NULL);
    /* A started but unfinished datum is refused at finish. */
    RF_REQUIRE(rf__iceberg_avro_writer_new(rec_schema, RF_ICEBERG_AVRO_NULL, NULL, 0, &w, &err) ==
               RF_OK);
    rf__iceberg_avro_put_long(rf__iceberg_avro_writer_enc(w), 1);
    {
        char *data = NULL;
        size_t len = 0;
        RF_CHECK_INT(rf__iceberg_avro_writer_finish(w, &data, &len, &err), RF_EINVAL);
        RF_CHECK(data == NULL);
    }
    rf__iceberg_avro_writer_free(w);
    rf__iceberg_avro_writer_free(NULL);
}

static void test_reader_rejects_corruption(void)
{
    size_t len = 0;
    char *data = write_file(RF_ICEBERG_AVRO_DEFLATE, 40, &len);
    char *copy = rf_xmalloc(len);
    json_t *recs = NULL;
    rf_err_t err;
    int failures = 0;

    /* Every strict prefix that cuts into a block or the header is an error. */
    for (size_t k = 0; k < len; k++) {
        rf_rc rc = rf__iceberg_avro_read(data, k, NULL, NULL, &recs, &err);
        if (rc == RF_OK) {
            /* Only a cut exactly between blocks could parse; this file has one block. */
            RF_CHECK(json_array_size(recs) == 0);
            json_decref(recs);
        } else {
            failures++;
            RF_CHECK(recs == NULL);
        }
    }
    RF_CHECK(failures >= (int)len - 1);
    /* Single flipped bytes must never crash (ASan watches); most are detected. */
    for (size_t k = 0; k < len; k++) {
        memcpy(copy, data, len);
        copy[k] ^= 0x5a;
        if (rf__iceberg_avro_read(copy, len, NULL, NULL, &recs, &err) == RF_OK)
            json_decref(recs);
    }
    /* A wrong sync marker after the block is caught. */
    memcpy(copy, data, len);
    copy[len - 1] ^= 1;
    RF_CHECK_INT(rf__iceberg_avro_read(copy, len, NULL, NULL, &recs, &err), RF_EPARSE);
    RF_CHECK(strstr(err.msg, "sync") != NULL);
    RF_CHECK_INT(rf__iceberg_avro_read("Obj", 3, NULL, NULL, &recs, &err), RF_EPARSE);
    free(copy);
    free(data);
}

RF_TEST_MAIN(test_zigzag_vectors, test_primitive_encoding, test_round_trip_null_codec,
             test_round_trip_deflate, test_writer_rejects, test_reader_rejects_corruption)
