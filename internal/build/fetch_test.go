package build

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// stallingServer listens on a loopback port and returns its address:
// it accepts connections and, if headers, answers with them and part of
// a body; then it sends nothing more until the test ends.
func stallingServer(t *testing.T, headers bool) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if headers {
					buf := make([]byte, 4096)
					c.Read(buf)
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\npartial")
				}
				<-done
			}()
		}
	}()
	return l.Addr().String()
}

// TestFetchStalls builds ADDs from servers that accept the connection and
// then send nothing, before the response or in its body: the build fails
// after the fetch timeout with a line that says so, not hangs.
func TestFetchStalls(t *testing.T) {
	_, build := testBuilds(t)
	for _, headers := range []bool{false, true} {
		url := "http://" + stallingServer(t, headers) + "/file"
		errc := make(chan error, 1)
		start := time.Now()
		go func() {
			_, _, err := build("FROM scratch\nADD "+url+" /file\n", Options{FetchTimeout: 300 * time.Millisecond})
			errc <- err
		}()
		select {
		case err := <-errc:
			want := "Containerfile:2: ADD: fetch " + url + ": the server sent nothing for 300ms"
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("headers %t: %v, want %q…", headers, err, want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("headers %t: failed after %s", headers, d)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("headers %t: ADD of %s still waits after 30 s", headers, url)
		}
	}
}

// TestFetchProgress fetches a body that comes slowly: the build says how
// far the download is while it lasts, and then that it is done.
func TestFetchProgress(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("ADD needs root (overlay mounts)")
	}
	defer func(d time.Duration) { progressEvery = d }(progressEvery)
	progressEvery = 20 * time.Millisecond
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "3072")
		for i := 0; i < 3; i++ {
			w.Write([]byte(strings.Repeat("x", 1024)))
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
	})}
	go srv.Serve(l)
	defer srv.Close()
	_, build := testBuilds(t)
	url := "http://" + l.Addr().String() + "/big"
	_, out, err := build("FROM scratch\nADD "+url+" /big\n", Options{FetchTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Fetching "+url+": ") || !strings.Contains(out, " of 3.0 KiB (") || !strings.Contains(out, "Fetched "+url+": 3.0 KiB in ") {
		t.Fatalf("output:\n%s", out)
	}
}
