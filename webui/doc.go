// Package webui is mycel's web app, the daemon's control panel, and its
// embedding into the mycel binary. The browser node (DESIGN.md, "The
// browser node") will be a second implementation of the same page's Node
// interface (src/node.ts).
//
// The app is TypeScript in src/, bundled by esbuild (build.mjs) into
// dist/: index.html, app.js and app.css. `make build` (and make run, make
// test) runs `npm ci` and the bundle before compiling Go. The bundle is not
// committed: dist/ holds one committed file, placeholder.html, so that
// `go build ./...` on a clean clone compiles; a binary built that way
// serves the placeholder, which says to run make build (Built reports it).
//
// The browser node's protocol core is wasm/: mycel's core packages
// compiled with GOOS=js GOARCH=wasm behind a small JavaScript API
// (wasm/core holds the calls and their test vectors, wasm/main.go binds them
// with syscall/js, src/wasmcore.ts types and loads them; `make wasm` builds
// bin/core.wasm and prints its gzip size). wasm_browser_test.go checks the
// vectors through it in headless chromium.
//
// The daemon's API server (package node/api) serves Dist at / behind a
// session cookie: see node/api/ui.go for the login link that makes one.
package webui
