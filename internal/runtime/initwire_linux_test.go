package runtime

import (
	"errors"
	"io"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func testInitConfig() *initConfig {
	spec := &specs.Spec{
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: []string{"true"}, Cwd: "/"},
		Linux:   &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.MountNamespace}}},
	}
	return &initConfig{Mode: modeCreate, ID: "x", Bundle: "/b", Spec: spec, Process: spec.Process}
}

// What init cannot be told is refused by the runtime, with the field.
func TestInitConfigRefuses(t *testing.T) {
	for want, edit := range map[string]func(c *initConfig){
		"NUL byte":      func(c *initConfig) { c.Process.Args = []string{"a\x00b"} },
		"UTS namespace": func(c *initConfig) { c.Spec.Hostname = "h" },
		"timeout must be": func(c *initConfig) {
			z := 0
			c.Spec.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/h", Timeout: &z}}}
		},
		"linux.sysctl":   func(c *initConfig) { c.Spec.Linux.Sysctl = map[string]string{"a/../b": "1"} },
		"unknown rlimit": func(c *initConfig) { c.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_X"}} },
		"propagation": func(c *initConfig) {
			c.Spec.Mounts = []specs.Mount{{Destination: "/m", Type: "tmpfs", Options: strings.Fields("shared shared shared shared shared shared shared shared shared")}}
		},
	} {
		c := testInitConfig()
		edit(c)
		if _, err := c.encode(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
	if b, err := testInitConfig().encode(); err != nil || len(b) == 0 {
		t.Fatalf("a valid configuration: %v", err)
	}
}

func TestSyncPipeFrames(t *testing.T) {
	a, b, err := socketPair("t")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	pa, pb := newSyncPipe(a), newSyncPipe(b)
	if err := pa.send(msgReady, nil); err != nil {
		t.Fatal(err)
	}
	if err := pb.recv(msgReady); err != nil {
		t.Fatalf("ready: %v", err)
	}
	pa.send(msgHooks, nil)
	if err := pb.recv(msgReady); err == nil {
		t.Fatal("an unexpected message was accepted")
	}
	pa.send(msgError, []byte("mounts[0] (proc on /proc): mount: boom"))
	if err := pb.recv(msgReady); err == nil || err.Error() != "mounts[0] (proc on /proc): mount: boom" {
		t.Fatalf("error frame: %v", err)
	}
	a.Close()
	if err := pb.recv(msgNone); !errors.Is(err, io.EOF) {
		t.Fatalf("after close: %v", err)
	}
	b.Close()
}
