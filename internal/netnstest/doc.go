// Package netnstest gives each privileged test a network namespace of its
// own, and checks that tests leave no descriptor behind.
//
// New(tb) creates the namespace (with lo up) or skips the test with a
// reason when the process lacks the privilege; with GOSOCCR_REQUIRE_ROOT=1
// in the environment a missing privilege fails the test instead. Do runs a
// function on a thread that has entered the namespace and returns the
// thread to its own namespace afterwards; if it cannot, the thread stays
// locked and dies with its goroutine, so no other goroutine ever runs in
// the wrong namespace.
//
// Sockets keep the namespace they were created in: create them inside Do,
// then use them from any goroutine.
package netnstest
