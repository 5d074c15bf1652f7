package image

import (
	"errors"
	"fmt"
	"os"

	"github.com/BurntSushi/toml"
	"github.com/berth-dev/berth/internal/errdefs"
)

// DefaultRegistriesConf is where Podman and skopeo keep registry settings;
// berth reads the same file ($CONTAINERS_REGISTRIES_CONF overrides it).
const DefaultRegistriesConf = "/etc/containers/registries.conf"

// LoadInsecureRegistries returns the registries that path (containers-
// registries.conf, version 2) marks insecure = true. A missing file is no
// error.
func LoadInsecureRegistries(path string) ([]string, error) {
	var conf struct {
		Registry []struct {
			Location string `toml:"location"`
			Prefix   string `toml:"prefix"`
			Insecure bool   `toml:"insecure"`
		} `toml:"registry"`
	}
	_, err := toml.DecodeFile(path, &conf)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registries config %s: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	var out []string
	for _, r := range conf.Registry {
		loc := r.Location
		if loc == "" {
			loc = r.Prefix
		}
		if r.Insecure && loc != "" {
			out = append(out, loc)
		}
	}
	return out, nil
}

// insecureFor reports whether registry may be reached without TLS checks.
func (o RegistryOptions) insecureFor(registry string) bool {
	if o.Insecure {
		return true
	}
	for _, r := range o.InsecureRegistries {
		if r == registry {
			return true
		}
	}
	return false
}
