// Command plugin is libgosoccr.so, built with -buildmode=c-shared. It holds
// the cgo exports of the library and nothing else: argument conversion,
// error codes and panic recovery, over the packages that do the work.
//
// The libsoccr C API (include/soccr.h) is defined by soccr_abi.c, which
// forwards to the Go functions of soccr_abi.go. cgo's generated
// _cgo_export.h is internal: include/ holds the public headers.
package main

import (
	"os"
	"runtime/debug"
)

// gcPercent is the library's GOGC unless the process sets GOGC itself. The
// Go heap of the library holds little that lives (queue bytes are C
// memory): what grows it is the garbage of each call, up to a goal of
// 4 MiB at Go's default of 100. A quarter of that keeps the library's part
// of its host's RSS small (2 MiB less at the peak of 9,000 checkpoints and
// restores through the libsoccr API) for a collection every few thousand
// calls, each of a heap with almost nothing live.
const gcPercent = 25

func init() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
}

func main() {}
