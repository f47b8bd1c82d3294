//go:build !linux

package badgerstore

import "os"

func mappedFileBytes() int64 { return -1 }

func pageOut(string) {}

// nextData: holes are not known here; every byte is read.
func nextData(*os.File, int64) (int64, bool) { return 0, false }
