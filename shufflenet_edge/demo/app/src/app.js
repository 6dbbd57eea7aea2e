// The page: pick a model, classify camera frames or a picked file, benchmark and report.
// window.edgeDemo lets scripts and tests drive the same code paths as the buttons.
import { openEngine, toLogits } from "./engines.js";
import { checkMetadata, drawCropped, normalize, quantizeInput } from "./preprocess.js";
import { percentile, softmax, standardNormal, topK } from "./stats.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const WINDOW = 30; // frames the live latency figures cover
// untimed runs after loading a model: the first runs compile kernels and fill caches (a cold first
// run was shown as "median 248 ms" for a file that runs in 2 ms)
const WARMUP_RUNS = 3;
const state = { models: [], runtimes: {}, entry: null, engine: null, latencies: [], stream: null, busy: false,
                warmedUp: 0, firstLatency: null };
const canvas = document.createElement("canvas");

function say(text, info = false) {
  $("message").textContent = text;
  $("message").className = info ? "info" : "";
}

const fmtBytes = (n) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`);
const fmtMs = (v) => `${v.toFixed(2)} ms`;

function threadsWanted() {
  const n = parseInt(params.get("threads") || "1", 10);
  return Number.isFinite(n) && n > 0 ? n : 1;
}

function showFacts() {
  const e = state.entry;
  const m = e?.metadata || {};
  $("f-model").textContent = e ? `${m.model || e.file} (${e.file})` : "-";
  $("f-precision").textContent = e ? `${m.precision || "?"} ${e.format}${m.input_size ? `, ${m.input_size.join("x")}` : ""}` : "-";
  $("f-size").textContent = e ? fmtBytes(e.size_bytes) : "-";
  $("f-macs").textContent = m.macs ? `${(m.macs / 1e6).toFixed(1)} M` : "-";
  $("f-engine").textContent = state.engine
    ? `${state.engine.engine} ${state.runtimes[state.engine.engine] || ""}, ${state.engine.threads} thread(s), input ${state.engine.inputDtype}` : "-";
  $("f-device").textContent = `${navigator.userAgent}; ${navigator.hardwareConcurrency} logical cores`;
}

function showLatency() {
  const l = state.latencies;
  $("f-latency").textContent = l.length
    ? `median ${fmtMs(percentile(l, 50))}, p90 ${fmtMs(percentile(l, 90))} over the last ${l.length} inference(s), `
      + `after ${state.warmedUp} warm-up run(s)` : "-";
  if (l.length && !state.firstLatency) {
    state.firstLatency = { text: $("f-latency").textContent, warmup_runs_before: state.warmedUp };
  }
}

// a random input of the loaded file's shape and type (warm-up and benchmark runs)
function randomInput() {
  const m = state.entry.metadata;
  const [h, w] = m.input_size;
  return quantizeInput(standardNormal(3 * h * w), state.engine.inputDtype === "float32" ? null : m.input_quantization);
}

// untimed runs, so the first latency shown is a warm one
async function warmUp(runs = WARMUP_RUNS) {
  const x = randomInput();
  for (let i = 0; i < runs; i++) {
    await state.engine.run(x);
    state.warmedUp += 1;
  }
}

function sibling(entry, format) {
  const stem = entry.file.replace(/\.(onnx|tflite)$/i, "");
  return state.models.find((m) => m.format === format && m.file.replace(/\.(onnx|tflite)$/i, "") === stem);
}

async function loadModel(file, why = "") {
  const entry = state.models.find((m) => m.file === file);
  if (!entry) throw new Error(`no model ${file} on this server`);
  state.engine?.dispose();
  Object.assign(state, { entry, engine: null, latencies: [], warmedUp: 0, firstLatency: null });
  $("model").value = file;
  showFacts();
  showLatency();
  checkMetadata(entry.metadata, entry.file);
  say(`loading ${entry.file} ...`, true);
  const resp = await fetch(entry.url);
  if (!resp.ok) throw new Error(`cannot fetch ${entry.file}: HTTP ${resp.status}`);
  const bytes = new Uint8Array(await resp.arrayBuffer());
  try {
    state.engine = await openEngine(entry, bytes, threadsWanted());
  } catch (err) {
    const why = String(err?.message || err).split("\n")[0].slice(0, 300);
    let hint = "";
    if (entry.format === "tflite") {
      const onnx = sibling(entry, "onnx");
      hint = onnx ? ` Try the ONNX file ${onnx.file} instead (onnxruntime-web).` : " Export the ONNX file of the same precision (edge export --format onnx) and pick it.";
    }
    throw new Error(`this browser's ${entry.format === "onnx" ? "onnxruntime-web" : "TFLite WebAssembly runtime"} cannot run ${entry.file}: ${why}.${hint}`);
  }
  showFacts();
  say(`${entry.file}: ${WARMUP_RUNS} warm-up runs ...`, true);
  await warmUp();
  say(`${entry.file} ready${why ? ` (${why})` : ""}`, true);
  return entry;
}

// image (HTMLImageElement / ImageBitmap / video) -> the file's input tensor
function tensorFrom(source, width, height) {
  const m = state.entry.metadata;
  const [h, w] = m.input_size;
  const rgba = drawCropped(source, width, height, h, w, canvas);
  return quantizeInput(normalize(rgba, h, w, m), state.engine.inputDtype === "float32" ? null : m.input_quantization);
}

async function infer(x) {
  const t0 = performance.now();
  const raw = await state.engine.run(x);
  const ms = performance.now() - t0;
  state.latencies.push(ms);
  if (state.latencies.length > WINDOW) state.latencies.shift();
  return { raw, ms };
}

function showTop5(top5) {
  $("top5").replaceChildren(...top5.map(({ label, score }) => {
    const li = document.createElement("li");
    li.textContent = `${label}: ${(score * 100).toFixed(1)}%`;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.round(score * 120)}px`;
    li.append(bar);
    return li;
  }));
}

async function classifySource(source, width, height) {
  if (!state.engine) throw new Error("no model is loaded");
  const { raw, ms } = await infer(tensorFrom(source, width, height));
  const probs = softmax(toLogits(raw, state.engine));
  const top5 = topK(probs, state.entry.metadata.labels).map(({ label, score }) => ({ label, score }));
  showTop5(top5);
  showLatency();
  return { top5, latency_ms: ms };
}

async function classify(imageUrl) {
  const resp = await fetch(imageUrl);
  if (!resp.ok) throw new Error(`cannot fetch ${imageUrl}: HTTP ${resp.status}`);
  const blob = await resp.blob();
  // raw pixel values: no colour-space conversion, so the page sees the bytes Python reads
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const img = $("picture");
  img.src = URL.createObjectURL(blob);
  img.hidden = false;
  $("video").hidden = true;
  return classifySource(bitmap, bitmap.width, bitmap.height);
}

// Warm-up, then `runs` timed inferences in `rounds` chunks: the loop of runtime/timing.py.
async function bench(runs = parseInt(params.get("runs") || "50", 10), options = {}) {
  if (!state.engine) throw new Error("no model is loaded");
  const warmup = options.warmup ?? parseInt(params.get("warmup") || "5", 10);
  const nRounds = Math.max(1, Math.min(options.rounds ?? parseInt(params.get("rounds") || "5", 10), runs));
  const x = randomInput();
  for (let i = 0; i < warmup; i++) await state.engine.run(x);
  const rounds = [];
  for (let r = 0; r < nRounds; r++) {
    const n = Math.floor(runs / nRounds) + (r < runs % nRounds ? 1 : 0);
    const got = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await state.engine.run(x);
      got.push(performance.now() - t0);
    }
    rounds.push(got);
    $("f-bench").textContent = `round ${r + 1}/${nRounds} ...`;
  }
  const all = rounds.flat();
  const stats = { runs: all.length, warmup, p50: percentile(all, 50), p90: percentile(all, 90),
                  min: Math.min(...all), mean: all.reduce((s, v) => s + v, 0) / all.length };
  $("f-bench").textContent = `${all.length} runs: p50 ${fmtMs(stats.p50)}, p90 ${fmtMs(stats.p90)}, min ${fmtMs(stats.min)}`;
  const report = {
    artifact: state.entry.file, engine: state.engine.engine, runtime_version: state.runtimes[state.engine.engine] || "",
    threads: state.engine.threads, batch: 1, warmup, rounds_ms: rounds, user_agent: navigator.userAgent,
    hardware_concurrency: navigator.hardwareConcurrency || null,
    platform: navigator.userAgentData?.platform || navigator.platform || "", cross_origin_isolated: self.crossOriginIsolated,
  };
  if (options.report !== false) {
    const resp = await fetch("/api/report", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(report) });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(`the server rejected the report: ${body.error || resp.status}`);
    stats.saved = body.saved;
    $("f-bench").textContent += ` (saved on the server: ${body.saved})`;
  }
  return stats;
}

async function cameraLoop() {
  const video = $("video");
  while (state.stream) {
    if (state.engine && video.readyState >= 2 && !state.busy) {
      state.busy = true;
      try { await classifySource(video, video.videoWidth, video.videoHeight); } catch (err) { say(err.message); }
      state.busy = false;
    }
    await new Promise((r) => requestAnimationFrame(r));
  }
}

async function toggleCamera() {
  if (state.stream) {
    state.stream.getTracks().forEach((t) => t.stop());
    state.stream = null;
    $("camera").textContent = "Camera";
    return;
  }
  if (!navigator.mediaDevices?.getUserMedia) throw new Error("no camera access here: open the page over https or http://localhost (adb reverse)");
  state.stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: "environment" } }, audio: false });
  const video = $("video");
  video.srcObject = state.stream;
  video.hidden = false;
  $("picture").hidden = true;
  await video.play();
  $("camera").textContent = "Stop camera";
  cameraLoop();
}

const guarded = (fn) => async (...args) => { try { await fn(...args); } catch (err) { say(err.message || String(err)); } };

async function init() {
  $("isolation").textContent = self.crossOriginIsolated ? "cross-origin isolated: WASM threads on" : "not isolated: 1 thread";
  const threads = $("threads");
  const cores = navigator.hardwareConcurrency || 1;
  for (const n of [...new Set([1, 2, 4, cores])].filter((n) => n <= Math.max(cores, 1)).sort((a, b) => a - b)) {
    threads.add(new Option(String(n), String(n), false, n === threadsWanted()));
  }
  threads.onchange = () => { params.set("threads", threads.value); location.search = params.toString(); };
  showFacts();
  const resp = await fetch("/api/models");
  if (!resp.ok) throw new Error(`cannot list models: HTTP ${resp.status}`);
  const listing = await resp.json();
  state.models = listing.models;
  state.runtimes = listing.runtimes || {};
  const skipped = listing.skipped || [];
  if (!state.models.length) {
    const left = skipped.length ? ` (${skipped.length} left out: ${skipped[0].file}: ${skipped[0].reason})` : "";
    throw new Error(`no verified .onnx or .tflite files in ${listing.models_dir}: export one with edge export${left}`);
  }
  for (const m of state.models) $("model").add(new Option(`${m.file} (${fmtBytes(m.size_bytes)})`, m.file));
  $("model").onchange = guarded(() => loadModel($("model").value));
  $("camera").onclick = guarded(toggleCamera);
  $("file").onchange = guarded(async () => {
    const f = $("file").files[0];
    if (f) await classify(URL.createObjectURL(f));
  });
  $("bench").onclick = guarded(() => bench());
  const wanted = params.get("model");
  if (wanted && !state.models.some((m) => m.file === wanted)) {
    const left = skipped.find((m) => m.file === wanted);
    throw new Error(left ? `${wanted} is not offered: ${left.reason}` : `model ${wanted} is not on this server`);
  }
  // the server picks the default: the fastest by its latest browser report, else a preference order
  const pick = wanted ? { file: wanted, why: "named in the URL" } : (listing.default || { file: state.models[0].file, why: "" });
  await loadModel(pick.file, pick.why);
  if (skipped.length) {
    const names = skipped.slice(0, 3).map((m) => `${m.file} (${m.reason})`).join("; ");
    say(`${$("message").textContent}. Not offered: ${names}${skipped.length > 3 ? ` and ${skipped.length - 3} more` : ""}`, true);
  }
}

const ready = init().catch((err) => { say(err.message || String(err)); throw err; });
window.edgeDemo = {
  ready, classify, bench, load: loadModel,
  get model() { return state.entry?.file ?? null; },
  get warmup() { return { runs: state.warmedUp, first_latency: state.firstLatency }; },
  get engine() { return state.engine ? { engine: state.engine.engine, threads: state.engine.threads, input: state.engine.inputDtype } : null; },
};

if ("serviceWorker" in navigator && params.get("sw") !== "0") {
  navigator.serviceWorker.register("/sw.js").catch(() => {});
}
