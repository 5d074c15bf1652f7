package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Version is the apiVersion of the objects this package reads and writes.
const Version = "berth/v1"

// typeMeta is the header of every stored kind's JSON.
type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// decodeStrict decodes one object of kind from b into v (a struct embedding
// meta), refusing unknown fields and another version or kind.
func decodeStrict(b []byte, v any, meta *typeMeta, kind string) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, errdefs.ErrInvalidArgument) {
			return fmt.Errorf("%s: %w", kind, err)
		}
		return fmt.Errorf("%s: %s: %w", kind, strings.TrimPrefix(err.Error(), "json: "), errdefs.ErrInvalidArgument)
	}
	switch {
	case meta.APIVersion != Version:
		return fmt.Errorf("%s: apiVersion %q: want %q: %w", kind, meta.APIVersion, Version, errdefs.ErrInvalidArgument)
	case meta.Kind != kind:
		return fmt.Errorf("%s: kind %q: want %q: %w", kind, meta.Kind, kind, errdefs.ErrInvalidArgument)
	}
	return nil
}

// MarshalJSON writes the service with its apiVersion and kind.
func (s Service) MarshalJSON() ([]byte, error) {
	type plain Service
	return json.Marshal(struct {
		typeMeta
		plain
	}{typeMeta{Version, "Service"}, plain(s)})
}

// UnmarshalJSON reads a service written by MarshalJSON, strictly.
func (s *Service) UnmarshalJSON(b []byte) error {
	type plain Service
	var v struct {
		typeMeta
		plain
	}
	if err := decodeStrict(b, &v, &v.typeMeta, "Service"); err != nil {
		return err
	}
	*s = Service(v.plain)
	return nil
}

// MarshalJSON writes the revision with its apiVersion and kind.
func (r Revision) MarshalJSON() ([]byte, error) {
	type plain Revision
	return json.Marshal(struct {
		typeMeta
		plain
	}{typeMeta{Version, "Revision"}, plain(r)})
}

// UnmarshalJSON reads a revision written by MarshalJSON, strictly.
func (r *Revision) UnmarshalJSON(b []byte) error {
	type plain Revision
	var v struct {
		typeMeta
		plain
	}
	if err := decodeStrict(b, &v, &v.typeMeta, "Revision"); err != nil {
		return err
	}
	*r = Revision(v.plain)
	return nil
}

// MarshalJSON writes the task with its apiVersion and kind.
func (t Task) MarshalJSON() ([]byte, error) {
	type plain Task
	return json.Marshal(struct {
		typeMeta
		plain
	}{typeMeta{Version, "Task"}, plain(t)})
}

// UnmarshalJSON reads a task written by MarshalJSON, strictly.
func (t *Task) UnmarshalJSON(b []byte) error {
	type plain Task
	var v struct {
		typeMeta
		plain
	}
	if err := decodeStrict(b, &v, &v.typeMeta, "Task"); err != nil {
		return err
	}
	*t = Task(v.plain)
	return nil
}

// MarshalJSON writes the node with its apiVersion and kind.
func (n Node) MarshalJSON() ([]byte, error) {
	type plain Node
	return json.Marshal(struct {
		typeMeta
		plain
	}{typeMeta{Version, "Node"}, plain(n)})
}

// UnmarshalJSON reads a node written by MarshalJSON, strictly.
func (n *Node) UnmarshalJSON(b []byte) error {
	type plain Node
	var v struct {
		typeMeta
		plain
	}
	if err := decodeStrict(b, &v, &v.typeMeta, "Node"); err != nil {
		return err
	}
	*n = Node(v.plain)
	return nil
}

// MarshalJSON writes the autoscaler with its apiVersion and kind.
func (a Autoscaler) MarshalJSON() ([]byte, error) {
	type plain Autoscaler
	return json.Marshal(struct {
		typeMeta
		plain
	}{typeMeta{Version, "Autoscaler"}, plain(a)})
}

// UnmarshalJSON reads an autoscaler written by MarshalJSON, strictly.
func (a *Autoscaler) UnmarshalJSON(b []byte) error {
	type plain Autoscaler
	var v struct {
		typeMeta
		plain
	}
	if err := decodeStrict(b, &v, &v.typeMeta, "Autoscaler"); err != nil {
		return err
	}
	*a = Autoscaler(v.plain)
	return nil
}

// Duration is a time.Duration written in JSON as a Go duration string
// ("1m30s").
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String returns d as a Go duration string.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string such as "10s"; a bare number is
// refused, since its unit would be a guess.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration %s: want a string such as \"10s\": %w", b, errdefs.ErrInvalidArgument)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: want a number with a unit such as \"10s\" or \"1m30s\": %w", s, errdefs.ErrInvalidArgument)
	}
	*d = Duration(v)
	return nil
}
