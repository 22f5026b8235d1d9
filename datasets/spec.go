package datasets

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Specs lists the forms Open accepts, for help texts and errors.
const Specs = `textures[:seed=S][:train=N][:test=N]
domains[:seed=S][:train=N][:test=N][:domain=D,...]
cifar10:DIR
cifar100:DIR[:label=fine|coarse]
mnist:DIR                               (IDX files, raw or .gz)
dtd:DIR[:split=K]                       (K in 1..10, default 1)
officehome:DIR[:domain=D,...][:test=F][:seed=S]   (F default 0.2)
folder:DIR[:test=F][:seed=S]            (DIR/train + DIR/val as in (Stylized-)ImageNet,
                                         or one class tree split by F)`

// Open reads the data set a spec names: a kind, then a directory for data
// on disk, then key=value options, all separated by colons (see Specs). A
// directory may itself contain colons; only trailing key=value parts are
// options. Domain names may contain spaces ("officehome:/d:domain=Real
// World").
func Open(spec string) (*Splits, error) {
	r, err := parseRequest(spec)
	if err != nil {
		return nil, err
	}
	switch r.kind {
	case "textures":
		return Textures(r.bundled)
	case "domains":
		return Glyphs(r.bundled)
	case "cifar10":
		return CIFAR10(r.dir)
	case "cifar100":
		return CIFAR100(r.dir, r.label)
	case "mnist":
		return MNIST(r.dir)
	case "dtd":
		return DTD(r.dir, r.split)
	case "officehome":
		return OfficeHome(r.dir, r.bundled.Domains, r.testFrac, r.bundled.Seed)
	default: // folder
		return FolderSplits(r.dir, r.testFrac, r.bundled.Seed)
	}
}

// request is a checked spec: everything Open needs to know before it
// touches the disk.
type request struct {
	kind, dir string
	bundled   BundledConfig // also carries seed and domains for officehome and folder
	label     CIFAR100Label
	split     int
	testFrac  float64
}

// kindOptions lists each kind's options.
var kindOptions = map[string][]string{
	"textures":   {"seed", "train", "test", "domain"},
	"domains":    {"seed", "train", "test", "domain"},
	"cifar10":    {},
	"cifar100":   {"label"},
	"mnist":      {},
	"dtd":        {"split"},
	"officehome": {"domain", "test", "seed"},
	"folder":     {"test", "seed"},
}

func parseRequest(spec string) (request, error) {
	kind, dir, kv, err := parseSpec(spec)
	if err != nil {
		return request{}, err
	}
	allowed, ok := kindOptions[kind]
	if !ok {
		return request{}, fmt.Errorf("datasets: spec %q: unknown kind %q; want one of:\n%s", spec, kind, Specs)
	}
	o := options{spec: spec, kv: kv}
	if err := o.allow(allowed...); err != nil {
		return request{}, err
	}
	r := request{kind: kind, dir: dir, split: o.int("split", 1, &err)}
	if kind == "textures" || kind == "domains" {
		r.bundled.TrainPerClass, r.bundled.TestPerClass = o.int("train", 0, &err), o.int("test", 0, &err)
	} else {
		r.testFrac = o.float("test", 0.2, &err)
	}
	r.bundled.Seed, r.bundled.Domains = o.uint("seed", 0, &err), o.list("domain")
	switch kv["label"] {
	case "", "fine":
	case "coarse":
		r.label = Coarse
	default:
		return request{}, fmt.Errorf("datasets: spec %q: label=%s, want fine or coarse", spec, kv["label"])
	}
	return r, err
}

// bundledKinds are the kinds generated in process, which take no
// directory.
var bundledKinds = []string{"textures", "domains"}

// parseSpec splits kind:DIR:key=value:... The directory is whatever lies
// between the kind and the trailing key=value parts, so it may contain
// colons.
func parseSpec(spec string) (kind, dir string, opts map[string]string, err error) {
	parts := strings.Split(spec, ":")
	kind = strings.TrimSpace(parts[0])
	if kind == "" {
		return "", "", nil, fmt.Errorf("datasets: spec %q has no kind; want one of:\n%s", spec, Specs)
	}
	opts = map[string]string{}
	end := len(parts)
	for end > 1 && isOption(parts[end-1]) {
		k, v, _ := strings.Cut(parts[end-1], "=")
		if _, dup := opts[k]; dup {
			return "", "", nil, fmt.Errorf("datasets: spec %q sets %s twice", spec, k)
		}
		opts[k] = v
		end--
	}
	dir = strings.Join(parts[1:end], ":")
	if bundled := slices.Contains(bundledKinds, kind); bundled && dir != "" {
		return "", "", nil, fmt.Errorf("datasets: spec %q: %q is not a key=value option", spec, dir)
	} else if !bundled && dir == "" {
		return "", "", nil, fmt.Errorf("datasets: spec %q: %s needs a directory (%s:DIR)", spec, kind, kind)
	}
	return kind, dir, opts, nil
}

// isOption reports whether a spec part is key=value with a lower-case key;
// a path component like "a=b/c" is not one, since keys are single words.
func isOption(part string) bool {
	k, _, ok := strings.Cut(part, "=")
	if !ok || k == "" {
		return false
	}
	for _, r := range k {
		if r < 'a' || r > 'z' {
			return false
		}
	}
	return true
}

// options reads a spec's key=value options, recording the first error in
// the caller's error so a case can read several before checking once.
type options struct {
	spec string
	kv   map[string]string
}

func (o options) allow(keys ...string) error {
	for _, k := range slices.Sorted(maps.Keys(o.kv)) {
		if !slices.Contains(keys, k) {
			if len(keys) == 0 {
				return fmt.Errorf("datasets: spec %q: unknown option %s (this kind takes none)", o.spec, k)
			}
			return fmt.Errorf("datasets: spec %q: unknown option %s (want %s)", o.spec, k, strings.Join(keys, ", "))
		}
	}
	return nil
}

func (o options) int(key string, def int, err *error) int {
	return option(o, key, def, err, "a count", func(v string) (int, error) {
		n, e := strconv.Atoi(v)
		if e == nil && n < 0 {
			e = strconv.ErrRange
		}
		return n, e
	})
}

func (o options) uint(key string, def uint64, err *error) uint64 {
	return option(o, key, def, err, "an unsigned integer", func(v string) (uint64, error) { return strconv.ParseUint(v, 10, 64) })
}

func (o options) float(key string, def float64, err *error) float64 {
	return option(o, key, def, err, "a number", func(v string) (float64, error) { return strconv.ParseFloat(v, 64) })
}

// option parses one option with parse, or gives def when it is absent or
// an earlier option already failed.
func option[T any](o options, key string, def T, err *error, what string, parse func(string) (T, error)) T {
	v, ok := o.kv[key]
	if !ok || *err != nil {
		return def
	}
	x, e := parse(v)
	if e != nil {
		*err = fmt.Errorf("datasets: spec %q: %s=%s is not %s", o.spec, key, v, what)
		return def
	}
	return x
}

// list splits a comma-separated option; nil when it is absent.
func (o options) list(key string) []string {
	v, ok := o.kv[key]
	if !ok {
		return nil
	}
	return strings.Split(v, ",")
}
