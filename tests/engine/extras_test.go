package engine

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/fixture"
)

func TestStats(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	e.must("run", "-d", "--name", "st", "-m", "64m", img, "sleep", "1000")
	e.must("run", "-d", "--name", "busy", "--network", "none", "--cpus", "0.5", img, "sh", "-c", "while :; do :; done")
	e.must("create", "--name", "idle", img)
	gw := e.must("inspect", "-f", "{{.NetworkSettings.Gateway}}", "st")
	e.must("exec", "st", "ping", "-c", "2", "-W", "1", gw)

	out := e.must("stats", "--no-stream")
	lines := strings.Split(out, "\n")
	for _, col := range []string{"CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"} {
		if !strings.Contains(lines[0], col) {
			t.Fatalf("header %q lacks %q", lines[0], col)
		}
	}
	if len(lines) != 3 || strings.Contains(out, "idle") {
		t.Fatalf("stats shows the running containers only:\n%s", out)
	}
	rows := strings.Split(e.must("stats", "--no-stream", "--format", "{{.Name}}|{{.MemUsage}}|{{.MemPerc}}|{{.PIDs}}|{{.NetIO}}|{{.CPUPerc}}", "st", "busy"), "\n")
	if len(rows) != 2 {
		t.Fatalf("stats st busy: %q", rows)
	}
	row := rows[0]
	f := strings.Split(row, "|")
	if len(f) != 6 || f[0] != "st" || !strings.HasSuffix(f[1], " / 64MiB") || f[3] != "1" {
		t.Fatalf("stats st: %q, want a 64MiB limit and one process", row)
	}
	if rx, tx, _ := strings.Cut(f[4], " / "); rx == "0B" || tx == "0B" {
		t.Fatalf("net I/O %q after pinging the gateway", f[4])
	}
	cpu := rows[1][strings.LastIndex(rows[1], "|")+1:]
	pct, err := strconv.ParseFloat(strings.TrimSuffix(cpu, "%"), 64)
	if err != nil || pct < 15 || pct > 75 {
		t.Fatalf("CPU of a busy loop limited to --cpus 0.5: %q", cpu)
	}
	// A stopped container named explicitly shows zeros; JSON has Docker's
	// field names.
	if got := e.must("stats", "--no-stream", "--format", "json", "idle"); !strings.Contains(got, `"MemUsage":"0B / 0B"`) || !strings.Contains(got, `"Name":"idle"`) {
		t.Fatalf("stats idle as JSON: %s", got)
	}
	e.fails("no such container", "stats", "--no-stream", "nosuch")

	// Without --no-stream it refreshes until interrupted.
	cmd := e.cmd("stats", "--format", "{{.Name}}", "st")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for i := 0; i < 2; i++ {
		if !sc.Scan() || sc.Text() != "st" {
			t.Fatalf("stream sample %d: %q", i, sc.Text())
		}
	}
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
}

func TestTop(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	e.must("run", "-d", "--name", "tp", "--network", "none", img, "sh", "-c", "sleep 1001 & exec sleep 1002")
	e.must("run", "-d", "--name", "other", "--network", "none", img, "sleep", "1003")
	var out string
	eventually(t, 5*time.Second, "both sleeps in top", func() bool {
		out = e.must("top", "tp")
		return strings.Contains(out, "sleep 1001") && strings.Contains(out, "sleep 1002")
	})
	if !strings.HasPrefix(out, "UID") || !strings.Contains(strings.Split(out, "\n")[0], "PID") || strings.Contains(out, "1003") {
		t.Fatalf("top tp:\n%s", out)
	}
	// ps options after the container are ps's.
	out = e.must("top", "tp", "-o", "pid,args")
	if lines := strings.Split(out, "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "PID") {
		t.Fatalf("top tp -o pid,args:\n%s", out)
	}
	e.fails("PID column", "top", "tp", "-o", "args")
	e.must("stop", "-t", "0", "tp")
	e.fails("not running", "top", "tp")
}

func TestPort(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	e.must("run", "-d", "--name", "web", "-p", "18781:80", img, "httpd", "-f", "-p", "127.0.0.1:80")
	e.must("run", "-d", "--name", "good", "-p", "18782:80", "-p", "127.0.0.1:18783:81/udp", img, "httpd", "-f", "-p", "0.0.0.0:80")
	if got := e.must("port", "web"); got != "80/tcp -> 0.0.0.0:18781" {
		t.Fatalf("port web: %q", got)
	}
	if got := e.must("port", "good"); got != "80/tcp -> 0.0.0.0:18782\n81/udp -> 127.0.0.1:18783" {
		t.Fatalf("port good: %q", got)
	}
	if got := e.must("port", "good", "81/udp"); got != "127.0.0.1:18783" {
		t.Fatalf("port good 81/udp: %q", got)
	}
	e.fails("no public port 81/tcp", "port", "web", "81")
	e.fails("PORT", "port", "web", "http")

	// The seeds' "bind to 0.0.0.0" pitfall: warned about once the
	// application listens, on loopback only.
	want := "warning: port 80/tcp: the application in web listens on 127.0.0.1 only, so the published port cannot reach it; make it listen on 0.0.0.0"
	eventually(t, 5*time.Second, "the loopback warning", func() bool {
		out, errOut, code := e.run("port", "web", "80")
		return code == 0 && out == "0.0.0.0:18781\n" && strings.TrimSpace(errOut) == want
	})
	// The monitor says so in the container's log too.
	eventually(t, 10*time.Second, "the warning in the log", func() bool {
		_, errOut, _ := e.run("logs", "web")
		return strings.Contains(errOut, "berth: "+want)
	})
	listening := func(name string) bool {
		b, _ := os.ReadFile("/proc/" + e.must("inspect", "-f", "{{.State.Pid}}", name) + "/net/tcp")
		return strings.Contains(string(b), ":0050 00000000:0000 0A")
	}
	eventually(t, 5*time.Second, "httpd in good listening", func() bool { return listening("good") })
	if _, errOut, _ := e.run("port", "good"); errOut != "" {
		t.Fatalf("warning for an application listening on 0.0.0.0: %s", errOut)
	}
	e.must("stop", "-t", "0", "web")
	if got := e.must("port", "web"); got != "" {
		t.Fatalf("a stopped container publishes nothing, got %q", got)
	}
}

func TestRename(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	id := e.must("run", "-d", "--name", "old", "--network", "none", img, "sleep", "1000")
	e.must("create", "--name", "other", img)
	e.must("rename", "old", "new")
	if got := e.must("inspect", "-f", "{{.Name}} {{.Id}} {{.State.Running}}", "new"); got != "/new "+id+" true" {
		t.Fatalf("inspect new: %q", got)
	}
	e.fails("no such container", "inspect", "old")
	e.fails("already in use", "rename", "new", "other")
	e.fails("only [a-zA-Z0-9]", "rename", "new", "bad name")
	e.fails("already named", "rename", "new", "new")
	e.fails("no such container", "rename", "nosuch", "x")
	e.fails("takes CONTAINER NEW_NAME", "rename", "new")
	// The old name is free again, and the renamed container works by its
	// new name.
	e.must("create", "--name", "old", img)
	e.must("stop", "-t", "0", "new")
	if got := e.must("ps", "-a", "--filter", "name=new", "--format", "{{.Names}} {{.State}}"); got != "new exited" {
		t.Fatalf("ps after rename: %q", got)
	}
	got := e.must("events", "--since", "1m", "--until", "0s", "--filter", "event=rename", "--format", "{{.Actor.Attributes.oldName}} {{.Actor.Attributes.name}}")
	if got != "/old new" {
		t.Fatalf("rename event: %q", got)
	}

	// Concurrent renames to one name: exactly one wins.
	var ids []string
	for i := 0; i < 4; i++ {
		ids = append(ids, e.must("create", "--name", fmt.Sprintf("c%d", i), img))
	}
	var wg sync.WaitGroup
	codes := make([]int, len(ids))
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, _, codes[i] = e.run("rename", fmt.Sprintf("c%d", i), "prize")
		}(i)
	}
	wg.Wait()
	winners := 0
	for i, code := range codes {
		if code == 0 {
			winners++
			if got := e.must("inspect", "-f", "{{.Id}}", "prize"); got != ids[i] {
				t.Fatalf("prize is %s, want the winner %s", got, ids[i])
			}
		} else if got := e.must("inspect", "-f", "{{.Name}}", ids[i]); got != fmt.Sprintf("/c%d", i) {
			t.Fatalf("loser %d is named %s", i, got)
		}
	}
	if winners != 1 {
		t.Fatalf("%d renames to one name succeeded", winners)
	}
}

func TestCp(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	e.must("run", "-d", "--name", "box", "--network", "none", "-v", "data:/data", "-v", "data:/rodata:ro", "--tmpfs", "/scratch", img, "sleep", "1000")
	host := t.TempDir()
	write := func(rel, content string, mode os.FileMode) {
		p := filepath.Join(host, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	write("f", "hello\n", 0o640)
	write("d/g", "#!/bin/sh\necho g\n", 0o755)
	write("d/sub/h", "deep\n", 0o600)
	os.Symlink("g", filepath.Join(host, "d", "l"))
	in := func(args ...string) string { return e.must(append([]string{"exec", "box"}, args...)...) }

	// Host to container: a file, a directory into a directory, a directory
	// as a new name, and a directory's contents.
	e.must("cp", filepath.Join(host, "f"), "box:/tmp/f")
	if got := in("sh", "-c", "cat /tmp/f; stat -c '%a %u:%g' /tmp/f"); got != "hello\n640 0:0" {
		t.Fatalf("copied file: %q", got)
	}
	e.must("cp", filepath.Join(host, "d"), "box:/tmp")
	e.must("cp", filepath.Join(host, "d"), "box:/tmp/new")
	in("mkdir", "/tmp/contents")
	e.must("cp", filepath.Join(host, "d")+"/.", "box:/tmp/contents")
	if got := in("sh", "-c", "cd /tmp; stat -c '%n %a' d/g new/g contents/g new/sub/h; readlink d/l; new/g"); got != "d/g 755\nnew/g 755\ncontents/g 755\nnew/sub/h 600\ng\ng" {
		t.Fatalf("copied directories: %q", got)
	}
	// Container to host, round trip: content, modes and links kept.
	back := filepath.Join(t.TempDir(), "back")
	e.must("cp", "box:/tmp/new", back)
	for _, rel := range []string{"g", "sub/h", "l"} {
		a, _ := os.Lstat(filepath.Join(host, "d", rel))
		b, err := os.Lstat(filepath.Join(back, rel))
		if err != nil || a.Mode() != b.Mode() || (a.Mode().IsRegular() && a.Size() != b.Size()) {
			t.Fatalf("round trip of %s: %v %v, %v", rel, a.Mode(), b, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(back, "sub", "h")); string(b) != "deep\n" {
		t.Fatalf("round trip content: %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(back, "l")); l != "g" {
		t.Fatalf("round trip link: %q", l)
	}
	// Tar streams both ways.
	var names []string
	cmd := e.cmd("cp", "box:/tmp/new", "-")
	stream, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(stream))
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		names = append(names, h.Name)
	}
	if strings.Join(names, " ") != "new/ new/g new/l new/sub/ new/sub/h" && len(names) != 5 {
		t.Fatalf("cp to -: %q", names)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "fromtar/x", Mode: 0o604, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("tar"))
	tw.Close()
	cmd = e.cmd("cp", "-", "box:/tmp")
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cp from -: %v %s", err, out)
	}
	if got := in("sh", "-c", "cat /tmp/fromtar/x; stat -c %a /tmp/fromtar/x"); got != "tar604" {
		t.Fatalf("extracted tar: %q", got)
	}

	// A copy under a volume lands in the volume; a read-only mount refuses.
	e.must("cp", filepath.Join(host, "f"), "box:/data/f")
	mp := e.must("volume", "inspect", "-f", "{{.Mountpoint}}", "data")
	if b, err := os.ReadFile(filepath.Join(mp, "f")); err != nil || string(b) != "hello\n" {
		t.Fatalf("copy into the volume: %q %v", b, err)
	}
	e.fails("read-only", "cp", filepath.Join(host, "f"), "box:/rodata/g")

	// Symbolic links in the container stay inside it, whether absolute or
	// climbing with "..".
	in("sh", "-c", "ln -s /etc /tmp/abs; ln -s ../../../../../../../../etc /tmp/up")
	for _, dst := range []string{"box:/tmp/abs/berth-cp-escape", "box:/tmp/up/berth-cp-escape-up"} {
		e.must("cp", filepath.Join(host, "f"), dst)
	}
	for _, name := range []string{"berth-cp-escape", "berth-cp-escape-up"} {
		if _, err := os.Stat("/etc/" + name); err == nil {
			os.Remove("/etc/" + name)
			t.Fatalf("cp wrote the host's /etc/%s through a symbolic link in the container", name)
		}
		if got := in("cat", "/etc/"+name); got != "hello" {
			t.Fatalf("container's /etc/%s: %q", name, got)
		}
	}
	e.must("cp", "box:/tmp/abs/hostname", filepath.Join(host, "hn"))
	if b, _ := os.ReadFile(filepath.Join(host, "hn")); strings.TrimSpace(string(b)) != in("hostname") {
		t.Fatalf("read through a link got %q, not the container's /etc/hostname", b)
	}

	// Bad input: one clear line each.
	e.fails("has no /nosuch", "cp", "box:/nosuch", host)
	e.fails("cannot copy directory", "cp", filepath.Join(host, "d"), "box:/tmp/f")
	e.fails("has no directory", "cp", filepath.Join(host, "f"), "box:/nosuchdir/f")
	e.fails("between two containers", "cp", "box:/tmp/f", "box:/tmp/g")
	e.fails("CONTAINER:PATH", "cp", filepath.Join(host, "f"), filepath.Join(host, "g"))
	e.fails("no such container", "cp", filepath.Join(host, "f"), "nosuch:/tmp")

	// A stopped container: the same view, the same confinement.
	e.must("stop", "-t", "0", "box")
	e.must("cp", filepath.Join(host, "f"), "box:/tmp/stopped")
	e.must("cp", filepath.Join(host, "f"), "box:/data/stopped")
	e.must("cp", filepath.Join(host, "f"), "box:/tmp/abs/berth-cp-escape-stopped")
	if _, err := os.Stat("/etc/berth-cp-escape-stopped"); err == nil {
		os.Remove("/etc/berth-cp-escape-stopped")
		t.Fatal("cp into a stopped container wrote the host's /etc")
	}
	if b, err := os.ReadFile(filepath.Join(mp, "stopped")); err != nil || string(b) != "hello\n" {
		t.Fatalf("copy into the stopped container's volume: %q %v", b, err)
	}
	e.fails("read-only", "cp", filepath.Join(host, "f"), "box:/scratch/x")
	e.must("cp", "box:/tmp/d/g", filepath.Join(host, "g-stopped"))
	if b, _ := os.ReadFile(filepath.Join(host, "g-stopped")); string(b) != "#!/bin/sh\necho g\n" {
		t.Fatalf("copy out of a stopped container: %q", b)
	}
	e.must("start", "box")
	if got := in("cat", "/tmp/stopped", "/etc/berth-cp-escape-stopped", "/data/stopped"); got != "hello\nhello\nhello" {
		t.Fatalf("after start: %q", got)
	}
}

func TestEvents(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	// Following: new events appear while events runs.
	follow := e.cmd("events", "--filter", "container=ev", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	stdout, _ := follow.StdoutPipe()
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { follow.Process.Kill(); follow.Wait() }()
	time.Sleep(300 * time.Millisecond)

	e.must("run", "--name", "ev", "--network", "none", "--label", "app=shop", img, "true")
	e.must("rm", "ev")
	e.must("create", "--name", "unrelated", img)
	want := []string{"create ev", "start ev", "die ev", "destroy ev"}
	sc := bufio.NewScanner(stdout)
	for _, w := range want {
		done := make(chan bool, 1)
		go func() { done <- sc.Scan() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("events: no %q within 10 s", w)
		}
		if sc.Text() != w {
			t.Fatalf("events followed %q, want %q", sc.Text(), w)
		}
	}
	// Past events, in order, with filters.
	past := e.must("events", "--since", since, "--until", "0s", "--filter", "container=ev", "--format", "{{.Action}}")
	if past != "create\nstart\ndie\ndestroy" {
		t.Fatalf("past events: %q", past)
	}
	if got := e.must("events", "--since", since, "--until", "0s", "--filter", "event=die", "--format", "{{.Actor.Attributes.exitCode}} {{.Actor.Attributes.app}}"); got != "0 shop" {
		t.Fatalf("die event: %q", got)
	}
	line := e.must("events", "--since", since, "--until", "0s", "--filter", "container=unrelated")
	if !strings.Contains(line, " container create ") || !strings.Contains(line, "name=unrelated") {
		t.Fatalf("default format: %q", line)
	}
	if got := e.must("events", "--since", since, "--until", "0s", "--format", "json", "--filter", "event=destroy"); !strings.Contains(got, `"Type":"container","Action":"destroy"`) {
		t.Fatalf("json: %s", got)
	}
	e.fails("unknown filter", "events", "--filter", "colour=red")
	e.fails("--since", "events", "--since", "yesterday")
}

func TestSystemPrune(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	rootfs := fixture.BusyboxRootfs(t)
	fixture.Import(t, e.berth, e.root, rootfs, "localhost/unused:1", `CMD ["sh"]`, "ENV UNUSED=1")
	fixture.Import(t, e.berth, e.root, rootfs, "localhost/dangle:1", `CMD ["sh"]`, "ENV V=1")
	fixture.Import(t, e.berth, e.root, rootfs, "localhost/dangle:1", `CMD ["sh"]`, "ENV V=2")
	e.must("network", "create", "unusednet")
	e.must("network", "create", "usednet")
	keep := e.must("run", "-d", "--name", "keep", "--network", "usednet", img, "sleep", "1000")
	e.must("run", "--name", "old", "--network", "none", "-v", "/anon", img, "true")
	oldID := e.must("inspect", "-f", "{{.Id}}", "old")
	e.must("create", "--name", "named", "--network", "none", "-v", "named:/v", img)
	e.must("rm", "named")

	out := e.must("system", "prune")
	for _, w := range []string{"Deleted Containers:\n" + oldID, "Deleted Networks:\nunusednet", "Total reclaimed space:"} {
		if !strings.Contains(out, w) {
			t.Fatalf("system prune output lacks %q:\n%s", w, out)
		}
	}
	if !strings.Contains(out, "Deleted Images:\ndeleted: sha256:") || strings.Count(out, "deleted: sha256:") != 1 {
		t.Fatalf("system prune should delete the one dangling image:\n%s", out)
	}
	if got := e.must("ps", "-a", "--format", "{{.Names}} {{.State}}"); got != "keep running" {
		t.Fatalf("containers after prune: %q", got)
	}
	if got := e.must("network", "ls", "--format", "{{.Name}}"); strings.Contains(got, "unusednet") || !strings.Contains(got, "usednet") {
		t.Fatalf("networks after prune: %q", got)
	}
	images := e.repositories()
	for _, want := range []string{"localhost/busybox", "localhost/unused", "localhost/dangle"} {
		if !strings.Contains(images, want) {
			t.Fatalf("prune without -a removed %s:\n%s", want, images)
		}
	}
	if n := len(strings.Fields(e.must("volume", "ls", "-q"))); n != 2 {
		t.Fatalf("prune without --volumes removed volumes: %d left", n)
	}

	out = e.must("system", "prune", "-a", "--volumes", "-f")
	if !strings.Contains(out, "Deleted Volumes:") || strings.Count(out, "deleted: sha256:") != 2 {
		t.Fatalf("system prune -a --volumes:\n%s", out)
	}
	if got := e.repositories(); got != "localhost/busybox" {
		t.Fatalf("images after prune -a: %q (the running container's image must stay)", got)
	}
	if got := e.must("volume", "ls", "-q"); got != "named" {
		t.Fatalf("volumes after prune --volumes: %q (named volumes stay)", got)
	}
	if got := e.must("inspect", "-f", "{{.Id}} {{.State.Running}}", "keep"); got != keep+" true" {
		t.Fatalf("keep after prune: %q", got)
	}
	// container prune removes stopped containers only; then the image
	// is unused.
	e.must("stop", "-t", "0", "keep")
	e.must("create", "--name", "later", img)
	out = e.must("container", "prune", "-f")
	if !strings.Contains(out, "Deleted Containers:") || !strings.Contains(out, keep) {
		t.Fatalf("container prune:\n%s", out)
	}
	if got := e.must("ps", "-aq"); got != "" {
		t.Fatalf("containers after container prune: %q", got)
	}
	if out = e.must("system", "prune", "-a"); strings.Count(out, "deleted: sha256:") != 1 || e.must("images", "-q") != "" {
		t.Fatalf("prune -a with no container left:\n%s", out)
	}
	e.must("volume", "rm", "named")
}

// repositories lists the REPOSITORY column of `images`, one a line.
func (e *env) repositories() string {
	e.t.Helper()
	var repos []string
	for _, line := range strings.Split(e.must("images"), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 {
			repos = append(repos, f[0])
		}
	}
	return strings.Join(repos, "\n")
}
