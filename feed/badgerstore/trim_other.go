//go:build !linux

package badgerstore

func mappedFileBytes() int64 { return -1 }

func pageOut(string) {}
