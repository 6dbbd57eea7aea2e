// The quantization of a .tflite file's output tensor, read from the flatbuffer itself: the
// WebAssembly runtime exposes tensor data but not scale / zero point, and the sidecar records
// only the input's. Field numbers follow TFLite's schema.fbs (Model.subgraphs = 2,
// SubGraph.tensors = 0 / outputs = 2, Tensor.type = 1 / quantization = 4,
// QuantizationParameters.scale = 2 / zero_point = 3).

class Table {
  constructor(view, pos) {
    this.view = view;
    this.pos = pos;
    this.vtable = pos - view.getInt32(pos, true);
    this.vtSize = view.getUint16(this.vtable, true);
  }

  offset(field) {
    const at = 4 + 2 * field;
    return at < this.vtSize ? this.view.getUint16(this.vtable + at, true) : 0;
  }

  ref(field) { // position a uoffset field points to, or -1
    const off = this.offset(field);
    if (!off) return -1;
    const at = this.pos + off;
    return at + this.view.getUint32(at, true);
  }

  table(field) { const p = this.ref(field); return p < 0 ? null : new Table(this.view, p); }

  vector(field) { // [start, length] of a vector field
    const p = this.ref(field);
    return p < 0 ? [0, 0] : [p + 4, this.view.getUint32(p, true)];
  }

  tables(field) {
    const [start, n] = this.vector(field);
    return Array.from({ length: n }, (_, i) => new Table(this.view, start + 4 * i + this.view.getUint32(start + 4 * i, true)));
  }

  scalar(field, getter, fallback = 0) {
    const off = this.offset(field);
    return off ? this.view[getter](this.pos + off, true) : fallback;
  }
}

const TYPES = { 0: "float32", 3: "uint8", 9: "int8", 2: "int32" };

// {dtype, scale, zero_point} of subgraph 0's first output (scale/zero_point null when float).
export function tfliteOutputQuantization(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 8 || String.fromCharCode(...bytes.subarray(4, 8)) !== "TFL3") {
    throw new Error("not a TFLite flatbuffer (no TFL3 identifier)");
  }
  const model = new Table(view, view.getUint32(0, true));
  const graph = model.tables(2)[0];
  if (!graph) throw new Error("the TFLite file has no subgraph");
  const [outStart, nOut] = graph.vector(2);
  if (!nOut) throw new Error("the TFLite file has no output tensor");
  const tensor = graph.tables(0)[view.getInt32(outStart, true)];
  const dtype = TYPES[tensor.scalar(1, "getInt8")] ?? "other";
  const q = tensor.table(4);
  if (dtype === "float32" || !q) return { dtype, scale: null, zero_point: null };
  const [sStart, ns] = q.vector(2);
  const [zStart, nz] = q.vector(3);
  return { dtype, scale: ns ? view.getFloat32(sStart, true) : null,
           zero_point: nz ? Number(view.getBigInt64(zStart, true)) : 0 };
}
