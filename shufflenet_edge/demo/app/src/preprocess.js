// Raw 8-bit RGB -> model input, step for step as shufflenet_edge/data/transforms.py and
// runtime/engines.py do it (float32 arithmetic, numpy's round-half-to-even), so an image gives
// the same input tensor here as in Python.

const f32 = Math.fround;

// Cover-resize (aspect kept) and centre-crop `source` to h x w; returns RGBA bytes.
export function drawCropped(source, width, height, h, w, canvas) {
  const scale = Math.max(h / height, w / width);
  const rh = Math.max(h, Math.round(height * scale));
  const rw = Math.max(w, Math.round(width * scale));
  const top = Math.floor((rh - h) / 2);
  const left = Math.floor((rw - w) / 2);
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(source, -left, -top, rw, rh);
  return ctx.getImageData(0, 0, w, h).data;
}

export function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

const RANGES = { int8: [-128, 127], uint8: [0, 255] };

// Float32 values (in the file's layout) -> the file's input dtype, using the sidecar's
// input_quantization {scale, zero_point, dtype} for integer inputs.
export function quantizeInput(x, q) {
  if (!q) return x;
  const [lo, hi] = RANGES[q.dtype] ?? (() => { throw new Error(`unsupported input dtype ${q.dtype}`); })();
  const out = q.dtype === "uint8" ? new Uint8Array(x.length) : new Int8Array(x.length);
  const scale = f32(q.scale);
  for (let i = 0; i < x.length; i++) {
    out[i] = Math.min(hi, Math.max(lo, roundHalfEven(f32(x[i] / scale)) + q.zero_point));
  }
  return out;
}

// RGBA bytes of an h x w crop -> float32 input in the sidecar's layout ("nchw" | "nhwc").
export function normalize(rgba, h, w, meta) {
  const p = meta.preprocessing || {};
  const scale = f32(p.pixel_scale ?? 255);
  const mean = (p.mean ?? [0, 0, 0]).map(f32);
  const std = (p.std ?? [1, 1, 1]).map(f32);
  const bgr = String(p.channel_order || "RGB").toUpperCase() === "BGR";
  const nhwc = String(meta.layout || "nchw").toLowerCase() === "nhwc";
  const out = new Float32Array(3 * h * w);
  const plane = h * w;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const src = bgr ? 2 - c : c;
      const v = f32(f32(f32(rgba[4 * i + src] / scale) - mean[c]) / std[c]);
      out[nhwc ? 3 * i + c : c * plane + i] = v;
    }
  }
  return out;
}

export function checkMetadata(meta, file) {
  const missing = ["input_size", "preprocessing"].filter((k) => !meta?.[k]);
  if (!meta) throw new Error(`${file} has no metadata: ${file}.json must sit beside it (edge export writes it)`);
  if (missing.length) throw new Error(`${file}.json lacks ${missing.join(", ")}: re-export it with edge export`);
  const q = meta.input_quantization;
  if (q && !(q.dtype in RANGES)) throw new Error(`${file}: input dtype ${q.dtype} is not supported by this page`);
}
