package webui_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mycelsync/mycel/webui/wasm/core"
)

// wasmReport is what mycelWasmCheck (src/wasmcheck.ts) returns.
type wasmReport struct {
	Checked    int      `json:"checked"`
	Refused    int      `json:"refused"`
	Fails      []string `json:"fails"`
	Replicated int      `json:"replicated"`
	Frames     int      `json:"frames"`
	LoadMs     float64  `json:"loadMs"`
	ReplMs     float64  `json:"replMs"`
	ViewKeys   int      `json:"viewKeys"`
	SealMs     float64  `json:"sealMs"`
	ViewMs     float64  `json:"viewMs"`
}

// TestWasmCoreInBrowser runs the protocol core compiled to WebAssembly in
// headless chromium: the test vectors Go checks (core.TestVectors) are
// checked again through the JavaScript API (signed heads, batches with
// proofs, sealed entries, a view's digest, envelopes, a password sign-in),
// with every flipped-byte vector refused; an entry sealed in the page opens
// only at its index; and two in-page nodes replicate a feed by passing
// /mycel/sync frames. A copy of the vectors with one flipped head marked
// valid must make the page report a failure: the check is not vacuous.
func TestWasmCoreInBrowser(t *testing.T) {
	dir := t.TempDir()
	wasm := filepath.Join(dir, "core.wasm")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", wasm, "./wasm")
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build the wasm core: %v\n%s", err, out)
	}
	esbuild := filepath.Join("node_modules", ".bin", "esbuild")
	if _, err := os.Stat(esbuild); err != nil {
		t.Fatalf("%s: %v (make webui runs npm ci)", esbuild, err)
	}
	if out, err := exec.Command(esbuild, "src/wasmcheck.ts", "--bundle", "--format=iife",
		"--target=chrome110", "--log-level=warning", "--outfile="+filepath.Join(dir, "check.js")).CombinedOutput(); err != nil {
		t.Fatalf("esbuild: %v\n%s", err, out)
	}
	copyWasmExec(t, dir)
	vecBytes, err := os.ReadFile("wasm/core/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	vectors, err := core.ParseVectors(vecBytes)
	if err != nil {
		t.Fatal(err)
	}
	wantChecked, wantRefused := 2, 0 // the view and the entry sealed in the page
	for _, valid := range vectorValidity(vectors) {
		wantChecked++
		if !valid {
			wantRefused++
		}
	}
	if wantRefused < 5 {
		t.Fatalf("the vectors hold only %d invalid ones", wantRefused)
	}
	if err := os.WriteFile(filepath.Join(dir, "vectors.json"), vecBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	// The tampered copy: the flipped head claimed valid.
	tampered := *vectors
	tampered.Heads = append([]core.HeadVector(nil), vectors.Heads...)
	for i := range tampered.Heads {
		if !tampered.Heads[i].Valid {
			tampered.Heads[i].Valid = true
			tampered.Heads[i].Key, tampered.Heads[i].Length, tampered.Heads[i].Root = vectors.Heads[0].Key, vectors.Heads[0].Length, vectors.Heads[0].Root
		}
	}
	tb, err := json.Marshal(&tampered)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tampered.json"), tb, 0o644); err != nil {
		t.Fatal(err)
	}
	page := `<!doctype html><meta charset="utf-8"><title>wasm core</title><script src="check.js"></script>`
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.FileServer(http.Dir(dir)))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	raw, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(raw)
	zw.Close()
	t.Logf("core.wasm: %d bytes, %d gzip -9", len(raw), gz.Len())

	// entries: the benchmark space is 10k entries; here one feed of
	// 10k small entries, written in the page then replicated in it.
	const entries = 10000
	br := newBrowser(t, artefactDir(t))
	// Sealing 10k puts one call each takes 4–8 s in the page on this
	// machine, over 40 s when it is busy.
	br.timeout = 5 * time.Minute
	check := func(vectorsURL string) wasmReport {
		var rep wasmReport
		js := fmt.Sprintf(`mycelWasmCheck("core.wasm", %q, %d).then(r => JSON.stringify(r))`, vectorsURL, entries)
		out := get(br, "check "+vectorsURL, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("report %q: %v", out, err)
		}
		return rep
	}
	br.run("open the page", chromedp.Navigate(srv.URL+"/"))
	rep := check("vectors.json")
	t.Logf("in chromium: %d checks, %d flipped vectors refused; load and start the core %.0f ms; %d entries replicated to a second node in %d frames in %.0f ms",
		rep.Checked, rep.Refused, rep.LoadMs, rep.Replicated, rep.Frames, rep.ReplMs)
	t.Logf("in chromium: %d puts sealed in %.0f ms; their view (%d keys) computed in %.0f ms", entries, rep.SealMs, rep.ViewKeys, rep.ViewMs)
	if len(rep.Fails) > 0 {
		t.Fatalf("the wasm core disagrees with Go on the vectors:\n%s", strings.Join(rep.Fails, "\n"))
	}
	if rep.Checked != wantChecked || rep.Refused != wantRefused {
		t.Fatalf("the page checked %d vectors and refused %d; want %d and %d", rep.Checked, rep.Refused, wantChecked, wantRefused)
	}
	if rep.Replicated != entries {
		t.Fatalf("replication in the page brought %d entries of %d", rep.Replicated, entries)
	}
	if rep.ViewKeys != 1000 {
		t.Fatalf("the view of %d puts on 1000 keys holds %d keys", entries, rep.ViewKeys)
	}

	br.run("reload the page", chromedp.Navigate(srv.URL+"/"))
	bad := check("tampered.json")
	if len(bad.Fails) == 0 || !strings.Contains(strings.Join(bad.Fails, "\n"), "head 1: refused") {
		t.Fatalf("the tampered vectors passed in the page: %+v", bad)
	}
}

// vectorValidity lists the Valid flag of every vector the page checks one
// by one.
func vectorValidity(v *core.Vectors) []bool {
	var out []bool
	for _, h := range v.Heads {
		out = append(out, h.Valid)
	}
	for _, b := range v.Batches {
		out = append(out, b.Valid)
	}
	for _, e := range v.Entries {
		out = append(out, e.Valid)
	}
	for _, e := range v.Envelopes {
		out = append(out, e.Valid)
	}
	for _, s := range v.Signin {
		out = append(out, s.Valid)
	}
	return out
}

// copyWasmExec copies Go's wasm_exec.js, which loads a js/wasm program in
// a page, into dir.
func copyWasmExec(t *testing.T, dir string) {
	t.Helper()
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	wasmExec, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "wasm_exec.js"), wasmExec, 0o644); err != nil {
		t.Fatal(err)
	}
}
