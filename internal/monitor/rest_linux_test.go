package monitor

import (
	"os"
	"strings"
	"testing"
)

// TestIdleEnv holds package idle's C loop to the environment the monitor's
// rest and resume use.
func TestIdleEnv(t *testing.T) {
	b, err := os.ReadFile("../idle/idle.c")
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	for _, want := range []string{
		`getenv("` + idleEnv + `")`,
		`unsetenv("` + idleEnv + `")`,
		`setenv("` + resumeEnv + `", why, 1)`,
		`setenv("` + healthEnv + `", "1", 1)`,
	} {
		if !strings.Contains(src, want) {
			t.Errorf("idle.c does not have %s", want)
		}
	}
}
