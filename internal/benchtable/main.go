// Command benchtable turns `go test -bench` output of the feed benchmarks
// into a Markdown table comparing each feed benchmark with its badger
// baseline:
//
//	go test -run '^$' -bench . -benchtime 2s ./feed/ | go run ./internal/benchtable
//
// A benchmark with sub-benchmarks "feed" and "badger" becomes one row: the
// entries/s of each, their ratio, and MB/s. Other benchmarks are listed with
// their ns/op. With -count > 1 every figure is the median of the runs.
// Unparseable lines are ignored; the GOMAXPROCS suffix (-2) is dropped.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// target is the feed/badger ratio each paired benchmark should reach.
const target = 0.70

var procSuffix = regexp.MustCompile(`-\d+$`)

// results maps a benchmark name (without "Benchmark" and the -N suffix) to
// its metrics, each unit to the values seen (one per run).
type results struct {
	order   []string
	metrics map[string]map[string][]float64
}

func (r *results) add(name string, fields []string) {
	if _, err := strconv.ParseInt(fields[0], 10, 64); err != nil {
		return // not an iteration count
	}
	m := r.metrics[name]
	if m == nil {
		m = make(map[string][]float64)
		r.metrics[name] = m
		r.order = append(r.order, name)
	}
	for i := 1; i+1 < len(fields); i += 2 {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			continue
		}
		m[fields[i+1]] = append(m[fields[i+1]], v)
	}
}

// get returns the median of name's values of unit, and whether there are any.
func (r *results) get(name, unit string) (float64, bool) {
	vs := slices.Clone(r.metrics[name][unit])
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2], true
	}
	return (vs[n/2-1] + vs[n/2]) / 2, true
}

func parse(in io.Reader) (*results, error) {
	r := &results{metrics: make(map[string]map[string][]float64)}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	pending := "" // a benchmark name printed on a line of its own
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if fields[0] == "---" && len(fields) >= 3 && fields[1] == "FAIL:" {
			fmt.Fprintf(os.Stderr, "benchtable: warning: %s failed\n", fields[2])
		}
		if strings.HasPrefix(fields[0], "Benchmark") {
			name := procSuffix.ReplaceAllString(strings.TrimPrefix(fields[0], "Benchmark"), "")
			if len(fields) >= 3 {
				r.add(name, fields[1:])
				pending = ""
			} else {
				pending = name
			}
			continue
		}
		// Results that follow a benchmark's log output come on a line
		// without the name.
		if pending != "" && len(fields) >= 3 && strings.HasSuffix(fields[2], "/op") {
			r.add(pending, fields)
			pending = ""
		}
	}
	return r, sc.Err()
}

// split cuts "Group/variant" in two.
func split(name string) (group, variant string) {
	if i := strings.LastIndex(name, "/"); i >= 0 {
		return name[:i], name[i+1:]
	}
	return name, ""
}

func num(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func write(w io.Writer, r *results) {
	var groups, others []string
	for _, name := range r.order {
		g, v := split(name)
		_, hasFeed := r.metrics[g+"/feed"]
		_, hasBadger := r.metrics[g+"/badger"]
		switch {
		case (v == "feed" || v == "badger") && hasFeed && hasBadger:
			if !slices.Contains(groups, g) {
				groups = append(groups, g)
			}
		default:
			others = append(others, name)
		}
	}

	if len(groups) > 0 {
		fmt.Fprintf(w, "| benchmark | feed entries/s | badger entries/s | ratio feed/badger | MB/s feed / badger |\n")
		fmt.Fprintf(w, "|---|---:|---:|---:|---:|\n")
		for _, g := range groups {
			fe, okF := r.get(g+"/feed", "entries/s")
			be, okB := r.get(g+"/badger", "entries/s")
			fm, _ := r.get(g+"/feed", "MB/s")
			bm, _ := r.get(g+"/badger", "MB/s")
			ratio := "–"
			if okF && okB && be > 0 {
				mark := "✓"
				if fe/be < target {
					mark = "✗"
				}
				ratio = fmt.Sprintf("%.0f%% %s", 100*fe/be, mark)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s / %s |\n", g, num(fe), num(be), ratio, num(fm), num(bm))
		}
	}

	if len(others) > 0 {
		fmt.Fprintf(w, "\n| benchmark | ns/op |\n|---|---:|\n")
		for _, name := range others {
			ns, _ := r.get(name, "ns/op")
			fmt.Fprintf(w, "| %s | %s |\n", name, num(ns))
		}
	}

	// Group commit: concurrent single-entry appends against sequential ones.
	var single, conc string
	for _, g := range groups {
		l := strings.ToLower(g)
		switch {
		case strings.Contains(l, "concurrent") && conc == "":
			conc = g
		case strings.Contains(l, "single") && single == "":
			single = g
		}
	}
	if single != "" && conc != "" {
		label := func(g string) string { return strings.ToLower(strings.TrimPrefix(g, "Append")) }
		var parts []string
		for _, v := range []string{"feed", "badger"} {
			s, ok1 := r.get(single+"/"+v, "entries/s")
			c, ok2 := r.get(conc+"/"+v, "entries/s")
			if ok1 && ok2 && s > 0 {
				parts = append(parts, fmt.Sprintf("%.1f× (%s)", c/s, v))
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "\n%s / %s = %s\n", label(conc), label(single), strings.Join(parts, ", "))
		}
	}
}

func main() {
	r, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	if len(r.order) == 0 {
		fmt.Fprintln(os.Stderr, "benchtable: no benchmark results on stdin")
		os.Exit(1)
	}
	write(os.Stdout, r)
}
