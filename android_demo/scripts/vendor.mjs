// Copy the few runtime files the demo page loads out of node_modules into the Python package
// (shufflenet_edge/demo/app/vendor/), so `edge demo` serves them from a checkout and from an
// installed wheel alike. The npm packages are large (onnxruntime-web's dist is ~136 MB,
// tfjs-tflite ~41 MB); the page needs ~26 MB of them. Runs as `npm ci`'s postinstall step.
//   node scripts/vendor.mjs [DEST]
import { copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = resolve(here, "..", "node_modules");
const dest = resolve(process.argv[2] || join(here, "..", "..", "shufflenet_edge", "demo", "app", "vendor"));

// URL folder under /vendor/ -> [npm package, folder inside it, files the page (or the runtime it loads) fetches]
const FILES = {
  "onnxruntime-web": ["onnxruntime-web", "dist",
    ["ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"]],
  "tfjs-core": ["@tensorflow/tfjs-core", "dist", ["tf-core.fesm.min.js"]],
  "tfjs-tflite": ["@tensorflow/tfjs-tflite", "",
    ["dist/tf-tflite.fesm.min.js",
     ...["tflite_web_api_cc", "tflite_web_api_cc_simd", "tflite_web_api_cc_simd_threaded"]
       .flatMap((n) => [`wasm/${n}.js`, `wasm/${n}.wasm`])]],
};

// build beside the destination, then swap it in: a half-copied folder is never what the server sees
const tmp = `${dest}.${process.pid}.tmp`;
rmSync(tmp, { recursive: true, force: true });
const versions = {};
for (const [name, [pkg, folder, files]] of Object.entries(FILES)) {
  const root = join(modules, pkg);
  versions[name] = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
  for (const file of files) {
    const to = join(tmp, name, file);
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(join(root, folder, file), to);
  }
}
writeFileSync(join(tmp, "versions.json"), `${JSON.stringify(versions, null, 2)}\n`);
rmSync(dest, { recursive: true, force: true });
renameSync(tmp, dest);
console.log(`vendored ${Object.keys(FILES).join(", ")} into ${dest}`);
