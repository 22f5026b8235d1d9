package display

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// The MIME types that Jupyter front ends render; the names follow
// gophernotes.
const (
	MIMETypeHTML       = "text/html"
	MIMETypeJavaScript = "application/javascript"
	MIMETypeJPEG       = "image/jpeg"
	MIMETypeJSON       = "application/json"
	MIMETypeLatex      = "text/latex"
	MIMETypeMarkdown   = "text/markdown"
	MIMETypePNG        = "image/png"
	MIMETypePDF        = "application/pdf"
	MIMETypeSVG        = "image/svg+xml"
	MIMETypeText       = "text/plain"
)

// MIMEMap maps MIME types to content. It is an alias, as in gophernotes, so
// that a library can return one without importing this package.
type MIMEMap = map[string]any

// Data is a Jupyter display bundle: the same content in several MIME types
// (the front end picks the richest it can show), with metadata such as an
// image's size, and transient fields such as the display_id that
// update_display_data targets.
type Data struct {
	// Data maps MIME types to the content in that type.
	Data MIMEMap
	// Metadata maps MIME types to facts about the content (an image's
	// width and height).
	Metadata MIMEMap
	// Transient holds what is not saved with the notebook: display_id.
	Transient MIMEMap
}

// Renderer is implemented by values that know their full display bundle.
// Like the other rendering interfaces it is an alias, so that implementing
// it needs no import of this package.
type Renderer = interface {
	Render() Data
}

// SimpleRenderer is implemented by values that know their content but need
// no metadata.
type SimpleRenderer = interface {
	SimpleRender() MIMEMap
}

// HTMLer is implemented by values that render as HTML.
type HTMLer = interface {
	HTML() string
}

// JavaScripter is implemented by values that render as JavaScript.
type JavaScripter = interface {
	JavaScript() string
}

// JPEGer is implemented by values that render as a JPEG image.
type JPEGer = interface {
	JPEG() []byte
}

// JSONer is implemented by values that render as a JSON tree.
type JSONer = interface {
	JSON() map[string]any
}

// Latexer is implemented by values that render as LaTeX.
type Latexer = interface {
	Latex() string
}

// Markdowner is implemented by values that render as Markdown.
type Markdowner = interface {
	Markdown() string
}

// PNGer is implemented by values that render as a PNG image.
type PNGer = interface {
	PNG() []byte
}

// PDFer is implemented by values that render as a PDF document.
type PDFer = interface {
	PDF() []byte
}

// SVGer is implemented by values that render as an SVG image.
type SVGer = interface {
	SVG() string
}

// MakeData wraps content of one MIME type, adding the text/plain version
// every bundle needs for front ends that show no rich output.
func MakeData(mimeType string, data any) Data {
	d := Data{Data: MIMEMap{mimeType: data}}
	if mimeType != MIMETypeText {
		d.Data[MIMETypeText] = fmt.Sprint(data)
	}
	return d
}

// MakeData3 is MakeData with the text/plain version given, for content
// whose default formatting would be unreadable (bytes, markup).
func MakeData3(mimeType, plaintext string, data any) Data {
	return Data{Data: MIMEMap{MIMETypeText: plaintext, mimeType: data}}
}

// MIME builds a bundle from its parts, for MIME types that have no helper.
func MIME(data, metadata MIMEMap) Data {
	return Data{Data: data, Metadata: metadata}
}

// HTML shows an HTML fragment.
func HTML(html string) Data { return MakeData(MIMETypeHTML, html) }

// JavaScript runs a script in front ends that allow it.
func JavaScript(javascript string) Data { return MakeData(MIMETypeJavaScript, javascript) }

// JPEG shows an encoded JPEG image.
func JPEG(jpeg []byte) Data { return MakeData(MIMETypeJPEG, jpeg) }

// JSON shows a collapsible JSON tree.
func JSON(json map[string]any) Data { return MakeData(MIMETypeJSON, json) }

// Latex shows an inline formula; the text version keeps the source.
func Latex(latex string) Data {
	return MakeData3(MIMETypeLatex, latex, "$"+strings.Trim(latex, "$")+"$")
}

// Math shows a display formula; the text version keeps the source.
func Math(latex string) Data {
	return MakeData3(MIMETypeLatex, latex, "$$"+strings.Trim(latex, "$")+"$$")
}

// Markdown shows Markdown text, rendered by the front end.
func Markdown(markdown string) Data { return MakeData(MIMETypeMarkdown, markdown) }

// PDF shows an embedded PDF document.
func PDF(pdf []byte) Data { return MakeData(MIMETypePDF, pdf) }

// PNG shows an encoded PNG image.
func PNG(png []byte) Data { return MakeData(MIMETypePNG, png) }

// SVG shows an SVG image.
func SVG(svg string) Data { return MakeData(MIMETypeSVG, svg) }

// Text shows plain text, preformatted: unlike a printed line it can be
// replaced in place through a Handle.
func Text(text string) Data { return Data{Data: MIMEMap{MIMETypeText: text}} }

// File shows a file's content as mimeType, or as the type its first bytes
// suggest when mimeType is empty. Like gophernotes' it panics when the file
// cannot be read, which a notebook reports as the cell's error.
func File(mimeType, path string) Data {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	return Any(mimeType, b)
}

// Auto shows any value as richly as it allows; see Any.
func Auto(data any) Data { return Any("", data) }

// Any shows data as mimeType: a value that renders itself (Data, the
// rendering interfaces, an image.Image, a *plot.Plot) is rendered; a string
// is taken as content of mimeType; bytes, readers and WriterTos are read,
// and their MIME type sniffed when mimeType is empty. Other values panic,
// since guessing would hide the mistake.
func Any(mimeType string, data any) Data {
	if d, ok := Render(data); ok {
		return d
	}
	var (
		s   string
		b   []byte
		err error
	)
	switch v := data.(type) {
	case string:
		s = v
	case []byte:
		b = v
	case io.Reader:
		b, err = io.ReadAll(v)
	case io.WriterTo:
		var buf bytes.Buffer
		_, err = v.WriteTo(&buf)
		b = buf.Bytes()
	default:
		panic(fmt.Errorf("display: cannot render a %T", data))
	}
	if err != nil {
		return errorData(err)
	}
	d := Data{Data: MIMEMap{}}
	if s != "" && mimeType != "" {
		d.Data[mimeType] = s
	}
	if len(b) > 0 {
		if mimeType == "" {
			mimeType = http.DetectContentType(b)
		}
		if mimeType != MIMETypeText && !strings.HasPrefix(mimeType, MIMETypeText+";") {
			d.Data[mimeType] = b
		}
	}
	if d.Data[MIMETypeText] == nil {
		if s == "" {
			s = fmt.Sprint(data)
		}
		d.Data[MIMETypeText] = s
	}
	return d
}

// errorData shows a rendering failure in place of the output, so that a
// broken image does not abort the rest of a cell.
func errorData(err error) Data {
	return Data{Data: MIMEMap{MIMETypeText: "display: " + err.Error()}}
}
