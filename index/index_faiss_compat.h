/* index_faiss_compat.h - the FAISS C API calls index/ needs beyond faiss 1.7.3's:
 * search parameters (plain, HNSW, IVF), search with parameters and the bitmap selector,
 * declared under the names and signatures newer faiss-c gives them.  When the installed C
 * API has a group, its own header declares it and index_faiss_compat.cpp leaves it out
 * (CMake sets RF_HAVE_FAISS_*).  Serves INVARIANT(one-record-per-key): tombstones reach
 * the sealed segments through these selectors.
 */
#ifndef RF_INDEX_FAISS_COMPAT_H
#define RF_INDEX_FAISS_COMPAT_H

#include <stddef.h>
#include <stdint.h>

#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/faiss_c.h>
#include <faiss/c_api/impl/AuxIndexStructures_c.h>
#ifdef RF_HAVE_FAISS_HNSW_PARAMS
#include <faiss/c_api/IndexHNSW_c.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#ifndef RF_HAVE_FAISS_SEARCH_PARAMS
FAISS_DECLARE_CLASS(SearchParameters)
FAISS_DECLARE_DESTRUCTOR(SearchParameters)
int faiss_SearchParameters_new(FaissSearchParameters **p_sp, FaissIDSelector *sel);
int faiss_Index_search_with_params(const FaissIndex *index, idx_t n, const float *x, idx_t k,
                                   const FaissSearchParameters *params, float *distances,
                                   idx_t *labels);
#endif

#ifndef RF_HAVE_FAISS_HNSW_PARAMS
FAISS_DECLARE_CLASS_INHERITED(SearchParametersHNSW, SearchParameters)
FAISS_DECLARE_DESTRUCTOR(SearchParametersHNSW)
int faiss_SearchParametersHNSW_new(FaissSearchParametersHNSW **p_sp);
int faiss_SearchParametersHNSW_new_with(FaissSearchParametersHNSW **p_sp, FaissIDSelector *sel,
                                        int efSearch);
#endif

#ifndef RF_HAVE_FAISS_IVF_PARAMS
FAISS_DECLARE_CLASS_INHERITED(SearchParametersIVF, SearchParameters)
FAISS_DECLARE_DESTRUCTOR(SearchParametersIVF)
int faiss_SearchParametersIVF_new(FaissSearchParametersIVF **p_sp);
int faiss_SearchParametersIVF_new_with(FaissSearchParametersIVF **p_sp, FaissIDSelector *sel,
                                       size_t nprobe, size_t max_codes);
#endif

#ifndef RF_HAVE_FAISS_SELECTOR_BITMAP
FAISS_DECLARE_CLASS(IDSelectorBitmap)
FAISS_DECLARE_DESTRUCTOR(IDSelectorBitmap)
int faiss_IDSelectorBitmap_new(FaissIDSelectorBitmap **p_sel, size_t n, const uint8_t *bitmap);
#endif

#ifdef __cplusplus
}
#endif

#endif /* RF_INDEX_FAISS_COMPAT_H */
