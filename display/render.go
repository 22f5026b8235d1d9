package display

import (
	"bytes"
	"image"
	"image/png"
	"maps"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Default size of a plot shown without one: wide enough for a legend, small
// enough that two fit on a laptop screen.
const (
	PlotWidth  = 6 * vg.Inch
	PlotHeight = 3.5 * vg.Inch
)

// plotDPI keeps plots sharp on high-density screens; the metadata scales
// the displayed size back.
const plotDPI = 144

// Render converts a value that knows how to show itself into a bundle:
// Data, the rendering interfaces (merged when a value implements several),
// an image.Image or a *plot.Plot. The kernel calls it on a cell's last
// value; ok is false for values that only have a text form.
func Render(v any) (d Data, ok bool) {
	switch x := v.(type) {
	case nil:
		return Data{}, false
	case Data:
		return x, true
	case *Data:
		if x == nil {
			return Data{}, false
		}
		return *x, true
	case image.Image:
		return Image(x), true
	case *plot.Plot:
		if x == nil {
			return Data{}, false
		}
		return Plot(x, PlotWidth, PlotHeight), true
	}
	d.Data = MIMEMap{}
	if r, is := v.(Renderer); is {
		x := r.Render()
		d.Data, d.Metadata, d.Transient = x.Data, x.Metadata, x.Transient
		ok = true
	}
	if r, is := v.(SimpleRenderer); is {
		d.Data = merge(d.Data, r.SimpleRender())
		ok = true
	}
	set := func(mime string, content any) {
		if d.Data == nil {
			d.Data = MIMEMap{}
		}
		d.Data[mime] = content
		ok = true
	}
	if r, is := v.(HTMLer); is {
		set(MIMETypeHTML, r.HTML())
	}
	if r, is := v.(JavaScripter); is {
		set(MIMETypeJavaScript, r.JavaScript())
	}
	if r, is := v.(JPEGer); is {
		set(MIMETypeJPEG, r.JPEG())
	}
	if r, is := v.(JSONer); is {
		set(MIMETypeJSON, r.JSON())
	}
	if r, is := v.(Latexer); is {
		set(MIMETypeLatex, r.Latex())
	}
	if r, is := v.(Markdowner); is {
		set(MIMETypeMarkdown, r.Markdown())
	}
	if r, is := v.(PNGer); is {
		set(MIMETypePNG, r.PNG())
	}
	if r, is := v.(PDFer); is {
		set(MIMETypePDF, r.PDF())
	}
	if r, is := v.(SVGer); is {
		set(MIMETypeSVG, r.SVG())
	}
	if !ok {
		return Data{}, false
	}
	if _, has := d.Data[MIMETypeText]; !has {
		d.Data[MIMETypeText] = typeText(v)
	}
	return d, true
}

// typeText is the plain-text stand-in for rich output: printing a value
// that renders as an image would flood a terminal with its pixels.
func typeText(v any) string {
	if s, ok := v.(interface{ String() string }); ok {
		return s.String()
	}
	return "<rich output>"
}

// merge copies rather than writes into a, since a may be a map the caller
// keeps using.
func merge(a, b MIMEMap) MIMEMap {
	out := make(MIMEMap, len(a)+len(b))
	maps.Copy(out, a)
	maps.Copy(out, b)
	return out
}

// Image shows an image as PNG, lossless so that feature maps and gate
// values keep their exact shades.
func Image(img image.Image) Data {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return errorData(err)
	}
	b := img.Bounds()
	return Data{
		Data: MIMEMap{MIMETypePNG: buf.Bytes(), MIMETypeText: "<image " + strconv.Itoa(b.Dx()) + "x" + strconv.Itoa(b.Dy()) + ">"},
		Metadata: MIMEMap{MIMETypePNG: MIMEMap{
			"width": b.Dx(), "height": b.Dy(),
		}},
	}
}

// Plot renders a gonum plot as a PNG of the given size.
func Plot(p *plot.Plot, width, height vg.Length) Data {
	c := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(plotDPI))}
	p.Draw(draw.New(c.Canvas))
	return pngData(c, width, height, "<plot>")
}

// pngData encodes a canvas drawn at plotDPI; the metadata gives its size at
// the screen's 96 dots per inch, so that front ends scale it down sharply.
func pngData(c vgimg.PngCanvas, width, height vg.Length, text string) Data {
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return errorData(err)
	}
	w, h := int(width.Points()*96/72), int(height.Points()*96/72)
	return Data{
		Data:     MIMEMap{MIMETypePNG: buf.Bytes(), MIMETypeText: text},
		Metadata: MIMEMap{MIMETypePNG: MIMEMap{"width": w, "height": h}},
	}
}
