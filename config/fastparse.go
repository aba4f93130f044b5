package config

import (
	"math"
	"slices"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// parseFast parses src as hclsyntax.ParseConfig does, producing the very
// same syntax tree (types, values and ranges), for the plain subset of
// HCL that configurations are mostly written in: blocks with quoted or
// bare labels, attributes whose values are quoted strings without escapes
// or template sequences, whole numbers, true, false, null and lists of
// those, and line comments; ASCII outside comments, "\n" line ends. It
// returns nil as soon as src holds anything else (an expression, a
// function call, an escape, a block comment, a syntax error...): the
// caller then parses the file with hclsyntax, which also gives the
// diagnostics. So diagnostics never come from here.
//
// It exists because hclsyntax's lexer dominates the decoding of large
// configurations (a token slice grown one token at a time, a Token of
// ~100 bytes for every quote and brace): a 10,000-LUN file parses about
// ten times faster here. FuzzParseFast holds it to hclsyntax's output.
func parseFast(src []byte, filename string) *hcl.File {
	f, _ := parseFastItems(src, filename, false)
	return f
}

// parseFastItems is parseFast that, with items, leaves the plainest
// device and LUN blocks out of the tree: those of the bodies of top-level
// handler and target blocks with one label whose own body holds only
// attributes of the block's schema set to a string, a whole number, true
// or false (and the LUN's device). It returns where they are, by the body
// they were left out of (fastItems); every other block is in the tree.
// The decoder parses them again, one at a time, as it reaches them
// (decoder.blocks).
//
// A 10,000-LUN file is 20,000 such blocks: as hclsyntax's tree each is a
// Block, a Body, an Attributes map, an Attribute, a TemplateExpr and a
// LiteralValueExpr (~1.3 KB), here 12 bytes until decoded.
func parseFastItems(src []byte, filename string, items bool) (*hcl.File, map[*hclsyntax.Body]*fastItems) {
	p := &fastParser{lx: fastLexer{src: src, name: filename, line: 1}}
	if items && len(src) < math.MaxInt32 {
		p.items = map[*hclsyntax.Body]*fastItems{}
	}
	body := p.file()
	if body == nil {
		return nil, nil
	}
	return &hcl.File{Body: body, Bytes: src}, p.items
}

// fastItems are the blocks parseFastItems left out of one body.
type fastItems struct {
	src   []byte
	name  string
	kind  *fastItemKind
	marks []fastMark
}

// fastMark is where a block left out of the tree starts: the lexer's
// state at its type.
type fastMark struct {
	at, line, lineStart int32
}

// block parses the k-th block again into b, reusing b's attributes. It
// reports false if the block no longer parses as it did, which the same
// bytes never do; the caller says so rather than crash a reload.
func (f *fastItems) block(k int, b *fastBlock) bool {
	m := f.marks[k]
	p := &fastParser{lx: fastLexer{src: f.src, name: f.name, i: int(m.at), line: int(m.line), lineStart: int(m.lineStart)}}
	return p.item(b, p.lx.next(false), f.kind, true)
}

// markRange is the position of the k-th block's mark, for a diagnostic.
func (f *fastItems) markRange(k int) hcl.Range {
	m := f.marks[k]
	pos := hcl.Pos{Line: int(m.line), Column: int(m.at-m.lineStart) + 1, Byte: int(m.at)}
	return hcl.Range{Filename: f.name, Start: pos, End: pos}
}

// fastBlock is a device or LUN block that parseFastItems left out of the
// syntax tree, with what the decoder reads of it.
type fastBlock struct {
	label      string
	typeRange  hcl.Range
	labelRange hcl.Range
	attrs      []fastAttr
}

// defRange is the range hcl.Block.DefRange would have: the type and the
// label.
func (b *fastBlock) defRange() hcl.Range { return hcl.RangeBetween(b.typeRange, b.labelRange) }

// fastAttr is one attribute of a fastBlock; lit is its value as the
// attribute's expression.
type fastAttr struct {
	name      string
	nameRange hcl.Range
	lit       fastLit
}

// attribute returns the hcl.Attribute that Content would give for a,
// with a's literal as its expression.
func (a *fastAttr) attribute() hcl.Attribute {
	return hcl.Attribute{Name: a.name, Expr: &a.lit, Range: hcl.RangeBetween(a.nameRange, a.lit.rng), NameRange: a.nameRange}
}

// fastLit is the value of a fastAttr: a string, a number or a bool, with
// the range of its token (quotes included), as hclsyntax's TemplateExpr or
// LiteralValueExpr for it would have. A string is kept as text alone
// (isStr), as most values are strings that the decoder takes as they
// are (decoder.str): its cty.Value is made only when asked for.
type fastLit struct {
	val   cty.Value // a number or a bool
	text  string
	isStr bool
	rng   hcl.Range
}

// Value returns the literal's value.
func (e *fastLit) Value(*hcl.EvalContext) (cty.Value, hcl.Diagnostics) { return e.value(), nil }

// value returns the literal's value as a cty.Value.
func (e *fastLit) value() cty.Value {
	if e.isStr {
		// The text is ASCII (fastLexer): cty's NFC normalisation keeps it.
		return cty.StringVal(e.text)
	}
	return e.val
}

// Variables returns nil: a literal refers to nothing.
func (e *fastLit) Variables() []hcl.Traversal { return nil }

// Range returns the range of the literal's token.
func (e *fastLit) Range() hcl.Range { return e.rng }

// StartRange returns the range of the literal's token.
func (e *fastLit) StartRange() hcl.Range { return e.rng }

// fastItemKind says, for a top-level block type, which blocks of its
// body parseFastItems takes out of the tree (child) and the names of
// their attributes (deviceSchema's, lunSchema's, at most 32); required is
// the one they must set.
type fastItemKind struct {
	child    string
	names    []string
	required string
}

// fastItemKinds are the fastItemKind of handler and target blocks.
var fastItemKinds = map[string]*fastItemKind{
	"handler": {child: "device", names: schemaNames(deviceSchema)},
	"target":  {child: "lun", names: schemaNames(lunSchema), required: "device"},
}

func schemaNames(s *hcl.BodySchema) []string {
	names := make([]string, len(s.Attributes))
	for k, a := range s.Attributes {
		names[k] = a.Name
	}
	return names
}

// Kinds of the tokens of fastLexer.
const (
	fkBad = iota // anything outside the subset: the parse gives up
	fkIdent
	fkString
	fkNumber
	fkNewline // "\n", or a line comment with its "\n"
	fkOBrace
	fkCBrace
	fkOBrack
	fkCBrack
	fkComma
	fkEqual
	fkEOF
)

// fastToken is one token: its kind, its bytes' offsets and its range.
type fastToken struct {
	kind       int
	start, end int
	rng        hcl.Range
}

// fastLexer cuts src into fastTokens, counting lines and columns as
// hclsyntax does for ASCII text (a column is a byte).
type fastLexer struct {
	src       []byte
	name      string
	i         int // next byte to read
	line      int // line of src[i]
	lineStart int // offset of the first byte of line
}

func (l *fastLexer) pos(off int) hcl.Pos {
	return hcl.Pos{Line: l.line, Column: off - l.lineStart + 1, Byte: off}
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isIdentByte(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '-'
}

// next returns the next token; with skipNewlines, newlines and comments
// are passed over (inside brackets, as hclsyntax's peeker does).
func (l *fastLexer) next(skipNewlines bool) fastToken {
	for {
		src := l.src
		for l.i < len(src) && (src[l.i] == ' ' || src[l.i] == '\t') {
			l.i++
		}
		start := l.i
		if start == len(src) {
			p := l.pos(start)
			return fastToken{kind: fkEOF, start: start, end: start, rng: hcl.Range{Filename: l.name, Start: p, End: p}}
		}
		c := src[start]
		tok := func(kind, end int) fastToken {
			l.i = end
			return fastToken{kind: kind, start: start, end: end,
				rng: hcl.Range{Filename: l.name, Start: l.pos(start), End: l.pos(end)}}
		}
		switch {
		case c == '\n' || c == '#' || c == '/' && start+1 < len(src) && src[start+1] == '/':
			end, ascii := start, true
			for end < len(src) && src[end] != '\n' {
				if src[end] == '\r' {
					return fastToken{kind: fkBad}
				}
				ascii = ascii && src[end] < 0x80
				end++
			}
			if !ascii && !utf8.Valid(src[start:end]) {
				return fastToken{kind: fkBad}
			}
			if end == len(src) {
				// A comment that the file's end closes is no newline;
				// the end's column counts its characters.
				if !ascii {
					return fastToken{kind: fkBad}
				}
				l.i = end
				continue
			}
			end++
			if skipNewlines {
				l.i, l.line, l.lineStart = end, l.line+1, end
				continue
			}
			t := fastToken{kind: fkNewline, start: start, end: end,
				rng: hcl.Range{Filename: l.name, Start: l.pos(start), End: hcl.Pos{Line: l.line + 1, Column: 1, Byte: end}}}
			l.i, l.line, l.lineStart = end, l.line+1, end
			return t
		case isIdentStart(c):
			end := start + 1
			for end < len(src) && isIdentByte(src[end]) {
				end++
			}
			return tok(fkIdent, end)
		case c >= '0' && c <= '9':
			end := start + 1
			for end < len(src) && src[end] >= '0' && src[end] <= '9' {
				end++
			}
			if end < len(src) && (src[end] == '.' || src[end] >= 0x80 || isIdentByte(src[end])) {
				return fastToken{kind: fkBad}
			}
			return tok(fkNumber, end)
		case c == '"':
			end := start + 1
			for ; end < len(src); end++ {
				b := src[end]
				if b == '"' {
					break
				}
				if b == '\\' || b == '\n' || b == '\r' || b >= 0x80 || (b == '$' || b == '%') && end+1 < len(src) && src[end+1] == '{' {
					return fastToken{kind: fkBad}
				}
			}
			if end == len(src) {
				return fastToken{kind: fkBad}
			}
			return tok(fkString, end+1)
		}
		kind := fkBad
		switch c {
		case '{':
			kind = fkOBrace
		case '}':
			kind = fkCBrace
		case '[':
			kind = fkOBrack
		case ']':
			kind = fkCBrack
		case ',':
			kind = fkComma
		case '=':
			if start+1 < len(src) && (src[start+1] == '=' || src[start+1] == '>') {
				return fastToken{kind: fkBad}
			}
			kind = fkEqual
		}
		if kind == fkBad {
			return fastToken{kind: fkBad}
		}
		return tok(kind, start+1)
	}
}

// fastParser is a recursive descent over fastLexer's tokens that follows
// hclsyntax's parser step by step where the subset reaches; every method
// returns nil (or false) to give up.
type fastParser struct {
	lx fastLexer
	// items, when not nil, receives the blocks left out of the tree
	// (parseFastItems).
	items map[*hclsyntax.Body]*fastItems
}

func (p *fastParser) peek(skipNewlines bool) fastToken {
	saved := p.lx
	t := p.lx.next(skipNewlines)
	p.lx = saved
	return t
}

func (p *fastParser) file() *hclsyntax.Body {
	first := p.peek(false)
	if first.kind == fkBad {
		return nil
	}
	return p.body(fkEOF, first.rng, true, "")
}

// body parses items up to the end token; start is the range before the
// body (its opening brace), as hclsyntax's PrevRange. top says the body is
// the file's; parent is the type of the top-level block whose body this
// is ("" for others), which says which blocks may be left out of the tree.
func (p *fastParser) body(end int, start hcl.Range, top bool, parent string) *hclsyntax.Body {
	attrs := hclsyntax.Attributes{}
	blocks := hclsyntax.Blocks{}
	var items *fastItems
	kind, takes := fastItemKinds[parent]
	takes = takes && p.items != nil
	for {
		t := p.lx.next(false)
		switch t.kind {
		case end:
			b := &hclsyntax.Body{
				Attributes: attrs,
				Blocks:     blocks,
				SrcRange:   hcl.RangeBetween(start, t.rng),
				EndRange:   hcl.Range{Filename: t.rng.Filename, Start: t.rng.End, End: t.rng.End},
			}
			if items != nil {
				p.items[b] = items
			}
			return b
		case fkNewline:
			continue
		case fkIdent:
		default:
			return nil
		}
		switch p.peek(false).kind {
		case fkEqual:
			a := p.attribute(t, false)
			if a == nil || attrs[a.Name] != nil {
				return nil
			}
			attrs[a.Name] = a
		case fkString, fkIdent, fkOBrace:
			if takes && string(p.lx.src[t.start:t.end]) == kind.child {
				saved := p.lx
				if p.item(nil, t, kind, false) {
					if items == nil {
						items = &fastItems{src: p.lx.src, name: p.lx.name, kind: kind}
					}
					items.marks = append(items.marks, fastMark{at: int32(t.start), line: int32(t.rng.Start.Line),
						lineStart: int32(t.start - t.rng.Start.Column + 1)})
					continue
				}
				p.lx = saved
			}
			b := p.block(t, top)
			if b == nil {
				return nil
			}
			blocks = append(blocks, b)
		default:
			return nil
		}
	}
}

// attribute parses "= expression" after the name; outside a single-line
// block a newline (or the end of the file) must follow.
func (p *fastParser) attribute(name fastToken, singleLine bool) *hclsyntax.Attribute {
	eq := p.lx.next(false)
	expr, last := p.expression(false)
	if expr == nil {
		return nil
	}
	if !singleLine {
		switch p.lx.next(false).kind {
		case fkNewline, fkEOF:
		default:
			return nil
		}
	}
	return &hclsyntax.Attribute{
		Name:        string(p.lx.src[name.start:name.end]),
		Expr:        expr,
		SrcRange:    hcl.RangeBetween(name.rng, last),
		NameRange:   name.rng,
		EqualsRange: eq.rng,
	}
}

// block parses a block after its type; top says it is in the file's body.
func (p *fastParser) block(typ fastToken, top bool) *hclsyntax.Block {
	var labels []string
	var labelRanges []hcl.Range
	var open fastToken
labels:
	for {
		t := p.lx.next(false)
		switch t.kind {
		case fkOBrace:
			open = t
			break labels
		case fkString:
			labels = append(labels, string(p.lx.src[t.start+1:t.end-1]))
			labelRanges = append(labelRanges, t.rng)
		case fkIdent:
			labels = append(labels, string(p.lx.src[t.start:t.end]))
			labelRanges = append(labelRanges, t.rng)
		default:
			return nil
		}
	}
	var body *hclsyntax.Body
	var closeRange hcl.Range
	switch p.peek(false).kind {
	case fkNewline, fkCBrace:
		parent := ""
		if top && len(labels) == 1 {
			parent = string(p.lx.src[typ.start:typ.end])
		}
		if body = p.body(fkCBrace, open.rng, false, parent); body == nil {
			return nil
		}
		closeRange = hcl.Range{Filename: body.EndRange.Filename, Start: hcl.Pos{Line: body.EndRange.End.Line,
			Column: body.EndRange.End.Column - 1, Byte: body.EndRange.End.Byte - 1}, End: body.EndRange.End}
	case fkIdent:
		name := p.lx.next(false)
		if p.peek(false).kind != fkEqual {
			return nil
		}
		a := p.attribute(name, true)
		if a == nil {
			return nil
		}
		cb := p.lx.next(false)
		if cb.kind != fkCBrace {
			return nil
		}
		closeRange = cb.rng
		body = &hclsyntax.Body{
			Attributes: hclsyntax.Attributes{a.Name: a},
			SrcRange:   a.SrcRange,
			EndRange:   hcl.Range{Filename: a.SrcRange.Filename, Start: a.SrcRange.End, End: a.SrcRange.End},
		}
	default:
		return nil
	}
	switch p.lx.next(false).kind {
	case fkNewline, fkEOF:
	default:
		return nil
	}
	return &hclsyntax.Block{
		Type:            string(p.lx.src[typ.start:typ.end]),
		Labels:          labels,
		Body:            body,
		TypeRange:       typ.rng,
		LabelRanges:     labelRanges,
		OpenBraceRange:  open.rng,
		CloseBraceRange: closeRange,
	}
}

// item parses a block after its type: one label, then attributes named
// in kind.names, each set once to a scalar literal (p.scalar), the
// required one among them. It reports false for anything else; the
// caller then parses the block again into the tree. With keep, it fills
// b, reusing b.attrs; without, it allocates nothing.
func (p *fastParser) item(b *fastBlock, typ fastToken, kind *fastItemKind, keep bool) bool {
	src := p.lx.src
	label := p.lx.next(false)
	if label.kind != fkString && label.kind != fkIdent {
		return false
	}
	if keep {
		b.typeRange, b.labelRange, b.attrs = typ.rng, label.rng, b.attrs[:0]
		if label.kind == fkString {
			b.label = string(src[label.start+1 : label.end-1])
		} else {
			b.label = string(src[label.start:label.end])
		}
	}
	if p.lx.next(false).kind != fkOBrace {
		return false
	}
	var seen uint32 // bit k: kind.names[k] is set
	// attr parses "= literal" after the name.
	attr := func(name fastToken) bool {
		if p.lx.next(false).kind != fkEqual {
			return false
		}
		k := slices.IndexFunc(kind.names, func(n string) bool { return n == string(src[name.start:name.end]) })
		if k < 0 || seen&(1<<k) != 0 {
			return false
		}
		seen |= 1 << k
		lit, ok := p.scalar(keep)
		if ok && keep {
			b.attrs = append(b.attrs, fastAttr{name: kind.names[k], nameRange: name.rng, lit: lit})
		}
		return ok
	}
	switch t := p.lx.next(false); t.kind {
	case fkIdent:
		// A single-line block: one attribute, then the closing brace.
		if !attr(t) || p.lx.next(false).kind != fkCBrace {
			return false
		}
	case fkNewline, fkCBrace:
	body:
		for t.kind != fkCBrace {
			switch t = p.lx.next(false); t.kind {
			case fkNewline:
			case fkCBrace:
				break body
			case fkIdent:
				if !attr(t) || p.lx.next(false).kind != fkNewline {
					return false
				}
			default:
				return false
			}
		}
	default:
		return false
	}
	switch p.lx.next(false).kind {
	case fkNewline, fkEOF:
	default:
		return false
	}
	if kind.required != "" {
		k := slices.Index(kind.names, kind.required)
		return seen&(1<<k) != 0
	}
	return true
}

// scalar parses a quoted string without escapes or template sequences, a
// whole number, true or false, with the range of its token: the values
// that literal takes without evaluating them. Without keep it only says
// whether the next token is one.
func (p *fastParser) scalar(keep bool) (fastLit, bool) {
	t := p.lx.next(false)
	src := p.lx.src
	switch t.kind {
	case fkString:
		if !keep {
			return fastLit{}, true
		}
		return fastLit{text: string(src[t.start+1 : t.end-1]), isStr: true, rng: t.rng}, true
	case fkNumber:
		if !keep {
			// fastLexer's numbers are digits alone: each parses.
			return fastLit{}, true
		}
		v, err := cty.ParseNumberVal(string(src[t.start:t.end]))
		return fastLit{val: v, rng: t.rng}, err == nil
	case fkIdent:
		switch string(src[t.start:t.end]) {
		case "true":
			return fastLit{val: cty.True, rng: t.rng}, true
		case "false":
			return fastLit{val: cty.False, rng: t.rng}, true
		}
	}
	return fastLit{}, false
}

// expression parses a literal or a list of literals and returns it with
// the range of its last token.
func (p *fastParser) expression(inBrackets bool) (hclsyntax.Expression, hcl.Range) {
	t := p.lx.next(inBrackets)
	src := p.lx.src
	switch t.kind {
	case fkString:
		r := t.rng
		if t.end-t.start > 2 {
			r.Start.Column++
			r.Start.Byte++
			r.End.Column--
			r.End.Byte--
		} else {
			// hclsyntax's empty literal sits after the closing quote.
			r.Start = r.End
		}
		lit := &hclsyntax.LiteralValueExpr{Val: cty.StringVal(string(src[t.start+1 : t.end-1])), SrcRange: r}
		return &hclsyntax.TemplateExpr{Parts: []hclsyntax.Expression{lit}, SrcRange: t.rng}, t.rng
	case fkNumber:
		v, err := cty.ParseNumberVal(string(src[t.start:t.end]))
		if err != nil {
			return nil, hcl.Range{}
		}
		return &hclsyntax.LiteralValueExpr{Val: v, SrcRange: t.rng}, t.rng
	case fkIdent:
		var v cty.Value
		switch string(src[t.start:t.end]) {
		case "true":
			v = cty.True
		case "false":
			v = cty.False
		case "null":
			v = cty.NullVal(cty.DynamicPseudoType)
		default:
			return nil, hcl.Range{}
		}
		return &hclsyntax.LiteralValueExpr{Val: v, SrcRange: t.rng}, t.rng
	case fkOBrack:
		var exprs []hclsyntax.Expression
		for {
			if c := p.peek(true); c.kind == fkCBrack {
				p.lx.next(true)
				return &hclsyntax.TupleConsExpr{Exprs: exprs, SrcRange: hcl.RangeBetween(t.rng, c.rng), OpenRange: t.rng}, c.rng
			}
			e, _ := p.expression(true)
			if e == nil {
				return nil, hcl.Range{}
			}
			exprs = append(exprs, e)
			switch c := p.lx.next(true); c.kind {
			case fkCBrack:
				return &hclsyntax.TupleConsExpr{Exprs: exprs, SrcRange: hcl.RangeBetween(t.rng, c.rng), OpenRange: t.rng}, c.rng
			case fkComma:
			default:
				return nil, hcl.Range{}
			}
		}
	}
	return nil, hcl.Range{}
}
