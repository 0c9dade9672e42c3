/* index_faiss_compat.cpp - the newer faiss-c calls of index_faiss_compat.h, for a C API
 * (faiss 1.7.3) that lacks them: thin wrappers over the C++ library, with the C API's
 * error convention (negative return, faiss_get_last_error).  Only the groups the
 * installed C API misses are compiled (RF_HAVE_FAISS_*); CMake leaves the file out when
 * it misses none.  Serves INVARIANT(one-record-per-key) (tombstone selectors).
 */
#include "index/index_faiss_compat.h"

#include <faiss/Index.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/HNSW.h>
#include <faiss/impl/IDSelector.h>

#include <faiss/c_api/macros_impl.h>

extern "C" {

#ifndef RF_HAVE_FAISS_SEARCH_PARAMS
int faiss_SearchParameters_new(FaissSearchParameters **p_sp, FaissIDSelector *sel)
{
    try {
        faiss::SearchParameters *params = new faiss::SearchParameters;
        params->sel = reinterpret_cast<faiss::IDSelector *>(sel);
        *p_sp = reinterpret_cast<FaissSearchParameters *>(params);
    }
    CATCH_AND_HANDLE
}

void faiss_SearchParameters_free(FaissSearchParameters *obj)
{
    delete reinterpret_cast<faiss::SearchParameters *>(obj);
}

int faiss_Index_search_with_params(const FaissIndex *index, idx_t n, const float *x, idx_t k,
                                   const FaissSearchParameters *params, float *distances,
                                   idx_t *labels)
{
    try {
        reinterpret_cast<const faiss::Index *>(index)->search(
            n, x, k, distances, labels, reinterpret_cast<const faiss::SearchParameters *>(params));
    }
    CATCH_AND_HANDLE
}
#endif

#ifndef RF_HAVE_FAISS_HNSW_PARAMS
int faiss_SearchParametersHNSW_new(FaissSearchParametersHNSW **p_sp)
{
    try {
        faiss::SearchParametersHNSW *params = new faiss::SearchParametersHNSW;
        *p_sp = reinterpret_cast<FaissSearchParametersHNSW *>(params);
    }
    CATCH_AND_HANDLE
}

int faiss_SearchParametersHNSW_new_with(FaissSearchParametersHNSW **p_sp, FaissIDSelector *sel,
                                        int efSearch)
{
    try {
        faiss::SearchParametersHNSW *params = new faiss::SearchParametersHNSW;
        params->sel = reinterpret_cast<faiss::IDSelector *>(sel);
        params->efSearch = efSearch;
        *p_sp = reinterpret_cast<FaissSearchParametersHNSW *>(params);
    }
    CATCH_AND_HANDLE
}

void faiss_SearchParametersHNSW_free(FaissSearchParametersHNSW *obj)
{
    delete reinterpret_cast<faiss::SearchParametersHNSW *>(obj);
}
#endif

#ifndef RF_HAVE_FAISS_IVF_PARAMS
int faiss_SearchParametersIVF_new(FaissSearchParametersIVF **p_sp)
{
    try {
        faiss::SearchParametersIVF *params = new faiss::SearchParametersIVF;
        *p_sp = reinterpret_cast<FaissSearchParametersIVF *>(params);
    }
    CATCH_AND_HANDLE
}

int faiss_SearchParametersIVF_new_with(FaissSearchParametersIVF **p_sp, FaissIDSelector *sel,
                                       size_t nprobe, size_t max_codes)
{
    try {
        faiss::SearchParametersIVF *params = new faiss::SearchParametersIVF;
        params->sel = reinterpret_cast<faiss::IDSelector *>(sel);
        params->nprobe = nprobe;
        params->max_codes = max_codes;
        *p_sp = reinterpret_cast<FaissSearchParametersIVF *>(params);
    }
    CATCH_AND_HANDLE
}

void faiss_SearchParametersIVF_free(FaissSearchParametersIVF *obj)
{
    delete reinterpret_cast<faiss::SearchParametersIVF *>(obj);
}
#endif

#ifndef RF_HAVE_FAISS_SELECTOR_BITMAP
int faiss_IDSelectorBitmap_new(FaissIDSelectorBitmap **p_sel, size_t n, const uint8_t *bitmap)
{
    try {
        faiss::IDSelectorBitmap *sel = new faiss::IDSelectorBitmap(n, bitmap);
        *p_sel = reinterpret_cast<FaissIDSelectorBitmap *>(sel);
    }
    CATCH_AND_HANDLE
}

void faiss_IDSelectorBitmap_free(FaissIDSelectorBitmap *obj)
{
    delete reinterpret_cast<faiss::IDSelectorBitmap *>(obj);
}
#endif
}
