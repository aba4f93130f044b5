package scstconf

import (
	"fmt"
	"strings"
)

// File is a parsed scst.conf.
type File struct {
	// Name is the file name used in errors, warnings and notes.
	Name string
	// Entries are the top-level entries in file order.
	Entries []*Entry
	// Warnings are places where the file means something other than it
	// probably says (see the package documentation).
	Warnings []Warning
}

// Entry is one line of scst.conf: a name, its arguments, and the section
// it opens, if any.
//
//	LUN 0 disk1 {        Name "LUN", Args ["0" "disk1"], Line 7
//		read_only 1      Section[0]
//	}                    EndLine 9
type Entry struct {
	// Name is the first word: a keyword such as "TARGET" or an attribute
	// name such as "filename".
	Name string
	// Args are the other words, unquoted and unescaped.
	Args []string
	// Section holds the entries between the braces; HasSection tells an
	// empty section ("TARGET t {}") from none.
	Section    []*Entry
	HasSection bool
	// Line is the line of the entry's first word; EndLine is the line of
	// its closing brace, or Line when it has no section.
	Line    int
	EndLine int
}

// Value returns the arguments joined by blanks: an attribute's value as
// scstadmin hands it to SCST.
func (e *Entry) Value() string { return strings.Join(e.Args, " ") }

// Error is a syntax error at a place in the file.
type Error struct {
	File   string
	Line   int
	Column int
	Msg    string
}

func (e *Error) Error() string {
	if e.Column > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Warning is something the file says that it probably does not mean.
type Warning struct {
	File string
	Line int
	Msg  string
}

func (w Warning) String() string { return fmt.Sprintf("%s:%d: warning: %s", w.File, w.Line, w.Msg) }

// maxDepth bounds section nesting; scst.conf itself nests four deep
// (TARGET_DRIVER, TARGET, GROUP, LUN).
const maxDepth = 16

// Parse reads src, the contents of the scst.conf named file, as scstadmin
// reads it. It returns the first syntax error as an *Error.
func Parse(src []byte, file string) (*File, error) {
	toks, warnings, err := lex(src, file)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, file: file}
	entries, _, err := p.section(nil, 0)
	if err != nil {
		return nil, err
	}
	return &File{Name: file, Entries: entries, Warnings: warnings}, nil
}

type parser struct {
	toks []token
	pos  int
	file string
}

func (p *parser) errorf(t token, format string, args ...any) error {
	return &Error{File: p.file, Line: t.line, Column: t.col, Msg: fmt.Sprintf(format, args...)}
}

// section reads entries up to the "}" that closes open (or to the end of
// the input when open is nil) and returns them with the closing line.
func (p *parser) section(open *Entry, depth int) ([]*Entry, int, error) {
	var entries []*Entry
	var cur *Entry
	end := func() {
		if cur != nil {
			cur.EndLine = cur.Line
			entries = append(entries, cur)
			cur = nil
		}
	}
	for {
		t := p.toks[p.pos]
		p.pos++
		switch t.kind {
		case tokWord:
			if cur == nil {
				if strings.HasPrefix(t.text, "[") {
					return nil, 0, p.errorf(t, "%q looks like the pre-2.0 scst.conf format ([HANDLER ...] sections), which is not read here: convert it on the SCST host first with `scstadmin -config OLD` and `scstadmin -write_config NEW`", t.text)
				}
				cur = &Entry{Name: t.text, Line: t.line}
			} else {
				cur.Args = append(cur.Args, t.text)
			}
		case tokNewline:
			end()
		case tokOpen:
			if cur == nil {
				return nil, 0, p.errorf(t, "'{' must end the line that names its section (as in \"DEVICE disk1 {\"); scstadmin drops a section whose '{' stands alone")
			}
			if depth+1 > maxDepth {
				return nil, 0, p.errorf(t, "sections nested deeper than %d", maxDepth)
			}
			e := cur
			cur = nil
			children, closeLine, err := p.section(e, depth+1)
			if err != nil {
				return nil, 0, err
			}
			e.Section, e.HasSection, e.EndLine = children, true, closeLine
			entries = append(entries, e)
		case tokClose:
			end()
			if open == nil {
				return nil, 0, p.errorf(t, "'}' closes no section")
			}
			return entries, t.line, nil
		case tokEOF:
			end()
			if open != nil {
				return nil, 0, &Error{File: p.file, Line: open.Line, Msg: fmt.Sprintf("the section %s is not closed: add a line with '}'", describe(open))}
			}
			return entries, t.line, nil
		}
	}
}

// describe names an entry for messages: its name and, for sections, its
// first argument ("TARGET iqn..."), never an attribute's value.
func describe(e *Entry) string {
	if len(e.Args) > 0 && isKeyword(e.Name) {
		return e.Name + " " + printable(e.Args[0])
	}
	return printable(e.Name)
}

// isKeyword reports whether name is one of scst.conf's section keywords
// (upper case), as opposed to an attribute name.
func isKeyword(name string) bool {
	switch name {
	case "HANDLER", "DEVICE", "TARGET_DRIVER", "TARGET", "LUN", "GROUP", "INITIATOR",
		"DEVICE_GROUP", "TARGET_GROUP", "HW_TARGET":
		return true
	}
	return false
}
