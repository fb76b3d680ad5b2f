// Package staging turns app source into a droplet, as Cloud Foundry's
// stager did: it fetches and safely unpacks the app package, runs
// buildpacks on it inside a container (the Heroku/Cloud Foundry contract:
// bin/detect, bin/compile, bin/release, and bin/supply, bin/finalize for
// multi-buildpack staging) under memory, disk and time limits, keeps the
// buildpack cache between stagings, writes staging_info.yml and packs the
// droplet. Buildpacks may also be Go values, for in-process staging
// plugins.
//
// It does not run apps (see package instance). Staging in real containers
// needs Linux and root, as package container does; staging consumes
// containers through an interface it declares, so it can be tested with a
// fake.
package staging
