package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestParsePorts(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []PortBinding
	}{
		{"80", []PortBinding{{ContainerPort: 80, Protocol: "tcp"}}},
		{"8080:80", []PortBinding{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}},
		{"127.0.0.1:8080:80/udp", []PortBinding{{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "udp"}}},
		{"127.0.0.1::80", []PortBinding{{HostIP: "127.0.0.1", ContainerPort: 80, Protocol: "tcp"}}},
		{"[::1]:8080:80", []PortBinding{{HostIP: "::1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}},
		{"8000-8001:80-81", []PortBinding{{HostPort: 8000, ContainerPort: 80, Protocol: "tcp"}, {HostPort: 8001, ContainerPort: 81, Protocol: "tcp"}}},
	} {
		got, err := ParsePorts(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParsePorts(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "0", "99999:80", "80/sctp", "a:80", "1.2.3:80:80", "8000-8002:80-81", "90-80"} {
		if _, err := ParsePorts(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParsePorts(%q): %v, want an invalid-argument error", bad, err)
		}
	}
}

func TestParseVolume(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Mount
	}{
		{"/data", Mount{Type: "volume", Destination: "/data", Anonymous: true}},
		{"vol:/data", Mount{Type: "volume", Source: "vol", Destination: "/data"}},
		{"vol:/data:ro", Mount{Type: "volume", Source: "vol", Destination: "/data", ReadOnly: true}},
		{"/srv:/data/:rw", Mount{Type: "bind", Source: "/srv", Destination: "/data"}},
	} {
		got, err := ParseVolume(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseVolume(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"a:b:c:d", "vol:rel", ":/data", "vol:/", "vol:/d:exec"} {
		if _, err := ParseVolume(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseVolume(%q): %v, want an invalid-argument error", bad, err)
		}
	}
}

func TestParseMisc(t *testing.T) {
	if n, err := ParseBytes("64m"); err != nil || n != 64<<20 {
		t.Errorf("ParseBytes(64m) = %d, %v", n, err)
	}
	if n, err := ParseBytes("1.5g"); err != nil || n != 3<<29 {
		t.Errorf("ParseBytes(1.5g) = %d, %v", n, err)
	}
	if _, err := ParseBytes("lots"); err == nil {
		t.Error("ParseBytes(lots) succeeded")
	}
	if p, err := ParseRestart("on-failure:3"); err != nil || p != (RestartPolicy{Name: "on-failure", MaxRetries: 3}) {
		t.Errorf("ParseRestart = %+v, %v", p, err)
	}
	for _, bad := range []string{"sometimes", "always:3", "on-failure:x"} {
		if _, err := ParseRestart(bad); err == nil {
			t.Errorf("ParseRestart(%q) succeeded", bad)
		}
	}
	if u, err := ParseUlimit("nofile=1024:2048"); err != nil || u != (Ulimit{Name: "nofile", Soft: 1024, Hard: 2048}) {
		t.Errorf("ParseUlimit = %+v, %v", u, err)
	}
	for _, bad := range []string{"nofile", "bogus=1", "nofile=2:1", "nofile=x"} {
		if _, err := ParseUlimit(bad); err == nil {
			t.Errorf("ParseUlimit(%q) succeeded", bad)
		}
	}
	if m, err := ParseMount("type=tmpfs,target=/t,tmpfs-size=1m"); err != nil || m.Type != "tmpfs" || m.Options[0] != "size=1048576" {
		t.Errorf("ParseMount tmpfs = %+v, %v", m, err)
	}
	if _, err := ParseMount("type=bind,target=/t"); err == nil {
		t.Error("a bind mount without source was accepted")
	}
	if d, err := ParseDevice("/dev/fuse:/dev/f:rw"); err != nil || d != (Device{"/dev/fuse", "/dev/f", "rw"}) {
		t.Errorf("ParseDevice = %+v, %v", d, err)
	}
	if n, err := ParseCPUs("1.5"); err != nil || n != 1.5e9 {
		t.Errorf("ParseCPUs = %d, %v", n, err)
	}
}

func TestMerge(t *testing.T) {
	img := v1.Config{Entrypoint: []string{"/ep"}, Cmd: []string{"def"}, Env: []string{"PATH=/x", "A=img"},
		WorkingDir: "/w", User: "u", ExposedPorts: map[string]struct{}{"80/tcp": {}}, Labels: map[string]string{"l": "img"}}
	for _, c := range []struct {
		name          string
		o             CreateOptions
		entrypoint    []string
		cmd           []string
		env           []string
		workdir, user string
	}{
		{"image only", CreateOptions{}, []string{"/ep"}, []string{"def"}, []string{"PATH=/x", "A=img"}, "/w", "u"},
		{"command replaces Cmd", CreateOptions{Config: Config{Cmd: []string{"x"}}}, []string{"/ep"}, []string{"x"}, nil, "/w", "u"},
		{"entrypoint replaces both", CreateOptions{EntrypointSet: true, Config: Config{Entrypoint: []string{"/e2"}}}, []string{"/e2"}, nil, nil, "/w", "u"},
		{"flags win", CreateOptions{Config: Config{Env: []string{"A=flag", "B=1"}, WorkingDir: "/f", User: "0"}},
			[]string{"/ep"}, []string{"def"}, []string{"PATH=/x", "A=flag", "B=1"}, "/f", "0"},
	} {
		got := merge(img, c.o)
		if !reflect.DeepEqual(got.Entrypoint, c.entrypoint) || !reflect.DeepEqual(got.Cmd, c.cmd) ||
			(c.env != nil && !reflect.DeepEqual(got.Env, c.env)) || got.WorkingDir != c.workdir || got.User != c.user {
			t.Errorf("%s: got %+v", c.name, got)
		}
		if len(got.ExposedPorts) != 1 || got.Labels["l"] != "img" {
			t.Errorf("%s: ports %v labels %v", c.name, got.ExposedPorts, got.Labels)
		}
	}
	if h := merge(v1.Config{Healthcheck: &v1.HealthConfig{Test: []string{"CMD", "true"}}}, CreateOptions{NoHealthcheck: true}).Healthcheck; h.Test[0] != "NONE" {
		t.Errorf("--no-healthcheck: %+v", h)
	}
}

func TestCapabilities(t *testing.T) {
	caps, err := capabilities(HostConfig{CapDrop: []string{"ALL"}, CapAdd: []string{"net_admin", "CAP_CHOWN"}})
	if err != nil || !reflect.DeepEqual(caps, []string{"CAP_NET_ADMIN", "CAP_CHOWN"}) {
		t.Errorf("drop ALL, add two: %v, %v", caps, err)
	}
	if _, err := capabilities(HostConfig{CapAdd: []string{"CAP_FLY"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("unknown capability: %v", err)
	}
}

func TestParseEnvFileLongLines(t *testing.T) {
	dir := t.TempDir()
	limit := maxEnvEntry()
	long := "LONG=" + strings.Repeat("y", 100<<10)
	path := filepath.Join(dir, "ok.env")
	if err := os.WriteFile(path, []byte("A=x\n# "+strings.Repeat("c", 3<<20)+"\n"+long+"\nB\nC=z"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("B", "from-env")
	got, err := ParseEnvFile(path)
	if want := []string{"A=x", long, "B=from-env", "C=z"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseEnvFile with a 100 KiB line: %d entries, %v; want %d", len(got), err, len(want))
	}

	path = filepath.Join(dir, "big.env")
	if err := os.WriteFile(path, []byte("A=x\nBIG="+strings.Repeat("y", 2<<20)+"\nC=z\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ParseEnvFile(path)
	want := fmt.Sprintf(`--env-file %q: line 2 (BIG) is %d bytes long; a variable may be at most %d bytes`, path, 2<<20+4, limit)
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("ParseEnvFile with a 2 MiB line: %v\nwant %s", err, want)
	}
}
