// Package testutil holds the helpers that paaskit's own tests share: gating
// of privileged tests, unique names for privileged resources, and the test
// stack, a minimal root filesystem built offline from the host's binaries.
//
// It is internal: downstream projects use the xxxtest packages next to each
// public package instead.
//
// # Gating
//
// [RequireRoot] and the Require* helpers skip a test with a message naming
// what it needs, except when the CI environment variable is set: then they
// fail it, so a CI run never passes by skipping the tests that matter.
//
// # The test stack
//
// [Stack] returns the path of a root filesystem holding sh, bash, coreutils
// and python3 (when the host has it) with their shared libraries, resolved
// from the ELF headers, plus /etc/passwd, /etc/group and the usual empty
// directories. It is built once per test binary and removed by [Main].
// Nothing is downloaded.
package testutil
