package logfile

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		opts     map[string]string
		size     int64
		files    int
		errNames string // the option an error must name; "" for success
	}{
		{opts: nil, size: 0, files: 1},
		{opts: map[string]string{"max-size": "10m"}, size: 10 << 20, files: 1},
		{opts: map[string]string{"max-size": "10m", "max-file": "3"}, size: 10 << 20, files: 3},
		{opts: map[string]string{"max-size": "100"}, size: 100, files: 1},
		{opts: map[string]string{"max-size": "512k"}, size: 512 << 10, files: 1},
		{opts: map[string]string{"max-size": "512KB"}, size: 512 << 10, files: 1},
		{opts: map[string]string{"max-size": "2MiB"}, size: 2 << 20, files: 1},
		{opts: map[string]string{"max-size": "1g"}, size: 1 << 30, files: 1},
		{opts: map[string]string{"max-size": "1.5k"}, size: 1536, files: 1},
		{opts: map[string]string{"max-size": "20 m"}, size: 20 << 20, files: 1},
		{opts: map[string]string{"max-size": "7b"}, size: 7, files: 1},
		{opts: map[string]string{"max-file": "5"}, size: 0, files: 5},
		{opts: map[string]string{"max-size": ""}, errNames: "max-size"},
		{opts: map[string]string{"max-size": "0"}, errNames: "max-size"},
		{opts: map[string]string{"max-size": "-1"}, errNames: "max-size"},
		{opts: map[string]string{"max-size": "10x"}, errNames: "max-size"},
		{opts: map[string]string{"max-size": "m"}, errNames: "max-size"},
		{opts: map[string]string{"max-size": "1e3"}, errNames: "max-size"},
		{opts: map[string]string{"max-size": "99999999999g"}, errNames: "max-size"},
		{opts: map[string]string{"max-file": "0"}, errNames: "max-file"},
		{opts: map[string]string{"max-file": "two"}, errNames: "max-file"},
		{opts: map[string]string{"max-file": "1.5"}, errNames: "max-file"},
		{opts: map[string]string{"max-file": "3", "max-size": "1m", "compress": "true"}, errNames: "compress"},
		{opts: map[string]string{"mode": "non-blocking"}, errNames: "mode"},
	}
	for _, tt := range tests {
		size, files, err := ParseOptions(tt.opts)
		if tt.errNames != "" {
			if err == nil {
				t.Errorf("ParseOptions(%v) = %d, %d, want an error", tt.opts, size, files)
				continue
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.errNames) || strings.Contains(err.Error(), "\n") {
				t.Errorf("ParseOptions(%v) error %q: want one line of class invalid argument naming %s", tt.opts, err, tt.errNames)
			}
			continue
		}
		if err != nil || size != tt.size || files != tt.files {
			t.Errorf("ParseOptions(%v) = %d, %d, %v; want %d, %d", tt.opts, size, files, err, tt.size, tt.files)
		}
	}
}

func TestNewWriterRejectsBadLimits(t *testing.T) {
	for _, c := range []struct {
		size  int64
		files int
	}{{-1, 1}, {10, 0}} {
		if _, err := NewWriter(t.TempDir()+"/log", c.size, c.files); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("NewWriter(%d, %d): %v, want invalid argument", c.size, c.files, err)
		}
	}
}
