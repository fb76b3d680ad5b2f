// Package examples holds programs assembled from paaskit's packages: each
// subdirectory is a main package (the benchmark, and later the DEA, the
// warden daemon and the stager). This file only documents the directory.
package examples
