package image

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParseFilter(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	layers := builtLayers(t, s)
	add := func(age int, labels map[string]string, names ...string) {
		cfg := builtConfig(layers)
		cfg.Created.Time = time.Unix(1700000000-int64(age)*3600, 0).UTC()
		cfg.Config.Labels = labels
		if _, err := s.AddImage(context.Background(), cfg, layers, names); err != nil {
			t.Fatal(err)
		}
	}
	add(3, map[string]string{"a": "1", "b": "2"}, "localhost/bb:1", "localhost/bb:2")
	add(2, map[string]string{"a": "1"}, "docker.io/library/nginx:latest")
	add(1, nil) // dangling, the newest
	imgs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want []string // names listed, "" for the dangling image
	}{
		{nil, []string{"", "docker.io/library/nginx:latest", "localhost/bb:1", "localhost/bb:2"}},
		{[]string{"dangling=true"}, []string{""}},
		{[]string{"dangling=false"}, []string{"docker.io/library/nginx:latest", "localhost/bb:1", "localhost/bb:2"}},
		{[]string{"reference=nginx"}, []string{"docker.io/library/nginx:latest"}},
		{[]string{"reference=*/bb:1"}, []string{"localhost/bb:1"}},
		{[]string{"reference=*"}, []string{"docker.io/library/nginx:latest"}}, // short names; never the dangling image
		// References repeated are alternatives.
		{[]string{"reference=nginx", "reference=localhost/bb:2"}, []string{"docker.io/library/nginx:latest", "localhost/bb:2"}},
		// Labels: all of them.
		{[]string{"label=a=1"}, []string{"docker.io/library/nginx:latest", "localhost/bb:1", "localhost/bb:2"}},
		{[]string{"label=a=1", "label=b"}, []string{"localhost/bb:1", "localhost/bb:2"}},
		{[]string{"label=a", "label!=b"}, []string{"docker.io/library/nginx:latest"}},
		// Different keys: all of them.
		{[]string{"label=a=1", "reference=*/bb:2"}, []string{"localhost/bb:2"}},
		{[]string{"before=nginx"}, []string{"localhost/bb:1", "localhost/bb:2"}},
		{[]string{"since=nginx"}, []string{""}},
		{[]string{"since=localhost/bb:1", "dangling=false"}, []string{"docker.io/library/nginx:latest"}},
	} {
		f, err := s.ParseFilter(c.args)
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		var got []string
		for _, img := range imgs {
			names := img.Names
			if len(names) == 0 {
				names = []string{""}
			}
			for _, n := range names {
				if f.Match(Named{Image: img, Name: n}) {
					got = append(got, n)
				}
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("%q: got %q, want %q", c.args, got, c.want)
		}
	}
	for _, c := range []struct {
		arg   string
		class error
	}{
		{"colour=red", errdefs.ErrInvalidArgument},
		{"dangling=maybe", errdefs.ErrInvalidArgument},
		{"reference=[", errdefs.ErrInvalidArgument},
		{"before=nosuch", errdefs.ErrNotFound},
	} {
		if _, err := s.ParseFilter([]string{c.arg}); !errors.Is(err, c.class) {
			t.Errorf("%q: got %v, want %v", c.arg, err, c.class)
		}
	}
}
