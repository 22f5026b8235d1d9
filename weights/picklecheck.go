package weights

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Argument layouts of pickle opcodes (Python's pickletools).
const (
	argNone  = iota
	argLine  // one newline-terminated line
	argLines // two lines (GLOBAL, INST)
	argFixed // n fixed bytes
	argLen   // an n-byte little-endian length, then that many bytes
	argFrame // an 8-byte length of the opcodes that follow (FRAME)
)

type opArg struct{ kind, n int }

// pickleOps lists every opcode of protocols 0 to 5.
var pickleOps = map[byte]opArg{
	'(': {}, '.': {}, '0': {}, '1': {}, '2': {}, 'N': {}, 'R': {}, 'a': {},
	'b': {}, 'd': {}, '}': {}, 'e': {}, 'l': {}, ']': {}, 'o': {}, 's': {},
	't': {}, ')': {}, 'u': {}, 'Q': {}, 0x81: {}, 0x85: {}, 0x86: {},
	0x87: {}, 0x88: {}, 0x89: {}, 0x8f: {}, 0x90: {}, 0x91: {}, 0x92: {},
	0x93: {}, 0x94: {}, 0x97: {}, 0x98: {},
	'I': {argLine, 0}, 'L': {argLine, 0}, 'F': {argLine, 0}, 'S': {argLine, 0},
	'V': {argLine, 0}, 'P': {argLine, 0}, 'g': {argLine, 0}, 'p': {argLine, 0},
	'c': {argLines, 0}, 'i': {argLines, 0},
	'J': {argFixed, 4}, 'K': {argFixed, 1}, 'M': {argFixed, 2}, 'G': {argFixed, 8},
	'h': {argFixed, 1}, 'j': {argFixed, 4}, 'q': {argFixed, 1}, 'r': {argFixed, 4},
	0x80: {argFixed, 1}, 0x82: {argFixed, 1}, 0x83: {argFixed, 2}, 0x84: {argFixed, 4},
	0x95: {argFrame, 8},
	'T':  {argLen, 4}, 'U': {argLen, 1}, 'B': {argLen, 4}, 'C': {argLen, 1},
	'X': {argLen, 4}, 0x8c: {argLen, 1}, 0x8d: {argLen, 8}, 0x8e: {argLen, 8},
	0x96: {argLen, 8}, 0x8a: {argLen, 1}, 0x8b: {argLen, 4},
}

// checkPickle walks the opcodes of b up to STOP and checks that every
// length they announce fits in what is left of b. gopickle allocates a
// length before reading it, so without this a few corrupt bytes in a small
// file could demand gigabytes.
func checkPickle(b []byte) error {
	for i := 0; i < len(b); {
		op := b[i]
		arg, ok := pickleOps[op]
		if !ok {
			return fmt.Errorf("unknown pickle opcode 0x%02x at byte %d", op, i)
		}
		at := i
		i++
		switch arg.kind {
		case argNone:
			if op == '.' {
				return nil
			}
		case argLine, argLines:
			lines := 1
			if arg.kind == argLines {
				lines = 2
			}
			for range lines {
				j := bytes.IndexByte(b[i:], '\n')
				if j < 0 {
					return fmt.Errorf("pickle opcode 0x%02x at byte %d: unterminated line", op, at)
				}
				i += j + 1
			}
		case argFixed:
			i += arg.n
		case argFrame:
			if i+8 > len(b) {
				return fmt.Errorf("pickle truncated at byte %d", at)
			}
			n := binary.LittleEndian.Uint64(b[i:])
			i += 8
			if n > uint64(len(b)-i) {
				return fmt.Errorf("pickle frame at byte %d announces %d bytes, but only %d follow", at, n, len(b)-i)
			}
		case argLen:
			if i+arg.n > len(b) {
				return fmt.Errorf("pickle truncated at byte %d", at)
			}
			var n uint64
			switch arg.n {
			case 1:
				n = uint64(b[i])
			case 4:
				n = uint64(binary.LittleEndian.Uint32(b[i:]))
			case 8:
				n = binary.LittleEndian.Uint64(b[i:])
			}
			i += arg.n
			if n > uint64(len(b)-i) {
				return fmt.Errorf("pickle opcode 0x%02x at byte %d announces %d bytes, but only %d follow", op, at, n, len(b)-i)
			}
			i += int(n)
		}
	}
	return fmt.Errorf("pickle ends without STOP")
}
