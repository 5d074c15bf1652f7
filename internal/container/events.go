package container

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"
)

// Events are kept without a daemon: every berth process that changes a
// container appends one JSON line to ROOT/events.log, with one write(2) on
// a file opened O_APPEND, so that lines of concurrent processes never
// interleave. When the log passes eventsMax it becomes events.log.1 (the
// previous one is dropped), so at most about twice that is kept.
const (
	eventsFile = "events.log"
	eventsLock = "events.lock"
	eventsMax  = 4 << 20
)

// Event is one line of `berth events`, in the shape of Docker's events.
type Event struct {
	Status   string     `json:"status,omitempty"` // Docker's older fields: Action, Actor.ID and the image
	ID       string     `json:"id,omitempty"`
	From     string     `json:"from,omitempty"`
	Type     string     `json:"Type"`
	Action   string     `json:"Action"`
	Actor    EventActor `json:"Actor"`
	Scope    string     `json:"scope"`
	Time     int64      `json:"time"`
	TimeNano int64      `json:"timeNano"`
}

// EventActor is what an event is about.
type EventActor struct {
	ID         string            `json:"ID"`
	Attributes map[string]string `json:"Attributes"`
}

// When returns the event's time.
func (ev *Event) When() time.Time { return time.Unix(0, ev.TimeNano) }

func (e *Engine) eventsPath() string { return filepath.Join(filepath.Dir(e.root), eventsFile) }

// emit records a container event (Docker's actions: create, start, die,
// stop, kill, destroy, rename, health_status, oom) for `berth events`.
// Attributes are the container's labels, its name and image, and attrs.
// It never fails the operation that emits it.
func (e *Engine) emit(action string, c *Container, attrs map[string]string) {
	name := c.Name
	// A monitor keeps the record it started with: the name may have
	// changed since.
	var cur Container
	if readJSON(filepath.Join(e.dir(c.ID), recordFile), &cur) == nil && cur.Name != "" {
		name = cur.Name
	}
	a := maps.Clone(c.Config.Labels)
	if a == nil {
		a = map[string]string{}
	}
	maps.Copy(a, attrs)
	a["name"], a["image"] = name, c.Image
	now := time.Now()
	ev := Event{Status: action, ID: c.ID, From: c.Image, Type: "container", Action: action,
		Actor: EventActor{ID: c.ID, Attributes: a}, Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano()}
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	e.appendEvent(append(b, '\n'))
}

// EmitService records an event of a service (Docker's type "service"):
// id is the service's ID, attrs say what happened (its name first). It
// never fails.
func (e *Engine) EmitService(action, id string, attrs map[string]string) {
	now := time.Now()
	ev := Event{ID: id, Type: "service", Action: action, Actor: EventActor{ID: id, Attributes: attrs},
		Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano()}
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	e.appendEvent(append(b, '\n'))
}

// appendEvent appends one line to the events log in a single write, or
// nothing.
func (e *Engine) appendEvent(line []byte) error {
	path := e.eventsPath()
	if fi, err := os.Stat(path); err == nil && fi.Size()+int64(len(line)) > eventsMax {
		e.rotateEvents(path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := f.Write(line)
	if err != nil && n > 0 {
		// Part of a line (the disk is full) would spoil the line that
		// follows it: take it back, unless another process has
		// written after it.
		if end, serr := f.Seek(0, io.SeekCurrent); serr == nil {
			if fi, serr := f.Stat(); serr == nil && fi.Size() == end {
				f.Truncate(end - int64(n))
			}
		}
	}
	return err
}

// rotateEvents renames a full log to events.log.1, under a lock so that
// two processes finding it full do not both rotate it.
func (e *Engine) rotateEvents(path string) {
	l, err := os.OpenFile(filepath.Join(filepath.Dir(path), eventsLock), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer l.Close()
	if unix.Flock(int(l.Fd()), unix.LOCK_EX) != nil {
		return
	}
	if fi, err := os.Stat(path); err == nil && fi.Size() >= eventsMax-64<<10 {
		os.Rename(path, path+".1")
	}
}

// EventsOptions select events as `docker events` does.
type EventsOptions struct {
	// Since, if set, includes past events from that time on; otherwise
	// only events that happen from now on are shown.
	Since time.Time
	// Until, if set, ends the stream at that time (at once if it has
	// passed, after the past events).
	Until time.Time
	// Filters are `events --filter` arguments (see eventFilter):
	// container, event, type, image and label. Values of one key are
	// alternatives; different keys and every label must match.
	Filters []string
	// Poll is how often a follow looks for new events (default 100 ms);
	// a watcher that must react at once, such as a node's agent, sets less.
	Poll time.Duration
}

// Events calls fn for each event that o selects, oldest first, and then
// for new ones as they happen until ctx ends or o.Until passes.
func (e *Engine) Events(ctx context.Context, o EventsOptions, fn func(*Event) error) error {
	match, err := eventFilter(o.Filters)
	if err != nil {
		return err
	}
	path := e.eventsPath()
	poll := o.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	deliver := func(line []byte) (bool, error) {
		var ev Event
		if json.Unmarshal(line, &ev) != nil || !match.Match(&ev) {
			return false, nil
		}
		t := ev.When()
		if !o.Since.IsZero() && t.Before(o.Since) {
			return false, nil
		}
		if !o.Until.IsZero() && t.After(o.Until) {
			return true, nil
		}
		return false, fn(&ev)
	}
	f := &eventsFollower{path: path}
	defer f.close()
	// Written to, created or renamed, the log is read at once; poll stays
	// as the bound on a change inotify did not report (or the only way,
	// where it cannot watch).
	changed, unwatch := watchFile(path)
	defer unwatch()
	f.open()
	if !o.Since.IsZero() {
		// The rotated log first, unless it is the file just opened
		// (rotated meanwhile).
		if old, err := os.Open(path + ".1"); err == nil {
			if !sameFile(old, f.f) {
				if done, err := readLines(bufio.NewReaderSize(old, 64<<10), nil, deliver); done || err != nil {
					old.Close()
					return err
				}
			}
			old.Close()
		}
	} else if f.f != nil {
		f.f.Seek(0, io.SeekEnd)
	}
	wait := time.NewTimer(poll)
	defer wait.Stop()
	for {
		done, err := f.read(deliver)
		if done || err != nil {
			return err
		}
		if !o.Until.IsZero() && time.Now().After(o.Until) {
			return nil
		}
		if changed != nil {
			wait.Reset(max(poll, time.Second))
		} else {
			wait.Reset(poll)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-wait.C:
		}
	}
}

// watchFile returns a channel that receives when path (or path.1, where
// rotation renames it) is written to, created or renamed, and a function that stops that; the channel is nil
// when inotify cannot watch path's directory.
func watchFile(path string) (<-chan struct{}, func()) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, func() {}
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		w.Close()
		return nil, func() {}
	}
	ch := make(chan struct{}, 1)
	go func() {
		for ev := range w.Events {
			// The rotated log too: a writer that opened it before the
			// rename writes its line there.
			if ev.Name == path || ev.Name == path+".1" {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
	}()
	go func() {
		for range w.Errors { // an overflow: the poll catches up
		}
	}()
	return ch, func() { w.Close() }
}

// eventsFollower reads the events log as it grows and across rotations.
type eventsFollower struct {
	path    string
	f       *os.File
	br      *bufio.Reader
	partial []byte
}

func (f *eventsFollower) open() {
	if f.f != nil {
		return
	}
	if f.f, _ = os.Open(f.path); f.f == nil {
		return
	}
	// One buffer for the follow: a follower reads often and mostly
	// nothing, and should not allocate each time.
	if f.br == nil {
		f.br = bufio.NewReaderSize(f.f, 64<<10)
	} else {
		f.br.Reset(f.f)
	}
}

func (f *eventsFollower) close() {
	if f.f != nil {
		f.f.Close()
	}
}

// read delivers the complete lines written since the last read; when the
// log was rotated it finishes the old file and goes on with the new one.
func (f *eventsFollower) read(deliver func([]byte) (bool, error)) (bool, error) {
	for {
		f.open()
		if f.f == nil {
			return false, nil
		}
		done, err := readLines(f.br, &f.partial, deliver)
		if done || err != nil {
			return done, err
		}
		cur, err := os.Stat(f.path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		fi, _ := f.f.Stat()
		if err == nil && fi != nil && os.SameFile(cur, fi) {
			return false, nil
		}
		if err != nil {
			return false, nil // rotated and nothing new written yet
		}
		f.f.Close()
		f.f, f.partial = nil, nil
	}
}

// readLines delivers each complete line of r; an incomplete last line is
// kept in *partial (when given) for the next call.
func readLines(br *bufio.Reader, partial *[]byte, deliver func([]byte) (bool, error)) (bool, error) {
	var carry []byte
	if partial != nil {
		carry = *partial
	}
	for {
		line, err := br.ReadBytes('\n')
		if len(carry) > 0 {
			line, carry = append(carry, line...), nil
		}
		if err != nil {
			if partial != nil {
				*partial = line
			}
			if errors.Is(err, io.EOF) {
				return false, nil
			}
			return false, err
		}
		if line = bytes.TrimSpace(line); len(line) == 0 {
			continue
		}
		if done, err := deliver(line); done || err != nil {
			return done, err
		}
	}
}

func sameFile(a, b *os.File) bool {
	if a == nil || b == nil {
		return false
	}
	ai, err1 := a.Stat()
	bi, err2 := b.Stat()
	return err1 == nil && err2 == nil && os.SameFile(ai, bi)
}

// String is Docker's line for the event:
// TIME container ACTION ID (key=value, …).
func (ev *Event) String() string {
	keys := make([]string, 0, len(ev.Actor.Attributes))
	for k := range ev.Actor.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	attrs := make([]string, len(keys))
	for i, k := range keys {
		attrs[i] = k + "=" + ev.Actor.Attributes[k]
	}
	return fmt.Sprintf("%s %s %s %s (%s)", ev.When().Format("2006-01-02T15:04:05.000000000Z07:00"), ev.Type, ev.Action,
		ev.Actor.ID, strings.Join(attrs, ", "))
}
