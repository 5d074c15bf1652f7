package container

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParseListeners(t *testing.T) {
	// From a real /proc/net/tcp and tcp6 on x86-64 (little-endian).
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0100007F:0050 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
`
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0051 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:0052 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:0053 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6 1 0000000000000000 100 0 0 10 0
`
	got := parseListeners(tcp, "tcp")
	want := map[uint16][]netip.Addr{80: {netip.MustParseAddr("127.0.0.1")}, 8080: {netip.MustParseAddr("0.0.0.0")}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("tcp: got %v, want %v", got, want)
	}
	got = parseListeners(tcp6, "tcp")
	want = map[uint16][]netip.Addr{81: {netip.MustParseAddr("::1")}, 82: {netip.MustParseAddr("::")},
		83: {netip.MustParseAddr("::ffff:127.0.0.1")}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("tcp6: got %v, want %v", got, want)
	}
	udp := `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 7 2 0000000000000000 0
  101: 0100007F:0036 0100007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 8 2 0000000000000000 0
`
	if got := parseListeners(udp, "udp"); !reflect.DeepEqual(got, map[uint16][]netip.Addr{53: {netip.MustParseAddr("127.0.0.1")}}) {
		t.Fatalf("udp: got %v", got)
	}
}

func TestParseNetDev(t *testing.T) {
	dev := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0:    2048      20    0    0    0     0          0         0      512       5    0    0    0     0       0          0
  eth1:      10       1    0    0    0     0          0         0       20       1    0    0    0     0       0          0
`
	if rx, tx := parseNetDev(dev); rx != 2058 || tx != 532 {
		t.Fatalf("rx %d tx %d, want 2058 532 (lo left out)", rx, tx)
	}
}

func TestFilterPs(t *testing.T) {
	out := `UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init
root         100       1  0 10:01 ?        00:00:00 sleep 1000
root         101     100  0 10:01 ?        00:00:00 sh -c while true; do sleep 1; done
`
	titles, rows, err := filterPs(out, []int{100, 101})
	if err != nil {
		t.Fatal(err)
	}
	if len(titles) != 8 || titles[1] != "PID" {
		t.Fatalf("titles %q", titles)
	}
	if len(rows) != 2 || rows[0][7] != "sleep 1000" || rows[1][7] != "sh -c while true; do sleep 1; done" {
		t.Fatalf("rows %q", rows)
	}
	if _, _, err := filterPs("USER COMMAND\nroot sh\n", []int{1}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("no PID column: %v", err)
	}
}

func TestEventFilter(t *testing.T) {
	ev := &Event{Type: "container", Action: "health_status: healthy", Actor: EventActor{ID: "abcdef0123",
		Attributes: map[string]string{"name": "web", "image": "busybox", "app": "shop"}}}
	for _, c := range []struct {
		filters []string
		want    bool
	}{
		{nil, true},
		{[]string{"container=web"}, true},
		{[]string{"container=abc"}, true},
		{[]string{"container=db"}, false},
		{[]string{"container=db", "container=web"}, true},
		{[]string{"event=health_status"}, true},
		{[]string{"event=start"}, false},
		{[]string{"image=busybox", "label=app=shop"}, true},
		{[]string{"image=busybox", "label=app=cart"}, false},
		{[]string{"label=app", "type=container"}, true},
	} {
		match, err := eventFilter(c.filters)
		if err != nil {
			t.Fatal(err)
		}
		if got := match.Match(ev); got != c.want {
			t.Errorf("%q: got %v, want %v", c.filters, got, c.want)
		}
	}
	for _, bad := range []string{"container", "color=red", "event="} {
		if _, err := eventFilter([]string{bad}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestEventsLog(t *testing.T) {
	root := t.TempDir()
	e, err := New(Options{Root: root, RunRoot: filepath.Join(root, "run")})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c := &Container{ID: "0123456789ab", Name: "web", Image: "busybox", Config: Config{Labels: map[string]string{"app": "shop"}}}
	for _, a := range []string{"create", "start", "die", "destroy"} {
		e.emit(a, c, nil)
	}
	collect := func(o EventsOptions) []string {
		var got []string
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := e.Events(ctx, o, func(ev *Event) error {
			got = append(got, ev.Action+" "+ev.Actor.Attributes["name"]+" "+ev.Actor.Attributes["app"])
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := collect(EventsOptions{Since: start, Until: time.Now()})
	if want := []string{"create web shop", "start web shop", "die web shop", "destroy web shop"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := collect(EventsOptions{Since: start, Until: time.Now(), Filters: []string{"event=die"}}); len(got) != 1 {
		t.Fatalf("event=die: %q", got)
	}
	if got := collect(EventsOptions{Since: time.Now(), Until: time.Now()}); len(got) != 0 {
		t.Fatalf("since now: %q", got)
	}

	// Following: events emitted after the start, across a rotation.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan string, 100)
	go e.Events(ctx, EventsOptions{}, func(ev *Event) error { seen <- ev.Action; return nil })
	time.Sleep(300 * time.Millisecond)
	e.emit("kill", c, nil)
	if a := waitEvent(t, seen); a != "kill" {
		t.Fatalf("followed %q, want kill", a)
	}
	// Fill the log past its cap: it rotates, and following goes on.
	big := strings.Repeat("x", 64<<10)
	for i := 0; i < eventsMax/len(big)+2; i++ {
		e.emit("filler", &Container{ID: "f", Name: "f", Config: Config{Labels: map[string]string{"pad": big}}}, nil)
	}
	e.emit("oom", c, nil)
	for a := waitEvent(t, seen); a != "oom"; a = waitEvent(t, seen) {
		if a != "filler" {
			t.Fatalf("followed %q", a)
		}
	}
	if _, err := os.Stat(e.eventsPath() + ".1"); err != nil {
		t.Fatalf("no rotated log: %v", err)
	}
	if fi, _ := os.Stat(e.eventsPath()); fi.Size() > eventsMax {
		t.Fatalf("log is %d bytes, over its cap", fi.Size())
	}
	// Past events come from both files, in order.
	got = collect(EventsOptions{Since: start, Until: time.Now(), Filters: []string{"container=web"}})
	if len(got) != 6 || got[4] != "kill web shop" || got[5] != "oom web shop" {
		t.Fatalf("after rotation: %q", got)
	}
}

func waitEvent(t *testing.T, ch chan string) string {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	return ""
}

func TestCopyMarkers(t *testing.T) {
	for _, c := range []struct {
		in              string
		clean           string
		contents, slash bool
	}{
		{"/a/b", "/a/b", false, false},
		{"/a/b/", "/a/b", false, true},
		{"/a/b/.", "/a/b", true, false},
		{"/", "/", false, false},
		{"/.", "/", true, false},
	} {
		clean, contents, slash := markers(c.in)
		if clean != c.clean || contents != c.contents || slash != c.slash {
			t.Errorf("%q: got %q %v %v", c.in, clean, contents, slash)
		}
	}
	wd, _ := os.Getwd()
	if p, _ := hostPath("x/."); p != filepath.Join(wd, "x")+"/." {
		t.Errorf("hostPath x/.: %q", p)
	}
	if p, _ := hostPath("x/"); p != filepath.Join(wd, "x")+"/" {
		t.Errorf("hostPath x/: %q", p)
	}
}
