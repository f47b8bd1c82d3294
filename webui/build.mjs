// Builds every file the web app serves into dist/ (or $MYCEL_DIST), beside
// the committed placeholder.html:
//   - index.html, app.css: copied from src/;
//   - app.js: the page (src/main.ts), both of its nodes' UIs;
//   - node.js: the browser node (src/node/, js-libp2p), apart, so that the
//     daemon's control panel does not load js-libp2p;
//   - core.wasm: the browser node's protocol core (./wasm, GOOS=js
//     GOARCH=wasm), and Go's wasm_exec.js that runs it;
//   - hashes.txt: the SHA-256 of each of those, in sha256sum's format.
// The build is reproducible: esbuild's output depends only on its inputs
// and options, and the wasm is built with -trimpath (no local paths),
// -buildvcs=false (no commit or "modified" flag) and -ldflags=-s -w, so two
// builds from the same commit with the same Go and node_modules give the
// same bytes (webui/hashes_browser_test.go checks it). Prints each bundle's
// size and gzip size. `node build.mjs` from webui/ (make webui).
import * as esbuild from "esbuild";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const out = process.env.MYCEL_DIST || "dist";

const common = {
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome110", "firefox115", "safari16"],
  logLevel: "warning",
};

mkdirSync(out, { recursive: true });
await esbuild.build({ ...common, entryPoints: ["src/main.ts"], outfile: join(out, "app.js") });
await esbuild.build({ ...common, entryPoints: ["src/node/main.ts"], outfile: join(out, "node.js") });
copyFileSync("src/index.html", join(out, "index.html"));
copyFileSync("src/app.css", join(out, "app.css"));

// The core: the same flags as make wasm's bin/core.wasm, and no VCS stamp.
execFileSync("go", ["build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", join(out, "core.wasm"), "./wasm/"], {
  env: { ...process.env, GOOS: "js", GOARCH: "wasm" },
  stdio: "inherit",
});
const goroot = execFileSync("go", ["env", "GOROOT"], { encoding: "utf8" }).trim();
copyFileSync(join(goroot, "lib", "wasm", "wasm_exec.js"), join(out, "wasm_exec.js"));

// The files served, and their hashes (the relay and the daemon serve
// hashes.txt too: README, "Who serves the page's code").
const served = ["index.html", "app.css", "app.js", "node.js", "core.wasm", "wasm_exec.js"];
let hashes = "";
for (const f of served) {
  hashes += `${createHash("sha256").update(readFileSync(join(out, f))).digest("hex")}  ${f}\n`;
}
writeFileSync(join(out, "hashes.txt"), hashes);

for (const f of ["app.js", "node.js", "core.wasm"]) {
  const b = readFileSync(join(out, f));
  console.log(`${join(out, f)}: ${b.length} bytes, ${gzipSync(b, { level: 9 }).length} gzip -9`);
}
