package kernel

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"strings"
)

// yaegi evaluates either declarations (like a file) or statements (like a
// function body) in one Eval, and imports only apart from statements; a
// notebook cell mixes all three. splitCell cuts a cell into runs of one
// kind, evaluated in order.

type chunkKind int

const (
	importChunk chunkKind = iota
	declChunk
	stmtChunk
)

// item is one top-level declaration or statement of a cell.
type item struct {
	kind       chunkKind
	start, end int // byte offsets; end excludes trailing comments
	line, col  int // position of start, from 1
	// block marks a statement with a body (for, if, switch, select, a
	// block, a labeled statement), which yaegi mis-scopes at top level.
	block bool
}

// chunk is a run of items of one kind.
type chunk struct {
	kind  chunkKind
	items []item
}

// cellError is a problem found before evaluation, with its position in
// the cell.
type cellError struct {
	line, col int
	msg       string
}

// Error gives the problem with its position in the cell.
func (e *cellError) Error() string { return fmt.Sprintf("cell:%d:%d: %s", e.line, e.col, e.msg) }

// token positions of one top-level item while scanning.
type tok struct {
	tok       token.Token
	off, end  int
	line, col int
}

// splitCell scans src and returns its chunks; depth is the count of
// unclosed brackets at the end, which is how is_complete tells a cell
// that needs more lines.
func splitCell(src string) (chunks []chunk, depth int, err error) {
	fset := token.NewFileSet()
	file := fset.AddFile("cell", -1, len(src))
	var s scanner.Scanner
	var scanErr *cellError
	s.Init(file, []byte(src), func(pos token.Position, msg string) {
		if scanErr == nil {
			scanErr = &cellError{pos.Line, pos.Column, msg}
		}
	}, 0)
	var cur []tok
	flush := func() {
		if len(cur) == 0 {
			return
		}
		first, last := cur[0], cur[len(cur)-1]
		it := item{kind: classify(cur), start: first.off, end: last.end, line: first.line, col: first.col}
		switch first.tok {
		case token.FOR, token.IF, token.SWITCH, token.SELECT, token.LBRACE:
			it.block = true
		case token.IDENT:
			it.block = len(cur) > 1 && cur[1].tok == token.COLON
		}
		if n := len(chunks); n > 0 && chunks[n-1].kind == it.kind {
			chunks[n-1].items = append(chunks[n-1].items, it)
		} else {
			chunks = append(chunks, chunk{kind: it.kind, items: []item{it}})
		}
		cur = cur[:0]
	}
	// header is set between a for, if or switch keyword and its body:
	// the semicolons of "for i := 0; i < n; i++ {" end no statement.
	header := false
	for {
		pos, t, lit := s.Scan()
		if t == token.EOF {
			break
		}
		switch t {
		case token.FOR, token.IF, token.SWITCH:
			header = header || depth == 0
		case token.LBRACE:
			if depth == 0 {
				header = false
			}
			depth++
		case token.LPAREN, token.LBRACK:
			depth++
		case token.RPAREN, token.RBRACK, token.RBRACE:
			depth--
		}
		if t == token.SEMICOLON && depth == 0 && !(header && lit == ";") {
			flush()
			continue
		}
		if t == token.SEMICOLON && lit == "\n" {
			continue // inserted, not part of the text
		}
		p := fset.Position(pos)
		n := len(lit)
		if n == 0 {
			n = len(t.String())
		}
		cur = append(cur, tok{t, p.Offset, p.Offset + n, p.Line, p.Column})
	}
	flush()
	if scanErr != nil {
		return chunks, depth, scanErr
	}
	return chunks, depth, nil
}

// classify tells a declaration from a statement by its first tokens; a
// func keyword starts a declaration unless it is a function literal.
// Variables and constants count as statements: yaegi evaluates a var
// declaration that refers to earlier cells' variables only as a
// statement.
func classify(ts []tok) chunkKind {
	switch ts[0].tok {
	case token.IMPORT:
		return importChunk
	case token.TYPE:
		return declChunk
	case token.FUNC:
		if len(ts) > 1 && ts[1].tok == token.IDENT {
			return declChunk
		}
		if len(ts) > 1 && ts[1].tok == token.LPAREN {
			// A method has a receiver, then a name and its parameters;
			// a literal has parameters, then results or a body.
			d := 0
			for i := 1; i < len(ts); i++ {
				switch ts[i].tok {
				case token.LPAREN:
					d++
				case token.RPAREN:
					d--
				}
				if d == 0 {
					if i+2 < len(ts) && ts[i+1].tok == token.IDENT && (ts[i+2].tok == token.LPAREN || ts[i+2].tok == token.LBRACK) {
						return declChunk
					}
					break
				}
			}
		}
	}
	return stmtChunk
}

// placed returns src[start:end] preceded by enough newlines and spaces
// that, once yaegi has put its one-line wrapper in front, line and column
// numbers in its messages are off by exactly one line; fixPositions then
// maps them back to the cell.
func placed(src string, it item, end int) string {
	return strings.Repeat("\n", it.line) + strings.Repeat(" ", it.col-1) + src[it.start:end]
}

// isExpr reports whether a statement is a lone expression, whose value
// the cell then shows, and whether that expression is a call, which may
// have several results or none.
func isExpr(text string) (expr, call bool) {
	e, err := parser.ParseExpr(text)
	if err != nil {
		return false, false
	}
	for {
		p, ok := e.(*ast.ParenExpr)
		if !ok {
			break
		}
		e = p.X
	}
	_, call = e.(*ast.CallExpr)
	return true, call
}

// printCall reports whether a call prints or writes, like fmt.Println or
// w.Write: its byte count and error are noise after the printed text.
func printCall(text string) bool {
	e, err := parser.ParseExpr(text)
	if err != nil {
		return false
	}
	c, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	var name string
	switch f := c.Fun.(type) {
	case *ast.Ident:
		name = f.Name
	case *ast.SelectorExpr:
		name = f.Sel.Name
	}
	for _, p := range []string{"Print", "Fprint", "Write"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// importSpec is one import of a cell.
type importSpec struct {
	name, path string
	line, col  int
}

// parseImports reads the imports of an import chunk.
func parseImports(src string, c chunk) ([]importSpec, error) {
	first, last := c.items[0], c.items[len(c.items)-1]
	text := "package p;" + placed(src, first, last.end)
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "cell", text, parser.ImportsOnly)
	if err != nil {
		if el, ok := err.(scanner.ErrorList); ok && len(el) > 0 {
			return nil, &cellError{el[0].Pos.Line - 1, el[0].Pos.Column, el[0].Msg}
		}
		return nil, err
	}
	var specs []importSpec
	for _, s := range f.Imports {
		p := fset.Position(s.Pos())
		spec := importSpec{path: strings.Trim(s.Path.Value, "`\""), line: p.Line - 1, col: p.Column}
		if s.Name != nil {
			spec.name = s.Name.Name
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// declaredNames lists what a declaration chunk declares, for completion
// (yaegi's Globals reports variables but not functions and types), and
// the result counts of its functions and methods (keyed ".Name"), which
// tell whether a call to them has a value to show.
func declaredNames(text string) (names []string, funcs map[string]int) {
	funcs = map[string]int{}
	f, err := parser.ParseFile(token.NewFileSet(), "cell", "package p;"+text, 0)
	if err != nil {
		return nil, funcs
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil {
				names = append(names, d.Name.Name)
				funcs[d.Name.Name] = d.Type.Results.NumFields()
			} else {
				funcs["."+d.Name.Name] = d.Type.Results.NumFields()
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				if ts, ok := s.(*ast.TypeSpec); ok {
					names = append(names, ts.Name.Name)
				}
			}
		}
	}
	return names, funcs
}

// completeness answers is_complete: a cell with unclosed brackets, an
// unterminated raw string or comment, or a trailing operator wants more
// lines; one that does not scan is invalid.
func completeness(src string) (status, indent string) {
	_, depth, err := splitCell(src)
	trimmed := strings.TrimRight(src, " \t\n")
	var ce *cellError
	if err != nil && errors.As(err, &ce) {
		// Only raw strings and block comments may go on on the next line.
		if ce.msg == "raw string literal not terminated" || ce.msg == "comment not terminated" {
			return "incomplete", ""
		}
		return "invalid", ""
	}
	if depth > 0 {
		return "incomplete", strings.Repeat("\t", depth)
	}
	for _, op := range []string{"+", "-", "*", "/", ",", "(", "&&", "||", "=", "."} {
		if strings.HasSuffix(trimmed, op) && !strings.HasSuffix(trimmed, "++") && !strings.HasSuffix(trimmed, "--") {
			return "incomplete", ""
		}
	}
	return "complete", ""
}
