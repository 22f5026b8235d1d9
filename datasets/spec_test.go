package datasets

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		spec, kind, dir string
		opts            map[string]string
	}{
		{"textures", "textures", "", map[string]string{}},
		{"domains:seed=3:domain=flat,pixel", "domains", "", map[string]string{"seed": "3", "domain": "flat,pixel"}},
		{"cifar10:/data/c10", "cifar10", "/data/c10", map[string]string{}},
		{"dtd:/d:split=4", "dtd", "/d", map[string]string{"split": "4"}},
		// Colons inside the directory and spaces in a domain name.
		{"officehome:C:/data/oh:domain=Real World:test=0.3", "officehome", "C:/data/oh", map[string]string{"domain": "Real World", "test": "0.3"}},
		// A path part with "=" is not an option unless its key is a word.
		{"folder:/x/a=b/c", "folder", "/x/a=b/c", map[string]string{}},
	} {
		kind, dir, opts, err := parseSpec(tc.spec)
		if err != nil || kind != tc.kind || dir != tc.dir || !maps.Equal(opts, tc.opts) {
			t.Errorf("%q: %q %q %v %v", tc.spec, kind, dir, opts, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"", "no kind"},
		{"imagenet:/x", `unknown kind "imagenet"`},
		{"cifar10", "needs a directory"},
		{"textures:/x", "not a key=value option"},
		{"textures:seed=-1", "seed=-1 is not an unsigned integer"},
		{"textures:train=x", "train=x is not a count"},
		{"textures:size=3", "unknown option size (want seed, train, test, domain)"},
		{"textures:domain=flat", "without domains"},
		{"domains:domain=oil", `unknown domain "oil"`},
		{"cifar10:/x:label=fine", "this kind takes none"},
		{"officehome:/x:domain=Art", "/x"},
		{"cifar100:/x:label=medium", "want fine or coarse"},
		{"dtd:/x:split=0", "split 0"},
		{"officehome:/x:test=half", "test=half is not a number"},
		{"folder:/x:domain=Art", "unknown option domain (want test, seed)"},
		{"dtd:/x:split=1:split=2", "sets split twice"},
		{"folder:/nonexistent/dir", "/nonexistent/dir"},
	} {
		_, err := Open(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q): %v, want an error mentioning %q", tc.spec, err, tc.want)
		}
	}
}

// TestOpen opens every kind from fixtures in the real layouts.
func TestOpen(t *testing.T) {
	root := t.TempDir()
	writeCIFAR10(t, filepath.Join(root, "c10"), 2)
	writeDTD(t, filepath.Join(root, "dtd"))
	writeOfficeHome(t, filepath.Join(root, "oh"))
	for _, tc := range []struct {
		spec        string
		train, test int
	}{
		{"textures:train=2:test=1", 20, 10},
		{"domains:train=1:test=1:domain=photo", 10, 10},
		{"cifar10:" + filepath.Join(root, "c10"), 10, 2},
		{"dtd:" + filepath.Join(root, "dtd") + ":split=1", 3, 6},
		{"officehome:" + filepath.Join(root, "oh") + ":domain=Art,Real World", 24, 6},
		{"folder:" + filepath.Join(root, "dtd", "dtd", "images") + ":test=0.25:seed=3", 9, 3},
	} {
		sp, err := Open(tc.spec)
		if err != nil {
			t.Errorf("Open(%q): %v", tc.spec, err)
			continue
		}
		if sp.Train.Len() != tc.train || sp.Test.Len() != tc.test {
			t.Errorf("Open(%q): train %d test %d, want %d and %d", tc.spec, sp.Train.Len(), sp.Test.Len(), tc.train, tc.test)
		}
	}
}

func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"textures", "dtd:/d:split=3", "officehome:C:/a:domain=Real World", "x::=:a=", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		// parseRequest checks everything Open checks before reading files.
		r, err := parseRequest(spec)
		if err != nil {
			return
		}
		if _, ok := kindOptions[r.kind]; !ok || strings.Contains(r.kind, ":") {
			t.Errorf("%q: kind %q", spec, r.kind)
		}
		if (r.dir == "") != slices.Contains(bundledKinds, r.kind) {
			t.Errorf("%q: kind %q with directory %q", spec, r.kind, r.dir)
		}
	})
}
