// Package archtest holds tests of the module's architecture: which packages
// may import what, and that the protocol core builds for WebAssembly.
package archtest
