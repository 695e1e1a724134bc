// Package e2e holds the end-to-end tests of the CRIU plugin: a real
// process (usclient.c) with a unix socket to a server outside the dump is
// checkpointed and restored by real CRIU with build/criu/gosoccr.so, each
// test in a network namespace of its own. They need root, `make build`,
// and a CRIU >= 4.2 named by GOSOCCR_CRIU (make test sets it from
// test/install-criu.sh).
package e2e
