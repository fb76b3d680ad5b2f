// Package droplettest has helpers for tests of code that packs, unpacks,
// stores or downloads droplets, in this module and downstream:
//
//   - [Server], a blob store ([droplet.DirStore] behind [droplet.Handler])
//     on an httptest server, which counts the requests and transfers of
//     each key and can be told to fail, cut or stall responses or hold
//     them until released (for retry, timeout and deduplication tests);
//   - [WriteTree] and [WriteTarball], synthetic staged-app trees and
//     droplets of any size, deterministic for a seed, written to disk or
//     streamed without touching it;
//   - [Tarball] and [WriteEntries], droplets made of exactly the entries
//     given, names such as "../x" included;
//   - [HostileTarballs], the archives every unpacker must refuse, each
//     with the error and entry expected.
//
// Functions that take a testing.TB fail the test on error and register
// their cleanup with it; the others return errors, for benchmarks and
// programs. Everything here is safe for concurrent use.
package droplettest
