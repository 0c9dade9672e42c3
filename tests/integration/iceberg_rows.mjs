// iceberg_rows.mjs - the rows of an Iceberg table's snapshot as DuckDB reads them, found
// without any of ragfeed's code: the catalog through sql.js, the metadata JSON with the
// verifier's lossless parser, manifest lists and manifests with avsc, then every live
// data file through DuckDB's Parquet reader.  Prints one JSON line per row, ordered by
// seq: integers as numbers (strings past 2^53), timestamps as microseconds, lists as
// arrays.  Used by the Iceberg integration and crash tests to compare with the store.
//
// Usage: node iceberg_rows.mjs CATALOG NAMESPACE.TABLE [--snapshot ID] [--files]
// --files prints the live data files instead of rows.  Exits 3 when the verifier's
// node_modules are missing ($RF_SHARED_DIR/tools/iceberg-verify, `npm ci`).
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'

const shared = process.env.RF_SHARED_DIR
if (!shared) {
  console.error('iceberg_rows.mjs: RF_SHARED_DIR is not set')
  process.exit(3)
}
const verify = path.join(shared, 'tools', 'iceberg-verify')
const mods = path.join(verify, 'node_modules')
for (const m of ['@duckdb/node-api/lib/index.js', 'sql.js/package.json', 'avsc/package.json']) {
  if (!fs.existsSync(path.join(mods, m))) {
    console.error(`iceberg_rows.mjs: ${path.join(mods, m)} is missing: run npm ci in ${verify}`)
    process.exit(3)
  }
}
const load = (p) => import(pathToFileURL(p).href)
const duckApi = await load(path.join(mods, '@duckdb/node-api/lib/index.js'))
const { readAvroContainer } = await load(path.join(verify, 'lib', 'avro.mjs'))
const { parseJsonLossless } = await load(path.join(verify, 'lib', 'json-lossless.mjs'))
const require = createRequire(path.join(verify, 'verify.mjs'))

const args = process.argv.slice(2)
const flag = (name) => {
  const i = args.indexOf(name)
  return i >= 0 ? args.splice(i, 2)[1] : undefined
}
const wantSnapshot = flag('--snapshot')
const filesOnly = args.includes('--files')
const [catalog, table] = args.filter((a) => !a.startsWith('--'))
if (!catalog || !table || !table.includes('.')) {
  console.error('usage: node iceberg_rows.mjs CATALOG NAMESPACE.TABLE [--snapshot ID] [--files]')
  process.exit(2)
}
const localPath = (loc) => loc.replace(/^file:\/\//, '').replace(/^file:/, '')

const SQL = await require('sql.js')()
const db = new SQL.Database(fs.readFileSync(catalog))
const dot = table.lastIndexOf('.')
const st = db.prepare('SELECT metadata_location FROM iceberg_tables WHERE table_namespace = ? AND table_name = ?')
st.bind([table.slice(0, dot), table.slice(dot + 1)])
if (!st.step()) {
  console.error(`iceberg_rows.mjs: ${table} is not in ${catalog}`)
  process.exit(1)
}
const metaLoc = st.getAsObject().metadata_location
st.free()
db.close()

const meta = parseJsonLossless(fs.readFileSync(localPath(metaLoc), 'utf8'))
const snapId = String(wantSnapshot ?? meta['current-snapshot-id'])
const snap = (meta.snapshots ?? []).find((s) => String(s['snapshot-id']) === snapId)
let files = []
if (snap) {
  const list = await readAvroContainer(localPath(snap['manifest-list']))
  for (const mf of list.records) {
    const m = await readAvroContainer(localPath(mf.manifest_path))
    for (const e of m.records) {
      if (e.status === 2) continue // DELETED: not live in this snapshot
      files.push(localPath(e.data_file.file_path))
    }
  }
} else if (wantSnapshot) {
  console.error(`iceberg_rows.mjs: no snapshot ${wantSnapshot}`)
  process.exit(1)
}
if (filesOnly) {
  for (const f of files) console.log(f)
  process.exit(0)
}
if (files.length === 0) process.exit(0)

function plain(v) {
  if (v === null || v === undefined) return null
  if (typeof v === 'bigint') return v >= -(2n ** 53n) && v <= 2n ** 53n ? Number(v) : v.toString()
  if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return v
  if (v instanceof duckApi.DuckDBListValue) return v.items.map(plain)
  if (v instanceof duckApi.DuckDBTimestampTZValue) return plain(v.micros)
  if (v instanceof duckApi.DuckDBTimestampValue) return plain(v.micros)
  if (v instanceof duckApi.DuckDBDateValue) return v.days
  if (v instanceof duckApi.DuckDBBlobValue) return Buffer.from(v.bytes).toString('hex')
  return String(v)
}

const duck = await duckApi.DuckDBInstance.create(':memory:', { threads: '1' })
const con = await duck.connect()
const list = files.map((f) => `'${f.replaceAll("'", "''")}'`).join(', ')
const r = await con.runAndReadAll(
  `SELECT * FROM read_parquet([${list}], union_by_name = true, hive_partitioning = false) ORDER BY seq`)
const names = r.columnNames()
for (const row of r.getRows()) {
  const o = {}
  row.forEach((v, i) => { o[names[i]] = plain(v) })
  process.stdout.write(JSON.stringify(o) + '\n')
}
