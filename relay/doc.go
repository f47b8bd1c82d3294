// Package relay will hold the always-on, unprivileged relay: it keeps devices
// in touch when they cannot reach each other directly, mirrors the signed,
// encrypted feeds of the spaces it serves for devices that are offline, keeps
// their mailboxes of ephemeral messages and serves the web app. It never
// holds a space secret, so it verifies everything and reads nothing.
//
// Not built yet: this file only reserves the package. See DESIGN.md,
// "The relay".
package relay
