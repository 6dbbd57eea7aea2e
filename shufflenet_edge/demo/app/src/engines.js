// One wrapper per WebAssembly runtime, same shape as shufflenet_edge/runtime/engines.py:
// run(input typed array) -> raw output typed array; the caller times run() alone.
// WASM files come from this server (/vendor/...): absolute paths, no CDN.

import { tfliteOutputQuantization } from "./tflite_file.js";

const VENDOR = "/vendor";

function inputShape(meta) {
  const shape = (meta.input_shape || []).map((d) => (d > 0 ? d : 1));
  if (shape.length === 4) return shape;
  const [h, w] = meta.input_size;
  return String(meta.layout).toLowerCase() === "nhwc" ? [1, h, w, 3] : [1, 3, h, w];
}

async function openOnnx(bytes, meta, threads) {
  const ort = await import("onnxruntime-web");
  ort.env.wasm.wasmPaths = `${VENDOR}/onnxruntime-web/`;
  // threads need SharedArrayBuffer, which only a cross-origin isolated page has
  ort.env.wasm.numThreads = self.crossOriginIsolated ? threads : 1;
  ort.env.logLevel = "error";
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ["wasm"], graphOptimizationLevel: "all",
  });
  const shape = inputShape(meta);
  const name = session.inputNames[0];
  const out = session.outputNames[0];
  return {
    engine: "onnxruntime-web",
    threads: ort.env.wasm.numThreads,
    inputDtype: "float32",
    async run(x) {
      const result = await session.run({ [name]: new ort.Tensor("float32", x, shape) });
      return result[out].data;
    },
    dispose() { session.release?.(); },
  };
}

async function openTflite(bytes, meta, threads) {
  const tflite = await import("@tensorflow/tfjs-tflite");
  tflite.setWasmPath(`${VENDOR}/tfjs-tflite/wasm/`);
  const model = await tflite.loadTFLiteModel(bytes.buffer, { numThreads: self.crossOriginIsolated ? threads : 1 });
  // the model runner underneath TFLiteModel takes int8 input directly (tfjs tensors have no int8)
  const runner = model.modelRunner;
  const inputs = runner.getInputs();
  if (inputs.length !== 1) throw new Error(`expected one input tensor, the file has ${inputs.length}`);
  const dtype = inputs[0].dataType;
  const outputQuantization = tfliteOutputQuantization(bytes);
  return {
    outputQuantization,
    engine: "tfjs-tflite",
    threads: self.crossOriginIsolated ? threads : 1,
    inputDtype: dtype,
    async run(x) {
      runner.getInputs()[0].data().set(x);
      if (!runner.infer()) throw new Error("TFLite inference failed");
      return runner.getOutputs()[0].data().slice();
    },
    dispose() { runner.cleanUp?.(); },
  };
}

export async function openEngine(entry, bytes, threads) {
  const open = entry.format === "onnx" ? openOnnx : openTflite;
  return open(bytes, entry.metadata, threads);
}

// Raw output -> float logits (an int8 output is dequantized with its own scale / zero point).
export function toLogits(raw, engine) {
  const q = engine.outputQuantization;
  if (!q?.scale || raw instanceof Float32Array) return Float32Array.from(raw);
  return Float32Array.from(raw, (v) => (v - q.zero_point) * q.scale);
}
