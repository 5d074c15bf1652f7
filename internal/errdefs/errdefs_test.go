package errdefs

import (
	"errors"
	"fmt"
	"testing"
)

// Every class keeps its exit status; wrapping does not change it.
func TestExitCode(t *testing.T) {
	tested := map[error]bool{}
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("plain"), 1},
		{ErrUnavailable, 1},
		{ErrInvalidArgument, 2},
		{ErrNotFound, 3},
		{ErrAlreadyExists, 4},
		{ErrConflict, 4},
		{ErrPermission, 5},
		{ErrNotImplemented, 6},
		{ErrCommandNotFound, 127},
		{ErrCannotExecute, 126},
		{WithExitCode(fmt.Errorf("x: %w", ErrInvalidArgument), 125), 125},
		{fmt.Errorf("image %q: %w", "x", ErrNotFound), 3},
		// Two classes: the first declared wins.
		{errors.Join(ErrNotFound, ErrInvalidArgument), 2},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
		tested[tc.err] = true
	}
	for _, c := range classes {
		if !tested[c.err] {
			t.Errorf("class %q has no exit status in this test", c.err)
		}
	}
}

// A classified error sent as its message and class name comes back with
// the same message, the same class and no other, and the same exit status.
func TestClassRoundTrip(t *testing.T) {
	names := map[string]bool{}
	for _, c := range classes {
		sent := fmt.Errorf("container %q: %w", "web", c.err)
		name := ClassName(sent)
		if name == "" || names[name] {
			t.Fatalf("%v: class name %q is empty or not unique", c.err, name)
		}
		names[name] = true
		got := FromClass(name, sent.Error())
		if got.Error() != sent.Error() {
			t.Errorf("%s: message %q, want %q", name, got, sent)
		}
		for _, other := range classes {
			if errors.Is(got, other.err) != (other.err == c.err) {
				t.Errorf("%s: errors.Is(got, %v) = %v", name, other.err, !(other.err == c.err))
			}
		}
		if ExitCode(got) != ExitCode(sent) {
			t.Errorf("%s: exit status %d, want %d", name, ExitCode(got), ExitCode(sent))
		}
	}
}

// An error without a class crosses as an unclassified one.
func TestClassNone(t *testing.T) {
	if n := ClassName(errors.New("boom")); n != "" {
		t.Errorf("ClassName of an unclassified error = %q", n)
	}
	for _, name := range []string{"", "no such class"} {
		got := FromClass(name, "boom")
		if got.Error() != "boom" || ExitCode(got) != 1 || errors.Unwrap(got) != nil {
			t.Errorf("FromClass(%q) = %v (exit %d, wraps %v)", name, got, ExitCode(got), errors.Unwrap(got))
		}
	}
}

// Every class has its HTTP status; the first declared class wins, as for
// exit codes.
func TestHTTPStatus(t *testing.T) {
	tested := map[error]bool{}
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 200},
		{errors.New("plain"), 500},
		{ErrInvalidArgument, 400},
		{ErrNotFound, 404},
		{ErrAlreadyExists, 409},
		{ErrConflict, 409},
		{ErrPermission, 403},
		{ErrNotImplemented, 501},
		{ErrUnavailable, 503},
		{ErrCommandNotFound, 400},
		{ErrCannotExecute, 400},
		{fmt.Errorf("service %q: %w", "web", ErrConflict), 409},
		{errors.Join(ErrConflict, ErrInvalidArgument), 400},
	} {
		if got := HTTPStatus(tc.err); got != tc.want {
			t.Errorf("HTTPStatus(%v) = %d, want %d", tc.err, got, tc.want)
		}
		tested[tc.err] = true
	}
	for _, c := range classes {
		if !tested[c.err] {
			t.Errorf("class %q has no HTTP status in this test", c.err)
		}
	}
}
