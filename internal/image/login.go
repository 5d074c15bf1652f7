package image

import (
	"context"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Login checks user and password against registry and stores them in
// Docker's config.json ($DOCKER_CONFIG or ~/.docker), where Pull and Push
// (and Docker, Podman and skopeo) find them.
func Login(ctx context.Context, registry, user, password string, opts RegistryOptions) error {
	if user == "" || password == "" {
		return fmt.Errorf("login %s: a username and a password are needed: %w", registry, errdefs.ErrInvalidArgument)
	}
	regOpts := []name.Option{}
	opts.Insecure = opts.insecureFor(registry)
	if opts.Insecure {
		regOpts = append(regOpts, name.Insecure)
	}
	reg, err := name.NewRegistry(registry, regOpts...)
	if err != nil {
		return fmt.Errorf("registry %q: %v: %w", registry, err, errdefs.ErrInvalidArgument)
	}
	base, err := baseTransport(registry, opts)
	if err != nil {
		return err
	}
	auth := &authn.Basic{Username: user, Password: password}
	tr, err := transport.NewWithContext(ctx, reg, auth, base, []string{reg.Scope(transport.PullScope)})
	if err != nil {
		return loginError(registry, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return loginError(registry, err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("login %s: the registry refused these credentials: %w", registry, errdefs.ErrPermission)
	}
	cf, err := config.Load(config.Dir())
	if err != nil {
		return fmt.Errorf("login: %s: %w", config.Dir(), err)
	}
	key := authKey(reg)
	if err := cf.GetCredentialsStore(key).Store(types.AuthConfig{ServerAddress: key, Username: user, Password: password}); err != nil {
		return fmt.Errorf("login: storing credentials: %w", err)
	}
	return cf.Save()
}

// Logout forgets the credentials stored for registry.
func Logout(registry string) error {
	reg, err := name.NewRegistry(registry)
	if err != nil {
		return fmt.Errorf("registry %q: %v: %w", registry, err, errdefs.ErrInvalidArgument)
	}
	cf, err := config.Load(config.Dir())
	if err != nil {
		return fmt.Errorf("logout: %s: %w", config.Dir(), err)
	}
	key := authKey(reg)
	if _, ok := cf.AuthConfigs[key]; !ok {
		return fmt.Errorf("not logged in to %s: %w", registry, errdefs.ErrNotFound)
	}
	if err := cf.GetCredentialsStore(key).Erase(key); err != nil {
		return fmt.Errorf("logout %s: %w", registry, err)
	}
	return cf.Save()
}

// authKey is the config.json key that go-containerregistry's keychain (and
// Docker) look up for reg: Docker Hub has a legacy URL of its own.
func authKey(reg name.Registry) string {
	if reg.RegistryStr() == name.DefaultRegistry {
		return authn.DefaultAuthKey
	}
	return reg.RegistryStr()
}

func loginError(registry string, err error) error {
	var te *transport.Error
	if e, ok := err.(*transport.Error); ok {
		te = e
	}
	if te != nil && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("login %s: the registry refused these credentials: %w", registry, errdefs.ErrPermission)
	}
	return fmt.Errorf("login %s: %v: %w", registry, firstLine(err), errdefs.ErrUnavailable)
}
