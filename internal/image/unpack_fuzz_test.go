//go:build linux

package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// FuzzApplyLayer feeds arbitrary bytes to ApplyLayer and checks that it
// never panics and never creates or changes anything outside its
// directory. Run it with
//
//	go test -run '^$' -fuzz FuzzApplyLayer -fuzztime 60s ./internal/image/
func FuzzApplyLayer(f *testing.F) {
	unpackNeedRoot(f)
	xattr := unpackFile("x", "")
	xattr.PAXRecords = map[string]string{"SCHILY.xattr.user.a": "b"}
	seeds := [][]unpackTestEntry{
		{unpackFile("a", "hello")},
		{unpackDir("d/"), unpackFile("d/f", "x"), unpackHardlink("h", "d/f"), xattr},
		{unpackSymlink("evil", "../sentinel"), unpackFile("evil/x", "owned")},
		{unpackSymlink("up", ".."), unpackFile("up/sentinel/x", "")},
		{unpackFile("../sentinel/x", ""), unpackHardlink("k", "../sentinel/keep")},
		{unpackDir("o/"), unpackFile("o/.wh..wh..opq", ""), unpackFile(".wh.gone", "")},
		{{Header: tar.Header{Typeflag: tar.TypeChar, Name: "null", Devmajor: 1, Devminor: 3, Mode: 0o666}}},
		{{Header: tar.Header{Typeflag: tar.TypeFifo, Name: "fifo", Mode: 0o4777, Uid: 1, Gid: 2}}},
		// Directories open for earlier entries, then replaced or removed.
		{unpackFile("d/e/f", "x"), unpackSymlink("d", "../sentinel"), unpackFile("d/e/g", "owned")},
		{unpackFile("d/e/f", "x"), unpackFile(".wh.d", ""), unpackDir("d/"), unpackFile("d/e/g", "y")},
		{unpackDir("s/"), unpackFile("s/f", "x"), {Header: tar.Header{Typeflag: tar.TypeDir, Name: "s/", Mode: 0o2775, Gid: 50}}, unpackFile("s/g", "")},
	}
	for _, s := range seeds {
		data := unpackTestTar(f, s...)
		f.Add(data)
		var gz, zs bytes.Buffer
		gw := gzip.NewWriter(&gz)
		gw.Write(data)
		gw.Close()
		f.Add(gz.Bytes())
		zw, _ := zstd.NewWriter(&zs)
		zw.Write(data)
		zw.Close()
		f.Add(zs.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		base, layer, sentinel := unpackSandbox(t)
		ApplyLayer(context.Background(), layer, bytes.NewReader(data))
		unpackAssertConfined(t, base, sentinel)
	})
}
