package autoscale

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/errdefs"
)

// metricsServer is a real HTTP server that answers each path with a
// fixed body; /fail answers 500, /slow never in time.
func metricsServer(t *testing.T) *httptest.Server {
	t.Helper()
	bodies := map[string]string{
		"/nested":  `{"components": {"worker": {"tasks": 12, "ok": true, "name": "w"}}}`,
		"/array":   `{"items": [{"value": "3.5"}, {"value": 7}]}`,
		"/top":     `[4, " 9 "]`,
		"/zero":    `{"queue": 0}`,
		"/neg":     `{"queue": -4}`,
		"/null":    `{"queue": null}`,
		"/nan":     `{"queue": "NaN"}`,
		"/words":   `{"queue": "many"}`,
		"/bad":     `{"queue": 3`,
		"/trailer": `{"queue": 3} {"queue": 4}`,
		"/big":     `{"queue": 3, "pad": "` + strings.Repeat("x", 1<<20) + `"}`,
	}
	unblock := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fail":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "/slow":
			select {
			case <-unblock:
			case <-r.Context().Done():
			}
		default:
			b, ok := bodies[r.URL.Path]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, b)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(unblock) }) // runs before srv.Close
	return srv
}

func TestMetricsAPITrigger(t *testing.T) {
	srv := metricsServer(t)
	for _, c := range []struct {
		path, json string
		target     string
		activation string
		want       reading
	}{
		{"/nested", "components.worker.tasks", "5", "", reading{3, true, "12", "5 per replica"}},
		{"/nested", "components.worker.tasks", "12", "12", reading{1, false, "12", "12 per replica"}},
		{"/array", "items.0.value", "1", "", reading{4, true, "3.5", "1 per replica"}},
		{"/array", "items.1.value", "2.5", "3", reading{3, true, "7", "2.5 per replica"}},
		{"/top", "0", "2", "", reading{2, true, "4", "2 per replica"}},
		{"/top", "1", "2", "", reading{5, true, "9", "2 per replica"}},
		{"/zero", "queue", "10", "", reading{0, false, "0", "10 per replica"}},
		{"/neg", "queue", "10", "", reading{0, false, "-4", "10 per replica"}},
	} {
		tr := testTrigger(t, api.TriggerMetricsAPI, "url="+srv.URL+c.path, "path="+c.json, "target="+c.target)
		if c.activation != "" {
			tr.Metadata["activation"] = c.activation
		}
		if r := mustRead(t, mustScaler(t, tr), time.Now()); r != c.want {
			t.Errorf("%s %s: Read = %+v, want %+v", c.path, c.json, r, c.want)
		}
	}
}

func TestMetricsAPIErrors(t *testing.T) {
	srv := metricsServer(t)
	for _, c := range []struct {
		path, json, want string
	}{
		{"/fail", "queue", "status 500 Internal Server Error"},
		{"/missing", "queue", "status 404 Not Found"},
		{"/bad", "queue", "answer is not JSON: unexpected EOF"},
		{"/trailer", "queue", "answer is not JSON: data after the first value"},
		{"/big", "queue", "answer is over 1048576 bytes"},
		{"/nested", "components.queue.tasks", `path components.queue.tasks: no key "queue" at components`},
		{"/nested", "tasks", `path tasks: no key "tasks" at the top`},
		{"/nested", "components.worker.ok", "path components.worker.ok: a boolean, not a number"},
		{"/nested", "components.worker.name", `path components.worker.name: "w" is not a number`},
		{"/nested", "components.worker", "path components.worker: an object, not a number"},
		{"/nested", "components.worker.tasks.n", `path components.worker.tasks.n: a number at components.worker.tasks has no "n"`},
		{"/array", "items.2.value", "path items.2.value: no index 2 in the array of 2 at items"},
		{"/array", "items.x.value", "path items.x.value: no index x in the array of 2 at items"},
		{"/null", "queue", "path queue: null, not a number"},
		{"/nan", "queue", `path queue: "NaN" is not a number`},
		{"/words", "queue", `path queue: "many" is not a number`},
	} {
		tr := testTrigger(t, api.TriggerMetricsAPI, "url="+srv.URL+c.path, "path="+c.json, "target=1")
		r, err := mustScaler(t, tr).Read(t.Context(), time.Now())
		want := "metrics-api: GET " + srv.URL + c.path + ": " + c.want
		if err == nil || err.Error() != want {
			t.Errorf("%s %s: Read = %+v, %v\n want error %s", c.path, c.json, r, err, want)
		}
	}
}

func TestMetricsAPITimeout(t *testing.T) {
	srv := metricsServer(t)
	tr := testTrigger(t, api.TriggerMetricsAPI, "url="+srv.URL+"/slow", "path=queue", "target=1")
	start := time.Now()
	_, err := mustScaler(t, tr).Read(t.Context(), time.Now())
	if err == nil || err.Error() != "metrics-api: GET "+srv.URL+"/slow: no answer within 2s" {
		t.Errorf("Read of a slow server: %v, want a timeout", err)
	}
	if d := time.Since(start); d < metricsTimeout || d > metricsTimeout+time.Second {
		t.Errorf("Read of a slow server took %s, want about %s", d, metricsTimeout)
	}
	t.Log(err)

	// Nothing listens on port 1: an error, not a wait.
	tr = testTrigger(t, api.TriggerMetricsAPI, "url=http://127.0.0.1:1/m", "path=queue", "target=1")
	if _, err := mustScaler(t, tr).Read(t.Context(), time.Now()); err == nil || !strings.HasPrefix(err.Error(), "metrics-api: GET http://127.0.0.1:1/m: ") {
		t.Errorf("Read where nothing listens: %v", err)
	}
}

func TestMetricsAPIInvalid(t *testing.T) {
	for _, c := range []struct{ url, path, want string }{
		{"ftp://example.com/m", "a", `metrics-api: url "ftp://example.com/m": must be an absolute http or https URL`},
		{"/metrics", "a", `metrics-api: url "/metrics": must be an absolute`},
		{"localhost:8080/metrics", "a", `metrics-api: url "localhost:8080/metrics": must be an absolute`},
		{"http://", "a", `metrics-api: url "http://": must be an absolute`},
		{"http://[::1", "a", `metrics-api: url "http://[::1": must be an absolute`},
		{"http://127.0.0.1:1/m", "a..b", `metrics-api: path "a..b": empty part`},
		{"http://127.0.0.1:1/m", ".a", `metrics-api: path ".a": empty part`},
	} {
		tr := testTrigger(t, api.TriggerMetricsAPI, "url="+c.url, "path="+c.path, "target=1")
		_, err := newScaler(tr, nil)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("url %q path %q: %v, want ErrInvalidArgument %q", c.url, c.path, err, c.want)
		}
		if err := checkTrigger(t.Context(), tr); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("checkTrigger url %q path %q: %v", c.url, c.path, err)
		}
	}
}

func TestMetricsAPIPasswordHidden(t *testing.T) {
	tr := testTrigger(t, api.TriggerMetricsAPI, "url=http://user:hunter2@127.0.0.1:1/m", "path=a", "target=1")
	_, err := mustScaler(t, tr).Read(t.Context(), time.Now())
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Read: %v; want an error without the password", err)
	}
}
