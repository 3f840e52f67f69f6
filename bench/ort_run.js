#!/usr/bin/env node
// ort_run: runs the AlignSeg graph exported by bench/torch_alignseg.py with
// ONNX Runtime (npm package onnxruntime-node, CPU execution provider) for
// bench/compare. Two modes:
//   node ort_run.js bench --model M.onnx --size S --threads N --runs R
//        prints one JSON line: per-run times (ms, after one warm-up) and peak RSS
//   node ort_run.js check --model M.onnx --input X.npy --out DIR
//        writes tokens.npy, prototypes.npy, ... computed from the given input
// The module is looked up in ALIGNSEG_BENCH_DEPS/node_modules (see bench/README.md).
'use strict';
const fs = require('fs');
const path = require('path');
const os = require('os');

function loadOrt() {
  const deps = process.env.ALIGNSEG_BENCH_DEPS ||
    path.join(os.homedir(), '.cache', 'alignseg-bench');
  try {
    return require(path.join(deps, 'node_modules', 'onnxruntime-node'));
  } catch (e) {
    return require('onnxruntime-node');
  }
}

function parseArgs(argv) {
  const a = { mode: argv[0], threads: os.cpus().length, runs: 5, size: 448 };
  for (let i = 1; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '');
    a[k] = ['threads', 'runs', 'size'].includes(k) ? parseInt(argv[i + 1], 10) : argv[i + 1];
  }
  return a;
}

// The deterministic normalised test image (same formula as torch_alignseg.py
// test_image and alignseg bench --save-input).
function testImage(size) {
  const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
  const out = new Float32Array(3 * size * size);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const v = 0.5 + 0.5 * Math.sin(0.05 * x * (c + 1) + 0.031 * y * (3 - c) + c);
        out[(c * size + y) * size + x] = (v - mean[c]) / std[c];
      }
  return out;
}

// Minimal .npy reader (float32, little-endian, C order) and writer.
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(file + ': not a .npy file');
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  if (!/'descr':\s*'<f4'/.test(header) || /'fortran_order':\s*True/.test(header))
    throw new Error(file + ': expected little-endian float32 in C order: ' + header);
  const shape = header.match(/'shape':\s*\(([^)]*)\)/)[1].split(',')
    .map((s) => s.trim()).filter((s) => s.length).map(Number);
  const off = start + hlen;
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + buf.length));
  return { shape, data };
}

function writeNpy(file, tensor) {
  const kinds = { float32: ['<f4', Float32Array], int64: ['<i8', BigInt64Array],
    uint8: ['|u1', Uint8Array], bool: ['|b1', Uint8Array] };
  const [descr] = kinds[tensor.type];
  const shape = tensor.dims.length === 1 ? '(' + tensor.dims[0] + ',)' :
    '(' + tensor.dims.join(', ') + ')';
  let header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ', }';
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1; pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const d = tensor.data;
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'),
    Buffer.from(d.buffer, d.byteOffset, d.byteLength)]));
}

// Drop 8-connected foreground components of at most maxSize cells (docs/METHOD.md 4.6).
function dropSmallComponents(mask, gh, gw, maxSize) {
  const m = Uint8Array.from(mask, (v) => (v ? 1 : 0));
  const seen = new Uint8Array(gh * gw);
  const stack = [], comp = [];
  for (let s = 0; s < gh * gw; s++) {
    if (!m[s] || seen[s]) continue;
    stack.length = 0; comp.length = 0;
    stack.push(s); seen[s] = 1;
    while (stack.length) {
      const c = stack.pop();
      comp.push(c);
      const y = Math.floor(c / gw), x = c % gw;
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy, xx = x + dx;
          if (yy < 0 || yy >= gh || xx < 0 || xx >= gw) continue;
          const n = yy * gw + xx;
          if (m[n] && !seen[n]) { seen[n] = 1; stack.push(n); }
        }
    }
    if (comp.length <= maxSize) for (const c of comp) m[c] = 0;
  }
  return m;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const ort = loadOrt();
  const opts = {
    executionProviders: ['cpu'],
    intraOpNumThreads: a.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  };
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(a.model, opts);
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  let img, size;
  if (a.mode === 'check') {
    const npy = readNpy(a.input);
    img = npy.data; size = npy.shape[1];
  } else {
    size = a.size; img = testImage(size);
  }
  const feeds = { image: new ort.Tensor('float32', img, [3, size, size]) };
  if (a.mode === 'check') {
    const out = await session.run(feeds);
    fs.mkdirSync(a.out, { recursive: true });
    for (const name of ['tokens', 'prototypes', 'cls_attn', 'assign', 'labels'])
      writeNpy(path.join(a.out, (name === 'labels' ? 'labels_full' : name) + '.npy'), out[name]);
    const n = out.tokens.dims[0], gh = Math.round(Math.sqrt(n));
    const fg = dropSmallComponents(out.fg_candidates.data, gh, n / gh, 2);
    writeNpy(path.join(a.out, 'fg_mask.npy'), { type: 'uint8', dims: [n], data: fg });
    return;
  }
  const times = [];
  for (let r = 0; r <= a.runs; r++) {
    const s = process.hrtime.bigint();
    const out = await session.run(feeds);
    const n = out.tokens.dims[0], gh = Math.round(Math.sqrt(n));
    dropSmallComponents(out.fg_candidates.data, gh, n / gh, 2);
    const e = process.hrtime.bigint();
    if (r > 0) times.push(Number(e - s) / 1e6);
  }
  const rss = process.resourceUsage().maxRSS / 1024;
  console.log(JSON.stringify({ runtime: 'onnxruntime', size, threads: a.threads,
    times_ms: times, peak_rss_mib: rss, load_ms: loadMs }));
}

main().catch((e) => { console.error('ort_run: ' + (e && e.message ? e.message : e)); process.exit(1); });
