package instance

import (
	"context"

	"github.com/paaskit/paaskit/droplet"
)

// DropletRegistry adapts a *droplet.Registry to DropletStore: Fetch is
// Registry.Download (the SHA-1 verified, one transfer shared by
// concurrent starts), SHA1s lists the registry, Remove is
// Registry.Destroy. It does not take references (Registry.Acquire): the
// Manager's unreferenced droplets reaper decides from its instances and
// staging reservations, so do not also reap with the registry's own
// reaper. It is safe for concurrent use, like the Registry.
type DropletRegistry struct {
	r *droplet.Registry
}

// NewDropletRegistry returns the DropletStore of r. It does not take
// ownership: close r yourself after the Manager.
func NewDropletRegistry(r *droplet.Registry) *DropletRegistry { return &DropletRegistry{r: r} }

// Fetch implements DropletSource. Without a uri, the droplet must be in
// the registry already (a droplet staged on this host).
func (d *DropletRegistry) Fetch(ctx context.Context, sha1, uri string) (string, error) {
	if uri == "" {
		info, err := d.r.Get(sha1)
		if err != nil {
			return "", err
		}
		return info.Path, nil
	}
	info, err := d.r.Download(ctx, sha1, uri)
	if err != nil {
		return "", err
	}
	return info.Path, nil
}

// SHA1s implements DropletStore.
func (d *DropletRegistry) SHA1s(context.Context) ([]string, error) {
	infos := d.r.List()
	out := make([]string, len(infos))
	for i, info := range infos {
		out[i] = info.SHA1
	}
	return out, nil
}

// Remove implements DropletStore.
func (d *DropletRegistry) Remove(ctx context.Context, sha1 string) error {
	return d.r.Destroy(ctx, sha1)
}
