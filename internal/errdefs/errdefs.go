// Package errdefs defines berth's error classes and maps them, once, to exit
// codes (and later HTTP statuses).
//
// Code wraps a class with a noun that says what was wrong:
//
//	fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)
//
// and callers test with errors.Is.
package errdefs

import "errors"

// Error classes.
var (
	ErrNotFound        = errors.New("not found")
	ErrAlreadyExists   = errors.New("already exists")
	ErrInvalidArgument = errors.New("invalid argument")
	ErrConflict        = errors.New("conflict")
	ErrUnavailable     = errors.New("unavailable")
	ErrNotImplemented  = errors.New("not implemented")
	ErrPermission      = errors.New("permission denied")
)

// ExitCode returns the process exit status for err: 0 for nil, 1 for an
// unclassified failure, and a distinct small number for each class so that
// scripts can tell them apart.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrInvalidArgument):
		return 2
	case errors.Is(err, ErrNotFound):
		return 3
	case errors.Is(err, ErrAlreadyExists), errors.Is(err, ErrConflict):
		return 4
	case errors.Is(err, ErrPermission):
		return 5
	case errors.Is(err, ErrNotImplemented):
		return 6
	}
	return 1
}

// StatusError carries an exit status that a command wants to exit with
// without printing anything, such as a container's own exit status.
type StatusError struct{ Status int }

func (e *StatusError) Error() string { return "exit status" }
