package kernel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"

	"github.com/go-zeromq/zmq4"
	"github.com/srmlab/srmlab/display"
)

// server serves one notebook: it owns the sockets named in the connection
// file, the interpreter session and the redirection of the cells' output.
type server struct {
	conn    connection
	signer  signer
	id      string // this kernel's session id, in every header it sends
	log     *log.Logger
	capture *capture
	session *session

	shell, control, stdin, iopub, hb zmq4.Socket
	iopubMu                          sync.Mutex

	// busy is the running execute request, the parent of what a cell
	// displays; cancel interrupts it.
	mu     sync.Mutex
	busy   *message
	cancel context.CancelFunc
	count  int // execution counter

	shutdown chan bool // restart flag of the shutdown request
}

// Run serves the kernel described by the connection file until a
// shutdown request or until ctx ends. SIGINT interrupts the running cell
// instead of ending the kernel, as Jupyter expects of a kernel.
func Run(ctx context.Context, connectionFile string) error {
	conn, err := readConnection(connectionFile)
	if err != nil {
		return err
	}
	k, err := start(ctx, conn)
	if err != nil {
		return err
	}
	defer k.close()
	sigint := make(chan os.Signal, 1)
	signal.Notify(sigint, os.Interrupt)
	defer signal.Stop(sigint)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sigint:
			k.log.Print("SIGINT: interrupting the running cell")
			k.interrupt()
		case <-k.shutdown:
			return nil
		}
	}
}

func start(ctx context.Context, conn connection) (*server, error) {
	c, err := newCapture()
	if err != nil {
		return nil, err
	}
	k := &server{
		conn:     conn,
		signer:   signer{[]byte(conn.Key)},
		id:       newID(),
		log:      log.New(c.log, "srmlab kernel: ", log.LstdFlags),
		capture:  c,
		shutdown: make(chan bool, 1),
	}
	// Whatever a cell or yaegi logs through the log package is the cell's
	// stderr; the kernel's own log goes to the real one.
	k.session, err = newSession(os.Stdout, os.Stderr)
	if err != nil {
		return nil, err
	}
	display.SetPublisher(k.publishDisplay)
	zlog := log.New(c.log, "srmlab kernel zmq: ", log.LstdFlags)
	k.shell = zmq4.NewRouter(ctx, zmq4.WithLogger(zlog))
	k.control = zmq4.NewRouter(ctx, zmq4.WithLogger(zlog))
	k.stdin = zmq4.NewRouter(ctx, zmq4.WithLogger(zlog))
	k.iopub = zmq4.NewPub(ctx, zmq4.WithLogger(zlog))
	k.hb = zmq4.NewRep(ctx, zmq4.WithLogger(zlog))
	for _, b := range []struct {
		s    zmq4.Socket
		port int
	}{{k.shell, conn.ShellPort}, {k.control, conn.ControlPort}, {k.stdin, conn.StdinPort}, {k.iopub, conn.IOPubPort}, {k.hb, conn.HBPort}} {
		if err := b.s.Listen(conn.endpoint(b.port)); err != nil {
			k.close()
			return nil, err
		}
	}
	k.log.Printf("listening on %s (shell %d, control %d, iopub %d, stdin %d, hb %d)",
		conn.IP, conn.ShellPort, conn.ControlPort, conn.IOPubPort, conn.StdinPort, conn.HBPort)
	go k.heartbeat()
	go k.serve("shell", k.shell)
	go k.serve("control", k.control)
	go k.drain(k.stdin)
	k.publish(nil, "status", map[string]string{"execution_state": "starting"})
	return k, nil
}

func (k *server) close() {
	for _, s := range []zmq4.Socket{k.shell, k.control, k.stdin, k.iopub, k.hb} {
		if s != nil {
			s.Close()
		}
	}
}

// heartbeat echoes pings so that the front end knows the process lives.
func (k *server) heartbeat() {
	for {
		m, err := k.hb.Recv()
		if err != nil {
			return
		}
		if err := k.hb.Send(m); err != nil {
			return
		}
	}
}

// drain reads the stdin channel, which cells do not use (they get no
// terminal input), so that replies to nothing do not queue up.
func (k *server) drain(s zmq4.Socket) {
	for {
		if _, err := s.Recv(); err != nil {
			return
		}
	}
}

// serve reads one channel's requests. Shell requests run one at a time in
// arrival order; control has its own goroutine so that an interrupt or a
// shutdown reaches a kernel whose shell is busy with a cell.
func (k *server) serve(channel string, s zmq4.Socket) {
	for {
		raw, err := s.Recv()
		if err != nil {
			return
		}
		m, err := k.signer.decode(raw.Frames)
		if err != nil {
			k.log.Printf("dropped a %s message: %v", channel, err)
			continue
		}
		k.handle(s, m)
	}
}

// handle answers a request between busy and idle status messages, which
// clients use to know that all the request's output has arrived.
func (k *server) handle(s zmq4.Socket, m *message) {
	reply := strings.TrimSuffix(m.Header.MsgType, "_request") + "_reply"
	var content any
	switch m.Header.MsgType {
	case "kernel_info_request":
		content = k.kernelInfo()
	case "execute_request":
		k.publish(m, "status", map[string]string{"execution_state": "busy"})
		content = k.execute(m)
	case "is_complete_request":
		content = k.isComplete(m)
	case "complete_request":
		content = k.completeRequest(m)
	case "inspect_request":
		content = k.inspectRequest(m)
	case "comm_info_request":
		content = map[string]any{"status": "ok", "comms": map[string]any{}}
	case "history_request":
		content = map[string]any{"status": "ok", "history": []any{}}
	case "interrupt_request":
		k.interrupt()
		content = map[string]any{"status": "ok"}
	case "shutdown_request":
		var req struct{ Restart bool }
		_ = json.Unmarshal(m.Content, &req)
		k.interrupt()
		k.send(s, m, reply, map[string]any{"status": "ok", "restart": req.Restart})
		k.publish(m, "status", map[string]string{"execution_state": "idle"})
		k.log.Printf("shutdown requested (restart %v)", req.Restart)
		select {
		case k.shutdown <- req.Restart:
		default: // already shutting down
		}
		return
	case "comm_open", "comm_msg", "comm_close":
		return // no comm targets: the spec says to ignore them
	default:
		k.log.Printf("unhandled %s", m.Header.MsgType)
		return
	}
	if m.Header.MsgType != "execute_request" {
		k.publish(m, "status", map[string]string{"execution_state": "busy"})
	}
	k.send(s, m, reply, content)
	k.publish(m, "status", map[string]string{"execution_state": "idle"})
}

func (k *server) send(s zmq4.Socket, parent *message, msgType string, content any) {
	frames, err := k.signer.encode(parent.identities, k.id, msgType, parent, content)
	if err != nil {
		k.log.Printf("encoding %s: %v", msgType, err)
		return
	}
	if err := s.SendMulti(zmq4.NewMsgFrom(frames...)); err != nil {
		k.log.Printf("sending %s: %v", msgType, err)
	}
}

// publish sends on IOPub, where every client sees it.
func (k *server) publish(parent *message, msgType string, content any) {
	frames, err := k.signer.encode([][]byte{[]byte("kernel." + k.id + "." + msgType)}, k.id, msgType, parent, content)
	if err != nil {
		k.log.Printf("encoding %s: %v", msgType, err)
		return
	}
	k.iopubMu.Lock()
	defer k.iopubMu.Unlock()
	if err := k.iopub.SendMulti(zmq4.NewMsgFrom(frames...)); err != nil {
		k.log.Printf("publishing %s: %v", msgType, err)
	}
}

func (k *server) kernelInfo() any {
	return map[string]any{
		"status":                 "ok",
		"protocol_version":       protocolVersion,
		"implementation":         "srmlab",
		"implementation_version": "1",
		"language_info": map[string]any{
			"name":            "go",
			"version":         strings.TrimPrefix(runtime.Version(), "go"),
			"mimetype":        "text/x-go",
			"file_extension":  ".go",
			"pygments_lexer":  "go",
			"codemirror_mode": "go",
		},
		"banner": "srmlab: Go " + runtime.Version() + " interpreted by yaegi, with srmlab, gonum/plot and gocsv compiled in",
		"help_links": []map[string]string{
			{"text": "Go", "url": "https://go.dev/doc/"},
		},
	}
}

// running returns the request whose cell is running, the parent of
// whatever the cell displays.
func (k *server) running() *message {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.busy
}

func (k *server) interrupt() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cancel != nil {
		k.cancel()
	}
}

// publishDisplay is the display package's way to the notebook.
func (k *server) publishDisplay(d display.Data, update bool) error {
	parent := k.running()
	if parent == nil {
		return errors.New("display: no cell is running")
	}
	k.capture.flush()
	msgType := "display_data"
	if update {
		msgType = "update_display_data"
	}
	k.publish(parent, msgType, bundleContent(d))
	return nil
}

// bundleContent is a display bundle in the JSON form of the protocol.
func bundleContent(d display.Data) map[string]any {
	c := map[string]any{"data": nonNil(d.Data), "metadata": nonNil(d.Metadata)}
	if d.Transient != nil {
		c["transient"] = d.Transient
	}
	return c
}

func nonNil(m display.MIMEMap) display.MIMEMap {
	if m == nil {
		return display.MIMEMap{}
	}
	return m
}

func (k *server) execute(m *message) any {
	var req struct {
		Code         string `json:"code"`
		Silent       bool   `json:"silent"`
		StoreHistory *bool  `json:"store_history"`
	}
	if err := json.Unmarshal(m.Content, &req); err != nil {
		return errorReply(k.count, &execError{name: "BadRequest", value: err.Error()})
	}
	if !req.Silent && (req.StoreHistory == nil || *req.StoreHistory) {
		k.count++
	}
	count := k.count
	if !req.Silent {
		k.publish(m, "execute_input", map[string]any{"code": req.Code, "execution_count": count})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k.mu.Lock()
	k.busy, k.cancel = m, cancel
	k.mu.Unlock()
	res, err := k.runCaptured(ctx, m, req.Code)
	k.mu.Lock()
	k.busy, k.cancel = nil, nil
	k.mu.Unlock()
	if err != nil {
		ee, ok := err.(*execError)
		if !ok {
			ee = &execError{name: "Error", value: err.Error()}
		}
		tb := ee.traceback
		if len(tb) == 0 {
			tb = []string{ee.name + ": " + ee.value}
		}
		k.publish(m, "error", map[string]any{"ename": ee.name, "evalue": ee.value, "traceback": tb})
		return errorReply(count, ee)
	}
	if d, ok := bundle(res); ok && !req.Silent {
		c := bundleContent(d)
		c["execution_count"] = count
		k.publish(m, "execute_result", c)
	}
	return map[string]any{"status": "ok", "execution_count": count, "user_expressions": map[string]any{}, "payload": []any{}}
}

// runCaptured runs a cell with its output going to the notebook. A panic
// that escapes yaegi's own recovery still becomes the cell's error.
func (k *server) runCaptured(ctx context.Context, m *message, code string) (res result, err error) {
	send := func(name, text string) {
		k.publish(m, "stream", map[string]string{"name": name, "text": text})
	}
	if err := k.capture.start(send); err != nil {
		return res, err
	}
	defer k.capture.stop()
	defer func() {
		if r := recover(); r != nil {
			err = &execError{name: "panic", value: fmt.Sprint(r)}
		}
	}()
	return k.session.run(ctx, code)
}

func errorReply(count int, e *execError) map[string]any {
	tb := e.traceback
	if tb == nil {
		tb = []string{}
	}
	return map[string]any{"status": "error", "execution_count": count, "ename": e.name, "evalue": e.value, "traceback": tb}
}

func (k *server) isComplete(m *message) any {
	var req struct{ Code string }
	_ = json.Unmarshal(m.Content, &req)
	status, indent := completeness(req.Code)
	c := map[string]any{"status": status}
	if status == "incomplete" {
		c["indent"] = indent
	}
	return c
}

func (k *server) completeRequest(m *message) any {
	var req struct {
		Code   string `json:"code"`
		Cursor int    `json:"cursor_pos"`
	}
	_ = json.Unmarshal(m.Content, &req)
	matches, start, end := k.session.complete(req.Code, req.Cursor)
	if matches == nil {
		matches = []string{}
	}
	return map[string]any{"status": "ok", "matches": matches, "cursor_start": start, "cursor_end": end, "metadata": map[string]any{}}
}

func (k *server) inspectRequest(m *message) any {
	var req struct {
		Code   string `json:"code"`
		Cursor int    `json:"cursor_pos"`
	}
	_ = json.Unmarshal(m.Content, &req)
	text, found := k.session.inspect(req.Code, req.Cursor)
	data := map[string]any{}
	if found {
		data["text/plain"] = text
	}
	return map[string]any{"status": "ok", "found": found, "data": data, "metadata": map[string]any{}}
}
