package node

import (
	"github.com/mycelsync/mycel/auth"
)

// The password's keys rotate with the space's (auth/FORMAT.md, "Password
// key"): after a removal the password key moves to the generation of the
// epoch the removal started (space.Space.PasswordGeneration), derived from
// the password by the member that set it, which keeps the password in its
// sealed local record. The removed device read only the older keys from
// the feeds; the new one is written under a secret it lacks. A device
// asking with an older generation is refused with the current one named,
// derives it and asks again (signin.Device).

// keepPassword keeps the password this device set in its space record, to
// renew the key after a removal.
func (m *openSpace) keepPassword(password string) error {
	rec, err := m.n.readRecord(m.sp.ID())
	if err != nil {
		return err
	}
	rec.Password = password
	return m.n.writeRecord(m.sp.ID(), rec)
}

// renewPassword writes the password key of the current generation when
// the space's is older and this device set that password. A device whose
// password was replaced by another member's forgets its own.
func (m *openSpace) renewPassword() {
	if !m.sp.IsWriter() {
		return
	}
	gen, key, ok := m.sp.PasswordKey()
	cur := m.sp.PasswordGeneration()
	if !ok || gen >= cur {
		return
	}
	rec, err := m.n.readRecord(m.sp.ID())
	if err != nil || rec.Password == "" {
		return
	}
	id := m.sp.ID()
	if auth.PasswordKeyAt(rec.Password, id, gen) != key {
		// Another member set another password since: not ours to renew.
		rec.Password = ""
		if err := m.n.writeRecord(id, rec); err != nil {
			m.n.log.Error("space: forget the password", "space", id, "err", err)
		}
		return
	}
	if err := m.sp.SetPasswordKey(m.life.ctx, cur, auth.PasswordKeyAt(rec.Password, id, cur)); err != nil {
		// Typically the new epoch's secret has not reached this device
		// yet: the next refresh tries again.
		m.n.log.Debug("space: renew the password key", "space", id, "err", err)
		return
	}
	m.n.log.Info("space: password key renewed after a removal", "space", id, "generation", cur)
	m.wrote()
}
