// Offline support: every same-origin GET is fetched from the network when it can be and kept in
// a cache; without a network the cached copy answers, so an installed app keeps working with
// the runtimes and models it has used. Responses keep their COOP/COEP headers.
const CACHE = "shufflenet-edge-demo-v1";
const SHELL = ["/", "/src/app.js", "/src/engines.js", "/src/preprocess.js", "/src/stats.js", "/src/tflite_file.js", "/src/style.css",
               "/manifest.webmanifest", "/icons/icon-192.png", "/icons/icon-512.png",
               "/vendor/onnxruntime-web/ort.wasm.min.mjs"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const resp = await fetch(req);
      if (resp.ok && resp.status === 200) cache.put(req, resp.clone());
      return resp;
    } catch (err) {
      const hit = await cache.match(req, { ignoreSearch: url.pathname === "/" });
      if (hit) return hit;
      throw err;
    }
  })());
});
