// Drive the demo page in headless Chromium (Debian's /usr/bin/chromium, through playwright-core):
//   node scripts/drive.mjs URL [--classify IMAGE_URL] [--bench RUNS] [--click-bench] [--screenshot FILE.png]
// Prints one JSON line: {model, engine, classify, warmup, bench, message} or {error}.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, ...rest] = process.argv.slice(2);
const opt = {};
for (let i = 0; i < rest.length; i++) {
  const key = rest[i].replace(/^--/, "");
  opt[key] = rest[i + 1] && !rest[i + 1].startsWith("--") ? rest[++i] : true;
}
const profile = mkdtempSync(join(tmpdir(), "edge-demo-chromium-"));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  ignoreHTTPSErrors: true,
  viewport: { width: 420, height: 760 },
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"],
});
const out = {};
try {
  const page = browser.pages()[0] || await browser.newPage();
  await page.goto(url, { waitUntil: "load", timeout: 60000 });
  await page.waitForFunction(() => window.edgeDemo, null, { timeout: 60000 });
  out.ready_error = await page.evaluate(() => window.edgeDemo.ready.then(() => null, (e) => String(e.message || e)));
  out.model = await page.evaluate(() => window.edgeDemo.model);
  out.engine = await page.evaluate(() => window.edgeDemo.engine);
  out.cross_origin_isolated = await page.evaluate(() => self.crossOriginIsolated);
  if (!out.ready_error) {
    if (opt.classify) {
      // a local file goes in as a data: URL (the server serves no images)
      const src = existsSync(opt.classify) ? `data:image/png;base64,${readFileSync(opt.classify).toString("base64")}` : opt.classify;
      out.classify = await page.evaluate((u) => window.edgeDemo.classify(u), src);
      out.warmup = await page.evaluate(() => window.edgeDemo.warmup);
    }
    if (opt.bench) out.bench = await page.evaluate((n) => window.edgeDemo.bench(n), parseInt(opt.bench, 10));
    if (opt["click-bench"]) {
      await page.click("#bench");
      // until the report is saved (or refused), or an error shows: an info line ("... ready") is no reason to stop,
      // and closing the browser then loses the report (a suite run under load did)
      await page.waitForFunction(() => /saved on the server|rejected/.test(document.getElementById("f-bench").textContent)
        || (document.getElementById("message").textContent && document.getElementById("message").className !== "info"),
        null, { timeout: 300000 });
    }
  }
  out.message = await page.evaluate(() => document.getElementById("message").textContent);
  if (opt.screenshot) await page.screenshot({ path: opt.screenshot, fullPage: true });
} catch (err) {
  out.error = String(err.message || err).split("\n")[0];
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
