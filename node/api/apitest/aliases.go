package apitest

import (
	"context"
	"fmt"
	"strings"

	"github.com/mycelsync/mycel/node/api"
)

var _ api.Aliaser = (*Fake)(nil)

// SetAlias implements api.Aliaser: one relay of its own, first come first
// served, as a relay does.
func (f *Fake) SetAlias(ctx context.Context, id, name, relay string) (api.AliasState, error) {
	f.record("SetAlias")
	f.mu.Lock()
	defer f.mu.Unlock()
	sp, err := f.find(id)
	if err != nil {
		return api.AliasState{}, err
	}
	if !sp.info.Approved {
		return api.AliasState{}, fmt.Errorf("%w: only a member names the space", api.ErrNoKeys)
	}
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" || len(name) > 32 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return api.AliasState{}, fmt.Errorf("%w: alias %q", api.ErrBadRequest, name)
	}
	if f.aliases == nil {
		f.aliases = map[string]string{}
	}
	if held, ok := f.aliases[name]; ok && held != sp.info.ID {
		return api.AliasState{}, fmt.Errorf("%w: another space holds %q", api.ErrConflict, name)
	}
	f.aliases[name] = sp.info.ID
	return api.AliasState{Name: name, Space: sp.info.ID, Relays: []api.AliasRelay{{ID: "fake-relay"}}}, nil
}

// DropAlias implements api.Aliaser.
func (f *Fake) DropAlias(ctx context.Context, id, name, relay string) (api.AliasState, error) {
	f.record("DropAlias")
	f.mu.Lock()
	defer f.mu.Unlock()
	sp, err := f.find(id)
	if err != nil {
		return api.AliasState{}, err
	}
	name = strings.ToLower(name)
	held, ok := f.aliases[name]
	switch {
	case ok && held != sp.info.ID:
		return api.AliasState{}, fmt.Errorf("%w: another space holds %q", api.ErrConflict, name)
	case ok:
		delete(f.aliases, name)
	}
	// Dropping a name nobody holds succeeds: a relay that holds none
	// is where the caller wants it; Absent says so.
	return api.AliasState{Name: name, Space: sp.info.ID, Relays: []api.AliasRelay{{ID: "fake-relay", Absent: !ok}}}, nil
}
