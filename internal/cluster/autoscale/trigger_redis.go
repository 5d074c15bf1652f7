package autoscale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/berth-dev/berth/internal/cluster/api"
)

// Timeouts of a redis-list trigger: each dial and each command's read and
// write, and the PING of checkTrigger.
const (
	redisTimeout     = time.Second
	redisPingTimeout = 2 * time.Second
)

func init() {
	// go-redis logs failed dials itself; the error reaches the status
	// anyway, so its log goes to debug rather than stderr every poll.
	redis.SetLogger(redisLog{})
}

// redisLog sends go-redis's log lines to slog at debug level.
type redisLog struct{}

// Printf logs one go-redis line.
func (redisLog) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}

// redisScaler is KEDA's redis list scaler: one replica per Target items
// of a list, active above Activation items.
type redisScaler struct {
	client             *redis.Client
	addr, list         string
	target, activation float64
}

// newRedisScaler makes t's client; it dials nothing until Read.
func newRedisScaler(t api.Trigger) (*redisScaler, error) {
	addr := t.Metadata["address"]
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, badTrigger(t.Type, "address %q: must be HOST:PORT", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return nil, badTrigger(t.Type, "address %q: port must be 1 to 65535", addr)
	}
	db := 0
	if v, ok := t.Metadata["database"]; ok {
		if db, err = strconv.Atoi(v); err != nil || db < 0 {
			return nil, badTrigger(t.Type, "database=%s: must be a whole number, 0 or more", v)
		}
	}
	s := &redisScaler{addr: addr, list: t.Metadata["list"]}
	if s.target, err = triggerNumber(t, "target", 0); err != nil {
		return nil, err
	}
	if s.target == 0 {
		return nil, badTrigger(t.Type, "target=0: must be a number above 0")
	}
	if s.activation, err = triggerNumber(t, "activation", 0); err != nil {
		return nil, err
	}
	s.client = redis.NewClient(&redis.Options{
		Addr:                  addr,
		Password:              t.Metadata["password"],
		DB:                    db,
		DialTimeout:           redisTimeout,
		ReadTimeout:           redisTimeout,
		WriteTimeout:          redisTimeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1, // the next poll is the retry
		DialerRetries:         1,
		PoolSize:              1,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	})
	return s, nil
}

// Read asks for the list's length.
func (s *redisScaler) Read(ctx context.Context, _ time.Time) (reading, error) {
	n, err := s.client.LLen(ctx, s.list).Result()
	if err != nil {
		return reading{}, fmt.Errorf("redis-list: LLEN %s at %s: %w", s.list, s.addr, err)
	}
	current := strconv.FormatInt(n, 10) + " items"
	if n == 1 {
		current = "1 item"
	}
	return reading{
		Desired: replicasFor(float64(n), s.target),
		Active:  float64(n) > s.activation,
		Current: current,
		Target:  perReplica(s.target),
	}, nil
}

// ping checks that the server answers, and accepts the password and
// database, within redisPingTimeout.
func (s *redisScaler) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, redisPingTimeout)
	defer cancel()
	err := s.client.Ping(ctx).Err()
	if err == nil {
		return nil
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return badTrigger(api.TriggerRedisList, "address %s answers %q; check password and database", s.addr, strings.TrimSpace(rerr.Error()))
	}
	return badTrigger(api.TriggerRedisList, "address %s does not answer: %s", s.addr, shortReason(err))
}

// shortReason says in a few words why a connection failed: "connection
// refused", "timed out", "no such host".
func shortReason(err error) string {
	var errno syscall.Errno
	var dns *net.DNSError
	var nerr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &nerr) && nerr.Timeout():
		return "timed out"
	case errors.As(err, &dns):
		return dns.Err
	case errors.As(err, &errno):
		return errno.Error()
	}
	return err.Error()
}

// Close closes the client and its connection.
func (s *redisScaler) Close() error { return s.client.Close() }
