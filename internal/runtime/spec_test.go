package runtime

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParseSpecErrorsNameTheField(t *testing.T) {
	base := `"ociVersion":"1.0.2","root":{"path":"rootfs"}`
	cases := []struct{ config, field string }{
		{`{` + base + `,"process":{"args":"sh","cwd":"/"}}`, "process.args"},
		{`{` + base + `,"process":{"args":[],"cwd":"/"}}`, "process.args"},
		{`{` + base + `,"process":{"args":["sh"],"cwd":"tmp"}}`, "process.cwd"},
		{`{` + base + `,"process":{"args":["sh"],"cwd":"/","user":{"uid":4294967295,"gid":0}}}`, "process.user.uid"},
		{`{` + base + `,"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":4294967295}}}`, "process.user.gid"},
		{`{` + base + `,"process":{"args":["sh"],"cwd":"/","env":["NOEQUALS"]}}`, "process.env[0]"},
		{`{` + base + `,"process":{"args":["sh"],"cwd":"/","rlimits":[{"type":"RLIMIT_BOGUS","hard":1,"soft":1}]}}`, "process.rlimits[0].type"},
		{`{` + base + `,"process":{"args":["sh"],"cwd":"/","rlimits":[{"type":"RLIMIT_NOFILE","hard":1,"soft":2}]}}`, "process.rlimits[0]"},
		{`{` + base + `,"process":{"args":["sh"],"cwd":"/","capabilities":{"bounding":["CAP_FLY"]}}}`, "process.capabilities.bounding"},
		{`{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/"}}`, "root.path"},
		{`{"root":{"path":"r"}}`, "ociVersion"},
		{`{"ociVersion":"2.0.0","root":{"path":"r"}}`, "ociVersion"},
		{`{` + base + `,"mounts":[{"destination":"proc","type":"proc"}]}`, "mounts[0].destination"},
		{`{` + base + `,"linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}}`, "linux.namespaces[1].type"},
		{`{` + base + `,"linux":{"namespaces":[{"type":"network","path":"rel"}]}}`, "linux.namespaces[0].path"},
		{`{` + base + `,"linux":{"uidMappings":[{"containerID":0,"hostID":1,"size":1}]}}`, "linux.uidMappings"},
		{`{` + base + `,"linux":{"devices":[{"path":"/dev/x","type":"q"}]}}`, "linux.devices[0].type"},
		{`{` + base + `,"linux":{"rootfsPropagation":"sideways"}}`, "linux.rootfsPropagation"},
		{`{` + base + `,"linux":{"maskedPaths":["proc/kcore"]}}`, "linux.maskedPaths[0]"},
		{`{"ociVersion": 1}`, "ociVersion"},
		{`{"ociVersion":"1.0.2",`, "malformed JSON"},
	}
	for _, c := range cases {
		_, err := ParseSpec([]byte(c.config))
		if err == nil {
			t.Errorf("%s: accepted", c.config)
			continue
		}
		if !strings.Contains(err.Error(), c.field) || !errors.Is(err, errdefs.ErrInvalidArgument) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %q, want one invalid-argument line naming %s", c.config, err, c.field)
		}
	}
}

func TestParseSpecAcceptsExample(t *testing.T) {
	for _, rootless := range []bool{false, true} {
		s := Example(rootless, 1000, 1000)
		data, err := jsonMarshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseSpec(data); err != nil {
			t.Errorf("Example(rootless=%v) rejected: %v", rootless, err)
		}
	}
}

func TestCheckID(t *testing.T) {
	for _, id := range []string{"a", "web-1", "0c1f.x_y+z", strings.Repeat("a", 128)} {
		if err := checkID(id); err != nil {
			t.Errorf("%q rejected: %v", id, err)
		}
	}
	for _, id := range []string{"", "..", "../x", "a/b", "-a", ".hidden", "a b", strings.Repeat("a", 129), "a\x00"} {
		if err := checkID(id); err == nil {
			t.Errorf("%q accepted", id)
		}
	}
}

func FuzzParseSpec(f *testing.F) {
	f.Add([]byte(`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/"}}`))
	f.Add([]byte(`{"ociVersion":"1.0.2","root":{"path":"r"},"linux":{"namespaces":[{"type":"user"}],"uidMappings":[{"size":1}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec(data)
		if err == nil && (s.Root == nil || s.Root.Path == "") {
			t.Fatalf("accepted a spec without root.path: %s", data)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error: %q", err)
		}
	})
}

func TestSysctlsMustBeNamespaced(t *testing.T) {
	base := `{"ociVersion":"1.0.2","root":{"path":"r"},"linux":{"namespaces":[{"type":"network"},{"type":"ipc"}],"sysctl":{%s}}}`
	for _, ok := range []string{`"net.ipv4.ip_forward":"1"`, `"kernel.shmmax":"1"`, `"fs.mqueue.msg_max":"10"`, `"net/ipv4/ping_group_range":"0 0"`} {
		if _, err := ParseSpec([]byte(strings.Replace(base, "%s", ok, 1))); err != nil {
			t.Errorf("%s rejected: %v", ok, err)
		}
	}
	for _, bad := range []string{`"kernel.core_pattern":"|/x"`, `"vm.overcommit_memory":"1"`, `"kernel.hostname":"x"`} {
		if _, err := ParseSpec([]byte(strings.Replace(base, "%s", bad, 1))); err == nil || !strings.Contains(err.Error(), "linux.sysctl.") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
