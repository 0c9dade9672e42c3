/* iceberg_int.h - private to iceberg/: the Parquet data-file encoder, the Avro
 * object-container writer used for manifests and manifest lists, table metadata and
 * the SQLite catalog.  INVARIANT(history-exported-once) is upheld by the exporter on
 * top of these pieces.
 */
#ifndef RF_ICEBERG_INT_H
#define RF_ICEBERG_INT_H

#include "core/core.h"

/* ==== Parquet writer (iceberg_parquet.c) ==== */
/* (declarations added by iceberg_parquet.c's author) */

/* ==== Avro writer (iceberg_avro.c) ==== */
/* (declarations added by iceberg_avro.c's author) */

#endif /* RF_ICEBERG_INT_H */
