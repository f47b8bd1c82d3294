package badgerstore

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// madvPageout is Linux's MADV_PAGEOUT (5.4+): reclaim the pages of a
// range now. On a shared file mapping the kernel writes dirty pages back
// first, so no data is lost; on anonymous memory without swap it does
// nothing — which matters, since a range read from /proc/self/maps may
// have been unmapped and reused by the time madvise runs (MADV_DONTNEED
// would zero such memory).
const madvPageout = 21

// mappedFileBytes returns this process's resident file-backed memory
// (RssFile), or -1 if /proc does not say.
func mappedFileBytes() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "RssFile:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}

// pageOut asks the kernel to reclaim the pages of the files of dir that
// badger has mapped (tables, value and memtable logs). Badger maps every
// file it reads or writes and keeps them mapped; each page it touched
// counts in the process's RSS until the kernel needs the memory. Pages
// read again later fault back in from the page cache or the disk.
func pageOut(dir string) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	prefix := []byte(filepath.Clean(dir) + "/")
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		i := bytes.IndexByte(line, '/')
		if i < 0 || !bytes.HasPrefix(line[i:], prefix) {
			continue
		}
		name := line[i:]
		if !bytes.HasSuffix(name, []byte(".vlog")) && !bytes.HasSuffix(name, []byte(".sst")) && !bytes.HasSuffix(name, []byte(".mem")) {
			continue
		}
		rng, _, _ := bytes.Cut(line, []byte(" "))
		lo, hi, ok := bytes.Cut(rng, []byte("-"))
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(string(lo), 16, 64)
		end, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		// An address from /proc, not a Go pointer: the raw system call.
		syscall.Syscall(syscall.SYS_MADVISE, uintptr(start), uintptr(end-start), madvPageout)
	}
}

// seekData is Linux's SEEK_DATA: the next offset at or after off that
// holds data (not a hole).
const seekData = 3

// nextData returns the first offset at or after off of f that is not in
// a hole (file size when only holes follow), or false when the file
// system cannot tell.
func nextData(f *os.File, off int64) (int64, bool) {
	data, err := syscall.Seek(int(f.Fd()), off, seekData)
	if err == syscall.ENXIO { // only a hole follows off
		fi, err := f.Stat()
		if err != nil {
			return 0, false
		}
		return fi.Size(), true
	}
	if err != nil {
		return 0, false
	}
	return data, true
}
