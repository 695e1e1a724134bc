// Package e2e holds the end-to-end tests with real CRIU, each in a network
// namespace of its own: a process (usclient/) with a unix socket to a
// server outside the dump is checkpointed and restored by CRIU with the
// plugin build/criu/gosoccr.so; and a process (tcpclient/) with a TCP
// connection is dumped by CRIU with --tcp-established, after which that one
// connection is restored out of CRIU's images by hooks.RestoreFromCRIU and
// by the C call gosoccr_restore_tcp_from_criu (criutcprestore/), and our
// own images are compared field by field with CRIU's. They need root, `make build`,
// and a CRIU >= 4.2 named by GOSOCCR_CRIU (make test sets it from
// test/install-criu.sh).
package e2e
