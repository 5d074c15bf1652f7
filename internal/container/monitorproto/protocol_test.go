package monitorproto

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	fw := NewFrameWriter(&buf)
	big := bytes.Repeat([]byte("x"), MaxFrame+10)
	if _, err := (StreamWriter{FW: fw, Kind: FrameStdout}).Write(big); err != nil {
		t.Fatal(err)
	}
	fw.WriteFrame(FrameResize, ResizePayload(300, 1000))
	fw.WriteFrame(FrameSignal, SignalPayload(15))
	fw.WriteFrame(FrameCloseStdin, nil)
	fw.WriteFrame(FrameExit, ExitPayload(137))

	want := []struct {
		kind byte
		n    int
	}{{FrameStdout, MaxFrame}, {FrameStdout, 10}, {FrameResize, 4}, {FrameSignal, 2}, {FrameCloseStdin, 0}, {FrameExit, 3}}
	var got [][]byte
	for i, w := range want {
		kind, p, err := ReadFrame(&buf)
		if err != nil || kind != w.kind || len(p) != w.n {
			t.Fatalf("frame %d: kind %d, %d bytes, %v; want kind %d, %d bytes", i, kind, len(p), err, w.kind, w.n)
		}
		got = append(got, p)
	}
	if _, _, err := ReadFrame(&buf); err != io.EOF {
		t.Fatalf("after the last frame: %v, want EOF", err)
	}
	if rows, cols, ok := ParseResize(got[2]); !ok || rows != 300 || cols != 1000 {
		t.Errorf("resize: %d×%d %v", rows, cols, ok)
	}
	if _, _, ok := ParseResize([]byte{1, 2, 3}); ok {
		t.Error("a 3-byte resize was taken")
	}
	if sig, err := ParseSignal(got[3]); err != nil || sig != 15 {
		t.Errorf("signal: %d %v", sig, err)
	}
	if code, err := ParseExit(got[5]); err != nil || code != 137 {
		t.Errorf("exit: %d %v", code, err)
	}
	if _, err := ParseExit([]byte("x")); err == nil {
		t.Error("a bad exit status was taken")
	}
}

func TestFrameTooLarge(t *testing.T) {
	hdr := []byte{FrameStdin, 0, 0x10, 0, 1} // MaxFrame+1
	if _, _, err := ReadFrame(bytes.NewReader(hdr)); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("a frame of MaxFrame+1 bytes: %v", err)
	}
}

func TestReport(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteReport(&buf, StartReport{Error: "no such file", Class: "not found"}); err != nil {
		t.Fatal(err)
	}
	rep, err := ReadReport(&buf)
	if err != nil || rep.Error != "no such file" || rep.Class != "not found" || rep.Pid != 0 {
		t.Fatalf("report: %+v %v", rep, err)
	}
	if _, err := ReadReport(&buf); err != io.EOF {
		t.Fatalf("no report: %v, want EOF", err)
	}
}

func TestAssign(t *testing.T) {
	pair := func() (*os.File, *os.File) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		return os.NewFile(uintptr(fds[0]), "starter"), os.NewFile(uintptr(fds[1]), "monitor")
	}
	starter, mon := pair()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	id := strings.Repeat("ab", 32)
	if err := Assign(starter, id, w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, attach, ok, err := Assigned(mon)
	if !ok || err != nil || got != id || attach == nil {
		t.Fatalf("assigned: %q %v %v %v", got, attach, ok, err)
	}
	attach.Write([]byte("passed"))
	attach.Close()
	if b, _ := io.ReadAll(r); string(b) != "passed" {
		t.Fatalf("the passed descriptor is not the pipe's: read %q", b)
	}

	// A starter that goes away assigns nothing.
	starter, mon = pair()
	starter.Close()
	if _, _, ok, _ := Assigned(mon); ok {
		t.Fatal("assigned after the starter closed its end")
	}
}

// TestPrestartStartsTheSame holds package prestart's C starter to this
// package's contract: the same argv[0], command, placeholder, descriptors
// and GOMAXPROCS.
func TestPrestartStartsTheSame(t *testing.T) {
	b, err := os.ReadFile("../../prestart/prestart.c")
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	for _, want := range []string{
		`placeholder[] = "` + Unassigned + `"`,
		`args[n++] = "` + ProcessName + `"`,
		`args[n++] = "` + Command + `"`,
		"dup2(r, " + strconv.Itoa(ReportFd) + ")",
		"dup2(c, " + strconv.Itoa(CtlFd) + ")",
		`setenv("GOMAXPROCS", "1", 1)`,
	} {
		if !strings.Contains(src, want) {
			t.Errorf("prestart.c does not have %s", want)
		}
	}
	if len(Unassigned) != 64 || strings.Trim(Unassigned, ".") != "" {
		t.Errorf("Unassigned is not 64 dots, as long as a container ID: %q", Unassigned)
	}
}
