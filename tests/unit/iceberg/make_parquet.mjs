// make_parquet.mjs OUT FIRST_SEQ COUNT DAY WITH_PRICE ROW_GROUP_ROWS SCHEMA_FILE
// Writes a Parquet data file with DuckDB (field ids on every column, the iceberg.schema
// key/value entry from SCHEMA_FILE) holding rows FIRST_SEQ .. FIRST_SEQ+COUNT-1 of a
// ragfeed-like changelog, with ingest_time on day DAY (days since 1970-01-01), and
// prints one JSON line with what a manifest needs: rows, file size, per-column sizes,
// value/null/NaN counts, lower/upper bounds (Iceberg single-value form, hex) and split
// offsets.  Node modules come from ../shared/tools/iceberg-verify (RF_SHARED_DIR).
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const shared = process.env.RF_SHARED_DIR || path.resolve(import.meta.dirname, '../../../../shared')
const req = createRequire(path.join(shared, 'tools/iceberg-verify/package.json'))
const { DuckDBInstance } = await import(req.resolve('@duckdb/node-api'))

const [out, firstArg, countArg, dayArg, priceArg, rgArg, schemaFile] = process.argv.slice(2)
if (!schemaFile) {
  console.error('usage: node make_parquet.mjs OUT FIRST_SEQ COUNT DAY WITH_PRICE ROW_GROUP_ROWS SCHEMA_FILE')
  process.exit(2)
}
const first = BigInt(firstArg); const count = BigInt(countArg); const day = BigInt(dayArg)
const withPrice = priceArg === '1'
const schema = fs.readFileSync(schemaFile, 'utf8').replaceAll("'", "''")

const db = await DuckDBInstance.create(':memory:')
const con = await db.connect()
const rows = async (sql) => (await con.runAndReadAll(sql)).getRowObjects()

await con.run(`CREATE TABLE t AS SELECT
  s::BIGINT AS seq,
  CASE WHEN s % 5 = 0 THEN 'delete' ELSE 'upsert' END AS op,
  'rec:' || (s % 7) AS id,
  to_timestamp((${day} * 86400 + (s % 86400))::DOUBLE) AS ingest_time,
  CASE WHEN s % 3 = 0 THEN NULL ELSE [(s * 0.5)::FLOAT, 1.0::FLOAT] END AS vector
  ${withPrice ? ', CASE WHEN s % 2 = 0 THEN NULL ELSE s * 1.25 END::DOUBLE AS price' : ''}
  FROM range(${first}, ${first + count}) r(s) ORDER BY s`)
const ids = `seq: 1, op: 2, id: 3, ingest_time: 4, vector: {__duckdb_field_id: 5, element: 6}${withPrice ? ', price: 7' : ''}`
await con.run(`COPY t TO '${out.replaceAll("'", "''")}' (FORMAT parquet, COMPRESSION zstd,
  ROW_GROUP_SIZE ${Number(rgArg)}, FIELD_IDS {${ids}}, KV_METADATA {'iceberg.schema': '${schema}'})`)

const le64 = (v) => { const b = Buffer.alloc(8); b.writeBigInt64LE(BigInt(v)); return b.toString('hex') }
const f64 = (v) => { const b = Buffer.alloc(8); b.writeDoubleLE(Number(v)); return b.toString('hex') }
const str = (v) => Buffer.from(String(v), 'utf8').toString('hex')
const b = (await rows(`SELECT min(seq) AS seq_lo, max(seq) AS seq_hi, min(op) AS op_lo, max(op) AS op_hi,
  min(id) AS id_lo, max(id) AS id_hi, epoch_us(min(ingest_time)) AS ts_lo, epoch_us(max(ingest_time)) AS ts_hi
  ${withPrice ? ', min(price) AS p_lo, max(price) AS p_hi' : ''} FROM t`))[0]
const bounds = {
  1: [le64(b.seq_lo), le64(b.seq_hi)],
  2: [str(b.op_lo), str(b.op_hi)],
  3: [str(b.id_lo), str(b.id_hi)],
  4: [le64(b.ts_lo), le64(b.ts_hi)],
}
if (withPrice && b.p_lo !== null) bounds[7] = [f64(b.p_lo), f64(b.p_hi)]

const byPath = { seq: 1, op: 2, id: 3, ingest_time: 4, 'vector, list, element': 6, price: 7 }
const meta = await rows(`SELECT path_in_schema AS p, sum(total_compressed_size) AS size,
  sum(num_values) AS vals, sum(stats_null_count) AS nulls FROM parquet_metadata('${out.replaceAll("'", "''")}')
  GROUP BY path_in_schema`)
const cols = meta.map((m) => {
  const id = byPath[m.p]
  if (!id) throw new Error(`unexpected column ${m.p}`)
  return {
    id, in_list: id === 6 ? 1 : 0, size: Number(m.size), values: Number(m.vals), nulls: Number(m.nulls),
    nans: id === 6 || id === 7 ? 0 : -1, lower: bounds[id]?.[0] ?? null, upper: bounds[id]?.[1] ?? null,
  }
}).sort((x, y) => x.id - y.id)
const splits = (await rows(`SELECT row_group_id, min(CASE WHEN dictionary_page_offset > 0
  THEN dictionary_page_offset ELSE data_page_offset END) AS off FROM parquet_metadata('${out.replaceAll("'", "''")}')
  GROUP BY row_group_id ORDER BY row_group_id`)).map((r) => Number(r.off))
const n = (await rows('SELECT count(*) AS n FROM t'))[0].n
console.log(JSON.stringify({ rows: Number(n), file_size: fs.statSync(out).size, cols, splits }))
