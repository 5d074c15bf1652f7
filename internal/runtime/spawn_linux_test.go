package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSealedSelfIsReadOnly checks the CVE-2019-5736 defence: the binary a
// container's init runs from cannot be reopened for writing.
func TestSealedSelfIsReadOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for the read-only bind mount")
	}
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := sealedSelf(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), os.O_WRONLY, 0)
	if !errors.Is(err, unix.EROFS) {
		t.Fatalf("reopening the sealed binary for writing: %v, want EROFS", err)
	}
}

func TestMemfdSelfIsSealed(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := memfdSelf(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil || seals&unix.F_SEAL_WRITE == 0 || seals&unix.F_SEAL_SEAL == 0 {
		t.Fatalf("seals %#x (%v), want write and seal sealed", seals, err)
	}
	if _, err := f.Write([]byte("x")); err == nil {
		t.Fatal("wrote to the sealed copy")
	}
}
