// Package kernel is srmlab's Jupyter kernel: Go notebooks in which cells
// are interpreted by yaegi (github.com/traefik/yaegi) while the standard
// library, srmlab's packages, gonum/plot and gocsv are compiled in, so
// that the heavy work of a cell runs at compiled speed and only its glue
// is interpreted. gophernotes, the usual Go kernel, no longer starts on
// current Go releases; GoNB compiles every cell as a program instead and
// keeps no values between cells.
//
// # Protocol
//
// Run serves Jupyter's messaging protocol 5.3 over pure-Go ZeroMQ
// (github.com/go-zeromq/zmq4) on the five ports of the connection file,
// bound exactly where the file says: shell (execute, is_complete,
// complete, inspect, kernel_info, comm_info, history), control (shutdown,
// interrupt, kernel_info), IOPub (status, execute_input, stream,
// display_data, update_display_data, execute_result, error), stdin (read
// and ignored: cells get no terminal input) and heartbeat. Every incoming
// message's HMAC-SHA256 signature is checked with the file's key before
// anything else reads it; a message that fails is logged and dropped, and
// a connection file without a key is refused.
//
// # Cells
//
// State persists across cells. Each cell also sees ctx, its
// context.Context, which an interrupt (the control message, as the
// kernelspec asks, or SIGINT) cancels: srmlab's long operations take it, so
// a training loop stops cleanly and the kernel lives on. A panic in a cell
// becomes its error, with the cell positions of the interpreted frames,
// and leaves the session as the cell left it. The last expression of a
// cell is its result: display bundles, images and plots render inline
// (see package display, imported in every session as gophernotes does,
// with gophernotes' global Display), other values as text.
//
// Output reaches the notebook in the order it was produced: while a cell
// runs, file descriptors 1 and 2 are pipes read by the kernel, so what
// compiled code prints arrives too, and displaying a bundle first flushes
// the text printed before it.
//
// yaegi v0.16.1 handles function bodies well and top-level statements
// less so; the kernel cuts a cell into imports, declarations and
// statements, evaluates each run of one kind on its own, runs statements
// with a body inside functions declared for them, and spells out the
// types of top-level variables yaegi cannot infer (see session.go). What
// remains: no range over integers or functions, no min, max or clear, and
// interpreted loops about a hundred times slower than compiled ones, so
// heavy loops belong in compiled packages.
//
// # Symbols, completion and inspection
//
// Package kernel/symbols holds the generated symbol tables (go generate
// ./kernel/symbols) and the doc comments of srmlab's exported names.
// Completion offers identifiers, package members and the fields and
// methods of compiled types; inspection shows declarations with their doc
// comments, the types of other compiled symbols, and the types and values
// of a session's variables.
//
// # Installing
//
// "srmlab kernel install [--user] [--prefix DIR]" writes the kernelspec
// (Spec) pointing at the srmlab binary's absolute path; Jupyter then
// starts "srmlab kernel --connection-file FILE".
package kernel
