package agent

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
)

func TestCreateOptions(t *testing.T) {
	tk := api.Task{ID: "abc", ServiceName: "web", Slot: 1, Template: api.TaskTemplate{
		Image: "busybox", Command: []string{"httpd"}, Args: []string{"-f"},
		Mounts:          []api.Mount{{Type: api.MountVolume, Target: "/data"}, {Type: api.MountTmpfs, Target: "/tmp"}},
		Networks:        []string{"front", "back"},
		Resources:       api.ResourceRequirements{Limits: api.Resources{NanoCPUs: 1e9, MemoryBytes: 64 << 20}},
		StopGracePeriod: api.Duration(1500 * time.Millisecond),
	}}
	tpl := withDefaults(tk.Template)
	o, err := createOptions(tk, tpl, ContainerName(tk))
	if err != nil {
		t.Fatal(err)
	}
	if !o.EntrypointSet || o.Config.Entrypoint[0] != "httpd" || o.Config.Cmd[0] != "-f" {
		t.Errorf("entrypoint %v cmd %v", o.Config.Entrypoint, o.Config.Cmd)
	}
	if len(o.Host.Mounts) != 2 || !o.Host.Mounts[0].Anonymous || o.Host.Mounts[1].Type != "tmpfs" {
		t.Errorf("mounts %+v", o.Host.Mounts)
	}
	if o.Host.NetworkMode != "front" || len(o.Host.ExtraNetworks) != 1 || o.Host.ExtraNetworks[0] != "back" {
		t.Errorf("networks %q %v", o.Host.NetworkMode, o.Host.ExtraNetworks)
	}
	if o.Host.Resources.Memory != 64<<20 || o.Host.Resources.NanoCPUs != 1e9 || o.Host.RestartPolicy.Name != "no" {
		t.Errorf("host %+v", o.Host)
	}
	if *o.Config.StopTimeout != 2 {
		t.Errorf("stop timeout %d, want the grace period rounded up", *o.Config.StopTimeout)
	}
	tk.Template.Mounts = []api.Mount{{Type: "nfs", Target: "/x"}}
	if _, err := createOptions(tk, withDefaults(tk.Template), "x"); err == nil {
		t.Error("an unknown mount type was taken")
	}
}
