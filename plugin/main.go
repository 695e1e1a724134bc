// Command plugin is libgosoccr.so, built with -buildmode=c-shared. It holds
// the cgo exports of the library and nothing else: argument conversion,
// error codes and panic recovery, over the packages that do the work.
//
// The libsoccr C API (include/soccr.h) is defined by soccr_abi.c, which
// forwards to the Go functions of soccr_abi.go. cgo's generated
// _cgo_export.h is internal: include/ holds the public headers.
package main

func main() {}
