// Statistics with numpy's conventions (linear-interpolated percentiles), so the page and
// `edge bench` report the same numbers for the same samples.

export function percentile(values, q) {
  if (!values.length) return NaN;
  const a = Float64Array.from(values).sort();
  const pos = (a.length - 1) * q / 100;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, a.length - 1);
  return a[lo] + (a[hi] - a[lo]) * (pos - lo);
}

export function summary(values) {
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  return { n: values.length, min: Math.min(...values), mean, p50: percentile(values, 50), p90: percentile(values, 90) };
}

export function softmax(logits) {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  const e = Array.from(logits, (v) => Math.exp(v - max));
  const sum = e.reduce((s, v) => s + v, 0);
  return e.map((v) => v / sum);
}

export function topK(probs, labels, k = 5) {
  return Array.from(probs, (score, i) => ({ label: labels?.[i] ?? String(i), score, index: i }))
    .sort((a, b) => b.score - a.score)
    .slice(0, k);
}

// A fixed standard-normal input (Box-Muller over a seeded LCG): benchmark timings do not depend
// on the camera, like runner.py's bench_input.
export function standardNormal(n, seed = 0) {
  let s = (seed * 2654435761 + 1) >>> 0;
  const uniform = () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return (s + 0.5) / 4294967296; };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const t = 2 * Math.PI * uniform();
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}
