package image

import "io"

// A layer that holds most of an image's bytes unpacks mostly alone, on
// one core, while the others wait: inflating it (and hashing and, when it
// streams from the registry, downloading and storing its blob) takes
// about half of that core, and creating its files the other half. With
// read-ahead, a goroutine of its own reads the tar stream ahead of the
// unpacker, a few chunks at a time, so that the two halves run side by
// side. Several layers unpacking at once keep the cores busy already, and
// there read-ahead only adds a copy of every byte and switches between
// goroutines: the pull asks for it only for a dominant layer (bigLayer).

const (
	unpackReadaheadChunk  = 128 << 10
	unpackReadaheadChunks = 8
)

// unpackReadahead reads r in a goroutine, up to unpackReadaheadChunks
// chunks ahead of its own Read.
type unpackReadahead struct {
	full   chan []byte // chunks read, in order; closed after the last
	free   chan []byte // chunks the reader is done with
	done   chan struct{}
	exited chan struct{}
	err    error  // why the goroutine stopped reading (io.EOF at the end); set before full is closed
	cur    []byte // what is left of the chunk being read
	last   []byte // that chunk, to give back
}

func newUnpackReadahead(r io.Reader) *unpackReadahead {
	ra := &unpackReadahead{
		full:   make(chan []byte, unpackReadaheadChunks),
		free:   make(chan []byte, unpackReadaheadChunks),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	for range unpackReadaheadChunks {
		ra.free <- make([]byte, unpackReadaheadChunk)
	}
	go ra.run(r)
	return ra
}

func (ra *unpackReadahead) run(r io.Reader) {
	defer close(ra.exited)
	defer close(ra.full)
	for {
		var b []byte
		select {
		case b = <-ra.free:
		case <-ra.done:
			return
		}
		n, err := unpackFill(r, b)
		if n > 0 {
			select {
			case ra.full <- b[:n]:
			case <-ra.done:
				return
			}
		}
		if err != nil {
			ra.err = err
			return
		}
	}
}

func (ra *unpackReadahead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.last != nil {
			ra.free <- ra.last[:cap(ra.last)] // never blocks: free holds every chunk
			ra.last = nil
		}
		b, ok := <-ra.full
		if !ok {
			return 0, ra.err
		}
		ra.cur, ra.last = b, b
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// stop ends the goroutine and waits for it: r is not read once stop
// returns. A read it is blocked in ends first.
func (ra *unpackReadahead) stop() {
	close(ra.done)
	<-ra.exited
}
