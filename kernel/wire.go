package kernel

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// protocolVersion is the Jupyter messaging protocol the kernel speaks.
const protocolVersion = "5.3"

// connection is a Jupyter connection file: where to listen and the key
// that signs every message.
type connection struct {
	Transport       string `json:"transport"`
	IP              string `json:"ip"`
	ShellPort       int    `json:"shell_port"`
	ControlPort     int    `json:"control_port"`
	StdinPort       int    `json:"stdin_port"`
	IOPubPort       int    `json:"iopub_port"`
	HBPort          int    `json:"hb_port"`
	SignatureScheme string `json:"signature_scheme"`
	Key             string `json:"key"`
}

// readConnection reads and checks a connection file. An empty key is
// refused: Jupyter would then skip signatures, and anyone who can reach
// the ports could run code.
func readConnection(path string) (connection, error) {
	var c connection
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("connection file %s: %w", path, err)
	}
	switch {
	case c.Key == "":
		return c, fmt.Errorf("connection file %s has no key: refusing to run unauthenticated", path)
	case c.SignatureScheme != "hmac-sha256":
		return c, fmt.Errorf("connection file %s: signature scheme %q, want hmac-sha256", path, c.SignatureScheme)
	case c.Transport != "tcp" && c.Transport != "ipc":
		return c, fmt.Errorf("connection file %s: transport %q, want tcp or ipc", path, c.Transport)
	case c.IP == "":
		return c, fmt.Errorf("connection file %s has no ip", path)
	}
	return c, nil
}

// endpoint is the ZeroMQ address of one of the kernel's ports, exactly
// as the connection file gives it: the kernel binds nowhere else.
func (c connection) endpoint(port int) string {
	if c.Transport == "ipc" {
		return fmt.Sprintf("ipc://%s-%d", c.IP, port)
	}
	return fmt.Sprintf("tcp://%s:%d", c.IP, port)
}

// header is a message header; a reply's parent_header is its request's.
type header struct {
	MsgID    string `json:"msg_id"`
	Session  string `json:"session"`
	Username string `json:"username"`
	Date     string `json:"date"`
	MsgType  string `json:"msg_type"`
	Version  string `json:"version"`
}

// message is a decoded wire message. Identities route replies back
// through ROUTER sockets to the client that asked.
type message struct {
	identities [][]byte
	Header     header
	Parent     json.RawMessage
	Metadata   json.RawMessage
	Content    json.RawMessage
}

const delimiter = "<IDS|MSG>"

var errBadSignature = errors.New("bad signature")

// signer signs and checks messages with the connection key.
type signer struct{ key []byte }

func (s signer) sign(parts ...[]byte) []byte {
	m := hmac.New(sha256.New, s.key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// decode parses a multipart message and checks its signature before
// anything else reads it, so that a forged message is never acted on.
func (s signer) decode(frames [][]byte) (*message, error) {
	i := 0
	for i < len(frames) && !bytes.Equal(frames[i], []byte(delimiter)) {
		i++
	}
	if len(frames) < i+6 {
		return nil, fmt.Errorf("malformed message: %d frames, delimiter at %d", len(frames), i)
	}
	sig, err := hex.DecodeString(string(frames[i+1]))
	if err != nil || !hmac.Equal(sig, s.sign(frames[i+2:i+6]...)) {
		return nil, errBadSignature
	}
	m := &message{identities: frames[:i], Parent: frames[i+3], Metadata: frames[i+4], Content: frames[i+5]}
	if err := json.Unmarshal(frames[i+2], &m.Header); err != nil {
		return nil, fmt.Errorf("message header: %w", err)
	}
	return m, nil
}

// encode builds the frames of a message of msgType answering parent (nil
// for none), routed to identities.
func (s signer) encode(identities [][]byte, session, msgType string, parent *message, content any) ([][]byte, error) {
	h := header{
		MsgID:    newID(),
		Session:  session,
		Username: "srmlab",
		Date:     time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"),
		MsgType:  msgType,
		Version:  protocolVersion,
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	pb := []byte("{}")
	if parent != nil {
		if pb, err = json.Marshal(parent.Header); err != nil {
			return nil, err
		}
	}
	cb, err := json.Marshal(content)
	if err != nil {
		return nil, err
	}
	mb := []byte("{}")
	sig := hex.EncodeToString(s.sign(hb, pb, mb, cb))
	frames := append([][]byte{}, identities...)
	return append(frames, []byte(delimiter), []byte(sig), hb, pb, mb, cb), nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
