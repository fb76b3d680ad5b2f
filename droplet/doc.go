// Package droplet handles droplets, the unit of deployment of a
// Cloud Foundry DEA: gzip tarballs of a staged app (app/, logs/, tmp/,
// staging_info.yml and a start script), identified by the SHA-1 of their
// bytes.
//
// It packs and safely unpacks droplets (refusing paths and links that
// escape the destination, and archives that expand past a limit), keeps a
// registry of droplets on local disk keyed by SHA-1, downloads them with
// the hash verified and one transfer shared by concurrent requests, and
// stores them in blob stores (a local directory, HTTP).
//
// It does not run droplets (see package instance) nor build them (see
// package staging). It needs no privileges and works on every platform.
package droplet
