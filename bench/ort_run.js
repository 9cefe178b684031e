#!/usr/bin/env node
// Run an ONNX model with ONNX Runtime (onnxruntime-node, CPU) on raw binary inputs and write raw outputs.
// kiln's reference checker in tests and its CPU anchor in benchmarks, so it takes any tensor dtype and
// can time repeated runs.
//
//   node bench/ort_run.js MODEL.onnx --input NAME=FILE.bin[:DIMS[:DTYPE]] ... [--output-dir DIR]
//        [--threads N] [--warmup N] [--iterations N] [--opt disabled|basic|extended|all] [--quiet]
//
// DIMS is like 1x3x640x640 ("" for a scalar). Without DIMS the model's declared input shape is used; if
// exactly one of its dims is symbolic, it is derived from the file size. DTYPE defaults to the model's
// input type (float32 where the session cannot tell). Files are raw little-endian, row-major.
// Each output goes to DIR/<name>.bin (characters outside [A-Za-z0-9._-] in the name become '_'), and a
// line "output NAME DTYPE SHAPE FILE" is printed. With --iterations, the per-run latency summary follows
// as one JSON line ("timing {...}").
// Exit status: 0 ok, 1 ONNX Runtime failed, 2 bad arguments or input files.
'use strict';

const fs = require('fs');
const path = require('path');

const ARRAYS = {
  float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array,
  uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array,
  bool: Uint8Array, float16: Uint16Array,
};

class UsageError extends Error {}

function usage(out) {
  out.write('usage: node bench/ort_run.js MODEL.onnx --input NAME=FILE.bin[:DIMS[:DTYPE]] ... ' +
            '[--output-dir DIR] [--threads N] [--warmup N] [--iterations N] [--opt LEVEL] [--quiet]\n');
}

function parseIntArg(flag, v, min) {
  if (!/^\d+$/.test(v || '') || Number(v) < min) throw new UsageError(`${flag} '${v}' is not an integer >= ${min}`);
  return Number(v);
}

function parseArgs(argv) {
  const a = { model: null, inputs: [], outDir: null, threads: 0, warmup: 0, iterations: 0, opt: 'all', quiet: false };
  for (let i = 0; i < argv.length; i++) {
    let flag = argv[i], val;
    const eq = flag.indexOf('=');
    if (flag.startsWith('--') && eq > 0) { val = flag.slice(eq + 1); flag = flag.slice(0, eq); }
    const takes = ['--input', '-i', '--output-dir', '-o', '--threads', '--warmup', '--iterations', '--opt'];
    if (takes.includes(flag) && val === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`${flag} needs a value`);
      val = argv[++i];
    }
    switch (flag) {
      case '-h': case '--help': usage(process.stdout); process.exit(0); break;
      case '--input': case '-i': a.inputs.push(parseInputSpec(val)); break;
      case '--output-dir': case '-o': a.outDir = val; break;
      case '--threads': a.threads = parseIntArg(flag, val, 1); break;
      case '--warmup': a.warmup = parseIntArg(flag, val, 0); break;
      case '--iterations': a.iterations = parseIntArg(flag, val, 0); break;
      case '--opt':
        if (!['disabled', 'basic', 'extended', 'all'].includes(val)) throw new UsageError(`--opt '${val}' is not disabled|basic|extended|all`);
        a.opt = val; break;
      case '--quiet': case '-q': a.quiet = true; break;
      default:
        if (flag.startsWith('-')) throw new UsageError(`unknown flag '${argv[i]}'`);
        if (a.model) throw new UsageError(`more than one model ('${a.model}' and '${flag}')`);
        a.model = flag;
    }
  }
  if (!a.model) throw new UsageError('no model given');
  return a;
}

// NAME=FILE[:DIMS[:DTYPE]]; the file part may itself contain ':' only if DIMS is given.
function parseInputSpec(spec) {
  const m = /^([^=]+)=(.+?)(?::([0-9]+(?:x[0-9]+)*|)(?::([a-z0-9]+))?)?$/.exec(spec || '');
  if (!m) throw new UsageError(`--input '${spec}' is not NAME=FILE.bin[:DIMS[:DTYPE]]`);
  const [, name, file, dims, dtype] = m;
  if (dtype !== undefined && !ARRAYS[dtype]) throw new UsageError(`--input '${spec}': unknown dtype '${dtype}'`);
  return { name, file, dims: dims === undefined ? null : (dims === '' ? [] : dims.split('x').map(Number)), dtype: dtype || null };
}

function numel(dims) { return dims.reduce((p, d) => p * d, 1); }

function metadataFor(session, name) {
  const md = session.inputMetadata;
  if (!md) return null;
  // Older onnxruntime-common versions key metadata by name; newer ones are arrays in input order.
  if (Array.isArray(md)) return md.find((m) => m.name === name) || null;
  return md[name] || null;
}

function loadInput(ort, session, spec) {
  const meta = metadataFor(session, spec.name);
  const dtype = spec.dtype || (meta && meta.isTensor !== false && meta.type) || 'float32';
  const Arr = ARRAYS[dtype];
  if (!Arr) throw new UsageError(`input '${spec.name}' has dtype '${dtype}', which this runner cannot feed`);
  let buf;
  try { buf = fs.readFileSync(spec.file); } catch (e) { throw new UsageError(`cannot read '${spec.file}': ${e.message}`); }
  const esize = Arr.BYTES_PER_ELEMENT;
  if (buf.length % esize) throw new UsageError(`'${spec.file}' has ${buf.length} bytes, not a whole number of ${dtype}`);
  const count = buf.length / esize;
  let dims = spec.dims;
  if (!dims) {
    if (!meta || !Array.isArray(meta.shape) || (meta.shape.length === 0 && count !== 1))
      throw new UsageError(`input '${spec.name}': the model does not declare its shape; give it as ${spec.name}=${spec.file}:DIMS`);
    dims = meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : null));
    const unknown = dims.filter((d) => d === null).length;
    if (unknown > 1)
      throw new UsageError(`input '${spec.name}' has shape [${meta.shape}] with several symbolic dims; give DIMS`);
    if (unknown === 1) { // derive the one symbolic dim from the file size
      const rest = numel(dims.filter((d) => d !== null));
      if (rest === 0 || count % rest) throw new UsageError(`'${spec.file}' (${count} elements) does not fit shape [${meta.shape}]`);
      dims = dims.map((d) => (d === null ? count / rest : d));
    }
  }
  if (numel(dims) !== count)
    throw new UsageError(`'${spec.file}' has ${count} ${dtype} elements but shape ${dims.join('x') || 'scalar'} needs ${numel(dims)}`);
  // Copy into a fresh, aligned buffer: a Buffer's offset into its pool need not be aligned for the type.
  const data = new Arr(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  return new ort.Tensor(dtype, dtype === 'bool' ? Uint8Array.from(data) : data, dims);
}

function safeName(name) { return name.replace(/[^A-Za-z0-9._-]/g, '_'); }

function summarize(ms) {
  const s = [...ms].sort((x, y) => x - y);
  const q = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
  const mean = s.reduce((p, x) => p + x, 0) / s.length;
  return { iterations: s.length, min_ms: s[0], max_ms: s[s.length - 1], mean_ms: mean, median_ms: q(50),
           p90_ms: q(90), p95_ms: q(95), p99_ms: q(99) };
}

async function main() {
  let args;
  try { args = parseArgs(process.argv.slice(2)); } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`ort_run: ${e.message}\n`); usage(process.stderr); return 2;
  }
  let ort;
  try { ort = require('onnxruntime-node'); } catch (e) {
    process.stderr.write(`ort_run: onnxruntime-node is not installed (run scripts/setup.sh): ${e.message}\n`);
    return 1;
  }
  if (!fs.existsSync(args.model)) { process.stderr.write(`ort_run: cannot read model '${args.model}'\n`); return 2; }
  const opts = { executionProviders: ['cpu'], graphOptimizationLevel: args.opt, executionMode: 'sequential' };
  if (args.threads) { opts.intraOpNumThreads = args.threads; opts.interOpNumThreads = 1; }
  let session;
  try { session = await ort.InferenceSession.create(args.model, opts); } catch (e) {
    process.stderr.write(`ort_run: ONNX Runtime cannot load '${args.model}': ${e.message}\n`); return 2;
  }
  const feeds = {};
  try {
    for (const spec of args.inputs) {
      if (!session.inputNames.includes(spec.name))
        throw new UsageError(`the model has no input '${spec.name}' (inputs: ${session.inputNames.join(', ')})`);
      feeds[spec.name] = loadInput(ort, session, spec);
    }
    const missing = session.inputNames.filter((n) => !(n in feeds));
    if (missing.length) throw new UsageError(`no --input for ${missing.join(', ')}`);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`ort_run: ${e.message}\n`); return 2;
  }
  let results;
  const times = [];
  try {
    for (let i = 0; i < args.warmup; i++) await session.run(feeds);
    results = await session.run(feeds);
    for (let i = 0; i < args.iterations; i++) {
      const t0 = process.hrtime.bigint();
      await session.run(feeds);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  } catch (e) {
    process.stderr.write(`ort_run: ONNX Runtime failed: ${e.message}\n`); return 1;
  }
  if (args.outDir) fs.mkdirSync(args.outDir, { recursive: true });
  for (const name of session.outputNames) {
    const t = results[name];
    let file = '-';
    if (args.outDir) {
      file = path.join(args.outDir, `${safeName(name)}.bin`);
      const d = t.data;
      fs.writeFileSync(file, Buffer.from(d.buffer, d.byteOffset, d.byteLength));
    }
    if (!args.quiet) process.stdout.write(`output ${name} ${t.type} ${t.dims.join('x') || 'scalar'} ${file}\n`);
  }
  if (times.length) process.stdout.write(`timing ${JSON.stringify(summarize(times))}\n`);
  return 0;
}

main().then((code) => { process.exitCode = code; }, (e) => {
  process.stderr.write(`ort_run: ${e && e.stack ? e.stack : e}\n`);
  process.exitCode = 1;
});
