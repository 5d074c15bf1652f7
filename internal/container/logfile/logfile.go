// Package logfile stores a container's output in Docker's json-file format
// and reads it back.
//
// Every line the container writes becomes one JSON object on a line of its
// own, exactly as Docker's json-file log driver writes it:
//
//	{"log":"hello\n","stream":"stdout","time":"2026-11-22T10:00:00.123456789Z"}
//
// A [Writer] appends such entries to a file and, when a size limit is set,
// rotates it the way Docker does: PATH becomes PATH.1, PATH.1 becomes
// PATH.2, and so on up to PATH.(maxFiles-1); the oldest file falls off the
// end. [Read] replays the entries oldest first across all of these files,
// with Docker's tail, since/until and follow semantics, so files written by
// Docker can be read and files written here can be read by Docker's tools.
//
// The per-container monitor is the only writer of a log; any number of
// readers (berth logs) may read it at the same time, including while it
// rotates. A line cut short by a killed writer is skipped by readers, and
// the next Writer on the same file terminates it before appending.
package logfile

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// MaxLine is the longest line kept in one entry. Longer lines, and a line
// still unterminated when it grows past MaxLine, are split into entries of
// MaxLine bytes without a trailing newline, like Docker's 16 KiB partial
// messages — cut a few bytes earlier where MaxLine would fall inside a
// UTF-8 encoded character, so that the pieces stay valid text.
const MaxLine = 16 << 10

// timeFormat is Docker's RFC3339NanoFixed: always nine fractional digits, so
// that entries sort as strings.
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Entry is one log entry: a line (or a MaxLine piece of one) that the
// container wrote on a stream.
type Entry struct {
	// Time is when the writer received the line, in UTC.
	Time time.Time
	// Stream is "stdout" or "stderr".
	Stream string
	// Line holds the bytes written, with the trailing newline if there was
	// one. Invalid UTF-8 is replaced by U+FFFD, as Docker does.
	Line []byte
}

// ParseOptions reads Docker's json-file --log-opt settings: max-size (a
// positive size in bytes, with an optional k, m or g unit of 1024, 1024² or
// 1024³ bytes; "10m", "512k", "1.5g", "100") and max-file (the number of
// files to keep, at least 1). Without max-size the log never rotates
// (maxSize 0); without max-file maxFiles is 1. An unknown option or a bad
// value gives an errdefs.ErrInvalidArgument error that names the option.
func ParseOptions(opts map[string]string) (maxSize int64, maxFiles int, err error) {
	maxFiles = 1
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the first error must not depend on map order
	for _, k := range keys {
		v := opts[k]
		switch k {
		case "max-size":
			if maxSize, err = parseSize(v); err != nil {
				return 0, 0, fmt.Errorf("log option max-size=%q: %v (want a positive size such as 10m, 512k or 1g): %w", v, err, errdefs.ErrInvalidArgument)
			}
		case "max-file":
			n, perr := strconv.Atoi(strings.TrimSpace(v))
			if perr != nil || n < 1 {
				return 0, 0, fmt.Errorf("log option max-file=%q: want a whole number of files, at least 1: %w", v, errdefs.ErrInvalidArgument)
			}
			maxFiles = n
		default:
			return 0, 0, fmt.Errorf("log option %q: unknown (the json-file log driver takes max-size and max-file): %w", k, errdefs.ErrInvalidArgument)
		}
	}
	return maxSize, maxFiles, nil
}

// sizeRE is the size syntax of Docker's units.RAMInBytes: a decimal number,
// an optional space, an optional binary unit, an optional "i" and "b".
var sizeRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(\d+(?:\.\d+)?) ?([kKmMgG])?[iI]?[bB]?$`) })

// parseSize parses a size for max-size.
func parseSize(s string) (int64, error) {
	m := sizeRE().FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("not a size")
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("not a size")
	}
	switch strings.ToLower(m[2]) {
	case "k":
		n *= 1 << 10
	case "m":
		n *= 1 << 20
	case "g":
		n *= 1 << 30
	}
	if n >= math.MaxInt64 {
		return 0, fmt.Errorf("too large")
	}
	if int64(n) < 1 {
		return 0, fmt.Errorf("must be at least 1 byte")
	}
	return int64(n), nil
}

// rotated names the file at index i of the rotation chain of path: path
// itself for 0, path.i for the older ones.
func rotated(path string, i int) string {
	if i == 0 {
		return path
	}
	return path + "." + strconv.Itoa(i)
}
