package etcd

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParseURI(t *testing.T) {
	for _, tt := range []struct {
		uri       string
		endpoints string
		prefix    string
		err       string
	}{
		{"etcd://127.0.0.1:2379", "http://127.0.0.1:2379", DefaultPrefix, ""},
		{"etcd://a:1,b:2/prod/eu", "http://a:1,http://b:2", "/prod/eu/", ""},
		{"etcd://[::1]:2379/x/", "http://[::1]:2379", "/x/", ""},
		{"etcd://", "", "", "no host"},
		{"etcd://host", "", "", `"host" is not HOST:PORT`},
		{"etcd://a:1,,b:2", "", "", `"" is not HOST:PORT`},
		{"etcd://:2379", "", "", "is not HOST:PORT"},
		{"etcd://a:1/p?x=1", "", "", "no query"},
		{"http://a:1", "", "", "scheme must be etcd"},
	} {
		eps, prefix, err := ParseURI(tt.uri)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("ParseURI(%q): %v, want an invalid-argument error with %q", tt.uri, err, tt.err)
			}
			continue
		}
		if err != nil || strings.Join(eps, ",") != tt.endpoints || prefix != tt.prefix {
			t.Errorf("ParseURI(%q) = %v, %q, %v; want %s, %q", tt.uri, eps, prefix, err, tt.endpoints, tt.prefix)
		}
	}
}
