package root

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/BurntSushi/toml"
	"github.com/berth-dev/berth/internal/errdefs"
)

// ConfigFile is the name of a root's configuration file.
const ConfigFile = "berth.toml"

// Config is ROOT/berth.toml. Every setting is optional:
//
//	[network]
//	prefix = "berth"                 # host bridges berth0, berth1…, nftables table berth
//	default_subnet = "10.90.0.0/16"  # the default network "bridge"
type Config struct {
	Network NetworkConfig `toml:"network"`
}

// NetworkConfig is the [network] section.
type NetworkConfig struct {
	Prefix        string `toml:"prefix"`
	DefaultSubnet string `toml:"default_subnet"`

	defaultSubnet netip.Prefix
}

// LoadConfig reads dir's configuration; a root without one has berth's
// defaults. A file that does not parse, or a setting that is not valid, is
// one error naming the file and the setting.
func LoadConfig(dir string) (Config, error) {
	var cfg Config
	path := filepath.Join(dir, ConfigFile)
	md, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Config{}, nil
		}
		return Config{}, fmt.Errorf("%s: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	if keys := md.Undecoded(); len(keys) > 0 {
		return Config{}, fmt.Errorf("%s: unknown setting %s: %w", path, keys[0], errdefs.ErrInvalidArgument)
	}
	if s := cfg.Network.DefaultSubnet; s != "" {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Config{}, fmt.Errorf("%s: [network] default_subnet %q is not a CIDR subnet: %w", path, s, errdefs.ErrInvalidArgument)
		}
		cfg.Network.defaultSubnet = p
	}
	return cfg, nil
}
