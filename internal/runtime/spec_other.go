//go:build !linux

package runtime

import specs "github.com/opencontainers/runtime-spec/specs-go"

func validateProcessPlatform(*specs.Process) error { return nil }
