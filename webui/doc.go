// Package webui will hold the web app — the daemon's control panel and the
// browser node, whose protocol core is mycel's Go code compiled to
// WebAssembly — and its embedding into the mycel binary.
//
// Not built yet: this file only reserves the package. See DESIGN.md,
// "The browser node" and "The daemon's surface".
package webui
