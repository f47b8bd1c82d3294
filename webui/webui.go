package webui

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Dist is the built app: index.html, app.js and app.css when `make build`
// bundled it, else only placeholder.html.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded: it exists
	}
	return sub
}

// Built reports whether the binary holds the bundled app rather than the
// placeholder.
func Built() bool {
	_, err := fs.Stat(Dist(), "index.html")
	return err == nil
}
