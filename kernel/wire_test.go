package kernel

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSignedMessages(t *testing.T) {
	s := signer{[]byte("secret")}
	req := &message{Header: header{MsgID: "1", MsgType: "execute_request"}}
	frames, err := s.encode([][]byte{[]byte("client")}, "session", "execute_reply", req, map[string]any{"status": "ok"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.decode(frames)
	if err != nil {
		t.Fatalf("decoding a signed message: %v", err)
	}
	if m.Header.MsgType != "execute_reply" || string(m.identities[0]) != "client" || !strings.Contains(string(m.Parent), `"msg_id":"1"`) {
		t.Errorf("decoded %+v", m)
	}
	tampered := append([][]byte(nil), frames...)
	tampered[len(tampered)-1] = []byte(`{"code":"os.Exit(1)"}`)
	if _, err := s.decode(tampered); !errors.Is(err, errBadSignature) {
		t.Errorf("tampered content: %v, want a bad signature", err)
	}
	if _, err := (signer{[]byte("other")}).decode(frames); !errors.Is(err, errBadSignature) {
		t.Errorf("wrong key: %v, want a bad signature", err)
	}
	unsigned := append([][]byte(nil), frames...)
	unsigned[2] = nil // the signature frame, after the identity and delimiter
	if _, err := s.decode(unsigned); !errors.Is(err, errBadSignature) {
		t.Errorf("unsigned: %v, want a bad signature", err)
	}
	if _, err := s.decode(frames[:3]); err == nil {
		t.Error("a truncated message decoded")
	}
}

func TestReadConnection(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ json, problem string }{
		{`{"transport":"tcp","ip":"127.0.0.1","signature_scheme":"hmac-sha256","key":"k"}`, ""},
		{`{"transport":"tcp","ip":"127.0.0.1","signature_scheme":"hmac-sha256","key":""}`, "no key"},
		{`{"transport":"tcp","ip":"127.0.0.1","signature_scheme":"hmac-md5","key":"k"}`, "signature scheme"},
		{`{"transport":"udp","ip":"127.0.0.1","signature_scheme":"hmac-sha256","key":"k"}`, "transport"},
	} {
		path := filepath.Join(dir, "c.json")
		if err := os.WriteFile(path, []byte(c.json), 0o600); err != nil {
			t.Fatal(err)
		}
		conn, err := readConnection(path)
		switch {
		case c.problem == "" && err != nil:
			t.Errorf("%s: %v", c.json, err)
		case c.problem != "" && (err == nil || !strings.Contains(err.Error(), c.problem)):
			t.Errorf("%s: error %v, want one about %s", c.json, err, c.problem)
		case c.problem == "" && conn.endpoint(5) != "tcp://127.0.0.1:5":
			t.Errorf("endpoint %s", conn.endpoint(5))
		}
	}
}
