package kernel

import "testing"

func TestSplitCell(t *testing.T) {
	src := "import \"fmt\"\n\nx := 1 // one\nfunc f() int { return x }\ntype T struct{}\nfor i := 0; i < 2; i++ { x += i }\nouter:\n\tfor {\n\t\tbreak outer\n\t}\nfunc() { x++ }()\nfunc (T) M() {}\nf()"
	chunks, depth, err := splitCell(src)
	if err != nil || depth != 0 {
		t.Fatalf("split: %v, depth %d", err, depth)
	}
	var got []string
	for _, c := range chunks {
		for _, it := range c.items {
			kind := []string{"import", "decl", "stmt"}[c.kind]
			if it.block {
				kind += "+block"
			}
			got = append(got, kind+": "+src[it.start:it.end])
		}
	}
	want := []string{
		`import: import "fmt"`,
		"stmt: x := 1",
		"decl: func f() int { return x }",
		"decl: type T struct{}",
		"stmt+block: for i := 0; i < 2; i++ { x += i }",
		"stmt+block: outer:\n\tfor {\n\t\tbreak outer\n\t}",
		"stmt: func() { x++ }()",
		"decl: func (T) M() {}",
		"stmt: f()",
	}
	if len(got) != len(want) {
		t.Fatalf("items\n%q\nwant\n%q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("item %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestCompleteness(t *testing.T) {
	for code, want := range map[string]string{
		"x := 1":                       "complete",
		"for i := 0; i < 3; i++ {":     "incomplete",
		"s := `raw":                    "incomplete",
		"y := 1 +":                     "incomplete",
		"f(1,":                         "incomplete",
		"x++":                          "complete",
		"fmt.Println(\"a\")\n}":        "complete",
		"z := 'ab":                     "invalid",
		"func f() {\n\treturn\n}\nf()": "complete",
	} {
		if got, _ := completeness(code); got != want {
			t.Errorf("completeness(%q) = %s, want %s", code, got, want)
		}
	}
}
