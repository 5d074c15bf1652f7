package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/spf13/cobra"
)

func newPort(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "Show a container's published ports, and warn about ones its application cannot be reached on",
		Args:  argsBetween(1, 2, "CONTAINER [PRIVATE_PORT[/PROTO]]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			c, _, err := e.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			ports, err := e.Ports(cmd.Context(), c.ID)
			if err != nil {
				return err
			}
			want := ""
			if len(args) == 2 {
				port, proto, _ := strings.Cut(args[1], "/")
				if proto == "" {
					proto = "tcp"
				}
				n, err := strconv.ParseUint(port, 10, 16)
				if err != nil || n == 0 || (proto != "tcp" && proto != "udp" && proto != "sctp") {
					return fmt.Errorf("port %q: use PORT or PORT/tcp|udp: %w", args[1], errdefs.ErrInvalidArgument)
				}
				want = fmt.Sprintf("%d/%s", n, proto)
			}
			found := false
			for _, p := range ports {
				key := fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)
				switch {
				case want == "":
					fmt.Printf("%s -> %s\n", key, p)
				case key == want:
					fmt.Println(p)
				default:
					continue
				}
				found = true
			}
			if want != "" && !found {
				return fmt.Errorf("no public port %s is published for container %s: %w", want, c.Name, errdefs.ErrNotFound)
			}
			// The seeds' "bind to 0.0.0.0" pitfall.
			warnings, _ := e.LoopbackOnly(cmd.Context(), c.ID)
			for _, w := range warnings {
				if want == "" || strings.HasPrefix(w, "port "+want+":") {
					fmt.Fprintln(os.Stderr, "warning: "+w)
				}
			}
			return nil
		},
	}
}
