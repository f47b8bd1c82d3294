package relay

import (
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
)

// LiftCircuitLimits restarts r's circuit relay service without circuit
// limits, as the ACL is to grant members (issue 12): a relayed connection
// is then not limited, so gossipsub runs over it. For tests only.
func LiftCircuitLimits(r *Relay) error {
	if err := r.svc.Close(); err != nil {
		return err
	}
	rc := r.cfg.Limits.resources()
	rc.Limit = nil
	svc, err := relayv2.New(r.host, relayv2.WithResources(rc), relayv2.WithACL(r.acl))
	if err != nil {
		return err
	}
	r.svc = svc
	return nil
}
