package scstconf

import (
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// node is an HCL block being built: the conversion fills nodes in any
// order, and render writes them in the schema's order.
type node struct {
	typ    string // "" for a comment with no block
	labels []string
	// comment is written above the block.
	comment []string
	attrs   []attr
	// order lists attribute names in the order they are written; others
	// follow in the order they were set.
	order []string
	// kept are comment lines after the attributes: what was not imported.
	kept   []string
	blocks []*node
}

// attr is one attribute with an optional comment above it.
type attr struct {
	name    string
	value   hclwrite.Tokens
	comment []string
}

// set sets attribute name, replacing an earlier value.
func (n *node) set(name string, value hclwrite.Tokens, comment ...string) {
	for i := range n.attrs {
		if n.attrs[i].name == name {
			n.attrs[i] = attr{name, value, comment}
			return
		}
	}
	n.attrs = append(n.attrs, attr{name, value, comment})
}

// has reports whether attribute name is set.
func (n *node) has(name string) bool {
	return slices.ContainsFunc(n.attrs, func(a attr) bool { return a.name == name })
}

// block appends a child block and returns it.
func (n *node) block(typ string, labels ...string) *node {
	c := &node{typ: typ, labels: labels}
	n.blocks = append(n.blocks, c)
	return c
}

// note appends a comment with no block among the children, where a
// section that was not imported stood.
func (n *node) note(lines []string) {
	n.blocks = append(n.blocks, &node{comment: lines})
}

func str(s string) hclwrite.Tokens      { return hclwrite.TokensForValue(cty.StringVal(s)) }
func boolean(b bool) hclwrite.Tokens    { return hclwrite.TokensForValue(cty.BoolVal(b)) }
func integer(n int64) hclwrite.Tokens   { return hclwrite.TokensForValue(cty.NumberIntVal(n)) }
func fileCall(p string) hclwrite.Tokens { return hclwrite.TokensForFunctionCall("file", str(p)) }

func strList(list []string) hclwrite.Tokens {
	vals := make([]cty.Value, len(list))
	for i, s := range list {
		vals[i] = cty.StringVal(s)
	}
	return hclwrite.TokensForValue(cty.TupleVal(vals))
}

// render writes the children of parent into body: blocks, and comments
// where sections were not imported. Top-level blocks are separated by
// blank lines; nested ones by a blank line where their kind changes.
func render(body *hclwrite.Body, parent *node, top bool) {
	var prev *node
	for _, c := range parent.blocks {
		if prev != nil && blankBetween(prev, c, top) || prev == nil && !top && (len(parent.attrs) > 0 || len(parent.kept) > 0) {
			body.AppendNewline()
		}
		prev = c
		comments(body, c.comment)
		if c.typ == "" {
			continue
		}
		b := body.AppendNewBlock(c.typ, c.labels).Body()
		for _, a := range c.sortedAttrs() {
			comments(b, a.comment)
			b.SetAttributeRaw(a.name, a.value)
		}
		comments(b, c.kept)
		render(b, c, false)
	}
}

// blankBetween reports whether a blank line separates two siblings.
func blankBetween(prev, c *node, top bool) bool {
	oneLine := func(n *node) bool { return n.typ == "" && len(n.comment) == 1 }
	switch {
	case oneLine(prev) && oneLine(c):
		return false // a run of attributes kept as comments
	case top:
		return true
	}
	return prev.typ != c.typ || len(c.comment) > 0 || len(prev.blocks) > 0
}

// sortedAttrs returns the attributes in the node's order.
func (n *node) sortedAttrs() []attr {
	out := slices.Clone(n.attrs)
	rank := func(name string) int {
		if i := slices.Index(n.order, name); i >= 0 {
			return i
		}
		return len(n.order)
	}
	slices.SortStableFunc(out, func(a, b attr) int { return rank(a.name) - rank(b.name) })
	return out
}

// comments appends "# line" for each line.
func comments(body *hclwrite.Body, lines []string) {
	for _, l := range lines {
		text := "#"
		if l != "" {
			text += " " + strings.TrimRight(printable(l), " ")
		}
		body.AppendUnstructuredTokens(hclwrite.Tokens{{Type: hclsyntax.TokenComment, Bytes: []byte(text + "\n")}})
	}
}
