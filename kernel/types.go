package kernel

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path"
	"reflect"
	"strconv"
	"strings"
)

// yaegi v0.16.1 cannot infer the type of a top-level variable whose value
// indexes a compiled slice or map ("x := batch[0]" reports a "definition
// loop"). typedDefine rewrites such a declaration with the types spelled
// out ("var x datasets.Sample = batch[0]"), which it finds by reflection
// on the session's values and compiled symbols.

// declares reports whether a statement declares variables.
func declares(text string) bool {
	f, err := parser.ParseFile(token.NewFileSet(), "", "package p;func _(){"+text+"\n}", 0)
	if err != nil {
		return false
	}
	switch st := f.Decls[0].(*ast.FuncDecl).Body.List[0].(type) {
	case *ast.AssignStmt:
		return st.Tok == token.DEFINE
	case *ast.DeclStmt:
		return true
	}
	return false
}

// typedDefine splits a declaration into var declarations with the types
// spelled out and the assignment of the values, or returns false when a
// type is out of its reach (values of interpreted types, say).
func (s *session) typedDefine(text string) (decls, assign string, ok bool) {
	f, err := parser.ParseFile(token.NewFileSet(), "", "package p;func _(){"+text+"\n}", 0)
	if err != nil {
		return "", "", false
	}
	body := f.Decls[0].(*ast.FuncDecl).Body.List
	if len(body) != 1 {
		return "", "", false
	}
	var names []string
	var rhs []ast.Expr
	switch st := body[0].(type) {
	case *ast.AssignStmt:
		if st.Tok != token.DEFINE {
			return "", "", false
		}
		for _, l := range st.Lhs {
			id, ok := l.(*ast.Ident)
			if !ok {
				return "", "", false
			}
			names = append(names, id.Name)
		}
		rhs = st.Rhs
	case *ast.DeclStmt:
		g, ok := st.Decl.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR || len(g.Specs) != 1 {
			return "", "", false
		}
		vs := g.Specs[0].(*ast.ValueSpec)
		if vs.Type != nil {
			return "", "", false
		}
		for _, n := range vs.Names {
			names = append(names, n.Name)
		}
		rhs = vs.Values
	default:
		return "", "", false
	}
	var types []reflect.Type
	switch {
	case len(rhs) == len(names):
		for _, e := range rhs {
			t, ok := s.exprType(e)
			if !ok {
				return "", "", false
			}
			types = append(types, t)
		}
	case len(rhs) == 1 && len(names) == 2:
		// v, ok := m[k] and the like.
		t, ok := s.exprType(rhs[0])
		if !ok {
			return "", "", false
		}
		types = []reflect.Type{t, reflect.TypeFor[bool]()}
	default:
		return "", "", false
	}
	var decl []string
	for i, n := range names {
		if n == "_" {
			continue
		}
		ts, ok := s.typeString(types[i])
		if !ok {
			return "", "", false
		}
		decl = append(decl, "var "+n+" "+ts)
	}
	values := text[strings.Index(text, "=")+1:]
	return strings.Join(decl, "; "), strings.Join(names, ", ") + " =" + values, true
}

// exprType is the static type of an expression built from the session's
// globals, compiled packages, calls, selections and indexing.
func (s *session) exprType(e ast.Expr) (reflect.Type, bool) {
	switch x := ast.Unparen(e).(type) {
	case *ast.BasicLit:
		switch x.Kind {
		case token.INT:
			return reflect.TypeFor[int](), true
		case token.FLOAT:
			return reflect.TypeFor[float64](), true
		case token.STRING:
			return reflect.TypeFor[string](), true
		case token.CHAR:
			return reflect.TypeFor[rune](), true
		}
	case *ast.Ident:
		v, ok := s.globals()[x.Name]
		if ok && v.IsValid() {
			return v.Type(), true
		}
	case *ast.SelectorExpr:
		if id, ok := x.X.(*ast.Ident); ok {
			if p, ok := s.imports[id.Name]; ok {
				v, ok := symbolValue(p, x.Sel.Name)
				if !ok || (v.Kind() == reflect.Pointer && v.IsNil()) {
					return nil, false // a type, not a value
				}
				return v.Type(), true
			}
		}
		t, ok := s.exprType(x.X)
		if !ok {
			return nil, false
		}
		if m, ok := t.MethodByName(x.Sel.Name); ok && t.Kind() != reflect.Interface {
			return methodValue(m.Type), true
		} else if ok {
			return m.Type, true
		}
		if m, ok := reflect.PointerTo(deref(t)).MethodByName(x.Sel.Name); ok {
			return methodValue(m.Type), true
		}
		if st := deref(t); st.Kind() == reflect.Struct {
			if f, ok := st.FieldByName(x.Sel.Name); ok {
				return f.Type, true
			}
		}
	case *ast.CallExpr:
		t, ok := s.exprType(x.Fun)
		if ok && t.Kind() == reflect.Func && t.NumOut() >= 1 {
			return t.Out(0), true
		}
	case *ast.IndexExpr:
		t, ok := s.exprType(x.X)
		if !ok {
			return nil, false
		}
		if t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Array {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Slice, reflect.Array, reflect.Map:
			return t.Elem(), true
		case reflect.String:
			return reflect.TypeFor[byte](), true
		}
	case *ast.SliceExpr:
		return s.exprType(x.X)
	case *ast.StarExpr:
		t, ok := s.exprType(x.X)
		if ok && t.Kind() == reflect.Pointer {
			return t.Elem(), true
		}
	case *ast.UnaryExpr:
		t, ok := s.exprType(x.X)
		if ok && x.Op == token.AND {
			return reflect.PointerTo(t), true
		}
	}
	return nil, false
}

// methodValue drops the receiver from a method's type.
func methodValue(m reflect.Type) reflect.Type {
	in := make([]reflect.Type, 0, m.NumIn()-1)
	for i := 1; i < m.NumIn(); i++ {
		in = append(in, m.In(i))
	}
	out := make([]reflect.Type, m.NumOut())
	for i := range out {
		out[i] = m.Out(i)
	}
	return reflect.FuncOf(in, out, m.IsVariadic())
}

// typeString spells a type in Go, naming packages as the session imported
// them (importing a package the session lacks under its own name).
func (s *session) typeString(t reflect.Type) (string, bool) {
	if t.Name() != "" {
		if t.PkgPath() == "" {
			return t.Name(), true
		}
		name, ok := s.importName(t.PkgPath())
		return name + "." + t.Name(), ok
	}
	elem := func(prefix string) (string, bool) {
		e, ok := s.typeString(t.Elem())
		return prefix + e, ok
	}
	switch t.Kind() {
	case reflect.Slice:
		return elem("[]")
	case reflect.Array:
		return elem("[" + strconv.Itoa(t.Len()) + "]")
	case reflect.Pointer:
		return elem("*")
	case reflect.Map:
		k, ok := s.typeString(t.Key())
		if !ok {
			return "", false
		}
		return elem("map[" + k + "]")
	case reflect.Interface:
		if t.NumMethod() == 0 {
			return "interface{}", true
		}
	}
	return "", false
}

// importName is the name a package is imported under in the session,
// importing it when no cell did.
func (s *session) importName(importPath string) (string, bool) {
	for n, p := range s.imports {
		if p == importPath {
			return n, true
		}
	}
	name := s.packageName(importPath)
	if name == "" || s.imports[name] != "" {
		return "", false
	}
	if _, err := s.interp.Eval("import " + name + " " + strconv.Quote(importPath)); err != nil {
		return "", false
	}
	s.imports[name] = importPath
	return name, path.Base(importPath) != ""
}
