package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/image"
	digest "github.com/opencontainers/go-digest"
)

// pullProgress draws one line per layer (bytes, rate) on a terminal,
// redrawn in place ten times a second.
type pullProgress struct {
	w      io.Writer
	mu     sync.Mutex
	order  []digest.Digest
	layers map[digest.Digest]*layerProgress
	drawn  int
	stop   chan struct{}
	done   chan struct{}
}

type layerProgress struct {
	done, total int64
	start       time.Time
	finished    time.Time
}

func newPullProgress(w io.Writer) *pullProgress {
	p := &pullProgress{w: w, layers: map[digest.Digest]*layerProgress{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				p.draw()
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
	return p
}

func (p *pullProgress) progress() *image.Progress {
	return &image.Progress{Bytes: p.bytes}
}

func (p *pullProgress) bytes(layer digest.Digest, done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.layers[layer]
	if !ok {
		l = &layerProgress{start: time.Now()}
		p.layers[layer] = l
		p.order = append(p.order, layer)
	}
	l.done, l.total = done, total
	if done >= total && l.finished.IsZero() {
		l.finished = time.Now()
	}
}

// close draws the final state and stops redrawing.
func (p *pullProgress) close() {
	close(p.stop)
	<-p.done
}

func (p *pullProgress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\033[%dA", p.drawn)
	}
	for _, d := range p.order {
		l := p.layers[d]
		end := l.finished
		if end.IsZero() {
			end = time.Now()
		}
		rate := float64(l.done) / end.Sub(l.start).Seconds()
		state := fmt.Sprintf("%s / %s  %s/s", humanSize(l.done), humanSize(l.total), humanSize(int64(rate)))
		if !l.finished.IsZero() {
			state = fmt.Sprintf("%s  done", humanSize(l.total))
		}
		fmt.Fprintf(&b, "\033[2KCopying blob %s  %s\n", d.Encoded()[:12], state)
	}
	p.drawn = len(p.order)
	io.WriteString(p.w, b.String())
}
