package autoscale

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
)

// Limits of a metrics-api request.
const (
	metricsTimeout  = 2 * time.Second
	metricsMaxBytes = 1 << 20
)

// metricsScaler is KEDA's metrics-api scaler: it GETs a JSON document and
// asks one replica per Target of the number at Path.
type metricsScaler struct {
	client             *http.Client
	url                string // for requests
	shown              string // for messages, without a password
	path               []string
	target, activation float64
}

// newMetricsScaler checks t's url and path; it connects to nothing.
func newMetricsScaler(t api.Trigger) (*metricsScaler, error) {
	raw := t.Metadata["url"]
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, badTrigger(t.Type, "url %q: must be an absolute http or https URL", raw)
	}
	s := &metricsScaler{url: raw, shown: u.Redacted()}
	p := t.Metadata["path"]
	s.path = strings.Split(p, ".")
	for _, seg := range s.path {
		if seg == "" {
			return nil, badTrigger(t.Type, "path %q: empty part; write keys and indices between dots, as items.0.value", p)
		}
	}
	if s.target, err = triggerNumber(t, "target", 0); err != nil {
		return nil, err
	}
	if s.target == 0 {
		return nil, badTrigger(t.Type, "target=0: must be a number above 0")
	}
	if s.activation, err = triggerNumber(t, "activation", 0); err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// A redirect is not followed: it shows as its status.
	s.client = &http.Client{Timeout: metricsTimeout, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return s, nil
}

// Read GETs the url and reads the number at the path.
func (s *metricsScaler) Read(ctx context.Context, _ time.Time) (reading, error) {
	value, err := s.fetch(ctx)
	if err != nil {
		return reading{}, fmt.Errorf("metrics-api: GET %s: %w", s.shown, err)
	}
	return reading{
		Desired: replicasFor(value, s.target),
		Active:  value > s.activation,
		Current: formatNumber(value), // not the answer's text, which may be long
		Target:  perReplica(s.target),
	}, nil
}

// fetch returns the number at the path.
func (s *metricsScaler) fetch(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) { // drop the repeated "Get URL:"
			if uerr.Timeout() && ctx.Err() == nil {
				return 0, fmt.Errorf("no answer within %s", metricsTimeout)
			}
			err = uerr.Err
		}
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, fmt.Errorf("status %s", clip(resp.Status))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, metricsMaxBytes+1))
	if err != nil {
		return 0, fmt.Errorf("reading the answer: %w", err)
	}
	if len(body) > metricsMaxBytes {
		return 0, fmt.Errorf("answer is over %d bytes", metricsMaxBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return 0, fmt.Errorf("answer is not JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return 0, fmt.Errorf("answer is not JSON: data after the first value")
	}
	f, _, err := jsonLookup(doc, s.path)
	return f, err
}

// jsonLookup follows path (object keys and array indices) into doc and
// returns the number there, from a JSON number or a string holding one.
func jsonLookup(doc any, path []string) (float64, string, error) {
	v := doc
	for i, seg := range path {
		at := strings.Join(path[:i], ".")
		if at == "" {
			at = "the top"
		}
		switch x := v.(type) {
		case map[string]any:
			next, ok := x[seg]
			if !ok {
				return 0, "", fmt.Errorf("path %s: no key %q at %s", strings.Join(path, "."), seg, at)
			}
			v = next
		case []any:
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 || n >= len(x) {
				return 0, "", fmt.Errorf("path %s: no index %s in the array of %d at %s", strings.Join(path, "."), seg, len(x), at)
			}
			v = x[n]
		default:
			return 0, "", fmt.Errorf("path %s: %s at %s has no %q", strings.Join(path, "."), jsonKind(v), at, seg)
		}
	}
	var text string
	switch x := v.(type) {
	case json.Number:
		text = x.String()
	case string:
		text = strings.TrimSpace(x)
	default:
		return 0, "", fmt.Errorf("path %s: %s, not a number", strings.Join(path, "."), jsonKind(v))
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, "", fmt.Errorf("path %s: %q is not a number", strings.Join(path, "."), clip(text))
	}
	return f, text, nil
}

// clip shortens what a server said to fit in a status line.
func clip(s string) string {
	if len(s) > 64 {
		return s[:61] + "..."
	}
	return s
}

// jsonKind names a decoded JSON value's type for messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	}
	return "a number"
}

// Close drops the scaler's idle connections.
func (s *metricsScaler) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
