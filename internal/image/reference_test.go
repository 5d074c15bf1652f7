package image

import (
	"errors"
	"os"
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

// TestParseReferenceSaysWhy checks that each malformed reference gets a
// line naming the part that is wrong, in a user's words.
func TestParseReferenceSaysWhy(t *testing.T) {
	long := strings.Repeat("a", 300)
	cases := []struct{ in, want string }{
		{"localhost/bb:", "the tag after ':' is empty"},
		{"bb::1", `the tag ":1" has ':'; a tag holds only letters, digits, '_', '.' and '-'`},
		{"bb:1:2", `the tag "1:2" has ':'`},
		{"bb:" + strings.Repeat("a", 200), "the tag is 200 characters long; the most is 128"},
		{"bb:.x", "must start with a letter, digit or '_'"},
		{"bb@sha256:abc", "the sha256 digest has 3 hex digits; it needs 64"},
		{"bb@sha256:" + strings.Repeat("g", 64), "the digest has 'g'; a sha256 digest is 64 lowercase hex digits"},
		{"bb@md5:abc", `the digest algorithm "md5" is not one of sha256`},
		{"bb@abc", "has no algorithm"},
		{"bb@", "the digest after '@' is empty"},
		{long, "the name is 300 characters long; the most is 255"},
		{"b b", "a reference cannot contain spaces"},
		{"a//b", "empty part"},
		{"localhost:abc/x", `the registry port "abc" is not a number`},
		{"my_host.com/x", `the registry host "my_host.com" has '_'`},
		{"héllo", "has the character 'é'"},
		{"http://host/x", "a reference has no scheme: write host/x (for a registry without TLS, give pull, push or build --tls-verify=false, or set insecure = true"},
		{"Tools/BusyBox", "repository names must be lowercase"},
	}
	for _, c := range cases {
		_, err := ParseReference(c.in)
		if err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%.40q: %v, want an invalid argument", c.in, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") || strings.Contains(msg, "name.") || len(msg) > 300 {
			t.Errorf("%.40q: %q, want one short line saying %q", c.in, msg, c.want)
		}
	}
	// Valid references next to the invalid ones above still parse.
	for _, in := range []string{"bb:1", "bb:_x", "a__b", "[::1]:5000/x:1", "bb:1@sha256:" + hex64("a"), "my-host.com:5000/a/b-c.d:v1.2"} {
		if _, err := ParseReference(in); err != nil {
			t.Errorf("%q: %v", in, err)
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

func TestLoadInsecureRegistries(t *testing.T) {
	path := t.TempDir() + "/registries.conf"
	conf := "unqualified-search-registries = [\"docker.io\"]\n[[registry]]\nlocation = \"reg.lan:5000\"\ninsecure = true\n[[registry]]\nlocation = \"quay.io\"\n"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadInsecureRegistries(path)
	if err != nil || len(got) != 1 || got[0] != "reg.lan:5000" {
		t.Fatalf("%v %v", got, err)
	}
	if got, err := LoadInsecureRegistries(path + ".missing"); err != nil || got != nil {
		t.Fatalf("missing file: %v %v", got, err)
	}
	os.WriteFile(path, []byte("[[registry]\n"), 0o644)
	if _, err := LoadInsecureRegistries(path); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("broken file: %v", err)
	}
	o := RegistryOptions{InsecureRegistries: []string{"reg.lan:5000"}}
	if !o.insecureFor("reg.lan:5000") || o.insecureFor("quay.io") {
		t.Fatal("insecureFor")
	}
}
