// avro_dump.mjs FILE - reads an Avro object container file with avsc, a reader
// independent of ours, and prints JSON lines: first {"codec","meta"} (header metadata,
// avro.schema included as text), then one line per record.  Longs are printed as
// decimal strings (snapshot ids exceed 2^53), bytes as lowercase hex strings.
// Node modules come from ../shared/tools/iceberg-verify (RF_SHARED_DIR); a missing
// module is an error, never a skip.
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const shared = process.env.RF_SHARED_DIR || path.resolve(import.meta.dirname, '../../../../shared')
const req = createRequire(path.join(shared, 'tools/iceberg-verify/package.json'))
const avro = req('avsc')

const file = process.argv[2]
if (!file) {
  console.error('usage: node avro_dump.mjs FILE')
  process.exit(2)
}

// 64-bit longs as BigInt so no id loses precision.
const bigLong = avro.types.LongType.__with({
  fromBuffer: (b) => b.readBigInt64LE(),
  toBuffer: (n) => { const b = Buffer.alloc(8); b.writeBigInt64LE(BigInt(n)); return b },
  fromJSON: (x) => BigInt(x),
  toJSON: (n) => Number(n),
  isValid: (n) => typeof n === 'bigint',
  compare: (a, b) => (a === b ? 0 : a < b ? -1 : 1),
})

const replacer = (_k, v) => {
  if (typeof v === 'bigint') return v.toString()
  if (v && v.type === 'Buffer' && Array.isArray(v.data)) return Buffer.from(v.data).toString('hex')
  return v
}

const out = []
fs.createReadStream(file)
  .pipe(new avro.streams.BlockDecoder({
    parseHook: (s) => avro.Type.forSchema(s, { registry: { long: bigLong }, wrapUnions: false }),
  }))
  .on('metadata', (_type, codec, header) => {
    const meta = {}
    for (const [k, v] of Object.entries(header.meta)) meta[k] = v.toString('utf8')
    out.push(JSON.stringify({ codec, meta }))
  })
  .on('data', (r) => out.push(JSON.stringify(r, replacer)))
  .on('error', (e) => { console.error(`avro_dump: ${file}: ${e.message}`); process.exit(1) })
  .on('end', () => { process.stdout.write(out.join('\n') + '\n') })
