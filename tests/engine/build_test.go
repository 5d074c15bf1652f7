package engine

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/fixture"
)

// buildContext writes files (path → content; a content starting with
// "->" makes a symbolic link) into a new context directory.
func buildContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "->"); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeTarGz writes a gzip'd tar holding dir/x with content x.
func writeTarGz(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "dir/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "dir/x", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2})
	tw.Write([]byte("x\n"))
	tw.Close()
	zw.Close()
}

const buildFile = `ARG BASE=unset
FROM ${BASE} AS gen
RUN mkdir -p /out && seq 1 3 > /out/nums && echo gen > /out/gen.txt
FROM ${BASE}
ARG GREETING=hello
ENV APP=/app
WORKDIR $APP
COPY hello.txt sub ./
COPY --from=gen /out/ /data/
COPY --chown=1234:1234 --chmod=640 hello.txt /owned.txt
ADD app.tar.gz /unpacked/
ADD http://127.0.0.1:PORT/fetched.txt /fetched/
RUN echo "$GREETING from run" > run.txt && rm /bin/vi && echo bob:x:1234:1234::/:/bin/sh >> /etc/passwd
USER bob
EXPOSE 8080
LABEL org.example.k=v
HEALTHCHECK --interval=5s CMD true
STOPSIGNAL SIGQUIT
VOLUME /vol
ENTRYPOINT ["sh", "-c"]
CMD ["cat /app/*.txt"]
`

// serveFile serves one file over HTTP on a free loopback port and returns
// the port.
func serveFile(t *testing.T, name, content string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/"+name {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Last-Modified", time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC).Format(http.TimeFormat))
		fmt.Fprint(w, content)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// TestBuild builds a two-stage Containerfile on the busybox image and
// checks the image's files and config, and that only the final stage's
// layers are in it.
func TestBuild(t *testing.T) {
	e := newEnv(t)
	base := e.busybox()
	port := serveFile(t, "fetched.txt", "fetched\n")
	ctx := buildContext(t, map[string]string{
		"Containerfile": strings.Replace(buildFile, "PORT", fmt.Sprint(port), 1),
		"hello.txt":     "hello\n",
		"sub/a.txt":     "a\n",
		"secret.txt":    "secret\n",
		".dockerignore": "secret.txt\n",
	})
	writeTarGz(t, filepath.Join(ctx, "app.tar.gz"))
	out := e.must("build", "-t", "local/built", "--build-arg", "BASE="+base, "--network", "host", ctx)
	if !strings.Contains(out, "STEP 20/20: CMD") || !strings.Contains(out, "Successfully tagged docker.io/local/built:latest") {
		t.Fatalf("build output:\n%s", out)
	}
	if got := e.must("run", "--rm", "local/built"); got != "a\nhello\nhello from run" {
		t.Fatalf("run: %q", got)
	}
	got := e.must("run", "--rm", "local/built", `ls /data; stat -c "%u:%g %a" /owned.txt; cat /unpacked/dir/x; `+
		`stat -c "%a %s %Y" /fetched/fetched.txt; test -e /bin/vi || echo no-vi; test -e /app/secret.txt || echo no-secret; id -un; ls -ld / | cut -c1-10`)
	want := "gen.txt\nnums\n1234:1234 640\nx\n600 8 1577934245\nno-vi\nno-secret\nbob\ndrwxr-xr-x"
	if got != want {
		t.Fatalf("files in the image:\n%s\nwant:\n%s", got, want)
	}
	format := `{{.Config.User}}|{{.Config.WorkingDir}}|{{json .Config.Env}}|{{json .Config.ExposedPorts}}|{{json .Config.Labels}}|` +
		`{{json .Config.Entrypoint}}|{{json .Config.Cmd}}|{{.Config.StopSignal}}|{{json .Config.Volumes}}|{{json .Config.Healthcheck.Test}}|{{len .RootFS.Layers}}`
	got = e.must("image", "inspect", "--format", format, "local/built")
	want = `bob|/app|["APP=/app"]|{"8080/tcp":{}}|{"org.example.k":"v"}|["sh","-c"]|["cat /app/*.txt"]|SIGQUIT|{"/vol":{}}|["CMD-SHELL","true"]|7`
	if got != want {
		t.Fatalf("image config:\n got %s\nwant %s", got, want)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root, "build")); len(ents) > 0 {
		t.Fatalf("build left %d work directories", len(ents))
	}
	hist := strings.Split(e.must("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", "local/built"), "\n")
	if len(hist) != 17 || hist[0] != `CMD ["cat /app/*.txt"]|0B` || !strings.HasPrefix(hist[8], "RUN |1 GREETING=hello /bin/sh -c echo") {
		t.Fatalf("history:\n%s", strings.Join(hist, "\n"))
	}
}

// TestBuildCache rebuilds: unchanged (all cache hits, the same image),
// after touching a file (still cached), after changing one (the steps
// from its COPY on run again), and with --no-cache.
func TestBuildCache(t *testing.T) {
	e := newEnv(t)
	base := e.busybox()
	ctx := buildContext(t, map[string]string{
		"Containerfile": "FROM " + base + "\nRUN echo one > /one\nCOPY f.txt /\nRUN cat /f.txt /one > /both\nENV X=1\n",
		"f.txt":         "first\n",
	})
	build := func(args ...string) (string, string) {
		out := e.must(append(append([]string{"build", "--network", "none", "-t", "local/cached"}, args...), ctx)...)
		lines := strings.Split(out, "\n")
		return out, lines[len(lines)-1]
	}
	_, id1 := build()
	out, id2 := build()
	if id2 != id1 || strings.Count(out, "--> Using cache") != 4 {
		t.Fatalf("unchanged rebuild: id %s then %s, output:\n%s", id1, id2, out)
	}
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(ctx, "f.txt"), later, later)
	if out, id := build(); id != id1 {
		t.Fatalf("a touched file broke the cache:\n%s", out)
	}
	os.WriteFile(filepath.Join(ctx, "f.txt"), []byte("second\n"), 0o644)
	out, id3 := build()
	if id3 == id1 || strings.Count(out, "--> Using cache") != 1 {
		t.Fatalf("after a change, only the first RUN should be cached:\n%s", out)
	}
	if got := e.must("run", "--rm", "local/cached", "cat", "/both"); got != "second\none" {
		t.Fatalf("rebuilt image: %q", got)
	}
	if out, _ := build("--no-cache"); strings.Contains(out, "Using cache") {
		t.Fatalf("--no-cache used the cache:\n%s", out)
	}
	// The cache keeps its layers when the image goes, until pruned.
	e.must("rmi", "local/cached")
	if out, _ := build(); strings.Count(out, "--> Using cache") != 4 {
		t.Fatalf("the cache lost its layers with the image:\n%s", out)
	}
	e.must("rmi", "local/cached")
	e.must("builder", "prune")
	if out, _ := build(); strings.Contains(out, "Using cache") {
		t.Fatalf("builder prune kept the cache:\n%s", out)
	}
}

// TestBuildTarget builds up to a named stage.
func TestBuildTarget(t *testing.T) {
	e := newEnv(t)
	base := e.busybox()
	ctx := buildContext(t, map[string]string{
		"Containerfile": "FROM " + base + " AS first\nRUN echo first > /stage\nFROM first AS second\nRUN echo second > /stage\n",
	})
	e.must("build", "-q", "--network", "none", "--target", "first", "-t", "local/target", ctx)
	if got := e.must("run", "--rm", "local/target", "cat", "/stage"); got != "first" {
		t.Fatalf("--target first built %q", got)
	}
}

// TestBuildBadInput: each mistake gets one line that names it, and
// leaves no image, container, mount or work directory behind.
func TestBuildBadInput(t *testing.T) {
	e := newEnv(t)
	base := e.busybox()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "host.txt"), []byte("host\n"), 0o644)
	cases := []struct {
		name, file, want string
		args             []string
	}{
		{"syntax", "FROM " + base + "\nFOO bar\n", "Containerfile:2: unknown instruction: FOO", nil},
		{"failing run", "FROM " + base + "\nRUN echo out-before-failure && exit 3\n", "Containerfile:2: RUN: /bin/sh -c echo out-before-failure && exit 3: exit status 3", nil},
		{"outside", "FROM " + base + "\nCOPY ../host.txt /\n", "../host.txt is outside the build context", nil},
		{"symlink out", "FROM " + base + "\nCOPY esc/host.txt /\n", "COPY: esc/host.txt goes through the symbolic link esc -> " + outside + ", which is outside the build context", nil},
		{"target", "FROM " + base + " AS a\n", `has no stage named "nosuch"`, []string{"--target", "nosuch"}},
		{"from", "FROM " + base + "\nCOPY --from=nosuch /x /\n", "--from=nosuch: no stage and no image of that name", nil},
		{"missing", "FROM " + base + "\nCOPY nothere /\n", "the build context has no /nothere", nil},
		{"no from", "RUN true\n", "Containerfile:1: no build stage in current context", nil},
		{"bad chmod", "FROM " + base + "\nCOPY --chmod=999 Containerfile /\n", "--chmod=999: want an octal mode", nil},
	}
	for _, c := range cases {
		ctx := buildContext(t, map[string]string{"Containerfile": c.file, "esc": "->" + outside})
		args := append([]string{"build", "--network", "none", "-t", "local/bad"}, c.args...)
		out, errOut, code := e.run(append(args, ctx)...)
		msg := strings.TrimSpace(errOut)
		if code == 0 || strings.Contains(msg, "\n") || !strings.Contains(msg, c.want) {
			t.Errorf("%s: exit %d, want one line with %q, got:\n%s", c.name, code, c.want, msg)
		}
		if c.name == "failing run" && !strings.Contains(out, "out-before-failure") {
			t.Errorf("failing run: its output is not shown:\n%s", out)
		}
	}
	if out, _, code := e.run("image", "inspect", "local/bad"); code == 0 {
		t.Fatalf("failed builds left an image: %s", out)
	}
	if out := e.must("ps", "-aq"); out != "" {
		t.Fatalf("failed builds left containers: %s", out)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root, "build")); len(ents) > 0 {
		t.Fatalf("failed builds left %d work directories", len(ents))
	}
	// A build argument no ARG declares is named in a warning.
	ctx := buildContext(t, map[string]string{"Containerfile": "FROM " + base + "\n"})
	if out := e.must("build", "--build-arg", "UNDECLARED=1", ctx); !strings.Contains(out, "build argument UNDECLARED is not declared") {
		t.Fatalf("no warning about an undeclared build argument:\n%s", out)
	}
}

// TestBuildDebianExample builds examples/build, the README demo's
// Containerfile, on a Debian image made with mmdebstrap and serves its
// site with nginx.
func TestBuildDebianExample(t *testing.T) {
	e := newEnv(t)
	base := fixture.NginxImage(t, e.berth, e.root)
	dir := filepath.Join(fixture.RepoRoot(t), "examples", "build")
	out := e.must("build", "-t", "local/site", "--build-arg", "BASE="+base, dir)
	if !strings.Contains(out, "Successfully tagged") {
		t.Fatalf("build:\n%s", out)
	}
	e.must("run", "-d", "--name", "site", "-p", "127.0.0.1:18791:80", "local/site")
	var body string
	eventually(t, 10*time.Second, "the site to answer", func() bool {
		resp, err := http.Get("http://127.0.0.1:18791/files.html")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = string(b)
		return err == nil && resp.StatusCode == 200
	})
	if !strings.Contains(body, "index.html") {
		t.Fatalf("files.html: %s", body)
	}
	if got := e.must("exec", "site", "cat", "/var/www/html/build.txt"); !strings.Contains(got, "worker:   uid=") {
		t.Fatalf("build.txt: %s", got)
	}
}

// TestBuildHeredocs runs RUN here-documents in their three forms (a
// script for the shell, a script with its own "#!", a command that reads
// one) and writes files from COPY ones, expanded like Docker's.
func TestBuildHeredocs(t *testing.T) {
	e := newEnv(t)
	base := e.busybox()
	file := "FROM " + base + `
ARG WHO=world
RUN <<EOF
echo "hello $WHO" > /one
EOF
RUN <<EOF
#!/bin/sh -e
echo "script $0" > /two
EOF
RUN cat > /three <<EOT && echo done >> /three
inner $WHO
EOT
COPY <<EOF /four
copied ${WHO}
EOF
COPY <<A <<B /five/
a
A
b
B
`
	ctx := buildContext(t, map[string]string{"Containerfile": file})
	e.must("build", "-q", "--network", "none", "-t", "local/heredoc", ctx)
	got := e.must("run", "--rm", "local/heredoc", "cat", "/one", "/two", "/three", "/four", "/five/A", "/five/B")
	if want := "hello world\nscript /dev/pipes/EOF\ninner world\ndone\ncopied world\na\nb"; got != want {
		t.Fatalf("files from here-documents:\n%s\nwant:\n%s", got, want)
	}
	// A here-document's text is part of its step's cache key.
	os.WriteFile(filepath.Join(ctx, "Containerfile"), []byte(strings.Replace(file, "inner", "changed", 1)), 0o644)
	if out := e.must("build", "--network", "none", "-t", "local/heredoc", ctx); strings.Count(out, "Using cache") != 2 {
		t.Fatalf("after a change in the third RUN's here-document, want the first two RUNs cached:\n%s", out)
	}
}
