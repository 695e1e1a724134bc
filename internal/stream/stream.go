// Package stream makes and checks the byte streams that tests send through
// checkpointed connections: every byte is a function of its offset and its
// direction, so a reader can tell a lost, repeated or reordered byte from
// the right one.
package stream

import "fmt"

// Byte returns the byte at offset off of the stream of direction dir.
func Byte(dir uint8, off int64) byte {
	x := uint64(off>>3)*0x9E3779B97F4A7C15 + uint64(dir)*0xBF58476D1CE4E5B9
	x ^= x >> 31
	x *= 0x94D049BB133111EB
	x ^= x >> 29
	return byte(x >> (8 * (off & 7)))
}

// Fill writes the bytes of direction dir starting at offset off into b.
func Fill(dir uint8, off int64, b []byte) {
	for i := range b {
		b[i] = Byte(dir, off+int64(i))
	}
}

// Check verifies that b holds the bytes of direction dir starting at
// offset off.
func Check(dir uint8, off int64, b []byte) error {
	for i, c := range b {
		if want := Byte(dir, off+int64(i)); c != want {
			return fmt.Errorf("stream %d: byte at offset %d is %#02x, want %#02x", dir, off+int64(i), c, want)
		}
	}
	return nil
}
