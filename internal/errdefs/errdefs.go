// Package errdefs defines berth's error classes and maps them, once, to exit
// codes, HTTP statuses and the names that carry them across process
// boundaries.
//
// Code wraps a class with a noun that says what was wrong:
//
//	fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)
//
// and callers test with errors.Is.
package errdefs

import "errors"

// Error classes, each with its exit status and HTTP status. An error that
// wraps more than one class takes the first declared here; adding a class
// is one line. (The HTTP statuses are numbers so that the runtime, which
// links this package, does not link net/http.)
var (
	// A container's command that could not be run: Docker's and
	// Podman's 127 and 126, which scripts tell from the command's own.
	ErrCommandNotFound = class("command not found", 127, 400)
	ErrCannotExecute   = class("cannot execute", 126, 400)

	ErrInvalidArgument = class("invalid argument", 2, 400)
	ErrNotFound        = class("not found", 3, 404)
	ErrAlreadyExists   = class("already exists", 4, 409)
	ErrConflict        = class("conflict", 4, 409)
	ErrPermission      = class("permission denied", 5, 403)
	ErrNotImplemented  = class("not implemented", 6, 501)
	ErrUnavailable     = class("unavailable", 1, 503)
)

// classes holds every class in declaration order; a class's name is its
// message.
var classes []classDef

type classDef struct {
	err        error
	exit, http int
}

func class(name string, exit, status int) error {
	err := errors.New(name)
	classes = append(classes, classDef{err, exit, status})
	return err
}

// ExitCode returns the process exit status for err: 0 for nil, 1 for an
// unclassified failure, and a distinct small number for each class so that
// scripts can tell them apart.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	for _, c := range classes {
		if errors.Is(err, c.err) {
			return c.exit
		}
	}
	return 1
}

// HTTPStatus returns the HTTP status of a response that reports err: 200
// for nil, 500 for an unclassified failure, else its class's status (400
// invalid argument, 404 not found, 409 already exists and conflict, 403,
// 501, 503).
func HTTPStatus(err error) int {
	if err == nil {
		return 200
	}
	for _, c := range classes {
		if errors.Is(err, c.err) {
			return c.http
		}
	}
	return 500
}

// ClassName returns the name of err's class, for another process to
// restore with FromClass, or "" if err has none.
func ClassName(err error) string {
	for _, c := range classes {
		if errors.Is(err, c.err) {
			return c.err.Error()
		}
	}
	return ""
}

// FromClass returns an error whose message is msg and that wraps the class
// ClassName called name, so that errors.Is and ExitCode work on an error
// that crossed a process boundary. An empty or unknown name gives an
// unclassified error.
func FromClass(name, msg string) error {
	for _, c := range classes {
		if c.err.Error() == name {
			return &classError{msg: msg, class: c.err}
		}
	}
	return errors.New(msg)
}

// classError is a message from another process with its class restored.
type classError struct {
	msg   string
	class error
}

func (e *classError) Error() string { return e.msg }
func (e *classError) Unwrap() error { return e.class }

// WithExitCode returns err with the exit status code, whatever its class
// (Docker's 125 for `run`'s own failures, say). A nil err stays nil.
func WithExitCode(err error, code int) error {
	if err == nil {
		return nil
	}
	return &exitError{err, code}
}

type exitError struct {
	error
	code int
}

func (e *exitError) Unwrap() error { return e.error }

// StatusError carries an exit status that a command wants to exit with
// without printing anything, such as a container's own exit status.
type StatusError struct{ Status int }

func (e *StatusError) Error() string { return "exit status" }
