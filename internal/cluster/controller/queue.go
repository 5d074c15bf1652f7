package controller

import (
	"sync"
	"time"
)

// queue holds the names of the services to reconcile. A name is queued at
// most once, and a name being reconciled is not handed out again until
// done: queued again meanwhile, it comes back once the pass ends.
type queue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []string
	queued map[string]bool
	active map[string]bool
	closed bool
}

func newQueue() *queue {
	q := &queue{queued: map[string]bool{}, active: map[string]bool{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// add queues name.
func (q *queue) add(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.queued[name] {
		return
	}
	q.queued[name] = true
	if !q.active[name] {
		q.items = append(q.items, name)
		q.cond.Signal()
	}
}

// addAfter queues name after d.
func (q *queue) addAfter(name string, d time.Duration) {
	if d <= 0 {
		q.add(name)
		return
	}
	time.AfterFunc(d, func() { q.add(name) })
}

// get returns the next name to reconcile, waiting for one; false once the
// queue is closed.
func (q *queue) get() (string, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return "", false
	}
	name := q.items[0]
	q.items = q.items[1:]
	delete(q.queued, name)
	q.active[name] = true
	return name, true
}

// done ends the pass over name, handing it out again if it was queued
// meanwhile.
func (q *queue) done(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.active, name)
	if q.queued[name] && !q.closed {
		q.items = append(q.items, name)
		q.cond.Signal()
	}
}

// close wakes every waiting get, which then returns false.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}
