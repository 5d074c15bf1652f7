package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"text/template"
	"unicode"
	"unicode/utf8"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Every --format of berth goes through this file, with Docker's meanings.
//
// A list command (ps, images, history, stats, events, volume ls, network
// ls) takes:
//
//   - "" or "table": its default;
//   - "table TEMPLATE": TEMPLATE for each item, in aligned columns under
//     titles named after the fields it uses;
//   - "json": each item as one JSON object on its own line;
//   - anything else: a Go template for each item, one line each.
//
// A list's templates may spell tab and newline as \t and \n, as typed in
// a shell.
//
// An inspect command takes "" (the items as an indented JSON array),
// "json" (the array on one line) or a template applied to each item's JSON
// form, so that templates use the JSON names: {{.State.Pid}}, {{.Id}}.
//
// Templates have Docker's functions: json, join, split, lower, upper,
// title, pad and truncate. A template that does not parse or run is one
// line, "--format: template: …", and exit status 2.

// listFormat is a list command's parsed --format.
type listFormat struct {
	tmpl  *template.Template
	table bool
	title string // a table's heading
}

// parseListFormat parses spec; def is the command's default, titles the
// column titles of fields whose title is not their name in upper case.
func parseListFormat(spec, def string, titles map[string]string) (*listFormat, error) {
	if s := strings.TrimSpace(spec); s == "" || s == "table" {
		spec = def
	} else if s == "json" {
		spec = "{{json .}}"
	}
	f := &listFormat{}
	spec, f.table = strings.CutPrefix(spec, "table")
	spec = escapes.Replace(strings.Trim(spec, " "))
	t, err := parseTemplate(spec)
	if err != nil {
		return nil, err
	}
	f.tmpl = t
	if f.table {
		f.title = tableTitles(spec, titles)
	}
	return f, nil
}

// escapes are what Docker's --format replaces: \t and \n typed in a shell.
var escapes = strings.NewReplacer(`\t`, "\t", `\n`, "\n")

// printList prints rows as f says: a table's in aligned columns under
// their titles (the titles even when there are no rows).
func printList[T any](w io.Writer, f *listFormat, rows []T) error {
	var tw *tabwriter.Writer
	if f.table {
		tw = tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
		w = tw
		f.printTitle(w)
	}
	for _, r := range rows {
		if err := f.printItem(w, r); err != nil {
			return err
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// printTitle prints a table's heading line; other formats have none.
func (f *listFormat) printTitle(w io.Writer) {
	if f.table {
		fmt.Fprintln(w, f.title)
	}
}

// printItem prints one item on its own line (or lines). Items printed one
// by one, as events prints them when they happen, are not aligned.
func (f *listFormat) printItem(w io.Writer, v any) error {
	var b bytes.Buffer
	if err := f.tmpl.Execute(&b, v); err != nil {
		return templateError(err)
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// joinLabels is a row's Labels, as Docker's: k=v,k2=v2 in key order.
func joinLabels(labels map[string]string) string {
	s := make([]string, 0, len(labels))
	for k, v := range labels {
		s = append(s, k+"="+v)
	}
	slices.Sort(s)
	return strings.Join(s, ",")
}

// fieldName is a field a template action uses: .Names in {{json .Names}}.
var fieldName = regexp.MustCompile(`\.([A-Za-z_][A-Za-z0-9_]*)`)

// tableTitles turns each {{…}} of a table template into a column title:
// the last field it names, in upper case unless titles names it.
func tableTitles(tmpl string, titles map[string]string) string {
	var out strings.Builder
	for {
		i := strings.Index(tmpl, "{{")
		j := strings.Index(tmpl[max(i, 0):], "}}")
		if i < 0 || j < 0 {
			out.WriteString(tmpl)
			return out.String()
		}
		action := strings.TrimSpace(tmpl[i+2 : i+j])
		title := strings.ToUpper(action)
		if m := fieldName.FindAllStringSubmatch(action, -1); m != nil {
			field := m[len(m)-1][1]
			if title = titles[field]; title == "" {
				title = strings.ToUpper(field)
			}
		}
		out.WriteString(tmpl[:i] + title)
		tmpl = tmpl[i+j+2:]
	}
}

// inspectFormat is an inspect command's parsed --format.
type inspectFormat struct {
	spec string
	tmpl *template.Template // nil for "" and "json"
}

func parseInspectFormat(spec string) (*inspectFormat, error) {
	f := &inspectFormat{spec: spec}
	if spec == "" || spec == "json" {
		return f, nil
	}
	t, err := parseTemplate(spec)
	if err != nil {
		return nil, err
	}
	f.tmpl = t
	return f, nil
}

// printInspect prints items as f says.
func printInspect[T any](w io.Writer, f *inspectFormat, items []T) error {
	if items == nil {
		items = []T{}
	}
	switch f.spec {
	case "":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "    ")
		return enc.Encode(items)
	case "json":
		return json.NewEncoder(w).Encode(items)
	}
	for _, it := range items {
		var v any
		data, err := json.Marshal(it)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, &v); err != nil {
			return err
		}
		var b bytes.Buffer
		if err := f.tmpl.Execute(&b, v); err != nil {
			return templateError(err)
		}
		b.WriteByte('\n')
		if _, err := w.Write(b.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// parseTemplate parses a --format template with Docker's functions.
func parseTemplate(text string) (*template.Template, error) {
	t, err := template.New("format").Funcs(templateFuncs).Parse(text)
	if err != nil {
		return nil, templateError(err)
	}
	return t, nil
}

func templateError(err error) error {
	return fmt.Errorf("--format: %v: %w", err, errdefs.ErrInvalidArgument)
}

// templateFuncs are Docker's template functions.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		err := enc.Encode(v)
		return strings.TrimSpace(b.String()), err
	},
	"join":  strings.Join,
	"split": strings.Split,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"title": func(s string) string {
		words := strings.Split(s, " ")
		for i, w := range words {
			if r, n := utf8.DecodeRuneInString(w); n > 0 {
				words[i] = string(unicode.ToTitle(r)) + w[n:]
			}
		}
		return strings.Join(words, " ")
	},
	"pad": func(s string, prefix, suffix int) string {
		if s == "" {
			return s
		}
		return strings.Repeat(" ", prefix) + s + strings.Repeat(" ", suffix)
	},
	"truncate": func(s string, n int) string {
		if len(s) <= n {
			return s
		}
		return s[:n]
	},
}
