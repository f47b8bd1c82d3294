// Bundles the app into dist/ (index.html, app.js, app.css) beside the
// committed placeholder.html, and the browser node (src/node/, js-libp2p)
// into dist/node.js apart, so that the control panel does not carry
// js-libp2p. Prints each bundle's size and gzip size. `node build.mjs`
// from webui/ (make webui).
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const common = {
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome110", "firefox115", "safari16"],
  logLevel: "warning",
};

mkdirSync("dist", { recursive: true });
await esbuild.build({ ...common, entryPoints: ["src/main.ts"], outfile: "dist/app.js" });
await esbuild.build({ ...common, entryPoints: ["src/node/main.ts"], outfile: "dist/node.js" });
copyFileSync("src/index.html", "dist/index.html");
copyFileSync("src/app.css", "dist/app.css");

for (const f of ["dist/app.js", "dist/node.js"]) {
  const b = readFileSync(f);
  console.log(`${f}: ${b.length} bytes, ${gzipSync(b, { level: 9 }).length} gzip -9`);
}
