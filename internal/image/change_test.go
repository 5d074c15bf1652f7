package image

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestApplyChanges(t *testing.T) {
	set := func(keys ...string) map[string]struct{} {
		m := map[string]struct{}{}
		for _, k := range keys {
			m[k] = struct{}{}
		}
		return m
	}
	base := v1.Config{Env: []string{"PATH=/usr/bin:/bin", "HOME=/root"}, Cmd: []string{"old"}, WorkingDir: "/srv"}
	for _, tc := range []struct {
		name    string
		base    v1.Config
		changes []string
		want    v1.Config
	}{
		{name: "CMD JSON", changes: []string{`CMD ["nginx", "-g", "daemon off;"]`},
			want: v1.Config{Cmd: []string{"nginx", "-g", "daemon off;"}}},
		{name: "CMD shell", changes: []string{`CMD echo "hi there" $HOME`},
			want: v1.Config{Cmd: []string{"/bin/sh", "-c", `echo "hi there" $HOME`}}},
		{name: "CMD shell with the image's SHELL", base: v1.Config{Shell: []string{"/bin/bash", "-ec"}},
			changes: []string{`CMD ls`},
			want:    v1.Config{Shell: []string{"/bin/bash", "-ec"}, Cmd: []string{"/bin/bash", "-ec", "ls"}}},
		{name: "Podman spelling", changes: []string{`CMD=["/bin/sh"]`, "ENV=A=b"},
			want: v1.Config{Cmd: []string{"/bin/sh"}, Env: []string{"A=b"}}},
		{name: "lower-case instruction", changes: []string{`cmd ["sh"]`},
			want: v1.Config{Cmd: []string{"sh"}}},
		{name: "ENTRYPOINT JSON drops the old CMD", base: base, changes: []string{`ENTRYPOINT ["/init"]`},
			want: v1.Config{Env: base.Env, WorkingDir: "/srv", Entrypoint: []string{"/init"}}},
		{name: "ENTRYPOINT shell keeps a CMD set before it", base: base, changes: []string{`CMD ["-v"]`, `ENTRYPOINT exec top -b`},
			want: v1.Config{Env: base.Env, WorkingDir: "/srv", Cmd: []string{"-v"}, Entrypoint: []string{"/bin/sh", "-c", "exec top -b"}}},
		{name: "ENV forms, expansion, replacement", base: base,
			changes: []string{`ENV PATH=/opt/bin:$PATH GREETING="hello world"`, `ENV MSG hello  $HOME`, `ENV HOME=/home/app`},
			want: v1.Config{Cmd: base.Cmd, WorkingDir: "/srv",
				Env: []string{"PATH=/opt/bin:/usr/bin:/bin", "HOME=/home/app", "GREETING=hello world", "MSG=hello  /root"}}},
		{name: "EXPOSE", changes: []string{`EXPOSE 80 53/udp`, `EXPOSE 8000-8002/TCP 9/sctp`},
			want: v1.Config{ExposedPorts: set("80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp", "9/sctp")}},
		{name: "EXPOSE from a variable", base: v1.Config{Env: []string{"PORT=8080"}}, changes: []string{`EXPOSE $PORT`},
			want: v1.Config{Env: []string{"PORT=8080"}, ExposedPorts: set("8080/tcp")}},
		{name: "HEALTHCHECK shell with options",
			changes: []string{`HEALTHCHECK --interval=5s --timeout=2s --start-period=1m --retries=3 CMD wget -q -O- http://localhost/ || exit 1`},
			want: v1.Config{Healthcheck: &v1.HealthConfig{Test: []string{"CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"},
				Interval: 5 * time.Second, Timeout: 2 * time.Second, StartPeriod: time.Minute, Retries: 3}}},
		{name: "HEALTHCHECK JSON", changes: []string{`HEALTHCHECK CMD ["/bin/check", "--fast"]`},
			want: v1.Config{Healthcheck: &v1.HealthConfig{Test: []string{"CMD", "/bin/check", "--fast"}}}},
		{name: "HEALTHCHECK NONE", changes: []string{`HEALTHCHECK CMD true`, `HEALTHCHECK NONE`},
			want: v1.Config{Healthcheck: &v1.HealthConfig{Test: []string{"NONE"}}}},
		{name: "LABEL forms", changes: []string{`LABEL a=1 "b c"="two words" d=`, `LABEL version 1.0 beta`},
			want: v1.Config{Labels: map[string]string{"a": "1", "b c": "two words", "d": "", "version": "1.0 beta"}}},
		{name: "ONBUILD", changes: []string{`ONBUILD RUN echo built`, `onbuild  COPY . /app`},
			want: v1.Config{OnBuild: []string{"RUN echo built", "COPY . /app"}}},
		{name: "STOPSIGNAL", changes: []string{`STOPSIGNAL SIGQUIT`}, want: v1.Config{StopSignal: "SIGQUIT"}},
		{name: "STOPSIGNAL number", changes: []string{`STOPSIGNAL 9`}, want: v1.Config{StopSignal: "9"}},
		{name: "USER", base: v1.Config{Env: []string{"U=app"}}, changes: []string{`USER $U:65534`},
			want: v1.Config{Env: []string{"U=app"}, User: "app:65534"}},
		{name: "VOLUME shell and JSON", changes: []string{`VOLUME /data /logs`, `VOLUME ["/var/lib/my db"]`},
			want: v1.Config{Volumes: set("/data", "/logs", "/var/lib/my db")}},
		{name: "WORKDIR absolute and relative", base: base, changes: []string{`WORKDIR app/`, `WORKDIR ../x/./y`},
			want: v1.Config{Env: base.Env, Cmd: base.Cmd, WorkingDir: "/srv/x/y"}},
		{name: "WORKDIR absolute", base: base, changes: []string{`WORKDIR /a//b/`},
			want: v1.Config{Env: base.Env, Cmd: base.Cmd, WorkingDir: "/a/b"}},
		{name: "no changes", base: base, want: base},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := *tc.base.DeepCopy()
			if err := ApplyChanges(&cfg, tc.changes); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg, tc.want) {
				t.Errorf("got  %+v\nwant %+v", cfg, tc.want)
			}
		})
	}
}

func TestApplyChangesRejects(t *testing.T) {
	for _, tc := range []struct{ change, want string }{
		{"FOO bar", `change "FOO bar": unknown instruction FOO`},
		{"", "empty change"},
		{"   ", "empty change"},
		{"# a comment", "unknown instruction #"},
		{"RUN make", "RUN cannot be used in a change"},
		{"FROM scratch", "FROM cannot be used in a change"},
		{"SHELL [\"/bin/bash\"]", "SHELL cannot be used in a change"},
		{"CMD --help", "CMD takes no options (--help)"},
		{"CMD", "CMD needs a command"},
		{"entrypoint", "ENTRYPOINT needs a command"},
		{`CMD ["sh", 1]`, "string"},
		{"ENV A", "ENV must have two arguments"},
		{"ENV A=1 B", "can't find ="},
		{"ENV =1", "ENV names can not be blank"},
		{"ENV", "ENV needs NAME=VALUE pairs"},
		{"LABEL", "LABEL needs NAME=VALUE pairs"},
		{"ENV A=${B:?unset}", "unset"},
		{"EXPOSE", "EXPOSE needs at least one port"},
		{"EXPOSE http", "invalid port"},
		{"EXPOSE 0", "invalid port"},
		{"EXPOSE 70000", "invalid port"},
		{"EXPOSE 90-80", "invalid port"},
		{"EXPOSE 80/icmp", "unknown protocol"},
		{"HEALTHCHECK", "HEALTHCHECK needs NONE or CMD"},
		{"HEALTHCHECK CMD", "HEALTHCHECK CMD needs a command"},
		{"HEALTHCHECK NONE now", "HEALTHCHECK NONE takes no arguments"},
		{"HEALTHCHECK RUN true", "unknown type"},
		{"HEALTHCHECK --interval=1us CMD true", "at least 1ms"},
		{"HEALTHCHECK --interval=often CMD true", "at least 1ms"},
		{"HEALTHCHECK --interval 5s CMD true", "needs a value"},
		{"HEALTHCHECK --retries=-1 CMD true", "--retries=-1"},
		{"HEALTHCHECK --start-interval=1s CMD true", "unknown option --start-interval"},
		{"ONBUILD", "ONBUILD needs an instruction"},
		{"ONBUILD ONBUILD RUN x", "ONBUILD ONBUILD"},
		{"ONBUILD FROM x", "FROM isn't allowed"},
		{"ONBUILD FOO x", "ONBUILD: unknown instruction FOO"},
		{"STOPSIGNAL SIGNOPE", "STOPSIGNAL"},
		{"STOPSIGNAL", "STOPSIGNAL needs exactly one argument"},
		{"USER", "USER needs exactly one argument"},
		{"WORKDIR", "WORKDIR needs exactly one argument"},
		{"VOLUME", "VOLUME needs at least one path"},
		{`VOLUME [""]`, "VOLUME specified can not be an empty string"},
		{"CMD [\"a\"]\nCMD [\"b\"]", "a change is one instruction"},
	} {
		base := v1.Config{Cmd: []string{"keep"}}
		cfg := *base.DeepCopy()
		err := ApplyChanges(&cfg, []string{`ENV X=1`, tc.change})
		if err == nil {
			t.Errorf("%q: no error", tc.change)
			continue
		}
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) ||
			!strings.HasPrefix(err.Error(), "change ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %q, want one line with %q and errdefs.ErrInvalidArgument", tc.change, err, tc.want)
		}
		if !reflect.DeepEqual(cfg, base) {
			t.Errorf("%q: config changed to %+v", tc.change, cfg)
		}
	}
}
