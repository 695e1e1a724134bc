package soccr

// SetFastResend turns the immediate resend of restored, unacknowledged
// bytes on or off (see resend) and returns the previous setting, so that
// benchmarks can measure the timer path it replaces.
func SetFastResend(on bool) bool {
	old := fastResend
	fastResend = on
	return old
}
