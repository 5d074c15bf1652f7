//go:build unix

package logfile

import (
	"io/fs"
	"syscall"
)

// linked reports whether the file described by fi still has a name.
func linked(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || st.Nlink > 0
}
