package symbols

import (
	"errors"
	"io"
	"log"
	"os"
	"strconv"
)

// The extractor maps these standard functions to local stand-ins (the
// names are fixed by yaegi's extractor) so that a cell cannot end the
// kernel process: os.Exit and log.Fatal panic instead, which the kernel
// reports as the cell's error, and a cell cannot find its own process to
// kill it.

var errRestricted = errors.New("restricted in a notebook: it would end the kernel")

func osExit(code int) { panic("os.Exit(" + strconv.Itoa(code) + ")") }

func osFindProcess(pid int) (*os.Process, error) {
	if pid == os.Getpid() {
		return nil, errRestricted
	}
	return os.FindProcess(pid)
}

func logFatal(v ...any)            { log.Panic(v...) }
func logFatalf(f string, v ...any) { log.Panicf(f, v...) }
func logFatalln(v ...any)          { log.Panicln(v...) }

// logLogger is log.Logger with the Fatal methods panicking.
type logLogger struct{ l *log.Logger }

func logNew(out io.Writer, prefix string, flag int) *logLogger {
	return &logLogger{log.New(out, prefix, flag)}
}

func (l *logLogger) Fatal(v ...any)            { l.l.Panic(v...) }
func (l *logLogger) Fatalf(f string, v ...any) { l.l.Panicf(f, v...) }
func (l *logLogger) Fatalln(v ...any)          { l.l.Panicln(v...) }
func (l *logLogger) Flags() int                { return l.l.Flags() }
func (l *logLogger) Output(d int, s string) error {
	return l.l.Output(d+1, s)
}
func (l *logLogger) Panic(v ...any)            { l.l.Panic(v...) }
func (l *logLogger) Panicf(f string, v ...any) { l.l.Panicf(f, v...) }
func (l *logLogger) Panicln(v ...any)          { l.l.Panicln(v...) }
func (l *logLogger) Prefix() string            { return l.l.Prefix() }
func (l *logLogger) Print(v ...any)            { l.l.Print(v...) }
func (l *logLogger) Printf(f string, v ...any) { l.l.Printf(f, v...) }
func (l *logLogger) Println(v ...any)          { l.l.Println(v...) }
func (l *logLogger) SetFlags(flag int)         { l.l.SetFlags(flag) }
func (l *logLogger) SetOutput(w io.Writer)     { l.l.SetOutput(w) }
func (l *logLogger) SetPrefix(p string)        { l.l.SetPrefix(p) }
func (l *logLogger) Writer() io.Writer         { return l.l.Writer() }
