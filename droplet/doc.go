// Package droplet handles droplets, the unit of deployment of a Cloud
// Foundry DEA: a staged app as one gzip tarball, identified by the SHA-1
// of its bytes.
//
// A droplet holds, in the layout of Diego's buildpack lifecycle, app/
// (the compiled app, with .profile.d/), deps/<index>/ (what supply
// buildpacks installed), profile.d/, logs/, tmp/ and staging_info.yml
// (detected buildpack and start command); dea_ng's droplets lack deps/
// and profile.d/, older ones carry a startup script. This package does
// not care which: it moves and checks bytes and trees.
//
// # Packing and unpacking
//
// [Pack] writes a directory as a droplet and returns its SHA-1, SHA-256
// and size, computed while the bytes stream out. The tarball is
// deterministic (sorted entries, owner 0, optional fixed times), so the
// same tree gives the same SHA-1. Gzip, the wire format, is written as
// independent 1 MiB members that any gzip reader reads as one stream but
// that [Unpack] inflates on several cores (the members carry their
// length in a gzip extra field); Zstd is available for droplets that
// stay local.
//
// [Unpack] extracts a droplet (gzip, zstd or plain tar, told apart by
// magic numbers) as a hostile archive: through an [os.Root], refusing
// absolute names, "..", entries through symbolic links, hard links out of
// the tree, device nodes and FIFOs, and anything over its [Limits],
// stripping setuid and setgid bits, and leaving no partial tree when it
// fails. Errors name the entry ([EntryError]).
//
// # Registry
//
// A [Registry] is the DEA's set of droplets on local disk, keyed by
// SHA-1 (<base>/droplets/<sha1>/droplet.tgz). [Registry.Download] fetches
// a droplet at most once: concurrent calls for the same droplet share one
// transfer, the SHA-1 is checked as the bytes arrive, transient failures
// are retried with backoff (resuming with Range requests) and nothing is
// stored unless it matches. [Registry.LocalCopy] and [Registry.Put] import
// a droplet staged on the host. Users (instances, staging tasks) take
// references with [Registry.Acquire]; [Registry.Destroy] and
// [Registry.Reap] remove only droplets nobody uses. The registry survives
// restarts: a droplet's SHA-1, size and time are recorded beside it and
// checked with a stat, not by re-hashing on every lookup as dea_ng did;
// [Registry.Verify] re-hashes on demand.
//
// # Blob stores
//
// [BlobStore] is the small interface of a store of app packages,
// droplets and buildpack caches by key, with [DirStore] (a local
// directory) and [HTTPStore] (a client) as implementations, and
// [Handler], which serves a DirStore over HTTP the way Cloud Controller's
// blob URIs worked: PUT, GET with Range, HEAD, DELETE, and the multipart
// upload[droplet] form that stagers POSTed (see [Upload]).
//
// # What it is not
//
// It does not run droplets (package instance) nor build them (package
// staging), and applies no owner to unpacked files: the caller extracts
// as the user the files should belong to, or inside the container.
//
// # Platforms, privileges, concurrency
//
// The package needs no privileges. It is written for Linux and builds and
// works elsewhere, with times of symbolic links left unset and no
// hard-link detection when packing. [Pack] and [Unpack] may run
// concurrently on different directories; [Registry], [DirStore],
// [HTTPStore] and [Handler] are safe for concurrent use. Goroutines the
// package starts end before the call that started them returns, or, for
// the Registry's downloads and reaper, at [Registry.Close]. Logging is
// silent unless a *slog.Logger is given ([WithLogger]).
//
// The subpackage droplettest has helpers for tests: a blob store served
// by httptest that counts transfers and injects faults, synthetic app
// trees and droplets, and hostile tarballs.
package droplet
