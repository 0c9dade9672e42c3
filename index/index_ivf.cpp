/* index_ivf.cpp - the parts of an IVF-Flat index (inner product) that index_search.c scans
 * itself: its coarse centroids and its inverted lists, borrowed from the FAISS objects; and
 * an empty IVF-Flat index on given centroids (the interim indexes share one k-means).
 * Debian's FAISS is built without SIMD dispatch, so its list scan computes each inner
 * product with scalar code; rf__index_dot (AVX2) over the same lists is several times
 * faster and probes the same lists.
 */
#include <cstddef>
#include <cstdint>
#include <typeinfo>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/invlists/InvertedLists.h>

/* Declared for C in index_int.h (which C++ does not read). */
extern "C" {
int rf__index_ivf_flat(const FaissIndex *ann, size_t *nlist, const float **centroids);
size_t rf__index_ivf_list(const FaissIndex *ann, size_t l, const float **vecs, const int64_t **ids);
int rf__index_ivf_with_centroids(int dim, size_t nlist, const float *centroids, FaissIndex **out);

int rf__index_ivf_with_centroids(int dim, size_t nlist, const float *centroids, FaissIndex **out)
{
    faiss::IndexFlatIP *q = nullptr;
    *out = nullptr;
    try {
        q = new faiss::IndexFlatIP(dim);
        q->add(static_cast<faiss::Index::idx_t>(nlist), centroids);
        /* Trained already: its quantizer holds nlist centroids. */
        faiss::IndexIVFFlat *ivf =
            new faiss::IndexIVFFlat(q, static_cast<size_t>(dim), nlist, faiss::METRIC_INNER_PRODUCT);
        ivf->own_fields = true;
        *out = reinterpret_cast<FaissIndex *>(static_cast<faiss::Index *>(ivf));
        return 0;
    } catch (...) {
        delete q;
        return -1;
    }
}

int rf__index_ivf_flat(const FaissIndex *ann, size_t *nlist, const float **centroids)
{
    const faiss::Index *idx = reinterpret_cast<const faiss::Index *>(ann);
    const faiss::IndexIVFFlat *ivf = dynamic_cast<const faiss::IndexIVFFlat *>(idx);
    const faiss::IndexFlat *q;
    /* The class itself (IVFFlat stores the vectors as they are), not a subclass. */
    if (!ivf || typeid(*idx) != typeid(faiss::IndexIVFFlat) ||
        ivf->metric_type != faiss::METRIC_INNER_PRODUCT)
        return 0;
    q = dynamic_cast<const faiss::IndexFlat *>(ivf->quantizer);
    if (!q || q->metric_type != faiss::METRIC_INNER_PRODUCT ||
        q->ntotal != static_cast<faiss::Index::idx_t>(ivf->nlist) ||
        !dynamic_cast<const faiss::ArrayInvertedLists *>(ivf->invlists))
        return 0;
    *nlist = ivf->nlist;
    *centroids = q->get_xb();
    return 1;
}

size_t rf__index_ivf_list(const FaissIndex *ann, size_t l, const float **vecs, const int64_t **ids)
{
    const faiss::IndexIVFFlat *ivf =
        static_cast<const faiss::IndexIVFFlat *>(reinterpret_cast<const faiss::Index *>(ann));
    const faiss::ArrayInvertedLists *il =
        static_cast<const faiss::ArrayInvertedLists *>(ivf->invlists);
    *vecs = reinterpret_cast<const float *>(il->codes[l].data());
    *ids = il->ids[l].data();
    return il->ids[l].size();
}
}
