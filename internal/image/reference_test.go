package image

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParseReference(t *testing.T) {
	cases := map[string]string{
		"nginx":                                "docker.io/library/nginx:latest",
		"nginx:1.25":                           "docker.io/library/nginx:1.25",
		"library/nginx":                        "docker.io/library/nginx:latest",
		"docker.io/nginx":                      "docker.io/library/nginx:latest",
		"user/app:v1":                          "docker.io/user/app:v1",
		"localhost:5000/app":                   "localhost:5000/app:latest",
		"127.0.0.1:5000/team/app:2":            "127.0.0.1:5000/team/app:2",
		"quay.io/org/app@sha256:" + hex64("a"): "quay.io/org/app@sha256:" + hex64("a"),
	}
	for in, want := range cases {
		r, err := ParseReference(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if r.String() != want {
			t.Errorf("%s → %s, want %s", in, r.String(), want)
		}
	}
}

func TestParseReferenceErrors(t *testing.T) {
	cases := map[string]string{
		"":                       "empty",
		"Nginx":                  "lowercase",
		"docker.io/Library/app":  "lowercase",
		"localhost:5000/MyApp:1": "lowercase",
		"nginx:bad tag":          "nginx:bad tag",
		"nginx@sha256:123":       "nginx@sha256:123",
		"-nginx":                 "-nginx",
	}
	for in, want := range cases {
		_, err := ParseReference(in)
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, errdefs.ErrInvalidArgument) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want one invalid-argument line mentioning %q", in, err, want)
		}
	}
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"nginx", "localhost:5000/a/b:c", "a@sha256:" + hex64("0"), "UPPER", "a:b:c", "//", "@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReference(s)
		if err != nil {
			return
		}
		// A parsed reference's canonical form parses to itself.
		again, err := ParseReference(r.String())
		if err != nil || again.String() != r.String() {
			t.Fatalf("%q → %q → %v %v", s, r.String(), again.String(), err)
		}
	})
}

func hex64(c string) string { return strings.Repeat(c, 64) }
