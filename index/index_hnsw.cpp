/* index_hnsw.cpp - the distance code of HNSW segments.  Debian's FAISS is built without
 * SIMD dispatch, so an IndexHNSWFlat scores every vector it visits with the scalar
 * reference inner product, most of a search's time and of a build's.  Its flat storage is
 * swapped here for a subclass whose distance computer uses rf__index_dot (AVX2 where the
 * CPU has it): the same graph, the same vectors, the same visiting order, sums in another
 * order.  The subclass is still an IndexFlat, so write_index saves it as FAISS's own
 * ("IxFI") and any FAISS reads the checkpoint back.
 */
#include <cstddef>
#include <cstdint>
#include <new>
#include <typeinfo>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/impl/DistanceComputer.h>

/* Declared for C in index_int.h (which C++ does not read). */
extern "C" {
float rf__index_dot(const float *a, const float *b, int dim);
int rf__index_hnsw_simd(FaissIndex *ann, int on);
int rf__index_hnsw_is_simd(const FaissIndex *ann);
}

namespace
{

struct SimdIPDis : faiss::FlatCodesDistanceComputer {
    const float *q = nullptr;
    const float *base;
    int d;

    explicit SimdIPDis(const faiss::IndexFlat &s)
        : faiss::FlatCodesDistanceComputer(s.codes.data(), s.code_size),
          base(reinterpret_cast<const float *>(s.codes.data())), d(static_cast<int>(s.d))
    {
    }

    void set_query(const float *x) override
    {
        q = x;
    }

    float distance_to_code(const uint8_t *code) override
    {
        return rf__index_dot(q, reinterpret_cast<const float *>(code), d);
    }

    float symmetric_dis(idx_t i, idx_t j) override
    {
        return rf__index_dot(base + i * d, base + j * d, d);
    }
};

struct SimdFlatIP : faiss::IndexFlat {
    explicit SimdFlatIP(idx_t d) : faiss::IndexFlat(d, faiss::METRIC_INNER_PRODUCT)
    {
    }

    faiss::FlatCodesDistanceComputer *get_FlatCodesDistanceComputer() const override
    {
        return new SimdIPDis(*this);
    }
};

} // namespace

/* The HNSW index behind ann and the kind of its storage: 1 scores with rf__index_dot, 0
 * with FAISS's own code, -1 not an inner-product HNSW index over flat vectors. */
static int storage_kind(const faiss::Index *idx, const faiss::IndexHNSW **out)
{
    const faiss::IndexHNSW *h = dynamic_cast<const faiss::IndexHNSW *>(idx);
    const faiss::Index *st;
    *out = h;
    if (!h || !h->storage || h->storage->metric_type != faiss::METRIC_INNER_PRODUCT)
        return -1;
    st = h->storage;
    if (typeid(*st) == typeid(SimdFlatIP))
        return 1;
    return typeid(*st) == typeid(faiss::IndexFlat) || typeid(*st) == typeid(faiss::IndexFlatIP)
               ? 0
               : -1;
}

/* Makes the storage of an inner-product IndexHNSW over flat vectors score with
 * rf__index_dot (on) or with FAISS's own code (off), moving its vectors into a flat index
 * of the other class.  Returns 1 when ann is such an index (now of the kind asked), 0 when
 * it is anything else (left alone), -1 when out of memory (left as it was).  Not while the
 * index is searched or added to. */
int rf__index_hnsw_simd(FaissIndex *ann, int on)
{
    const faiss::IndexHNSW *ch;
    int kind = storage_kind(reinterpret_cast<const faiss::Index *>(ann), &ch);
    faiss::IndexHNSW *h = const_cast<faiss::IndexHNSW *>(ch);
    faiss::IndexFlat *old, *nu;
    if (kind < 0 || !h->own_fields)
        return 0;
    if (kind == !!on)
        return 1;
    old = static_cast<faiss::IndexFlat *>(h->storage);
    if (on)
        nu = new (std::nothrow) SimdFlatIP(old->d);
    else
        nu = new (std::nothrow) faiss::IndexFlatIP(old->d);
    if (!nu)
        return -1;
    nu->codes.swap(old->codes);
    nu->ntotal = old->ntotal;
    nu->is_trained = old->is_trained;
    nu->verbose = old->verbose;
    h->storage = nu;
    delete old;
    return 1;
}

int rf__index_hnsw_is_simd(const FaissIndex *ann)
{
    const faiss::IndexHNSW *h;
    return storage_kind(reinterpret_cast<const faiss::Index *>(ann), &h);
}
