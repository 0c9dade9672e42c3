// read_parquet.mjs - reads Parquet files with two independent readers, DuckDB (through
// @duckdb/node-api) and hyparquet, from $RF_SHARED_DIR/tools/iceberg-verify/node_modules,
// and prints one JSON line per file: rows as each reader sees them, the footer (schema
// with field ids, key/value metadata) and DuckDB's parquet_metadata()/parquet_schema().
//
// Usage: node read_parquet.mjs [--no-hyparquet] [--no-meta] FILE...
// Values are printed canonically so that the C tests can compare exactly: int64 and
// timestamps (micros) as decimal strings, dates as day numbers, floats as JSON numbers
// or "NaN", "Infinity", "-Infinity", "-0", binary as {"hex": "..."}.
import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

const shared = process.env.RF_SHARED_DIR
if (!shared) {
  console.error('read_parquet.mjs: RF_SHARED_DIR is not set')
  process.exit(3)
}
const mods = path.join(shared, 'tools', 'iceberg-verify', 'node_modules')
const need = ['@duckdb/node-api/lib/index.js', 'hyparquet/src/node.js', 'hyparquet-compressors/src/index.js']
for (const m of need) {
  if (!fs.existsSync(path.join(mods, m))) {
    console.error(`read_parquet.mjs: ${path.join(mods, m)} is missing: run npm ci in ${path.dirname(mods)}`)
    process.exit(3)
  }
}
const load = (m) => import(pathToFileURL(path.join(mods, m)).href)
const duckApi = await load(need[0])
const hyp = await load(need[1])
const { compressors } = await load(need[2])

const args = process.argv.slice(2)
const noHyparquet = args.includes('--no-hyparquet')
const noMeta = args.includes('--no-meta')
const files = args.filter((a) => !a.startsWith('--'))

const hex = (u8) => Buffer.from(u8).toString('hex')

function canon(v) {
  if (v === null || v === undefined) return null
  if (typeof v === 'boolean' || typeof v === 'string') return v
  if (typeof v === 'bigint') return v.toString()
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'NaN'
    if (v === Infinity) return 'Infinity'
    if (v === -Infinity) return '-Infinity'
    if (Object.is(v, -0)) return '-0'
    return v
  }
  if (v instanceof Uint8Array) return { hex: hex(v) }
  if (Array.isArray(v)) return v.map(canon)
  if (v instanceof duckApi.DuckDBBlobValue) return { hex: hex(v.bytes) }
  if (v instanceof duckApi.DuckDBListValue) return v.items.map(canon)
  if (v instanceof duckApi.DuckDBTimestampTZValue) return v.micros.toString()
  if (v instanceof duckApi.DuckDBTimestampValue) return v.micros.toString()
  if (v instanceof duckApi.DuckDBDateValue) return v.days
  if (v instanceof Date) throw new Error(`unexpected Date value ${v.toISOString()}`)
  if (typeof v.toString === 'function' && v.constructor?.name?.startsWith('DuckDB')) return v.toString()
  throw new Error(`cannot print value of type ${v.constructor?.name ?? typeof v}`)
}

// Metadata rows: everything as plain JSON, bigints as strings, blobs as text.
function plain(v) {
  if (v === null || v === undefined) return null
  if (typeof v === 'bigint') return v.toString()
  if (v instanceof duckApi.DuckDBBlobValue) return Buffer.from(v.bytes).toString('utf8')
  if (v instanceof duckApi.DuckDBListValue) return v.items.map(plain)
  if (typeof v === 'object' && v.constructor?.name?.startsWith('DuckDB')) return v.toString()
  return v
}

const sqlStr = (s) => `'${s.replaceAll("'", "''")}'`

const duck = await duckApi.DuckDBInstance.create(':memory:', { threads: '1' })
const con = await duck.connect()

async function duckRows(file) {
  const r = await con.runAndReadAll(
    `SELECT * EXCLUDE (file_row_number) FROM read_parquet(${sqlStr(file)}, file_row_number=true) ORDER BY file_row_number`)
  return { columns: r.columnNames(), rows: r.getRows().map((row) => row.map(canon)) }
}

async function duckTable(sql) {
  const r = await con.runAndReadAll(sql)
  const names = r.columnNames()
  return r.getRows().map((row) => Object.fromEntries(row.map((v, i) => [names[i], plain(v)])))
}

async function hyparquetRead(file) {
  const buf = await hyp.asyncBufferFromFile(file)
  const md = await hyp.parquetMetadataAsync(buf)
  const rows = await hyp.parquetReadObjects({
    file: buf,
    metadata: md,
    compressors,
    utf8: false,
    rowFormat: 'array',
    parsers: {
      timestampFromMicroseconds: (us) => us,
      timestampFromMilliseconds: (ms) => ms,
      timestampFromNanoseconds: (ns) => ns,
      dateFromDays: (d) => d,
    },
  })
  return { md, rows: rows.map((row) => (Array.isArray(row) ? row : Object.values(row)).map(canon)) }
}

function footer(md) {
  return {
    version: md.version,
    num_rows: String(md.num_rows),
    created_by: md.created_by ?? null,
    row_groups: md.row_groups.length,
    kv: Object.fromEntries((md.key_value_metadata ?? []).map((e) => [e.key, e.value ?? null])),
    schema: md.schema.map((e) => ({
      name: e.name,
      field_id: e.field_id ?? null,
      type: e.type ?? null,
      repetition_type: e.repetition_type ?? null,
      converted_type: e.converted_type ?? null,
      logical_type: e.logical_type?.type ?? null,
      num_children: e.num_children ?? null,
    })),
  }
}

let failures = 0
for (const file of files) {
  const out = { file }
  try {
    out.duckdb = await duckRows(file)
    if (!noMeta) {
      out.duck_meta = await duckTable(`SELECT * FROM parquet_metadata(${sqlStr(file)}) ORDER BY row_group_id, column_id`)
      out.duck_schema = await duckTable(`SELECT * FROM parquet_schema(${sqlStr(file)})`)
    }
    if (!noHyparquet) {
      const h = await hyparquetRead(file)
      out.hyparquet = { rows: h.rows }
      out.footer = footer(h.md)
    }
  } catch (e) {
    out.error = String(e?.message ?? e).split('\n')[0]
    failures++
  }
  process.stdout.write(JSON.stringify(out) + '\n')
}
con.disconnectSync?.()
duck.closeSync?.()
// exitCode, not exit(): stdout to a pipe is asynchronous and must drain first.
process.exitCode = failures ? 1 : 0
