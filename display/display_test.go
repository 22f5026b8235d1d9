package display

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"

	"gonum.org/v1/plot"

	"github.com/srmlab/srmlab/train"
)

// recorder stands in for a kernel.
type recorder struct {
	shown []Data
	kinds []bool // update or not
}

func (r *recorder) publish(d Data, update bool) error {
	r.shown = append(r.shown, d)
	r.kinds = append(r.kinds, update)
	return nil
}

func withRecorder(t *testing.T) *recorder {
	r := &recorder{}
	SetPublisher(r.publish)
	t.Cleanup(func() { SetPublisher(nil) })
	return r
}

func TestBundles(t *testing.T) {
	for _, c := range []struct {
		d          Data
		mime, want string
	}{
		{HTML("<b>x</b>"), MIMETypeHTML, "<b>x</b>"},
		{Markdown("*x*"), MIMETypeMarkdown, "*x*"},
		{Latex("x^2"), MIMETypeLatex, "$x^2$"},
		{Math("$x^2$"), MIMETypeLatex, "$$x^2$$"},
		{SVG("<svg/>"), MIMETypeSVG, "<svg/>"},
		{Text("plain"), MIMETypeText, "plain"},
		{Any(MIMETypeHTML, "<i>y</i>"), MIMETypeHTML, "<i>y</i>"},
	} {
		if got := c.d.Data[c.mime]; got != c.want {
			t.Errorf("%s content %v, want %q", c.mime, got, c.want)
		}
		if _, ok := c.d.Data[MIMETypeText]; !ok {
			t.Errorf("%s bundle lacks text/plain: %v", c.mime, c.d.Data)
		}
	}
	if got := Latex("x^2").Data[MIMETypeText]; got != "x^2" {
		t.Errorf("Latex text form %v, want the source", got)
	}
}

func decodePNG(t *testing.T, d Data) image.Image {
	t.Helper()
	b, ok := d.Data[MIMETypePNG].([]byte)
	if !ok {
		t.Fatalf("no PNG in %v", d.Data[MIMETypeText])
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestImagesAndPlots(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 3, 2))
	src.Set(1, 1, color.RGBA{R: 200, A: 255})
	got := decodePNG(t, Image(src))
	if got.Bounds() != src.Bounds() || color.RGBAModel.Convert(got.At(1, 1)) != (color.RGBA{R: 200, A: 255}) {
		t.Errorf("Image did not round-trip: %v", got.Bounds())
	}
	if d, ok := Render(src); !ok || d.Data[MIMETypePNG] == nil {
		t.Error("an image.Image does not render as PNG")
	}
	p := plot.New()
	p.Title.Text = "t"
	d, ok := Render(p)
	if !ok {
		t.Fatal("a *plot.Plot does not render")
	}
	if b := decodePNG(t, d).Bounds(); b.Dx() != int(PlotWidth.Points()*plotDPI/72+0.5) {
		t.Errorf("plot image %v wide, want %v at %d dpi", b.Dx(), PlotWidth, plotDPI)
	}
	if _, ok := Render(42); ok {
		t.Error("an int claims to render richly")
	}
	if d := Auto([]byte("\x89PNG\r\n\x1a\n....")); d.Data[MIMETypePNG] == nil {
		t.Errorf("Auto did not sniff PNG bytes: %v", d.Data)
	}
}

// htmlValue renders itself through gophernotes' interface.
type htmlValue struct{}

func (htmlValue) HTML() string { return "<p>v</p>" }

func TestRenderInterfaces(t *testing.T) {
	d, ok := Render(htmlValue{})
	if !ok || d.Data[MIMETypeHTML] != "<p>v</p>" || d.Data[MIMETypeText] == nil {
		t.Errorf("HTMLer rendered as %v, %v", d.Data, ok)
	}
}

func TestDisplayAndHandle(t *testing.T) {
	if err := Display(Text("x")); err != ErrNoKernel {
		t.Errorf("Display outside a kernel: %v, want ErrNoKernel", err)
	}
	r := withRecorder(t)
	h := NewHandle()
	for _, s := range []string{"1", "2", "3"} {
		if err := h.Show(Text(s)); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.shown) != 3 || r.kinds[0] || !r.kinds[1] || !r.kinds[2] {
		t.Fatalf("handle published updates %v, want a display then two updates", r.kinds)
	}
	for _, d := range r.shown {
		if d.Transient["display_id"] != h.ID {
			t.Errorf("display_id %v, want %s", d.Transient["display_id"], h.ID)
		}
	}
	if NewHandle().ID == h.ID {
		t.Error("two handles share an ID")
	}
}

func TestTrainingView(t *testing.T) {
	r := withRecorder(t)
	v := NewTrainingView()
	v.ProgressEvery, v.CurvesEvery = 0, 0
	const epochs, batches = 2, 3
	for e := 1; e <= epochs; e++ {
		for b := 1; b <= batches; b++ {
			v.OnBatch(train.Progress{Epoch: e, Epochs: epochs, Batch: b, Batches: batches, Loss: 2 / float64(e*b), MeanLoss: 1, Top1: 50})
		}
		v.OnEpoch(train.Row{Epoch: e, TrainLoss: 1 / float64(e), TestLoss: 1.2 / float64(e), TrainTop1: 40, TestTop1: 35})
	}
	ids := map[any]int{}
	for i, d := range r.shown {
		ids[d.Transient["display_id"]]++
		if i > 1 && !r.kinds[i] {
			t.Errorf("output %d is a new display, want an update", i)
		}
	}
	if len(ids) != 2 {
		t.Errorf("the view used %d output areas, want 2 (progress and curves)", len(ids))
	}
	last := r.shown[len(r.shown)-1]
	decodePNG(t, last)
	var progress string
	for _, d := range r.shown {
		if s, ok := d.Data[MIMETypeText].(string); ok && strings.HasPrefix(s, "epoch ") {
			progress = s
		}
	}
	if !strings.Contains(progress, "epoch 2/2  batch 3/3") {
		t.Errorf("last progress line %q", progress)
	}
	if len(v.Rows()) != epochs {
		t.Errorf("%d rows kept, want %d", len(v.Rows()), epochs)
	}
}
