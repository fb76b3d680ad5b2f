// Package staging turns app source into a droplet, as Cloud Foundry's
// stagers did (dea_ng's staging task, Diego's buildpackapplifecycle
// builder), running buildpacks written against the Heroku or Cloud Foundry
// contracts unchanged.
//
// A Stager's Stage takes a Request (a plain struct with Validate) and:
// fetches the app package (a BlobStore key or an http(s) URL) and unzips it
// safely (Unzip: no zip-slip, no writes through links, size and entry
// limits, modes kept, UTF-8 names); restores the buildpack cache (a missing
// or corrupt cache is a warning); creates a container through Containers
// (which *container.Manager satisfies) with the request's memory and disk
// limits, no inbound network and the request's egress rules; runs, as the
// stack's unprivileged user, bin/detect, bin/supply, bin/finalize or
// bin/compile and bin/release as /work/shared/BUILDPACKS.md decides;
// computes the process types (supply launch.yml < release < Procfile, type
// by type) and the start command (user > Procfile web > release web);
// writes staging_info.yml; packs the droplet with package droplet (Diego's
// layout: app/, deps/, profile.d/, logs/, tmp/, staging_info.yml); saves
// the cache (pruned to final/ and the current supply buildpacks, as Diego);
// uploads the droplet and the cache; and always destroys the container.
//
// Every line of output streams live to Stage's writer and is kept in the
// droplet's logs/staging_task.log. Failures are *Error values with Cloud
// Foundry's codes (222 no app detected, 223 compile, 224 release, 225
// supply, 226 finalize) or ErrTimeout, ErrPackageInvalid,
// ErrInsufficientResources, each with the last output lines.
//
// Launch is the runtime half: the process that runs a droplet (profile
// scripts sourced in Diego's order, then exec bash -c <command>).
//
// Plugins are in-process buildpacks (Go values), run by the same pipeline
// without a container.
//
// # Layout in the container
//
// The droplet is built where it will run: the workspace's droplet
// directory is bind-mounted at /home/vcap (BUILD_DIR /home/vcap/app,
// DEPS_DIR /home/vcap/deps, PROFILE_DIR /home/vcap/profile.d), the cache
// at /tmp/cache (final/ and one directory per supply buildpack, named by a
// hash of its key), ENV_DIR at /tmp/env (read-only) and each buildpack
// read-only below /tmp/buildpacks. The bind-mounted workspace is outside
// the container's disk quota; Stage checks its size against the disk
// limit after the buildpacks ran.
//
// # Stacks
//
// WithStack names root file systems. HostStack makes one from the host's
// own /usr, /bin and /lib* (bind-mounted read-only) for development;
// production uses a real stack.
//
// # Platforms and privileges
//
// Script buildpacks need Linux and root, as package container does. The
// pure parts (Request, ParseProcfile, ParseRelease, Unzip, Launch) work
// everywhere.
//
// # Concurrency
//
// A Stager is safe for concurrent use; each Stage has its own workspace
// and container.
package staging
