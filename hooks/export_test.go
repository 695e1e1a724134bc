package hooks

// ChainReads tells how many times l read its chains back (for the tests).
func (l *Locker) ChainReads() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.chainReads
}
