package seccomp

//go:generate sh -c "go run ./mksyscalls $(go env GOMODCACHE)/golang.org/x/sys@$(go list -m -f '{{.Version}}' golang.org/x/sys)/unix"
