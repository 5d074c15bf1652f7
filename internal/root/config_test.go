package root

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestLoadConfig(t *testing.T) {
	for _, tc := range []struct {
		name, file string // file "" means no berth.toml
		want       string // error substring; "" for success
		prefix     string
		subnet     string
	}{
		{name: "absent"},
		{name: "empty", file: " "},
		{name: "network", file: "[network]\nprefix = \"bx\"\ndefault_subnet = \"10.1.2.0/24\"\n", prefix: "bx", subnet: "10.1.2.0/24"},
		{name: "not toml", file: "[network\n", want: "berth.toml"},
		{name: "bad subnet", file: "[network]\ndefault_subnet = \"10.1.2.0\"\n", want: `default_subnet "10.1.2.0" is not a CIDR subnet`},
		{name: "unknown setting", file: "[network]\nprefx = \"bx\"\n", want: "unknown setting network.prefx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.file != "" {
				if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(tc.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := LoadConfig(dir)
			if tc.want != "" {
				if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("LoadConfig = %v, want one line with %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Network.Prefix != tc.prefix {
				t.Errorf("prefix %q, want %q", cfg.Network.Prefix, tc.prefix)
			}
			if got := cfg.Network.defaultSubnet; (tc.subnet == "" && got.IsValid()) || (tc.subnet != "" && got.String() != tc.subnet) {
				t.Errorf("default subnet %v, want %q", got, tc.subnet)
			}
		})
	}
}

func TestDefaultRunDir(t *testing.T) {
	if got := DefaultRunDir("/var/lib/berth"); got != "/run/berth" {
		t.Errorf("DefaultRunDir(/var/lib/berth) = %s, want /run/berth", got)
	}
	if os.Geteuid() == 0 {
		if got := DefaultRunDir("/tmp/r"); got != "/tmp/r/run" {
			t.Errorf("DefaultRunDir(/tmp/r) = %s, want /tmp/r/run", got)
		}
	}
}
